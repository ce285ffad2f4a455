//! Table, CSV and figures of the saddle study.
//!
//! Files: `saddle.json` (the report), `saddle_phase.csv` (one row per phase-diagram cell),
//! `saddle_curves.csv` (one row per curve point), `saddle_phase.png/.svg` (heat maps with the
//! predicted boundaries, each panel with its legend and a note under it saying what the line
//! is — for full-batch SAM a sufficient condition, not the basin), `saddle_curves.png/.svg`
//! (distance to the saddle with quantile bands, medians drawn only while at most half the
//! paths have escaped, and escape-time distributions).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::error::Result;
use crate::output::{to_json, Staging};
use crate::plot::bands::{
    draw_bands, draw_bands_with, draw_legend, legend_height, Band, BandExtras, BandFill,
    BandMarker, BandPanel, BandSeries, LegendCorner, LegendItem, LegendSample, MarkerShape,
};
use crate::plot::heatmap::{draw_heatmaps, BoundaryCurve, CrossingPoint, HeatmapPanel};
use crate::registry::{Experiment, Overrides, Progress, StudyDef};
use crate::report::csv::{self, Table};
use crate::study::saddle::{SaddleConfig, SaddleReport, SaddleStudy};
use crate::study::verdict::{Observation, Verdict};
use plotters::prelude::SeriesLabelPosition;

/// `1.234e-5`, or `stopped` for `+∞` (a path stopped at the divergence bound after escaping).
struct Sci(f64);

impl std::fmt::Display for Sci {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.0.is_infinite() {
            f.pad("stopped")
        } else {
            f.pad(&format!("{:.3e}", self.0))
        }
    }
}

fn opt(v: Option<f64>) -> String {
    v.map_or("—".into(), |x| format!("{x:.4}"))
}

/// The printed summary.
pub fn table(r: &SaddleReport) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "{}", r.header.config.display_title());
    let _ = writeln!(
        s,
        "η = {} · seed {} · {} thread(s) · {:.1} s · κ_d = {:.4}",
        r.header.config.eta, r.header.seed, r.header.threads, r.header.elapsed_s, r.kappa_d
    );
    let _ = writeln!(s);
    let _ = writeln!(
        s,
        "reference run (medians over paths; \"stopped\" = passed the divergence bound after escaping):"
    );
    let _ = writeln!(
        s,
        "  {:<6} {:>5} {:>5} {:<14} {:<9} {:>5} {:>24} {:>11} {:>11} {:>9}  verdict",
        "alg", "ρ", "σ", "start", "expect", "paths", "fraction [CI]", "‖x_T‖", "tail ‖x‖", "t_esc"
    );
    for row in &r.reference {
        let _ = writeln!(
            s,
            "  {:<6} {:>5} {:>5} {:<14} {:<9} {:>5} {:>24} {:>11} {:>11} {:>9}  {}",
            row.algorithm,
            row.rho,
            row.sigma,
            format!("{:?}", row.start),
            row.expected.name(),
            row.paths,
            format!(
                "{:.3} [{:.3}, {:.3}]",
                row.fraction_expected, row.ci[0], row.ci[1]
            ),
            Sci(row.final_norm_median),
            Sci(row.tail_mean_norm_median),
            row.escape_time_median
                .map_or("—".into(), |t| format!("{t:.2}")),
            row.verdict
        );
    }
    if !r.stall.is_empty() {
        let _ = writeln!(s);
        let _ = writeln!(
            s,
            "where full-batch SAM stalls (one deterministic path each; tail mean of ‖x‖ against ηρ max|λ|/2 and the older ηρ min|λ_−|; a* = 2-cycle amplitude ηρ|λ|/(2 − ηλ) along the largest-|λ| direction; share of ‖x_T‖ on that direction; fraction of tail steps flipping its sign — 1 = the attracting 2-cycle, λ > 0; < 1 for λ < 0, where the cycle repels and the orbit wanders in [−ηρ|λ|, ηρ|λ|]):"
        );
        let _ = writeln!(
            s,
            "  {:<22} {:>5} {:>11} {:>20} {:>20} {:>11} {:>8} {:>7} {:>6}",
            "H = diag(…)",
            "ρ",
            "tail ‖x‖",
            "ηρ max|λ|/2 (rel)",
            "ηρ min|λ_−| (rel)",
            "2-cycle a*",
            "along λ",
            "share",
            "flips"
        );
        for q in &r.stall {
            let _ = writeln!(
                s,
                "  {:<22} {:>5} {:>11} {:>20} {:>20} {:>11} {:>8} {:>7.4} {:>6.3}",
                join(&q.eigenvalues),
                q.rho,
                Sci(q.tail_mean_norm),
                format!("{} ({:+.1} %)", Sci(q.predicted), 100.0 * q.relative_error),
                format!(
                    "{} ({:+.1} %)",
                    Sci(q.old_formula),
                    100.0 * q.old_relative_error
                ),
                Sci(q.two_cycle_amplitude),
                q.cycle_eigenvalue,
                q.cycle_share,
                q.flip_fraction
            );
        }
    }
    let _ = writeln!(s);
    let _ = writeln!(s, "curves (attracted at T: ‖x_T‖ < ε; escape: ‖x‖ ≥ R):");
    for c in &r.curves {
        let med = c.escape.quantiles.get(1).and_then(|q| q[1]);
        let _ = writeln!(
            s,
            "  {:<32} {:<22} attracted {:.3} [{:.3}, {:.3}]  escaped {}/{} (censored {}, diverged {}), median t_esc {}",
            c.label,
            c.integrator,
            c.fraction_attracted,
            c.fraction_ci[0],
            c.fraction_ci[1],
            c.escape.escaped,
            c.escape.paths,
            c.escape.censored,
            c.escape.diverged,
            med.map_or("> T".into(), |t| format!("{t:.2}"))
        );
    }
    let _ = writeln!(s);
    for p in &r.phases {
        let _ = writeln!(
            s,
            "phase {} [{}] ({}; ε = {}, T = {}):",
            p.name, p.system, p.prediction, p.attraction_radius, p.horizon
        );
        for b in &p.boundaries {
            let _ = writeln!(
                s,
                "  {} = {:<8.4} ρ_pred {:<8} ρ_sim {:<8} [{}, {}]  Δ = {} dex",
                if p.y_name == "sigma" { "σ" } else { "|λ|" },
                b.y,
                opt(b.rho_pred),
                opt(b.rho_sim),
                opt(b.rho_sim_ci[0]),
                opt(b.rho_sim_ci[1]),
                b.deviation_dex.map_or("—".into(), |d| format!("{d:+.3}"))
            );
        }
    }
    let _ = writeln!(s);
    let _ = writeln!(s, "verdicts:");
    for v in &r.verdicts {
        let _ = writeln!(
            s,
            "  {:<5} {}\n        measured {}{}; expected {}",
            v.verdict,
            v.claim,
            crate::study::verdict::fmt_num(v.measured),
            v.ci_text(),
            v.expected
        );
    }
    if !r.header.warnings.is_empty() {
        let _ = writeln!(s);
        for w in &r.header.warnings {
            let _ = writeln!(s, "warning: {w}");
        }
    }
    let n = r.verdicts.iter().filter(|v| v.verdict == "pass").count();
    let _ = writeln!(s);
    let _ = writeln!(s, "{n} of {} verdicts pass", r.verdicts.len());
    s
}

/// One CSV row per phase-diagram cell.
pub fn phase_csv(r: &SaddleReport) -> String {
    let mut t = Table::new(&[
        "panel",
        "algorithm",
        "system",
        "y_name",
        "y",
        "rho",
        "attracted",
        "paths",
        "fraction",
        "ci_lo",
        "ci_hi",
        "predicted",
        "in_region",
        "in_region_attracted",
    ]);
    for p in &r.phases {
        for c in &p.cells {
            t.row(&[
                &p.name,
                &p.algorithm,
                &p.system,
                &p.y_name,
                &c.y,
                &c.rho,
                &c.attracted,
                &c.paths,
                &c.fraction,
                &c.ci[0],
                &c.ci[1],
                &c.predicted,
                &csv::opt(c.in_region),
                &csv::opt(c.in_region_attracted),
            ]);
        }
    }
    t.finish()
}

/// One CSV row per curve point.
pub fn curves_csv(r: &SaddleReport) -> String {
    let mut t = Table::new(&[
        "label",
        "algorithm",
        "system",
        "rho",
        "sigma",
        "t",
        "mean",
        "median",
        "q10",
        "q90",
    ]);
    for c in &r.curves {
        for j in 0..c.times.len() {
            t.row(&[
                &c.label,
                &c.algorithm,
                &c.system,
                &c.rho,
                &c.sigma,
                &c.times[j],
                &c.mean[j],
                &c.median[j],
                &c.q10[j],
                &c.q90[j],
            ]);
        }
    }
    t.finish()
}

fn geom(a: f64, b: f64, n: usize) -> Vec<f64> {
    (0..n)
        .map(|i| (a.ln() + (b.ln() - a.ln()) * i as f64 / (n - 1) as f64).exp())
        .collect()
}

/// The phase-diagram panels: attraction fraction, predicted boundary, simulated ½-crossings.
pub fn phase_panels(r: &SaddleReport) -> Vec<HeatmapPanel> {
    let c = &r.header.config;
    r.phases
        .iter()
        .map(|p| {
            let (y0, y1) = (p.ys[0] * 0.8, p.ys[p.ys.len() - 1] * 1.25);
            let setting = format!(
                "SAM radius ρ   (ε = {}, T = {}, {} paths per cell)",
                p.attraction_radius,
                p.horizon,
                p.cells.first().map_or(0, |q| q.paths)
            );
            // A corner the boundary does not pass through: the empty (not attracted) corner for
            // USAM, the attracted one for the others.
            let legend_corner = match (p.algorithm.as_str(), p.y_name.as_str()) {
                ("usam", _) => SeriesLabelPosition::LowerLeft,
                (_, "lambda") => SeriesLabelPosition::UpperRight,
                _ => SeriesLabelPosition::LowerRight,
            };
            // What each line is, under its panel; full-batch SAM's is a sufficient condition,
            // not the basin.
            let note: Vec<String> = match (p.algorithm.as_str(), p.y_name.as_str()) {
                ("usam", _) => vec![
                    "Line: ρ|λ| = 1; full-batch USAM is attracted iff ρ|λ| > 1. Paths just right of".into(),
                    "the line decay slowly, so at finite T the simulated crossing can sit slightly right of it.".into(),
                ],
                (_, "lambda") => vec![
                    "Line: where half the starts lie in ‖∇f(x₀)‖ < ρ|λ|, a SUFFICIENT condition for attraction,".into(),
                    "not the exact basin: starts outside it can be attracted too, so crossings can lie left of it.".into(),
                ],
                _ => vec![
                    "Line: ρ κ_d |λ| = σ, where the saddle becomes locally stable under the noise;".into(),
                    "at finite T the simulated crossing can lie on either side of it.".into(),
                ],
            };
            let (title, y_label, curve) = match (p.algorithm.as_str(), p.y_name.as_str()) {
                ("usam", _) => (
                    format!(
                        "USAM, full batch, H = diag({}, −|λ|)",
                        join(&c.phase_rho_lambda.other_eigenvalues)
                    ),
                    "negative curvature |λ|".to_string(),
                    BoundaryCurve {
                        label: "predicted ρ|λ| = 1".into(),
                        points: geom(y0, y1, 60).into_iter().map(|y| (1.0 / y, y)).collect(),
                        dashed: false,
                    },
                ),
                (alg, "lambda") => (
                    format!(
                        "{}, full batch, H = diag({}, −|λ|)",
                        alg.to_uppercase(),
                        join(&c.phase_rho_lambda.other_eigenvalues)
                    ),
                    "negative curvature |λ|".to_string(),
                    BoundaryCurve {
                        label: "sufficient condition: ½ of the starts have ‖∇f(x₀)‖ < ρ|λ| (see below)".into(),
                        points: p
                            .boundaries
                            .iter()
                            .filter_map(|b| b.rho_pred.map(|x| (x, b.y)))
                            .collect(),
                        dashed: false,
                    },
                ),
                (alg, _) => {
                    let mu = c
                        .phase_rho_sigma
                        .eigenvalues
                        .iter()
                        .filter(|v| **v < 0.0)
                        .fold(f64::INFINITY, |m, v| m.min(v.abs()));
                    let kd = r.kappa_d;
                    (
                        format!(
                            "{}{}, additive noise σ, H = diag({})",
                            alg.to_uppercase(),
                            if p.system == "discrete" { "" } else { " SDE" },
                            join(&c.phase_rho_sigma.eigenvalues)
                        ),
                        "noise σ".to_string(),
                        BoundaryCurve {
                            label: format!("predicted ρ κ_d |λ| = σ (κ_d = {kd:.3})"),
                            points: geom(y0, y1, 60)
                                .into_iter()
                                .map(|y| (y / (kd * mu), y))
                                .collect(),
                            dashed: false,
                        },
                    )
                }
            };
            HeatmapPanel {
                title,
                x_label: setting,
                y_label,
                xs: p.rhos.clone(),
                ys: p.ys.clone(),
                values: p.cells.iter().map(|q| q.fraction).collect(),
                curves: vec![curve],
                crossings: p
                    .boundaries
                    .iter()
                    .filter_map(|b| {
                        b.rho_sim.map(|x| CrossingPoint {
                            y: b.y,
                            x,
                            lo: b.rho_sim_ci[0],
                            hi: b.rho_sim_ci[1],
                        })
                    })
                    .collect(),
                crossing_label: format!(
                    "simulated ½ crossing ({:.0} % CI)",
                    100.0 * c.verdict.level
                ),
                legend_corner,
                note,
            }
        })
        .collect()
}

fn join(v: &[f64]) -> String {
    v.iter()
        .map(|x| format!("{x}").replace('-', "−"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// One column of the curves figure (one noise level `σ`): the distance to the saddle, its
/// legend (shared with the escape-time panel under it), and the escape-time distribution.
pub struct CurveColumn {
    /// Distance to the saddle: medians (solid discrete with a 10–90 % band, dashed SDE/ODE).
    pub distance: BandPanel,
    /// The distance panel's extras: escaped region shaded, ▲ where a median stops, `R` and `ε`
    /// written in the right margin, lines that stop at the frame.
    pub extras: BandExtras,
    /// One entry per algorithm (colour) and the line styles, in two columns.
    pub legend: Vec<LegendItem>,
    /// What the shading, the dotted lines and the ▲ mean, one per row.
    pub notes: Vec<LegendItem>,
    /// Empirical distribution of the escape time.
    pub escape: BandPanel,
}

/// The time from which more than half of the paths have escaped (first `‖x‖ ≥ R`), if that
/// happens by `T`: the `(⌊n/2⌋ + 1)`-th escape time.
fn half_escaped_at(e: &crate::study::saddle::EscapeReport) -> Option<f64> {
    e.times.get(e.paths / 2).copied()
}

/// The curves figure: per distinct `σ`, distance to the saddle (top), a legend strip, and the
/// empirical CDF of the escape time (bottom). Discrete solid with a 10–90 % band, SDE/ODE dashed.
///
/// A median is drawn only while at most half of its paths have escaped: after that it is the
/// distance of an escaped path (growing until the divergence bound, `+∞` after), which on a
/// log axis clipped at the frame would read as a plateau. A ▲ on the `R` line marks the time
/// from which more than half have escaped (the bottom panel's ½ crossing). The `y` range is the
/// data's (lowest quantile drawn to a little above `R`), shared by the columns.
pub fn curve_panels(r: &SaddleReport) -> Vec<CurveColumn> {
    let c = &r.header.config;
    let k = &c.classify;
    let mut sigmas: Vec<f64> = r.curves.iter().map(|q| q.sigma).collect();
    sigmas.sort_by(f64::total_cmp);
    sigmas.dedup();
    let lo_all = r
        .curves
        .iter()
        .flat_map(|q| q.q10.iter().chain(&q.median))
        .copied()
        .filter(|v| v.is_finite() && *v > 0.0)
        .fold(f64::INFINITY, f64::min);
    // A quarter decade below the lowest value drawn (and below ε), half a decade above R: the
    // region above R is the shaded "escaped" strip.
    let y_lo = 10f64
        .powf(lo_all.max(1e-12).log10() - 0.25)
        .min(0.5 * k.attraction_radius);
    let y_hi = k.escape_radius * 10f64.powf(0.5);
    let horizon = c.curves.horizon;
    sigmas
        .iter()
        .map(|&sigma| {
            let group: Vec<(usize, &crate::study::saddle::CurveReport)> = r
                .curves
                .iter()
                .filter(|q| q.sigma == sigma)
                .enumerate()
                .map(|(i, q)| (i / 2, q))
                .collect();
            let mut legend: Vec<LegendItem> = Vec::new();
            let mut dist = Vec::new();
            let mut esc = Vec::new();
            let mut markers = Vec::new();
            for (gi, &(ci, q)) in group.iter().enumerate() {
                let discrete = q.system == "discrete";
                if discrete {
                    let name = if q.algorithm == "sgd" {
                        if sigma == 0.0 {
                            "GD".to_string()
                        } else {
                            "SGD".to_string()
                        }
                    } else {
                        format!("{} ρ = {}", q.algorithm.to_uppercase(), q.rho)
                    };
                    // Escape counts (the rest is censored at T): discrete, then SDE/ODE.
                    let sde = group
                        .get(gi + 1)
                        .filter(|g| g.0 == ci)
                        .map_or(String::new(), |g| format!(", SDE {}", g.1.escape.escaped));
                    legend.push(LegendItem {
                        text: format!(
                            "{name} (escaped by T: {}{sde} of {})",
                            q.escape.escaped, q.escape.paths
                        ),
                        color: Some(ci),
                        sample: LegendSample::Series {
                            dashed: false,
                            bands: vec![],
                        },
                    });
                }
                let cut = half_escaped_at(&q.escape);
                let median = q
                    .times
                    .iter()
                    .zip(&q.median)
                    .map(|(&t, &m)| if cut.is_some_and(|tc| t >= tc) { f64::NAN } else { m })
                    .collect();
                if let Some(tc) = cut {
                    markers.push(BandMarker {
                        x: tc,
                        y: k.escape_radius,
                        color: Some(ci),
                        shape: MarkerShape::TriangleUp,
                        hollow: !discrete,
                    });
                }
                dist.push(BandSeries {
                    color: ci,
                    dashed: !discrete,
                    x: q.times.clone(),
                    y: median,
                    bands: if discrete {
                        vec![Band {
                            lo: q.q10.clone(),
                            hi: q.q90.clone(),
                            opacity: 0.18,
                        }]
                    } else {
                        vec![]
                    },
                });
                let n = q.escape.paths.max(1) as f64;
                let mut x = vec![0.0];
                let mut y = vec![0.0];
                for (i, &t) in q.escape.times.iter().enumerate() {
                    x.push(t);
                    y.push(i as f64 / n);
                    x.push(t);
                    y.push((i + 1) as f64 / n);
                }
                x.push(horizon);
                y.push(q.escape.escaped as f64 / n);
                esc.push(BandSeries {
                    color: ci,
                    dashed: !discrete,
                    x,
                    y,
                    bands: vec![],
                });
            }
            legend.push(LegendItem {
                text: "discrete: median, 10–90 % band".into(),
                color: None,
                sample: LegendSample::Series {
                    dashed: false,
                    bands: vec![(BandFill::Filled, 0.18)],
                },
            });
            legend.push(LegendItem {
                text: "SDE / ODE: median".into(),
                color: None,
                sample: LegendSample::Series {
                    dashed: true,
                    bands: vec![],
                },
            });
            let notes = vec![
                LegendItem {
                    text: format!(
                        "escape radius R = {} and attraction radius ε = {}",
                        k.escape_radius, k.attraction_radius
                    ),
                    color: None,
                    sample: LegendSample::Reference,
                },
                LegendItem {
                    text: "‖x‖ ≥ R: escaped (bands reaching the top are clipped there)".into(),
                    color: None,
                    sample: LegendSample::Shade,
                },
                LegendItem {
                    text: "from here on more than half the paths have escaped: the median is not drawn (open: SDE/ODE)".into(),
                    color: None,
                    sample: LegendSample::Marker(MarkerShape::TriangleUp, false),
                },
            ];
            let noise = if sigma == 0.0 {
                "full batch".to_string()
            } else {
                format!("additive noise σ = {sigma}")
            };
            let n_paths = group.first().map_or(0, |g| g.1.escape.paths);
            CurveColumn {
                distance: BandPanel {
                    title: format!("Distance to the saddle, {noise} ({n_paths} paths)"),
                    x_label: "time t = kη".into(),
                    y_label: "‖x_t‖".into(),
                    x_range: (0.0, horizon),
                    log_x: false,
                    y_range: (y_lo, y_hi),
                    log_y: true,
                    series: dist,
                    hlines: vec![
                        (k.escape_radius, format!("R = {}", k.escape_radius)),
                        (k.attraction_radius, format!("ε = {}", k.attraction_radius)),
                    ],
                    legend: vec![],
                    legend_corner: LegendCorner::LowerRight,
                },
                extras: BandExtras {
                    shade_above: Some(k.escape_radius),
                    markers,
                    hline_labels_outside: true,
                    lines_stop_at_frame: true,
                    ..BandExtras::default()
                },
                legend,
                notes,
                escape: BandPanel {
                    title: format!(
                        "Escape time (first ‖x‖ ≥ R), {noise}; plateau < 1 = censored at T"
                    ),
                    x_label: "time t".into(),
                    y_label: "fraction escaped by t".into(),
                    x_range: (0.0, horizon),
                    log_x: false,
                    y_range: (0.0, 1.02),
                    log_y: false,
                    series: esc,
                    hlines: vec![],
                    legend: vec![],
                    legend_corner: LegendCorner::LowerRight,
                },
            }
        })
        .collect()
}

/// Panels per row of the phase figure: all in one row up to three, else two per row.
fn phase_cols(r: &SaddleReport) -> usize {
    let n = r.phases.len().max(1);
    if n <= 3 {
        n
    } else {
        2
    }
}

fn phase_size(r: &SaddleReport) -> (u32, u32) {
    let cols = phase_cols(r) as u32;
    let rows = r.phases.len().max(1).div_ceil(cols as usize) as u32;
    (640 * cols + 110, 700 * rows + 40)
}

fn draw_phase<DB: plotters::prelude::DrawingBackend>(
    a: &plotters::drawing::DrawingArea<DB, plotters::coord::Shift>,
    r: &SaddleReport,
) -> Result<()> {
    let title = format!(
        "Attraction to the saddle of f = ½xᵀHx: fraction of paths with ‖x_T‖ < ε (η = {})",
        r.header.config.eta
    );
    draw_heatmaps(
        a,
        &title,
        &phase_panels(r),
        phase_cols(r),
        "fraction attracted at T",
    )
}

fn curves_size(r: &SaddleReport) -> (u32, u32) {
    let n = curve_panels(r).len().max(1) as u32;
    (900 * n, 1320)
}

/// Legend font size (pixels) of the curves figure.
const CURVES_LEGEND_PX: f64 = 14.0;

fn draw_curves<DB: plotters::prelude::DrawingBackend>(
    a: &plotters::drawing::DrawingArea<DB, plotters::coord::Shift>,
    r: &SaddleReport,
) -> Result<()> {
    let columns = curve_panels(r);
    if columns.is_empty() {
        return Ok(());
    }
    let a = crate::plot::titled(a, &format!(
                "Near the saddle of f = ½xᵀHx, H = diag({}), η = {}: discrete algorithms vs their SDE/ODE",
                join(&r.header.config.curves.eigenvalues),
                r.header.config.eta
            ), 26.0)
        .map_err(crate::plot::draw_err)?;
    let cols = a.split_evenly((1, columns.len()));
    for (col, c) in cols.iter().zip(&columns) {
        let h = col.dim_in_pixel().1;
        let (up, rest) = col.split_vertically((h as f64 * 0.5) as u32);
        let lh = legend_height(c.legend.len(), 2, CURVES_LEGEND_PX);
        let nh = legend_height(c.notes.len(), 1, CURVES_LEGEND_PX);
        let (legend, rest) = rest.split_vertically(lh);
        let (notes, down) = rest.split_vertically(nh);
        draw_bands_with(&up, &c.distance, &c.extras)?;
        // Indented to the distance panel's plotting area.
        let indent = (72.0 * (col.dim_in_pixel().0 as f64 / 700.0).clamp(0.75, 4.0)) as i32;
        let legend = legend.margin(0, 0, indent, 0);
        let notes = notes.margin(0, 0, indent, 0);
        draw_legend(&legend, &c.legend, 2, CURVES_LEGEND_PX)?;
        draw_legend(&notes, &c.notes, 1, CURVES_LEGEND_PX)?;
        draw_bands(&down, &c.escape)?;
    }
    Ok(())
}

/// Writes every file of the run into `dir`, atomically.
pub fn write(r: &SaddleReport, dir: &Path) -> Result<Vec<PathBuf>> {
    let mut st = Staging::new(dir)?;
    st.bytes("saddle.json", &to_json(r)?)?;
    st.bytes("saddle_phase.csv", phase_csv(r).as_bytes())?;
    st.bytes("saddle_curves.csv", curves_csv(r).as_bytes())?;
    st.with("saddle_phase.png", |p| {
        crate::plot::render_png(p, phase_size(r), |a| draw_phase(a, r))
    })?;
    st.with("saddle_phase.svg", |p| {
        crate::plot::render_svg(p, phase_size(r), |a| draw_phase(a, r))
    })?;
    let size = curves_size(r);
    st.with("saddle_curves.png", |p| {
        crate::plot::render_png(p, size, |a| draw_curves(a, r))
    })?;
    st.with("saddle_curves.svg", |p| {
        crate::plot::render_svg(p, size, |a| draw_curves(a, r))
    })?;
    st.commit()
}

/// Both figures as in-memory SVG strings (for smoke tests).
pub fn svg_strings(r: &SaddleReport) -> Result<(String, String)> {
    Ok((
        crate::plot::render_svg_string(phase_size(r), |a| draw_phase(a, r))?,
        crate::plot::render_svg_string(curves_size(r), |a| draw_curves(a, r))?,
    ))
}

/// The saddle study in the registry.
pub struct Def(SaddleStudy);

impl StudyDef for Def {
    type Config = SaddleConfig;
    type Report = SaddleReport;
    const NAME: &'static str = "saddle";
    const ABOUT: &'static str = "Saddle points: where SAM gets stuck, measured against the theory";
    const LONG_ABOUT: &'static str = "Saddle points: where SAM gets stuck, measured against the theory.\n\nWithout CONFIG, runs the embedded default (experiments/saddle_default.toml) on H = diag(1, −0.5), η = 0.01: the reference run, where full-batch SAM stalls on four more spectra (a 2-cycle at ηρ max|λ|/2), distance-to-saddle curves and escape times (discrete and SDE/ODE), and attraction phase diagrams over (ρ, |λ|) and (ρ, σ) with the predicted boundaries. Writes saddle.json, saddle_phase.csv, saddle_curves.csv, saddle_phase.png/.svg and saddle_curves.png/.svg to --out (default plots/saddle). --paths sets the paths of the noisy reference rows, the curves and the discrete phase diagrams (deterministic reference rows always run one path; the SDE panel keeps phase_rho_sigma.sde_paths).";
    const DEFAULT: Experiment = Experiment {
        path: "experiments/saddle_default.toml",
        text: crate::study::saddle::DEFAULT_CONFIG,
    };
    const EXPERIMENTS: &'static [Experiment] = &[Self::DEFAULT];

    fn apply(c: &mut SaddleConfig, o: &Overrides) -> Result<()> {
        if let Some(p) = o.paths {
            c.reference.paths = p;
            c.curves.paths = p;
            c.phase_rho_lambda.paths = p;
            c.phase_rho_sigma.paths = p;
        }
        if let Some(s) = o.seed {
            c.seed = s;
        }
        o.reject_seeds_and_profile(Self::NAME)
    }
    fn build(config: SaddleConfig) -> Result<Self> {
        SaddleStudy::new(config).map(Def)
    }
    fn config(&self) -> &SaddleConfig {
        &self.0.config
    }
    fn total_work(&self) -> u64 {
        self.0.total_work()
    }
    fn run(&self, threads: usize, progress: Option<Progress>) -> Result<SaddleReport> {
        self.0.run(threads, progress)
    }
    fn table(r: &SaddleReport) -> String {
        table(r)
    }
    fn write(&self, r: &SaddleReport, dir: &Path) -> Result<Vec<PathBuf>> {
        write(r, dir)
    }
    fn verdicts(r: &SaddleReport) -> &[Verdict] {
        &r.verdicts
    }
    fn observations(r: &SaddleReport) -> &[Observation] {
        &r.observations
    }
    // Memory and work estimate (checked before anything is allocated).
    fn budget(config: &SaddleConfig, threads: usize) -> Result<crate::study::budget::Budget> {
        SaddleStudy::budget(config, threads)
    }
}
