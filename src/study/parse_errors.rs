//! Naming the field of a TOML type or value error.
//!
//! serde reports a wrong type inside an internally tagged table (`[landscape] kind = …`,
//! `hessian = { kind = "wishart", dim = "3" }`) against the whole table: the message says
//! `invalid type: string "3", expected usize` and points at `[landscape]`, without `dim`. This
//! module finds the field: when the error points at a value, the key written before it on its
//! line (under the current `[table]` header); when it points at a table, the leaves of that table
//! whose value is the one serde quotes (`string "3"`, ``integer `-3` ``, ``floating point `NaN` ``,
//! ``boolean `true` ``).

use crate::error::Error;

/// The crate error for a TOML deserialisation failure of `text`: [`Error::Config`] naming the
/// dotted field path when it can be found, [`Error::Parse`] otherwise.
pub fn toml_error(text: &str, e: &toml::de::Error) -> Error {
    let msg = e.message().trim().to_string();
    let field = e
        .span()
        .and_then(|span| field_at(text, span, &msg))
        .filter(|f| !f.0.is_empty());
    match field {
        Some((field, value)) => Error::config(
            field,
            value,
            format!("cannot be read: {msg} ({})", location(text, e)),
        ),
        None => Error::Parse(e.to_string()),
    }
}

/// `line L, column C` of the error.
fn location(text: &str, e: &toml::de::Error) -> String {
    let start = e.span().map_or(0, |s| s.start).min(text.len());
    let before = &text[..start];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    format!("line {line}, column {col}")
}

/// `(field path, value as written)` for the error at `span`.
fn field_at(text: &str, span: std::ops::Range<usize>, msg: &str) -> Option<(String, String)> {
    let start = span.start.min(text.len());
    let end = span.end.clamp(start, text.len());
    if !text.is_char_boundary(start) || !text.is_char_boundary(end) {
        return None;
    }
    let pointed = text[start..end].trim();
    if pointed.starts_with('[') {
        // A table header: search its leaves for the value serde quotes.
        let table = pointed.trim_matches(|c| c == '[' || c == ']').trim();
        let unexpected = unexpected_value(msg)?;
        let root: toml::Table = text.parse().ok()?;
        let mut node = toml::Value::Table(root);
        for key in table.split('.') {
            node = node.get(key.trim().trim_matches('"'))?.clone();
        }
        let mut hits = Vec::new();
        leaves(&node, table, &unexpected, &mut hits);
        if hits.is_empty() {
            return None;
        }
        let value = hits[0].1.clone();
        let fields: Vec<String> = hits.into_iter().map(|h| h.0).collect();
        return Some((fields.join(" or "), value));
    }
    // A value: the key before `=` on its line, under the last `[table]` header above it.
    let line_start = text[..start].rfind('\n').map_or(0, |i| i + 1);
    let head = &text[line_start..start];
    let eq = head.rfind('=')?;
    let key = head[..eq]
        .rsplit(['{', ','])
        .next()?
        .trim()
        .trim_matches('"')
        .to_string();
    if key.is_empty() || key.starts_with('#') {
        return None;
    }
    let inline_parent = inline_parent(head);
    let table = text[..line_start]
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| l.starts_with('['))
        .map(|l| {
            l.trim_start_matches('[')
                .split(']')
                .next()
                .unwrap_or("")
                .trim()
                .to_string()
        });
    let mut path: Vec<String> = Vec::new();
    if let Some(t) = table.filter(|t| !t.is_empty()) {
        path.push(t);
    }
    if let Some(p) = inline_parent {
        path.push(p);
    }
    path.push(key);
    let value = if pointed.is_empty() {
        "(empty)".to_string()
    } else {
        pointed.chars().take(60).collect()
    };
    Some((path.join("."), value))
}

/// `hessian` in `hessian = { kind = "wishart", dim = ` (the inline table the key sits in).
fn inline_parent(head: &str) -> Option<String> {
    let brace = head.rfind('{')?;
    let before = head[..brace].trim_end().strip_suffix('=')?;
    let key = before.rsplit(['{', ',']).next()?.trim().trim_matches('"');
    (!key.is_empty()).then(|| key.to_string())
}

/// The value serde quotes in `invalid type: X, expected …` / `invalid value: X, expected …`.
fn unexpected_value(msg: &str) -> Option<String> {
    let rest = msg
        .strip_prefix("invalid type: ")
        .or_else(|| msg.strip_prefix("invalid value: "))?;
    Some(
        rest.rsplit_once(", expected")
            .map_or(rest, |r| r.0)
            .to_string(),
    )
}

/// How serde's `Unexpected` prints a TOML value.
fn quoted(v: &toml::Value) -> Option<String> {
    Some(match v {
        toml::Value::String(s) => format!("string {s:?}"),
        toml::Value::Integer(i) => format!("integer `{i}`"),
        toml::Value::Float(f) => {
            let mut s = if f.is_nan() {
                "NaN".into()
            } else {
                f.to_string()
            };
            if f.is_finite() && !s.contains(['.', 'e', 'E']) {
                s.push_str(".0");
            }
            format!("floating point `{s}`")
        }
        toml::Value::Boolean(b) => format!("boolean `{b}`"),
        toml::Value::Array(_) => "sequence".into(),
        toml::Value::Table(_) => "map".into(),
        toml::Value::Datetime(_) => return None,
    })
}

/// Every leaf under `v` (path `at`) that serde would quote as `want`, with its value as TOML.
fn leaves(v: &toml::Value, at: &str, want: &str, hits: &mut Vec<(String, String)>) {
    if quoted(v).as_deref() == Some(want) {
        hits.push((at.to_string(), v.to_string()));
        if matches!(v, toml::Value::Array(_) | toml::Value::Table(_)) {
            return;
        }
    }
    match v {
        toml::Value::Table(t) => {
            for (k, x) in t {
                let p = if at.is_empty() {
                    k.clone()
                } else {
                    format!("{at}.{k}")
                };
                leaves(x, &p, want, hits);
            }
        }
        toml::Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                leaves(x, &format!("{at}[{i}]"), want, hits);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug)]
    #[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
    #[allow(dead_code)]
    enum H {
        Wishart { dim: usize, seed: u64 },
    }

    #[derive(serde::Deserialize, Debug)]
    #[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
    #[allow(dead_code)]
    enum L {
        Quadratic { hessian: H },
    }

    #[derive(serde::Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct C {
        paths: usize,
        landscape: L,
    }

    fn field(text: &str) -> String {
        let e = toml::from_str::<C>(text).unwrap_err();
        match toml_error(text, &e) {
            Error::Config { field, .. } => field,
            other => panic!("no field: {other}"),
        }
    }

    #[test]
    fn wrong_types_inside_tagged_inline_tables_name_the_field() {
        let t = "paths = 3\n[landscape]\nkind = \"quadratic\"\nhessian = { kind = \"wishart\", dim = \"3\", seed = 1 }\n";
        assert_eq!(field(t), "landscape.hessian.dim");
        let t = "paths = 3\n[landscape]\nkind = \"quadratic\"\nhessian = { kind = \"wishart\", dim = -3, seed = 1 }\n";
        assert_eq!(field(t), "landscape.hessian.dim");
        let t = "paths = nan\n[landscape]\nkind = \"quadratic\"\nhessian = { kind = \"wishart\", dim = 3, seed = 1 }\n";
        assert_eq!(field(t), "paths");
        let t = "paths = 99999999999999999999\n[landscape]\nkind = \"quadratic\"\nhessian = { kind = \"wishart\", dim = 3, seed = 1 }\n";
        assert_eq!(field(t), "paths");
    }
}
