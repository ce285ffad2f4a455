//! Table, CSV and figure of the convergence study.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::error::Result;
use crate::output::{to_json, Staging};
use crate::plot::loglog::{draw_loglog, LogLogFigure, LogLogPoint, LogLogSeries};
use crate::study::convergence::ConvergenceReport;

/// The printed summary: one line per (pair, test function), then the warnings.
pub fn table(r: &ConvergenceReport) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "{}", r.config.title);
    let _ = writeln!(
        s,
        "{} · {} paths per η · seed {} · {} thread(s) · {:.1} s · reference: {:?}",
        r.landscape, r.config.paths, r.seed, r.threads, r.elapsed_s, r.reference
    );
    let _ = writeln!(s);
    let _ = writeln!(
        s,
        "{:<7} {:<18} {:<20} {:>7} {:>17} {:>9}  {:<12}",
        "alg", "model", "g", "slope", "95% CI", "expected", "verdict"
    );
    for p in &r.pairs {
        let _ = writeln!(
            s,
            "{:<7} {:<18} {:<20} {:>7.3} {:>17} {:>9}  {:<12}",
            p.algorithm,
            p.model,
            p.test_function,
            p.slope,
            format!("[{:.3}, {:.3}]", p.slope_ci[0], p.slope_ci[1]),
            format!("{} ± {}", p.expected_order, r.config.verdict.tolerance),
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
    if !r.warnings.is_empty() {
        let _ = writeln!(s);
        for w in &r.warnings {
            let _ = writeln!(s, "warning: {w}");
        }
    }
    let n_pass = r.pairs.iter().filter(|p| p.verdict == "pass").count();
    let _ = writeln!(s);
    let _ = writeln!(s, "{n_pass} of {} verdicts pass", r.pairs.len());
    s
}

/// One CSV row per point.
pub fn csv(r: &ConvergenceReport) -> String {
    let mut s = String::from(
        "algorithm,model,test_function,expected_order,slope,slope_lo,slope_hi,verdict,eta,rho,weak_error,ci_lo,ci_hi,mc_floor,resolution_error,diverged_paths,exact_weak_error,argmax_time\n",
    );
    for p in &r.pairs {
        for q in &p.points {
            let _ = writeln!(
                s,
                "{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}",
                p.algorithm,
                p.model,
                p.test_function,
                p.expected_order,
                p.slope,
                p.slope_ci[0],
                p.slope_ci[1],
                p.verdict,
                q.eta,
                q.rho,
                q.weak_error,
                q.ci[0],
                q.ci[1],
                q.mc_floor,
                q.resolution_error,
                q.diverged_paths,
                q.exact_weak_error
                    .map(|e| e.to_string())
                    .unwrap_or_default(),
                q.argmax_time
            );
        }
    }
    s
}

/// The figure's series: one per (pair, test function).
pub fn series(r: &ConvergenceReport) -> Vec<LogLogSeries> {
    let multi_g = r.config.test_functions.len() > 1;
    r.pairs
        .iter()
        .map(|p| LogLogSeries {
            label: format!(
                "{} vs {}{}: slope {:.2} [{:.2}, {:.2}] {}",
                p.algorithm,
                p.model,
                if multi_g {
                    format!(" ({})", p.test_function)
                } else {
                    String::new()
                },
                p.slope,
                p.slope_ci[0],
                p.slope_ci[1],
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

/// Writes `convergence.json`, `.csv`, `.png`, `.svg` into `dir`, atomically.
pub fn write(r: &ConvergenceReport, dir: &Path) -> Result<Vec<PathBuf>> {
    let mut st = Staging::new(dir)?;
    st.bytes("convergence.json", &to_json(r)?)?;
    st.bytes("convergence.csv", csv(r).as_bytes())?;
    let series = series(r);
    let fig = LogLogFigure {
        title: &r.config.title,
        x_label: "learning rate η",
        y_label: "weak error max_t |E g(x) − E g(X)|",
        series: &series,
        reference_slopes: &[1.0, 0.5],
    };
    st.with("convergence.png", |p| {
        crate::plot::render_png(p, (1100, 760), |a| draw_loglog(a, &fig))
    })?;
    st.with("convergence.svg", |p| {
        crate::plot::render_svg(p, (1100, 760), |a| draw_loglog(a, &fig))
    })?;
    st.commit()
}
