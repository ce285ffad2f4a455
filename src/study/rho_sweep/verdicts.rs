//! Verdicts and observations of the ρ sweep: Paper 1's picture stated as claims that can fail.
//!
//! * **Equal fit for `ρ ≤ η`** (one verdict per algorithm USAM, DNSAM, SAM and such `ρ`): the
//!   largest relative error among the models compared with the algorithm is at most
//!   `equal_factor` (3) times the smallest. With per-model intervals `[lo_i, hi_i]` the ratio
//!   `R = max e / min e` lies in `[max lo / min hi, max hi / min lo]`: pass when the upper end is
//!   `≤ equal_factor`, fail when the lower end is above it, inconclusive otherwise.
//! * **The SGD SDE fails at large ρ** (one verdict per algorithm at the largest `ρ`):
//!   `e(SGD SDE) / e(own SDE) ≥ sgd_factor` (10); the ratio's interval is
//!   `[lo_SGD / hi_own, hi_SGD / lo_own]`: pass when its lower end is `≥ sgd_factor`, fail when
//!   its upper end is below, inconclusive otherwise.
//!
//! Diverged paths in any pair involved make a verdict inconclusive (they are excluded from the
//! means, which then describe a conditioned ensemble).
//!
//! Observations (no claim): at the largest `ρ`, where the drift-only ablation falls relative to
//! the own SDE and the SGD SDE, and how SAM is modelled by the DNSAM and USAM SDEs.

use super::{PairReport, RhoSweepConfig};
use crate::optim::AlgorithmKind;
use crate::study::verdict::{fmt_num, ClaimKind, Decision, Observation, Verdict};

const SOURCE: &str =
    "Paper 1 (Compagnoni et al., ICML 2023), experiments: relative error vs ρ at fixed η";

fn find<'a>(pairs: &'a [PairReport], alg: &str, model: &str, rho: f64) -> Option<&'a PairReport> {
    pairs
        .iter()
        .find(|p| p.algorithm == alg && p.model == model && p.rho == Some(rho))
}

fn diverged_reason(ps: &[&PairReport]) -> Option<String> {
    let n: u64 = ps.iter().map(|p| p.diverged_paths).sum();
    (n > 0).then(|| format!("{n} diverged paths excluded from the compared pairs"))
}

/// The verdicts of a finished sweep.
pub fn verdicts(config: &RhoSweepConfig, pairs: &[PairReport]) -> Vec<Verdict> {
    let v = &config.verdict;
    let eta = config.eta;
    let mut out = Vec::new();
    let algs = [
        AlgorithmKind::Usam,
        AlgorithmKind::Dnsam,
        AlgorithmKind::Sam,
    ];
    for &rho in config.rhos.iter().filter(|&&r| r <= eta * (1.0 + 1e-12)) {
        for alg in algs {
            let group: Vec<&PairReport> = pairs
                .iter()
                .filter(|p| p.algorithm == alg.name() && p.rho == Some(rho))
                .collect();
            if group.len() < 2 {
                continue;
            }
            let max = group.iter().map(|p| p.relative_error).fold(0.0, f64::max);
            let min = group
                .iter()
                .map(|p| p.relative_error)
                .fold(f64::INFINITY, f64::min);
            let max_lo = group.iter().map(|p| p.ci[0]).fold(0.0, f64::max);
            let max_hi = group.iter().map(|p| p.ci[1]).fold(0.0, f64::max);
            let min_lo = group.iter().map(|p| p.ci[0]).fold(f64::INFINITY, f64::min);
            let min_hi = group.iter().map(|p| p.ci[1]).fold(f64::INFINITY, f64::min);
            let ratio = max / min;
            let ci = [
                max_lo / min_hi,
                if min_lo > 0.0 {
                    max_hi / min_lo
                } else {
                    f64::INFINITY
                },
            ];
            let models: Vec<&str> = group.iter().map(|p| p.model.as_str()).collect();
            let (decision, reason) = if let Some(r) = diverged_reason(&group) {
                (Decision::Inconclusive, r)
            } else if ci[1] <= v.equal_factor {
                (
                    Decision::Pass,
                    format!(
                        "ratio interval ≤ {} (models: {})",
                        v.equal_factor,
                        models.join(", ")
                    ),
                )
            } else if ci[0] > v.equal_factor {
                (
                    Decision::Fail,
                    format!(
                        "ratio interval above {}: the models do not fit equally (models: {})",
                        v.equal_factor,
                        models.join(", ")
                    ),
                )
            } else {
                (
                    Decision::Inconclusive,
                    format!(
                        "ratio interval [{}, {}] straddles {}; more paths or sub-steps would narrow it",
                        fmt_num(ci[0]),
                        fmt_num(ci[1]),
                        v.equal_factor
                    ),
                )
            };
            out.push(
                Verdict::new(
                    format!(
                        "{alg} at ρ = {rho} ≤ η: every SDE fits equally (max/min relative error)"
                    ),
                    ClaimKind::AtMost,
                    ratio,
                    Some(ci),
                    format!("≤ {}", v.equal_factor),
                    decision,
                )
                .reason(reason)
                .source(SOURCE),
            );
        }
    }
    let rho_max = *config.rhos.last().expect("validated: non-empty");
    for alg in algs {
        let (Some(sgd), Some(own)) = (
            find(pairs, alg.name(), "sgd_sde", rho_max),
            find(pairs, alg.name(), &format!("{alg}_sde"), rho_max),
        ) else {
            continue;
        };
        let ratio = sgd.relative_error / own.relative_error;
        let ci = [
            sgd.ci[0] / own.ci[1],
            if own.ci[0] > 0.0 {
                sgd.ci[1] / own.ci[0]
            } else {
                f64::INFINITY
            },
        ];
        let (decision, reason) = if let Some(r) = diverged_reason(&[sgd, own]) {
            (Decision::Inconclusive, r)
        } else if ci[0] >= v.sgd_factor {
            (Decision::Pass, format!("ratio interval ≥ {}", v.sgd_factor))
        } else if ci[1] < v.sgd_factor {
            (
                Decision::Fail,
                format!("ratio interval below {}", v.sgd_factor),
            )
        } else {
            (
                Decision::Inconclusive,
                format!(
                    "ratio interval [{}, {}] straddles {}",
                    fmt_num(ci[0]),
                    fmt_num(ci[1]),
                    v.sgd_factor
                ),
            )
        };
        out.push(
            Verdict::new(
                format!(
                    "{alg} at the largest ρ = {rho_max}: the SGD SDE's error ≫ the {alg} SDE's (ratio)"
                ),
                ClaimKind::AtLeast,
                ratio,
                Some(ci),
                format!("≥ {}", v.sgd_factor),
                decision,
            )
            .reason(reason)
            .source(SOURCE),
        );
    }
    out
}

/// Informational comparisons at the largest `ρ`.
pub fn observations(config: &RhoSweepConfig, pairs: &[PairReport]) -> Vec<Observation> {
    let rho_max = *config.rhos.last().expect("validated: non-empty");
    let mut out = Vec::new();
    for alg in [
        AlgorithmKind::Usam,
        AlgorithmKind::Dnsam,
        AlgorithmKind::Sam,
    ] {
        let (Some(sgd), Some(own), Some(drift)) = (
            find(pairs, alg.name(), "sgd_sde", rho_max),
            find(pairs, alg.name(), &format!("{alg}_sde"), rho_max),
            find(pairs, alg.name(), &format!("{alg}_drift_only"), rho_max),
        ) else {
            continue;
        };
        let e = drift.relative_error;
        let overlaps = |a: [f64; 2], b: [f64; 2]| a[0] <= b[1] && b[0] <= a[1];
        let reading = if overlaps(drift.ci, own.ci) {
            "indistinguishable from own SDE"
        } else if overlaps(drift.ci, sgd.ci) {
            "indistinguishable from SGD SDE"
        } else if own.relative_error <= e && e <= sgd.relative_error {
            "between"
        } else if e < own.relative_error {
            "below own SDE"
        } else {
            "above SGD SDE"
        };
        out.push(Observation {
            what: format!("{alg} at ρ = {rho_max}: relative error of the drift-only ablation"),
            measured: e,
            ci: Some(drift.ci),
            reference: format!(
                "own SDE {} {}, SGD SDE {} {}",
                fmt_num(own.relative_error),
                crate::study::verdict::ci_text(Some(own.ci)).trim(),
                fmt_num(sgd.relative_error),
                crate::study::verdict::ci_text(Some(sgd.ci)).trim()
            ),
            reading: reading.into(),
        });
    }
    // First-order step expansion (module docs of `super`): for USAM the SGD SDE misses the
    // drift ρHg per unit time, the own SDE only the O(η) term (η/2)Hg it shares with SGD, so
    // where these drift terms dominate the error the ratio is ≈ 1 + 2ρ/η.
    for &rho in &config.rhos {
        if let (Some(sgd), Some(own)) = (
            find(pairs, "usam", "sgd_sde", rho),
            find(pairs, "usam", "usam_sde", rho),
        ) {
            let predicted = 1.0 + 2.0 * rho / config.eta;
            let ratio = sgd.relative_error / own.relative_error;
            out.push(Observation {
                what: format!("usam at ρ = {rho}: SGD-SDE error / USAM-SDE error"),
                measured: ratio,
                ci: Some([
                    sgd.ci[0] / own.ci[1],
                    if own.ci[0] > 0.0 {
                        sgd.ci[1] / own.ci[0]
                    } else {
                        f64::INFINITY
                    },
                ]),
                reference: format!(
                    "first-order step expansion 1 + 2ρ/η = {}",
                    fmt_num(predicted)
                ),
                reading: "information".into(),
            });
        }
    }
    if let Some(own) = find(pairs, "sam", "sam_sde", rho_max) {
        for other in ["dnsam_sde", "usam_sde"] {
            if let Some(p) = find(pairs, "sam", other, rho_max) {
                out.push(Observation {
                    what: format!(
                        "sam at ρ = {rho_max}: relative error of the {other} as a model of SAM"
                    ),
                    measured: p.relative_error,
                    ci: Some(p.ci),
                    reference: format!(
                        "SAM SDE {} {}",
                        fmt_num(own.relative_error),
                        crate::study::verdict::ci_text(Some(own.ci)).trim()
                    ),
                    reading: if p.ci[0] > own.ci[1] {
                        "worse than the SAM SDE".into()
                    } else if p.ci[1] < own.ci[0] {
                        "better than the SAM SDE".into()
                    } else {
                        "indistinguishable from the SAM SDE".into()
                    },
                });
            }
        }
    }
    out
}
