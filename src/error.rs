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
            value: value.to_string(),
            reason: reason.into(),
        }
    }
}

/// Library result type.
pub type Result<T> = std::result::Result<T, Error>;
