//! Liveness and readiness over HTTP/1, for Kubernetes probes: axum routes served by
//! hyper's HTTP/1 server.
//!
//! - `GET /livez`: 200 while the worker actor runs and the broker has not been given
//!   up; 503 with the reason otherwise (the process then exits 1 anyway: a 503 is seen
//!   only in the moments before).
//! - `GET /readyz`: 200 while the worker takes tasks; 503 before it started, while it
//!   drains, and whenever `/livez` fails.
//! - `GET /metrics`: the Prometheus text exposition (also on `--metrics-addr`, which
//!   serves only that, with the same limits).
//! - Anything else: 404.
//!
//! The endpoints cannot be exhausted ([`proofline_http`], [`Limits::PROBES`]): at most
//! 64 connections are served at once and one more is closed at once (never queued); a
//! connection has 5 s to send its request head and 10 s in all (no keep-alive), so a
//! slow or silent client holds a slot for seconds, not forever; an `accept` error (out
//! of file descriptors) backs off from 10 ms to 1 s instead of spinning.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
pub use proofline_http::Limits;
use proofline_http::metrics_router;
use proofline_runtime::transport::AmqpTransport;
use proofline_runtime::worker::Liveness;

/// `Ok` while the process is healthy, else why not. Called on every `/livez`.
pub type LiveCheck = Arc<dyn Fn() -> Result<(), String> + Send + Sync>;

/// The worker's check: the broker not given up, and the worker actor (once started,
/// which `worker` is set to) running.
pub fn worker_check(amqp: AmqpTransport, worker: Arc<OnceLock<Liveness>>) -> LiveCheck {
    Arc::new(move || {
        if let Some(reason) = amqp.lost_reason() {
            return Err(reason);
        }
        match worker.get() {
            Some(worker) if !worker.is_alive() => Err("the worker actor stopped".into()),
            _ => Ok(()),
        }
    })
}

/// What the endpoints report.
#[derive(Clone)]
pub struct Probes {
    pub live: LiveCheck,
    /// True while the worker takes tasks.
    pub ready: Arc<AtomicBool>,
}

/// Status and body of `/livez`.
pub fn livez_response(live: Result<(), String>) -> (StatusCode, String) {
    match live {
        Ok(()) => (StatusCode::OK, "ok\n".into()),
        Err(why) => (StatusCode::SERVICE_UNAVAILABLE, format!("not live: {why}\n")),
    }
}

/// Status and body of `/readyz`.
pub fn readyz_response(ready: bool, live: Result<(), String>) -> (StatusCode, String) {
    match (live, ready) {
        (Err(why), _) => (StatusCode::SERVICE_UNAVAILABLE, format!("not live: {why}\n")),
        (Ok(()), true) => (StatusCode::OK, "ready\n".into()),
        (Ok(()), false) => {
            (StatusCode::SERVICE_UNAVAILABLE, "not taking tasks (starting or draining)\n".into())
        }
    }
}

fn router(probes: Probes) -> Router {
    Router::new()
        .route("/livez", get(|State(p): State<Probes>| async move { livez_response((p.live)()) }))
        .route(
            "/readyz",
            get(|State(p): State<Probes>| async move {
                readyz_response(p.ready.load(Ordering::Relaxed), (p.live)())
            }),
        )
        .fallback(|| async { (StatusCode::NOT_FOUND, "try /livez, /readyz or /metrics\n") })
        .with_state(probes)
        .merge(metrics_router())
}

/// Bind `addr` and serve the probes (and `/metrics`) until the process exits; returns
/// the bound address.
pub async fn serve(addr: SocketAddr, probes: Probes, limits: Limits) -> std::io::Result<SocketAddr> {
    proofline_http::spawn(addr, router(probes), limits, "health endpoint").await
}

/// Bind `addr` and serve only `/metrics` until the process exits; returns the bound
/// address.
pub async fn serve_metrics(addr: SocketAddr, limits: Limits) -> std::io::Result<SocketAddr> {
    let app = metrics_router().fallback(|| async { (StatusCode::NOT_FOUND, "try /metrics\n") });
    proofline_http::spawn(addr, app, limits, "metrics endpoint").await
}

#[cfg(test)]
#[path = "health_tests.rs"]
mod server_tests;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn responses() {
        assert_eq!(livez_response(Ok(())).0, StatusCode::OK);
        let (code, body) = livez_response(Err("worker actor stopped".into()));
        assert_eq!(code, StatusCode::SERVICE_UNAVAILABLE);
        assert!(body.contains("worker actor stopped"));
        assert_eq!(readyz_response(true, Ok(())).0, StatusCode::OK);
        assert_eq!(readyz_response(false, Ok(())).0, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(readyz_response(true, Err("x".into())).0, StatusCode::SERVICE_UNAVAILABLE);
    }
}
