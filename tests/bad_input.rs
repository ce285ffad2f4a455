//! A bad-input corpus over EVERY registered study (it iterates over `registry::studies()`, so a
//! study registered later is covered without touching this file).
//!
//! For each study's embedded default, every leaf of the TOML is mutated in the ways that must be
//! refused:
//!
//! * **type**: a number becomes a string, a string a number, a boolean a string;
//! * **negative**: an integer becomes `-3` (every integer field is a count or a seed);
//! * **non-finite**: a float becomes `nan`, `inf` or `-inf`;
//! * **size**: an integer that is not a seed becomes `2^62` (a count no run can do; the product
//!   with any other size overflows `usize`).
//!
//! Each mutant goes through the library path the command line uses (parse, overrides, budget
//! check, validation; nothing is run) and must be refused with an error whose text names the
//! mutated field. Sizes must be refused *before* anything is allocated: the budget check runs
//! first, so an allocation of 2^62 elements would abort the test process, not fail an assert.
//!
//! A few fields accept the mutation legitimately; they are listed in [`ACCEPTED`] with the
//! reason, and the test fails for any other accepted mutant (a new study's fields must either be
//! checked or be listed here with a reason).
//!
//! The command line is exercised on a sample of the same corpus per study (exit code 2, the field
//! in the message, no output folder created), on output-path failures, on `--threads` and
//! `--paths` misuse, and on the time limit (`--yes`).
//!
//! Run: `cargo test --release --test bad_input` (prints the counts with `-- --nocapture`).

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use samsde::registry::{self, Overrides, StudyEntry};
use toml::Value;

/// `(key, mutation class, reason)` accepted on purpose, in any study.
const ACCEPTED: &[(&str, &str, &str)] = &[
    (
        "block_size",
        "size",
        "a block larger than `paths` is clamped to `paths` (one block): nothing larger is allocated",
    ),
    (
        "sample_paths",
        "size",
        "clamped to `paths` before anything is allocated (trajectories keeps min(sample_paths, paths) paths)",
    ),
    (
        "variance_every",
        "size",
        "a period, not a count: a longer period means fewer variance evaluations (none before the end)",
    ),
];

/// One leaf of a TOML document: dotted path (`landscape.hessian.dim`, `rhos[2]`) and value —
/// the [`nodes`] that are neither tables nor arrays.
fn leaves(v: &Value, at: &str, out: &mut Vec<(String, Value)>) {
    let mut all = Vec::new();
    nodes(v, at, &mut all);
    out.extend(
        all.into_iter()
            .filter(|(_, x)| !matches!(x, Value::Table(_) | Value::Array(_))),
    );
}

/// Mutable reference to the leaf at `path`.
fn leaf_mut<'a>(v: &'a mut Value, path: &str) -> &'a mut Value {
    let mut node = v;
    for part in path.split('.') {
        let (key, idx) = match part.find('[') {
            Some(i) => (&part[..i], Some(&part[i..])),
            None => (part, None),
        };
        node = node.get_mut(key).unwrap();
        if let Some(idx) = idx {
            for i in idx.split(['[', ']']).filter(|s| !s.is_empty()) {
                node = node.get_mut(i.parse::<usize>().unwrap()).unwrap();
            }
        }
    }
    node
}

/// The word an error must contain to name `path`: its last key (`dim`, `rhos`).
fn key_of(path: &str) -> &str {
    let last = path.rsplit('.').next().unwrap();
    last.split('[').next().unwrap()
}

/// A mutation class and the replacement values for a leaf (`None`: does not apply).
fn mutations(path: &str, v: &Value) -> Vec<(&'static str, Value)> {
    let seed = key_of(path).contains("seed");
    match v {
        Value::Integer(_) => {
            let mut m = vec![
                ("type", Value::String("3".into())),
                ("negative", Value::Integer(-3)),
            ];
            if !seed {
                m.push(("size", Value::Integer(1 << 62)));
            }
            m
        }
        Value::Float(_) => vec![
            ("type", Value::String("0.5".into())),
            ("non-finite", Value::Float(f64::NAN)),
            ("non-finite", Value::Float(f64::INFINITY)),
            ("non-finite", Value::Float(f64::NEG_INFINITY)),
        ],
        Value::String(_) => vec![("type", Value::Integer(7))],
        Value::Boolean(_) => vec![("type", Value::String("yes".into()))],
        _ => vec![],
    }
}

struct Mutant {
    study: &'static str,
    path: String,
    class: &'static str,
    value: Value,
    text: String,
}

fn corpus(entry: &StudyEntry) -> Vec<Mutant> {
    let root: Value = Value::Table(entry.default.text.parse().unwrap());
    let mut all = Vec::new();
    leaves(&root, "", &mut all);
    let mut out = Vec::new();
    for (path, v) in &all {
        for (class, new) in mutations(path, v) {
            let mut doc = root.clone();
            *leaf_mut(&mut doc, path) = new.clone();
            out.push(Mutant {
                study: entry.name,
                path: path.clone(),
                class,
                value: new,
                text: toml::to_string(&doc).unwrap(),
            });
        }
    }
    out
}

fn accepted(m: &Mutant) -> bool {
    ACCEPTED
        .iter()
        .any(|a| a.0 == key_of(&m.path) && a.1 == m.class)
}

#[test]
fn every_study_refuses_every_corpus_mutant_naming_the_field() {
    let mut total = 0;
    let mut by_class = std::collections::BTreeMap::<&str, usize>::new();
    let mut failures = Vec::new();
    for entry in registry::studies() {
        let mut n = 0;
        for m in corpus(entry) {
            total += 1;
            n += 1;
            *by_class.entry(m.class).or_default() += 1;
            match (entry.prepare)(&m.text, &Overrides::default()) {
                Ok(_) if accepted(&m) => {}
                Ok(_) => failures.push(format!(
                    "{} {} = {} ({}): accepted",
                    m.study, m.path, m.value, m.class
                )),
                Err(e) => {
                    let msg = e.to_string();
                    if !msg.contains(key_of(&m.path)) {
                        failures.push(format!(
                            "{} {} = {} ({}): message does not name `{}`: {msg}",
                            m.study,
                            m.path,
                            m.value,
                            m.class,
                            key_of(&m.path)
                        ));
                    }
                }
            }
        }
        println!("{}: {n} mutants", entry.name);
    }
    println!(
        "corpus: {total} mutants over {} studies, by class {by_class:?}; {} failures",
        registry::studies().len(),
        failures.len()
    );
    assert!(
        failures.is_empty(),
        "{} of {total} corpus mutants not refused with the field named:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

// ---------------------------------------------------------------------------------------------
// The command line.

/// Runs `sde-check ARGS` with a time limit; returns (exit code, stderr). A signal (abort, segfault)
/// or a hang fails the test.
fn sde_check(args: &[&str]) -> (i32, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_sde-check"))
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run sde-check");
    let t0 = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let mut err = String::new();
            use std::io::Read;
            child
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut err)
                .unwrap();
            let code = status.code().unwrap_or_else(|| {
                panic!("sde-check {args:?} ended by a signal ({status:?}): {err}")
            });
            return (code, err);
        }
        if t0.elapsed() > Duration::from_secs(120) {
            let _ = child.kill();
            panic!("sde-check {args:?} did not finish in 120 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Every entry of `dir` (none expected).
fn debris(dir: &Path) -> Vec<String> {
    match std::fs::read_dir(dir) {
        Ok(rd) => rd
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect(),
        Err(_) => Vec::new(),
    }
}

/// Per study, one mutant of each class through the binary, plus misuse of the options: exit 2,
/// the field or option named, no output folder created, nothing else in the working folder.
#[test]
fn the_command_line_refuses_the_corpus_with_exit_2_and_writes_nothing() {
    let mut n = 0;
    for entry in registry::studies() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        let o = out.to_str().unwrap();
        let mut seen = std::collections::BTreeSet::new();
        for (i, m) in corpus(entry).into_iter().enumerate() {
            if accepted(&m) || !seen.insert(m.class) {
                continue;
            }
            let cfg = dir.path().join(format!("m{i}.toml"));
            std::fs::write(&cfg, &m.text).unwrap();
            let (code, err) = sde_check(&[entry.name, cfg.to_str().unwrap(), "--out", o, "-q"]);
            n += 1;
            assert_eq!(code, 2, "{} {} = {}: {err}", m.study, m.path, m.value);
            assert!(
                err.contains(key_of(&m.path)),
                "{} {}: {err}",
                m.study,
                m.path
            );
            assert!(
                !out.exists(),
                "{} {}: output folder created",
                m.study,
                m.path
            );
            std::fs::remove_file(&cfg).unwrap();
        }
        let file = dir.path().join("a-file");
        std::fs::write(&file, "keep").unwrap();
        let f = file.to_str().unwrap();
        let under_file = format!("{f}/sub");
        let cases: Vec<(Vec<&str>, &str)> = vec![
            (vec![entry.name, "--threads", "0"], "--threads"),
            (vec![entry.name, "--threads", "1000000"], "--threads"),
            (vec![entry.name, "--paths", "-1"], "--paths"),
            (vec![entry.name, "--paths", "1e12"], "--paths"),
            (vec![entry.name, "--seed", "-5"], "--seed"),
            // Output-path failures, found before the run starts.
            (vec![entry.name, "--out", f], "--out"),
            (vec![entry.name, "--out", &under_file], "--out"),
            (vec![entry.name, "--out", "/proc/self/samsde-out"], "--out"),
        ];
        for (mut args, named) in cases {
            if !args.contains(&"--out") {
                args.extend(["--out", o]);
            }
            args.push("-q");
            let (code, err) = sde_check(&args);
            n += 1;
            assert_eq!(code, 2, "{args:?}: {err}");
            assert!(err.contains(named), "{args:?} should name {named}: {err}");
            assert!(!out.exists(), "{args:?}: output folder created");
        }
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "keep");
        let mut left = debris(dir.path());
        left.sort();
        assert_eq!(left, vec!["a-file".to_string()], "{}: debris", entry.name);
    }
    println!("command line: {n} bad invocations, all exit 2 with the field named");
}

/// Time and memory limits: a huge but finite run is refused without `--yes` with the estimate
/// and the fields printed; `--yes` lets it through (`--print-config` shows it validates) unless
/// it cannot fit in memory; an absurd one is refused even with `--yes`.
#[test]
fn absurd_sizes_are_refused_with_an_estimate_and_yes_passes_only_the_soft_limit() {
    let mut soft = 0;
    for entry in registry::studies() {
        // The hard limits: the corpus's `2^62` sizes, even with --yes.
        let dir = tempfile::tempdir().unwrap();
        for m in corpus(entry)
            .into_iter()
            .filter(|m| m.class == "size" && !accepted(m))
            .take(3)
        {
            let cfg = dir.path().join("huge.toml");
            std::fs::write(&cfg, &m.text).unwrap();
            let (code, err) =
                sde_check(&[entry.name, cfg.to_str().unwrap(), "--yes", "--print-config"]);
            assert_eq!(code, 2, "{} {} with --yes: {err}", m.study, m.path);
            assert!(err.contains(key_of(&m.path)), "{err}");
        }
        // The soft limit: enough paths for days of computing, not for more memory.
        let (code, err) = sde_check(&[entry.name, "--paths", "3000000", "--print-config", "-q"]);
        if err.contains("is not an option") {
            continue;
        }
        assert_eq!(code, 2, "{}: 3e6 paths accepted without --yes", entry.name);
        if err.contains("--yes") {
            assert!(err.contains("estimated"), "{err}");
            assert!(err.contains("paths"), "{err}");
            let (code, err) = sde_check(&[
                entry.name,
                "--paths",
                "3000000",
                "--print-config",
                "--yes",
                "-q",
            ]);
            assert!(
                code == 0 || (code == 2 && err.contains("memory")),
                "{}: --yes: {err}",
                entry.name
            );
            soft += usize::from(code == 0);
        } else {
            assert!(err.contains("memory"), "{}: {err}", entry.name);
        }
    }
    println!("studies where --yes passed the time limit: {soft}");
    assert!(soft >= 1);
}

// ---------------------------------------------------------------------------------------------
// Fuzzing: random TOML mutations of every shipped configuration.

/// SplitMix64: a tiny deterministic generator (the fuzz cases are reproducible from the seed).
struct Mix(u64);
impl Mix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<T: Clone>(&mut self, v: &[T]) -> T {
        v[self.below(v.len())].clone()
    }
}

fn random_value(r: &mut Mix, like: &Value) -> Value {
    let ints = [
        0i64,
        1,
        2,
        3,
        -1,
        -3,
        64,
        1000,
        1 << 31,
        (1 << 32) + 1,
        1 << 40,
        1 << 53,
        1 << 62,
        i64::MAX,
        i64::MIN,
    ];
    let floats = [
        0.0,
        -0.0,
        1e-300,
        5e-324,
        1e300,
        f64::MAX,
        f64::NAN,
        f64::INFINITY,
        f64::NEG_INFINITY,
        -1.0,
        0.5,
        1.0,
        2.0,
        1e6,
    ];
    match r.below(10) {
        // Mostly the same type (reaching validation), sometimes any type.
        0..=6 => match like {
            Value::Integer(i) => match r.below(3) {
                0 => Value::Integer(r.pick(&ints)),
                1 => Value::Integer(i.saturating_mul(1 << r.below(40))),
                _ => Value::Integer(*i ^ (1 << r.below(62))),
            },
            Value::Float(f) => match r.below(3) {
                0 => Value::Float(r.pick(&floats)),
                1 => Value::Float(f * 10f64.powi(r.below(600) as i32 - 300)),
                _ => Value::Float(-f),
            },
            Value::String(_) => Value::String(
                r.pick(&[
                    "",
                    "sgd",
                    "sam",
                    "usam",
                    "dnsam",
                    "own_sde",
                    "quadratic",
                    "wishart",
                    "paper",
                    "quick",
                    "x",
                    "NaN",
                    "1e400",
                ])
                .to_string(),
            ),
            Value::Boolean(b) => Value::Boolean(!b),
            Value::Array(a) => match r.below(3) {
                0 => Value::Array(vec![]),
                1 => Value::Array(a.iter().take(1).cloned().collect()),
                _ => Value::Array(a.iter().chain(a.iter()).cloned().collect()),
            },
            other => other.clone(),
        },
        7 => Value::Integer(r.pick(&ints)),
        8 => Value::Float(r.pick(&floats)),
        _ => Value::String("?".into()),
    }
}

/// Every node path (tables and arrays too), for mutation and deletion.
fn nodes(v: &Value, at: &str, out: &mut Vec<(String, Value)>) {
    if !at.is_empty() {
        out.push((at.to_string(), v.clone()));
    }
    match v {
        Value::Table(t) => {
            for (k, x) in t {
                let p = if at.is_empty() {
                    k.clone()
                } else {
                    format!("{at}.{k}")
                };
                nodes(x, &p, out);
            }
        }
        Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                nodes(x, &format!("{at}[{i}]"), out);
            }
        }
        _ => {}
    }
}

/// One mutant: 1–3 random edits (replace a value, delete a key, add an unknown key).
fn fuzz_mutant(r: &mut Mix, root: &Value) -> String {
    let mut doc = root.clone();
    for _ in 0..1 + r.below(3) {
        let mut all = Vec::new();
        nodes(&doc, "", &mut all);
        if all.is_empty() {
            break;
        }
        let (path, v) = all[r.below(all.len())].clone();
        match r.below(12) {
            0 => {
                // Delete a table key (array elements are replaced instead).
                if !path.ends_with(']') {
                    let (parent, key) = match path.rsplit_once('.') {
                        Some((p, k)) => (Some(p.to_string()), k.to_string()),
                        None => (None, path.clone()),
                    };
                    let t = match parent {
                        Some(p) => leaf_mut(&mut doc, &p),
                        None => &mut doc,
                    };
                    if let Some(t) = t.as_table_mut() {
                        t.remove(&key);
                    }
                }
            }
            1 => {
                if let Some(t) = doc.as_table_mut() {
                    t.insert("unknown_key".into(), Value::Integer(1));
                }
            }
            _ => *leaf_mut(&mut doc, &path) = random_value(r, &v),
        }
    }
    toml::to_string(&doc).unwrap_or_default()
}

/// Runs `n` mutants of every shipped configuration through the library's parse/validate path
/// (what `--print-config` does), with the command line's limits on two threads except that the
/// time limit is 10 min instead of 2 h (validation builds the landscape: a mutant whose run fits
/// in 2 h may spend most of it building a huge one, which is a long computation, not a hang).
/// A panic is caught and counted; an abort or a signal ends the test process (so it fails); a
/// mutant that takes more than 300 s ends it too (a hang, or an estimate off by a factor > 5).
fn fuzz_library(n: usize, seed: u64) -> (usize, usize, usize, Vec<String>) {
    let (mut ok, mut refused, mut total) = (0, 0, 0);
    let mut panics = Vec::new();
    let current = std::sync::Arc::new(std::sync::Mutex::new((Instant::now(), String::new())));
    let watch = current.clone();
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let done_w = done.clone();
    let watchdog = std::thread::spawn(move || {
        while !done_w.load(std::sync::atomic::Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(200));
            let g = watch.lock().unwrap();
            if g.0.elapsed() > Duration::from_secs(300) {
                eprintln!("fuzz: a mutant took more than 300 s (hang):\n{}", g.1);
                std::process::exit(3);
            }
        }
    });
    let mut r = Mix(seed);
    for entry in registry::studies() {
        for e in entry.experiments {
            let root = Value::Table(e.text.parse().unwrap());
            for _ in 0..n {
                let text = fuzz_mutant(&mut r, &root);
                *current.lock().unwrap() = (Instant::now(), format!("{}:\n{text}", e.path));
                if std::env::var_os("SAMSDE_FUZZ_TRACE").is_some() {
                    eprintln!("--- {}\n{text}", e.path);
                }
                total += 1;
                let res = std::panic::catch_unwind(|| {
                    let limits = registry::Limits {
                        threads: 2,
                        max_seconds: Some(600.0),
                        ..Default::default()
                    };
                    (entry.prepare_limited)(&text, &Overrides::default(), &limits)
                        .map(|p| p.total_work())
                });
                match res {
                    Ok(Ok(_)) => ok += 1,
                    Ok(Err(_)) => refused += 1,
                    Err(_) => panics.push(format!("{}:\n{text}", e.path)),
                }
            }
        }
    }
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    watchdog.join().unwrap();
    (total, ok, refused, panics)
}

#[test]
fn fuzz_every_shipped_configuration_briefly() {
    let t0 = Instant::now();
    let (total, ok, refused, panics) = fuzz_library(250, 2026);
    println!(
        "fuzz (library): {total} mutants, {ok} accepted, {refused} refused, {} panics, {:.1} s",
        panics.len(),
        t0.elapsed().as_secs_f64()
    );
    assert!(panics.is_empty(), "panics:\n{}", panics.join("\n---\n"));
    // A few through the binary (`--print-config`): exit 0 or 2, never a signal, panic (101) or hang.
    let mut r = Mix(7);
    let dir = tempfile::tempdir().unwrap();
    let mut n = 0;
    for entry in registry::studies() {
        let root = Value::Table(entry.default.text.parse().unwrap());
        for i in 0..4 {
            let cfg = dir.path().join(format!("{}-{i}.toml", entry.name));
            std::fs::write(&cfg, fuzz_mutant(&mut r, &root)).unwrap();
            let (code, err) = sde_check(&[entry.name, cfg.to_str().unwrap(), "--print-config"]);
            assert!(
                code == 0 || code == 2,
                "{}: exit {code}: {err}",
                cfg.display()
            );
            n += 1;
        }
    }
    println!("fuzz (command line): {n} mutants, exit 0 or 2 each");
}

/// The longer fuzz run: `cargo test --release --test bad_input -- --ignored --nocapture`
/// (`SAMSDE_FUZZ_N` mutants per shipped configuration, default 2000; `SAMSDE_FUZZ_SEED`).
#[test]
#[ignore]
fn fuzz_every_shipped_configuration_long() {
    let n = std::env::var("SAMSDE_FUZZ_N")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2000);
    let seed = std::env::var("SAMSDE_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    let t0 = Instant::now();
    let (total, ok, refused, panics) = fuzz_library(n, seed);
    println!(
        "fuzz (library, long): {total} mutants, {ok} accepted, {refused} refused, {} panics, {:.1} s",
        panics.len(),
        t0.elapsed().as_secs_f64()
    );
    assert!(panics.is_empty(), "panics:\n{}", panics.join("\n---\n"));
}
