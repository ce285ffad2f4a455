//! Interrupts (SIGINT, SIGTERM) during the computation and during the write phase leave the
//! previous results intact and no temporary file behind; the process exits with 130.
//!
//! The write phase of a tiny run lasts milliseconds, so these tests stretch it with the testing
//! aid `SAMSDE_TEST_WRITE_DELAY_MS` (a sleep after each staged file; see `samsde::output`).
//!
//! Run: `cargo test --release --test interrupt`.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const TINY: &str = r#"
seed = 3
paths = 64
block_size = 32
algorithms = ["sgd", "usam"]
models = ["own_sde"]
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
halvings = 1
rho0 = 0.1
rho_power = 0.5
horizon = 0.4
"#;

const OLD: [&str; 4] = [
    "convergence.json",
    "convergence.csv",
    "convergence.png",
    "convergence.svg",
];

fn prepare_old_results(out: &Path) {
    std::fs::create_dir_all(out).unwrap();
    for f in OLD {
        std::fs::write(out.join(f), format!("previous {f}")).unwrap();
    }
}

fn check_intact(out: &Path, what: &str) {
    let mut names: Vec<String> = std::fs::read_dir(out)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    let mut want: Vec<String> = OLD.iter().map(|s| s.to_string()).collect();
    want.sort();
    assert_eq!(names, want, "{what}: leftover or missing files");
    for f in OLD {
        assert_eq!(
            std::fs::read_to_string(out.join(f)).unwrap(),
            format!("previous {f}"),
            "{what}: {f} was replaced"
        );
    }
}

/// Starts `sde-check convergence CONFIG --out OUT`, waits `after`, sends `signal`, returns the
/// exit code and stderr.
fn interrupt(
    config: Option<&Path>,
    out: &Path,
    delay_ms: Option<u64>,
    after: Duration,
    signal: &str,
) -> (Option<i32>, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sde-check"));
    cmd.arg("convergence");
    if let Some(c) = config {
        cmd.arg(c);
    }
    cmd.args(["--out", out.to_str().unwrap(), "--quiet"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    if let Some(ms) = delay_ms {
        cmd.env("SAMSDE_TEST_WRITE_DELAY_MS", ms.to_string());
    }
    let child = cmd.spawn().unwrap();
    let t0 = Instant::now();
    std::thread::sleep(after);
    let status = Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "kill {signal} failed");
    let out = child.wait_with_output().unwrap();
    assert!(
        t0.elapsed() < Duration::from_secs(30),
        "the process did not stop promptly"
    );
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn signals_during_the_computation_keep_previous_results() {
    for signal in ["-INT", "-TERM"] {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        prepare_old_results(&out);
        // The embedded default computes for several seconds before writing anything.
        let (code, stderr) = interrupt(None, &out, None, Duration::from_millis(1500), signal);
        assert_eq!(code, Some(130), "{signal}: {stderr}");
        assert!(stderr.contains("interrupted"), "{stderr}");
        check_intact(&out, signal);
    }
}

#[test]
fn signals_during_the_write_phase_keep_previous_results() {
    for signal in ["-INT", "-TERM"] {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("c.toml");
        std::fs::write(&cfg, TINY).unwrap();
        let out = dir.path().join("out");
        prepare_old_results(&out);
        // The tiny run computes in well under a second; each of its 4 files then waits 3 s
        // after being written, so at 1.5 s the first temporary exists and none is committed.
        let (code, stderr) = interrupt(
            Some(&cfg),
            &out,
            Some(3000),
            Duration::from_millis(1500),
            signal,
        );
        assert_eq!(code, Some(130), "{signal}: {stderr}");
        assert!(
            stderr.contains("1 temporary files removed"),
            "{signal}: {stderr}"
        );
        check_intact(&out, signal);
    }
}
