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
    /// The same per column, by an AVX2 kernel where the processor has one (no fused
    /// multiply–add, so the numbers are those of the portable code, bit for bit).
    fn batch_grad_block(&self, batches: &[u32], xs: &[f64], out: &mut [f64], _tmp: &mut [f64]) {
        let (at, b) = (self.at.as_slice(), self.b.as_slice());
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx2") {
                // SAFETY: AVX2 was detected at run time.
                return unsafe { avx2::batch_grad_block(at, b, batches, xs, out) };
            }
        }
        batch_grad_block(at, b, batches, xs, out)
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
    unsafe fn dot(a: *const f64, x: *const f64, d: usize) -> f64 {
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

    /// The block form (AVX2 where available) gives the per-column numbers bit for bit.
    #[test]
    fn batch_gradient_block_matches_columns() {
        let ls = LeastSquares::synthetic(13, 10, 0.4, 4).unwrap();
        let (d, p, b) = (10, 5, 3);
        let xs: Vec<f64> = (0..d * p).map(|k| (k as f64 * 0.37).sin()).collect();
        let batches: Vec<u32> = (0..p * b).map(|k| (k * 7 % 13) as u32).collect();
        let mut block = vec![0.0; d * p];
        let mut tmp = vec![0.0; d];
        ls.batch_grad_block(&batches, &xs, &mut block, &mut tmp);
        for j in 0..p {
            let mut col = vec![0.0; d];
            ls.batch_grad_into(
                &batches[j * b..(j + 1) * b],
                &xs[j * d..(j + 1) * d],
                &mut col,
                &mut tmp,
            );
            for k in 0..d {
                assert_eq!(col[k].to_bits(), block[j * d + k].to_bits(), "path {j}");
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
