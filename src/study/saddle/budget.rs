//! Memory and work of a saddle run, estimated from the raw configuration before anything is
//! built ([`crate::study::budget`]). Every part is a set of ensembles on `f = ½xᵀHx` (a dense
//! `d × d` Hessian, so a gradient costs `2d²`), run one after the other; each keeps one record
//! per path and system (and, for the curves, `‖x‖` at every save).

use super::config::SaddleConfig;
use crate::error::{Error, Result};
use crate::optim::AlgorithmKind;
use crate::study::budget::{self, Budget, EnsembleShape, SystemCost, F64, MAX_COUNT};
use crate::study::setup;

/// Bytes of one per-path record (escape time, final and tail norms, …) with its `Vec` share.
const RECORD: f64 = 80.0;

/// `steps = horizon/η`, checked (the field is named when it gives more steps than any run).
fn steps(field: &str, horizon: f64, eta: f64) -> Result<f64> {
    setup::positive(field, horizon)?;
    Ok(budget::count(field, horizon / eta, MAX_COUNT)? as f64)
}

/// A `usize` count that must be ≥ 1 (`field` named otherwise).
fn positive(field: &str, v: usize) -> Result<f64> {
    if v == 0 {
        return Err(Error::config(field, v, "must be > 0"));
    }
    Ok(v as f64)
}

/// One part: `ens` ensembles of `systems` systems each, `paths` paths, `steps` steps, `stored`
/// bytes per path and system beyond its record.
#[allow(clippy::too_many_arguments)]
fn part(
    what: &str,
    fields: &[&str],
    d: f64,
    ens: f64,
    systems: &[(SystemCost, f64)],
    paths: f64,
    steps: f64,
    stored_per_path: f64,
    block: f64,
    threads: usize,
) -> Budget {
    let mut b = Budget::new("saddle");
    b.mem(&format!("{what}: Hessian"), fields, 2.0 * d * d * F64);
    let mut one = Budget::new("saddle");
    budget::ensemble_of(
        &mut one,
        what,
        fields,
        EnsembleShape {
            d,
            m: d,
            grad: 2.0 * d * d,
            paths,
            steps,
            block,
            substeps: systems
                .iter()
                .map(|(s, _)| match s {
                    SystemCost::Euler { substeps, .. } => *substeps,
                    _ => 1.0,
                })
                .fold(1.0, f64::max),
            noise_matrix: false,
        },
        systems,
        0.0,
        paths * systems.iter().map(|s| s.1).sum::<f64>() * (RECORD + stored_per_path),
        threads,
    );
    // `ens` ensembles one after the other: their work adds up, their memory does not (each
    // one's records are reduced to cells before the next starts).
    for t in &mut one.work {
        t.amount *= ens;
    }
    b.extend(one);
    b
}

/// The estimate (module docs).
pub fn budget(c: &SaddleConfig, threads: usize) -> Result<Budget> {
    let eta = setup::positive("eta", c.eta)?;
    let block = positive("block_size", c.block_size)?;
    let mut parts = Vec::new();
    let sam = |a: AlgorithmKind| if a == AlgorithmKind::Sgd { 1.0 } else { 2.0 };

    // Reference: at most one ensemble per row.
    let r = &c.reference;
    let d = r.eigenvalues.len() as f64;
    let rsteps = positive("reference.steps", r.steps)?;
    budget::count("reference.steps", rsteps, MAX_COUNT)?;
    let rpaths = positive("reference.paths", r.paths)?;
    for (i, row) in r.rows.iter().enumerate() {
        let paths = if row.sigma > 0.0 { rpaths } else { 1.0 };
        parts.push(part(
            &format!("reference row {i}"),
            &["reference.paths", "reference.steps"],
            d,
            1.0,
            &[(
                SystemCost::Discrete {
                    grads: sam(row.algorithm),
                },
                1.0,
            )],
            paths,
            rsteps,
            0.0,
            block,
            threads,
        ));
    }

    // Curves: per σ, the cases' discrete maps and their SDEs/ODEs, ‖x‖ saved.
    let cv = &c.curves;
    let d = cv.eigenvalues.len() as f64;
    let n = steps("curves.horizon", cv.horizon, eta)?;
    let every = steps("curves.save_dt", cv.save_dt, eta)?.max(1.0);
    let cpaths = positive("curves.paths", cv.paths)?;
    let sub = positive("curves.substeps", cv.substeps)?;
    budget::count("curves.substeps", sub * n, MAX_COUNT)?;
    let mut systems = Vec::new();
    for case in &cv.cases {
        systems.push((
            SystemCost::Discrete {
                grads: sam(case.algorithm),
            },
            1.0,
        ));
        systems.push((
            match case.algorithm {
                AlgorithmKind::Sgd | AlgorithmKind::Usam => SystemCost::ExactOu,
                _ => SystemCost::Euler {
                    substeps: sub,
                    inner: None,
                },
            },
            1.0,
        ));
    }
    parts.push(part(
        "curves",
        &["curves.paths", "curves.horizon", "curves.save_dt"],
        d,
        1.0,
        &systems,
        cpaths,
        n,
        (n / every + 1.0) * F64 + 24.0,
        block,
        threads,
    ));

    // (ρ, |λ|): one ensemble per panel and |λ|, one system per ρ.
    let rl = &c.phase_rho_lambda;
    let d = rl.other_eigenvalues.len() as f64 + 1.0;
    let n = steps("phase_rho_lambda.horizon", rl.horizon, eta)?;
    let paths = positive("phase_rho_lambda.paths", rl.paths)?;
    let lambdas = positive("phase_rho_lambda.lambda.count", rl.lambda.count)?;
    let samples = positive("phase_rho_lambda.region_samples", rl.region_samples)?;
    let mut region = Budget::new("saddle");
    region.mem(
        "region samples",
        &["phase_rho_lambda.region_samples"],
        samples * (d * F64 + 24.0),
    );
    for (i, p) in rl.panels.iter().enumerate() {
        let field = format!("phase_rho_lambda.panels[{i}].rho.count");
        let rhos = positive(&field, p.rho.count)?;
        budget::count(&field, rhos, MAX_COUNT)?;
        region.flops(
            "region prediction",
            &["phase_rho_lambda.region_samples"],
            samples * rhos * lambdas * 4.0 * d * d,
        );
        let systems = [(
            SystemCost::Discrete {
                grads: sam(p.algorithm),
            },
            rhos,
        )];
        parts.push(part(
            &format!("phase_rho_lambda panel {i}"),
            &["phase_rho_lambda.paths", "phase_rho_lambda.horizon", &field],
            d,
            lambdas,
            &systems,
            paths,
            n,
            0.0,
            block,
            threads,
        ));
    }
    parts.push(region);

    // (ρ, σ): per σ, the discrete map at every ρ and optionally its SDE.
    let rs = &c.phase_rho_sigma;
    let d = rs.eigenvalues.len() as f64;
    let n = steps("phase_rho_sigma.horizon", rs.horizon, eta)?;
    let paths = positive("phase_rho_sigma.paths", rs.paths)?;
    let rhos = positive("phase_rho_sigma.rho.count", rs.rho.count)?;
    let sigmas = positive("phase_rho_sigma.sigma.count", rs.sigma.count)?;
    budget::count("phase_rho_sigma.rho.count", rhos, MAX_COUNT)?;
    let systems = [(SystemCost::Discrete { grads: 2.0 }, rhos)];
    let mut rs_part = part(
        "phase_rho_sigma",
        &[
            "phase_rho_sigma.paths",
            "phase_rho_sigma.horizon",
            "phase_rho_sigma.rho.count",
            "phase_rho_sigma.sigma.count",
        ],
        d,
        sigmas,
        &systems,
        paths,
        n,
        0.0,
        block,
        threads,
    );
    if let Some(r) = rs.sde_substeps {
        let r = positive("phase_rho_sigma.sde_substeps", r)?;
        budget::count("phase_rho_sigma.sde_substeps", r * n, MAX_COUNT)?;
        let sde_paths = match rs.sde_paths {
            Some(p) => positive("phase_rho_sigma.sde_paths", p)?,
            None => paths,
        };
        let systems = [(
            SystemCost::Euler {
                substeps: r,
                inner: None,
            },
            rhos,
        )];
        rs_part.extend(part(
            "phase_rho_sigma SDE",
            &[
                "phase_rho_sigma.sde_paths",
                "phase_rho_sigma.sde_substeps",
                "phase_rho_sigma.horizon",
                "phase_rho_sigma.rho.count",
            ],
            d,
            sigmas,
            &systems,
            sde_paths,
            n,
            0.0,
            block,
            threads,
        ));
    }
    parts.push(rs_part);

    // Stall: one deterministic path per spectrum.
    if let Some(st) = &c.stall {
        let n = positive("stall.steps", st.steps)?;
        budget::count("stall.steps", n, MAX_COUNT)?;
        for (i, case) in st.cases.iter().enumerate() {
            let d = case.eigenvalues.len() as f64;
            parts.push(part(
                &format!("stall case {i}"),
                &["stall.steps"],
                d,
                1.0,
                &[(SystemCost::Discrete { grads: 2.0 }, 1.0)],
                1.0,
                n,
                0.0,
                1.0,
                threads,
            ));
        }
    }
    let mut b = Budget::new("saddle");
    b.sequential(parts);
    Ok(b)
}
