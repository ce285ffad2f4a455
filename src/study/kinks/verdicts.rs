//! Judging "SAM's solutions have fewer kinks" by paired sign tests over seeds.
//!
//! For the SAM method `S` and each compared method `G` (same initialisation per seed): the
//! pairs where neither run diverged give the differences `kinks_G − kinks_S`, so `wins`
//! (positive: SAM has fewer kinks), `losses` and ties; the exact one-sided sign test
//! ([`crate::stats::sign_test`]) gives `p = P(W ≥ wins)`, `W ~ Binomial(wins + losses, ½)`.
//! * **pass**: `p ≤ α` and the median of `S` lies below the median of `G`;
//! * **fail**: the opposite one-sided test is significant, `P(W' ≥ losses) ≤ α` (SAM has
//!   *more* kinks);
//! * **inconclusive** otherwise (too few seeds, ties, a split), or when no pair is left.
//!
//! Final losses are reported beside the counts: SAM with a fixed `ρ` need not reach the loss
//! target, and a function that fits the data less tightly may need fewer kinks. The
//! observation "kinks of `G` when its loss first fell below `S`'s final loss" (same seed)
//! compares the two at equal training loss.

use super::config::KinksConfig;
use super::train::RunRecord;
use crate::stats::{median_ci, sign_test, MedianCi};

/// The order-statistic median interval, `None` without values.
fn median_opt(v: &[f64], level: f64) -> Option<MedianCi> {
    (!v.is_empty()).then(|| median_ci(v, level))
}
use crate::study::verdict::{fmt_num, ClaimKind, Decision, Observation, Verdict};

/// Source of the claim.
pub const SOURCE: &str =
    "Paper 2 (Andriushchenko & Flammarion, ICML 2022), 2-layer ReLU nets on 1-D regression";

/// A paired comparison of two methods over seeds.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Comparison {
    /// The method claimed to have fewer kinks.
    pub sam: String,
    /// The other method.
    pub other: String,
    /// Seeds with both runs finite.
    pub pairs: usize,
    /// Seeds where `sam` has fewer kinks.
    pub wins: u64,
    /// Seeds where it has more.
    pub losses: u64,
    /// Equal counts.
    pub ties: u64,
    /// One-sided `P(W ≥ wins)`: evidence that SAM has fewer kinks.
    pub p_fewer: f64,
    /// One-sided `P(W ≥ losses)`: evidence that SAM has more kinks.
    pub p_more: f64,
    /// Two-sided p-value.
    pub p_two_sided: f64,
    /// Median kinks of `sam` over the paired seeds, with its order-statistic interval.
    pub sam_median: Option<MedianCi>,
    /// Same for `other`.
    pub other_median: Option<MedianCi>,
    /// Median final loss of `sam` over the pairs.
    pub sam_median_final_loss: f64,
    /// Median final loss of `other` over the pairs.
    pub other_median_final_loss: f64,
}

fn median(v: &[f64]) -> f64 {
    median_ci(v, 0.5).median
}

/// The run of `method` for `seed`.
fn find<'a>(runs: &'a [RunRecord], method: &str, seed: usize) -> Option<&'a RunRecord> {
    runs.iter().find(|r| r.method == method && r.seed == seed)
}

/// Every comparison the configuration asks for.
pub fn compare(c: &KinksConfig, runs: &[RunRecord]) -> Vec<Comparison> {
    let v = &c.verdict;
    v.against
        .iter()
        .map(|other| {
            let (mut ks, mut ko, mut ls, mut lo) = (vec![], vec![], vec![], vec![]);
            let mut diffs = Vec::new();
            for seed in 0..c.seeds {
                let (Some(s), Some(o)) = (find(runs, &v.sam, seed), find(runs, other, seed)) else {
                    continue;
                };
                if s.diverged || o.diverged {
                    continue;
                }
                diffs.push(o.kink_count as f64 - s.kink_count as f64);
                ks.push(s.kink_count as f64);
                ko.push(o.kink_count as f64);
                ls.push(s.final_loss);
                lo.push(o.final_loss);
            }
            let t = sign_test(&diffs);
            Comparison {
                sam: v.sam.clone(),
                other: other.clone(),
                pairs: ks.len(),
                wins: t.positive as u64,
                losses: t.negative as u64,
                ties: t.ties as u64,
                p_fewer: t.p_positive,
                p_more: t.p_negative,
                p_two_sided: t.p_two_sided,
                sam_median: median_opt(&ks, v.level),
                other_median: median_opt(&ko, v.level),
                sam_median_final_loss: median(&ls),
                other_median_final_loss: median(&lo),
            }
        })
        .collect()
}

/// The verdict of one comparison (see the module docs).
pub fn judge(c: &KinksConfig, cmp: &Comparison, diverged_runs: usize) -> Verdict {
    let alpha = c.verdict.alpha;
    let (sm, om) = (cmp.sam_median, cmp.other_median);
    let claim = format!(
        "{} ends with fewer kinks than {} (median over seeds, paired sign test)",
        cmp.sam, cmp.other
    );
    let expected = match om {
        Some(o) => format!(
            "< {}'s median {} (one-sided sign test, p ≤ {alpha})",
            cmp.other,
            fmt_num(o.median)
        ),
        None => format!(
            "< {}'s median (one-sided sign test, p ≤ {alpha})",
            cmp.other
        ),
    };
    let (measured, ci) = match sm {
        Some(s) => (s.median, Some([s.lo, s.hi])),
        None => (f64::NAN, None),
    };
    let counts = format!(
        "{} of {} seeds fewer, {} more, {} tied; one-sided p = {} (fewer) / {} (more); \
         median final loss {} {} vs {} {}",
        cmp.wins,
        cmp.pairs,
        cmp.losses,
        cmp.ties,
        fmt_num(cmp.p_fewer),
        fmt_num(cmp.p_more),
        cmp.sam,
        fmt_num(cmp.sam_median_final_loss),
        cmp.other,
        fmt_num(cmp.other_median_final_loss)
    );
    let dropped = if diverged_runs > 0 {
        format!("; {diverged_runs} diverged run(s) excluded from the pairs")
    } else {
        String::new()
    };
    let (decision, why) = match (sm, om) {
        (Some(s), Some(o)) if cmp.pairs > 0 => {
            if cmp.p_fewer <= alpha && s.median < o.median {
                (
                    Decision::Pass,
                    format!("sign test significant: {counts}{dropped}"),
                )
            } else if cmp.p_more <= alpha {
                (
                    Decision::Fail,
                    format!(
                        "{} has significantly MORE kinks: {counts}{dropped}",
                        cmp.sam
                    ),
                )
            } else {
                let floor = 0.5f64.powi(cmp.pairs as i32);
                let note = if floor > alpha {
                    format!(
                        " (with {} pairs the smallest attainable p is {}: more seeds needed)",
                        cmp.pairs,
                        fmt_num(floor)
                    )
                } else {
                    String::new()
                };
                (
                    Decision::Inconclusive,
                    format!("not significant either way: {counts}{dropped}{note}"),
                )
            }
        }
        _ => (
            Decision::Inconclusive,
            format!("no seed with both runs finite{dropped}"),
        ),
    };
    Verdict::new(claim, ClaimKind::Less, measured, ci, expected, decision)
        .reason(why)
        .source(SOURCE)
}

/// Information beside the verdicts: kinks at equal training loss and the loss gap.
pub fn observations(c: &KinksConfig, runs: &[RunRecord], cmps: &[Comparison]) -> Vec<Observation> {
    let mut out = Vec::new();
    for cmp in cmps {
        // `other`'s kinks at the first time its loss fell below `sam`'s final loss.
        let mut at_equal = Vec::new();
        for seed in 0..c.seeds {
            let (Some(s), Some(o)) = (find(runs, &cmp.sam, seed), find(runs, &cmp.other, seed))
            else {
                continue;
            };
            if s.diverged || o.diverged {
                continue;
            }
            // The first loss level at or below SAM's final loss that the other run crossed.
            if let Some(tp) = o
                .trace
                .iter()
                .filter(|t| t.reason == "loss" && t.level.is_some_and(|l| l <= s.final_loss))
                .min_by_key(|t| t.step)
            {
                at_equal.push(tp.kinks as f64);
            }
        }
        if let Some(m) = median_opt(&at_equal, c.verdict.level) {
            out.push(Observation {
                what: format!(
                    "median kinks of {} the first time its loss fell below {}'s final loss (same seed; loss levels 10^(k/4))",
                    cmp.other, cmp.sam
                ),
                measured: m.median,
                ci: Some([m.lo, m.hi]),
                reference: format!(
                    "{}'s median {} kinks; {} of {} seeds reached that loss",
                    cmp.sam,
                    cmp.sam_median.map(|s| fmt_num(s.median)).unwrap_or_default(),
                    at_equal.len(),
                    cmp.pairs
                ),
                reading: "information".into(),
            });
        }
    }
    // Methods outside the verdicts (e.g. SAM at a constant rate): their kinks, as information.
    for m in c
        .methods
        .iter()
        .filter(|m| m.name != c.verdict.sam && !c.verdict.against.contains(&m.name))
    {
        let kinks: Vec<f64> = runs
            .iter()
            .filter(|r| r.method == m.name && !r.diverged)
            .map(|r| r.kink_count as f64)
            .collect();
        if let Some(ci) = median_opt(&kinks, c.verdict.level) {
            out.push(Observation {
                what: format!(
                    "median kinks of {} (ρ = {}, {} rate)",
                    m.name,
                    m.rho,
                    m.schedule.as_str()
                ),
                measured: ci.median,
                ci: Some([ci.lo, ci.hi]),
                reference: format!(
                    "{}'s median {}",
                    c.verdict.sam,
                    cmps.first()
                        .and_then(|x| x.sam_median)
                        .map(|s| fmt_num(s.median))
                        .unwrap_or_default()
                ),
                reading: "information".into(),
            });
        }
    }
    // How far a decaying schedule had decayed when its runs stopped: a control with the
    // decay only tests the decay if its runs last long enough for the rate to fall.
    for m in c
        .methods
        .iter()
        .filter(|m| m.schedule != super::config::Schedule::Constant)
    {
        let frac: Vec<f64> = runs
            .iter()
            .filter(|r| r.method == m.name && !r.diverged)
            .map(|r| m.schedule.eta(c.lr_max, r.steps.max(1), c.max_steps) / c.lr_max)
            .collect();
        let steps: Vec<f64> = runs
            .iter()
            .filter(|r| r.method == m.name && !r.diverged)
            .map(|r| r.steps as f64)
            .collect();
        if let (Some(ci), Some(st)) = (
            median_opt(&frac, c.verdict.level),
            median_opt(&steps, c.verdict.level),
        ) {
            out.push(Observation {
                what: format!(
                    "median η_t/η_max of {} ({} schedule) at its last step",
                    m.name,
                    m.schedule.as_str()
                ),
                measured: ci.median,
                ci: Some([ci.lo, ci.hi]),
                reference: format!(
                    "median steps taken {:.0} of {}; near 1 the decay barely acted before the run stopped",
                    st.median,
                    c.max_steps
                ),
                reading: "information".into(),
            });
        }
    }
    // Final losses per method (they differ: SAM need not reach the target).
    for m in &c.methods {
        let losses: Vec<f64> = runs
            .iter()
            .filter(|r| r.method == m.name && !r.diverged)
            .map(|r| r.final_loss)
            .collect();
        let reached = runs
            .iter()
            .filter(|r| r.method == m.name && r.reached_target)
            .count();
        if let Some(ci) = median_opt(&losses, c.verdict.level) {
            out.push(Observation {
                what: format!("median final loss of {}", m.name),
                measured: ci.median,
                ci: Some([ci.lo, ci.hi]),
                reference: format!(
                    "loss target {}: reached in {reached} of {} runs",
                    fmt_num(c.loss_target),
                    c.seeds
                ),
                reading: "information".into(),
            });
        }
    }
    out
}
