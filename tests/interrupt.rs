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

mod common;
use common::TINY_CONVERGENCE as TINY;

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
    cmd.args(["--out", common::p(out), "--quiet"])
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
        let dir = common::tempdir();
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
        let dir = common::tempdir();
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

/// Every registered study (its embedded default, nothing else given): a signal 0.8 s after the
/// start — while computing, or, for a study that finishes sooner, during a write phase stretched
/// to 3 s per file — exits 130 and leaves the previous result files (and an unrelated file) as
/// they were, with no temporary file.
#[test]
fn every_study_keeps_previous_results_when_interrupted() {
    let mut n = 0;
    for entry in samsde::registry::studies() {
        for signal in ["-INT", "-TERM"] {
            let dir = common::tempdir();
            let out = dir.path().join("out");
            std::fs::create_dir_all(&out).unwrap();
            let old = [
                format!("{}.json", entry.name.replace('-', "_")),
                format!("{}.json", entry.name),
                "notes.txt".to_string(),
            ];
            for f in &old {
                std::fs::write(out.join(f), format!("previous {f}")).unwrap();
            }
            let child = Command::new(env!("CARGO_BIN_EXE_sde-check"))
                .args([entry.name, "--out", common::p(&out), "--quiet"])
                .env("SAMSDE_TEST_WRITE_DELAY_MS", "3000")
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            std::thread::sleep(Duration::from_millis(800));
            let t0 = Instant::now();
            assert!(Command::new("kill")
                .args([signal, &child.id().to_string()])
                .status()
                .unwrap()
                .success());
            let res = child.wait_with_output().unwrap();
            let stderr = String::from_utf8_lossy(&res.stderr);
            assert!(
                t0.elapsed() < Duration::from_secs(30),
                "{}: did not stop promptly",
                entry.name
            );
            assert_eq!(
                res.status.code(),
                Some(130),
                "{} {signal}: {stderr}",
                entry.name
            );
            let mut names: Vec<String> = std::fs::read_dir(&out)
                .unwrap()
                .map(|e| e.unwrap().file_name().into_string().unwrap())
                .collect();
            names.sort();
            let mut want = old.to_vec();
            want.sort();
            want.dedup();
            assert_eq!(
                names, want,
                "{} {signal}: leftover or missing files",
                entry.name
            );
            for f in &old {
                assert_eq!(
                    std::fs::read_to_string(out.join(f)).unwrap(),
                    format!("previous {f}"),
                    "{} {signal}: {f} was replaced",
                    entry.name
                );
            }
            n += 1;
        }
    }
    println!("{n} interrupted runs, previous results intact in each");
}

/// SIGKILL cannot be caught: killed during the write phase, the run leaves its temporary file,
/// but no result was replaced (nothing is renamed before every file is staged); the next run in
/// the same folder sweeps the dead process's temporary and writes a complete new set.
#[test]
fn a_killed_run_leaves_previous_results_and_the_next_run_sweeps_its_temporary() {
    let dir = common::tempdir();
    let cfg = dir.path().join("c.toml");
    std::fs::write(&cfg, TINY).unwrap();
    let out = dir.path().join("out");
    prepare_old_results(&out);
    let (code, _) = interrupt(
        Some(&cfg),
        &out,
        Some(3000),
        Duration::from_millis(1500),
        "-KILL",
    );
    assert_eq!(code, None, "killed by a signal");
    let names: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    let temps: Vec<&String> = names.iter().filter(|n| n.contains(".tmp-")).collect();
    assert_eq!(temps.len(), 1, "{names:?}");
    for f in OLD {
        assert_eq!(
            std::fs::read_to_string(out.join(f)).unwrap(),
            format!("previous {f}"),
            "{f} was replaced by a killed run"
        );
    }
    let status = Command::new(env!("CARGO_BIN_EXE_sde-check"))
        .args(["convergence", common::p(&cfg), "--out"])
        .arg(&out)
        .arg("--quiet")
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.code() == Some(0) || status.code() == Some(1));
    let names: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert!(
        names
            .iter()
            .all(|n| !n.contains(".tmp-") && !n.contains(".bak-")),
        "{names:?}"
    );
    for f in OLD {
        assert_ne!(
            std::fs::read_to_string(out.join(f)).unwrap_or_default(),
            format!("previous {f}"),
            "{f} not replaced by the complete run"
        );
    }
}

/// An interrupted run into a folder that did not exist leaves no (empty) folder behind.
#[test]
fn an_interrupted_run_removes_the_output_folders_it_created() {
    for signal in ["-INT", "-TERM"] {
        let dir = common::tempdir();
        let out = dir.path().join("new").join("deeper");
        let (code, stderr) = interrupt(None, &out, None, Duration::from_millis(1500), signal);
        assert_eq!(code, Some(130), "{signal}: {stderr}");
        assert!(!dir.path().join("new").exists(), "{signal}: folder left");
    }
}
