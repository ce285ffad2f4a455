//! Memory and work of a sam-rate run, estimated from the raw configuration before anything is
//! built ([`crate::study::budget`]): for the non-convex and the PL part, the `n × d` data set,
//! `paths` mini-batch SAM paths per horizon (each step two mini-batch gradients, `≈ 8 b d`
//! operations), the full-gradient probes and GD estimate of `f⋆`, the periodic per-sample
//! variance (PL); for the oscillation part, the rotated quadratic (`d³` to build) and one path
//! per `ρ`.

use super::SamRateConfig;
use crate::error::Result;
use crate::study::budget::{self, Budget, F64, MAX_COUNT};

/// The estimate (module docs).
pub fn budget(c: &SamRateConfig, threads: usize) -> Result<Budget> {
    let mut b = Budget::new("sam-rate");
    let live = threads.max(1) as f64;
    let parts = [
        (
            "nonconvex",
            &c.nonconvex.data,
            c.nonconvex.batch,
            &c.nonconvex.horizons,
            c.nonconvex.paths,
            &c.nonconvex.variance_probes,
            c.nonconvex.fstar_gd_steps,
            0usize,
        ),
        (
            "pl",
            &c.pl.data,
            c.pl.batch,
            &c.pl.horizons,
            c.pl.paths,
            &c.pl.variance_probes,
            0,
            c.pl.variance_every,
        ),
    ];
    for (part, data, batch, horizons, paths, probes, gd_steps, every) in parts {
        let f = |s: &str| format!("{part}.{s}");
        let (n_field, d_field) = (f("data.n_samples"), f("data.dim"));
        let n = budget::count(&n_field, data.n_samples as f64, MAX_COUNT)? as f64;
        let d = budget::count(&d_field, data.dim as f64, MAX_COUNT)? as f64;
        let bsz = budget::count(&f("batch"), batch as f64, MAX_COUNT)? as f64;
        let paths = budget::count(&f("paths"), paths as f64, MAX_COUNT)? as f64;
        let mut steps = 0.0;
        for (i, &h) in horizons.iter().enumerate() {
            steps += budget::count(&format!("{part}.horizons[{i}]"), h as f64, MAX_COUNT)? as f64;
        }
        b.mem(
            &format!("{part}: data"),
            &[&n_field, &d_field],
            (3.0 * n * d + 2.0 * n) * F64,
        );
        b.mem(
            &format!("{part}: path workspaces"),
            &[&d_field, &f("batch")],
            live * (6.0 * d * F64 + 4.0 * bsz),
        );
        b.mem(
            &format!("{part}: per-path records"),
            &[&f("paths"), &f("horizons")],
            paths * horizons.len() as f64 * 64.0,
        );
        b.flops(
            &format!("{part}: SAM paths"),
            &[&f("paths"), &f("horizons"), &f("batch"), &d_field],
            paths * steps * (8.0 * bsz * d + 10.0 * d),
        );
        if every > 0 {
            b.flops(
                &format!("{part}: gradient variance"),
                &[&f("paths"), &f("horizons"), &f("variance_every"), &n_field],
                paths * (steps / every as f64) * 4.0 * n * d,
            );
        }
        let gd = budget::count(&f("fstar_gd_steps"), gd_steps as f64, MAX_COUNT)? as f64;
        b.flops(
            &format!("{part}: GD estimate of f*"),
            &[&f("fstar_gd_steps"), &n_field, &d_field],
            gd * 4.0 * n * d,
        );
        let dirs = budget::count(
            &f("variance_probes.directions"),
            probes.directions as f64,
            MAX_COUNT,
        )? as f64;
        b.flops(
            &format!("{part}: variance probes"),
            &[&f("variance_probes.directions"), &n_field, &d_field],
            probes.radii.len() as f64 * dirs * 4.0 * n * d,
        );
        b.parallel(paths);
    }
    let o = &c.oscillation;
    let d = o.eigenvalues.len() as f64;
    let steps = budget::count("oscillation.steps", o.steps as f64, MAX_COUNT)? as f64;
    b.mem(
        "oscillation: quadratic",
        &["oscillation.eigenvalues"],
        8.0 * d * d * F64,
    );
    b.flops(
        "oscillation: building the quadratic",
        &["oscillation.eigenvalues"],
        20.0 * d * d * d,
    );
    b.flops(
        "oscillation: paths",
        &["oscillation.steps", "oscillation.rhos"],
        2.0 * o.rhos.len() as f64 * steps * 6.0 * d * d,
    );
    Ok(b)
}
