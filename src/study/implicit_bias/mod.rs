//! The implicit-bias study: m-SAM on a diagonal linear network for sparse regression
//! (Andriushchenko & Flammarion, *Towards Understanding Sharpness-Aware Minimization*, ICML
//! 2022, §4 and Theorem 1).
//!
//! **Problem** ([`crate::landscape::dln`]): per data seed, `β*` with `k` non-zero coordinates,
//! `X ∈ ℝ^{n×d}` Gaussian, `y = Xβ*`; the network `β = u ⊙ v` from `u = α·1`, `v = 0`, loss
//! `(1/2n)‖X(u⊙v) − y‖²`, step `γ = step_times_d/d`, `train.steps` iterations.
//!
//! **Methods** (all [`crate::optim::msam::MSam`] on the finite sum, via
//! [`crate::optim::schedule::Schedule`]): GD (ERM); SGD with one uniformly drawn example per
//! step; n-SAM (one ascent `ρ∇L` for the whole set); 1-SAM (one ascent `ρ∇ℓ_j` per example,
//! `ℓ_j = ½r_j²`, gradients at the perturbed points averaged; `train.original_one_sam_ascent`
//! uses `2ρ`, the paper's original code's convention); m-SAM for the `m` of `train.m_sam`
//! (random partition each step). Every SAM variant runs on the `train.rho` grid.
//!
//! **Per run** (`run.rs`): final training loss, population test loss `½‖β − β*‖²` and sampled
//! test loss, `‖β‖₁`, `‖β‖₀` at `classify.support_threshold` with false positives/negatives,
//! `α_eff` per coordinate from the exact product formula, `Δ = −ln(α_eff²/α²)` averaged on and
//! off the support, and the ℓ2 distance between the trained `β` and the minimiser of
//! `ψ_{α_eff}` on `{Xβ = y}` from the dual Newton solver
//! ([`crate::landscape::hyperbolic_entropy`]) — once with the correct `β = (α²/2) sinh(Xᵀλ)`
//! and once with the ½ dropped, the convention check. Outcome classes, in this order:
//! diverged (non-finite, or training loss > `classify.divergence_loss` at a check every 50
//! steps), collapsed (`‖β‖₂ < classify.collapse_norm`), unconverged (final training loss >
//! `classify.fit_loss`), fits-but-far (test loss > `classify.far_test_loss`), ok. Only `ok` runs
//! enter medians; the others are counted and listed (`summary.rs`).
//!
//! **Fine-tuning** (`finetune.rs`): ERM → 1-SAM and 1-SAM → ERM switching at
//! `finetune.switch_step`, against continued ERM (the GD run), and the losses on the line
//! between the continued-ERM and the fine-tuned solution.
//!
//! **Verdicts** (`verdicts.rs`) compare methods over seeds with paired sign tests (exact
//! binomial, one-sided at `1 − verdict.level`) and medians with order-statistic intervals.
//!
//! Determinism: data seed `s` is `ChaCha8(seed)` on stream `s`; each run draws its batches from
//! its own stream (derived from the master seed, the run's position in the grid and `s`); runs
//! execute in parallel and are collected in a fixed order, so results are bit-identical at any
//! thread count.

mod budget;
mod config;
mod finetune;
mod report;
mod run;
mod summary;
mod verdicts;

use std::time::Instant;

use nalgebra::DMatrix;
use rayon::prelude::*;

use crate::ensemble::rng::{aux_rng, path_rng, stream_id};
use crate::error::Result;
use crate::landscape::dln::SparseRegression;
use crate::optim::schedule::Schedule;
use crate::registry::Progress;

use super::header::RunHeader;

pub use config::{
    ClassifyConfig, DataConfig, FinetuneConfig, ImplicitBiasConfig, MethodName, RecordConfig,
    TestMetric, TrainConfig, VerdictConfig, DEFAULT_CONFIG,
};
pub use finetune::{monotone, FinetuneRecord, Line, ERM_THEN_SAM, SAM_THEN_ERM};
pub use report::{FinetuneCell, FinetuneReport, ImplicitBiasReport, ProblemSummary};
pub use run::{checkpoints, classify, Curve, Method, Outcome, RunRecord};
pub use summary::{paired, spread, tuned, CellSummary, Excluded, Exclusions, Paired, Spread};

/// Stream level of the data draws.
const DATA_LEVEL: u64 = 0;

/// A validated study.
pub struct ImplicitBiasStudy {
    /// The configuration.
    pub config: ImplicitBiasConfig,
    methods: Vec<Method>,
}

#[derive(Clone, Copy)]
enum Job {
    Main {
        seed: usize,
        method: Method,
        /// Position of (method, ρ) in the grid (selects the run's random stream).
        slot: usize,
        rho: f64,
    },
    Finetune {
        seed: usize,
    },
}

/// A job's result; serialisable so a shard can compute it and the merge fold it (crate::shard).
#[derive(serde::Serialize, serde::Deserialize)]
enum JobResult {
    Main(Box<RunRecord>),
    Finetune(Vec<FinetuneRecord>),
}

impl ImplicitBiasStudy {
    /// The run's estimated memory and work ([`crate::study::budget`]), from the configuration
    /// alone.
    pub fn budget(
        config: &ImplicitBiasConfig,
        threads: usize,
    ) -> Result<crate::study::budget::Budget> {
        budget::budget(config, threads)
    }

    /// Validates: every field, then the memory/work estimate (nothing is allocated before).
    pub fn new(config: ImplicitBiasConfig) -> Result<Self> {
        config.validate()?;
        Self::budget(&config, rayon::current_num_threads())?
            .check(&crate::study::budget::Limits::default())?;
        let mut methods: Vec<Method> = Vec::new();
        // Table order: GD, SGD, n-SAM, m-SAM (decreasing m), 1-SAM.
        for name in [MethodName::Gd, MethodName::Sgd, MethodName::NSam] {
            if config.train.methods.contains(&name) {
                methods.push(Method::from_name(name));
            }
        }
        let mut ms = config.train.m_sam.clone();
        ms.sort_unstable_by(|a, b| b.cmp(a));
        methods.extend(ms.into_iter().map(Method::MSam));
        methods.push(Method::OneSam);
        Ok(Self { config, methods })
    }

    /// Methods in table order.
    pub fn methods(&self) -> &[Method] {
        &self.methods
    }

    fn runs_per_seed(&self) -> usize {
        let nr = self.config.train.rho.len();
        self.methods
            .iter()
            .map(|m| if m.has_rho() { nr } else { 1 })
            .sum()
    }

    /// Work units: steps over all runs.
    pub fn total_work(&self) -> u64 {
        let c = &self.config;
        let per_seed = (self.runs_per_seed() as u64)
            .saturating_mul(c.train.steps as u64)
            .saturating_add(finetune::work_per_seed(c));
        per_seed.saturating_mul(c.seeds as u64)
    }

    fn jobs(&self) -> Vec<Job> {
        let c = &self.config;
        let mut jobs = Vec::new();
        // The long fine-tuning jobs first, so they do not finish last on one thread.
        if c.finetune().is_some() {
            jobs.extend((0..c.seeds).map(|seed| Job::Finetune { seed }));
        }
        for seed in 0..c.seeds {
            let mut slot = 0;
            for &method in &self.methods {
                let rhos: Vec<f64> = if method.has_rho() {
                    c.train.rho.clone()
                } else {
                    vec![0.0]
                };
                for rho in rhos {
                    jobs.push(Job::Main {
                        seed,
                        method,
                        slot,
                        rho,
                    });
                    slot += 1;
                }
            }
        }
        jobs
    }

    /// Runs the study (rayon inside; the caller installs the pool).
    pub fn run(&self, threads: usize, progress: Option<Progress>) -> Result<ImplicitBiasReport> {
        let t0 = Instant::now();
        let c = &self.config;
        let problems: Vec<(SparseRegression, DMatrix<f64>)> = (0..c.seeds)
            .into_par_iter()
            .map(|s| {
                let mut rng = path_rng(c.seed, stream_id(DATA_LEVEL, s as u64));
                let p = SparseRegression::generate(
                    c.data.n,
                    c.data.d,
                    c.data.k,
                    c.data.test_points,
                    &mut rng,
                )?;
                let x = p.train.design();
                Ok((p, x))
            })
            .collect::<Result<_>>()?;
        let tick = |n: u64| {
            if let Some(p) = progress {
                p(n)
            }
        };
        let curve_at = checkpoints(c.train.steps, c.record.curve_points);
        // Independent jobs, results in job order (sharded with --shard; see crate::shard).
        let jobs = self.jobs();
        let results: Vec<JobResult> =
            crate::shard::par_map("implicit-bias jobs", &jobs, |&job| match job {
                Job::Main {
                    seed,
                    method,
                    slot,
                    rho,
                } => {
                    let (p, x) = &problems[seed];
                    let schedule =
                        Schedule::single(method.phase(c, rho, c.train.steps), c.data.n, "train")
                            .expect("validated");
                    let mut rng = aux_rng(
                        c.seed,
                        "implicit_bias.batches",
                        stream_id(1 + slot as u64, seed as u64),
                    );
                    let curve = (seed == c.record.representative_seed).then_some(&curve_at[..]);
                    let t = run::train(
                        p,
                        &schedule,
                        None,
                        c.train.alpha,
                        c.classify.divergence_loss,
                        &mut rng,
                        curve,
                        &tick,
                    );
                    JobResult::Main(Box::new(run::measure(c, p, x, seed, method.key(), rho, t)))
                }
                Job::Finetune { seed } => {
                    let (p, x) = &problems[seed];
                    JobResult::Finetune(finetune::run_seed(c, p, x, seed, &tick))
                }
            });
        let mut runs = Vec::new();
        let mut ft = Vec::new();
        for r in results {
            match r {
                JobResult::Main(r) => runs.push(*r),
                JobResult::Finetune(v) => ft.extend(v),
            }
        }
        Ok(report::assemble(self, &problems, runs, ft, threads, t0))
    }

    fn header(
        &self,
        threads: usize,
        t0: Instant,
        warnings: Vec<String>,
    ) -> RunHeader<ImplicitBiasConfig> {
        RunHeader::new(
            "implicit-bias",
            self.config.clone(),
            self.config.seed,
            threads,
            t0,
            warnings,
        )
    }
}
