//! The one place a study registers itself, so the command line (`sde-check STUDY`,
//! `sde-check list`) and the one-command report (`sde-check reproduce`) find it.
//!
//! A study implements [`StudyDef`]: its name and help, the embedded default configuration and
//! the shipped experiments, how the common command-line overrides (`--paths`, `--seeds`,
//! `--seed`, `--profile`) apply to its configuration, how it validates, runs, prints and writes.
//! The generic adapters below erase the types, and [`studies`] lists every study once.
//!
//! A configuration is read from TOML, or from a study's own result JSON (its `config` field is
//! the full validated configuration), so every result file repeats its run.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::{Error, Result};
pub use crate::study::budget::{Budget, Limits};
use crate::study::verdict::{Observation, Verdict};

/// Progress callback: called with the number of work units (path-steps) just finished.
pub type Progress<'p> = &'p (dyn Fn(u64) + Sync);

/// Command-line overrides every study understands (or rejects with a clear error).
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// `--paths N`: Monte Carlo paths (study-specific meaning; see each study's help).
    pub paths: Option<usize>,
    /// `--seeds N`: independent problems/seeds for studies that run over seeds.
    pub seeds: Option<usize>,
    /// `--seed S`: master seed.
    pub seed: Option<u64>,
    /// `--profile NAME`: a named size preset (`quick`, `paper`) for studies that have them.
    pub profile: Option<String>,
}

impl Overrides {
    /// The common case: `--paths` sets `paths`, `--seed` sets `seed`; `--seeds` and
    /// `--profile` are not options of `study`.
    pub fn paths_and_seed(&self, study: &str, paths: &mut usize, seed: &mut u64) -> Result<()> {
        if let Some(p) = self.paths {
            *paths = p;
        }
        if let Some(s) = self.seed {
            *seed = s;
        }
        self.reject_seeds_and_profile(study)
    }

    /// Errors if `--seeds` or `--profile` was given (for studies without them).
    pub fn reject_seeds_and_profile(&self, study: &str) -> Result<()> {
        if self.seeds.is_some() {
            return Err(Self::unsupported(study, "--seeds"));
        }
        if self.profile.is_some() {
            return Err(Self::unsupported(study, "--profile"));
        }
        Ok(())
    }

    /// An error for an override the study does not have.
    pub fn unsupported(study: &str, flag: &str) -> Error {
        Error::config(
            flag,
            "given",
            format!("is not an option of the {study} study"),
        )
    }
}

/// A shipped experiment configuration.
#[derive(Debug, Clone, Copy)]
pub struct Experiment {
    /// Path in the repository (`experiments/…toml`).
    pub path: &'static str,
    /// Its text (embedded at build time).
    pub text: &'static str,
}

impl Experiment {
    /// The first sentence of the file's leading comment.
    pub fn summary(&self) -> String {
        let para: Vec<&str> = self
            .text
            .lines()
            .map_while(|l| l.trim().strip_prefix('#').map(str::trim))
            .take_while(|l| !l.is_empty())
            .collect();
        let para = para.join(" ");
        match para.find(". ") {
            Some(i) => para[..=i].trim_end().to_string(),
            None => para,
        }
    }
}

/// What a study provides. Implemented once per study (in its report module) and listed in
/// [`studies`].
pub trait StudyDef: Sized + Send + Sync + 'static {
    /// Raw (deserialised) configuration.
    type Config: DeserializeOwned + Serialize + Send;
    /// The report (serialised as `<study>.json`).
    type Report: Serialize + Send + Sync + 'static;
    /// Subcommand name.
    const NAME: &'static str;
    /// One line of help.
    const ABOUT: &'static str;
    /// Long help (what the default runs, which files it writes).
    const LONG_ABOUT: &'static str;
    /// The embedded default configuration.
    const DEFAULT: Experiment;
    /// Every shipped configuration of this study (the default first).
    const EXPERIMENTS: &'static [Experiment];
    /// The experiments `sde-check reproduce` runs, in order; empty (the default) means
    /// `[DEFAULT]`. The one place a study says what its part of the claims report is.
    const REPRODUCE: &'static [Experiment] = &[];
    /// The `--profile` names the study understands (e.g. `["quick", "paper"]`); empty when it
    /// has none. `sde-check reproduce --profile P` passes `P` on to the studies that list it
    /// and runs the others' configurations as they are.
    const PROFILES: &'static [&'static str] = &[];
    /// A paragraph (Markdown) the claims report of `sde-check reproduce` prints in the study's
    /// section: what a reader must know to judge its verdicts — e.g. why a claim is known not to
    /// pass at the shipped sizes. Empty (the default): nothing.
    const REPORT_NOTE: &'static str = "";

    /// Applies the command-line overrides to a raw configuration.
    fn apply(config: &mut Self::Config, overrides: &Overrides) -> Result<()>;
    /// Validates (checking the budget against the default limits first).
    fn build(config: Self::Config) -> Result<Self>;
    /// The validated configuration, as it goes into the report.
    fn config(&self) -> &Self::Config;
    /// Work units for the progress bar.
    fn total_work(&self) -> u64;
    /// Runs the study.
    fn run(&self, threads: usize, progress: Option<Progress>) -> Result<Self::Report>;
    /// The printed table.
    fn table(report: &Self::Report) -> String;
    /// Writes JSON, CSV and figures into `dir`, atomically.
    fn write(&self, report: &Self::Report, dir: &Path) -> Result<Vec<PathBuf>>;
    /// The report's verdicts.
    fn verdicts(report: &Self::Report) -> &[Verdict];
    /// The report's observations.
    fn observations(report: &Self::Report) -> &[Observation];

    /// The run's estimated memory and work on `threads` threads, from the raw configuration,
    /// without building anything (terms from the shared helpers of [`crate::study::budget`]);
    /// an error names a size that cannot work at all (an overflowing product, a count beyond
    /// any run). [`prepare`] checks it against the [`Limits`] before [`StudyDef::build`].
    ///
    /// The default estimates nothing (an empty budget always passes): a study whose sizes come
    /// from its configuration overrides it, and `tests/bad_input.rs` fails for a registered
    /// study whose absurd sizes are not refused.
    fn budget(config: &Self::Config, threads: usize) -> Result<Budget> {
        let _ = (config, threads);
        Ok(Budget::new(Self::NAME))
    }
}

/// A validated study, ready to run.
pub trait Prepared: Send + Sync {
    /// The study's name.
    fn study(&self) -> &'static str;
    /// The validated configuration as TOML (`--print-config`).
    fn config_toml(&self) -> Result<String>;
    /// The validated configuration as JSON (what a result file records as `config`).
    fn config_json(&self) -> Result<serde_json::Value>;
    /// The estimate it was checked against.
    fn budget(&self) -> &Budget;
    /// Work units for the progress bar.
    fn total_work(&self) -> u64;
    /// Runs it.
    fn run(&self, threads: usize, progress: Option<Progress>) -> Result<Box<dyn Finished>>;
}

/// A finished run.
pub trait Finished: Send + Sync {
    /// The report as pretty JSON.
    fn json(&self) -> Result<Vec<u8>>;
    /// The printed table.
    fn table(&self) -> String;
    /// Writes every result file into `dir` atomically; returns the paths.
    fn write(&self, dir: &Path) -> Result<Vec<PathBuf>>;
    /// Verdicts.
    fn verdicts(&self) -> &[Verdict];
    /// Observations.
    fn observations(&self) -> &[Observation];
    /// `true` iff every verdict passes.
    fn all_pass(&self) -> bool {
        crate::study::verdict::all_pass(self.verdicts())
    }
}

struct PreparedStudy<S: StudyDef>(Arc<S>, Budget);
struct FinishedStudy<S: StudyDef> {
    study: Arc<S>,
    report: S::Report,
}

impl<S: StudyDef> Prepared for PreparedStudy<S> {
    fn study(&self) -> &'static str {
        S::NAME
    }
    fn config_toml(&self) -> Result<String> {
        toml::to_string_pretty(self.0.config())
            .map_err(|e| Error::Unsupported(format!("cannot print the configuration: {e}")))
    }
    fn config_json(&self) -> Result<serde_json::Value> {
        serde_json::to_value(self.0.config())
            .map_err(|e| Error::Unsupported(format!("cannot serialise the configuration: {e}")))
    }
    fn budget(&self) -> &Budget {
        &self.1
    }
    fn total_work(&self) -> u64 {
        self.0.total_work()
    }
    fn run(&self, threads: usize, progress: Option<Progress>) -> Result<Box<dyn Finished>> {
        let report = self.0.run(threads, progress)?;
        Ok(Box::new(FinishedStudy {
            study: self.0.clone(),
            report,
        }))
    }
}

impl<S: StudyDef> Finished for FinishedStudy<S> {
    fn json(&self) -> Result<Vec<u8>> {
        crate::output::to_json(&self.report)
    }
    fn table(&self) -> String {
        S::table(&self.report)
    }
    fn write(&self, dir: &Path) -> Result<Vec<PathBuf>> {
        self.study.write(&self.report, dir)
    }
    fn verdicts(&self) -> &[Verdict] {
        S::verdicts(&self.report)
    }
    fn observations(&self) -> &[Observation] {
        S::observations(&self.report)
    }
}

/// Parses a configuration from TOML, or from the `config` field of a result JSON of the same
/// study (so a result file repeats its run).
pub fn parse_config<T: DeserializeOwned>(study: &str, text: &str) -> Result<T> {
    if !text.trim_start().starts_with('{') {
        return crate::study::setup::parse_toml(text);
    }
    let mut v: serde_json::Value = serde_json::from_str(text)
        .map_err(|e| Error::Parse(format!("not valid JSON (nor TOML): {e}")))?;
    match v.get("study").and_then(|s| s.as_str()) {
        Some(s) if s == study => {}
        Some(other) => {
            return Err(Error::config(
                "study",
                other,
                format!("must be {study}: this is a result of another study"),
            ))
        }
        None => {
            return Err(Error::Parse(
                "a JSON configuration must be a samsde result file (with `study` and `config`)"
                    .into(),
            ))
        }
    }
    let config = v
        .get_mut("config")
        .map(serde_json::Value::take)
        .ok_or_else(|| Error::Parse("the result file has no `config` field".into()))?;
    serde_json::from_value(config)
        .map_err(|e| Error::Parse(format!("the result file's `config`: {e}")))
}

/// Parses, applies the overrides, checks the budget against the default [`Limits`] (memory,
/// and the hard cap on work; no time limit), validates.
fn prepare<S: StudyDef>(text: &str, overrides: &Overrides) -> Result<Box<dyn Prepared>> {
    prepare_limited::<S>(text, overrides, &Limits::default())
}

/// Parses, applies the overrides, estimates memory and work and checks them against `limits`
/// (before anything is built), validates.
fn prepare_limited<S: StudyDef>(
    text: &str,
    overrides: &Overrides,
    limits: &Limits,
) -> Result<Box<dyn Prepared>> {
    let mut config: S::Config = parse_config(S::NAME, text)?;
    S::apply(&mut config, overrides)?;
    let budget = S::budget(&config, limits.threads)?;
    budget.check(limits)?;
    Ok(Box::new(PreparedStudy(Arc::new(S::build(config)?), budget)))
}

/// A registered study, type-erased.
#[derive(Clone, Copy)]
pub struct StudyEntry {
    /// Subcommand name.
    pub name: &'static str,
    /// One line of help.
    pub about: &'static str,
    /// Long help.
    pub long_about: &'static str,
    /// The embedded default.
    pub default: Experiment,
    /// Every shipped configuration.
    pub experiments: &'static [Experiment],
    /// What `sde-check reproduce` runs (empty: the default).
    pub reproduce: &'static [Experiment],
    /// The `--profile` names the study understands.
    pub profiles: &'static [&'static str],
    /// The study's paragraph for the claims report (may be empty).
    pub report_note: &'static str,
    /// Parse + override + budget check (default [`Limits`]) + validate.
    pub prepare: fn(&str, &Overrides) -> Result<Box<dyn Prepared>>,
    /// Parse + override + budget check against the given limits (the command line's time
    /// limit without `--yes`) + validate.
    pub prepare_limited: fn(&str, &Overrides, &Limits) -> Result<Box<dyn Prepared>>,
}

impl StudyEntry {
    /// The entry of a study type.
    pub const fn of<S: StudyDef>() -> Self {
        StudyEntry {
            name: S::NAME,
            about: S::ABOUT,
            long_about: S::LONG_ABOUT,
            default: S::DEFAULT,
            experiments: S::EXPERIMENTS,
            reproduce: S::REPRODUCE,
            profiles: S::PROFILES,
            report_note: S::REPORT_NOTE,
            prepare: prepare::<S>,
            prepare_limited: prepare_limited::<S>,
        }
    }

    /// The experiments `sde-check reproduce` runs.
    pub fn reproduce_experiments(&self) -> Vec<Experiment> {
        if self.reproduce.is_empty() {
            vec![self.default]
        } else {
            self.reproduce.to_vec()
        }
    }

    /// Default output folder, `plots/<name>`.
    pub fn default_out(&self) -> PathBuf {
        PathBuf::from("plots").join(self.name)
    }
}

/// Every study, in the order the report lists them.
pub fn studies() -> &'static [StudyEntry] {
    use crate::report;
    const ALL: &[StudyEntry] = &[
        StudyEntry::of::<report::convergence::Def>(),
        StudyEntry::of::<report::saddle::Def>(),
        StudyEntry::of::<report::flatness::Def>(),
        StudyEntry::of::<report::trajectories::Def>(),
        StudyEntry::of::<report::implicit_bias::Def>(),
        StudyEntry::of::<report::rho_sweep::Def>(),
        StudyEntry::of::<report::sam_rate::Def>(),
        StudyEntry::of::<report::kinks::Def>(),
        StudyEntry::of::<report::msharpness::Def>(),
    ];
    ALL
}

/// The study called `name`.
pub fn find(name: &str) -> Option<&'static StudyEntry> {
    studies().iter().find(|s| s.name == name)
}
