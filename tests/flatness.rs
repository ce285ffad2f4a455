//! Integration tests of the flatness study: tiny configs through the library and the CLI,
//! determinism across thread counts, the stationary-loss formula, and the figure.

mod common;

use std::ffi::OsStr;

use samsde::study::flatness::{FlatnessStudy, DEFAULT_CONFIG};

/// The default config shrunk to run in about a second.
fn tiny() -> String {
    DEFAULT_CONFIG
        .replace("paths = 2000", "paths = 200")
        .replace("horizon = 60.0\nsubsteps", "horizon = 5.0\nsubsteps")
        .replace("paths = 1000", "paths = 200")
        .replace("horizon = 60.0\n\n[verdict]", "horizon = 20.0\n\n[verdict]")
}

fn run(text: &str, threads: usize) -> samsde::study::flatness::FlatnessReport {
    let s = FlatnessStudy::from_toml(text).unwrap();
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap();
    pool.install(|| s.run(threads, None)).unwrap()
}

#[test]
fn same_seed_same_json_at_one_and_two_threads() {
    let text = tiny();
    let mut a = run(&text, 1);
    let mut b = run(&text, 2);
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
fn stationary_loss_matches_formula_within_monte_carlo_error() {
    // 200 paths, time average over t ∈ (10, 20]: the CI half-width of the USAM SDE estimate is
    // ≈ 0.5 % of the value; the formula is exact for the SDE, so it must lie within
    // 4 half-widths (a 4σ-level check, false-failure probability < 1e-4).
    let r = run(&tiny(), 2);
    for x in &r.stationary {
        let hw = x.measured.half_width;
        assert!(hw < 0.02 * x.exact, "{}: half-width {hw}", x.system);
        assert!(
            (x.measured.mean - x.exact).abs() < 4.0 * hw,
            "{}: {} vs exact {} (hw {hw})",
            x.system,
            x.measured.mean,
            x.exact
        );
    }
    // USAM's stationary loss exceeds SGD's by the factor (d + ρ tr H)/d.
    let usam = r
        .stationary
        .iter()
        .find(|x| x.system == "usam_sde")
        .unwrap();
    let sgd = r.stationary.iter().find(|x| x.system == "sgd_sde").unwrap();
    assert!(usam.measured.lo > sgd.measured.hi);
}

#[test]
fn report_has_the_common_fields_and_verdict_shape() {
    let r = run(&tiny(), 2);
    let v: serde_json::Value = serde_json::to_value(&r).unwrap();
    for k in [
        "study",
        "samsde_version",
        "config",
        "seed",
        "threads",
        "elapsed_s",
        "verdicts",
    ] {
        assert!(v.get(k).is_some(), "missing {k}");
    }
    for verdict in v["verdicts"].as_array().unwrap() {
        for k in ["claim", "measured", "ci", "expected", "verdict"] {
            assert!(verdict.get(k).is_some(), "verdict missing {k}");
        }
    }
    // Fractions are probabilities; exit counts add up.
    for s in &r.systems {
        assert!((0.0..=1.0).contains(&s.flat_fraction.mean));
        for e in [&s.exit_flat, &s.exit_sharp] {
            assert_eq!(e.exited + e.censored, e.entered, "{}", s.label);
        }
    }
    let svg = samsde::plot::render_svg_string((1400, 1000), |a| {
        samsde::report::flatness::draw_figure(a, &r)
    })
    .unwrap();
    assert!(svg.contains("flat basin") && svg.contains("own SDE"));
    // Exit-time panels show the censoring-aware estimate, and say so.
    assert!(
        svg.contains("censoring-aware MLE"),
        "exit panels must name their estimate"
    );
    assert!(!svg.contains("observed exits"));
    assert!(samsde::report::flatness::table(&r).contains("verdicts:"));
}

/// `sde-check flatness -q CONFIG --out OUT`.
fn cli(config: &std::path::Path, out: &std::path::Path) -> std::process::Output {
    common::sde_check_output([
        OsStr::new("flatness"),
        OsStr::new("-q"),
        config.as_os_str(),
        OsStr::new("--out"),
        out.as_os_str(),
    ])
}

#[test]
fn cli_writes_files_and_rejects_bad_config() {
    let dir = common::tempdir();
    let cfg = common::write_file(dir.path(), "tiny.toml", &tiny());
    let out = dir.path().join("out");
    let st = cli(&cfg, &out).status;
    assert!(st.code() == Some(0) || st.code() == Some(1), "{st:?}");
    for f in [
        "flatness.json",
        "flatness_systems.csv",
        "flatness_stationary.csv",
        "flatness_verdicts.csv",
        "flatness_observations.csv",
        "flatness.png",
        "flatness.svg",
    ] {
        assert!(out.join(f).exists(), "{f}");
    }
    // A bad value: exit 2, the field named, nothing written.
    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        tiny().replace("eta = 0.01\nsigma", "eta = -0.01\nsigma"),
    )
    .unwrap();
    let out2 = dir.path().join("out2");
    let o = cli(&bad, &out2);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("eta"));
    assert!(!out2.exists());
    // Unknown keys are errors.
    std::fs::write(
        &bad,
        tiny().replace("core = 0.25", "core = 0.25\nbogus = 1"),
    )
    .unwrap();
    assert_eq!(cli(&bad, &out2).status.code(), Some(2));
}

/// The full default run (≈ 25 s on 2 cores) is the acceptance of the study: every verdict
/// (a)–(c) passes at the shipped seed. Deterministic (same seed → same numbers at any thread
/// count), so a failure here means the numerics changed, not bad luck; the verdicts carry their
/// own Monte Carlo CIs (2000 paths: flat-fraction half-widths ≈ 0.017).
#[test]
fn default_run_passes_every_verdict() {
    let r = run(DEFAULT_CONFIG, 2);
    let failed: Vec<String> = r
        .verdicts
        .iter()
        .filter(|v| v.verdict != "pass")
        .map(|v| format!("{} {}", v.verdict, v.claim))
        .collect();
    assert!(failed.is_empty(), "{failed:#?}");
    for tag in ["(a)", "(b)", "(c)"] {
        assert!(r.verdicts.iter().any(|v| v.claim.starts_with(tag)), "{tag}");
    }
}

/// The 1-D demonstration config: DNSAM's first-order SDE breaks down where paths keep crossing
/// ∇f = 0, so its verdict (b) fails while SGD's, USAM's and SAM's pass (≈ 25 s on 2 cores):
/// `cargo test --release --test flatness -- --ignored`
#[test]
#[ignore]
fn one_dimensional_config_shows_the_dnsam_sde_breakdown() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/experiments/flatness_1d_dnsam_breakdown.toml"
    ))
    .unwrap();
    let r = run(&text, 2);
    let b = |alg: &str| {
        r.verdicts
            .iter()
            .filter(|v| v.claim.starts_with(&format!("(b) {alg}_sde")))
            .map(|v| v.verdict.as_str())
            .collect::<Vec<_>>()
    };
    assert!(b("dnsam").contains(&"fail"), "{:?}", b("dnsam"));
    for alg in ["sgd", "usam", "sam"] {
        assert!(b(alg).iter().all(|v| *v == "pass"), "{alg}: {:?}", b(alg));
    }
}

/// Why the discrete USAM prefers the flat basin more than its first-order SDE at the default's
/// preference radius (0.991 vs 0.938): it evaluates `∇f` at the *noisy* ascent point
/// `x + ρ(∇f + σξ)`, a displacement `ρσ = 0.375` comparable to the sharp basin's half-width
/// (≈ 0.45), so terms beyond first order in `ρσ` (e.g. the mean `(ρ²σ²/2)∇ tr H`: Gaussian
/// smoothing of `f`) flatten the sharp basin further. An ablation on the default landscape,
/// paths paired by seed (the same `ξ` in all three variants):
/// * `full`: discrete USAM, `x ← x − η[∇f(x + ρ(∇f + σξ)) + σξ]`;
/// * `lin`: the noisy part of the ascent linearised, `x ← x − η[∇f(x + ρ∇f) + ρHσξ + σξ]`;
/// * `first`: first order in `ρ` (the SDE's drift and diffusion, Euler with `h = η`),
///   `x ← x − η(I + ρH)(∇f + σξ)`.
///
/// Claims, with paired 99.9 % CIs over 2000 paths: `full − lin` is positive (measured 0.044,
/// half-width 0.015), and `lin − first` is smaller — its whole CI lies below `full − lin`'s
/// (measured 0.005, half-width 0.005): the non-linear noisy ascent, not the deterministic part,
/// makes most of the gap.
#[test]
fn excess_flat_preference_of_discrete_usam_comes_from_the_noisy_ascent() {
    use rand_distr::{Distribution, StandardNormal};
    use rayon::prelude::*;
    use samsde::landscape::{Basin, Landscape, TwoBasinLandscape, WarpedDoubleWell};
    use samsde::stats::{mean_ci, Moments};

    let f = WarpedDoubleWell::new(2, 1.0, 10.0, 1.0).unwrap();
    let (eta, sigma, rho, horizon) = (0.01, 7.5, 0.05, 60.0);
    let steps = (horizon / eta) as usize;
    let paths = 2000u64;
    let flat_ends: Vec<[f64; 3]> = (0..paths)
        .into_par_iter()
        .map(|p| {
            let mut out = [0.0; 3];
            for (variant, end) in out.iter_mut().enumerate() {
                let mut rng = samsde::ensemble::rng::aux_rng(2026, "usam-ablation", p);
                let mut normal = || -> f64 { StandardNormal.sample(&mut rng) };
                let mut x = [0.2 * normal(), 0.2 * normal()];
                let (mut g, mut ga, mut hv) = ([0.0; 2], [0.0; 2], [0.0; 2]);
                for _ in 0..steps {
                    let z = [sigma * normal(), sigma * normal()];
                    f.grad_into(&x, &mut g);
                    let step = match variant {
                        0 => {
                            let y = [x[0] + rho * (g[0] + z[0]), x[1] + rho * (g[1] + z[1])];
                            f.grad_into(&y, &mut ga);
                            [ga[0] + z[0], ga[1] + z[1]]
                        }
                        1 => {
                            f.grad_into(&[x[0] + rho * g[0], x[1] + rho * g[1]], &mut ga);
                            f.hess_vec_into(&x, &z, &mut hv);
                            [ga[0] + rho * hv[0] + z[0], ga[1] + rho * hv[1] + z[1]]
                        }
                        _ => {
                            let v = [g[0] + z[0], g[1] + z[1]];
                            f.hess_vec_into(&x, &v, &mut hv);
                            [v[0] + rho * hv[0], v[1] + rho * hv[1]]
                        }
                    };
                    x = [x[0] - eta * step[0], x[1] - eta * step[1]];
                    assert!(x.iter().all(|v| v.abs() < 100.0), "path {p} diverged");
                }
                *end = (f.basin(&x) == Basin::Flat) as u8 as f64;
            }
            out
        })
        .collect();
    let diff = |a: usize, b: usize| {
        let d: Vec<f64> = flat_ends.iter().map(|e| e[a] - e[b]).collect();
        mean_ci(&Moments::from_slice(&d), 0.999)
    };
    let (full_lin, lin_first) = (diff(0, 1), diff(1, 2));
    eprintln!("full − lin {full_lin:?}\nlin − first {lin_first:?}");
    assert!(full_lin.lo > 0.0, "{full_lin:?}");
    assert!(lin_first.hi < full_lin.lo, "{lin_first:?} vs {full_lin:?}");
}
