//! The convergence study's TOML configuration: learning-rate grid and radius schedule,
//! integration, verdict settings, and the reference (Monte Carlo or exact). Unknown keys are
//! errors; validation is in [`super::ConvergenceStudy::new`].

use serde::{Deserialize, Serialize};

use crate::optim::AlgorithmKind;
use crate::sde::SdeForm;
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
    /// Exact moment recursions and OU moments (linear pairs only; no Monte Carlo).
    Exact,
}

fn default_reference() -> Reference {
    Reference::MonteCarlo
}
fn default_title() -> String {
    "Weak error of SAM-family SDEs".into()
}

/// The convergence study's configuration (TOML; unknown keys are errors).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConvergenceConfig {
    /// Figure and table title.
    #[serde(default = "default_title")]
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
    /// Models to compare each algorithm with: `own_sde`, `drift_only`, or a model name
    /// (`sgd_sde`, `usam_sde`, `sam_sde`, `dnsam_sde`, `<alg>_drift_only`).
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
