//! The claims report of `sde-check reproduce`: `report.md`, a self-contained `report.html`
//! (figures embedded as base64 PNG) and `summary.json`, written together all-or-nothing.
//!
//! Layout: the headline (claims per study, totals, every claim that does not pass with its
//! reason), "how to read a verdict", then one section per study: what ran, its claims table
//! (paper and section, claim, kind, measured with confidence interval, expected, verdict,
//! reason), its figures, its warnings and its informational observations.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use base64::Engine as _;

use super::{Status, Summary, UnitReport};
use crate::error::{Error, Result};
use crate::output::{to_json, Staging};
use crate::study::verdict::{ci_text, fmt_num, ClaimKind, Decision, Verdict};

/// Writes `report.md`, `report.html`, `summary.json` into `out`; returns their paths.
pub fn write(s: &Summary, out: &Path) -> Result<Vec<PathBuf>> {
    let mut st = Staging::new(out)?;
    st.bytes("report.md", markdown(s).as_bytes())?;
    st.bytes("report.html", html(s, out)?.as_bytes())?;
    st.bytes("summary.json", &to_json(s)?)?;
    st.commit()
}

/// The printed summary: one line per study and the totals.
pub fn headline_text(s: &Summary) -> String {
    let mut t = String::new();
    for u in &s.units {
        let (p, f, i) = u.counts();
        let what = match &u.status {
            Status::Error { error } => format!("error: {error}"),
            Status::Resumed => format!("{p} pass, {f} fail, {i} inconclusive (kept)"),
            Status::Ran { .. } => format!("{p} pass, {f} fail, {i} inconclusive"),
        };
        let _ = writeln!(t, "  {:<28} {what}", u.id);
    }
    let _ = writeln!(
        t,
        "{} of {} claims pass, {} fail, {} inconclusive{}",
        s.pass,
        s.pass + s.fail + s.inconclusive,
        s.fail,
        s.inconclusive,
        if s.errors > 0 {
            format!("; {} stud(y/ies) stopped with an error", s.errors)
        } else {
            String::new()
        }
    );
    t
}

/// The explanation of verdicts, shared by the Markdown and HTML reports (Markdown syntax).
pub const HOW_TO_READ: &str = "\
Every claim is tested by a measurement that could have failed. The *measured* column gives the \
estimate and, in brackets, its confidence interval (Monte Carlo or bootstrap/order-statistic, at \
the level the study states, usually 95 %); *expected* gives the claim with its tolerance.

* **pass** — the test could have failed and did not: the interval lies on the claim's side of \
its threshold (tolerance included).
* **fail** — the measurement contradicts the claim at the stated level: the interval lies \
entirely on the wrong side.
* **inconclusive** — the data cannot decide: the interval straddles the threshold, or something \
blocked a decision (noise floor, an under-resolved model, diverged paths); the *reason* column \
says which. Inconclusive is not a pass (the exit status is 1); more paths or a larger effect \
would decide it.

The *kind* column says which side of a threshold can fail. A **one-sided** claim (`order_at_least`, \
`at_most`, `at_least`, `greater`, `less`, `order_below_own_model`) fails only when the interval \
lies wholly beyond its bound on the wrong side — e.g. \"weak order ≥ 1\" is not refuted by an \
error that falls faster than η¹. A **two-sided** claim (`order_equals`, `agrees`) fails when \
the interval leaves the band expected ± tolerance on either side. `consistent` passes when the \
interval of a difference contains 0; `majority` and `every` count cases (a sign test or all of \
them). Observations, listed after the claims, compare numbers without a claim and never affect \
the verdict.";

fn md_cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

fn measured(v: &Verdict) -> String {
    format!("{}{}", fmt_num(v.measured), ci_text(v.ci))
}

fn status_line(u: &UnitReport) -> String {
    let time = u
        .elapsed_s
        .map_or(String::new(), |e| format!(", computed in {e:.1} s"));
    match &u.status {
        Status::Ran { .. } => format!("ran now{time}"),
        Status::Resumed => {
            format!("kept from an earlier run (same configuration and version, `--resume`){time}")
        }
        Status::Error { error } => format!("**stopped with an error:** {error}"),
    }
}

/// Every claim that does not pass, with where it is.
fn not_passing(s: &Summary) -> Vec<(&UnitReport, &Verdict)> {
    s.units
        .iter()
        .flat_map(|u| {
            u.verdicts
                .iter()
                .filter(|v| v.verdict != Decision::Pass)
                .map(move |v| (u, v))
        })
        .collect()
}

fn kinds(s: &Summary) -> Vec<ClaimKind> {
    let set: BTreeSet<&str> = s
        .units
        .iter()
        .flat_map(|u| u.verdicts.iter().map(|v| v.claim_kind.as_str()))
        .collect();
    let all = [
        ClaimKind::OrderAtLeast,
        ClaimKind::OrderEquals,
        ClaimKind::OrderBelowOwnModel,
        ClaimKind::Agrees,
        ClaimKind::AtMost,
        ClaimKind::AtLeast,
        ClaimKind::Greater,
        ClaimKind::Less,
        ClaimKind::Consistent,
        ClaimKind::Majority,
        ClaimKind::Every,
    ];
    all.into_iter()
        .filter(|k| set.contains(k.as_str()))
        .collect()
}

fn totals_sentence(s: &Summary) -> String {
    let n = s.pass + s.fail + s.inconclusive;
    let computed: f64 = s.units.iter().filter_map(|u| u.elapsed_s).sum();
    let resumed = s
        .units
        .iter()
        .filter(|u| matches!(u.status, Status::Resumed))
        .count();
    format!(
        "**{} of {n} claims pass**, {} fail, {} inconclusive{} — samsde {}, profile {}, {} \
         thread(s); the studies' computation took {computed:.0} s wall{}; this invocation {:.0} s \
         wall{}.",
        s.pass,
        s.fail,
        s.inconclusive,
        if s.errors > 0 {
            format!(", {} study run(s) stopped with an error", s.errors)
        } else {
            String::new()
        },
        s.samsde_version,
        s.profile,
        s.threads,
        if resumed > 0 {
            format!(" ({resumed} kept from an earlier run)")
        } else {
            String::new()
        },
        s.elapsed_s,
        s.cpu_s.map_or(String::new(), |c| format!(", {c:.0} s CPU"))
    )
}

/// `report.md`.
pub fn markdown(s: &Summary) -> String {
    let mut m = String::new();
    let _ = writeln!(m, "# samsde claims report\n");
    let _ = writeln!(m, "{}\n", totals_sentence(s));
    let _ = writeln!(
        m,
        "| study | experiment | claims | pass | fail | inconclusive |\n|---|---|---:|---:|---:|---:|"
    );
    for u in &s.units {
        let (p, f, i) = u.counts();
        let _ = writeln!(
            m,
            "| [{}](#{}) | `{}` | {} | {p} | {f} | {i} |",
            u.id,
            anchor(&u.id),
            u.experiment,
            u.verdicts.len()
        );
    }
    let np = not_passing(s);
    if !np.is_empty() {
        let _ = writeln!(m, "\n**Claims that do not pass, and why:**\n");
        for (u, v) in np {
            let _ = writeln!(
                m,
                "* {} — {} ({}): measured {}, expected {}. {}{}",
                u.id,
                v.claim,
                v.verdict,
                measured(v),
                v.expected,
                v.reason,
                if u.note.is_empty() {
                    ""
                } else {
                    " (See the study's note.)"
                }
            );
        }
    }
    let _ = writeln!(m, "\n## How to read a verdict\n\n{HOW_TO_READ}\n");
    for k in kinds(s) {
        let _ = writeln!(m, "* `{}`: {}", k.as_str(), k.meaning());
    }
    for u in &s.units {
        let _ = writeln!(m, "\n## {}\n", u.id);
        let _ = writeln!(
            m,
            "{} — `{}`: {} ({}); {}.\n",
            u.about,
            u.experiment,
            u.experiment_summary,
            u.profile_note,
            status_line(u)
        );
        if !u.note.is_empty() {
            let _ = writeln!(m, "> **Note.** {}\n", u.note.replace('\n', " "));
        }
        if !u.verdicts.is_empty() {
            let _ = writeln!(
                m,
                "| # | source | claim | kind | measured [CI] | expected | verdict | reason |\n|---:|---|---|---|---|---|---|---|"
            );
            for (i, v) in u.verdicts.iter().enumerate() {
                let _ = writeln!(
                    m,
                    "| {} | {} | {} | `{}` | {} | {} | **{}** | {} |",
                    i + 1,
                    md_cell(v.source.as_deref().unwrap_or("—")),
                    md_cell(&v.claim),
                    v.claim_kind,
                    md_cell(&measured(v)),
                    md_cell(&v.expected),
                    v.verdict,
                    md_cell(&v.reason)
                );
            }
        } else if !matches!(u.status, Status::Error { .. }) {
            let _ = writeln!(
                m,
                "This study makes no pass/fail claim; its observations and figures are below."
            );
        }
        for f in &u.figures {
            let _ = writeln!(m, "\n![{f}]({f})");
        }
        if !u.warnings.is_empty() {
            let _ = writeln!(m, "\nWarnings:\n");
            for w in &u.warnings {
                let _ = writeln!(m, "* {}", w.replace('\n', " "));
            }
        }
        if !u.observations.is_empty() {
            let _ = writeln!(
                m,
                "\nObservations (no claim):\n\n| what | measured [CI] | reference | reading |\n|---|---|---|---|"
            );
            for o in &u.observations {
                let _ = writeln!(
                    m,
                    "| {} | {} | {} | {} |",
                    md_cell(&o.what),
                    md_cell(&format!("{}{}", fmt_num(o.measured), ci_text(o.ci))),
                    md_cell(&o.reference),
                    md_cell(&o.reading)
                );
            }
        }
        if !u.files.is_empty() {
            let files: Vec<String> = u.files.iter().map(|f| format!("[{f}]({f})")).collect();
            let _ = writeln!(m, "\nFiles: {}", files.join(" · "));
        }
    }
    m
}

fn anchor(id: &str) -> String {
    id.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect()
}

fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            _ => o.push(c),
        }
    }
    o
}

/// Minimal Markdown → HTML for the explanation text: paragraphs, `*` lists, `**bold**`,
/// `*italic*`, `` `code` ``.
fn md_inline(s: &str) -> String {
    let s = esc(s);
    let mut out = String::new();
    let mut rest = s.as_str();
    // Code spans first, then bold, then italics, left to right.
    while let Some(i) = rest.find(['`', '*']) {
        out.push_str(&rest[..i]);
        let r = &rest[i..];
        let (open, close, tag) = if r.starts_with('`') {
            ("`", "`", "code")
        } else if r.starts_with("**") {
            ("**", "**", "strong")
        } else {
            ("*", "*", "em")
        };
        let body = &r[open.len()..];
        match body.find(close) {
            Some(j) if j > 0 => {
                let _ = write!(out, "<{tag}>{}</{tag}>", &body[..j]);
                rest = &body[j + close.len()..];
            }
            _ => {
                out.push_str(open);
                rest = body;
            }
        }
    }
    out.push_str(rest);
    out
}

fn md_block(text: &str) -> String {
    let mut h = String::new();
    for para in text.split("\n\n") {
        let lines: Vec<&str> = para.lines().collect();
        if lines.first().is_some_and(|l| l.starts_with("* ")) {
            h.push_str("<ul>");
            let mut items: Vec<String> = Vec::new();
            for l in lines {
                if let Some(x) = l.strip_prefix("* ") {
                    items.push(x.to_string());
                } else if let Some(last) = items.last_mut() {
                    last.push(' ');
                    last.push_str(l);
                }
            }
            for it in items {
                let _ = write!(h, "<li>{}</li>", md_inline(&it));
            }
            h.push_str("</ul>\n");
        } else {
            let _ = writeln!(h, "<p>{}</p>", md_inline(&lines.join(" ")));
        }
    }
    h
}

const CSS: &str = r#"
:root { --pass:#1a7f37; --fail:#cf222e; --inc:#9a6700; --muted:#57606a; --line:#d0d7de; }
* { box-sizing: border-box; }
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif;
       margin: 0 auto; max-width: 1280px; padding: 1.2rem 1.5rem 4rem; color: #1f2328; }
h1 { font-size: 1.7rem; margin: .2rem 0 .6rem; }
h2 { font-size: 1.3rem; margin-top: 2.4rem; padding-top: .6rem; border-top: 2px solid var(--line); }
.muted { color: var(--muted); }
table { border-collapse: collapse; width: 100%; margin: .6rem 0 1rem; font-size: 13.5px; }
th, td { border: 1px solid var(--line); padding: .3rem .45rem; vertical-align: top; text-align: left; }
th { background: #f6f8fa; position: sticky; top: 0; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.measured { font-family: ui-monospace, "DejaVu Sans Mono", monospace; font-size: 12.5px; white-space: nowrap; }
td.reason { font-size: 12.5px; color: #32383f; min-width: 14rem; }
td.claim { min-width: 14rem; }
td.src { font-size: 12px; min-width: 8rem; max-width: 13rem; color: var(--muted); }
.tw { overflow-x: auto; }
.note { background: #ddf4ff; border: 1px solid #54aeff66; padding: .5rem .8rem; border-radius: 6px; font-size: 14px; margin: .4rem 0 .8rem; }
code { font-size: 12.5px; background: #f6f8fa; padding: 0 .2rem; border-radius: 3px; }
.badge { display: inline-block; padding: .05rem .45rem; border-radius: 1rem; font-weight: 600;
         font-size: 12px; color: #fff; white-space: nowrap; }
.pass { background: var(--pass); } .fail { background: var(--fail); } .inconclusive { background: var(--inc); }
.total { font-size: 1.1rem; margin: .4rem 0 1rem; }
.figs { display: grid; grid-template-columns: repeat(auto-fit, minmax(520px, 1fr)); gap: .8rem; }
.figs figure { margin: 0; border: 1px solid var(--line); border-radius: 6px; padding: .4rem; background: #fff; }
.figs img { width: 100%; height: auto; display: block; }
.figs figcaption { font-size: 12px; color: var(--muted); margin-top: .2rem; }
details { margin: .5rem 0; } summary { cursor: pointer; color: var(--muted); }
.warn { background: #fff8c5; border: 1px solid #d4a72c66; padding: .4rem .7rem; border-radius: 6px; font-size: 13px; }
.howto { background: #f6f8fa; border: 1px solid var(--line); border-radius: 6px; padding: .2rem 1rem; }
ul.np li { margin-bottom: .3rem; }
"#;

fn badge(d: Decision) -> String {
    format!("<span class=\"badge {0}\">{0}</span>", d.as_str())
}

/// `report.html`: self-contained (figures embedded), readable on a laptop screen.
pub fn html(s: &Summary, out: &Path) -> Result<String> {
    let mut h = String::new();
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>samsde claims report</title><style>{CSS}</style></head><body>\n"
    );
    let _ = writeln!(h, "<h1>samsde claims report</h1>");
    let _ = writeln!(
        h,
        "<p class=\"total\">{}</p>",
        md_inline(&totals_sentence(s))
    );
    let _ = writeln!(
        h,
        "<table style=\"width:auto\"><tr><th>study</th><th>experiment</th><th>claims</th>\
         <th>pass</th><th>fail</th><th>inconclusive</th></tr>"
    );
    for u in &s.units {
        let (p, f, i) = u.counts();
        let _ = writeln!(
            h,
            "<tr><td><a href=\"#{}\">{}</a></td><td><code>{}</code></td><td class=\"num\">{}</td>\
             <td class=\"num\">{p}</td><td class=\"num\">{f}</td><td class=\"num\">{i}</td></tr>",
            anchor(&u.id),
            esc(&u.id),
            esc(&u.experiment),
            u.verdicts.len()
        );
    }
    let _ = writeln!(h, "</table>");
    let np = not_passing(s);
    if !np.is_empty() {
        let _ = writeln!(
            h,
            "<p><strong>Claims that do not pass, and why:</strong></p><ul class=\"np\">"
        );
        for (u, v) in np {
            let _ = writeln!(
                h,
                "<li><a href=\"#{}\">{}</a> — {} {}: measured <code>{}</code>, expected {}. \
                 <span class=\"muted\">{}</span>{}</li>",
                anchor(&u.id),
                esc(&u.id),
                esc(&v.claim),
                badge(v.verdict),
                esc(&measured(v)),
                esc(&v.expected),
                esc(&v.reason),
                if u.note.is_empty() {
                    String::new()
                } else {
                    format!(" <a href=\"#{}\">(see the study's note)</a>", anchor(&u.id))
                }
            );
        }
        let _ = writeln!(h, "</ul>");
    }
    let _ = writeln!(
        h,
        "<h2 id=\"how-to-read\">How to read a verdict</h2><div class=\"howto\">{}<ul>",
        md_block(HOW_TO_READ)
    );
    for k in kinds(s) {
        let _ = writeln!(
            h,
            "<li><code>{}</code>: {}</li>",
            k.as_str(),
            esc(k.meaning())
        );
    }
    let _ = writeln!(h, "</ul></div>");
    for u in &s.units {
        let _ = writeln!(h, "<h2 id=\"{}\">{}</h2>", anchor(&u.id), esc(&u.id));
        let _ = writeln!(
            h,
            "<p>{} — <code>{}</code>: {} <span class=\"muted\">({}; {})</span></p>",
            md_inline(&u.about),
            esc(&u.experiment),
            md_inline(&u.experiment_summary),
            esc(&u.profile_note),
            md_inline(&status_line(u))
        );
        if !u.note.is_empty() {
            let _ = writeln!(
                h,
                "<div class=\"note\"><strong>Note.</strong> {}</div>",
                md_inline(&u.note)
            );
        }
        if !u.verdicts.is_empty() {
            let _ = writeln!(
                h,
                "<div class=\"tw\"><table><tr><th>#</th><th>source</th><th>claim</th><th>kind</th>\
                 <th>measured [CI]</th><th>expected</th><th>verdict</th><th>reason</th></tr>"
            );
            for (i, v) in u.verdicts.iter().enumerate() {
                let _ = writeln!(
                    h,
                    "<tr><td class=\"num\">{}</td><td class=\"src\">{}</td><td class=\"claim\">{}</td>\
                     <td><code>{}</code></td><td class=\"measured\">{}</td><td>{}</td><td>{}</td>\
                     <td class=\"reason\">{}</td></tr>",
                    i + 1,
                    esc(v.source.as_deref().unwrap_or("—")),
                    esc(&v.claim),
                    v.claim_kind,
                    esc(&measured(v)),
                    esc(&v.expected),
                    badge(v.verdict),
                    esc(&v.reason)
                );
            }
            let _ = writeln!(h, "</table></div>");
        } else if !matches!(u.status, Status::Error { .. }) {
            let _ = writeln!(
                h,
                "<p class=\"muted\">This study makes no pass/fail claim; its observations and \
                 figures are below.</p>"
            );
        }
        if !u.figures.is_empty() {
            let _ = writeln!(h, "<div class=\"figs\">");
            for f in &u.figures {
                let bytes = std::fs::read(out.join(f)).map_err(|e| Error::Io {
                    context: format!("cannot read figure {f} for the report"),
                    source: e,
                })?;
                let b64 = base64::engine::general_purpose::STANDARD.encode(bytes);
                let _ = writeln!(
                    h,
                    "<figure><img alt=\"{0}\" src=\"data:image/png;base64,{b64}\">\
                     <figcaption>{0}</figcaption></figure>",
                    esc(f)
                );
            }
            let _ = writeln!(h, "</div>");
        }
        if !u.warnings.is_empty() {
            let _ = writeln!(h, "<div class=\"warn\"><strong>Warnings</strong><ul>");
            for w in &u.warnings {
                let _ = writeln!(h, "<li>{}</li>", esc(w));
            }
            let _ = writeln!(h, "</ul></div>");
        }
        if !u.observations.is_empty() {
            let _ = writeln!(
                h,
                "<details><summary>{} observation(s) (informational, no claim)</summary>\
                 <table><tr><th>what</th><th>measured [CI]</th><th>reference</th><th>reading</th></tr>",
                u.observations.len()
            );
            for o in &u.observations {
                let _ = writeln!(
                    h,
                    "<tr><td>{}</td><td class=\"measured\">{}{}</td><td>{}</td><td>{}</td></tr>",
                    esc(&o.what),
                    esc(&fmt_num(o.measured)),
                    esc(&ci_text(o.ci)),
                    esc(&o.reference),
                    esc(&o.reading)
                );
            }
            let _ = writeln!(h, "</table></details>");
        }
        if !u.files.is_empty() {
            let files: Vec<String> = u
                .files
                .iter()
                .map(|f| format!("<a href=\"{0}\">{0}</a>", esc(f)))
                .collect();
            let _ = writeln!(h, "<p class=\"muted\">Files: {}</p>", files.join(" · "));
        }
    }
    let _ = writeln!(h, "</body></html>");
    Ok(h)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inline_markdown() {
        assert_eq!(
            md_inline("a **b** *c* `d<e>` 3 * 4"),
            "a <strong>b</strong> <em>c</em> <code>d&lt;e&gt;</code> 3 * 4"
        );
    }
}
