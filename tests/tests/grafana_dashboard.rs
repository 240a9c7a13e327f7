//! The Grafana dashboard uses only metric names the code exports, and charts every
//! metric the code exports (or says why not): `deploy/grafana/proofline.json` checked
//! against `proofline_runtime::metrics::METRICS`. A real Prometheus evaluates every
//! expression in `tests/tests/prometheus.rs`.

use std::collections::{BTreeMap, BTreeSet};

use proofline_runtime::metrics::{METRICS, MetricType, metric_of_series};
use proofline_tests::dashboard::{self, exprs, metric_names, panels};

/// Metrics deliberately not charted, with the reason. Empty: every metric has a panel.
const NOT_CHARTED: &[(&str, &str)] = &[];

#[test]
fn every_panel_queries_only_exported_metrics() {
    let dash = dashboard::load();
    let exprs = exprs(&dash);
    assert!(exprs.len() >= 10, "only {} queries in {}", exprs.len(), dashboard::path().display());
    for (title, expr) in &exprs {
        let names = metric_names(expr);
        assert!(!names.is_empty(), "panel {title:?}: {expr} uses no proofline metric");
        for name in names {
            let spec = metric_of_series(&name)
                .unwrap_or_else(|| panic!("panel {title:?} queries {name}, which the code does not export"));
            // Counters are read through rate()/increase(), never as raw totals.
            if spec.kind == MetricType::Counter {
                assert!(
                    expr.contains("rate(") || expr.contains("increase("),
                    "panel {title:?} reads counter {name} without rate() or increase(): {expr}"
                );
            }
            if name.ends_with("_bucket") {
                assert!(expr.contains("histogram_quantile("), "panel {title:?}: {name} outside a quantile");
            }
        }
    }
}

#[test]
fn every_exported_metric_is_charted_or_deliberately_not() {
    let dash = dashboard::load();
    let used: BTreeSet<&'static str> = exprs(&dash)
        .iter()
        .flat_map(|(_, expr)| metric_names(expr))
        .filter_map(|name| metric_of_series(&name).map(|m| m.name))
        .collect();
    let not_charted: BTreeMap<&str, &str> = NOT_CHARTED.iter().copied().collect();
    for m in METRICS {
        match (used.contains(m.name), not_charted.get(m.name)) {
            (true, None) => {}
            (false, Some(why)) => assert!(!why.is_empty(), "{} is not charted: say why", m.name),
            (true, Some(_)) => panic!("{} is charted but listed in NOT_CHARTED", m.name),
            (false, None) => panic!("no panel charts {} (add one, or list it in NOT_CHARTED)", m.name),
        }
    }
    for name in not_charted.keys() {
        assert!(METRICS.iter().any(|m| m.name == *name), "NOT_CHARTED names {name}, which is not exported");
    }
}

#[test]
fn panels_use_the_prometheus_datasource_input_and_have_unique_ids() {
    let dash = dashboard::load();
    assert_eq!(dash["uid"], "proofline");
    let inputs = dash["__inputs"].as_array().expect("__inputs");
    assert!(inputs.iter().any(|i| i["name"] == "DS_PROMETHEUS" && i["pluginId"] == "prometheus"));
    let vars = dash["templating"]["list"].as_array().expect("templating.list");
    assert!(vars.iter().any(|v| v["name"] == "DS_PROMETHEUS" && v["type"] == "datasource"));
    let mut ids = BTreeSet::new();
    for panel in panels(&dash) {
        let title = panel["title"].as_str().expect("every panel has a title");
        assert!(ids.insert(panel["id"].as_u64().expect("numeric id")), "duplicate id at {title:?}");
        for key in ["h", "w", "x", "y"] {
            assert!(panel["gridPos"][key].is_u64(), "{title:?}: gridPos.{key}");
        }
        if panel["type"] == "row" {
            continue;
        }
        assert_eq!(panel["datasource"]["uid"], "${DS_PROMETHEUS}", "{title:?}");
        for target in panel["targets"].as_array().expect("targets") {
            assert_eq!(target["datasource"]["uid"], "${DS_PROMETHEUS}", "{title:?}");
        }
    }
}

#[test]
fn metric_names_are_found_outside_strings_only() {
    let names = metric_names(
        r#"histogram_quantile(0.9, sum by (le) (rate(proofline_task_run_seconds_bucket{kind="proofline_x"}[5m])))"#,
    );
    assert_eq!(names, BTreeSet::from(["proofline_task_run_seconds_bucket".to_owned()]));
    assert!(metric_names("sum(up) / 1e3").is_empty());
}
