//! Memory and work of a trajectories run, estimated from the raw configuration before anything
//! is built ([`crate::study::budget`]): one ensemble of `paths` paths over `T/η` steps with each
//! algorithm and its SDE, which keeps every path's value of every observable at every save
//! (for the quantile bands) and the first `sample_paths` paths whole (every step, at most
//! `MAX_SAMPLE_POINTS` points each).

use super::{TrajectoriesConfig, MAX_TRACE_DIM};
use crate::error::Result;
use crate::optim::AlgorithmKind;
use crate::study::budget::{self, Budget, EnsembleShape, SystemCost, F64, MAX_COUNT};
use crate::study::setup::{self, OracleConfig};

/// The estimate (module docs).
pub fn budget(c: &TrajectoriesConfig, threads: usize) -> Result<Budget> {
    let mut b = Budget::new("trajectories");
    let land = c.landscape.budget(&mut b)?;
    let d = land.dim;
    let noise = c.oracle.budget(d, land.dim_field, land.n_samples, &mut b)?;
    let eta = setup::positive("eta", c.eta)?;
    let horizon = setup::positive("horizon", c.horizon)?;
    let steps = budget::count("horizon", horizon / eta, MAX_COUNT)? as f64;
    let saves = budget::count("saves", c.saves as f64, MAX_COUNT)? as f64;
    budget::count("substeps", c.substeps as f64 * steps, MAX_COUNT)?;
    let df = d as f64;
    let na = c.algorithms.len() as f64;
    let ns = 2.0 * na;
    let observables = if d <= MAX_TRACE_DIM { 4.0 } else { 3.0 };
    let paths = c.paths as f64;
    let subsampling = matches!(c.oracle, OracleConfig::Subsampling { .. });
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
            inner: subsampling.then_some(64.0),
        });
    }
    let fields = ["paths", "saves", "algorithms"];
    // Every value (with the block's copy while merging), the moments, the sample paths.
    let values = paths * (saves + 1.0) * ns * observables * F64;
    // The sample paths keep every step (at most MAX_SAMPLE_POINTS of them).
    let points = steps.min(super::MAX_SAMPLE_POINTS as f64) + 1.0;
    let samples = (c.sample_paths as f64).min(paths) * points * ns * (df * F64 + 24.0);
    budget::ensemble(
        &mut b,
        "ensemble",
        &["paths", "horizon", "eta"],
        EnsembleShape {
            d: df,
            m: noise.m as f64,
            grad: land.grad_flops,
            paths,
            steps,
            block: c.block_size.max(1) as f64,
            substeps: c.substeps as f64,
            noise_matrix: noise.matrix,
        },
        &systems,
        (saves + 1.0) * ns * observables * 48.0,
        0.0,
        threads,
    );
    b.mem(
        "stored values for the quantile bands",
        &fields,
        2.0 * values,
    );
    b.mem(
        "sample paths",
        &["sample_paths", "horizon", land.dim_field],
        samples,
    );
    // Observables at every save: a gradient per path and system (and the Hessian's trace).
    let trace = if d <= MAX_TRACE_DIM {
        df * land.grad_flops
    } else {
        0.0
    };
    b.flops(
        "observables",
        &["paths", "saves"],
        paths * (saves + 1.0) * ns * (land.grad_flops + trace + 4.0 * df),
    );
    // The report: five numbers per save, observable and system, and the sample paths.
    b.mem(
        "report",
        &["saves", "sample_paths"],
        (saves + 1.0) * ns * observables * 5.0 * 48.0 + samples * 3.0,
    );
    Ok(b)
}
