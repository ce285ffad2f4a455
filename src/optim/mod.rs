//! Discrete algorithms (docs/theory.md §2), one update per call on a block of paths (`d × P`).
//!
//! All four share one template, `x ← x − η ∇f_γ(x + ρ u)`, with the oracle draw `γ` reused at
//! both points and the ascent direction `u` the only difference:
//!
//! | algorithm | `u` |
//! |---|---|
//! | SGD | none (`x ← x − η ∇f_γ(x)`) |
//! | USAM | `∇f_γ(x)` |
//! | SAM | `∇f_γ(x) / (‖∇f_γ(x)‖ + ε)` |
//! | DNSAM | `∇f_γ(x) / (‖∇f(x)‖ + ε)` (stochastic direction, full-gradient norm) |
//!
//! Norm guard: `ε = 1e-12` ([`NORM_EPS`]) so a zero gradient gives a zero perturbation instead
//! of NaN. Full-batch SAM and DNSAM coincide.
//!
//! [`msam`] is m-SAM on finite sums (one ascent per micro-batch; 1-SAM and n-SAM as the two
//! ends), and [`schedule`] runs phases of it one after the other (ERM → SAM, SAM → ERM).

pub mod batch_law;
pub mod batch_moments;
pub mod kind;
pub mod moments;
pub mod msam;
pub mod schedule;

pub use kind::AlgorithmKind;
pub use schedule::{Phase, Schedule};

use crate::landscape::Landscape;
use crate::linalg::{axpy, Matrix};
use crate::oracle::Oracle;

/// Guard added to norms before dividing by them.
pub const NORM_EPS: f64 = 1e-12;

/// The noise of one step, shared by every algorithm in the ensemble (common random numbers).
#[derive(Debug, Clone, Copy, Default)]
pub struct StepNoise<'a> {
    /// Additive oracle: `Z = S ξ` (`d × P`).
    pub z: Option<&'a Matrix>,
    /// Additive oracle, the same `Z` not yet formed: `Z = c W` elementwise for a scalar `c`
    /// and a `d × P` matrix `W` (isotropic noise, `W` the Brownian increment). SGD and USAM
    /// form `c · w` inside their update passes (the same product, so the same bits as `z`);
    /// the engine passes it only when no algorithm of the step needs `z` itself.
    pub z_scaled: Option<(f64, &'a Matrix)>,
    /// Subsampling oracle: batch indices, `B` per path, path-major.
    pub batches: Option<&'a [u32]>,
}

/// Scratch space for one block; allocated once, reused every step.
#[derive(Debug, Clone)]
pub struct DiscreteWorkspace {
    g: Matrix,
    y: Matrix,
    full: Matrix,
    tmp: Vec<f64>,
    /// `‖x_j‖²` of every column after the last step, when that step computed it in its
    /// update pass (`norm2_valid`); the engine's divergence check then reads it instead of
    /// passing over the block again.
    norm2: Vec<f64>,
    norm2_valid: bool,
}

impl DiscreteWorkspace {
    /// Workspace for `d × p` blocks.
    pub fn new(d: usize, p: usize) -> Self {
        Self {
            g: Matrix::zeros(d, p),
            y: Matrix::zeros(d, p),
            full: Matrix::zeros(d, p),
            tmp: vec![0.0; d],
            norm2: vec![0.0; p],
            norm2_valid: false,
        }
    }

    /// `‖x_j‖²` of every column after the last step if the step computed it (summed as
    /// [`norm_sq`]), else `None`.
    pub fn column_norms_sq(&self) -> Option<&[f64]> {
        self.norm2_valid.then_some(&self.norm2[..])
    }
}

/// `‖x‖²` with four partial sums (`x[4i + l]` into sum `l`, then `(s₀ + s₂) + (s₁ + s₃)`,
/// then the remainder in order): the divergence check's norm, whether the engine computes it
/// or a step's update pass does.
#[inline]
pub fn norm_sq(x: &[f64]) -> f64 {
    let mut acc = [0.0; 4];
    let mut chunks = x.chunks_exact(4);
    for c in chunks.by_ref() {
        for l in 0..4 {
            acc[l] += c[l] * c[l];
        }
    }
    let rest: f64 = chunks.remainder().iter().map(|v| v * v).sum();
    (acc[0] + acc[2]) + (acc[1] + acc[3]) + rest
}

/// `out = ∇f_γ(xs)` column by column, for the given oracle and step noise.
pub fn oracle_grad_batch(
    f: &dyn Landscape,
    oracle: &Oracle,
    xs: &Matrix,
    noise: &StepNoise,
    out: &mut Matrix,
    tmp: &mut [f64],
) {
    match oracle {
        Oracle::FullBatch => f.grad_batch(xs, out),
        Oracle::Additive(_) => {
            f.grad_batch(xs, out);
            *out += noise.z.expect("additive oracle needs Z");
        }
        Oracle::Subsampling(s) => {
            let fs = f.as_finite_sum().expect("validated: finite sum");
            let batches = noise.batches.expect("subsampling oracle needs batches");
            debug_assert_eq!(batches.len(), s.batch * xs.ncols());
            fs.batch_grad_block(batches, xs.as_slice(), out.as_mut_slice(), tmp);
        }
    }
}

/// A discrete algorithm with its learning rate `eta` and radius `rho`.
#[derive(Debug, Clone, Copy)]
pub struct Discrete {
    /// Which algorithm.
    pub kind: AlgorithmKind,
    /// Learning rate `η`.
    pub eta: f64,
    /// SAM radius `ρ` (ignored by SGD).
    pub rho: f64,
}

impl Discrete {
    /// One step `x ← x − η ∇f_γ(x + ρ u)` on every column of `x`.
    pub fn step(
        &self,
        f: &dyn Landscape,
        oracle: &Oracle,
        x: &mut Matrix,
        noise: &StepNoise,
        ws: &mut DiscreteWorkspace,
    ) {
        ws.norm2_valid = false;
        if let (Oracle::Additive(_), AlgorithmKind::Sgd | AlgorithmKind::Usam) = (oracle, self.kind)
        {
            if let Some((c, w)) = noise.z_scaled {
                return self.step_additive(f, x, AdditiveZ::Scaled(c, w), ws);
            }
            if let Some(z) = noise.z {
                return self.step_additive(f, x, AdditiveZ::Formed(z), ws);
            }
        }
        assert!(
            noise.z_scaled.is_none(),
            "{:?} needs the noise Z formed (StepNoise::z)",
            self.kind
        );
        if let (Oracle::Subsampling(_), Some(batches), AlgorithmKind::Sgd) =
            (oracle, noise.batches, self.kind)
        {
            // One fused pass per path where the landscape has one (least squares); the same
            // numbers as the general path below. It may sum `‖x_j‖²` as it writes `x`.
            let fs = f.as_finite_sum().expect("validated: finite sum");
            let (xs, g) = (x.as_mut_slice(), ws.g.as_mut_slice());
            ws.norm2_valid =
                fs.sgd_step_block(batches, self.eta, xs, g, &mut ws.tmp, &mut ws.norm2);
            return;
        }
        oracle_grad_batch(f, oracle, x, noise, &mut ws.g, &mut ws.tmp);
        if self.kind == AlgorithmKind::Sgd {
            axpy(-self.eta, &ws.g, x);
            return;
        }
        // y = x + ρ u(g)
        ws.y.copy_from(x);
        match self.kind {
            AlgorithmKind::Usam => axpy(self.rho, &ws.g, &mut ws.y),
            AlgorithmKind::Sam => {
                for (yc, gc) in ws.y.column_iter_mut().zip(ws.g.column_iter()) {
                    let scale = self.rho / (gc.norm() + NORM_EPS);
                    let mut yc = yc;
                    yc.axpy(scale, &gc, 1.0);
                }
            }
            AlgorithmKind::Dnsam => {
                // Full-gradient norm at x (batched).
                f.grad_batch(x, &mut ws.full);
                for (j, mut yc) in ws.y.column_iter_mut().enumerate() {
                    let scale = self.rho / (ws.full.column(j).norm() + NORM_EPS);
                    yc.axpy(scale, &ws.g.column(j), 1.0);
                }
            }
            AlgorithmKind::Sgd => unreachable!(),
            AlgorithmKind::Musam => {
                panic!("m-USAM needs its micro-batch size: run it as Dynamics::MicroBatch")
            }
        }
        oracle_grad_batch(f, oracle, &ws.y, noise, &mut ws.g, &mut ws.tmp);
        axpy(-self.eta, &ws.g, x);
    }

    /// SGD and USAM with additive noise `∇f_γ = ∇f + z`, in fused slice loops: one product
    /// and one pass per gradient (`y = x + ρ(∇f(x) + z)`, then `x += −η(∇f(y) + z)`; SGD
    /// skips `y`), with `z = c · w` formed in place when the noise comes scaled. The same
    /// operations in the same order as the general path, so the same bits. The last pass also
    /// sums `‖x_j‖²` for the engine's divergence check ([`DiscreteWorkspace::column_norms_sq`]).
    fn step_additive(
        &self,
        f: &dyn Landscape,
        x: &mut Matrix,
        z: AdditiveZ,
        ws: &mut DiscreteWorkspace,
    ) {
        match z {
            AdditiveZ::Formed(z) => self.step_additive_with(f, x, ws, z.as_slice(), |zi| zi),
            AdditiveZ::Scaled(c, w) => {
                self.step_additive_with(f, x, ws, w.as_slice(), move |wi| c * wi)
            }
        }
    }

    #[inline(always)]
    fn step_additive_with(
        &self,
        f: &dyn Landscape,
        x: &mut Matrix,
        ws: &mut DiscreteWorkspace,
        noise: &[f64],
        z_of: impl Fn(f64) -> f64 + Copy,
    ) {
        let (eta, rho) = (self.eta, self.rho);
        let d = x.nrows();
        assert_eq!(noise.len(), x.len(), "additive noise: shape");
        f.grad_batch(x, &mut ws.g);
        if self.kind == AlgorithmKind::Usam {
            passes::ascent(
                ws.y.as_mut_slice(),
                x.as_slice(),
                ws.g.as_slice(),
                noise,
                rho,
                z_of,
            );
            f.grad_batch(&ws.y, &mut ws.g);
        }
        passes::descent(
            x.as_mut_slice(),
            ws.g.as_slice(),
            noise,
            eta,
            z_of,
            d,
            &mut ws.norm2,
        );
        ws.norm2_valid = true;
    }
}

/// The slice loops of [`Discrete::step_additive`], compiled for the widest vector unit the
/// processor has (the crate's baseline is SSE2). Multiplications and additions only, in the
/// same order on every path, so the bits do not depend on the instruction set.
mod passes {
    use super::norm_sq;

    /// `y = x + ρ(g + z(n))`.
    #[inline(always)]
    fn ascent_body(
        y: &mut [f64],
        x: &[f64],
        g: &[f64],
        n: &[f64],
        rho: f64,
        z: impl Fn(f64) -> f64,
    ) {
        for ((yi, (xi, gi)), &ni) in y.iter_mut().zip(x.iter().zip(g)).zip(n) {
            *yi = xi + rho * (gi + z(ni));
        }
    }

    /// `x += −η(g + z(n))`, then `‖x_j‖²` of each column of `d`.
    #[inline(always)]
    fn descent_body(
        x: &mut [f64],
        g: &[f64],
        n: &[f64],
        eta: f64,
        z: impl Fn(f64) -> f64 + Copy,
        d: usize,
        norm2: &mut [f64],
    ) {
        if d == 0 {
            norm2.fill(0.0);
            return;
        }
        let cols = x
            .chunks_exact_mut(d)
            .zip(g.chunks_exact(d))
            .zip(n.chunks_exact(d));
        for (((xc, gc), nc), n2) in cols.zip(norm2.iter_mut()) {
            // The update and `norm_sq`'s four partial sums in one sweep (the same sums).
            let mut acc = [0.0; 4];
            let mut xs = xc.chunks_exact_mut(4);
            let mut gs = gc.chunks_exact(4);
            let mut ns = nc.chunks_exact(4);
            for ((x4, g4), n4) in xs.by_ref().zip(gs.by_ref()).zip(ns.by_ref()) {
                for l in 0..4 {
                    x4[l] += -eta * (g4[l] + z(n4[l]));
                    acc[l] += x4[l] * x4[l];
                }
            }
            let rem = xs.into_remainder();
            for ((xi, gi), &ni) in rem.iter_mut().zip(gs.remainder()).zip(ns.remainder()) {
                *xi += -eta * (gi + z(ni));
            }
            let rest: f64 = rem.iter().map(|v| v * v).sum();
            *n2 = (acc[0] + acc[2]) + (acc[1] + acc[3]) + rest;
            debug_assert_eq!(n2.to_bits(), norm_sq(xc).to_bits());
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn ascent_avx2(
        y: &mut [f64],
        x: &[f64],
        g: &[f64],
        n: &[f64],
        rho: f64,
        z: impl Fn(f64) -> f64,
    ) {
        ascent_body(y, x, g, n, rho, z)
    }
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,avx512f")]
    unsafe fn ascent_avx512(
        y: &mut [f64],
        x: &[f64],
        g: &[f64],
        n: &[f64],
        rho: f64,
        z: impl Fn(f64) -> f64,
    ) {
        ascent_body(y, x, g, n, rho, z)
    }
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn descent_avx2(
        x: &mut [f64],
        g: &[f64],
        n: &[f64],
        eta: f64,
        z: impl Fn(f64) -> f64 + Copy,
        d: usize,
        norm2: &mut [f64],
    ) {
        descent_body(x, g, n, eta, z, d, norm2)
    }
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,avx512f")]
    unsafe fn descent_avx512(
        x: &mut [f64],
        g: &[f64],
        n: &[f64],
        eta: f64,
        z: impl Fn(f64) -> f64 + Copy,
        d: usize,
        norm2: &mut [f64],
    ) {
        descent_body(x, g, n, eta, z, d, norm2)
    }

    pub(super) fn ascent(
        y: &mut [f64],
        x: &[f64],
        g: &[f64],
        n: &[f64],
        rho: f64,
        z: impl Fn(f64) -> f64,
    ) {
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx512f") {
                // SAFETY: AVX-512F (and so AVX2) was detected at run time.
                return unsafe { ascent_avx512(y, x, g, n, rho, z) };
            }
            if std::arch::is_x86_feature_detected!("avx2") {
                // SAFETY: AVX2 was detected at run time.
                return unsafe { ascent_avx2(y, x, g, n, rho, z) };
            }
        }
        ascent_body(y, x, g, n, rho, z)
    }

    pub(super) fn descent(
        x: &mut [f64],
        g: &[f64],
        n: &[f64],
        eta: f64,
        z: impl Fn(f64) -> f64 + Copy,
        d: usize,
        norm2: &mut [f64],
    ) {
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx512f") {
                // SAFETY: AVX-512F (and so AVX2) was detected at run time.
                return unsafe { descent_avx512(x, g, n, eta, z, d, norm2) };
            }
            if std::arch::is_x86_feature_detected!("avx2") {
                // SAFETY: AVX2 was detected at run time.
                return unsafe { descent_avx2(x, g, n, eta, z, d, norm2) };
            }
        }
        descent_body(x, g, n, eta, z, d, norm2)
    }
}

/// The additive noise of a step as [`Discrete::step_additive`] takes it.
#[derive(Clone, Copy)]
enum AdditiveZ<'a> {
    /// `Z` itself.
    Formed(&'a Matrix),
    /// `Z = c W`.
    Scaled(f64, &'a Matrix),
}
