//! Up-front size checks and resource estimates, shared by every study.
//!
//! Every size that comes from input (paths, dimensions, step counts, grid counts, samples …) is
//! checked **before anything is allocated**:
//!
//! * products of sizes that become an allocation or an index use [`product`] (checked `usize`
//!   arithmetic; an overflow is an error naming the fields, never a wrap-around);
//! * each study estimates, from the raw configuration and without building anything, its peak
//!   **memory** (the dominant allocations: landscape and noise matrices, per-block workspaces,
//!   accumulators, per-path records, the report) and its **work** (floating-point operations of
//!   the dominant loops) into a [`Budget`]. Estimates are `f64` sums of `f64` products, so they
//!   cannot overflow (at worst they are `+∞`, which every limit refuses).
//!
//! [`Budget::check`] then refuses, with [`Error::TooLarge`] naming the fields that drive the
//! estimate:
//!
//! * memory above [`memory_limit`]: half the physical memory (`MemTotal` of `/proc/meminfo`),
//!   [`FALLBACK_MEMORY`] where that cannot be read, or `SAMSDE_MAX_MEMORY` (bytes, or with a
//!   `K`/`M`/`G`/`T` suffix) when set;
//! * an estimated time above `Limits::max_seconds` (the command line sets it to
//!   [`CONFIRM_SECONDS`] unless `--yes` is given; the library API sets none);
//! * in every case, work beyond [`HARD_CAP_CPU_SECONDS`] (decades of computing): no flag runs it.
//!
//! The time estimate is `flops / (FLOPS_PER_THREAD · min(threads, parallel units))`. The rate is
//! calibrated on the shipped configurations (see `BENCHMARKS.md`): the estimate is meant to be
//! right within a factor of a few, enough to tell seconds from hours from weeks.

use crate::error::{Error, Result};

/// Estimated floating-point operations per second of one thread (calibrated on the shipped
/// configurations; module docs).
pub const FLOPS_PER_THREAD: f64 = 1.0e9;
/// Runs estimated longer than this are announced (estimate printed) before they start.
pub const ANNOUNCE_SECONDS: f64 = 60.0;
/// Runs estimated longer than this need `--yes` on the command line.
pub const CONFIRM_SECONDS: f64 = 2.0 * 3600.0;
/// Work beyond this many CPU-seconds (≈ 32 CPU-years) is refused whatever the flags.
pub const HARD_CAP_CPU_SECONDS: f64 = 1e9;
/// Memory limit when the physical memory cannot be read.
pub const FALLBACK_MEMORY: f64 = 4.0 * GIB;
/// Bytes of an `f64`.
pub const F64: f64 = 8.0;

const GIB: f64 = 1024.0 * 1024.0 * 1024.0;

/// `a₁ · a₂ · …` with overflow checking; the error names the factors (`paths × saves`).
pub fn product(factors: &[(&str, usize)]) -> Result<usize> {
    factors
        .iter()
        .try_fold(1usize, |acc, &(_, v)| acc.checked_mul(v))
        .ok_or_else(|| {
            let fields: Vec<&str> = factors.iter().map(|f| f.0).collect();
            let values: Vec<String> = factors.iter().map(|f| f.1.to_string()).collect();
            Error::TooLarge {
                fields: fields.join(", "),
                message: format!(
                    "the product {} = {} overflows; lower them",
                    fields.join(" × "),
                    values.join(" × ")
                ),
            }
        })
}

/// `a + b` with overflow checking (`field` is named on overflow).
pub fn sum(field: &str, a: usize, b: usize) -> Result<usize> {
    a.checked_add(b).ok_or_else(|| Error::TooLarge {
        fields: field.into(),
        message: format!("{a} + {b} overflows; lower it"),
    })
}

/// A whole count computed in `f64` (e.g. `T/η`), as a `usize` no larger than `max`.
pub fn count(field: &str, x: f64, max: f64) -> Result<usize> {
    if !(x.is_finite() && x >= 0.0 && x <= max) {
        return Err(Error::TooLarge {
            fields: field.into(),
            message: format!(
                "gives {} steps/points, more than the {} this program accepts; lower it",
                crate::error::tidy_numbers(&format!("{}", x.round())),
                crate::error::tidy_numbers(&format!("{max}")),
            ),
        });
    }
    Ok(x.round() as usize)
}

/// Largest count of steps, points or samples accepted anywhere (`2^48`): larger counts cannot
/// finish, and every product of two such counts still fits an `f64` exactly enough to compare.
pub const MAX_COUNT: f64 = 281_474_976_710_656.0;

/// One term of an estimate: what it is, which fields set it, how much.
#[derive(Debug, Clone)]
pub struct Term {
    /// What it is (`per-path records`).
    pub what: String,
    /// The configuration fields that set it.
    pub fields: Vec<String>,
    /// Bytes (memory) or floating-point operations (work).
    pub amount: f64,
}

/// Limits a run is checked against.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Threads the run will use (the time estimate divides by it).
    pub threads: usize,
    /// Largest estimated wall time accepted (`None`: any, up to [`HARD_CAP_CPU_SECONDS`]).
    pub max_seconds: Option<f64>,
    /// Largest estimated memory, bytes, and where that limit comes from.
    pub max_bytes: (f64, String),
}

impl Default for Limits {
    /// The current rayon pool's threads, no time limit, [`memory_limit`].
    fn default() -> Self {
        Self {
            threads: rayon::current_num_threads(),
            max_seconds: None,
            max_bytes: memory_limit(),
        }
    }
}

/// The memory limit and a few words on where it comes from (module docs).
pub fn memory_limit() -> (f64, String) {
    if let Ok(v) = std::env::var("SAMSDE_MAX_MEMORY") {
        if let Some(b) = parse_bytes(&v) {
            return (b, "SAMSDE_MAX_MEMORY".into());
        }
    }
    match physical_memory() {
        Some(total) => (
            total / 2.0,
            format!(
                "half the physical memory of {}; SAMSDE_MAX_MEMORY changes it",
                bytes_text(total)
            ),
        ),
        None => (
            FALLBACK_MEMORY,
            "the fixed cap where the physical memory cannot be read; SAMSDE_MAX_MEMORY changes it"
                .into(),
        ),
    }
}

fn physical_memory() -> Option<f64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    (kb > 0.0).then_some(kb * 1024.0)
}

/// `"8G"`, `"512M"`, `"1.5T"`, `"123456"` → bytes.
pub fn parse_bytes(s: &str) -> Option<f64> {
    let s = s.trim();
    let (num, mult) = match s.char_indices().last()? {
        (i, 'k' | 'K') => (&s[..i], 1024.0),
        (i, 'm' | 'M') => (&s[..i], 1024.0 * 1024.0),
        (i, 'g' | 'G') => (&s[..i], GIB),
        (i, 't' | 'T') => (&s[..i], 1024.0 * GIB),
        _ => (s, 1.0),
    };
    let v: f64 = num.trim().parse().ok()?;
    (v.is_finite() && v > 0.0).then_some(v * mult)
}

/// `1.2 GB` (binary multiples).
pub fn bytes_text(b: f64) -> String {
    if !b.is_finite() {
        return "more than any machine has".into();
    }
    let units = ["B", "kB", "MB", "GB", "TB", "PB", "EB"];
    let mut v = b;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < units.len() {
        v /= 1024.0;
        u += 1;
    }
    if u + 1 == units.len() && v >= 1024.0 {
        return format!("{b:.1e} B");
    }
    if u == 0 {
        format!("{v:.0} B")
    } else {
        format!("{v:.1} {}", units[u])
    }
}

/// `1 h 23 min`, `4.2 min`, `12 s`, `3.1 days`, `2.0e4 years`.
pub fn human_duration(s: f64) -> String {
    if !s.is_finite() {
        return "forever".into();
    }
    if s >= 365.0 * 86_400.0 {
        let y = s / (365.0 * 86_400.0);
        if y >= 1e4 {
            format!("{y:.1e} years")
        } else {
            format!("{y:.1} years")
        }
    } else if s >= 86_400.0 {
        format!("{:.1} days", s / 86_400.0)
    } else if s >= 3600.0 {
        format!(
            "{} h {} min",
            (s / 3600.0).floor(),
            ((s % 3600.0) / 60.0).round()
        )
    } else if s >= 60.0 {
        format!("{:.1} min", s / 60.0)
    } else {
        format!("{} s", crate::study::verdict::fmt_num(s))
    }
}

/// The estimated memory and work of one run (module docs).
#[derive(Debug, Clone)]
pub struct Budget {
    /// Study name.
    pub study: &'static str,
    /// Memory terms (bytes), summed for the peak (a deliberate over-estimate: not every term
    /// lives at once).
    pub memory: Vec<Term>,
    /// Work terms (floating-point operations).
    pub work: Vec<Term>,
    /// Independent units that can run in parallel (blocks, jobs); the time estimate divides by
    /// `min(threads, parallel)`.
    pub parallel: f64,
}

fn fields_of(fields: &[&str]) -> Vec<String> {
    fields.iter().map(|s| s.to_string()).collect()
}

impl Budget {
    /// An empty budget.
    pub fn new(study: &'static str) -> Self {
        Self {
            study,
            memory: Vec::new(),
            work: Vec::new(),
            parallel: 1.0,
        }
    }

    /// Adds `bytes` of memory for `what`, set by `fields`.
    pub fn mem(&mut self, what: &str, fields: &[&str], bytes: f64) -> &mut Self {
        self.memory.push(Term {
            what: what.into(),
            fields: fields_of(fields),
            amount: bytes.max(0.0),
        });
        self
    }

    /// Adds `flops` of work for `what`, set by `fields`.
    pub fn flops(&mut self, what: &str, fields: &[&str], flops: f64) -> &mut Self {
        self.work.push(Term {
            what: what.into(),
            fields: fields_of(fields),
            amount: flops.max(0.0),
        });
        self
    }

    /// At least `units` pieces of the run can proceed in parallel.
    pub fn parallel(&mut self, units: f64) -> &mut Self {
        self.parallel = self.parallel.max(units);
        self
    }

    /// Appends another budget's terms (e.g. a landscape's).
    pub fn extend(&mut self, other: Budget) -> &mut Self {
        self.memory.extend(other.memory);
        self.work.extend(other.work);
        self.parallel = self.parallel.max(other.parallel);
        self
    }

    /// Parts that run one after the other: the work of all, the memory of the largest.
    pub fn sequential(&mut self, parts: Vec<Budget>) -> &mut Self {
        let mut biggest: Option<Budget> = None;
        for mut p in parts {
            self.work.append(&mut p.work);
            self.parallel = self.parallel.max(p.parallel);
            if biggest.as_ref().is_none_or(|b| p.bytes() > b.bytes()) {
                biggest = Some(p);
            }
        }
        if let Some(b) = biggest {
            self.memory.extend(b.memory);
        }
        self
    }

    /// Estimated peak memory, bytes.
    pub fn bytes(&self) -> f64 {
        self.memory.iter().map(|t| t.amount).sum()
    }

    /// Estimated floating-point operations.
    pub fn total_flops(&self) -> f64 {
        self.work.iter().map(|t| t.amount).sum()
    }

    /// Estimated wall time on `threads` threads, seconds.
    pub fn seconds(&self, threads: usize) -> f64 {
        let t = (threads.max(1) as f64).min(self.parallel.max(1.0));
        self.total_flops() / (FLOPS_PER_THREAD * t)
    }

    /// The fields of the terms that make up most of `terms` (the largest, and every term of at
    /// least a quarter of the total), in order of size, without repeats.
    fn driving(terms: &[Term]) -> (Vec<String>, String) {
        let total: f64 = terms.iter().map(|t| t.amount).sum();
        let mut sorted: Vec<&Term> = terms.iter().collect();
        sorted.sort_by(|a, b| b.amount.total_cmp(&a.amount));
        let mut fields: Vec<String> = Vec::new();
        let mut parts = Vec::new();
        for (i, t) in sorted.iter().enumerate() {
            if i > 0 && (t.amount.is_nan() || t.amount < 0.25 * total) {
                break;
            }
            parts.push(t);
            for f in &t.fields {
                if !fields.contains(f) {
                    fields.push(f.clone());
                }
            }
        }
        let what = parts
            .iter()
            .map(|t| (t.what.clone(), t.amount))
            .collect::<Vec<_>>();
        let text = what
            .iter()
            .map(|(w, a)| format!("{w}: {}", crate::error::tidy_numbers(&format!("{a:.3e}"))))
            .collect::<Vec<_>>()
            .join("; ");
        (fields, text)
    }

    /// The largest terms in words, for messages: `per-path records 1.1 TB (paths, curves.horizon)`.
    fn memory_words(&self) -> (String, String) {
        let (fields, _) = Self::driving(&self.memory);
        let mut sorted: Vec<&Term> = self.memory.iter().collect();
        sorted.sort_by(|a, b| b.amount.total_cmp(&a.amount));
        let words = sorted
            .iter()
            .take(3)
            .filter(|t| t.amount > 0.0)
            .map(|t| format!("{} {}", t.what, bytes_text(t.amount)))
            .collect::<Vec<_>>()
            .join(", ");
        (fields.join(", "), words)
    }

    fn work_words(&self) -> (String, String) {
        let (fields, _) = Self::driving(&self.work);
        let mut sorted: Vec<&Term> = self.work.iter().collect();
        sorted.sort_by(|a, b| b.amount.total_cmp(&a.amount));
        let words = sorted
            .iter()
            .take(3)
            .filter(|t| t.amount > 0.0)
            .map(|t| format!("{} {}", t.what, human_duration(t.amount / FLOPS_PER_THREAD)))
            .collect::<Vec<_>>()
            .join(", ");
        (fields.join(", "), words)
    }

    /// Refuses a run that cannot fit in memory, one estimated longer than the time limit, and
    /// work beyond [`HARD_CAP_CPU_SECONDS`] (module docs).
    pub fn check(&self, limits: &Limits) -> Result<()> {
        self.check_memory(limits)?;
        let cpu = self.total_flops() / FLOPS_PER_THREAD;
        if cpu.is_nan() || cpu > HARD_CAP_CPU_SECONDS {
            let (fields, words) = self.work_words();
            return Err(Error::TooLarge {
                fields: or_sizes(fields),
                message: format!(
                    "the {} run would take an estimated {} of computing on one thread ({words}), beyond what any machine finishes; lower them",
                    self.study,
                    human_duration(cpu)
                ),
            });
        }
        if let Some(max) = limits.max_seconds {
            let s = self.seconds(limits.threads);
            if s.is_nan() || s > max {
                let (fields, words) = self.work_words();
                return Err(Error::TooLarge {
                    fields: or_sizes(fields),
                    message: format!(
                        "the {} run would take an estimated {} on {} thread(s) ({words} on one thread), more than the {} allowed without confirmation; pass --yes to run it anyway, or lower them",
                        self.study,
                        human_duration(s),
                        limits.threads,
                        human_duration(max)
                    ),
                });
            }
        }
        Ok(())
    }

    /// The memory part of [`Budget::check`].
    pub fn check_memory(&self, limits: &Limits) -> Result<()> {
        let (max, source) = &limits.max_bytes;
        let b = self.bytes();
        if b.is_nan() || b > *max {
            let (fields, words) = self.memory_words();
            return Err(Error::TooLarge {
                fields: or_sizes(fields),
                message: format!(
                    "the {} run needs an estimated {} of memory ({words}), more than the limit of {} ({source}); lower them",
                    self.study,
                    bytes_text(b),
                    bytes_text(*max)
                ),
            });
        }
        Ok(())
    }

    /// One line for the command line: `estimated 3.2 min on 2 threads, 120 MB of memory`.
    pub fn summary(&self, threads: usize) -> String {
        format!(
            "estimated {} on {} thread(s), about {} of memory",
            human_duration(self.seconds(threads)),
            threads.min(self.parallel.max(1.0) as usize).max(1),
            bytes_text(self.bytes())
        )
    }
}

/// How one system of an ensemble advances (for its cost per path-step).
#[derive(Debug, Clone, Copy)]
pub enum SystemCost {
    /// A discrete algorithm: `grads` gradient evaluations per step (SGD 1, SAM variants 2).
    Discrete {
        /// Gradient evaluations per step.
        grads: f64,
    },
    /// An SDE by Euler–Maruyama: `substeps` sub-steps, each a gradient and a few
    /// Hessian–vector products, or `inner` oracle draws for the inner Monte Carlo form.
    Euler {
        /// Sub-steps per step.
        substeps: f64,
        /// Inner Monte Carlo draws per state (`None`: a closed form).
        inner: Option<f64>,
    },
    /// An exact Ornstein–Uhlenbeck transition (two `d × d` products per step).
    ExactOu,
}

/// The shape of one [`crate::ensemble::Ensemble`] run, for [`ensemble`].
#[derive(Debug, Clone, Copy)]
pub struct EnsembleShape {
    /// Dimension `d`.
    pub d: f64,
    /// Brownian dimension `m`.
    pub m: f64,
    /// Floating-point operations of one gradient at one point.
    pub grad: f64,
    /// Paths.
    pub paths: f64,
    /// Steps per path.
    pub steps: f64,
    /// Paths per block.
    pub block: f64,
    /// Finest sub-step count (Brownian increments drawn per step).
    pub substeps: f64,
    /// The noise is a general matrix `S` (`d × m` products per step); `false` for isotropic
    /// or no noise (a scalar factor).
    pub noise_matrix: bool,
}

/// [`ensemble_of`] with each system once.
#[allow(clippy::too_many_arguments)]
pub fn ensemble(
    b: &mut Budget,
    what: &str,
    fields: &[&str],
    e: EnsembleShape,
    systems: &[SystemCost],
    acc_bytes: f64,
    stored: f64,
    threads: usize,
) {
    let counted: Vec<(SystemCost, f64)> = systems.iter().map(|s| (*s, 1.0)).collect();
    ensemble_of(b, what, fields, e, &counted, acc_bytes, stored, threads);
}

/// Adds one ensemble run to a budget, each system `(cost, how many)` (so a grid of `2^40`
/// identical systems is estimated without a list of them): per-block workspaces (one per thread at a time), the
/// accumulators held while blocks are merged (at most [`crate::ensemble::MERGE_CHUNK`]
/// blocks plus the total), `stored` bytes of per-path records that grow with the paths, and the
/// work `paths × steps × Σ_systems cost` (plus the Gaussian draws).
#[allow(clippy::too_many_arguments)]
pub fn ensemble_of(
    b: &mut Budget,
    what: &str,
    fields: &[&str],
    e: EnsembleShape,
    systems: &[(SystemCost, f64)],
    acc_bytes: f64,
    stored: f64,
    threads: usize,
) {
    let block = e.block.min(e.paths).max(1.0);
    let blocks = (e.paths / block).ceil().max(1.0);
    let live = (threads.max(1) as f64).min(blocks);
    let ns: f64 = systems.iter().map(|s| s.1).sum();
    let inner: f64 = systems
        .iter()
        .map(|(s, n)| match s {
            SystemCost::Euler { inner: Some(k), .. } => n * (2.0 * e.d * k + e.d * e.d),
            _ => 0.0,
        })
        .sum();
    // States and about six d × P workspaces per system, the increments (m × P, three of them)
    // and S ΔW, z (d × P).
    let per_block = F64 * (block * (7.0 * ns * e.d + 3.0 * e.m + 2.0 * e.d) + inner);
    b.mem(
        &format!("{what}: block workspaces"),
        fields,
        live * per_block,
    );
    let held = (crate::ensemble::MERGE_CHUNK as f64).min(blocks) + 1.0;
    b.mem(&format!("{what}: accumulators"), fields, held * acc_bytes);
    b.mem(&format!("{what}: per-path records"), fields, stored);
    let noise = if e.noise_matrix {
        2.0 * e.d * e.m
    } else {
        2.0 * e.m
    };
    let per_path_step: f64 = systems
        .iter()
        .map(|&(s, n)| {
            n * match s {
                SystemCost::Discrete { grads } => grads * e.grad + 4.0 * e.d + noise,
                SystemCost::Euler { substeps, inner } => {
                    substeps
                        * match inner {
                            Some(k) => k * (2.0 * e.grad + 4.0 * e.d) + 2.0 * e.d * e.d,
                            None => 3.0 * e.grad + noise + 10.0 * e.d,
                        }
                }
                SystemCost::ExactOu => 4.0 * e.d * e.d + 2.0 * e.d * e.m,
            }
        })
        .sum::<f64>()
        + 20.0 * e.m * e.substeps.max(1.0);
    b.flops(what, fields, e.paths * e.steps * per_path_step);
    b.parallel(blocks);
}

fn or_sizes(fields: String) -> String {
    if fields.is_empty() {
        "sizes".into()
    } else {
        fields
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn products_overflow_into_an_error_naming_the_fields() {
        assert_eq!(product(&[("a", 3), ("b", 4)]).unwrap(), 12);
        let e = product(&[("paths", usize::MAX), ("saves", 2)]).unwrap_err();
        let m = e.to_string();
        assert!(m.starts_with("paths, saves:"), "{m}");
        assert!(m.contains("overflows"), "{m}");
    }

    #[test]
    fn counts_refuse_non_finite_and_huge() {
        assert_eq!(count("horizon", 1000.0, MAX_COUNT).unwrap(), 1000);
        assert!(count("horizon", f64::INFINITY, MAX_COUNT).is_err());
        assert!(count("horizon", f64::NAN, MAX_COUNT).is_err());
        assert!(count("horizon", 1e300, MAX_COUNT)
            .unwrap_err()
            .to_string()
            .contains("1e300"));
    }

    #[test]
    fn memory_and_time_refusals_name_the_driving_fields() {
        let limits = Limits {
            threads: 2,
            max_seconds: Some(3600.0),
            max_bytes: (1e9, "test".into()),
        };
        let mut b = Budget::new("demo");
        b.mem("records", &["paths", "saves"], 2e9)
            .mem("matrix", &["dim"], 1e3);
        let e = b.check(&limits).unwrap_err().to_string();
        assert!(e.starts_with("paths, saves:"), "{e}");
        assert!(e.contains("1.9 GB"), "{e}");
        let mut b = Budget::new("demo");
        b.flops("steps", &["paths", "horizon"], 1e9 * 7200.0 * 2.0)
            .parallel(8.0);
        let e = b.check(&limits).unwrap_err().to_string();
        assert!(e.starts_with("paths, horizon:"), "{e}");
        assert!(e.contains("--yes"), "{e}");
        assert!(b
            .check(&Limits {
                max_seconds: None,
                ..limits.clone()
            })
            .is_ok());
        let mut b = Budget::new("demo");
        b.flops("steps", &["paths"], f64::INFINITY);
        let e = b
            .check(&Limits {
                max_seconds: None,
                ..limits
            })
            .unwrap_err()
            .to_string();
        assert!(e.contains("beyond what any machine finishes"), "{e}");
    }

    #[test]
    fn byte_and_duration_texts() {
        assert_eq!(bytes_text(512.0), "512 B");
        assert_eq!(bytes_text(1.5 * GIB), "1.5 GB");
        assert_eq!(parse_bytes("8G"), Some(8.0 * GIB));
        assert_eq!(parse_bytes("-1"), None);
        assert_eq!(human_duration(90.0), "1.5 min");
        assert_eq!(human_duration(f64::INFINITY), "forever");
    }
}
