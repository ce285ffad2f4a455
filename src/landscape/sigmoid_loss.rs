//! The sigmoid loss, a smooth **non-convex** finite sum (Paper 2's setting for Theorem 2):
//!
//! `f(w) = (1/n) Σ_i f_i(w)`,  `f_i(w) = σ(−m_i)`,  `m_i = y_i x_iᵀw`,  `σ(z) = 1/(1 + e^{−z})`.
//!
//! With `s_i = σ(−m_i)` and `σ' = σ(1 − σ)`, `σ'' = σ(1 − σ)(1 − 2σ)`:
//!
//! `∇f_i = −s_i(1 − s_i) y_i x_i`,   `∇²f_i = σ''(−m_i) x_i x_iᵀ` (`y_i² = 1`).
//!
//! **Per-sample smoothness.** `‖∇²f_i‖ = |σ''(−m_i)| ‖x_i‖² ≤ ‖x_i‖² sup|σ''|`, and
//! `sup_z |σ''(z)| = 1/(6√3)` (maximise `s(1 − s)(1 − 2s)` over `s ∈ (0, 1)`: the derivative
//! `1 − 6s + 6s²` vanishes at `s = (3 ± √3)/6`, where `s(1 − s) = 1/6` and `|1 − 2s| = 1/√3`).
//! So each `f_i` is `β`-smooth with [`SigmoidLoss::beta`] `= max_i ‖x_i‖²/(6√3)`.
//!
//! **Per-sample gradient variance.** `V(w) = (1/n) Σ_i ‖∇f_i − ∇f‖² ≤ (1/n) Σ_i ‖∇f_i‖²
//! ≤ (1/16)(1/n) Σ_i ‖x_i‖²` (because `s(1 − s) ≤ 1/4`): [`SigmoidLoss::variance_upper_bound`],
//! a global bound for assumption (A1) of Theorem 2.
//!
//! `f ≥ 0`, so `f⋆ = inf f ≥ 0`.

use super::classification::{sigmoid, Classification};
use super::{FiniteSum, Landscape};
use crate::linalg::Matrix;

/// `sup_z |σ''(z)| = 1/(6√3)`.
pub const SIGMOID_SECOND_DERIVATIVE_SUP: f64 = 0.096_225_044_864_937_63;

/// The sigmoid-loss finite sum on a classification data set.
#[derive(Debug, Clone)]
pub struct SigmoidLoss {
    data: Classification,
    label: String,
}

impl SigmoidLoss {
    /// On the given data.
    pub fn new(data: Classification) -> Self {
        let label = format!("sigmoid loss (n = {}, d = {})", data.n(), data.dim());
        Self { data, label }
    }

    /// The data.
    pub fn data(&self) -> &Classification {
        &self.data
    }

    /// Per-sample smoothness `β = max_i ‖x_i‖²/(6√3)`.
    pub fn beta(&self) -> f64 {
        self.data.max_sq_norm() * SIGMOID_SECOND_DERIVATIVE_SUP
    }

    /// Global bound on the per-sample gradient variance: `(1/16)(1/n) Σ_i ‖x_i‖²`.
    pub fn variance_upper_bound(&self) -> f64 {
        self.data.mean_sq_norm() / 16.0
    }

    /// One pass: returns `(f(w), V(w))` and writes `out = ∇f(w)`, where
    /// `V(w) = (1/n) Σ_i ‖∇f_i(w) − ∇f(w)‖²` (see [`Classification::margin_pass`]).
    pub fn loss_grad_variance(&self, w: &[f64], out: &mut [f64]) -> (f64, f64) {
        // f_i = σ(−m) as a function of m: φ = σ(−m), φ' = −σ(−m)(1 − σ(−m)).
        let (sum, v) = self.data.margin_pass(w, out, |m| {
            let s = sigmoid(-m);
            (s, -s * (1.0 - s))
        });
        (sum / self.data.n() as f64, v)
    }

    fn curvature(&self, i: usize, w: &[f64]) -> f64 {
        let s = sigmoid(-self.data.margin(i, w));
        s * (1.0 - s) * (1.0 - 2.0 * s)
    }
}

impl Landscape for SigmoidLoss {
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
        out.fill(0.0);
        let n = self.data.n();
        for i in 0..n {
            let xi = self.data.x(i);
            let c =
                self.curvature(i, w) * xi.iter().zip(v).map(|(a, b)| a * b).sum::<f64>() / n as f64;
            for (o, a) in out.iter_mut().zip(xi) {
                *o += c * a;
            }
        }
    }
    fn hessian(&self, w: &[f64]) -> Matrix {
        let d = self.dim();
        let n = self.data.n();
        let mut h = Matrix::zeros(d, d);
        self.data
            .add_weighted_gram(&mut h, |i| self.curvature(i, w) / n as f64);
        h
    }
    fn describe(&self) -> String {
        self.label.clone()
    }
    fn as_finite_sum(&self) -> Option<&dyn FiniteSum> {
        Some(self)
    }
}

impl FiniteSum for SigmoidLoss {
    fn n_samples(&self) -> usize {
        self.data.n()
    }
    fn sample_loss(&self, i: usize, w: &[f64]) -> f64 {
        sigmoid(-self.data.margin(i, w))
    }
    fn sample_grad_into(&self, i: usize, w: &[f64], out: &mut [f64]) {
        let s = sigmoid(-self.data.margin(i, w));
        let c = -s * (1.0 - s) * self.data.y(i);
        for (o, a) in out.iter_mut().zip(self.data.x(i)) {
            *o = c * a;
        }
    }
    fn sample_hess_vec_into(&self, i: usize, w: &[f64], v: &[f64], out: &mut [f64]) {
        let xi = self.data.x(i);
        let c = self.curvature(i, w) * xi.iter().zip(v).map(|(a, b)| a * b).sum::<f64>();
        for (o, a) in out.iter_mut().zip(xi) {
            *o = c * a;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::landscape::fd;

    fn problem() -> SigmoidLoss {
        SigmoidLoss::new(Classification::synthetic(15, 4, 0.2, 9).unwrap())
    }

    #[test]
    fn sup_of_second_derivative_is_one_over_six_root_three() {
        assert!((SIGMOID_SECOND_DERIVATIVE_SUP - 1.0 / (6.0 * 3f64.sqrt())).abs() < 1e-17);
        // A fine scan of |σ''| reaches the constant and never exceeds it.
        let mut best = 0.0_f64;
        for k in -200_000..=200_000 {
            let z = k as f64 * 5e-5;
            let s = sigmoid(z);
            best = best.max((s * (1.0 - s) * (1.0 - 2.0 * s)).abs());
        }
        assert!(best <= SIGMOID_SECOND_DERIVATIVE_SUP * (1.0 + 1e-12));
        // Grid spacing 5e-5 around a smooth maximum: within ~1e-9 relative.
        assert!(
            best > SIGMOID_SECOND_DERIVATIVE_SUP * (1.0 - 1e-8),
            "{best}"
        );
    }

    #[test]
    fn derivatives_match_finite_differences() {
        let f = problem();
        for w in [
            [0.0, 0.0, 0.0, 0.0],
            [0.3, -0.8, 1.2, 0.4],
            [2.0, 1.0, -3.0, 0.5],
        ] {
            assert!(fd::grad_error(&f, &w, 1e-5) < 1e-8);
            assert!(fd::hess_error(&f, &w, 1e-5) < 1e-7);
        }
    }

    #[test]
    fn per_sample_pieces_agree_with_the_fused_pass() {
        let f = problem();
        let w = [0.4, -0.3, 0.9, -1.1];
        let n = f.n_samples();
        let (mut gi, mut g, mut mean) = ([0.0; 4], [0.0; 4], [0.0; 4]);
        let mut grads = Vec::new();
        for i in 0..n {
            f.sample_grad_into(i, &w, &mut gi);
            // per-sample gradient against a central difference of f_i
            for k in 0..4 {
                let (mut p, mut m) = (w, w);
                p[k] += 1e-6;
                m[k] -= 1e-6;
                let d = (f.sample_loss(i, &p) - f.sample_loss(i, &m)) / 2e-6;
                assert!((d - gi[k]).abs() < 1e-8);
            }
            for k in 0..4 {
                mean[k] += gi[k] / n as f64;
            }
            grads.push(gi);
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
        let (loss, v) = f.loss_grad_variance(&w, &mut g);
        assert!((loss - f.loss(&w)).abs() < 1e-14);
        for k in 0..4 {
            assert!((g[k] - mean[k]).abs() < 1e-14);
        }
        assert!((v - var).abs() < 1e-12, "{v} vs {var}");
        assert!(v <= f.variance_upper_bound());
    }

    #[test]
    fn per_sample_hessians_are_beta_bounded() {
        // ‖∇²f_i‖ = |σ''| ‖x_i‖² ≤ β: check the largest Rayleigh quotient along x_i itself.
        let f = problem();
        let beta = f.beta();
        let mut hv = [0.0; 4];
        for i in 0..f.n_samples() {
            let xi: Vec<f64> = f.data().x(i).to_vec();
            let nx: f64 = xi.iter().map(|v| v * v).sum::<f64>().sqrt();
            let u: Vec<f64> = xi.iter().map(|v| v / nx).collect();
            for scale in [-3.0, -0.5, 0.0, 0.2, 1.7] {
                let w: Vec<f64> = u.iter().map(|v| v * scale).collect();
                f.sample_hess_vec_into(i, &w, &u, &mut hv);
                let q: f64 = hv.iter().zip(&u).map(|(a, b)| a * b).sum();
                assert!(q.abs() <= beta * (1.0 + 1e-12));
            }
        }
    }
}
