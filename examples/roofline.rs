//! The roofline of `sde-check bench`: what the two unavoidable costs of a path-step — the
//! standard normals and the `d × d` products — take alone on this machine, one thread, at
//! the bench's shape (`d = 20`, blocks of 256 paths), and the bound they put on each problem.
//!
//! Run: `cargo run --release --example roofline` (figures in BENCHMARKS.md).

use samsde::bench::cpu_seconds;
use samsde::ensemble::normals::BlockNormals;
use samsde::linalg::{square_times, Matrix};

fn per_unit(units: f64, mut f: impl FnMut()) -> f64 {
    f(); // warm up
    let mut best = f64::INFINITY;
    for _ in 0..5 {
        let c0 = cpu_seconds();
        f();
        best = best.min((cpu_seconds() - c0) / units);
    }
    best
}

fn main() {
    let (d, p, reps) = (20usize, 256usize, 4000usize);
    let streams: Vec<u64> = (0..p as u64).collect();
    let mut g = BlockNormals::new(1, &streams);
    let mut out = vec![0.0; d * p];
    let normal_s = per_unit((reps * d * p) as f64, || {
        for _ in 0..reps {
            g.fill(&mut out, d, 0.1);
        }
        std::hint::black_box(&out);
    });
    let h = samsde::bench::quadratic().h().clone();
    let x = Matrix::from_fn(d, p, |i, j| ((i + 3 * j) % 7) as f64 - 3.0);
    let mut y = Matrix::zeros(d, p);
    let product_s = per_unit((reps * p) as f64, || {
        for _ in 0..reps {
            square_times(&h, &x, &mut y);
            std::hint::black_box(&y);
        }
    });
    let flops = 2.0 * (d * d) as f64;
    println!("one thread, d = {d}, blocks of {p} paths, best of 5 (CPU time)");
    println!("normal:            {:.2} ns each", normal_s * 1e9);
    println!(
        "H·x (one column):  {:.2} ns  = {:.1} GFLOP/s",
        product_s * 1e9,
        flops / product_s * 1e-9
    );
    for (name, normals, products) in [
        ("usam_sde", d, 2),
        ("dnsam_sde", d, 2),
        ("sam_sde", d, 3),
        ("usam_discrete", d, 2),
    ] {
        let t = normals as f64 * normal_s + products as f64 * product_s;
        println!(
            "{name:<14} bound {:.1} ns/path-step = {:.2} M path-steps/CPU-s ({normals} normals + {products} products)",
            t * 1e9,
            1e-6 / t
        );
    }
}
