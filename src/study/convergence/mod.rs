//! The convergence study: weak error of SAM-family SDEs against their discrete algorithms, and
//! its order in the learning rate (weak approximation in the sense of Compagnoni et al., *An
//! SDE for Modeling SAM: Theory and Insights*, ICML 2023).
//!
//! For each learning rate `η_ℓ` of the grid, with `ρ_ℓ = ρ₀ (η_ℓ/η₀)^p` and `n_ℓ = T/η_ℓ`
//! steps, and for each pair (algorithm, model) and test function `g`, the study estimates
//!
//! `e(η) = max_{1 ≤ k ≤ n_ℓ} |E g(x_k) − E g(X_{kη})|`
//!
//! over **every** discrete step `k` (the definition's max; `schedule.save_dt` can coarsen the
//! grid, which can only under-estimate the max and is reported as a warning), with a
//! simultaneous confidence interval ([`crate::stats::max_abs_with_ci`]), then fits
//! `ln e = c + α ln η` by least squares on the actual `η` values and judges the slope's interval
//! by the pair's claim ([`claims`]):
//!
//! * the algorithm's own SDE or its drift-only ablation: `order_at_least 1` (one-sided: an error
//!   that falls faster is no evidence against an upper bound `Cη`);
//! * any other model (e.g. USAM against the SGD SDE): the drifts differ by `O(ρ) = O(η^p)`, so its
//!   expected order is `min(1, p)`; when that is below the own model's, the claim is
//!   `order_below_own_model` (its slope CI lies below the own SDE's), with a two-sided
//!   `order_equals min(1, p)` fallback from a generic start when the own SDE is not run.
//!
//! A verdict is `inconclusive` whatever the claim when some error is at or below its Monte Carlo
//! noise floor (its CI reaches 0), the SDE is under-resolved (resolution error above
//! `resolution_ratio` × error), or paths diverged.
//!
//! Every point also reports the resolution diagnostic: for Euler–Maruyama models, how much the
//! answer moves between `substeps/2` and `substeps` sub-steps; for exact OU transitions, 0.
//! Where both sides of a pair have exact moments — quadratic landscape with additive or
//! full-batch noise (SGD/USAM), or least squares with real mini-batches (SGD, USAM, m-USAM and
//! their SDEs) — the exact weak error is reported beside the Monte Carlo one, with the paths a
//! conclusive slope would need ([`crate::stats::sample_size`]); `reference = "exact"` computes
//! every pair that way without Monte Carlo — its slope interval is then a regression
//! lack-of-fit interval (`slope_ci_kind = "lack_of_fit"`), not a confidence interval.
//!
//! m-USAM (`musam`, with `micro_batch = m`) runs on the path's mini-batch split into micro-batches
//! ([`crate::optim::msam`]); with subsampling on least squares the USAM and m-USAM SDEs of a Monte
//! Carlo run are integrated with exact coefficients ([`SdeModel::affine`]).
//!
//! Files: `config.rs` (the TOML and its field checks), `claims.rs` (which claim each pair tests,
//! the slope fit and how its interval decides the claim), `exact.rs` (the exact reference from
//! moment recursions), `observer.rs` (the Monte Carlo accumulator), `report.rs` (the JSON), this
//! file (validation and the run), `tests.rs` (claims and mutation tests).

mod budget;
pub mod claims;
mod config;
mod exact;
mod observer;
mod report;

use std::collections::BTreeMap;
use std::time::Instant;

use super::budget::{Budget, Limits};
use super::header::RunHeader;
use super::setup;
use super::test_function::TestFunction;
use crate::ensemble::{Dynamics, Ensemble, Start, System};
use crate::error::{Error, Result};
use crate::landscape::Landscape;
use crate::optim::msam::MSam;
use crate::optim::{AlgorithmKind, Discrete};
use crate::oracle::Oracle;
use crate::sde::linear::LinearSde;
use crate::sde::{ModelKind, SdeForm, SdeModel};
use crate::stats::sample_size::{paths_for_conclusive_slope, PilotPoint};
use crate::stats::{max_abs_with_ci, Moments};
use crate::study::verdict::{ClaimKind, Observation};
use claims::{decide, OrderClaim, SlopeCiKind};
pub use config::{
    ConvergenceConfig, IntegrationConfig, Integrator, Pair, Reference, ScheduleConfig,
    VerdictConfig,
};
use exact::SubsampledExact;
use observer::{single, Combo, WeakErrorObserver};
pub use report::{ConvergenceReport, PairReport, PointReport};

/// The embedded default configuration (`experiments/convergence_quadratic.toml`).
pub const DEFAULT_CONFIG: &str = include_str!("../../../experiments/convergence_quadratic.toml");

/// A validated, ready-to-run convergence study.
pub struct ConvergenceStudy {
    /// The configuration (with every default filled in).
    pub config: ConvergenceConfig,
    landscape: Box<dyn Landscape>,
    oracle: Oracle,
    start: Start,
    etas: Vec<f64>,
    pairs: Vec<Pair>,
    /// `None`: every step of each `η`.
    save_dt: Option<f64>,
    /// Exact batch-law moments (least squares with subsampling), computed once.
    subsampled: Option<SubsampledExact>,
}

impl ConvergenceStudy {
    /// Parses and validates a TOML configuration.
    pub fn from_toml(text: &str) -> Result<Self> {
        Self::new(setup::parse_toml(text)?)
    }

    /// Validates a configuration: sizes and the memory/work estimate first (nothing is built
    /// before they pass), then every field.
    pub fn new(config: ConvergenceConfig) -> Result<Self> {
        Self::budget(&config, rayon::current_num_threads())?.check(&Limits::default())?;
        let landscape = config.landscape.build()?;
        Self::validate(config, landscape)
    }

    /// The run's estimated memory and work ([`crate::study::budget`]), from the configuration
    /// alone.
    pub fn budget(config: &ConvergenceConfig, threads: usize) -> Result<Budget> {
        budget::budget(config, threads, None)
    }

    /// Validates a configuration against a landscape given in code: any [`Landscape`] (with
    /// [`crate::landscape::FiniteSum`] for the subsampling oracle). The configuration's
    /// `landscape` is recorded as `{ kind = "custom", name = <f.describe()> }`.
    pub fn with_landscape(
        mut config: ConvergenceConfig,
        landscape: Box<dyn Landscape>,
    ) -> Result<Self> {
        config.landscape = super::setup::LandscapeConfig::Custom {
            name: landscape.describe(),
        };
        let d = landscape.dim();
        let size = super::setup::LandscapeSize {
            dim: d,
            dim_field: "landscape dimension",
            grad_flops: 4.0 * (d as f64) * (d as f64),
            n_samples: landscape.as_finite_sum().map(|f| f.n_samples()),
            quadratic: landscape.centred_quadratic().is_some(),
        };
        budget::budget(&config, rayon::current_num_threads(), Some(size))?
            .check(&Limits::default())?;
        Self::validate(config, landscape)
    }

    fn validate(config: ConvergenceConfig, landscape: Box<dyn Landscape>) -> Result<Self> {
        config.check_ensemble()?;
        let d = landscape.dim();
        let oracle = config.oracle.build(landscape.as_ref())?;
        let start = config.start.build(d)?;
        let (etas, save_dt) = config.learning_rates()?;
        config.check_settings()?;
        let pairs = config.pairs()?;
        let micro = config::check_micro_batch(&config, &pairs, &oracle)?;
        let subsampled = match SubsampledExact::new(landscape.as_ref(), &oracle, micro) {
            Some(r) => Some(r?),
            None => None,
        };
        let study = Self {
            config,
            landscape,
            oracle,
            start,
            etas,
            pairs,
            save_dt,
            subsampled,
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
                                "applies only to pairs with exact moments (quadratic landscape with additive or full-batch noise: sgd/usam with sgd_sde/usam_sde/<alg>_drift_only/sgd_sde2/usam_sde2; least squares with subsampling: sgd/usam/musam with sgd_sde/usam_sde/musam_sde/<alg>_drift_only) and test functions norm_sq/loss; {} vs {} with {} is not",
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

    /// Steps between the times of the max (1 = every step, the default).
    fn save_every(&self, eta: f64) -> usize {
        self.save_dt
            .map_or(1, |dt| setup::whole_multiple(dt, eta).expect("validated"))
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
        // Real mini-batches on least squares: USAM's and m-USAM's SDEs with exact coefficients
        // (the SGD SDE keeps its exact N-column factor), unless the inner Monte Carlo form or
        // the exact-OU integrator is asked for.
        if let Some(ex) = &self.subsampled {
            if kind.alg != AlgorithmKind::Sgd
                && int.sde_form != SdeForm::MonteCarlo
                && int.integrator != Integrator::ExactOu
            {
                if let Some(sde) = ex.sde(kind, eta, rho) {
                    return Ok((
                        Dynamics::Euler {
                            model: SdeModel::affine(kind, eta, rho, sde),
                            substeps,
                        },
                        false,
                    ));
                }
            }
        }
        // An explicit request for the Monte Carlo form is honoured even where a linear form exists.
        let linear = if int.sde_form == SdeForm::MonteCarlo {
            None
        } else {
            LinearSde::of_model(kind, f, &self.oracle, eta, rho)
        };
        match (int.integrator, linear) {
            (Integrator::Auto | Integrator::ExactOu | Integrator::Richardson, Some(lin)) => Ok((Dynamics::ExactOu(lin.transition(eta)), true)),
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
            .map(|&e| (self.steps(e) as u64).saturating_mul(self.config.paths as u64))
            .fold(0u64, u64::saturating_add)
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
                        rows.entry((p, ti))
                            .or_default()
                            .push(PointReport::exact(eta, rho, e, t));
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
                let dynamics = match a {
                    AlgorithmKind::Musam => Dynamics::MicroBatch(MSam {
                        eta,
                        rho,
                        m: self.config.micro_batch.expect("validated"),
                        normalized: false,
                    }),
                    _ => Dynamics::Discrete(Discrete { kind: a, eta, rho }),
                };
                systems.push(System {
                    label: a.name().into(),
                    dynamics,
                });
            }
            let mut models: Vec<ModelKind> = self.pairs.iter().map(|p| p.model).collect();
            models.sort();
            models.dedup();
            let r = self.config.integration.substeps;
            let richardson = self.config.integration.integrator == Integrator::Richardson;
            let mut resolution: BTreeMap<ModelKind, (Combo, Combo)> = BTreeMap::new();
            let mut model_index: BTreeMap<ModelKind, Combo> = BTreeMap::new();
            for mk in models {
                let (dynamics, exact) = self.model_dynamics(mk, eta, rho, r)?;
                let main = systems.len();
                model_index.insert(mk, single(main));
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
                } else if richardson {
                    // 2 g(X^{η/r}) − g(X^{η/(r/2)}) on one Brownian path (weak order 2 in the
                    // sub-step); the diagnostic is the same extrapolation one level coarser.
                    integrators.insert(
                        mk,
                        format!(
                            "richardson(euler_maruyama substeps {r} and {}; diagnostic {} and {})",
                            r / 2,
                            r / 2,
                            r / 4
                        ),
                    );
                    let mut idx = [main, 0, 0];
                    for (k, rk) in [(1, r / 2), (2, r / 4)] {
                        let (dyn_k, _) = self.model_dynamics(mk, eta, rho, rk)?;
                        idx[k] = systems.len();
                        systems.push(System {
                            label: format!("{}@{rk}", mk.name()),
                            dynamics: dyn_k,
                        });
                    }
                    let fine = vec![(idx[0], 2.0), (idx[1], -1.0)];
                    let coarse = vec![(idx[1], 2.0), (idx[2], -1.0)];
                    model_index.insert(mk, fine.clone());
                    resolution.insert(mk, (fine, coarse));
                } else {
                    integrators.insert(
                        mk,
                        format!("euler_maruyama(substeps={r}; diagnostic {})", r / 2),
                    );
                    let (coarse, _) = self.model_dynamics(mk, eta, rho, r / 2)?;
                    resolution.insert(mk, (single(main), single(systems.len())));
                    systems.push(System {
                        label: format!("{}@{}", mk.name(), r / 2),
                        dynamics: coarse,
                    });
                }
            }
            let pair_idx: Vec<(Combo, Combo)> = self
                .pairs
                .iter()
                .map(|p| {
                    (
                        single(index[p.algorithm.name()]),
                        model_index[&p.model].clone(),
                    )
                })
                .collect();
            let res_idx: Vec<(Combo, Combo)> = resolution.values().cloned().collect();
            let every = self.save_every(eta);
            let steps = self.steps(eta);
            let n_saves = steps / every;
            let depends: Vec<Vec<usize>> = self
                .pairs
                .iter()
                .zip(&pair_idx)
                .map(|(p, (a, m))| {
                    let mut v: Vec<usize> = a.iter().chain(m).map(|&(s, _)| s).collect();
                    if let Some((_, c)) = resolution.get(&p.model) {
                        v.extend(c.iter().map(|&(s, _)| s));
                    }
                    v.sort_unstable();
                    v.dedup();
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
                let sm = pair_idx[pi].1[0].0;
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
                        argmax_time: ((est.argmax + 1) * every) as f64 * eta,
                        std_err: est.std_err,
                        clamped_eigenvalues: out.clamps[sm],
                    });
                }
            }
        }
        if let Some(dt) = self.save_dt {
            if self.etas.iter().any(|&eta| self.save_every(eta) > 1) {
                warnings.push(format!(
                    "schedule.save_dt = {dt} is coarser than some η: the weak error is a max over that grid only and can under-estimate the max over every step"
                ));
            }
        }
        let slope_ci_kind = match self.config.reference {
            Reference::MonteCarlo => SlopeCiKind::MonteCarlo,
            Reference::Exact => SlopeCiKind::LackOfFit,
        };
        // First fit every row, then decide each claim (a comparison needs the own SDE's row).
        let mut fitted = Vec::new();
        for &p in &self.pairs {
            for (ti, tf) in tfs.iter().enumerate() {
                let points = rows.remove(&(p, ti)).unwrap_or_default();
                fitted.push(self.fit(
                    p,
                    *tf,
                    points,
                    integrators.get(&p.model).cloned().unwrap_or_default(),
                    slope_ci_kind,
                ));
            }
        }
        let n_tf = tfs.len();
        let claims: Vec<OrderClaim> = self
            .pairs
            .iter()
            .flat_map(|&p| {
                let own = self.pairs.iter().position(|q| {
                    q.algorithm == p.algorithm && q.model == ModelKind::own(p.algorithm)
                });
                (0..n_tf).map(move |ti| self.claim(p, own.map(|o| o * n_tf + ti)))
            })
            .collect();
        let tol = self.config.verdict.tolerance;
        let decided: Vec<_> = claims
            .iter()
            .zip(&fitted)
            .map(|(claim, (row, blockers))| decide(claim, row, blockers, &fitted, tol))
            .collect();
        let pairs: Vec<PairReport> = fitted
            .into_iter()
            .zip(claims.iter().zip(decided))
            .map(|((mut row, _), (claim, d))| {
                row.claim_kind = d.kind;
                row.expected_order = claim.alpha();
                row.verdict = d.decision;
                row.verdict_reason = d.reason;
                row.own_model_slope_ci = d.own_ci;
                row
            })
            .collect();
        let verdicts = pairs.iter().map(PairReport::to_verdict).collect();
        let observations = self.paths_needed(&pairs);
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
            observations,
        })
    }

    /// Monte Carlo runs where the exact weak errors are known: how many paths per `η` each
    /// pair's slope would need to be conclusive ([`crate::stats::sample_size`]), this run being
    /// the pilot. The band is the claim's: `[α − tol, α + tol]` around the expected order.
    fn paths_needed(&self, pairs: &[PairReport]) -> Vec<Observation> {
        if self.config.reference != Reference::MonteCarlo {
            return Vec::new();
        }
        let v = &self.config.verdict;
        let mut out = Vec::new();
        for p in pairs {
            let pts: Option<Vec<PilotPoint>> = p
                .points
                .iter()
                .map(|q| {
                    Some(PilotPoint {
                        eta: q.eta,
                        exact: q.exact_weak_error?,
                        floor: q.mc_floor,
                        std_err: q.std_err,
                        resolution: q.resolution_error,
                        resolution_hi: q.resolution_ci[1],
                    })
                })
                .collect();
            let Some(pts) = pts else { continue };
            // The claim's band: one-sided for `order_at_least`; two-sided `α ± tol` otherwise
            // (for `order_below_own_model` that is its `order_equals` reading, a proxy: the
            // comparison itself also needs the own SDE's interval).
            let hi = match p.claim_kind {
                ClaimKind::OrderAtLeast => f64::INFINITY,
                _ => p.expected_order + v.tolerance,
            };
            let band = [p.expected_order - v.tolerance, hi];
            let need = paths_for_conclusive_slope(
                &pts,
                self.config.paths,
                band,
                v.level,
                v.resolution_ratio,
            );
            let criteria = format!(
                "predicted from the exact weak errors and this run's standard errors and resolution diagnostics ({} paths): floor ≤ ½ error and resolution ≤ {} × error at every η, slope CI {}",
                self.config.paths,
                v.resolution_ratio,
                if hi.is_finite() {
                    format!("inside [{:.2}, {:.2}]", band[0], band[1])
                } else {
                    format!("above {:.2}", band[0])
                }
            );
            out.push(Observation {
                what: format!(
                    "{} vs {} ({}): Monte Carlo paths per η for a conclusive slope",
                    p.algorithm, p.model, p.test_function
                ),
                measured: need.as_ref().map_or(f64::INFINITY, |&n| n as f64),
                ci: None,
                reference: match &need {
                    Ok(_) => criteria,
                    Err(why) => format!("{why}; {criteria}"),
                },
                reading: if need.is_ok() {
                    "information".into()
                } else {
                    "unreachable".into()
                },
            });
        }
        out
    }
}

#[cfg(test)]
mod tests;
