//! Verdicts and observations of the SAM-rate study.
//!
//! A bound `B` that is only known to lie in `[B₋, B₊]` is judged on the measured interval
//! `[lo, hi]`: **pass** when `hi ≤ B₋` (so `≤ B` whatever its exact value), **fail** when
//! `lo > B₊`, **inconclusive** otherwise, or when any path diverged.

use super::nonconvex::NonconvexReport;
use super::oscillation::OscillationReport;
use super::pl::PlReport;
use crate::stats::loglog_slope;
use crate::study::verdict::{fmt_num, ClaimKind, Decision, Observation, Verdict};

/// Source of the non-convex claim.
pub const SOURCE_NONCONVEX: &str =
    "Paper 2 (Andriushchenko & Flammarion, ICML 2022), Theorem 2 (β-smooth f_i, bounded variance)";
/// Source of the PL claim.
pub const SOURCE_PL: &str =
    "Paper 2 (Andriushchenko & Flammarion, ICML 2022), Theorem 2 under the PL condition";

/// The bracketed one-sided decision (see the module docs).
pub fn bracket(lo: f64, hi: f64, strict: f64, lenient: f64, diverged: usize) -> (Decision, String) {
    if diverged > 0 {
        return (
            Decision::Inconclusive,
            format!("{diverged} path(s) diverged (not averaged in)"),
        );
    }
    if !(lo.is_finite() && hi.is_finite()) {
        return (Decision::Inconclusive, "no finite interval".into());
    }
    if hi <= strict {
        (
            Decision::Pass,
            format!(
                "upper CI end {} ≤ strict bound {} (ratio mean/strict bound {})",
                fmt_num(hi),
                fmt_num(strict),
                fmt_num((lo + hi) / 2.0 / strict)
            ),
        )
    } else if lo > lenient {
        (
            Decision::Fail,
            format!(
                "lower CI end {} > lenient bound {}",
                fmt_num(lo),
                fmt_num(lenient)
            ),
        )
    } else {
        (
            Decision::Inconclusive,
            format!(
                "interval [{}, {}] overlaps the bracket [{}, {}] of the bound",
                fmt_num(lo),
                fmt_num(hi),
                fmt_num(strict),
                fmt_num(lenient)
            ),
        )
    }
}

/// One verdict per horizon of the non-convex part.
pub fn nonconvex(r: &NonconvexReport) -> Vec<Verdict> {
    r.points
        .iter()
        .map(|p| {
            let (decision, why) = bracket(
                p.avg_sq_grad.lo,
                p.avg_sq_grad.hi,
                p.bound_strict,
                p.bound_lenient,
                p.diverged,
            );
            Verdict::new(
                format!(
                    "(1/T) Σ_t E‖∇f(w_t)‖² ≤ (4β(f(w₀) − f⋆) + 8σ²/b)/√T at T = {}",
                    p.horizon
                ),
                ClaimKind::AtMost,
                p.avg_sq_grad.mean,
                Some([p.avg_sq_grad.lo, p.avg_sq_grad.hi]),
                format!(
                    "≤ bound ∈ [{}, {}] (strict: f⋆ = f̂⋆, σ² = σ̂²; lenient: f⋆ = 0, σ² = analytic sup bound)",
                    fmt_num(p.bound_strict),
                    fmt_num(p.bound_lenient)
                ),
                decision,
            )
            .reason(why)
            .source(SOURCE_NONCONVEX)
        })
        .collect()
}

/// One verdict per horizon of the PL part.
pub fn pl(r: &PlReport) -> Vec<Verdict> {
    r.points
        .iter()
        .map(|p| {
            let (decision, why) = bracket(
                p.gap.lo,
                p.gap.hi,
                p.bound_strict,
                p.bound_lenient,
                p.diverged,
            );
            Verdict::new(
                format!(
                    "E f(w_T) − f⋆ ≤ 3β²(f(w₀) − f⋆)/(μ²T²) + 22βσ²/(μ²bT) at T = {}",
                    p.horizon
                ),
                ClaimKind::AtMost,
                p.gap.mean,
                Some([p.gap.lo, p.gap.hi]),
                format!(
                    "≤ bound ∈ [{}, {}] (strict: σ² = σ̂²; lenient: σ² = mean ‖x_i‖²)",
                    fmt_num(p.bound_strict),
                    fmt_num(p.bound_lenient)
                ),
                decision,
            )
            .reason(why)
            .source(SOURCE_PL)
        })
        .collect()
}

/// Observations: the fitted decay exponents and the oscillation distances.
pub fn observations(
    n: &NonconvexReport,
    p: &PlReport,
    o: &OscillationReport,
    tolerance: f64,
    level: f64,
) -> Vec<Observation> {
    let mut out = Vec::new();
    let t_range = |h: &[usize]| {
        format!(
            "T = {}–{}",
            h.first().copied().unwrap_or(0),
            h.last().copied().unwrap_or(0)
        )
    };
    if let Some(s) = &n.exponent {
        let hs: Vec<usize> = n.points.iter().map(|q| q.horizon).collect();
        out.push(Observation {
            what: format!(
                "fitted exponent s of (1/T) Σ_t E‖∇f(w_t)‖² ∝ T^s over {}",
                t_range(&hs)
            ),
            measured: s.slope,
            ci: Some(s.ci),
            reference: "the bound falls like T^(−1/2); the theorem bounds the average, it does not say the average itself decays at that rate".into(),
            reading: "information".into(),
        });
    }
    if let Some(s) = &p.exponent {
        let hs: Vec<usize> = p.points.iter().map(|q| q.horizon).collect();
        out.push(Observation {
            what: format!(
                "fitted exponent s of E f(w_T) − f⋆ ∝ T^s over {}",
                t_range(&hs)
            ),
            measured: s.slope,
            ci: Some(s.ci),
            reference: "the bound's noise term falls like T^(−1), its other term like T^(−2)"
                .into(),
            reading: "information".into(),
        });
    }
    for row in o.rows.iter().filter(|r| r.algorithm == "sam") {
        let ratio = row.tail_mean / row.predicted;
        let still = (row.tail_second_half / row.tail_first_half - 1.0).abs();
        out.push(Observation {
            what: format!(
                "normalized SAM, constant ρ = {}: mean ‖x_t − x⋆‖ over the last {} steps (alignment with v₁ {:.4}; tail range [{}, {}])",
                row.rho,
                o.steps + 1 - o.tail_from,
                row.alignment,
                fmt_num(row.tail_min),
                fmt_num(row.tail_max)
            ),
            measured: row.tail_mean,
            ci: None,
            reference: format!(
                "predicted 2-cycle distance ηλ₁ρ/(2 − ηλ₁) = {} (ratio {:.4}; second vs first half of the tail differ by {:.1e})",
                fmt_num(row.predicted),
                ratio,
                still
            ),
            reading: if (ratio - 1.0).abs() <= tolerance {
                format!("consistent (within {tolerance})")
            } else {
                format!("differs (beyond {tolerance})")
            },
        });
    }
    let sam: Vec<_> = o.rows.iter().filter(|r| r.algorithm == "sam").collect();
    if sam.len() >= 2 {
        let rhos: Vec<f64> = sam.iter().map(|r| r.rho).collect();
        let d: Vec<f64> = sam.iter().map(|r| r.tail_mean).collect();
        if let Ok(fit) = loglog_slope(&rhos, &d, None, level) {
            out.push(Observation {
                what: "slope of log(SAM's oscillation distance) against log ρ".into(),
                measured: fit.slope,
                ci: Some(fit.ci),
                reference: "predicted 1 (distance ∝ ρ)".into(),
                reading: if (fit.slope - 1.0).abs() <= tolerance {
                    format!("consistent (within {tolerance})")
                } else {
                    format!("differs (beyond {tolerance})")
                },
            });
        }
    }
    for row in o.rows.iter().filter(|r| r.algorithm == "usam") {
        out.push(Observation {
            what: format!(
                "USAM (unnormalized), same η and ρ = {}: ‖x_T − x⋆‖ after {} steps",
                row.rho, o.steps
            ),
            measured: row.final_distance,
            ci: None,
            reference: "converges (contraction 1 − ηλ(1 + ρλ) per step)".into(),
            reading: "information".into(),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bracket_decides_each_way() {
        assert_eq!(bracket(0.1, 0.2, 0.3, 0.5, 0).0, Decision::Pass);
        assert_eq!(bracket(0.6, 0.7, 0.3, 0.5, 0).0, Decision::Fail);
        assert_eq!(bracket(0.2, 0.4, 0.3, 0.5, 0).0, Decision::Inconclusive);
        assert_eq!(bracket(0.45, 0.7, 0.3, 0.5, 0).0, Decision::Inconclusive);
        assert_eq!(bracket(0.1, 0.2, 0.3, 0.5, 1).0, Decision::Inconclusive);
        assert_eq!(
            bracket(f64::NAN, 0.2, 0.3, 0.5, 0).0,
            Decision::Inconclusive
        );
    }
}
