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
