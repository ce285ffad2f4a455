//! Integration tests of the saddle study (`sde-check saddle`).
//!
//! Fast tests run a tiny configuration; the full default run is `#[ignore]`d:
//! `cargo test --release --test saddle -- --ignored`.

use samsde::ensemble::{BlockView, Ensemble, Observer, Start, System};
use samsde::landscape::Quadratic;
use samsde::linalg::Vector;
use samsde::optim::{AlgorithmKind, Discrete};
use samsde::oracle::Oracle;
use samsde::study::saddle::{
    crossing, wilson, Outcome, SaddleConfig, SaddleReport, SaddleStudy, DEFAULT_CONFIG,
};
use samsde::study::setup::parse_toml;

mod common;

/// A small configuration exercising every part in well under a second.
const TINY: &str = r#"
title = "tiny saddle"
seed = 7
block_size = 8
eta = 0.01

[classify]
escape_radius = 1.0
attraction_radius = 0.05
converge_radius = 1e-6
tail_fraction = 0.25
divergence_bound = 1e4

[reference]
eigenvalues = [1.0, -0.5]
steps = 4000
paths = 16
rows = [
  { algorithm = "sgd",  start = [0.01, 0.01], expect = "escape" },
  { algorithm = "usam", rho = 3.0, start = [0.01, 0.01], expect = "converge" },
  { algorithm = "sam",  rho = 1.0, start = [0.5, 0.2], expect = "stall" },
  { algorithm = "sam",  rho = 0.1, sigma = 0.1, start = [0.01, 0.01], expect = "escape" },
]

[curves]
eigenvalues = [1.0, -0.5]
start = { kind = "sphere", radius = 0.05 }
horizon = 10.0
save_dt = 0.5
paths = 16
substeps = 2
cases = [
  { algorithm = "sgd" },
  { algorithm = "sam", rho = 0.5 },
  { algorithm = "sam", rho = 1.0, sigma = 0.1 },
  { algorithm = "dnsam", rho = 1.0, sigma = 0.1 },
]

[phase_rho_lambda]
other_eigenvalues = [1.0]
lambda = { min = 0.2, max = 1.0, count = 3 }
start = { kind = "sphere", radius = 0.1 }
horizon = 40.0
paths = 8
attraction_radius = 0.05
region_samples = 256
panels = [
  { algorithm = "usam", rho = { min = 0.3, max = 30.0, count = 9 } },
  { algorithm = "sam",  rho = { min = 0.01, max = 2.0, count = 7 } },
]

[phase_rho_sigma]
eigenvalues = [1.0, -0.5]
algorithm = "sam"
rho = { min = 0.02, max = 6.0, count = 7 }
sigma = { min = 0.05, max = 0.2, count = 3 }
start = { kind = "ball", radius = 0.002 }
horizon = 40.0
paths = 8
attraction_radius = 0.3
sde_substeps = 2
sde_paths = 4

[verdict]
level = 0.95
usam_tolerance_dex = 0.1
minibatch_tolerance_dex = 0.2
region_tolerance_dex = 0.1
stall_tolerance = 0.1
"#;

fn run(text: &str, threads: usize) -> SaddleReport {
    let study = SaddleStudy::from_toml(text).unwrap();
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap();
    pool.install(|| study.run(threads, None)).unwrap()
}

fn json_without_timing(r: &SaddleReport) -> String {
    let mut v = serde_json::to_value(r).unwrap();
    v["elapsed_s"] = serde_json::Value::Null;
    v["threads"] = serde_json::Value::Null;
    serde_json::to_string(&v).unwrap()
}

#[test]
fn default_config_validates_and_has_every_part() {
    let study = SaddleStudy::from_toml(DEFAULT_CONFIG).unwrap();
    let c = &study.config;
    assert_eq!(c.reference.rows.len(), 16, "reference rows");
    assert_eq!(
        c.stall.as_ref().map(|s| s.cases.len()),
        Some(4),
        "stall spectra"
    );
    assert_eq!(c.phase_rho_lambda.panels.len(), 2);
    assert!(study.total_work() > 0);
    // The embedded default is the file in experiments/.
    let file = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/experiments/saddle_default.toml"
    ))
    .unwrap();
    assert_eq!(file, DEFAULT_CONFIG);
}

#[test]
fn validation_names_field_and_value() {
    let no_saddle = TINY.replacen("eigenvalues = [1.0, -0.5]", "eigenvalues = [1.0, 0.5]", 1);
    let e = SaddleStudy::from_toml(&no_saddle)
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains("reference.eigenvalues") && e.contains("negative"),
        "{e}"
    );
    let bad_eps = TINY.replace(
        "attraction_radius = 0.05\nconverge",
        "attraction_radius = 2.0\nconverge",
    );
    let e = SaddleStudy::from_toml(&bad_eps).err().unwrap().to_string();
    assert!(
        e.contains("classify.attraction_radius") && e.contains("2"),
        "{e}"
    );
    let bad_grid = TINY.replace("count = 7 }\nsigma", "count = 1 }\nsigma");
    let e = SaddleStudy::from_toml(&bad_grid).err().unwrap().to_string();
    assert!(e.contains("phase_rho_sigma.rho.count"), "{e}");
    let unknown = TINY.replace("seed = 7", "seed = 7\nsed = 3");
    assert!(parse_toml::<SaddleConfig>(&unknown).is_err());
    let not_sam = TINY.replace(
        "algorithm = \"sam\"\nrho = { min = 0.02",
        "algorithm = \"usam\"\nrho = { min = 0.02",
    );
    let e = SaddleStudy::from_toml(&not_sam).err().unwrap().to_string();
    assert!(e.contains("phase_rho_sigma.algorithm"), "{e}");
    let stall = |cases: &str| {
        TINY.replace(
            "[verdict]",
            &format!("[stall]\nsteps = 100\ncases = [{cases}]\n[verdict]"),
        )
    };
    let e = SaddleStudy::from_toml(&stall(
        "{ eigenvalues = [1.0, 0.5], rho = 0.1, start = [0.01, 0.01] }",
    ))
    .err()
    .unwrap()
    .to_string();
    assert!(
        e.contains("stall.cases[0].eigenvalues") && e.contains("negative"),
        "{e}"
    );
    let e = SaddleStudy::from_toml(&stall(
        "{ eigenvalues = [1.0, -0.5], rho = 0.1, start = [0.01] }",
    ))
    .err()
    .unwrap()
    .to_string();
    assert!(e.contains("stall.cases[0].start"), "{e}");
    assert!(SaddleStudy::from_toml(&stall("")).is_err());
}

/// Same seed → bit-identical JSON at 1 and 2 threads (blocks merged in order).
#[test]
fn tiny_run_is_deterministic_across_threads_and_sane() {
    let a = run(TINY, 1);
    let b = run(TINY, 2);
    assert_eq!(json_without_timing(&a), json_without_timing(&b));
    // Every reference row of the tiny config reproduces.
    for row in &a.reference {
        assert_eq!(row.verdict, "pass", "{row:?}");
    }
    // Verdicts are present in the JSON shape of the other studies.
    let v = serde_json::to_value(&a).unwrap();
    for key in [
        "study",
        "samsde_version",
        "config",
        "seed",
        "threads",
        "elapsed_s",
        "verdicts",
    ] {
        assert!(v.get(key).is_some(), "missing {key}");
    }
    assert_eq!(v["study"], "saddle");
    for verdict in v["verdicts"].as_array().unwrap() {
        for key in ["claim", "measured", "ci", "expected", "verdict"] {
            assert!(verdict.get(key).is_some(), "verdict lacks {key}");
        }
    }
    // Censored paths are counted, never dropped.
    for c in &a.curves {
        assert_eq!(
            c.escape.escaped + c.escape.censored,
            c.escape.paths,
            "{}",
            c.label
        );
        assert_eq!(c.escape.times.len(), c.escape.escaped);
    }
    // GD from ‖x₀‖ = 0.05 escapes by T = 10 iff |y₂(0)| ≳ e^{−0.5·10} ≈ 0.0067, i.e. except
    // for the ≈ 8.6 % of directions within asin(0.135) of the stable axis (≈ 1.4 of 16 paths);
    // full-batch SAM ρ = 0.5 escapes none (‖∇f(x₀)‖ ≤ 0.05 < ρ|λ| = 0.25: in the region).
    let gd = &a.curves[0].escape;
    assert!(
        gd.escaped >= 12 && gd.censored == gd.paths - gd.escaped,
        "{gd:?}"
    );
    let sam = a
        .curves
        .iter()
        .find(|c| c.label.starts_with("sam ρ=0.5 σ=0 discrete"))
        .unwrap();
    assert_eq!(sam.escape.escaped, 0);
    assert_eq!(sam.attracted, sam.escape.paths);
    // Phase cells: one per grid point.
    assert_eq!(a.phases.len(), 4);
    assert_eq!(a.phases[0].cells.len(), 9 * 3);
    assert_eq!(a.phases[2].cells.len(), 7 * 3);
    assert_eq!(a.phases[3].name, "sam_sde_rho_sigma");
    assert!(a.phases[3].cells.iter().all(|q| q.paths == 4));
}

#[test]
fn figures_render_to_svg() {
    let r = run(TINY, 1);
    let (phase, curves) = samsde::report::saddle::svg_strings(&r).unwrap();
    assert!(phase.starts_with("<svg") && phase.contains("predicted"));
    assert!(curves.starts_with("<svg") && curves.contains("Escape time"));
    let table = samsde::report::saddle::table(&r);
    assert!(table.contains("verdicts pass"));
    let csv = samsde::report::saddle::phase_csv(&r);
    assert_eq!(csv.lines().count(), 1 + 9 * 3 + 7 * 3 + 2 * 7 * 3);
}

/// Discrete full-batch SAM from (0.01, 0.01), ρ = 0.1 on diag(1, −0.5): stalls at
/// ηρ max|λ|/2 = 5e-4. Deterministic: the tolerance 5 % is the formula's (the exact 2-cycle is
/// 0.5 % above it), not Monte Carlo's.
#[test]
fn full_batch_sam_stalls_at_half_eta_rho_max_abs_lambda() {
    let text = TINY.replace(
        "{ algorithm = \"sam\",  rho = 1.0, start = [0.5, 0.2], expect = \"stall\" },",
        "{ algorithm = \"sam\",  rho = 0.1, start = [0.01, 0.01], expect = \"stall\" },",
    );
    let r = run(&text, 1);
    let row = r
        .reference
        .iter()
        .find(|q| q.algorithm == "sam" && q.sigma == 0.0)
        .unwrap();
    assert_eq!(row.expected, Outcome::Stall);
    let rel = row.tail_mean_norm_median / 5e-4 - 1.0;
    assert!(
        rel.abs() < 0.05,
        "stall distance {}",
        row.tail_mean_norm_median
    );
}

/// The default's `[stall]` spectra (diag(1, −0.2), diag(1, −2), diag(3, −0.5),
/// diag(2, 0.3, −0.7, −1.5)): on each, full-batch SAM stalls on the largest-|λ| eigendirection
/// at ηρ max|λ|/2 within the 10 % tolerance (measured within 1.6 %) — and the older formula
/// ηρ min|λ_−| would fail every one of them (off by 44 %–205 %). Where that direction has
/// λ > 0 the stall is the attracting 2-cycle (every tail step flips sign, amplitude
/// ηρ|λ|/(2 − ηλ) to 1e-6); for diag(1, −2) (λ = −2) the cycle repels and the orbit's mean lies
/// between the amplitude and the bound of `study::saddle::stall`. Deterministic, one path each.
#[test]
fn stall_distance_is_half_eta_rho_max_abs_lambda_on_every_spectrum() {
    let stall = &DEFAULT_CONFIG[DEFAULT_CONFIG.find("[stall]").unwrap()..][..DEFAULT_CONFIG
        [DEFAULT_CONFIG.find("[stall]").unwrap()..]
        .find("[verdict]")
        .unwrap()];
    let text = TINY.replace("[verdict]", &format!("{stall}\n[verdict]"));
    let r = run(&text, 1);
    let tol = r.header.config.verdict.stall_tolerance;
    assert_eq!(tol, 0.1);
    assert_eq!(r.stall.len(), 4);
    let eta = r.header.config.eta;
    for s in &r.stall {
        let lmax = s.eigenvalues.iter().fold(0.0_f64, |m, v| m.max(v.abs()));
        let mu = s
            .eigenvalues
            .iter()
            .filter(|v| **v < 0.0)
            .fold(f64::INFINITY, |m, v| m.min(v.abs()));
        let new = eta * s.rho * lmax / 2.0;
        let old = eta * s.rho * mu;
        let rel_new = s.tail_mean_norm / new - 1.0;
        let rel_old = s.tail_mean_norm / old - 1.0;
        assert!(rel_new.abs() <= tol, "{:?}: {rel_new}", s.eigenvalues);
        assert!(
            rel_old.abs() > tol,
            "{:?}: old formula passes",
            s.eigenvalues
        );
        // Where it sits: on the largest-|λ| direction.
        assert!(s.cycle_share > 0.999, "{s:?}");
        assert_eq!(s.cycle_eigenvalue.abs(), lmax);
        let a = samsde::study::saddle::two_cycle_amplitude(eta, s.rho, s.cycle_eigenvalue);
        if s.cycle_eigenvalue > 0.0 {
            // The attracting 2-cycle, reached to rounding (1e-6 relative).
            assert_eq!(s.flip_fraction, 1.0, "{s:?}");
            assert!((s.tail_mean_norm / a - 1.0).abs() < 1e-6, "{s:?}");
        } else {
            // E|y| ∈ [a, a + 2(β − 1)c/(1 + β)], β = 1 − ηλ, c = ηρ|λ| (module docs).
            let (beta, c) = (1.0 - eta * s.cycle_eigenvalue, eta * s.rho * lmax);
            let bound = a + 2.0 * (beta - 1.0) * c / (1.0 + beta);
            assert!(
                s.tail_mean_norm >= a * (1.0 - 1e-3) && s.tail_mean_norm <= bound,
                "{s:?}"
            );
            assert!(s.flip_fraction > 0.5, "{s:?}");
        }
        assert!((s.relative_error - rel_new).abs() < 1e-12);
        assert!((s.old_relative_error - rel_old).abs() < 1e-12);
    }
    // One verdict per spectrum, and it passes.
    let stall_verdicts: Vec<_> = r
        .verdicts
        .iter()
        .filter(|v| v.claim.contains("on the eigendirection of the largest"))
        .collect();
    assert_eq!(stall_verdicts.len(), 4);
    for v in stall_verdicts {
        assert_eq!(v.verdict, "pass", "{v:?}");
    }
}

/// `Start::Shell` samples uniformly in the shell: radii in range, and for the unit disc
/// `E r² = 1/2`. With n = 4000 paths, sd(r²) = 1/√12 ≈ 0.289, so the Monte Carlo standard error
/// is 0.0046; the tolerance 0.02 is 4.4 standard errors.
#[test]
fn shell_start_is_uniform() {
    struct X0;
    impl Observer for X0 {
        type Acc = Vec<(f64, f64)>;
        fn new_acc(&self) -> Self::Acc {
            Vec::new()
        }
        fn on_save(&self, acc: &mut Self::Acc, save: usize, _t: f64, view: &BlockView) {
            if save == 0 {
                for c in view.states[0].column_iter() {
                    acc.push((c[0], c[1]));
                }
            }
        }
        fn merge(&self, total: &mut Self::Acc, block: Self::Acc) {
            total.extend(block);
        }
    }
    let f = Quadratic::from_spectrum(&[1.0, -0.5], None).unwrap();
    let systems = [System {
        label: "gd".into(),
        dynamics: samsde::ensemble::Dynamics::Discrete(Discrete {
            kind: AlgorithmKind::Sgd,
            eta: 0.01,
            rho: 0.0,
        }),
    }];
    let run = |start: &Start| {
        Ensemble {
            landscape: &f,
            oracle: &Oracle::FullBatch,
            eta: 0.01,
            steps: 1,
            save_every: 1,
            systems: &systems,
            paths: 4000,
            block_size: 256,
            seed: 3,
            level: 0,
            start,
            divergence_bound: 1e6,
        }
        .run(&X0, None)
        .acc
    };
    let ball = Start::Shell {
        center: Vector::zeros(2),
        r_min: 0.0,
        r_max: 1.0,
    };
    let xs = run(&ball);
    let r2: Vec<f64> = xs.iter().map(|(a, b)| a * a + b * b).collect();
    assert!(r2.iter().all(|&v| v <= 1.0 + 1e-12));
    let mean = r2.iter().sum::<f64>() / r2.len() as f64;
    assert!((mean - 0.5).abs() < 0.02, "E r² = {mean}");
    // Moments agree with the formula used by `Start::moments`.
    let (_, cov) = ball.moments();
    assert!((cov[(0, 0)] - 0.25).abs() < 1e-12);
    let shell = Start::Shell {
        center: Vector::from_column_slice(&[1.0, -1.0]),
        r_min: 0.5,
        r_max: 0.5,
    };
    for (a, b) in run(&shell) {
        let r = ((a - 1.0).powi(2) + (b + 1.0).powi(2)).sqrt();
        assert!((r - 0.5).abs() < 1e-12, "{r}");
    }
}

/// Mini-batch SAM (σ = 0.1) near the saddle: attracted at ρ = 1 (ρκ₂|λ| = 0.31 > σ), escapes at
/// ρ = 0.1 (0.031 < σ). 96 paths: an attracted fraction ≥ 0.8 fails only if the true fraction
/// is below ≈ 0.87 (Wilson 95 % half-width ≈ 0.07 at p = 0.9).
#[test]
fn minibatch_sam_threshold_in_rho() {
    let text = TINY.replace("paths = 16\nrows", "paths = 96\nrows").replace(
        "{ algorithm = \"sam\",  rho = 1.0, start = [0.5, 0.2], expect = \"stall\" },",
        "{ algorithm = \"sam\",  rho = 1.0, sigma = 0.1, start = [0.01, 0.01], expect = \"stall\" },",
    );
    let r = run(&text, 2);
    let stall = r
        .reference
        .iter()
        .find(|q| q.sigma > 0.0 && q.rho == 1.0)
        .unwrap();
    let escape = r
        .reference
        .iter()
        .find(|q| q.sigma > 0.0 && q.rho == 0.1)
        .unwrap();
    assert_eq!(stall.paths, 96);
    assert!(stall.fraction_expected >= 0.8, "{stall:?}");
    assert!(escape.fraction_expected >= 0.9, "{escape:?}");
}

#[test]
fn statistics_helpers() {
    let w = wilson(10, 10, 0.95);
    assert!(w[1] == 1.0 && (w[0] - 0.7225).abs() < 1e-3, "{w:?}");
    let x = [0.1, 1.0, 10.0];
    assert!((crossing(&x, &[0.0, 0.5, 1.0], 0.5).unwrap() - 1.0).abs() < 1e-12);
}

#[test]
fn cli_writes_files_and_exit_codes() {
    let dir = common::tempdir();
    let cfg = common::write_file(dir.path(), "tiny.toml", TINY);
    let out = dir.path().join("out");
    let (code, _, stderr) = common::sde_check([
        "saddle",
        "-q",
        "--threads",
        "2",
        "--out",
        common::p(&out),
        common::p(&cfg),
    ]);
    assert!(code == 0 || code == 1, "exit {code}: {stderr}");
    for f in [
        "saddle.json",
        "saddle_phase.csv",
        "saddle_curves.csv",
        "saddle_phase.png",
        "saddle_phase.svg",
        "saddle_curves.png",
        "saddle_curves.svg",
    ] {
        assert!(out.join(f).exists(), "{f} missing");
    }
    // A bad configuration: exit 2, nothing written.
    let bad = common::write_file(
        dir.path(),
        "bad.toml",
        &TINY.replace("eta = 0.01", "eta = -1.0"),
    );
    let out2 = dir.path().join("out2");
    let (code, _, stderr) =
        common::sde_check(["saddle", "-q", "--out", common::p(&out2), common::p(&bad)]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("eta"), "{stderr}");
    assert!(!out2.exists());
}

/// The full default run: every verdict passes.
/// `cargo test --release --test saddle -- --ignored` (≈ 5–10 s on 2 cores).
#[test]
#[ignore]
fn default_run_passes_every_verdict() {
    let r = run(DEFAULT_CONFIG, 2);
    for v in &r.verdicts {
        assert_eq!(v.verdict, "pass", "{v:?}");
    }
}
