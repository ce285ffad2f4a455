//! The flatness study's verdicts: (a) each SAM variant's flat fraction above SGD's, (b) each SDE
//! reproduces its algorithm (flat fraction, mean exit times) in the small-ρ run — the same
//! comparison on the preference run is an observation —, (c) the stationary losses of the USAM and
//! SGD SDEs match the formula. See the module docs of [`super`] for why each is stated so.

use super::{FlatnessStudy, StationaryResult, SystemResult, MAX_DIVERGED_FRACTION};
use crate::optim::AlgorithmKind;
use crate::stats::{mean_ci, Moments};
use crate::study::verdict::{ClaimKind, Decision, Observation, Verdict};

impl FlatnessStudy {
    /// Verdicts (b) for one run: each SDE against its discrete algorithm.
    pub(super) fn sde_verdicts(
        &self,
        results: &[SystemResult],
        diffs: &[Moments],
        tag: &str,
    ) -> Vec<Verdict> {
        let c = &self.config;
        let level = c.verdict.level;
        let na = c.algorithms.len();
        let max_div = (c.paths as f64 * MAX_DIVERGED_FRACTION) as u64;
        let mut out = Vec::new();
        for (pi, &a) in c.algorithms.iter().enumerate() {
            let (ed, es) = (&results[pi], &results[na + pi]);
            let diverged = ed.diverged.max(es.diverged);
            let paired = mean_ci(&diffs[pi], level);
            let (fd, fs) = (&ed.flat_fraction, &es.flat_fraction);
            let diff = fd.mean - fs.mean;
            let hw = (fd.half_width.powi(2) + fs.half_width.powi(2)).sqrt();
            let rho = ed.rho;
            let (verdict, reason) = if diverged > max_div || fd.n < 2 || fs.n < 2 {
                (
                    Decision::Inconclusive,
                    format!("{diverged} diverged paths (limit {max_div}) or too few paths"),
                )
            } else if diff.abs() <= hw {
                (Decision::Pass, "|difference| ≤ combined half-width".into())
            } else {
                (Decision::Fail, "|difference| > combined half-width".into())
            };
            out.push(
                Verdict::new(
                    format!(
                        "(b{tag}) {a}_sde reproduces {a}'s flat fraction at ρ = {rho} ({:.4} vs {:.4}; difference with the combined CI of both estimates; the coupled paired difference alone has CI [{:.4}, {:.4}])",
                        fd.mean, fs.mean, paired.lo, paired.hi
                    ),
                    ClaimKind::Consistent,
                    diff,
                    Some([diff - hw, diff + hw]),
                    "CI contains 0",
                    verdict,
                )
                .reason(reason)
                .source("Paper 1, flat-minima discussion (SDE predicts the algorithm)"),
            );
            for (bi, name) in [(0, "flat"), (1, "sharp")] {
                let (md, ms) = if bi == 0 {
                    (&ed.exit_flat.mean, &es.exit_flat.mean)
                } else {
                    (&ed.exit_sharp.mean, &es.exit_sharp.mean)
                };
                let diff = md.mean - ms.mean;
                let hw = (md.half_width.powi(2) + ms.half_width.powi(2)).sqrt();
                let (v, reason) = if md.n < 2 || ms.n < 2 || !hw.is_finite() || diverged > max_div {
                    (
                        Decision::Inconclusive,
                        "fewer than 2 exits on a side, or too many diverged paths",
                    )
                } else if diff.abs() <= hw {
                    (Decision::Pass, "|difference| ≤ combined half-width")
                } else {
                    (Decision::Fail, "|difference| > combined half-width")
                };
                out.push(
                    Verdict::new(
                        format!(
                            "(b{tag}) {a}_sde reproduces {a}'s mean exit time from the {name} basin at ρ = {rho} (difference discrete − SDE; {} vs {} exits)",
                            md.n, ms.n
                        ),
                        ClaimKind::Consistent,
                        diff,
                        Some([diff - hw, diff + hw]),
                        "CI contains 0",
                        v,
                    )
                    .reason(reason)
                    .source("Paper 1, flat-minima discussion (SDE predicts the algorithm)"),
                );
            }
        }
        out
    }
    /// Verdicts (a): each SAM variant's discrete flat fraction against SGD's (preference run).
    /// Without SGD among the algorithms there is nothing to compare with: a warning, no verdict.
    pub(super) fn preference_verdicts(
        &self,
        results: &[SystemResult],
        warnings: &mut Vec<String>,
    ) -> Vec<Verdict> {
        let c = &self.config;
        let max_div = (c.paths as f64 * MAX_DIVERGED_FRACTION) as u64;
        let mut verdicts = Vec::new();
        if let Some(sgd) = c.algorithms.iter().position(|&a| a == AlgorithmKind::Sgd) {
            let base = &results[sgd].flat_fraction;
            for (i, &a) in c.algorithms.iter().enumerate() {
                if a == AlgorithmKind::Sgd {
                    continue;
                }
                let r = &results[i].flat_fraction;
                let (v, reason) = if results[i].diverged.max(results[sgd].diverged) > max_div {
                    (Decision::Inconclusive, "too many diverged paths")
                } else if r.lo > base.hi {
                    (Decision::Pass, "CI lies above SGD's")
                } else if r.hi < base.lo {
                    (Decision::Fail, "CI lies below SGD's")
                } else if r.mean > base.mean {
                    (
                        Decision::Inconclusive,
                        "CIs overlap (mean above SGD's); use more paths",
                    )
                } else {
                    (Decision::Fail, "mean at or below SGD's")
                };
                verdicts.push(
                    Verdict::new(
                        format!("(a) {a} flat fraction > SGD flat fraction (non-overlapping CIs)"),
                        ClaimKind::Greater,
                        r.mean,
                        Some([r.lo, r.hi]),
                        format!("> SGD {:.4} [{:.4}, {:.4}]", base.mean, base.lo, base.hi),
                        v,
                    )
                    .reason(reason)
                    .source("Paper 1, flat minima: SAM variants prefer flatter basins"),
                );
            }
        } else {
            warnings.push("SGD is not among the algorithms: verdict (a) skipped".into());
        }
        verdicts
    }

    /// The comparisons of verdicts (b) repeated on the preference run, where the first-order SDE
    /// is not expected to hold: observations (`consistent`, `differs`, `undecided`).
    pub(super) fn preference_observations(
        &self,
        results: &[SystemResult],
        diffs: &[Moments],
    ) -> Vec<Observation> {
        self.sde_verdicts(results, diffs, ", preference run")
            .into_iter()
            .map(|v| Observation {
                what: v.claim,
                measured: v.measured,
                ci: v.ci,
                reference: format!(
                    "{} (the first-order SDE is not expected to hold at the preference radius)",
                    v.expected
                ),
                reading: match v.verdict {
                    Decision::Pass => "consistent",
                    Decision::Fail => "differs",
                    Decision::Inconclusive => "undecided",
                }
                .into(),
            })
            .collect()
    }

    /// Observations of the second-order models in the preference run: for each `<alg>_sde2`
    /// system, its flat fraction against the discrete algorithm's and the first-order SDE's,
    /// with the paired (coupled) differences discrete − SDE2 and SDE − SDE2 (pairs `na..` of
    /// [`Self::two_basin_run`], in that order).
    pub(super) fn second_order_observations(
        &self,
        results: &[SystemResult],
        diffs: &[Moments],
    ) -> Vec<Observation> {
        let c = &self.config;
        let level = c.verdict.level;
        let na = c.algorithms.len();
        let mut out = Vec::new();
        for (k, r2) in results.iter().filter(|r| r.kind == "sde2").enumerate() {
            let a = r2.algorithm;
            let i = c
                .algorithms
                .iter()
                .position(|&b| b == a)
                .expect("own algorithm");
            let (rd, r1) = (&results[i], &results[na + i]);
            let vs_disc = mean_ci(&diffs[na + 2 * k], level);
            let vs_first = mean_ci(&diffs[na + 2 * k + 1], level);
            let gap1 = mean_ci(&diffs[i], level);
            let reading = |m: &crate::stats::MeanCi| {
                if m.lo <= 0.0 && 0.0 <= m.hi {
                    "consistent"
                } else {
                    "differs"
                }
            };
            out.push(Observation {
                what: format!(
                    "flat fraction at ρ = {}, preference run: {a} (discrete) {:.4} [{:.4}, {:.4}] − {a}_sde2 {:.4} [{:.4}, {:.4}] (paired difference; the first-order {a}_sde has {:.4} [{:.4}, {:.4}], paired gap {:.4} [{:.4}, {:.4}])",
                    rd.rho,
                    rd.flat_fraction.mean,
                    rd.flat_fraction.lo,
                    rd.flat_fraction.hi,
                    r2.flat_fraction.mean,
                    r2.flat_fraction.lo,
                    r2.flat_fraction.hi,
                    r1.flat_fraction.mean,
                    r1.flat_fraction.lo,
                    r1.flat_fraction.hi,
                    gap1.mean,
                    gap1.lo,
                    gap1.hi,
                ),
                measured: vs_disc.mean,
                ci: Some([vs_disc.lo, vs_disc.hi]),
                reference: "0 if the second-order model reproduces the discrete algorithm".into(),
                reading: reading(&vs_disc).into(),
            });
            out.push(Observation {
                what: format!(
                    "flat fraction at ρ = {}, preference run: {a}_sde − {a}_sde2 (paired; negative = the second-order model prefers the flat basin more)",
                    rd.rho
                ),
                measured: vs_first.mean,
                ci: Some([vs_first.lo, vs_first.hi]),
                reference: "0 if the second-order terms do not change the preference".into(),
                reading: reading(&vs_first).into(),
            });
        }
        out
    }

    /// Verdicts (c): the stationary loss of each SDE against the formula.
    pub(super) fn stationary_verdicts(stationary: &[StationaryResult]) -> Vec<Verdict> {
        let mut verdicts = Vec::new();
        for r in stationary {
            if r.system.ends_with("_sde") {
                let m = &r.measured;
                let inside = m.lo <= r.formula && r.formula <= m.hi;
                verdicts.push(
                    Verdict::new(
                        format!(
                            "(c) {} stationary E f on the quadratic matches (ησ²/4)(d{})",
                            r.system,
                            if r.system.starts_with("usam") {
                                " + ρ tr H"
                            } else {
                                ""
                            }
                        ),
                        ClaimKind::Agrees,
                        m.mean,
                        Some([m.lo, m.hi]),
                        format!("{:.6}", r.formula),
                        Decision::from_bool(inside),
                    )
                    .reason(if inside {
                        "the formula lies inside the CI"
                    } else {
                        "the formula lies outside the CI"
                    })
                    .source(
                        "stationary loss of the USAM SDE on a quadratic (derived; docs/theory.md)",
                    ),
                );
            }
        }
        verdicts
    }
}
