//! Result files, written atomically: every file is first written to a temporary name in the
//! destination folder and renamed into place only after *all* files of the run were produced,
//! so an error (or Ctrl-C) never leaves a half-written result behind.

use std::fs;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Files staged for one run.
#[derive(Debug)]
pub struct Staging {
    dir: PathBuf,
    staged: Vec<(PathBuf, PathBuf)>,
}

impl Staging {
    /// Stages files for `dir` (created if missing).
    pub fn new(dir: &Path) -> Result<Self> {
        fs::create_dir_all(dir).map_err(|e| Error::Io {
            context: format!("cannot create output folder {}", dir.display()),
            source: e,
        })?;
        Ok(Self {
            dir: dir.to_path_buf(),
            staged: Vec::new(),
        })
    }

    /// The temporary path a file named `name` is written to before the commit.
    /// The extension is kept (image encoders choose the format from it).
    pub fn temp_path(&self, name: &str) -> PathBuf {
        let (stem, ext) = name.rsplit_once('.').unwrap_or((name, "tmp"));
        self.dir
            .join(format!(".{stem}.tmp-{}.{ext}", std::process::id()))
    }

    /// Stages `bytes` as `name`.
    pub fn bytes(&mut self, name: &str, bytes: &[u8]) -> Result<()> {
        let tmp = self.temp_path(name);
        fs::write(&tmp, bytes).map_err(|e| Error::Io {
            context: format!("cannot write {}", tmp.display()),
            source: e,
        })?;
        self.staged.push((tmp, self.dir.join(name)));
        Ok(())
    }

    /// Stages a file produced by `write(tmp_path)` as `name` (used for figures).
    pub fn with<F: FnOnce(&Path) -> Result<()>>(&mut self, name: &str, write: F) -> Result<()> {
        let tmp = self.temp_path(name);
        match write(&tmp) {
            Ok(()) => {
                self.staged.push((tmp, self.dir.join(name)));
                Ok(())
            }
            Err(e) => {
                let _ = fs::remove_file(&tmp);
                Err(e)
            }
        }
    }

    /// Renames every staged file into place; returns the final paths.
    pub fn commit(mut self) -> Result<Vec<PathBuf>> {
        let staged = std::mem::take(&mut self.staged);
        let mut done = Vec::new();
        for (tmp, dest) in staged {
            fs::rename(&tmp, &dest).map_err(|e| Error::Io {
                context: format!("cannot move {} to {}", tmp.display(), dest.display()),
                source: e,
            })?;
            done.push(dest);
        }
        Ok(done)
    }
}

impl Drop for Staging {
    /// Removes temporaries of an uncommitted staging (an error happened).
    fn drop(&mut self) {
        for (tmp, _) in &self.staged {
            let _ = fs::remove_file(tmp);
        }
    }
}

/// Creates `dir` if missing and checks that a file can be created in it, so a bad `--out`
/// fails before a long run instead of after it.
pub fn check_writable(dir: &Path) -> Result<()> {
    fs::create_dir_all(dir).map_err(|e| Error::Io {
        context: format!("--out {}: cannot create the output folder", dir.display()),
        source: e,
    })?;
    let probe = dir.join(format!(".samsde-write-check-{}", std::process::id()));
    fs::write(&probe, b"").map_err(|e| Error::Io {
        context: format!(
            "--out {}: cannot write into the output folder",
            dir.display()
        ),
        source: e,
    })?;
    let _ = fs::remove_file(&probe);
    Ok(())
}

/// Pretty JSON of a serialisable value.
pub fn to_json<T: serde::Serialize>(value: &T) -> Result<Vec<u8>> {
    let mut s = serde_json::to_vec_pretty(value)
        .map_err(|e| Error::Unsupported(format!("cannot serialise results: {e}")))?;
    s.push(b'\n');
    Ok(s)
}
