//! The Grafana dashboard (`deploy/grafana/proofline.json`) as data: its panels, their
//! PromQL expressions, and the metric names those use. Shared by the dashboard test
//! (names against [`METRICS`](proofline_runtime::metrics::METRICS)) and the
//! Prometheus test (every expression evaluated by a real server).

use std::collections::BTreeSet;
use std::path::PathBuf;

/// The dashboard's path in the repository.
pub fn path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../deploy/grafana/proofline.json")
}

/// The parsed dashboard.
pub fn load() -> serde_json::Value {
    let path = path();
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Every panel, rows' nested panels included.
pub fn panels(dashboard: &serde_json::Value) -> Vec<&serde_json::Value> {
    fn walk<'a>(list: &'a serde_json::Value, out: &mut Vec<&'a serde_json::Value>) {
        for panel in list.as_array().into_iter().flatten() {
            out.push(panel);
            walk(&panel["panels"], out);
        }
    }
    let mut out = Vec::new();
    walk(&dashboard["panels"], &mut out);
    out
}

/// `(panel title, expr)` of every query of every panel.
pub fn exprs(dashboard: &serde_json::Value) -> Vec<(String, String)> {
    panels(dashboard)
        .into_iter()
        .flat_map(|p| {
            let title = p["title"].as_str().unwrap_or("").to_owned();
            p["targets"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(move |t| t["expr"].as_str().map(|e| (title.clone(), e.to_owned())))
        })
        .collect()
}

/// The metric (series) names a PromQL expression uses: identifiers starting with
/// `proofline_` outside string literals (label values are strings, so a label value
/// never counts as a name).
pub fn metric_names(expr: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut chars = expr.char_indices().peekable();
    while let Some((start, c)) = chars.next() {
        if c == '"' || c == '\'' {
            // Skip a string literal (with backslash escapes).
            while let Some((_, d)) = chars.next() {
                if d == '\\' {
                    chars.next();
                } else if d == c {
                    break;
                }
            }
            continue;
        }
        if c.is_ascii_alphabetic() || c == '_' || c == ':' {
            let mut end = start + c.len_utf8();
            while let Some(&(i, d)) = chars.peek() {
                if d.is_ascii_alphanumeric() || d == '_' || d == ':' {
                    end = i + d.len_utf8();
                    chars.next();
                } else {
                    break;
                }
            }
            let word = &expr[start..end];
            if word.starts_with("proofline_") {
                names.insert(word.to_owned());
            }
        } else if c.is_ascii_digit() {
            // A number (or a duration such as 5m): not a name.
            while chars.peek().is_some_and(|&(_, d)| d.is_ascii_alphanumeric() || d == '.') {
                chars.next();
            }
        }
    }
    names
}

/// `expr` with Grafana's interval variables replaced by a fixed range, for a plain
/// Prometheus query.
pub fn for_prometheus(expr: &str, range: &str) -> String {
    ["$__rate_interval", "$__interval", "$__range"]
        .iter()
        .fold(expr.to_owned(), |e, var| e.replace(var, range))
}
