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
    /// `out = (1/B) Σ_{i∈γ} a_i (a_iᵀx − b_i)` with slice loops and no scratch; the
    /// residual's dot product is summed in four interleaved partial sums (so it pipelines and
    /// vectorises), so it may differ from [`FiniteSum::sample_grad_into`]'s sequential sum in
    /// the last bits.
    fn batch_grad_into(&self, batch: &[u32], x: &[f64], out: &mut [f64], _tmp: &mut [f64]) {
        batch_grad(self.at.as_slice(), self.b.as_slice(), batch, x, out);
    }
    /// The same per column, by an AVX-512 or AVX2 kernel where the processor has one (no fused
    /// multiply–add, the same operations in the same order, so the numbers are those of the
    /// portable code, bit for bit: test `batch_gradient_block_matches_columns`).
    fn batch_grad_block(&self, batches: &[u32], xs: &[f64], out: &mut [f64], _tmp: &mut [f64]) {
        let (at, b) = (self.at.as_slice(), self.b.as_slice());
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx512f")
                && std::arch::is_x86_feature_detected!("avx512vl")
            {
                // SAFETY: AVX-512F/VL (hence AVX2) were detected at run time; without `SGD` the
                // kernel only reads `xs`.
                return unsafe {
                    avx512::block::<false>(
                        at,
                        b,
                        batches,
                        0.0,
                        xs.as_ptr().cast_mut(),
                        xs.len(),
                        out,
                    )
                };
            }
            if std::arch::is_x86_feature_detected!("avx2") {
                // SAFETY: AVX2 was detected at run time.
                return unsafe { avx2::batch_grad_block(at, b, batches, xs, out) };
            }
        }
        batch_grad_block(at, b, batches, xs, out)
    }
    /// `x ← x − η g` with `g` the mini-batch gradient, fused into the gradient's pass by the
    /// AVX-512 kernel (all `B` residuals first, then one pass `x += (−η)((Σ a_i r_i)/B)` with
    /// the sum in batch order); elsewhere the block gradient and then the update. The same
    /// numbers either way (test `sgd_step_block_matches_gradient_then_update`).
    fn sgd_step_block(
        &self,
        batches: &[u32],
        eta: f64,
        xs: &mut [f64],
        g: &mut [f64],
        tmp: &mut [f64],
    ) {
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx512f")
                && std::arch::is_x86_feature_detected!("avx512vl")
            {
                let (at, b) = (self.at.as_slice(), self.b.as_slice());
                // SAFETY: AVX-512F/VL (hence AVX2) were detected at run time.
                return unsafe {
                    avx512::block::<true>(at, b, batches, eta, xs.as_mut_ptr(), xs.len(), g)
                };
            }
        }
        self.batch_grad_block(batches, xs, g, tmp);
        super::sgd_update(xs, g, eta);
    }
}

/// [`batch_grad`] for every column of a block (`xs`, `out`: `d × P`, `d = at.len() / N`).
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
/// `Aᵀ` column-major (`d × N`), `d = x.len()`. Samples are taken two at a time (two
/// independent residuals, one pass over `out` for both); each coordinate is summed in batch
/// order, as the per-sample default does. The AVX2 kernel (`avx2::batch_grad`) performs the
/// same operations in the same order, four coordinates per instruction.
fn batch_grad(at: &[f64], b: &[f64], batch: &[u32], x: &[f64], out: &mut [f64]) {
    let d = x.len();
    let row = |i: u32| &at[i as usize * d..(i as usize + 1) * d];
    out.fill(0.0);
    let mut pairs = batch.chunks_exact(2);
    for pair in pairs.by_ref() {
        let (a0, a1) = (row(pair[0]), row(pair[1]));
        let r0 = dot(a0, x) - b[pair[0] as usize];
        let r1 = dot(a1, x) - b[pair[1] as usize];
        for ((o, p), q) in out.iter_mut().zip(a0).zip(a1) {
            *o = (*o + p * r0) + q * r1;
        }
    }
    for &i in pairs.remainder() {
        let a = row(i);
        let r = dot(a, x) - b[i as usize];
        for (o, p) in out.iter_mut().zip(a) {
            *o += p * r;
        }
    }
    let scale = 1.0 / batch.len() as f64;
    for o in out.iter_mut() {
        *o *= scale;
    }
}

/// `aᵀx`: four partial sums over the first `4⌊d/4⌋` coordinates (lane `l` takes coordinates
/// `l, l+4, …`), combined as `(s₀ + s₂) + (s₁ + s₃)`, then the rest in order.
fn dot(a: &[f64], x: &[f64]) -> f64 {
    let mut acc = [0.0; 4];
    let (mut ac, mut xc) = (a.chunks_exact(4), x.chunks_exact(4));
    for (p, q) in ac.by_ref().zip(xc.by_ref()) {
        for l in 0..4 {
            acc[l] += p[l] * q[l];
        }
    }
    let mut s = (acc[0] + acc[2]) + (acc[1] + acc[3]);
    for (p, q) in ac.remainder().iter().zip(xc.remainder()) {
        s += p * q;
    }
    s
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    //! The portable `batch_grad_block`, operation for operation, with AVX2 (no fused
    //! multiply–add), so the numbers are the same bit for bit (test
    //! `batch_gradient_block_matches_columns`).
    use std::arch::x86_64::*;

    /// # Safety
    /// The processor must have AVX2.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn batch_grad_block(
        at: &[f64],
        b: &[f64],
        batches: &[u32],
        xs: &[f64],
        out: &mut [f64],
    ) {
        let n = b.len();
        let d = at.len() / n;
        let p = xs.len() / d;
        if p == 0 {
            return;
        }
        let bsz = batches.len() / p;
        assert!(at.len() == n * d && out.len() == xs.len() && batches.len() == bsz * p);
        assert!(
            batches.iter().all(|&i| (i as usize) < n),
            "sample index out of range"
        );
        for ((x, o), batch) in xs
            .chunks_exact(d)
            .zip(out.chunks_exact_mut(d))
            .zip(batches.chunks_exact(bsz))
        {
            // SAFETY: AVX2 is enabled; every row `i < n` lies in `at`, `x` and `o` have `d`
            // entries (checked above).
            unsafe { batch_grad(at.as_ptr(), b, batch, x, o) };
        }
    }

    /// # Safety
    /// AVX2; `at` points to `N × d` values with every `i ∈ batch` below `N = b.len()`;
    /// `o.len() == x.len() == d`.
    #[inline(always)]
    unsafe fn batch_grad(at: *const f64, b: &[f64], batch: &[u32], x: &[f64], o: &mut [f64]) {
        let d = x.len();
        let d4 = d - d % 4;
        let (px, po) = (x.as_ptr(), o.as_mut_ptr());
        let mut first = true;
        let mut pairs = batch.chunks_exact(2);
        for pair in pairs.by_ref() {
            let (i0, i1) = (pair[0] as usize, pair[1] as usize);
            let (a0, a1) = (at.add(i0 * d), at.add(i1 * d));
            let r0 = dot(a0, px, d) - b[i0];
            let r1 = dot(a1, px, d) - b[i1];
            let (v0, v1) = (_mm256_set1_pd(r0), _mm256_set1_pd(r1));
            let mut k = 0;
            while k < d4 {
                let acc = if first {
                    _mm256_setzero_pd()
                } else {
                    _mm256_loadu_pd(po.add(k))
                };
                let acc = _mm256_add_pd(acc, _mm256_mul_pd(_mm256_loadu_pd(a0.add(k)), v0));
                let acc = _mm256_add_pd(acc, _mm256_mul_pd(_mm256_loadu_pd(a1.add(k)), v1));
                _mm256_storeu_pd(po.add(k), acc);
                k += 4;
            }
            while k < d {
                let acc = if first { 0.0 } else { *po.add(k) };
                *po.add(k) = (acc + *a0.add(k) * r0) + *a1.add(k) * r1;
                k += 1;
            }
            first = false;
        }
        for &i in pairs.remainder() {
            let i = i as usize;
            let a = at.add(i * d);
            let r = dot(a, px, d) - b[i];
            let v = _mm256_set1_pd(r);
            let mut k = 0;
            while k < d4 {
                let acc = if first {
                    _mm256_setzero_pd()
                } else {
                    _mm256_loadu_pd(po.add(k))
                };
                let acc = _mm256_add_pd(acc, _mm256_mul_pd(_mm256_loadu_pd(a.add(k)), v));
                _mm256_storeu_pd(po.add(k), acc);
                k += 4;
            }
            while k < d {
                let acc = if first { 0.0 } else { *po.add(k) };
                *po.add(k) = acc + *a.add(k) * r;
                k += 1;
            }
            first = false;
        }
        let scale = _mm256_set1_pd(1.0 / batch.len() as f64);
        let mut k = 0;
        while k < d4 {
            _mm256_storeu_pd(po.add(k), _mm256_mul_pd(_mm256_loadu_pd(po.add(k)), scale));
            k += 4;
        }
        while k < d {
            *po.add(k) *= 1.0 / batch.len() as f64;
            k += 1;
        }
    }

    /// `aᵀx` as the portable `dot`.
    #[inline(always)]
    pub(super) unsafe fn dot(a: *const f64, x: *const f64, d: usize) -> f64 {
        let d4 = d - d % 4;
        let mut acc = _mm256_setzero_pd();
        let mut k = 0;
        while k < d4 {
            acc = _mm256_add_pd(
                acc,
                _mm256_mul_pd(_mm256_loadu_pd(a.add(k)), _mm256_loadu_pd(x.add(k))),
            );
            k += 4;
        }
        // (s₀ + s₂, s₁ + s₃), then their sum.
        let s = _mm_add_pd(_mm256_castpd256_pd128(acc), _mm256_extractf128_pd::<1>(acc));
        let mut s = _mm_cvtsd_f64(s) + _mm_cvtsd_f64(_mm_unpackhi_pd(s, s));
        while k < d {
            s += *a.add(k) * *x.add(k);
            k += 1;
        }
        s
    }
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    //! The portable `batch_grad_block` (and `sgd_step_block`: the gradient, then
    //! `x += (−η) g`), operation for operation, with AVX-512 passes: per path, up to eight
    //! residuals `r_i = a_iᵀx − b_i` first (four dot products interleaved, each with the
    //! portable four-lane partial sums, in 256-bit registers), then one pass over the
    //! coordinates, eight at a time (a masked tail for `d mod 8`), that sums `a_i r_i` in batch
    //! order starting from `0`, scales by `1/B` and either stores `g` or updates `x` in place.
    //! Batches of more than eight samples accumulate the sum in `out` chunk by chunk (the same
    //! order) and scale/update in a last pass. No fused multiply–add, so the numbers are those
    //! of the portable code bit for bit (tests `batch_gradient_block_matches_columns`,
    //! `sgd_step_block_matches_gradient_then_update`).
    use std::arch::x86_64::*;

    /// Samples per residual chunk.
    const CHUNK: usize = 8;

    /// `SGD = false`: `out = g` (`d × P`), `xs` only read. `SGD = true`: `xs ← xs − η g`, `out`
    /// is scratch (written only for batches of more than [`CHUNK`] samples).
    ///
    /// # Safety
    /// The processor must have AVX-512F/VL and AVX2 (VL: 256-bit operations may use all 32
    /// vector registers, which the interleaved dot products need); `xs` points to `len` values (writable when
    /// `SGD`), `out.len() == len`.
    #[target_feature(enable = "avx2,avx512f,avx512vl")]
    pub(super) unsafe fn block<const SGD: bool>(
        at: &[f64],
        b: &[f64],
        batches: &[u32],
        eta: f64,
        xs: *mut f64,
        len: usize,
        out: &mut [f64],
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
        // One vectorised pass (a `max`), not a branch per index: this runs every block-step.
        let max_index = batches.iter().copied().max().unwrap_or(0);
        assert!((max_index as usize) < n, "sample index out of range");
        let small = bsz <= CHUNK;
        let kc = d.div_ceil(8);
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
                        match kc {
                            1 => paths_fixed::<SGD, 1, $nb, $p>(at, b, bt, eta, x, o, d),
                            2 => paths_fixed::<SGD, 2, $nb, $p>(at, b, bt, eta, x, o, d),
                            3 => paths_fixed::<SGD, 3, $nb, $p>(at, b, bt, eta, x, o, d),
                            _ => paths_fixed::<SGD, 4, $nb, $p>(at, b, bt, eta, x, o, d),
                        }
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
            // SAFETY: AVX-512F/AVX2 are enabled; column `j < p` of `xs` and `out` has `d`
            // entries; every row `i < n` lies in `at` (checked above); `d ≤ 8 KC` and
            // `B ≤ CHUNK` where `column_small` is called.
            unsafe {
                match kc {
                    1 if small => column_small::<SGD, 1>(at, b, batch, eta, x, o, d),
                    2 if small => column_small::<SGD, 2>(at, b, batch, eta, x, o, d),
                    3 if small => column_small::<SGD, 3>(at, b, batch, eta, x, o, d),
                    4 if small => column_small::<SGD, 4>(at, b, batch, eta, x, o, d),
                    _ => column::<SGD>(at, b, batch, eta, x, o, d),
                }
            };
            j += 1;
        }
    }

    /// [`column_small`] for `P` paths at once with a batch size `NB` known at compile time:
    /// the `P · NB` dot products and the `P · KC` sums of the pass are short independent
    /// chains in local registers that the processor overlaps. Per path, the same operations in
    /// the same order as [`column`].
    #[inline(always)]
    unsafe fn paths_fixed<const SGD: bool, const KC: usize, const NB: usize, const P: usize>(
        at: *const f64,
        b: &[f64],
        batches: [&[u32]; P],
        eta: f64,
        x: [*mut f64; P],
        o: [*mut f64; P],
        d: usize,
    ) {
        let masks = tail_masks::<KC>(d);
        let mut rows = [[at; NB]; P];
        for p in 0..P {
            for c in 0..NB {
                rows[p][c] = at.add(batches[p][c] as usize * d);
            }
        }
        // Residuals: the portable four-lane dot product of every (path, sample) pair; per path
        // the `NB` sums are independent chains in registers sharing each load of `x`.
        let d4 = d - d % 4;
        let mut r = [[0.0; NB]; P];
        for p in 0..P {
            let mut acc = [_mm256_setzero_pd(); NB];
            let mut k = 0;
            while k < d4 {
                let xv = _mm256_loadu_pd(x[p].add(k));
                for c in 0..NB {
                    let prod = _mm256_mul_pd(_mm256_loadu_pd(rows[p][c].add(k)), xv);
                    acc[c] = _mm256_add_pd(acc[c], prod);
                }
                k += 4;
            }
            for c in 0..NB {
                let a = rows[p][c];
                // (s₀ + s₂, s₁ + s₃), then their sum, then the rest in order.
                let v = acc[c];
                let h = _mm_add_pd(_mm256_castpd256_pd128(v), _mm256_extractf128_pd::<1>(v));
                let mut s = _mm_cvtsd_f64(h) + _mm_cvtsd_f64(_mm_unpackhi_pd(h, h));
                for kk in d4..d {
                    s += *a.add(kk) * *x[p].add(kk);
                }
                r[p][c] = s - b[batches[p][c] as usize];
            }
        }
        // One pass per eight coordinates: Σ a_i r_i in batch order from 0, the scale, the
        // update (again one local chain per path and chunk).
        let scale = _mm512_set1_pd(1.0 / NB as f64);
        let minus_eta = _mm512_set1_pd(-eta);
        for p in 0..P {
            for (q, &m) in masks.iter().enumerate() {
                let mut acc = _mm512_setzero_pd();
                for c in 0..NB {
                    let a = _mm512_maskz_loadu_pd(m, rows[p][c].add(8 * q));
                    acc = _mm512_add_pd(acc, _mm512_mul_pd(a, _mm512_set1_pd(r[p][c])));
                }
                finish::<SGD>(acc, scale, minus_eta, x[p].add(8 * q), o[p].add(8 * q), m);
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
        d: usize,
    ) {
        let masks = tail_masks::<KC>(d);
        let mut rows = [at; CHUNK];
        let mut r = [0.0; CHUNK];
        for (c, &i) in batch.iter().enumerate() {
            rows[c] = at.add(i as usize * d);
        }
        let mut c = 0;
        while c + 4 <= batch.len() {
            let s = dot4([rows[c], rows[c + 1], rows[c + 2], rows[c + 3]], x, d);
            for q in 0..4 {
                r[c + q] = s[q] - b[batch[c + q] as usize];
            }
            c += 4;
        }
        while c < batch.len() {
            r[c] = super::avx2::dot(rows[c], x, d) - b[batch[c] as usize];
            c += 1;
        }
        let mut acc = [_mm512_setzero_pd(); KC];
        for c in 0..batch.len() {
            let rc = _mm512_set1_pd(r[c]);
            for q in 0..KC {
                let a = _mm512_maskz_loadu_pd(masks[q], rows[c].add(8 * q));
                acc[q] = _mm512_add_pd(acc[q], _mm512_mul_pd(a, rc));
            }
        }
        let scale = _mm512_set1_pd(1.0 / batch.len() as f64);
        let minus_eta = _mm512_set1_pd(-eta);
        for q in 0..KC {
            finish::<SGD>(
                acc[q],
                scale,
                minus_eta,
                x.add(8 * q),
                o.add(8 * q),
                masks[q],
            );
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
            }
            let mut c = 0;
            while c + 4 <= chunk.len() {
                let s = dot4([rows[c], rows[c + 1], rows[c + 2], rows[c + 3]], x, d);
                for q in 0..4 {
                    r[c + q] = s[q] - b[chunk[c + q] as usize];
                }
                c += 4;
            }
            while c < chunk.len() {
                r[c] = super::avx2::dot(rows[c], x, d) - b[chunk[c] as usize];
                c += 1;
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
                    acc = _mm512_add_pd(acc, _mm512_mul_pd(a, _mm512_set1_pd(r[c])));
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

    /// `g = acc · (1/B)`; then `x += (−η) g` (`SGD`) or `o = g`.
    #[inline(always)]
    unsafe fn finish<const SGD: bool>(
        acc: __m512d,
        scale: __m512d,
        minus_eta: __m512d,
        x: *mut f64,
        o: *mut f64,
        m: __mmask8,
    ) {
        let g = _mm512_mul_pd(acc, scale);
        if SGD {
            let xv = _mm512_maskz_loadu_pd(m, x);
            _mm512_mask_storeu_pd(x, m, _mm512_add_pd(xv, _mm512_mul_pd(minus_eta, g)));
        } else {
            _mm512_mask_storeu_pd(o, m, g);
        }
    }

    /// Four dot products `a_qᵀx` at once, each exactly as the portable `dot`.
    #[inline(always)]
    unsafe fn dot4(a: [*const f64; 4], x: *const f64, d: usize) -> [f64; 4] {
        let d4 = d - d % 4;
        let mut acc = [_mm256_setzero_pd(); 4];
        let mut k = 0;
        while k < d4 {
            let xv = _mm256_loadu_pd(x.add(k));
            for q in 0..4 {
                acc[q] = _mm256_add_pd(acc[q], _mm256_mul_pd(_mm256_loadu_pd(a[q].add(k)), xv));
            }
            k += 4;
        }
        let mut out = [0.0; 4];
        for q in 0..4 {
            // (s₀ + s₂, s₁ + s₃), then their sum, then the rest in order.
            let s = _mm_add_pd(
                _mm256_castpd256_pd128(acc[q]),
                _mm256_extractf128_pd::<1>(acc[q]),
            );
            let mut s = _mm_cvtsd_f64(s) + _mm_cvtsd_f64(_mm_unpackhi_pd(s, s));
            for kk in d4..d {
                s += *a[q].add(kk) * *x.add(kk);
            }
            out[q] = s;
        }
        out
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
    /// neither, below 4, above 32; batches of 1, 2, 4, 8 (the fixed-size kernels, with a
    /// tail of single paths since P = 5), others below 8, above 8.
    const SHAPES: [(usize, usize); 10] = [
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
                let mut col = vec![0.0; d];
                batch_grad(
                    ls.at.as_slice(),
                    ls.b.as_slice(),
                    &batches[j * b..(j + 1) * b],
                    &xs[j * d..(j + 1) * d],
                    &mut col,
                );
                for k in 0..d {
                    let got = block[j * d + k];
                    assert_eq!(col[k].to_bits(), got.to_bits(), "d {d}, B {b}, path {j}");
                }
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
            let (mut g, mut tmp) = (vec![0.0; d * p], vec![0.0; d]);
            ls.sgd_step_block(&batches, eta, &mut fused, &mut g, &mut tmp);
            for j in 0..p {
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
