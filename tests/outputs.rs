//! Every registered study, run at a small size through the library, writes result files a
//! script can rely on:
//!
//! * exactly one JSON report with the shared header (`study`, `samsde_version`, `config`, `seed`,
//!   `threads`, `elapsed_s`, `warnings`), a `verdicts` list in the one vocabulary (`pass`,
//!   `fail`, `inconclusive`) and an `observations` list;
//! * CSV files that are each one tidy table (one header, the same number of fields on every
//!   row), read with a strict reader;
//! * (ignored by default, see `every_default_study_repeats_from_its_json`) a report that repeats
//!   its run: the JSON fed back as the configuration (no overrides, one thread instead of two)
//!   gives the same report, apart from `elapsed_s`, `threads` and a `cost` section (wall times).
//!
//! The loop is over `registry::studies()`, so a study registered later is covered without
//! touching this file. Sizes: `--paths 16`, `--seeds 2`, `--profile quick`, whichever of them
//! the study accepts (see `small_overrides`). The statistics at these sizes are meaningless;
//! only the shape of the files is checked here (each study's own tests check its numbers).
//!
//! Run: `cargo test --release --test outputs` (about 35 s of CPU with 8 studies; measured 52 s
//! wall on the loaded 2-core machine), and with `-- --ignored` the repeat check as well.

mod common;

use std::path::Path;
use std::time::Instant;

use samsde::registry::{self, Overrides, Prepared, StudyEntry};

/// The small-size overrides the study accepts: the largest subset of
/// {`--paths 16`, `--seeds 2`, `--profile quick`} that validates, tried from all three down.
fn small_overrides(entry: &StudyEntry) -> (Overrides, Box<dyn Prepared>) {
    let mut last_err = String::new();
    // Subsets by decreasing size: bit 0 paths, bit 1 seeds, bit 2 profile.
    let mut masks: Vec<u32> = (0..8).collect();
    masks.sort_by_key(|m| std::cmp::Reverse(m.count_ones()));
    for mask in masks {
        let o = Overrides {
            paths: (mask & 1 != 0).then_some(16),
            seeds: (mask & 2 != 0).then_some(2),
            profile: (mask & 4 != 0).then(|| "quick".to_string()),
            ..Default::default()
        };
        match (entry.prepare)(entry.default.text, &o) {
            Ok(p) => return (o, p),
            Err(e) => last_err = e.to_string(),
        }
    }
    panic!(
        "{}: the default configuration does not validate: {last_err}",
        entry.name
    )
}

/// The report without the fields that may differ between two runs of the same configuration:
/// the header's `elapsed_s` and `threads`, and a study's `cost` section (measured wall times).
fn comparable(mut v: serde_json::Value) -> serde_json::Value {
    let o = v.as_object_mut().expect("a report is a JSON object");
    for k in ["elapsed_s", "threads", "cost"] {
        o.remove(k);
    }
    v
}

/// The path of the first difference between two JSON values, with both values.
fn first_difference(a: &serde_json::Value, b: &serde_json::Value, at: &str) -> Option<String> {
    use serde_json::Value;
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            for (k, va) in x {
                match y.get(k) {
                    Some(vb) => {
                        if let Some(d) = first_difference(va, vb, &format!("{at}.{k}")) {
                            return Some(d);
                        }
                    }
                    None => return Some(format!("{at}.{k} (missing in the second)")),
                }
            }
            y.keys()
                .find(|k| !x.contains_key(*k))
                .map(|k| format!("{at}.{k} (missing in the first)"))
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => x
            .iter()
            .zip(y)
            .enumerate()
            .find_map(|(i, (va, vb))| first_difference(va, vb, &format!("{at}[{i}]"))),
        _ => (a != b).then(|| format!("{at}: {a} vs {b}")),
    }
}

/// Runs `f` on a rayon pool of `n` threads (as the command line does).
fn on_threads<T: Send>(n: usize, f: impl FnOnce() -> T + Send) -> T {
    rayon::ThreadPoolBuilder::new()
        .num_threads(n)
        .build()
        .unwrap()
        .install(f)
}

fn files_with(dir: &Path, ext: &str) -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == ext))
        .collect();
    v.sort();
    v
}

#[test]
fn every_default_study_writes_one_schema_and_tidy_tables() {
    let root = common::tempdir();
    let studies = registry::studies();
    assert!(!studies.is_empty());
    for entry in studies {
        let t0 = Instant::now();
        let (overrides, prepared) = small_overrides(entry);
        let finished = on_threads(2, || prepared.run(2, None))
            .unwrap_or_else(|e| panic!("{}: run failed: {e}", entry.name));
        let out = root.path().join(entry.name);
        let written = finished
            .write(&out)
            .unwrap_or_else(|e| panic!("{}: write failed: {e}", entry.name));
        assert!(!written.is_empty(), "{}: no files", entry.name);
        for e in std::fs::read_dir(&out).unwrap() {
            let name = e.unwrap().file_name().into_string().unwrap();
            assert!(!name.starts_with('.'), "{}: leftover {name}", entry.name);
        }

        // One JSON, the study's own, with the shared contract.
        let jsons = files_with(&out, "json");
        assert_eq!(jsons.len(), 1, "{}: JSON files {jsons:?}", entry.name);
        let v = common::read_json(&jsons[0]);
        common::check_report_contract(&v, entry.name);
        assert_eq!(v["study"], entry.name);
        assert_eq!(v["samsde_version"], env!("CARGO_PKG_VERSION"));
        assert_eq!(v["threads"], 2);
        let in_memory: serde_json::Value =
            serde_json::from_slice(&finished.json().unwrap()).unwrap();
        assert_eq!(in_memory, v, "{}: written JSON differs", entry.name);
        assert_eq!(
            v["verdicts"].as_array().unwrap().len(),
            finished.verdicts().len()
        );

        // Every CSV one strict table.
        let csvs = files_with(&out, "csv");
        assert!(!csvs.is_empty(), "{}: no CSV", entry.name);
        let mut rows = Vec::new();
        for p in &csvs {
            let (_, r) = common::read_csv_strict(p);
            rows.push(format!(
                "{} ({} rows)",
                p.file_name().unwrap().to_string_lossy(),
                r.len()
            ));
        }

        eprintln!(
            "{}: {overrides:?}, {:.1} s; {}",
            entry.name,
            t0.elapsed().as_secs_f64(),
            rows.join(", ")
        );
    }
}

/// Every registered study repeats its run from its own JSON (on one thread instead of two).
/// About twice the time of the test above, hence ignored by default; run with
/// `cargo test --release --test outputs -- --ignored` (≈ 60 s of CPU with 8 studies). The
/// convergence case also runs by default through the binary in `tests/cli.rs`.
#[test]
#[ignore]
fn every_default_study_repeats_from_its_json() {
    let root = common::tempdir();
    for entry in registry::studies() {
        let (_, prepared) = small_overrides(entry);
        let finished = on_threads(2, || prepared.run(2, None))
            .unwrap_or_else(|e| panic!("{}: run failed: {e}", entry.name));
        let out = root.path().join(entry.name);
        finished.write(&out).unwrap();
        let jsons = files_with(&out, "json");
        let v = common::read_json(&jsons[0]);
        // The JSON repeats the run: same report on one thread.
        let text = std::fs::read_to_string(&jsons[0]).unwrap();
        let again = (entry.prepare)(&text, &Overrides::default())
            .unwrap_or_else(|e| panic!("{}: own JSON refused: {e}", entry.name));
        let again = on_threads(1, || again.run(1, None)).unwrap();
        let v2: serde_json::Value = serde_json::from_slice(&again.json().unwrap()).unwrap();
        assert_eq!(v2["threads"], 1);
        if let Some(d) = first_difference(&comparable(v.clone()), &comparable(v2), "") {
            panic!(
                "{}: the run repeated from its JSON differs at {d}",
                entry.name
            );
        }
    }
}

#[test]
fn strict_csv_reader_refuses_what_pandas_cannot_load_in_one_call() {
    let dir = common::tempdir();
    let ok = common::write_file(dir.path(), "ok.csv", "a,b\n1,\"x, \"\"y\"\"\"\n2,\n");
    let (h, rows) = common::read_csv_strict(&ok);
    assert_eq!(h, ["a", "b"]);
    assert_eq!(rows, [vec!["1", "x, \"y\""], vec!["2", ""]]);
    for (name, text) in [
        ("stacked.csv", "a,b\n1,2\n\nc,d,e\n3,4,5\n"),
        ("ragged.csv", "a,b\n1,2,3\n"),
        ("twice.csv", "a,b\n1,2\na,b\n"),
        ("quote.csv", "a,b\n1,x\"y\n"),
        ("dup.csv", "a,a\n1,2\n"),
    ] {
        let p = common::write_file(dir.path(), name, text);
        assert!(common::check_csv(&p).is_err(), "{name} was accepted");
    }
}

/// Generated titles follow the parameters; a custom `title` wins.
#[test]
fn titles_come_from_the_config() {
    use samsde::study::convergence::ConvergenceConfig;
    use samsde::study::flatness::FlatnessConfig;
    let text = samsde::study::convergence::DEFAULT_CONFIG
        .replace("dim = 20", "dim = 7")
        .replace("sigma = 0.5", "sigma = 0.25");
    let mut c: ConvergenceConfig = toml::from_str(&text).unwrap();
    let t = c.display_title();
    assert!(t.contains("d = 7") && t.contains("σ = 0.25"), "{t}");
    assert!(!t.contains("d = 20") && !t.contains("σ = 0.5"), "{t}");
    c.title = "mine".into();
    assert_eq!(c.display_title(), "mine");

    let text = samsde::study::flatness::DEFAULT_CONFIG.replace("sigma = 7.5", "sigma = 6.5");
    let f: FlatnessConfig = toml::from_str(&text).unwrap();
    assert!(
        f.display_title().contains("σ = 6.5"),
        "{}",
        f.display_title()
    );
}

/// The shipped experiments carry no `title` (a hard-coded one repeats parameters and goes stale
/// when a user edits them): every study's generated title changes with the parameter it shows,
/// and a custom `title` still wins.
#[test]
fn generated_titles_follow_every_study_parameter() {
    use samsde::study::convergence::ConvergenceConfig;
    use samsde::study::flatness::FlatnessConfig;
    use samsde::study::kinks::KinksConfig;
    use samsde::study::msharpness::MSharpnessConfig;
    use samsde::study::sam_rate::SamRateConfig;

    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("experiments");
    for entry in std::fs::read_dir(&root).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        let table: toml::Table = toml::from_str(&text).unwrap();
        assert!(
            !table.contains_key("title"),
            "{} hard-codes a title",
            path.display()
        );
    }
    let shipped = |name: &str| std::fs::read_to_string(root.join(name)).unwrap();

    // `(what, title of the shipped file, title after the edit, expected in the edited title,
    // title with a custom `title`)`.
    fn check(what: &str, before: String, after: String, expect: &[&str], custom: String) {
        assert_ne!(before, after, "{what}: the title did not change");
        for e in expect {
            assert!(after.contains(e), "{what}: {e:?} not in {after:?}");
            assert!(!before.contains(e), "{what}: {e:?} already in {before:?}");
        }
        assert_eq!(custom, "mine", "{what}: a custom title must win");
    }
    fn with_title(text: &str) -> String {
        format!("title = \"mine\"\n{text}")
    }

    // The second-order convergence experiments: dimension, noise and ρ schedule; what is
    // compared (first- vs second-order SDEs) comes from the models.
    let text = shipped("convergence_second_order.toml");
    let c = |t: &str| {
        toml::from_str::<ConvergenceConfig>(t)
            .unwrap()
            .display_title()
    };
    let before = c(&text);
    for e in ["First- vs second-order SDEs", "d = 20", "σ = 0.5"] {
        assert!(before.contains(e), "{e:?} not in {before:?}");
    }
    let edited = text
        .replace("dim = 20", "dim = 7")
        .replace("sigma = 0.5", "sigma = 0.25");
    check(
        "convergence_second_order",
        before,
        c(&edited),
        &["d = 7", "σ = 0.25"],
        c(&with_title(&text)),
    );
    let fixed = c(&shipped("convergence_second_order_fixed_rho.toml"));
    assert!(fixed.contains("ρ = 0.3 fixed"), "{fixed}");
    let mc = c(&shipped("convergence_least_squares_mc.toml"));
    assert!(
        mc.contains("N = 32") && mc.contains("B = 4") && mc.contains("m = 2"),
        "{mc}"
    );

    // Flatness with the second-order models.
    let text = shipped("flatness_second_order.toml");
    let f = |t: &str| toml::from_str::<FlatnessConfig>(t).unwrap().display_title();
    let before = f(&text);
    check(
        "flatness_second_order",
        before,
        f(&text.replace("sigma = 7.5", "sigma = 6.5")),
        &["σ = 6.5"],
        f(&with_title(&text)),
    );

    // sam-rate: the data, batch, ridge and η of its three parts.
    let text = shipped("sam_rate.toml");
    let sr = |t: &str| toml::from_str::<SamRateConfig>(t).unwrap().display_title();
    let edited = text
        .replace("ridge = 0.1 ", "ridge = 0.25 ")
        .replace("eta = 0.5", "eta = 0.4")
        .replace(
            "n_samples = 100, dim = 10, label_noise = 0.1, data_seed = 7",
            "n_samples = 60, dim = 10, label_noise = 0.1, data_seed = 7",
        );
    check(
        "sam_rate",
        sr(&text),
        sr(&edited),
        &["λ = 0.25", "η = 0.4", "n = 60"],
        sr(&with_title(&text)),
    );

    // kinks: width, η_max and SAM's ρ.
    let text = shipped("kinks.toml");
    let k = |t: &str| toml::from_str::<KinksConfig>(t).unwrap().display_title();
    let edited = text
        .replace("hidden = 100", "hidden = 40")
        .replace("lr_max = 5e-5", "lr_max = 2e-5")
        .replacen("rho = 0.3", "rho = 0.2", 1);
    check(
        "kinks",
        k(&text),
        k(&edited),
        &["m = 40", "η_max = 2e-5", "sam ρ = 0.2"],
        k(&with_title(&text)),
    );

    // msharpness: the least-squares problem.
    let text = shipped("msharpness_least_squares.toml");
    let m = |t: &str| {
        toml::from_str::<MSharpnessConfig>(t)
            .unwrap()
            .display_title()
    };
    check(
        "msharpness",
        m(&text),
        m(&text.replace("n_samples = 32", "n_samples = 48")),
        &["N = 48"],
        m(&with_title(&text)),
    );
}
