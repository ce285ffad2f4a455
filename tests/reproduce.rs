//! `sde-check reproduce` on tiny configurations (`--config STUDY=FILE`): the three report files
//! and the per-study result files are written; `--resume` keeps results of the same
//! configuration and version and reruns the others; an interrupt (SIGINT) between studies
//! leaves the finished study's files intact, no report and no temporary file, and a resumed run
//! then skips that study. Bad input exits 2 and writes nothing.
//!
//! Run: `cargo test --release --test reproduce` (under a minute on two cores).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod common;
use common::{p, sde_check, TINY_CONVERGENCE as CONVERGENCE};

fn trajectories(paths: usize) -> String {
    // The horizon of the shipped configuration for the slow run, 2.0 for the tiny ones.
    let horizon = if paths > 1000 {
        "horizon = 10.0"
    } else {
        "horizon = 2.0"
    };
    samsde::study::trajectories::DEFAULT_CONFIG
        .replace("paths = 1000", &format!("paths = {paths}"))
        .replace("horizon = 10.0", horizon)
        .replace("saves = 100", "saves = 20")
}

fn summary(out: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap()
}

fn statuses(out: &Path) -> Vec<(String, String)> {
    summary(out)["units"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| {
            (
                u["id"].as_str().unwrap().to_string(),
                u["status"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// Every file under `dir`, relative, sorted.
fn tree(dir: &Path) -> Vec<String> {
    fn walk(d: &Path, base: &Path, out: &mut Vec<String>) {
        for e in std::fs::read_dir(d).unwrap() {
            let q = e.unwrap().path();
            if q.is_dir() {
                walk(&q, base, out);
            } else {
                out.push(q.strip_prefix(base).unwrap().display().to_string());
            }
        }
    }
    let mut v = Vec::new();
    if dir.exists() {
        walk(dir, dir, &mut v);
    }
    v.sort();
    v
}

struct Setup {
    _dir: tempfile::TempDir,
    conv: PathBuf,
    traj: PathBuf,
    out: PathBuf,
}

fn setup(traj_paths: usize) -> Setup {
    let dir = common::tempdir();
    let conv = dir.path().join("conv.toml");
    std::fs::write(&conv, CONVERGENCE).unwrap();
    let traj = dir.path().join("traj.toml");
    std::fs::write(&traj, trajectories(traj_paths)).unwrap();
    let out = dir.path().join("report");
    Setup {
        conv,
        traj,
        out,
        _dir: dir,
    }
}

fn args<'a>(s: &'a Setup, conv: &'a str, traj: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut v = vec![
        "reproduce",
        "--only",
        "convergence,trajectories",
        "--config",
        conv,
        "--config",
        traj,
        "--out",
        p(&s.out),
        "--quiet",
        "--threads",
        "2",
    ];
    v.extend_from_slice(extra);
    v
}

#[test]
fn writes_the_report_and_resume_keeps_matching_results() {
    let s = setup(120);
    let conv = format!("convergence={}", p(&s.conv));
    let traj = format!("trajectories={}", p(&s.traj));
    let (code, out, err) = sde_check(args(&s, &conv, &traj, &[]));
    assert!(code == 0 || code == 1, "{out}{err}");
    for f in ["report.md", "report.html", "summary.json"] {
        assert!(s.out.join(f).is_file(), "{f} missing: {out}{err}");
    }
    assert!(s.out.join("convergence/convergence.json").is_file());
    assert!(s.out.join("trajectories/trajectories.json").is_file());
    assert_eq!(
        statuses(&s.out),
        [
            ("convergence".into(), "ran".into()),
            ("trajectories".into(), "ran".into())
        ]
    );
    // Exit status and summary agree; every verdict of the result files is in the summary.
    let sum = summary(&s.out);
    assert_eq!(sum["all_pass"].as_bool().unwrap(), code == 0);
    let n_claims: usize = [
        "convergence/convergence.json",
        "trajectories/trajectories.json",
    ]
    .iter()
    .map(|f| {
        let v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(s.out.join(f)).unwrap()).unwrap();
        v["verdicts"].as_array().unwrap().len()
    })
    .sum();
    let counted = ["pass", "fail", "inconclusive"]
        .iter()
        .map(|k| sum[k].as_u64().unwrap() as usize)
        .sum::<usize>();
    assert_eq!(counted, n_claims);
    // The HTML is self-contained: figures embedded, nothing fetched.
    let html = std::fs::read_to_string(s.out.join("report.html")).unwrap();
    assert!(
        html.contains("data:image/png;base64,"),
        "no embedded figure"
    );
    assert!(
        !html.contains("src=\"http"),
        "the report must not fetch anything"
    );

    // Same configurations: both kept, their files untouched.
    let before = std::fs::read(s.out.join("convergence/convergence.json")).unwrap();
    let (code2, out2, err2) = sde_check(args(&s, &conv, &traj, &["--resume"]));
    assert_eq!(code2, code, "{out2}{err2}");
    assert_eq!(
        statuses(&s.out),
        [
            ("convergence".into(), "resumed".into()),
            ("trajectories".into(), "resumed".into())
        ]
    );
    assert_eq!(
        before,
        std::fs::read(s.out.join("convergence/convergence.json")).unwrap()
    );

    // A changed configuration is run again; the unchanged one is still kept.
    std::fs::write(&s.traj, trajectories(100)).unwrap();
    let (_, out3, err3) = sde_check(args(&s, &conv, &traj, &["--resume"]));
    assert_eq!(
        statuses(&s.out),
        [
            ("convergence".into(), "resumed".into()),
            ("trajectories".into(), "ran".into())
        ],
        "{out3}{err3}"
    );
}

#[cfg(unix)]
#[test]
fn interrupt_between_studies_then_resume() {
    // trajectories with 20 000 paths over the shipped horizon runs for ≈ 20 s on two idle
    // cores, so the signal (sent within 20 ms of convergence's files appearing) arrives while
    // it computes.
    let s = setup(20_000);
    let conv = format!("convergence={}", p(&s.conv));
    let traj = format!("trajectories={}", p(&s.traj));
    let mut child = Command::new(env!("CARGO_BIN_EXE_sde-check"))
        .args(args(&s, &conv, &traj, &[]))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let done = s.out.join("convergence/convergence.json");
    let t0 = Instant::now();
    while !done.exists() {
        if let Some(status) = child.try_wait().unwrap() {
            let mut err = String::new();
            std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
            panic!("sde-check ended ({status}) before convergence finished: {err}");
        }
        assert!(
            t0.elapsed() < Duration::from_secs(300),
            "convergence never finished"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let finished = tree(&s.out.join("convergence"));
    // SAFETY: kill(2) on our own child's pid.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGINT);
    }
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130), "exit code after SIGINT");
    // The finished study is intact, the interrupted one left nothing, no report, no temporary.
    assert_eq!(tree(&s.out.join("convergence")), finished);
    let all = tree(&s.out);
    assert!(
        all.iter().all(|f| f.starts_with("convergence/")),
        "only the finished study's files: {all:?}"
    );
    assert!(
        !all.iter().any(|f| f.contains("/.") || f.starts_with('.')),
        "temporary left: {all:?}"
    );
    let kept = std::fs::read(&done).unwrap();

    // Resume with a small trajectories run: convergence is skipped, trajectories runs.
    std::fs::write(&s.traj, trajectories(120)).unwrap();
    let (code, out, err) = sde_check(args(&s, &conv, &traj, &["--resume"]));
    assert!(code == 0 || code == 1, "{out}{err}");
    assert_eq!(
        statuses(&s.out),
        [
            ("convergence".into(), "resumed".into()),
            ("trajectories".into(), "ran".into())
        ]
    );
    assert_eq!(kept, std::fs::read(&done).unwrap());
    assert!(s.out.join("report.html").is_file());
}

#[test]
fn bad_input_exits_2_and_writes_nothing() {
    let s = setup(120);
    for bad in [
        vec!["reproduce", "--profile", "huge", "--out", p(&s.out)],
        vec!["reproduce", "--only", "nope", "--out", p(&s.out)],
        vec!["reproduce", "--config", "nope=x.toml", "--out", p(&s.out)],
        vec!["reproduce", "--config", "saddle", "--out", p(&s.out)],
        vec![
            "reproduce",
            "--config",
            "saddle=/does/not/exist.toml",
            "--out",
            p(&s.out),
        ],
    ] {
        let (code, _, err) = sde_check(&bad);
        assert_eq!(code, 2, "{bad:?}: {err}");
        assert!(
            err.contains(bad[2]),
            "{bad:?}: the message names the value: {err}"
        );
        assert!(!s.out.exists(), "{bad:?} wrote something");
    }
}
