//! The SAM-rate study: Theorem 2 of Paper 2 (Andriushchenko & Flammarion, *Towards
//! Understanding Sharpness-Aware Minimization*, ICML 2022) measured.
//!
//! **Algorithm** (unnormalized stochastic SAM, the same mini-batch `B_t` at both points,
//! [`crate::optim::msam::MSam`] with `m = b`):
//!
//! `w_{t+1} = w_t − γ_t ∇f_{B_t}(w_t + ρ_t ∇f_{B_t}(w_t))`,  `|B_t| = b`.
//!
//! **Assumptions**: (A1) `E_i ‖∇f_i(w) − ∇f(w)‖² ≤ σ²` for all `w`; (A2) each `f_i` is
//! `β`-smooth; (A3, second part) PL: `½‖∇f(w)‖² ≥ μ(f(w) − f⋆)`.
//!
//! **Claims**:
//! * ([`nonconvex`]) with `γ = 1/(β√T)`, `ρ = 1/(βT^{1/4})`:
//!   `(1/T) Σ_{t<T} E‖∇f(w_t)‖² ≤ (4β(f(w₀) − f⋆) + 8σ²/b)/√T` — on the sigmoid loss
//!   (non-convex, `β = max_i ‖x_i‖²/(6√3)`);
//! * ([`pl`]) with `γ_t = min{(8t+4)/(3μ(t+1)²), 1/(2β)}`, `ρ_t = √(γ_t/β)`:
//!   `E f(w_T) − f⋆ ≤ 3β²(f(w₀) − f⋆)/(μ²T²) + 22βσ²/(μ²bT)` — on logistic + ridge (`μ = λ`);
//! * ([`oscillation`], information) normalized SAM with a constant `ρ` on a quadratic does not
//!   converge: it settles on a 2-cycle at the distance `ηλ₁ρ/(2 − ηλ₁)`.
//!
//! How `f⋆` and `σ²` are estimated and why the verdicts bracket the bound: [`nonconvex`],
//! [`probe`], [`verdicts`].
//!
//! Determinism: every path owns its ChaCha8 stream (`seed`, level, path); paths run in parallel
//! and are collected in order, so results are bit-identical at any thread count.

mod budget;
mod config;
pub mod nonconvex;
pub mod oscillation;
pub mod pl;
pub mod probe;
pub mod verdicts;

use std::time::Instant;

use serde::Serialize;

use super::header::RunHeader;
use crate::error::Result;

pub use super::verdict::{Observation, Verdict};
pub use config::{
    DataConfig, NonconvexConfig, OscillationConfig, PlConfig, ProbeConfig, SamRateConfig,
    DEFAULT_CONFIG,
};
pub use nonconvex::{NonconvexReport, RatePoint};
pub use oscillation::{OscillationReport, OscillationRow, Trace};
pub use pl::{PlPoint, PlReport};

/// The report (`sam_rate.json`).
#[derive(Debug, Clone, Serialize)]
pub struct SamRateReport {
    /// The shared header.
    #[serde(flatten)]
    pub header: RunHeader<SamRateConfig>,
    /// Non-convex part.
    pub nonconvex: NonconvexReport,
    /// PL part.
    pub pl: PlReport,
    /// The normalized-SAM contrast.
    pub oscillation: OscillationReport,
    /// Judged claims.
    pub verdicts: Vec<Verdict>,
    /// Information.
    pub observations: Vec<Observation>,
}

/// A validated SAM-rate study.
pub struct SamRateStudy {
    /// The configuration.
    pub config: SamRateConfig,
}

impl SamRateStudy {
    /// Parses and validates TOML.
    pub fn from_toml(text: &str) -> Result<Self> {
        Self::new(super::setup::parse_toml(text)?)
    }

    /// The run's estimated memory and work ([`crate::study::budget`]), from the configuration
    /// alone.
    pub fn budget(config: &SamRateConfig, threads: usize) -> Result<crate::study::budget::Budget> {
        budget::budget(config, threads)
    }

    /// Validates (including the data sets and the quadratic): sizes and the memory/work
    /// estimate first, then every field.
    pub fn new(config: SamRateConfig) -> Result<Self> {
        Self::budget(&config, rayon::current_num_threads())?
            .check(&crate::study::budget::Limits::default())?;
        config.validate()?;
        config.nonconvex.data.build("nonconvex")?;
        config.pl.data.build("pl")?;
        crate::landscape::Quadratic::from_spectrum(
            &config.oscillation.eigenvalues,
            config.oscillation.rotation_seed,
        )?;
        Ok(Self { config })
    }

    /// Total steps.
    pub fn total_work(&self) -> u64 {
        let c = &self.config;
        nonconvex::work(&c.nonconvex) + pl::work(&c.pl) + oscillation::work(&c.oscillation)
    }

    /// Runs the three parts and judges.
    pub fn run(
        &self,
        threads: usize,
        progress: Option<&(dyn Fn(u64) + Sync)>,
    ) -> Result<SamRateReport> {
        let t0 = Instant::now();
        let c = &self.config;
        let nc = nonconvex::run(&c.nonconvex, c.seed, c.level, progress)?;
        let plr = pl::run(&c.pl, c.seed, c.level, progress)?;
        let osc = oscillation::run(&c.oscillation, c.seed, progress)?;
        let mut warnings = Vec::new();
        for p in &nc.points {
            if p.diverged > 0 {
                warnings.push(format!(
                    "non-convex part, T = {}: {} path(s) diverged (not averaged in)",
                    p.horizon, p.diverged
                ));
            }
        }
        for p in &plr.points {
            if p.diverged > 0 {
                warnings.push(format!(
                    "PL part, T = {}: {} path(s) diverged (not averaged in)",
                    p.horizon, p.diverged
                ));
            }
        }
        let mut verdicts = verdicts::nonconvex(&nc);
        verdicts.extend(verdicts::pl(&plr));
        let observations =
            verdicts::observations(&nc, &plr, &osc, c.oscillation.tolerance, c.level);
        Ok(SamRateReport {
            header: RunHeader::new("sam-rate", c.clone(), c.seed, threads, t0, warnings),
            nonconvex: nc,
            pl: plr,
            oscillation: osc,
            verdicts,
            observations,
        })
    }
}
