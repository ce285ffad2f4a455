//! The verdict list: per phase panel, `max_rows |Δ|` against the USAM/mini-batch tolerance, or
//! for full-batch SAM the region's sufficiency (every path starting in `‖∇f‖ < ρ|λ|` attracted)
//! and the one-sided `max_rows Δ ≤ region_tolerance_dex`; the full-batch SAM stall distance
//! against `ηρ max_i|λ_i| / 2` (reference rows and the `[stall]` spectra); and the reference-run
//! rows.

use super::{
    wilson, ClaimKind, Decision, Outcome, PanelReport, ReferenceRowReport, StallReport, Verdict,
};

const STALL_SOURCE: &str = "Paper 1, saddle points: discrete SAM does not reach the saddle (stall distance derived: a 2-cycle along the largest-|λ| eigendirection)";

impl super::SaddleStudy {
    pub(super) fn judge(
        &self,
        reference: &[ReferenceRowReport],
        phases: &[PanelReport],
        stall: &[StallReport],
    ) -> Vec<Verdict> {
        let c = &self.config;
        let v = &c.verdict;
        let mut out = Vec::new();
        for p in phases {
            let devs: Vec<Option<f64>> = p.boundaries.iter().map(|b| b.deviation_dex).collect();
            let all = devs.iter().all(|d| d.is_some());
            let finite: Vec<f64> = devs.iter().flatten().copied().collect();
            // Per-row interval of Δ from the crossings of the Wilson curves (pointwise level
            // per row, not simultaneous); an end outside the grid is ∓∞.
            let row_ci: Vec<(f64, f64)> = p
                .boundaries
                .iter()
                .filter_map(|b| {
                    let pred = b.rho_pred?;
                    let lo = b.rho_sim_ci[0].map_or(f64::NEG_INFINITY, |x| (x / pred).log10());
                    let hi = b.rho_sim_ci[1].map_or(f64::INFINITY, |x| (x / pred).log10());
                    Some((lo, hi))
                })
                .collect();
            let note = format!(
                "{} of {} rows have a crossing inside the grid; ci: from the rows' Wilson-curve crossing intervals at level {}, pointwise per row; pass/fail on the point estimate",
                finite.len(),
                devs.len(),
                v.level
            );
            if p.y_name == "sigma" || p.algorithm == "usam" {
                let tol = if p.y_name == "sigma" {
                    v.minibatch_tolerance_dex
                } else {
                    v.usam_tolerance_dex
                };
                let m = finite.iter().map(|d| d.abs()).fold(0.0, f64::max);
                // max_rows |Δ| ∈ [max_rows dist(0, I_row), max_rows max(|lo|, |hi|)].
                let ci_lo = row_ci
                    .iter()
                    .map(|&(a, b)| {
                        if a > 0.0 {
                            a
                        } else if b < 0.0 {
                            -b
                        } else {
                            0.0
                        }
                    })
                    .fold(0.0, f64::max);
                let ci_hi = row_ci
                    .iter()
                    .map(|&(a, b)| a.abs().max(b.abs()))
                    .fold(0.0, f64::max);
                let ok = all && m <= tol;
                out.push(
                    Verdict::new(
                        format!(
                            "{}: simulated ½-attraction boundary agrees with {} on every row",
                            p.name, p.prediction
                        ),
                        ClaimKind::Agrees,
                        if all { m } else { f64::NAN },
                        Some([ci_lo, ci_hi]),
                        format!("max over rows |log₁₀(ρ_sim/ρ_pred)| ≤ {tol} dex ({note})"),
                        Decision::from_bool(ok),
                    )
                    .reason(if !all {
                        "some row has no ½-crossing inside the grid".to_string()
                    } else if ok {
                        format!("max |Δ| = {m:.4} ≤ {tol} dex")
                    } else {
                        format!("max |Δ| = {m:.4} > {tol} dex")
                    })
                    .source(if p.y_name == "sigma" {
                        "Paper 1, saddle points: mini-batch SAM behaves like USAM with ρ_eff = ρκ_d/σ (threshold derived)"
                    } else {
                        "Paper 1, saddle points: USAM is attracted iff ρ > 1/|λ|"
                    }),
                );
            } else {
                let n: usize = p.cells.iter().filter_map(|q| q.in_region).sum();
                let k: usize = p.cells.iter().filter_map(|q| q.in_region_attracted).sum();
                out.push(
                    Verdict::new(
                        format!(
                            "{}: every path that starts in the region ‖∇f‖ < ρ|λ| is attracted (sufficiency)",
                            p.name
                        ),
                        ClaimKind::Every,
                        if n > 0 { k as f64 / n as f64 } else { f64::NAN },
                        Some(wilson(k, n, v.level)),
                        format!("1 ({k} of {n} paths attracted; pass iff all; Wilson ci)"),
                        Decision::from_bool(n > 0 && k == n),
                    )
                    .reason(format!("{k} of {n} paths started in the region were attracted"))
                    .source("Paper 1, saddle points: full-batch SAM's region ‖∇f‖ < ρ|λ| is attracted for every ρ > 0"),
                );
                let m = finite.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                let ci_lo = row_ci.iter().map(|r| r.0).fold(f64::NEG_INFINITY, f64::max);
                let ci_hi = row_ci.iter().map(|r| r.1).fold(f64::NEG_INFINITY, f64::max);
                let (lo, _) = range(&finite);
                let ok = all && m <= v.region_tolerance_dex;
                out.push(
                    Verdict::new(
                        format!(
                            "{}: the simulated ½-attraction boundary lies at or below the region's (basin ⊇ region)",
                            p.name
                        ),
                        ClaimKind::AtMost,
                        if all { m } else { f64::NAN },
                        Some([ci_lo, ci_hi]),
                        format!(
                            "max over rows log₁₀(ρ_sim/ρ_pred) ≤ {} dex, one-sided; the most conservative row is at {lo:+.3} dex ({note})",
                            v.region_tolerance_dex,
                        ),
                        Decision::from_bool(ok),
                    )
                    .reason(if all {
                        format!("max Δ = {m:+.4} dex against {} dex", v.region_tolerance_dex)
                    } else {
                        "some row has no ½-crossing inside the grid".into()
                    })
                    .source("Paper 1, saddle points: full-batch SAM (region derived)"),
                );
            }
        }
        // Stall distance of full-batch SAM: ηρ max|λ|/2.
        let scale = self.stall_scale_reference;
        for row in reference {
            let is_sam = row.algorithm == "sam" || row.algorithm == "dnsam";
            if is_sam && row.sigma == 0.0 && row.expected == Outcome::Stall {
                let pred = c.eta * row.rho * scale;
                let rel = row.tail_mean_norm_median / pred - 1.0;
                out.push(
                    Verdict::new(
                        format!(
                            "discrete full-batch {} ρ = {} from {:?} stalls at distance ηρ max|λ|/2 = {pred:.3e}",
                            row.algorithm, row.rho, row.start
                        ),
                        ClaimKind::Agrees,
                        row.tail_mean_norm_median,
                        None,
                        format!(
                            "{pred:.3e} within {} % (deterministic, tail mean of ‖x‖)",
                            v.stall_tolerance * 100.0,
                        ),
                        Decision::from_bool(rel.abs() <= v.stall_tolerance),
                    )
                    .reason(format!("relative error {:+.2} %", rel * 100.0))
                    .source(STALL_SOURCE),
                );
            }
        }
        for s in stall {
            let ok = stall_ok(s, v.stall_tolerance);
            out.push(
                Verdict::new(
                    format!(
                        "discrete full-batch sam ρ = {} on H = diag({}) stalls on the eigendirection of the largest |λ| (λ = {}) at distance ηρ max|λ|/2 = {:.3e}",
                        s.rho,
                        join(&s.eigenvalues),
                        s.cycle_eigenvalue,
                        s.predicted
                    ),
                    ClaimKind::Agrees,
                    s.tail_mean_norm,
                    None,
                    format!(
                        "{:.3e} within {} %, and the final state along that eigendirection (share ≥ 0.99) (deterministic, tail mean of ‖x‖)",
                        s.predicted,
                        v.stall_tolerance * 100.0
                    ),
                    Decision::from_bool(ok),
                )
                .reason(format!(
                    "relative error {:+.2} %; share along the λ = {} direction {:.4}, sign flips on {:.1} % of the tail steps ({}); 2-cycle amplitude ηρ|λ|/(2 − ηλ) = {:.4e}; for comparison the older ηρ min|λ_−| = {:.3e} is off by {:+.1} %",
                    s.relative_error * 100.0,
                    s.cycle_eigenvalue,
                    s.cycle_share,
                    100.0 * s.flip_fraction,
                    if s.cycle_eigenvalue > 0.0 {
                        "an attracting 2-cycle"
                    } else {
                        "negative curvature: the 2-cycle repels and the orbit wanders in [−ηρ|λ|, ηρ|λ|]"
                    },
                    s.two_cycle_amplitude,
                    s.old_formula,
                    s.old_relative_error * 100.0
                ))
                .source(STALL_SOURCE),
            );
        }
        for row in reference {
            let claim_kind = if row.paths == 1 {
                ClaimKind::Agrees
            } else {
                ClaimKind::Majority
            };
            out.push(Verdict {
                claim_kind,
                source: Some("Paper 1, saddle points (reference run derived)".into()),
                reason: format!(
                    "{} of {} paths {}",
                    (row.fraction_expected * row.paths as f64).round(),
                    row.paths,
                    row.expected.name()
                ),
                claim: format!(
                    "reference run: {} ρ = {} σ = {} from {:?} {}s",
                    if row.algorithm == "sgd" && row.sigma == 0.0 {
                        "gd"
                    } else {
                        &row.algorithm
                    },
                    row.rho,
                    row.sigma,
                    row.start,
                    row.expected.name()
                ),
                measured: row.fraction_expected,
                ci: Some(row.ci),
                expected: if row.paths == 1 {
                    format!("{} (1 deterministic path)", row.expected.name())
                } else {
                    format!(
                        "{} on most paths: Wilson lower bound > 0.5 ({} paths)",
                        row.expected.name(),
                        row.paths
                    )
                },
                verdict: row.verdict,
            });
        }
        out
    }
}

/// The stall verdict on one spectrum: distance within `tol` of `ηρ max|λ|/2`, and the final
/// state on the largest-`|λ|` eigendirection.
pub(super) fn stall_ok(s: &StallReport, tol: f64) -> bool {
    !s.escaped && s.relative_error.abs() <= tol && s.cycle_share >= 0.99
}

fn join(v: &[f64]) -> String {
    v.iter()
        .map(|x| format!("{x}").replace('-', "−"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn range(v: &[f64]) -> (f64, f64) {
    v.iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &x| {
            (a.min(x), b.max(x))
        })
}
