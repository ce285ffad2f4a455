//! Exact first and second moments of an SDE with affine drift and quadratic diffusion, by a
//! matrix exponential.
//!
//! For `dX = −(Ā X − ū) dt + √η D(X) dW` with `vec Σ_alg(x) = vec(D Dᵀ)(x) = C₂ vec(xxᵀ) + C₁ x + C₀`
//! (every SGD / USAM / m-USAM SDE on least squares with real mini-batches has this form, see
//! [`super::musam`]), Itô's formula gives, with `m = E X`, `M = E[X Xᵀ]`,
//!
//! `ṁ = −Ā m + ū`,
//! `Ṁ = −Ā M − M Āᵀ + ū mᵀ + m ūᵀ + η E[Σ_alg(X)]`,  `vec E[Σ_alg(X)] = C₂ vec M + C₁ m + C₀`,
//!
//! a linear ODE `ṡ = L s` in `s = (1, m, vec M)` (dimension `1 + d + d²`):
//!
//! ```text
//!        ⎡ 0     0                          0                        ⎤
//!    L = ⎢ ū     −Ā                         0                        ⎥
//!        ⎣ ηC₀   (I⊗ū + ū⊗I) + ηC₁          −(I⊗Ā + Ā⊗I) + ηC₂       ⎦
//! ```
//!
//! (`vec(ū mᵀ) = (I⊗ū) m`, `vec(m ūᵀ) = (ū⊗I) m`, `vec(ĀM) = (I⊗Ā) vec M`,
//! `vec(MĀᵀ) = (Ā⊗I) vec M`), solved exactly by `s(t) = e^{Lt} s(0)` (nalgebra's Padé
//! scaling-and-squaring exponential). The stationary moments solve `L s = 0`, `s₀ = 1`.
//!
//! The moments use `Σ_alg` itself, not a clamped square root: where `Σ_alg` is indefinite (large
//! `ρ`) they describe the unclamped model, while a Monte Carlo simulation uses a clamped root
//! (and counts the clamps).

use crate::error::{Error, Result};
use crate::linalg::{Matrix, Vector};
use crate::optim::batch_moments::MomentState;

/// `dX = −(Ā X − ū) dt + √η D(X) dW` with `vec(DDᵀ)(x) = C₂ vec(xxᵀ) + C₁ x + C₀`.
#[derive(Debug, Clone)]
pub struct AffineSde {
    /// Drift matrix `Ā`.
    pub a: Matrix,
    /// Drift offset `ū` (the drift is `−(Ā x − ū)`).
    pub u: Vector,
    /// `C₂` (`d² × d²`).
    pub c2: Matrix,
    /// `C₁` (`d² × d`).
    pub c1: Matrix,
    /// `C₀` (`d²`).
    pub c0: Vector,
    /// Learning rate `η` scaling the diffusion.
    pub eta: f64,
}

impl AffineSde {
    /// Dimension `d`.
    pub fn dim(&self) -> usize {
        self.u.len()
    }

    /// `Σ_alg(x)` (unclamped, symmetrised).
    pub fn sigma_alg(&self, x: &Vector) -> Matrix {
        let d = self.dim();
        let xx = x * x.transpose();
        let v = &self.c2 * Vector::from_column_slice(xx.as_slice()) + &self.c1 * x + &self.c0;
        let s = Matrix::from_column_slice(d, d, v.as_slice());
        (&s + s.transpose()) * 0.5
    }

    /// The generator `L` of `ṡ = L s`.
    pub fn generator(&self) -> Matrix {
        let d = self.dim();
        let dd = d * d;
        let id = Matrix::identity(d, d);
        let uc = Matrix::from_column_slice(d, 1, self.u.as_slice());
        let mut l = Matrix::zeros(1 + d + dd, 1 + d + dd);
        l.view_mut((1, 0), (d, 1)).copy_from(&uc);
        l.view_mut((1, 1), (d, d)).copy_from(&(-&self.a));
        l.view_mut((1 + d, 0), (dd, 1))
            .copy_from(&(self.eta * &self.c0));
        l.view_mut((1 + d, 1), (dd, d))
            .copy_from(&(id.kronecker(&uc) + uc.kronecker(&id) + self.eta * &self.c1));
        l.view_mut((1 + d, 1 + d), (dd, dd))
            .copy_from(&(self.eta * &self.c2 - id.kronecker(&self.a) - self.a.kronecker(&id)));
        l
    }

    /// States at `t = 0, dt, 2dt, …, n·dt` from `s0` (one exponential, then products).
    pub fn moments(&self, s0: &MomentState, dt: f64, n: usize) -> Vec<MomentState> {
        let prop = (self.generator() * dt).exp();
        let mut out = vec![s0.clone()];
        let mut s = s0.s.clone();
        for _ in 0..n {
            s = &prop * s;
            out.push(MomentState::from_vector(s.clone(), self.dim()));
        }
        out
    }

    /// Largest real part of the eigenvalues of the `(m, M)` block: `< 0` iff the moments
    /// converge.
    pub fn growth_rate(&self) -> f64 {
        let l = self.generator();
        let n = l.nrows() - 1;
        l.view((1, 1), (n, n))
            .into_owned()
            .complex_eigenvalues()
            .iter()
            .fold(f64::NEG_INFINITY, |r, z| r.max(z.re))
    }

    /// Stationary moments (`L s = 0`, `s₀ = 1`); an error when the moment ODE is not stable.
    pub fn stationary(&self) -> Result<MomentState> {
        let g = self.growth_rate();
        if g.is_nan() || g >= 0.0 {
            let g = crate::error::fmt_magnitude(g);
            return Err(Error::Unsupported(format!(
                "the SDE's moment equation is not stable (growth rate {g} ≥ 0), so there is no stationary law"
            )));
        }
        let l = self.generator();
        let n = l.nrows() - 1;
        let lhs = -l.view((1, 1), (n, n)).into_owned();
        let rhs = l.view((1, 0), (n, 1)).into_owned();
        let y = lhs
            .lu()
            .solve(&rhs)
            .ok_or_else(|| Error::Unsupported("singular stationary system".into()))?;
        let mut s = Vector::zeros(n + 1);
        s[0] = 1.0;
        s.rows_mut(1, n).copy_from(&y.column(0));
        Ok(MomentState::from_vector(s, self.dim()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sde::linear::LinearSde;

    /// With constant diffusion (`C₂ = C₁ = 0`, `C₀ = vec(S Sᵀ)`) and `ū = 0` this is the
    /// Ornstein–Uhlenbeck process, whose moments [`LinearSde`] computes independently by
    /// eigendecomposition.
    #[test]
    fn constant_diffusion_is_ornstein_uhlenbeck() {
        let h = Matrix::from_row_slice(3, 3, &[1.2, 0.3, -0.1, 0.3, 0.5, 0.2, -0.1, 0.2, 0.8]);
        let s = Matrix::from_row_slice(3, 2, &[0.5, 0.1, 0.0, 0.4, 0.2, -0.3]);
        let eta = 0.2;
        let sss = &s * s.transpose();
        let sde = AffineSde {
            a: h.clone(),
            u: Vector::zeros(3),
            c2: Matrix::zeros(9, 9),
            c1: Matrix::zeros(9, 3),
            c0: Vector::from_column_slice(sss.as_slice()),
            eta,
        };
        let ou = LinearSde::new(h, s, eta);
        let m0 = Vector::from_vec(vec![1.0, -2.0, 0.5]);
        let p0 = Matrix::identity(3, 3) * 0.3;
        let traj = sde.moments(&MomentState::from_mean_cov(&m0, &p0), 0.25, 8);
        for (j, st) in traj.iter().enumerate() {
            let (m, p) = ou.moments(&m0, &p0, 0.25 * j as f64);
            assert!(
                (st.mean() - m).abs().max() < 1e-12,
                "t = {}",
                0.25 * j as f64
            );
            assert!((st.cov() - p).abs().max() < 1e-12);
        }
        let stat = sde.stationary().unwrap();
        let (_, p_inf) = ou.moments(&m0, &p0, 200.0);
        assert!((stat.cov() - p_inf).abs().max() < 1e-12);
        assert!(stat.mean().norm() < 1e-12);
    }

    /// A scalar geometric-type SDE `dX = −a(X − x̄)dt + √η √(c X²) dW` has
    /// `d E X² /dt = −2a E X² + 2a x̄ E X + η c E X²` — checked against a hand solution of the
    /// scalar linear system at one time.
    #[test]
    fn scalar_multiplicative_noise() {
        let (a, xbar, c, eta) = (1.5, 0.4, 0.8, 0.3);
        let sde = AffineSde {
            a: Matrix::from_element(1, 1, a),
            u: Vector::from_element(1, a * xbar),
            c2: Matrix::from_element(1, 1, c),
            c1: Matrix::zeros(1, 1),
            c0: Vector::zeros(1),
            eta,
        };
        let x0 = 2.0;
        let t = 0.7;
        let s = &sde.moments(
            &MomentState::new(
                &Vector::from_element(1, x0),
                &Matrix::from_element(1, 1, x0 * x0),
            ),
            t,
            1,
        )[1];
        // m(t) = x̄ + (x0 − x̄)e^{−at}; M' = −k M + 2a x̄ m, k = 2a − ηc.
        let k = 2.0 * a - eta * c;
        let m_t = xbar + (x0 - xbar) * (-a * t).exp();
        // M(t) = e^{−kt}[x0² + ∫₀ᵗ e^{ks} 2a x̄ m(s) ds], closed form of the integral:
        let i1 = 2.0 * a * xbar * xbar * ((k * t).exp() - 1.0) / k;
        let i2 = 2.0 * a * xbar * (x0 - xbar) * (((k - a) * t).exp() - 1.0) / (k - a);
        let mm_t = (-k * t).exp() * (x0 * x0 + i1 + i2);
        assert!((s.mean()[0] - m_t).abs() < 1e-13);
        assert!(
            (s.second()[(0, 0)] - mm_t).abs() < 1e-12,
            "{} vs {mm_t}",
            s.second()[(0, 0)]
        );
    }
}
