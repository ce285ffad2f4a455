//! The convergence study: weak error of SAM-family SDEs against their discrete algorithms, and
//! its order in the learning rate (SPEC §4).
//!
//! For each learning rate `η_ℓ` of the grid, with `ρ_ℓ = ρ₀ (η_ℓ/η₀)^p` and `n_ℓ = T/η_ℓ`
//! steps, and for each pair (algorithm, model) and test function `g`, the study estimates
//!
//! `e(η) = max_{t_j} |E g(x_{t_j/η}) − E g(X_{t_j})|`
//!
//! over common save times `t_j` (multiples of `save_dt`), with a simultaneous confidence
//! interval ([`crate::stats::max_abs_with_ci`]), then fits `ln e = c + α ln η` by least squares on
//! the actual `η` values and compares the slope's CI with the expected order:
//!
//! * the algorithm's own SDE or its drift-only ablation: order 1;
//! * any other model (e.g. USAM against the SGD SDE): the drifts differ by `O(ρ) = O(η^p)`, so
//!   order `min(1, p)`.
//!
//! Verdicts: `pass` if the slope CI lies within `expected ± tolerance`; `fail` if it lies
//! entirely outside that band (evidence against the claim); `inconclusive` if it straddles an
//! edge of the band, or some error is at or below its Monte Carlo noise floor (its CI reaches 0),
//! the SDE is under-resolved (resolution error above `resolution_ratio` × error), or paths
//! diverged.
//!
//! Every point also reports the resolution diagnostic: for Euler–Maruyama models, how much the
//! answer moves between `substeps/2` and `substeps` sub-steps; for exact OU transitions, 0.
//! Where both sides of a pair are linear (quadratic landscape, additive or full-batch noise,
//! SGD/USAM), the exact weak error from moment recursions is reported beside the Monte Carlo one;
//! `reference = "exact"` computes every pair that way without Monte Carlo.

use std::collections::BTreeMap;
use std::time::Instant;

use serde::{Deserialize, Serialize};

use super::header::RunHeader;
use super::setup::{self, LandscapeConfig, OracleConfig, StartConfig};
use super::test_function::TestFunction;
use super::verdict::{self, ClaimKind, Decision, Observation, Verdict};
use crate::ensemble::{BlockView, Dynamics, Ensemble, Observer, Start, System};
use crate::error::{Error, Result};
use crate::landscape::Landscape;
use crate::linalg::Matrix;
use crate::optim::moments::LinearRecursion;
use crate::optim::{AlgorithmKind, Discrete};
use crate::oracle::Oracle;
use crate::sde::linear::LinearSde;
use crate::sde::{ModelKind, SdeForm, SdeModel};
use crate::stats::{loglog_slope, max_abs_with_ci, Moments};

/// The embedded default configuration (`experiments/convergence_quadratic.toml`).
pub const DEFAULT_CONFIG: &str = include_str!("../../experiments/convergence_quadratic.toml");

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
    /// Spacing of the common save times (default: the largest `η`).
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

/// One comparison: an algorithm against a model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Pair {
    /// The discrete algorithm.
    pub algorithm: AlgorithmKind,
    /// The SDE model.
    pub model: ModelKind,
}

/// A validated, ready-to-run convergence study.
pub struct ConvergenceStudy {
    /// The configuration (with every default filled in).
    pub config: ConvergenceConfig,
    landscape: Box<dyn Landscape>,
    oracle: Oracle,
    start: Start,
    etas: Vec<f64>,
    pairs: Vec<Pair>,
    save_dt: f64,
}

/// One learning rate of a pair.
#[derive(Debug, Clone, Serialize)]
pub struct PointReport {
    /// Learning rate.
    pub eta: f64,
    /// Radius at this `η`.
    pub rho: f64,
    /// `max_j |E g(x) − E g(X)|` over the save times.
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
    /// Save time at which the maximum is attained.
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
    /// Expected weak order.
    pub expected_order: f64,
    /// Fitted log–log slope.
    pub slope: f64,
    /// Its confidence interval.
    pub slope_ci: [f64; 2],
    /// What kind of claim the verdict tests.
    pub claim_kind: ClaimKind,
    /// `pass`, `fail` or `inconclusive`.
    pub verdict: Decision,
    /// Why (for `fail` / `inconclusive`), or the passing band.
    pub verdict_reason: String,
    /// `euler_maruyama(r=…)`, `exact_ou`, or `exact_moments`.
    pub integrator: String,
    /// One entry per learning rate.
    pub points: Vec<PointReport>,
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
            format!("order {}", self.expected_order),
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

impl ConvergenceStudy {
    /// Parses and validates a TOML configuration.
    pub fn from_toml(text: &str) -> Result<Self> {
        Self::new(setup::parse_toml(text)?)
    }

    /// Validates a configuration.
    pub fn new(config: ConvergenceConfig) -> Result<Self> {
        let landscape = config.landscape.build()?;
        Self::validate(config, landscape)
    }

    /// Validates a configuration against a landscape given in code: any [`Landscape`] (with
    /// [`crate::landscape::FiniteSum`] for the subsampling oracle). The configuration's
    /// `landscape` is recorded as `{ kind = "custom", name = <f.describe()> }`.
    pub fn with_landscape(
        mut config: ConvergenceConfig,
        landscape: Box<dyn Landscape>,
    ) -> Result<Self> {
        config.landscape = LandscapeConfig::Custom {
            name: landscape.describe(),
        };
        Self::validate(config, landscape)
    }

    fn validate(config: ConvergenceConfig, landscape: Box<dyn Landscape>) -> Result<Self> {
        let c = &config;
        if c.paths == 0 {
            return Err(Error::config("paths", c.paths, "must be > 0"));
        }
        if c.paths >= 1 << crate::ensemble::rng::LEVEL_SHIFT {
            return Err(Error::config("paths", c.paths, "must be < 2^40"));
        }
        if c.block_size == 0 {
            return Err(Error::config("block_size", c.block_size, "must be > 0"));
        }
        let d = landscape.dim();
        let oracle = c.oracle.build(landscape.as_ref())?;
        let start = c.start.build(d)?;
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
            Some(v) => setup::positive("schedule.save_dt", v)?,
            None => etas[0],
        };
        for (i, &eta) in etas.iter().enumerate() {
            if setup::whole_multiple(horizon, eta).is_none() {
                return Err(Error::config(
                    format!("schedule.etas[{i}]"),
                    eta,
                    format!("must divide the horizon T = {horizon} into whole steps"),
                ));
            }
            if setup::whole_multiple(save_dt, eta).is_none() {
                return Err(Error::config(
                    "schedule.save_dt",
                    save_dt,
                    format!("must be a whole number of steps of every η (η = {eta})"),
                ));
            }
        }
        if setup::whole_multiple(horizon, save_dt).is_none() {
            return Err(Error::config(
                "schedule.save_dt",
                save_dt,
                format!("must divide T = {horizon}"),
            ));
        }
        let int = &c.integration;
        if int.substeps < 2 || !int.substeps.is_multiple_of(2) {
            return Err(Error::config(
                "integration.substeps",
                int.substeps,
                "must be even and ≥ 2 (the resolution diagnostic reruns at half)",
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
        let mut pairs = Vec::new();
        for &algorithm in &c.algorithms {
            for (i, name) in c.models.iter().enumerate() {
                let model = match name.as_str() {
                    "own_sde" => ModelKind::own(algorithm),
                    "drift_only" => ModelKind {
                        alg: algorithm,
                        drift_only: true,
                    },
                    other => ModelKind::parse(other).ok_or_else(|| {
                        Error::config(
                            format!("models[{i}]"),
                            format!("{other:?}"),
                            "must be own_sde, drift_only, sgd_sde, usam_sde, sam_sde, dnsam_sde or <alg>_drift_only",
                        )
                    })?,
                };
                let p = Pair { algorithm, model };
                if !pairs.contains(&p) {
                    pairs.push(p);
                }
            }
        }
        let study = Self {
            config,
            landscape,
            oracle,
            start,
            etas,
            pairs,
            save_dt,
        };
        // Build every model once to surface form/integrator errors before any work.
        for p in &study.pairs {
            study.model_dynamics(
                p.model,
                study.etas[0],
                study.rho(study.etas[0]),
                study.config.integration.substeps,
            )?;
        }
        if study.config.reference == Reference::Exact {
            for p in &study.pairs {
                for tf in &study.config.test_functions {
                    if study.exact_weak_error(*p, *tf, study.etas[0]).is_none() {
                        return Err(Error::config(
                            "reference",
                            "\"exact\"",
                            format!(
                                "applies only to linear pairs (quadratic landscape, additive or full-batch noise, sgd/usam with sgd_sde/usam_sde/usam_drift_only) and test functions norm_sq/loss; {} vs {} with {} is not",
                                p.algorithm,
                                p.model.name(),
                                tf.name()
                            ),
                        ));
                    }
                }
            }
        }
        Ok(study)
    }

    /// The learning-rate grid (descending).
    pub fn etas(&self) -> &[f64] {
        &self.etas
    }
    /// The pairs compared.
    pub fn pairs(&self) -> &[Pair] {
        &self.pairs
    }

    /// `ρ(η) = ρ₀ (η/η₀)^p`.
    pub fn rho(&self, eta: f64) -> f64 {
        let s = &self.config.schedule;
        s.rho0 * (eta / self.etas[0]).powf(s.rho_power)
    }

    /// Expected weak order of a pair (see module docs).
    pub fn expected_order(&self, p: Pair) -> f64 {
        let s = &self.config.schedule;
        if s.rho0 == 0.0 {
            // ρ ≡ 0: every model is the SGD SDE.
            return 1.0;
        }
        if p.model.alg == p.algorithm {
            // The SDEs are first order in ρ: on a non-affine gradient the dropped O(ρ²) drift
            // term limits the order to 2p (SPEC §4's "ρ = O(√η)").
            if self.landscape.affine_gradient() {
                1.0
            } else {
                (2.0 * s.rho_power).min(1.0)
            }
        } else {
            s.rho_power.min(1.0)
        }
    }

    fn model_dynamics(
        &self,
        kind: ModelKind,
        eta: f64,
        rho: f64,
        substeps: usize,
    ) -> Result<(Dynamics, bool)> {
        let f = self.landscape.as_ref();
        let int = &self.config.integration;
        // An explicit request for the Monte Carlo form is honoured even where a linear form exists.
        let linear = if int.sde_form == SdeForm::MonteCarlo {
            None
        } else {
            LinearSde::of_model(kind, f, &self.oracle, eta, rho)
        };
        match (int.integrator, linear) {
            (Integrator::Auto | Integrator::ExactOu, Some(lin)) => Ok((Dynamics::ExactOu(lin.transition(eta)), true)),
            (Integrator::ExactOu, None) => Err(Error::config(
                "integration.integrator",
                "\"exact_ou\"",
                format!(
                    "needs a linear model (centred quadratic, additive/full-batch noise, SGD/USAM drift); {} is not",
                    kind.name()
                ),
            )),
            _ => Ok((
                Dynamics::Euler {
                    model: SdeModel::new(kind, f, &self.oracle, eta, rho, int.sde_form, int.inner_samples)?,
                    substeps,
                },
                false,
            )),
        }
    }

    fn steps(&self, eta: f64) -> usize {
        setup::whole_multiple(self.config.schedule.horizon, eta).expect("validated")
    }

    /// Total path-steps of the Monte Carlo run (for a progress bar).
    pub fn total_work(&self) -> u64 {
        if self.config.reference == Reference::Exact {
            return 0;
        }
        self.etas
            .iter()
            .map(|&e| (self.steps(e) * self.config.paths) as u64)
            .sum()
    }

    /// Exact weak error of a pair at one `η`, when both sides are linear.
    pub fn exact_weak_error(&self, p: Pair, tf: TestFunction, eta: f64) -> Option<(f64, f64)> {
        let f = self.landscape.as_ref();
        let h = f.centred_quadratic()?;
        let rho = self.rho(eta);
        let rec = LinearRecursion::of(p.algorithm, f, &self.oracle, eta, rho)?;
        let sde = LinearSde::of_model(p.model, f, &self.oracle, eta, rho)?;
        let (m0, p0) = self.start.moments();
        let every = setup::whole_multiple(self.save_dt, eta)?;
        let n = self.steps(eta);
        let disc = rec.moments(&m0, &p0, n, every);
        let mut best = (0.0_f64, 0.0);
        for (j, (m, pk)) in disc.iter().enumerate().skip(1) {
            let t = j as f64 * self.save_dt;
            let (ms, ps) = sde.moments(&m0, &p0, t);
            let e = (tf.gaussian_mean(h, m, pk)? - tf.gaussian_mean(h, &ms, &ps)?).abs();
            if e > best.0 {
                best = (e, t);
            }
        }
        Some(best)
    }

    /// Runs the study. `threads` is recorded in the report (the caller owns the rayon pool);
    /// `progress` receives path-steps as blocks finish.
    pub fn run(
        &self,
        threads: usize,
        progress: Option<&(dyn Fn(u64) + Sync)>,
    ) -> Result<ConvergenceReport> {
        let t0 = Instant::now();
        let tfs = self.config.test_functions.clone();
        let mut rows: BTreeMap<(Pair, usize), Vec<PointReport>> = BTreeMap::new();
        let mut integrators: BTreeMap<ModelKind, String> = BTreeMap::new();
        let mut warnings = Vec::new();
        let level_ci = self.config.verdict.level;
        for (li, &eta) in self.etas.iter().enumerate() {
            let rho = self.rho(eta);
            if self.config.reference == Reference::Exact {
                for &p in &self.pairs {
                    integrators.insert(p.model, "exact_moments".into());
                    for (ti, &tf) in tfs.iter().enumerate() {
                        let (e, t) = self.exact_weak_error(p, tf, eta).expect("validated");
                        rows.entry((p, ti)).or_default().push(PointReport {
                            eta,
                            rho,
                            weak_error: e,
                            ci: [e, e],
                            mc_floor: 0.0,
                            resolution_error: 0.0,
                            resolution_ci: [0.0, 0.0],
                            diverged_paths: 0,
                            exact_weak_error: Some(e),
                            argmax_time: t,
                            std_err: 0.0,
                            clamped_eigenvalues: 0,
                        });
                    }
                }
                continue;
            }
            // Systems: algorithms, then models (main resolution and, for Euler, half resolution).
            let mut systems = Vec::new();
            let mut index: BTreeMap<String, usize> = BTreeMap::new();
            let mut algs: Vec<AlgorithmKind> = self.pairs.iter().map(|p| p.algorithm).collect();
            algs.sort();
            algs.dedup();
            for a in algs {
                index.insert(a.name().into(), systems.len());
                systems.push(System {
                    label: a.name().into(),
                    dynamics: Dynamics::Discrete(Discrete { kind: a, eta, rho }),
                });
            }
            let mut models: Vec<ModelKind> = self.pairs.iter().map(|p| p.model).collect();
            models.sort();
            models.dedup();
            let r = self.config.integration.substeps;
            let mut resolution: BTreeMap<ModelKind, (usize, usize)> = BTreeMap::new();
            let mut model_index: BTreeMap<ModelKind, usize> = BTreeMap::new();
            for mk in models {
                let (dynamics, exact) = self.model_dynamics(mk, eta, rho, r)?;
                let main = systems.len();
                model_index.insert(mk, main);
                systems.push(System {
                    label: format!(
                        "{}@{}",
                        mk.name(),
                        if exact {
                            "exact".to_string()
                        } else {
                            r.to_string()
                        }
                    ),
                    dynamics,
                });
                if exact {
                    integrators.insert(mk, "exact_ou".into());
                } else {
                    integrators.insert(
                        mk,
                        format!("euler_maruyama(substeps={r}; diagnostic {})", r / 2),
                    );
                    let (coarse, _) = self.model_dynamics(mk, eta, rho, r / 2)?;
                    resolution.insert(mk, (main, systems.len()));
                    systems.push(System {
                        label: format!("{}@{}", mk.name(), r / 2),
                        dynamics: coarse,
                    });
                }
            }
            let pair_idx: Vec<(usize, usize)> = self
                .pairs
                .iter()
                .map(|p| (index[p.algorithm.name()], model_index[&p.model]))
                .collect();
            let res_idx: Vec<(usize, usize)> = resolution.values().copied().collect();
            let every = setup::whole_multiple(self.save_dt, eta).expect("validated");
            let steps = self.steps(eta);
            let n_saves = steps / every;
            let depends: Vec<Vec<usize>> = self
                .pairs
                .iter()
                .zip(&pair_idx)
                .map(|(p, &(a, m))| {
                    let mut v = vec![a, m];
                    if let Some(&(_, c)) = resolution.get(&p.model) {
                        v.push(c);
                    }
                    v
                })
                .collect();
            let observer = WeakErrorObserver {
                tests: tfs.clone(),
                pairs: pair_idx.clone(),
                depends,
                resolution: res_idx.clone(),
                n_systems: systems.len(),
                n_saves,
            };
            let ens = Ensemble {
                landscape: self.landscape.as_ref(),
                oracle: &self.oracle,
                eta,
                steps,
                save_every: every,
                systems: &systems,
                paths: self.config.paths,
                block_size: self.config.block_size,
                seed: self.config.seed,
                level: li as u64,
                start: &self.start,
                divergence_bound: self.config.integration.divergence_bound,
            };
            let out = ens.run(&observer, progress);
            for (si, sys) in systems.iter().enumerate() {
                if out.diverged[si] > 0 {
                    warnings.push(format!(
                        "η = {eta}: {} of {} paths of {} diverged (first at step {})",
                        out.diverged[si],
                        self.config.paths,
                        sys.label,
                        out.first_divergence_step[si].unwrap_or(0)
                    ));
                }
                if out.clamps[si] > 0 {
                    warnings.push(format!(
                        "η = {eta}: {} eigenvalues of Σ_alg clamped to 0 in {}",
                        out.clamps[si], sys.label
                    ));
                }
            }
            let acc = out.acc;
            for (pi, &p) in self.pairs.iter().enumerate() {
                let (_, sm) = pair_idx[pi];
                for (ti, &tf) in tfs.iter().enumerate() {
                    let diffs: Vec<Moments> = (1..=n_saves).map(|j| *acc.pair(j, pi, ti)).collect();
                    let est = max_abs_with_ci(&diffs, level_ci);
                    let (resolution_error, resolution_ci) = match resolution.get(&p.model) {
                        Some(pair) => {
                            let ri = res_idx.iter().position(|x| x == pair).unwrap();
                            let res: Vec<Moments> =
                                (1..=n_saves).map(|j| *acc.res(j, ri, ti)).collect();
                            let r = max_abs_with_ci(&res, level_ci);
                            (r.value, r.ci)
                        }
                        None => (0.0, [0.0, 0.0]),
                    };
                    let diverged = acc.excluded[pi];
                    rows.entry((p, ti)).or_default().push(PointReport {
                        eta,
                        rho,
                        weak_error: est.value,
                        ci: est.ci,
                        mc_floor: est.floor,
                        resolution_error,
                        resolution_ci,
                        diverged_paths: diverged,
                        exact_weak_error: self.exact_weak_error(p, tf, eta).map(|e| e.0),
                        argmax_time: (est.argmax + 1) as f64 * self.save_dt,
                        std_err: est.std_err,
                        clamped_eigenvalues: out.clamps[sm],
                    });
                }
            }
        }
        let mut pairs = Vec::new();
        for &p in &self.pairs {
            for (ti, tf) in tfs.iter().enumerate() {
                let points = rows.remove(&(p, ti)).unwrap_or_default();
                pairs.push(self.judge(
                    p,
                    *tf,
                    points,
                    integrators.get(&p.model).cloned().unwrap_or_default(),
                ));
            }
        }
        let verdicts = pairs.iter().map(PairReport::to_verdict).collect();
        Ok(ConvergenceReport {
            header: RunHeader::new(
                "convergence",
                self.config.clone(),
                self.config.seed,
                threads,
                t0,
                warnings,
            ),
            reference: self.config.reference,
            landscape: self.landscape.describe(),
            pairs,
            verdicts,
            observations: Vec::new(),
        })
    }

    fn judge(
        &self,
        p: Pair,
        tf: TestFunction,
        points: Vec<PointReport>,
        integrator: String,
    ) -> PairReport {
        let v = &self.config.verdict;
        let expected = self.expected_order(p);
        let xs: Vec<f64> = points.iter().map(|q| q.eta).collect();
        let ys: Vec<f64> = points.iter().map(|q| q.weak_error).collect();
        let se: Vec<f64> = points.iter().map(|q| q.std_err).collect();
        let fit = loglog_slope(&xs, &ys, Some(&se), v.level);
        let (slope, ci) = match &fit {
            Ok(f) => (f.slope, f.ci),
            Err(_) => (f64::NAN, [f64::NAN, f64::NAN]),
        };
        let band = [expected - v.tolerance, expected + v.tolerance];
        let mut reasons = Vec::new();
        if let Err(e) = &fit {
            reasons.push(format!("no slope: {e}"));
        }
        for q in &points {
            if q.ci[0] <= 0.0 && self.config.reference == Reference::MonteCarlo {
                reasons.push(format!(
                    "weak error {:.2e} at η = {} is at the Monte Carlo noise floor {:.2e}; use more paths",
                    q.weak_error, q.eta, q.mc_floor
                ));
            }
            if q.resolution_ci[1] > v.resolution_ratio * q.weak_error {
                reasons.push(format!(
                    "SDE under-resolved at η = {}: resolution error up to {:.2e} > {} × weak error {:.2e}; raise integration.substeps",
                    q.eta, q.resolution_ci[1], v.resolution_ratio, q.weak_error
                ));
            }
            if q.diverged_paths > 0 {
                reasons.push(format!(
                    "{} diverged paths at η = {} (excluded)",
                    q.diverged_paths, q.eta
                ));
            }
        }
        let verdict = if !reasons.is_empty() {
            Decision::Inconclusive
        } else if ci[0] >= band[0] && ci[1] <= band[1] {
            reasons.push(format!("slope CI inside [{:.2}, {:.2}]", band[0], band[1]));
            Decision::Pass
        } else if ci[1] < band[0] || ci[0] > band[1] {
            reasons.push(format!(
                "slope CI [{:.2}, {:.2}] lies outside [{:.2}, {:.2}]",
                ci[0], ci[1], band[0], band[1]
            ));
            Decision::Fail
        } else {
            reasons.push(format!(
                "slope CI [{:.2}, {:.2}] straddles the edge of [{:.2}, {:.2}]; use more paths or η levels",
                ci[0], ci[1], band[0], band[1]
            ));
            Decision::Inconclusive
        };
        PairReport {
            algorithm: p.algorithm.name().into(),
            model: p.model.name(),
            test_function: tf.name().into(),
            expected_order: expected,
            slope,
            slope_ci: ci,
            claim_kind: ClaimKind::OrderEquals,
            verdict,
            verdict_reason: reasons.join("; "),
            integrator,
            points,
        }
    }
}

/// Accumulates, per save time, the moments of `g(alg) − g(model)` for every pair and test
/// function, and of `g(model@r) − g(model@r/2)` for the resolution diagnostic.
struct WeakErrorObserver {
    tests: Vec<TestFunction>,
    pairs: Vec<(usize, usize)>,
    /// Systems each pair's point depends on (algorithm, model, coarse model): a path dead in
    /// any of them is excluded, and counted once.
    depends: Vec<Vec<usize>>,
    resolution: Vec<(usize, usize)>,
    n_systems: usize,
    n_saves: usize,
}

struct WeakAcc {
    n_tests: usize,
    n_pairs: usize,
    n_res: usize,
    pair: Vec<Moments>,
    res: Vec<Moments>,
    excluded: Vec<u64>,
}

impl WeakAcc {
    fn pair(&self, save: usize, p: usize, t: usize) -> &Moments {
        &self.pair[(save * self.n_pairs + p) * self.n_tests + t]
    }
    fn res(&self, save: usize, r: usize, t: usize) -> &Moments {
        &self.res[(save * self.n_res + r) * self.n_tests + t]
    }
}

impl Observer for WeakErrorObserver {
    type Acc = WeakAcc;
    fn new_acc(&self) -> WeakAcc {
        let nt = self.tests.len();
        WeakAcc {
            n_tests: nt,
            n_pairs: self.pairs.len(),
            n_res: self.resolution.len(),
            pair: vec![Moments::default(); (self.n_saves + 1) * self.pairs.len() * nt],
            res: vec![Moments::default(); (self.n_saves + 1) * self.resolution.len() * nt],
            excluded: vec![0; self.pairs.len()],
        }
    }
    fn on_save(&self, acc: &mut WeakAcc, save: usize, _t: f64, view: &BlockView) {
        let f = view.landscape;
        let p = view.states[0].ncols();
        let nt = self.tests.len();
        let mut scratch = Matrix::zeros(f.dim(), p);
        // g values: [system][test][path]
        let mut g = vec![0.0; self.n_systems * nt * p];
        for s in 0..self.n_systems {
            for (t, tf) in self.tests.iter().enumerate() {
                let o = (s * nt + t) * p;
                tf.eval_batch(f, &view.states[s], &mut g[o..o + p], &mut scratch);
            }
        }
        let push = |list: &[(usize, usize)], dest: &mut Vec<Moments>, n: usize| {
            for (k, &(a, b)) in list.iter().enumerate() {
                for t in 0..nt {
                    let m = &mut dest[(save * n + k) * nt + t];
                    let (ga, gb) = (&g[(a * nt + t) * p..][..p], &g[(b * nt + t) * p..][..p]);
                    for j in 0..p {
                        if view.alive[a][j] && view.alive[b][j] {
                            m.push(ga[j] - gb[j]);
                        }
                    }
                }
            }
        };
        if save == self.n_saves {
            // Death is permanent, so the final save sees every excluded path.
            for (k, deps) in self.depends.iter().enumerate() {
                acc.excluded[k] += (0..p)
                    .filter(|&j| deps.iter().any(|&s| !view.alive[s][j]))
                    .count() as u64;
            }
        }
        push(&self.pairs, &mut acc.pair, self.pairs.len());
        push(&self.resolution, &mut acc.res, self.resolution.len());
    }
    fn merge(&self, total: &mut WeakAcc, block: WeakAcc) {
        for (a, b) in total.pair.iter_mut().zip(&block.pair) {
            a.merge(b);
        }
        for (a, b) in total.res.iter_mut().zip(&block.res) {
            a.merge(b);
        }
        for (a, b) in total.excluded.iter_mut().zip(&block.excluded) {
            *a += b;
        }
    }
}
