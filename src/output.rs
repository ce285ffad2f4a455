//! Result files, written all-or-nothing.
//!
//! Every file of a run is first written to a temporary name in the destination folder
//! (`.NAME.tmp-PID.EXT`). Only when *all* of them exist does [`Staging::commit`] move them into
//! place, in three phases: (1) check every target (a folder where a result file should go is an
//! error before anything moves); (2) move each existing result aside to a backup name
//! (`.NAME.bak-PID.EXT`); (3) rename each temporary into place. If a rename fails part-way, the
//! new files already moved are removed and the backups restored, so the folder holds either the
//! complete old result set or the complete new one — never a mix.
//!
//! Interrupts: every temporary and backup path is registered in a process-wide list while it
//! exists. [`interrupted`] (called by the binary's SIGINT/SIGTERM handler) waits for a commit in
//! progress to finish, removes what is registered, and returns; so a signal during the
//! computation or the writing leaves the previous results intact and no temporary behind.
//! Temporaries of a process that died without cleaning up (e.g. `kill -9`) are swept by the next
//! run writing into the same folder.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, RwLock};

use crate::error::{Error, Result};

/// Paths that exist only while a result set is being written (temporaries and backups).
static LIVE: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());
/// Folders [`check_writable`] created (deepest first), removed again if they are still empty
/// when the run fails or is interrupted ([`remove_created_folders`]).
static CREATED: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());
/// Held for the whole commit, so an interrupt cannot cut it in half.
static COMMIT: Mutex<()> = Mutex::new(());
/// Held (shared) while a temporary is being created and written, so an interrupt never removes
/// a path that a writer is about to create.
static WRITING: RwLock<()> = RwLock::new(());

fn register(p: &Path) {
    LIVE.lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(p.to_path_buf());
}

fn unregister(p: &Path) {
    let mut live = LIVE.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(i) = live.iter().position(|q| q == p) {
        live.swap_remove(i);
    }
}

/// Cleans up after an interrupt: waits for a commit in progress, then removes every registered
/// temporary. Backups only exist inside a commit, which has finished (and removed them) by the
/// time the lock is acquired. Returns the number of files removed.
/// Call it only to end the process: writers that start afterwards wait forever.
pub fn interrupted() -> usize {
    let _commit = COMMIT.lock().unwrap_or_else(|e| e.into_inner());
    let writing = WRITING.write().unwrap_or_else(|e| e.into_inner());
    std::mem::forget(writing); // keep new writers out until the process exits
    let live = std::mem::take(&mut *LIVE.lock().unwrap_or_else(|e| e.into_inner()));
    let removed = live.iter().filter(|p| fs::remove_file(p).is_ok()).count();
    remove_created_folders();
    removed
}

/// Removes the output folders this process created ([`check_writable`]) if they are empty: a
/// run that fails or is interrupted leaves no empty folder behind. Never removes anything else
/// (`remove_dir` refuses a folder that is not empty).
pub fn remove_created_folders() {
    let created = std::mem::take(&mut *CREATED.lock().unwrap_or_else(|e| e.into_inner()));
    for d in &created {
        let _ = fs::remove_dir(d);
    }
}

/// `Some(pid)` for a file name `.STEM.tmp-PID.EXT`, `.STEM.bak-PID.EXT` or
/// `.samsde-write-check-PID` written by this module.
fn owner_pid(name: &str) -> Option<u32> {
    if let Some(rest) = name.strip_prefix(".samsde-write-check-") {
        return rest.parse().ok();
    }
    let rest = name.strip_prefix('.')?;
    let (_, tail) = rest
        .rsplit_once(".tmp-")
        .or_else(|| rest.rsplit_once(".bak-"))?;
    let pid = tail.split('.').next()?;
    pid.parse().ok()
}

fn process_alive(pid: u32) -> bool {
    if pid == std::process::id() {
        return true;
    }
    // Linux: /proc/PID exists while the process does. Elsewhere, assume alive (never remove).
    if Path::new("/proc/self").exists() {
        Path::new(&format!("/proc/{pid}")).exists()
    } else {
        true
    }
}

/// Removes temporaries and backups left in `dir` by processes that no longer exist. Returns how
/// many were removed.
pub fn sweep_stale(dir: &Path) -> usize {
    let Ok(entries) = fs::read_dir(dir) else {
        return 0;
    };
    let mut n = 0;
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(name) = name.to_str() else { continue };
        if let Some(pid) = owner_pid(name) {
            if !process_alive(pid) && fs::remove_file(e.path()).is_ok() {
                n += 1;
            }
        }
    }
    n
}

/// Testing aid: `SAMSDE_TEST_WRITE_DELAY_MS=N` sleeps `N` ms after each staged file is written,
/// so the interrupt tests can send a signal *during* the write phase. Unset: no effect.
fn write_delay() {
    if let Some(ms) = std::env::var("SAMSDE_TEST_WRITE_DELAY_MS")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
    {
        std::thread::sleep(std::time::Duration::from_millis(ms.min(60_000)));
    }
}

/// Files staged for one run.
#[derive(Debug)]
pub struct Staging {
    dir: PathBuf,
    staged: Vec<(PathBuf, PathBuf)>,
}

impl Staging {
    /// Stages files for `dir` (created if missing); sweeps stale temporaries there.
    pub fn new(dir: &Path) -> Result<Self> {
        fs::create_dir_all(dir).map_err(|e| Error::Io {
            context: format!("cannot create output folder {}", dir.display()),
            source: e,
        })?;
        sweep_stale(dir);
        Ok(Self {
            dir: dir.to_path_buf(),
            staged: Vec::new(),
        })
    }

    fn side_path(&self, name: &str, kind: &str) -> PathBuf {
        let (stem, ext) = name.rsplit_once('.').unwrap_or((name, "tmp"));
        self.dir
            .join(format!(".{stem}.{kind}-{}.{ext}", std::process::id()))
    }

    /// The temporary path a file named `name` is written to before the commit.
    /// The extension is kept (image encoders choose the format from it).
    pub fn temp_path(&self, name: &str) -> PathBuf {
        self.side_path(name, "tmp")
    }

    /// Stages `bytes` as `name`.
    pub fn bytes(&mut self, name: &str, bytes: &[u8]) -> Result<()> {
        self.with(name, |tmp| {
            fs::write(tmp, bytes).map_err(|e| Error::Io {
                context: format!("cannot write {}", tmp.display()),
                source: e,
            })
        })
    }

    /// Stages a file produced by `write(tmp_path)` as `name` (used for figures).
    pub fn with<F: FnOnce(&Path) -> Result<()>>(&mut self, name: &str, write: F) -> Result<()> {
        let tmp = self.temp_path(name);
        {
            let _writing = WRITING.read().unwrap_or_else(|e| e.into_inner());
            register(&tmp);
            if let Err(e) = write(&tmp) {
                let _ = fs::remove_file(&tmp);
                unregister(&tmp);
                return Err(e);
            }
            self.staged.push((tmp, self.dir.join(name)));
        }
        write_delay();
        Ok(())
    }

    /// Moves every staged file into place, all or nothing; returns the final paths.
    pub fn commit(mut self) -> Result<Vec<PathBuf>> {
        let _commit = COMMIT.lock().unwrap_or_else(|e| e.into_inner());
        let staged = std::mem::take(&mut self.staged);
        // Phase 1: every target must be a file or absent.
        for (_, dest) in &staged {
            if dest.is_dir() {
                self.staged = staged.clone(); // Drop removes the temporaries.
                return Err(Error::Io {
                    context: format!(
                        "cannot write {}: a folder of that name is in the way; nothing was replaced",
                        dest.display()
                    ),
                    source: std::io::Error::other("target is a directory"),
                });
            }
        }
        // Phase 2: move existing results aside.
        let mut backups: Vec<(PathBuf, PathBuf)> = Vec::new();
        for (_, dest) in &staged {
            if dest.exists() {
                let name = dest
                    .file_name()
                    .and_then(|n| n.to_str())
                    .unwrap_or("result");
                let bak = self.side_path(name, "bak");
                register(&bak);
                if let Err(e) = fs::rename(dest, &bak) {
                    unregister(&bak);
                    restore(&backups);
                    self.staged = staged.clone();
                    return Err(Error::Io {
                        context: format!(
                            "cannot replace {}; the previous results were kept",
                            dest.display()
                        ),
                        source: e,
                    });
                }
                backups.push((bak, dest.clone()));
            }
        }
        // Phase 3: move the new files in.
        let mut done: Vec<PathBuf> = Vec::new();
        for (tmp, dest) in &staged {
            if let Err(e) = fs::rename(tmp, dest) {
                for d in &done {
                    let _ = fs::remove_file(d);
                }
                restore(&backups);
                self.staged = staged.clone();
                return Err(Error::Io {
                    context: format!(
                        "cannot move {} to {}; the previous results were restored",
                        tmp.display(),
                        dest.display()
                    ),
                    source: e,
                });
            }
            unregister(tmp);
            done.push(dest.clone());
        }
        for (bak, _) in &backups {
            let _ = fs::remove_file(bak);
            unregister(bak);
        }
        Ok(done)
    }
}

/// Moves backups back to their original names.
fn restore(backups: &[(PathBuf, PathBuf)]) {
    for (bak, dest) in backups {
        let _ = fs::rename(bak, dest);
        unregister(bak);
    }
}

impl Drop for Staging {
    /// Removes temporaries of an uncommitted staging (an error happened).
    fn drop(&mut self) {
        for (tmp, _) in &self.staged {
            let _ = fs::remove_file(tmp);
            unregister(tmp);
        }
    }
}

/// Creates `dir` if missing and checks that a file can be created in it, so a bad `--out`
/// fails before a long run instead of after it.
pub fn check_writable(dir: &Path) -> Result<()> {
    // The folders about to be created, deepest first (removed again on failure).
    let mut missing = Vec::new();
    let mut p = Some(dir);
    while let Some(d) = p.filter(|d| !d.as_os_str().is_empty() && !d.exists()) {
        missing.push(d.to_path_buf());
        p = d.parent();
    }
    let made = fs::create_dir_all(dir);
    CREATED
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .extend(missing.into_iter().filter(|d| d.is_dir()));
    made.map_err(|e| Error::Io {
        context: format!("--out {}: cannot create the output folder", dir.display()),
        source: e,
    })?;
    let probe = dir.join(format!(".samsde-write-check-{}", std::process::id()));
    if let Err(e) = fs::write(&probe, b"") {
        let _ = fs::remove_file(&probe);
        remove_created_folders();
        return Err(Error::Io {
            context: format!(
                "--out {}: cannot write into the output folder",
                dir.display()
            ),
            source: e,
        });
    }
    let _ = fs::remove_file(&probe);
    Ok(())
}

/// Pretty JSON of a serialisable value. JSON has no NaN or infinity: non-finite numbers are
/// written as `null` (the README's JSON contract says where that can happen).
pub fn to_json<T: serde::Serialize>(value: &T) -> Result<Vec<u8>> {
    let mut s = serde_json::to_vec_pretty(value)
        .map_err(|e| Error::Unsupported(format!("cannot serialise results: {e}")))?;
    s.push(b'\n');
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn commit_replaces_the_whole_set() {
        let d = tempfile::tempdir().unwrap();
        fs::write(d.path().join("a.json"), "old a").unwrap();
        fs::write(d.path().join("b.csv"), "old b").unwrap();
        let mut st = Staging::new(d.path()).unwrap();
        st.bytes("a.json", b"new a").unwrap();
        st.bytes("b.csv", b"new b").unwrap();
        st.commit().unwrap();
        assert_eq!(names(d.path()), ["a.json", "b.csv"]);
        assert_eq!(
            fs::read_to_string(d.path().join("a.json")).unwrap(),
            "new a"
        );
        assert_eq!(fs::read_to_string(d.path().join("b.csv")).unwrap(), "new b");
    }

    #[test]
    fn a_folder_in_the_way_changes_nothing() {
        let d = tempfile::tempdir().unwrap();
        fs::write(d.path().join("a.json"), "old a").unwrap();
        fs::create_dir(d.path().join("b.csv")).unwrap();
        let mut st = Staging::new(d.path()).unwrap();
        st.bytes("a.json", b"new a").unwrap();
        st.bytes("b.csv", b"new b").unwrap();
        let e = st.commit().unwrap_err().to_string();
        assert!(e.contains("b.csv"), "{e}");
        assert_eq!(names(d.path()), ["a.json", "b.csv"]);
        assert_eq!(
            fs::read_to_string(d.path().join("a.json")).unwrap(),
            "old a"
        );
    }

    #[test]
    fn stale_temporaries_of_dead_processes_are_swept() {
        if !Path::new("/proc/self").exists() {
            return; // the sweep needs /proc to tell dead processes from live ones
        }
        let d = tempfile::tempdir().unwrap();
        // PID 4194304 is above Linux's PID_MAX_LIMIT (2^22), so no process can have it.
        fs::write(d.path().join(".convergence.tmp-4194304.json"), "x").unwrap();
        fs::write(d.path().join(".samsde-write-check-4194304"), "").unwrap();
        let own = format!(".convergence.tmp-{}.json", std::process::id());
        fs::write(d.path().join(&own), "x").unwrap();
        fs::write(d.path().join("keep.json"), "x").unwrap();
        assert_eq!(sweep_stale(d.path()), 2);
        assert_eq!(names(d.path()), [own.as_str(), "keep.json"]);
    }

    #[test]
    fn owner_pid_parses_only_our_names() {
        assert_eq!(owner_pid(".saddle_phase.tmp-123.png"), Some(123));
        assert_eq!(owner_pid(".a.b.bak-77.csv"), Some(77));
        assert_eq!(owner_pid(".samsde-write-check-9"), Some(9));
        assert_eq!(owner_pid("saddle.json"), None);
        assert_eq!(owner_pid(".hidden"), None);
    }
}
