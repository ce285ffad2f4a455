//! Ridge-regularised logistic regression, a strongly convex (hence Polyak–Łojasiewicz) finite sum
//! with globally bounded per-sample gradient variance — the setting of the PL part of Theorem 2
//! of Paper 2:
//!
//! `f(w) = (1/n) Σ_i f_i(w)`,  `f_i(w) = ln(1 + e^{−m_i}) + (λ/2)‖w‖²`,  `m_i = y_i x_iᵀw`.
//!
//! With `s_i = σ(−m_i)`: `∇f_i = −s_i y_i x_i + λw`, `∇²f_i = s_i(1 − s_i) x_i x_iᵀ + λI`.
//!
//! * per-sample smoothness `β = max_i ‖x_i‖²/4 + λ` (`s(1 − s) ≤ 1/4`);
//! * `f` is `λ`-strongly convex, so PL holds with `μ = λ`: `½‖∇f‖² ≥ μ(f − f⋆)`;
//! * per-sample gradient variance: the ridge term is the same for every `i` and cancels, so
//!   `V(w) = (1/n) Σ‖∇f_i − ∇f‖² ≤ (1/n) Σ s_i² ‖x_i‖² ≤ (1/n) Σ ‖x_i‖²` for every `w`
//!   ([`LogisticRidge::variance_upper_bound`]). (Least squares, by contrast, has per-sample
//!   variance growing like `‖w‖²`, so assumption (A1) fails globally.)
//!
//! The minimiser `w⋆` is unique; [`LogisticRidge::minimize`] finds it by damped Newton to
//! machine precision, giving `f⋆` exactly (to rounding).

use super::classification::{sigmoid, softplus, Classification};
use super::{FiniteSum, Landscape};
use crate::error::{Error, Result};
use crate::linalg::{Matrix, Vector};

/// The ridge-regularised logistic loss on a classification data set.
#[derive(Debug, Clone)]
pub struct LogisticRidge {
    data: Classification,
    lambda: f64,
    label: String,
}

impl LogisticRidge {
    /// On the given data with ridge `λ > 0`.
    pub fn new(data: Classification, lambda: f64) -> Result<Self> {
        if !(lambda.is_finite() && lambda > 0.0) {
            return Err(Error::config(
                "landscape.ridge",
                lambda,
                "must be finite and > 0 (the PL constant is μ = λ)",
            ));
        }
        let label = format!(
            "logistic + ridge (n = {}, d = {}, λ = {lambda})",
            data.n(),
            data.dim()
        );
        Ok(Self {
            data,
            lambda,
            label,
        })
    }

    /// The data.
    pub fn data(&self) -> &Classification {
        &self.data
    }

    /// Ridge `λ` (= the PL constant `μ`).
    pub fn lambda(&self) -> f64 {
        self.lambda
    }

    /// Per-sample smoothness `β = max_i ‖x_i‖²/4 + λ`.
    pub fn beta(&self) -> f64 {
        self.data.max_sq_norm() / 4.0 + self.lambda
    }

    /// Global bound on the per-sample gradient variance: `(1/n) Σ_i ‖x_i‖²`.
    pub fn variance_upper_bound(&self) -> f64 {
        self.data.mean_sq_norm()
    }

    /// One pass: returns `(f(w), V(w))` and writes `out = ∇f(w)`, `V` the per-sample gradient
    /// variance (the ridge part cancels in it).
    pub fn loss_grad_variance(&self, w: &[f64], out: &mut [f64]) -> (f64, f64) {
        // φ(m) = ln(1 + e^{−m}), φ'(m) = −σ(−m).
        let (sum, v) = self
            .data
            .margin_pass(w, out, |m| (softplus(-m), -sigmoid(-m)));
        let wsq: f64 = w.iter().map(|v| v * v).sum();
        for (o, wi) in out.iter_mut().zip(w) {
            *o += self.lambda * wi;
        }
        (sum / self.data.n() as f64 + 0.5 * self.lambda * wsq, v)
    }

    /// The minimiser `w⋆` and `f⋆ = f(w⋆)` by damped Newton (Armijo backtracking), stopped when
    /// `‖∇f‖ ≤ 1e-13 · max(1, ‖∇f(0)‖)` or after 100 iterations (errors if not converged).
    pub fn minimize(&self) -> Result<(Vec<f64>, f64)> {
        let d = self.dim();
        let mut w = vec![0.0; d];
        let mut g = vec![0.0; d];
        let (mut f, _) = self.loss_grad_variance(&w, &mut g);
        let tol = 1e-13 * norm(&g).max(1.0);
        for _ in 0..100 {
            if norm(&g) <= tol {
                return Ok((w, f));
            }
            let h = self.hessian(&w);
            let rhs = Vector::from_iterator(d, g.iter().map(|v| -v));
            let step = h
                .cholesky()
                .ok_or_else(|| Error::Unsupported("logistic + ridge Hessian not SPD".into()))?
                .solve(&rhs);
            let slope: f64 = step.iter().zip(&g).map(|(a, b)| a * b).sum();
            let mut t = 1.0;
            let mut trial = vec![0.0; d];
            let mut gt = vec![0.0; d];
            loop {
                for k in 0..d {
                    trial[k] = w[k] + t * step[k];
                }
                let (ft, _) = self.loss_grad_variance(&trial, &mut gt);
                if ft <= f + 1e-4 * t * slope || t < 1e-12 {
                    w.copy_from_slice(&trial);
                    g.copy_from_slice(&gt);
                    f = ft;
                    break;
                }
                t *= 0.5;
            }
        }
        if norm(&g) <= 1e3 * tol {
            Ok((w, f))
        } else {
            Err(Error::Unsupported(format!(
                "Newton's method did not converge on {} (‖∇f‖ = {:.3e})",
                self.label,
                norm(&g)
            )))
        }
    }
}

fn norm(v: &[f64]) -> f64 {
    v.iter().map(|x| x * x).sum::<f64>().sqrt()
}

impl Landscape for LogisticRidge {
    fn dim(&self) -> usize {
        self.data.dim()
    }
    fn loss(&self, w: &[f64]) -> f64 {
        let n = self.data.n();
        (0..n).map(|i| self.sample_loss(i, w)).sum::<f64>() / n as f64
    }
    fn grad_into(&self, w: &[f64], out: &mut [f64]) {
        self.loss_grad_variance(w, out);
    }
    fn loss_grad_into(&self, w: &[f64], out: &mut [f64]) -> f64 {
        self.loss_grad_variance(w, out).0
    }
    fn hess_vec_into(&self, w: &[f64], v: &[f64], out: &mut [f64]) {
        let n = self.data.n() as f64;
        for (o, vi) in out.iter_mut().zip(v) {
            *o = self.lambda * vi;
        }
        for i in 0..self.data.n() {
            let xi = self.data.x(i);
            let s = sigmoid(-self.data.margin(i, w));
            let c = s * (1.0 - s) * xi.iter().zip(v).map(|(a, b)| a * b).sum::<f64>() / n;
            for (o, a) in out.iter_mut().zip(xi) {
                *o += c * a;
            }
        }
    }
    fn hessian(&self, w: &[f64]) -> Matrix {
        let d = self.dim();
        let n = self.data.n() as f64;
        let mut h = Matrix::identity(d, d) * self.lambda;
        self.data.add_weighted_gram(&mut h, |i| {
            let s = sigmoid(-self.data.margin(i, w));
            s * (1.0 - s) / n
        });
        h
    }
    fn describe(&self) -> String {
        self.label.clone()
    }
    fn as_finite_sum(&self) -> Option<&dyn FiniteSum> {
        Some(self)
    }
}

impl FiniteSum for LogisticRidge {
    fn n_samples(&self) -> usize {
        self.data.n()
    }
    fn sample_loss(&self, i: usize, w: &[f64]) -> f64 {
        let wsq: f64 = w.iter().map(|v| v * v).sum();
        softplus(-self.data.margin(i, w)) + 0.5 * self.lambda * wsq
    }
    fn sample_grad_into(&self, i: usize, w: &[f64], out: &mut [f64]) {
        let c = -sigmoid(-self.data.margin(i, w)) * self.data.y(i);
        for ((o, a), wi) in out.iter_mut().zip(self.data.x(i)).zip(w) {
            *o = c * a + self.lambda * wi;
        }
    }
    fn sample_hess_vec_into(&self, i: usize, w: &[f64], v: &[f64], out: &mut [f64]) {
        let xi = self.data.x(i);
        let s = sigmoid(-self.data.margin(i, w));
        let c = s * (1.0 - s) * xi.iter().zip(v).map(|(a, b)| a * b).sum::<f64>();
        for ((o, a), vi) in out.iter_mut().zip(xi).zip(v) {
            *o = c * a + self.lambda * vi;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::landscape::fd;

    fn problem() -> LogisticRidge {
        LogisticRidge::new(Classification::synthetic(20, 3, 0.1, 4).unwrap(), 0.3).unwrap()
    }

    #[test]
    fn derivatives_match_finite_differences() {
        let f = problem();
        for w in [[0.0, 0.0, 0.0], [0.5, -1.2, 0.7], [3.0, 2.0, -4.0]] {
            assert!(fd::grad_error(&f, &w, 1e-5) < 1e-8);
            assert!(fd::hess_error(&f, &w, 1e-5) < 1e-7);
        }
        let (mut gi, w) = ([0.0; 3], [0.2, 0.1, -0.9]);
        for i in [0, 7, 19] {
            f.sample_grad_into(i, &w, &mut gi);
            for k in 0..3 {
                let (mut p, mut m) = (w, w);
                p[k] += 1e-6;
                m[k] -= 1e-6;
                let d = (f.sample_loss(i, &p) - f.sample_loss(i, &m)) / 2e-6;
                assert!((d - gi[k]).abs() < 1e-8);
            }
        }
    }

    #[test]
    fn fused_pass_matches_per_sample_variance() {
        let f = problem();
        let w = [0.8, -0.4, 0.3];
        let n = f.n_samples();
        let mut grads = vec![[0.0; 3]; n];
        let mut mean = [0.0; 3];
        for (i, g) in grads.iter_mut().enumerate() {
            f.sample_grad_into(i, &w, g);
            for k in 0..3 {
                mean[k] += g[k] / n as f64;
            }
        }
        let var: f64 = grads
            .iter()
            .map(|g| {
                g.iter()
                    .zip(&mean)
                    .map(|(a, b)| (a - b).powi(2))
                    .sum::<f64>()
            })
            .sum::<f64>()
            / n as f64;
        let mut g = [0.0; 3];
        let (loss, v) = f.loss_grad_variance(&w, &mut g);
        assert!((loss - f.loss(&w)).abs() < 1e-14);
        for k in 0..3 {
            assert!((g[k] - mean[k]).abs() < 1e-14);
        }
        assert!((v - var).abs() < 1e-12);
        assert!(v <= f.variance_upper_bound());
    }

    #[test]
    fn newton_finds_the_minimiser_and_pl_holds() {
        let f = problem();
        let (ws, fs) = f.minimize().unwrap();
        let mut g = [0.0; 3];
        f.grad_into(&ws, &mut g);
        assert!(norm(&g) < 1e-12, "{g:?}");
        // PL with μ = λ at random points: ½‖∇f‖² ≥ μ (f − f⋆).
        for w in [[1.0, 1.0, 1.0], [-2.0, 0.5, 3.0], [0.01, 0.0, -0.02]] {
            let fw = f.loss_grad_variance(&w, &mut g).0;
            assert!(fw >= fs);
            assert!(0.5 * g.iter().map(|v| v * v).sum::<f64>() >= f.lambda() * (fw - fs));
        }
    }

    #[test]
    fn ridge_must_be_positive() {
        let data = Classification::synthetic(5, 2, 0.0, 1).unwrap();
        let e = LogisticRidge::new(data, 0.0).unwrap_err().to_string();
        assert!(e.contains("landscape.ridge") && e.contains('0'), "{e}");
    }
}
