//! Memory and work of a kinks run, estimated from the raw configuration before anything is
//! built ([`crate::study::budget`]): `seeds × methods` training runs of up to `max_steps` full-batch
//! steps of the `hidden`-unit ReLU network on the `N` data points (a SAM step is two gradients,
//! `≈ 12 N hidden` operations each), the parameters and workspaces of the runs in flight, and a
//! record of `O(hidden)` numbers per run.

use super::KinksConfig;
use crate::error::Result;
use crate::study::budget::{self, Budget, F64, MAX_COUNT};

/// The estimate (module docs).
pub fn budget(c: &KinksConfig, threads: usize) -> Result<Budget> {
    let mut b = Budget::new("kinks");
    let seeds = budget::count("seeds", c.seeds as f64, MAX_COUNT)? as f64;
    let hidden = budget::count("hidden", c.hidden as f64, MAX_COUNT)? as f64;
    let steps = budget::count("max_steps", c.max_steps as f64, MAX_COUNT)? as f64;
    let n = c.data.x.len() as f64;
    let runs = seeds * c.methods.len() as f64;
    let live = (threads.max(1) as f64).min(runs.max(1.0));
    b.mem(
        "runs in flight: parameters and workspaces",
        &["hidden"],
        live * (12.0 * hidden + 4.0 * n * hidden) * F64,
    );
    b.mem(
        "run records",
        &["seeds", "methods", "hidden"],
        runs * (6.0 * hidden * F64 + 512.0),
    );
    b.flops(
        "training runs",
        &["seeds", "methods", "max_steps", "hidden"],
        runs * steps * 24.0 * n * hidden,
    );
    b.parallel(runs);
    Ok(b)
}
