//! Table, CSV and figures of the saddle study.
//!
//! Files: `saddle.json` (the report), `saddle_phase.csv` (one row per phase-diagram cell),
//! `saddle_curves.csv` (one row per curve point), `saddle_phase.png/.svg` (heat maps with the
//! predicted boundaries), `saddle_curves.png/.svg` (distance to the saddle with quantile bands,
//! and escape-time distributions).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::error::Result;
use crate::output::{to_json, Staging};
use crate::plot::bands::{draw_bands, Band, BandPanel, BandSeries, LegendCorner, LegendEntry};
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
                        label: "predicted: ½ of starts have ‖∇f‖ < ρ|λ|".into(),
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

/// The curves figure's panels: per distinct `σ`, distance to the saddle (top) and the
/// empirical CDF of the escape time (bottom). Discrete solid with a 10–90 % band, SDE/ODE dashed.
pub fn curve_panels(r: &SaddleReport) -> Vec<(BandPanel, BandPanel)> {
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
    // Three decades of head room below the data for the legend.
    let y_lo = 10f64
        .powf(lo_all.max(1e-12).log10().floor() - 3.0)
        .min(k.converge_radius);
    let y_hi = 10f64.powf((k.escape_radius * 10.0).log10().ceil());
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
            let mut legend: Vec<LegendEntry> = Vec::new();
            let mut dist = Vec::new();
            let mut esc = Vec::new();
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
                    legend.push(LegendEntry {
                        text: format!(
                            "{name} (escaped by T: {}{sde} of {})",
                            q.escape.escaped, q.escape.paths
                        ),
                        color: Some(ci),
                        dashed: false,
                    });
                }
                dist.push(BandSeries {
                    color: ci,
                    dashed: !discrete,
                    x: q.times.clone(),
                    y: q.median.clone(),
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
            legend.push(LegendEntry {
                text: "discrete (median, 10–90 % band)".into(),
                color: None,
                dashed: false,
            });
            legend.push(LegendEntry {
                text: "SDE / ODE (median)".into(),
                color: None,
                dashed: true,
            });
            let noise = if sigma == 0.0 {
                "full batch".to_string()
            } else {
                format!("additive noise σ = {sigma}")
            };
            let n_paths = group.first().map_or(0, |g| g.1.escape.paths);
            (
                BandPanel {
                    title: format!("Distance to the saddle, {noise} ({n_paths} paths)"),
                    x_label: "time t = kη".into(),
                    y_label: "‖x_t‖".into(),
                    x_range: (0.0, horizon),
                    log_x: false,
                    y_range: (y_lo, y_hi),
                    log_y: true,
                    series: dist,
                    hlines: vec![
                        (
                            k.escape_radius,
                            format!("escape radius R = {}", k.escape_radius),
                        ),
                        (
                            k.attraction_radius,
                            format!("attraction radius ε = {}", k.attraction_radius),
                        ),
                    ],
                    legend: legend.clone(),
                    legend_corner: LegendCorner::LowerRight,
                },
                BandPanel {
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
            )
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
    (640 * cols + 110, 600 * rows + 40)
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
    (900 * n, 1150)
}

fn draw_curves<DB: plotters::prelude::DrawingBackend>(
    a: &plotters::drawing::DrawingArea<DB, plotters::coord::Shift>,
    r: &SaddleReport,
) -> Result<()> {
    let panels = curve_panels(r);
    if panels.is_empty() {
        return Ok(());
    }
    let a = a
        .titled(
            &format!(
                "Near the saddle of f = ½xᵀHx, H = diag({}), η = {}: discrete algorithms vs their SDE/ODE",
                join(&r.header.config.curves.eigenvalues),
                r.header.config.eta
            ),
            ("sans-serif", 26),
        )
        .map_err(crate::plot::draw_err)?;
    let cols = a.split_evenly((1, panels.len()));
    for (col, (top, bottom)) in cols.iter().zip(&panels) {
        let (up, down) = col.split_vertically((col.dim_in_pixel().1 as f64 * 0.58) as u32);
        draw_bands(&up, top)?;
        draw_bands(&down, bottom)?;
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
