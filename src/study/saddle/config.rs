//! The saddle study's TOML configuration ([`SaddleConfig`] and its parts; unknown keys are
//! errors), the embedded default [`DEFAULT_CONFIG`], and the field-level validation helpers used
//! by [`SaddleStudy::new`](super::SaddleStudy::new): start distributions centred at the saddle,
//! geometric grids `min·(max/min)^{i/(count−1)}`, and `μ = min_{λ_i<0} |λ_i|`.

use serde::{Deserialize, Serialize};

use super::Outcome;
use crate::ensemble::Start;
use crate::error::{Error, Result};
use crate::linalg::Vector;
use crate::optim::AlgorithmKind;
use crate::study::setup;

/// The embedded default configuration (`experiments/saddle_default.toml`).
pub const DEFAULT_CONFIG: &str = include_str!("../../../experiments/saddle_default.toml");

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
    pub(super) fn build(&self, field: &str, d: usize) -> Result<Start> {
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
    pub(super) fn values(&self, field: &str) -> Result<Vec<f64>> {
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

/// The reference run (saddle points of Paper 1, `H = diag(1, −0.5)`, `η = 0.01`).
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

/// One spectrum of the stall check: full-batch SAM from a point, one deterministic path.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StallCase {
    /// Spectrum of the diagonal `H` (at least one negative eigenvalue).
    pub eigenvalues: Vec<f64>,
    /// Radius `ρ`.
    pub rho: f64,
    /// Start `x₀` (inside the attracted region `‖∇f(x₀)‖ < ρ min_{λ<0}|λ|`).
    pub start: Vec<f64>,
}

/// The stall-distance check of discrete full-batch SAM over several spectra: the 2-cycle along
/// the eigendirection of the largest `|λ_i|`, at distance `≈ ηρ max_i|λ_i| / 2`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StallConfig {
    /// Steps per case (the stall distance is the tail mean of `‖x‖`, `classify.tail_fraction`).
    pub steps: usize,
    /// The spectra.
    pub cases: Vec<StallCase>,
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
    /// Allowed relative error of the stall distance against `ηρ max_i|λ_i| / 2`.
    pub stall_tolerance: f64,
}

/// The saddle study's configuration (TOML; unknown keys are errors).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SaddleConfig {
    /// Figure and table title; empty or absent: generated from the parameters (see
    /// [`Self::display_title`]).
    #[serde(default)]
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
    /// The reference run.
    pub reference: ReferenceConfig,
    /// Curves and escape times.
    pub curves: CurvesConfig,
    /// `(ρ, |λ|)` phase diagram.
    pub phase_rho_lambda: RhoLambdaConfig,
    /// `(ρ, σ)` phase diagram.
    pub phase_rho_sigma: RhoSigmaConfig,
    /// Stall distance of full-batch SAM on several spectra (absent: only the reference run's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stall: Option<StallConfig>,
    /// Verdicts.
    pub verdict: VerdictConfig,
}

impl SaddleConfig {
    /// The title: `title` if given, else generated from the reference spectrum and `η`.
    pub fn display_title(&self) -> String {
        if !self.title.trim().is_empty() {
            return self.title.clone();
        }
        let n = setup::title_num;
        format!(
            "SAM near a saddle: H = diag({}), η = {}",
            self.reference
                .eigenvalues
                .iter()
                .map(|&v| n(v))
                .collect::<Vec<_>>()
                .join(", "),
            n(self.eta)
        )
    }
}

// ---------------------------------------------------------------------------------------------
// Validation helpers.

pub(super) fn steps_of(field: &str, horizon: f64, eta: f64) -> Result<usize> {
    setup::positive(field, horizon)?;
    setup::whole_steps(field, horizon, eta)
}

pub(super) fn min_negative(field: &str, eigenvalues: &[f64]) -> Result<f64> {
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

/// `max_i |λ_i|`, the curvature of the direction full-batch SAM's 2-cycle takes.
pub(super) fn max_abs(eigenvalues: &[f64]) -> f64 {
    eigenvalues.iter().fold(0.0, |m, v| m.max(v.abs()))
}

pub(super) fn positive_count(field: &str, v: usize) -> Result<usize> {
    if v == 0 {
        Err(Error::config(field, v, "must be > 0"))
    } else {
        Ok(v)
    }
}
