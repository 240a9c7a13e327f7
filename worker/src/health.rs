//! Liveness and readiness over plain HTTP, for Kubernetes probes.
//!
//! `GET /livez`: 200 while the process serves. `GET /readyz`: 200 while the worker
//! takes tasks, 503 once it drains.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// Serve probes until the process exits; `ready` flips to false on drain.
pub async fn serve(addr: SocketAddr, ready: Arc<AtomicBool>) -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    tokio::spawn(async move {
        loop {
            let Ok((mut conn, _)) = listener.accept().await else { continue };
            let ready = ready.clone();
            tokio::spawn(async move {
                let mut buf = [0u8; 1024];
                let n = conn.read(&mut buf).await.unwrap_or(0);
                let request = String::from_utf8_lossy(&buf[..n]);
                let path = request.split_whitespace().nth(1).unwrap_or("");
                let (status, body) = match path {
                    "/livez" => ("200 OK", "ok\n"),
                    "/readyz" if ready.load(Ordering::Relaxed) => ("200 OK", "ready\n"),
                    "/readyz" => ("503 Service Unavailable", "draining\n"),
                    _ => ("404 Not Found", "try /livez or /readyz\n"),
                };
                let response = format!(
                    "HTTP/1.1 {status}\r\ncontent-type: text/plain\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = conn.write_all(response.as_bytes()).await;
            });
        }
    });
    Ok(bound)
}
