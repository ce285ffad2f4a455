//! The implicit-bias report: per-run records, per-cell summaries, the fine-tuning part, the
//! warnings about excluded runs, and the verdicts ([`super::verdicts`]).

use std::time::Instant;

use nalgebra::DMatrix;
use serde::Serialize;

use super::config::{ImplicitBiasConfig, TestMetric};
use super::finetune::{FinetuneRecord, ERM_THEN_SAM, SAM_THEN_ERM};
use super::run::{Method, RunRecord};
use super::summary::{spread, summarise, tuned, CellSummary, Spread};
use super::{verdicts, ImplicitBiasStudy};
use crate::landscape::dln::SparseRegression;
use crate::study::header::RunHeader;
use crate::study::verdict::{Observation, Verdict};

/// One data seed's ground truth.
#[derive(Debug, Clone, Serialize)]
pub struct ProblemSummary {
    /// Data seed index.
    pub seed: usize,
    /// `β*`.
    pub beta_star: Vec<f64>,
    /// `‖β*‖₁`.
    pub beta_star_l1: f64,
}

/// The `ρ` tuned per method (smallest median per-seed ratio to GD among cells without exclusions).
#[derive(Debug, Clone, Serialize)]
pub struct Tuned {
    /// Method key.
    pub method: String,
    /// Tuned `ρ` (`None`: every cell had excluded runs).
    pub rho: Option<f64>,
}

/// One fine-tuning arm at one `ρ`, against continued ERM.
#[derive(Debug, Clone, Serialize)]
pub struct FinetuneCell {
    /// Arm key (`erm_then_one_sam`, `one_sam_then_erm`).
    pub arm: String,
    /// 1-SAM radius.
    pub rho: f64,
    /// Summary; `vs_gd` and `ratio_to_gd` are against continued ERM (the GD run).
    pub cell: CellSummary,
    /// Seeds whose test loss is monotone on the segment (ERM → 1-SAM arm only).
    pub monotone: usize,
    /// Seeds judged for monotonicity.
    pub monotone_of: usize,
    /// 1-SAM → ERM: per seed, the fraction of the from-scratch 1-SAM gain kept,
    /// `(L_GD − L_arm)/(L_GD − L_1-SAM)`, where the main grid has this `ρ` and 1-SAM gained.
    pub gain_kept: Option<Spread>,
}

/// The fine-tuning part.
#[derive(Debug, Clone, Serialize)]
pub struct FinetuneReport {
    /// Continued ERM's training loss at the switch step, over seeds.
    pub switch_train_loss: Option<Spread>,
    /// Per arm and `ρ`.
    pub cells: Vec<FinetuneCell>,
    /// Tuned `ρ` of ERM → 1-SAM.
    pub tuned_erm_then_sam: Option<f64>,
    /// Tuned `ρ` of 1-SAM → ERM.
    pub tuned_sam_then_erm: Option<f64>,
    /// Every seed and `ρ`.
    pub records: Vec<FinetuneRecord>,
}

/// The study's report.
#[derive(Debug, Clone, Serialize)]
pub struct ImplicitBiasReport {
    /// Shared header.
    #[serde(flatten)]
    pub header: RunHeader<ImplicitBiasConfig>,
    /// The step `γ = step_times_d/d`.
    pub eta: f64,
    /// Ground truths.
    pub problems: Vec<ProblemSummary>,
    /// Per (method, `ρ`), in table order.
    pub cells: Vec<CellSummary>,
    /// Tuned `ρ` per SAM variant.
    pub tuned: Vec<Tuned>,
    /// Fine-tuning (if configured).
    pub finetune: Option<FinetuneReport>,
    /// Every run.
    pub runs: Vec<RunRecord>,
    /// Verdicts.
    pub verdicts: Vec<Verdict>,
    /// Observations.
    pub observations: Vec<Observation>,
}

impl ImplicitBiasReport {
    /// The cell of `method` at `rho` (`rho` ignored for GD/SGD).
    pub fn cell(&self, method: &str, rho: f64) -> Option<&CellSummary> {
        find_cell(&self.cells, method, rho)
    }

    /// Runs of `method` at `rho`, in seed order.
    pub fn runs_of(&self, method: &str, rho: f64) -> Vec<&RunRecord> {
        runs_of(&self.runs, method, rho)
    }

    /// `true` when the verdicts use the sampled test loss.
    pub fn sampled(&self) -> bool {
        self.header.config.train.test_metric == TestMetric::Sampled
    }
}

/// Same `ρ` up to rounding.
pub(super) fn same_rho(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-12 * a.abs().max(b.abs()).max(1.0)
}

pub(super) fn find_cell<'a>(
    cells: &'a [CellSummary],
    method: &str,
    rho: f64,
) -> Option<&'a CellSummary> {
    cells
        .iter()
        .find(|c| c.method == method && (same_rho(c.rho, rho) || c.rho == 0.0))
}

pub(super) fn runs_of<'a>(runs: &'a [RunRecord], method: &str, rho: f64) -> Vec<&'a RunRecord> {
    runs.iter()
        .filter(|r| r.method == method && (same_rho(r.rho, rho) || r.rho == 0.0))
        .collect()
}

fn exclusion_warning(what: &str, c: &CellSummary) -> Option<String> {
    if c.excluded.is_empty() {
        return None;
    }
    let list: Vec<String> = c
        .excluded
        .iter()
        .map(|e| format!("seed {} {}", e.seed, e.outcome.name()))
        .collect();
    Some(format!(
        "{what} {} ρ = {}: {} of {} runs excluded from medians ({})",
        c.label,
        c.rho,
        c.excluded.len(),
        c.runs,
        list.join(", ")
    ))
}

pub(super) fn assemble(
    study: &ImplicitBiasStudy,
    problems: &[(SparseRegression, DMatrix<f64>)],
    runs: Vec<RunRecord>,
    ft: Vec<FinetuneRecord>,
    threads: usize,
    t0: Instant,
) -> ImplicitBiasReport {
    let c = &study.config;
    let level = c.verdict.level;
    let sampled = c.train.test_metric == TestMetric::Sampled;
    let gd_runs = runs_of(&runs, "gd", 0.0);
    let mut cells = Vec::new();
    for &m in study.methods() {
        let rhos = if m.has_rho() {
            c.train.rho.clone()
        } else {
            vec![0.0]
        };
        for rho in rhos {
            let rs = runs_of(&runs, &m.key(), rho);
            cells.push(summarise(
                &m.key(),
                &m.label(),
                rho,
                &rs,
                &gd_runs,
                sampled,
                level,
            ));
        }
    }
    let tuned_list: Vec<Tuned> = study
        .methods()
        .iter()
        .filter(|m| m.has_rho())
        .map(|m| Tuned {
            method: m.key(),
            rho: tuned(&cells, &m.key()).map(|c| c.rho),
        })
        .collect();
    let mut warnings: Vec<String> = cells
        .iter()
        .filter_map(|x| exclusion_warning("", x).map(|s| s.trim_start().to_string()))
        .collect();
    let undefined: Vec<String> = cells
        .iter()
        .filter(|x| x.alpha_eff_undefined > 0)
        .map(|x| {
            if x.rho == 0.0 {
                format!("{} ({}/{})", x.label, x.alpha_eff_undefined, x.runs)
            } else {
                format!(
                    "{} ρ = {} ({}/{})",
                    x.label, x.rho, x.alpha_eff_undefined, x.runs
                )
            }
        })
        .collect();
    if !undefined.is_empty() {
        warnings.push(format!(
            "α_eff undefined (a step changed the sign of s·q for some coordinate, or the run diverged) in: {}; those runs have no α_eff, Δ or dual check",
            undefined.join(", ")
        ));
    }
    let finetune = c.finetune().map(|f| {
        let mut fcells = Vec::new();
        for (arm, label) in [(ERM_THEN_SAM, "ERM → 1-SAM"), (SAM_THEN_ERM, "1-SAM → ERM")] {
            for &rho in &f.rho {
                let recs: Vec<&FinetuneRecord> =
                    ft.iter().filter(|r| same_rho(r.rho, rho)).collect();
                let rs: Vec<&RunRecord> = recs
                    .iter()
                    .map(|r| {
                        if arm == ERM_THEN_SAM {
                            &r.erm_then_sam
                        } else {
                            &r.sam_then_erm
                        }
                    })
                    .collect();
                let cell = summarise(arm, label, rho, &rs, &gd_runs, sampled, level);
                let (monotone, monotone_of) = if arm == ERM_THEN_SAM {
                    (
                        recs.iter().filter(|r| r.monotone == Some(true)).count(),
                        recs.iter().filter(|r| r.monotone.is_some()).count(),
                    )
                } else {
                    (0, 0)
                };
                let gain_kept = (arm == SAM_THEN_ERM)
                    .then(|| {
                        let main = runs_of(&runs, &Method::OneSam.key(), rho);
                        let main: Vec<&RunRecord> =
                            main.into_iter().filter(|r| r.rho > 0.0).collect();
                        if main.len() != rs.len() {
                            return None;
                        }
                        let v: Vec<f64> = rs
                            .iter()
                            .zip(&main)
                            .zip(&gd_runs)
                            .filter(|((a, m), g)| {
                                a.outcome.included() && m.outcome.included() && g.outcome.included()
                            })
                            .filter_map(|((a, m), g)| {
                                let (la, lm, lg) =
                                    (a.metric(sampled), m.metric(sampled), g.metric(sampled));
                                (lg > lm).then(|| (lg - la) / (lg - lm))
                            })
                            .collect();
                        spread(&v, level)
                    })
                    .flatten();
                if let Some(w) = exclusion_warning("fine-tuning", &cell) {
                    warnings.push(w);
                }
                fcells.push(FinetuneCell {
                    arm: arm.into(),
                    rho,
                    cell,
                    monotone,
                    monotone_of,
                    gain_kept,
                });
            }
        }
        let tuned_of = |arm: &str| {
            let cs: Vec<CellSummary> = fcells
                .iter()
                .filter(|x| x.arm == arm)
                .map(|x| x.cell.clone())
                .collect();
            tuned(&cs, arm).map(|x| x.rho)
        };
        let switch: Vec<f64> = ft
            .iter()
            .filter(|r| same_rho(r.rho, f.rho[0]))
            .map(|r| r.switch_train_loss)
            .collect();
        FinetuneReport {
            switch_train_loss: spread(&switch, level),
            tuned_erm_then_sam: tuned_of(ERM_THEN_SAM),
            tuned_sam_then_erm: tuned_of(SAM_THEN_ERM),
            cells: fcells,
            records: ft,
        }
    });
    let problems: Vec<ProblemSummary> = problems
        .iter()
        .enumerate()
        .map(|(seed, (p, _))| ProblemSummary {
            seed,
            beta_star: p.beta_star.clone(),
            beta_star_l1: p.beta_star_l1(),
        })
        .collect();
    let mut report = ImplicitBiasReport {
        header: study.header(threads, t0, Vec::new()),
        eta: c.eta(),
        problems,
        cells,
        tuned: tuned_list,
        finetune,
        runs,
        verdicts: Vec::new(),
        observations: Vec::new(),
    };
    let (v, o) = verdicts::judge(&report);
    report.verdicts = v;
    report.observations = o;
    report.header = study.header(threads, t0, warnings);
    report
}
