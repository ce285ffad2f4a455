//! Table, CSV and figure of the convergence study.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::error::Result;
use crate::output::{to_json, Staging};
use crate::plot::loglog::{
    draw_loglog_with, LogLogExtras, LogLogFigure, LogLogPoint, LogLogSeries,
};
use crate::registry::{Experiment, Overrides, Progress, StudyDef};
use crate::report::csv::{self, Table};
use crate::study::convergence::claims::SlopeCiKind;
use crate::study::convergence::{
    ConvergenceConfig, ConvergenceReport, ConvergenceStudy, PairReport,
};
use crate::study::verdict::{ClaimKind, Observation, Verdict};

/// The claim of a row in a few characters: `≥ 1 (CI > 0.7)`, `below usam_sde`, `= 0.5 ± 0.3`.
fn claim_text(p: &PairReport, tol: f64) -> String {
    match p.claim_kind {
        ClaimKind::OrderAtLeast => format!(
            "≥ {} (lo > {})",
            p.expected_order,
            fmt_short(p.expected_order - tol)
        ),
        ClaimKind::OrderBelowOwnModel => format!("< own SDE's ({})", p.expected_order),
        _ => format!("= {} ± {tol}", p.expected_order),
    }
}

fn fmt_short(x: f64) -> String {
    let s = format!("{x:.3}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// What the slope interval is, in words (table header and figure legend).
fn interval_words(kind: SlopeCiKind, level: f64) -> String {
    match kind {
        SlopeCiKind::MonteCarlo => format!("{}% CI", fmt_short(100.0 * level)),
        SlopeCiKind::LackOfFit => "lack-of-fit interval".into(),
    }
}

/// The printed summary: one line per (pair, test function), then the warnings.
pub fn table(r: &ConvergenceReport) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "{}", r.header.config.display_title());
    let _ = writeln!(
        s,
        "{} · {} paths per η · seed {} · {} thread(s) · {:.1} s · reference: {:?}",
        r.landscape,
        r.header.config.paths,
        r.header.seed,
        r.header.threads,
        r.header.elapsed_s,
        r.reference
    );
    let kind = r
        .pairs
        .first()
        .map_or(SlopeCiKind::MonteCarlo, |p| p.slope_ci_kind);
    if kind == SlopeCiKind::LackOfFit {
        let _ = writeln!(
            s,
            "slope intervals: exact weak errors, no Monte Carlo — the interval is the regression's lack of fit to a power law on this η grid, not a confidence interval"
        );
    }
    let _ = writeln!(
        s,
        "claims: ≥ α (lo > α − tol) = order_at_least (own SDE, drift-only ablation; fails only when the interval lies below α − tol); < own SDE's = order_below_own_model (a wrong model's slope interval lies below the own SDE's; α = min(1, p) in brackets); = α ± tol = order_equals"
    );
    let _ = writeln!(s);
    let tol = r.header.config.verdict.tolerance;
    let _ = writeln!(
        s,
        "{:<7} {:<18} {:<20} {:>7} {:>20} {:<22} {:<12}",
        "alg",
        "model",
        "g",
        "slope",
        interval_words(kind, r.header.config.verdict.level),
        "claim",
        "verdict"
    );
    for p in &r.pairs {
        let _ = writeln!(
            s,
            "{:<7} {:<18} {:<20} {:>7.3} {:>20} {:<22} {:<12}",
            p.algorithm,
            p.model,
            p.test_function,
            p.slope,
            format!("[{:.3}, {:.3}]", p.slope_ci[0], p.slope_ci[1]),
            claim_text(p, tol),
            p.verdict
        );
    }
    let _ = writeln!(s);
    let _ = writeln!(s, "weak errors (95% simultaneous CI; floor = Monte Carlo noise floor; res = resolution diagnostic):");
    for p in &r.pairs {
        let _ = writeln!(
            s,
            "  {} vs {} ({}), {}:",
            p.algorithm, p.model, p.test_function, p.integrator
        );
        for q in &p.points {
            let exact = q
                .exact_weak_error
                .map(|e| format!("  exact {e:.4e}"))
                .unwrap_or_default();
            let div = if q.diverged_paths > 0 {
                format!("  diverged {}", q.diverged_paths)
            } else {
                String::new()
            };
            let _ = writeln!(
                s,
                "    η = {:<9} ρ = {:<8.4} e = {:.4e} [{:.4e}, {:.4e}]  floor {:.1e}  res {:.1e}{exact}{div}",
                q.eta, q.rho, q.weak_error, q.ci[0], q.ci[1], q.mc_floor, q.resolution_error
            );
        }
        if p.verdict != "pass" {
            let _ = writeln!(s, "    → {}: {}", p.verdict, p.verdict_reason);
        }
    }
    if !r.header.warnings.is_empty() {
        let _ = writeln!(s);
        for w in &r.header.warnings {
            let _ = writeln!(s, "warning: {w}");
        }
    }
    if !r.observations.is_empty() {
        let _ = writeln!(s);
        for o in &r.observations {
            let _ = writeln!(s, "{}", o.line());
        }
    }
    let n_pass = r.pairs.iter().filter(|p| p.verdict == "pass").count();
    let _ = writeln!(s);
    let _ = writeln!(s, "{n_pass} of {} verdicts pass", r.pairs.len());
    s
}

/// One CSV row per (pair, η) point; the pair's slope and verdict are repeated on each of its
/// rows (long format).
pub fn csv(r: &ConvergenceReport) -> String {
    let mut t = Table::new(&[
        "algorithm",
        "model",
        "test_function",
        "expected_order",
        "claim_kind",
        "slope",
        "slope_lo",
        "slope_hi",
        "slope_ci_kind",
        "verdict",
        "eta",
        "rho",
        "weak_error",
        "ci_lo",
        "ci_hi",
        "mc_floor",
        "resolution_error",
        "diverged_paths",
        "exact_weak_error",
        "argmax_time",
    ]);
    for p in &r.pairs {
        for q in &p.points {
            t.row(&[
                &p.algorithm,
                &p.model,
                &p.test_function,
                &p.expected_order,
                &p.claim_kind,
                &p.slope,
                &p.slope_ci[0],
                &p.slope_ci[1],
                &p.slope_ci_kind.as_str(),
                &p.verdict,
                &q.eta,
                &q.rho,
                &q.weak_error,
                &q.ci[0],
                &q.ci[1],
                &q.mc_floor,
                &q.resolution_error,
                &q.diverged_paths,
                &csv::opt(q.exact_weak_error),
                &q.argmax_time,
            ]);
        }
    }
    t.finish()
}

/// The figure's series: one per (pair, test function).
pub fn series(r: &ConvergenceReport) -> Vec<LogLogSeries> {
    let multi_g = r.header.config.test_functions.len() > 1;
    r.pairs
        .iter()
        .map(|p| LogLogSeries {
            label: format!(
                "{} vs {}{}: slope {}, {} [{}, {}]; {}: {}",
                p.algorithm,
                p.model,
                if multi_g {
                    format!(" ({})", p.test_function)
                } else {
                    String::new()
                },
                slope_with_ci(p.slope, p.slope_ci[0], p.slope_ci[1]).0,
                match p.slope_ci_kind {
                    SlopeCiKind::LackOfFit => "lack-of-fit".to_string(),
                    SlopeCiKind::MonteCarlo => {
                        interval_words(p.slope_ci_kind, r.header.config.verdict.level)
                    }
                },
                slope_with_ci(p.slope, p.slope_ci[0], p.slope_ci[1]).1,
                slope_with_ci(p.slope, p.slope_ci[0], p.slope_ci[1]).2,
                match p.claim_kind {
                    ClaimKind::OrderAtLeast => format!("order ≥ {}", p.expected_order),
                    ClaimKind::OrderBelowOwnModel => "below own SDE".to_string(),
                    _ => format!("order = {}", p.expected_order),
                },
                p.verdict
            ),
            points: p
                .points
                .iter()
                .map(|q| LogLogPoint {
                    x: q.eta,
                    y: q.weak_error,
                    lo: q.ci[0],
                    hi: q.ci[1],
                })
                .collect(),
        })
        .collect()
}

/// The Monte Carlo noise floor of each pair at each `η`, `(pair index, η, mc_floor)`: a weak
/// error near or below it cannot be told from Monte Carlo noise.
pub fn noise_floor(r: &ConvergenceReport) -> Vec<(usize, f64, f64)> {
    r.pairs
        .iter()
        .enumerate()
        .flat_map(|(i, p)| p.points.iter().map(move |q| (i, q.eta, q.mc_floor)))
        .collect()
}

/// `slope [lo, hi]` with as many decimals (2 to 4) as it takes to tell the three apart.
fn slope_with_ci(slope: f64, lo: f64, hi: f64) -> (String, String, String) {
    let mut dec = 2;
    while dec < 4 {
        let t = |v: f64| format!("{v:.dec$}");
        if t(lo) != t(slope) && t(slope) != t(hi) {
            break;
        }
        dec += 1;
    }
    (
        format!("{slope:.dec$}"),
        format!("{lo:.dec$}"),
        format!("{hi:.dec$}"),
    )
}

/// Writes `convergence.json`, `.csv`, `.png`, `.svg` into `dir`, atomically.
pub fn write(r: &ConvergenceReport, dir: &Path) -> Result<Vec<PathBuf>> {
    let mut st = Staging::new(dir)?;
    st.bytes("convergence.json", &to_json(r)?)?;
    st.bytes("convergence.csv", csv(r).as_bytes())?;
    let series = series(r);
    // A "slope 2" guide when a second-order model is among the pairs.
    let slopes: &[f64] = if r.pairs.iter().any(|p| p.model.ends_with("_sde2")) {
        &[2.0, 1.0, 0.5]
    } else {
        &[1.0, 0.5]
    };
    let floor = noise_floor(r);
    let exact: Vec<(usize, f64, f64)> = r
        .pairs
        .iter()
        .enumerate()
        .flat_map(|(i, p)| {
            p.points
                .iter()
                .filter_map(move |q| q.exact_weak_error.map(|e| (i, q.eta, e)))
        })
        .collect();
    let extras = LogLogExtras {
        floor: &floor,
        exact: &exact,
        dodge: true,
        legend_outside: true,
    };
    let fig = LogLogFigure {
        title: &r.header.config.display_title(),
        x_label: "learning rate η",
        y_label: "weak error max_k |E g(x_k) − E g(X_kη)|",
        series: &series,
        reference_slopes: slopes,
    };
    st.with("convergence.png", |p| {
        crate::plot::render_png(p, (1600, 760), |a| draw_loglog_with(a, &fig, &[], &extras))
    })?;
    st.with("convergence.svg", |p| {
        crate::plot::render_svg(p, (1600, 760), |a| draw_loglog_with(a, &fig, &[], &extras))
    })?;
    st.commit()
}

/// The convergence study in the registry.
pub struct Def(ConvergenceStudy);

impl StudyDef for Def {
    type Config = ConvergenceConfig;
    type Report = ConvergenceReport;
    const NAME: &'static str = "convergence";
    const ABOUT: &'static str =
        "Weak error of each algorithm against SDE models, its order in η, and a verdict per pair";
    const LONG_ABOUT: &'static str = "Weak error of each algorithm against SDE models, its order in η, and a verdict per pair.\n\nWithout CONFIG, runs the embedded default (experiments/convergence_quadratic.toml): USAM, DNSAM, SAM and SGD on Paper 1's d = 20 quadratic, each against its own SDE and the SGD SDE, ρ ∝ √η. Writes convergence.json, .csv, .png and .svg to --out (default plots/convergence). --paths sets the Monte Carlo paths per learning rate.";
    const DEFAULT: Experiment = Experiment {
        path: "experiments/convergence_quadratic.toml",
        text: crate::study::convergence::DEFAULT_CONFIG,
    };
    const EXPERIMENTS: &'static [Experiment] = &[
        Self::DEFAULT,
        Experiment {
            path: "experiments/convergence_least_squares.toml",
            text: include_str!("../../experiments/convergence_least_squares.toml"),
        },
        Experiment {
            path: "experiments/convergence_least_squares_mc.toml",
            text: include_str!("../../experiments/convergence_least_squares_mc.toml"),
        },
        Experiment {
            path: "experiments/convergence_second_order.toml",
            text: include_str!("../../experiments/convergence_second_order.toml"),
        },
        Experiment {
            path: "experiments/convergence_second_order_fixed_rho.toml",
            text: include_str!("../../experiments/convergence_second_order_fixed_rho.toml"),
        },
        Experiment {
            path: "experiments/convergence_second_order_nonquadratic.toml",
            text: include_str!("../../experiments/convergence_second_order_nonquadratic.toml"),
        },
    ];

    fn apply(c: &mut ConvergenceConfig, o: &Overrides) -> Result<()> {
        o.paths_and_seed(Self::NAME, &mut c.paths, &mut c.seed)
    }
    fn build(config: ConvergenceConfig) -> Result<Self> {
        ConvergenceStudy::new(config).map(Def)
    }
    fn config(&self) -> &ConvergenceConfig {
        &self.0.config
    }
    fn total_work(&self) -> u64 {
        self.0.total_work()
    }
    fn run(&self, threads: usize, progress: Option<Progress>) -> Result<ConvergenceReport> {
        self.0.run(threads, progress)
    }
    fn table(r: &ConvergenceReport) -> String {
        table(r)
    }
    fn write(&self, r: &ConvergenceReport, dir: &Path) -> Result<Vec<PathBuf>> {
        write(r, dir)
    }
    fn verdicts(r: &ConvergenceReport) -> &[Verdict] {
        &r.verdicts
    }
    fn observations(r: &ConvergenceReport) -> &[Observation] {
        &r.observations
    }
    // Memory and work estimate (checked before anything is allocated).
    fn budget(config: &ConvergenceConfig, threads: usize) -> Result<crate::study::budget::Budget> {
        ConvergenceStudy::budget(config, threads)
    }
}
