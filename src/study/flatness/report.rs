//! The flatness study's result (`flatness.json`): per system of each two-basin run a
//! [`SystemResult`] (flat fraction, exit times per basin, final `tr H` and loss), the stationary
//! losses, and the [`FlatnessReport`] with the shared run header, verdicts and observations.

use serde::Serialize;

use super::FlatnessConfig;
use crate::optim::AlgorithmKind;
use crate::stats::MeanCi;
use crate::study::header::RunHeader;
use crate::study::verdict::{self, Observation, Verdict};

/// Exit-time statistics of one basin for one system.
#[derive(Debug, Clone, Serialize)]
pub struct ExitStats {
    /// Paths that entered the basin's core.
    pub entered: u64,
    /// Of those, paths that reached the other core before `T`.
    pub exited: u64,
    /// Entered but not exited by `T` (censored; not in `mean`).
    pub censored: u64,
    /// Mean of the observed exit times, Student-t CI.
    pub mean: MeanCi,
    /// Exponential maximum-likelihood mean exit time (censoring included).
    pub mle_mean: f64,
    /// Approximate CI of `mle_mean`.
    pub mle_ci: [f64; 2],
}

/// One system (a discrete algorithm or an SDE) of the two-basin run.
#[derive(Debug, Clone, Serialize)]
pub struct SystemResult {
    /// Label (`usam`, `usam_sde`).
    pub label: String,
    /// Algorithm.
    pub algorithm: AlgorithmKind,
    /// `discrete` or `sde`.
    pub kind: String,
    /// Radius used.
    pub rho: f64,
    /// Fraction of paths in the flat basin at `T`.
    pub flat_fraction: MeanCi,
    /// Exits from the flat basin.
    pub exit_flat: ExitStats,
    /// Exits from the sharp basin.
    pub exit_sharp: ExitStats,
    /// `tr ∇²f(x_T)`.
    pub final_trace_hessian: MeanCi,
    /// `f(x_T)`.
    pub final_loss: MeanCi,
    /// Diverged paths (excluded).
    pub diverged: u64,
}

/// One stationary-loss estimate.
#[derive(Debug, Clone, Serialize)]
pub struct StationaryResult {
    /// System label.
    pub system: String,
    /// Time-averaged `f` over `(burn_in, T]`, Student-t CI over paths.
    pub measured: MeanCi,
    /// `(ησ²/4)(d + ρ tr H)` (`ρ = 0` for SGD).
    pub formula: f64,
    /// Exact stationary value of this system (OU for SDEs, linear recursion for discrete).
    pub exact: f64,
}

/// The study's result (`flatness.json`).
#[derive(Debug, Clone, Serialize)]
pub struct FlatnessReport {
    /// The shared run header.
    #[serde(flatten)]
    pub header: RunHeader<FlatnessConfig>,
    /// Landscape description.
    pub landscape: String,
    /// Barrier `ΔF`.
    pub barrier: f64,
    /// SGD temperature `ησ²/2` (for `ΔF/T`).
    pub temperature: f64,
    /// Per system, preference run (radii `rho`; verdict (a)).
    pub systems: Vec<SystemResult>,
    /// Per system, small-ρ run (radii `rho_small`; verdict (b)).
    pub small_rho_systems: Vec<SystemResult>,
    /// Stationary-loss estimates.
    pub stationary: Vec<StationaryResult>,
    /// Verdicts.
    pub verdicts: Vec<Verdict>,
    /// The comparisons of verdict (b) repeated on the preference run: information only (the
    /// first-order SDE is not expected to hold when `ρ σ √d` is not small against the basin
    /// width; see the module docs). `reading`: `consistent`, `differs` or `undecided`.
    pub observations: Vec<Observation>,
}

impl FlatnessReport {
    /// `true` iff every verdict passes.
    pub fn all_pass(&self) -> bool {
        verdict::all_pass(&self.verdicts)
    }
}
