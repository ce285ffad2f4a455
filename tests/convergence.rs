//! End-to-end checks of the convergence pipeline against closed forms.
//!
//! Run: `cargo test --release --test convergence`.

use samsde::study::convergence::claims::SlopeCiKind;
use samsde::study::convergence::{ConvergenceReport, ConvergenceStudy};
use samsde::study::verdict::ClaimKind;

fn run(toml: &str, threads: usize) -> ConvergenceReport {
    let study = ConvergenceStudy::from_toml(toml).expect("valid config");
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap();
    pool.install(|| study.run(threads, None)).expect("run")
}

/// A small linear problem: d = 5 Wishart quadratic, isotropic additive noise, SGD and USAM
/// against their own SDEs and the SGD SDE, three learning rates.
fn linear_config(integrator: &str, paths: usize, level: f64) -> String {
    format!(
        r#"
seed = 11
paths = {paths}
block_size = 128
algorithms = ["sgd", "usam"]
models = ["own_sde", "sgd_sde"]
test_functions = ["norm_sq", "loss"]
[landscape]
kind = "quadratic"
hessian = {{ kind = "wishart", dim = 5, seed = 3 }}
[oracle]
kind = "additive"
sigma = 0.5
[start]
kind = "gaussian"
std = 1.0
[schedule]
eta0 = 0.1
halvings = 2
rho0 = 0.3
rho_power = 0.5
horizon = 1.0
[integration]
integrator = "{integrator}"
substeps = 16
[verdict]
level = {level}
"#
    )
}

/// The Monte Carlo weak error (exact OU transitions coupled to the discrete noise, so no
/// time-discretisation bias) contains the exact weak error computed from moment recursions.
///
/// Each point's CI is simultaneous over its steps (10, 20, 40: the max is over every step) at
/// level 0.999; there are
/// 3 pairs × 2 test functions × 3 learning rates = 18 points, so by Bonferroni the chance that
/// any exact value falls outside by bad luck is ≤ 18 × 0.001 = 1.8 %. The seed is fixed, so the
/// test is deterministic. What it catches (checked by mutating the code): a 10 % error in the
/// discrete noise scale puts exact values outside the CI; a wrong coupling sign leaves the
/// marginals right but widens the CIs twentyfold, which the width assertion catches. A 5 %
/// noise-scale error is below this test's resolution.
#[test]
fn monte_carlo_agrees_with_exact_reference() {
    let r = run(&linear_config("exact_ou", 3000, 0.999), 2);
    let mut checked = 0;
    for p in &r.pairs {
        for q in &p.points {
            let exact = q
                .exact_weak_error
                .expect("linear pair has an exact reference");
            assert!(
                q.ci[0] <= exact && exact <= q.ci[1],
                "{} vs {} ({}), η = {}: exact {exact:.5e} outside MC CI [{:.5e}, {:.5e}]",
                p.algorithm,
                p.model,
                p.test_function,
                q.eta,
                q.ci[0],
                q.ci[1]
            );
            // The interval must be informative, or the check above proves nothing.
            assert!(
                q.ci[1] - q.ci[0] < 0.2 * exact,
                "CI too wide to test anything: {:?}",
                q.ci
            );
            checked += 1;
        }
    }
    assert_eq!(checked, 18);
}

/// Euler–Maruyama with sub-steps is biased by O(h); the resolution diagnostic must account for
/// it: |MC − exact| ≤ CI half-width + 2 × resolution_error (for a first-order scheme the bias
/// of the run at `substeps` is ≈ the difference between `substeps` and `substeps/2`).
#[test]
fn euler_bias_is_covered_by_the_resolution_diagnostic() {
    let r = run(&linear_config("euler_maruyama", 2000, 0.999), 2);
    for p in &r.pairs {
        assert!(
            p.integrator.starts_with("euler_maruyama"),
            "{}",
            p.integrator
        );
        for q in &p.points {
            let exact = q.exact_weak_error.unwrap();
            let half = 0.5 * (q.ci[1] - q.ci[0]);
            assert!(q.resolution_error > 0.0, "the diagnostic must be measured");
            assert!(
                (q.weak_error - exact).abs() <= half + 2.0 * q.resolution_error,
                "{} vs {}: MC {:.4e}, exact {exact:.4e}, half-width {half:.1e}, resolution {:.1e}",
                p.algorithm,
                p.model,
                q.weak_error,
                q.resolution_error
            );
        }
    }
}

/// `reference = "exact"` reproduces the expected slopes on Paper 1's problem (d = 20, σ = 0.5,
/// T = 2, η = 0.1 … 0.00625, ρ₀ = 0.3, ρ ∝ √η, g = ‖x‖², x₀ ~ N(0, I)): USAM vs its SDE ≈ 1.1,
/// USAM vs the SGD SDE ≈ 0.5, SGD vs its SDE ≈ 1.0 (docs/theory.md). No Monte Carlo: the
/// tolerance ±0.05 is the precision to which those slopes are quoted.
#[test]
fn exact_reference_reproduces_the_expected_slopes() {
    let toml = samsde::study::convergence::DEFAULT_CONFIG
        .replace("seed = 2026", "seed = 2026\nreference = \"exact\"");
    let toml = toml.replace(
        r#"algorithms = ["sgd", "usam", "dnsam", "sam"]"#,
        r#"algorithms = ["sgd", "usam"]"#,
    );
    let r = run(&toml, 1);
    let slope = |a: &str, m: &str| {
        r.pairs
            .iter()
            .find(|p| p.algorithm == a && p.model == m)
            .unwrap()
            .slope
    };
    assert!(
        (slope("usam", "usam_sde") - 1.1).abs() < 0.05,
        "{}",
        slope("usam", "usam_sde")
    );
    assert!(
        (slope("usam", "sgd_sde") - 0.5).abs() < 0.05,
        "{}",
        slope("usam", "sgd_sde")
    );
    assert!(
        (slope("sgd", "sgd_sde") - 1.0).abs() < 0.05,
        "{}",
        slope("sgd", "sgd_sde")
    );
    // With ρ fixed the SGD SDE plateaus (slope ≈ 0) and with ρ ∝ η it is order 1 again.
    let fixed = run(&toml.replace("rho_power = 0.5 ", "rho_power = 0.0 "), 1);
    let s0 = fixed
        .pairs
        .iter()
        .find(|p| p.algorithm == "usam" && p.model == "sgd_sde")
        .unwrap()
        .slope;
    assert!(s0.abs() < 0.1, "fixed ρ: slope {s0}");
    let linear = run(&toml.replace("rho_power = 0.5 ", "rho_power = 1.0 "), 1);
    let s1 = linear
        .pairs
        .iter()
        .find(|p| p.algorithm == "usam" && p.model == "sgd_sde")
        .unwrap()
        .slope;
    assert!((s1 - 1.0).abs() < 0.1, "ρ ∝ η: slope {s1}");
}

/// A config exercising every kind of system and random stream: all four algorithms, closed-form
/// Euler models, exact OU models, and (second config) subsampling with the inner-Monte-Carlo
/// SDE form and random starts.
const MIXED: &str = r#"
seed = 5
paths = 300
block_size = 64
algorithms = ["sgd", "usam", "dnsam", "sam"]
models = ["own_sde", "sgd_sde", "drift_only"]
test_functions = ["norm_sq", "norm_plus_grad_norm"]
[landscape]
kind = "quadratic"
hessian = { kind = "wishart", dim = 4, seed = 2 }
[oracle]
kind = "additive"
sigma = 0.4
[start]
kind = "gaussian"
std = 1.0
[schedule]
eta0 = 0.1
halvings = 1
rho0 = 0.2
rho_power = 0.5
horizon = 0.4
[integration]
substeps = 4
"#;

const SUBSAMPLED: &str = r#"
seed = 6
paths = 100
block_size = 32
algorithms = ["sgd", "usam", "sam", "musam"]
micro_batch = 2
models = ["own_sde"]
test_functions = ["loss"]
[landscape]
kind = "least_squares"
n_samples = 12
dim = 3
noise = 0.5
seed = 4
[oracle]
kind = "subsampling"
batch = 4
[start]
kind = "gaussian"
std = 1.0
[schedule]
eta0 = 0.1
halvings = 1
rho0 = 0.1
rho_power = 0.5
horizon = 0.2
[integration]
substeps = 2
inner_samples = 8
"#;

fn pairs_json(r: &ConvergenceReport) -> String {
    serde_json::to_string(&(&r.pairs, &r.header.warnings, &r.header.config)).unwrap()
}

/// Same seed → bit-identical results at 1 and 2 threads (and with a different block order of
/// completion), for every system kind and stream.
#[test]
fn bit_identical_across_thread_counts() {
    for cfg in [MIXED, SUBSAMPLED] {
        let one = pairs_json(&run(cfg, 1));
        let two = pairs_json(&run(cfg, 2));
        assert_eq!(one, two);
        // A different seed must change the numbers (the test would pass trivially otherwise).
        let other = pairs_json(&run(&cfg.replacen("seed = ", "seed = 1", 1), 2));
        assert_ne!(one, other);
    }
}

/// Full batch: the discrete algorithms are deterministic and their models are ODEs; gradient
/// descent vs gradient flow is first order. No Monte Carlo noise: the weak error CI collapses
/// to a point, and the slope's CI is the regression's.
#[test]
fn full_batch_is_first_order() {
    let toml = r#"
seed = 1
paths = 2
algorithms = ["sgd", "usam", "sam"]
models = ["own_sde"]
test_functions = ["norm_sq"]
[landscape]
kind = "quadratic"
hessian = { kind = "wishart", dim = 6, seed = 9 }
[oracle]
kind = "full_batch"
[start]
kind = "constant"
value = 1.0
[schedule]
eta0 = 0.05
halvings = 3
rho0 = 0.1
rho_power = 1.0
horizon = 1.0
[integration]
integrator = "euler_maruyama"
substeps = 32
"#;
    let r = run(toml, 1);
    for p in &r.pairs {
        assert!(
            (p.slope - 1.0).abs() < 0.15,
            "{} vs {}: slope {}",
            p.algorithm,
            p.model,
            p.slope
        );
        for q in &p.points {
            assert_eq!(q.ci[0], q.ci[1], "deterministic: zero-width CI");
        }
    }
}

/// The issue's acceptance numbers on the embedded default study (d = 20 Wishart quadratic,
/// σ = 0.5, ρ ∝ √η, 5 learning rates, 4096 paths): SGD and USAM against their own SDEs have
/// slopes in [0.8, 1.3] with CIs inside [0.7, 1.4]; USAM against the SGD SDE has a slope in
/// [0.35, 0.65]. The slope CIs combine regression and Monte Carlo error at 95 %; the measured
/// half-widths are ≈ 0.01–0.03, far inside these bands, so a pass is not luck of the seed.
#[test]
fn default_study_meets_its_acceptance_numbers() {
    let r = run(samsde::study::convergence::DEFAULT_CONFIG, 2);
    let get = |a: &str, m: &str| {
        r.pairs
            .iter()
            .find(|p| p.algorithm == a && p.model == m)
            .unwrap()
    };
    for (a, m) in [("usam", "usam_sde"), ("sgd", "sgd_sde")] {
        let p = get(a, m);
        assert!(
            (0.8..=1.3).contains(&p.slope),
            "{a} vs {m}: slope {}",
            p.slope
        );
        assert!(
            p.slope_ci[0] >= 0.7 && p.slope_ci[1] <= 1.4,
            "{a} vs {m}: CI {:?}",
            p.slope_ci
        );
    }
    let p = get("usam", "sgd_sde");
    assert!(
        (0.35..=0.65).contains(&p.slope),
        "usam vs sgd_sde: slope {}",
        p.slope
    );
    // Every claim passes, and each row says which claim it tested: one-sided for the own SDEs,
    // a comparison with the own SDE for the SGD SDE as a model of USAM, DNSAM, SAM.
    for p in &r.pairs {
        assert_eq!(
            p.verdict, "pass",
            "{} vs {}: {}",
            p.algorithm, p.model, p.verdict_reason
        );
        let kind = if p.model == "sgd_sde" && p.algorithm != "sgd" {
            ClaimKind::OrderBelowOwnModel
        } else {
            ClaimKind::OrderAtLeast
        };
        assert_eq!(p.claim_kind, kind, "{} vs {}", p.algorithm, p.model);
        assert_eq!(p.slope_ci_kind, SlopeCiKind::MonteCarlo);
    }
    // DNSAM and SAM against their own SDEs (Monte Carlo only; measured ≈ 1.02 ± 0.01).
    for (a, m) in [("dnsam", "dnsam_sde"), ("sam", "sam_sde")] {
        let p = get(a, m);
        assert_eq!(p.verdict, "pass", "{a} vs {m}: {}", p.verdict_reason);
        assert!(
            (0.8..=1.3).contains(&p.slope),
            "{a} vs {m}: slope {}",
            p.slope
        );
    }
    for p in &r.pairs {
        assert_eq!(p.points.len(), 5);
        assert!(
            p.points.iter().all(|q| q.diverged_paths == 0),
            "{} vs {}",
            p.algorithm,
            p.model
        );
    }
}

/// The shipped least-squares default (`experiments/convergence_least_squares.toml`): real
/// mini-batches (N = 32, B = 4, m = 2), exact moments on both sides, the max over every step.
/// Every verdict is conclusive and passes: SGD, USAM and m-USAM against their own SDEs as
/// `order_at_least 1`; every other model (the SGD SDE for USAM and m-USAM, USAM's SDE for SGD
/// and m-USAM) as `order_below_own_model`, and its slope interval also lies inside
/// `min(1, p) ± tolerance = ½ ± 0.3` (the two-sided reading). No Monte Carlo: the intervals are
/// lack-of-fit intervals and the run takes well under a second.
#[test]
fn least_squares_default_is_conclusive_with_exact_moments() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/experiments/convergence_least_squares.toml"
    ))
    .unwrap();
    let r = run(&text, 2);
    assert_eq!(r.pairs.len(), 14);
    for p in &r.pairs {
        let what = format!("{} vs {} ({})", p.algorithm, p.model, p.test_function);
        assert_eq!(p.verdict, "pass", "{what}: {}", p.verdict_reason);
        assert_eq!(p.slope_ci_kind, SlopeCiKind::LackOfFit, "{what}");
        if p.model == format!("{}_sde", p.algorithm) {
            assert_eq!(p.claim_kind, ClaimKind::OrderAtLeast, "{what}");
        } else {
            assert_eq!(p.claim_kind, ClaimKind::OrderBelowOwnModel, "{what}");
            assert_eq!(p.expected_order, 0.5, "{what}");
            assert!(
                p.slope_ci[0] >= 0.2 && p.slope_ci[1] <= 0.8,
                "{what}: slope {} {:?} outside ½ ± 0.3",
                p.slope,
                p.slope_ci
            );
        }
    }
}

/// Heavier check (≈ 1 CPU-hour; not run in the session that wrote it): the Monte Carlo version
/// (`experiments/convergence_least_squares_mc.toml`, independent discrete and SDE ensembles, the
/// USAM and m-USAM SDEs by Euler–Maruyama with exact coefficients) is run as shipped (the
/// 1 000-path pilot), then again at the largest path count its observations predict: there no
/// verdict is `fail` or `inconclusive`, and every estimate's CI (widened by the resolution
/// diagnostic) contains the exact weak error. Run:
/// `cargo test --release --test convergence -- --ignored subsampling`.
#[test]
#[ignore]
fn subsampling_monte_carlo_is_conclusive_at_the_predicted_paths() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/experiments/convergence_least_squares_mc.toml"
    ))
    .unwrap();
    let pilot = run(&text, 2);
    let need = pilot
        .observations
        .iter()
        .map(|o| o.measured)
        .fold(0.0_f64, f64::max);
    assert!(need.is_finite(), "{:?}", pilot.observations);
    let r = run(
        &text.replace("paths = 1000", &format!("paths = {}", need as usize)),
        2,
    );
    for p in &r.pairs {
        assert_eq!(
            p.verdict, "pass",
            "{} vs {}: {}",
            p.algorithm, p.model, p.verdict_reason
        );
        for q in &p.points {
            let e = q.exact_weak_error.unwrap();
            assert!(q.ci[0] - q.resolution_ci[1] <= e && e <= q.ci[1] + q.resolution_ci[1]);
        }
    }
}

/// Additive noise with σ = 0 is full batch: SAM's SDE becomes the ODE with `φ = 1` (no table
/// lookup at r = ‖∇f‖/0), and every weak error equals the full-batch run's exactly.
#[test]
fn zero_sigma_is_full_batch() {
    let base = MIXED.replace(
        "models = [\"own_sde\", \"sgd_sde\", \"drift_only\"]",
        "models = [\"own_sde\"]",
    );
    let zero = run(&base.replace("sigma = 0.4", "sigma = 0.0"), 2);
    let full = run(
        &base.replace("kind = \"additive\"\nsigma = 0.4", "kind = \"full_batch\""),
        2,
    );
    assert_eq!(zero.pairs.len(), 8);
    for (a, b) in zero.pairs.iter().zip(&full.pairs) {
        for (p, q) in a.points.iter().zip(&b.points) {
            assert_eq!(p.weak_error, q.weak_error, "{} vs {}", a.algorithm, a.model);
        }
    }
}
