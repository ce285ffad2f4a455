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
}

impl DiscreteWorkspace {
    /// Workspace for `d × p` blocks.
    pub fn new(d: usize, p: usize) -> Self {
        Self {
            g: Matrix::zeros(d, p),
            y: Matrix::zeros(d, p),
            full: Matrix::zeros(d, p),
            tmp: vec![0.0; d],
        }
    }
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
        if let (Oracle::Additive(_), Some(z), AlgorithmKind::Sgd | AlgorithmKind::Usam) =
            (oracle, noise.z, self.kind)
        {
            return self.step_additive(f, x, z, ws);
        }
        if let (Oracle::Subsampling(_), Some(batches), AlgorithmKind::Sgd) =
            (oracle, noise.batches, self.kind)
        {
            // One fused pass per path where the landscape has one (least squares); the same
            // numbers as the general path below.
            let fs = f.as_finite_sum().expect("validated: finite sum");
            let (xs, g) = (x.as_mut_slice(), ws.g.as_mut_slice());
            return fs.sgd_step_block(batches, self.eta, xs, g, &mut ws.tmp);
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
    /// skips `y`). The same operations in the same order as the general path, so the same
    /// bits.
    fn step_additive(
        &self,
        f: &dyn Landscape,
        x: &mut Matrix,
        z: &Matrix,
        ws: &mut DiscreteWorkspace,
    ) {
        let (eta, rho) = (self.eta, self.rho);
        f.grad_batch(x, &mut ws.g);
        if self.kind == AlgorithmKind::Usam {
            let y = ws.y.as_mut_slice().iter_mut();
            for ((yi, (xi, gi)), zi) in y
                .zip(x.as_slice().iter().zip(ws.g.as_slice()))
                .zip(z.as_slice())
            {
                *yi = xi + rho * (gi + zi);
            }
            f.grad_batch(&ws.y, &mut ws.g);
        }
        for ((xi, gi), zi) in x
            .as_mut_slice()
            .iter_mut()
            .zip(ws.g.as_slice())
            .zip(z.as_slice())
        {
            *xi += -eta * (gi + zi);
        }
    }
}
