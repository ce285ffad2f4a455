//! Shard files: what `sde-check STUDY --shard I/N` writes and `sde-check merge` reads, and the
//! checks that refuse shards which do not belong together.
//!
//! A shard file `<study>.shard-I-of-N.bin` is the line `samsde shard file\n` followed by one
//! CBOR value `{header, calls}`: the header names the study, the crate version, the full
//! validated configuration (as JSON text, the same `config` a result file records), its seed and
//! `I/N`; `calls` holds, per engine/`par_map` call, its fingerprint and the exact bytes of the
//! units this shard computed (see [`crate::shard`]).
//!
//! The merge refuses, naming the files: a file that is not a shard file or is damaged; shards of
//! different studies, versions, seeds or configurations (the first differing configuration
//! field is named); different `N`; a shard given twice; a missing shard; shards whose recorded
//! calls differ; a unit recorded twice or by nobody.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::{Deserialize, Serialize};

use super::{CallRecord, MergedCall, Mismatch, ShardSpec};
use crate::error::{Error, Result};
use crate::linalg::Matrix;
use crate::registry::{self, Finished, Overrides, Prepared, Progress};

/// First line of every shard file.
pub const MAGIC: &[u8] = b"samsde shard file\n";
/// Version of the layout below.
pub const FORMAT: u32 = 1;

/// An empty matrix: the deserialised value of skipped per-block scratch fields.
pub fn empty_matrix() -> Matrix {
    Matrix::zeros(0, 0)
}

/// What a shard file says about itself.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ShardHeader {
    /// Layout version ([`FORMAT`]).
    pub format: u32,
    /// Study name.
    pub study: String,
    /// Crate version that computed it.
    pub samsde_version: String,
    /// The full validated configuration, as JSON text.
    pub config: String,
    /// The configuration's master seed, where it has one at the top level.
    pub seed: Option<u64>,
    /// `I` (1-based).
    pub index: usize,
    /// `N`.
    pub count: usize,
    /// Wall time of the shard's run, seconds.
    pub elapsed_s: f64,
}

/// One shard's file contents.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ShardFile {
    /// Header.
    pub header: ShardHeader,
    /// Recorded calls, in run order.
    pub calls: Vec<CallRecord>,
}

impl ShardFile {
    /// `<study>.shard-I-of-N.bin`.
    pub fn file_name(&self) -> String {
        format!(
            "{}.shard-{}-of-{}.bin",
            self.header.study, self.header.index, self.header.count
        )
    }

    /// Units this shard computed.
    pub fn units_owned(&self) -> usize {
        self.calls.iter().map(|c| c.owned.len()).sum()
    }

    /// The file's bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = MAGIC.to_vec();
        ciborium::into_writer(self, &mut out).expect("CBOR encodes into memory");
        out
    }

    /// Parses a file's bytes (`name` for messages).
    pub fn from_bytes(bytes: &[u8], name: &str) -> Result<Self> {
        let body = bytes.strip_prefix(MAGIC).ok_or_else(|| {
            Error::Shard(format!(
                "{name} is not a samsde shard file (written by `sde-check STUDY --shard I/N`)"
            ))
        })?;
        let f: ShardFile = ciborium::from_reader(body).map_err(|e| {
            Error::Shard(format!(
                "{name} is damaged or of another layout ({e}); recompute that shard"
            ))
        })?;
        if f.header.format != FORMAT {
            return Err(Error::Shard(format!(
                "{name} has shard layout {}, this sde-check reads layout {FORMAT}",
                f.header.format
            )));
        }
        Ok(f)
    }

    /// Writes `dir/<file_name>` atomically; returns its path.
    pub fn write(&self, dir: &Path) -> Result<PathBuf> {
        let mut st = crate::output::Staging::new(dir)?;
        st.bytes(&self.file_name(), &self.to_bytes())?;
        Ok(st.commit()?.remove(0))
    }
}

/// Runs `prepared` as shard `spec` on the current thread (install the rayon pool around it):
/// only this shard's units are computed; the study's own report of its partial results is
/// discarded.
pub fn run_shard(
    prepared: &dyn Prepared,
    spec: ShardSpec,
    threads: usize,
    progress: Option<Progress>,
) -> Result<ShardFile> {
    let config = prepared.config_json()?;
    let t0 = Instant::now();
    let (outcome, calls) = super::compute_scope(spec, || prepared.run(threads, progress));
    outcome.map_err(|e| {
        Error::Shard(format!(
            "shard {spec} of {}: the study stopped: {e}",
            prepared.study()
        ))
    })?;
    Ok(ShardFile {
        header: ShardHeader {
            format: FORMAT,
            study: prepared.study().to_string(),
            samsde_version: env!("CARGO_PKG_VERSION").to_string(),
            seed: config.get("seed").and_then(serde_json::Value::as_u64),
            config: serde_json::to_string(&config).map_err(|e| {
                Error::Unsupported(format!("cannot serialise the configuration: {e}"))
            })?,
            index: spec.index,
            count: spec.count,
            elapsed_s: t0.elapsed().as_secs_f64(),
        },
        calls,
    })
}

/// A checked, complete set of shards of one run.
#[derive(Debug)]
pub struct ShardSet {
    /// The first shard's header (all agree on study, version, configuration and `N`).
    pub header: ShardHeader,
    /// The files, by shard index.
    pub files: Vec<PathBuf>,
    calls: Vec<MergedCall>,
}

impl ShardSet {
    /// Study name.
    pub fn study(&self) -> &str {
        &self.header.study
    }
    /// Number of recorded calls.
    pub fn calls(&self) -> usize {
        self.calls.len()
    }
    /// Number of units over all calls.
    pub fn units(&self) -> usize {
        self.calls.iter().map(|c| c.units.len()).sum()
    }
}

/// The shard files among `inputs`: files as given, folders searched (not recursively) for
/// `*.shard-*-of-*.bin`.
pub fn collect_files(inputs: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for p in inputs {
        if p.is_dir() {
            let rd = std::fs::read_dir(p).map_err(|e| Error::Io {
                context: format!("cannot read the folder {}", p.display()),
                source: e,
            })?;
            let mut found: Vec<PathBuf> = rd
                .flatten()
                .map(|e| e.path())
                .filter(|q| {
                    q.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| n.contains(".shard-") && n.ends_with(".bin"))
                })
                .collect();
            if found.is_empty() {
                return Err(Error::Shard(format!(
                    "{} holds no shard file (*.shard-I-of-N.bin)",
                    p.display()
                )));
            }
            found.sort();
            out.extend(found);
        } else {
            out.push(p.clone());
        }
    }
    if out.is_empty() {
        return Err(Error::Shard("no shard files given".into()));
    }
    Ok(out)
}

/// The first field (dotted path) where two JSON values differ.
fn first_difference(a: &serde_json::Value, b: &serde_json::Value, path: &str) -> Option<String> {
    use serde_json::Value;
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            for (k, va) in x {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                match y.get(k) {
                    None => return Some(p),
                    Some(vb) => {
                        if let Some(d) = first_difference(va, vb, &p) {
                            return Some(d);
                        }
                    }
                }
            }
            y.keys().find(|k| !x.contains_key(*k)).map(|k| {
                if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                }
            })
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => x
            .iter()
            .zip(y)
            .enumerate()
            .find_map(|(i, (va, vb))| first_difference(va, vb, &format!("{path}[{i}]"))),
        _ if a == b => None,
        _ => Some(if path.is_empty() {
            "(the whole configuration)".into()
        } else {
            path.to_string()
        }),
    }
}

/// Reads and checks shard files: they must be all `N` shards of one run, each once.
pub fn load(files: &[PathBuf]) -> Result<ShardSet> {
    let mut shards: Vec<(PathBuf, ShardFile)> = Vec::new();
    for p in files {
        let bytes = std::fs::read(p).map_err(|e| Error::Io {
            context: format!("cannot read shard file {}", p.display()),
            source: e,
        })?;
        shards.push((
            p.clone(),
            ShardFile::from_bytes(&bytes, &p.display().to_string())?,
        ));
    }
    check(shards)
}

/// The checks of [`load`] on parsed files.
pub fn check(shards: Vec<(PathBuf, ShardFile)>) -> Result<ShardSet> {
    let (p0, f0) = shards
        .first()
        .ok_or_else(|| Error::Shard("no shard files given".into()))?;
    let h0 = f0.header.clone();
    let name0 = p0.display().to_string();
    let config0: serde_json::Value = serde_json::from_str(&h0.config)
        .map_err(|e| Error::Shard(format!("{name0}: its configuration is not JSON: {e}")))?;
    for (p, f) in &shards[1..] {
        let h = &f.header;
        let name = p.display().to_string();
        let refuse = |what: &str, a: &dyn std::fmt::Display, b: &dyn std::fmt::Display| {
            Error::Shard(format!(
                "{name0} and {name} do not belong together: {what} {a} vs {b}; merge only the \
                 shards of one run (same study, version, seed and configuration)"
            ))
        };
        if h.study != h0.study {
            return Err(refuse("study", &h0.study, &h.study));
        }
        if h.samsde_version != h0.samsde_version {
            return Err(refuse(
                "samsde version",
                &h0.samsde_version,
                &h.samsde_version,
            ));
        }
        if h.seed != h0.seed {
            let s = |x: Option<u64>| x.map_or("none".into(), |v| v.to_string());
            return Err(refuse("seed", &s(h0.seed), &s(h.seed)));
        }
        if h.config != h0.config {
            let c: serde_json::Value = serde_json::from_str(&h.config)
                .map_err(|e| Error::Shard(format!("{name}: its configuration is not JSON: {e}")))?;
            let field = first_difference(&config0, &c, "")
                .unwrap_or_else(|| "(the configuration text)".into());
            let val = |v: &serde_json::Value| {
                field
                    .split('.')
                    .try_fold(v, |v, k| v.get(k))
                    .map_or("(absent)".into(), |x| x.to_string())
            };
            return Err(refuse(
                &format!("configuration field `{field}`"),
                &val(&config0),
                &val(&c),
            ));
        }
        if h.count != h0.count {
            return Err(refuse("shard count N", &h0.count, &h.count));
        }
    }
    // Each index 1..=N exactly once.
    let n = h0.count;
    let mut by_index: BTreeMap<usize, PathBuf> = BTreeMap::new();
    for (p, f) in &shards {
        if let Some(prev) = by_index.insert(f.header.index, p.clone()) {
            return Err(Error::Shard(format!(
                "shard {}/{n} given twice ({} and {}); give each shard once",
                f.header.index,
                prev.display(),
                p.display()
            )));
        }
    }
    let missing: Vec<String> = (1..=n)
        .filter(|i| !by_index.contains_key(i))
        .map(|i| format!("{i}/{n}"))
        .collect();
    if !missing.is_empty() {
        return Err(Error::Shard(format!(
            "{} of {}: shard(s) {} missing (have {}); run `sde-check {} --shard I/{n}` for them",
            h0.study,
            n,
            missing.join(", "),
            by_index
                .keys()
                .map(|i| format!("{i}/{n}"))
                .collect::<Vec<_>>()
                .join(", "),
            h0.study
        )));
    }
    // The same calls, and every unit of every call exactly once.
    let n_calls = f0.calls.len();
    for (p, f) in &shards {
        if f.calls.len() != n_calls {
            return Err(Error::Shard(format!(
                "{name0} recorded {n_calls} calls, {} recorded {}: the shards ran different \
                 computations",
                p.display(),
                f.calls.len()
            )));
        }
    }
    let mut calls = Vec::with_capacity(n_calls);
    let mut shards = shards;
    for c in 0..n_calls {
        let (fp, units, what) = {
            let r = &shards[0].1.calls[c];
            (r.fingerprint, r.units, r.what.clone())
        };
        let mut slots: Vec<Option<Vec<u8>>> = (0..units).map(|_| None).collect();
        for (p, f) in &mut shards {
            let r = &mut f.calls[c];
            if r.fingerprint != fp || r.units != units || r.call != c as u64 {
                return Err(Error::Shard(format!(
                    "call {c} differs between {name0} (`{what}`) and {} (`{}`): the shards ran \
                     different computations",
                    p.display(),
                    r.what
                )));
            }
            for (u, bytes) in std::mem::take(&mut r.owned) {
                let slot = slots.get_mut(u as usize).ok_or_else(|| {
                    Error::Shard(format!(
                        "{}: call {c} records unit {u} of {units}",
                        p.display()
                    ))
                })?;
                if slot.replace(bytes).is_some() {
                    return Err(Error::Shard(format!(
                        "call {c} unit {u} is recorded twice (again by {})",
                        p.display()
                    )));
                }
            }
        }
        let units: Vec<Vec<u8>> = slots
            .into_iter()
            .enumerate()
            .map(|(u, s)| {
                s.ok_or_else(|| {
                    Error::Shard(format!(
                        "call {c} ({what}): unit {u} was computed by no shard"
                    ))
                })
            })
            .collect::<Result<_>>()?;
        calls.push(MergedCall {
            fingerprint: fp,
            what,
            units,
        });
    }
    Ok(ShardSet {
        header: h0,
        files: by_index.into_values().collect(),
        calls,
    })
}

/// Runs the study of `set` in merge mode on the current thread (install the rayon pool around
/// it): the recorded units stand in for the computation and are folded in order, so the result
/// equals a single run's. Returns the study's name and its finished report.
pub fn merge(
    set: ShardSet,
    threads: usize,
    progress: Option<Progress>,
) -> Result<(&'static str, Box<dyn Finished>)> {
    let entry = registry::find(&set.header.study).ok_or_else(|| {
        Error::Shard(format!(
            "the shards are of study `{}`, which this sde-check does not have",
            set.header.study
        ))
    })?;
    if set.header.samsde_version != env!("CARGO_PKG_VERSION") {
        return Err(Error::Shard(format!(
            "the shards were computed by samsde {}, this is samsde {}: merge with the same version",
            set.header.samsde_version,
            env!("CARGO_PKG_VERSION")
        )));
    }
    let text = format!(
        "{{\"study\": {}, \"config\": {}}}",
        serde_json::Value::String(set.header.study.clone()),
        set.header.config
    );
    let prepared = (entry.prepare)(&text, &Overrides::default())?;
    let n_calls = set.calls.len() as u64;
    quiet_mismatch_panics();
    let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        super::merge_scope(set.calls, || prepared.run(threads, progress))
    }));
    match run {
        Ok((finished, used)) => {
            let finished = finished?;
            if used != n_calls {
                return Err(Error::Shard(format!(
                    "the shards recorded {n_calls} calls but the merge used {used}: they ran a \
                     different computation (version or configuration)"
                )));
            }
            Ok((entry.name, finished))
        }
        Err(payload) => match payload.downcast::<Mismatch>() {
            Ok(m) => Err(Error::Shard(m.0)),
            Err(other) => std::panic::resume_unwind(other),
        },
    }
}

/// The default panic hook prints every panic; a merge's refusal is reported as an error
/// instead, so its panic stays silent (other panics print as before).
fn quiet_mismatch_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if info.payload().downcast_ref::<Mismatch>().is_none() {
                previous(info);
            }
        }));
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn first_difference_names_the_field() {
        let a = json!({"seed": 1, "schedule": {"eta0": 0.1, "halvings": 3}});
        let b = json!({"seed": 1, "schedule": {"eta0": 0.2, "halvings": 3}});
        assert_eq!(
            first_difference(&a, &b, "").as_deref(),
            Some("schedule.eta0")
        );
        assert_eq!(first_difference(&a, &a, ""), None);
    }

    #[test]
    fn not_a_shard_file_is_refused() {
        let e = ShardFile::from_bytes(b"{\"study\": 1}", "x.json")
            .unwrap_err()
            .to_string();
        assert!(e.contains("not a samsde shard file"), "{e}");
        let mut bytes = MAGIC.to_vec();
        bytes.extend_from_slice(&[0xff, 0x00, 0x13]);
        let e = ShardFile::from_bytes(&bytes, "y.bin")
            .unwrap_err()
            .to_string();
        assert!(e.contains("damaged"), "{e}");
    }
}
