//! Summaries over seeds: one [`CellSummary`] per (method, `ρ`), paired comparisons with GD, and
//! the `ρ` tuned per method.
//!
//! Only runs with outcome `ok` enter medians, quartiles and intervals; the others are counted
//! and listed per cell. Paired comparisons ([`paired`]) say how excluded runs are treated:
//! for a claim that method A beats B, an excluded run of A counts as a loss of A (the pair is
//! kept, against the claim) and an excluded run of B drops the pair; for a claim that A does
//! *not* beat B, excluded runs of A drop the pair (counting them as A's losses would help the
//! claim). Either way an excluded run can only make a verdict harder to pass.

use serde::Serialize;

use super::run::{Outcome, RunRecord};
use crate::stats::{median_ci, sign_test, MedianCi, SignTest};
use crate::study::saddle::quantile_sorted;

/// An excluded run of a cell.
#[derive(Debug, Clone, Serialize)]
pub struct Excluded {
    /// Data seed index.
    pub seed: usize,
    /// Why.
    pub outcome: Outcome,
}

/// Median, quartiles and the order-statistic interval of the median.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Spread {
    /// Median and its interval.
    pub median: MedianCi,
    /// 25 % quantile.
    pub q25: f64,
    /// 75 % quantile.
    pub q75: f64,
}

/// [`Spread`] of finite values (`None` when there are none).
pub fn spread(values: &[f64], level: f64) -> Option<Spread> {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    Some(Spread {
        median: median_ci(&v, level),
        q25: quantile_sorted(&v, 0.25),
        q75: quantile_sorted(&v, 0.75),
    })
}

/// How excluded runs enter a paired comparison (module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exclusions {
    /// Claim "A beats B": A's exclusions are A's losses, B's drop the pair.
    AgainstA,
    /// Claim "A does not beat B": every exclusion drops the pair.
    Drop,
}

/// A paired comparison over seeds of a value where smaller is better.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Paired {
    /// Pairs compared.
    pub pairs: usize,
    /// Pairs where A is smaller (better).
    pub a_better: usize,
    /// Pairs where B is smaller.
    pub b_better: usize,
    /// Equal pairs.
    pub ties: usize,
    /// Pairs dropped because of exclusions.
    pub dropped: usize,
    /// A's exclusions counted as A's losses.
    pub a_failures_as_losses: usize,
    /// Sign test of `B − A` (`p_positive`: evidence that A is better).
    pub sign: SignTest,
    /// Median of `A/B` over pairs where both are included, with its interval.
    pub ratio: Option<Spread>,
}

/// Compares `a[s]` with `b[s]` per seed `s` (`None` = excluded run; smaller is better).
pub fn paired(a: &[Option<f64>], b: &[Option<f64>], policy: Exclusions, level: f64) -> Paired {
    let mut diffs = Vec::new();
    let mut ratios = Vec::new();
    let (mut dropped, mut failures) = (0, 0);
    for (x, y) in a.iter().zip(b) {
        match (x, y, policy) {
            (Some(x), Some(y), _) => {
                diffs.push(y - x);
                if *y != 0.0 {
                    ratios.push(x / y);
                }
            }
            (None, Some(_), Exclusions::AgainstA) => {
                diffs.push(-1.0);
                failures += 1;
            }
            _ => dropped += 1,
        }
    }
    let sign = sign_test(&diffs);
    Paired {
        pairs: diffs.len(),
        a_better: sign.positive,
        b_better: sign.negative,
        ties: sign.ties,
        dropped,
        a_failures_as_losses: failures,
        sign,
        ratio: spread(&ratios, level),
    }
}

/// One (method, `ρ`) over the seeds.
#[derive(Debug, Clone, Serialize)]
pub struct CellSummary {
    /// Method key.
    pub method: String,
    /// Label for tables and figures.
    pub label: String,
    /// `ρ` (0 for GD and SGD).
    pub rho: f64,
    /// Runs (one per seed).
    pub runs: usize,
    /// Runs with outcome `ok`.
    pub included: usize,
    /// The others.
    pub excluded: Vec<Excluded>,
    /// Test loss (the configured metric) over included runs.
    pub test_loss: Option<Spread>,
    /// Per-seed `test loss / GD's test loss` (both included).
    pub ratio_to_gd: Option<Spread>,
    /// Paired comparison with GD (this method = A, claim "A beats GD").
    pub vs_gd: Paired,
    /// Training loss over included runs.
    pub train_loss: Option<Spread>,
    /// `‖β‖₁` over included runs.
    pub beta_l1: Option<Spread>,
    /// `‖β‖₀` over included runs.
    pub support_size: Option<Spread>,
    /// False positives over included runs.
    pub false_positives: Option<Spread>,
    /// Geometric mean of `α_eff` over included runs with `α_eff` defined.
    pub alpha_eff_geomean: Option<Spread>,
    /// Runs whose `α_eff` is undefined (sign flips) or that diverged.
    pub alpha_eff_undefined: usize,
    /// Mean `Δ` on the support.
    pub delta_on: Option<Spread>,
    /// Mean `Δ` off the support.
    pub delta_off: Option<Spread>,
    /// Per-seed ratio `Δ_on/Δ_off`.
    pub delta_ratio: Option<Spread>,
    /// ℓ2 distance to the dual-Newton prediction over included runs.
    pub dual_distance: Option<Spread>,
    /// Largest distance over included runs, and its seed.
    pub dual_worst: Option<(f64, usize)>,
    /// The distance with the ½ dropped, over included runs.
    pub dual_distance_without_half: Option<Spread>,
}

/// Summarises the runs of one cell (all seeds, in seed order). `gd` are GD's runs in seed
/// order; `sampled` selects the sampled test loss.
pub fn summarise(
    method: &str,
    label: &str,
    rho: f64,
    runs: &[&RunRecord],
    gd: &[&RunRecord],
    sampled: bool,
    level: f64,
) -> CellSummary {
    let inc: Vec<&&RunRecord> = runs.iter().filter(|r| r.outcome.included()).collect();
    let vals = |g: &dyn Fn(&RunRecord) -> Option<f64>| -> Vec<f64> {
        inc.iter().filter_map(|r| g(r)).collect()
    };
    let metric = |r: &RunRecord| r.outcome.included().then(|| r.metric(sampled));
    let a: Vec<Option<f64>> = runs.iter().map(|r| metric(r)).collect();
    let b: Vec<Option<f64>> = gd.iter().map(|r| metric(r)).collect();
    let vs_gd = paired(&a, &b, Exclusions::AgainstA, level);
    let dual_worst = inc
        .iter()
        .filter_map(|r| r.dual_distance.map(|d| (d, r.seed)))
        .max_by(|x, y| x.0.total_cmp(&y.0));
    CellSummary {
        method: method.into(),
        label: label.into(),
        rho,
        runs: runs.len(),
        included: inc.len(),
        excluded: runs
            .iter()
            .filter(|r| !r.outcome.included())
            .map(|r| Excluded {
                seed: r.seed,
                outcome: r.outcome,
            })
            .collect(),
        test_loss: spread(&vals(&|r| Some(r.metric(sampled))), level),
        ratio_to_gd: vs_gd.ratio,
        vs_gd,
        train_loss: spread(&vals(&|r| Some(r.train_loss)), level),
        beta_l1: spread(&vals(&|r| Some(r.beta_l1)), level),
        support_size: spread(&vals(&|r| Some(r.support_size as f64)), level),
        false_positives: spread(&vals(&|r| Some(r.false_positives as f64)), level),
        alpha_eff_geomean: spread(&vals(&|r| r.alpha_eff_geomean), level),
        alpha_eff_undefined: runs
            .iter()
            .filter(|r| r.alpha_eff_geomean.is_none())
            .count(),
        delta_on: spread(&vals(&|r| r.delta_on), level),
        delta_off: spread(&vals(&|r| r.delta_off), level),
        delta_ratio: spread(
            &vals(&|r| match (r.delta_on, r.delta_off) {
                (Some(a), Some(b)) if b > 0.0 => Some(a / b),
                _ => None,
            }),
            level,
        ),
        dual_distance: spread(&vals(&|r| r.dual_distance), level),
        dual_worst,
        dual_distance_without_half: spread(&vals(&|r| r.dual_distance_without_half), level),
    }
}

/// The `ρ` of a method with the smallest median per-seed ratio of its test loss to the
/// reference's (GD, or continued ERM for the fine-tuning arms), among its cells without excluded
/// runs (`None` if every cell has exclusions). Paired ratios rather than raw medians, so that the
/// choice is not driven by which problems happen to sit in the middle.
pub fn tuned<'a>(cells: &'a [CellSummary], method: &str) -> Option<&'a CellSummary> {
    cells
        .iter()
        .filter(|c| c.method == method && c.excluded.is_empty())
        .filter_map(|c| c.ratio_to_gd.map(|t| (c, t.median.median)))
        .min_by(|x, y| x.1.total_cmp(&y.1))
        .map(|(c, _)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paired_treats_exclusions_against_the_claim() {
        let a = [Some(1.0), Some(2.0), None, Some(0.5), None];
        let b = [Some(2.0), Some(3.0), Some(1.0), None, None];
        let p = paired(&a, &b, Exclusions::AgainstA, 0.95);
        // Pairs: (1,2) A better, (2,3) A better, (None, 1) A loses, (0.5, None) dropped,
        // (None, None) dropped.
        assert_eq!((p.pairs, p.a_better, p.b_better, p.dropped), (3, 2, 1, 2));
        assert_eq!(p.a_failures_as_losses, 1);
        assert_eq!(p.ratio.unwrap().median.median, 0.5833333333333333);
        let p = paired(&a, &b, Exclusions::Drop, 0.95);
        assert_eq!((p.pairs, p.a_better, p.b_better, p.dropped), (2, 2, 0, 3));
    }

    #[test]
    fn spread_skips_non_finite_values() {
        let s = spread(&[3.0, f64::NAN, 1.0, 2.0, f64::INFINITY], 0.5).unwrap();
        assert_eq!((s.median.median, s.q25, s.q75), (2.0, 1.5, 2.5));
        assert!(spread(&[f64::NAN], 0.9).is_none());
    }
}
