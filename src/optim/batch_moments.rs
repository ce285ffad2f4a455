//! Exact first and second moments of SGD, USAM and m-USAM with real mini-batches on an affine
//! finite sum (least squares): no Monte Carlo.
//!
//! One step is the random affine map `x' = K x + v`, `K = I − η A`, `v = η u`, with `(A, u)`
//! drawn afresh from the batch law ([`super::batch_law`]) independently of `x`. So with
//! `m = E x` and `M = E[x xᵀ]`:
//!
//! `m' = E[K] m + E[v]`,
//! `M' = E[K M Kᵀ] + E[K m vᵀ] + E[v mᵀ Kᵀ] + E[v vᵀ]`,
//!
//! which in `s = (1, m, vec M)` (dimension `1 + d + d²`) is one fixed linear map `s' = T s`:
//!
//! ```text
//!        ⎡ 1        0                      0        ⎤
//!    T = ⎢ E v      E K                    0        ⎥
//!        ⎣ E[v⊗v]   E[v⊗K] + E[K⊗v]        E[K⊗K]   ⎦
//! ```
//!
//! (`vec(K M Kᵀ) = (K ⊗ K) vec M`, `vec(K m vᵀ) = (v ⊗ K) m`, `vec(v mᵀ Kᵀ) = (K ⊗ v) m`),
//! with `E K = I − η E A`, `E[K⊗K] = I⊗I − η(I⊗EA + EA⊗I) + η² E[A⊗A]`,
//! `E[v⊗K] = η(Eu⊗I) − η² E[u⊗A]`, `E[K⊗v] = η(I⊗Eu) − η² E[A⊗u]`, `E[v⊗v] = η² E[u⊗u]`.
//!
//! Test functions that are linear in `(m, M)` read off exactly: `E‖x‖² = tr M`,
//! `E f(x) = ½⟨H, M⟩ − qᵀm + f(0)` on a quadratic `f(x) = ½xᵀHx − qᵀx + f(0)`.
//! The stationary moments are the fixed point `T s = s` (when the recursion is stable).

use super::batch_law::BatchLaw;
use crate::error::{Error, Result};
use crate::linalg::{Matrix, Vector};

/// The moment state `s = (1, m, vec M)`.
#[derive(Debug, Clone, PartialEq)]
pub struct MomentState {
    /// `(1, m, vec M)`.
    pub s: Vector,
    d: usize,
}

impl MomentState {
    /// From the mean `m` and the second moment `M = E[xxᵀ]`.
    pub fn new(mean: &Vector, second: &Matrix) -> Self {
        let d = mean.len();
        let mut s = Vector::zeros(1 + d + d * d);
        s[0] = 1.0;
        s.rows_mut(1, d).copy_from(mean);
        s.rows_mut(1 + d, d * d).copy_from_slice(second.as_slice());
        Self { s, d }
    }
    /// From the mean and the covariance `P` (`M = P + m mᵀ`).
    pub fn from_mean_cov(mean: &Vector, cov: &Matrix) -> Self {
        Self::new(mean, &(cov + mean * mean.transpose()))
    }
    /// Wraps a state vector of dimension `1 + d + d²`.
    pub fn from_vector(s: Vector, d: usize) -> Self {
        debug_assert_eq!(s.len(), 1 + d + d * d);
        Self { s, d }
    }
    /// Dimension `d`.
    pub fn dim(&self) -> usize {
        self.d
    }
    /// `m = E x`.
    pub fn mean(&self) -> Vector {
        self.s.rows(1, self.d).into_owned()
    }
    /// `M = E[x xᵀ]`.
    pub fn second(&self) -> Matrix {
        Matrix::from_column_slice(
            self.d,
            self.d,
            self.s.rows(1 + self.d, self.d * self.d).as_slice(),
        )
    }
    /// `Cov x = M − m mᵀ`.
    pub fn cov(&self) -> Matrix {
        let m = self.mean();
        self.second() - &m * m.transpose()
    }
    /// `E‖x‖² = tr M`.
    pub fn norm_sq(&self) -> f64 {
        self.second().trace()
    }
    /// `E‖x − x*‖² = tr M − 2 x*ᵀ m + ‖x*‖²`.
    pub fn dist_sq(&self, x_star: &Vector) -> f64 {
        self.norm_sq() - 2.0 * x_star.dot(&self.mean()) + x_star.norm_squared()
    }
    /// `E f(x)` for `f(x) = ½ xᵀHx − qᵀx + f0`.
    pub fn quadratic(&self, h: &Matrix, q: &Vector, f0: f64) -> f64 {
        0.5 * h.component_mul(&self.second()).sum() - q.dot(&self.mean()) + f0
    }
}

/// The exact discrete moment recursion `s' = T s` of one algorithm at `(η, ρ)`.
#[derive(Debug, Clone)]
pub struct DiscreteMoments {
    /// The transfer matrix `T`.
    pub t: Matrix,
    d: usize,
}

impl DiscreteMoments {
    /// `T` for the direction law `law` at learning rate `eta` and radius `rho` (`ρ = 0`: SGD).
    pub fn new(law: &BatchLaw, eta: f64, rho: f64) -> Self {
        let d = law.dim();
        let dd = d * d;
        let id = Matrix::identity(d, d);
        let (ea, eu) = law.mean_direction(rho);
        let (aa, au, ua, uu) = law.second_moments(rho);
        let ek = &id - eta * &ea;
        let ev = eta * &eu;
        let ekk =
            id.kronecker(&id) - eta * (id.kronecker(&ea) + ea.kronecker(&id)) + (eta * eta) * aa;
        let evk = eta * eu.kronecker(&id) - (eta * eta) * ua;
        let ekv = eta * id.kronecker(&eu) - (eta * eta) * au;
        let evv = (eta * eta) * uu;
        let mut t = Matrix::zeros(1 + d + dd, 1 + d + dd);
        t[(0, 0)] = 1.0;
        t.view_mut((1, 0), (d, 1)).copy_from(&ev);
        t.view_mut((1, 1), (d, d)).copy_from(&ek);
        t.view_mut((1 + d, 0), (dd, 1)).copy_from(&evv);
        t.view_mut((1 + d, 1), (dd, d)).copy_from(&(evk + ekv));
        t.view_mut((1 + d, 1 + d), (dd, dd)).copy_from(&ekk);
        Self { t, d }
    }

    /// States at steps `0, every, 2·every, …, n` from `s0`.
    pub fn moments(&self, s0: &MomentState, n: usize, every: usize) -> Vec<MomentState> {
        let mut s = s0.s.clone();
        let mut out = vec![s0.clone()];
        let mut next = s.clone();
        for k in 1..=n {
            next.gemv(1.0, &self.t, &s, 0.0);
            std::mem::swap(&mut s, &mut next);
            if k % every.max(1) == 0 {
                out.push(MomentState::from_vector(s.clone(), self.d));
            }
        }
        out
    }

    /// Spectral radius of the `(m, M)` block: `< 1` iff the moments converge.
    pub fn spectral_radius(&self) -> f64 {
        let n = self.t.nrows() - 1;
        let block = self.t.view((1, 1), (n, n)).into_owned();
        block
            .complex_eigenvalues()
            .iter()
            .fold(0.0_f64, |r, z| r.max(z.norm()))
    }

    /// The stationary moments: the fixed point of `T` with `s₀ = 1`, i.e.
    /// `(I − T_{11}) y = T_{10}`; an error when the recursion is not stable.
    pub fn stationary(&self) -> Result<MomentState> {
        let r = self.spectral_radius();
        if r.is_nan() || r >= 1.0 {
            let r = crate::error::fmt_magnitude(r);
            return Err(Error::Unsupported(format!(
                "the discrete moment recursion is not stable (spectral radius {r} ≥ 1), so there is no stationary law"
            )));
        }
        let n = self.t.nrows() - 1;
        let lhs = Matrix::identity(n, n) - self.t.view((1, 1), (n, n));
        let rhs = self.t.view((1, 0), (n, 1)).into_owned();
        let y = lhs
            .lu()
            .solve(&rhs)
            .ok_or_else(|| Error::Unsupported("singular stationary system".into()))?;
        let mut s = Vector::zeros(n + 1);
        s[0] = 1.0;
        s.rows_mut(1, n).copy_from(&y.column(0));
        Ok(MomentState::from_vector(s, self.d))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::landscape::{Landscape, LeastSquares};
    use crate::optim::batch_law::{AffineFiniteSum, BatchShape};

    /// Full batch without replacement (`B = N`) is deterministic gradient descent: the moment
    /// recursion from a point start must reproduce the deterministic iterate with zero variance.
    #[test]
    #[allow(clippy::needless_range_loop)] // index loops mirror the formulas
    fn full_batch_reproduces_gradient_descent() {
        let f = LeastSquares::synthetic(6, 3, 0.5, 1).unwrap();
        let fs = AffineFiniteSum::from_landscape(&f).unwrap();
        let law = BatchLaw::new(
            &fs,
            BatchShape {
                n: 6,
                batch: 6,
                micro: 6,
                replacement: false,
            },
        )
        .unwrap();
        let (eta, rho) = (0.1, 0.3);
        let rec = DiscreteMoments::new(&law, eta, rho);
        let x0 = Vector::from_vec(vec![1.0, -0.5, 0.2]);
        let s = rec.moments(&MomentState::new(&x0, &(&x0 * x0.transpose())), 5, 5);
        let mut x = x0.as_slice().to_vec();
        let (mut g, mut y) = (vec![0.0; 3], vec![0.0; 3]);
        for _ in 0..5 {
            f.grad_into(&x, &mut g);
            for k in 0..3 {
                y[k] = x[k] + rho * g[k];
            }
            f.grad_into(&y, &mut g);
            for k in 0..3 {
                x[k] -= eta * g[k];
            }
        }
        let last = &s[1];
        for k in 0..3 {
            assert!((last.mean()[k] - x[k]).abs() < 1e-13);
        }
        assert!(last.cov().abs().max() < 1e-13);
    }

    #[test]
    fn state_readouts() {
        let m = Vector::from_vec(vec![1.0, 2.0]);
        let p = Matrix::from_row_slice(2, 2, &[0.5, 0.1, 0.1, 0.2]);
        let s = MomentState::from_mean_cov(&m, &p);
        assert!((s.norm_sq() - (5.0 + 0.7)).abs() < 1e-14);
        assert!((s.cov() - &p).abs().max() < 1e-14);
        let xs = Vector::from_vec(vec![1.0, 1.0]);
        assert!((s.dist_sq(&xs) - (1.0 + 0.7)).abs() < 1e-14);
        let h = Matrix::identity(2, 2);
        let q = Vector::from_vec(vec![1.0, 0.0]);
        assert!((s.quadratic(&h, &q, 0.25) - (0.5 * 5.7 - 1.0 + 0.25)).abs() < 1e-14);
    }
}
