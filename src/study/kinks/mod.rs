//! The kinks study: does SAM fit 1-D data with fewer ReLU kinks than GD? (Paper 2,
//! Andriushchenko & Flammarion, *Towards Understanding Sharpness-Aware Minimization*, ICML 2022.)
//!
//! **Model** ([`crate::landscape::ReluNet1d`]): `f_θ(x) = Σ_{j=1}^{100} a_j relu(w_j x + b_j)`
//! (hidden biases, no output bias, as in the authors' notebook), loss
//! `L = ½ Σ_{i=1}^{12} (f_θ(x_i) − y_i)²` on the 12 points
//! `x = {−5.5, −4.5, …, 5.5}/4 + 0.07`, `y = 0.345 + (−2, 1.5, 0, 0, 2, 1, 0, −1, 0, 1, 2, −1)`.
//! Initialisation as in the notebook: `w_j = ±2.5`, `b_j ~ N(0, 2.5²)`, `a_j ~ N(0, 4²)` (our own
//! random streams, not PyTorch's; every method starts from the same draw of a seed).
//!
//! **Methods** (full batch, [`crate::optim::msam::MSam::full_direction`]):
//! `θ ← θ − η_t ∇L(θ + ρ ∇L/‖∇L‖)` (normalized SAM, `ρ = 0.3`) or `θ ← θ − η_t ∇L(θ)` (GD),
//! `η_max = 5·10⁻⁵`, at most `T = 10⁶` steps, stopping once `L ≤ 10⁻⁵`. The notebook decays the
//! learning rate linearly, `η_t = η_max(1 − t/T)`, **only in its SAM branch** (the decay line sits
//! inside `if rho > 0`), so its GD runs use a constant rate. The default therefore runs
//! `gd` (constant, as in the notebook), `sam` (linear decay, as in the notebook), `gd_decay`
//! (GD with SAM's decay: the fair control) and, for information, `sam_constant` (SAM at GD's
//! constant rate). The schedule is configurable (`constant`, `linear`, `cosine`).
//!
//! **Kinks** ([`count`]): breakpoints `−b_j/w_j` strictly inside the data range, merged when
//! closer than 0.01 (single linkage), counted when the merged slope change exceeds 1 % of the
//! largest. Also recorded along each run ([`train`]): kinks at steps `{1, 2, 5}·10^k` and at the
//! first crossing of each loss level `10^{k/4}`.
//!
//! **Verdicts** ([`verdicts`]): for each compared method, SAM's median kink count below it by an
//! exact one-sided sign test over seeds, with final losses beside the counts.
//!
//! Determinism: each (seed, method) run is sequential and owns its data; runs execute in
//! parallel and are collected in (seed, method) order, so results do not depend on threads.

mod budget;
mod config;
pub mod count;
pub mod train;
pub mod verdicts;

use std::time::Instant;

use rayon::prelude::*;
use serde::Serialize;

use super::header::RunHeader;
use crate::ensemble::rng::aux_rng;
use crate::error::Result;
use crate::landscape::ReluNet1d;

pub use super::verdict::{Observation, Verdict};
pub use config::{
    DataConfig, InitConfig, KinkRule, KinksConfig, KinksVerdictConfig, MethodConfig, Schedule,
    DEFAULT_CONFIG,
};
pub use count::Kink;
pub use train::{data_range, RunRecord, TracePoint};
pub use verdicts::Comparison;

/// Purpose tag of the initialisation streams.
const INIT_STREAM: &str = "kinks-init";

/// The report (`kinks.json`).
#[derive(Debug, Clone, Serialize)]
pub struct KinksReport {
    /// The shared header (study, version, validated config, seed, threads, time, warnings).
    #[serde(flatten)]
    pub header: RunHeader<KinksConfig>,
    /// The model in words.
    pub model: String,
    /// `(x_min, x_max)`: kinks are counted strictly inside.
    pub data_range: (f64, f64),
    /// Every run, in (seed, method) order.
    pub runs: Vec<RunRecord>,
    /// The paired comparisons behind the verdicts.
    pub comparisons: Vec<Comparison>,
    /// Judged claims.
    pub verdicts: Vec<Verdict>,
    /// Information.
    pub observations: Vec<Observation>,
}

/// A validated kinks study.
pub struct KinksStudy {
    /// The configuration.
    pub config: KinksConfig,
    net: ReluNet1d,
}

impl KinksStudy {
    /// Parses and validates TOML.
    pub fn from_toml(text: &str) -> Result<Self> {
        Self::new(super::setup::parse_toml(text)?)
    }

    /// The run's estimated memory and work ([`crate::study::budget`]), from the configuration
    /// alone.
    pub fn budget(config: &KinksConfig, threads: usize) -> Result<crate::study::budget::Budget> {
        budget::budget(config, threads)
    }

    /// Validates: sizes and the memory/work estimate first, then every field.
    pub fn new(config: KinksConfig) -> Result<Self> {
        Self::budget(&config, rayon::current_num_threads())?
            .check(&crate::study::budget::Limits::default())?;
        let net = config.validate()?;
        Ok(Self { config, net })
    }

    /// The network and data.
    pub fn net(&self) -> &ReluNet1d {
        &self.net
    }

    /// Total steps (the budget of every run; runs that stop early report the rest at once).
    pub fn total_work(&self) -> u64 {
        (self.config.seeds as u64)
            .saturating_mul(self.config.methods.len() as u64)
            .saturating_mul(self.config.max_steps as u64)
    }

    /// The initial parameters of seed `s` (shared by every method).
    pub fn theta0(&self, s: usize) -> Vec<f64> {
        let mut rng = aux_rng(self.config.seed, INIT_STREAM, s as u64);
        self.net.init(self.config.relu_init(), &mut rng)
    }

    /// Runs every (seed, method) pair and judges.
    pub fn run(
        &self,
        threads: usize,
        progress: Option<&(dyn Fn(u64) + Sync)>,
    ) -> Result<KinksReport> {
        let t0 = Instant::now();
        let c = &self.config;
        let jobs: Vec<(usize, usize)> = (0..c.seeds)
            .flat_map(|s| (0..c.methods.len()).map(move |m| (s, m)))
            .collect();
        let runs: Vec<RunRecord> = jobs
            .par_iter()
            .map(|&(s, m)| train::train(&self.net, c, &c.methods[m], s, &self.theta0(s), progress))
            .collect();
        let mut warnings = Vec::new();
        let diverged: Vec<&RunRecord> = runs.iter().filter(|r| r.diverged).collect();
        for r in &diverged {
            warnings.push(format!(
                "{} seed {} diverged after {} steps (excluded from the comparisons)",
                r.method, r.seed, r.steps
            ));
        }
        let comparisons = verdicts::compare(c, &runs);
        let verdicts: Vec<Verdict> = comparisons
            .iter()
            .map(|cmp| {
                let n = diverged
                    .iter()
                    .filter(|r| r.method == cmp.sam || r.method == cmp.other)
                    .count();
                verdicts::judge(c, cmp, n)
            })
            .collect();
        let observations = verdicts::observations(c, &runs, &comparisons);
        Ok(KinksReport {
            header: RunHeader::new("kinks", c.clone(), c.seed, threads, t0, warnings),
            model: format!(
                "{}; L = ½ Σ (f(x_i) − y_i)², full batch, η_max = {}, ≤ {} steps, stop at L ≤ {}",
                self.net.describe_model(),
                c.lr_max,
                c.max_steps,
                c.loss_target
            ),
            data_range: data_range(&self.net),
            runs,
            comparisons,
            verdicts,
            observations,
        })
    }
}
