//! The one result header every study report starts with, flattened into the report's JSON:
//! `{study, samsde_version, config, seed, threads, elapsed_s, warnings, …study fields…,
//! verdicts, observations}`.
//!
//! `config` is the full *validated* configuration, every default filled in, so a result file
//! can be fed back to repeat the run (`sde-check STUDY results.json`); `seed` repeats the
//! configuration's master seed for scripts that only want that.

use std::time::Instant;

use serde::{Deserialize, Serialize};

/// The shared run header; `C` is the study's configuration type.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunHeader<C> {
    /// The study's name (`convergence`, `saddle`, …).
    pub study: String,
    /// Crate version that produced the result.
    pub samsde_version: String,
    /// The full validated configuration.
    pub config: C,
    /// Master seed.
    pub seed: u64,
    /// Worker threads used (results do not depend on it).
    pub threads: usize,
    /// Wall time of the computation, seconds.
    pub elapsed_s: f64,
    /// Notes a reader should see (divergences, clamps, censoring, …).
    pub warnings: Vec<String>,
}

impl<C> RunHeader<C> {
    /// A header for a run of `study` that started at `started`.
    pub fn new(
        study: &str,
        config: C,
        seed: u64,
        threads: usize,
        started: Instant,
        warnings: Vec<String>,
    ) -> Self {
        Self {
            study: study.into(),
            samsde_version: env!("CARGO_PKG_VERSION").into(),
            config,
            seed,
            threads,
            elapsed_s: started.elapsed().as_secs_f64(),
            warnings,
        }
    }
}
