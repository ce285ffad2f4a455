//! Diagonal linear network for sparse regression (Andriushchenko & Flammarion, *Towards
//! Understanding Sharpness-Aware Minimization*, ICML 2022, §4; Woodworth et al. 2020).
//!
//! **Model.** Parameters `x = (u, v) ∈ ℝ^{2d}` (first `u`, then `v`), linear predictor
//! `β = u ⊙ v`, data `X ∈ ℝ^{n×d}` (rows `x_j`), targets `y`. Per sample
//! `r_j = x_jᵀ(u ⊙ v) − y_j`, `ℓ_j = ½ r_j²`, and `f = (1/n) Σ_j ℓ_j = (1/2n)‖Xβ − y‖²`.
//!
//! **Derivatives** of one sample, with `a_j = (x_j ⊙ v, x_j ⊙ u) = ∂r_j/∂(u, v)`:
//! `∇ℓ_j = r_j a_j` and `∇²ℓ_j = a_j a_jᵀ + r_j [[0, D_j], [D_j, 0]]`, `D_j = diag(x_j)`, so
//! `∇²ℓ_j (p, q) = (a_jᵀ(p, q)) a_j + r_j (x_j ⊙ q, x_j ⊙ p)`.
//!
//! **Data** ([`SparseRegression`]): `β*` has `k` non-zero coordinates (the first `k`), drawn
//! `|N(0, 1)|` and scaled to `‖β*‖₂ = 1`; `x_j ~ N(0, I_d)`; noiseless `y = Xβ*`; a test set of
//! the same law. Because `x ~ N(0, I)`, the population test loss is exactly
//! `E ½(xᵀβ − xᵀβ*)² = ½‖β − β*‖²`.
//!
//! **Effective initialisation** ([`EffectiveInit`]). With `s = u + v` and `q = u − v`, every
//! algorithm of the SAM family (GD, SGD, n-SAM, m-SAM, normalised or not) moves `s` and `q`
//! *coordinate-wise multiplicatively*: for GD, `s ← (1 − γg) ⊙ s`, `q ← (1 + γg) ⊙ q` with
//! `g = Xᵀr/n`; a perturbed gradient only changes the factors. From `u = α`, `v = 0` (so
//! `s₀ = q₀ = α`) one gets `s_T q_T = α² Π_t (s-factor ⊙ q-factor)`, and writing
//! `s_T = α_eff e^{−θ}`, `q_T = α_eff e^{θ}`,
//!
//! `β_T = (s_T² − q_T²)/4 = −(α_eff²/2) sinh(2θ)`,  `α_eff² = α² Π_t (s-factor ⊙ q-factor)`.
//!
//! `2θ = Σ_t ln(q-factor/s-factor)` lies in the row space of `X` to first order in the step
//! (`2γ Xᵀ Σ_t r_t/n` for GD), which is what makes `β_T` the minimiser of the hyperbolic entropy
//! `φ_{α_eff}` on `{Xβ = y}` ([`crate::landscape::hyperbolic_entropy`]). The factors are tracked
//! step by step as `s_new/s`, `q_new/q`. If both change sign in one step their product stays
//! positive and nothing breaks; if exactly one does (a product `≤ 0`, e.g. SGD's
//! `1 − γ²r_j²x_{ji}² < 0` when one sample's step overshoots, `γ|r_j x_{ji}| > 1`), `s q` changes
//! sign, the hyperbolic parametrisation no longer describes the run, and `α_eff` of that
//! coordinate is undefined (`NaN`): counted and reported, never hidden.
//! `Δ = −ln(α_eff²/α²) = −Σ_t ln(s-factor · q-factor)` is the shrinkage per coordinate.

use rand::Rng;
use rand_distr::{Distribution, StandardNormal};

use super::{FiniteSum, Landscape};
use crate::error::{Error, Result};
use crate::linalg::Matrix;

/// A diagonal linear network on a fixed training set (see module docs).
#[derive(Debug, Clone)]
pub struct DiagonalLinearNetwork {
    /// `X`, row-major (`n × d`): sample `j` is `x[j d .. (j+1) d]`.
    x: Vec<f64>,
    y: Vec<f64>,
    d: usize,
}

impl DiagonalLinearNetwork {
    /// From `X` (`n × d`, row-major) and `y` (length `n`).
    pub fn new(x: Vec<f64>, y: Vec<f64>, d: usize) -> Result<Self> {
        let n = y.len();
        if d == 0 || n == 0 {
            return Err(Error::config(
                "data",
                format!("n = {n}, d = {d}"),
                "needs n ≥ 1 and d ≥ 1",
            ));
        }
        if x.len() != n * d {
            return Err(Error::Dimension {
                what: "diagonal linear network: X entries vs n·d".into(),
                expected: n * d,
                got: x.len(),
            });
        }
        Ok(Self { x, y, d })
    }

    /// Input dimension `d` (the parameter dimension is `2d`).
    pub fn input_dim(&self) -> usize {
        self.d
    }

    /// Sample `j`'s input `x_j`.
    pub fn sample(&self, j: usize) -> &[f64] {
        &self.x[j * self.d..(j + 1) * self.d]
    }

    /// Targets `y`.
    pub fn targets(&self) -> &[f64] {
        &self.y
    }

    /// `X` as an `n × d` matrix (allocates).
    pub fn design(&self) -> Matrix {
        Matrix::from_row_slice(self.y.len(), self.d, &self.x)
    }

    /// `β = u ⊙ v` into `out` (length `d`).
    pub fn beta_into(&self, params: &[f64], out: &mut [f64]) {
        let (u, v) = params.split_at(self.d);
        for ((o, a), b) in out.iter_mut().zip(u).zip(v) {
            *o = a * b;
        }
    }

    /// `β = u ⊙ v`.
    pub fn beta(&self, params: &[f64]) -> Vec<f64> {
        let mut b = vec![0.0; self.d];
        self.beta_into(params, &mut b);
        b
    }

    /// `r_j = x_jᵀ(u ⊙ v) − y_j`.
    fn residual(&self, j: usize, params: &[f64]) -> f64 {
        let (u, v) = params.split_at(self.d);
        let xj = self.sample(j);
        let mut s = 0.0;
        for i in 0..self.d {
            s += xj[i] * u[i] * v[i];
        }
        s - self.y[j]
    }

    /// The training loss of a linear predictor `β`: `(1/2n)‖Xβ − y‖²`.
    pub fn loss_of_beta(&self, beta: &[f64]) -> f64 {
        let n = self.y.len();
        let mut acc = 0.0;
        for j in 0..n {
            let r: f64 = self
                .sample(j)
                .iter()
                .zip(beta)
                .map(|(a, b)| a * b)
                .sum::<f64>()
                - self.y[j];
            acc += r * r;
        }
        0.5 * acc / n as f64
    }
}

impl Landscape for DiagonalLinearNetwork {
    fn dim(&self) -> usize {
        2 * self.d
    }
    fn loss(&self, x: &[f64]) -> f64 {
        let n = self.y.len();
        (0..n).map(|j| self.sample_loss(j, x)).sum::<f64>() / n as f64
    }
    fn grad_into(&self, x: &[f64], out: &mut [f64]) {
        let n = self.y.len();
        let d = self.d;
        out.fill(0.0);
        let (u, v) = x.split_at(d);
        let (gu, gv) = out.split_at_mut(d);
        for j in 0..n {
            let r = self.residual(j, x) / n as f64;
            let xj = self.sample(j);
            for i in 0..d {
                gu[i] += r * xj[i] * v[i];
                gv[i] += r * xj[i] * u[i];
            }
        }
    }
    fn hess_vec_into(&self, x: &[f64], w: &[f64], out: &mut [f64]) {
        let n = self.y.len();
        let d = self.d;
        out.fill(0.0);
        let (u, v) = x.split_at(d);
        let (p, q) = w.split_at(d);
        let (hu, hv) = out.split_at_mut(d);
        for j in 0..n {
            let r = self.residual(j, x);
            let xj = self.sample(j);
            let mut aw = 0.0;
            for i in 0..d {
                aw += xj[i] * (v[i] * p[i] + u[i] * q[i]);
            }
            let (aw, r) = (aw / n as f64, r / n as f64);
            for i in 0..d {
                hu[i] += aw * xj[i] * v[i] + r * xj[i] * q[i];
                hv[i] += aw * xj[i] * u[i] + r * xj[i] * p[i];
            }
        }
    }
    fn hessian(&self, x: &[f64]) -> Matrix {
        let m = 2 * self.d;
        let mut h = Matrix::zeros(m, m);
        let mut e = vec![0.0; m];
        let mut col = vec![0.0; m];
        for c in 0..m {
            e[c] = 1.0;
            self.hess_vec_into(x, &e, &mut col);
            e[c] = 0.0;
            for r in 0..m {
                h[(r, c)] = col[r];
            }
        }
        h
    }
    fn describe(&self) -> String {
        format!(
            "diagonal linear network β = u ⊙ v (n = {}, d = {})",
            self.y.len(),
            self.d
        )
    }
    fn as_finite_sum(&self) -> Option<&dyn FiniteSum> {
        Some(self)
    }
}

impl FiniteSum for DiagonalLinearNetwork {
    fn n_samples(&self) -> usize {
        self.y.len()
    }
    fn sample_loss(&self, j: usize, x: &[f64]) -> f64 {
        0.5 * self.residual(j, x).powi(2)
    }
    fn sample_grad_into(&self, j: usize, x: &[f64], out: &mut [f64]) {
        let d = self.d;
        let r = self.residual(j, x);
        let xj = self.sample(j);
        let (u, v) = x.split_at(d);
        let (gu, gv) = out.split_at_mut(d);
        for i in 0..d {
            let rx = r * xj[i];
            gu[i] = rx * v[i];
            gv[i] = rx * u[i];
        }
    }
    fn sample_hess_vec_into(&self, j: usize, x: &[f64], w: &[f64], out: &mut [f64]) {
        let d = self.d;
        let r = self.residual(j, x);
        let xj = self.sample(j);
        let (u, v) = x.split_at(d);
        let (p, q) = w.split_at(d);
        let mut aw = 0.0;
        for i in 0..d {
            aw += xj[i] * (v[i] * p[i] + u[i] * q[i]);
        }
        let (hu, hv) = out.split_at_mut(d);
        for i in 0..d {
            hu[i] = aw * xj[i] * v[i] + r * xj[i] * q[i];
            hv[i] = aw * xj[i] * u[i] + r * xj[i] * p[i];
        }
    }
}

/// A sparse regression problem: training network, test set and ground truth (module docs).
#[derive(Debug, Clone)]
pub struct SparseRegression {
    /// The training landscape.
    pub train: DiagonalLinearNetwork,
    /// Test inputs, row-major (`m × d`).
    pub x_test: Vec<f64>,
    /// Test targets `X_test β*`.
    pub y_test: Vec<f64>,
    /// The ground truth `β*` (`k` non-zero coordinates, `‖β*‖₂ = 1`).
    pub beta_star: Vec<f64>,
    /// Support size `k` (the first `k` coordinates).
    pub k: usize,
}

impl SparseRegression {
    /// Draws a problem from `rng`, in this order: the `k` non-zero coordinates of `β*`, then
    /// `X` row by row, then the test inputs row by row. `1 ≤ k ≤ d`, `n ≥ 1`, `test ≥ 1`.
    pub fn generate<R: Rng + ?Sized>(
        n: usize,
        d: usize,
        k: usize,
        test: usize,
        rng: &mut R,
    ) -> Result<Self> {
        if d == 0 {
            return Err(Error::config("data.d", d, "must be ≥ 1"));
        }
        if n == 0 {
            return Err(Error::config("data.n", n, "must be ≥ 1"));
        }
        if k == 0 || k > d {
            return Err(Error::config(
                "data.k",
                k,
                format!("must be in 1..={d} (d)"),
            ));
        }
        if test == 0 {
            return Err(Error::config("data.test_points", test, "must be ≥ 1"));
        }
        let mut beta_star = vec![0.0; d];
        for b in beta_star.iter_mut().take(k) {
            let z: f64 = StandardNormal.sample(rng);
            *b = z.abs();
        }
        let norm = beta_star.iter().map(|b| b * b).sum::<f64>().sqrt();
        beta_star.iter_mut().for_each(|b| *b /= norm);
        let mut draw = |rows: usize| -> Vec<f64> {
            (0..rows * d)
                .map(|_| -> f64 { StandardNormal.sample(rng) })
                .collect()
        };
        let x = draw(n);
        let x_test = draw(test);
        let predict = |x: &[f64]| -> Vec<f64> {
            x.chunks_exact(d)
                .map(|row| row.iter().zip(&beta_star).map(|(a, b)| a * b).sum())
                .collect()
        };
        let y = predict(&x);
        let y_test = predict(&x_test);
        Ok(Self {
            train: DiagonalLinearNetwork::new(x, y, d)?,
            x_test,
            y_test,
            beta_star,
            k,
        })
    }

    /// Population test loss `½‖β − β*‖²` (exact for `x ~ N(0, I)`).
    pub fn population_test_loss(&self, beta: &[f64]) -> f64 {
        0.5 * beta
            .iter()
            .zip(&self.beta_star)
            .map(|(b, s)| (b - s) * (b - s))
            .sum::<f64>()
    }

    /// Test loss on the sampled test set, `(1/2m) Σ_t (x_tᵀβ − y_t)²`.
    pub fn sampled_test_loss(&self, beta: &[f64]) -> f64 {
        let d = beta.len();
        let m = self.y_test.len();
        let mut acc = 0.0;
        for (row, y) in self.x_test.chunks_exact(d).zip(&self.y_test) {
            let r: f64 = row.iter().zip(beta).map(|(a, b)| a * b).sum::<f64>() - y;
            acc += r * r;
        }
        0.5 * acc / m as f64
    }

    /// `‖β*‖₁`.
    pub fn beta_star_l1(&self) -> f64 {
        self.beta_star.iter().map(|b| b.abs()).sum()
    }
}

/// The initialisation `u = α·1`, `v = 0` as a parameter vector of length `2d`.
pub fn initial_params(d: usize, alpha: f64) -> Vec<f64> {
    let mut p = vec![0.0; 2 * d];
    p[..d].fill(alpha);
    p
}

/// Steps between folds of the running products into logarithms (a log per coordinate and step
/// would cost more than the step itself). A product leaving `[2^{−900}, 2^{900}]` is folded at
/// once, so no over- or underflow can occur whatever the factors.
const FOLD_EVERY: usize = 64;

/// The exact product formula for `α_eff` (module docs): running `Σ_t ln(s-factor · q-factor)`
/// per coordinate.
#[derive(Debug, Clone)]
pub struct EffectiveInit {
    alpha: f64,
    log_sum: Vec<f64>,
    pending: Vec<f64>,
    since_fold: usize,
    sign_flips: usize,
}

impl EffectiveInit {
    /// Bookkeeping for dimension `d` from `u = α`, `v = 0`.
    pub fn new(d: usize, alpha: f64) -> Self {
        Self {
            alpha,
            log_sum: vec![0.0; d],
            pending: vec![1.0; d],
            since_fold: 0,
            sign_flips: 0,
        }
    }

    /// Records one step from parameters `before = (u, v)` to `after` (both length `2d`).
    pub fn record(&mut self, before: &[f64], after: &[f64]) {
        let d = self.log_sum.len();
        let mut tiny = false;
        for i in 0..d {
            let (s0, q0) = (before[i] + before[d + i], before[i] - before[d + i]);
            let (s1, q1) = (after[i] + after[d + i], after[i] - after[d + i]);
            let factor = (s1 / s0) * (q1 / q0);
            // `!(x > 0)` also catches NaN.
            if !(factor > 0.0 && factor.is_finite()) {
                self.sign_flips += 1;
                self.pending[i] = f64::NAN;
                continue;
            }
            self.pending[i] *= factor;
            tiny |= !(self.pending[i] > 2f64.powi(-900) && self.pending[i] < 2f64.powi(900));
        }
        self.since_fold += 1;
        if tiny || self.since_fold >= FOLD_EVERY {
            self.fold();
        }
    }

    fn fold(&mut self) {
        for (l, p) in self.log_sum.iter_mut().zip(self.pending.iter_mut()) {
            *l += p.ln();
            *p = 1.0;
        }
        self.since_fold = 0;
    }

    /// Number of (step, coordinate) pairs at which a factor was `≤ 0` or not finite (then
    /// `α_eff` of that coordinate is `NaN`).
    pub fn sign_flips(&self) -> usize {
        self.sign_flips
    }

    /// `Σ_t ln(s-factor · q-factor)` per coordinate, i.e. `ln(α_eff²/α²)`.
    pub fn log_ratio(&self) -> Vec<f64> {
        self.log_sum
            .iter()
            .zip(&self.pending)
            .map(|(l, p)| l + p.ln())
            .collect()
    }

    /// `α_eff` per coordinate: `α · exp(½ Σ_t ln(s-factor · q-factor))`.
    pub fn alpha_eff(&self) -> Vec<f64> {
        self.log_ratio()
            .iter()
            .map(|l| self.alpha * (0.5 * l).exp())
            .collect()
    }

    /// `Δ = −ln(α_eff²/α²)` per coordinate.
    pub fn delta(&self) -> Vec<f64> {
        self.log_ratio().iter().map(|l| -l).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::landscape::fd;
    use crate::optim::msam::{MSam, MSamWorkspace};
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    fn problem(n: usize, d: usize, k: usize, seed: u64) -> SparseRegression {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        SparseRegression::generate(n, d, k, 50, &mut rng).unwrap()
    }

    fn point(d: usize, seed: u64) -> Vec<f64> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        (0..2 * d)
            .map(|_| -> f64 { StandardNormal.sample(&mut rng) })
            .collect()
    }

    #[test]
    fn derivatives_match_finite_differences() {
        // Central differences with step 1e-5 have truncation error ~ step² · f''' ≈ 1e-9 here
        // and rounding ~ 1e-16/1e-5 = 1e-11, so 1e-7 leaves two orders of margin.
        let p = problem(7, 5, 2, 1);
        let x = point(5, 2);
        assert!(fd::grad_error(&p.train, &x, 1e-5) < 1e-7);
        assert!(fd::hess_error(&p.train, &x, 1e-5) < 1e-7);
    }

    #[test]
    fn per_sample_derivatives_match_finite_differences_and_sum_to_full() {
        let p = problem(6, 4, 2, 3);
        let f = &p.train;
        let x = point(4, 4);
        let w = point(4, 5);
        let m = 8;
        let (mut g, mut gj, mut hv, mut hvj) =
            (vec![0.0; m], vec![0.0; m], vec![0.0; m], vec![0.0; m]);
        let (mut gs, mut hs, mut fs) = (vec![0.0; m], vec![0.0; m], 0.0);
        f.grad_into(&x, &mut g);
        f.hess_vec_into(&x, &w, &mut hv);
        let h = 1e-5;
        for j in 0..6 {
            f.sample_grad_into(j, &x, &mut gj);
            f.sample_hess_vec_into(j, &x, &w, &mut hvj);
            fs += f.sample_loss(j, &x) / 6.0;
            for c in 0..m {
                gs[c] += gj[c] / 6.0;
                hs[c] += hvj[c] / 6.0;
                // ∂ℓ_j/∂x_c by a central difference.
                let mut xp = x.clone();
                xp[c] += h;
                let mut xm = x.clone();
                xm[c] -= h;
                let fdv = (f.sample_loss(j, &xp) - f.sample_loss(j, &xm)) / (2.0 * h);
                assert!(
                    (fdv - gj[c]).abs() < 1e-7 * (1.0 + gj[c].abs()),
                    "grad {j} {c}"
                );
            }
            // ∇²ℓ_j w by a central difference of ∇ℓ_j along w.
            let xp: Vec<f64> = x.iter().zip(&w).map(|(a, b)| a + h * b).collect();
            let xm: Vec<f64> = x.iter().zip(&w).map(|(a, b)| a - h * b).collect();
            let (mut gp, mut gm) = (vec![0.0; m], vec![0.0; m]);
            f.sample_grad_into(j, &xp, &mut gp);
            f.sample_grad_into(j, &xm, &mut gm);
            for c in 0..m {
                let fdv = (gp[c] - gm[c]) / (2.0 * h);
                assert!(
                    (fdv - hvj[c]).abs() < 1e-6 * (1.0 + hvj[c].abs()),
                    "hvp {j} {c}"
                );
            }
        }
        assert!((fs - f.loss(&x)).abs() < 1e-12);
        for c in 0..m {
            assert!((gs[c] - g[c]).abs() < 1e-12);
            assert!((hs[c] - hv[c]).abs() < 1e-12);
        }
        // The loss of β agrees with the network's loss.
        assert!((f.loss_of_beta(&f.beta(&x)) - f.loss(&x)).abs() < 1e-12);
    }

    #[test]
    fn data_follow_the_specification() {
        let p = problem(20, 30, 3, 7);
        assert_eq!(p.beta_star.len(), 30);
        let norm: f64 = p.beta_star.iter().map(|b| b * b).sum::<f64>().sqrt();
        assert!((norm - 1.0).abs() < 1e-12);
        assert!(p.beta_star[..3].iter().all(|b| *b > 0.0));
        assert!(p.beta_star[3..].iter().all(|b| *b == 0.0));
        // Noiseless: β* interpolates the training and test data.
        assert!(p.train.loss_of_beta(&p.beta_star) < 1e-28);
        assert!(p.sampled_test_loss(&p.beta_star) < 1e-28);
        assert_eq!(p.population_test_loss(&p.beta_star), 0.0);
        // β = 0: population loss ½‖β*‖² = ½.
        assert!((p.population_test_loss(&[0.0; 30]) - 0.5).abs() < 1e-15);
    }

    #[test]
    fn sampled_test_loss_estimates_the_population_loss() {
        // With 20 000 test points the sampled loss of a fixed β is a mean of ½(xᵀe)², e = β − β*,
        // whose relative standard deviation is √2/√20000 = 1 %; 5 % is 5 sd.
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        let p = SparseRegression::generate(5, 10, 2, 20_000, &mut rng).unwrap();
        let beta: Vec<f64> = (0..10).map(|i| 0.1 * i as f64 - 0.3).collect();
        let (a, b) = (p.sampled_test_loss(&beta), p.population_test_loss(&beta));
        assert!((a / b - 1.0).abs() < 0.05, "{a} vs {b}");
    }

    /// One step of n-SAM or 1-SAM by hand from the formulas in the module docs / the study's
    /// docs: `s ← s ⊙ (1 − γ(ĝ + ρh))`, `q ← q ⊙ (1 + γ(ĝ − ρh))`, where for n-SAM `ĝ = Xᵀr̂/n`
    /// at the perturbed point and `h = ĝ ⊙ g`, for 1-SAM `ĝ = Σ_j r̂_j x_j/n` (each at its own
    /// perturbed point) and `h = Σ_j r̂_j r_j x_j²/n`.
    #[allow(clippy::needless_range_loop)] // index-for-index transcription of the formulas
    fn hand_step(
        p: &DiagonalLinearNetwork,
        x: &[f64],
        gamma: f64,
        rho: f64,
        one: bool,
    ) -> Vec<f64> {
        let d = p.input_dim();
        let n = p.n_samples();
        let (u, v) = x.split_at(d);
        let r: Vec<f64> = (0..n).map(|j| p.residual(j, x)).collect();
        let mut ghat = vec![0.0; d];
        let mut h = vec![0.0; d];
        if one {
            for j in 0..n {
                let xj = p.sample(j);
                // Perturbed point of sample j: û = u + ρ r_j x_j ⊙ v, v̂ = v + ρ r_j x_j ⊙ u.
                let rhat: f64 = (0..d)
                    .map(|i| {
                        let uh = u[i] + rho * r[j] * xj[i] * v[i];
                        let vh = v[i] + rho * r[j] * xj[i] * u[i];
                        xj[i] * uh * vh
                    })
                    .sum::<f64>()
                    - p.targets()[j];
                for i in 0..d {
                    ghat[i] += rhat * xj[i] / n as f64;
                    h[i] += rhat * r[j] * xj[i] * xj[i] / n as f64;
                }
            }
        } else {
            let mut g = vec![0.0; d];
            for j in 0..n {
                for i in 0..d {
                    g[i] += r[j] * p.sample(j)[i] / n as f64;
                }
            }
            let uh: Vec<f64> = (0..d).map(|i| u[i] + rho * g[i] * v[i]).collect();
            let vh: Vec<f64> = (0..d).map(|i| v[i] + rho * g[i] * u[i]).collect();
            let xh: Vec<f64> = uh.iter().chain(&vh).copied().collect();
            for j in 0..n {
                let rh = p.residual(j, &xh);
                for i in 0..d {
                    ghat[i] += rh * p.sample(j)[i] / n as f64;
                }
            }
            for i in 0..d {
                h[i] = ghat[i] * g[i];
            }
        }
        let mut out = vec![0.0; 2 * d];
        for i in 0..d {
            let s = (u[i] + v[i]) * (1.0 - gamma * (ghat[i] + rho * h[i]));
            let q = (u[i] - v[i]) * (1.0 + gamma * (ghat[i] - rho * h[i]));
            out[i] = 0.5 * (s + q);
            out[d + i] = 0.5 * (s - q);
        }
        out
    }

    #[test]
    fn msam_on_the_network_matches_the_multiplicative_hand_computation() {
        let p = problem(8, 6, 2, 21);
        let f = &p.train;
        let x: Vec<f64> = point(6, 22).iter().map(|v| 0.3 * v).collect();
        let batch: Vec<u32> = (0..8).collect();
        let mut ws = MSamWorkspace::new(12);
        let mut dir = vec![0.0; 12];
        for (m, one) in [(8, false), (1, true)] {
            let alg = MSam {
                eta: 0.2,
                rho: 0.15,
                m,
                normalized: false,
            };
            let mut y = x.clone();
            alg.step(f, &batch, &mut y, &mut dir, &mut ws);
            let want = hand_step(f, &x, 0.2, 0.15, one);
            for c in 0..12 {
                assert!(
                    (y[c] - want[c]).abs() < 1e-13,
                    "m = {m}, {c}: {} vs {}",
                    y[c],
                    want[c]
                );
            }
        }
    }

    #[test]
    fn product_formula_equals_u2_minus_v2_and_tracks_sign_flips() {
        // s_T q_T = u_T² − v_T² = α² Π(factors) exactly; the tracked product agrees to rounding.
        let p = problem(10, 8, 2, 5);
        let f = &p.train;
        let alpha = 0.1;
        let mut x = initial_params(8, alpha);
        let batch: Vec<u32> = (0..10).collect();
        let mut ws = MSamWorkspace::new(16);
        let mut dir = vec![0.0; 16];
        let mut eff = EffectiveInit::new(8, alpha);
        let alg = MSam {
            eta: 0.3,
            rho: 0.1,
            m: 1,
            normalized: false,
        };
        for _ in 0..500 {
            let before = x.clone();
            alg.step(f, &batch, &mut x, &mut dir, &mut ws);
            eff.record(&before, &x);
        }
        assert_eq!(eff.sign_flips(), 0);
        let a = eff.alpha_eff();
        for i in 0..8 {
            let direct = (x[i] * x[i] - x[8 + i] * x[8 + i]).sqrt();
            // 500 steps of relative rounding 1e-16 each: 1e-11 is generous.
            assert!(
                (a[i] / direct - 1.0).abs() < 1e-11,
                "{i}: {} vs {direct}",
                a[i]
            );
            assert!(a[i] < alpha, "1-SAM and GD only shrink α_eff here");
            assert!((eff.delta()[i] + 2.0 * (a[i] / alpha).ln()).abs() < 1e-12);
        }
        // A step that flips the sign of s alone makes α_eff undefined: (u, v) = (1, 0) → s = q = 1;
        // (−0.5, 0.2) → s = −0.3, q = −0.7: both flip, product 0.21 > 0, fine;
        // (0.2, 0.5) → s = 0.7, q = −0.3: product < 0, undefined.
        let mut e = EffectiveInit::new(1, 1.0);
        e.record(&[1.0, 0.0], &[-0.5, 0.2]);
        assert_eq!(e.sign_flips(), 0);
        assert!((e.alpha_eff()[0] - 0.21f64.sqrt()).abs() < 1e-15);
        e.record(&[-0.5, 0.2], &[0.2, 0.5]);
        assert_eq!(e.sign_flips(), 1);
        assert!(e.alpha_eff()[0].is_nan());
    }
}
