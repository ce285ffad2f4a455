//! Exact moments of the discrete algorithms where they are linear recursions (the exact
//! reference of the convergence study).
//!
//! On `f = ½ xᵀHx` with the additive oracle `Z = Sξ` (or full batch, `S = 0`), SGD and USAM are
//! `x_{k+1} = A x_k − B ξ_k` with
//! `A = I − η(H + ρH²)`, `B = η(I + ρH) S` (SGD: `ρ = 0`), so the mean and covariance obey
//! `m ← A m`, `P ← A P Aᵀ + B Bᵀ` with no Monte Carlo at all.

use super::AlgorithmKind;
use crate::landscape::Landscape;
use crate::linalg::{Matrix, Vector};
use crate::oracle::Oracle;

/// The linear recursion `x ← A x − B ξ`.
#[derive(Debug, Clone)]
pub struct LinearRecursion {
    /// `A`.
    pub a: Matrix,
    /// `B`.
    pub b: Matrix,
}

impl LinearRecursion {
    /// The recursion of `alg`, if it is linear on this landscape/oracle.
    pub fn of(
        alg: AlgorithmKind,
        f: &dyn Landscape,
        oracle: &Oracle,
        eta: f64,
        rho: f64,
    ) -> Option<Self> {
        let h = f.centred_quadratic()?;
        let d = f.dim();
        let s = oracle.constant_factor(d)?;
        let rho = match alg {
            AlgorithmKind::Sgd => 0.0,
            AlgorithmKind::Usam => rho,
            _ => return None,
        };
        let id = Matrix::identity(d, d);
        Some(Self {
            a: &id - eta * (h + rho * h * h),
            b: eta * (id + rho * h) * s,
        })
    }

    /// Moments `(m_k, P_k)` at `k = 0, every, 2·every, …, n`.
    pub fn moments(
        &self,
        m0: &Vector,
        p0: &Matrix,
        n: usize,
        every: usize,
    ) -> Vec<(Vector, Matrix)> {
        let mut out = Vec::with_capacity(n / every.max(1) + 1);
        self.for_each_moment(m0, p0, n, every, |_, m, p| out.push((m.clone(), p.clone())));
        out
    }

    /// Calls `visit(k, m_k, P_k)` at `k = 0, every, 2·every, …, n` without storing the moments
    /// (`every = 1`: every step, as the weak error's max over `k ≤ n` needs).
    pub fn for_each_moment(
        &self,
        m0: &Vector,
        p0: &Matrix,
        n: usize,
        every: usize,
        mut visit: impl FnMut(usize, &Vector, &Matrix),
    ) {
        let every = every.max(1);
        let bbt = &self.b * self.b.transpose();
        let (mut m, mut p) = (m0.clone(), p0.clone());
        visit(0, &m, &p);
        for k in 1..=n {
            m = &self.a * m;
            p = &self.a * p * self.a.transpose() + &bbt;
            if k % every == 0 {
                visit(k, &m, &p);
            }
        }
    }
}
