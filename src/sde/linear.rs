//! Linear SDEs `dX = −M X dt + √η D dW` (Ornstein–Uhlenbeck): exact moments and exact coupled
//! transitions.
//!
//! On a centred quadratic `f = ½ xᵀHx` with the additive oracle (`Z = Sξ`) or full batch:
//! `sgd_sde` has `M = H, D = S`; `usam_sde` has `M = H + ρH², D = (I + ρH) S`; `usam_drift_only`
//! has `M = H + ρH², D = S`; the second-order models have `M = H̃ + (η/2)H̃², D = S̃` with
//! `H̃ = H, S̃ = S` (`sgd_sde2`) or `H̃ = H + ρH², S̃ = (I + ρH)S` (`usam_sde2`). `M` is symmetric, `M = Q Λ Qᵀ`, and with `K = Qᵀ D Dᵀ Q`,
//! `φ(μ, t) = ∫₀ᵗ e^{−μs} ds`:
//!
//! * moments: `m(t) = e^{−Mt} m₀`, `P(t) = e^{−Mt} P₀ e^{−Mt} + η Q [K_ij φ(λ_i+λ_j, t)] Qᵀ`;
//! * transition over `τ`, coupled to the Brownian increment `ΔW` of that interval: the
//!   stochastic integral `J = ∫₀^τ e^{−M(τ−s)} D dW_s` is jointly Gaussian with `ΔW`, with
//!   `Cov(J, ΔW) = Φ₁ D`, `Φ₁ = Q diag φ(λ_i, τ) Qᵀ`, so
//!   `X_{t+τ} = e^{−Mτ} X_t + √η (G ΔW + L ζ)`, `G = Φ₁ D / τ`,
//!   `L L ᵀ = Var(J) − Φ₁ D Dᵀ Φ₁ / τ` (the conditional covariance, `Q [K_ij (φ(λ_i+λ_j,τ) −
//!   φ(λ_i,τ)φ(λ_j,τ)/τ)] Qᵀ`), `ζ ~ N(0, I)` fresh. Both the marginal law and the coupling to
//!   `ΔW` are exact: no time-discretisation error at all.

use nalgebra::SymmetricEigen;

use super::model::ModelKind;
use crate::landscape::Landscape;
use crate::linalg::{psd_sqrt, Matrix, Vector};
use crate::optim::AlgorithmKind;
use crate::oracle::Oracle;

/// `φ(μ, t) = ∫₀ᵗ e^{−μs} ds = (1 − e^{−μt})/μ`, `t` at `μ = 0`.
pub fn phi(mu: f64, t: f64) -> f64 {
    if (mu * t).abs() < 1e-12 {
        t * (1.0 - 0.5 * mu * t)
    } else {
        -(-mu * t).exp_m1() / mu
    }
}

/// A linear SDE `dX = −M X dt + √η D dW`.
#[derive(Debug, Clone)]
pub struct LinearSde {
    /// Drift matrix `M` (symmetric).
    pub m: Matrix,
    /// Diffusion factor `D` (`d × m_noise`).
    pub d: Matrix,
    /// Learning rate `η` scaling the noise.
    pub eta: f64,
    lambda: Vector,
    q: Matrix,
    k: Matrix,
}

/// Precomputed exact transition over a fixed `τ`.
#[derive(Debug, Clone)]
pub struct OuTransition {
    /// `e^{−Mτ}`.
    pub e: Matrix,
    /// `Φ₁ D / τ` (`d × m_noise`).
    pub g: Matrix,
    /// Conditional-covariance factor (`d × d`).
    pub l: Matrix,
    /// `√η`.
    pub sqrt_eta: f64,
}

impl LinearSde {
    /// Builds from `M` (symmetrised) and `D`.
    pub fn new(m: Matrix, d: Matrix, eta: f64) -> Self {
        let m = (&m + m.transpose()) * 0.5;
        let eig = SymmetricEigen::new(m.clone());
        let q = eig.eigenvectors;
        let ddt = &d * d.transpose();
        let k = q.transpose() * ddt * &q;
        Self {
            m,
            d,
            eta,
            lambda: eig.eigenvalues,
            q,
            k,
        }
    }

    /// The linear form of a model, when it has one (centred quadratic, additive or full-batch
    /// oracle, SGD/USAM drift).
    pub fn of_model(
        kind: ModelKind,
        f: &dyn Landscape,
        oracle: &Oracle,
        eta: f64,
        rho: f64,
    ) -> Option<Self> {
        let h = f.centred_quadratic()?;
        let dim = f.dim();
        let s = oracle.constant_factor(dim)?;
        let (m, d) = match kind.alg {
            // Second order (the modified equation, [`super::second_order`]): SGD on `f̃ = ½xᵀH̃x`
            // with noise `S̃`, where `H̃ = H, S̃ = S` (SGD) or `H̃ = H + ρH², S̃ = (I + ρH)S`
            // (USAM, exactly for any ρ): `M = H̃ + (η/2)H̃²`, `D = S̃`.
            AlgorithmKind::Sgd | AlgorithmKind::Usam if kind.second_order => {
                let r = if kind.alg == AlgorithmKind::Usam {
                    rho
                } else {
                    0.0
                };
                let ht = h + r * h * h;
                let m = &ht + 0.5 * eta * &ht * &ht;
                let d = (Matrix::identity(dim, dim) + r * h) * s;
                (m, d)
            }
            AlgorithmKind::Sgd => (h.clone(), s),
            AlgorithmKind::Usam => {
                let m = h + rho * h * h;
                let d = if kind.drift_only {
                    s
                } else {
                    (Matrix::identity(dim, dim) + rho * h) * s
                };
                (m, d)
            }
            _ => return None,
        };
        Some(Self::new(m, d, eta))
    }

    /// Mean and covariance at time `t` from `(m₀, P₀)`.
    pub fn moments(&self, m0: &Vector, p0: &Matrix, t: f64) -> (Vector, Matrix) {
        let n = self.lambda.len();
        let decay = Matrix::from_diagonal(&self.lambda.map(|l| (-l * t).exp()));
        let e = &self.q * &decay * self.q.transpose();
        let mean = &e * m0;
        let mut inner = Matrix::zeros(n, n);
        for i in 0..n {
            for j in 0..n {
                inner[(i, j)] = self.k[(i, j)] * phi(self.lambda[i] + self.lambda[j], t);
            }
        }
        let cov = &e * p0 * e.transpose() + self.eta * (&self.q * inner * self.q.transpose());
        (mean, (&cov + cov.transpose()) * 0.5)
    }

    /// The exact coupled transition over `τ`.
    pub fn transition(&self, tau: f64) -> OuTransition {
        let n = self.lambda.len();
        let qt = self.q.transpose();
        let e = &self.q * Matrix::from_diagonal(&self.lambda.map(|l| (-l * tau).exp())) * &qt;
        let phi1 = self.lambda.map(|l| phi(l, tau));
        let g = &self.q * Matrix::from_diagonal(&phi1) * &qt * &self.d / tau;
        let mut cond = Matrix::zeros(n, n);
        for i in 0..n {
            for j in 0..n {
                let (li, lj) = (self.lambda[i], self.lambda[j]);
                cond[(i, j)] = self.k[(i, j)] * (phi(li + lj, tau) - phi1[i] * phi1[j] / tau);
            }
        }
        let cond = &self.q * cond * &qt;
        OuTransition {
            e,
            g,
            l: psd_sqrt(&cond).root,
            sqrt_eta: self.eta.sqrt(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phi_limits() {
        assert!((phi(0.0, 2.0) - 2.0).abs() < 1e-15);
        assert!((phi(1.0, 1.0) - (1.0 - (-1.0f64).exp())).abs() < 1e-15);
        assert!((phi(-0.5, 2.0) - ((1.0f64).exp() - 1.0) / 0.5).abs() < 1e-12);
        assert!((phi(1e-14, 1.0) - 1.0).abs() < 1e-13);
    }

    /// One-dimensional OU: the stationary variance is `η D²/(2M)`.
    #[test]
    fn scalar_ou_variance() {
        let sde = LinearSde::new(
            Matrix::from_element(1, 1, 2.0),
            Matrix::from_element(1, 1, 0.5),
            0.1,
        );
        let (m, p) = sde.moments(&Vector::from_element(1, 1.0), &Matrix::zeros(1, 1), 50.0);
        assert!(m[0].abs() < 1e-40);
        assert!((p[(0, 0)] - 0.1 * 0.25 / 4.0).abs() < 1e-15);
    }

    /// The coupling term: `G τ = Cov(J, ΔW) = ∫₀^τ e^{−M(τ−s)} ds · D`, checked against a
    /// midpoint quadrature of nalgebra's matrix exponential (an independent computation; the
    /// marginal test below would pass for any cross-covariance used consistently).
    #[test]
    fn coupling_cross_covariance_matches_quadrature() {
        let h = Matrix::from_row_slice(3, 3, &[1.2, 0.3, -0.1, 0.3, 0.5, 0.2, -0.1, 0.2, -0.4]);
        let d = Matrix::from_row_slice(3, 2, &[0.5, 0.1, 0.0, 0.4, 0.2, -0.3]);
        let sde = LinearSde::new(h.clone(), d.clone(), 0.1);
        let tau = 0.7;
        let tr = sde.transition(tau);
        let n = 4000;
        let mut integral = Matrix::zeros(3, 3);
        for k in 0..n {
            let s = (k as f64 + 0.5) * tau / n as f64;
            integral += (-(&h) * (tau - s)).exp() * (tau / n as f64);
        }
        let want = integral * &d;
        // Midpoint error ≈ τ³‖M‖²/(24 n²) ≈ 1e-9 here.
        assert!((&tr.g * tau - want).abs().max() < 1e-8);
        assert!((&tr.e - (-(&h) * tau).exp()).abs().max() < 1e-12);
    }

    /// Composing exact transitions reproduces the moments: `Var(E x + √η(GΔW + Lζ))` over one
    /// step equals the OU covariance at `τ` from a point start.
    #[test]
    fn transition_covariance_matches_moments() {
        let h = Matrix::from_row_slice(2, 2, &[1.0, 0.3, 0.3, 0.5]);
        let s = Matrix::from_row_slice(2, 2, &[0.5, 0.0, 0.1, 0.4]);
        let sde = LinearSde::new(
            &h + 0.2 * &h * &h,
            (Matrix::identity(2, 2) + 0.2 * &h) * s,
            0.05,
        );
        let tau = 0.3;
        let tr = sde.transition(tau);
        let cov = tr.sqrt_eta.powi(2) * (&tr.g * tr.g.transpose() * tau + &tr.l * tr.l.transpose());
        let (_, p) = sde.moments(&Vector::zeros(2), &Matrix::zeros(2, 2), tau);
        assert!((cov - p).abs().max() < 1e-14);
    }
}
