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
use crate::linalg::{axpy, square_times_fused, Fused, Matrix};
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

/// `‖x‖²` with eight partial sums (`x[8i + l]` into sum `l`, the last `d mod 8` entries
/// included the same way), then `((s₀ + s₄) + (s₂ + s₆)) + ((s₁ + s₅) + (s₃ + s₇))`: the
/// divergence check's norm, whether the engine computes it or a step's update pass does (one
/// 512-bit register of partial sums there).
#[inline]
pub fn norm_sq(x: &[f64]) -> f64 {
    let mut s = [0.0; 8];
    let mut chunks = x.chunks_exact(8);
    for c in chunks.by_ref() {
        for l in 0..8 {
            s[l] += c[l] * c[l];
        }
    }
    for (l, v) in chunks.remainder().iter().enumerate() {
        s[l] += v * v;
    }
    ((s[0] + s[4]) + (s[2] + s[6])) + ((s[1] + s[5]) + (s[3] + s[7]))
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

    /// SGD and USAM with additive noise `∇f_γ = ∇f + z`: one product and one pass per
    /// gradient (`y = x + ρ(∇f(x) + z)`, then `x += −η(∇f(y) + z)`; SGD skips `y`), with
    /// `z = c · w` formed in place when the noise comes scaled. On a centred quadratic
    /// (`∇f = H x`) USAM's two passes are fused into the stores of the two products
    /// ([`square_times_fused`]), so the gradients are never written. The same operations in
    /// the same order as the general path, so the same bits. The last pass also sums `‖x_j‖²`
    /// for the engine's divergence check ([`DiscreteWorkspace::column_norms_sq`]).
    fn step_additive(
        &self,
        f: &dyn Landscape,
        x: &mut Matrix,
        z: AdditiveZ,
        ws: &mut DiscreteWorkspace,
    ) {
        match z {
            AdditiveZ::Formed(z) => self.step_additive_with::<false>(f, x, ws, z.as_slice(), 1.0),
            AdditiveZ::Scaled(c, w) => self.step_additive_with::<true>(f, x, ws, w.as_slice(), c),
        }
    }

    /// [`Self::step_additive`] with `z = c·noise` (`SCALED`) or `z = noise`.
    #[inline(always)]
    fn step_additive_with<const SCALED: bool>(
        &self,
        f: &dyn Landscape,
        x: &mut Matrix,
        ws: &mut DiscreteWorkspace,
        noise: &[f64],
        c: f64,
    ) {
        let (eta, rho) = (self.eta, self.rho);
        let d = x.nrows();
        assert_eq!(noise.len(), x.len(), "additive noise: shape");
        let DiscreteWorkspace { g, y, norm2, .. } = ws;
        let scale = SCALED.then_some(c);
        // A centred quadratic `∇f = H x`: each pass fused into the stores of the product
        // (`square_times_fused`), the norms summed per tile while it is in cache.
        if let Some(h) = f.centred_quadratic() {
            let mut norms = |cols: std::ops::Range<usize>, x_tile: &[f64]| {
                passes::norms(x_tile, d, &mut norm2[cols]);
            };
            let ascent = Fused::Ascent {
                x: x.as_slice(),
                n: noise,
                rho,
                c: scale,
            };
            let fused = if self.kind == AlgorithmKind::Usam {
                square_times_fused(h, x, y, ascent, &mut |_, _| {})
                    && square_times_fused(
                        h,
                        y,
                        x,
                        Fused::Descent {
                            n: noise,
                            eta,
                            c: scale,
                        },
                        &mut norms,
                    )
            } else {
                // SGD: the product reads `x` and the step writes it: not fused.
                false
            };
            if fused {
                ws.norm2_valid = true;
                return;
            }
        }
        if self.kind == AlgorithmKind::Usam {
            f.grad_batch(x, g);
            passes::ascent::<SCALED>(y.as_mut_slice(), x.as_slice(), g.as_slice(), noise, rho, c);
            f.grad_batch(y, g);
        } else {
            f.grad_batch(x, g);
        }
        passes::descent::<SCALED>(x.as_mut_slice(), g.as_slice(), noise, eta, c, d, norm2);
        ws.norm2_valid = true;
    }
}

/// The slice loops of [`Discrete::step_additive`]: `y = x + ρ(g + z)` and `x += −η(g + z)`
/// with `‖x_j‖²` ([`norm_sq`]'s order), `z = c·n` when the noise comes scaled (`SCALED`) and
/// `z = n` when it comes formed. Explicit AVX-512 kernels (8 rows per register, a masked last
/// segment) where the processor has them, else the portable loops compiled for AVX2 or the
/// baseline. Multiplications and additions only, in the same order on every path, so the bits
/// do not depend on the instruction set (test `passes_match_the_portable_loops`).
pub(crate) mod passes {
    use super::norm_sq;

    #[inline(always)]
    fn z_of<const SCALED: bool>(c: f64, n: f64) -> f64 {
        if SCALED {
            c * n
        } else {
            n
        }
    }

    /// `y = x + ρ(g + z(n))`, portable.
    #[inline(always)]
    pub(crate) fn ascent_body<const SCALED: bool>(
        y: &mut [f64],
        x: &[f64],
        g: &[f64],
        n: &[f64],
        rho: f64,
        c: f64,
    ) {
        for ((yi, (xi, gi)), &ni) in y.iter_mut().zip(x.iter().zip(g)).zip(n) {
            *yi = xi + rho * (gi + z_of::<SCALED>(c, ni));
        }
    }

    /// `x += −η(g + z(n))`, then `‖x_j‖²` of each column of `d`, portable.
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn descent_body<const SCALED: bool>(
        x: &mut [f64],
        g: &[f64],
        n: &[f64],
        eta: f64,
        c: f64,
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
            for ((xi, gi), &ni) in xc.iter_mut().zip(gc).zip(nc) {
                *xi += -eta * (gi + z_of::<SCALED>(c, ni));
            }
            *n2 = norm_sq(xc);
        }
    }

    #[cfg(target_arch = "x86_64")]
    mod avx512 {
        use std::arch::x86_64::*;

        /// Lanes `< k` set.
        #[inline(always)]
        fn mask(k: usize) -> __mmask8 {
            ((1u16 << k) - 1) as __mmask8
        }

        #[inline(always)]
        unsafe fn z<const SCALED: bool>(c: __m512d, n: __m512d) -> __m512d {
            if SCALED {
                _mm512_mul_pd(c, n)
            } else {
                n
            }
        }

        #[inline(always)]
        unsafe fn z4<const SCALED: bool>(c: __m256d, n: __m256d) -> __m256d {
            if SCALED {
                _mm256_mul_pd(c, n)
            } else {
                n
            }
        }

        /// Row segments of a column of `d`: full 512-bit ones, then a 256-bit one when 4–7
        /// rows are left, then a masked 256-bit one for the last 1–3. No masked 512-bit store:
        /// a masked store that spans the next column's first rows makes the next column's
        /// loads wait for it (measured: the update pass took 3× as long).
        #[inline(always)]
        unsafe fn segments<S>(
            d: usize,
            st: &mut S,
            mut zmm: impl FnMut(&mut S, usize),
            mut ymm: impl FnMut(&mut S, usize, __mmask8, usize),
        ) {
            let mut i = 0;
            while i + 8 <= d {
                zmm(st, i);
                i += 8;
            }
            // `lane`: where the next rows go among the eight partial sums.
            let mut lane = 0;
            if i + 4 <= d {
                ymm(st, i, 0xf, lane);
                i += 4;
                lane = 4;
            }
            if i < d {
                ymm(st, i, mask(d - i), lane);
            }
        }

        #[target_feature(enable = "avx512f,avx512vl")]
        pub(super) unsafe fn ascent<const SCALED: bool>(
            y: &mut [f64],
            x: &[f64],
            g: &[f64],
            n: &[f64],
            rho: f64,
            c: f64,
        ) {
            let len = y.len();
            assert!(x.len() == len && g.len() == len && n.len() == len);
            let (rho8, c8) = (_mm512_set1_pd(rho), _mm512_set1_pd(c));
            let (rho4, c4) = (_mm256_set1_pd(rho), _mm256_set1_pd(c));
            let (yp, xp, gp, np) = (y.as_mut_ptr(), x.as_ptr(), g.as_ptr(), n.as_ptr());
            // The update is entrywise: one flat sweep over the whole slice.
            segments(
                len,
                &mut (),
                |_, i| {
                    let xv = _mm512_loadu_pd(xp.add(i));
                    let gv = _mm512_loadu_pd(gp.add(i));
                    let nv = _mm512_loadu_pd(np.add(i));
                    let t = _mm512_add_pd(gv, z::<SCALED>(c8, nv));
                    _mm512_storeu_pd(yp.add(i), _mm512_add_pd(xv, _mm512_mul_pd(rho8, t)));
                },
                |_, i, m, _| {
                    let xv = _mm256_maskz_loadu_pd(m, xp.add(i));
                    let gv = _mm256_maskz_loadu_pd(m, gp.add(i));
                    let nv = _mm256_maskz_loadu_pd(m, np.add(i));
                    let t = _mm256_add_pd(gv, z4::<SCALED>(c4, nv));
                    let yv = _mm256_add_pd(xv, _mm256_mul_pd(rho4, t));
                    _mm256_mask_storeu_pd(yp.add(i), m, yv);
                },
            );
        }

        /// Per column: the update by [`segments`], each segment's squares added into eight
        /// partial sums (rows `8i + l` into sum `l`), then [`super::norm_sq`]'s reduction tree.
        #[target_feature(enable = "avx512f,avx512vl")]
        #[allow(clippy::too_many_arguments)]
        pub(super) unsafe fn descent<const SCALED: bool>(
            x: &mut [f64],
            g: &[f64],
            n: &[f64],
            eta: f64,
            c: f64,
            d: usize,
            norm2: &mut [f64],
        ) {
            let p = norm2.len();
            assert!(d > 0 && x.len() == d * p && g.len() == d * p && n.len() == d * p);
            let (neg_eta8, c8) = (_mm512_set1_pd(-eta), _mm512_set1_pd(c));
            let (neg_eta4, c4) = (_mm256_set1_pd(-eta), _mm256_set1_pd(c));
            let (xp, gp, np) = (x.as_mut_ptr(), g.as_ptr(), n.as_ptr());
            for (j, n2) in norm2.iter_mut().enumerate() {
                let col = j * d;
                let mut acc = _mm512_setzero_pd();
                segments(
                    d,
                    &mut acc,
                    |acc, i| {
                        let i = col + i;
                        let xv = _mm512_loadu_pd(xp.add(i));
                        let gv = _mm512_loadu_pd(gp.add(i));
                        let nv = _mm512_loadu_pd(np.add(i));
                        let t = _mm512_add_pd(gv, z::<SCALED>(c8, nv));
                        let xn = _mm512_add_pd(xv, _mm512_mul_pd(neg_eta8, t));
                        _mm512_storeu_pd(xp.add(i), xn);
                        *acc = _mm512_add_pd(*acc, _mm512_mul_pd(xn, xn));
                    },
                    |acc, i, m, lane| {
                        let i = col + i;
                        let xv = _mm256_maskz_loadu_pd(m, xp.add(i));
                        let gv = _mm256_maskz_loadu_pd(m, gp.add(i));
                        let nv = _mm256_maskz_loadu_pd(m, np.add(i));
                        let t = _mm256_add_pd(gv, z4::<SCALED>(c4, nv));
                        let xn = _mm256_add_pd(xv, _mm256_mul_pd(neg_eta4, t));
                        _mm256_mask_storeu_pd(xp.add(i), m, xn);
                        // Rows past the column add an exact zero.
                        let sq = _mm256_maskz_mul_pd(m, xn, xn);
                        *acc = _mm512_add_pd(*acc, place(sq, lane));
                    },
                );
                *n2 = reduce(acc);
            }
        }

        /// `‖x_j‖²` of each column of `d` ([`super::norm_sq`]'s partial sums and tree).
        #[target_feature(enable = "avx512f,avx512vl")]
        pub(super) unsafe fn norms(x: &[f64], d: usize, norm2: &mut [f64]) {
            let p = norm2.len();
            assert!(d > 0 && x.len() == d * p);
            let xp = x.as_ptr();
            for (j, n2) in norm2.iter_mut().enumerate() {
                let col = j * d;
                let mut acc = _mm512_setzero_pd();
                segments(
                    d,
                    &mut acc,
                    |acc, i| {
                        let xv = _mm512_loadu_pd(xp.add(col + i));
                        *acc = _mm512_add_pd(*acc, _mm512_mul_pd(xv, xv));
                    },
                    |acc, i, m, lane| {
                        let xv = _mm256_maskz_loadu_pd(m, xp.add(col + i));
                        *acc = _mm512_add_pd(*acc, place(_mm256_mul_pd(xv, xv), lane));
                    },
                );
                *n2 = reduce(acc);
            }
        }

        /// A 256-bit segment's squares in partial sums `lane .. lane + 4` (the rest zero).
        #[inline(always)]
        unsafe fn place(sq: __m256d, lane: usize) -> __m512d {
            if lane == 0 {
                _mm512_zextpd256_pd512(sq)
            } else {
                _mm512_insertf64x4::<1>(_mm512_setzero_pd(), sq)
            }
        }

        /// `((a0 + a4) + (a2 + a6)) + ((a1 + a5) + (a3 + a7))`.
        #[inline(always)]
        unsafe fn reduce(acc: __m512d) -> f64 {
            let s = _mm256_add_pd(
                _mm512_castpd512_pd256(acc),
                _mm512_extractf64x4_pd::<1>(acc),
            );
            let t = _mm_add_pd(_mm256_castpd256_pd128(s), _mm256_extractf128_pd::<1>(s));
            _mm_cvtsd_f64(t) + _mm_cvtsd_f64(_mm_unpackhi_pd(t, t))
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn ascent_avx2<const SCALED: bool>(
        y: &mut [f64],
        x: &[f64],
        g: &[f64],
        n: &[f64],
        rho: f64,
        c: f64,
    ) {
        ascent_body::<SCALED>(y, x, g, n, rho, c)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    #[allow(clippy::too_many_arguments)]
    unsafe fn descent_avx2<const SCALED: bool>(
        x: &mut [f64],
        g: &[f64],
        n: &[f64],
        eta: f64,
        c: f64,
        d: usize,
        norm2: &mut [f64],
    ) {
        descent_body::<SCALED>(x, g, n, eta, c, d, norm2)
    }

    /// `y = x + ρ(g + z)` on the widest vector unit the processor has.
    pub(crate) fn ascent<const SCALED: bool>(
        y: &mut [f64],
        x: &[f64],
        g: &[f64],
        n: &[f64],
        rho: f64,
        c: f64,
    ) {
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx512f")
                && std::arch::is_x86_feature_detected!("avx512vl")
            {
                // SAFETY: AVX-512F/VL were detected at run time; the kernel checks the lengths.
                return unsafe { avx512::ascent::<SCALED>(y, x, g, n, rho, c) };
            }
            if std::arch::is_x86_feature_detected!("avx2") {
                // SAFETY: AVX2 was detected at run time.
                return unsafe { ascent_avx2::<SCALED>(y, x, g, n, rho, c) };
            }
        }
        ascent_body::<SCALED>(y, x, g, n, rho, c)
    }

    /// `x += −η(g + z)` and the column norms, on the widest vector unit the processor has.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn descent<const SCALED: bool>(
        x: &mut [f64],
        g: &[f64],
        n: &[f64],
        eta: f64,
        c: f64,
        d: usize,
        norm2: &mut [f64],
    ) {
        #[cfg(target_arch = "x86_64")]
        {
            if d > 0
                && std::arch::is_x86_feature_detected!("avx512f")
                && std::arch::is_x86_feature_detected!("avx512vl")
            {
                // SAFETY: AVX-512F/VL were detected at run time; the kernel checks the lengths.
                return unsafe { avx512::descent::<SCALED>(x, g, n, eta, c, d, norm2) };
            }
            if std::arch::is_x86_feature_detected!("avx2") {
                // SAFETY: AVX2 was detected at run time.
                return unsafe { descent_avx2::<SCALED>(x, g, n, eta, c, d, norm2) };
            }
        }
        descent_body::<SCALED>(x, g, n, eta, c, d, norm2)
    }

    /// `‖x_j‖²` of each column of `d` ([`norm_sq`]), on the widest vector unit there is.
    pub(crate) fn norms(x: &[f64], d: usize, norm2: &mut [f64]) {
        #[cfg(target_arch = "x86_64")]
        {
            if d > 0
                && std::arch::is_x86_feature_detected!("avx512f")
                && std::arch::is_x86_feature_detected!("avx512vl")
            {
                // SAFETY: AVX-512F/VL were detected at run time; the kernel checks the length.
                return unsafe { avx512::norms(x, d, norm2) };
            }
        }
        if d == 0 {
            norm2.fill(0.0);
            return;
        }
        for (xc, n2) in x.chunks_exact(d).zip(norm2.iter_mut()) {
            *n2 = norm_sq(xc);
        }
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

#[cfg(test)]
mod tests {
    use super::passes;

    /// The dispatched update passes (AVX-512 kernels here when the processor has them) give
    /// the portable loops' bits, for column lengths around the 8- and 4-row segments.
    #[test]
    fn passes_match_the_portable_loops() {
        let (eta, rho, c) = (0.05, 0.2, -1.3);
        for d in [1, 2, 3, 4, 5, 7, 8, 9, 12, 13, 15, 16, 20, 23, 33] {
            for p in [1, 3, 16] {
                let len = d * p;
                let v = |a: usize, b: usize| -> Vec<f64> {
                    (0..len)
                        .map(|i| ((a * i + b) % 17) as f64 * 0.13 - 1.0)
                        .collect()
                };
                let (x, g, n) = (v(3, 1), v(5, 2), v(7, 3));
                let (mut y1, mut y2) = (vec![0.0; len], vec![0.0; len]);
                passes::ascent::<true>(&mut y1, &x, &g, &n, rho, c);
                passes::ascent_body::<true>(&mut y2, &x, &g, &n, rho, c);
                assert_eq!(bits(&y1), bits(&y2), "ascent d {d} p {p}");
                passes::ascent::<false>(&mut y1, &x, &g, &n, rho, c);
                passes::ascent_body::<false>(&mut y2, &x, &g, &n, rho, c);
                assert_eq!(bits(&y1), bits(&y2), "ascent (formed) d {d} p {p}");
                let (mut x1, mut x2) = (x.clone(), x.clone());
                let (mut n1, mut n2) = (vec![0.0; p], vec![0.0; p]);
                passes::descent::<true>(&mut x1, &g, &n, eta, c, d, &mut n1);
                passes::descent_body::<true>(&mut x2, &g, &n, eta, c, d, &mut n2);
                assert_eq!(bits(&x1), bits(&x2), "descent d {d} p {p}");
                assert_eq!(bits(&n1), bits(&n2), "descent norms d {d} p {p}");
                let mut n3 = vec![0.0; p];
                passes::norms(&x1, d, &mut n3);
                assert_eq!(bits(&n1), bits(&n3), "norms d {d} p {p}");
            }
        }
    }

    fn bits(v: &[f64]) -> Vec<u64> {
        v.iter().map(|x| x.to_bits()).collect()
    }
}
