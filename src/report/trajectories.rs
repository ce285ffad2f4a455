//! Table, CSV and figures of the trajectories study.
//!
//! * `trajectories.png/.svg`: a grid of panels, one row per observable and one column per
//!   algorithm; each panel shows the discrete algorithm (solid) and its SDE (dashed): mean line,
//!   95 % CI of the mean (dark band) and 5–95 % quantile band (light band).
//! * `surfaces.png/.svg` (2-D landscapes only): per algorithm, the surface its drift descends —
//!   `f` (SGD), `f + (ρ/2)‖∇f‖²` (USAM), `f + ρ‖∇f‖` (DNSAM, SAM; docs/theory.md §5) — as a heat map, with
//!   the first sample paths of the discrete algorithm (white, solid) and its SDE (red, dashed).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use plotters::coord::Shift;
use plotters::prelude::*;

use crate::error::Result;
use crate::landscape::Landscape;
use crate::optim::AlgorithmKind;
use crate::output::{to_json, Staging};
use crate::plot::bands::{
    auto_y_range, draw_bands as draw_band_panel, Band, BandPanel, BandSeries, LegendCorner,
    LegendEntry,
};
use crate::plot::draw_err;
use crate::plot::surface::{draw_surface_panel, SurfacePanel, SurfacePath};
use crate::registry::{Experiment, Overrides, Progress, StudyDef};
use crate::report::csv::Table;
use crate::study::trajectories::{TrajectoriesConfig, TrajectoriesReport, TrajectoriesStudy};
use crate::study::verdict::{Observation, Verdict};

/// The printed summary: means and bands at a few times, and the final comparison.
pub fn table(r: &TrajectoriesReport) -> String {
    let mut s = String::new();
    let c = &r.header.config;
    let _ = writeln!(s, "{}", c.display_title());
    let _ = writeln!(
        s,
        "{} · η = {} · T = {} · {} paths · seed {} · {} thread(s) · {:.1} s",
        r.landscape, c.eta, c.horizon, c.paths, r.header.seed, r.header.threads, r.header.elapsed_s
    );
    let n = r.times.len();
    let picks: Vec<usize> = if n <= 4 {
        (0..n).collect()
    } else {
        vec![0, n / 4, n / 2, n - 1]
    };
    for (oi, b0) in r.systems[0].bands.iter().enumerate() {
        let _ = writeln!(
            s,
            "\n{}: mean [95% CI] (5%–95% band) at t = {}",
            b0.observable.label(),
            picks
                .iter()
                .map(|&j| format!("{:.3}", r.times[j]))
                .collect::<Vec<_>>()
                .join(", ")
        );
        for sys in &r.systems {
            let b = &sys.bands[oi];
            let cells: Vec<String> = picks
                .iter()
                .map(|&j| {
                    format!(
                        "{:.4} [{:.4}, {:.4}] ({:.3}–{:.3})",
                        b.mean[j], b.ci_lo[j], b.ci_hi[j], b.q05[j], b.q95[j]
                    )
                })
                .collect();
            let _ = writeln!(s, "  {:<10} {}", sys.label, cells.join("  "));
        }
    }
    let _ = writeln!(s, "\nat T, discrete − SDE (informational):");
    for o in &r.observations {
        let _ = writeln!(s, "{}", o.line());
    }
    for w in &r.header.warnings {
        let _ = writeln!(s, "warning: {w}");
    }
    s
}

/// One CSV row per (system, observable, save time).
pub fn csv(r: &TrajectoriesReport) -> String {
    let mut t = Table::new(&[
        "system",
        "kind",
        "rho",
        "observable",
        "t",
        "mean",
        "ci_lo",
        "ci_hi",
        "q05",
        "q95",
    ]);
    for sys in &r.systems {
        for b in &sys.bands {
            for (j, time) in r.times.iter().enumerate() {
                t.row(&[
                    &sys.label,
                    &sys.kind,
                    &sys.rho,
                    &b.observable.label(),
                    time,
                    &b.mean[j],
                    &b.ci_lo[j],
                    &b.ci_hi[j],
                    &b.q05[j],
                    &b.q95[j],
                ]);
            }
        }
    }
    t.finish()
}

/// Draws the band grid (rows: observables, columns: algorithms).
pub fn draw_bands<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    r: &TrajectoriesReport,
) -> Result<()> {
    let (w, _) = root.dim_in_pixel();
    let sc = (w as f64 / 1600.0).clamp(0.5, 3.0);
    let root = root
        .titled(
            &r.header.config.display_title(),
            ("sans-serif", (22.0 * sc).round()),
        )
        .map_err(draw_err)?;
    let na = r.header.config.algorithms.len();
    let no = r.systems[0].bands.len();
    let cells = root.split_evenly((no, na));
    for oi in 0..no {
        for ai in 0..na {
            let (d, e) = (&r.systems[ai], &r.systems[na + ai]);
            let mk = |sys: &crate::study::trajectories::SystemTrajectories, color: usize| {
                let b = &sys.bands[oi];
                BandSeries {
                    color,
                    dashed: color == 1,
                    x: r.times.clone(),
                    y: b.mean.clone(),
                    // The 5–95 % band light, the mean's CI darker on top of it.
                    bands: vec![
                        Band {
                            lo: b.q05.clone(),
                            hi: b.q95.clone(),
                            opacity: 0.15,
                        },
                        Band {
                            lo: b.ci_lo.clone(),
                            hi: b.ci_hi.clone(),
                            opacity: 0.45,
                        },
                    ],
                }
            };
            let title = format!(
                "{} (ρ = {}): {}",
                d.algorithm.name().to_uppercase(),
                d.rho,
                d.bands[oi].observable.label()
            );
            let series = vec![mk(d, 0), mk(e, 1)];
            let legend = if oi == 0 {
                vec![
                    LegendEntry {
                        text: "discrete: mean, CI, 5–95%".into(),
                        color: Some(0),
                        dashed: false,
                    },
                    LegendEntry {
                        text: "SDE: mean, CI, 5–95%".into(),
                        color: Some(1),
                        dashed: true,
                    },
                ]
            } else {
                vec![]
            };
            let t0 = r.times.first().copied().unwrap_or(0.0);
            let t1 = r.times.last().copied().unwrap_or(1.0).max(t0 + 1e-12);
            draw_band_panel(
                &cells[oi * na + ai],
                &BandPanel {
                    title,
                    x_label: "t = kη".into(),
                    y_label: d.bands[oi].observable.label().into(),
                    x_range: (t0, t1),
                    log_x: false,
                    y_range: auto_y_range(&series, if legend.is_empty() { 0.0 } else { 0.3 }),
                    log_y: false,
                    series,
                    hlines: vec![],
                    legend,
                    legend_corner: LegendCorner::UpperRight,
                },
            )?;
        }
    }
    Ok(())
}

/// The surface the drift of `alg` descends.
pub fn implicit_loss(f: &dyn Landscape, alg: AlgorithmKind, rho: f64, x: &[f64]) -> f64 {
    let mut g = vec![0.0; x.len()];
    f.grad_into(x, &mut g);
    let gn = g.iter().map(|v| v * v).sum::<f64>().sqrt();
    f.loss(x)
        + match alg {
            AlgorithmKind::Sgd => 0.0,
            // m-USAM adds (ρ/2) tr Σ_m, which needs a finite sum and a batch law; the surface
            // of the full gradient is USAM's.
            AlgorithmKind::Usam | AlgorithmKind::Musam => 0.5 * rho * gn * gn,
            AlgorithmKind::Dnsam | AlgorithmKind::Sam => rho * gn,
        }
}

fn surface_name(alg: AlgorithmKind, rho: f64) -> String {
    match alg {
        AlgorithmKind::Sgd => "SGD on f".into(),
        AlgorithmKind::Usam | AlgorithmKind::Musam => {
            format!("USAM on f + (ρ/2)‖∇f‖², ρ = {rho}")
        }
        AlgorithmKind::Dnsam => format!("DNSAM on f + ρ‖∇f‖, ρ = {rho}"),
        AlgorithmKind::Sam => format!("SAM on f + ρ‖∇f‖, ρ = {rho}"),
    }
}

/// Draws the surfaces figure (2-D landscapes only).
pub fn draw_surfaces<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    r: &TrajectoriesReport,
    f: &dyn Landscape,
) -> Result<()> {
    let (w, _) = root.dim_in_pixel();
    let sc = (w as f64 / 1400.0).clamp(0.5, 3.0);
    let root = root
        .titled(
            &format!(
                "{} — sample paths on the surface each drift descends (white: discrete, red dashed: SDE)",
                r.header.config.display_title()
            ),
            ("sans-serif", (17.0 * sc).round()),
        )
        .map_err(draw_err)?;
    let na = r.header.config.algorithms.len();
    let cols = if na == 1 { 1 } else { 2 };
    let rows = na.div_ceil(cols);
    let cells = root.split_evenly((rows, cols));
    // Common extent: every sample path plus a margin.
    let (mut x0, mut x1, mut y0, mut y1) = (
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::INFINITY,
        f64::NEG_INFINITY,
    );
    for sys in &r.systems {
        for p in &sys.samples {
            for q in p {
                if q.len() == 2 && q[0].is_finite() && q[1].is_finite() {
                    x0 = x0.min(q[0]);
                    x1 = x1.max(q[0]);
                    y0 = y0.min(q[1]);
                    y1 = y1.max(q[1]);
                }
            }
        }
    }
    if !x0.is_finite() {
        (x0, x1, y0, y1) = (-1.0, 1.0, -1.0, 1.0);
    }
    let (mut mx, mut my) = (
        0.1 * (x1 - x0).max(0.2) + 0.05,
        0.1 * (y1 - y0).max(0.2) + 0.05,
    );
    if let Some(e) = r.header.config.surface_extent {
        (x0, x1, y0, y1) = (e[0], e[1], e[2], e[3]);
        (mx, my) = (0.0, 0.0);
    }
    let white = RGBColor(255, 255, 255);
    let red = RGBColor(255, 90, 90);
    for (ai, cell) in cells.iter().enumerate().take(na) {
        let (d, e) = (&r.systems[ai], &r.systems[na + ai]);
        let alg = d.algorithm;
        let rho = d.rho;
        let surface = move |x: f64, y: f64| implicit_loss(f, alg, rho, &[x, y]);
        let mut paths = Vec::new();
        for (sys, colour, dashed) in [(d, white, false), (e, red, true)] {
            for p in &sys.samples {
                paths.push(SurfacePath {
                    points: p.iter().map(|q| (q[0], q[1])).collect(),
                    colour,
                    dashed,
                });
            }
        }
        let title = surface_name(alg, rho);
        draw_surface_panel(
            cell,
            &SurfacePanel {
                title: &title,
                x_label: "x₀",
                y_label: "x₁",
                x_range: (x0 - mx, x1 + mx),
                y_range: (y0 - my, y1 + my),
                grid: 90,
                surface: &surface,
                paths,
                legend: vec![
                    (format!("{} (discrete)", alg.name()), white, false),
                    (format!("{}_sde", alg.name()), red, true),
                ],
            },
        )?;
    }
    Ok(())
}

/// Writes `trajectories.json`, `.csv`, `.png`, `.svg` (and `surfaces.png/.svg` for 2-D
/// landscapes) atomically.
pub fn write(r: &TrajectoriesReport, f: &dyn Landscape, dir: &Path) -> Result<Vec<PathBuf>> {
    let mut st = Staging::new(dir)?;
    st.bytes("trajectories.json", &to_json(r)?)?;
    st.bytes("trajectories.csv", csv(r).as_bytes())?;
    let na = r.header.config.algorithms.len() as u32;
    let no = r.systems[0].bands.len() as u32;
    let size = ((420 * na).max(700), 60 + 300 * no);
    st.with("trajectories.png", |p| {
        crate::plot::render_png(p, size, |a| draw_bands(a, r))
    })?;
    st.with("trajectories.svg", |p| {
        crate::plot::render_svg(p, size, |a| draw_bands(a, r))
    })?;
    if f.dim() == 2 {
        let rows = if na == 1 { 1 } else { na.div_ceil(2) };
        let ssize = (1400, 40 + 560 * rows);
        st.with("surfaces.png", |p| {
            crate::plot::render_png(p, ssize, |a| draw_surfaces(a, r, f))
        })?;
        st.with("surfaces.svg", |p| {
            crate::plot::render_svg(p, ssize, |a| draw_surfaces(a, r, f))
        })?;
    }
    st.commit()
}

/// The trajectories study in the registry.
pub struct Def(TrajectoriesStudy);

impl StudyDef for Def {
    type Config = TrajectoriesConfig;
    type Report = TrajectoriesReport;
    const NAME: &'static str = "trajectories";
    const ABOUT: &'static str =
        "E g(x_k) and E g(X_t) over time for each algorithm and its SDE, with bands; 2-D surfaces";
    const LONG_ABOUT: &'static str = "E g(x_k) and E g(X_t) over time for each algorithm and its SDE, with bands; 2-D surfaces.\n\nWithout CONFIG, runs the embedded default (experiments/trajectories_two_basin.toml): SGD, USAM, DNSAM and SAM beside their SDEs on the 2-D two-basin landscape. Writes trajectories.json, .csv, .png, .svg, and for 2-D landscapes surfaces.png and .svg, to --out (default plots/trajectories). Makes no pass/fail claims (exit 0).";
    const DEFAULT: Experiment = Experiment {
        path: "experiments/trajectories_two_basin.toml",
        text: crate::study::trajectories::DEFAULT_CONFIG,
    };
    const EXPERIMENTS: &'static [Experiment] = &[Self::DEFAULT];

    fn apply(c: &mut TrajectoriesConfig, o: &Overrides) -> Result<()> {
        o.paths_and_seed(Self::NAME, &mut c.paths, &mut c.seed)
    }
    fn build(config: TrajectoriesConfig) -> Result<Self> {
        TrajectoriesStudy::new(config).map(Def)
    }
    fn config(&self) -> &TrajectoriesConfig {
        &self.0.config
    }
    fn total_work(&self) -> u64 {
        self.0.total_work()
    }
    fn run(&self, threads: usize, progress: Option<Progress>) -> Result<TrajectoriesReport> {
        self.0.run(threads, progress)
    }
    fn table(r: &TrajectoriesReport) -> String {
        table(r)
    }
    fn write(&self, r: &TrajectoriesReport, dir: &Path) -> Result<Vec<PathBuf>> {
        write(r, self.0.landscape(), dir)
    }
    fn verdicts(r: &TrajectoriesReport) -> &[Verdict] {
        &r.verdicts
    }
    fn observations(r: &TrajectoriesReport) -> &[Observation] {
        &r.observations
    }
    // Memory and work estimate (checked before anything is allocated).
    fn budget(config: &TrajectoriesConfig, threads: usize) -> Result<crate::study::budget::Budget> {
        TrajectoriesStudy::budget(config, threads)
    }
}
