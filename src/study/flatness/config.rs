//! The flatness study's TOML configuration: the two-basin landscape and its start, the radii of
//! the preference and small-ρ runs, the stationary-loss check and the verdict level. Unknown keys
//! are errors; validation is in [`super::FlatnessStudy::new`].

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::landscape::{TwoBasin, TwoBasinLandscape, WarpedDoubleWell};
use crate::optim::AlgorithmKind;
use crate::study::setup;

/// The two-basin landscape (see [`crate::landscape::two_basin`]), by shape.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "shape", rename_all = "snake_case", deny_unknown_fields)]
pub enum TwoBasinConfig {
    /// `f = V(x₀) + ½ a(x₀) Σ x_i²`, exactly equal depths, smooth saddle.
    Warped {
        /// Dimension `d`.
        dim: usize,
        /// Flat curvature `a_f`.
        a_flat: f64,
        /// `κ = a_s/a_f`.
        kappa: f64,
        /// Barrier `ΔF`.
        barrier: f64,
    },
    /// `f = −τ log(e^{−q_f/τ} + e^{−q_s/τ})`.
    SoftMin {
        /// Dimension `d`.
        dim: usize,
        /// Flat curvature `a_f`.
        a_flat: f64,
        /// `κ = a_s/a_f`.
        kappa: f64,
        /// Minima at `x₀ = ±separation`.
        separation: f64,
        /// Soft-min temperature `τ`.
        tau: f64,
    },
}

impl FlatnessConfig {
    /// The title: `title` if given, else generated from the landscape, `η` and `σ`.
    pub fn display_title(&self) -> String {
        if !self.title.trim().is_empty() {
            return self.title.clone();
        }
        let n = setup::title_num;
        let land = match &self.landscape {
            TwoBasinConfig::Warped {
                dim,
                kappa,
                barrier,
                ..
            } => format!(
                "{dim}-D warped double well (κ = {}, ΔF = {})",
                n(*kappa),
                n(*barrier)
            ),
            TwoBasinConfig::SoftMin {
                dim, kappa, tau, ..
            } => {
                format!(
                    "{dim}-D soft-min two-basin landscape (κ = {}, τ = {})",
                    n(*kappa),
                    n(*tau)
                )
            }
        };
        format!(
            "Flat-basin preference on the {land}, η = {}, σ = {}",
            n(self.eta),
            n(self.sigma)
        )
    }
}

impl TwoBasinConfig {
    /// Builds and validates.
    pub fn build(&self) -> Result<Box<dyn TwoBasinLandscape>> {
        Ok(match self {
            Self::Warped {
                dim,
                a_flat,
                kappa,
                barrier,
            } => Box::new(WarpedDoubleWell::new(*dim, *a_flat, *kappa, *barrier)?),
            Self::SoftMin {
                dim,
                a_flat,
                kappa,
                separation,
                tau,
            } => Box::new(TwoBasin::new(*dim, *a_flat, *kappa, *separation, *tau)?),
        })
    }
}

/// Initial condition of the two-basin runs.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum FlatStart {
    /// `x₀ ~ N(saddle, std² I)`: centred on the saddle between the basins (`std = 0`: exactly on it).
    Ridge {
        /// Standard deviation per coordinate.
        std: f64,
    },
    /// A given point.
    Point {
        /// Coordinates.
        x: Vec<f64>,
    },
}

/// Settings of the stationary-loss check (verdict (c)).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StationaryConfig {
    /// Eigenvalues of `H` (all > 0).
    pub eigenvalues: Vec<f64>,
    /// Learning rate.
    pub eta: f64,
    /// USAM radius.
    pub rho: f64,
    /// Noise `σ`.
    pub sigma: f64,
    /// Paths.
    pub paths: usize,
    /// Time discarded before averaging.
    pub burn_in: f64,
    /// Horizon `T`.
    pub horizon: f64,
}

/// Verdict settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FlatVerdictConfig {
    /// Confidence level of every interval.
    #[serde(default = "setup::default_level")]
    pub level: f64,
}

impl Default for FlatVerdictConfig {
    fn default() -> Self {
        Self {
            level: setup::default_level(),
        }
    }
}

fn default_substeps() -> usize {
    8
}
fn default_core() -> f64 {
    0.25
}
fn default_bound() -> f64 {
    1e3
}

/// The flatness study's configuration (TOML; unknown keys are errors).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FlatnessConfig {
    /// Figure and table title; empty or absent: generated from the parameters (see
    /// [`Self::display_title`]).
    #[serde(default)]
    pub title: String,
    /// Master seed.
    pub seed: u64,
    /// Monte Carlo paths of the two-basin runs.
    pub paths: usize,
    /// Paths per block.
    #[serde(default = "setup::default_block")]
    pub block_size: usize,
    /// Algorithms (SGD must be among them for verdict (a)).
    pub algorithms: Vec<AlgorithmKind>,
    /// Radius `ρ` per SAM variant (`usam = 0.05`, …) of the preference run (verdict (a)).
    pub rho: BTreeMap<AlgorithmKind, f64>,
    /// Radii of the small-ρ run (verdict (b)): `ρ σ √d` must be small against the basin width
    /// for the first-order SDEs to apply.
    pub rho_small: BTreeMap<AlgorithmKind, f64>,
    /// Learning rate `η`.
    pub eta: f64,
    /// Additive isotropic noise `σ`.
    pub sigma: f64,
    /// Horizon `T`.
    pub horizon: f64,
    /// Euler–Maruyama sub-steps per `η` for the SDEs.
    #[serde(default = "default_substeps")]
    pub substeps: usize,
    /// Core size as a fraction of the barrier: core `i` = `{q_i ≤ core · ΔF}`.
    #[serde(default = "default_core")]
    pub core: f64,
    /// A path diverges when `‖x‖` exceeds this.
    #[serde(default = "default_bound")]
    pub divergence_bound: f64,
    /// The landscape.
    pub landscape: TwoBasinConfig,
    /// The initial condition.
    pub start: FlatStart,
    /// The stationary-loss check.
    pub stationary: StationaryConfig,
    /// Verdict settings.
    #[serde(default)]
    pub verdict: FlatVerdictConfig,
    /// Also run the second-order models `sgd_sde2`, `usam_sde2` (for SGD and USAM among
    /// `algorithms`) in the preference run, and report their flat fractions beside the discrete
    /// algorithms' and the first-order SDEs' (observations).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub second_order: bool,
}
