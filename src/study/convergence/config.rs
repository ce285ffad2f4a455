//! The convergence study's TOML configuration: learning-rate grid and radius schedule,
//! integration, verdict settings, and the reference (Monte Carlo or exact), and the checks of
//! its fields. Unknown keys are errors; the checks that need the landscape or the models are in
//! [`super::ConvergenceStudy::new`].

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::optim::msam::MSam;
use crate::optim::AlgorithmKind;
use crate::oracle::Oracle;
use crate::sde::{ModelKind, SdeForm};
use crate::study::setup::{self, LandscapeConfig, OracleConfig, StartConfig};
use crate::study::test_function::TestFunction;

/// Learning-rate grid, radius schedule and horizon.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduleConfig {
    /// Largest learning rate `η₀`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eta0: Option<f64>,
    /// Number of halvings: `η = η₀, η₀/2, …, η₀/2^halvings`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub halvings: Option<usize>,
    /// Explicit list of learning rates (instead of `eta0`/`halvings`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etas: Option<Vec<f64>>,
    /// `ρ₀`, the radius at the largest `η`.
    pub rho0: f64,
    /// `p` in `ρ = ρ₀ (η/η₀)^p` (0: fixed `ρ`; ½: `ρ ∝ √η`; 1: `ρ ∝ η`).
    pub rho_power: f64,
    /// Horizon `T`.
    pub horizon: f64,
    /// Spacing of the times at which the weak error's max is taken (default: every step of each
    /// `η`, the definition). A coarser grid can only under-estimate the max; the report then
    /// carries a warning.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub save_dt: Option<f64>,
}

/// Which integrator to use for SDE models.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Integrator {
    /// Exact OU transitions for linear models, Euler–Maruyama for the rest.
    Auto,
    /// Euler–Maruyama for every model.
    EulerMaruyama,
    /// Exact OU transitions (an error for a model that is not linear).
    ExactOu,
    /// Exact OU transitions for linear models; for the rest, Richardson extrapolation of
    /// Euler–Maruyama on one Brownian path, `2 E g(X^{η/r}) − E g(X^{η/(r/2)})` (weak order 2 in
    /// the sub-step, so an order-2 model is resolved without `O(1/η)` sub-steps); the
    /// resolution diagnostic is the same extrapolation from `r/2` and `r/4`.
    Richardson,
}

/// Numerical integration settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IntegrationConfig {
    /// Integrator choice.
    #[serde(default = "default_integrator")]
    pub integrator: Integrator,
    /// Euler–Maruyama sub-steps per `η` (`h = η/substeps`); the diagnostic reruns at half.
    #[serde(default = "default_substeps")]
    pub substeps: usize,
    /// Closed form or inner Monte Carlo for the Hessian-dependent terms.
    #[serde(default = "default_form")]
    pub sde_form: SdeForm,
    /// Inner Monte Carlo draws per state (Monte Carlo form only).
    #[serde(default = "default_inner")]
    pub inner_samples: usize,
    /// A path diverges when `‖x‖` exceeds this.
    #[serde(default = "default_bound")]
    pub divergence_bound: f64,
}

fn default_integrator() -> Integrator {
    Integrator::Auto
}
fn default_substeps() -> usize {
    16
}
fn default_form() -> SdeForm {
    SdeForm::Auto
}
fn default_inner() -> usize {
    64
}
fn default_bound() -> f64 {
    1e6
}

impl Default for IntegrationConfig {
    fn default() -> Self {
        Self {
            integrator: default_integrator(),
            substeps: default_substeps(),
            sde_form: default_form(),
            inner_samples: default_inner(),
            divergence_bound: default_bound(),
        }
    }
}

/// Verdict settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VerdictConfig {
    /// A slope passes if its CI lies in `expected ± tolerance`.
    #[serde(default = "default_tolerance")]
    pub tolerance: f64,
    /// Confidence level of every interval.
    #[serde(default = "setup::default_level")]
    pub level: f64,
    /// Inconclusive when the resolution error exceeds this fraction of the weak error.
    #[serde(default = "default_resolution_ratio")]
    pub resolution_ratio: f64,
}

fn default_tolerance() -> f64 {
    0.3
}
fn default_resolution_ratio() -> f64 {
    0.2
}

impl Default for VerdictConfig {
    fn default() -> Self {
        Self {
            tolerance: default_tolerance(),
            level: setup::default_level(),
            resolution_ratio: default_resolution_ratio(),
        }
    }
}

/// Where the weak errors come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reference {
    /// Monte Carlo ensembles (any landscape, oracle, model).
    MonteCarlo,
    /// Exact moments, no Monte Carlo: moment recursions against OU moments (linear pairs), or
    /// batch-law moment recursions against the moment ODE (least squares with subsampling).
    Exact,
}

fn default_reference() -> Reference {
    Reference::MonteCarlo
}

/// The convergence study's configuration (TOML; unknown keys are errors).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConvergenceConfig {
    /// Figure and table title; empty or absent: generated from the parameters (see
    /// [`Self::display_title`]).
    #[serde(default)]
    pub title: String,
    /// Master seed.
    pub seed: u64,
    /// Monte Carlo paths per learning rate.
    pub paths: usize,
    /// Paths per block (the unit of parallel work and of batched linear algebra).
    #[serde(default = "setup::default_block")]
    pub block_size: usize,
    /// Monte Carlo or exact.
    #[serde(default = "default_reference")]
    pub reference: Reference,
    /// The objective.
    pub landscape: LandscapeConfig,
    /// The gradient oracle.
    pub oracle: OracleConfig,
    /// The initial condition.
    pub start: StartConfig,
    /// Discrete algorithms.
    pub algorithms: Vec<AlgorithmKind>,
    /// Micro-batch size `m` of m-USAM (`musam`, `musam_sde`): must divide `oracle.batch`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub micro_batch: Option<usize>,
    /// Models to compare each algorithm with: `own_sde`, `own_sde2` (the second-order model;
    /// SGD and USAM), `drift_only`, or a model name
    /// (`sgd_sde`, `usam_sde`, `sam_sde`, `dnsam_sde`, `musam_sde`, `<alg>_drift_only`, and the
    /// second-order models `sgd_sde2`, `usam_sde2`).
    pub models: Vec<String>,
    /// Test functions.
    pub test_functions: Vec<TestFunction>,
    /// Learning rates, radius and horizon.
    pub schedule: ScheduleConfig,
    /// Integration settings.
    #[serde(default)]
    pub integration: IntegrationConfig,
    /// Verdict settings.
    #[serde(default)]
    pub verdict: VerdictConfig,
}

/// One comparison: an algorithm against a model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Pair {
    /// The discrete algorithm.
    pub algorithm: AlgorithmKind,
    /// The SDE model.
    pub model: ModelKind,
}

impl ConvergenceConfig {
    /// The title: `title` if given, else generated from the models (first- vs second-order),
    /// the landscape, the noise, the micro-batch size and the ρ schedule (so it cannot go stale
    /// when they change).
    pub fn display_title(&self) -> String {
        if !self.title.trim().is_empty() {
            return self.title.clone();
        }
        let n = setup::title_num;
        let s = &self.schedule;
        let eta0 = s
            .eta0
            .or_else(|| s.etas.as_ref().and_then(|e| e.first().copied()));
        let rho = match eta0 {
            _ if s.rho_power == 0.0 => format!("ρ = {} fixed", n(s.rho0)),
            Some(e0) => format!("ρ = {} (η/{})^{}", n(s.rho0), n(e0), n(s.rho_power)),
            None => format!("ρ = {}", n(s.rho0)),
        };
        // Short enough for the figure's title line (≈ 100 characters): the reference (exact or
        // Monte Carlo) is in the legend, not here.
        let what = if self.models.iter().any(|m| m.ends_with("sde2")) {
            "First- vs second-order SDEs"
        } else {
            "Weak error"
        };
        let micro = match self.micro_batch {
            Some(m) => format!(", m = {m}"),
            None => String::new(),
        };
        format!(
            "{what} on the {}, {}{micro}, {rho}",
            self.landscape.describe(),
            self.oracle.describe()
        )
    }

    /// Checks `paths` and `block_size`.
    pub(super) fn check_ensemble(&self) -> Result<()> {
        let c = self;
        if c.paths == 0 {
            return Err(Error::config("paths", c.paths, "must be > 0"));
        }
        if c.paths >= 1 << crate::ensemble::rng::LEVEL_SHIFT {
            return Err(Error::config("paths", c.paths, "must be < 2^40"));
        }
        if c.block_size == 0 {
            return Err(Error::config("block_size", c.block_size, "must be > 0"));
        }
        Ok(())
    }

    /// Checks the schedule: the learning-rate grid (descending) and the spacing of the saves
    /// (`None`: every step of each `η`).
    pub(super) fn learning_rates(&self) -> Result<(Vec<f64>, Option<f64>)> {
        let c = self;
        let s = &c.schedule;
        let etas: Vec<f64> = match (&s.etas, s.eta0, s.halvings) {
            (Some(list), None, None) => {
                for (i, e) in list.iter().enumerate() {
                    setup::positive(&format!("schedule.etas[{i}]"), *e)?;
                }
                let mut v = list.clone();
                v.sort_by(|a, b| b.partial_cmp(a).unwrap());
                v.dedup();
                v
            }
            (None, Some(eta0), Some(h)) => {
                setup::positive("schedule.eta0", eta0)?;
                if h > super::budget::MAX_HALVINGS {
                    return Err(Error::config(
                        "schedule.halvings",
                        h,
                        format!("must be ≤ {}", super::budget::MAX_HALVINGS),
                    ));
                }
                (0..=h).map(|k| eta0 / 2f64.powi(k as i32)).collect()
            }
            _ => {
                return Err(Error::config(
                    "schedule",
                    "eta0/halvings/etas",
                    "give either `etas` or both `eta0` and `halvings`",
                ))
            }
        };
        if etas.len() < 2 {
            return Err(Error::config(
                "schedule",
                format!("{} learning rate(s)", etas.len()),
                "needs ≥ 2 learning rates to fit a slope",
            ));
        }
        setup::non_negative("schedule.rho0", s.rho0).map_err(|_| {
            Error::config(
                "schedule.rho0",
                s.rho0,
                "must be finite and ≥ 0 (ρ < 0 is not a SAM radius)",
            )
        })?;
        setup::non_negative("schedule.rho_power", s.rho_power)?;
        let horizon = setup::positive("schedule.horizon", s.horizon)?;
        let save_dt = match s.save_dt {
            Some(v) => Some(setup::positive("schedule.save_dt", v)?),
            None => None,
        };
        for (i, &eta) in etas.iter().enumerate() {
            if setup::whole_multiple(horizon, eta).is_none() {
                return Err(Error::config(
                    format!("schedule.etas[{i}]"),
                    eta,
                    format!("must divide the horizon T = {horizon} into whole steps"),
                ));
            }
            if let Some(dt) = save_dt {
                if setup::whole_multiple(dt, eta).is_none() {
                    return Err(Error::config(
                        "schedule.save_dt",
                        dt,
                        format!("must be a whole number of steps of every η (η = {eta})"),
                    ));
                }
            }
        }
        if let Some(dt) = save_dt {
            if setup::whole_multiple(horizon, dt).is_none() {
                return Err(Error::config(
                    "schedule.save_dt",
                    dt,
                    format!("must divide T = {horizon}"),
                ));
            }
        }
        Ok((etas, save_dt))
    }

    /// Checks the integration and verdict settings and that the lists are not empty.
    pub(super) fn check_settings(&self) -> Result<()> {
        let c = self;
        let int = &c.integration;
        if int.substeps < 2 || !int.substeps.is_multiple_of(2) {
            return Err(Error::config(
                "integration.substeps",
                int.substeps,
                "must be even and ≥ 2 (the resolution diagnostic reruns at half)",
            ));
        }
        if int.integrator == Integrator::Richardson && !int.substeps.is_multiple_of(4) {
            return Err(Error::config(
                "integration.substeps",
                int.substeps,
                "must be a multiple of 4 with integrator = \"richardson\" (it runs r, r/2 and r/4)",
            ));
        }
        if int.inner_samples < 2 {
            return Err(Error::config(
                "integration.inner_samples",
                int.inner_samples,
                "must be ≥ 2",
            ));
        }
        setup::positive("integration.divergence_bound", int.divergence_bound)?;
        let v = &c.verdict;
        setup::positive("verdict.tolerance", v.tolerance)?;
        if !(v.level > 0.0 && v.level < 1.0) {
            return Err(Error::config("verdict.level", v.level, "must be in (0, 1)"));
        }
        setup::positive("verdict.resolution_ratio", v.resolution_ratio)?;
        if c.algorithms.is_empty() {
            return Err(Error::config(
                "algorithms",
                "[]",
                "must name at least one algorithm",
            ));
        }
        if c.models.is_empty() {
            return Err(Error::config(
                "models",
                "[]",
                "must name at least one model",
            ));
        }
        if c.test_functions.is_empty() {
            return Err(Error::config(
                "test_functions",
                "[]",
                "must name at least one test function",
            ));
        }
        Ok(())
    }

    /// The pairs compared: every algorithm against every model named in `models`, deduplicated.
    pub(super) fn pairs(&self) -> Result<Vec<Pair>> {
        let c = self;
        let mut pairs = Vec::new();
        for &algorithm in &c.algorithms {
            for (i, name) in c.models.iter().enumerate() {
                let model = match name.as_str() {
                    "own_sde" => ModelKind::own(algorithm),
                    "drift_only" => ModelKind::drift_only(algorithm),
                    "own_sde2" => match algorithm {
                        AlgorithmKind::Sgd | AlgorithmKind::Usam => {
                            ModelKind::second_order(algorithm)
                        }
                        _ => {
                            return Err(Error::config(
                                format!("models[{i}]"),
                                "\"own_sde2\"",
                                format!(
                                    "second-order models exist for sgd and usam only, not {algorithm}"
                                ),
                            ))
                        }
                    },
                    other => ModelKind::parse(other).ok_or_else(|| {
                        Error::config(
                            format!("models[{i}]"),
                            format!("{other:?}"),
                            "must be own_sde, own_sde2, drift_only, sgd_sde, usam_sde, sam_sde, dnsam_sde, musam_sde, <alg>_drift_only, sgd_sde2 or usam_sde2",
                        )
                    })?,
                };
                let p = Pair { algorithm, model };
                if !pairs.contains(&p) {
                    pairs.push(p);
                }
            }
        }
        Ok(pairs)
    }
}

/// m-USAM's micro-batch size: required (and must divide the batch) when `musam` or a
/// `musam_*` model is compared, which needs the subsampling oracle; refused otherwise.
pub(super) fn check_micro_batch(
    c: &ConvergenceConfig,
    pairs: &[Pair],
    oracle: &Oracle,
) -> Result<Option<usize>> {
    let uses = pairs
        .iter()
        .any(|p| p.algorithm == AlgorithmKind::Musam || p.model.alg == AlgorithmKind::Musam);
    match (uses, c.micro_batch) {
        (false, None) => Ok(None),
        (false, Some(m)) => Err(Error::config(
            "micro_batch",
            m,
            "is only used by m-USAM: add \"musam\" to algorithms (or a musam model), or remove it",
        )),
        (true, None) => Err(Error::config(
            "micro_batch",
            "nothing",
            "must be given when musam (m-USAM) is compared",
        )),
        (true, Some(m)) => {
            let Oracle::Subsampling(sub) = oracle else {
                return Err(Error::config(
                    "oracle.kind",
                    "not subsampling",
                    "must be \"subsampling\" for musam (m-USAM splits real mini-batches)",
                ));
            };
            MSam {
                eta: 1.0,
                rho: 0.0,
                m,
                normalized: false,
            }
            .check("micro_batch", sub.batch)?;
            Ok(Some(m))
        }
    }
}
