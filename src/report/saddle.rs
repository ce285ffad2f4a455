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
use crate::study::saddle::SaddleReport;

fn opt(v: Option<f64>) -> String {
    v.map_or("—".into(), |x| format!("{x:.4}"))
}

/// The printed summary.
pub fn table(r: &SaddleReport) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "{}", r.config.title);
    let _ = writeln!(
        s,
        "η = {} · seed {} · {} thread(s) · {:.1} s · κ_d = {:.4}",
        r.config.eta, r.seed, r.threads, r.elapsed_s, r.kappa_d
    );
    let _ = writeln!(s);
    let _ = writeln!(s, "reference run (SPEC §6):");
    let _ = writeln!(
        s,
        "  {:<6} {:>5} {:>5} {:<14} {:<9} {:>5} {:>24} {:>11} {:>11} {:>9}  verdict",
        "alg", "ρ", "σ", "start", "expect", "paths", "fraction [CI]", "‖x_T‖", "tail ‖x‖", "t_esc"
    );
    for row in &r.reference {
        let _ = writeln!(
            s,
            "  {:<6} {:>5} {:>5} {:<14} {:<9} {:>5} {:>24} {:>11.3e} {:>11.3e} {:>9}  {}",
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
            row.final_norm_median,
            row.tail_mean_norm_median,
            row.escape_time_median
                .map_or("—".into(), |t| format!("{t:.2}")),
            row.verdict
        );
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
            "phase {} ({}; ε = {}, T = {}):",
            p.name, p.prediction, p.attraction_radius, p.horizon
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
        let ci =
            v.ci.map_or(String::new(), |c| format!(" [{:.4}, {:.4}]", c[0], c[1]));
        let _ = writeln!(
            s,
            "  {:<5} {}\n        measured {:.4}{ci}; expected {}",
            v.verdict, v.claim, v.measured, v.expected
        );
    }
    if !r.warnings.is_empty() {
        let _ = writeln!(s);
        for w in &r.warnings {
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
    let mut s = String::from(
        "panel,algorithm,y_name,y,rho,attracted,paths,fraction,ci_lo,ci_hi,predicted,in_region,in_region_attracted\n",
    );
    for p in &r.phases {
        for c in &p.cells {
            let _ = writeln!(
                s,
                "{},{},{},{},{},{},{},{},{},{},{},{},{}",
                p.name,
                p.algorithm,
                p.y_name,
                c.y,
                c.rho,
                c.attracted,
                c.paths,
                c.fraction,
                c.ci[0],
                c.ci[1],
                c.predicted,
                c.in_region.map_or(String::new(), |v| v.to_string()),
                c.in_region_attracted
                    .map_or(String::new(), |v| v.to_string()),
            );
        }
    }
    s
}

/// One CSV row per curve point.
pub fn curves_csv(r: &SaddleReport) -> String {
    let mut s = String::from("label,algorithm,system,rho,sigma,t,mean,median,q10,q90\n");
    for c in &r.curves {
        for j in 0..c.times.len() {
            let _ = writeln!(
                s,
                "{},{},{},{},{},{},{},{},{},{}",
                c.label,
                c.algorithm,
                c.system,
                c.rho,
                c.sigma,
                c.times[j],
                c.mean[j],
                c.median[j],
                c.q10[j],
                c.q90[j]
            );
        }
    }
    s
}

/// Writes every file of the run into `dir`, atomically.
pub fn write(r: &SaddleReport, dir: &Path) -> Result<Vec<PathBuf>> {
    let mut st = Staging::new(dir)?;
    st.bytes("saddle.json", &to_json(r)?)?;
    st.bytes("saddle_phase.csv", phase_csv(r).as_bytes())?;
    st.bytes("saddle_curves.csv", curves_csv(r).as_bytes())?;
    st.commit()
}
