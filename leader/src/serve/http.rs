//! Serving the API's router over HTTP/1 with hyper, within bounds: at most
//! [`MAX_CONNECTIONS`] connections at once (one more is closed at once, never queued),
//! [`HEADER_TIMEOUT`] to send a request head, and an `accept` error backs off instead
//! of spinning. Stops accepting when `shutdown` completes.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

pub const MAX_CONNECTIONS: usize = 512;
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// Delay after the `failures`-th consecutive `accept` error: 10 ms doubling to 1 s.
fn accept_backoff(failures: u32) -> Duration {
    let ms = 10u64.saturating_mul(1 << failures.saturating_sub(1).min(7));
    Duration::from_millis(ms.min(1000))
}

/// Serve `app` on `listener` until `shutdown` completes; returns its output.
pub async fn serve<T>(listener: TcpListener, app: Router, shutdown: impl Future<Output = T>) -> T {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
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
                if failures.is_power_of_two() {
                    tracing::warn!(error = %e, failures, "API: accept failed");
                }
                tokio::time::sleep(accept_backoff(failures)).await;
                continue;
            }
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            tracing::warn!(max = MAX_CONNECTIONS, "API: connection cap reached; closing a new connection");
            drop(stream);
            continue;
        };
        let service = TowerToHyperService::new(app.clone());
        tokio::spawn(async move {
            let _slot = slot;
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .serve_connection(TokioIo::new(stream), service);
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "API connection ended with an error");
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_backoff_grows_and_is_bounded() {
        assert_eq!(accept_backoff(1), Duration::from_millis(10));
        assert_eq!(accept_backoff(3), Duration::from_millis(40));
        assert_eq!(accept_backoff(u32::MAX), Duration::from_secs(1));
    }
}
