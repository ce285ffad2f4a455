//! The one verdict vocabulary of every study.
//!
//! A **verdict** judges a claim (of a paper, or derived from one) by a test that could have
//! failed; its outcome is only [`Decision::Pass`], [`Decision::Fail`] or
//! [`Decision::Inconclusive`]. Each verdict says what *kind* of claim it tests
//! ([`ClaimKind`]: a one-sided bound, a two-sided agreement, a comparison, …), so a reader
//! knows what a `fail` would have meant. An **observation** is an informational comparison
//! that makes no claim (e.g. "discrete vs SDE at the preference radius"): it has its own words
//! (`consistent`, `differs`, …) and never affects the exit code.
//!
//! JSON: `verdicts: [{claim, claim_kind, source, measured, ci, expected, verdict, reason}]` and
//! `observations: [{what, measured, ci, reference, reading}]`; `ci` is `null` where no interval
//! exists, and a non-finite `measured` is written as `null` (JSON has no NaN).

use std::fmt;

use serde::{Deserialize, Serialize};

/// Outcome of a verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    /// The test could have failed and did not.
    Pass,
    /// The measurement contradicts the claim at the stated level.
    Fail,
    /// The measurement cannot decide (interval straddles the threshold, noise floor,
    /// under-resolved model, diverged paths, …); the reason says which.
    Inconclusive,
}

impl Decision {
    /// `pass`, `fail` or `inconclusive`.
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Pass => "pass",
            Decision::Fail => "fail",
            Decision::Inconclusive => "inconclusive",
        }
    }

    /// `Pass` when `ok`, else `Fail`.
    pub fn from_bool(ok: bool) -> Self {
        if ok {
            Decision::Pass
        } else {
            Decision::Fail
        }
    }
}

impl fmt::Display for Decision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

impl PartialEq<str> for Decision {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for Decision {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

/// What kind of statement a verdict tests. The kind decides which side of a threshold can
/// fail: e.g. "weak order ≥ 1" is refuted only by a slope CI *below* `1 − tol`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClaimKind {
    /// A model's weak order is at least the expected one (`e(η) ≤ Cη^α`): pass when the slope
    /// CI lies above `α − tol`, fail only when it lies below.
    OrderAtLeast,
    /// A model's weak order equals the expected one (two-sided band `α ± tol`).
    OrderEquals,
    /// A (wrong) model's error falls more slowly than the algorithm's own model's: its slope
    /// CI lies below the own model's.
    OrderBelowOwnModel,
    /// A measured value agrees with a prediction within a stated tolerance (two-sided).
    Agrees,
    /// A measured value is at most a bound (one-sided).
    AtMost,
    /// A measured value is at least a bound (one-sided).
    AtLeast,
    /// One quantity is larger than another (e.g. non-overlapping CIs, a paired interval above 0).
    Greater,
    /// One quantity is smaller than another.
    Less,
    /// Two estimates are statistically indistinguishable: the CI of their difference contains 0.
    Consistent,
    /// A property holds in a significant majority of cases (sign test, Wilson bound > ½).
    Majority,
    /// A property holds in every case examined (a sufficiency claim).
    Every,
}

impl ClaimKind {
    /// The snake_case name used in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            ClaimKind::OrderAtLeast => "order_at_least",
            ClaimKind::OrderEquals => "order_equals",
            ClaimKind::OrderBelowOwnModel => "order_below_own_model",
            ClaimKind::Agrees => "agrees",
            ClaimKind::AtMost => "at_most",
            ClaimKind::AtLeast => "at_least",
            ClaimKind::Greater => "greater",
            ClaimKind::Less => "less",
            ClaimKind::Consistent => "consistent",
            ClaimKind::Majority => "majority",
            ClaimKind::Every => "every",
        }
    }

    /// One sentence: what a pass and a fail mean for this kind of claim.
    pub fn meaning(self) -> &'static str {
        match self {
            ClaimKind::OrderAtLeast => "one-sided: pass when the slope CI lies above expected − tol; fail only when it lies below (a faster-falling error is not evidence against an order bound)",
            ClaimKind::OrderEquals => "two-sided: pass when the slope CI lies inside expected ± tol; fail when it lies outside",
            ClaimKind::OrderBelowOwnModel => "comparison: pass when the slope CI lies below the own model's slope CI; fail when it lies above",
            ClaimKind::Agrees => "two-sided: pass when the measured value agrees with the prediction within the stated tolerance",
            ClaimKind::AtMost => "one-sided: pass when the measured value (or its CI) is at most the bound",
            ClaimKind::AtLeast => "one-sided: pass when the measured value (or its CI) is at least the bound",
            ClaimKind::Greater => "comparison: pass when the first quantity is larger at the stated level",
            ClaimKind::Less => "comparison: pass when the first quantity is smaller at the stated level",
            ClaimKind::Consistent => "pass when the CI of the difference contains 0 (no detectable disagreement at this precision)",
            ClaimKind::Majority => "pass when the property holds in a significant majority of cases (sign test / Wilson bound above ½)",
            ClaimKind::Every => "pass when the property holds in every case examined",
        }
    }
}

impl fmt::Display for ClaimKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// A claim, the number measured for it, and the outcome.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Verdict {
    /// What is claimed.
    pub claim: String,
    /// The kind of claim (which side of the threshold can fail).
    pub claim_kind: ClaimKind,
    /// Where the claim comes from (paper and section), where it comes from a paper.
    pub source: Option<String>,
    /// The measured number.
    pub measured: f64,
    /// Its confidence interval, where one exists.
    pub ci: Option<[f64; 2]>,
    /// What the claim expects (with its tolerance).
    pub expected: String,
    /// `pass`, `fail` or `inconclusive`.
    pub verdict: Decision,
    /// Why the verdict came out as it did (the inequality checked, or what blocked a decision).
    pub reason: String,
}

impl Verdict {
    /// A verdict with no source and no reason yet.
    pub fn new(
        claim: impl Into<String>,
        claim_kind: ClaimKind,
        measured: f64,
        ci: Option<[f64; 2]>,
        expected: impl Into<String>,
        verdict: Decision,
    ) -> Self {
        Self {
            claim: claim.into(),
            claim_kind,
            source: None,
            measured,
            ci,
            expected: expected.into(),
            verdict,
            reason: String::new(),
        }
    }

    /// Sets the reason.
    pub fn reason(mut self, reason: impl Into<String>) -> Self {
        self.reason = reason.into();
        self
    }

    /// Sets the source (paper and section).
    pub fn source(mut self, source: impl Into<String>) -> Self {
        self.source = Some(source.into());
        self
    }

    /// `true` iff the verdict is `pass`.
    pub fn passed(&self) -> bool {
        self.verdict == Decision::Pass
    }

    /// One printed line: `  <verdict> <claim>: measured <value> [lo, hi][, expected …]`.
    pub fn line(&self, with_expected: bool) -> String {
        let expected = if with_expected {
            format!(", expected {}", self.expected)
        } else {
            String::new()
        };
        format!(
            "  {:<12} {}: measured {}{}{expected}",
            self.verdict,
            self.claim,
            fmt_num(self.measured),
            ci_text(self.ci)
        )
    }

    /// ` [lo, hi]` with enough digits to tell the ends apart, or nothing without an interval.
    pub fn ci_text(&self) -> String {
        ci_text(self.ci)
    }
}

/// An informational comparison: no claim, no pass/fail, its own words in `reading`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Observation {
    /// What was compared or measured.
    pub what: String,
    /// The measured number.
    pub measured: f64,
    /// Its confidence interval, where one exists.
    pub ci: Option<[f64; 2]>,
    /// What it is read against (a prediction, another system, …).
    pub reference: String,
    /// The reading in words (`consistent`, `differs`, `information`, …).
    pub reading: String,
}

impl Observation {
    /// One printed line.
    pub fn line(&self) -> String {
        format!(
            "  {:<12} {}: measured {}{} ({})",
            self.reading,
            self.what,
            fmt_num(self.measured),
            ci_text(self.ci),
            self.reference
        )
    }
}

/// `true` iff every verdict passes (an empty list passes: a study without claims).
pub fn all_pass(verdicts: &[Verdict]) -> bool {
    verdicts.iter().all(Verdict::passed)
}

/// `"k of n verdicts pass"`.
pub fn summary_line(verdicts: &[Verdict]) -> String {
    let k = verdicts.iter().filter(|v| v.passed()).count();
    format!("{k} of {} verdicts pass", verdicts.len())
}

/// A number for a table: 4 significant digits, scientific notation when very large or small.
pub fn fmt_num(x: f64) -> String {
    if !x.is_finite() {
        return format!("{x}");
    }
    let a = x.abs();
    // Counts (paths, seeds, kinks) read as integers, not "12.0000".
    if x.fract() == 0.0 && a < 1e7 {
        return format!("{x:.0}");
    }
    if a != 0.0 && !(1e-3..1e5).contains(&a) {
        format!("{x:.3e}")
    } else {
        format!("{x:.4}")
    }
}

/// ` [lo, hi]` with as many decimals as it takes (≥ 4 significant) to show the ends apart
/// from each other; nothing for `None`.
pub fn ci_text(ci: Option<[f64; 2]>) -> String {
    let Some([lo, hi]) = ci else {
        return String::new();
    };
    if !(lo.is_finite() && hi.is_finite()) {
        return format!(" [{}, {}]", fmt_num(lo), fmt_num(hi));
    }
    let scale = lo.abs().max(hi.abs());
    if scale != 0.0 && !(1e-3..1e5).contains(&scale) {
        return format!(" [{lo:.3e}, {hi:.3e}]");
    }
    let mut dec = 4;
    while dec < 10 && format!("{lo:.dec$}") == format!("{hi:.dec$}") && lo != hi {
        dec += 1;
    }
    format!(" [{lo:.dec$}, {hi:.dec$}]")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decision_serialises_lowercase_and_compares_with_str() {
        assert_eq!(
            serde_json::to_string(&Decision::Inconclusive).unwrap(),
            "\"inconclusive\""
        );
        assert_eq!(Decision::Pass, "pass");
        assert_ne!(Decision::Fail, "pass");
        assert_eq!(
            serde_json::to_string(&ClaimKind::OrderBelowOwnModel).unwrap(),
            "\"order_below_own_model\""
        );
    }

    #[test]
    fn ci_text_shows_the_ends_apart() {
        assert_eq!(ci_text(Some([1.0101, 1.0149])), " [1.0101, 1.0149]");
        assert_eq!(ci_text(Some([1.02001, 1.02004])), " [1.02001, 1.02004]");
        assert_eq!(ci_text(Some([1e-7, 2e-7])), " [1.000e-7, 2.000e-7]");
        assert_eq!(ci_text(None), "");
    }

    #[test]
    fn fmt_num_prints_counts_as_integers() {
        assert_eq!(fmt_num(12.0), "12");
        assert_eq!(fmt_num(91_000.0), "91000");
        assert_eq!(fmt_num(0.5), "0.5000");
        assert_eq!(fmt_num(2.5e-5), "2.500e-5");
    }

    #[test]
    fn all_pass_needs_every_verdict() {
        let v = |d| Verdict::new("c", ClaimKind::Agrees, 1.0, None, "e", d);
        assert!(all_pass(&[v(Decision::Pass), v(Decision::Pass)]));
        assert!(!all_pass(&[v(Decision::Pass), v(Decision::Inconclusive)]));
        assert!(all_pass(&[]));
    }
}
