//! Writes the data of `sde-check bench`'s five problems as JSON for the peer harness
//! (`bench/peers/`): the Wishart Hessian, the least-squares data, the constants, the SAM
//! coefficients φ, a, c on a grid (peers interpolate linearly), and the exact `E‖X_T‖²` where
//! one exists.
//!
//! Run: `cargo run --release --example bench_problems -- STEPS > problems.json`

use samsde::bench::{self, BenchProblem};
use samsde::sde::model::shared_tables;
use serde_json::json;

fn main() {
    let steps: usize = std::env::args()
        .nth(1)
        .map(|s| s.parse().expect("STEPS must be a positive integer"))
        .unwrap_or(1000);
    let q = bench::quadratic();
    let h = q.h();
    let d = bench::DIM;
    let rows = |m: &samsde::linalg::Matrix| -> Vec<Vec<f64>> {
        (0..m.nrows())
            .map(|i| (0..m.ncols()).map(|j| m[(i, j)]).collect())
            .collect()
    };
    let ls = bench::least_squares();
    let a = ls.design_t().transpose();
    let tables = shared_tables(d);
    let (dr, n_grid) = (0.01, 20_001);
    let grid: Vec<[f64; 4]> = (0..n_grid)
        .map(|i| {
            let r = i as f64 * dr;
            let c = tables.eval(r);
            [r, c.phi, c.a, c.c]
        })
        .collect();
    let exact: serde_json::Map<String, serde_json::Value> = BenchProblem::ALL
        .iter()
        .filter_map(|&p| bench::exact_norm_sq(p, steps).map(|e| (p.name().to_string(), json!(e))))
        .collect();
    let out = json!({
        "dim": d,
        "sigma": bench::SIGMA,
        "rho": bench::RHO,
        "eta": bench::ETA,
        "steps": steps,
        "h": rows(h),
        "ls": {
            "a": rows(&a),
            "b": ls.targets().iter().collect::<Vec<_>>(),
            "batch": bench::LS_BATCH,
            "replacement": false,
        },
        "sam_table": {"dr": dr, "r_phi_a_c": grid},
        "exact": exact,
    });
    println!("{}", serde_json::to_string(&out).expect("serialisable"));
}
