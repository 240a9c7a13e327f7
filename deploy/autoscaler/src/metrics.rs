//! The autoscaler's own `/metrics` (desired vs actual replicas per pool, decisions by
//! reason, errors) and `/livez`, rendered from its state: a handful of series, no
//! recorder needed.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::http::{StatusCode, header};
use axum::routing::get;

use crate::policy::{Decision, Reason};

#[derive(Default)]
struct PoolMeters {
    desired: u32,
    applied: u32,
    actual: u32,
    busy: u32,
    decisions: BTreeMap<&'static str, u64>,
    spared: u64,
    backend_errors: u64,
}

/// Everything the endpoint renders.
pub struct Meters {
    pools: BTreeMap<String, PoolMeters>,
    outstanding_cost: f64,
    scrape_errors: BTreeMap<&'static str, u64>,
    rounds: u64,
    last_round: Instant,
}

impl Default for Meters {
    fn default() -> Self {
        Self {
            pools: BTreeMap::new(),
            outstanding_cost: 0.0,
            scrape_errors: BTreeMap::new(),
            rounds: 0,
            last_round: Instant::now(),
        }
    }
}

impl Meters {
    pub fn record(&mut self, pool: &str, cost: f64, decision: &Decision, applied: u32, busy: u32) {
        self.outstanding_cost = cost;
        let m = self.pools.entry(pool.to_owned()).or_default();
        m.desired = decision.to;
        m.applied = applied;
        m.actual = decision.from;
        m.busy = busy;
        *m.decisions.entry(decision.reason.as_str()).or_default() += 1;
        if applied > decision.to {
            m.spared += 1;
        }
    }

    pub fn scrape_error(&mut self, target: &'static str) {
        *self.scrape_errors.entry(target).or_default() += 1;
    }

    pub fn backend_error(&mut self, pool: &str) {
        self.pools.entry(pool.to_owned()).or_default().backend_errors += 1;
    }

    pub fn alive(&mut self) {
        self.rounds += 1;
        self.last_round = Instant::now();
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let mut family = |name: &str, kind: &str, help: &str, rows: Vec<(String, String)>| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
            for (labels, value) in rows {
                let _ = writeln!(out, "{name}{labels} {value}");
            }
        };
        let per_pool = |f: &dyn Fn(&PoolMeters) -> String| {
            self.pools.iter().map(|(p, m)| (format!("{{pool=\"{p}\"}}"), f(m))).collect::<Vec<_>>()
        };
        family(
            "proofline_autoscaler_outstanding_cost",
            "gauge",
            "Outstanding cost summed over the leaders at the last round.",
            vec![(String::new(), self.outstanding_cost.to_string())],
        );
        let replicas = self
            .pools
            .iter()
            .flat_map(|(p, m)| {
                [("desired", m.desired), ("applied", m.applied), ("actual", m.actual)]
                    .map(|(k, v)| (format!("{{pool=\"{p}\",kind=\"{k}\"}}"), v.to_string()))
            })
            .collect();
        family(
            "proofline_autoscaler_replicas",
            "gauge",
            "Replicas per pool: desired by the policy, applied (after sparing busy workers), actual before the round.",
            replicas,
        );
        family(
            "proofline_autoscaler_busy_workers",
            "gauge",
            "Workers holding work at the last round, per pool.",
            per_pool(&|m| m.busy.to_string()),
        );
        let decisions = self
            .pools
            .iter()
            .flat_map(|(p, m)| {
                Reason::ALL.map(|r| {
                    let n = m.decisions.get(r.as_str()).copied().unwrap_or(0);
                    (format!("{{pool=\"{p}\",reason=\"{}\"}}", r.as_str()), n.to_string())
                })
            })
            .collect();
        family(
            "proofline_autoscaler_decisions_total",
            "counter",
            "Decisions per pool, by reason.",
            decisions,
        );
        family(
            "proofline_autoscaler_busy_spared_total",
            "counter",
            "Rounds where a pool was kept larger than desired because its other workers held work.",
            per_pool(&|m| m.spared.to_string()),
        );
        family(
            "proofline_autoscaler_backend_errors_total",
            "counter",
            "Failed observations or scalings per pool.",
            per_pool(&|m| m.backend_errors.to_string()),
        );
        let scrapes = ["leader", "worker"]
            .map(|t| {
                (format!("{{target=\"{t}\"}}"), self.scrape_errors.get(t).copied().unwrap_or(0).to_string())
            })
            .to_vec();
        family(
            "proofline_autoscaler_scrape_errors_total",
            "counter",
            "Scrapes that failed, by target.",
            scrapes,
        );
        family(
            "proofline_autoscaler_rounds_total",
            "counter",
            "Control rounds completed.",
            vec![(String::new(), self.rounds.to_string())],
        );
        out
    }

    fn stale(&self, interval: Duration) -> bool {
        self.last_round.elapsed() > interval * 3 + Duration::from_secs(30)
    }
}

/// `GET /metrics` and `GET /livez` (200 while rounds keep completing).
pub fn router(meters: Arc<Mutex<Meters>>, interval: Duration) -> Router {
    let for_livez = meters.clone();
    Router::new()
        .route(
            "/metrics",
            get(move || {
                let text = meters.lock().expect("meters").render();
                async move { ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text) }
            }),
        )
        .route(
            "/livez",
            get(move || {
                let stale = for_livez.lock().expect("meters").stale(interval);
                async move {
                    if stale {
                        (StatusCode::SERVICE_UNAVAILABLE, "stuck\n")
                    } else {
                        (StatusCode::OK, "ok\n")
                    }
                }
            }),
        )
}

/// Serve [`router`] on `addr`; returns the bound address.
pub async fn serve(
    addr: SocketAddr,
    meters: Arc<Mutex<Meters>>,
    interval: Duration,
) -> std::io::Result<SocketAddr> {
    proofline_http::spawn(addr, router(meters, interval), proofline_http::Limits::PROBES, "metrics endpoint")
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_exposition_shows_desired_vs_actual_and_reasons() {
        let mut m = Meters::default();
        let d = Decision { from: 3, to: 1, reason: Reason::ScaleDown };
        m.record("gpu", 12.5, &d, 2, 1);
        m.scrape_error("worker");
        let text = m.render();
        for line in [
            "proofline_autoscaler_outstanding_cost 12.5",
            r#"proofline_autoscaler_replicas{pool="gpu",kind="desired"} 1"#,
            r#"proofline_autoscaler_replicas{pool="gpu",kind="applied"} 2"#,
            r#"proofline_autoscaler_replicas{pool="gpu",kind="actual"} 3"#,
            r#"proofline_autoscaler_decisions_total{pool="gpu",reason="scale_down"} 1"#,
            r#"proofline_autoscaler_decisions_total{pool="gpu",reason="scale_up"} 0"#,
            r#"proofline_autoscaler_busy_spared_total{pool="gpu"} 1"#,
            r#"proofline_autoscaler_scrape_errors_total{target="worker"} 1"#,
        ] {
            assert!(text.lines().any(|l| l == line), "{line} missing:\n{text}");
        }
    }
}
