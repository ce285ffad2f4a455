//! Memory and work of a convergence run, estimated from the raw configuration before anything
//! is built ([`crate::study::budget`]): the landscape and noise matrices, and per learning rate
//! one ensemble of `paths` paths over `T/η` steps (the algorithms, each model at `substeps` and,
//! for Euler–Maruyama, at `substeps/2`) whose accumulators hold `(saves + 1) × rows` moments, plus
//! the exact moment recursions (`≈ 40 d³` per step and linear pair).

use super::config::{ConvergenceConfig, Integrator, Reference};
use crate::error::{Error, Result};
use crate::optim::AlgorithmKind;
use crate::sde::{ModelKind, SdeForm};
use crate::study::budget::{self, Budget, EnsembleShape, SystemCost, F64, MAX_COUNT};
use crate::study::setup::{self, LandscapeConfig, LandscapeSize, OracleConfig};

/// Bytes of one [`crate::stats::Moments`].
const MOMENTS: f64 = 24.0;
/// Largest `schedule.halvings` (η₀/2^60 is below any useful step).
pub const MAX_HALVINGS: usize = 60;

/// The learning rates of the schedule without building the list: `(η, field)` for each.
fn etas(c: &ConvergenceConfig) -> Result<Vec<(f64, String)>> {
    let s = &c.schedule;
    Ok(match (&s.etas, s.eta0, s.halvings) {
        (Some(list), None, None) => list
            .iter()
            .enumerate()
            .map(|(i, e)| {
                let f = format!("schedule.etas[{i}]");
                setup::positive(&f, *e).map(|e| (e, f))
            })
            .collect::<Result<_>>()?,
        (None, Some(eta0), Some(h)) => {
            setup::positive("schedule.eta0", eta0)?;
            if h > MAX_HALVINGS {
                return Err(Error::config(
                    "schedule.halvings",
                    h,
                    format!(
                        "must be ≤ {MAX_HALVINGS} (η₀/2^{MAX_HALVINGS} is below any useful step)"
                    ),
                ));
            }
            (0..=h)
                .map(|k| (eta0 / 2f64.powi(k as i32), "schedule.halvings".to_string()))
                .collect()
        }
        _ => {
            return Err(Error::config(
                "schedule",
                "eta0/halvings/etas",
                "give either `etas` or both `eta0` and `halvings`",
            ))
        }
    })
}

/// The estimate (module docs); errors name the field of a size that cannot work at all.
/// `landscape`: the sizes of a landscape given in code (otherwise from the configuration).
pub fn budget(
    c: &ConvergenceConfig,
    threads: usize,
    landscape: Option<LandscapeSize>,
) -> Result<Budget> {
    let mut b = Budget::new("convergence");
    if c.paths >= 1 << crate::ensemble::rng::LEVEL_SHIFT {
        return Err(Error::config("paths", c.paths, "must be < 2^40"));
    }
    let land: LandscapeSize = match landscape {
        Some(l) => l,
        None => c.landscape.budget(&mut b)?,
    };
    let d = land.dim;
    let noise = c.oracle.budget(d, land.dim_field, land.n_samples, &mut b)?;
    let horizon = setup::positive("schedule.horizon", c.schedule.horizon)?;
    let etas = etas(c)?;
    let save_dt = match c.schedule.save_dt {
        Some(v) => Some(setup::positive("schedule.save_dt", v)?),
        None => None,
    };
    let df = d as f64;
    let subsampling = matches!(c.oracle, OracleConfig::Subsampling { .. });
    let int = &c.integration;
    let linear_model = |m: ModelKind| {
        land.quadratic
            && !subsampling
            && int.sde_form != SdeForm::MonteCarlo
            && int.integrator != Integrator::EulerMaruyama
            && matches!(m.alg, AlgorithmKind::Sgd | AlgorithmKind::Usam)
    };
    let mut algs: Vec<AlgorithmKind> = c.algorithms.clone();
    algs.sort();
    algs.dedup();
    let mut models: Vec<ModelKind> = Vec::new();
    let mut pairs = 0usize;
    let mut linear_pairs = 0usize;
    for &a in &algs {
        for name in &c.models {
            let m = match name.as_str() {
                "own_sde" => ModelKind::own(a),
                "drift_only" => ModelKind {
                    alg: a,
                    drift_only: true,
                    second_order: false,
                },
                other => match ModelKind::parse(other) {
                    Some(m) => m,
                    None => continue, // named by validation
                },
            };
            pairs += 1;
            if land.quadratic
                && !subsampling
                && matches!(a, AlgorithmKind::Sgd | AlgorithmKind::Usam)
            {
                linear_pairs += 1;
            }
            if !models.contains(&m) {
                models.push(m);
            }
        }
    }
    let nt = c.test_functions.len() as f64;
    let r = int.substeps as f64;
    let inner = (int.sde_form == SdeForm::MonteCarlo
        || (int.sde_form == SdeForm::Auto && subsampling))
        .then_some(int.inner_samples as f64);
    let mut systems: Vec<SystemCost> = algs
        .iter()
        .map(|a| SystemCost::Discrete {
            grads: if *a == AlgorithmKind::Sgd { 1.0 } else { 2.0 },
        })
        .collect();
    let mut resolution = 0usize;
    for &m in &models {
        if linear_model(m) {
            systems.push(SystemCost::ExactOu);
        } else {
            systems.push(SystemCost::Euler { substeps: r, inner });
            systems.push(SystemCost::Euler {
                substeps: r / 2.0,
                inner,
            });
            resolution += 1;
        }
    }
    let fields_mc = [
        "paths",
        "schedule.horizon",
        "schedule.halvings/etas",
        "integration.substeps",
    ];
    let mut levels = Vec::new();
    for (eta, field) in &etas {
        let steps = budget::count(field, horizon / eta, MAX_COUNT)? as f64;
        let every = save_dt.map_or(1.0, |dt| (dt / eta).round().max(1.0));
        let saves = (steps / every).floor();
        let mut level = Budget::new("convergence");
        if c.reference == Reference::MonteCarlo {
            let acc = (saves + 1.0) * (pairs + resolution) as f64 * nt * MOMENTS
                + F64 * c.block_size.min(c.paths) as f64 * (systems.len() as f64 * nt + df);
            budget::ensemble(
                &mut level,
                &format!("ensemble at η = {eta}"),
                &fields_mc,
                EnsembleShape {
                    d: df,
                    m: noise.m as f64,
                    grad: land.grad_flops,
                    paths: c.paths as f64,
                    steps,
                    block: c.block_size.max(1) as f64,
                    substeps: r,
                    noise_matrix: noise.matrix,
                },
                &systems,
                acc,
                0.0,
                threads,
            );
        }
        // Exact moments of every linear pair (the exact reference, and beside each Monte
        // Carlo point): a d × d recursion and the OU moments at every step.
        level.flops(
            &format!("exact moments at η = {eta}"),
            &["schedule.horizon", "schedule.halvings/etas", land.dim_field],
            linear_pairs as f64 * nt * steps * 40.0 * df * df * df,
        );
        level.mem(
            "exact moments",
            &[land.dim_field],
            if linear_pairs > 0 {
                12.0 * df * df * F64
            } else {
                0.0
            },
        );
        levels.push(level);
    }
    // Model set-up (linear transitions, tables): a few d × d matrices and d³ work per model.
    b.mem(
        "models",
        &[land.dim_field],
        models.len() as f64 * 10.0 * df * df * F64,
    );
    b.flops(
        "model set-up",
        &[land.dim_field],
        (etas.len() * models.len().max(1)) as f64 * 30.0 * df * df * df,
    );
    // Least squares with real mini-batches: the batch law acts on second moments, so its
    // operators are d² × d² (one for the batch, one more for micro-batches) and the moment ODE
    // takes matrix exponentials of that size at every η (≈ 30 (d²)³ flops each). They are built
    // for the exact reference and for the exact SDE coefficients beside a Monte Carlo run.
    if subsampling && matches!(c.landscape, LandscapeConfig::LeastSquares { .. }) {
        let ops = 1.0 + f64::from(u8::from(c.micro_batch.is_some()));
        b.mem(
            "batch-law operators",
            &[land.dim_field],
            3.0 * ops * df.powi(4) * F64,
        );
        b.flops(
            "moment ODE",
            &[land.dim_field, "schedule.halvings/etas"],
            etas.len() as f64 * ops * 30.0 * df.powi(6),
        );
    }
    b.sequential(levels);
    Ok(b)
}
