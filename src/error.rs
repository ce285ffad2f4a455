//! Typed errors of the library. They carry the numbers that explain them, so that the
//! binary can print `error: <field> must be …, got <value>` and exit with code 2.

use thiserror::Error;

/// Every failure the library reports. The binary maps all of them to exit code 2.
#[derive(Debug, Error)]
pub enum Error {
    /// A configuration value is out of range or inconsistent. `field` is the dotted path
    /// of the offending key (`schedule.eta0`), `value` its printed value.
    #[error("{field} {reason}, got {value}")]
    Config {
        field: String,
        value: String,
        reason: String,
    },
    /// The configuration file could not be parsed (unknown key, wrong type, bad TOML).
    #[error("cannot parse configuration: {0}")]
    Parse(String),
    /// A matrix that must be positive semi-definite is not.
    #[error("{what} is not positive semi-definite: smallest eigenvalue {min_eig:.3e}")]
    NotPsd { what: String, min_eig: f64 },
    /// Dimensions of two objects disagree.
    #[error("{what}: expected dimension {expected}, got {got}")]
    Dimension {
        what: String,
        expected: usize,
        got: usize,
    },
    /// A computation that needs a feature the chosen landscape/oracle does not have.
    #[error("{0}")]
    Unsupported(String),
    /// Input/output failure while writing results.
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    /// Plotting failure.
    #[error("plot {0}")]
    Plot(String),
    /// Shard files that do not belong together (or are damaged); see `crate::shard`.
    #[error("{0}")]
    Shard(String),
    /// A run that cannot be done as configured: a product of sizes overflows, the estimated
    /// memory exceeds the limit, or the estimated time exceeds the limit without `--yes`
    /// (see [`crate::study::budget`]). `fields` names the configuration fields that set the size.
    #[error("{fields}: {message}")]
    TooLarge { fields: String, message: String },
}

impl Error {
    /// Shorthand for a configuration error naming `field` and the offending `value`.
    pub fn config(
        field: impl Into<String>,
        value: impl std::fmt::Display,
        reason: impl Into<String>,
    ) -> Self {
        Error::Config {
            field: field.into(),
            value: tidy_numbers(&value.to_string()),
            reason: tidy_numbers(&reason.into()),
        }
    }

    /// The configuration field(s) an error names, if it is about the configuration.
    pub fn field(&self) -> Option<&str> {
        match self {
            Error::Config { field, .. } => Some(field),
            Error::TooLarge { fields, .. } => Some(fields),
            _ => None,
        }
    }
}

/// Rewrites every decimal number in `s` that `f64`'s `Display` spelled out at length (`1e300`
/// prints 301 digits, `1e-300` 302 characters) in scientific notation, so messages stay short:
/// a run of more than 20 digits (longer than any `u64`) or a decimal fraction below `1e-4` or
/// from `1e16` up. Integers of `u64` size and ordinary decimals are left as written.
pub fn tidy_numbers(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = String::with_capacity(s.len().min(256));
    let mut i = 0;
    let mut last = 0;
    while i < b.len() {
        let starts = b[i].is_ascii_digit() && (i == 0 || !is_word(b[i - 1]));
        if !starts {
            i += 1;
            continue;
        }
        let mut j = i;
        while j < b.len() && (b[j].is_ascii_digit() || b[j] == b'.') {
            j += 1;
        }
        // Already scientific, or part of a longer word (`1e300`, `f64`, `x2`): leave it.
        let glued = j < b.len() && (is_word(b[j]) || b[j] == b'e' || b[j] == b'E');
        let token = &s[i..j];
        if !glued {
            if let Some(short) = shorten(token) {
                out.push_str(&s[last..i]);
                out.push_str(&short);
                last = j;
            }
        }
        i = j;
    }
    out.push_str(&s[last..]);
    out
}

fn is_word(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

fn shorten(token: &str) -> Option<String> {
    let dots = token.bytes().filter(|&c| c == b'.').count();
    let digits = token.len() - dots;
    let x: f64 = token.trim_end_matches('.').parse().ok()?;
    let long = match dots {
        0 => digits > 20,
        1 => x != 0.0 && !(1e-4..1e16).contains(&x),
        _ => return None,
    };
    long.then(|| format!("{x:e}"))
}

/// Library result type.
pub type Result<T> = std::result::Result<T, Error>;

/// A spectral radius or growth rate for an error message: four decimals near the stability
/// threshold, scientific notation once it has blown up (a huge η gives 1e38, not 39 digits).
pub fn fmt_magnitude(x: f64) -> String {
    if x.abs() < 1e4 {
        format!("{x:.4}")
    } else {
        format!("{x:.3e}")
    }
}
