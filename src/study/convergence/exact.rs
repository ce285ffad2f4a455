//! The exact reference of the convergence study: where both sides of a pair are linear
//! (quadratic landscape, additive or full-batch noise, SGD/USAM and their SDEs), the weak error
//! from the first two moments — the discrete algorithm's moment recursion against the SDE's
//! Ornstein–Uhlenbeck moments — over every step, without Monte Carlo.

use super::{ConvergenceStudy, Pair};
use crate::optim::moments::LinearRecursion;
use crate::sde::linear::LinearSde;
use crate::study::test_function::TestFunction;

impl ConvergenceStudy {
    /// Exact weak error of a pair at one `η`, when both sides are linear: `(max, time of max)`.
    pub fn exact_weak_error(&self, p: Pair, tf: TestFunction, eta: f64) -> Option<(f64, f64)> {
        let f = self.landscape.as_ref();
        let rho = self.rho(eta);
        let rec = LinearRecursion::of(p.algorithm, f, &self.oracle, eta, rho)?;
        let sde = LinearSde::of_model(p.model, f, &self.oracle, eta, rho)?;
        self.exact_max_error(&rec, &sde, tf, eta)
    }

    /// `max_k |E g(x_k) − E g(X_{kη})|` of a linear recursion against a linear SDE from the
    /// configured start, over every step `k ≤ T/η` (or every `save_dt`), and the time of the max.
    pub(super) fn exact_max_error(
        &self,
        rec: &LinearRecursion,
        sde: &LinearSde,
        tf: TestFunction,
        eta: f64,
    ) -> Option<(f64, f64)> {
        let h = self.landscape.centred_quadratic()?;
        let (m0, p0) = self.start.moments();
        let every = self.save_every(eta);
        let n = self.steps(eta);
        // Only test functions of the first two moments have an exact value.
        tf.gaussian_mean(h, &m0, &p0)?;
        // Every step k (or every `every`-th), as the max in the definition requires; the SDE's
        // moments at t = kη are exact (Ornstein–Uhlenbeck), so no time grid error enters.
        let mut best = (0.0_f64, 0.0);
        rec.for_each_moment(&m0, &p0, n, every, |k, m, pk| {
            if k == 0 {
                return;
            }
            let t = k as f64 * eta;
            let (ms, ps) = sde.moments(&m0, &p0, t);
            let g_alg = tf.gaussian_mean(h, m, pk).expect("checked above");
            let g_sde = tf.gaussian_mean(h, &ms, &ps).expect("checked above");
            let e = (g_alg - g_sde).abs();
            if e > best.0 {
                best = (e, t);
            }
        });
        Some(best)
    }
}
