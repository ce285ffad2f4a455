//! One verdict line, shared by the studies that report claims as a `verdicts` list:
//! `{claim, measured, ci, expected, verdict}` in JSON (`ci` is `null` where no interval exists).

use serde::Serialize;

/// A claim, the number measured for it, and the outcome.
#[derive(Debug, Clone, Serialize)]
pub struct Verdict {
    /// What is claimed.
    pub claim: String,
    /// The measured number.
    pub measured: f64,
    /// Its confidence interval, where one exists.
    pub ci: Option<[f64; 2]>,
    /// What the claim expects (with its tolerance).
    pub expected: String,
    /// `pass`, `fail` or `inconclusive` (informational lines use their own words).
    pub verdict: String,
}

impl Verdict {
    /// One printed line: `  <verdict> <claim>: measured <value> [lo, hi][, expected …]`.
    pub fn line(&self, with_expected: bool) -> String {
        let expected = if with_expected {
            format!(", expected {}", self.expected)
        } else {
            String::new()
        };
        format!(
            "  {:<12} {}: measured {:.4}{}{expected}",
            self.verdict,
            self.claim,
            self.measured,
            self.ci_text()
        )
    }

    /// ` [lo, hi]` with 4 decimals, or nothing when there is no interval.
    pub fn ci_text(&self) -> String {
        self.ci
            .map_or(String::new(), |c| format!(" [{:.4}, {:.4}]", c[0], c[1]))
    }
}
