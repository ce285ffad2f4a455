//! Finite-sum least-squares regression `f(x) = (1/N) Σ_i f_i(x)`, `f_i(x) = ½ (a_iᵀ x − b_i)²`.
//!
//! Per sample: `∇f_i = a_i (a_iᵀx − b_i)`, `∇²f_i = a_i a_iᵀ`. In aggregate
//! `f = ½ xᵀHx − qᵀx + c` with `H = AᵀA/N`, `q = Aᵀb/N`, `c = ‖b‖²/(2N)`, so batched gradients
//! are one matrix product `H X − q 1ᵀ`. The per-sample Hessians differ (`H_γ ≠ H`), which is what
//! makes the subsampling oracle's noise genuinely state dependent.
//!
//! Data from a seed: `a_i ~ N(0, I_d)`, `x* ~ N(0, I_d/d)`, `b_i = a_iᵀx* + noise · ε_i`.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

use super::{FiniteSum, Landscape};
use crate::error::{Error, Result};
use crate::linalg::{quad_form, square_times, Matrix, Vector};

/// Least-squares regression with `N` samples in dimension `d`.
#[derive(Debug, Clone)]
pub struct LeastSquares {
    /// Design matrix `A` (`N × d`), stored transposed (`d × N`) so each sample is a column.
    at: Matrix,
    b: Vector,
    h: Matrix,
    q: Vector,
    c: f64,
    label: String,
}

impl LeastSquares {
    /// From explicit data: `a` is `N × d`, `b` has length `N`.
    pub fn new(a: Matrix, b: Vector) -> Result<Self> {
        let (n, d) = (a.nrows(), a.ncols());
        if n == 0 || d == 0 {
            return Err(Error::config("landscape.n_samples", n, "must be ≥ 1"));
        }
        if b.len() != n {
            return Err(Error::Dimension {
                what: "landscape targets b".into(),
                expected: n,
                got: b.len(),
            });
        }
        let nf = n as f64;
        let h = a.transpose() * &a / nf;
        let q = a.transpose() * &b / nf;
        let c = b.norm_squared() / (2.0 * nf);
        Ok(Self {
            at: a.transpose(),
            b,
            h,
            q,
            c,
            label: format!("least squares (N = {n}, d = {d})"),
        })
    }

    /// Synthetic data from `seed` (see module docs).
    pub fn synthetic(n: usize, d: usize, noise: f64, seed: u64) -> Result<Self> {
        if n == 0 {
            return Err(Error::config("landscape.n_samples", n, "must be ≥ 1"));
        }
        if d == 0 {
            return Err(Error::config("landscape.dim", d, "must be ≥ 1"));
        }
        if !(noise.is_finite() && noise >= 0.0) {
            return Err(Error::config(
                "landscape.noise",
                noise,
                "must be finite and ≥ 0",
            ));
        }
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut a = Matrix::zeros(n, d);
        for i in 0..n {
            for j in 0..d {
                a[(i, j)] = StandardNormal.sample(&mut rng);
            }
        }
        let scale = 1.0 / (d as f64).sqrt();
        let xstar = Vector::from_fn(d, |_, _| -> f64 {
            let z: f64 = StandardNormal.sample(&mut rng);
            scale * z
        });
        let eps = Vector::from_fn(n, |_, _| -> f64 { StandardNormal.sample(&mut rng) });
        let b = &a * xstar + eps * noise;
        let mut s = Self::new(a, b)?;
        s.label = format!("least squares (N = {n}, d = {d}, noise {noise}, seed {seed})");
        Ok(s)
    }

    fn sample(&self, i: usize) -> &[f64] {
        let d = self.at.nrows();
        &self.at.as_slice()[i * d..(i + 1) * d]
    }

    fn residual(&self, i: usize, x: &[f64]) -> f64 {
        self.sample(i)
            .iter()
            .zip(x)
            .map(|(a, x)| a * x)
            .sum::<f64>()
            - self.b[i]
    }

    /// The design transposed, `Aᵀ` (`d × N`, sample `i` is column `i`).
    pub fn design_t(&self) -> &Matrix {
        &self.at
    }

    /// The targets `b` (length `N`).
    pub fn targets(&self) -> &Vector {
        &self.b
    }

    /// The constant Hessian `H = AᵀA/N`.
    pub fn h(&self) -> &Matrix {
        &self.h
    }
}

impl Landscape for LeastSquares {
    fn dim(&self) -> usize {
        self.at.nrows()
    }
    fn loss(&self, x: &[f64]) -> f64 {
        let n = self.n_samples();
        (0..n).map(|i| self.sample_loss(i, x)).sum::<f64>() / n as f64
    }
    fn grad_into(&self, x: &[f64], out: &mut [f64]) {
        let d = self.dim();
        for (i, o) in out.iter_mut().enumerate() {
            *o = (0..d).map(|j| self.h[(i, j)] * x[j]).sum::<f64>() - self.q[i];
        }
    }
    fn hess_vec_into(&self, _x: &[f64], v: &[f64], out: &mut [f64]) {
        let d = self.dim();
        for (i, o) in out.iter_mut().enumerate() {
            *o = (0..d).map(|j| self.h[(i, j)] * v[j]).sum::<f64>();
        }
    }
    fn hessian(&self, _x: &[f64]) -> Matrix {
        self.h.clone()
    }
    fn describe(&self) -> String {
        self.label.clone()
    }
    fn loss_batch(&self, xs: &Matrix, out: &mut [f64]) {
        // f = ½ xᵀHx − qᵀx + c
        let d = self.dim();
        for (j, o) in out.iter_mut().enumerate().take(xs.ncols()) {
            let x = &xs.as_slice()[j * d..(j + 1) * d];
            let quad = quad_form(&self.h, x);
            let lin: f64 = x.iter().zip(self.q.iter()).map(|(x, q)| x * q).sum();
            *o = 0.5 * quad - lin + self.c;
        }
    }
    fn grad_batch(&self, xs: &Matrix, out: &mut Matrix) {
        square_times(&self.h, xs, out);
        for mut col in out.column_iter_mut() {
            col -= &self.q;
        }
    }
    fn hess_vec_batch(&self, _xs: &Matrix, vs: &Matrix, out: &mut Matrix) {
        square_times(&self.h, vs, out);
    }
    fn affine_gradient(&self) -> bool {
        true
    }
    fn as_finite_sum(&self) -> Option<&dyn FiniteSum> {
        Some(self)
    }
}

impl FiniteSum for LeastSquares {
    fn n_samples(&self) -> usize {
        self.b.len()
    }
    fn sample_loss(&self, i: usize, x: &[f64]) -> f64 {
        0.5 * self.residual(i, x).powi(2)
    }
    fn sample_grad_into(&self, i: usize, x: &[f64], out: &mut [f64]) {
        let r = self.residual(i, x);
        for (o, a) in out.iter_mut().zip(self.sample(i)) {
            *o = a * r;
        }
    }
    fn sample_hess_vec_into(&self, i: usize, _x: &[f64], v: &[f64], out: &mut [f64]) {
        let a = self.sample(i);
        let av: f64 = a.iter().zip(v).map(|(a, v)| a * v).sum();
        for (o, a) in out.iter_mut().zip(a) {
            *o = a * av;
        }
    }
    /// `out = (1/B) Σ_{i∈γ} a_i (a_iᵀx − b_i)` with slice loops and no scratch, by fused
    /// multiply–adds: the residual's dot product in eight partial sums ([`dot`]), the sum over
    /// the batch in batch order. It may differ from [`FiniteSum::sample_grad_into`]'s
    /// sequential sum in the last bits.
    fn batch_grad_into(&self, batch: &[u32], x: &[f64], out: &mut [f64], _tmp: &mut [f64]) {
        let (at, b) = (self.at.as_slice(), self.b.as_slice());
        #[cfg(target_arch = "x86_64")]
        {
            if fma::detected() {
                // SAFETY: AVX2 and FMA were detected at run time.
                return unsafe { fma::batch_grad(at, b, batch, x, out) };
            }
        }
        batch_grad(at, b, batch, x, out)
    }
    /// The same per column, by an AVX-512 kernel where the processor has one, else the
    /// portable code compiled for AVX2 + FMA where it has those. Every path performs the same
    /// operations in the same order (a fused multiply–add is one correctly rounded operation on
    /// every processor, `f64::mul_add` in the portable code), so the numbers are the same bit
    /// for bit (test `batch_gradient_block_matches_columns`).
    fn batch_grad_block(&self, batches: &[u32], xs: &[f64], out: &mut [f64], _tmp: &mut [f64]) {
        let (at, b) = (self.at.as_slice(), self.b.as_slice());
        #[cfg(target_arch = "x86_64")]
        {
            if avx512::detected() {
                // SAFETY: AVX-512F/VL, AVX2 and FMA were detected at run time; without `SGD`
                // the kernel only reads `xs`.
                return unsafe {
                    avx512::block::<false>(
                        at,
                        b,
                        batches,
                        0.0,
                        xs.as_ptr().cast_mut(),
                        xs.len(),
                        out,
                        &mut [],
                    )
                };
            }
            if fma::detected() {
                // SAFETY: AVX2 and FMA were detected at run time.
                return unsafe { fma::batch_grad_block(at, b, batches, xs, out) };
            }
        }
        batch_grad_block(at, b, batches, xs, out)
    }
    /// `x ← x − η g` with `g` the mini-batch gradient, fused into the gradient's pass by the
    /// AVX-512 kernel (all `B` residuals first, then one pass `x += (−η)((Σ a_i r_i)/B)` with
    /// the sum in batch order, and each column's `‖x‖²` from the registers of the update, for
    /// the divergence check); elsewhere the block gradient and then the update (no norms).
    /// The same numbers either way (test `sgd_step_block_matches_gradient_then_update`).
    fn sgd_step_block(
        &self,
        batches: &[u32],
        eta: f64,
        xs: &mut [f64],
        g: &mut [f64],
        tmp: &mut [f64],
        norm2: &mut [f64],
    ) -> bool {
        #[cfg(target_arch = "x86_64")]
        {
            if avx512::detected() {
                let (at, b) = (self.at.as_slice(), self.b.as_slice());
                let (ptr, len) = (xs.as_mut_ptr(), xs.len());
                // SAFETY: AVX-512F/VL, AVX2 and FMA were detected at run time.
                unsafe { avx512::block::<true>(at, b, batches, eta, ptr, len, g, norm2) };
                return true;
            }
        }
        self.batch_grad_block(batches, xs, g, tmp);
        super::sgd_update(xs, g, eta);
        false
    }
}

/// [`batch_grad`] for every column of a block (`xs`, `out`: `d × P`, `d = at.len() / N`).
#[inline(always)]
fn batch_grad_block(at: &[f64], b: &[f64], batches: &[u32], xs: &[f64], out: &mut [f64]) {
    let d = at.len() / b.len();
    let p = xs.len() / d;
    if p == 0 {
        return;
    }
    let bsz = batches.len() / p;
    for ((x, o), batch) in xs
        .chunks_exact(d)
        .zip(out.chunks_exact_mut(d))
        .zip(batches.chunks_exact(bsz))
    {
        batch_grad(at, b, batch, x, o);
    }
}

/// The least-squares mini-batch gradient (see [`LeastSquares`]'s `batch_grad_into`): `at` is
/// `Aᵀ` column-major (`d × N`), `d = x.len()`. Per sample of the batch, in batch order: the
/// residual `r_i = a_iᵀx − b_i` ([`dot`]), then `o_k ← a_ik r_i + o_k` (one fused
/// multiply–add per coordinate, from `o = 0`); finally `o ← o · (1/B)`. This is the reference
/// order every SIMD kernel reproduces.
#[inline(always)]
fn batch_grad(at: &[f64], b: &[f64], batch: &[u32], x: &[f64], out: &mut [f64]) {
    let d = x.len();
    out.fill(0.0);
    for &i in batch {
        let a = &at[i as usize * d..(i as usize + 1) * d];
        let r = dot(a, x) - b[i as usize];
        for (o, p) in out.iter_mut().zip(a) {
            *o = p.mul_add(r, *o);
        }
    }
    let scale = 1.0 / batch.len() as f64;
    for o in out.iter_mut() {
        *o *= scale;
    }
}

/// Partial sums of [`dot`]: the doubles of one 512-bit register.
const LANES: usize = 8;

/// `aᵀx` in eight partial sums: coordinate `k` goes to sum `s_{k mod 8}` by a fused
/// multiply–add (`s ← a_k x_k + s`, one rounding), then
/// `((s₀ + s₄) + (s₂ + s₆)) + ((s₁ + s₅) + (s₃ + s₇))` — the order of a 512-bit register
/// halved twice, which the AVX-512 kernel follows.
#[inline(always)]
#[allow(clippy::needless_range_loop)] // lane `l` of the sums and of the chunk
fn dot(a: &[f64], x: &[f64]) -> f64 {
    let mut s = [0.0; LANES];
    let (mut ac, mut xc) = (a.chunks_exact(LANES), x.chunks_exact(LANES));
    for (p, q) in ac.by_ref().zip(xc.by_ref()) {
        for l in 0..LANES {
            s[l] = p[l].mul_add(q[l], s[l]);
        }
    }
    for (l, (p, q)) in ac.remainder().iter().zip(xc.remainder()).enumerate() {
        s[l] = p.mul_add(*q, s[l]);
    }
    ((s[0] + s[4]) + (s[2] + s[6])) + ((s[1] + s[5]) + (s[3] + s[7]))
}

#[cfg(target_arch = "x86_64")]
mod fma {
    //! The portable [`super::batch_grad`] and [`super::batch_grad_block`] compiled for AVX2 and
    //! FMA: `f64::mul_add` becomes one instruction instead of a library call, the loops
    //! vectorise, and the operations (hence the bits) are those of the portable code.

    /// Whether the processor has AVX2 and FMA.
    #[inline]
    pub(super) fn detected() -> bool {
        std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
    }

    /// # Safety
    /// The processor must have AVX2 and FMA.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn batch_grad(
        at: &[f64],
        b: &[f64],
        batch: &[u32],
        x: &[f64],
        out: &mut [f64],
    ) {
        super::batch_grad(at, b, batch, x, out)
    }

    /// # Safety
    /// The processor must have AVX2 and FMA.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn batch_grad_block(
        at: &[f64],
        b: &[f64],
        batches: &[u32],
        xs: &[f64],
        out: &mut [f64],
    ) {
        super::batch_grad_block(at, b, batches, xs, out)
    }
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    //! The portable `batch_grad_block` (and `sgd_step_block`: the gradient, then
    //! `x += (−η) g`), operation for operation, with AVX-512 passes: per path, up to eight
    //! residuals `r_i = a_iᵀx − b_i` first (each dot product in one 512-bit register of eight
    //! partial sums by fused multiply–adds, halved twice as the portable `dot` sums them; a
    //! last chunk of `d mod 8` coordinates masked, or in 256-bit operations on the low half
    //! when it has at most four), then one pass over the coordinates, eight at a time, that
    //! sums `a_i r_i` by fused multiply–adds in batch order starting from `0`, scales by `1/B`
    //! and either stores `g` or updates `x` in place (and sums its `‖x‖²` for the divergence
    //! check, in `optim::norm_sq`'s order). Batches of more than eight samples
    //! accumulate the sum in `out` chunk by chunk (the same order) and scale/update in a last
    //! pass. The numbers are those of the portable code bit for bit (tests
    //! `batch_gradient_block_matches_columns`, `sgd_step_block_matches_gradient_then_update`).
    // The kernels take their pointers, sizes and step parameters one by one (no struct on
    // the hot path); a chunk index `q` addresses registers, masks and memory at once.
    #![allow(clippy::too_many_arguments, clippy::needless_range_loop)]
    use std::arch::x86_64::*;

    /// Samples per residual chunk.
    const CHUNK: usize = 8;

    /// Whether the processor has what [`block`] needs.
    #[inline]
    pub(super) fn detected() -> bool {
        std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("avx512vl")
            && std::arch::is_x86_feature_detected!("avx2")
            && std::arch::is_x86_feature_detected!("fma")
    }

    /// `SGD = false`: `out = g` (`d × P`), `xs` only read, `norm2` empty. `SGD = true`:
    /// `xs ← xs − η g` and `norm2[j] = ‖x_j‖²` of the updated column, summed as
    /// `crate::optim::norm_sq` (from the registers of the update); `out` is scratch (written
    /// only for batches of more than [`CHUNK`] samples).
    ///
    /// # Safety
    /// The processor must have AVX-512F/VL, AVX2 and FMA ([`detected`]); `xs` points to `len`
    /// values (writable when `SGD`), `out.len() == len`.
    #[target_feature(enable = "avx2,fma,avx512f,avx512vl")]
    pub(super) unsafe fn block<const SGD: bool>(
        at: &[f64],
        b: &[f64],
        batches: &[u32],
        eta: f64,
        xs: *mut f64,
        len: usize,
        out: &mut [f64],
        norm2: &mut [f64],
    ) {
        let n = b.len();
        let d = at.len() / n;
        let p = len / d;
        if p == 0 {
            return;
        }
        let bsz = batches.len() / p;
        assert!(at.len() == n * d && out.len() == len && len == p * d);
        assert!(bsz >= 1 && batches.len() == bsz * p);
        assert_eq!(norm2.len(), if SGD { p } else { 0 }, "one norm per column");
        let n2 = norm2.as_mut_ptr();
        // One vectorised pass (a `max`), not a branch per index: this runs every block-step.
        let max_index = batches.iter().copied().max().unwrap_or(0);
        assert!((max_index as usize) < n, "sample index out of range");
        let small = bsz <= CHUNK;
        let kc = d.div_ceil(8);
        // The last chunk of eight has at most four coordinates.
        let half = d - 8 * (kc - 1) <= 4;
        let at = at.as_ptr();
        let mut j = 0;
        // Groups of paths at once where `B ∈ {2, 4, 8}` and `d ≤ 32` (independent chains
        // interleaved instruction by instruction), then the remaining paths one at a time.
        macro_rules! groups {
            ($p:literal, $nb:literal) => {
                while j + $p <= p {
                    let mut x = [xs; $p];
                    let mut o = [out.as_mut_ptr(); $p];
                    let mut bt: [&[u32]; $p] = [&[]; $p];
                    for q in 0..$p {
                        x[q] = xs.add((j + q) * d);
                        o[q] = out.as_mut_ptr().add((j + q) * d);
                        bt[q] = &batches[(j + q) * bsz..(j + q + 1) * bsz];
                    }
                    // SAFETY: as for `column_small` below, for each of the paths.
                    unsafe {
                        paths_dispatch::<SGD, $nb, $p>(kc, half, at, b, bt, eta, x, o, n2.add(j), d)
                    };
                    j += $p;
                }
            };
        }
        if kc <= 4 {
            match bsz {
                2 => groups!(4, 2),
                4 => groups!(4, 4),
                8 => groups!(2, 8),
                _ => {}
            }
        }
        while j < p {
            let batch = &batches[j * bsz..(j + 1) * bsz];
            let (x, o) = (xs.add(j * d), out.as_mut_ptr().add(j * d));
            // SAFETY: the features are enabled; column `j < p` of `xs` and `out` has `d`
            // entries; every row `i < n` lies in `at` (checked above); `d ≤ 8 KC` and
            // `B ≤ CHUNK` where `column_small` is called.
            unsafe {
                match kc {
                    1 if small => column_small::<SGD, 1>(at, b, batch, eta, x, o, n2.add(j), d),
                    2 if small => column_small::<SGD, 2>(at, b, batch, eta, x, o, n2.add(j), d),
                    3 if small => column_small::<SGD, 3>(at, b, batch, eta, x, o, n2.add(j), d),
                    4 if small => column_small::<SGD, 4>(at, b, batch, eta, x, o, n2.add(j), d),
                    _ => column::<SGD>(at, b, batch, eta, x, o, n2.add(j), d),
                }
            };
            j += 1;
        }
    }

    /// [`paths_fixed`] with `KC = min(kc, 4)` and `HALF = half` chosen at run time.
    ///
    /// # Safety
    /// As [`paths_fixed`].
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    unsafe fn paths_dispatch<const SGD: bool, const NB: usize, const P: usize>(
        kc: usize,
        half: bool,
        at: *const f64,
        b: &[f64],
        batches: [&[u32]; P],
        eta: f64,
        x: [*mut f64; P],
        o: [*mut f64; P],
        n2: *mut f64,
        d: usize,
    ) {
        macro_rules! go {
            ($kc:literal, $half:literal) => {
                paths_fixed::<SGD, $kc, $half, NB, P>(at, b, batches, eta, x, o, n2, d)
            };
        }
        match (kc, half) {
            (1, false) => go!(1, false),
            (1, true) => go!(1, true),
            (2, false) => go!(2, false),
            (2, true) => go!(2, true),
            (3, false) => go!(3, false),
            (3, true) => go!(3, true),
            (_, false) => go!(4, false),
            (_, true) => go!(4, true),
        }
    }

    /// [`column_small`] for `P` paths at once with a batch size `NB` known at compile time:
    /// the `P · NB` dot products and the `P · KC` sums of the pass are short independent
    /// chains in local registers that the processor overlaps. Per path, the same operations in
    /// the same order as [`column`]. `KC = ⌈d/8⌉`, so only the last chunk of eight
    /// coordinates can be partial (masked).
    #[inline(always)]
    unsafe fn paths_fixed<
        const SGD: bool,
        const KC: usize,
        const HALF: bool,
        const NB: usize,
        const P: usize,
    >(
        at: *const f64,
        b: &[f64],
        batches: [&[u32]; P],
        eta: f64,
        x: [*mut f64; P],
        o: [*mut f64; P],
        n2: *mut f64,
        d: usize,
    ) {
        let masks = tail_masks::<KC>(d);
        let mut rows = [[at; NB]; P];
        for p in 0..P {
            for c in 0..NB {
                rows[p][c] = at.add(batches[p][c] as usize * d);
            }
        }
        // Residuals: the portable eight-lane dot product of every (path, sample) pair; per path
        // the `NB` sums are independent chains in registers sharing each load of `x`.
        let mut r = [[0.0; NB]; P];
        for p in 0..P {
            let mut acc = [_mm512_setzero_pd(); NB];
            let mut tail = [_mm256_setzero_pd(); NB];
            for q in 0..KC {
                let k = 8 * q;
                if q + 1 < KC {
                    let xv = _mm512_loadu_pd(x[p].add(k));
                    for c in 0..NB {
                        acc[c] = _mm512_fmadd_pd(_mm512_loadu_pd(rows[p][c].add(k)), xv, acc[c]);
                    }
                } else if HALF {
                    // At most four coordinates left: they go to sums 0–3, the low half, in
                    // 256-bit operations (half the work of a masked 512-bit one); the
                    // reduction's first step adds the high half to it.
                    let m = masks[q];
                    let xv = load4(m, x[p].add(k));
                    for c in 0..NB {
                        let a = load4(m, rows[p][c].add(k));
                        let lo = _mm512_castpd512_pd256(acc[c]);
                        tail[c] = _mm256_mask3_fmadd_pd(a, xv, lo, m);
                    }
                } else {
                    let m = masks[q];
                    let xv = _mm512_maskz_loadu_pd(m, x[p].add(k));
                    for c in 0..NB {
                        let a = _mm512_maskz_loadu_pd(m, rows[p][c].add(k));
                        acc[c] = _mm512_mask3_fmadd_pd(a, xv, acc[c], m);
                    }
                }
            }
            for c in 0..NB {
                let lo = if HALF {
                    tail[c]
                } else {
                    _mm512_castpd512_pd256(acc[c])
                };
                r[p][c] = reduce_halves(lo, _mm512_extractf64x4_pd::<1>(acc[c]))
                    - b[batches[p][c] as usize];
            }
        }
        // One pass per eight coordinates: Σ a_i r_i in batch order from 0, the scale, the
        // update (again one local chain per path and chunk).
        let scale = _mm512_set1_pd(1.0 / NB as f64);
        let minus_eta = _mm512_set1_pd(-eta);
        for p in 0..P {
            let mut xn = [_mm512_setzero_pd(); KC];
            for q in 0..KC {
                // Full chunks unmasked (known at compile time), the last one by its mask.
                let m = if q + 1 < KC { 0xFF } else { masks[q] };
                if HALF && q + 1 == KC {
                    let mut acc = _mm256_setzero_pd();
                    for c in 0..NB {
                        let a = load4(m, rows[p][c].add(8 * q));
                        acc = _mm256_fmadd_pd(a, _mm256_set1_pd(r[p][c]), acc);
                    }
                    let (x, o) = (x[p].add(8 * q), o[p].add(8 * q));
                    xn[q] =
                        _mm512_zextpd256_pd512(finish4::<SGD>(acc, 1.0 / NB as f64, -eta, x, o, m));
                    continue;
                }
                let mut acc = _mm512_setzero_pd();
                for c in 0..NB {
                    let a = load(m, rows[p][c].add(8 * q));
                    acc = _mm512_fmadd_pd(a, _mm512_set1_pd(r[p][c]), acc);
                }
                xn[q] = finish::<SGD>(acc, scale, minus_eta, x[p].add(8 * q), o[p].add(8 * q), m);
            }
            if SGD {
                *n2.add(p) = norm_sq::<KC>(&xn, d);
            }
        }
    }

    /// [`column`] for `B ≤ CHUNK` and `d ≤ 8 KC`: the `KC` eight-wide accumulators stay in
    /// registers and each sample's term is added to all of them (independent chains), instead
    /// of one coordinate chunk after the other.
    #[inline(always)]
    unsafe fn column_small<const SGD: bool, const KC: usize>(
        at: *const f64,
        b: &[f64],
        batch: &[u32],
        eta: f64,
        x: *mut f64,
        o: *mut f64,
        n2: *mut f64,
        d: usize,
    ) {
        let masks = tail_masks::<KC>(d);
        let mut rows = [at; CHUNK];
        let mut r = [0.0; CHUNK];
        for (c, &i) in batch.iter().enumerate() {
            rows[c] = at.add(i as usize * d);
            r[c] = dot(rows[c], x, d) - b[i as usize];
        }
        let mut acc = [_mm512_setzero_pd(); KC];
        for c in 0..batch.len() {
            let rc = _mm512_set1_pd(r[c]);
            for q in 0..KC {
                let a = _mm512_maskz_loadu_pd(masks[q], rows[c].add(8 * q));
                acc[q] = _mm512_fmadd_pd(a, rc, acc[q]);
            }
        }
        let scale = _mm512_set1_pd(1.0 / batch.len() as f64);
        let minus_eta = _mm512_set1_pd(-eta);
        let mut xn = [_mm512_setzero_pd(); KC];
        for q in 0..KC {
            xn[q] = finish::<SGD>(
                acc[q],
                scale,
                minus_eta,
                x.add(8 * q),
                o.add(8 * q),
                masks[q],
            );
        }
        if SGD {
            *n2 = norm_sq::<KC>(&xn, d);
        }
    }

    #[inline(always)]
    unsafe fn column<const SGD: bool>(
        at: *const f64,
        b: &[f64],
        batch: &[u32],
        eta: f64,
        x: *mut f64,
        o: *mut f64,
        n2: *mut f64,
        d: usize,
    ) {
        let scale = _mm512_set1_pd(1.0 / batch.len() as f64);
        let minus_eta = _mm512_set1_pd(-eta);
        let single = batch.len() <= CHUNK;
        let mask = |k: usize| -> __mmask8 {
            if d - k >= 8 {
                0xFF
            } else {
                (1u8 << (d - k)) - 1
            }
        };
        let mut first = true;
        for chunk in batch.chunks(CHUNK) {
            let mut rows = [at; CHUNK];
            let mut r = [0.0; CHUNK];
            for (c, &i) in chunk.iter().enumerate() {
                rows[c] = at.add(i as usize * d);
                r[c] = dot(rows[c], x, d) - b[i as usize];
            }
            let mut k = 0;
            while k < d {
                let m = mask(k);
                let mut acc = if first {
                    _mm512_setzero_pd()
                } else {
                    _mm512_maskz_loadu_pd(m, o.add(k))
                };
                for c in 0..chunk.len() {
                    let a = _mm512_maskz_loadu_pd(m, rows[c].add(k));
                    acc = _mm512_fmadd_pd(a, _mm512_set1_pd(r[c]), acc);
                }
                if single {
                    finish::<SGD>(acc, scale, minus_eta, x.add(k), o.add(k), m);
                } else {
                    _mm512_mask_storeu_pd(o.add(k), m, acc);
                }
                k += 8;
            }
            first = false;
        }
        if !single {
            let mut k = 0;
            while k < d {
                let m = mask(k);
                let acc = _mm512_maskz_loadu_pd(m, o.add(k));
                finish::<SGD>(acc, scale, minus_eta, x.add(k), o.add(k), m);
                k += 8;
            }
        }
        if SGD {
            *n2 = crate::optim::norm_sq(std::slice::from_raw_parts(x, d));
        }
    }

    /// The load/store masks of the `KC` eight-wide chunks of `d ≤ 8 KC` coordinates.
    #[inline(always)]
    fn tail_masks<const KC: usize>(d: usize) -> [__mmask8; KC] {
        let mut masks = [0xFF; KC];
        for (q, m) in masks.iter_mut().enumerate() {
            let left = d.saturating_sub(8 * q);
            if left < 8 {
                *m = (1u8 << left) - 1;
            }
        }
        masks
    }

    /// `g = acc · (1/B)`; then `x += (−η) g` (`SGD`, a multiplication and an addition as the
    /// portable update) or `o = g`. Returns what it stored (lanes outside `m`: zero).
    #[inline(always)]
    unsafe fn finish<const SGD: bool>(
        acc: __m512d,
        scale: __m512d,
        minus_eta: __m512d,
        x: *mut f64,
        o: *mut f64,
        m: __mmask8,
    ) -> __m512d {
        let g = _mm512_mul_pd(acc, scale);
        if SGD {
            let xv = load(m, x);
            let xn = _mm512_add_pd(xv, _mm512_mul_pd(minus_eta, g));
            store(x, m, xn);
            xn
        } else {
            store(o, m, g);
            g
        }
    }

    /// `‖x‖²` of the `d ≤ 8 KC` coordinates held in `v` (chunk `q`: coordinates `8q..8q+8`),
    /// summed exactly as `crate::optim::norm_sq`: eight partial sums (`s ← s + x²`, a
    /// multiplication and an addition, from `0`; lanes past `d` add an exact zero), then
    /// `((s₀ + s₄) + (s₂ + s₆)) + ((s₁ + s₅) + (s₃ + s₇))`.
    #[inline(always)]
    unsafe fn norm_sq<const KC: usize>(v: &[__m512d; KC], d: usize) -> f64 {
        let mut acc = _mm512_setzero_pd();
        for (q, &vq) in v.iter().enumerate() {
            let left = d.saturating_sub(8 * q);
            if left == 0 {
                break;
            }
            let m: __mmask8 = if left >= 8 {
                0xFF
            } else {
                ((1u16 << left) - 1) as __mmask8
            };
            acc = _mm512_add_pd(acc, _mm512_maskz_mul_pd(m, vq, vq));
        }
        reduce(acc)
    }

    /// The lanes `m` of eight doubles at `p` (the others zero); unmasked for a full chunk.
    #[inline(always)]
    unsafe fn load(m: __mmask8, p: *const f64) -> __m512d {
        if m == 0xFF {
            _mm512_loadu_pd(p)
        } else {
            _mm512_maskz_loadu_pd(m, p)
        }
    }

    /// Stores the lanes `m` of `v` at `p`: a full or a 256-bit store where the mask is one,
    /// a masked store otherwise. (A masked store blocks later loads that overlap its 64 bytes
    /// until it retires — on Zen 4 that stalled the next column's first load by the width
    /// of the pass — so `d ≡ 4 (mod 8)`, e.g. `d = 20`, avoids it.)
    #[inline(always)]
    unsafe fn store(p: *mut f64, m: __mmask8, v: __m512d) {
        match m {
            0xFF => _mm512_storeu_pd(p, v),
            0x0F => _mm256_storeu_pd(p, _mm512_castpd512_pd256(v)),
            _ => _mm512_mask_storeu_pd(p, m, v),
        }
    }

    /// The lanes `m ⊆ 0x0F` of four doubles at `p` (the others zero).
    #[inline(always)]
    unsafe fn load4(m: __mmask8, p: *const f64) -> __m256d {
        if m == 0x0F {
            _mm256_loadu_pd(p)
        } else {
            _mm256_maskz_loadu_pd(m, p)
        }
    }

    /// [`finish`] for a last chunk of at most four coordinates (`m ⊆ 0x0F`), in 256 bits.
    #[inline(always)]
    unsafe fn finish4<const SGD: bool>(
        acc: __m256d,
        scale: f64,
        minus_eta: f64,
        x: *mut f64,
        o: *mut f64,
        m: __mmask8,
    ) -> __m256d {
        let g = _mm256_mul_pd(acc, _mm256_set1_pd(scale));
        let (v, dst) = if SGD {
            let xv = load4(m, x);
            (
                _mm256_add_pd(xv, _mm256_mul_pd(_mm256_set1_pd(minus_eta), g)),
                x,
            )
        } else {
            (g, o)
        };
        if m == 0x0F {
            _mm256_storeu_pd(dst, v);
        } else {
            _mm256_mask_storeu_pd(dst, m, v);
        }
        v
    }

    /// [`reduce`] of the register whose low and high halves are `lo` and `hi`.
    #[inline(always)]
    unsafe fn reduce_halves(lo: __m256d, hi: __m256d) -> f64 {
        let s4 = _mm256_add_pd(lo, hi);
        let s2 = _mm_add_pd(_mm256_castpd256_pd128(s4), _mm256_extractf128_pd::<1>(s4));
        _mm_cvtsd_f64(s2) + _mm_cvtsd_f64(_mm_unpackhi_pd(s2, s2))
    }

    /// The eight partial sums of one register added as the portable `dot` does:
    /// `((s₀ + s₄) + (s₂ + s₆)) + ((s₁ + s₅) + (s₃ + s₇))`.
    #[inline(always)]
    unsafe fn reduce(v: __m512d) -> f64 {
        let s4 = _mm256_add_pd(_mm512_castpd512_pd256(v), _mm512_extractf64x4_pd::<1>(v));
        let s2 = _mm_add_pd(_mm256_castpd256_pd128(s4), _mm256_extractf128_pd::<1>(s4));
        _mm_cvtsd_f64(s2) + _mm_cvtsd_f64(_mm_unpackhi_pd(s2, s2))
    }

    /// `aᵀx` as the portable `dot` (any `d`): full chunks of eight, then the masked tail
    /// (masked-off sums keep their value: merge masking, not a `+ 0`).
    #[inline(always)]
    unsafe fn dot(a: *const f64, x: *const f64, d: usize) -> f64 {
        let mut acc = _mm512_setzero_pd();
        let mut k = 0;
        while k + 8 <= d {
            acc = _mm512_fmadd_pd(_mm512_loadu_pd(a.add(k)), _mm512_loadu_pd(x.add(k)), acc);
            k += 8;
        }
        if k < d {
            let m = (1u8 << (d - k)) - 1;
            let (av, xv) = (
                _mm512_maskz_loadu_pd(m, a.add(k)),
                _mm512_maskz_loadu_pd(m, x.add(k)),
            );
            acc = _mm512_mask3_fmadd_pd(av, xv, acc, m);
        }
        reduce(acc)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::landscape::fd;

    #[test]
    fn derivatives_match_finite_differences() {
        let ls = LeastSquares::synthetic(12, 4, 0.3, 5).unwrap();
        let x = [0.2, -0.4, 1.1, 0.0];
        assert!(fd::grad_error(&ls, &x, 1e-5) < 1e-7);
        assert!(fd::hess_error(&ls, &x, 1e-5) < 1e-7);
    }

    #[test]
    fn per_sample_derivatives_sum_to_full() {
        let ls = LeastSquares::synthetic(9, 3, 0.5, 1).unwrap();
        let x = [0.7, -0.2, 0.4];
        let v = [1.0, 2.0, -1.0];
        let (mut g, mut gi, mut hv, mut hvi) = ([0.0; 3], [0.0; 3], [0.0; 3], [0.0; 3]);
        let (mut gs, mut hs, mut fs) = ([0.0; 3], [0.0; 3], 0.0);
        ls.grad_into(&x, &mut g);
        ls.hess_vec_into(&x, &v, &mut hv);
        for i in 0..9 {
            ls.sample_grad_into(i, &x, &mut gi);
            ls.sample_hess_vec_into(i, &x, &v, &mut hvi);
            fs += ls.sample_loss(i, &x) / 9.0;
            for k in 0..3 {
                gs[k] += gi[k] / 9.0;
                hs[k] += hvi[k] / 9.0;
            }
        }
        assert!((fs - ls.loss(&x)).abs() < 1e-12);
        let mut lb = [0.0];
        ls.loss_batch(&Matrix::from_column_slice(3, 1, &x), &mut lb);
        assert!((lb[0] - fs).abs() < 1e-12);
        for k in 0..3 {
            assert!((gs[k] - g[k]).abs() < 1e-12);
            assert!((hs[k] - hv[k]).abs() < 1e-12);
        }
    }

    /// The tight mini-batch gradient agrees with the default (sum of per-sample gradients) to
    /// rounding: the two sum the residual's dot product in different orders, so they may differ
    /// by a few ulp of the terms (relative 1e-13 is ~500 ulp, far above that, far below any
    /// real error).
    #[test]
    fn batch_gradient_matches_per_sample_sum() {
        let ls = LeastSquares::synthetic(11, 7, 0.4, 9).unwrap();
        let x = [0.3, -1.2, 0.8, 0.05, -0.4, 2.0, 0.7];
        for batch in [&[3u32][..], &[0, 10, 4], &[5, 1, 9, 2, 7, 6]] {
            let (mut fast, mut slow, mut tmp, mut gi) = ([0.0; 7], [0.0; 7], [0.0; 7], [0.0; 7]);
            ls.batch_grad_into(batch, &x, &mut fast, &mut tmp);
            for &i in batch {
                ls.sample_grad_into(i as usize, &x, &mut gi);
                for k in 0..7 {
                    slow[k] += gi[k] / batch.len() as f64;
                }
            }
            for k in 0..7 {
                assert!(
                    (fast[k] - slow[k]).abs() < 1e-13 * (1.0 + slow[k].abs()),
                    "{batch:?}: {fast:?} vs {slow:?}"
                );
            }
        }
    }

    /// Shapes that reach every branch of the SIMD kernels: `d` a multiple of 8, of 4 only,
    /// neither, below 4, above 32; a last chunk of eight that is full, half (`d ≡ 4 mod 8`),
    /// shorter than half (masked 256-bit) or longer (masked 512-bit); batches of 1, 2, 4, 8
    /// (the fixed-size kernels, with a tail of single paths since P = 5), others below 8,
    /// above 8.
    const SHAPES: [(usize, usize); 12] = [
        (18, 4),
        (14, 8),
        (33, 4),
        (40, 2),
        (10, 3),
        (20, 4),
        (7, 1),
        (16, 8),
        (20, 11),
        (3, 5),
        (12, 17),
        (20, 2),
    ];

    fn block_inputs(d: usize, b: usize) -> (LeastSquares, Vec<f64>, Vec<u32>) {
        let n = 19;
        let ls = LeastSquares::synthetic(n, d, 0.4, 4).unwrap();
        let p = 5;
        let xs: Vec<f64> = (0..d * p).map(|k| (k as f64 * 0.37).sin()).collect();
        let batches: Vec<u32> = (0..p * b).map(|k| (k * 7 % n) as u32).collect();
        (ls, xs, batches)
    }

    /// The block form (AVX-512 or AVX2 where available) gives the per-column numbers of the
    /// portable code bit for bit.
    #[test]
    fn batch_gradient_block_matches_columns() {
        for (d, b) in SHAPES {
            let (ls, xs, batches) = block_inputs(d, b);
            let p = xs.len() / d;
            let mut block = vec![0.0; d * p];
            let mut tmp = vec![0.0; d];
            ls.batch_grad_block(&batches, &xs, &mut block, &mut tmp);
            for j in 0..p {
                let (batch, x) = (&batches[j * b..(j + 1) * b], &xs[j * d..(j + 1) * d]);
                let mut col = vec![0.0; d];
                batch_grad(ls.at.as_slice(), ls.b.as_slice(), batch, x, &mut col);
                // The single-column form (compiled for AVX2 + FMA where available) too.
                let mut one = vec![0.0; d];
                ls.batch_grad_into(batch, x, &mut one, &mut tmp);
                for k in 0..d {
                    let got = block[j * d + k];
                    assert_eq!(col[k].to_bits(), got.to_bits(), "d {d}, B {b}, path {j}");
                    assert_eq!(col[k].to_bits(), one[k].to_bits(), "d {d}, B {b}, path {j}");
                }
            }
        }
    }

    /// The AVX2 + FMA build of the portable code (the kernel of processors without AVX-512)
    /// gives the portable numbers bit for bit, where this processor can run it.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn fma_build_matches_portable() {
        if !fma::detected() {
            return;
        }
        for (d, b) in SHAPES {
            let (ls, xs, batches) = block_inputs(d, b);
            let (at, bv) = (ls.at.as_slice(), ls.b.as_slice());
            let (mut want, mut got) = (vec![0.0; xs.len()], vec![0.0; xs.len()]);
            batch_grad_block(at, bv, &batches, &xs, &mut want);
            // SAFETY: AVX2 and FMA were detected.
            unsafe { fma::batch_grad_block(at, bv, &batches, &xs, &mut got) };
            for (w, g) in want.iter().zip(&got) {
                assert_eq!(w.to_bits(), g.to_bits(), "d {d}, B {b}");
            }
        }
    }

    /// The fused SGD step (AVX-512 where available) gives exactly the portable gradient
    /// followed by `x += (−η) g`, the numbers of the unfused engine.
    #[test]
    fn sgd_step_block_matches_gradient_then_update() {
        let eta = 0.037;
        for (d, b) in SHAPES {
            let (ls, xs, batches) = block_inputs(d, b);
            let p = xs.len() / d;
            let mut fused = xs.clone();
            let (mut g, mut tmp, mut norm2) = (vec![0.0; d * p], vec![0.0; d], vec![-1.0; p]);
            let normed = ls.sgd_step_block(&batches, eta, &mut fused, &mut g, &mut tmp, &mut norm2);
            for j in 0..p {
                // The norms the kernel reports are the divergence check's `norm_sq`, bit for bit.
                let col = &fused[j * d..(j + 1) * d];
                if normed {
                    let want = crate::optim::norm_sq(col);
                    assert_eq!(want.to_bits(), norm2[j].to_bits(), "d {d}, B {b}, path {j}");
                }
                let x = &xs[j * d..(j + 1) * d];
                let mut col = vec![0.0; d];
                let (at, bv) = (ls.at.as_slice(), ls.b.as_slice());
                batch_grad(at, bv, &batches[j * b..(j + 1) * b], x, &mut col);
                for k in 0..d {
                    let want = x[k] + -eta * col[k];
                    let got = fused[j * d + k];
                    assert_eq!(want.to_bits(), got.to_bits(), "d {d}, B {b}, path {j}");
                }
            }
        }
    }

    /// The dot products are fused multiply–adds (one rounding per term), in every form:
    /// `(−1)·1 + (1 + 2⁻³⁰)(1 − 2⁻³⁰)` in one partial sum (coordinates 0 and 8) is exactly
    /// `−2⁻⁶⁰` fused, but `0` if the product `1 − 2⁻⁶⁰` were rounded first (to 1).
    #[test]
    fn dot_products_are_fused() {
        let e = 2f64.powi(-30);
        for d in [9, 16, 20] {
            let (mut a, mut x) = (vec![0.0; d], vec![0.0; d]);
            (a[0], x[0], a[8], x[8]) = (-1.0, 1.0, 1.0 + e, 1.0 - e);
            assert_eq!(dot(&a, &x), -e * e, "portable, d {d}");
            // One sample, target 0: g = a (aᵀx), so g₀ = −aᵀx.
            let ls = LeastSquares::new(Matrix::from_row_slice(1, d, &a), Vector::zeros(1)).unwrap();
            let (mut g, mut tmp) = (x.clone(), vec![0.0; d]);
            ls.batch_grad_block(&[0], &x, &mut g, &mut tmp);
            assert_eq!(g[0], e * e, "block kernel, d {d}");
            ls.batch_grad_into(&[0], &x, &mut g, &mut tmp);
            assert_eq!(g[0], e * e, "single column, d {d}");
        }
    }

    #[test]
    fn per_sample_gradient_matches_finite_difference() {
        let ls = LeastSquares::synthetic(5, 3, 0.1, 2).unwrap();
        let x = [0.3, 0.1, -0.6];
        let mut g = [0.0; 3];
        ls.sample_grad_into(2, &x, &mut g);
        for k in 0..3 {
            let mut xp = x;
            xp[k] += 1e-6;
            let mut xm = x;
            xm[k] -= 1e-6;
            let fd = (ls.sample_loss(2, &xp) - ls.sample_loss(2, &xm)) / 2e-6;
            assert!((fd - g[k]).abs() < 1e-7);
        }
    }
}
