//! Scale-out: one study's Monte Carlo work split over `N` processes (`--shard I/N`) and merged
//! (`sde-check merge`) into **bit-identical** results to a single run.
//!
//! # Why this works without touching the studies
//!
//! Every Monte Carlo number of a study comes from *units* whose results are independent of each
//! other and are combined in a fixed order: the engine's blocks of paths
//! ([`crate::ensemble::Ensemble::run`] folds the per-block observer accumulators **in block
//! order**), and the independent seeds/problems of studies that loop over them with
//! [`par_map`] (results collected in item order). A single run computes the units in parallel
//! and folds them in order; floating-point addition is not associative, so the fold order —
//! not the grouping of the computation — is what makes a result reproducible.
//!
//! A thread-local *shard context* changes only *who computes a unit*:
//!
//! * **compute** (`--shard I/N`): each call of the engine (or of [`par_map`]) computes only the
//!   units this shard owns and records each one's result, serialised exactly (see below). Units
//!   are numbered globally across the calls of a run (`g = 0, 1, 2, …` in call order), and shard
//!   `I` owns `g ≡ I − 1 (mod N)`: round-robin over the whole run balances the load even when a
//!   call has fewer units than there are shards. The study then finishes on its partial results;
//!   that report is discarded (a shard writes a *shard file*, never result files).
//! * **merge**: each call computes nothing; it takes the recorded results of all shards, checks
//!   that the call is the one the shards recorded (a fingerprint of its parameters and its
//!   position in the run), and returns all units in unit order. The engine then folds them in
//!   block order exactly as in a single run, and the study's own code finishes exactly as in a
//!   single run — so the merged report equals the single run's bit for bit (timings and the
//!   thread count aside).
//!
//! Everything outside the units (building landscapes, data sets, deterministic references,
//! verdicts) is recomputed by every shard and by the merge: it is cheap next to the Monte Carlo
//! work and deterministic, so recomputing beats shipping it.
//!
//! # Exact encoding
//!
//! Unit results are encoded as CBOR (RFC 8949) with `ciborium`. CBOR is self-describing, so
//! every serde attribute the result types use (`skip_serializing_if`, optional fields) round-trips
//! — a positional format such as postcard or bincode misreads a struct whose field was skipped.
//! Floats are exact: ciborium writes an `f64` in 2 or 4 bytes only when converting back gives the
//! same *bits* (`to_bits` comparison), else in 8; so negative zero, subnormals, infinities and NaN
//! payloads come back bit for bit (a test checks). JSON cannot carry NaN/∞ at all. ciborium is
//! already in the dependency tree (through the benchmark harness).
//!
//! # Limits
//!
//! A call whose parameters depend on an *earlier Monte Carlo result* (an adaptive design) cannot
//! be sharded in one pass: shards would see different partial results and record different
//! calls. None of the studies does that; if one did, the merge refuses (fingerprint mismatch)
//! instead of producing wrong numbers. Calls made on a thread other than the one running the
//! study, and calls made inside a unit (an engine run inside a `par_map` item), do not see the
//! context and simply compute everything, in every shard and in the merge — correct, only not
//! scaled out (the context is suspended while units compute, so rayon's work stealing cannot
//! make a nested call visible on the study's thread). Measurements of
//! wall time (the `rho-sweep` cost of a model) are made with [`unsharded`] and are, like
//! `elapsed_s`, not part of the bit-identity.

pub mod file;

use std::cell::RefCell;
use std::fmt;
use std::str::FromStr;

use rayon::prelude::*;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::{Error, Result};

pub use file::{merge, run_shard, ShardFile, ShardSet};

/// `--shard I/N`: this process computes share `I` (1-based) of `N`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShardSpec {
    /// `I`, `1 ≤ I ≤ N`.
    pub index: usize,
    /// `N ≥ 1`.
    pub count: usize,
}

impl ShardSpec {
    /// Does this shard own global unit `g`?
    pub fn owns(&self, g: u64) -> bool {
        g % self.count as u64 == (self.index - 1) as u64
    }
}

impl fmt::Display for ShardSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl FromStr for ShardSpec {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        let bad = |why: &str| Error::config("--shard", format!("{s:?}"), why.to_string());
        let (i, n) = s
            .split_once('/')
            .ok_or_else(|| bad("must be I/N, e.g. 2/4 (shard I of N, 1 ≤ I ≤ N)"))?;
        let index: usize = i
            .trim()
            .parse()
            .map_err(|_| bad("must be I/N with whole numbers I and N, e.g. 2/4"))?;
        let count: usize = n
            .trim()
            .parse()
            .map_err(|_| bad("must be I/N with whole numbers I and N, e.g. 2/4"))?;
        if count == 0 {
            return Err(bad("needs N ≥ 1 shards"));
        }
        if count > 100_000 {
            return Err(bad("needs N ≤ 100000 shards"));
        }
        if index == 0 || index > count {
            return Err(bad(
                "needs 1 ≤ I ≤ N (shards are numbered from 1; a Slurm array task id is I − 1)",
            ));
        }
        Ok(ShardSpec { index, count })
    }
}

/// What a shard recorded for one call: its position, fingerprint and the owned units' bytes.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct CallRecord {
    /// Position of the call in the run (0, 1, 2, …).
    pub call: u64,
    /// FNV-1a hash of the call's description (parameters and kind).
    pub fingerprint: u64,
    /// The description itself (for error messages).
    pub what: String,
    /// Number of units of the call (blocks or items).
    pub units: u64,
    /// `(unit index, CBOR bytes of its result)` for the units this shard owns.
    pub owned: Vec<(u64, Vec<u8>)>,
}

/// The merge's view of one call: every unit's bytes, in unit order.
#[derive(Debug)]
pub(crate) struct MergedCall {
    pub(crate) fingerprint: u64,
    pub(crate) what: String,
    pub(crate) units: Vec<Vec<u8>>,
}

enum Mode {
    Compute {
        spec: ShardSpec,
        next_global: u64,
        calls: Vec<CallRecord>,
    },
    Merge {
        calls: std::vec::IntoIter<MergedCall>,
        used: u64,
    },
}

thread_local! {
    static CONTEXT: RefCell<Option<Mode>> = const { RefCell::new(None) };
}

/// The panic payload of a merge that meets a call the shards did not record; caught by
/// [`file::merge`] and turned into an error.
#[derive(Debug)]
pub(crate) struct Mismatch(pub(crate) String);

/// 64-bit FNV-1a: a stable (version- and platform-independent) hash for fingerprints.
pub fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// Exact binary encoding of a unit result (see the module docs).
pub fn encode<R: Serialize>(r: &R) -> Vec<u8> {
    let mut out = Vec::new();
    ciborium::into_writer(r, &mut out).expect("CBOR encodes every serde value into memory");
    out
}

/// Inverse of [`encode`].
pub fn decode<R: DeserializeOwned>(bytes: &[u8]) -> Result<R> {
    ciborium::from_reader(bytes).map_err(|e| {
        Error::Shard(format!(
            "a recorded unit result cannot be decoded ({e}): the shard file is damaged or was \
             written by another version"
        ))
    })
}

/// Runs `n` independent units `unit(i)` in parallel on the current rayon pool and returns their
/// results in unit order — all of them outside a shard context and in a merge, only this
/// shard's (the others `None`) in a shard's compute pass. `what` describes the call (its
/// parameters); it is hashed into the call's fingerprint.
///
/// This is the one place where the engine and [`par_map`] meet the shard context.
pub fn units<R, F>(what: impl FnOnce() -> String, n: usize, unit: F) -> Vec<Option<R>>
where
    R: Serialize + DeserializeOwned + Send,
    F: Fn(usize) -> R + Sync + Send,
{
    // Take what the call needs out of the context and release it before computing: the units
    // run on the pool, and this thread may execute some of them.
    enum Plan {
        All,
        Own { spec: ShardSpec, first_global: u64 },
        Merge(Option<MergedCall>),
    }
    let plan = CONTEXT.with(|c| match &mut *c.borrow_mut() {
        None => Plan::All,
        Some(Mode::Compute {
            spec, next_global, ..
        }) => {
            let first_global = *next_global;
            *next_global += n as u64;
            Plan::Own {
                spec: *spec,
                first_global,
            }
        }
        Some(Mode::Merge { calls, used }) => {
            *used += 1;
            Plan::Merge(calls.next())
        }
    });
    match plan {
        Plan::All => (0..n).into_par_iter().map(|i| Some(unit(i))).collect(),
        Plan::Own { spec, first_global } => {
            let what = what();
            let mine: Vec<usize> = (0..n)
                .filter(|&i| spec.owns(first_global + i as u64))
                .collect();
            // With the context suspended: a unit that itself calls the engine computes that
            // call whole, whichever thread runs it (rayon may run a unit on this thread), so
            // the recorded calls never depend on scheduling.
            let done: Vec<(usize, R, Vec<u8>)> = unsharded(|| {
                mine.into_par_iter()
                    .map(|i| {
                        let r = unit(i);
                        let bytes = encode(&r);
                        (i, r, bytes)
                    })
                    .collect()
            });
            let mut out: Vec<Option<R>> = (0..n).map(|_| None).collect();
            let mut owned = Vec::with_capacity(done.len());
            for (i, r, bytes) in done {
                out[i] = Some(r);
                owned.push((i as u64, bytes));
            }
            CONTEXT.with(|c| {
                if let Some(Mode::Compute { calls, .. }) = &mut *c.borrow_mut() {
                    let call = calls.len() as u64;
                    calls.push(CallRecord {
                        call,
                        fingerprint: fnv1a(what.as_bytes()),
                        what,
                        units: n as u64,
                        owned,
                    });
                }
            });
            out
        }
        Plan::Merge(rec) => {
            let what = what();
            let fingerprint = fnv1a(what.as_bytes());
            let Some(rec) = rec else {
                std::panic::panic_any(Mismatch(format!(
                    "the merge needs a call the shards did not record ({what}): they ran a \
                     different computation (version or configuration)"
                )));
            };
            if rec.fingerprint != fingerprint || rec.units.len() != n {
                std::panic::panic_any(Mismatch(format!(
                    "call mismatch: the shards recorded `{}` ({} units), the merge needs `{what}` \
                     ({n} units); they ran a different computation (version or configuration)",
                    rec.what,
                    rec.units.len()
                )));
            }
            rec.units
                .par_iter()
                .map(|b| match decode(b) {
                    Ok(r) => Some(r),
                    Err(e) => std::panic::panic_any(Mismatch(format!("{what}: {e}"))),
                })
                .collect()
        }
    }
}

/// Ordered parallel map with shard semantics: `f(&items[i])` for every item, in parallel,
/// results in item order (bit-identical at any thread count). In a shard's compute pass only
/// this shard's items are computed and **only their results are returned** (in item order; the
/// study's report of such a pass is discarded); in a merge, all results come from the shards.
/// Use it for loops over independent seeds/problems that do not go through the engine.
pub fn par_map<T, R, F>(what: &str, items: &[T], f: F) -> Vec<R>
where
    T: Sync,
    R: Serialize + DeserializeOwned + Send,
    F: Fn(&T) -> R + Sync + Send,
{
    let describe = || {
        format!(
            "par_map {what}: {} items of {}",
            items.len(),
            std::any::type_name::<R>()
        )
    };
    units(describe, items.len(), |i| f(&items[i]))
        .into_iter()
        .flatten()
        .collect()
}

/// Runs `f` with the shard context suspended: every call inside computes everything locally and
/// is not recorded (for wall-time measurements, which must run where they are reported).
pub fn unsharded<T>(f: impl FnOnce() -> T) -> T {
    let saved = CONTEXT.with(|c| c.borrow_mut().take());
    struct Restore(Option<Option<Mode>>);
    impl Drop for Restore {
        fn drop(&mut self) {
            if let Some(m) = self.0.take() {
                CONTEXT.with(|c| *c.borrow_mut() = m);
            }
        }
    }
    let _restore = Restore(Some(saved));
    f()
}

/// `true` inside a shard's compute pass (for progress bars that show the shard's share).
pub fn computing_a_shard() -> bool {
    CONTEXT.with(|c| matches!(&*c.borrow(), Some(Mode::Compute { .. })))
}

/// Clears the context when a scope ends, even by a panic.
struct Clear;
impl Drop for Clear {
    fn drop(&mut self) {
        CONTEXT.with(|c| *c.borrow_mut() = None);
    }
}

fn assert_no_context() {
    CONTEXT.with(|c| {
        assert!(
            c.borrow().is_none(),
            "shard scopes do not nest (one study run per scope)"
        )
    });
}

/// Runs `f` (one study run, on this thread) as shard `spec`'s compute pass; returns its value
/// and the calls recorded.
pub(crate) fn compute_scope<T>(spec: ShardSpec, f: impl FnOnce() -> T) -> (T, Vec<CallRecord>) {
    assert_no_context();
    CONTEXT.with(|c| {
        *c.borrow_mut() = Some(Mode::Compute {
            spec,
            next_global: 0,
            calls: Vec::new(),
        })
    });
    let clear = Clear;
    let value = f();
    let calls = CONTEXT.with(|c| match c.borrow_mut().take() {
        Some(Mode::Compute { calls, .. }) => calls,
        _ => Vec::new(),
    });
    drop(clear);
    (value, calls)
}

/// Runs `f` as a merge of `calls`; returns its value and the number of calls it used.
/// A [`Mismatch`] panic inside propagates (the caller catches it).
pub(crate) fn merge_scope<T>(calls: Vec<MergedCall>, f: impl FnOnce() -> T) -> (T, u64) {
    assert_no_context();
    CONTEXT.with(|c| {
        *c.borrow_mut() = Some(Mode::Merge {
            calls: calls.into_iter(),
            used: 0,
        })
    });
    let clear = Clear;
    let value = f();
    let used = CONTEXT.with(|c| match &*c.borrow() {
        Some(Mode::Merge { used, .. }) => *used,
        _ => 0,
    });
    drop(clear);
    (value, used)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shard_spec_parses_and_rejects() {
        assert_eq!(
            "2/4".parse::<ShardSpec>().unwrap(),
            ShardSpec { index: 2, count: 4 }
        );
        for bad in ["0/4", "5/4", "1/0", "x/2", "3", "-1/2"] {
            let e = bad.parse::<ShardSpec>().unwrap_err().to_string();
            assert!(e.contains("--shard"), "{bad}: {e}");
        }
    }

    #[test]
    fn round_robin_owns_every_unit_once() {
        let n = 3;
        for g in 0..20u64 {
            let owners = (1..=n)
                .filter(|&i| ShardSpec { index: i, count: n }.owns(g))
                .count();
            assert_eq!(owners, 1);
        }
    }

    #[test]
    fn f64_encoding_is_exact_including_non_finite() {
        let v = vec![
            0.1,
            -0.0,
            f64::MIN_POSITIVE / 4.0,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::from_bits(0x7ff8_0000_dead_beef),
            -f64::NAN,
        ];
        let back: Vec<f64> = decode(&encode(&v)).unwrap();
        let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&v), bits(&back));
    }

    #[test]
    fn shards_then_merge_equal_the_single_map() {
        let items: Vec<u64> = (0..11).collect();
        let f = |&x: &u64| (x as f64).sqrt() * 1e-3 + x as f64;
        let single: Vec<f64> = par_map("t", &items, f);
        let mut records = Vec::new();
        for i in 1..=3 {
            let (part, calls) = compute_scope(ShardSpec { index: i, count: 3 }, || {
                // Two calls, so the global unit numbering crosses a call boundary.
                let a: Vec<f64> = par_map("t", &items, f);
                let b: Vec<f64> = par_map("t", &items[..2], f);
                (a, b)
            });
            assert!(part.0.len() < items.len());
            records.push(calls);
        }
        // Assemble per call, in unit order.
        let merged: Vec<MergedCall> = (0..2)
            .map(|c| {
                let mut units: Vec<(u64, Vec<u8>)> =
                    records.iter().flat_map(|r| r[c].owned.clone()).collect();
                units.sort_by_key(|u| u.0);
                MergedCall {
                    fingerprint: records[0][c].fingerprint,
                    what: records[0][c].what.clone(),
                    units: units.into_iter().map(|u| u.1).collect(),
                }
            })
            .collect();
        let ((a, b), used) = merge_scope(merged, || {
            let a: Vec<f64> = par_map("t", &items, f);
            let b: Vec<f64> = par_map("t", &items[..2], f);
            (a, b)
        });
        assert_eq!(used, 2);
        assert_eq!(a, single);
        assert_eq!(b, single[..2]);
    }
}
