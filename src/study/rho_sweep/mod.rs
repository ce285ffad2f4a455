//! The ρ sweep: Paper 1's own protocol for its SDEs — at a fixed learning rate `η`, sweep the
//! radius `ρ` and measure how well each SDE models each algorithm.
//!
//! For every `ρ` in the grid and every pair (algorithm, model) of the protocol
//! ([`run::protocol_pairs`]: SGD/USAM/DNSAM/SAM against the SGD SDE, their own SDE and their
//! drift-only ablation; SAM also against the DNSAM and USAM SDEs), with the test function
//! `g(x) = ‖x‖ + ‖∇f(x)‖`, the study estimates Paper 1's relative error
//!
//! `e = max_k |E g(x_k) − E g(X_{kη})| / mean_k |E g(x_k)|`
//!
//! with an interval covering Monte Carlo noise and the SDE's discretisation (see [`run`]).
//! The oracle is additive isotropic Gaussian noise `Z = σξ`, which the ensemble engine couples
//! to the Brownian path (`ξ_k = −ΔW_k/√η`), so both marginals are exact and the differences have
//! small variance. SDEs are resolved with `r` Euler–Maruyama sub-steps per `η` and rerun at
//! `r/2` (the resolution diagnostic): integrating an SDE with `h = η` reproduces the discrete
//! recursion too closely to test anything.
//!
//! Problems: Paper 1's `d = 20` Wishart quadratic, the 2-layer sigmoid classifier on the
//! breast-cancer table and the teacher–student network ([`config::ProblemConfig`]); the SDEs
//! there use only gradients and Hessian–vector products (for SAM the closed form with
//! isotropic noise: drift `g + ρφ(r)Hĝ`, diffusion `σI + (ρ/2)(CH + HC)` applied to `ΔW`
//! through one Hessian–vector product).
//!
//! Verdicts ([`verdicts`]): for `ρ ≤ η` every SDE fits equally (within a factor 3), and at the
//! largest `ρ` the SGD SDE's error is at least 10 times the algorithm's own SDE's.
//!
//! Layout: [`config`] (TOML and validation), [`run`] (systems, observer, relative error),
//! [`verdicts`]; this file ties them into a study and its report.

mod budget;
pub mod config;
pub mod run;
pub mod verdicts;

use std::time::Instant;

use serde::Serialize;

pub use config::{ProblemConfig, ProfileConfig, RhoSweepConfig, VerdictConfig};

use super::header::RunHeader;
use super::verdict::{Observation, Verdict};
use crate::ensemble::Start;
use crate::error::Result;
use crate::landscape::Landscape;
use crate::optim::AlgorithmKind;
use crate::oracle::{AdditiveNoise, Oracle};
use crate::sde::ModelKind;
use run::PairSpec;

/// The embedded default configuration (`experiments/rho_sweep_quadratic.toml`).
pub const DEFAULT_CONFIG: &str = include_str!("../../../experiments/rho_sweep_quadratic.toml");

/// One (algorithm, model, ρ) result.
#[derive(Debug, Clone, Serialize)]
pub struct PairReport {
    /// Algorithm name.
    pub algorithm: String,
    /// Model name.
    pub model: String,
    /// Radius (`None` for SGD vs the SGD SDE, which does not depend on it).
    pub rho: Option<f64>,
    /// Paper 1's relative error `max_k |D_k| / mean_k |A_k|`.
    pub relative_error: f64,
    /// Its interval (Monte Carlo and resolution).
    pub ci: [f64; 2],
    /// Numerator `max_k |E g(x_k) − E g(X_kη)|`.
    pub max_abs_diff: f64,
    /// Denominator `mean_k |E g(x_k)|`.
    pub mean_abs_alg: f64,
    /// Resolution diagnostic `max_k |E g(X^{(r)}) − E g(X^{(r/2)})|`, relative.
    pub resolution: f64,
    /// Its upper confidence bound, relative.
    pub resolution_hi: f64,
    /// Monte Carlo noise floor of the numerator, relative.
    pub mc_floor: f64,
    /// Time at which the numerator's maximum is attained.
    pub argmax_time: f64,
    /// Paths excluded because the algorithm or the model diverged.
    pub diverged_paths: u64,
}

/// Measured cost of the run.
#[derive(Debug, Clone, Serialize)]
pub struct CostReport {
    /// Path-steps of the ensemble (paths × steps; every system advances each of them).
    pub path_steps: u64,
    /// Systems advanced per path-step (discrete algorithms and SDE copies).
    pub systems: usize,
    /// Wall time of the ensemble, seconds.
    pub seconds: f64,
    /// Wall time per path-step of the whole ensemble, milliseconds (× threads = CPU time).
    pub ms_per_path_step: f64,
    /// Wall time of one SAM-SDE Euler sub-step per path on one thread (Hessian–vector-product
    /// closed form; a separate timing on one block), microseconds.
    pub sam_sde_us_per_path_substep: f64,
    /// The same for one gradient-only SGD-SDE sub-step, for scale, microseconds.
    pub sgd_sde_us_per_path_substep: f64,
}

/// The study's result (`rho_sweep.json`).
#[derive(Debug, Clone, Serialize)]
pub struct RhoSweepReport {
    /// The shared run header.
    #[serde(flatten)]
    pub header: RunHeader<RhoSweepConfig>,
    /// Problem name (`quadratic`, `classifier`, `teacher_student`).
    pub problem: String,
    /// Landscape description.
    pub landscape: String,
    /// Parameter dimension `d`.
    pub dim: usize,
    /// The profile that ran.
    pub profile: String,
    /// Its sizes.
    pub sizes: ProfileConfig,
    /// Horizon `T = steps · η`.
    pub horizon: f64,
    /// Results, in protocol order.
    pub pairs: Vec<PairReport>,
    /// Measured cost.
    pub cost: CostReport,
    /// Verdicts.
    pub verdicts: Vec<Verdict>,
    /// Informational comparisons.
    pub observations: Vec<Observation>,
}

/// A validated ρ sweep.
pub struct RhoSweepStudy {
    /// The configuration (defaults filled in).
    pub config: RhoSweepConfig,
    landscape: Box<dyn Landscape>,
    oracle: Oracle,
    start: Start,
    pairs: Vec<PairSpec>,
}

impl RhoSweepStudy {
    /// Parses and validates TOML.
    pub fn from_toml(text: &str) -> Result<Self> {
        Self::new(crate::study::setup::parse_toml(text)?)
    }

    /// The run's estimated memory and work ([`crate::study::budget`]), from the configuration
    /// alone.
    pub fn budget(config: &RhoSweepConfig, threads: usize) -> Result<crate::study::budget::Budget> {
        budget::budget(config, threads)
    }

    /// Validates a configuration (fields, then the memory/work estimate) and builds the problem.
    pub fn new(config: RhoSweepConfig) -> Result<Self> {
        config.validate()?;
        Self::budget(&config, rayon::current_num_threads())?
            .check(&crate::study::budget::Limits::default())?;
        let (landscape, start) = config.problem.build()?;
        let oracle = Oracle::Additive(AdditiveNoise::isotropic(landscape.dim(), config.sigma)?);
        let pairs = run::protocol_pairs(config.rhos.len());
        let study = Self {
            config,
            landscape,
            oracle,
            start,
            pairs,
        };
        // Build every system once so model errors surface before any work.
        study.systems()?;
        Ok(study)
    }

    fn systems(&self) -> Result<run::SweepSystems> {
        run::build_systems(
            self.landscape.as_ref(),
            &self.oracle,
            self.config.eta,
            &self.config.rhos,
            &self.pairs,
            self.config.active().substeps,
        )
    }

    /// Work units (path-steps) for the progress bar.
    pub fn total_work(&self) -> u64 {
        let p = self.config.active();
        (p.paths as u64).saturating_mul(p.steps as u64)
    }

    /// The landscape.
    pub fn landscape(&self) -> &dyn Landscape {
        self.landscape.as_ref()
    }

    /// Estimated wall time of the run, seconds: times `steps` steps of one block of the full
    /// ensemble and scales to the configured size on `threads` threads (blocks run in parallel).
    pub fn estimate_seconds(&self, threads: usize, steps: usize) -> Result<f64> {
        let p = self.config.active();
        let sweep = self.systems()?;
        let paths = p.block_size.min(p.paths);
        let steps = steps.clamp(1, p.steps);
        let r = run::run_sweep(
            self.landscape.as_ref(),
            &self.oracle,
            &self.start,
            &sweep,
            self.config.eta,
            steps,
            steps,
            paths,
            paths,
            self.config.seed,
            self.config.divergence_bound,
            self.config.test_function,
            None,
        );
        let per_path_step = r.seconds / (paths * steps) as f64;
        let blocks = p.paths.div_ceil(p.block_size);
        let waves = blocks.div_ceil(threads.max(1)) as f64;
        Ok(per_path_step * (p.block_size.min(p.paths) * p.steps) as f64 * waves)
    }

    /// Runs the sweep.
    pub fn run(
        &self,
        threads: usize,
        progress: Option<&(dyn Fn(u64) + Sync)>,
    ) -> Result<RhoSweepReport> {
        let t0 = Instant::now();
        let c = &self.config;
        let p = c.active();
        let f = self.landscape.as_ref();
        let sweep = self.systems()?;
        let out = run::run_sweep(
            f,
            &self.oracle,
            &self.start,
            &sweep,
            c.eta,
            p.steps,
            p.save_every,
            p.paths,
            p.block_size,
            c.seed,
            c.divergence_bound,
            c.test_function,
            progress,
        );
        let mut warnings = Vec::new();
        for (label, n, first) in &out.diverged {
            if *n > 0 {
                warnings.push(format!(
                    "{n} of {} paths of {label} diverged (first at step {})",
                    p.paths,
                    first.unwrap_or(0)
                ));
            }
        }
        let save_dt = p.save_every as f64 * c.eta;
        let pairs: Vec<PairReport> = self
            .pairs
            .iter()
            .enumerate()
            .map(|(k, spec)| {
                let e = run::relative_error(&out.means, k, c.verdict.level);
                PairReport {
                    algorithm: spec.algorithm.name().into(),
                    model: spec.model.name(),
                    rho: spec.rho_index.map(|i| c.rhos[i]),
                    relative_error: e.value,
                    ci: e.ci,
                    max_abs_diff: e.max_abs_diff,
                    mean_abs_alg: e.mean_abs_alg,
                    resolution: e.resolution,
                    resolution_hi: e.resolution_hi,
                    mc_floor: e.mc_floor,
                    argmax_time: e.argmax_save as f64 * save_dt,
                    diverged_paths: out.means.excluded[k],
                }
            })
            .collect();
        for q in &pairs {
            if q.resolution_hi > 0.5 * q.relative_error {
                warnings.push(format!(
                    "{} vs {} at ρ = {}: resolution diagnostic {:.2e} (upper {:.2e}) is more than half the error {:.2e}; raise substeps",
                    q.algorithm,
                    q.model,
                    q.rho.map_or("any".into(), |r| r.to_string()),
                    q.resolution,
                    q.resolution_hi,
                    q.relative_error
                ));
            }
        }
        // Separate single-thread timings of one SDE alone (informational).
        let timing_paths = p.block_size.min(p.paths).min(16);
        let rho_max = *c.rhos.last().expect("validated");
        let sam_us = run::time_model(
            f,
            &self.oracle,
            &self.start,
            ModelKind::own(AlgorithmKind::Sam),
            c.eta,
            rho_max,
            timing_paths,
            10,
            2,
        )? * 1e6;
        let sgd_us = run::time_model(
            f,
            &self.oracle,
            &self.start,
            ModelKind::own(AlgorithmKind::Sgd),
            c.eta,
            0.0,
            timing_paths,
            10,
            2,
        )? * 1e6;
        let path_steps = (p.paths as u64).saturating_mul(p.steps as u64);
        let cost = CostReport {
            path_steps,
            systems: sweep.systems.len(),
            seconds: out.seconds,
            ms_per_path_step: out.seconds / path_steps as f64 * 1e3,
            sam_sde_us_per_path_substep: sam_us,
            sgd_sde_us_per_path_substep: sgd_us,
        };
        let verdicts = verdicts::verdicts(c, &pairs);
        let observations = verdicts::observations(c, &pairs);
        if pairs.iter().any(|q| !q.relative_error.is_finite()) {
            warnings.push(
                "a relative error is not finite (every path diverged, or the algorithm's mean is 0)".into(),
            );
        }
        Ok(RhoSweepReport {
            header: RunHeader::new("rho-sweep", c.clone(), c.seed, threads, t0, warnings),
            problem: c.problem.name().into(),
            landscape: f.describe(),
            dim: f.dim(),
            profile: c.profile.clone(),
            sizes: p.clone(),
            horizon: p.steps as f64 * c.eta,
            pairs,
            cost,
            verdicts,
            observations,
        })
    }
}
