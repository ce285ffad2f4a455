//! Tidy CSV tables: one table per file, one header line, the same number of fields on every
//! row, loadable with a single `pandas.read_csv(path)`.
//!
//! Fields are quoted (RFC 4180) only when they contain a comma, a double quote or a line break;
//! a quote inside a quoted field is doubled. Non-finite numbers are written as Rust prints them
//! (`NaN`, `inf`, `-inf`), which pandas reads as floats; a missing value is an empty field
//! (use [`opt`]).

use std::fmt::{Display, Write as _};

use crate::study::verdict::{Observation, Verdict};

/// A CSV table under construction.
#[derive(Debug, Clone)]
pub struct Table {
    columns: usize,
    text: String,
}

impl Table {
    /// A table with these column names (written as the header line).
    pub fn new(header: &[&str]) -> Self {
        let mut t = Self {
            columns: header.len(),
            text: String::new(),
        };
        t.push_line(header.iter().map(|h| h as &dyn Display));
        t
    }

    /// Appends one row.
    ///
    /// # Panics
    /// If the row does not have one field per column (a programming error in the writer).
    pub fn row(&mut self, fields: &[&dyn Display]) {
        assert_eq!(
            fields.len(),
            self.columns,
            "CSV row has {} fields, the header {}",
            fields.len(),
            self.columns
        );
        self.push_line(fields.iter().copied());
    }

    fn push_line<'a>(&mut self, fields: impl Iterator<Item = &'a dyn Display>) {
        for (i, f) in fields.enumerate() {
            if i > 0 {
                self.text.push(',');
            }
            let s = f.to_string();
            if s.contains([',', '"', '\n', '\r']) {
                let _ = write!(self.text, "\"{}\"", s.replace('"', "\"\""));
            } else {
                self.text.push_str(&s);
            }
        }
        self.text.push('\n');
    }

    /// The table's text.
    pub fn finish(self) -> String {
        self.text
    }
}

/// An optional value: its text, or an empty field.
pub fn opt<T: Display>(v: Option<T>) -> String {
    v.map_or(String::new(), |v| v.to_string())
}

/// The shared verdict table: one row per verdict.
pub fn verdicts(vs: &[Verdict]) -> String {
    let mut t = Table::new(&[
        "claim",
        "claim_kind",
        "source",
        "measured",
        "ci_lo",
        "ci_hi",
        "expected",
        "verdict",
        "reason",
    ]);
    for v in vs {
        t.row(&[
            &v.claim,
            &v.claim_kind.as_str(),
            &opt(v.source.as_deref()),
            &v.measured,
            &opt(v.ci.map(|c| c[0])),
            &opt(v.ci.map(|c| c[1])),
            &v.expected,
            &v.verdict,
            &v.reason,
        ]);
    }
    t.finish()
}

/// The shared observation table: one row per observation.
pub fn observations(os: &[Observation]) -> String {
    let mut t = Table::new(&["what", "measured", "ci_lo", "ci_hi", "reference", "reading"]);
    for o in os {
        t.row(&[
            &o.what,
            &o.measured,
            &opt(o.ci.map(|c| c[0])),
            &opt(o.ci.map(|c| c[1])),
            &o.reference,
            &o.reading,
        ]);
    }
    t.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_only_when_needed() {
        let mut t = Table::new(&["a", "b", "c"]);
        t.row(&[&1.5, &"x, y", &"say \"hi\""]);
        t.row(&[&f64::NAN, &opt(None::<f64>), &"plain"]);
        assert_eq!(
            t.finish(),
            "a,b,c\n1.5,\"x, y\",\"say \"\"hi\"\"\"\nNaN,,plain\n"
        );
    }

    #[test]
    #[should_panic(expected = "CSV row has 2 fields, the header 3")]
    fn wrong_field_count_panics() {
        let mut t = Table::new(&["a", "b", "c"]);
        t.row(&[&1, &2]);
    }
}
