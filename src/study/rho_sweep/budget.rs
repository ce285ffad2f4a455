//! Memory and work of a ρ sweep, estimated from the raw configuration before anything is built
//! ([`crate::study::budget`]): the problem (Wishart quadratic, or a sigmoid network whose
//! gradient costs `≈ 6 N · (inputs + 2) · hidden` and whose activations per block are
//! `N × hidden × block`), and one ensemble of the active profile's `paths` over `steps` with every
//! algorithm at every ρ and every model at `substeps` and `substeps/2`.

use super::config::{ProblemConfig, RhoSweepConfig};
use crate::error::{Error, Result};
use crate::study::budget::{self, Budget, EnsembleShape, SystemCost, F64, MAX_COUNT};

/// Rows of the breast-cancer table (the classifier's `N`) and its features.
const CANCER_ROWS: f64 = 569.0;
const CANCER_FEATURES: f64 = 30.0;

/// The estimate (module docs).
pub fn budget(c: &RhoSweepConfig, threads: usize) -> Result<Budget> {
    let mut b = Budget::new("rho-sweep");
    let p = c.active();
    let prof = if c.profile == "paper" {
        "paper"
    } else {
        "quick"
    };
    let field = |f: &str| format!("{prof}.{f}");
    let block = p.block_size.clamp(1, p.paths.max(1)) as f64;
    let live = (threads.max(1) as f64).min((p.paths as f64 / block).ceil().max(1.0));
    let (d, grad) = match &c.problem {
        ProblemConfig::Quadratic { dim, .. } => {
            if *dim == 0 {
                return Err(Error::config("problem.dim", dim, "must be ≥ 1"));
            }
            let df = *dim as f64;
            b.mem(
                "Wishart Hessian and its construction",
                &["problem.dim"],
                6.0 * df * df * F64,
            );
            b.flops("building the Hessian", &["problem.dim"], 4.0 * df * df * df);
            (df, 2.0 * df * df)
        }
        ProblemConfig::Classifier { hidden, .. } => {
            let h = *hidden as f64;
            b.mem(
                "network activations per block",
                &["problem.hidden", &field("block_size")],
                live * 6.0 * CANCER_ROWS * h * block * F64,
            );
            (
                (CANCER_FEATURES + 2.0) * h + 1.0,
                6.0 * CANCER_ROWS * (CANCER_FEATURES + 2.0) * h,
            )
        }
        ProblemConfig::TeacherStudent {
            n_samples,
            input_dim,
            teacher_hidden,
            hidden,
            ..
        } => {
            let (n, i, t, h) = (
                *n_samples as f64,
                *input_dim as f64,
                *teacher_hidden as f64,
                *hidden as f64,
            );
            b.mem(
                "teacher-student data and teacher",
                &[
                    "problem.n_samples",
                    "problem.input_dim",
                    "problem.teacher_hidden",
                ],
                (2.0 * n * i + t * i + n * t + n) * F64,
            );
            b.flops(
                "teacher outputs",
                &[
                    "problem.n_samples",
                    "problem.input_dim",
                    "problem.teacher_hidden",
                ],
                2.0 * n * i * t,
            );
            b.mem(
                "network activations per block",
                &["problem.n_samples", "problem.hidden", &field("block_size")],
                live * 6.0 * n * h * block * F64,
            );
            ((i + 1.0) * h, 6.0 * n * (i + 1.0) * h)
        }
    };
    // σI is stored as a d × d matrix.
    b.mem("oracle noise matrix σI", &["problem"], 2.0 * d * d * F64);
    let steps = budget::count(&field("steps"), p.steps as f64, MAX_COUNT)? as f64;
    let r = p.substeps as f64;
    budget::count(&field("substeps"), r * steps, MAX_COUNT)?;
    let every = (p.save_every.max(1)) as f64;
    let saves = (steps / every).floor();
    let nr = c.rhos.len() as f64;
    let discrete = 1.0 + 3.0 * nr;
    let models = 1.0 + 6.0 * nr;
    let pairs = 1.0 + 11.0 * nr;
    let mut systems = vec![SystemCost::Discrete { grads: 2.0 }; discrete as usize];
    for _ in 0..models as usize {
        systems.push(SystemCost::Euler {
            substeps: r,
            inner: None,
        });
        systems.push(SystemCost::Euler {
            substeps: r / 2.0,
            inner: None,
        });
    }
    let fields = [field("paths"), field("steps"), "rhos".to_string()];
    let fields: Vec<&str> = fields.iter().map(String::as_str).collect();
    budget::ensemble(
        &mut b,
        "ensemble",
        &fields,
        EnsembleShape {
            d,
            m: d,
            grad,
            paths: p.paths as f64,
            steps,
            block,
            substeps: r,
            noise_matrix: false,
        },
        &systems,
        3.0 * pairs * (saves + 1.0) * 24.0 + block * (systems.len() as f64 + d) * F64,
        0.0,
        threads,
    );
    Ok(b)
}
