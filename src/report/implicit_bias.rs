//! Table, CSV files and figures of the implicit-bias study, and its registry entry.
//!
//! CSV files are tidy (one table per file, one header, long format):
//! `implicit_bias_runs.csv` (one row per run, fine-tuning arms included),
//! `implicit_bias_cells.csv` (one row per method and `ρ`), `implicit_bias_alpha_eff.csv` (one row
//! per run and coordinate), `implicit_bias_curves.csv` (representative seed, one row per run and
//! checkpoint), `implicit_bias_line.csv` (one row per seed, `ρ` and `t`),
//! `implicit_bias_verdicts.csv`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use plotters::coord::Shift;
use plotters::prelude::*;

use crate::error::Result;
use crate::output::{to_json, Staging};
use crate::plot::bands::{draw_bands, Band, BandPanel, BandSeries, LegendCorner, LegendEntry};
use crate::plot::dots::{draw_dot_panel, DotPanel, DotSeries};
use crate::plot::draw_err;
use crate::registry::{Experiment, Overrides, Progress, StudyDef};
use crate::report::csv::{self, Table};
use crate::study::implicit_bias::{
    CellSummary, ImplicitBiasConfig, ImplicitBiasReport, ImplicitBiasStudy, RunRecord, Spread,
    ERM_THEN_SAM, SAM_THEN_ERM,
};
use crate::study::verdict::{fmt_num, summary_line, Observation, Verdict};

fn opt(v: Option<f64>) -> String {
    v.map_or("—".into(), fmt_num)
}

fn med(s: &Option<Spread>) -> Option<f64> {
    s.map(|s| s.median.median)
}

fn med_ci(s: &Option<Spread>) -> String {
    match s {
        Some(s) => format!(
            "{} [{}, {}]",
            fmt_num(s.median.median),
            fmt_num(s.median.lo),
            fmt_num(s.median.hi)
        ),
        None => "—".into(),
    }
}

fn rho_text(rho: f64) -> String {
    if rho == 0.0 {
        "—".into()
    } else {
        format!("{rho}")
    }
}

fn cell_row(s: &mut String, x: &CellSummary) {
    let dual = match (med(&x.dual_distance), x.dual_worst) {
        (Some(m), Some((w, seed))) => format!("{} ({} s{seed})", fmt_num(m), fmt_num(w)),
        _ => "—".into(),
    };
    let delta = match (med(&x.delta_on), med(&x.delta_off)) {
        (Some(a), Some(b)) => format!("{:.3}/{:.3}", a, b),
        _ => "—".into(),
    };
    let _ = writeln!(
        s,
        "{:<14} {:>5} {:>6} {:>30} {:>22} {:>7} {:>8} {:>13} {:>7} {:>5} {:>22}",
        x.label,
        rho_text(x.rho),
        format!("{}/{}", x.included, x.runs),
        med_ci(&x.test_loss),
        med_ci(&x.ratio_to_gd),
        format!("{}/{}", x.vs_gd.a_better, x.vs_gd.pairs),
        opt(med(&x.alpha_eff_geomean)),
        delta,
        opt(med(&x.beta_l1)),
        med(&x.support_size).map_or("—".into(), |v| format!("{v:.1}")),
        dual,
    );
}

/// The printed summary.
pub fn table(r: &ImplicitBiasReport) -> String {
    let c = &r.header.config;
    let mut s = String::new();
    let _ = writeln!(s, "{}", c.display_title());
    let _ = writeln!(
        s,
        "n = {}, d = {}, k = {}, α = {}, γ = {} ({}/d), {} steps · {} seeds · seed {} · {} thread(s) · {:.1} s",
        c.data.n,
        c.data.d,
        c.data.k,
        c.train.alpha,
        fmt_num(r.eta),
        c.train.step_times_d,
        c.train.steps,
        c.seeds,
        r.header.seed,
        r.header.threads,
        r.header.elapsed_s
    );
    let _ = writeln!(
        s,
        "test loss = {}; medians over runs that fit near β* (\"ok\"), 95 % order-statistic CIs; ratio = per-seed test loss / GD's; better = seeds beating GD",
        if r.sampled() {
            "sampled (1000 points)"
        } else {
            "population ½‖β − β*‖²"
        }
    );
    let _ = writeln!(s);
    let _ = writeln!(
        s,
        "{:<14} {:>5} {:>6} {:>30} {:>22} {:>7} {:>8} {:>13} {:>7} {:>5} {:>22}",
        "method",
        "ρ",
        "ok",
        "test loss [CI]",
        "ratio to GD [CI]",
        "better",
        "α_eff gm",
        "Δ on/off",
        "‖β‖₁",
        "‖β‖₀",
        "dual dist (worst)"
    );
    for x in &r.cells {
        cell_row(&mut s, x);
    }
    let tuned: Vec<String> = r
        .tuned
        .iter()
        .map(|t| format!("{} {}", t.method, opt(t.rho)))
        .collect();
    let l1: Vec<f64> = r.problems.iter().map(|p| p.beta_star_l1).collect();
    let l1m = crate::stats::median_ci(&l1, 0.5).median;
    let _ = writeln!(
        s,
        "tuned ρ (smallest median ratio to GD, cells without exclusions): {} · median ‖β*‖₁ = {}",
        tuned.join(", "),
        fmt_num(l1m)
    );
    if let Some(ft) = &r.finetune {
        let f = c.finetune().expect("finetune report implies config");
        let _ = writeln!(
            s,
            "\nfine-tuning: switch at step {} of {} (continued ERM's training loss there: median {}); ratio and better against continued ERM (= the GD run)",
            f.switch_step,
            c.train.steps,
            med_ci(&ft.switch_train_loss)
        );
        let _ = writeln!(
            s,
            "{:<14} {:>5} {:>6} {:>30} {:>22} {:>7} {:>10}",
            "arm", "ρ", "ok", "test loss [CI]", "ratio [CI]", "better", "monotone"
        );
        for x in &ft.cells {
            let mono = if x.arm == ERM_THEN_SAM {
                format!("{}/{}", x.monotone, x.monotone_of)
            } else {
                "".into()
            };
            let _ = writeln!(
                s,
                "{:<14} {:>5} {:>6} {:>30} {:>22} {:>7} {:>10}",
                x.cell.label,
                x.rho,
                format!("{}/{}", x.cell.included, x.cell.runs),
                med_ci(&x.cell.test_loss),
                med_ci(&x.cell.ratio_to_gd),
                format!("{}/{}", x.cell.vs_gd.a_better, x.cell.vs_gd.pairs),
                mono
            );
        }
        let _ = writeln!(
            s,
            "tuned ρ: ERM → 1-SAM {}, 1-SAM → ERM {}",
            opt(ft.tuned_erm_then_sam),
            opt(ft.tuned_sam_then_erm)
        );
    }
    let _ = writeln!(s, "\nverdicts:");
    for v in &r.verdicts {
        let _ = writeln!(s, "{}", v.line(true));
        let _ = writeln!(s, "      {}", v.reason);
    }
    let _ = writeln!(s, "\nobservations:");
    for o in &r.observations {
        let _ = writeln!(s, "{}", o.line());
    }
    for w in &r.header.warnings {
        let _ = writeln!(s, "warning: {w}");
    }
    let _ = writeln!(s, "\n{}", summary_line(&r.verdicts));
    s
}

fn num(v: f64) -> String {
    if v.is_finite() {
        format!("{v}")
    } else {
        String::new()
    }
}

fn onum(v: Option<f64>) -> String {
    v.map_or(String::new(), num)
}

fn all_runs(r: &ImplicitBiasReport) -> Vec<&RunRecord> {
    let mut v: Vec<&RunRecord> = r.runs.iter().collect();
    if let Some(ft) = &r.finetune {
        for x in &ft.records {
            v.push(&x.erm_then_sam);
            v.push(&x.sam_then_erm);
        }
    }
    v
}

/// `implicit_bias_runs.csv`.
pub fn runs_csv(r: &ImplicitBiasReport) -> String {
    let mut t = Table::new(&[
        "seed",
        "method",
        "rho",
        "outcome",
        "steps_done",
        "train_loss",
        "test_loss",
        "test_loss_sampled",
        "beta_l1",
        "support_size",
        "false_positives",
        "false_negatives",
        "alpha_eff_geomean",
        "delta_on",
        "delta_off",
        "sign_flips",
        "dual_distance",
        "dual_distance_without_half",
    ]);
    for x in all_runs(r) {
        t.row(&[
            &x.seed,
            &x.method,
            &x.rho,
            &x.outcome.name(),
            &x.steps_done,
            &num(x.train_loss),
            &num(x.test_loss),
            &num(x.test_loss_sampled),
            &num(x.beta_l1),
            &x.support_size,
            &x.false_positives,
            &x.false_negatives,
            &onum(x.alpha_eff_geomean),
            &onum(x.delta_on),
            &onum(x.delta_off),
            &x.sign_flips,
            &onum(x.dual_distance),
            &onum(x.dual_distance_without_half),
        ]);
    }
    t.finish()
}

/// `implicit_bias_cells.csv`.
pub fn cells_csv(r: &ImplicitBiasReport) -> String {
    let mut t = Table::new(&[
        "method",
        "rho",
        "runs",
        "included",
        "test_median",
        "test_lo",
        "test_hi",
        "test_q25",
        "test_q75",
        "ratio_median",
        "ratio_lo",
        "ratio_hi",
        "better_than_reference",
        "pairs",
        "sign_p",
        "alpha_eff_geomean_median",
        "delta_on_median",
        "delta_off_median",
        "delta_ratio_median",
        "beta_l1_median",
        "support_size_median",
        "dual_median",
        "dual_lo",
        "dual_hi",
        "dual_worst",
        "dual_worst_seed",
        "monotone",
        "monotone_of",
    ]);
    let mut rows: Vec<(&CellSummary, [String; 2])> = r
        .cells
        .iter()
        .map(|c| (c, [String::new(), String::new()]))
        .collect();
    if let Some(ft) = &r.finetune {
        for x in &ft.cells {
            let m = if x.arm == ERM_THEN_SAM {
                [x.monotone.to_string(), x.monotone_of.to_string()]
            } else {
                [String::new(), String::new()]
            };
            rows.push((&x.cell, m));
        }
    }
    for (x, mono) in rows {
        let sp = |v: &Option<Spread>| -> [String; 5] {
            match v {
                Some(v) => [
                    num(v.median.median),
                    num(v.median.lo),
                    num(v.median.hi),
                    num(v.q25),
                    num(v.q75),
                ],
                None => Default::default(),
            }
        };
        let tl = sp(&x.test_loss);
        let q = sp(&x.ratio_to_gd);
        let d = sp(&x.dual_distance);
        t.row(&[
            &x.method,
            &x.rho,
            &x.runs,
            &x.included,
            &tl[0],
            &tl[1],
            &tl[2],
            &tl[3],
            &tl[4],
            &q[0],
            &q[1],
            &q[2],
            &x.vs_gd.a_better,
            &x.vs_gd.pairs,
            &num(x.vs_gd.sign.p_positive),
            &onum(med(&x.alpha_eff_geomean)),
            &onum(med(&x.delta_on)),
            &onum(med(&x.delta_off)),
            &onum(med(&x.delta_ratio)),
            &onum(med(&x.beta_l1)),
            &onum(med(&x.support_size)),
            &d[0],
            &d[1],
            &d[2],
            &onum(x.dual_worst.map(|w| w.0)),
            &csv::opt(x.dual_worst.map(|w| w.1)),
            &mono[0],
            &mono[1],
        ]);
    }
    t.finish()
}

/// `implicit_bias_alpha_eff.csv`.
pub fn alpha_csv(r: &ImplicitBiasReport) -> String {
    let k = r.header.config.data.k;
    let mut t = Table::new(&[
        "seed",
        "method",
        "rho",
        "coordinate",
        "on_support",
        "alpha_eff",
        "delta",
    ]);
    let a0 = r.header.config.train.alpha;
    for x in all_runs(r) {
        for (i, a) in x.alpha_eff.iter().enumerate() {
            t.row(&[
                &x.seed,
                &x.method,
                &x.rho,
                &i,
                &(i < k),
                &onum(*a),
                &onum(a.map(|a| -2.0 * (a / a0).ln())),
            ]);
        }
    }
    t.finish()
}

/// `implicit_bias_curves.csv`.
pub fn curves_csv(r: &ImplicitBiasReport) -> String {
    let mut t = Table::new(&[
        "seed",
        "method",
        "rho",
        "step",
        "train_loss",
        "test_loss",
        "test_loss_sampled",
    ]);
    for x in &r.runs {
        if let Some(c) = &x.curve {
            for i in 0..c.step.len() {
                t.row(&[
                    &x.seed,
                    &x.method,
                    &x.rho,
                    &c.step[i],
                    &num(c.train_loss[i]),
                    &num(c.test_loss[i]),
                    &num(c.test_loss_sampled[i]),
                ]);
            }
        }
    }
    t.finish()
}

/// `implicit_bias_line.csv`.
pub fn line_csv(r: &ImplicitBiasReport) -> String {
    let mut t = Table::new(&["seed", "rho", "t", "train_loss", "test_loss"]);
    if let Some(ft) = &r.finetune {
        for x in &ft.records {
            if let Some(l) = &x.line {
                for i in 0..l.t.len() {
                    t.row(&[
                        &x.seed,
                        &x.rho,
                        &l.t[i],
                        &num(l.train_loss[i]),
                        &num(l.test_loss[i]),
                    ]);
                }
            }
        }
    }
    t.finish()
}

/// `implicit_bias_verdicts.csv` (the shared verdict table).
pub fn verdicts_csv(r: &ImplicitBiasReport) -> String {
    csv::verdicts(&r.verdicts)
}

// ---------------------------------------------------------------- figures

fn colour_of(method: &str) -> usize {
    match method {
        "gd" => 0,
        "sgd" => 4,
        "n_sam" => 1,
        "one_sam" => 2,
        _ => 3,
    }
}

fn label_of(r: &ImplicitBiasReport, method: &str) -> String {
    r.cells
        .iter()
        .find(|c| c.method == method)
        .map_or(method.to_string(), |c| c.label.clone())
}

fn sam_methods(r: &ImplicitBiasReport) -> Vec<String> {
    let mut v: Vec<String> = Vec::new();
    for c in &r.cells {
        if c.rho > 0.0 && !v.contains(&c.method) {
            v.push(c.method.clone());
        }
    }
    v
}

fn log_range(values: impl Iterator<Item = f64>, pad: f64) -> (f64, f64) {
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for v in values.filter(|v| v.is_finite() && *v > 0.0) {
        lo = lo.min(v);
        hi = hi.max(v);
    }
    if !lo.is_finite() {
        return (0.1, 10.0);
    }
    if hi <= lo * 1.0001 {
        return (lo / 2.0, hi * 2.0);
    }
    (lo / pad, hi * pad)
}

/// A `ρ` panel: one median line + quartile band per SAM method, flat lines for GD and SGD.
fn rho_panel(
    r: &ImplicitBiasReport,
    title: &str,
    y_label: &str,
    get: &dyn Fn(&CellSummary) -> Option<Spread>,
    log_y: bool,
    hlines: Vec<(f64, String)>,
    flat: &[&str],
) -> BandPanel {
    let rhos = &r.header.config.train.rho;
    let (x0, x1) = (rhos[0] / 1.3, rhos[rhos.len() - 1] * 1.3);
    let mut series = Vec::new();
    let mut legend = Vec::new();
    let mut all = Vec::new();
    for m in flat {
        if let Some(c) = r.cells.iter().find(|c| c.method == *m) {
            if let Some(s) = get(c) {
                let n = 2;
                series.push(BandSeries {
                    color: colour_of(m),
                    dashed: true,
                    x: vec![x0, x1],
                    y: vec![s.median.median; n],
                    bands: vec![Band {
                        lo: vec![s.q25; n],
                        hi: vec![s.q75; n],
                        opacity: 0.10,
                    }],
                });
                all.extend([s.q25, s.q75, s.median.median]);
                legend.push(LegendEntry {
                    text: format!("{} (no ρ)", c.label),
                    color: Some(colour_of(m)),
                    dashed: true,
                });
            }
        }
    }
    for m in sam_methods(r) {
        let cells: Vec<&CellSummary> = r.cells.iter().filter(|c| c.method == m).collect();
        let mut x = Vec::new();
        let (mut y, mut lo, mut hi) = (Vec::new(), Vec::new(), Vec::new());
        let mut notes = Vec::new();
        for c in &cells {
            if !c.excluded.is_empty() {
                notes.push(format!("{}: {}/{}", c.rho, c.excluded.len(), c.runs));
            }
            x.push(c.rho);
            match get(c) {
                Some(s) => {
                    y.push(s.median.median);
                    lo.push(s.q25);
                    hi.push(s.q75);
                    all.extend([s.q25, s.q75, s.median.median]);
                }
                None => {
                    y.push(f64::NAN);
                    lo.push(f64::NAN);
                    hi.push(f64::NAN);
                }
            }
        }
        // Solid between cells without excluded runs; dashed into and between cells with some
        // (their medians are over the runs that fit only).
        let clean: Vec<bool> = cells.iter().map(|c| c.excluded.is_empty()).collect();
        let solid: Vec<f64> = y
            .iter()
            .zip(&clean)
            .map(|(v, ok)| if *ok { *v } else { f64::NAN })
            .collect();
        let dashed: Vec<f64> = (0..y.len())
            .map(|i| {
                let near =
                    !clean[i] || (i > 0 && !clean[i - 1]) || (i + 1 < y.len() && !clean[i + 1]);
                if near {
                    y[i]
                } else {
                    f64::NAN
                }
            })
            .collect();
        series.push(BandSeries {
            color: colour_of(&m),
            dashed: false,
            x: x.clone(),
            y: solid,
            bands: vec![Band {
                lo,
                hi,
                opacity: 0.18,
            }],
        });
        if clean.iter().any(|ok| !ok) {
            series.push(BandSeries {
                color: colour_of(&m),
                dashed: true,
                x,
                y: dashed,
                bands: vec![],
            });
        }
        let note = if notes.is_empty() {
            String::new()
        } else {
            format!(" — excluded at ρ {}", notes.join(", "))
        };
        legend.push(LegendEntry {
            text: format!("{}{note}", label_of(r, &m)),
            color: Some(colour_of(&m)),
            dashed: false,
        });
    }
    for (v, _) in &hlines {
        all.push(*v);
    }
    let y_range = if log_y {
        log_range(all.into_iter(), 1.5)
    } else {
        let lo = all
            .iter()
            .copied()
            .filter(|v| v.is_finite())
            .fold(f64::INFINITY, f64::min);
        let hi = all
            .iter()
            .copied()
            .filter(|v| v.is_finite())
            .fold(f64::NEG_INFINITY, f64::max);
        let span = (hi - lo).max(1e-9);
        (lo - 0.08 * span, hi + 0.08 * span)
    };
    BandPanel {
        title: title.into(),
        x_label: "ρ".into(),
        y_label: y_label.into(),
        x_range: (x0, x1),
        log_x: true,
        y_range,
        log_y,
        series,
        hlines,
        legend,
        legend_corner: LegendCorner::LowerRight,
    }
}

fn draw_rho_figure<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    r: &ImplicitBiasReport,
) -> Result<()> {
    let c = &r.header.config;
    let (w, _) = root.dim_in_pixel();
    let sc = (w as f64 / 1600.0).clamp(0.5, 3.0);
    let root = crate::plot::titled(root, &format!(
                "{} ({} seeds): medians (lines), quartiles (bands) over runs that fit near β*; dashed: some runs excluded",
                c.display_title(), c.seeds
            ), 22.0 * sc)
        .map_err(draw_err)?;
    let panels = root.split_evenly((2, 3));
    let metric = if r.sampled() {
        "sampled test loss"
    } else {
        "test loss ½‖β − β*‖²"
    };
    draw_bands(
        &panels[0],
        &rho_panel(
            r,
            &format!("{metric} vs ρ"),
            metric,
            &|c| c.test_loss,
            true,
            vec![],
            &["gd", "sgd"],
        ),
    )?;
    draw_bands(
        &panels[1],
        &rho_panel(
            r,
            "test loss / GD's on the same problem (per-seed ratio)",
            "ratio to GD",
            &|c| c.ratio_to_gd,
            true,
            vec![(1.0, "GD".into())],
            &["sgd"],
        ),
    )?;
    draw_bands(
        &panels[2],
        &rho_panel(
            r,
            "α_eff (geometric mean over coordinates)",
            "α_eff",
            &|c| c.alpha_eff_geomean,
            true,
            vec![(c.train.alpha, format!("α = {}", c.train.alpha))],
            &["gd"],
        ),
    )?;
    let l1: Vec<f64> = r.problems.iter().map(|p| p.beta_star_l1).collect();
    let l1m = crate::stats::median_ci(&l1, 0.5).median;
    let mut p = rho_panel(
        r,
        "‖β‖₁ of the trained predictor",
        "‖β‖₁",
        &|c| c.beta_l1,
        false,
        vec![(l1m, format!("median ‖β*‖₁ = {}", fmt_num(l1m)))],
        &["gd", "sgd"],
    );
    p.legend_corner = LegendCorner::UpperRight;
    draw_bands(&panels[3], &p)?;
    let thr = c.classify.support_threshold;
    let mut p = rho_panel(
        r,
        &format!("‖β‖₀: coordinates with |β_i| > {thr} (k = {})", c.data.k),
        "‖β‖₀",
        &|c| c.support_size,
        false,
        vec![(c.data.k as f64, format!("k = {}", c.data.k))],
        &["gd", "sgd"],
    );
    p.legend_corner = LegendCorner::UpperRight;
    draw_bands(&panels[4], &p)?;
    let tol = c.verdict.dual_tolerance;
    draw_bands(
        &panels[5],
        &rho_panel(
            r,
            "‖β − β̂‖₂, β̂ = argmin ψ_α_eff on Xβ = y (dual Newton)",
            "ℓ2 distance",
            &|c| c.dual_distance,
            true,
            vec![(tol, format!("tolerance {}", fmt_num(tol)))],
            &["gd"],
        ),
    )
}

fn draw_curves_figure<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    r: &ImplicitBiasReport,
) -> Result<()> {
    let c = &r.header.config;
    let rho = c.verdict.reference_rho;
    let seed = c.record.representative_seed;
    let (w, _) = root.dim_in_pixel();
    let sc = (w as f64 / 1600.0).clamp(0.5, 3.0);
    let root = crate::plot::titled(
        root,
        &format!("training curves, seed {seed}: GD, SGD and the SAM variants at ρ = {rho}"),
        22.0 * sc,
    )
    .map_err(draw_err)?;
    let panels = root.split_evenly((1, 2));
    let runs: Vec<&RunRecord> = r
        .runs
        .iter()
        .filter(|x| x.seed == seed && x.curve.is_some())
        .filter(|x| x.rho == 0.0 || (x.rho - rho).abs() < 1e-12)
        .collect();
    for (k, (name, get)) in [
        (
            "training loss",
            &(|c: &crate::study::implicit_bias::Curve| c.train_loss.clone())
                as &dyn Fn(&crate::study::implicit_bias::Curve) -> Vec<f64>,
        ),
        (
            if r.sampled() {
                "sampled test loss"
            } else {
                "test loss ½‖β − β*‖²"
            },
            &|c: &crate::study::implicit_bias::Curve| {
                if r.sampled() {
                    c.test_loss_sampled.clone()
                } else {
                    c.test_loss.clone()
                }
            },
        ),
    ]
    .into_iter()
    .enumerate()
    {
        let mut series = Vec::new();
        let mut legend = Vec::new();
        let mut all = Vec::new();
        for x in &runs {
            let cv = x.curve.as_ref().unwrap();
            let y = get(cv);
            all.extend(y.iter().copied());
            series.push(BandSeries {
                color: colour_of(&x.method),
                dashed: x.method == "sgd",
                x: cv.step.iter().map(|s| *s as f64).collect(),
                y,
                bands: vec![],
            });
            legend.push(LegendEntry {
                text: format!(
                    "{}{}",
                    x.method_label(r),
                    if x.outcome.included() {
                        String::new()
                    } else {
                        format!(" ({})", x.outcome.name())
                    }
                ),
                color: Some(colour_of(&x.method)),
                dashed: x.method == "sgd",
            });
        }
        let y_range = log_range(all.into_iter(), 2.0);
        draw_bands(
            &panels[k],
            &BandPanel {
                title: format!("{name} (log–log)"),
                x_label: "step".into(),
                y_label: name.into(),
                x_range: (1.0, c.train.steps as f64),
                log_x: true,
                y_range,
                log_y: true,
                series,
                hlines: vec![],
                legend,
                legend_corner: LegendCorner::LowerRight,
            },
        )?;
    }
    Ok(())
}

trait MethodLabel {
    fn method_label(&self, r: &ImplicitBiasReport) -> String;
}

impl MethodLabel for RunRecord {
    fn method_label(&self, r: &ImplicitBiasReport) -> String {
        label_of(r, &self.method)
    }
}

fn draw_alpha_figure<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    r: &ImplicitBiasReport,
) -> Result<()> {
    let c = &r.header.config;
    let rho = c.verdict.reference_rho;
    let seed = c.record.representative_seed;
    let k = c.data.k;
    let (w, _) = root.dim_in_pixel();
    let sc = (w as f64 / 1600.0).clamp(0.5, 3.0);
    let root = crate::plot::titled(root, &format!("effective initialisation α_eff (α = {}), SAM variants at ρ = {rho}; the support of β* is coordinates 1–{k}", c.train.alpha), 22.0 * sc)
        .map_err(draw_err)?;
    let panels = root.split_evenly((1, 2));
    // GD, n-SAM, 1-SAM, then m-SAM: the dot panels colour series by position, and this order
    // gives every method the colour it has in the other figures.
    let mut methods = vec!["gd".to_string(), "n_sam".to_string(), "one_sam".to_string()];
    methods.extend(
        sam_methods(r)
            .into_iter()
            .filter(|m| m.starts_with("m_sam")),
    );
    let pick = |m: &str, s: usize| -> Option<&RunRecord> {
        r.runs
            .iter()
            .find(|x| x.seed == s && x.method == m && (x.rho == 0.0 || (x.rho - rho).abs() < 1e-12))
    };
    let d = c.data.d;
    let cats: Vec<String> = (1..=d)
        .map(|i| {
            if i <= k {
                format!("{i}*")
            } else {
                format!("{i}")
            }
        })
        .collect();
    let series: Vec<DotSeries> = methods
        .iter()
        .filter_map(|m| pick(m, seed).map(|x| (m, x)))
        .map(|(m, x)| DotSeries {
            label: label_of(r, m),
            values: x
                .alpha_eff
                .iter()
                .map(|a| {
                    let v = a.unwrap_or(f64::NAN);
                    (v, f64::NAN, f64::NAN)
                })
                .collect(),
        })
        .collect();
    let t1 = format!("seed {seed}: α_eff per coordinate (* = on the support)");
    draw_dot_panel(
        &panels[0],
        &DotPanel {
            title: &t1,
            y_label: "α_eff",
            categories: cats,
            series,
            reference: None,
            log_y: true,
            unit_interval: false,
        },
    )?;
    let cells: Vec<&CellSummary> = methods
        .iter()
        .filter_map(|m| {
            r.cells
                .iter()
                .find(|x| &x.method == m && (x.rho == 0.0 || (x.rho - rho).abs() < 1e-12))
        })
        .collect();
    let trip = |s: &Option<Spread>| {
        s.map_or((f64::NAN, f64::NAN, f64::NAN), |s| {
            (s.median.median, s.q25, s.q75)
        })
    };
    let t2 = format!(
        "Δ = −ln(α_eff²/α²), mean on / off the support: median and quartiles over {} seeds",
        c.seeds
    );
    draw_dot_panel(
        &panels[1],
        &DotPanel {
            title: &t2,
            y_label: "Δ",
            categories: cells.iter().map(|x| x.label.clone()).collect(),
            series: vec![
                DotSeries {
                    label: "on the support".into(),
                    values: cells.iter().map(|x| trip(&x.delta_on)).collect(),
                },
                DotSeries {
                    label: "off the support".into(),
                    values: cells.iter().map(|x| trip(&x.delta_off)).collect(),
                },
            ],
            reference: None,
            log_y: true,
            unit_interval: false,
        },
    )
}

fn draw_line_figure<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    r: &ImplicitBiasReport,
) -> Result<()> {
    let c = &r.header.config;
    let Some(ft) = &r.finetune else { return Ok(()) };
    let Some(rho) = ft
        .tuned_erm_then_sam
        .or_else(|| c.finetune().map(|f| f.rho[0]))
    else {
        return Ok(());
    };
    let seed = c.record.representative_seed;
    let (w, _) = root.dim_in_pixel();
    let sc = (w as f64 / 1600.0).clamp(0.5, 3.0);
    let root = crate::plot::titled(root, &format!("the line w(t) = (1 − t) w_ERM + t w_ERM→1-SAM (ρ = {rho}): t = 0 continued ERM, t = 1 fine-tuned"), 22.0 * sc)
        .map_err(draw_err)?;
    let panels = root.split_evenly((1, 2));
    let recs: Vec<_> = ft
        .records
        .iter()
        .filter(|x| (x.rho - rho).abs() < 1e-12 && x.line.is_some())
        .collect();
    if let Some(x) = recs.iter().find(|x| x.seed == seed) {
        let l = x.line.as_ref().unwrap();
        let all = l.train_loss.iter().chain(&l.test_loss).copied();
        // Two decades of head room above the test loss for the legend.
        let (ylo, yhi) = log_range(all, 2.0);
        draw_bands(
            &panels[0],
            &BandPanel {
                title: format!("seed {seed}: losses along the line"),
                x_label: "t".into(),
                y_label: "loss".into(),
                x_range: (l.t[0], l.t[l.t.len() - 1]),
                log_x: false,
                y_range: (ylo, yhi * 100.0),
                log_y: true,
                series: vec![
                    BandSeries {
                        color: 1,
                        dashed: false,
                        x: l.t.clone(),
                        y: l.test_loss.clone(),
                        bands: vec![],
                    },
                    BandSeries {
                        color: 0,
                        dashed: true,
                        x: l.t.clone(),
                        y: l.train_loss.clone(),
                        bands: vec![],
                    },
                ],
                hlines: vec![],
                legend: vec![
                    LegendEntry {
                        text: "test loss ½‖β − β*‖²".into(),
                        color: Some(1),
                        dashed: false,
                    },
                    LegendEntry {
                        text: "training loss".into(),
                        color: Some(0),
                        dashed: true,
                    },
                ],
                legend_corner: LegendCorner::UpperRight,
            },
        )?;
    }
    // Median over seeds of the change of the test loss relative to t = 0, in percent (a linear
    // axis: the labels say how small the change is).
    if let Some(first) = recs.first().and_then(|x| x.line.as_ref()) {
        let t = first.t.clone();
        let i0 = t
            .iter()
            .enumerate()
            .min_by(|a, b| a.1.abs().total_cmp(&b.1.abs()))
            .map_or(0, |(i, _)| i);
        let (mut y, mut lo, mut hi) = (Vec::new(), Vec::new(), Vec::new());
        for j in 0..t.len() {
            let mut v: Vec<f64> = recs
                .iter()
                .map(|x| {
                    let l = x.line.as_ref().unwrap();
                    100.0 * (l.test_loss[j] / l.test_loss[i0] - 1.0)
                })
                .filter(|v| v.is_finite())
                .collect();
            v.sort_by(f64::total_cmp);
            y.push(crate::study::saddle::quantile_sorted(&v, 0.5));
            lo.push(crate::study::saddle::quantile_sorted(&v, 0.25));
            hi.push(crate::study::saddle::quantile_sorted(&v, 0.75));
        }
        let series = vec![BandSeries {
            color: 2,
            dashed: false,
            x: t.clone(),
            y,
            bands: vec![Band {
                lo,
                hi,
                opacity: 0.2,
            }],
        }];
        let y_range = crate::plot::bands::auto_y_range(&series, 0.1);
        draw_bands(
            &panels[1],
            &BandPanel {
                title: format!(
                    "change of the test loss from t = 0 (%): median and quartiles over {} seeds",
                    recs.len()
                ),
                x_label: "t".into(),
                y_label: "100 (L(t)/L(0) − 1)".into(),
                x_range: (t[0], t[t.len() - 1]),
                log_x: false,
                y_range,
                log_y: false,
                series,
                hlines: vec![(0.0, "continued ERM (t = 0)".into())],
                legend: vec![],
                legend_corner: LegendCorner::UpperRight,
            },
        )?;
    }
    Ok(())
}

fn draw_finetune_figure<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    r: &ImplicitBiasReport,
) -> Result<()> {
    let c = &r.header.config;
    let (Some(ft), Some(f)) = (&r.finetune, c.finetune()) else {
        return Ok(());
    };
    let cell = |arm: &str, rho: f64| {
        ft.cells
            .iter()
            .find(|x| x.arm == arm && (x.rho - rho).abs() < 1e-12)
    };
    let cats: Vec<String> = f
        .rho
        .iter()
        .map(|&rho| {
            let ex: Vec<usize> = [ERM_THEN_SAM, SAM_THEN_ERM]
                .iter()
                .map(|a| cell(a, rho).map_or(0, |x| x.cell.excluded.len()))
                .collect();
            if ex.iter().any(|e| *e > 0) {
                format!("ρ {rho} (excl. {} | {})", ex[0], ex[1])
            } else {
                format!("ρ {rho}")
            }
        })
        .collect();
    let trip = |s: &Option<Spread>| {
        s.map_or((f64::NAN, f64::NAN, f64::NAN), |s| {
            (s.median.median, s.q25, s.q75)
        })
    };
    let series = [(ERM_THEN_SAM, "ERM → 1-SAM"), (SAM_THEN_ERM, "1-SAM → ERM")]
        .iter()
        .map(|(arm, label)| DotSeries {
            label: (*label).into(),
            values: f
                .rho
                .iter()
                .map(|&rho| {
                    cell(arm, rho).map_or((f64::NAN, f64::NAN, f64::NAN), |x| {
                        trip(&x.cell.ratio_to_gd)
                    })
                })
                .collect(),
        })
        .collect();
    let (w, _) = root.dim_in_pixel();
    let sc = (w as f64 / 1600.0).clamp(0.5, 3.0);
    let root = crate::plot::titled(root, &format!(
                "fine-tuning, {} problems, switch at step {} of {}, vs continued ERM; excl. = excluded runs (ERM → 1-SAM | 1-SAM → ERM)",
                c.seeds, f.switch_step, c.train.steps
            ), 22.0 * sc)
        .map_err(draw_err)?;
    let panels = root.split_evenly((1, 2));
    draw_dot_panel(
        &panels[0],
        &DotPanel {
            title: "test loss / continued ERM's: per-seed ratio, median and quartiles",
            y_label: "ratio (runs that fit near β*)",
            categories: cats.clone(),
            series,
            reference: Some(("continued ERM (= 1)".into(), vec![1.0; f.rho.len()])),
            log_y: true,
            unit_interval: false,
        },
    )?;
    let level = c.verdict.level;
    let frac = [(ERM_THEN_SAM, "ERM → 1-SAM"), (SAM_THEN_ERM, "1-SAM → ERM")]
        .iter()
        .map(|(arm, label)| DotSeries {
            label: (*label).into(),
            values: f
                .rho
                .iter()
                .map(|&rho| {
                    cell(arm, rho).map_or((f64::NAN, f64::NAN, f64::NAN), |x| {
                        let p = &x.cell.vs_gd;
                        let [lo, hi] = crate::stats::clopper_pearson(p.a_better, p.pairs, level);
                        (p.a_better as f64 / p.pairs.max(1) as f64, lo, hi)
                    })
                })
                .collect(),
        })
        .collect();
    let t2 = format!(
        "seeds better than continued ERM ({:.0} % CI; excluded runs count as worse)",
        100.0 * level
    );
    draw_dot_panel(
        &panels[1],
        &DotPanel {
            title: &t2,
            y_label: "fraction of seeds",
            categories: cats,
            series: frac,
            reference: Some(("½".into(), vec![0.5; f.rho.len()])),
            log_y: false,
            unit_interval: true,
        },
    )
}

/// Writes every result file into `dir`, atomically.
pub fn write(r: &ImplicitBiasReport, dir: &Path) -> Result<Vec<PathBuf>> {
    let mut st = Staging::new(dir)?;
    st.bytes("implicit_bias.json", &to_json(r)?)?;
    st.bytes("implicit_bias_runs.csv", runs_csv(r).as_bytes())?;
    st.bytes("implicit_bias_cells.csv", cells_csv(r).as_bytes())?;
    st.bytes("implicit_bias_alpha_eff.csv", alpha_csv(r).as_bytes())?;
    st.bytes("implicit_bias_curves.csv", curves_csv(r).as_bytes())?;
    st.bytes("implicit_bias_verdicts.csv", verdicts_csv(r).as_bytes())?;
    macro_rules! fig {
        ($name:expr, $size:expr, $draw:ident) => {
            st.with(&format!("{}.png", $name), |p| {
                crate::plot::render_png(p, $size, |a| $draw(a, r))
            })?;
            st.with(&format!("{}.svg", $name), |p| {
                crate::plot::render_svg(p, $size, |a| $draw(a, r))
            })?;
        };
    }
    fig!("implicit_bias_rho", (2100, 1150), draw_rho_figure);
    fig!("implicit_bias_curves", (1600, 650), draw_curves_figure);
    fig!("implicit_bias_alpha", (1600, 650), draw_alpha_figure);
    if r.finetune.is_some() {
        st.bytes("implicit_bias_line.csv", line_csv(r).as_bytes())?;
        fig!("implicit_bias_line", (1600, 650), draw_line_figure);
        fig!("implicit_bias_finetune", (1800, 650), draw_finetune_figure);
    }
    st.commit()
}

/// The implicit-bias study in the registry.
pub struct Def(ImplicitBiasStudy);

impl StudyDef for Def {
    type Config = ImplicitBiasConfig;
    type Report = ImplicitBiasReport;
    const NAME: &'static str = "implicit-bias";
    const ABOUT: &'static str =
        "m-SAM on a diagonal linear network: 1-SAM vs n-SAM vs ERM, α_eff and Theorem 1's dual";
    const LONG_ABOUT: &'static str = "m-SAM on a diagonal linear network: 1-SAM vs n-SAM vs ERM, α_eff and Theorem 1's dual.\n\nWithout CONFIG, runs the embedded default (experiments/implicit_bias_dln.toml): sparse regression (n = 20, d = 30, k = 3) with β = u ⊙ v from u = α = 0.1, γ = 10/d, 10⁴ steps of GD, SGD (batch 1), n-SAM, 5-SAM and 1-SAM over a ρ grid and 20 independent problems; the effective initialisation α_eff of each run (exact product formula) and the distance to the minimum-entropy interpolator (dual Newton); then ERM → 1-SAM and 1-SAM → ERM fine-tuning. Verdicts are paired sign tests over the seeds. Writes implicit_bias.json, implicit_bias_{runs,cells,alpha_eff,curves,line,verdicts}.csv and implicit_bias_{rho,curves,alpha,line,finetune}.png/.svg to --out (default plots/implicit-bias). --seeds sets the number of problems; --paths is not an option (there are no Monte Carlo paths: each seed is one problem and one run per method).";
    const DEFAULT: Experiment = Experiment {
        path: "experiments/implicit_bias_dln.toml",
        text: crate::study::implicit_bias::DEFAULT_CONFIG,
    };
    const EXPERIMENTS: &'static [Experiment] = &[Self::DEFAULT];

    fn apply(c: &mut ImplicitBiasConfig, o: &Overrides) -> Result<()> {
        if o.paths.is_some() {
            return Err(crate::Error::config(
                "--paths",
                o.paths.unwrap_or(0),
                "is not an option of the implicit-bias study (no Monte Carlo paths: use --seeds for the number of independent problems)",
            ));
        }
        if o.profile.is_some() {
            return Err(Overrides::unsupported(Self::NAME, "--profile"));
        }
        if let Some(s) = o.seeds {
            c.seeds = s;
        }
        if let Some(s) = o.seed {
            c.seed = s;
        }
        Ok(())
    }
    fn build(config: ImplicitBiasConfig) -> Result<Self> {
        ImplicitBiasStudy::new(config).map(Def)
    }
    fn config(&self) -> &ImplicitBiasConfig {
        &self.0.config
    }
    fn total_work(&self) -> u64 {
        self.0.total_work()
    }
    fn run(&self, threads: usize, progress: Option<Progress>) -> Result<ImplicitBiasReport> {
        self.0.run(threads, progress)
    }
    fn table(r: &ImplicitBiasReport) -> String {
        table(r)
    }
    fn write(&self, r: &ImplicitBiasReport, dir: &Path) -> Result<Vec<PathBuf>> {
        write(r, dir)
    }
    fn verdicts(r: &ImplicitBiasReport) -> &[Verdict] {
        &r.verdicts
    }
    fn observations(r: &ImplicitBiasReport) -> &[Observation] {
        &r.observations
    }
    // Memory and work estimate (checked before anything is allocated).
    fn budget(config: &ImplicitBiasConfig, threads: usize) -> Result<crate::study::budget::Budget> {
        ImplicitBiasStudy::budget(config, threads)
    }
}
