//! Table, CSVs and figures of the kinks study.
//!
//! Files: `kinks.json` (the report), `kinks_runs.csv` (one row per run), `kinks_locations.csv`
//! (one row per merged breakpoint group), `kinks_trace.csv` (kinks along each run),
//! `kinks_comparisons.csv` (the sign tests), `kinks_functions.csv` (the fitted functions on a
//! grid), `kinks_functions.png/.svg` (fits with data and marked kinks) and
//! `kinks_counts.png/.svg` (kink counts and final losses per seed).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use plotters::coord::Shift;
use plotters::prelude::*;

use crate::error::{Error, Result};
use crate::landscape::ReluNet1d;
use crate::output::{to_json, Staging};
use crate::plot::dots::{draw_dot_panel, DotPanel, DotSeries};
use crate::plot::{draw_err, PALETTE};
use crate::registry::{Experiment, Overrides, Progress, StudyDef};
use crate::study::kinks::{KinksConfig, KinksReport, KinksStudy, RunRecord};
use crate::study::verdict::{fmt_num, summary_line, Observation, Verdict};

/// Points of the grid the fitted functions are tabulated and drawn on.
const GRID: usize = 401;
/// Seeds drawn in the functions figure (columns).
const DRAWN_SEEDS: usize = 4;

fn runs_of<'a>(r: &'a KinksReport, method: &str) -> Vec<&'a RunRecord> {
    r.runs.iter().filter(|x| x.method == method).collect()
}

fn run_of<'a>(r: &'a KinksReport, method: &str, seed: usize) -> Option<&'a RunRecord> {
    r.runs.iter().find(|x| x.method == method && x.seed == seed)
}

/// The printed summary.
pub fn table(r: &KinksReport) -> String {
    let c = &r.header.config;
    let mut s = String::new();
    let _ = writeln!(s, "{}", c.display_title());
    let _ = writeln!(
        s,
        "{} · {} seeds · seed {} · {} thread(s) · {:.1} s",
        r.model, c.seeds, r.header.seed, r.header.threads, r.header.elapsed_s
    );
    let _ = writeln!(
        s,
        "kink = merged breakpoint group inside ({}, {}) with |slope change| > {} × the largest (merge distance {})",
        r.data_range.0, r.data_range.1, c.kinks.min_relative_slope_change, c.kinks.merge_distance
    );
    let _ = writeln!(s);
    let _ = write!(s, "{:<6}", "seed");
    for m in &c.methods {
        let _ = write!(s, " {:>26}", format!("{} kinks (loss)", m.name));
    }
    let _ = writeln!(s);
    for seed in 0..c.seeds {
        let _ = write!(s, "{seed:<6}");
        for m in &c.methods {
            let cell = match run_of(r, &m.name, seed) {
                Some(x) if x.diverged => format!("diverged @ {}", x.steps),
                Some(x) => format!(
                    "{} ({}{})",
                    x.kink_count,
                    fmt_num(x.final_loss),
                    if x.reached_target { "" } else { ", budget" }
                ),
                None => "-".into(),
            };
            let _ = write!(s, " {cell:>26}");
        }
        let _ = writeln!(s);
    }
    let _ = writeln!(s);
    let _ = writeln!(
        s,
        "{:<10} {:>6} {:>9} {:>12} {:>20} {:>12} {:>10}",
        "method", "ρ", "schedule", "median kinks", "[CI, coverage]", "median loss", "reached"
    );
    for m in &c.methods {
        let runs = runs_of(r, &m.name);
        let ok: Vec<&RunRecord> = runs.iter().copied().filter(|x| !x.diverged).collect();
        let kinks: Vec<f64> = ok.iter().map(|x| x.kink_count as f64).collect();
        let losses: Vec<f64> = ok.iter().map(|x| x.final_loss).collect();
        let k = (!kinks.is_empty()).then(|| crate::stats::median_ci(&kinks, c.verdict.level));
        let l = (!losses.is_empty()).then(|| crate::stats::median_ci(&losses, 0.5));
        let _ = writeln!(
            s,
            "{:<10} {:>6} {:>9} {:>12} {:>20} {:>12} {:>10}",
            m.name,
            m.rho,
            m.schedule.as_str(),
            k.map(|k| fmt_num(k.median)).unwrap_or("-".into()),
            k.map(|k| format!("[{}, {}] {:.3}", k.lo, k.hi, k.coverage))
                .unwrap_or_default(),
            l.map(|l| fmt_num(l.median)).unwrap_or("-".into()),
            format!(
                "{}/{}",
                runs.iter().filter(|x| x.reached_target).count(),
                runs.len()
            )
        );
    }
    let _ = writeln!(s);
    let _ = writeln!(s, "sign tests (pairs = seeds with both runs finite):");
    for x in &r.comparisons {
        let _ = writeln!(
            s,
            "  {} vs {}: {} fewer, {} more, {} tied of {}; one-sided p(fewer) = {}, p(more) = {}, two-sided p = {}",
            x.sam,
            x.other,
            x.wins,
            x.losses,
            x.ties,
            x.pairs,
            fmt_num(x.p_fewer),
            fmt_num(x.p_more),
            fmt_num(x.p_two_sided)
        );
    }
    let _ = writeln!(s);
    let _ = writeln!(s, "verdicts:");
    for v in &r.verdicts {
        let _ = writeln!(s, "{}", v.line(true));
        let _ = writeln!(s, "      {}", v.reason);
    }
    let _ = writeln!(s, "information:");
    for o in &r.observations {
        let _ = writeln!(s, "{}", o.line());
    }
    for w in &r.header.warnings {
        let _ = writeln!(s, "warning: {w}");
    }
    let _ = writeln!(s, "\n{}", summary_line(&r.verdicts));
    s
}

/// `kinks_runs.csv`: one row per run.
pub fn runs_csv(r: &KinksReport) -> String {
    let c = &r.header.config;
    let mut s = String::from("seed,method,rho,normalized,schedule,steps,final_loss,reached_target,diverged,breakpoints_in_range,kinks\n");
    for x in &r.runs {
        let m = c.methods.iter().find(|m| m.name == x.method);
        let _ = writeln!(
            s,
            "{},{},{},{},{},{},{},{},{},{},{}",
            x.seed,
            x.method,
            m.map(|m| m.rho).unwrap_or(f64::NAN),
            m.map(|m| m.normalized).unwrap_or(false),
            m.map(|m| m.schedule.as_str()).unwrap_or(""),
            x.steps,
            x.final_loss,
            x.reached_target,
            x.diverged,
            x.breakpoints_in_range,
            x.kink_count
        );
    }
    s
}

/// `kinks_locations.csv`: every merged breakpoint group inside the data range.
pub fn locations_csv(r: &KinksReport) -> String {
    let mut s = String::from("seed,method,x,slope_change,units,counted\n");
    for x in &r.runs {
        for g in &x.groups {
            let _ = writeln!(
                s,
                "{},{},{},{},{},{}",
                x.seed, x.method, g.x, g.slope_change, g.units, g.counted
            );
        }
    }
    s
}

/// `kinks_trace.csv`: kinks along every run.
pub fn trace_csv(r: &KinksReport) -> String {
    let mut s = String::from("seed,method,step,loss,kinks,reason,loss_level\n");
    for x in &r.runs {
        for t in &x.trace {
            let _ = writeln!(
                s,
                "{},{},{},{},{},{},{}",
                x.seed,
                x.method,
                t.step,
                t.loss,
                t.kinks,
                t.reason,
                t.level.map(|l| l.to_string()).unwrap_or_default()
            );
        }
    }
    s
}

/// `kinks_comparisons.csv`: the sign tests.
pub fn comparisons_csv(r: &KinksReport) -> String {
    let mut s = String::from("sam,other,pairs,wins,losses,ties,p_fewer,p_more,p_two_sided,sam_median,sam_lo,sam_hi,sam_coverage,other_median,other_lo,other_hi,other_coverage,sam_median_final_loss,other_median_final_loss\n");
    let m = |x: Option<crate::stats::MedianCi>| match x {
        Some(m) => format!("{},{},{},{}", m.median, m.lo, m.hi, m.coverage),
        None => ",,,".into(),
    };
    for x in &r.comparisons {
        let _ = writeln!(
            s,
            "{},{},{},{},{},{},{},{},{},{},{},{},{}",
            x.sam,
            x.other,
            x.pairs,
            x.wins,
            x.losses,
            x.ties,
            x.p_fewer,
            x.p_more,
            x.p_two_sided,
            m(x.sam_median),
            m(x.other_median),
            x.sam_median_final_loss,
            x.other_median_final_loss
        );
    }
    s
}

fn net_of(c: &KinksConfig) -> Result<ReluNet1d> {
    ReluNet1d::new(c.data.x.clone(), c.data.y.clone(), c.hidden)
}

/// The plotted `x` range: the data range with a margin of 3 % on each side (kinks are counted
/// inside the data range only; far outside it the fits extrapolate linearly and steeply, which
/// would squash the interesting part of the figure).
fn x_extent(r: &KinksReport) -> (f64, f64) {
    let (lo, hi) = r.data_range;
    let pad = 0.03 * (hi - lo);
    (lo - pad, hi + pad)
}

fn grid(r: &KinksReport) -> Vec<f64> {
    let (lo, hi) = x_extent(r);
    (0..GRID)
        .map(|k| lo + (hi - lo) * k as f64 / (GRID - 1) as f64)
        .collect()
}

/// `kinks_functions.csv`: every fitted function on a grid over the plotted range.
pub fn functions_csv(r: &KinksReport) -> Result<String> {
    let net = net_of(&r.header.config)?;
    let xs = grid(r);
    let mut s = String::from("seed,method,x,f\n");
    for run in r.runs.iter().filter(|x| !x.diverged) {
        for &x in &xs {
            let _ = writeln!(
                s,
                "{},{},{},{}",
                run.seed,
                run.method,
                x,
                net.predict(&run.theta, x)
            );
        }
    }
    Ok(s)
}

/// The fitted functions: one row per method, one column per seed (the first
/// [`DRAWN_SEEDS`]); data as black dots, counted kinks as red triangles on the curve, merged
/// breakpoints below the slope threshold as small grey ticks on the axis.
pub fn draw_functions<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    r: &KinksReport,
) -> Result<()> {
    let c = &r.header.config;
    let net = net_of(c)?;
    let (w, _) = root.dim_in_pixel();
    let sc = (w as f64 / 1800.0).clamp(0.5, 3.0);
    let font = |v: f64| crate::plot::font(v * sc);
    let cols = c.seeds.min(DRAWN_SEEDS);
    let drawn = if cols < c.seeds {
        format!("seeds 0–{} of {}", cols - 1, c.seeds)
    } else {
        format!("all {} seeds", c.seeds)
    };
    let root = crate::plot::titled(root, &format!(
                "{} — fitted functions, {drawn} (dots: data; ▲: counted kinks; grey ticks: uncounted breakpoints)",
                c.display_title()
            ), 20.0)
        .map_err(draw_err)?;
    let rows = c.methods.len();
    let cells = root.split_evenly((rows, cols));
    let xs = grid(r);
    // One y range for every panel: the data and every drawn curve, so nothing is clipped.
    let (ymin, ymax) = {
        let mut lo = c.data.y.iter().cloned().fold(f64::INFINITY, f64::min);
        let mut hi = c.data.y.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        for run in r.runs.iter().filter(|x| !x.diverged && x.seed < cols) {
            for &x in &xs {
                let v = net.predict(&run.theta, x);
                if v.is_finite() {
                    lo = lo.min(v);
                    hi = hi.max(v);
                }
            }
        }
        let pad = 0.06 * (hi - lo).max(1e-9);
        (lo - pad, hi + pad)
    };
    let (x0, x1) = x_extent(r);
    for (mi, m) in c.methods.iter().enumerate() {
        for seed in 0..cols {
            let area = &cells[mi * cols + seed];
            let Some(run) = run_of(r, &m.name, seed) else {
                continue;
            };
            let caption = if run.diverged {
                format!("{} · seed {seed}: diverged", m.name)
            } else {
                format!(
                    "{} · seed {seed}: {} kinks · loss {}",
                    m.name,
                    run.kink_count,
                    fmt_num(run.final_loss)
                )
            };
            let mut chart = ChartBuilder::on(area)
                .caption(caption, font(16.0))
                .margin((8.0 * sc) as u32)
                .x_label_area_size((28.0 * sc) as u32)
                .y_label_area_size((40.0 * sc) as u32)
                .build_cartesian_2d(x0..x1, ymin..ymax)
                .map_err(draw_err)?;
            chart
                .configure_mesh()
                .light_line_style(WHITE.mix(0.0))
                .label_style(font(12.0))
                .x_labels(5)
                .y_labels(5)
                .draw()
                .map_err(draw_err)?;
            let colour = PALETTE[mi % PALETTE.len()];
            if !run.diverged {
                // Everything lies inside the range by construction; clamp guards rounding.
                let clip = |v: f64| v.clamp(ymin, ymax);
                chart
                    .draw_series(LineSeries::new(
                        xs.iter().map(|&x| (x, clip(net.predict(&run.theta, x)))),
                        colour.stroke_width((2.5 * sc).max(1.0) as u32),
                    ))
                    .map_err(draw_err)?;
                let tick = 0.03 * (ymax - ymin);
                for g in run.groups.iter().filter(|g| !g.counted) {
                    chart
                        .draw_series(std::iter::once(PathElement::new(
                            vec![(g.x, ymin), (g.x, ymin + tick)],
                            RGBColor(150, 150, 150).stroke_width(1),
                        )))
                        .map_err(draw_err)?;
                }
                chart
                    .draw_series(run.groups.iter().filter(|g| g.counted).map(|g| {
                        TriangleMarker::new(
                            (g.x, clip(net.predict(&run.theta, g.x))),
                            (5.0 * sc) as u32,
                            RGBColor(200, 0, 0).filled(),
                        )
                    }))
                    .map_err(draw_err)?;
            }
            chart
                .draw_series(
                    c.data
                        .x
                        .iter()
                        .zip(&c.data.y)
                        .map(|(&x, &y)| Circle::new((x, y), (4.0 * sc) as u32, BLACK.filled())),
                )
                .map_err(draw_err)?;
        }
    }
    Ok(())
}

/// Kink counts and final losses per seed, one series per method.
pub fn draw_counts<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    r: &KinksReport,
) -> Result<()> {
    let c = &r.header.config;
    let (w, _) = root.dim_in_pixel();
    let sc = (w as f64 / 1600.0).clamp(0.5, 3.0);
    let root = crate::plot::titled(root, &c.display_title(), 20.0 * sc).map_err(draw_err)?;
    let panels = root.split_evenly((1, 2));
    let cats: Vec<String> = (0..c.seeds).map(|s| format!("seed {s}")).collect();
    let series = |get: &dyn Fn(&RunRecord) -> f64| -> Vec<DotSeries> {
        c.methods
            .iter()
            .map(|m| DotSeries {
                label: m.name.clone(),
                values: (0..c.seeds)
                    .map(|seed| match run_of(r, &m.name, seed) {
                        Some(x) if !x.diverged => {
                            let v = get(x);
                            (v, v, v)
                        }
                        _ => (f64::NAN, f64::NAN, f64::NAN),
                    })
                    .collect(),
            })
            .collect()
    };
    draw_dot_panel(
        &panels[0],
        &DotPanel {
            title: "kinks of the final fit (same initialisation per seed)",
            y_label: "kinks",
            categories: cats.clone(),
            series: series(&|x| x.kink_count as f64),
            reference: None,
            log_y: false,
            unit_interval: false,
        },
    )?;
    let target = format!("final training loss (target {})", fmt_num(c.loss_target));
    draw_dot_panel(
        &panels[1],
        &DotPanel {
            title: &target,
            y_label: "½ Σ (f(x_i) − y_i)²",
            categories: cats,
            series: series(&|x| x.final_loss),
            reference: Some(("loss target".into(), vec![c.loss_target; c.seeds])),
            log_y: true,
            unit_interval: false,
        },
    )?;
    Ok(())
}

/// Writes every file into `dir` atomically.
pub fn write(r: &KinksReport, dir: &Path) -> Result<Vec<PathBuf>> {
    let mut st = Staging::new(dir)?;
    st.bytes("kinks.json", &to_json(r)?)?;
    st.bytes("kinks_runs.csv", runs_csv(r).as_bytes())?;
    st.bytes("kinks_locations.csv", locations_csv(r).as_bytes())?;
    st.bytes("kinks_trace.csv", trace_csv(r).as_bytes())?;
    st.bytes("kinks_comparisons.csv", comparisons_csv(r).as_bytes())?;
    st.bytes("kinks_functions.csv", functions_csv(r)?.as_bytes())?;
    let rows = r.header.config.methods.len() as u32;
    let fsize = (1800, (330 * rows + 60).max(400));
    st.with("kinks_functions.png", |p| {
        crate::plot::render_png(p, fsize, |a| draw_functions(a, r))
    })?;
    st.with("kinks_functions.svg", |p| {
        crate::plot::render_svg(p, fsize, |a| draw_functions(a, r))
    })?;
    st.with("kinks_counts.png", |p| {
        crate::plot::render_png(p, (1600, 650), |a| draw_counts(a, r))
    })?;
    st.with("kinks_counts.svg", |p| {
        crate::plot::render_svg(p, (1600, 650), |a| draw_counts(a, r))
    })?;
    st.commit()
}

/// Seeds of `--profile paper`.
pub const PAPER_SEEDS: usize = 20;

/// Rough single-core CPU cost of one step (seconds) per gradient evaluation plus the loss
/// check, measured on the development machine (2 shared cores): a gradient of the 100-unit net
/// on 12 points ≈ 1.1 µs, the loss ≈ 0.6 µs (a SAM run of 10⁶ steps ≈ 3 s).
const GRADIENT_SECONDS: f64 = 1.1e-6;
const LOSS_SECONDS: f64 = 0.6e-6;

/// Upper estimate of the wall time on `cores` cores if every run used its whole budget.
pub fn estimated_seconds(c: &KinksConfig, cores: usize) -> f64 {
    let per_seed: f64 = c
        .methods
        .iter()
        .map(|m| {
            let grads = if m.rho > 0.0 { 2.0 } else { 1.0 };
            c.max_steps as f64 * (grads * GRADIENT_SECONDS + LOSS_SECONDS)
        })
        .sum();
    per_seed * c.seeds as f64 / cores.max(1) as f64
}

/// The kinks study in the registry.
pub struct Def(KinksStudy);

impl StudyDef for Def {
    type Config = KinksConfig;
    type Report = KinksReport;
    const NAME: &'static str = "kinks";
    const ABOUT: &'static str =
        "Kinks of 2-layer ReLU fits in 1-D: normalized SAM vs GD (and GD with SAM's decay), sign test over seeds";
    const LONG_ABOUT: &'static str = "Kinks of 2-layer ReLU fits in 1-D: normalized SAM vs GD (and GD with SAM's decay), sign test over seeds.\n\nWithout CONFIG, runs the embedded default (experiments/kinks.toml): a 100-unit ReLU net with hidden biases on the 12 points of Paper 2's notebook, loss ½Σ(f(x_i) − y_i)², trained full batch from the same initialisation per seed by GD (constant rate), normalized SAM (ρ = 0.3, rate decaying linearly to 0 as in the notebook), GD with the same decay (control) and, for information, SAM at the constant rate, for up to 10⁶ steps or until the loss is ≤ 1e-5; kinks = breakpoints inside the data range, merged within 0.01, with slope change > 1 % of the largest. Verdict: SAM's median kink count below each GD variant's (one-sided sign test). Writes kinks.json, kinks_*.csv, kinks_functions.png/.svg and kinks_counts.png/.svg to --out (default plots/kinks). --seeds sets the number of seeds, --seed the master seed, --profile paper runs 20 seeds.";
    const DEFAULT: Experiment = Experiment {
        path: "experiments/kinks.toml",
        text: crate::study::kinks::DEFAULT_CONFIG,
    };
    const EXPERIMENTS: &'static [Experiment] = &[Self::DEFAULT];

    fn apply(c: &mut KinksConfig, o: &Overrides) -> Result<()> {
        if o.paths.is_some() {
            return Err(Overrides::unsupported(Self::NAME, "--paths"));
        }
        match o.profile.as_deref() {
            None => {}
            Some("paper") => c.seeds = PAPER_SEEDS,
            Some(other) => {
                return Err(Error::config(
                    "--profile",
                    other,
                    "must be `paper` (the only preset of the kinks study)",
                ))
            }
        }
        if let Some(n) = o.seeds {
            c.seeds = n;
        }
        if let Some(s) = o.seed {
            c.seed = s;
        }
        if o.profile.is_some() {
            eprintln!(
                "profile paper: {} seeds × {} methods × ≤ {} steps; estimated ≤ {:.0} s on 2 cores (an upper estimate: GD runs usually stop early at the loss target)",
                c.seeds,
                c.methods.len(),
                c.max_steps,
                estimated_seconds(c, 2)
            );
        }
        Ok(())
    }
    fn build(config: KinksConfig) -> Result<Self> {
        KinksStudy::new(config).map(Def)
    }
    fn config(&self) -> &KinksConfig {
        &self.0.config
    }
    fn total_work(&self) -> u64 {
        self.0.total_work()
    }
    fn run(&self, threads: usize, progress: Option<Progress>) -> Result<KinksReport> {
        self.0.run(threads, progress)
    }
    fn table(r: &KinksReport) -> String {
        table(r)
    }
    fn write(&self, r: &KinksReport, dir: &Path) -> Result<Vec<PathBuf>> {
        write(r, dir)
    }
    fn verdicts(r: &KinksReport) -> &[Verdict] {
        &r.verdicts
    }
    fn observations(r: &KinksReport) -> &[Observation] {
        &r.observations
    }
    // Memory and work estimate (checked before anything is allocated).
    fn budget(config: &KinksConfig, threads: usize) -> Result<crate::study::budget::Budget> {
        KinksStudy::budget(config, threads)
    }
}
