//! Table, CSV and figure of the flatness study.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use plotters::coord::Shift;
use plotters::prelude::*;

use crate::error::Result;
use crate::output::{to_json, Staging};
use crate::plot::dots::{draw_dot_panel, DotPanel, DotSeries};
use crate::plot::draw_err;
use crate::registry::{Experiment, Overrides, Progress, StudyDef};
use crate::report::csv::{self, Table};
use crate::study::flatness::{
    ExitStats, FlatnessConfig, FlatnessReport, FlatnessStudy, SystemResult,
};
use crate::study::verdict::{Observation, Verdict};

fn ci(m: &crate::stats::MeanCi) -> String {
    format!("{:.4} [{:.4}, {:.4}]", m.mean, m.lo, m.hi)
}

fn systems_table(s: &mut String, systems: &[SystemResult]) {
    let _ = writeln!(
        *s,
        "{:<10} {:>5} {:>28} {:>30} {:>6} {:>30} {:>6} {:>26}",
        "system",
        "ρ",
        "flat fraction (95% CI)",
        "exit time flat (CI)",
        "cens",
        "exit time sharp (CI)",
        "cens",
        "final tr H (CI)"
    );
    for x in systems {
        let _ = writeln!(
            *s,
            "{:<10} {:>5} {:>28} {:>30} {:>6} {:>30} {:>6} {:>26}",
            x.label,
            x.rho,
            ci(&x.flat_fraction),
            format!("{} (n={})", ci(&x.exit_flat.mean), x.exit_flat.exited),
            x.exit_flat.censored,
            format!("{} (n={})", ci(&x.exit_sharp.mean), x.exit_sharp.exited),
            x.exit_sharp.censored,
            ci(&x.final_trace_hessian),
        );
    }
    let _ = writeln!(*s);
    let _ = writeln!(
        *s,
        "Kramers (exponential MLE, censoring included) mean exit times: flat / sharp"
    );
    for x in systems {
        let _ = writeln!(
            *s,
            "  {:<10} {:>9.3} [{:.3}, {:.3}]   {:>9.3} [{:.3}, {:.3}]",
            x.label,
            x.exit_flat.mle_mean,
            x.exit_flat.mle_ci[0],
            x.exit_flat.mle_ci[1],
            x.exit_sharp.mle_mean,
            x.exit_sharp.mle_ci[0],
            x.exit_sharp.mle_ci[1]
        );
    }
}

/// The printed summary.
pub fn table(r: &FlatnessReport) -> String {
    let mut s = String::new();
    let c = &r.header.config;
    let _ = writeln!(s, "{}", c.display_title());
    let _ = writeln!(
        s,
        "{} · σ = {} · η = {} · T = {} · {} paths · seed {} · {} thread(s) · {:.1} s",
        r.landscape,
        c.sigma,
        c.eta,
        c.horizon,
        c.paths,
        r.header.seed,
        r.header.threads,
        r.header.elapsed_s
    );
    let _ = writeln!(
        s,
        "barrier ΔF = {:.4}, SGD temperature ησ²/2 = {:.4} (ΔF/T = {:.2}); exit times between cores {{f ≤ {} ΔF}} of the two basins; observed-exit means are biased low by censoring — see the MLE column",
        r.barrier,
        r.temperature,
        r.barrier / r.temperature,
        c.core
    );
    let _ = writeln!(s);
    let _ = writeln!(s, "preference run (radii `rho`; verdict (a)):");
    systems_table(&mut s, &r.systems);
    let _ = writeln!(s, "\nsmall-ρ run (radii `rho_small`; verdict (b)):");
    systems_table(&mut s, &r.small_rho_systems);
    let _ = writeln!(s);
    let st = &c.stationary;
    let _ = writeln!(
        s,
        "stationary loss on f = ½xᵀHx (d = {}, tr H = {}, η = {}, ρ = {}, σ = {}, {} paths, average over t ∈ ({}, {}]):",
        st.eigenvalues.len(),
        st.eigenvalues.iter().sum::<f64>(),
        st.eta,
        st.rho,
        st.sigma,
        st.paths,
        st.burn_in,
        st.horizon
    );
    for x in &r.stationary {
        let _ = writeln!(
            s,
            "  {:<10} measured {}   formula {:.6}   exact {:.6}",
            x.system,
            ci(&x.measured),
            x.formula,
            x.exact
        );
    }
    let _ = writeln!(s);
    let _ = writeln!(s, "verdicts:");
    for v in &r.verdicts {
        let _ = writeln!(s, "{}", v.line(true));
    }
    let _ = writeln!(
        s,
        "\ninformation — the (b) comparison at the preference radii (first-order SDE not expected to hold there):"
    );
    for o in &r.observations {
        let _ = writeln!(s, "{}", o.line());
    }
    for w in &r.header.warnings {
        let _ = writeln!(s, "warning: {w}");
    }
    let n = r.verdicts.iter().filter(|v| v.verdict == "pass").count();
    let _ = writeln!(s, "\n{n} of {} verdicts pass", r.verdicts.len());
    s
}

/// `flatness_systems.csv`: one row per system of the preference run (`run = preference`) and of
/// the small-radius run (`run = small_rho`).
pub fn systems_csv(r: &FlatnessReport) -> String {
    let mut t = Table::new(&[
        "run",
        "system",
        "kind",
        "rho",
        "flat_fraction",
        "flat_lo",
        "flat_hi",
        "exit_flat_mean",
        "exit_flat_lo",
        "exit_flat_hi",
        "exit_flat_n",
        "exit_flat_censored",
        "exit_flat_mle",
        "exit_sharp_mean",
        "exit_sharp_lo",
        "exit_sharp_hi",
        "exit_sharp_n",
        "exit_sharp_censored",
        "exit_sharp_mle",
        "trace_h",
        "trace_h_lo",
        "trace_h_hi",
        "final_loss",
        "diverged",
    ]);
    for (run, x) in r
        .systems
        .iter()
        .map(|x| ("preference", x))
        .chain(r.small_rho_systems.iter().map(|x| ("small_rho", x)))
    {
        t.row(&[
            &run,
            &x.label,
            &x.kind,
            &x.rho,
            &x.flat_fraction.mean,
            &x.flat_fraction.lo,
            &x.flat_fraction.hi,
            &x.exit_flat.mean.mean,
            &x.exit_flat.mean.lo,
            &x.exit_flat.mean.hi,
            &x.exit_flat.exited,
            &x.exit_flat.censored,
            &x.exit_flat.mle_mean,
            &x.exit_sharp.mean.mean,
            &x.exit_sharp.mean.lo,
            &x.exit_sharp.mean.hi,
            &x.exit_sharp.exited,
            &x.exit_sharp.censored,
            &x.exit_sharp.mle_mean,
            &x.final_trace_hessian.mean,
            &x.final_trace_hessian.lo,
            &x.final_trace_hessian.hi,
            &x.final_loss.mean,
            &x.diverged,
        ]);
    }
    t.finish()
}

/// `flatness_stationary.csv`: one row per stationary-loss system.
pub fn stationary_csv(r: &FlatnessReport) -> String {
    let mut t = Table::new(&["system", "measured", "ci_lo", "ci_hi", "formula", "exact"]);
    for x in &r.stationary {
        t.row(&[
            &x.system,
            &x.measured.mean,
            &x.measured.lo,
            &x.measured.hi,
            &x.formula,
            &x.exact,
        ]);
    }
    t.finish()
}

/// The exit time a figure shows for one basin: the censoring-aware exponential MLE and its
/// interval `(τ̂, lo, hi)` — never the mean of the observed exits, which leaves out every path
/// still in the basin at `T` and is biased low.
pub fn exit_time_point(e: &ExitStats) -> (f64, f64, f64) {
    (e.mle_mean, e.mle_ci[0], e.mle_ci[1])
}

fn split(systems: &[SystemResult]) -> (Vec<&SystemResult>, Vec<&SystemResult>) {
    (
        systems.iter().filter(|x| x.kind == "discrete").collect(),
        systems.iter().filter(|x| x.kind == "sde").collect(),
    )
}

/// Draws the 2 × 3 flatness figure: flat fraction and exit times of the preference run, flat
/// fraction and sharp-basin exit time of the small-ρ run, and the stationary losses.
pub fn draw_figure<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    r: &FlatnessReport,
) -> Result<()> {
    let (w, _) = root.dim_in_pixel();
    let sc = (w as f64 / 1800.0).clamp(0.5, 3.0);
    let root = crate::plot::titled(
        root,
        &format!(
            "{}   (*: more than {}% of the paths diverged and are excluded)",
            r.header.config.display_title(),
            100.0 * crate::study::flatness::MAX_DIVERGED_FRACTION
        ),
        22.0 * sc,
    )
    .map_err(draw_err)?;
    let panels = root.split_evenly((2, 3));
    let trip = |m: &crate::stats::MeanCi| (m.mean, m.lo, m.hi);
    for (row, systems, run) in [
        (0, &r.systems, "preference run"),
        (1, &r.small_rho_systems, "small-ρ run"),
    ] {
        let (disc, sde) = split(systems);
        let paths = r.header.config.paths as f64;
        let cats: Vec<String> = disc
            .iter()
            .zip(&sde)
            .map(|(x, y)| {
                let div = x.diverged.max(y.diverged) as f64 / paths;
                // Long labels collide at this width; the figure title explains the star.
                if div > crate::study::flatness::MAX_DIVERGED_FRACTION {
                    format!("{}* (ρ={})", x.algorithm, x.rho)
                } else {
                    format!("{} (ρ={})", x.algorithm, x.rho)
                }
            })
            .collect();
        // Second-order models (`second_order = true`), where run: one more series, blank for
        // the algorithms that have none.
        let sde2: Vec<Option<&SystemResult>> = disc
            .iter()
            .map(|x| {
                systems
                    .iter()
                    .find(|y| y.kind == "sde2" && y.algorithm == x.algorithm)
            })
            .collect();
        let series = |get: &dyn Fn(&SystemResult) -> (f64, f64, f64)| {
            let mut v = vec![
                DotSeries {
                    label: "discrete".into(),
                    values: disc.iter().map(|x| get(x)).collect(),
                },
                DotSeries {
                    label: "own SDE".into(),
                    values: sde.iter().map(|x| get(x)).collect(),
                },
            ];
            if sde2.iter().any(Option::is_some) {
                v.push(DotSeries {
                    label: "second-order SDE".into(),
                    values: sde2
                        .iter()
                        .map(|x| x.map_or((f64::NAN, f64::NAN, f64::NAN), get))
                        .collect(),
                });
            }
            v
        };
        let t1 = format!("{run}: fraction in the flat basin at T (95% CI)");
        draw_dot_panel(
            &panels[3 * row],
            &DotPanel {
                title: &t1,
                y_label: "P(flat basin at T)",
                categories: cats.clone(),
                series: series(&|x| trip(&x.flat_fraction)),
                reference: None,
                log_y: false,
                unit_interval: true,
            },
        )?;
        // Exit times: the censoring-aware exponential MLE (the table's Kramers column), never
        // the mean of the observed exits alone, which censoring biases low.
        let level = 100.0 * r.header.config.verdict.level;
        let y_exit = format!("mean exit time, exponential MLE with censoring ({level:.0}% CI)");
        let t2 = format!("{run}: mean exit time from the SHARP basin (censoring-aware MLE)");
        draw_dot_panel(
            &panels[3 * row + 1],
            &DotPanel {
                title: &t2,
                y_label: &y_exit,
                categories: cats.clone(),
                series: series(&|x| exit_time_point(&x.exit_sharp)),
                reference: None,
                log_y: false,
                unit_interval: false,
            },
        )?;
        if row == 0 {
            let t3 = format!("{run}: mean exit time from the FLAT basin (censoring-aware MLE)");
            draw_dot_panel(
                &panels[2],
                &DotPanel {
                    title: &t3,
                    y_label: &y_exit,
                    categories: cats,
                    series: series(&|x| exit_time_point(&x.exit_flat)),
                    reference: None,
                    log_y: false,
                    unit_interval: false,
                },
            )?;
        }
    }
    let st_cats: Vec<String> = r.stationary.iter().map(|x| x.system.clone()).collect();
    draw_dot_panel(
        &panels[5],
        &DotPanel {
            title: "stationary E f on a quadratic vs (ησ²/4)(d + ρ tr H)",
            y_label: "time-averaged f",
            categories: st_cats,
            series: vec![DotSeries {
                label: "Monte Carlo (95% CI)".into(),
                values: r.stationary.iter().map(|x| trip(&x.measured)).collect(),
            }],
            reference: Some((
                "formula (ησ²/4)(d + ρ tr H)".into(),
                r.stationary.iter().map(|x| x.formula).collect(),
            )),
            log_y: false,
            unit_interval: false,
        },
    )?;
    Ok(())
}

/// Writes `flatness.json`, `flatness_{systems,stationary,verdicts,observations}.csv`,
/// `flatness.png`, `.svg` atomically.
pub fn write(r: &FlatnessReport, dir: &Path) -> Result<Vec<PathBuf>> {
    let mut st = Staging::new(dir)?;
    st.bytes("flatness.json", &to_json(r)?)?;
    st.bytes("flatness_systems.csv", systems_csv(r).as_bytes())?;
    st.bytes("flatness_stationary.csv", stationary_csv(r).as_bytes())?;
    st.bytes(
        "flatness_verdicts.csv",
        csv::verdicts(&r.verdicts).as_bytes(),
    )?;
    st.bytes(
        "flatness_observations.csv",
        csv::observations(&r.observations).as_bytes(),
    )?;
    st.with("flatness.png", |p| {
        crate::plot::render_png(p, (1800, 1000), |a| draw_figure(a, r))
    })?;
    st.with("flatness.svg", |p| {
        crate::plot::render_svg(p, (1800, 1000), |a| draw_figure(a, r))
    })?;
    st.commit()
}

/// The flatness study in the registry.
pub struct Def(FlatnessStudy);

impl StudyDef for Def {
    type Config = FlatnessConfig;
    type Report = FlatnessReport;
    const NAME: &'static str = "flatness";
    const ABOUT: &'static str =
        "Flat-minimum preference on a two-basin landscape, exit times, stationary losses";
    const LONG_ABOUT: &'static str = "Flat-minimum preference on a two-basin landscape, exit times, stationary losses.\n\nWithout CONFIG, runs the embedded default (experiments/flatness_two_basin.toml): SGD, USAM, DNSAM and SAM and their SDEs on a 2-D landscape with a flat and a 10× sharper basin of equal depth, started on the ridge; plus the stationary loss of the USAM and SGD SDEs on a quadratic against (ησ²/4)(d + ρ tr H). Writes flatness.json, flatness_{systems,stationary,verdicts,observations}.csv, flatness.png and .svg to --out (default plots/flatness). --paths sets the paths of every run.";
    const DEFAULT: Experiment = Experiment {
        path: "experiments/flatness_two_basin.toml",
        text: crate::study::flatness::DEFAULT_CONFIG,
    };
    const EXPERIMENTS: &'static [Experiment] = &[
        Self::DEFAULT,
        Experiment {
            path: "experiments/flatness_1d_dnsam_breakdown.toml",
            text: include_str!("../../experiments/flatness_1d_dnsam_breakdown.toml"),
        },
        Experiment {
            path: "experiments/flatness_second_order.toml",
            text: include_str!("../../experiments/flatness_second_order.toml"),
        },
    ];

    fn apply(c: &mut FlatnessConfig, o: &Overrides) -> Result<()> {
        o.paths_and_seed(Self::NAME, &mut c.paths, &mut c.seed)
    }
    fn build(config: FlatnessConfig) -> Result<Self> {
        FlatnessStudy::new(config).map(Def)
    }
    fn config(&self) -> &FlatnessConfig {
        &self.0.config
    }
    fn total_work(&self) -> u64 {
        self.0.total_work()
    }
    fn run(&self, threads: usize, progress: Option<Progress>) -> Result<FlatnessReport> {
        self.0.run(threads, progress)
    }
    fn table(r: &FlatnessReport) -> String {
        table(r)
    }
    fn write(&self, r: &FlatnessReport, dir: &Path) -> Result<Vec<PathBuf>> {
        write(r, dir)
    }
    fn verdicts(r: &FlatnessReport) -> &[Verdict] {
        &r.verdicts
    }
    fn observations(r: &FlatnessReport) -> &[Observation] {
        &r.observations
    }
    // Memory and work estimate (checked before anything is allocated).
    fn budget(config: &FlatnessConfig, threads: usize) -> Result<crate::study::budget::Budget> {
        FlatnessStudy::budget(config, threads)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::MeanCi;

    /// Heavy censoring (the default SGD flat basin: 243 exits observed at mean 24.5, 1519 paths
    /// still inside at T): the figure's point is the MLE, not the observed mean.
    #[test]
    fn exit_panels_plot_the_censoring_aware_estimate() {
        let e = ExitStats {
            entered: 1762,
            exited: 243,
            censored: 1519,
            mean: MeanCi {
                mean: 24.47,
                lo: 22.34,
                hi: 26.60,
                half_width: 2.13,
                n: 243,
            },
            mle_mean: 321.17,
            mle_ci: [285.30, 367.36],
        };
        assert_eq!(exit_time_point(&e), (321.17, 285.30, 367.36));
    }
}
