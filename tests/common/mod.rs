//! Fixtures shared by the integration tests: running the `sde-check` binary, temporary folders,
//! a tiny convergence configuration, and strict readers for the result files.
//!
//! Each test file that uses it says `mod common;`; not every file uses every helper, hence the
//! `dead_code` allowance.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub use tempfile::TempDir;

/// A fresh temporary folder (removed when dropped).
pub fn tempdir() -> TempDir {
    tempfile::tempdir().expect("create a temporary folder")
}

/// A convergence run that takes well under a second: SGD and USAM against their own SDEs on a
/// 3-D Wishart quadratic, two learning rates, 64 paths.
pub const TINY_CONVERGENCE: &str = r#"
seed = 3
paths = 64
block_size = 32
algorithms = ["sgd", "usam"]
models = ["own_sde"]
test_functions = ["norm_sq"]
[landscape]
kind = "quadratic"
hessian = { kind = "wishart", dim = 3, seed = 1 }
[oracle]
kind = "additive"
sigma = 0.5
[start]
kind = "constant"
value = 1.0
[schedule]
eta0 = 0.1
halvings = 1
rho0 = 0.1
rho_power = 0.5
horizon = 0.4
"#;

/// The `sde-check` binary with these arguments; its full output.
pub fn sde_check_output<I, S>(args: I) -> Output
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    Command::new(env!("CARGO_BIN_EXE_sde-check"))
        .args(args)
        .output()
        .expect("run sde-check")
}

/// The `sde-check` binary with these arguments: `(exit code, stdout, stderr)` (exit code `-1`
/// if killed by a signal).
pub fn sde_check<I, S>(args: I) -> (i32, String, String)
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    let out = sde_check_output(args);
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A path as `&str` (test paths are UTF-8), for argument lists.
pub fn p(path: &Path) -> &str {
    path.to_str().expect("UTF-8 path")
}

/// Writes `text` to `dir/name` and returns the path.
pub fn write_file(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap_or_else(|e| panic!("write {}: {e}", p.display()));
    p
}

/// Parses a JSON file.
pub fn read_json(path: &Path) -> serde_json::Value {
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}

/// The header fields every result JSON carries (`src/study/header.rs`).
pub const HEADER_FIELDS: [&str; 7] = [
    "study",
    "samsde_version",
    "config",
    "seed",
    "threads",
    "elapsed_s",
    "warnings",
];

/// Checks the shared result contract of a report: the header fields, a `verdicts` list whose
/// every `verdict` is `pass`, `fail` or `inconclusive`, and an `observations` list.
pub fn check_report_contract(v: &serde_json::Value, what: &str) {
    for key in HEADER_FIELDS {
        assert!(v.get(key).is_some(), "{what}: missing header field {key}");
    }
    let verdicts = v["verdicts"]
        .as_array()
        .unwrap_or_else(|| panic!("{what}: no `verdicts` list"));
    for x in verdicts {
        let d = x["verdict"].as_str().unwrap_or("<missing>");
        assert!(
            ["pass", "fail", "inconclusive"].contains(&d),
            "{what}: verdict {d:?} in {x}"
        );
        for key in ["claim", "claim_kind", "measured", "expected", "reason"] {
            assert!(x.get(key).is_some(), "{what}: verdict without {key}: {x}");
        }
    }
    assert!(
        v["observations"].is_array(),
        "{what}: no `observations` list"
    );
}

/// A CSV file read strictly (RFC 4180): one header line of distinct non-empty names, then rows
/// with exactly as many fields; no blank lines, no second header. Returns the header and rows.
///
/// # Panics
/// With the reason, if the file is not such a table.
pub fn read_csv_strict(path: &Path) -> (Vec<String>, Vec<Vec<String>>) {
    check_csv(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// [`read_csv_strict`] returning the reason instead of panicking.
pub fn check_csv(path: &Path) -> Result<(Vec<String>, Vec<Vec<String>>), String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read: {e}"))?;
    let records = parse_csv(&text)?;
    let (header, rows) = records.split_first().ok_or("empty file")?;
    for (i, h) in header.iter().enumerate() {
        if h.is_empty() {
            return Err(format!("empty column name {i}"));
        }
        if header[..i].contains(h) {
            return Err(format!("column {h:?} appears twice"));
        }
    }
    for (i, r) in rows.iter().enumerate() {
        if r.len() != header.len() {
            return Err(format!(
                "row {} has {} fields, the header {}: {r:?}",
                i + 2,
                r.len(),
                header.len()
            ));
        }
        if r == header {
            return Err(format!("the header repeats on row {}", i + 2));
        }
    }
    Ok((header.clone(), rows.to_vec()))
}

/// Splits CSV text into records; errors on blank lines, stray quotes and a missing final newline.
fn parse_csv(text: &str) -> Result<Vec<Vec<String>>, String> {
    if !text.ends_with('\n') {
        return Err("no newline at the end".into());
    }
    let mut records = Vec::new();
    let mut record = Vec::new();
    let mut field = String::new();
    let mut chars = text.chars().peekable();
    let mut line = 1;
    let mut quoted_field = false;
    while let Some(c) = chars.next() {
        match c {
            '"' if field.is_empty() && !quoted_field => {
                quoted_field = true;
                loop {
                    match chars.next() {
                        Some('"') if chars.peek() == Some(&'"') => {
                            chars.next();
                            field.push('"');
                        }
                        Some('"') => break,
                        Some(ch) => {
                            if ch == '\n' {
                                line += 1;
                            }
                            field.push(ch);
                        }
                        None => return Err(format!("line {line}: unterminated quote")),
                    }
                }
                if !matches!(chars.peek(), Some(',') | Some('\n')) {
                    return Err(format!("line {line}: text after a closing quote"));
                }
            }
            '"' => return Err(format!("line {line}: quote inside an unquoted field")),
            ',' => {
                record.push(std::mem::take(&mut field));
                quoted_field = false;
            }
            '\n' => {
                record.push(std::mem::take(&mut field));
                quoted_field = false;
                if record.len() == 1 && record[0].is_empty() {
                    return Err(format!("line {line}: blank line"));
                }
                records.push(std::mem::take(&mut record));
                line += 1;
            }
            '\r' => return Err(format!("line {line}: carriage return")),
            c => field.push(c),
        }
    }
    Ok(records)
}
