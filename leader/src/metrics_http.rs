//! `GET /metrics` of the leader: the Prometheus text exposition of
//! [`proofline_runtime::metrics`], on `--metrics-addr` (stdio, batch and serve).
//!
//! [`router`] is the reusable piece: `serve` mounts it on its own listener next to the
//! API; [`serve`] runs it alone on its own address. The server is bounded like the
//! worker's health endpoint: at most [`MAX_CONNECTIONS`] at once (one more is closed at
//! once), [`HEADER_TIMEOUT`] to send a request head, [`CONNECTION_TIMEOUT`] in all,
//! no keep-alive, and `accept` errors back off instead of spinning.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::{StatusCode, header};
use axum::routing::get;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

pub const MAX_CONNECTIONS: usize = 32;
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(5);
pub const CONNECTION_TIMEOUT: Duration = Duration::from_secs(10);

/// `GET /metrics` with the text exposition (`text/plain; version=0.0.4`).
pub fn router() -> Router {
    Router::new().route("/metrics", get(metrics))
}

async fn metrics() -> ([(header::HeaderName, &'static str); 1], String) {
    ([(header::CONTENT_TYPE, proofline_runtime::metrics::CONTENT_TYPE)], proofline_runtime::metrics::render())
}

/// Delay after the `failures`-th consecutive `accept` error: 10 ms doubling to 1 s.
fn accept_backoff(failures: u32) -> Duration {
    let ms = 10u64.saturating_mul(1 << failures.saturating_sub(1).min(7));
    Duration::from_millis(ms.min(1000))
}

/// Bind `addr` and serve [`router`] (anything else: 404) until the process exits;
/// returns the bound address.
pub async fn serve(addr: SocketAddr) -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    let app = router().fallback(|| async { (StatusCode::NOT_FOUND, "try /metrics\n") });
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
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
                        tracing::warn!(error = %e, failures, %bound, "metrics endpoint: accept failed");
                    }
                    tokio::time::sleep(delay).await;
                    continue;
                }
            };
            let Ok(slot) = slots.clone().try_acquire_owned() else {
                drop(stream);
                continue;
            };
            let service = TowerToHyperService::new(app.clone());
            tokio::spawn(async move {
                let _slot = slot;
                let conn = hyper::server::conn::http1::Builder::new()
                    .timer(TokioTimer::new())
                    .header_read_timeout(HEADER_TIMEOUT)
                    .keep_alive(false)
                    .max_buf_size(16 * 1024)
                    .serve_connection(TokioIo::new(stream), service);
                let _ = tokio::time::timeout(CONNECTION_TIMEOUT, conn).await;
            });
        }
    });
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
    async fn serves_the_exposition_with_its_content_type() {
        proofline_runtime::metrics::install().unwrap();
        proofline_runtime::metrics::leader::set_dispatch_window(7);
        let addr = serve("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let response = get(addr, "/metrics").await;
        assert!(response.starts_with("HTTP/1.1 200"), "{response}");
        assert!(
            response.to_ascii_lowercase().contains("content-type: text/plain; version=0.0.4"),
            "{response}"
        );
        assert!(response.contains("\nproofline_dispatch_window 7\n"), "{response}");
        assert!(get(addr, "/").await.starts_with("HTTP/1.1 404"));
    }
}
