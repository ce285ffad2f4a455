//! Table, CSV and figures of the trajectories study.
//!
//! * `trajectories.png/.svg`: a grid of panels, one row per observable and one column per
//!   algorithm; each panel shows the discrete algorithm (solid) and its SDE (dashed): mean line,
//!   95 % CI of the mean (dark band) and 5–95 % quantile band (light band).
//! * `surfaces.png/.svg` (2-D landscapes only): per algorithm, the surface `F` its drift
//!   descends — `f` (SGD), `f + (ρ/2)‖∇f‖²` (USAM), `f + ρ‖∇f‖` (DNSAM, SAM; docs/theory.md §5)
//!   — as a heat map on a non-linear colour scale (named on the colour bar and in the caption
//!   under the panels), with the first sample paths of the discrete algorithm (white, solid)
//!   and its SDE (red, dashed) at every step, start ● and end ■ marked.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use plotters::coord::Shift;
use plotters::element::DashedPathElement;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::error::Result;
use crate::landscape::Landscape;
use crate::optim::AlgorithmKind;
use crate::output::{to_json, Staging};
use crate::plot::bands::{
    auto_y_range, draw_bands_with as draw_band_panel, draw_legend, legend_height, Band, BandExtras,
    BandFill, BandPanel, BandSeries, LegendCorner, LegendItem, LegendSample,
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

/// Legend font size (pixels at the default width) of the band grid.
const GRID_LEGEND_PX: f64 = 16.0;

/// The band grid's single legend: what the lines and bands of each system mean.
fn grid_legend(level: f64) -> Vec<LegendItem> {
    let ci = format!("{:.0} %", 100.0 * level);
    vec![
        LegendItem {
            text: format!(
                "discrete algorithm: mean (solid), {ci} CI of the mean (dark band), 5–95 % of paths (light band)"
            ),
            color: Some(0),
            sample: LegendSample::Series {
                dashed: false,
                bands: vec![(BandFill::Filled, 0.18), (BandFill::Filled, 0.5)],
            },
        },
        LegendItem {
            text: format!(
                "its SDE: mean (dashed), {ci} CI of the mean (dark band), 5–95 % of paths (hatched, dotted edges)"
            ),
            color: Some(1),
            sample: LegendSample::Series {
                dashed: true,
                bands: vec![(BandFill::Hatched, 0.45), (BandFill::Filled, 0.5)],
            },
        },
    ]
}

/// Draws the band grid (rows: observables, columns: algorithms) under one legend. The panels
/// of a row share their `y` range (one observable); the discrete algorithm's bands are filled,
/// the SDE's 5–95 % band is hatched with dotted edges so both stay visible where they overlap.
pub fn draw_bands<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    r: &TrajectoriesReport,
) -> Result<()> {
    let (w, _) = root.dim_in_pixel();
    let sc = (w as f64 / 1600.0).clamp(0.5, 3.0);
    let root =
        crate::plot::titled(root, &r.header.config.display_title(), 22.0 * sc).map_err(draw_err)?;
    let legend = grid_legend(r.header.config.level);
    let (legend_area, grid) =
        root.split_vertically(legend_height(legend.len(), 1, GRID_LEGEND_PX * sc) + 6);
    draw_legend(
        &legend_area.margin(0, 0, (40.0 * sc) as i32, 0),
        &legend,
        1,
        GRID_LEGEND_PX * sc,
    )?;
    let na = r.header.config.algorithms.len();
    let no = r.systems[0].bands.len();
    let cells = grid.split_evenly((no, na));
    let mk = |sys: &crate::study::trajectories::SystemTrajectories, oi: usize, color: usize| {
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
                    opacity: 0.18,
                },
                Band {
                    lo: b.ci_lo.clone(),
                    hi: b.ci_hi.clone(),
                    opacity: 0.5,
                },
            ],
        }
    };
    let extras = BandExtras {
        // Discrete: both bands filled; SDE: the 5–95 % band hatched, the CI filled.
        fills: vec![
            vec![BandFill::Filled, BandFill::Filled],
            vec![BandFill::Hatched, BandFill::Filled],
        ],
        ..BandExtras::default()
    };
    for oi in 0..no {
        // One y range per observable (row): every algorithm's and SDE's lines and bands.
        let row: Vec<BandSeries> = (0..na)
            .flat_map(|ai| [mk(&r.systems[ai], oi, 0), mk(&r.systems[na + ai], oi, 1)])
            .collect();
        let y_range = auto_y_range(&row, 0.0);
        for ai in 0..na {
            let (d, e) = (&r.systems[ai], &r.systems[na + ai]);
            let title = format!(
                "{} (ρ = {}): {}",
                d.algorithm.name().to_uppercase(),
                d.rho,
                d.bands[oi].observable.label()
            );
            let series = vec![mk(d, oi, 0), mk(e, oi, 1)];
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
                    y_range,
                    log_y: false,
                    series,
                    hlines: vec![],
                    legend: vec![],
                    legend_corner: LegendCorner::UpperRight,
                },
                &extras,
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

/// Panel title: the algorithm and the surface `F` its drift descends.
fn surface_name(alg: AlgorithmKind, rho: f64) -> String {
    match alg {
        AlgorithmKind::Sgd => "SGD: F = f".into(),
        AlgorithmKind::Usam | AlgorithmKind::Musam => {
            format!("USAM: F = f + (ρ/2)‖∇f‖², ρ = {rho}")
        }
        AlgorithmKind::Dnsam => format!("DNSAM: F = f + ρ‖∇f‖, ρ = {rho}"),
        AlgorithmKind::Sam => format!("SAM: F = f + ρ‖∇f‖, ρ = {rho}"),
    }
}

/// Colours of the surfaces figure's paths: discrete white (solid), SDE red (dashed).
const PATH_DISCRETE: RGBColor = RGBColor(255, 255, 255);
const PATH_SDE: RGBColor = RGBColor(255, 90, 90);

/// The surfaces figure's caption lines (under the panels): what `F` and the colours are, and
/// how the paths are drawn.
fn surfaces_caption(r: &TrajectoriesReport) -> [String; 2] {
    let c = &r.header.config;
    let n = c.sample_paths.min(c.paths);
    let every = if r.sample_every == 1 {
        format!("at every step (η = {})", c.eta)
    } else {
        format!("every {} steps (η = {})", r.sample_every, c.eta)
    };
    [
        "F: the surface each algorithm's SDE drift descends (panel titles; f is the landscape). Colour is NON-LINEAR: log₁₀(1 + (F − min F)/s), s = the 5 % quantile of F − min F on the grid; bar ticks in F − min F.".into(),
        format!(
            "Paths: the first {n} sample paths of each system {every}, not thinned; the SDE path per η step of its {}-substep Euler–Maruyama run. Parts outside the frame are not drawn.",
            c.substeps
        ),
    ]
}

/// Draws the surfaces figure (2-D landscapes only).
pub fn draw_surfaces<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    r: &TrajectoriesReport,
    f: &dyn Landscape,
) -> Result<()> {
    let (w, h) = root.dim_in_pixel();
    let sc = (w as f64 / 1400.0).clamp(0.5, 3.0);
    let root = crate::plot::titled(
        root,
        &format!(
            "{} — sample paths on the surface F each drift descends",
            r.header.config.display_title()
        ),
        17.0 * sc,
    )
    .map_err(draw_err)?;
    // Caption and legend strip at the bottom.
    let caption = surfaces_caption(r);
    let cap_px = crate::plot::font_size(13.0 * sc);
    let line_h = (1.5 * cap_px) as u32;
    let foot_h = line_h * (caption.len() as u32 + 1) + (8.0 * sc) as u32;
    let (_, rh) = root.dim_in_pixel();
    let (panels, foot) = root.split_vertically(rh.saturating_sub(foot_h).min(h));
    draw_surface_legend(&foot, sc)?;
    let text = TextStyle::from(crate::plot::font(13.0 * sc)).pos(Pos::new(HPos::Left, VPos::Top));
    for (i, line) in caption.iter().enumerate() {
        foot.draw(&Text::new(
            line.clone(),
            (
                (20.0 * sc) as i32,
                ((i + 1) as u32 * line_h) as i32 + (4.0 * sc) as i32,
            ),
            text.clone(),
        ))
        .map_err(draw_err)?;
    }
    let root = panels;
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
    for (ai, cell) in cells.iter().enumerate().take(na) {
        let (d, e) = (&r.systems[ai], &r.systems[na + ai]);
        let alg = d.algorithm;
        let rho = d.rho;
        let surface = move |x: f64, y: f64| implicit_loss(f, alg, rho, &[x, y]);
        let mut paths = Vec::new();
        for (sys, colour, dashed) in [(d, PATH_DISCRETE, false), (e, PATH_SDE, true)] {
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
                legend: vec![],
            },
        )?;
    }
    Ok(())
}

/// One legend row for the surfaces figure, on a dark swatch so the white path shows.
fn draw_surface_legend<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, sc: f64) -> Result<()> {
    let px = crate::plot::font_size(13.0 * sc);
    let h = (1.5 * px) as i32;
    let (w, _) = area.dim_in_pixel();
    let x0 = (20.0 * sc) as i32;
    let x1 = (w as i32 - x0).min(x0 + (900.0 * sc) as i32);
    let bg = crate::plot::surface::viridis(0.1);
    area.draw(&Rectangle::new([(x0, 0), (x1, h)], bg.filled()))
        .map_err(draw_err)?;
    let y = h / 2;
    let seg = (36.0 * sc) as i32;
    let r = (3.5 * sc).round().max(2.0) as i32;
    let style = crate::plot::font(13.0 * sc)
        .color(&WHITE)
        .pos(Pos::new(HPos::Left, VPos::Center));
    let line = |c: RGBColor| c.stroke_width((1.5 * sc).round().max(1.0) as u32);
    let mut x = x0 + (10.0 * sc) as i32;
    area.draw(&PathElement::new(
        vec![(x, y), (x + seg, y)],
        line(PATH_DISCRETE),
    ))
    .map_err(draw_err)?;
    area.draw(&Text::new(
        "discrete algorithm",
        (x + seg + 6, y),
        style.clone(),
    ))
    .map_err(draw_err)?;
    x += (220.0 * sc) as i32;
    area.draw(&DashedPathElement::new(
        vec![(x, y), (x + seg, y)],
        (6.0 * sc) as u32,
        (4.0 * sc) as u32,
        line(PATH_SDE),
    ))
    .map_err(draw_err)?;
    area.draw(&Text::new("its SDE", (x + seg + 6, y), style.clone()))
        .map_err(draw_err)?;
    x += (150.0 * sc) as i32;
    area.draw(&Circle::new((x + r, y), r, WHITE.filled()))
        .map_err(draw_err)?;
    area.draw(&Circle::new((x + r, y), r, BLACK))
        .map_err(draw_err)?;
    area.draw(&Text::new("start", (x + 2 * r + 6, y), style.clone()))
        .map_err(draw_err)?;
    x += (100.0 * sc) as i32;
    area.draw(&Rectangle::new(
        [(x, y - r), (x + 2 * r, y + r)],
        WHITE.filled(),
    ))
    .map_err(draw_err)?;
    area.draw(&Rectangle::new([(x, y - r), (x + 2 * r, y + r)], BLACK))
        .map_err(draw_err)?;
    area.draw(&Text::new(
        "end (T) of each path",
        (x + 2 * r + 6, y),
        style,
    ))
    .map_err(draw_err)?;
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
    let size = ((420 * na).max(700), 110 + 300 * no);
    st.with("trajectories.png", |p| {
        crate::plot::render_png(p, size, |a| draw_bands(a, r))
    })?;
    st.with("trajectories.svg", |p| {
        crate::plot::render_svg(p, size, |a| draw_bands(a, r))
    })?;
    if f.dim() == 2 {
        let rows = if na == 1 { 1 } else { na.div_ceil(2) };
        let ssize = (1400, 110 + 560 * rows);
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
