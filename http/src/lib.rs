//! The binaries' HTTP endpoints (the worker's probes, `/metrics`, the service's API):
//! axum routers served by hyper's HTTP/1 server, within bounds.
//!
//! # How a connection is served
//! 1. `accept`. An error (out of file descriptors) backs off from 10 ms to 1 s
//!    ([`accept_backoff`]) instead of spinning, and is logged at powers of two.
//! 2. Take a slot: at most [`Limits::max_connections`] connections at once; one more
//!    is closed at once, never queued, so a flood costs nothing but that.
//! 3. Serve it: the client has [`Limits::header_timeout`] to send each request head,
//!    and, where set, [`Limits::connection_timeout`] in all (probe endpoints: no
//!    keep-alive, seconds per connection; an API that takes uploads sets none and
//!    bounds its bodies itself).
//! 4. Stop accepting when the caller's `shutdown` future completes.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::header;
use axum::routing::get;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

/// Bounds of one listener.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    pub max_connections: usize,
    /// Time a client has to send a request head.
    pub header_timeout: Duration,
    /// Time a connection may stay open in all (`None`: no limit).
    pub connection_timeout: Option<Duration>,
    /// Serve more than one request per connection.
    pub keep_alive: bool,
    /// Largest read buffer, which bounds a request head (bodies stream through it).
    pub max_head_bytes: usize,
}

impl Limits {
    /// Probe and scrape endpoints: 64 connections, 5 s for the head, 10 s in all, one
    /// request per connection.
    pub const PROBES: Limits = Limits {
        max_connections: 64,
        header_timeout: Duration::from_secs(5),
        connection_timeout: Some(Duration::from_secs(10)),
        keep_alive: false,
        max_head_bytes: 16 * 1024,
    };
}

impl Default for Limits {
    fn default() -> Self {
        Self::PROBES
    }
}

/// Delay after the `failures`-th consecutive `accept` error: 10 ms doubling to 1 s.
pub fn accept_backoff(failures: u32) -> Duration {
    let ms = 10u64.saturating_mul(1 << failures.saturating_sub(1).min(7));
    Duration::from_millis(ms.min(1000))
}

/// `GET /metrics`: this process's Prometheus text exposition.
pub fn metrics_router() -> Router {
    Router::new().route(
        "/metrics",
        get(|| async {
            (
                [(header::CONTENT_TYPE, proofline_runtime::metrics::CONTENT_TYPE)],
                proofline_runtime::metrics::render(),
            )
        }),
    )
}

/// Serve `app` on `listener` within `limits` until `shutdown` completes; returns its
/// output. `name` labels the log lines (`"API"`, `"metrics endpoint"`).
pub async fn serve<T>(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    name: &'static str,
    shutdown: impl Future<Output = T>,
) -> T {
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let bound = listener.local_addr().ok();
    let mut failures = 0u32;
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            out = &mut shutdown => return out,
        };
        let stream = match accepted {
            Ok((stream, _)) => {
                failures = 0;
                stream
            }
            Err(e) => {
                failures = failures.saturating_add(1);
                let delay = accept_backoff(failures);
                if failures.is_power_of_two() {
                    tracing::warn!(error = %e, failures, retry_in_ms = delay.as_millis() as u64,
                        addr = ?bound, "{name}: accept failed");
                }
                tokio::time::sleep(delay).await;
                continue;
            }
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            tracing::debug!(max = limits.max_connections, addr = ?bound, "{name}: connection cap reached; closing a new connection");
            drop(stream);
            continue;
        };
        let service = TowerToHyperService::new(app.clone());
        tokio::spawn(async move {
            let _slot = slot;
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(limits.header_timeout)
                .keep_alive(limits.keep_alive)
                .max_buf_size(limits.max_head_bytes.max(8192))
                .serve_connection(TokioIo::new(stream), service);
            let ended = match limits.connection_timeout {
                Some(limit) => tokio::time::timeout(limit, conn).await.unwrap_or(Ok(())),
                None => conn.await,
            };
            if let Err(e) = ended {
                tracing::debug!(error = %e, "{name}: connection ended with an error");
            }
        });
    }
}

/// Bind `addr` and serve `app` within `limits` on a task of its own until the process
/// exits; returns the bound address (`:0` picks a free port).
pub async fn spawn(
    addr: SocketAddr,
    app: Router,
    limits: Limits,
    name: &'static str,
) -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    tokio::spawn(serve(listener, app, limits, name, std::future::pending::<()>()));
    Ok(bound)
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    async fn get(addr: SocketAddr, path: &str) -> String {
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let request = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).await.unwrap();
        response
    }

    #[tokio::test]
    async fn metrics_are_served_with_their_content_type_and_nothing_else_is() {
        proofline_runtime::metrics::install().unwrap();
        proofline_runtime::metrics::leader::set_dispatch_window(7);
        let addr =
            spawn("127.0.0.1:0".parse().unwrap(), metrics_router(), Limits::PROBES, "test").await.unwrap();
        let response = get(addr, "/metrics").await;
        assert!(response.starts_with("HTTP/1.1 200"), "{response}");
        assert!(
            response.to_ascii_lowercase().contains("content-type: text/plain; version=0.0.4"),
            "{response}"
        );
        assert!(response.contains("\nproofline_dispatch_window 7\n"), "{response}");
        assert!(get(addr, "/").await.starts_with("HTTP/1.1 404"));
    }

    #[tokio::test]
    async fn a_connection_beyond_the_cap_is_closed_at_once() {
        let limits = Limits { max_connections: 1, ..Limits::PROBES };
        let addr = spawn("127.0.0.1:0".parse().unwrap(), metrics_router(), limits, "test").await.unwrap();
        // The first connection holds the only slot (it sends nothing).
        let _held = tokio::net::TcpStream::connect(addr).await.unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
        let mut second = tokio::net::TcpStream::connect(addr).await.unwrap();
        let mut buf = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(2), second.read_to_end(&mut buf)).await;
        assert!(matches!(read, Ok(Ok(0)) | Ok(Err(_))), "closed without an answer: {read:?} {buf:?}");
    }

    #[test]
    fn accept_backoff_grows_and_is_bounded() {
        assert_eq!(accept_backoff(1), Duration::from_millis(10));
        assert_eq!(accept_backoff(2), Duration::from_millis(20));
        assert_eq!(accept_backoff(3), Duration::from_millis(40));
        assert_eq!(accept_backoff(8), Duration::from_secs(1));
        assert_eq!(accept_backoff(u32::MAX), Duration::from_secs(1));
    }
}
