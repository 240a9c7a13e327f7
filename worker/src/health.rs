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
//! The endpoints cannot be exhausted: at most [`Limits::max_connections`] connections
//! are served at once and one more is closed at once (never queued); a connection has
//! [`Limits::read_timeout`] to send its request head and [`Limits::connection_timeout`]
//! in all (no keep-alive), so a slow or silent client holds a slot for seconds, not
//! forever; an `accept` error (out of file descriptors) backs off from 10 ms to 1 s
//! instead of spinning.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use proofline_runtime::transport::AmqpTransport;
use proofline_runtime::worker::Liveness;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

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

/// Resource bounds of the health server.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub max_connections: usize,
    /// Time a client has to send its request head.
    pub read_timeout: Duration,
    /// Time a connection may stay open in all.
    pub connection_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_connections: 64,
            read_timeout: Duration::from_secs(5),
            connection_timeout: Duration::from_secs(10),
        }
    }
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

/// Delay after the `failures`-th consecutive `accept` error: 10 ms doubling to 1 s.
pub fn accept_backoff(failures: u32) -> Duration {
    let ms = 10u64.saturating_mul(1 << failures.saturating_sub(1).min(7));
    Duration::from_millis(ms.min(1000))
}

/// `GET /metrics`: the process's Prometheus exposition.
pub fn metrics_router() -> Router {
    Router::new().route(
        "/metrics",
        get(|| async {
            (
                [(axum::http::header::CONTENT_TYPE, proofline_runtime::metrics::CONTENT_TYPE)],
                proofline_runtime::metrics::render(),
            )
        }),
    )
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
    serve_router(addr, router(probes), limits).await
}

/// Bind `addr` and serve only `/metrics` until the process exits; returns the bound
/// address.
pub async fn serve_metrics(addr: SocketAddr, limits: Limits) -> std::io::Result<SocketAddr> {
    let app = metrics_router().fallback(|| async { (StatusCode::NOT_FOUND, "try /metrics\n") });
    serve_router(addr, app, limits).await
}

/// Bind `addr` and serve `app` with `limits` until the process exits.
async fn serve_router(addr: SocketAddr, app: Router, limits: Limits) -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    tokio::spawn(async move {
        let mut failures = 0u32;
        loop {
            let stream = match listener.accept().await {
                Ok((stream, _)) => {
                    failures = 0;
                    stream
                }
                Err(e) => {
                    failures = failures.saturating_add(1);
                    let delay = accept_backoff(failures);
                    if failures.is_power_of_two() {
                        tracing::warn!(error = %e, failures, retry_in_ms = delay.as_millis() as u64,
                            %bound, "HTTP endpoint: accept failed");
                    }
                    tokio::time::sleep(delay).await;
                    continue;
                }
            };
            let Ok(slot) = slots.clone().try_acquire_owned() else {
                tracing::debug!(max = limits.max_connections, %bound, "HTTP endpoint: connection cap reached");
                drop(stream);
                continue;
            };
            let service = TowerToHyperService::new(app.clone());
            tokio::spawn(async move {
                let _slot = slot;
                let conn = hyper::server::conn::http1::Builder::new()
                    .timer(TokioTimer::new())
                    .header_read_timeout(limits.read_timeout)
                    .keep_alive(false)
                    .max_buf_size(16 * 1024)
                    .serve_connection(TokioIo::new(stream), service);
                let _ = tokio::time::timeout(limits.connection_timeout, conn).await;
            });
        }
    });
    Ok(bound)
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

    #[test]
    fn accept_backoff_grows_and_is_bounded() {
        assert_eq!(accept_backoff(1), Duration::from_millis(10));
        assert_eq!(accept_backoff(2), Duration::from_millis(20));
        assert_eq!(accept_backoff(8), Duration::from_secs(1));
        assert_eq!(accept_backoff(u32::MAX), Duration::from_secs(1));
    }
}
