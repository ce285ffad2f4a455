//! The verdicts of the implicit-bias study (Paper: Andriushchenko & Flammarion, ICML 2022) and
//! its observations.
//!
//! Every comparison is over seeds (independent problems), paired by seed. Significance is a
//! one-sided exact sign test at `α = 1 − verdict.level`; medians carry order-statistic
//! intervals. How excluded runs (diverged, collapsed, unconverged, fits-but-far) enter each
//! comparison is stated in [`super::summary`]: they can only make a verdict harder to pass.
//!
//! 1. *1-SAM beats ERM* at each `verdict.benefit_rho`: (a) its median test loss is below GD's —
//!    inconclusive if counting 1-SAM's excluded runs as `+∞` (and GD's as 0) would flip the
//!    order; (b) it is better in a significant majority of seeds.
//! 2. *n-SAM gives no meaningful benefit* at every grid `ρ`: (a) its median is at least
//!    `(1 − nsam_margin)` × GD's; (b) it is not better in a significant majority of seeds.
//! 3. *Tuned `ρ`* (smallest median per-seed ratio to GD among a method's cells without excluded
//!    runs): medians ordered
//!    1-SAM < GD ≤ n-SAM (the latter within `nsam_margin`), with the per-seed counts. The tuning
//!    uses the same seeds' test losses: optimistic for each SAM variant alike.
//! 4. *`‖β‖₁`* of tuned 1-SAM is closer to `‖β*‖₁` than GD's in a significant majority of seeds.
//! 5. *`α_eff`* (geometric mean over coordinates, at `reference_rho`): GD's never exceeds `α`
//!    (every seed and coordinate); 1-SAM's is below n-SAM's in a significant majority; and
//!    n-SAM ≈ GD in Theorem 1's sense — n-SAM's extra log-shrinkage over GD,
//!    `R = ln(α_GD/α_n-SAM)/ln(α_GD/α_1-SAM)` per seed, has a median interval at most `5/n`
//!    (Theorem 1 predicts `‖Δ_n-SAM‖₁/‖Δ_1-SAM‖₁ ≈ 1/n`; a factor 5 of slack for "typically" and
//!    for the two trajectories' different loss integrals).
//! 6. *Dual-Newton prediction*: for GD, n-SAM, 1-SAM (and m-SAM) at every grid `ρ ≤ dual_max_rho`
//!    the median ℓ2 distance between trained and predicted `β` is at most `dual_tolerance`:
//!    pass when every median interval lies below it, fail when one lies above.
//! 7. *Fine-tuning*: ERM → 1-SAM beats continued ERM at its tuned `ρ` in a significant majority
//!    of seeds; so does 1-SAM → ERM (the gain survives the switch back to ERM); the test loss is
//!    monotone along the line between the two solutions in a significant majority of seeds.

use super::finetune::{ERM_THEN_SAM, SAM_THEN_ERM};
use super::report::{find_cell, same_rho, ImplicitBiasReport};
use super::summary::{paired, CellSummary, Exclusions, Paired, Spread};
use crate::stats::{binomial_upper_tail, clopper_pearson, median_ci};
use crate::study::verdict::{fmt_num, ClaimKind, Decision, Observation, Verdict};

const SOURCE: &str = "Paper 2 (Andriushchenko & Flammarion, ICML 2022)";

fn med(s: &Option<Spread>) -> f64 {
    s.map_or(f64::NAN, |s| s.median.median)
}

fn ci(s: &Option<Spread>) -> Option<[f64; 2]> {
    s.map(|s| [s.median.lo, s.median.hi])
}

fn med_text(s: &Option<Spread>) -> String {
    match s {
        Some(s) => format!(
            "{} [{}, {}]",
            fmt_num(s.median.median),
            fmt_num(s.median.lo),
            fmt_num(s.median.hi)
        ),
        None => "—".into(),
    }
}

/// Median of the included values with `n_worse` values added at `worse` (±∞).
fn median_with(values: &[f64], n_worse: usize, worse: f64) -> f64 {
    let mut v = values.to_vec();
    v.extend(std::iter::repeat_n(worse, n_worse));
    median_ci(&v, 0.5).median
}

/// A majority verdict from a paired comparison where A is the method the claim favours.
fn majority(
    claim: String,
    p: &Paired,
    alpha: f64,
    level: f64,
    source: &str,
    extra: &str,
) -> Verdict {
    let n = p.pairs;
    let frac = if n > 0 {
        p.a_better as f64 / n as f64
    } else {
        f64::NAN
    };
    let decision = if n == 0 {
        Decision::Inconclusive
    } else if p.sign.p_positive < alpha {
        Decision::Pass
    } else if p.sign.p_negative < alpha {
        Decision::Fail
    } else {
        Decision::Inconclusive
    };
    let mut reason = format!(
        "better in {} of {} seeds ({} worse, {} ties); one-sided sign test p = {} (threshold {alpha})",
        p.a_better, n, p.b_better, p.ties, fmt_num(p.sign.p_positive)
    );
    if p.a_failures_as_losses > 0 {
        reason += &format!(
            "; {} excluded runs counted as losses",
            p.a_failures_as_losses
        );
    }
    if p.dropped > 0 {
        reason += &format!("; {} pairs dropped (excluded reference runs)", p.dropped);
    }
    if !extra.is_empty() {
        reason += &format!("; {extra}");
    }
    Verdict::new(
        claim,
        ClaimKind::Majority,
        frac,
        Some(clopper_pearson(p.a_better, n, level)),
        format!("sign-test p < {alpha} (a significant majority)"),
        decision,
    )
    .reason(reason)
    .source(source)
}

fn included_metric(runs: &[&super::RunRecord], sampled: bool) -> (Vec<f64>, usize) {
    let v: Vec<f64> = runs
        .iter()
        .filter(|r| r.outcome.included())
        .map(|r| r.metric(sampled))
        .collect();
    let excl = runs.len() - v.len();
    (v, excl)
}

/// Verdicts and observations of a report (module docs).
pub fn judge(r: &ImplicitBiasReport) -> (Vec<Verdict>, Vec<Observation>) {
    let c = &r.header.config;
    let level = c.verdict.level;
    // 1 − level, rounded so that 0.95 prints as 0.05.
    let alpha = ((1.0 - level) * 1e12).round() / 1e12;
    let sampled = r.sampled();
    let metric_name = if sampled {
        "sampled test loss"
    } else {
        "population test loss"
    };
    let mut out = Vec::new();
    let mut obs = Vec::new();
    let Some(gd) = r.cell("gd", 0.0) else {
        return (out, obs);
    };
    let gd_runs = r.runs_of("gd", 0.0);
    let (gd_vals, gd_excl) = included_metric(&gd_runs, sampled);
    let gd_med = med(&gd.test_loss);

    // 1. 1-SAM beats ERM at the benefit radii.
    for &rho in &c.verdict.benefit_rho {
        let Some(one) = r.cell("one_sam", rho) else {
            continue;
        };
        let one_runs = r.runs_of("one_sam", rho);
        let (vals, excl) = included_metric(&one_runs, sampled);
        let ratio = med(&one.test_loss) / gd_med;
        let worst = median_with(&vals, excl, f64::INFINITY) / median_with(&gd_vals, gd_excl, 0.0);
        let decision = if !ratio.is_finite() || (ratio < 1.0) != (worst < 1.0) {
            Decision::Inconclusive
        } else {
            Decision::from_bool(ratio < 1.0)
        };
        out.push(
            Verdict::new(
                format!("1-SAM's median {metric_name} is below GD's at ρ = {rho}"),
                ClaimKind::Less,
                ratio,
                None,
                "median(1-SAM)/median(GD) < 1",
                decision,
            )
            .reason(format!(
                "medians (95 % order-statistic CI): 1-SAM {}, GD {}; per-seed ratio median {}; excluded runs: 1-SAM {excl}, GD {gd_excl}",
                med_text(&one.test_loss),
                med_text(&gd.test_loss),
                med_text(&one.ratio_to_gd),
            ))
            .source(format!("{SOURCE}, §4 (DLN, Fig. 4)")),
        );
        out.push(majority(
            format!("1-SAM has a lower {metric_name} than GD in a significant majority of seeds at ρ = {rho}"),
            &one.vs_gd,
            alpha,
            level,
            &format!("{SOURCE}, §4"),
            "",
        ));
    }

    // 2. n-SAM: no meaningful benefit at any ρ.
    let margin = c.verdict.nsam_margin;
    let nsam: Vec<&CellSummary> = c
        .train
        .rho
        .iter()
        .filter_map(|&rho| r.cell("n_sam", rho))
        .collect();
    if !nsam.is_empty() {
        let ratios: Vec<(f64, f64)> = nsam
            .iter()
            .map(|x| (x.rho, med(&x.test_loss) / gd_med))
            .collect();
        let (worst_rho, worst) = ratios
            .iter()
            .copied()
            .filter(|(_, v)| v.is_finite())
            .min_by(|a, b| a.1.total_cmp(&b.1))
            .unwrap_or((f64::NAN, f64::NAN));
        let list: Vec<String> = ratios
            .iter()
            .map(|(rho, v)| format!("ρ {rho}: {}", fmt_num(*v)))
            .collect();
        let decision = if worst.is_finite() {
            Decision::from_bool(worst >= 1.0 - margin)
        } else {
            Decision::Inconclusive
        };
        out.push(
            Verdict::new(
                format!("n-SAM gives no meaningful benefit: its median {metric_name} is at least {} × GD's at every ρ", 1.0 - margin),
                ClaimKind::AtLeast,
                worst,
                None,
                format!("min over ρ of median(n-SAM)/median(GD) ≥ {}", 1.0 - margin),
                decision,
            )
            .reason(format!(
                "smallest ratio at ρ = {worst_rho}; per ρ: {} (medians over included runs: excluding failed n-SAM runs can only lower its median, so this is conservative)",
                list.join(", ")
            ))
            .source(format!("{SOURCE}, §4")),
        );
        let mut worst_p = (f64::INFINITY, f64::NAN, 0usize, 0usize);
        let mut parts = Vec::new();
        for x in &nsam {
            let a: Vec<Option<f64>> = r
                .runs_of("n_sam", x.rho)
                .iter()
                .map(|q| q.outcome.included().then(|| q.metric(sampled)))
                .collect();
            let b: Vec<Option<f64>> = gd_runs
                .iter()
                .map(|q| q.outcome.included().then(|| q.metric(sampled)))
                .collect();
            let p = paired(&a, &b, Exclusions::Drop, level);
            parts.push(format!(
                "ρ {}: {}/{} (p = {})",
                x.rho,
                p.a_better,
                p.pairs,
                fmt_num(p.sign.p_positive)
            ));
            if p.sign.p_positive < worst_p.0 {
                worst_p = (p.sign.p_positive, x.rho, p.a_better, p.pairs);
            }
        }
        out.push(
            Verdict::new(
                format!("n-SAM is not better than GD in a significant majority of seeds at any ρ ({metric_name})"),
                ClaimKind::AtLeast,
                worst_p.0,
                None,
                format!("one-sided sign-test p ≥ {alpha} at every ρ"),
                Decision::from_bool(worst_p.0 >= alpha),
            )
            .reason(format!(
                "smallest p at ρ = {} (n-SAM better in {} of {} seeds); seeds where n-SAM is better, per ρ: {}",
                worst_p.1,
                worst_p.2,
                worst_p.3,
                parts.join(", ")
            ))
            .source(format!("{SOURCE}, §4")),
        );
    }

    // 3. Tuned ρ: 1-SAM < GD ≤ n-SAM.
    let tuned_rho = |m: &str| r.tuned.iter().find(|t| t.method == m).and_then(|t| t.rho);
    let t_one = tuned_rho("one_sam").and_then(|rho| r.cell("one_sam", rho));
    let t_n = tuned_rho("n_sam").and_then(|rho| r.cell("n_sam", rho));
    match t_one {
        Some(t) => {
            let ratio = med(&t.test_loss) / gd_med;
            out.push(
                Verdict::new(
                    format!("with ρ tuned on the grid, 1-SAM's median {metric_name} is below GD's"),
                    ClaimKind::Less,
                    ratio,
                    None,
                    "median(1-SAM at its tuned ρ)/median(GD) < 1",
                    Decision::from_bool(ratio < 1.0),
                )
                .reason(format!(
                    "tuned ρ = {} (smallest median per-seed ratio to GD among cells without excluded runs); medians 1-SAM {}, GD {}; 1-SAM better in {} of {} seeds (sign test p = {:.2e})",
                    t.rho,
                    med_text(&t.test_loss),
                    med_text(&gd.test_loss),
                    t.vs_gd.a_better,
                    t.vs_gd.pairs,
                    t.vs_gd.sign.p_positive
                ))
                .source(format!("{SOURCE}, §4")),
            );
        }
        None => out.push(
            Verdict::new(
                "with ρ tuned on the grid, 1-SAM's median test loss is below GD's",
                ClaimKind::Less,
                f64::NAN,
                None,
                "median(1-SAM at its tuned ρ)/median(GD) < 1",
                Decision::Inconclusive,
            )
            .reason("every 1-SAM cell has excluded runs: no ρ can be tuned")
            .source(format!("{SOURCE}, §4")),
        ),
    }
    if let Some(t) = t_n {
        let ratio = med(&t.test_loss) / gd_med;
        out.push(
            Verdict::new(
                format!("with ρ tuned on the grid, GD ≤ n-SAM: n-SAM's median {metric_name} is at least {} × GD's", 1.0 - margin),
                ClaimKind::AtLeast,
                ratio,
                None,
                format!("median(n-SAM at its tuned ρ)/median(GD) ≥ {}", 1.0 - margin),
                Decision::from_bool(ratio >= 1.0 - margin),
            )
            .reason(format!(
                "tuned ρ = {}; medians n-SAM {}, GD {}; n-SAM better in {} of {} seeds",
                t.rho,
                med_text(&t.test_loss),
                med_text(&gd.test_loss),
                t.vs_gd.a_better,
                t.vs_gd.pairs
            ))
            .source(format!("{SOURCE}, §4")),
        );
    }

    // 4. ‖β‖₁ of tuned 1-SAM closer to ‖β*‖₁.
    if let Some(t) = t_one {
        let gap = |runs: Vec<&super::RunRecord>| -> Vec<Option<f64>> {
            runs.iter()
                .map(|q| {
                    q.outcome
                        .included()
                        .then(|| (q.beta_l1 - r.problems[q.seed].beta_star_l1).abs())
                })
                .collect()
        };
        let a = gap(r.runs_of("one_sam", t.rho));
        let b = gap(gd_runs.clone());
        let p = paired(&a, &b, Exclusions::AgainstA, level);
        let m = |v: &[Option<f64>]| {
            let x: Vec<f64> = v.iter().flatten().copied().collect();
            median_ci(&x, level).median
        };
        out.push(majority(
            format!("‖β‖₁ of 1-SAM at its tuned ρ = {} is closer to ‖β*‖₁ than GD's in a significant majority of seeds", t.rho),
            &p,
            alpha,
            level,
            &format!("{SOURCE}, §4"),
            &format!(
                "median |‖β‖₁ − ‖β*‖₁|: 1-SAM {}, GD {}",
                fmt_num(m(&a)),
                fmt_num(m(&b))
            ),
        ));
    }

    // 5. α_eff at the reference ρ.
    let rho_ref = c.verdict.reference_rho;
    let alpha0 = c.train.alpha;
    let max_gd = gd_runs
        .iter()
        .flat_map(|q| q.alpha_eff.iter().flatten())
        .fold(f64::NEG_INFINITY, |m, v| m.max(*v));
    let gd_defined = gd_runs
        .iter()
        .filter(|q| q.alpha_eff_geomean.is_some())
        .count();
    out.push(
        Verdict::new(
            "GD's effective initialisation never exceeds α (every seed and coordinate)",
            ClaimKind::Every,
            max_gd / alpha0,
            None,
            "max α_eff/α ≤ 1",
            if gd_defined < gd_runs.len() {
                Decision::Inconclusive
            } else {
                Decision::from_bool(max_gd <= alpha0)
            },
        )
        .reason(format!(
            "GD's factors are 1 − γ²g_i² ≤ 1; α_eff defined in {gd_defined} of {} runs; median geometric mean {}",
            gd_runs.len(),
            med_text(&gd.alpha_eff_geomean)
        ))
        .source(format!("{SOURCE}, Theorem 1")),
    );
    let gm = |m: &str| -> Vec<Option<f64>> {
        r.runs_of(m, rho_ref)
            .iter()
            .map(|q| q.alpha_eff_geomean.filter(|_| q.outcome.included()))
            .collect()
    };
    let (g_one, g_n, g_gd) = (gm("one_sam"), gm("n_sam"), gm("gd"));
    let p = paired(&g_one, &g_n, Exclusions::AgainstA, level);
    let (c_one, c_n) = (r.cell("one_sam", rho_ref), r.cell("n_sam", rho_ref));
    out.push(majority(
        format!("α_eff (geometric mean): 1-SAM's is below n-SAM's at ρ = {rho_ref} in a significant majority of seeds"),
        &p,
        alpha,
        level,
        &format!("{SOURCE}, Theorem 1"),
        &format!(
            "medians 1-SAM {}, n-SAM {}, GD {}, α = {alpha0}",
            med_text(&c_one.and_then(|x| x.alpha_eff_geomean)),
            med_text(&c_n.and_then(|x| x.alpha_eff_geomean)),
            med_text(&gd.alpha_eff_geomean)
        ),
    ));
    let rs: Vec<f64> = g_gd
        .iter()
        .zip(&g_n)
        .zip(&g_one)
        .filter_map(|((g, n), o)| match (g, n, o) {
            (Some(g), Some(n), Some(o)) if o < g => Some((g / n).ln() / (g / o).ln()),
            _ => None,
        })
        .collect();
    let bound = 5.0 / c.data.n as f64;
    let rm = median_ci(&rs, level);
    out.push(
        Verdict::new(
            format!("n-SAM ≈ GD in α_eff: n-SAM's extra shrinkage over GD is a small fraction of 1-SAM's at ρ = {rho_ref}"),
            ClaimKind::AtMost,
            rm.median,
            Some([rm.lo, rm.hi]),
            format!("median of R = ln(α_GD/α_n-SAM)/ln(α_GD/α_1-SAM) ≤ 5/n = {}", fmt_num(bound)),
            if rs.is_empty() {
                Decision::Inconclusive
            } else if rm.hi <= bound {
                Decision::Pass
            } else if rm.lo > bound {
                Decision::Fail
            } else {
                Decision::Inconclusive
            },
        )
        .reason(format!(
            "Theorem 1: ‖Δ_n-SAM‖₁/‖Δ_1-SAM‖₁ ≈ 1/n = {}; R over {} seeds (interval at coverage {:.3})",
            fmt_num(1.0 / c.data.n as f64),
            rs.len(),
            rm.coverage
        ))
        .source(format!("{SOURCE}, Theorem 1")),
    );

    // 6. Dual-Newton prediction.
    let tol = c.verdict.dual_tolerance;
    let mut methods: Vec<(String, String)> =
        vec![("gd".into(), "GD".into()), ("n_sam".into(), "n-SAM".into())];
    for &m in &c.train.m_sam {
        methods.push((format!("m_sam_{m}"), format!("{m}-SAM")));
    }
    methods.push(("one_sam".into(), "1-SAM".into()));
    for (key, label) in methods {
        let cells: Vec<&CellSummary> = r
            .cells
            .iter()
            .filter(|x| {
                x.method == key && (x.rho == 0.0 || x.rho <= c.verdict.dual_max_rho * (1.0 + 1e-12))
            })
            .collect();
        if cells.is_empty() {
            continue;
        }
        let worst = cells
            .iter()
            .max_by(|a, b| med(&a.dual_distance).total_cmp(&med(&b.dual_distance)))
            .unwrap();
        let any_missing = cells.iter().any(|x| x.dual_distance.is_none());
        let all_below = cells
            .iter()
            .all(|x| x.dual_distance.is_some_and(|d| d.median.hi <= tol));
        let any_above = cells
            .iter()
            .any(|x| x.dual_distance.is_some_and(|d| d.median.lo > tol));
        let decision = if any_above {
            Decision::Fail
        } else if all_below && !any_missing {
            Decision::Pass
        } else {
            Decision::Inconclusive
        };
        let per: Vec<String> = cells
            .iter()
            .map(|x| {
                let w = x.dual_worst.map_or("—".into(), |(d, s)| {
                    format!("worst {} (seed {s})", fmt_num(d))
                });
                if x.rho == 0.0 {
                    format!("median {}, {w}", med_text(&x.dual_distance))
                } else {
                    format!("ρ {}: median {}, {w}", x.rho, med_text(&x.dual_distance))
                }
            })
            .collect();
        let scope = if key == "gd" {
            String::new()
        } else {
            format!(" at every ρ ≤ {}", c.verdict.dual_max_rho)
        };
        out.push(
            Verdict::new(
                format!("{label}: the trained β is the minimum-ψ_α_eff interpolator (dual Newton){scope}"),
                ClaimKind::AtMost,
                med(&worst.dual_distance),
                ci(&worst.dual_distance),
                format!("median ‖β − β̂‖₂ ≤ {} (every median interval below it)", fmt_num(tol)),
                decision,
            )
            .reason(per.join("; "))
            .source(format!("{SOURCE}, Theorem 1")),
        );
    }

    // 7. Fine-tuning.
    if let Some(ft) = &r.finetune {
        let fc = |arm: &str, rho: f64| {
            ft.cells
                .iter()
                .find(|x| x.arm == arm && same_rho(x.rho, rho))
        };
        let counts = |arm: &str| -> String {
            ft.cells
                .iter()
                .filter(|x| x.arm == arm)
                .map(|x| {
                    format!(
                        "ρ {}: better {}/{}, {} excluded",
                        x.rho,
                        x.cell.vs_gd.a_better,
                        x.cell.vs_gd.pairs,
                        x.cell.excluded.len()
                    )
                })
                .collect::<Vec<_>>()
                .join("; ")
        };
        for (arm, tuned, claim, src) in [
            (
                ERM_THEN_SAM,
                ft.tuned_erm_then_sam,
                "fine-tuning ERM → 1-SAM beats continued ERM",
                "§5 (ERM → SAM fine-tuning)",
            ),
            (
                SAM_THEN_ERM,
                ft.tuned_sam_then_erm,
                "1-SAM → ERM keeps the gain: it beats continued ERM",
                "§5 (SAM → ERM)",
            ),
        ] {
            match tuned.and_then(|rho| fc(arm, rho)) {
                Some(x) => out.push(majority(
                    format!(
                        "{claim} at its tuned ρ = {} in a significant majority of seeds",
                        x.rho
                    ),
                    &x.cell.vs_gd,
                    alpha,
                    level,
                    &format!("{SOURCE}, {src}"),
                    &format!(
                        "median ratio to continued ERM {}; per ρ: {}",
                        med_text(&x.cell.ratio_to_gd),
                        counts(arm)
                    ),
                )),
                None => out.push(
                    Verdict::new(
                        format!("{claim} in a significant majority of seeds"),
                        ClaimKind::Majority,
                        f64::NAN,
                        None,
                        format!("sign-test p < {alpha}"),
                        Decision::Inconclusive,
                    )
                    .reason(format!("every ρ has excluded runs; per ρ: {}", counts(arm)))
                    .source(format!("{SOURCE}, {src}")),
                ),
            }
        }
        if let Some(x) = ft.tuned_erm_then_sam.and_then(|rho| fc(ERM_THEN_SAM, rho)) {
            let (k, n) = (x.monotone, x.monotone_of);
            let p = binomial_upper_tail(k as u64, n as u64, 0.5);
            out.push(
                Verdict::new(
                    format!("the test loss is monotone on the line from the continued-ERM to the ERM → 1-SAM solution (ρ = {}) in a significant majority of seeds", x.rho),
                    ClaimKind::Majority,
                    if n > 0 { k as f64 / n as f64 } else { f64::NAN },
                    Some(clopper_pearson(k, n, level)),
                    format!("binomial p < {alpha} (a significant majority)"),
                    if n == 0 {
                        Decision::Inconclusive
                    } else if p < alpha {
                        Decision::Pass
                    } else if binomial_upper_tail((n - k) as u64, n as u64, 0.5) < alpha {
                        Decision::Fail
                    } else {
                        Decision::Inconclusive
                    },
                )
                .reason(format!(
                    "monotone in {k} of {n} seeds on t ∈ [0, 1] ({} points, relative tolerance {:e}); P(Bin({n}, ½) ≥ {k}) = {}",
                    super::finetune::SEGMENT_POINTS,
                    super::finetune::MONOTONE_RTOL,
                    fmt_num(p)
                ))
                .source(format!("{SOURCE}, §5 (linear connectivity)")),
            );
        }
        obs.push(Observation {
            what: "continued ERM's training loss at the switch step (median over seeds)".into(),
            measured: med(&ft.switch_train_loss),
            ci: ci(&ft.switch_train_loss),
            reference: format!(
                "switch at step {} of {}",
                c.finetune().map_or(0, |f| f.switch_step),
                c.train.steps
            ),
            reading: "information".into(),
        });
        if let Some(x) = ft.tuned_erm_then_sam.and_then(|rho| fc(ERM_THEN_SAM, rho)) {
            if let Some(g) = x.cell.ratio_to_gd {
                obs.push(Observation {
                    what: format!("ERM → 1-SAM (ρ = {}): median change of the test loss against continued ERM, %", x.rho),
                    measured: 100.0 * (g.median.median - 1.0),
                    ci: Some([100.0 * (g.median.lo - 1.0), 100.0 * (g.median.hi - 1.0)]),
                    reference: "the size of the fine-tuning gain (1-SAM's shrinkage of α_eff is proportional to the loss still to be integrated after the switch)".into(),
                    reading: "information".into(),
                });
            }
        }
        if let Some(x) = ft.tuned_sam_then_erm.and_then(|rho| fc(SAM_THEN_ERM, rho)) {
            if let Some(g) = x.gain_kept {
                obs.push(Observation {
                    what: format!("1-SAM → ERM (ρ = {}): fraction of the from-scratch 1-SAM gain over GD kept", x.rho),
                    measured: g.median.median,
                    ci: Some([g.median.lo, g.median.hi]),
                    reference: "1 = all of 1-SAM's gain kept after switching to ERM".into(),
                    reading: "information".into(),
                });
            }
        }
    }

    // Observations.
    for (key, label) in [("gd", "GD"), ("n_sam", "n-SAM"), ("one_sam", "1-SAM")] {
        if let Some(x) = find_cell(&r.cells, key, rho_ref) {
            obs.push(Observation {
                what: format!("{label}: Δ on/off the support, median of per-seed Δ_on/Δ_off{}", if key == "gd" { String::new() } else { format!(" at ρ = {rho_ref}") }),
                measured: med(&x.delta_ratio),
                ci: ci(&x.delta_ratio),
                reference: format!(
                    "Δ_on {} · Δ_off {} (medians); 1 = shrinkage spread evenly over all coordinates",
                    fmt_num(med(&x.delta_on)),
                    fmt_num(med(&x.delta_off))
                ),
                reading: "information".into(),
            });
        }
    }
    obs.push(Observation {
        what: format!("R = ln(α_GD/α_n-SAM)/ln(α_GD/α_1-SAM) at ρ = {rho_ref}, median over seeds"),
        measured: rm.median,
        ci: Some([rm.lo, rm.hi]),
        reference: format!("Theorem 1: ≈ 1/n = {}", fmt_num(1.0 / c.data.n as f64)),
        reading: "information".into(),
    });
    let gdh = med(&gd.dual_distance_without_half);
    obs.push(Observation {
        what:
            "GD: distance to the dual prediction with the ½ dropped (β̂ = α_eff² sinh(Xᵀλ)), median"
                .into(),
        measured: gdh,
        ci: ci(&gd.dual_distance_without_half),
        reference: format!("with the ½: {}", fmt_num(med(&gd.dual_distance))),
        reading: "information".into(),
    });
    if let Some(s) = r.cell("sgd", 0.0) {
        obs.push(Observation {
            what: "SGD (batch 1): median test loss / GD's (per-seed ratio)".into(),
            measured: med(&s.ratio_to_gd),
            ci: ci(&s.ratio_to_gd),
            reference: format!(
                "{} of {} runs excluded; α_eff undefined in {} runs (one example's step overshoots: 1 − γ²r_j²x_ji² < 0)",
                s.excluded.len(),
                s.runs,
                s.alpha_eff_undefined
            ),
            reading: "information".into(),
        });
    }
    for &m in &c.train.m_sam {
        if let Some(x) = r.cell(&format!("m_sam_{m}"), rho_ref) {
            obs.push(Observation {
                what: format!("{m}-SAM at ρ = {rho_ref}: median test loss / GD's (per-seed ratio)"),
                measured: med(&x.ratio_to_gd),
                ci: ci(&x.ratio_to_gd),
                reference: format!(
                    "1-SAM {}, n-SAM {}",
                    fmt_num(med(&c_one.and_then(|x| x.ratio_to_gd))),
                    fmt_num(med(&c_n.and_then(|x| x.ratio_to_gd)))
                ),
                reading: "information".into(),
            });
        }
    }
    (out, obs)
}
