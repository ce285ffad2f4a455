//! Integration tests of the trajectories study: bands are ordered, the SGD SDE agrees with SGD
//! on a quadratic, determinism, figures render to in-memory SVG, the CLI writes its files.

mod common;

use std::ffi::OsStr;

use samsde::study::trajectories::{TrajectoriesReport, TrajectoriesStudy, DEFAULT_CONFIG};

fn tiny() -> String {
    DEFAULT_CONFIG
        .replace("paths = 1000", "paths = 120")
        .replace("horizon = 10.0", "horizon = 2.0")
        .replace("saves = 100", "saves = 20")
}

fn run(text: &str, threads: usize) -> TrajectoriesReport {
    let s = TrajectoriesStudy::from_toml(text).unwrap();
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap();
    pool.install(|| s.run(threads, None)).unwrap()
}

#[test]
fn bands_are_ordered_and_deterministic() {
    let mut a = run(&tiny(), 1);
    let mut b = run(&tiny(), 2);
    for s in &a.systems {
        for band in &s.bands {
            for j in 0..a.times.len() {
                assert!(band.q05[j] <= band.q95[j] + 1e-12);
                assert!(band.ci_lo[j] <= band.mean[j] && band.mean[j] <= band.ci_hi[j]);
            }
        }
        // Sample paths at every step (T/η = 200 steps) from the start point, not at the saves.
        assert_eq!(a.sample_every, 1);
        assert_eq!(s.samples.len(), 6);
        assert!(
            s.samples.iter().all(|p| p.len() == 201),
            "{}",
            s.samples[0].len()
        );
        assert_eq!(s.samples[0][0], vec![0.02, 0.1]);
    }
    a.header.elapsed_s = 0.0;
    b.header.elapsed_s = 0.0;
    a.header.threads = 0;
    b.header.threads = 0;
    assert_eq!(
        serde_json::to_string(&a).unwrap(),
        serde_json::to_string(&b).unwrap()
    );
}

#[test]
fn sgd_sde_tracks_sgd_on_a_quadratic() {
    // d = 2 quadratic H = diag(1, 2), σ = 0.5, x₀ = (1, 1), η = 0.01, T = 2, 2000 paths.
    // E‖x‖ of SGD and of its SDE differ by O(η) ≈ 1e-2 relative; the Monte Carlo half-width of
    // each mean is ≈ 0.003. The test allows 0.03 (a generous bound on both).
    let text = r#"
title = "quadratic"
seed = 7
paths = 2000
algorithms = ["sgd"]
eta = 0.01
horizon = 2.0
saves = 10
substeps = 4
[landscape]
kind = "quadratic"
hessian = { kind = "spectrum", eigenvalues = [1.0, 2.0] }
[oracle]
kind = "additive"
sigma = 0.5
[start]
kind = "constant"
value = 1.0
"#;
    let r = run(text, 2);
    let norm = |s: usize| r.systems[s].bands[2].mean.clone();
    let (a, b) = (norm(0), norm(1));
    for j in 0..a.len() {
        assert!(
            (a[j] - b[j]).abs() < 0.03,
            "t = {}: {} vs {}",
            r.times[j],
            a[j],
            b[j]
        );
    }
    // The mean decays like e^{−t} along the slow direction: E‖x‖ at T well below ‖x₀‖ = √2.
    assert!(a[a.len() - 1] < 0.6);
}

#[test]
fn figures_render_to_svg() {
    let r = run(&tiny(), 2);
    let svg = samsde::plot::render_svg_string((1680, 1260), |a| {
        samsde::report::trajectories::draw_bands(a, &r)
    })
    .unwrap();
    // One legend for the grid, saying which band is which.
    assert_eq!(svg.matches("discrete algorithm: mean (solid)").count(), 1);
    assert!(svg.contains("5–95 % of paths (hatched, dotted edges)") && svg.contains("t = kη"));
    let s = TrajectoriesStudy::from_toml(&tiny()).unwrap();
    let svg = samsde::plot::render_svg_string((1400, 1160), |a| {
        samsde::report::trajectories::draw_surfaces(a, &r, s.landscape())
    })
    .unwrap();
    // What F is, and that the colour scale is non-linear (which transform).
    assert!(svg.contains("USAM: F = f + (ρ/2)‖∇f‖²") && svg.contains("F − min F"));
    assert!(svg.contains("NON-LINEAR") && svg.contains("log₁₀(1 + (F − min F)/"));
}

#[test]
fn cli_writes_both_figures() {
    let dir = common::tempdir();
    let cfg = common::write_file(dir.path(), "tiny.toml", &tiny());
    let out = dir.path().join("out");
    let (code, _, stderr) = common::sde_check([
        OsStr::new("trajectories"),
        OsStr::new("-q"),
        cfg.as_os_str(),
        OsStr::new("--out"),
        out.as_os_str(),
    ]);
    assert_eq!(code, 0, "{stderr}");
    for f in [
        "trajectories.json",
        "trajectories.csv",
        "trajectories.png",
        "trajectories.svg",
        "surfaces.png",
        "surfaces.svg",
    ] {
        assert!(out.join(f).exists(), "{f}");
    }
}
