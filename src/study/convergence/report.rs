//! The convergence study's result (`convergence.json`): one [`PointReport`] per learning rate,
//! one [`PairReport`] per (algorithm, model, test function) with its claim and verdict, and the
//! [`ConvergenceReport`] with the shared run header.

use serde::Serialize;

use super::claims::SlopeCiKind;
use super::{ConvergenceConfig, Reference};
use crate::study::header::RunHeader;
use crate::study::verdict::{self, ClaimKind, Decision, Observation, Verdict};

/// One learning rate of a pair.
#[derive(Debug, Clone, Serialize)]
pub struct PointReport {
    /// Learning rate.
    pub eta: f64,
    /// Radius at this `η`.
    pub rho: f64,
    /// `max_k |E g(x_k) − E g(X_{kη})|` over every step (or over `save_dt`'s grid if set).
    pub weak_error: f64,
    /// Simultaneous confidence interval of the weak error.
    pub ci: [f64; 2],
    /// Monte Carlo noise floor (largest simultaneous half-width).
    pub mc_floor: f64,
    /// How much the SDE's answer moves with resolution: `max_t |E g(X^{(r)}) − E g(X^{(r/2)})|`
    /// (0 for exact transitions).
    pub resolution_error: f64,
    /// Simultaneous confidence interval of the resolution error.
    pub resolution_ci: [f64; 2],
    /// Paths excluded because the algorithm or the model diverged.
    pub diverged_paths: u64,
    /// Exact weak error from moment recursions, where the pair is linear.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exact_weak_error: Option<f64>,
    /// Time `kη` at which the maximum is attained.
    pub argmax_time: f64,
    /// Standard error of the difference at `argmax_time`.
    pub std_err: f64,
    /// Eigenvalues clamped in the model's diffusion square roots (Monte Carlo SDE form).
    pub clamped_eigenvalues: u64,
}

/// One (algorithm, model, test function) row.
#[derive(Debug, Clone, Serialize)]
pub struct PairReport {
    /// Algorithm name.
    pub algorithm: String,
    /// Model name.
    pub model: String,
    /// Test function name.
    pub test_function: String,
    /// Expected weak order (own SDE and drift-only ablation: 1; another model: `min(1, p)`).
    pub expected_order: f64,
    /// Fitted log–log slope.
    pub slope: f64,
    /// Its interval (see `slope_ci_kind`).
    pub slope_ci: [f64; 2],
    /// `monte_carlo` (a confidence interval) or `lack_of_fit` (exact errors: the regression
    /// residuals only).
    pub slope_ci_kind: SlopeCiKind,
    /// What kind of claim the verdict tests: `order_at_least`, `order_below_own_model` or
    /// `order_equals`.
    pub claim_kind: ClaimKind,
    /// For `order_below_own_model`: the own SDE's slope interval it is compared with.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub own_model_slope_ci: Option<[f64; 2]>,
    /// `pass`, `fail` or `inconclusive`.
    pub verdict: Decision,
    /// Which claim was tested, and why it came out as it did.
    pub verdict_reason: String,
    /// `euler_maruyama(r=…)`, `exact_ou`, or `exact_moments`.
    pub integrator: String,
    /// One entry per learning rate.
    pub points: Vec<PointReport>,
}

impl PointReport {
    /// A point of the exact reference: no Monte Carlo, no resolution error.
    pub(super) fn exact(eta: f64, rho: f64, e: f64, argmax_time: f64) -> Self {
        Self {
            eta,
            rho,
            weak_error: e,
            ci: [e, e],
            mc_floor: 0.0,
            resolution_error: 0.0,
            resolution_ci: [0.0, 0.0],
            diverged_paths: 0,
            exact_weak_error: Some(e),
            argmax_time,
            std_err: 0.0,
            clamped_eigenvalues: 0,
        }
    }
}

impl PairReport {
    /// The pair's verdict in the shared vocabulary.
    pub fn to_verdict(&self) -> Verdict {
        Verdict::new(
            format!(
                "{} vs {} ({}): weak error slope in η",
                self.algorithm, self.model, self.test_function
            ),
            self.claim_kind,
            self.slope,
            Some(self.slope_ci),
            match (self.claim_kind, self.own_model_slope_ci) {
                (ClaimKind::OrderAtLeast, _) => format!("order ≥ {}", self.expected_order),
                (ClaimKind::OrderBelowOwnModel, Some([lo, hi])) => format!(
                    "order min(1, p) = {}, below the own SDE's slope [{lo:.3}, {hi:.3}]",
                    self.expected_order
                ),
                (ClaimKind::OrderBelowOwnModel, None) => format!(
                    "order min(1, p) = {}, below the own SDE's (not run)",
                    self.expected_order
                ),
                _ => format!("order = {}", self.expected_order),
            },
            self.verdict,
        )
        .reason(self.verdict_reason.clone())
        .source("Paper 1 (Compagnoni et al., ICML 2023), weak approximation theorems")
    }
}

/// The study's result (serialised as `convergence.json`).
#[derive(Debug, Clone, Serialize)]
pub struct ConvergenceReport {
    /// The shared run header (study, version, config, seed, threads, elapsed, warnings).
    #[serde(flatten)]
    pub header: RunHeader<ConvergenceConfig>,
    /// `monte_carlo` or `exact`.
    pub reference: Reference,
    /// Landscape description.
    pub landscape: String,
    /// Results.
    pub pairs: Vec<PairReport>,
    /// One verdict per pair (the same outcome as the pair's `verdict`).
    pub verdicts: Vec<Verdict>,
    /// Informational comparisons (none in this study yet).
    pub observations: Vec<Observation>,
}

impl ConvergenceReport {
    /// `true` iff every verdict is `pass`.
    pub fn all_pass(&self) -> bool {
        verdict::all_pass(&self.verdicts)
    }
}
