//! The `sde-check` binary as a user runs it: exit codes, error messages that name the field and
//! the value, nothing written on bad input, and the files of a successful run.
//!
//! Run: `cargo test --release --test cli`.

use std::path::Path;
use std::process::Command;

mod common;

use common::{sde_check, TINY_CONVERGENCE as TINY};

fn run_config(dir: &Path, toml: &str) -> (i32, String, String, std::path::PathBuf) {
    let cfg = common::write_file(dir, "c.toml", toml);
    let out = dir.join("out");
    let (code, so, se) = sde_check([
        "convergence",
        common::p(&cfg),
        "--out",
        common::p(&out),
        "--quiet",
    ]);
    (code, so, se, out)
}

#[test]
fn tiny_run_writes_every_file_with_the_json_contract() {
    let dir = common::tempdir();
    let (code, stdout, stderr, out) = run_config(dir.path(), TINY);
    assert!(code == 0 || code == 1, "exit {code}: {stderr}");
    assert!(stdout.contains("verdicts pass"), "{stdout}");
    for f in [
        "convergence.json",
        "convergence.csv",
        "convergence.png",
        "convergence.svg",
    ] {
        let p = out.join(f);
        assert!(
            p.metadata().map(|m| m.len() > 100).unwrap_or(false),
            "{f} missing or empty"
        );
    }
    // No temporary files are left behind.
    for e in std::fs::read_dir(&out).unwrap() {
        let name = e.unwrap().file_name().into_string().unwrap();
        assert!(!name.starts_with('.'), "leftover temporary {name}");
    }
    let v = common::read_json(&out.join("convergence.json"));
    common::check_report_contract(&v, "convergence.json");
    assert!(v.get("pairs").is_some(), "missing top-level pairs");
    assert_eq!(v["study"], "convergence");
    assert_eq!(v["config"]["paths"], 64);
    let pair = &v["pairs"][0];
    for key in [
        "algorithm",
        "model",
        "test_function",
        "expected_order",
        "slope",
        "slope_ci",
        "verdict",
        "points",
    ] {
        assert!(pair.get(key).is_some(), "missing pair field {key}");
    }
    let point = &pair["points"][0];
    for key in [
        "eta",
        "rho",
        "weak_error",
        "ci",
        "mc_floor",
        "resolution_error",
        "diverged_paths",
    ] {
        assert!(point.get(key).is_some(), "missing point field {key}");
    }
    // The config in the JSON is enough to repeat the run: feed it back (as TOML) and compare.
    let cfg: samsde::study::convergence::ConvergenceConfig =
        serde_json::from_value(v["config"].clone()).unwrap();
    let toml = toml::to_string(&cfg).unwrap();
    let dir2 = common::tempdir();
    let (_, _, _, out2) = run_config(dir2.path(), &toml);
    let v2 = common::read_json(&out2.join("convergence.json"));
    assert_eq!(v["pairs"], v2["pairs"]);
    // And the result file itself is a configuration: `sde-check convergence result.json`.
    let out3 = dir2.path().join("out3");
    let json_path = out.join("convergence.json");
    let (code, _, stderr) = sde_check([
        "convergence",
        common::p(&json_path),
        "--out",
        common::p(&out3),
        "--quiet",
    ]);
    assert!(code == 0 || code == 1, "exit {code}: {stderr}");
    let v3 = common::read_json(&out3.join("convergence.json"));
    assert_eq!(v["pairs"], v3["pairs"]);
    assert_eq!(v["verdicts"], v3["verdicts"]);
    // A result of another study is refused, naming `study`.
    let mut other = v.clone();
    other["study"] = "saddle".into();
    let other_path = dir2.path().join("other.json");
    std::fs::write(&other_path, other.to_string()).unwrap();
    let (code, _, stderr) = sde_check(["convergence", common::p(&other_path)]);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("study") && stderr.contains("saddle"),
        "{stderr}"
    );
}

/// A bad `--out` fails before the run (a file where the folder should be), naming `--out`.
#[test]
fn bad_out_fails_before_the_run() {
    let dir = common::tempdir();
    let file = dir.path().join("not-a-dir");
    std::fs::write(&file, "x").unwrap();
    // 3 000 000 paths (allowed by --yes) would compute for hours: the refusal can only come
    // back in this test's lifetime if --out is checked before the simulation starts. No
    // timing is asserted; a check placed after the run would hang this test, not pass it.
    let (code, _, stderr) = sde_check([
        "convergence",
        "--paths",
        "3000000",
        "--yes",
        "--quiet",
        "--out",
        common::p(&file),
    ]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("--out"), "{stderr}");
}

/// `--paths -1` and an absurd `--threads` name the option.
#[test]
fn bad_options_name_the_option() {
    let (code, _, stderr) = sde_check(["convergence", "--paths", "-1"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("--paths"), "{stderr}");
    let (code, _, stderr) = sde_check(["convergence", "--threads", "100000", "--quiet"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("--threads"), "{stderr}");
    let (code, _, stderr) = sde_check(["convergence", "--seeds", "3", "--print-config"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("--seeds"), "{stderr}");
}

/// A closed pipe (`sde-check list | head -1`) ends the output quietly: no panic, no exit 101.
#[test]
fn closed_stdout_is_not_a_panic() {
    use std::process::Stdio;
    let mut child = Command::new(env!("CARGO_BIN_EXE_sde-check"))
        .args(["convergence", "--print-config"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take()); // the reader goes away before anything is read
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn list_shows_every_shipped_experiment() {
    let (code, stdout, _) = sde_check(["list"]);
    assert_eq!(code, 0);
    for e in std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/experiments")).unwrap() {
        let name = e.unwrap().file_name().into_string().unwrap();
        if name.ends_with(".toml") {
            assert!(stdout.contains(&name), "{name} not listed:\n{stdout}");
        }
    }
}

/// Each bad input: exit code 2, a message naming the field and the value, no output folder.
#[test]
fn bad_input_is_refused_with_exit_2_and_nothing_written() {
    let cases: Vec<(String, &str, &str)> = vec![
        (
            TINY.replace("seed = 3", "seed = 3\ncolour = \"red\""),
            "colour",
            "unknown",
        ),
        (
            TINY.replace("eta0 = 0.1", "eta0 = -0.1"),
            "schedule.eta0",
            "-0.1",
        ),
        (
            TINY.replace("eta0 = 0.1", "eta0 = 0.0"),
            "schedule.eta0",
            "0",
        ),
        (
            TINY.replace("rho0 = 0.1", "rho0 = -1.0"),
            "schedule.rho0",
            "-1",
        ),
        (TINY.replace("paths = 64", "paths = 0"), "paths", "0"),
        (
            TINY.replace(
                "kind = \"constant\"\nvalue = 1.0",
                "kind = \"point\"\nx = [1.0, 2.0]",
            ),
            "start.x",
            "2",
        ),
        (
            TINY.replace(
                "sigma = 0.5",
                "covariance = [[1.0, 2.0, 0.0], [2.0, 1.0, 0.0], [0.0, 0.0, 1.0]]",
            ),
            "oracle.covariance",
            "-1.0",
        ),
        (
            TINY.replace("sigma = 0.5", "sigma = nan"),
            "oracle.sigma",
            "NaN",
        ),
        (
            TINY.replace("horizon = 0.4", "horizon = inf"),
            "schedule.horizon",
            "inf",
        ),
        (
            TINY.replace("horizon = 0.4", "horizon = 0.45"),
            "horizon",
            "0.1",
        ),
        (
            TINY.replace("[\"own_sde\"]", "[\"own_sde\", \"adam_sde\"]"),
            "models[1]",
            "adam_sde",
        ),
    ];
    for (toml, field, value) in cases {
        let dir = common::tempdir();
        let (code, _, stderr, out) = run_config(dir.path(), &toml);
        assert_eq!(code, 2, "expected exit 2 for {field}: {stderr}");
        assert!(stderr.starts_with("error:"), "{stderr}");
        assert!(
            stderr.contains(field),
            "message should name {field}: {stderr}"
        );
        assert!(
            stderr.contains(value),
            "message should show the value {value}: {stderr}"
        );
        assert!(
            !out.exists(),
            "nothing may be written on bad input ({field})"
        );
    }
}

#[test]
fn usage_errors_exit_2() {
    let (code, _, _) = sde_check(["no-such-study"]);
    assert_eq!(code, 2);
    let (code, _, stderr) = sde_check(["convergence", "/no/such/file.toml"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("/no/such/file.toml"), "{stderr}");
    let (code, _, stderr) = sde_check(["convergence", "--threads", "0"]);
    assert_eq!(code, 2, "{stderr}");
}

#[test]
fn print_config_shows_the_validated_default() {
    let (code, stdout, _) = sde_check(["convergence", "--print-config", "--paths", "123"]);
    assert_eq!(code, 0);
    assert!(stdout.contains("paths = 123"), "{stdout}");
    assert!(stdout.contains("kind = \"wishart\""), "{stdout}");
}
