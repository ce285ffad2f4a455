//! The serializable report of the saddle study (`saddle.json`): [`SaddleReport`] with the
//! reference-run rows, distance curves with escape-time distributions, phase-diagram cells and
//! per-row boundaries (`Δ = log₁₀(ρ_sim/ρ_pred)`), and the definitions stated in words.

use std::collections::BTreeMap;

use serde::Serialize;

use super::{Decision, Observation, Outcome, SaddleConfig, Verdict};
use crate::study::header::RunHeader;

/// A reference-run row's result.
#[derive(Debug, Clone, Serialize)]
pub struct ReferenceRowReport {
    /// Algorithm.
    pub algorithm: String,
    /// `ρ`.
    pub rho: f64,
    /// `σ`.
    pub sigma: f64,
    /// Start.
    pub start: Vec<f64>,
    /// Expected outcome.
    pub expected: Outcome,
    /// Paths run.
    pub paths: usize,
    /// Paths per outcome: escape, stall, converge, undecided.
    pub counts: BTreeMap<String, usize>,
    /// Fraction with the expected outcome.
    pub fraction_expected: f64,
    /// Its Wilson interval.
    pub ci: [f64; 2],
    /// Median `‖x_T‖` (`null` = diverged).
    pub final_norm_median: f64,
    /// Median over paths of the tail mean of `‖x‖`.
    pub tail_mean_norm_median: f64,
    /// Median escape time over escaped paths (`null` if none escaped).
    pub escape_time_median: Option<f64>,
    /// `pass`/`fail`.
    pub verdict: Decision,
}

/// Full-batch SAM's stall on one spectrum (one deterministic path).
#[derive(Debug, Clone, Serialize)]
pub struct StallReport {
    /// Spectrum of the diagonal `H`.
    pub eigenvalues: Vec<f64>,
    /// `ρ`.
    pub rho: f64,
    /// Start.
    pub start: Vec<f64>,
    /// Steps run.
    pub steps: usize,
    /// Tail mean of `‖x‖` (`null` if the path escaped to the divergence bound).
    pub tail_mean_norm: f64,
    /// `ηρ max_i|λ_i| / 2`.
    pub predicted: f64,
    /// `tail_mean_norm / predicted − 1`.
    pub relative_error: f64,
    /// Amplitude of the 2-cycle along the largest-`|λ|` direction, `ηρ|λ_j|/(2 − ηλ_j)`.
    pub two_cycle_amplitude: f64,
    /// The older statement `ηρ min_{λ<0}|λ|` (for comparison; not the claim).
    pub old_formula: f64,
    /// `tail_mean_norm / old_formula − 1`.
    pub old_relative_error: f64,
    /// The eigenvalue `λ_j` of largest `|λ|`: the direction of the 2-cycle.
    pub cycle_eigenvalue: f64,
    /// `|y_j(T)| / ‖x_T‖`: the share of the final state along that eigendirection.
    pub cycle_share: f64,
    /// Fraction of the tail steps on which `y_j` changes sign (1: the attracting 2-cycle, for
    /// `λ_j > 0`; below 1 for `λ_j < 0`, where the cycle repels and the orbit wanders in
    /// `[−ηρ|λ_j|, ηρ|λ_j|]`).
    pub flip_fraction: f64,
    /// The path left the saddle (no stall).
    pub escaped: bool,
}

/// Escape-time distribution of one system.
#[derive(Debug, Clone, Serialize)]
pub struct EscapeReport {
    /// Paths.
    pub paths: usize,
    /// Paths that reached `R` by `T`.
    pub escaped: usize,
    /// Paths that had not reached `R` by `T` (right-censored at `T`).
    pub censored: usize,
    /// Paths stopped at the divergence bound (a subset of `escaped`).
    pub diverged: usize,
    /// Fraction escaped by `T` with its Wilson interval.
    pub fraction_escaped: f64,
    /// Wilson interval of `fraction_escaped`.
    pub fraction_ci: [f64; 2],
    /// Quantiles `q` of the escape time (censored paths count as `> T`): `[q, value, lo, hi]`;
    /// `null` value/bound = beyond `T` (not observed). Interval: binomial order statistics.
    pub quantiles: Vec<[Option<f64>; 4]>,
    /// Sorted escape times of the escaped paths (for the empirical CDF).
    pub times: Vec<f64>,
}

/// Curves of one system.
#[derive(Debug, Clone, Serialize)]
pub struct CurveReport {
    /// Label, e.g. `sam ρ=0.5 σ=0 discrete`.
    pub label: String,
    /// Algorithm.
    pub algorithm: String,
    /// `discrete` or the model name (`sam_sde`).
    pub system: String,
    /// How it is integrated.
    pub integrator: String,
    /// `ρ`.
    pub rho: f64,
    /// `σ`.
    pub sigma: f64,
    /// Save times.
    pub times: Vec<f64>,
    /// Mean of `‖x‖` over paths not yet stopped at the divergence bound.
    pub mean: Vec<f64>,
    /// Median of `‖x‖` (stopped paths count as `+∞`, JSON `null`).
    pub median: Vec<f64>,
    /// 10 % quantile.
    pub q10: Vec<f64>,
    /// 90 % quantile.
    pub q90: Vec<f64>,
    /// Attracted at `T` (`‖x_T‖ < ε`): count.
    pub attracted: usize,
    /// Fraction attracted at `T`.
    pub fraction_attracted: f64,
    /// Wilson interval.
    pub fraction_ci: [f64; 2],
    /// Escape times.
    pub escape: EscapeReport,
}

/// One cell of a phase diagram.
#[derive(Debug, Clone, Serialize)]
pub struct CellReport {
    /// `ρ`.
    pub rho: f64,
    /// Row parameter (`|λ|` or `σ`).
    pub y: f64,
    /// Attracted paths.
    pub attracted: usize,
    /// Paths.
    pub paths: usize,
    /// Fraction attracted.
    pub fraction: f64,
    /// Wilson interval.
    pub ci: [f64; 2],
    /// Predicted attraction fraction (USAM/mini-batch: 0 or 1; SAM: fraction of starts in the region).
    pub predicted: f64,
    /// Paths that started in the full-batch SAM region (SAM panels only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub in_region: Option<usize>,
    /// Of those, attracted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub in_region_attracted: Option<usize>,
}

/// A row's boundary.
#[derive(Debug, Clone, Serialize)]
pub struct RowBoundary {
    /// Row parameter (`|λ|` or `σ`).
    pub y: f64,
    /// Predicted `ρ`.
    pub rho_pred: Option<f64>,
    /// Simulated ½-crossing.
    pub rho_sim: Option<f64>,
    /// Its interval (crossings of the Wilson curves; `null` = outside the grid).
    pub rho_sim_ci: [Option<f64>; 2],
    /// `log₁₀(ρ_sim/ρ_pred)`.
    pub deviation_dex: Option<f64>,
}

/// One heat map.
#[derive(Debug, Clone, Serialize)]
pub struct PanelReport {
    /// Name, e.g. `usam_rho_lambda`.
    pub name: String,
    /// Algorithm.
    pub algorithm: String,
    /// `discrete` or the SDE and its integrator.
    pub system: String,
    /// `lambda` or `sigma`.
    pub y_name: String,
    /// Predicted boundary, in words.
    pub prediction: String,
    /// `ρ` grid.
    pub rhos: Vec<f64>,
    /// Row grid.
    pub ys: Vec<f64>,
    /// Cells, row-major (`ys` outer, `rhos` inner).
    pub cells: Vec<CellReport>,
    /// Per-row boundaries.
    pub boundaries: Vec<RowBoundary>,
    /// `ε` used.
    pub attraction_radius: f64,
    /// Horizon.
    pub horizon: f64,
}

/// The study's result (`saddle.json`).
#[derive(Debug, Clone, Serialize)]
pub struct SaddleReport {
    /// The shared run header.
    #[serde(flatten)]
    pub header: RunHeader<SaddleConfig>,
    /// The definitions and agreement measures, in words.
    pub definitions: BTreeMap<String, String>,
    /// `κ_d` of the `(ρ, σ)` diagram's dimension.
    pub kappa_d: f64,
    /// Reference run.
    pub reference: Vec<ReferenceRowReport>,
    /// Stall distance of full-batch SAM on several spectra.
    pub stall: Vec<StallReport>,
    /// Curves.
    pub curves: Vec<CurveReport>,
    /// Phase diagrams.
    pub phases: Vec<PanelReport>,
    /// Verdicts.
    pub verdicts: Vec<Verdict>,
    /// Informational comparisons (none in this study yet).
    pub observations: Vec<Observation>,
}

impl SaddleReport {
    /// `true` iff every verdict passes.
    pub fn all_pass(&self) -> bool {
        crate::study::verdict::all_pass(&self.verdicts)
    }
}

pub(super) fn definitions(c: &SaddleConfig) -> BTreeMap<String, String> {
    let k = &c.classify;
    let mut m = BTreeMap::new();
    let mut put = |a: &str, b: String| {
        m.insert(a.to_string(), b);
    };
    put("escape", format!("‖x_t‖ ≥ R = {} at some t ≤ T (diverged paths included); escape time = first such t; others are censored at T", k.escape_radius));
    put(
        "converge",
        format!("not escaped and ‖x_T‖ < c = {}", k.converge_radius),
    );
    put("stall", format!("not escaped, ‖x_T‖ < ε = {}, mean ‖x‖ < ε and min ‖x‖ ≥ c = {} over the last {} of the steps", k.attraction_radius, k.converge_radius, k.tail_fraction));
    put("attracted", "‖x_T‖ < ε (per diagram, see phases[].attraction_radius); fraction with a Wilson score interval".into());
    put("boundary", "per row, the smallest ρ where the attraction fraction (linear in log ρ) reaches ½; interval from the Wilson upper/lower curves; deviation Δ = log₁₀(ρ_sim/ρ_pred)".into());
    put("stall_distance", "median over paths of the tail mean of ‖x‖ (one deterministic path in full batch), against η ρ max_i |λ_i| / 2: discrete full-batch SAM ends up on the eigendirection of the largest |λ_j|, in a sign-flipping 2-cycle of amplitude ηρ|λ_j|/(2 − ηλ_j) (attracting for λ_j > 0; for λ_j < 0 the orbit wanders in [−ηρ|λ_j|, ηρ|λ_j|] with that mean up to O(η|λ_j|))".into());
    put("curves", "median and 10–90 % quantile band of ‖x‖ over paths (paths stopped at the divergence bound count as +∞); mean over paths not stopped".into());
    m
}
