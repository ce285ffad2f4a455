//! The ρ sweep (Paper 1's protocol): tiny configurations of all three problems run in seconds,
//! results are bit-identical at 1 and 2 threads, bad input exits with code 2 and writes nothing,
//! and a successful CLI run writes its four files.
//!
//! Run: `cargo test --release --test rho_sweep`. The shipped quick profiles are run by
//! `sde-check rho-sweep [experiments/rho_sweep_*.toml]` (see README); they take minutes.

use std::path::{Path, PathBuf};

use samsde::study::rho_sweep::{RhoSweepReport, RhoSweepStudy};

mod common;
use common::{p, sde_check};

fn config(problem: &str, sizes: &str) -> String {
    format!(
        r#"
seed = 5
sigma = 0.01
eta = 0.01
rhos = [0.005, 0.01, 0.3]
{problem}
[quick]
{sizes}
[paper]
steps = 20
paths = 4
save_every = 5
substeps = 4
block_size = 2
"#
    )
}

const QUADRATIC: &str = r#"[problem]
kind = "quadratic"
dim = 6
hessian_seed = 1
start_std = 1.0
start_seed = 4"#;

const QUADRATIC_SIZES: &str =
    "steps = 200\npaths = 16\nsave_every = 5\nsubsteps = 8\nblock_size = 4";

fn run(toml: &str, threads: usize) -> RhoSweepReport {
    let study = RhoSweepStudy::from_toml(toml).expect("valid config");
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap();
    pool.install(|| study.run(threads, None)).expect("run")
}

fn numbers(r: &RhoSweepReport) -> String {
    serde_json::to_string(&(&r.pairs, &r.verdicts, &r.observations)).unwrap()
}

/// The quadratic in seconds: every pair of the protocol is reported with a finite error inside
/// its interval, and the picture of Paper 1 is visible even at this size: at ρ = 0.3 ≫ η the
/// SGD SDE is far worse for USAM than USAM's own SDE (the first-order step expansion predicts a
/// ratio ≈ 1 + 2ρ/η = 61 where the drift dominates; 10 leaves a wide margin for this short
/// horizon and the Monte Carlo/resolution interval).
#[test]
fn tiny_quadratic_sweep_shows_the_pattern() {
    let r = run(&config(QUADRATIC, QUADRATIC_SIZES), 2);
    // 1 SGD pair + 3 radii × (3 + 3 + 5) pairs.
    assert_eq!(r.pairs.len(), 1 + 3 * 11);
    for q in &r.pairs {
        assert!(
            q.relative_error.is_finite() && q.relative_error > 0.0,
            "{q:?}"
        );
        assert!(
            q.ci[0] <= q.relative_error && q.relative_error <= q.ci[1],
            "{q:?}"
        );
        assert_eq!(q.diverged_paths, 0);
    }
    let v = r
        .verdicts
        .iter()
        .find(|v| v.claim.starts_with("usam at the largest"))
        .unwrap();
    assert!(v.measured > 10.0, "{}", v.line(true));
    // Verdicts: 3 algorithms × 2 radii ≤ η, then 3 at the largest ρ.
    assert_eq!(r.verdicts.len(), 9);
}

/// Same seed → bit-identical numbers at 1 and 2 threads.
#[test]
fn bit_identical_across_thread_counts() {
    let toml = config(QUADRATIC, QUADRATIC_SIZES);
    assert_eq!(numbers(&run(&toml, 1)), numbers(&run(&toml, 2)));
}

/// The two networks run through the same engine (gradients and Hessian–vector products only),
/// in seconds at these sizes, with finite errors and no divergence.
#[test]
fn tiny_network_sweeps_run() {
    let classifier = r#"[problem]
kind = "classifier"
hidden = 3
weight_decay = 0.05
init_seed = 1
init_scale = 1.0"#;
    let teacher = r#"[problem]
kind = "teacher_student"
n_samples = 10
input_dim = 5
teacher_hidden = 20
teacher = "linear"
hidden = 8
weight_decay = 0.005
data_seed = 1
init_seed = 2
init_scale = 1.0"#;
    let sizes = "steps = 10\npaths = 4\nsave_every = 2\nsubsteps = 2\nblock_size = 2";
    for (problem, d) in [(classifier, 30 * 3 + 3 + 3 + 1), (teacher, 5 * 8 + 8)] {
        let toml = config(problem, sizes);
        let r = run(&toml, 2);
        assert_eq!(r.dim, d);
        for q in &r.pairs {
            assert!(q.relative_error.is_finite(), "{q:?}");
            assert_eq!(q.diverged_paths, 0);
        }
        assert_eq!(numbers(&r), numbers(&run(&toml, 1)));
    }
}

fn cli_run(dir: &Path, toml: &str, extra: &[&str]) -> (i32, String, String, PathBuf) {
    let cfg = common::write_file(dir, "c.toml", toml);
    let out = dir.join("out");
    let mut args = vec!["rho-sweep", p(&cfg), "--out", p(&out), "--quiet"];
    args.extend_from_slice(extra);
    let (code, so, se) = sde_check(&args);
    (code, so, se, out)
}

#[test]
fn cli_writes_every_file_and_the_result_repeats_its_run() {
    let dir = common::tempdir();
    let (code, so, se, out) = cli_run(dir.path(), &config(QUADRATIC, QUADRATIC_SIZES), &[]);
    assert!(code == 0 || code == 1, "exit {code}: {se}");
    for f in [
        "rho_sweep.json",
        "rho_sweep.csv",
        "rho_sweep.png",
        "rho_sweep.svg",
    ] {
        assert!(out.join(f).exists(), "{f} missing; stdout: {so}");
    }
    let json = common::read_json(&out.join("rho_sweep.json"));
    assert_eq!(json["study"], "rho-sweep");
    assert!(json["config"]["problem"]["kind"] == "quadratic");
    assert_eq!(json["pairs"].as_array().unwrap().len(), 34);
    let (_, rows) = common::read_csv_strict(&out.join("rho_sweep.csv"));
    assert_eq!(rows.len(), 34);
    // The result file repeats the run (its `config` field is read back).
    let out2 = dir.path().join("again");
    let (code2, _, se2) = sde_check([
        "rho-sweep",
        p(&out.join("rho_sweep.json")),
        "--out",
        p(&out2),
        "--quiet",
    ]);
    assert_eq!(code, code2, "{se2}");
    let again = common::read_json(&out2.join("rho_sweep.json"));
    assert_eq!(json["pairs"], again["pairs"]);
}

#[test]
fn bad_input_exits_2_names_the_field_and_writes_nothing() {
    let dir = common::tempdir();
    let cases = [
        ("eta = 0.01", "eta = -0.01", "eta"),
        ("rhos = [0.005, 0.01, 0.3]", "rhos = [0.01, 0.005]", "rhos"),
        ("substeps = 8", "substeps = 1", "quick.substeps"),
        ("kind = \"quadratic\"", "kind = \"cubic\"", "cubic"),
    ];
    for (from, to, field) in cases {
        let toml = config(QUADRATIC, QUADRATIC_SIZES).replacen(from, to, 1);
        let (code, _, se, out) = cli_run(dir.path(), &toml, &[]);
        assert_eq!(code, 2, "{to}: {se}");
        assert!(se.contains(field), "{to}: {se}");
        assert!(!out.join("rho_sweep.json").exists());
    }
    let (code, _, se, _) = cli_run(
        dir.path(),
        &config(QUADRATIC, QUADRATIC_SIZES),
        &["--profile", "fast"],
    );
    assert_eq!(code, 2);
    assert!(se.contains("profile"), "{se}");
    let (code, _, se, _) = cli_run(
        dir.path(),
        &config(QUADRATIC, QUADRATIC_SIZES),
        &["--seeds", "3"],
    );
    assert_eq!(code, 2);
    assert!(se.contains("--seeds"), "{se}");
}

/// `--profile paper` selects the paper sizes and prints its estimated time before the run.
#[test]
fn paper_profile_prints_its_estimate() {
    let dir = common::tempdir();
    let (code, so, se, _) = cli_run(
        dir.path(),
        &config(QUADRATIC, QUADRATIC_SIZES),
        &["--profile", "paper"],
    );
    assert!(code == 0 || code == 1, "exit {code}: {se}");
    assert!(se.contains("estimated wall time"), "{se}");
    assert!(so.contains("profile paper: 20 steps"), "{so}");
}
