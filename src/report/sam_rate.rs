//! Table, CSVs and figure of the SAM-rate study.
//!
//! Files: `sam_rate.json` (the report), `sam_rate_nonconvex.csv` and `sam_rate_pl.csv` (one row
//! per horizon), `sam_rate_oscillation.csv` (one row per algorithm and `ρ`),
//! `sam_rate_oscillation_trace.csv` (distance to the minimum along each run), and
//! `sam_rate.png/.svg` (three panels: the non-convex average against its bound, the PL gap
//! against its bound, the oscillation distances).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use plotters::coord::Shift;
use plotters::prelude::*;

use crate::error::{Error, Result};
use crate::output::{to_json, Staging};
use crate::plot::bands::{draw_bands, BandPanel, BandSeries, LegendCorner, LegendEntry};
use crate::plot::draw_err;
use crate::plot::loglog::{draw_loglog, LogLogFigure, LogLogPoint, LogLogSeries};
use crate::registry::{Experiment, Overrides, Progress, StudyDef};
use crate::study::sam_rate::{SamRateConfig, SamRateReport, SamRateStudy};
use crate::study::verdict::{fmt_num, summary_line, Observation, Verdict};

fn verdict_at<'a>(r: &'a SamRateReport, prefix: &str, t: usize) -> &'a str {
    r.verdicts
        .iter()
        .find(|v| v.claim.starts_with(prefix) && v.claim.ends_with(&format!("at T = {t}")))
        .map(|v| v.verdict.as_str())
        .unwrap_or("-")
}

/// The printed summary.
pub fn table(r: &SamRateReport) -> String {
    let mut s = String::new();
    let c = &r.header.config;
    let n = &r.nonconvex;
    let _ = writeln!(s, "{}", c.display_title());
    let _ = writeln!(
        s,
        "seed {} · {} thread(s) · {:.1} s · {}% intervals",
        r.header.seed,
        r.header.threads,
        r.header.elapsed_s,
        100.0 * c.level
    );
    let _ = writeln!(s);
    let _ = writeln!(
        s,
        "Non-convex: {} · unnormalized SAM, batch b = {} (same batch at both points) · γ = 1/(β√T), ρ = 1/(βT^(1/4))",
        n.landscape, n.batch
    );
    let _ = writeln!(
        s,
        "  β = max‖x_i‖²/(6√3) = {} · f(w₀) = {} · f̂⋆ = {} ({}; GD's final ‖∇f‖ = {}) · f⋆ ≥ 0",
        fmt_num(n.beta),
        fmt_num(n.f0),
        fmt_num(n.fstar_upper),
        n.fstar_source,
        fmt_num(n.gd_final_grad_norm)
    );
    let _ = writeln!(
        s,
        "  σ̂² = {} (largest seen, at {}) · analytic σ² ≤ mean‖x_i‖²/16 = {}",
        fmt_num(n.sigma2_estimate),
        n.sigma2_source,
        fmt_num(n.sigma2_upper)
    );
    let _ = writeln!(
        s,
        "  {:>7} {:>10} {:>10} {:>6} {:>34} {:>11} {:>11} {:>8}  verdict",
        "T", "γ", "ρ", "paths", "(1/T)Σ E‖∇f(w_t)‖² [CI]", "bound B₋", "bound B₊", "avg/B₋"
    );
    for p in &n.points {
        let _ = writeln!(
            s,
            "  {:>7} {:>10} {:>10} {:>6} {:>34} {:>11} {:>11} {:>8}  {}",
            p.horizon,
            fmt_num(p.gamma),
            fmt_num(p.rho),
            p.paths,
            format!(
                "{} [{}, {}]",
                fmt_num(p.avg_sq_grad.mean),
                fmt_num(p.avg_sq_grad.lo),
                fmt_num(p.avg_sq_grad.hi)
            ),
            fmt_num(p.bound_strict),
            fmt_num(p.bound_lenient),
            format!("{:.3}", p.avg_sq_grad.mean / p.bound_strict),
            verdict_at(r, "(1/T)", p.horizon)
        );
    }
    if let Some(e) = &n.exponent {
        let _ = writeln!(
            s,
            "  fitted exponent of the average: {:.3} [{:.3}, {:.3}] (the bound: −0.5)",
            e.slope, e.ci[0], e.ci[1]
        );
    }
    let p = &r.pl;
    let _ = writeln!(s);
    let _ = writeln!(
        s,
        "PL: {} · batch b = {} · γ_t = min{{(8t+4)/(3μ(t+1)²), 1/(2β)}}, ρ_t = √(γ_t/β) (γ_t capped until t = {})",
        p.landscape, p.batch, p.decay_starts_at
    );
    let _ = writeln!(
        s,
        "  β = max‖x_i‖²/4 + λ = {} · μ = λ = {} · f(w₀) = {} · f⋆ = {} (Newton)",
        fmt_num(p.beta),
        fmt_num(p.mu),
        fmt_num(p.f0),
        fmt_num(p.fstar),
    );
    let _ = writeln!(
        s,
        "  σ̂² = {} (largest seen, at {}) · σ² ≤ mean‖x_i‖² = {} · for comparison V(w⋆) = {}",
        fmt_num(p.sigma2_estimate),
        p.sigma2_source,
        fmt_num(p.sigma2_upper),
        fmt_num(p.sigma2_at_optimum)
    );
    let _ = writeln!(
        s,
        "  {:>7} {:>10} {:>10} {:>6} {:>34} {:>11} {:>11} {:>8}  verdict",
        "T", "γ_{T−1}", "ρ_{T−1}", "paths", "E f(w_T) − f⋆ [CI]", "bound B₋", "bound B₊", "gap/B₋"
    );
    for q in &p.points {
        let _ = writeln!(
            s,
            "  {:>7} {:>10} {:>10} {:>6} {:>34} {:>11} {:>11} {:>8}  {}",
            q.horizon,
            fmt_num(q.gamma_last),
            fmt_num(q.rho_last),
            q.paths,
            format!(
                "{} [{}, {}]",
                fmt_num(q.gap.mean),
                fmt_num(q.gap.lo),
                fmt_num(q.gap.hi)
            ),
            fmt_num(q.bound_strict),
            fmt_num(q.bound_lenient),
            format!("{:.2e}", q.gap.mean / q.bound_strict),
            verdict_at(r, "E f(w_T)", q.horizon)
        );
    }
    if let Some(e) = &p.exponent {
        let _ = writeln!(
            s,
            "  fitted exponent of the gap: {:.3} [{:.3}, {:.3}]",
            e.slope, e.ci[0], e.ci[1]
        );
    }
    let o = &r.oscillation;
    let _ = writeln!(s);
    let _ = writeln!(
        s,
        "Contrast: full-batch SAM (normalized) vs USAM with constant ρ on {} · η = {} · λ₁ = {} · {} steps, tail from step {}",
        o.landscape,
        o.eta,
        fmt_num(o.lambda_max),
        o.steps,
        o.tail_from
    );
    let _ = writeln!(
        s,
        "  {:<5} {:>6} {:>11} {:>11} {:>25} {:>10} {:>11}",
        "alg", "ρ", "predicted", "tail mean", "tail [min, max]", "alignment", "final"
    );
    for row in &o.rows {
        let _ = writeln!(
            s,
            "  {:<5} {:>6} {:>11} {:>11} {:>25} {:>10} {:>11}",
            row.algorithm,
            row.rho,
            if row.algorithm == "sam" {
                fmt_num(row.predicted)
            } else {
                "→ 0".into()
            },
            fmt_num(row.tail_mean),
            format!("[{}, {}]", fmt_num(row.tail_min), fmt_num(row.tail_max)),
            format!("{:.4}", row.alignment),
            fmt_num(row.final_distance)
        );
    }
    let _ = writeln!(s);
    let _ = writeln!(s, "verdicts:");
    for v in &r.verdicts {
        let _ = writeln!(s, "{}", v.line(false));
        let _ = writeln!(s, "      {}", v.reason);
    }
    let _ = writeln!(s, "information:");
    for ob in &r.observations {
        let _ = writeln!(s, "{}", ob.line());
    }
    for w in &r.header.warnings {
        let _ = writeln!(s, "warning: {w}");
    }
    let _ = writeln!(s, "\n{}", summary_line(&r.verdicts));
    s
}

/// `sam_rate_nonconvex.csv`.
pub fn nonconvex_csv(r: &SamRateReport) -> String {
    let n = &r.nonconvex;
    let mut s = String::from("horizon,gamma,rho,batch,paths,diverged,avg_sq_grad,ci_lo,ci_hi,std_err,bound_strict,bound_lenient,ratio_to_strict,mean_final_loss,beta,f0,fstar_upper,sigma2_estimate,sigma2_upper,verdict\n");
    for p in &n.points {
        let _ = writeln!(
            s,
            "{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}",
            p.horizon,
            p.gamma,
            p.rho,
            n.batch,
            p.paths,
            p.diverged,
            p.avg_sq_grad.mean,
            p.avg_sq_grad.lo,
            p.avg_sq_grad.hi,
            p.std_err,
            p.bound_strict,
            p.bound_lenient,
            p.avg_sq_grad.mean / p.bound_strict,
            p.mean_final_loss,
            n.beta,
            n.f0,
            n.fstar_upper,
            n.sigma2_estimate,
            n.sigma2_upper,
            verdict_at(r, "(1/T)", p.horizon)
        );
    }
    s
}

/// `sam_rate_pl.csv`.
pub fn pl_csv(r: &SamRateReport) -> String {
    let p = &r.pl;
    let mut s = String::from("horizon,gamma_last,rho_last,batch,paths,diverged,gap,ci_lo,ci_hi,std_err,bound_strict,bound_lenient,ratio_to_strict,beta,mu,f0,fstar,sigma2_estimate,sigma2_upper,verdict\n");
    for q in &p.points {
        let _ = writeln!(
            s,
            "{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}",
            q.horizon,
            q.gamma_last,
            q.rho_last,
            p.batch,
            q.paths,
            q.diverged,
            q.gap.mean,
            q.gap.lo,
            q.gap.hi,
            q.std_err,
            q.bound_strict,
            q.bound_lenient,
            q.gap.mean / q.bound_strict,
            p.beta,
            p.mu,
            p.f0,
            p.fstar,
            p.sigma2_estimate,
            p.sigma2_upper,
            verdict_at(r, "E f(w_T)", q.horizon)
        );
    }
    s
}

/// `sam_rate_oscillation.csv`.
pub fn oscillation_csv(r: &SamRateReport) -> String {
    let o = &r.oscillation;
    let mut s = String::from("algorithm,rho,eta,lambda_max,steps,tail_from,predicted,tail_mean,tail_min,tail_max,tail_first_half,tail_second_half,alignment,final_distance\n");
    for row in &o.rows {
        let _ = writeln!(
            s,
            "{},{},{},{},{},{},{},{},{},{},{},{},{},{}",
            row.algorithm,
            row.rho,
            o.eta,
            o.lambda_max,
            o.steps,
            o.tail_from,
            row.predicted,
            row.tail_mean,
            row.tail_min,
            row.tail_max,
            row.tail_first_half,
            row.tail_second_half,
            row.alignment,
            row.final_distance
        );
    }
    s
}

/// `sam_rate_oscillation_trace.csv`.
pub fn trace_csv(r: &SamRateReport) -> String {
    let mut s = String::from("algorithm,rho,step,distance\n");
    for t in &r.oscillation.traces {
        for (k, d) in t.steps.iter().zip(&t.distance) {
            let _ = writeln!(s, "{},{},{},{}", t.algorithm, t.rho, k, d);
        }
    }
    s
}

fn bound_series(label: String, pts: Vec<(f64, f64)>) -> LogLogSeries {
    LogLogSeries {
        label,
        points: pts
            .into_iter()
            .map(|(x, y)| LogLogPoint {
                x,
                y,
                lo: f64::NAN,
                hi: f64::NAN,
            })
            .collect(),
    }
}

/// The lowest distance drawn in the oscillation panel; USAM's converging curves stop there.
const DISTANCE_FLOOR: f64 = 1e-6;

/// Draws the three panels.
pub fn draw_figure<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    r: &SamRateReport,
) -> Result<()> {
    let (w, _) = root.dim_in_pixel();
    let sc = (w as f64 / 2100.0).clamp(0.5, 3.0);
    let root =
        crate::plot::titled(root, &r.header.config.display_title(), 22.0 * sc).map_err(draw_err)?;
    let panels = root.split_evenly((1, 3));
    let n = &r.nonconvex;
    let measured = LogLogSeries {
        label: format!(
            "SAM (b = {}): (1/T)Σ E‖∇f(w_t)‖², {:.0}% CI",
            n.batch,
            100.0 * r.header.config.level
        ),
        points: n
            .points
            .iter()
            .map(|p| LogLogPoint {
                x: p.horizon as f64,
                y: p.avg_sq_grad.mean,
                lo: p.avg_sq_grad.lo,
                hi: p.avg_sq_grad.hi,
            })
            .collect(),
    };
    let s1 = vec![
        measured,
        bound_series(
            "bound B₋ (f⋆ = smallest loss seen, σ² = largest variance seen)".into(),
            n.points
                .iter()
                .map(|p| (p.horizon as f64, p.bound_strict))
                .collect(),
        ),
        bound_series(
            "bound B₊ (f⋆ = 0, σ² = analytic bound)".into(),
            n.points
                .iter()
                .map(|p| (p.horizon as f64, p.bound_lenient))
                .collect(),
        ),
    ];
    draw_loglog(
        &panels[0],
        &LogLogFigure {
            title: "non-convex (sigmoid loss): γ = 1/(β√T), ρ = 1/(βT^¼)",
            x_label: "iterations T",
            y_label: "average squared gradient norm",
            series: &s1,
            reference_slopes: &[-0.5],
        },
    )?;
    let p = &r.pl;
    let s2 = vec![
        LogLogSeries {
            label: format!(
                "SAM (b = {}): E f(w_T) − f⋆, {:.0}% CI",
                p.batch,
                100.0 * r.header.config.level
            ),
            points: p
                .points
                .iter()
                .map(|q| LogLogPoint {
                    x: q.horizon as f64,
                    y: q.gap.mean,
                    lo: q.gap.lo,
                    hi: q.gap.hi,
                })
                .collect(),
        },
        bound_series(
            "bound B₋ (σ² = largest variance seen)".into(),
            p.points
                .iter()
                .map(|q| (q.horizon as f64, q.bound_strict))
                .collect(),
        ),
        bound_series(
            "bound B₊ (σ² = mean‖x_i‖²)".into(),
            p.points
                .iter()
                .map(|q| (q.horizon as f64, q.bound_lenient))
                .collect(),
        ),
    ];
    draw_loglog(
        &panels[1],
        &LogLogFigure {
            title: "PL (logistic + ridge): γ_t = min{(8t+4)/(3μ(t+1)²), 1/(2β)}",
            x_label: "iterations T",
            y_label: "optimality gap",
            series: &s2,
            reference_slopes: &[-1.0],
        },
    )?;
    let o = &r.oscillation;
    let mut series = Vec::new();
    let mut legend = Vec::new();
    let mut hlines = Vec::new();
    let rhos: Vec<f64> = o
        .rows
        .iter()
        .filter(|x| x.algorithm == "sam")
        .map(|x| x.rho)
        .collect();
    for (k, rho) in rhos.iter().enumerate() {
        for (alg, dashed) in [("sam", false), ("usam", true)] {
            if let Some(t) = o
                .traces
                .iter()
                .find(|t| t.algorithm == alg && t.rho == *rho)
            {
                series.push(BandSeries {
                    color: k,
                    dashed,
                    x: t.steps.iter().map(|&v| v as f64).collect(),
                    // Below the floor a converging curve stops (no clipping onto the edge).
                    y: t.distance
                        .iter()
                        .map(|&d| if d >= DISTANCE_FLOOR { d } else { f64::NAN })
                        .collect(),
                    bands: vec![],
                });
            }
        }
        legend.push(LegendEntry {
            text: format!("ρ = {rho}: SAM (solid), USAM (dashed, → 0)"),
            color: Some(k),
            dashed: false,
        });
        if let Some(row) = o
            .rows
            .iter()
            .find(|x| x.algorithm == "sam" && x.rho == *rho)
        {
            hlines.push((row.predicted, format!("ρ = {rho}")));
        }
    }
    legend.push(LegendEntry {
        text: "dotted: predicted 2-cycle distance ηλ₁ρ/(2−ηλ₁)".into(),
        color: None,
        dashed: true,
    });
    let top = o
        .traces
        .iter()
        .flat_map(|t| t.distance.iter().copied())
        .filter(|v| v.is_finite())
        .fold(DISTANCE_FLOOR, f64::max);
    draw_bands(
        &panels[2],
        &BandPanel {
            title: format!(
                "constant ρ on ½xᵀHx (η = {}, λ₁ = {}): SAM keeps bouncing",
                o.eta,
                fmt_num(o.lambda_max)
            ),
            x_label: "step t".into(),
            y_label: "‖x_t − x⋆‖".into(),
            x_range: (1.0, o.steps as f64),
            log_x: true,
            y_range: (DISTANCE_FLOOR, top * 3.0),
            log_y: true,
            series,
            hlines,
            legend,
            legend_corner: LegendCorner::UpperRight,
        },
    )?;
    Ok(())
}

/// Writes every file into `dir` atomically.
pub fn write(r: &SamRateReport, dir: &Path) -> Result<Vec<PathBuf>> {
    let mut st = Staging::new(dir)?;
    st.bytes("sam_rate.json", &to_json(r)?)?;
    st.bytes("sam_rate_nonconvex.csv", nonconvex_csv(r).as_bytes())?;
    st.bytes("sam_rate_pl.csv", pl_csv(r).as_bytes())?;
    st.bytes("sam_rate_oscillation.csv", oscillation_csv(r).as_bytes())?;
    st.bytes("sam_rate_oscillation_trace.csv", trace_csv(r).as_bytes())?;
    st.with("sam_rate.png", |p| {
        crate::plot::render_png(p, (2100, 720), |a| draw_figure(a, r))
    })?;
    st.with("sam_rate.svg", |p| {
        crate::plot::render_svg(p, (2100, 720), |a| draw_figure(a, r))
    })?;
    st.commit()
}

/// Single-core CPU seconds, measured on the development machine (2 shared cores, heavily
/// loaded, so on a quiet machine expect less): the non-convex part evaluates `f`, `∇f` and the
/// variance over all `n·d` data entries every step (≈ 1.7 ns per entry); a PL step is `2b`
/// per-sample gradients and a batch draw (≈ 0.25 µs at `b = 1`), plus the variance every
/// `variance_every` steps.
const NONCONVEX_SECONDS_PER_ENTRY_STEP: f64 = 1.7e-9;
const PL_SECONDS_PER_STEP: f64 = 2.5e-7;

/// Estimated wall time on `cores` cores.
pub fn estimated_seconds(c: &SamRateConfig, cores: usize) -> f64 {
    let n = &c.nonconvex;
    let entries = (n.data.n_samples * n.data.dim) as f64;
    let nc = n
        .horizons
        .iter()
        .map(|&t| (t * n.paths) as f64)
        .sum::<f64>()
        * entries
        * NONCONVEX_SECONDS_PER_ENTRY_STEP;
    let p = &c.pl;
    let pl = (p.paths * p.horizons.last().copied().unwrap_or(0)) as f64
        * (PL_SECONDS_PER_STEP
            + (p.data.n_samples * p.data.dim) as f64 * NONCONVEX_SECONDS_PER_ENTRY_STEP
                / p.variance_every as f64);
    (nc + pl) / cores.max(1) as f64
}

/// Paths and horizons of `--profile paper`.
pub fn paper_profile(c: &mut SamRateConfig) {
    c.nonconvex.paths = 256;
    c.nonconvex.horizons = vec![100, 1_000, 10_000, 100_000, 1_000_000];
    c.pl.paths = 400;
    c.pl.horizons = vec![100, 1_000, 10_000, 100_000, 1_000_000];
}

/// The SAM-rate study in the registry.
pub struct Def(SamRateStudy);

impl StudyDef for Def {
    type Config = SamRateConfig;
    type Report = SamRateReport;
    const NAME: &'static str = "sam-rate";
    const ABOUT: &'static str =
        "Theorem 2 of Paper 2: unnormalized stochastic SAM at SGD's O(1/√T) rate (non-convex and PL), and normalized SAM's non-convergence";
    const LONG_ABOUT: &'static str = "Theorem 2 of Paper 2: unnormalized stochastic SAM at SGD's O(1/√T) rate (non-convex and PL), and normalized SAM's non-convergence.\n\nWithout CONFIG, runs the embedded default (experiments/sam_rate.toml): (1) on the sigmoid loss (n = 100, d = 10), SAM with batch 1 used at both points, γ = 1/(β√T), ρ = 1/(βT^¼), T = 10²…10⁵, 128 paths each: the average squared gradient norm against (4β(f(w₀) − f⋆) + 8σ²/b)/√T, bracketed between a strict and a lenient estimate of f⋆ and σ²; (2) on logistic + ridge, the PL step sizes and E f(w_T) − f⋆ against 3β²(f(w₀) − f⋆)/(μ²T²) + 22βσ²/(μ²bT); (3) full-batch normalized SAM with constant ρ on a quadratic, whose distance to the minimum settles at ηλ₁ρ/(2 − ηλ₁). Writes sam_rate.json, sam_rate_*.csv, sam_rate.png/.svg to --out (default plots/sam-rate). --paths sets the paths of parts (1) and (2), --seed the master seed; --profile paper uses 256/400 paths and adds T = 10⁶ (prints its estimated time first).";
    const DEFAULT: Experiment = Experiment {
        path: "experiments/sam_rate.toml",
        text: crate::study::sam_rate::DEFAULT_CONFIG,
    };
    const EXPERIMENTS: &'static [Experiment] = &[Self::DEFAULT];

    fn apply(c: &mut SamRateConfig, o: &Overrides) -> Result<()> {
        if o.seeds.is_some() {
            return Err(Overrides::unsupported(Self::NAME, "--seeds"));
        }
        match o.profile.as_deref() {
            None => {}
            Some("paper") => paper_profile(c),
            Some(other) => {
                return Err(Error::config(
                    "--profile",
                    other,
                    "must be `paper` (the only preset of the sam-rate study)",
                ))
            }
        }
        if let Some(p) = o.paths {
            c.nonconvex.paths = p;
            c.pl.paths = p;
        }
        if let Some(s) = o.seed {
            c.seed = s;
        }
        if o.profile.is_some() {
            eprintln!(
                "profile {}: {} + {} paths, T up to {}; estimated {:.0} s on 2 cores",
                o.profile.as_deref().unwrap_or_default(),
                c.nonconvex.paths,
                c.pl.paths,
                c.nonconvex.horizons.last().copied().unwrap_or(0),
                estimated_seconds(c, 2)
            );
        }
        Ok(())
    }
    fn build(config: SamRateConfig) -> Result<Self> {
        SamRateStudy::new(config).map(Def)
    }
    fn config(&self) -> &SamRateConfig {
        &self.0.config
    }
    fn total_work(&self) -> u64 {
        self.0.total_work()
    }
    fn run(&self, threads: usize, progress: Option<Progress>) -> Result<SamRateReport> {
        self.0.run(threads, progress)
    }
    fn table(r: &SamRateReport) -> String {
        table(r)
    }
    fn write(&self, r: &SamRateReport, dir: &Path) -> Result<Vec<PathBuf>> {
        write(r, dir)
    }
    fn verdicts(r: &SamRateReport) -> &[Verdict] {
        &r.verdicts
    }
    fn observations(r: &SamRateReport) -> &[Observation] {
        &r.observations
    }
    // Memory and work estimate (checked before anything is allocated).
    fn budget(config: &SamRateConfig, threads: usize) -> Result<crate::study::budget::Budget> {
        SamRateStudy::budget(config, threads)
    }
}
