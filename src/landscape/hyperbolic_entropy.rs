//! The implicit bias of a diagonal linear network: the hyperbolic entropy and the minimum-entropy
//! interpolator, found by Newton's method on the convex dual.
//!
//! **Potential.** A diagonal linear network `β = u ⊙ v` trained from `u = α`, `v = 0` ends at
//! `β = (a²/2) sinh(z)` with `z` (to first order in the step) in the row space of `X` and
//! `a = α_eff` per coordinate (see [`crate::landscape::dln`]). These are exactly the optimality
//! conditions of
//!
//! `min_β ψ_a(β)  s.t.  Xβ = y`,  `ψ_a(β) = Σ_i [β_i asinh(2β_i/a_i²) − √(β_i² + a_i⁴/4) + a_i²/2]`,
//!
//! since `∂ψ_a/∂β_i = asinh(2β_i/a_i²)`. In the notation of the hyperbolic entropy
//! `φ_α(β) = Σ_i [β_i asinh(β_i/α_i²) − √(β_i² + α_i⁴) + α_i²]` (Woodworth et al., 2020) this is
//! `ψ_a = φ_{a/√2}`: the `u ⊙ v` parametrisation carries a factor ½ that the `w₊² − w₋²` one does
//! not, and dropping it changes the predicted `β` visibly (the study reports it). `ψ_a` tends to
//! a multiple of `‖β‖₁` as `a → 0` and to a weighted `‖β‖₂²` as `a → ∞`.
//!
//! **Dual.** `ψ_a*(z) = Σ_i (a_i²/2)(cosh z_i − 1)`, so the dual problem is
//!
//! `min_λ D(λ) = Σ_i (a_i²/2) cosh((Xᵀλ)_i) − yᵀλ`,  and  `β = (a²/2) ⊙ sinh(Xᵀλ)`.
//!
//! `D` is smooth and strictly convex when `X` (`n × d`, `n ≤ d`) has full row rank:
//! `∇D = Xβ(λ) − y`, `∇²D = X diag((a²/2) cosh(Xᵀλ)) Xᵀ` (`n × n`). Newton's method with one
//! `n × n` Cholesky factorisation per iteration and Armijo backtracking (`c = 10⁻⁴`, halving)
//! from `λ = 0` — full steps once the predicted decrease is below what `D`'s value can resolve
//! in double precision (then Newton converges quadratically and a line search on `D` would only
//! see rounding); converged when `‖Xβ − y‖ ≤ tol (1 + ‖y‖)`. Strong duality gives a certificate: at the optimum
//! `ψ_a(β) = yᵀλ − Σ_i (a_i²/2)(cosh z_i − 1)`.

use nalgebra::{Cholesky, DMatrix, DVector};

use crate::error::{Error, Result};

/// `ψ_a(β)` (module docs); `a` is the per-coordinate scale (`α_eff`).
pub fn potential(a: &[f64], beta: &[f64]) -> f64 {
    a.iter()
        .zip(beta)
        .map(|(a, b)| {
            let a2 = a * a;
            b * (2.0 * b / a2).asinh() - (b * b + 0.25 * a2 * a2).sqrt() + 0.5 * a2
        })
        .sum()
}

/// The minimum-`ψ_a` interpolator and how it was found.
#[derive(Debug, Clone)]
pub struct DualSolution {
    /// `β = (a²/2) sinh(Xᵀλ)`.
    pub beta: Vec<f64>,
    /// The dual variable `λ` (length `n`).
    pub lambda: Vec<f64>,
    /// Newton iterations taken.
    pub iterations: usize,
    /// `‖Xβ − y‖₂` at the end.
    pub residual: f64,
    /// Duality gap `ψ_a(β) − (yᵀλ − Σ (a²/2)(cosh z − 1))` (≈ 0 at the optimum).
    pub gap: f64,
}

/// Settings of the Newton solver.
#[derive(Debug, Clone, Copy)]
pub struct NewtonSettings {
    /// Relative tolerance on `‖Xβ − y‖` (relative to `1 + ‖y‖`).
    pub tol: f64,
    /// Iteration limit.
    pub max_iter: usize,
}

impl Default for NewtonSettings {
    fn default() -> Self {
        Self {
            tol: 1e-11,
            max_iter: 200,
        }
    }
}

fn dual_value(a2h: &[f64], z: &[f64], y: &DVector<f64>, lambda: &DVector<f64>) -> f64 {
    let c: f64 = a2h.iter().zip(z).map(|(w, z)| w * z.cosh()).sum();
    c - y.dot(lambda)
}

/// Solves `min ψ_a(β) s.t. Xβ = y` through its dual (module docs). `x` is `n × d`, `a` has
/// length `d` (finite, ≥ 0). Errors if the Hessian is singular (`X` rank deficient on the
/// coordinates with `a_i > 0`), a value overflows, or the iteration limit is reached.
pub fn solve_min_entropy(
    x: &DMatrix<f64>,
    y: &[f64],
    a: &[f64],
    settings: NewtonSettings,
) -> Result<DualSolution> {
    let (n, d) = (x.nrows(), x.ncols());
    if y.len() != n || a.len() != d {
        return Err(Error::Dimension {
            what: "minimum-entropy interpolator: y and a vs X".into(),
            expected: n,
            got: y.len(),
        });
    }
    if let Some((i, v)) = a
        .iter()
        .enumerate()
        .find(|(_, v)| !(v.is_finite() && **v >= 0.0))
    {
        return Err(Error::Unsupported(format!(
            "minimum-entropy interpolator: a[{i}] = {v} must be finite and ≥ 0"
        )));
    }
    let yv = DVector::from_column_slice(y);
    let a2h: Vec<f64> = a.iter().map(|a| 0.5 * a * a).collect();
    let ynorm = yv.norm();
    let mut lambda = DVector::zeros(n);
    let mut z = vec![0.0; d];
    let mut beta = vec![0.0; d];
    let xt = x.transpose();
    let update = |lambda: &DVector<f64>, z: &mut [f64], beta: &mut [f64]| {
        let zv = &xt * lambda;
        for i in 0..d {
            z[i] = zv[i];
            beta[i] = a2h[i] * zv[i].sinh();
        }
    };
    update(&lambda, &mut z, &mut beta);
    let mut value = dual_value(&a2h, &z, &yv, &lambda);
    for it in 0..settings.max_iter {
        let bv = DVector::from_column_slice(&beta);
        let grad = x * &bv - &yv;
        let gnorm = grad.norm();
        // Hessian X diag(w) Xᵀ with w = (a²/2) cosh z.
        let mut xw = x.clone();
        for (i, mut col) in xw.column_iter_mut().enumerate() {
            col *= a2h[i] * z[i].cosh();
        }
        let hess = &xw * &xt;
        let chol = Cholesky::new(hess).ok_or_else(|| {
            Error::Unsupported(
                "minimum-entropy interpolator: the dual Hessian X diag(a² cosh z/2) Xᵀ is not positive definite (X rank deficient on the coordinates with a > 0)".into(),
            )
        })?;
        let step = -chol.solve(&grad);
        let decrement = -grad.dot(&step);
        if gnorm <= settings.tol * (1.0 + ynorm) {
            return Ok(finish(x, &yv, a, beta, lambda, it));
        }
        // Armijo backtracking while the predicted decrease is resolvable in `D`'s value; below
        // that (`decrement` under 1e-10 of |D|) Newton is in its quadratic region and takes
        // full steps, judged by the residual alone.
        let resolvable = decrement > 1e-10 * (1.0 + value.abs());
        let mut t = 1.0;
        let mut accepted = false;
        let mut trial = lambda.clone();
        let (mut tz, mut tb) = (vec![0.0; d], vec![0.0; d]);
        if !resolvable {
            trial.axpy(1.0, &step, 1.0);
            update(&trial, &mut tz, &mut tb);
            value = dual_value(&a2h, &tz, &yv, &trial);
            accepted = value.is_finite();
        }
        for _ in 0..if resolvable { 60 } else { 0 } {
            trial.copy_from(&lambda);
            trial.axpy(t, &step, 1.0);
            update(&trial, &mut tz, &mut tb);
            let v = dual_value(&a2h, &tz, &yv, &trial);
            if v.is_finite() && v <= value - 1e-4 * t * decrement {
                accepted = true;
                value = v;
                break;
            }
            t *= 0.5;
        }
        if !accepted {
            // No decrease possible at double precision: accept if already at the optimum.
            if gnorm <= 1e3 * settings.tol * (1.0 + ynorm) {
                return Ok(finish(x, &yv, a, beta, lambda, it));
            }
            return Err(Error::Unsupported(format!(
                "minimum-entropy interpolator: line search failed at iteration {it} (‖Xβ − y‖ = {gnorm:.3e})"
            )));
        }
        lambda = trial;
        z = tz;
        beta = tb;
    }
    Err(Error::Unsupported(format!(
        "minimum-entropy interpolator: no convergence in {} Newton iterations",
        settings.max_iter
    )))
}

fn finish(
    x: &DMatrix<f64>,
    y: &DVector<f64>,
    a: &[f64],
    beta: Vec<f64>,
    lambda: DVector<f64>,
    iterations: usize,
) -> DualSolution {
    let bv = DVector::from_column_slice(&beta);
    let residual = (x * &bv - y).norm();
    let z = x.transpose() * &lambda;
    let dual: f64 = y.dot(&lambda)
        - a.iter()
            .zip(z.iter())
            .map(|(a, z)| 0.5 * a * a * (z.cosh() - 1.0))
            .sum::<f64>();
    let gap = potential(a, &beta) - dual;
    DualSolution {
        beta,
        lambda: lambda.iter().copied().collect(),
        iterations,
        residual,
        gap,
    }
}

/// `‖P_⊥ asinh(2β/a²)‖ / ‖asinh(2β/a²)‖`, with `P_⊥` the projection onto the null space of `X`:
/// the stationarity part of the KKT conditions (zero exactly at the minimiser).
pub fn kkt_stationarity(x: &DMatrix<f64>, a: &[f64], beta: &[f64]) -> f64 {
    let z = DVector::from_iterator(
        beta.len(),
        beta.iter().zip(a).map(|(b, a)| (2.0 * b / (a * a)).asinh()),
    );
    let xxt = x * x.transpose();
    let Some(ch) = Cholesky::new(xxt) else {
        return f64::NAN;
    };
    let proj = x.transpose() * ch.solve(&(x * &z));
    (&z - proj).norm() / z.norm().max(f64::MIN_POSITIVE)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;
    use rand_distr::{Distribution, StandardNormal};

    fn data(n: usize, d: usize, seed: u64) -> (DMatrix<f64>, Vec<f64>) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let x = DMatrix::from_fn(n, d, |_, _| -> f64 { StandardNormal.sample(&mut rng) });
        let mut bstar = vec![0.0; d];
        bstar[0] = 0.8;
        bstar[1] = 0.6;
        let y: Vec<f64> = (0..n)
            .map(|j| (0..d).map(|i| x[(j, i)] * bstar[i]).sum())
            .collect();
        (x, y)
    }

    #[test]
    fn one_constraint_matches_a_scalar_root_by_bisection() {
        // n = 1: β_i = (a_i²/2) sinh(x_i λ) with the scalar λ solving Σ x_i β_i(λ) = y, which
        // is increasing in λ: bisect it independently of the Newton code.
        let x = DMatrix::from_row_slice(1, 4, &[0.7, -1.3, 0.2, 2.1]);
        let y = [1.7];
        let a = [0.1, 0.5, 1.0, 0.05];
        let sol = solve_min_entropy(&x, &y, &a, NewtonSettings::default()).unwrap();
        let h = |l: f64| -> f64 {
            (0..4)
                .map(|i| x[(0, i)] * 0.5 * a[i] * a[i] * (x[(0, i)] * l).sinh())
                .sum::<f64>()
                - y[0]
        };
        let (mut lo, mut hi) = (-50.0, 50.0);
        for _ in 0..200 {
            let mid = 0.5 * (lo + hi);
            if h(mid) > 0.0 {
                hi = mid;
            } else {
                lo = mid;
            }
        }
        let l = 0.5 * (lo + hi);
        assert!(
            (sol.lambda[0] - l).abs() < 1e-10,
            "{} vs {l}",
            sol.lambda[0]
        );
        for i in 0..4 {
            let b = 0.5 * a[i] * a[i] * (x[(0, i)] * l).sinh();
            assert!((sol.beta[i] - b).abs() < 1e-10);
        }
    }

    #[test]
    fn satisfies_kkt_and_strong_duality() {
        let (x, y) = data(20, 30, 3);
        for alpha in [1.0, 0.1, 0.01, 0.001] {
            // Non-uniform scales, as α_eff is.
            let a: Vec<f64> = (0..30).map(|i| alpha * (1.0 + 0.02 * i as f64)).collect();
            let sol = solve_min_entropy(&x, &y, &a, NewtonSettings::default()).unwrap();
            let ynorm: f64 = y.iter().map(|v| v * v).sum::<f64>().sqrt();
            assert!(
                sol.residual < 1e-9 * (1.0 + ynorm),
                "α {alpha}: {}",
                sol.residual
            );
            // Stationarity: asinh(2β/a²) in the row space of X, to the solver's tolerance.
            let kkt = kkt_stationarity(&x, &a, &sol.beta);
            assert!(kkt < 1e-8, "α {alpha}: {kkt}");
            assert!(
                sol.gap.abs() < 1e-8 * (1.0 + potential(&a, &sol.beta)),
                "gap {}",
                sol.gap
            );
        }
    }

    #[test]
    fn is_the_minimiser_against_feasible_perturbations() {
        // ψ_a grows along every direction of the null space of X (a convex minimiser).
        let (x, y) = data(5, 9, 4);
        let a = vec![0.3; 9];
        let sol = solve_min_entropy(&x, &y, &a, NewtonSettings::default()).unwrap();
        let base = potential(&a, &sol.beta);
        // Null-space directions: random vectors minus their projection on the row space.
        let xxt_inv = (&x * x.transpose()).try_inverse().unwrap();
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        for _ in 0..20 {
            let r = DVector::from_fn(9, |_, _| -> f64 { StandardNormal.sample(&mut rng) });
            let nvec = &r - x.transpose() * (&xxt_inv * (&x * &r));
            let b2: Vec<f64> = sol
                .beta
                .iter()
                .zip(nvec.iter())
                .map(|(b, v)| b + 1e-3 * v)
                .collect();
            assert!(potential(&a, &b2) > base);
        }
    }

    #[test]
    fn large_scale_tends_to_minimum_l2_norm_and_small_scale_to_sparse() {
        let (x, y) = data(20, 30, 5);
        // a → ∞: sinh z ≈ z, β ≈ Xᵀ(XXᵀ)⁻¹y, the minimum-norm interpolator (relative error
        // O(z²) = O(‖β‖²/a⁴), here ~1e-8).
        let a = vec![100.0; 30];
        let sol = solve_min_entropy(&x, &y, &a, NewtonSettings::default()).unwrap();
        let yv = DVector::from_column_slice(&y);
        let mn = x.transpose() * (&x * x.transpose()).try_inverse().unwrap() * yv;
        for i in 0..30 {
            assert!((sol.beta[i] - mn[i]).abs() < 1e-6, "{i}");
        }
        // a → 0: the ℓ1-like bias recovers the 2-sparse truth (20 Gaussian samples, d = 30).
        let a = vec![1e-4; 30];
        let sol = solve_min_entropy(&x, &y, &a, NewtonSettings::default()).unwrap();
        assert!((sol.beta[0] - 0.8).abs() < 1e-3 && (sol.beta[1] - 0.6).abs() < 1e-3);
        assert!(sol.beta[2..].iter().all(|b| b.abs() < 1e-3));
    }

    #[test]
    fn rejects_bad_scales_and_rank_deficiency() {
        let (x, y) = data(4, 6, 6);
        assert!(solve_min_entropy(&x, &y, &[f64::NAN; 6], NewtonSettings::default()).is_err());
        // Only two coordinates with a > 0 cannot interpolate four equations.
        let a = [1.0, 1.0, 0.0, 0.0, 0.0, 0.0];
        assert!(solve_min_entropy(&x, &y, &a, NewtonSettings::default()).is_err());
    }
}
