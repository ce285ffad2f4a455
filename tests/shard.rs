//! Sharding: for every Monte Carlo study, `sde-check STUDY --shard I/N` for all `I` followed by
//! `sde-check merge` writes exactly the files of the single run — the result JSON equal up to
//! the wall time and thread count it records, every CSV and figure byte for byte. The shards
//! run on one thread, the single run and the merge on two, so this also checks that nothing
//! depends on the thread count. Shards that do not belong together are refused (exit 2).
//!
//! Run: `cargo test --release --test shard` (about a minute on two cores).

use std::path::{Path, PathBuf};

mod common;
use common::{p, sde_check};

/// The result JSON with the fields that legitimately differ between processes removed: the
/// wall time (`elapsed_s`, at any depth), the worker thread count, and `rho-sweep`'s `cost`
/// block (wall-time measurements of the engine, made where they are reported and never
/// sharded).
fn normalised_json(path: &Path) -> serde_json::Value {
    fn strip(v: &mut serde_json::Value) {
        match v {
            serde_json::Value::Object(m) => {
                m.remove("elapsed_s");
                m.remove("threads");
                m.remove("cost");
                m.values_mut().for_each(strip);
            }
            serde_json::Value::Array(a) => a.iter_mut().for_each(strip),
            _ => {}
        }
    }
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    strip(&mut v);
    v
}

/// Where two JSON values first differ (a dotted path), for the failure message.
fn first_difference(a: &serde_json::Value, b: &serde_json::Value, path: &str) -> String {
    use serde_json::Value;
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            for (k, va) in x {
                let q = format!("{path}.{k}");
                match y.get(k) {
                    Some(vb) if va == vb => {}
                    Some(vb) => return first_difference(va, vb, &q),
                    None => return format!("{q} (missing)"),
                }
            }
            format!("{path} (extra keys)")
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
            for (i, (va, vb)) in x.iter().zip(y).enumerate() {
                if va != vb {
                    return first_difference(va, vb, &format!("{path}[{i}]"));
                }
            }
            path.to_string()
        }
        _ => format!("{path}: {a} vs {b}"),
    }
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    v.sort();
    v
}

/// Single run vs `n` shards + merge; returns the merge's stdout.
fn check_bit_identical(study: &str, config: &str, n: usize) -> String {
    let dir = common::tempdir();
    let cfg = dir.path().join("c.toml");
    std::fs::write(&cfg, config).unwrap();
    let single = dir.path().join("single");
    let (code, _, err) = sde_check([study, p(&cfg), "--out", p(&single), "-q", "--threads", "2"]);
    assert!(code == 0 || code == 1, "{study} single run: {err}");
    let shards = dir.path().join("shards");
    for i in 1..=n {
        let spec = format!("{i}/{n}");
        let (code, out, err) = sde_check([
            study,
            p(&cfg),
            "--shard",
            &spec,
            "--out",
            p(&shards),
            "-q",
            "--threads",
            "1",
        ]);
        assert_eq!(code, 0, "{study} shard {spec}: {out}{err}");
    }
    let shard_files = files(&shards);
    assert_eq!(shard_files.len(), n, "{study}: one file per shard");
    let merged = dir.path().join("merged");
    let (code, out, err) = sde_check(["merge", p(&shards), "--out", p(&merged), "--threads", "2"]);
    assert!(code == 0 || code == 1, "{study} merge: {out}{err}");
    let a = files(&single);
    let b = files(&merged);
    let names = |v: &[PathBuf]| -> Vec<String> {
        v.iter()
            .map(|f| f.file_name().unwrap().to_string_lossy().into_owned())
            .collect()
    };
    assert_eq!(names(&a), names(&b), "{study}: the same files");
    for (fa, fb) in a.iter().zip(&b) {
        if fa.extension().is_some_and(|e| e == "json") {
            let (ja, jb) = (normalised_json(fa), normalised_json(fb));
            assert!(
                ja == jb,
                "{study}: {} differs from the single run at {}",
                fb.display(),
                first_difference(&ja, &jb, "")
            );
        } else {
            assert!(
                std::fs::read(fa).unwrap() == std::fs::read(fb).unwrap(),
                "{study}: {} differs from the single run",
                fb.display()
            );
        }
    }
    out
}

const CONVERGENCE: &str = r#"
seed = 3
paths = 96
block_size = 16
algorithms = ["sgd", "usam", "sam"]
models = ["own_sde", "sgd_sde"]
test_functions = ["norm_sq"]
[landscape]
kind = "quadratic"
hessian = { kind = "wishart", dim = 3, seed = 1 }
[oracle]
kind = "additive"
sigma = 0.5
[start]
kind = "constant"
value = 1.0
[schedule]
eta0 = 0.1
halvings = 2
rho0 = 0.1
rho_power = 0.5
horizon = 0.4
"#;

#[test]
fn convergence_shards_merge_bit_identically() {
    // 96 paths in 6 blocks per call, several calls (one per η): 3 shards each own units of
    // every call, and the round-robin crosses call boundaries.
    check_bit_identical("convergence", CONVERGENCE, 3);
}

#[test]
fn saddle_shards_merge_bit_identically() {
    let text = samsde::study::saddle::DEFAULT_CONFIG;
    // The shipped saddle configuration is small enough (seconds) to shard as it is.
    check_bit_identical("saddle", text, 4);
}

#[test]
fn flatness_shards_merge_bit_identically() {
    let text = samsde::study::flatness::DEFAULT_CONFIG
        .replace("paths = 2000", "paths = 200")
        .replace("horizon = 60.0\nsubsteps", "horizon = 5.0\nsubsteps")
        .replace("paths = 1000", "paths = 200")
        .replace("horizon = 60.0\n\n[verdict]", "horizon = 20.0\n\n[verdict]");
    check_bit_identical("flatness", &text, 3);
}

#[test]
fn trajectories_shards_merge_bit_identically() {
    let text = samsde::study::trajectories::DEFAULT_CONFIG
        .replace("paths = 1000", "paths = 120")
        .replace("horizon = 10.0", "horizon = 2.0")
        .replace("saves = 100", "saves = 20");
    check_bit_identical("trajectories", &text, 2);
}

#[test]
fn implicit_bias_shards_merge_bit_identically() {
    // Independent (seed, method, ρ) training runs: the par_map units.
    let text = samsde::study::implicit_bias::DEFAULT_CONFIG
        .replace("seeds = ", "seeds = 3 # was ")
        .replace("steps = ", "steps = 400 # was ")
        .replace("switch_step = ", "switch_step = 100 # was ");
    check_bit_identical("implicit-bias", &text, 3);
}

#[test]
fn rho_sweep_shards_merge_bit_identically() {
    let text = r#"
seed = 5
sigma = 0.01
eta = 0.01
rhos = [0.005, 0.01, 0.3]
[problem]
kind = "quadratic"
dim = 6
hessian_seed = 1
start_std = 1.0
start_seed = 4
[quick]
steps = 200
paths = 16
save_every = 5
substeps = 8
block_size = 4
[paper]
steps = 20
paths = 4
save_every = 5
substeps = 4
block_size = 2
"#;
    check_bit_identical("rho-sweep", text, 3);
}

#[test]
fn shards_that_do_not_belong_together_are_refused() {
    let dir = common::tempdir();
    let cfg = dir.path().join("c.toml");
    std::fs::write(&cfg, CONVERGENCE).unwrap();
    let other = dir.path().join("d.toml");
    std::fs::write(&other, CONVERGENCE.replace("seed = 3", "seed = 4")).unwrap();
    let run = |cfg: &Path, spec: &str, out: &Path| {
        let (code, o, e) = sde_check([
            "convergence",
            p(cfg),
            "--shard",
            spec,
            "--out",
            p(out),
            "-q",
            "--threads",
            "1",
        ]);
        assert_eq!(code, 0, "{o}{e}");
        out.join(format!(
            "convergence.shard-{}-of-{}.bin",
            &spec[..1],
            &spec[2..]
        ))
    };
    let a = dir.path().join("a");
    let b = dir.path().join("b");
    let s1 = run(&cfg, "1/2", &a);
    let s2 = run(&cfg, "2/2", &a);
    let t2 = run(&other, "2/2", &b);
    let merged = dir.path().join("m");
    let refuse = |args: &[&str], want: &[&str]| {
        let mut all = vec!["merge"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["--out", p(&merged)]);
        let (code, o, e) = sde_check(&all);
        assert_eq!(code, 2, "{args:?}: {o}{e}");
        for w in want {
            assert!(e.contains(w), "{args:?}: expected {w:?} in: {e}");
        }
        assert!(!merged.exists(), "a refused merge writes nothing");
    };
    // A missing shard is named.
    refuse(&[p(&s1)], &["missing", "2/2"]);
    // Another seed: the field and both values are named.
    refuse(&[p(&s1), p(&t2)], &["seed", "3", "4"]);
    // The same shard twice.
    refuse(&[p(&s1), p(&s1), p(&s2)], &["given twice"]);
    // Not a shard file.
    refuse(&[p(&cfg), p(&s2)], &["not a samsde shard file"]);
    // Bad --shard values name the option and the value.
    for bad in ["0/2", "3/2", "x"] {
        let (code, _, e) = sde_check(["convergence", p(&cfg), "--shard", bad, "--out", p(&b)]);
        assert_eq!(code, 2, "{bad}: {e}");
        assert!(e.contains("--shard") && e.contains(bad), "{bad}: {e}");
    }
}
