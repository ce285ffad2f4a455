//! Memory and work of an implicit-bias run, estimated from the raw configuration before
//! anything is built ([`crate::study::budget`]): per data seed the problem (`n × d` training
//! inputs, `test_points × d` test inputs), `runs_per_seed` training runs of `train.steps` steps
//! (each `≈ 10 n d` operations per step for every method), the dual-Newton check of every run
//! (`≈ 100 (n²d + n³)`), fine-tuning, and a record of `O(d)` numbers per run.

use super::config::ImplicitBiasConfig;
use crate::error::Result;
use crate::study::budget::{self, Budget, F64, MAX_COUNT};

/// The estimate (module docs).
pub fn budget(c: &ImplicitBiasConfig, _threads: usize) -> Result<Budget> {
    let mut b = Budget::new("implicit-bias");
    let seeds = budget::count("seeds", c.seeds as f64, MAX_COUNT)? as f64;
    let (n, d) = (c.data.n as f64, c.data.d as f64);
    let test = c.data.test_points as f64;
    let steps = budget::count("train.steps", c.train.steps as f64, MAX_COUNT)? as f64;
    let rhos = c.train.rho.len() as f64;
    let with_rho = c
        .train
        .methods
        .iter()
        .filter(|m| !matches!(m, super::MethodName::Gd | super::MethodName::Sgd))
        .count() as f64
        + c.train.m_sam.len() as f64;
    let without_rho = c.train.methods.len() as f64 - (with_rho - c.train.m_sam.len() as f64);
    let runs = seeds * (without_rho + with_rho * rhos);
    let data_fields = ["seeds", "data.n", "data.d", "data.test_points"];
    b.mem(
        "problems (training and test inputs)",
        &data_fields,
        seeds * ((2.0 * n + test) * d + n + test + 2.0 * d) * F64,
    );
    let curve_points = (c.record.curve_points as f64).min(steps + 1.0);
    b.mem(
        "run records",
        &["seeds", "train.rho", "data.d"],
        runs * (d * 24.0 + 512.0) + (without_rho + with_rho * rhos) * curve_points * 64.0,
    );
    b.mem(
        "report",
        &["seeds", "train.rho", "data.d"],
        runs * (d * 24.0 + 1024.0),
    );
    b.flops(
        "training runs",
        &["seeds", "train.steps", "train.rho", "data.n", "data.d"],
        runs * steps * 10.0 * n * d,
    );
    b.flops(
        "dual-Newton checks and measurements",
        &["seeds", "train.rho", "data.n", "data.d", "data.test_points"],
        runs * (200.0 * (n * n * d + n * n * n) + 4.0 * test * d),
    );
    if let Some(f) = c.finetune() {
        let arms = 1.0 + 2.0 * f.rho.len() as f64;
        let line = budget::count("finetune.line_points", f.line_points as f64, MAX_COUNT)? as f64;
        b.flops(
            "fine-tuning",
            &[
                "seeds",
                "train.steps",
                "finetune.rho",
                "finetune.line_points",
            ],
            seeds * (arms * steps * 10.0 * n * d + line * 4.0 * (n + test) * d),
        );
        b.mem(
            "fine-tuning records",
            &["seeds", "finetune.rho", "finetune.line_points"],
            seeds * arms * (line * 48.0 + d * 24.0),
        );
    }
    b.parallel(runs);
    Ok(b)
}
