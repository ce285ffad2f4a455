//! Memory and work of a flatness run, estimated from the raw configuration before anything is
//! built ([`crate::study::budget`]): two two-basin ensembles (radii `rho` and `rho_small`) of
//! `paths` paths over `T/η` steps with each algorithm and its SDE (a gradient costs `≈ 40 d`),
//! keeping a small state per path and system, then the stationary-loss ensemble on the quadratic
//! of `stationary.eigenvalues` (exact OU transitions and discrete maps, `2d²` per gradient).

use super::{FlatnessConfig, TwoBasinConfig};
use crate::error::Result;
use crate::optim::AlgorithmKind;
use crate::study::budget::{self, Budget, EnsembleShape, SystemCost, F64, MAX_COUNT};
use crate::study::setup;

/// Bytes of one path's per-system state (basin entry times, flags) with its `Vec` share.
const PATH_STATE: f64 = 48.0;

/// The estimate (module docs).
pub fn budget(c: &FlatnessConfig, threads: usize) -> Result<Budget> {
    let mut b = Budget::new("flatness");
    let d = match &c.landscape {
        TwoBasinConfig::Warped { dim, .. } | TwoBasinConfig::SoftMin { dim, .. } => *dim,
    };
    if d == 0 {
        return Err(crate::error::Error::config(
            "landscape.dim",
            d,
            "must be ≥ 1",
        ));
    }
    let df = d as f64;
    let eta = setup::positive("eta", c.eta)?;
    let horizon = setup::positive("horizon", c.horizon)?;
    let steps = budget::count("horizon", horizon / eta, MAX_COUNT)? as f64;
    budget::count("substeps", c.substeps as f64 * steps, MAX_COUNT)?;
    let paths = c.paths as f64;
    let ns = 2.0 * c.algorithms.len() as f64;
    b.mem(
        "oracle noise matrix σI",
        &["landscape.dim"],
        2.0 * df * df * F64,
    );
    let mut systems: Vec<SystemCost> = c
        .algorithms
        .iter()
        .map(|a| SystemCost::Discrete {
            grads: if *a == AlgorithmKind::Sgd { 1.0 } else { 2.0 },
        })
        .collect();
    for _ in &c.algorithms {
        systems.push(SystemCost::Euler {
            substeps: c.substeps as f64,
            inner: None,
        });
    }
    let mut two_basin = Budget::new("flatness");
    budget::ensemble(
        &mut two_basin,
        "two-basin ensemble",
        &["paths", "horizon", "eta"],
        EnsembleShape {
            d: df,
            m: df,
            grad: 40.0 * df,
            paths,
            steps,
            block: c.block_size.max(1) as f64,
            substeps: c.substeps as f64,
            noise_matrix: false,
        },
        &systems,
        ns * 200.0,
        0.0,
        threads,
    );
    // Per-path states of one block per thread, and the observables at every step.
    two_basin.mem(
        "per-path basin states",
        &["block_size", "algorithms"],
        (threads.max(1) as f64) * (c.block_size as f64).min(paths) * ns * PATH_STATE,
    );
    two_basin.flops(
        "basin observables",
        &["paths", "horizon", "eta"],
        paths * steps * ns * 80.0 * df,
    );
    // The two radii run one after the other.
    for t in &mut two_basin.work {
        t.amount *= 2.0;
    }
    let s = &c.stationary;
    let ds = s.eigenvalues.len() as f64;
    let s_eta = setup::positive("stationary.eta", s.eta)?;
    let s_horizon = setup::positive("stationary.horizon", s.horizon)?;
    let s_steps = budget::count("stationary.horizon", s_horizon / s_eta, MAX_COUNT)? as f64;
    let mut stationary = Budget::new("flatness");
    stationary.mem(
        "stationary quadratic and transitions",
        &["stationary.eigenvalues"],
        20.0 * ds * ds * F64,
    );
    budget::ensemble(
        &mut stationary,
        "stationary ensemble",
        &["stationary.paths", "stationary.horizon", "stationary.eta"],
        EnsembleShape {
            d: ds,
            m: ds,
            grad: 2.0 * ds * ds,
            paths: s.paths as f64,
            steps: s_steps,
            block: c.block_size.max(1) as f64,
            substeps: 1.0,
            noise_matrix: false,
        },
        &[
            SystemCost::ExactOu,
            SystemCost::ExactOu,
            SystemCost::Discrete { grads: 2.0 },
            SystemCost::Discrete { grads: 1.0 },
        ],
        4.0 * 24.0,
        0.0,
        threads,
    );
    b.sequential(vec![two_basin, stationary]);
    Ok(b)
}
