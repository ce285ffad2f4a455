//! The saddle study: where SAM gets stuck, measured against the theory (SPEC §6).
//!
//! **Model.** `f(x) = ½ xᵀHx` with at least one negative eigenvalue; the saddle is `x = 0`,
//! `μ = min_{λ_i<0} |λ_i|` is "the" negative curvature `|λ|` of the predictions. Discrete
//! algorithms (SPEC §2, one oracle draw per step, additive noise `Z = σξ`):
//! `x ← x − η ∇f_γ(x + ρ u)` with `u = 0` (GD/SGD), `∇f_γ` (USAM), `∇f_γ/‖∇f_γ‖` (SAM),
//! `∇f_γ/‖∇f‖` (DNSAM). Their SDEs/ODEs (SPEC §3) come from [`crate::sde`]: exact OU transitions
//! for the linear ones (SGD, USAM), Euler–Maruyama with `substeps` sub-steps otherwise.
//!
//! **Predictions** drawn over the simulations (SPEC §6):
//! * full-batch USAM: `ẏ_i = −λ_i(1 + ρλ_i) y_i`, the saddle attracts iff `ρ μ > 1`;
//! * full-batch SAM (= DNSAM): the region `‖∇f(x)‖ < ρ μ` is forward invariant and attracted to
//!   the saddle for every `ρ > 0`; the discrete algorithm stalls at `‖x‖ ≈ η ρ μ`;
//! * mini-batch SAM with isotropic noise `σ`, valid while `‖∇f‖ ≪ σ`: USAM with
//!   `ρ_eff = ρ κ_d/σ`, attracted iff `ρ κ_d μ > σ` (`κ_d` of SPEC §3, [`kappa`]).
//!
//! **Operational definitions** (radii in `[classify]`, `R` = `escape_radius`, `ε` =
//! `attraction_radius`, `c` = `converge_radius`; the "tail" is the last `tail_fraction` of the
//! steps):
//! * *escape*: `‖x_t‖ ≥ R` at some `t ≤ T` (a path that diverges has escaped); the escape time is
//!   the first such `t`. Paths that have not escaped by `T` are **censored** and counted as such.
//! * *converge*: not escaped and `‖x_T‖ < c`.
//! * *stall*: not escaped, `‖x_T‖ < ε`, `mean_tail ‖x‖ < ε` and `min_tail ‖x‖ ≥ c` (held near
//!   the saddle but not converging to it). The tail *mean* rather than its maximum, because with
//!   noise a stalled path fluctuates and its maximum over thousands of steps is a poor statistic.
//! * *undecided*: none of the above (e.g. drifting slowly at `T`).
//! * *attracted at `T`*: `‖x_T‖ < ε` (converged or stalled); its fraction over paths carries a
//!   **Wilson score** interval at level `verdict.level`.
//!
//! **Phase diagrams.** On a grid over `(ρ, |λ|)` (full batch; `H = diag(others, −|λ|)`) and over
//! `(ρ, σ)` (mini-batch SAM, additive noise), every cell runs `paths` discrete paths from the
//! configured start to `T` and reports the attraction fraction. With
//! `phase_rho_sigma.sde_substeps` set, the `(ρ, σ)` grid is also run for SAM's SDE (SPEC §3
//! closed form, Euler–Maruyama, `sde_paths` paths, an independent ensemble): a second panel
//! judged against the same prediction. Agreement measure: along each
//! row (fixed `|λ|` or `σ`) the simulated boundary `ρ_sim` is the smallest `ρ` at which the
//! fraction, linearly interpolated in `log ρ`, reaches ½; its interval comes from the same
//! crossing of the Wilson upper and lower curves. It is compared with the predicted `ρ_pred` in
//! decades, `Δ = log₁₀(ρ_sim/ρ_pred)`:
//! * USAM: `ρ_pred = 1/|λ|`; pass iff `max_rows |Δ| ≤ verdict.usam_tolerance_dex`.
//! * mini-batch SAM: `ρ_pred = σ/(κ_d μ)`; pass iff `max_rows |Δ| ≤ verdict.minibatch_tolerance_dex`.
//!   The prediction is a local-stability statement at the saddle. At finite `T` the crossing
//!   can move either way: just above `ρ_pred` the well is shallow and noise kicks paths out
//!   before `T`; just below it the escape rate `μ(1 − ρκ_dμ/σ)` is so small that paths are
//!   still inside `ε` at `T`. The start is a small ball so that `‖∇f(x₀)‖ ≪ σ` on the whole
//!   grid, and `ε` is large against the stationary spread of attracted paths (`≈ 0.03`–`0.1`
//!   for the default `σ ≤ 0.5`) and small against the distance at which escaping paths leave.
//! * The USAM tolerance covers the finite-`T` shift (paths with `ρ|λ|` just above 1 decay too
//!   slowly to reach `ε` by `T`) and the grid's resolution (half a cell, `0.042` dex on the
//!   default grid).
//! * full-batch SAM: the region is *sufficient*, not necessary (paths outside it can be drawn in
//!   after their positive-curvature component has decayed). The predicted fraction of a cell is
//!   the probability that `x₀` lies in the region, computed from `region_samples` draws of the
//!   start distribution; `ρ_pred` is its ½-crossing. Verdicts: (i) every path that starts in the
//!   region is attracted (`k = n`); (ii) `max_rows Δ ≤ verdict.region_tolerance_dex` (one-sided:
//!   the basin may be larger than the region, never smaller). How much larger is visible in the
//!   figure: for `H = diag(1, −|λ|)` the positive-curvature coordinate decays first, after which
//!   the path is attracted iff `|y₂| < ρ` (on the unstable axis the region *is* the basin:
//!   `|λ||y₂| < ρ|λ|`). So the simulated boundary is near `ρ ≈ ‖x₀‖ sin 45°`, independent of
//!   `|λ|`, while the region's ½-line moves to `ρ ∝ 1/|λ|` for small `|λ|`: the region is close to
//!   the basin when `|λ|` is comparable to the positive eigenvalue and conservative by up to a
//!   decade at `|λ| = 0.1`.
//!
//! **Curves.** The SDE of full-batch SAM/DNSAM is an ODE that reaches the saddle in finite time
//! and then chatters; its Euler–Maruyama "stall" level is `∝ h = η/substeps`, a property of the
//! integrator, not of the model (the discrete map's `ηρμ` is a property of the algorithm).
//!
//! **Reference run** (SPEC §6, `H = diag(1, −0.5)`, `η = 0.01`, 20 000 steps): each row names an
//! algorithm, `ρ`, `σ`, a start and the expected outcome; deterministic rows run one path, noisy
//! ones `reference.paths` paths and pass iff the Wilson lower bound of the fraction with the
//! expected outcome exceeds ½. The stall distance of full-batch SAM (tail mean of `‖x‖`) is
//! compared with `η ρ μ` (relative error ≤ `verdict.stall_tolerance`).
//!
//! Determinism: every run is one [`Ensemble`] whose per-path records are concatenated in block
//! order, so results are bit-identical at any thread count.

use std::collections::BTreeMap;
use std::time::Instant;

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};
use serde::{Deserialize, Serialize};

use super::setup;
use crate::ensemble::{BlockView, Dynamics, Ensemble, Observer, Start, System};
use crate::error::{Error, Result};
use crate::landscape::{Landscape, Quadratic};
use crate::linalg::Vector;
use crate::optim::{AlgorithmKind, Discrete};
use crate::oracle::{AdditiveNoise, Oracle};
use crate::sde::linear::LinearSde;
use crate::sde::sam_tables::kappa;
use crate::sde::{ModelKind, SdeForm, SdeModel};
use crate::stats::ci::z_quantile;

/// The embedded default configuration (`experiments/saddle_default.toml`).
pub const DEFAULT_CONFIG: &str = include_str!("../../experiments/saddle_default.toml");

fn default_title() -> String {
    "SAM near saddle points".into()
}
fn default_block() -> usize {
    64
}

/// Thresholds of the operational definitions (module docs).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClassifyConfig {
    /// `R`: a path has escaped once `‖x‖ ≥ R`.
    pub escape_radius: f64,
    /// `ε`: attracted at `T` iff `‖x_T‖ < ε`; a stall stays below `ε` over the tail.
    pub attraction_radius: f64,
    /// `c`: converged iff `‖x_T‖ < c`.
    pub converge_radius: f64,
    /// Fraction of the steps that forms the tail (stall test, stall distance).
    pub tail_fraction: f64,
    /// A path whose `‖x‖` exceeds this is stopped (it has escaped long before).
    pub divergence_bound: f64,
}

/// Where paths start (centred at the saddle).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum StartSpec {
    /// A given point.
    Point {
        /// Coordinates.
        x: Vec<f64>,
    },
    /// Uniform in the ball `‖x₀‖ ≤ radius`.
    Ball {
        /// Radius.
        radius: f64,
    },
    /// Uniform on the sphere `‖x₀‖ = radius`.
    Sphere {
        /// Radius.
        radius: f64,
    },
    /// Uniform in the shell `radius_min ≤ ‖x₀‖ ≤ radius_max`.
    Shell {
        /// Inner radius.
        radius_min: f64,
        /// Outer radius.
        radius_max: f64,
    },
}

impl StartSpec {
    fn build(&self, field: &str, d: usize) -> Result<Start> {
        let shell = |a: f64, b: f64| -> Result<Start> {
            setup::non_negative(&format!("{field}.radius_min"), a)?;
            setup::positive(&format!("{field}.radius"), b)?;
            if a > b {
                return Err(Error::config(
                    format!("{field}.radius_min"),
                    a,
                    format!("must be ≤ radius_max = {b}"),
                ));
            }
            Ok(Start::Shell {
                center: Vector::zeros(d),
                r_min: a,
                r_max: b,
            })
        };
        match self {
            StartSpec::Point { x } => {
                if x.len() != d {
                    return Err(Error::Dimension {
                        what: format!("{field}.x length vs landscape dimension"),
                        expected: d,
                        got: x.len(),
                    });
                }
                for (i, v) in x.iter().enumerate() {
                    setup::finite(&format!("{field}.x[{i}]"), *v)?;
                }
                Ok(Start::Point(Vector::from_column_slice(x)))
            }
            StartSpec::Ball { radius } => shell(0.0, *radius),
            StartSpec::Sphere { radius } => shell(*radius, *radius),
            StartSpec::Shell {
                radius_min,
                radius_max,
            } => shell(*radius_min, *radius_max),
        }
    }
}

/// A geometric grid `min, …, max` with `count` points.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogGrid {
    /// Smallest value.
    pub min: f64,
    /// Largest value.
    pub max: f64,
    /// Number of points (≥ 3).
    pub count: usize,
}

impl LogGrid {
    fn values(&self, field: &str) -> Result<Vec<f64>> {
        setup::positive(&format!("{field}.min"), self.min)?;
        setup::positive(&format!("{field}.max"), self.max)?;
        if self.max <= self.min {
            return Err(Error::config(
                format!("{field}.max"),
                self.max,
                format!("must be > min = {}", self.min),
            ));
        }
        if self.count < 3 {
            return Err(Error::config(
                format!("{field}.count"),
                self.count,
                "must be ≥ 3",
            ));
        }
        let (a, b) = (self.min.ln(), self.max.ln());
        Ok((0..self.count)
            .map(|i| (a + (b - a) * i as f64 / (self.count - 1) as f64).exp())
            .collect())
    }
}

/// Outcome classes (module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// Reached `‖x‖ ≥ R`.
    Escape,
    /// Held near the saddle, not converging.
    Stall,
    /// `‖x_T‖ < c`.
    Converge,
    /// None of the above.
    Undecided,
}

impl Outcome {
    /// Lower-case name.
    pub fn name(self) -> &'static str {
        match self {
            Outcome::Escape => "escape",
            Outcome::Stall => "stall",
            Outcome::Converge => "converge",
            Outcome::Undecided => "undecided",
        }
    }
}

/// One row of the reference run.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReferenceRow {
    /// Discrete algorithm (`sgd` with `σ = 0` is GD).
    pub algorithm: AlgorithmKind,
    /// Radius `ρ` (ignored by SGD).
    #[serde(default)]
    pub rho: f64,
    /// Additive noise `σ` (0: full batch).
    #[serde(default)]
    pub sigma: f64,
    /// Start `x₀`.
    pub start: Vec<f64>,
    /// Expected outcome.
    pub expect: Outcome,
}

/// SPEC §6's reference run.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReferenceConfig {
    /// Spectrum of `H` (diagonal).
    pub eigenvalues: Vec<f64>,
    /// Number of steps.
    pub steps: usize,
    /// Paths of noisy rows (deterministic rows run one).
    pub paths: usize,
    /// The rows.
    pub rows: Vec<ReferenceRow>,
}

/// One case of the curves: an algorithm, run discretely and as its SDE/ODE.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaseConfig {
    /// Algorithm.
    pub algorithm: AlgorithmKind,
    /// Radius `ρ`.
    #[serde(default)]
    pub rho: f64,
    /// Additive noise `σ` (0: full batch, the SDE is an ODE).
    #[serde(default)]
    pub sigma: f64,
}

/// Distance-to-saddle curves and escape times.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CurvesConfig {
    /// Spectrum of `H`.
    pub eigenvalues: Vec<f64>,
    /// Seed of a random rotation of the eigenbasis (absent: diagonal `H`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rotation_seed: Option<u64>,
    /// Start.
    pub start: StartSpec,
    /// Horizon `T`.
    pub horizon: f64,
    /// Spacing of the saved curve points.
    pub save_dt: f64,
    /// Paths per noisy case (full-batch cases from a point start run one path).
    pub paths: usize,
    /// Euler–Maruyama sub-steps per `η` for the non-linear SDEs/ODEs.
    pub substeps: usize,
    /// The cases.
    pub cases: Vec<CaseConfig>,
}

/// Phase diagram over `(ρ, |λ|)`, full batch.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RhoLambdaConfig {
    /// The other (non-negative) eigenvalues; the grid's `−|λ|` is appended.
    pub other_eigenvalues: Vec<f64>,
    /// Grid of `|λ|`.
    pub lambda: LogGrid,
    /// Start.
    pub start: StartSpec,
    /// Horizon `T`.
    pub horizon: f64,
    /// Paths per cell.
    pub paths: usize,
    /// Overrides `classify.attraction_radius`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attraction_radius: Option<f64>,
    /// Draws of the start distribution for the region prediction (SAM).
    pub region_samples: usize,
    /// One heat map per panel.
    pub panels: Vec<PanelConfig>,
}

/// One algorithm on the `(ρ, |λ|)` grid.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PanelConfig {
    /// `usam`, `sam` or `dnsam` (full batch).
    pub algorithm: AlgorithmKind,
    /// Grid of `ρ`.
    pub rho: LogGrid,
}

/// Phase diagram over `(ρ, σ)`, mini-batch SAM with additive isotropic noise.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RhoSigmaConfig {
    /// Spectrum of `H`.
    pub eigenvalues: Vec<f64>,
    /// `sam` (the prediction is for SAM).
    pub algorithm: AlgorithmKind,
    /// Grid of `ρ`.
    pub rho: LogGrid,
    /// Grid of `σ`.
    pub sigma: LogGrid,
    /// Start.
    pub start: StartSpec,
    /// Horizon `T`.
    pub horizon: f64,
    /// Paths per cell.
    pub paths: usize,
    /// Overrides `classify.attraction_radius`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attraction_radius: Option<f64>,
    /// Also run the algorithm's SDE (closed form, Euler–Maruyama with this many sub-steps per
    /// `η`) as an independent ensemble, shown as a second panel with its own verdict.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sde_substeps: Option<usize>,
    /// Paths per cell of the SDE panel (default: `paths`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sde_paths: Option<usize>,
}

/// Verdict tolerances.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VerdictConfig {
    /// Confidence level of every interval.
    pub level: f64,
    /// `max |log₁₀(ρ_sim/ρ_pred)|` allowed for USAM.
    pub usam_tolerance_dex: f64,
    /// `max |log₁₀(ρ_sim/ρ_pred)|` allowed for mini-batch SAM.
    pub minibatch_tolerance_dex: f64,
    /// `max log₁₀(ρ_sim/ρ_pred)` allowed for the full-batch SAM region (one-sided).
    pub region_tolerance_dex: f64,
    /// Allowed relative error of the stall distance against `ηρμ`.
    pub stall_tolerance: f64,
}

/// The saddle study's configuration (TOML; unknown keys are errors).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SaddleConfig {
    /// Figure and table title.
    #[serde(default = "default_title")]
    pub title: String,
    /// Master seed.
    pub seed: u64,
    /// Paths per block.
    #[serde(default = "default_block")]
    pub block_size: usize,
    /// Learning rate `η` of every part.
    pub eta: f64,
    /// Thresholds.
    pub classify: ClassifyConfig,
    /// SPEC §6 reference run.
    pub reference: ReferenceConfig,
    /// Curves and escape times.
    pub curves: CurvesConfig,
    /// `(ρ, |λ|)` phase diagram.
    pub phase_rho_lambda: RhoLambdaConfig,
    /// `(ρ, σ)` phase diagram.
    pub phase_rho_sigma: RhoSigmaConfig,
    /// Verdicts.
    pub verdict: VerdictConfig,
}

// ---------------------------------------------------------------------------------------------
// Report types.

pub use super::verdict::Verdict;

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
    pub verdict: String,
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
    /// `"saddle"`.
    pub study: String,
    /// Crate version.
    pub samsde_version: String,
    /// Validated configuration.
    pub config: SaddleConfig,
    /// Master seed.
    pub seed: u64,
    /// Worker threads.
    pub threads: usize,
    /// Wall time.
    pub elapsed_s: f64,
    /// The definitions and agreement measures, in words.
    pub definitions: BTreeMap<String, String>,
    /// `κ_d` of the `(ρ, σ)` diagram's dimension.
    pub kappa_d: f64,
    /// Reference run.
    pub reference: Vec<ReferenceRowReport>,
    /// Curves.
    pub curves: Vec<CurveReport>,
    /// Phase diagrams.
    pub phases: Vec<PanelReport>,
    /// Verdicts.
    pub verdicts: Vec<Verdict>,
    /// Notes.
    pub warnings: Vec<String>,
}

impl SaddleReport {
    /// `true` iff every verdict passes.
    pub fn all_pass(&self) -> bool {
        self.verdicts.iter().all(|v| v.verdict == "pass")
    }
}

// ---------------------------------------------------------------------------------------------
// Statistics helpers.

/// Wilson score interval for `k` successes in `n` trials at `level`.
///
/// `p̂ = k/n`, `z` the two-sided normal quantile:
/// `(p̂ + z²/2n ± z √(p̂(1−p̂)/n + z²/4n²)) / (1 + z²/n)`. `n = 0` gives `[0, 1]`.
pub fn wilson(k: usize, n: usize, level: f64) -> [f64; 2] {
    if n == 0 {
        return [0.0, 1.0];
    }
    let z = z_quantile(level);
    let (nf, p) = (n as f64, k as f64 / n as f64);
    let z2 = z * z;
    let centre = p + z2 / (2.0 * nf);
    let half = z * (p * (1.0 - p) / nf + z2 / (4.0 * nf * nf)).sqrt();
    let den = 1.0 + z2 / nf;
    // The ends are exactly 0 (k = 0) and 1 (k = n); the formula gives them up to rounding.
    [
        if k == 0 {
            0.0
        } else {
            ((centre - half) / den).max(0.0)
        },
        if k == n {
            1.0
        } else {
            ((centre + half) / den).min(1.0)
        },
    ]
}

/// Quantile (linear interpolation between order statistics, "type 7") of sorted values.
pub fn quantile_sorted(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let h = q * (sorted.len() - 1) as f64;
    let (lo, hi) = (h.floor() as usize, h.ceil() as usize);
    if lo == hi || sorted[lo] == sorted[hi] {
        return sorted[lo];
    }
    sorted[lo] + (h - lo as f64) * (sorted[hi] - sorted[lo])
}

/// Smallest `x` at which `ys` (over increasing `xs`), interpolated linearly in `ln x`, reaches
/// `level`; `None` if it starts at or above it (crossing below the grid) or never reaches it.
pub fn crossing(xs: &[f64], ys: &[f64], level: f64) -> Option<f64> {
    if ys.first().map_or(true, |&y| y >= level) {
        return None;
    }
    for i in 0..xs.len() - 1 {
        if ys[i] < level && ys[i + 1] >= level {
            let t = (level - ys[i]) / (ys[i + 1] - ys[i]);
            let (a, b) = (xs[i].ln(), xs[i + 1].ln());
            return Some((a + t * (b - a)).exp());
        }
    }
    None
}

// ---------------------------------------------------------------------------------------------
// Per-path observer.

#[derive(Debug, Clone, Copy)]
struct PathRecord {
    escape_time: Option<f64>,
    diverged: bool,
    final_norm: f64,
    tail_sum: f64,
    tail_n: usize,
    tail_min: f64,
    tail_max: f64,
    grad0: f64,
}

struct PathObserver {
    n_systems: usize,
    steps: usize,
    tail_from: usize,
    escape_radius: f64,
    save_norms: bool,
}

struct PathAcc {
    rec: Vec<Vec<PathRecord>>,
    norms: Vec<Vec<Vec<f64>>>,
}

impl Observer for PathObserver {
    type Acc = PathAcc;
    fn new_acc(&self) -> PathAcc {
        PathAcc {
            rec: vec![Vec::new(); self.n_systems],
            norms: vec![Vec::new(); self.n_systems],
        }
    }
    fn on_save(&self, acc: &mut PathAcc, save: usize, _t: f64, view: &BlockView) {
        let p = view.states[0].ncols();
        if save == 0 {
            let f = view.landscape;
            let d = f.dim();
            let mut g = vec![0.0; d];
            for s in 0..self.n_systems {
                let xs = view.states[s].as_slice();
                acc.rec[s] = (0..p)
                    .map(|j| {
                        let x = &xs[j * d..(j + 1) * d];
                        f.grad_into(x, &mut g);
                        let n = x.iter().map(|v| v * v).sum::<f64>().sqrt();
                        PathRecord {
                            escape_time: (n >= self.escape_radius).then_some(0.0),
                            diverged: false,
                            final_norm: n,
                            tail_sum: 0.0,
                            tail_n: 0,
                            tail_min: f64::INFINITY,
                            tail_max: 0.0,
                            grad0: g.iter().map(|v| v * v).sum::<f64>().sqrt(),
                        }
                    })
                    .collect();
                if self.save_norms {
                    acc.norms[s] = (0..p).map(|_| Vec::new()).collect();
                }
            }
        }
        if self.save_norms {
            for s in 0..self.n_systems {
                for j in 0..p {
                    let n = if view.alive[s][j] {
                        view.states[s].column(j).norm()
                    } else {
                        f64::INFINITY
                    };
                    acc.norms[s][j].push(n);
                }
            }
        }
    }
    fn on_step(&self, acc: &mut PathAcc, k: usize, t: f64, view: &BlockView) {
        let tail = k >= self.tail_from;
        for s in 0..self.n_systems {
            for (j, r) in acc.rec[s].iter_mut().enumerate() {
                let n = if view.alive[s][j] {
                    view.states[s].column(j).norm()
                } else {
                    if !r.diverged {
                        r.diverged = true;
                    }
                    f64::INFINITY
                };
                if r.escape_time.is_none() && n >= self.escape_radius {
                    r.escape_time = Some(t);
                }
                if tail {
                    r.tail_sum += n;
                    r.tail_n += 1;
                    r.tail_min = r.tail_min.min(n);
                    r.tail_max = r.tail_max.max(n);
                }
                if k == self.steps {
                    r.final_norm = n;
                }
            }
        }
    }
    fn merge(&self, total: &mut PathAcc, block: PathAcc) {
        for (a, b) in total.rec.iter_mut().zip(block.rec) {
            a.extend(b);
        }
        for (a, b) in total.norms.iter_mut().zip(block.norms) {
            a.extend(b);
        }
    }
}

impl PathRecord {
    fn tail_mean(&self) -> f64 {
        if self.tail_n == 0 {
            self.final_norm
        } else {
            self.tail_sum / self.tail_n as f64
        }
    }
    fn outcome(&self, c: &ClassifyConfig) -> Outcome {
        if self.escape_time.is_some() {
            Outcome::Escape
        } else if self.final_norm < c.converge_radius {
            Outcome::Converge
        } else if self.final_norm < c.attraction_radius
            && self.tail_mean() < c.attraction_radius
            && self.tail_min >= c.converge_radius
        {
            Outcome::Stall
        } else {
            Outcome::Undecided
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The study.

/// A validated, ready-to-run saddle study.
pub struct SaddleStudy {
    /// The configuration.
    pub config: SaddleConfig,
    mu_reference: f64,
    curves_start: Start,
    rl_start: Start,
    rs_start: Start,
    rl_lambdas: Vec<f64>,
    rl_rhos: Vec<Vec<f64>>,
    rs_rhos: Vec<f64>,
    rs_sigmas: Vec<f64>,
}

fn steps_of(field: &str, horizon: f64, eta: f64) -> Result<usize> {
    setup::positive(field, horizon)?;
    setup::whole_steps(field, horizon, eta)
}

fn min_negative(field: &str, eigenvalues: &[f64]) -> Result<f64> {
    for (i, v) in eigenvalues.iter().enumerate() {
        setup::finite(&format!("{field}[{i}]"), *v)?;
    }
    eigenvalues
        .iter()
        .filter(|&&v| v < 0.0)
        .map(|v| v.abs())
        .min_by(|a, b| a.total_cmp(b))
        .ok_or_else(|| {
            Error::config(
                field,
                format!("{eigenvalues:?}"),
                "needs at least one negative eigenvalue (a saddle)",
            )
        })
}

fn positive_count(field: &str, v: usize) -> Result<usize> {
    if v == 0 {
        Err(Error::config(field, v, "must be > 0"))
    } else {
        Ok(v)
    }
}

impl SaddleStudy {
    /// Parses and validates TOML.
    pub fn from_toml(text: &str) -> Result<Self> {
        Self::new(setup::parse_toml(text)?)
    }

    /// Validates the configuration.
    pub fn new(config: SaddleConfig) -> Result<Self> {
        let c = &config;
        positive_count("block_size", c.block_size)?;
        let eta = setup::positive("eta", c.eta)?;
        let k = &c.classify;
        setup::positive("classify.escape_radius", k.escape_radius)?;
        setup::positive("classify.attraction_radius", k.attraction_radius)?;
        setup::positive("classify.converge_radius", k.converge_radius)?;
        setup::positive("classify.divergence_bound", k.divergence_bound)?;
        if !(k.tail_fraction > 0.0 && k.tail_fraction <= 1.0) {
            return Err(Error::config(
                "classify.tail_fraction",
                k.tail_fraction,
                "must be in (0, 1]",
            ));
        }
        if k.converge_radius >= k.attraction_radius {
            return Err(Error::config(
                "classify.converge_radius",
                k.converge_radius,
                format!("must be < attraction_radius = {}", k.attraction_radius),
            ));
        }
        if k.attraction_radius >= k.escape_radius {
            return Err(Error::config(
                "classify.attraction_radius",
                k.attraction_radius,
                format!("must be < escape_radius = {}", k.escape_radius),
            ));
        }
        if k.escape_radius >= k.divergence_bound {
            return Err(Error::config(
                "classify.divergence_bound",
                k.divergence_bound,
                format!("must be > escape_radius = {}", k.escape_radius),
            ));
        }
        let v = &c.verdict;
        if !(v.level > 0.0 && v.level < 1.0) {
            return Err(Error::config("verdict.level", v.level, "must be in (0, 1)"));
        }
        setup::positive("verdict.usam_tolerance_dex", v.usam_tolerance_dex)?;
        setup::positive("verdict.minibatch_tolerance_dex", v.minibatch_tolerance_dex)?;
        setup::positive("verdict.region_tolerance_dex", v.region_tolerance_dex)?;
        setup::positive("verdict.stall_tolerance", v.stall_tolerance)?;

        // Reference.
        let r = &c.reference;
        let mu_reference = min_negative("reference.eigenvalues", &r.eigenvalues)?;
        positive_count("reference.steps", r.steps)?;
        positive_count("reference.paths", r.paths)?;
        if r.rows.is_empty() {
            return Err(Error::config("reference.rows", "[]", "must not be empty"));
        }
        for (i, row) in r.rows.iter().enumerate() {
            setup::non_negative(&format!("reference.rows[{i}].rho"), row.rho)?;
            setup::non_negative(&format!("reference.rows[{i}].sigma"), row.sigma)?;
            StartSpec::Point {
                x: row.start.clone(),
            }
            .build(&format!("reference.rows[{i}].start"), r.eigenvalues.len())?;
            if row.expect == Outcome::Undecided {
                return Err(Error::config(
                    format!("reference.rows[{i}].expect"),
                    "\"undecided\"",
                    "must be escape, stall or converge",
                ));
            }
        }

        // Curves.
        let cv = &c.curves;
        min_negative("curves.eigenvalues", &cv.eigenvalues)?;
        let curves_start = cv.start.build("curves.start", cv.eigenvalues.len())?;
        let n = steps_of("curves.horizon", cv.horizon, eta)?;
        let every = steps_of("curves.save_dt", cv.save_dt, eta)?;
        if n % every != 0 {
            return Err(Error::config(
                "curves.save_dt",
                cv.save_dt,
                format!("must divide the horizon {}", cv.horizon),
            ));
        }
        positive_count("curves.paths", cv.paths)?;
        positive_count("curves.substeps", cv.substeps)?;
        if cv.cases.is_empty() {
            return Err(Error::config("curves.cases", "[]", "must not be empty"));
        }
        for (i, case) in cv.cases.iter().enumerate() {
            setup::non_negative(&format!("curves.cases[{i}].rho"), case.rho)?;
            setup::non_negative(&format!("curves.cases[{i}].sigma"), case.sigma)?;
        }

        // (ρ, |λ|).
        let rl = &c.phase_rho_lambda;
        for (i, v) in rl.other_eigenvalues.iter().enumerate() {
            setup::non_negative(&format!("phase_rho_lambda.other_eigenvalues[{i}]"), *v)?;
        }
        let rl_lambdas = rl.lambda.values("phase_rho_lambda.lambda")?;
        let rl_start = rl
            .start
            .build("phase_rho_lambda.start", rl.other_eigenvalues.len() + 1)?;
        steps_of("phase_rho_lambda.horizon", rl.horizon, eta)?;
        positive_count("phase_rho_lambda.paths", rl.paths)?;
        positive_count("phase_rho_lambda.region_samples", rl.region_samples)?;
        if let Some(e) = rl.attraction_radius {
            setup::positive("phase_rho_lambda.attraction_radius", e)?;
        }
        if rl.panels.is_empty() {
            return Err(Error::config(
                "phase_rho_lambda.panels",
                "[]",
                "must not be empty",
            ));
        }
        let mut rl_rhos = Vec::new();
        for (i, p) in rl.panels.iter().enumerate() {
            if p.algorithm == AlgorithmKind::Sgd {
                return Err(Error::config(
                    format!("phase_rho_lambda.panels[{i}].algorithm"),
                    "\"sgd\"",
                    "must be usam, sam or dnsam (GD has no ρ)",
                ));
            }
            rl_rhos.push(p.rho.values(&format!("phase_rho_lambda.panels[{i}].rho"))?);
        }

        // (ρ, σ).
        let rs = &c.phase_rho_sigma;
        min_negative("phase_rho_sigma.eigenvalues", &rs.eigenvalues)?;
        if rs.algorithm != AlgorithmKind::Sam {
            return Err(Error::config(
                "phase_rho_sigma.algorithm",
                format!("\"{}\"", rs.algorithm),
                "must be sam (the predicted boundary ρκ_d|λ| = σ is SAM's)",
            ));
        }
        let rs_rhos = rs.rho.values("phase_rho_sigma.rho")?;
        let rs_sigmas = rs.sigma.values("phase_rho_sigma.sigma")?;
        let rs_start = rs
            .start
            .build("phase_rho_sigma.start", rs.eigenvalues.len())?;
        steps_of("phase_rho_sigma.horizon", rs.horizon, eta)?;
        positive_count("phase_rho_sigma.paths", rs.paths)?;
        if let Some(e) = rs.attraction_radius {
            setup::positive("phase_rho_sigma.attraction_radius", e)?;
        }
        if let Some(r) = rs.sde_substeps {
            positive_count("phase_rho_sigma.sde_substeps", r)?;
        }
        if let Some(p) = rs.sde_paths {
            positive_count("phase_rho_sigma.sde_paths", p)?;
        }
        Ok(Self {
            config,
            mu_reference,
            curves_start,
            rl_start,
            rs_start,
            rl_lambdas,
            rl_rhos,
            rs_rhos,
            rs_sigmas,
        })
    }

    /// Total path-steps (for progress bars).
    pub fn total_work(&self) -> u64 {
        let c = &self.config;
        let eta = c.eta;
        let st = |h: f64| (h / eta).round() as u64;
        let r = &c.reference;
        let mut w = 0u64;
        for row in &r.rows {
            let p = if row.sigma > 0.0 { r.paths } else { 1 };
            w += p as u64 * r.steps as u64;
        }
        let cv = &c.curves;
        let mut sigmas: Vec<u64> = cv.cases.iter().map(|k| k.sigma.to_bits()).collect();
        sigmas.sort_unstable();
        sigmas.dedup();
        w += sigmas.len() as u64 * cv.paths as u64 * st(cv.horizon);
        let rl = &c.phase_rho_lambda;
        w += (self.rl_lambdas.len() * rl.panels.len() * rl.paths) as u64 * st(rl.horizon);
        let rs = &c.phase_rho_sigma;
        w += (self.rs_sigmas.len() * rs.paths) as u64 * st(rs.horizon);
        if rs.sde_substeps.is_some() {
            w += (self.rs_sigmas.len() * rs.sde_paths.unwrap_or(rs.paths)) as u64 * st(rs.horizon);
        }
        w
    }

    #[allow(clippy::too_many_arguments)]
    fn run_ensemble(
        &self,
        f: &dyn Landscape,
        oracle: &Oracle,
        systems: &[System],
        steps: usize,
        save_every: usize,
        paths: usize,
        start: &Start,
        level: u64,
        save_norms: bool,
        progress: Option<&(dyn Fn(u64) + Sync)>,
    ) -> PathAcc {
        let c = &self.config;
        let tail_len = ((steps as f64 * c.classify.tail_fraction).round() as usize).clamp(1, steps);
        let obs = PathObserver {
            n_systems: systems.len(),
            steps,
            tail_from: steps + 1 - tail_len,
            escape_radius: c.classify.escape_radius,
            save_norms,
        };
        let ens = Ensemble {
            landscape: f,
            oracle,
            eta: c.eta,
            steps,
            save_every,
            systems,
            paths,
            block_size: c.block_size,
            seed: c.seed,
            level,
            start,
            divergence_bound: c.classify.divergence_bound,
        };
        // The engine reports path-steps per block, counting systems once.
        ens.run(&obs, progress).acc
    }

    /// Runs every part and judges it.
    pub fn run(
        &self,
        threads: usize,
        progress: Option<&(dyn Fn(u64) + Sync)>,
    ) -> Result<SaddleReport> {
        let t0 = Instant::now();
        let mut warnings = Vec::new();
        let mut level = 0u64;
        let reference = self.run_reference(&mut level, progress)?;
        let curves = self.run_curves(&mut level, progress)?;
        let mut phases = self.run_rho_lambda(&mut level, progress, &mut warnings)?;
        phases.extend(self.run_rho_sigma(&mut level, progress)?);
        let verdicts = self.judge(&reference, &phases);
        let d = self.config.phase_rho_sigma.eigenvalues.len();
        Ok(SaddleReport {
            study: "saddle".into(),
            samsde_version: env!("CARGO_PKG_VERSION").into(),
            config: self.config.clone(),
            seed: self.config.seed,
            threads,
            elapsed_s: t0.elapsed().as_secs_f64(),
            definitions: definitions(&self.config),
            kappa_d: kappa(d),
            reference,
            curves,
            phases,
            verdicts,
            warnings,
        })
    }

    fn run_reference(
        &self,
        level: &mut u64,
        progress: Option<&(dyn Fn(u64) + Sync)>,
    ) -> Result<Vec<ReferenceRowReport>> {
        let c = &self.config;
        let r = &c.reference;
        let f = Quadratic::from_spectrum(&r.eigenvalues, None)?;
        let d = r.eigenvalues.len();
        // Group rows by (σ, start): one ensemble each, one system per row.
        let mut groups: BTreeMap<Vec<u64>, Vec<usize>> = BTreeMap::new();
        for (i, row) in r.rows.iter().enumerate() {
            let mut key = vec![row.sigma.to_bits()];
            key.extend(row.start.iter().map(|v| v.to_bits()));
            groups.entry(key).or_default().push(i);
        }
        let mut out: Vec<Option<ReferenceRowReport>> = vec![None; r.rows.len()];
        for idx in groups.values() {
            let first = &r.rows[idx[0]];
            let oracle = noise(d, first.sigma)?;
            let paths = if first.sigma > 0.0 { r.paths } else { 1 };
            let systems: Vec<System> = idx
                .iter()
                .map(|&i| {
                    let row = &r.rows[i];
                    System {
                        label: format!("{}#{i}", row.algorithm),
                        dynamics: Dynamics::Discrete(Discrete {
                            kind: row.algorithm,
                            eta: c.eta,
                            rho: row.rho,
                        }),
                    }
                })
                .collect();
            let start = Start::Point(Vector::from_column_slice(&first.start));
            let acc = self.run_ensemble(
                &f, &oracle, &systems, r.steps, r.steps, paths, &start, *level, false, progress,
            );
            *level += 1;
            for (s, &i) in idx.iter().enumerate() {
                let row = &r.rows[i];
                let recs = &acc.rec[s];
                let mut counts: BTreeMap<String, usize> = [
                    Outcome::Escape,
                    Outcome::Stall,
                    Outcome::Converge,
                    Outcome::Undecided,
                ]
                .iter()
                .map(|o| (o.name().to_string(), 0))
                .collect();
                for rec in recs {
                    *counts
                        .get_mut(rec.outcome(&c.classify).name())
                        .expect("all outcomes") += 1;
                }
                let k = counts[row.expect.name()];
                let n = recs.len();
                let ci = wilson(k, n, c.verdict.level);
                let pass = if n == 1 { k == 1 } else { ci[0] > 0.5 };
                let mut finals: Vec<f64> = recs.iter().map(|q| q.final_norm).collect();
                finals.sort_by(f64::total_cmp);
                let mut tails: Vec<f64> = recs.iter().map(|q| q.tail_mean()).collect();
                tails.sort_by(f64::total_cmp);
                let mut esc: Vec<f64> = recs.iter().filter_map(|q| q.escape_time).collect();
                esc.sort_by(f64::total_cmp);
                out[i] = Some(ReferenceRowReport {
                    algorithm: row.algorithm.name().into(),
                    rho: row.rho,
                    sigma: row.sigma,
                    start: row.start.clone(),
                    expected: row.expect,
                    paths: n,
                    counts,
                    fraction_expected: k as f64 / n as f64,
                    ci,
                    final_norm_median: quantile_sorted(&finals, 0.5),
                    tail_mean_norm_median: quantile_sorted(&tails, 0.5),
                    escape_time_median: (!esc.is_empty()).then(|| quantile_sorted(&esc, 0.5)),
                    verdict: if pass { "pass" } else { "fail" }.into(),
                });
            }
        }
        Ok(out.into_iter().map(|r| r.expect("every row run")).collect())
    }

    fn run_curves(
        &self,
        level: &mut u64,
        progress: Option<&(dyn Fn(u64) + Sync)>,
    ) -> Result<Vec<CurveReport>> {
        let c = &self.config;
        let cv = &c.curves;
        let f = Quadratic::from_spectrum(&cv.eigenvalues, cv.rotation_seed)?;
        let d = cv.eigenvalues.len();
        let steps = (cv.horizon / c.eta).round() as usize;
        let every = (cv.save_dt / c.eta).round() as usize;
        let mut sigmas: Vec<f64> = cv.cases.iter().map(|k| k.sigma).collect();
        sigmas.sort_by(f64::total_cmp);
        sigmas.dedup();
        let mut out: Vec<Option<CurveReport>> = vec![None; 2 * cv.cases.len()];
        for &sigma in &sigmas {
            let oracle = noise(d, sigma)?;
            let idx: Vec<usize> = (0..cv.cases.len())
                .filter(|&i| cv.cases[i].sigma == sigma)
                .collect();
            let mut systems = Vec::new();
            let mut meta = Vec::new();
            for &i in &idx {
                let case = &cv.cases[i];
                systems.push(System {
                    label: format!("{}#{i}", case.algorithm),
                    dynamics: Dynamics::Discrete(Discrete {
                        kind: case.algorithm,
                        eta: c.eta,
                        rho: case.rho,
                    }),
                });
                meta.push((
                    i,
                    0usize,
                    "discrete".to_string(),
                    "discrete map".to_string(),
                ));
                let kind = ModelKind::own(case.algorithm);
                let (dynamics, integrator) =
                    match LinearSde::of_model(kind, &f, &oracle, c.eta, case.rho) {
                        Some(lin) => (
                            Dynamics::ExactOu(lin.transition(c.eta)),
                            "exact_ou".to_string(),
                        ),
                        None => (
                            Dynamics::Euler {
                                model: SdeModel::new(
                                    kind,
                                    &f,
                                    &oracle,
                                    c.eta,
                                    case.rho,
                                    SdeForm::Auto,
                                    64,
                                )?,
                                substeps: cv.substeps,
                            },
                            format!("euler_maruyama(substeps={})", cv.substeps),
                        ),
                    };
                systems.push(System {
                    label: format!("{}#{i}", kind.name()),
                    dynamics,
                });
                meta.push((i, 1usize, kind.name(), integrator));
            }
            let deterministic = sigma == 0.0 && matches!(self.curves_start, Start::Point(_));
            let paths = if deterministic { 1 } else { cv.paths };
            let acc = self.run_ensemble(
                &f,
                &oracle,
                &systems,
                steps,
                every,
                paths,
                &self.curves_start,
                *level,
                true,
                progress,
            );
            *level += 1;
            for (s, (i, slot, system, integrator)) in meta.into_iter().enumerate() {
                let case = &cv.cases[i];
                let recs = &acc.rec[s];
                let norms = &acc.norms[s];
                let n_saves = norms.first().map_or(0, |v| v.len());
                let times: Vec<f64> = (0..n_saves).map(|j| (j * every) as f64 * c.eta).collect();
                let mut mean = Vec::with_capacity(n_saves);
                let (mut med, mut q10, mut q90) = (Vec::new(), Vec::new(), Vec::new());
                let mut col = Vec::with_capacity(paths);
                for j in 0..n_saves {
                    col.clear();
                    col.extend(norms.iter().map(|v| v[j]));
                    let alive: Vec<f64> = col.iter().copied().filter(|v| v.is_finite()).collect();
                    mean.push(if alive.is_empty() {
                        f64::NAN
                    } else {
                        alive.iter().sum::<f64>() / alive.len() as f64
                    });
                    col.sort_by(f64::total_cmp);
                    med.push(quantile_sorted(&col, 0.5));
                    q10.push(quantile_sorted(&col, 0.1));
                    q90.push(quantile_sorted(&col, 0.9));
                }
                let eps = c.classify.attraction_radius;
                let attracted = recs.iter().filter(|q| q.final_norm < eps).count();
                let n = recs.len();
                let escape = escape_report(recs, c.verdict.level);
                out[2 * i + slot] = Some(CurveReport {
                    label: format!(
                        "{} ρ={} σ={} {}",
                        case.algorithm,
                        case.rho,
                        case.sigma,
                        if slot == 0 { "discrete" } else { "SDE/ODE" }
                    ),
                    algorithm: case.algorithm.name().into(),
                    system,
                    integrator,
                    rho: case.rho,
                    sigma: case.sigma,
                    times,
                    mean,
                    median: med,
                    q10,
                    q90,
                    attracted,
                    fraction_attracted: attracted as f64 / n as f64,
                    fraction_ci: wilson(attracted, n, c.verdict.level),
                    escape,
                });
            }
        }
        Ok(out
            .into_iter()
            .map(|r| r.expect("every case run"))
            .collect())
    }

    fn run_rho_lambda(
        &self,
        level: &mut u64,
        progress: Option<&(dyn Fn(u64) + Sync)>,
        warnings: &mut Vec<String>,
    ) -> Result<Vec<PanelReport>> {
        let c = &self.config;
        let rl = &c.phase_rho_lambda;
        let eps = rl.attraction_radius.unwrap_or(c.classify.attraction_radius);
        let steps = (rl.horizon / c.eta).round() as usize;
        let d = rl.other_eigenvalues.len() + 1;
        let samples = start_samples(&self.rl_start, d, rl.region_samples, c.seed);
        let mut panels = Vec::new();
        for (pi, panel) in rl.panels.iter().enumerate() {
            let rhos = &self.rl_rhos[pi];
            let mut cells = Vec::new();
            for &lambda in &self.rl_lambdas {
                let mut spec = rl.other_eigenvalues.clone();
                spec.push(-lambda);
                let f = Quadratic::from_spectrum(&spec, None)?;
                let systems: Vec<System> = rhos
                    .iter()
                    .enumerate()
                    .map(|(i, &rho)| System {
                        label: format!("{}#{i}", panel.algorithm),
                        dynamics: Dynamics::Discrete(Discrete {
                            kind: panel.algorithm,
                            eta: c.eta,
                            rho,
                        }),
                    })
                    .collect();
                let acc = self.run_ensemble(
                    &f,
                    &Oracle::FullBatch,
                    &systems,
                    steps,
                    steps,
                    rl.paths,
                    &self.rl_start,
                    *level,
                    false,
                    progress,
                );
                *level += 1;
                // Region prediction: ‖H x₀‖ < ρ μ, with μ = min(|λ|, other negatives) = |λ|.
                let grad_norms: Vec<f64> = samples
                    .iter()
                    .map(|x| {
                        x.iter()
                            .zip(&spec)
                            .map(|(xi, li)| (xi * li).powi(2))
                            .sum::<f64>()
                            .sqrt()
                    })
                    .collect();
                for (s, &rho) in rhos.iter().enumerate() {
                    let recs = &acc.rec[s];
                    let n = recs.len();
                    let k = recs.iter().filter(|q| q.final_norm < eps).count();
                    let region = panel.algorithm != AlgorithmKind::Usam;
                    let predicted = if region {
                        grad_norms.iter().filter(|&&g| g < rho * lambda).count() as f64
                            / grad_norms.len() as f64
                    } else if rho * lambda > 1.0 {
                        1.0
                    } else {
                        0.0
                    };
                    let (in_region, in_region_attracted) = if region {
                        let inr: Vec<&PathRecord> =
                            recs.iter().filter(|q| q.grad0 < rho * lambda).collect();
                        (
                            Some(inr.len()),
                            Some(inr.iter().filter(|q| q.final_norm < eps).count()),
                        )
                    } else {
                        (None, None)
                    };
                    if region && c.eta * rho * lambda.max(max_abs(&spec)) >= eps {
                        warnings.push(format!(
                            "phase_rho_lambda {}: at ρ = {rho:.3}, |λ| = {lambda:.3} the discrete stall distance ηρ max|λ_i| = {:.3} is not below ε = {eps}; such cells read as not attracted",
                            panel.algorithm,
                            c.eta * rho * lambda.max(max_abs(&spec))
                        ));
                    }
                    cells.push(CellReport {
                        rho,
                        y: lambda,
                        attracted: k,
                        paths: n,
                        fraction: k as f64 / n as f64,
                        ci: wilson(k, n, c.verdict.level),
                        predicted,
                        in_region,
                        in_region_attracted,
                    });
                }
            }
            let is_usam = panel.algorithm == AlgorithmKind::Usam;
            let boundaries = boundaries(rhos, &self.rl_lambdas, &cells, |y, row| {
                if is_usam {
                    Some(1.0 / y)
                } else {
                    let pred: Vec<f64> = row.iter().map(|q| q.predicted).collect();
                    crossing(rhos, &pred, 0.5)
                }
            });
            panels.push(PanelReport {
                name: format!("{}_rho_lambda", panel.algorithm),
                algorithm: panel.algorithm.name().into(),
                system: "discrete".into(),
                y_name: "lambda".into(),
                prediction: if is_usam {
                    "full-batch USAM: attracted iff ρ|λ| > 1".into()
                } else {
                    "full-batch SAM: attracted if ‖∇f(x₀)‖ < ρ|λ| (line: half the starts in the region)".into()
                },
                rhos: rhos.clone(),
                ys: self.rl_lambdas.clone(),
                cells,
                boundaries,
                attraction_radius: eps,
                horizon: rl.horizon,
            });
        }
        Ok(panels)
    }

    fn run_rho_sigma(
        &self,
        level: &mut u64,
        progress: Option<&(dyn Fn(u64) + Sync)>,
    ) -> Result<Vec<PanelReport>> {
        let c = &self.config;
        let rs = &c.phase_rho_sigma;
        let eps = rs.attraction_radius.unwrap_or(c.classify.attraction_radius);
        let steps = (rs.horizon / c.eta).round() as usize;
        let d = rs.eigenvalues.len();
        let mu = min_negative("phase_rho_sigma.eigenvalues", &rs.eigenvalues)?;
        let kd = kappa(d);
        let f = Quadratic::from_spectrum(&rs.eigenvalues, None)?;
        let with_sde = rs.sde_substeps.is_some();
        let mut cells: [Vec<CellReport>; 2] = [Vec::new(), Vec::new()];
        for &sigma in &self.rs_sigmas {
            let oracle = noise(d, sigma)?;
            let discrete: Vec<System> = self
                .rs_rhos
                .iter()
                .enumerate()
                .map(|(i, &rho)| System {
                    label: format!("{}#{i}", rs.algorithm),
                    dynamics: Dynamics::Discrete(Discrete {
                        kind: rs.algorithm,
                        eta: c.eta,
                        rho,
                    }),
                })
                .collect();
            let mut runs = vec![(0usize, discrete, rs.paths)];
            if let Some(r) = rs.sde_substeps {
                // The algorithm's SDE, an independent ensemble (its own run level).
                let kind = ModelKind::own(rs.algorithm);
                let mut sde = Vec::new();
                for (i, &rho) in self.rs_rhos.iter().enumerate() {
                    sde.push(System {
                        label: format!("{}#{i}", kind.name()),
                        dynamics: Dynamics::Euler {
                            model: SdeModel::new(
                                kind,
                                &f,
                                &oracle,
                                c.eta,
                                rho,
                                SdeForm::ClosedForm,
                                2,
                            )?,
                            substeps: r,
                        },
                    });
                }
                runs.push((1, sde, rs.sde_paths.unwrap_or(rs.paths)));
            }
            for (slot, systems, paths) in runs {
                let acc = self.run_ensemble(
                    &f,
                    &oracle,
                    &systems,
                    steps,
                    steps,
                    paths,
                    &self.rs_start,
                    *level,
                    false,
                    progress,
                );
                *level += 1;
                for (s, recs) in acc.rec.iter().enumerate() {
                    let rho = self.rs_rhos[s];
                    let n = recs.len();
                    let k = recs.iter().filter(|q| q.final_norm < eps).count();
                    cells[slot].push(CellReport {
                        rho,
                        y: sigma,
                        attracted: k,
                        paths: n,
                        fraction: k as f64 / n as f64,
                        ci: wilson(k, n, c.verdict.level),
                        predicted: if rho * kd * mu > sigma { 1.0 } else { 0.0 },
                        in_region: None,
                        in_region_attracted: None,
                    });
                }
            }
        }
        let [discrete, sde] = cells;
        let mut out = Vec::new();
        for (cells, name, system) in [
            (
                discrete,
                "sam_rho_sigma".to_string(),
                "discrete".to_string(),
            ),
            (
                sde,
                "sam_sde_rho_sigma".to_string(),
                format!(
                    "sam_sde (closed form, Euler–Maruyama, {} sub-steps per η)",
                    rs.sde_substeps.unwrap_or(0)
                ),
            ),
        ] {
            if cells.is_empty() {
                continue;
            }
            let boundaries = boundaries(&self.rs_rhos, &self.rs_sigmas, &cells, |sigma, _| {
                Some(sigma / (kd * mu))
            });
            out.push(PanelReport {
                name,
                algorithm: rs.algorithm.name().into(),
                system,
                y_name: "sigma".into(),
                prediction: format!(
                    "mini-batch SAM: attracted iff ρ κ_d |λ| > σ (κ_{d} = {kd:.4})"
                ),
                rhos: self.rs_rhos.clone(),
                ys: self.rs_sigmas.clone(),
                cells,
                boundaries,
                attraction_radius: eps,
                horizon: rs.horizon,
            });
        }
        debug_assert!(with_sde == (out.len() == 2));
        Ok(out)
    }

    fn judge(&self, reference: &[ReferenceRowReport], phases: &[PanelReport]) -> Vec<Verdict> {
        let c = &self.config;
        let v = &c.verdict;
        let mut out = Vec::new();
        for p in phases {
            let devs: Vec<Option<f64>> = p.boundaries.iter().map(|b| b.deviation_dex).collect();
            let all = devs.iter().all(|d| d.is_some());
            let finite: Vec<f64> = devs.iter().flatten().copied().collect();
            // Per-row interval of Δ from the crossings of the Wilson curves (pointwise level
            // per row, not simultaneous); an end outside the grid is ∓∞.
            let row_ci: Vec<(f64, f64)> = p
                .boundaries
                .iter()
                .filter_map(|b| {
                    let pred = b.rho_pred?;
                    let lo = b.rho_sim_ci[0].map_or(f64::NEG_INFINITY, |x| (x / pred).log10());
                    let hi = b.rho_sim_ci[1].map_or(f64::INFINITY, |x| (x / pred).log10());
                    Some((lo, hi))
                })
                .collect();
            let note = format!(
                "{} of {} rows have a crossing inside the grid; ci: from the rows' Wilson-curve crossing intervals at level {}, pointwise per row; pass/fail on the point estimate",
                finite.len(),
                devs.len(),
                v.level
            );
            if p.y_name == "sigma" || p.algorithm == "usam" {
                let tol = if p.y_name == "sigma" {
                    v.minibatch_tolerance_dex
                } else {
                    v.usam_tolerance_dex
                };
                let m = finite.iter().map(|d| d.abs()).fold(0.0, f64::max);
                // max_rows |Δ| ∈ [max_rows dist(0, I_row), max_rows max(|lo|, |hi|)].
                let ci_lo = row_ci
                    .iter()
                    .map(|&(a, b)| {
                        if a > 0.0 {
                            a
                        } else if b < 0.0 {
                            -b
                        } else {
                            0.0
                        }
                    })
                    .fold(0.0, f64::max);
                let ci_hi = row_ci
                    .iter()
                    .map(|&(a, b)| a.abs().max(b.abs()))
                    .fold(0.0, f64::max);
                out.push(Verdict {
                    claim: format!(
                        "{}: simulated ½-attraction boundary agrees with {} on every row",
                        p.name, p.prediction
                    ),
                    measured: if all { m } else { f64::NAN },
                    ci: Some([ci_lo, ci_hi]),
                    expected: format!("max over rows |log₁₀(ρ_sim/ρ_pred)| ≤ {tol} dex ({note})"),
                    verdict: if all && m <= tol { "pass" } else { "fail" }.into(),
                });
            } else {
                let n: usize = p.cells.iter().filter_map(|q| q.in_region).sum();
                let k: usize = p.cells.iter().filter_map(|q| q.in_region_attracted).sum();
                out.push(Verdict {
                    claim: format!(
                        "{}: every path that starts in the region ‖∇f‖ < ρ|λ| is attracted (sufficiency)",
                        p.name
                    ),
                    measured: if n > 0 { k as f64 / n as f64 } else { f64::NAN },
                    ci: Some(wilson(k, n, v.level)),
                    expected: format!("1 ({k} of {n} paths attracted; pass iff all; Wilson ci)"),
                    verdict: if n > 0 && k == n { "pass" } else { "fail" }.into(),
                });
                let m = finite.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                let ci_lo = row_ci.iter().map(|r| r.0).fold(f64::NEG_INFINITY, f64::max);
                let ci_hi = row_ci.iter().map(|r| r.1).fold(f64::NEG_INFINITY, f64::max);
                let (lo, _) = range(&finite);
                out.push(Verdict {
                    claim: format!(
                        "{}: the simulated ½-attraction boundary lies at or below the region's (basin ⊇ region)",
                        p.name
                    ),
                    measured: if all { m } else { f64::NAN },
                    ci: Some([ci_lo, ci_hi]),
                    expected: format!(
                        "max over rows log₁₀(ρ_sim/ρ_pred) ≤ {} dex, one-sided; the most conservative row is at {lo:+.3} dex ({note})",
                        v.region_tolerance_dex,
                    ),
                    verdict: if all && m <= v.region_tolerance_dex {
                        "pass"
                    } else {
                        "fail"
                    }
                    .into(),
                });
            }
        }
        // Stall distance of full-batch SAM.
        let mu = self.mu_reference;
        for row in reference {
            let is_sam = row.algorithm == "sam" || row.algorithm == "dnsam";
            if is_sam && row.sigma == 0.0 && row.expected == Outcome::Stall {
                let pred = c.eta * row.rho * mu;
                let rel = row.tail_mean_norm_median / pred - 1.0;
                out.push(Verdict {
                    claim: format!(
                        "discrete full-batch {} ρ = {} from {:?} stalls at distance ηρ|λ| = {pred:.3e}",
                        row.algorithm, row.rho, row.start
                    ),
                    measured: row.tail_mean_norm_median,
                    ci: None,
                    expected: format!(
                        "{pred:.3e} within {} % (measured relative error {:+.1} %; deterministic, tail mean of ‖x‖)",
                        v.stall_tolerance * 100.0,
                        rel * 100.0
                    ),
                    verdict: if rel.abs() <= v.stall_tolerance {
                        "pass"
                    } else {
                        "fail"
                    }
                    .into(),
                });
            }
        }
        for row in reference {
            out.push(Verdict {
                claim: format!(
                    "SPEC §6 reference: {} ρ = {} σ = {} from {:?} {}s",
                    if row.algorithm == "sgd" && row.sigma == 0.0 {
                        "gd"
                    } else {
                        &row.algorithm
                    },
                    row.rho,
                    row.sigma,
                    row.start,
                    row.expected.name()
                ),
                measured: row.fraction_expected,
                ci: Some(row.ci),
                expected: if row.paths == 1 {
                    format!("{} (1 deterministic path)", row.expected.name())
                } else {
                    format!(
                        "{} on most paths: Wilson lower bound > 0.5 ({} paths)",
                        row.expected.name(),
                        row.paths
                    )
                },
                verdict: row.verdict.clone(),
            });
        }
        out
    }
}

fn range(v: &[f64]) -> (f64, f64) {
    v.iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &x| {
            (a.min(x), b.max(x))
        })
}

fn max_abs(v: &[f64]) -> f64 {
    v.iter().fold(0.0, |m, x| m.max(x.abs()))
}

fn noise(d: usize, sigma: f64) -> Result<Oracle> {
    Ok(if sigma == 0.0 {
        Oracle::FullBatch
    } else {
        Oracle::Additive(AdditiveNoise::isotropic(d, sigma)?)
    })
}

/// Per-row boundaries from cells laid out row-major.
fn boundaries<F: Fn(f64, &[CellReport]) -> Option<f64>>(
    rhos: &[f64],
    ys: &[f64],
    cells: &[CellReport],
    predict: F,
) -> Vec<RowBoundary> {
    ys.iter()
        .enumerate()
        .map(|(i, &y)| {
            let row = &cells[i * rhos.len()..(i + 1) * rhos.len()];
            let frac: Vec<f64> = row.iter().map(|q| q.fraction).collect();
            let lo: Vec<f64> = row.iter().map(|q| q.ci[0]).collect();
            let hi: Vec<f64> = row.iter().map(|q| q.ci[1]).collect();
            let rho_sim = crossing(rhos, &frac, 0.5);
            let rho_pred = predict(y, row);
            RowBoundary {
                y,
                rho_pred,
                rho_sim,
                // The upper Wilson curve crosses first (smaller ρ), the lower one last.
                rho_sim_ci: [crossing(rhos, &hi, 0.5), crossing(rhos, &lo, 0.5)],
                deviation_dex: match (rho_sim, rho_pred) {
                    (Some(s), Some(p)) => Some((s / p).log10()),
                    _ => None,
                },
            }
        })
        .collect()
}

/// Deterministic draws of a start distribution (region predictions).
fn start_samples(start: &Start, d: usize, n: usize, seed: u64) -> Vec<Vec<f64>> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x5AD_D1E);
    (0..n)
        .map(|_| match start {
            Start::Point(x) => x.iter().copied().collect(),
            Start::Gaussian { mean, std } => (0..d)
                .map(|i| {
                    let z: f64 = StandardNormal.sample(&mut rng);
                    mean[i] + std * z
                })
                .collect(),
            Start::Shell {
                center,
                r_min,
                r_max,
            } => {
                let z: Vec<f64> = (0..d).map(|_| StandardNormal.sample(&mut rng)).collect();
                let norm = z.iter().map(|v| v * v).sum::<f64>().sqrt();
                let u: f64 = rng.random();
                let df = d as f64;
                let (a, b) = (r_min.powf(df), r_max.powf(df));
                let r = (a + u * (b - a)).powf(1.0 / df);
                (0..d).map(|i| center[i] + r * z[i] / norm).collect()
            }
        })
        .collect()
}

fn escape_report(recs: &[PathRecord], level: f64) -> EscapeReport {
    let n = recs.len();
    let mut times: Vec<f64> = recs.iter().filter_map(|q| q.escape_time).collect();
    times.sort_by(f64::total_cmp);
    let escaped = times.len();
    let diverged = recs.iter().filter(|q| q.diverged).count();
    let z = z_quantile(level);
    // Quantile q of the escape time with censored paths as +∞: order statistic ⌈nq⌉; its
    // interval uses the ranks nq ± z√(nq(1−q)) (normal approximation to the binomial).
    let order = |rank: f64| -> Option<f64> {
        let i = rank.ceil().max(1.0) as usize;
        if i > n {
            None
        } else if i <= escaped {
            Some(times[i - 1])
        } else {
            None
        }
    };
    let quantiles = [0.1, 0.5, 0.9]
        .iter()
        .map(|&q| {
            let nf = n as f64;
            let half = z * (nf * q * (1.0 - q)).sqrt();
            [
                Some(q),
                order(nf * q),
                order((nf * q - half).max(1.0)),
                order(nf * q + half),
            ]
        })
        .collect();
    EscapeReport {
        paths: n,
        escaped,
        censored: n - escaped,
        diverged,
        fraction_escaped: escaped as f64 / n.max(1) as f64,
        fraction_ci: wilson(escaped, n, level),
        quantiles,
        times,
    }
}

fn definitions(c: &SaddleConfig) -> BTreeMap<String, String> {
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
    put("stall_distance", "median over paths of the tail mean of ‖x‖, against η ρ |λ| with |λ| = min over negative eigenvalues".into());
    put("curves", "median and 10–90 % quantile band of ‖x‖ over paths (paths stopped at the divergence bound count as +∞); mean over paths not stopped".into());
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wilson_matches_known_values() {
        // 95 % Wilson for 0/10: [0, 0.2775]; 5/10: [0.2366, 0.7634].
        let a = wilson(0, 10, 0.95);
        assert!(a[0] == 0.0 && (a[1] - 0.2775).abs() < 1e-3, "{a:?}");
        let b = wilson(5, 10, 0.95);
        assert!(
            (b[0] - 0.2366).abs() < 1e-3 && (b[1] - 0.7634).abs() < 1e-3,
            "{b:?}"
        );
    }

    #[test]
    fn crossing_interpolates_in_log() {
        let xs = [1.0, 10.0, 100.0];
        let c = crossing(&xs, &[0.0, 0.25, 0.75], 0.5).unwrap();
        assert!((c.log10() - 1.5).abs() < 1e-12);
        assert!(crossing(&xs, &[0.6, 0.7, 0.8], 0.5).is_none());
        assert!(crossing(&xs, &[0.0, 0.1, 0.2], 0.5).is_none());
    }

    #[test]
    fn quantiles() {
        let v = [1.0, 2.0, 3.0, 4.0];
        assert_eq!(quantile_sorted(&v, 0.5), 2.5);
        assert_eq!(quantile_sorted(&[1.0, f64::INFINITY], 1.0), f64::INFINITY);
    }
}
