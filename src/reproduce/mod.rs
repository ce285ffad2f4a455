//! `sde-check reproduce`: every study of the registry, one claims report.
//!
//! **What runs.** Each study declares its part in one place, its registry entry
//! ([`crate::registry::StudyDef::REPRODUCE`], default: its default experiment; `rho-sweep` lists
//! its three problems). `--profile quick|paper` is passed on to the studies that declare the
//! profile ([`crate::registry::StudyDef::PROFILES`]); the others run their shipped configuration
//! and the report says so. Every configuration is validated before anything runs.
//!
//! **Where it goes.** `DIR/<study>/…` (or `DIR/<study>/<experiment>/…` for a study with several)
//! holds each study's normal result files, written all-or-nothing by the study itself, as soon
//! as the study finishes. Then `DIR/report.md`, `DIR/report.html` (self-contained: figures are
//! embedded as base64 PNG, so it opens from disk and can be mailed) and `DIR/summary.json` are
//! written together, also all-or-nothing. The report is built from the result JSON files on
//! disk — the same path for a study that just ran and one that `--resume` skipped — so it always
//! shows exactly what the files say.
//!
//! **Interrupts.** A Ctrl-C/SIGTERM (the binary's handler, [`crate::output::interrupted`])
//! leaves the studies finished so far intact and no partial file. `--resume` skips a study whose
//! result file records the *same validated configuration* (compared as JSON) and the same
//! `samsde_version`; anything else runs again.
//!
//! **Exit status.** 0 iff every claim of every study passes; 1 if one fails or is inconclusive;
//! 2 on bad input or a study that stopped with an error (its error is in the report).

mod report;

use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::registry::{self, Experiment, Overrides, Prepared, StudyEntry};
use crate::study::verdict::{Decision, Observation, Verdict};

/// Long help of the subcommand.
pub const LONG_ABOUT: &str = "Run every study and write one claims report.\n\n\
Each study runs the experiments it declares for the report (rho-sweep: its three problems) and \
writes its normal files to OUT/<study>/. Then OUT/report.md, OUT/report.html (self-contained, \
figures embedded; opens from disk) and OUT/summary.json list every claim: the paper and section \
it comes from, what was measured with its confidence interval, the verdict and why.\n\n\
--profile quick (default; minutes on two cores) or paper (the papers' sizes for the studies \
that have a paper profile; the others run their shipped configuration). --resume skips studies \
whose result file in OUT records the same configuration and samsde version, so an interrupted \
run continues where it stopped (Ctrl-C leaves finished studies intact and no partial file). \
--config STUDY=FILE runs your own configuration of a study instead of its shipped ones.\n\n\
Exit codes: 0 every claim passes; 1 a claim failed or is inconclusive; 2 bad input or a study \
stopped with an error.";

/// What `sde-check reproduce` was asked to do.
#[derive(Debug, Clone)]
pub struct Options {
    /// `quick` or `paper`.
    pub profile: String,
    /// Output folder.
    pub out: PathBuf,
    /// Only these studies (empty: all).
    pub only: Vec<String>,
    /// Skip studies whose results match.
    pub resume: bool,
    /// `--config STUDY=FILE`: run this configuration for the study instead of its shipped
    /// ones (a user's own sizes, or a tiny run in tests).
    pub configs: Vec<String>,
}

/// `--config STUDY=FILE` → `(entry, experiment)`, the file read (and kept for the process).
fn own_configs(opts: &Options) -> Result<Vec<(&'static StudyEntry, Experiment)>> {
    let mut out: Vec<(&'static StudyEntry, Experiment)> = Vec::new();
    for spec in &opts.configs {
        let (name, file) = spec.split_once('=').ok_or_else(|| {
            Error::config(
                "--config",
                spec,
                "must be STUDY=FILE, e.g. saddle=my_saddle.toml",
            )
        })?;
        let entry = registry::find(name).ok_or_else(|| {
            Error::config(
                "--config",
                spec,
                format!("`{name}` is not a study (`sde-check list` shows them)"),
            )
        })?;
        if out.iter().any(|(e, _)| e.name == entry.name) {
            return Err(Error::config(
                "--config",
                spec,
                "gives a second configuration for the same study",
            ));
        }
        let text = std::fs::read_to_string(file)
            .map_err(|e| Error::config("--config", spec, format!("cannot read {file}: {e}")))?;
        // Leaked once per file for the life of the process, like the embedded experiments.
        let experiment = Experiment {
            path: Box::leak(file.to_string().into_boxed_str()),
            text: Box::leak(text.into_boxed_str()),
        };
        out.push((entry, experiment));
    }
    Ok(out)
}

/// The profiles `reproduce` knows.
pub const PROFILES: [&str; 2] = ["quick", "paper"];

/// One run of the report: a study with one of its experiments.
pub struct Unit {
    /// `convergence`, or `rho-sweep/classifier` for a study with several experiments.
    pub id: String,
    /// The study.
    pub study: &'static StudyEntry,
    /// The experiment.
    pub experiment: Experiment,
    /// What the profile did for this study.
    pub profile_note: String,
    /// The validated study.
    pub prepared: Box<dyn Prepared>,
    /// Work units (for the progress bar).
    pub work: u64,
}

impl Unit {
    /// The unit's folder under `out`.
    pub fn dir(&self, out: &Path) -> PathBuf {
        out.join(&self.id)
    }
}

/// `rho_sweep_classifier.toml` of `rho-sweep` → `classifier`.
fn experiment_id(study: &str, path: &str) -> String {
    let stem = Path::new(path)
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or(path);
    let prefix = format!("{}_", study.replace('-', "_"));
    stem.strip_prefix(&prefix).unwrap_or(stem).to_string()
}

/// Validates the options and every configuration; nothing runs yet.
pub fn plan(opts: &Options) -> Result<Vec<Unit>> {
    if !PROFILES.contains(&opts.profile.as_str()) {
        return Err(Error::config(
            "--profile",
            &opts.profile,
            "must be quick or paper",
        ));
    }
    let all = registry::studies();
    for name in &opts.only {
        if registry::find(name).is_none() {
            let names: Vec<&str> = all.iter().map(|s| s.name).collect();
            return Err(Error::config(
                "--only",
                name,
                format!("is not a study; the studies are {}", names.join(", ")),
            ));
        }
    }
    let own = own_configs(opts)?;
    let mut units = Vec::new();
    for entry in all {
        if !opts.only.is_empty() && !opts.only.iter().any(|n| n == entry.name) {
            continue;
        }
        let experiments = match own.iter().find(|(e, _)| e.name == entry.name) {
            Some((_, x)) => vec![*x],
            None => entry.reproduce_experiments(),
        };
        let several = experiments.len() > 1;
        let has_profile = entry.profiles.contains(&opts.profile.as_str());
        for experiment in experiments {
            let id = if several {
                format!(
                    "{}/{}",
                    entry.name,
                    experiment_id(entry.name, experiment.path)
                )
            } else {
                entry.name.to_string()
            };
            let overrides = Overrides {
                profile: has_profile.then(|| opts.profile.clone()),
                ..Overrides::default()
            };
            let prepared = (entry.prepare)(experiment.text, &overrides)
                .map_err(|e| Error::Unsupported(format!("{id} ({}): {e}", experiment.path)))?;
            let own_config = own.iter().any(|(e, _)| e.name == entry.name);
            let profile_note = if own_config {
                let p = if has_profile {
                    format!(", profile {}", opts.profile)
                } else {
                    String::new()
                };
                format!(
                    "the configuration given by --config ({}{p})",
                    experiment.path
                )
            } else if has_profile {
                format!("profile {}", opts.profile)
            } else if opts.profile == "quick" {
                "its shipped configuration (the study has no profiles)".to_string()
            } else {
                format!(
                    "its shipped configuration (the study has no {} profile)",
                    opts.profile
                )
            };
            units.push(Unit {
                id,
                study: entry,
                experiment,
                profile_note,
                work: prepared.total_work(),
                prepared,
            });
        }
    }
    Ok(units)
}

/// Progress of a reproduce run, for the command line's bar.
#[derive(Debug)]
pub enum Event<'a> {
    /// Unit `index` of `of` starts.
    Start {
        /// Position.
        index: usize,
        /// Number of units.
        of: usize,
        /// Its id.
        unit: &'a str,
    },
    /// Work units done in the current unit.
    Work(u64),
    /// A unit finished (ran, was skipped, or stopped with an error).
    Finished {
        /// Its id.
        unit: &'a str,
        /// One line: verdict counts or what happened.
        line: String,
        /// Work units of a skipped unit (to advance the bar).
        skipped_work: u64,
    },
}

/// What happened to a unit.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "snake_case", tag = "status")]
pub enum Status {
    /// It ran in this invocation.
    Ran {
        /// Wall seconds.
        seconds: f64,
    },
    /// `--resume` found matching results and kept them.
    Resumed,
    /// It stopped with an error (no results).
    Error {
        /// The error.
        error: String,
    },
}

/// One unit's part of the report, read back from its result file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UnitReport {
    /// `convergence`, `rho-sweep/classifier`, …
    pub id: String,
    /// Study name.
    pub study: String,
    /// One line about the study.
    pub about: String,
    /// The experiment file it ran.
    pub experiment: String,
    /// The experiment's one-sentence summary.
    pub experiment_summary: String,
    /// What the profile did.
    pub profile_note: String,
    /// Ran, resumed, error.
    #[serde(flatten)]
    pub status: Status,
    /// Result files, relative to the report's folder.
    pub files: Vec<String>,
    /// Figures (PNG), relative to the report's folder.
    pub figures: Vec<String>,
    /// The study's note for the report (Markdown; empty: none).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub note: String,
    /// The result file's warnings.
    pub warnings: Vec<String>,
    /// Its recorded computation time, seconds.
    pub elapsed_s: Option<f64>,
    /// Verdicts.
    pub verdicts: Vec<Verdict>,
    /// Observations.
    pub observations: Vec<Observation>,
}

impl UnitReport {
    /// `(pass, fail, inconclusive)`.
    pub fn counts(&self) -> (usize, usize, usize) {
        counts(&self.verdicts)
    }
}

fn counts(v: &[Verdict]) -> (usize, usize, usize) {
    let c = |d: Decision| v.iter().filter(|x| x.verdict == d).count();
    (
        c(Decision::Pass),
        c(Decision::Fail),
        c(Decision::Inconclusive),
    )
}

/// `summary.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Summary {
    /// Crate version.
    pub samsde_version: String,
    /// Profile.
    pub profile: String,
    /// Worker threads.
    pub threads: usize,
    /// Wall seconds of this invocation.
    pub elapsed_s: f64,
    /// CPU seconds (user + system, all threads) of this invocation, where the platform says.
    pub cpu_s: Option<f64>,
    /// Claims that pass / fail / are inconclusive, over all studies.
    pub pass: usize,
    /// Failing claims.
    pub fail: usize,
    /// Inconclusive claims.
    pub inconclusive: usize,
    /// Studies that stopped with an error.
    pub errors: usize,
    /// `true` iff every claim passes and no study stopped.
    pub all_pass: bool,
    /// Per unit.
    pub units: Vec<UnitReport>,
    /// The printed summary (not in the JSON).
    #[serde(skip)]
    pub text: String,
}

/// The result JSON of `study` in `dir`: the `*.json` whose top-level `study` is its name.
fn result_json(dir: &Path, study: &str) -> Option<(PathBuf, serde_json::Value)> {
    let mut names: Vec<PathBuf> = std::fs::read_dir(dir)
        .ok()?
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.extension().is_some_and(|e| e == "json")
                && !p
                    .file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with('.'))
        })
        .collect();
    names.sort();
    names.into_iter().find_map(|p| {
        let text = std::fs::read_to_string(&p).ok()?;
        let v: serde_json::Value = serde_json::from_str(&text).ok()?;
        (v.get("study").and_then(|s| s.as_str()) == Some(study)).then_some((p, v))
    })
}

/// `Some(result)` when `dir` holds results of exactly this configuration and version.
fn matching_result(unit: &Unit, dir: &Path) -> Result<Option<serde_json::Value>> {
    let Some((_, v)) = result_json(dir, unit.study.name) else {
        return Ok(None);
    };
    let same_version =
        v.get("samsde_version").and_then(|s| s.as_str()) == Some(env!("CARGO_PKG_VERSION"));
    let same_config = v.get("config") == Some(&unit.prepared.config_json()?);
    Ok((same_version && same_config).then_some(v))
}

/// Files (and PNG figures) in `dir`, relative to `out`, sorted.
fn files_of(dir: &Path, out: &Path) -> (Vec<String>, Vec<String>) {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.path())
                .filter(|p| {
                    p.is_file()
                        && !p
                            .file_name()
                            .and_then(|n| n.to_str())
                            .is_some_and(|n| n.starts_with('.'))
                })
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    let rel = |p: &PathBuf| {
        p.strip_prefix(out)
            .unwrap_or(p)
            .to_string_lossy()
            .replace('\\', "/")
    };
    let figures = files
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "png"))
        .map(rel)
        .collect();
    (files.iter().map(rel).collect(), figures)
}

fn unit_report(
    unit: &Unit,
    out: &Path,
    status: Status,
    v: Option<&serde_json::Value>,
) -> UnitReport {
    let dir = unit.dir(out);
    let (files, figures) = if matches!(status, Status::Error { .. }) {
        (Vec::new(), Vec::new())
    } else {
        files_of(&dir, out)
    };
    let field = |k: &str| v.and_then(|v| v.get(k)).cloned();
    UnitReport {
        id: unit.id.clone(),
        study: unit.study.name.to_string(),
        about: unit.study.about.to_string(),
        experiment: unit.experiment.path.to_string(),
        experiment_summary: unit.experiment.summary(),
        profile_note: unit.profile_note.clone(),
        note: unit.study.report_note.to_string(),
        status,
        files,
        figures,
        warnings: field("warnings")
            .and_then(|w| serde_json::from_value(w).ok())
            .unwrap_or_default(),
        elapsed_s: field("elapsed_s").and_then(|e| e.as_f64()),
        verdicts: field("verdicts")
            .and_then(|w| serde_json::from_value(w).ok())
            .unwrap_or_default(),
        observations: field("observations")
            .and_then(|w| serde_json::from_value(w).ok())
            .unwrap_or_default(),
    }
}

fn line_of(r: &UnitReport) -> String {
    let (p, f, i) = r.counts();
    let n = r.verdicts.len();
    match &r.status {
        Status::Ran { seconds } => {
            format!("{p} of {n} claims pass, {f} fail, {i} inconclusive ({seconds:.1} s)")
        }
        Status::Resumed => format!(
            "kept (results match this configuration and version): {p} of {n} claims pass, {f} fail, {i} inconclusive"
        ),
        Status::Error { error } => format!("stopped with an error: {error}"),
    }
}

/// CPU seconds used by this process so far (user + system, every thread).
#[cfg(unix)]
fn cpu_seconds() -> Option<f64> {
    // SAFETY: getrusage writes into the zeroed struct we pass; RUSAGE_SELF is always valid.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) } != 0 {
        return None;
    }
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 * 1e-6;
    Some(tv(ru.ru_utime) + tv(ru.ru_stime))
}

#[cfg(not(unix))]
fn cpu_seconds() -> Option<f64> {
    None
}

/// Runs the plan (on the current rayon pool) and writes the reports. `events` reports progress.
pub fn run(
    opts: &Options,
    plan: &[Unit],
    threads: usize,
    events: &(dyn Fn(Event) + Sync),
) -> Result<Summary> {
    let t0 = Instant::now();
    let out = &opts.out;
    let mut reports = Vec::with_capacity(plan.len());
    for (index, unit) in plan.iter().enumerate() {
        events(Event::Start {
            index,
            of: plan.len(),
            unit: &unit.id,
        });
        let dir = unit.dir(out);
        let kept = if opts.resume {
            matching_result(unit, &dir)?
        } else {
            None
        };
        let report = if let Some(v) = kept {
            let r = unit_report(unit, out, Status::Resumed, Some(&v));
            events(Event::Finished {
                unit: &unit.id,
                line: line_of(&r),
                skipped_work: unit.work,
            });
            r
        } else {
            let started = Instant::now();
            let work = |n: u64| events(Event::Work(n));
            let ran = unit
                .prepared
                .run(threads, Some(&work))
                .and_then(|f| f.write(&dir).map(|_| f));
            let r = match ran {
                Ok(finished) => {
                    let v: serde_json::Value = serde_json::from_slice(&finished.json()?)
                        .map_err(|e| Error::Unsupported(format!("{}: {e}", unit.id)))?;
                    let seconds = started.elapsed().as_secs_f64();
                    unit_report(unit, out, Status::Ran { seconds }, Some(&v))
                }
                Err(e) => unit_report(
                    unit,
                    out,
                    Status::Error {
                        error: e.to_string(),
                    },
                    None,
                ),
            };
            events(Event::Finished {
                unit: &unit.id,
                line: line_of(&r),
                skipped_work: 0,
            });
            r
        };
        reports.push(report);
    }
    let all: Vec<Verdict> = reports.iter().flat_map(|r| r.verdicts.clone()).collect();
    let (pass, fail, inconclusive) = counts(&all);
    let errors = reports
        .iter()
        .filter(|r| matches!(r.status, Status::Error { .. }))
        .count();
    let mut summary = Summary {
        samsde_version: env!("CARGO_PKG_VERSION").to_string(),
        profile: opts.profile.clone(),
        threads,
        elapsed_s: t0.elapsed().as_secs_f64(),
        cpu_s: cpu_seconds(),
        pass,
        fail,
        inconclusive,
        errors,
        all_pass: fail == 0 && inconclusive == 0 && errors == 0,
        units: reports,
        text: String::new(),
    };
    let written = report::write(&summary, out)?;
    let mut text = report::headline_text(&summary);
    for w in written {
        text.push_str(&format!("wrote {}\n", w.display()));
    }
    summary.text = text;
    if errors > 0 {
        return Err(Error::Unsupported(format!(
            "{errors} stud{} stopped with an error (see {}); the report lists the others",
            if errors == 1 { "y" } else { "ies" },
            out.join("report.md").display()
        )));
    }
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn experiment_ids() {
        assert_eq!(
            experiment_id("rho-sweep", "experiments/rho_sweep_classifier.toml"),
            "classifier"
        );
        assert_eq!(experiment_id("saddle", "experiments/other.toml"), "other");
    }

    #[test]
    fn plan_rejects_bad_input() {
        let o = |profile: &str, only: &[&str]| Options {
            profile: profile.into(),
            out: PathBuf::from("unused"),
            only: only.iter().map(|s| s.to_string()).collect(),
            resume: false,
            configs: Vec::new(),
        };
        let e = plan(&o("huge", &[])).err().unwrap().to_string();
        assert!(e.contains("--profile") && e.contains("huge"), "{e}");
        let e = plan(&o("quick", &["nope"])).err().unwrap().to_string();
        assert!(e.contains("--only") && e.contains("nope"), "{e}");
        let units = plan(&o("quick", &["rho-sweep"])).unwrap();
        let ids: Vec<&str> = units.iter().map(|u| u.id.as_str()).collect();
        assert_eq!(
            ids,
            [
                "rho-sweep/quadratic",
                "rho-sweep/classifier",
                "rho-sweep/teacher_student"
            ]
        );
        assert!(units.iter().all(|u| u.profile_note == "profile quick"));
    }
}
