//! Exact moments of the discrete algorithms where they are linear recursions (the exact
//! reference of the convergence study).
//!
//! On `f = ½ xᵀHx` with the additive oracle `Z = Sξ` (or full batch, `S = 0`), SGD and USAM are
//! `x_{k+1} = A x_k − B ξ_k` with
//! `A = I − η(H + ρH²)`, `B = η(I + ρH) S` (SGD: `ρ = 0`), so the mean and covariance obey
//! `m ← A m`, `P ← A P Aᵀ + B Bᵀ` with no Monte Carlo at all.
//!
//! SGD with the subsampling oracle on a finite sum of quadratics (`∇f_i(x) = G_i x + c_i`,
//! e.g. least squares) is a linear recursion with *random* coefficients,
//! `x_{k+1} = x_k − η (Ḡ_γ x_k + c̄_γ)`, `Ḡ_γ = (1/B) Σ_{i∈γ} G_i`, `c̄_γ = (1/B) Σ_{i∈γ} c_i`,
//! with `γ` independent of `x_k`. For any per-sample quantities `u_i, v_i` and their batch
//! means, `E[ū_γ v̄_γᵀ] = c_B (1/N) Σ_i u_i v_iᵀ + (1 − c_B) ū v̄ᵀ` for both samplings
//! (`c_B = 1/B` with replacement, `(N − B)/(B(N − 1))` without: the pair-inclusion
//! probability `B(B−1)/(N(N−1))` gives exactly this split), so the mean `m` and the second
//! moment `M = E[x xᵀ]` obey a closed recursion ([`SubsamplingSgdMoments`]).

use super::AlgorithmKind;
use crate::landscape::{FiniteSum, Landscape};
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

/// Exact mean and second moment of SGD with the subsampling oracle on a finite sum whose
/// per-sample gradients are affine, `∇f_i(x) = G_i x + c_i` (see the module docs):
///
/// * `m ← m − η (Ḡ m + c̄)`;
/// * `M ← M − η (M Ḡ + Ḡ M + m c̄ᵀ + c̄ mᵀ) + η² E[e_γ e_γᵀ]`, with
///   `E[e_γ e_γᵀ] = c_B (1/N) Σ_i E_i + (1 − c_B) Ē`,
///   `E_i = G_i M G_i + G_i m c_iᵀ + c_i mᵀ G_i + c_i c_iᵀ` and `Ē` the same with `Ḡ, c̄`.
#[derive(Debug, Clone)]
pub struct SubsamplingSgdMoments {
    g: Vec<Matrix>,
    c: Vec<Vector>,
    g_bar: Matrix,
    c_bar: Vector,
    c_b: f64,
    eta: f64,
}

impl SubsamplingSgdMoments {
    /// From the per-sample Hessians and gradients at 0 of `f` (read through [`FiniteSum`];
    /// the caller guarantees they are affine, e.g. least squares). `c_b` is the oracle's
    /// `c_B` ([`crate::oracle::Subsampling::c_b`]).
    pub fn new(f: &dyn FiniteSum, c_b: f64, eta: f64) -> Self {
        let (d, n) = (f.dim(), f.n_samples());
        let zero = vec![0.0; d];
        let mut e = vec![0.0; d];
        let mut col = vec![0.0; d];
        let mut g = Vec::with_capacity(n);
        let mut c = Vec::with_capacity(n);
        for i in 0..n {
            let mut gi = Matrix::zeros(d, d);
            for j in 0..d {
                e.fill(0.0);
                e[j] = 1.0;
                f.sample_hess_vec_into(i, &zero, &e, &mut col);
                gi.column_mut(j).copy_from_slice(&col);
            }
            f.sample_grad_into(i, &zero, &mut col);
            g.push(gi);
            c.push(Vector::from_column_slice(&col));
        }
        let nf = n as f64;
        let g_bar = g.iter().fold(Matrix::zeros(d, d), |a, b| a + b) / nf;
        let c_bar = c.iter().fold(Vector::zeros(d), |a, b| a + b) / nf;
        Self {
            g,
            c,
            g_bar,
            c_bar,
            c_b,
            eta,
        }
    }

    fn outer(g: &Matrix, c: &Vector, m: &Vector, mm: &Matrix) -> Matrix {
        let gm = g * m;
        g * mm * g.transpose() + &gm * c.transpose() + c * gm.transpose() + c * c.transpose()
    }

    /// `(m_n, M_n)` after `n` steps from `(m₀, M₀)` (`M₀ = P₀ + m₀m₀ᵀ`).
    pub fn second_moment(&self, m0: &Vector, mm0: &Matrix, n: usize) -> (Vector, Matrix) {
        let (mut m, mut mm) = (m0.clone(), mm0.clone());
        let nf = self.g.len() as f64;
        let eta = self.eta;
        for _ in 0..n {
            let mut per_sample = Matrix::zeros(m.len(), m.len());
            for (gi, ci) in self.g.iter().zip(&self.c) {
                per_sample += Self::outer(gi, ci, &m, &mm);
            }
            let e_ee = per_sample * (self.c_b / nf)
                + Self::outer(&self.g_bar, &self.c_bar, &m, &mm) * (1.0 - self.c_b);
            let cross = &mm * self.g_bar.transpose() + &m * self.c_bar.transpose();
            let new_mm = &mm - (&cross + cross.transpose()) * eta + e_ee * (eta * eta);
            m = &m - (&self.g_bar * &m + &self.c_bar) * eta;
            mm = (&new_mm + new_mm.transpose()) * 0.5;
        }
        (m, mm)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::landscape::LeastSquares;
    use crate::oracle::Subsampling;

    /// One step of the recursion against brute-force enumeration of every batch (each
    /// `B`-subset equally likely without replacement; each ordered `B`-tuple with
    /// replacement): an independent, exact computation of `E[x₁]` and `E[x₁x₁ᵀ]`.
    #[test]
    fn subsampling_sgd_step_matches_enumeration() {
        let (n, d, eta) = (5, 3, 0.3);
        let ls = LeastSquares::synthetic(n, d, 0.7, 4).unwrap();
        let m0 = Vector::from_vec(vec![0.5, -1.0, 0.2]);
        let p0 = Matrix::from_row_slice(3, 3, &[1.0, 0.2, 0.0, 0.2, 0.5, 0.1, 0.0, 0.1, 0.8]);
        let mm0 = &p0 + &m0 * m0.transpose();
        for replacement in [false, true] {
            let b = 2;
            let sub = Subsampling {
                batch: b,
                replacement,
                n,
            };
            let rec = SubsamplingSgdMoments::new(&ls, sub.c_b(), eta);
            let (m1, mm1) = rec.second_moment(&m0, &mm0, 1);
            // Enumerate batches.
            let mut batches = Vec::new();
            for i in 0..n {
                for j in 0..n {
                    if replacement || i < j {
                        batches.push([i, j]);
                    }
                }
            }
            let (mut em, mut emm) = (Vector::zeros(d), Matrix::zeros(d, d));
            for batch in &batches {
                // x₁ = A x₀ − η c̄ with A = I − η Ḡ: E x₁ = A m₀ − η c̄,
                // E x₁x₁ᵀ = A M₀ Aᵀ − η (A m₀ c̄ᵀ + c̄ m₀ᵀ Aᵀ) + η² c̄ c̄ᵀ.
                let mut gb = Matrix::zeros(d, d);
                let mut cb = Vector::zeros(d);
                for &i in batch {
                    gb += rec.g[i].clone() / b as f64;
                    cb += rec.c[i].clone() / b as f64;
                }
                let a = Matrix::identity(d, d) - gb * eta;
                let am = &a * &m0;
                em += (&am - &cb * eta) / batches.len() as f64;
                emm += (&a * &mm0 * a.transpose()
                    - (&am * cb.transpose()) * eta
                    - (&cb * am.transpose()) * eta
                    + &cb * cb.transpose() * (eta * eta))
                    / batches.len() as f64;
            }
            // Both are exact; the tolerance is rounding (entries are O(1)).
            assert!((&m1 - em).abs().max() < 1e-13, "{replacement}");
            assert!((&mm1 - emm).abs().max() < 1e-13, "{replacement}");
        }
    }
}
