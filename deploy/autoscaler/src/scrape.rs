//! `GET` of a `/metrics` page over plain HTTP/1.1: one request per connection, a
//! deadline on the whole exchange, a bound on the body. Scrape targets are leaders and
//! worker pods on the cluster network (Prometheus scrapes them the same way).

use std::time::Duration;

use thiserror::Error;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Largest exposition read (a worker's is ~20 KiB).
const MAX_BODY: usize = 4 << 20;

#[derive(Debug, Error)]
pub enum ScrapeError {
    #[error("`{0}` is not an http://HOST:PORT/PATH URL")]
    BadUrl(String),
    #[error("{url}: {source}")]
    Io {
        url: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{url}: no answer within {secs} s")]
    Timeout { url: String, secs: u64 },
    #[error("{url}: {reason}")]
    Http { url: String, reason: String },
}

/// An `http://host:port/path` target, checked once.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    url: String,
    authority: String,
    path: String,
}

impl Target {
    pub fn parse(url: &str) -> Result<Self, ScrapeError> {
        let bad = || ScrapeError::BadUrl(url.to_owned());
        let rest = url.strip_prefix("http://").ok_or_else(bad)?;
        let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        if authority.is_empty() || authority.contains('@') {
            return Err(bad());
        }
        let path = if path.is_empty() { "/metrics" } else { path };
        let authority = if authority.rsplit_once(':').is_some_and(|(_, p)| p.parse::<u16>().is_ok())
            && !authority.ends_with(']')
        {
            authority.to_owned()
        } else {
            format!("{authority}:80")
        };
        Ok(Self { url: url.to_owned(), authority, path: path.to_owned() })
    }

    pub fn url(&self) -> &str {
        &self.url
    }
}

/// The body of `GET target` within `deadline`.
pub async fn get(target: &Target, deadline: Duration) -> Result<String, ScrapeError> {
    let timeout = || ScrapeError::Timeout { url: target.url.clone(), secs: deadline.as_secs() };
    tokio::time::timeout(deadline, exchange(target)).await.map_err(|_| timeout())?
}

async fn exchange(target: &Target) -> Result<String, ScrapeError> {
    let io = |source| ScrapeError::Io { url: target.url.clone(), source };
    let mut stream = TcpStream::connect(&target.authority).await.map_err(io)?;
    let host = target.authority.strip_suffix(":80").unwrap_or(&target.authority);
    let request = format!(
        "GET {} HTTP/1.1\r\nHost: {host}\r\nAccept: text/plain\r\nConnection: close\r\n\r\n",
        target.path
    );
    stream.write_all(request.as_bytes()).await.map_err(io)?;
    let mut raw = Vec::new();
    stream.take((MAX_BODY + 64 * 1024) as u64).read_to_end(&mut raw).await.map_err(io)?;
    parse_response(&raw).map_err(|reason| ScrapeError::Http { url: target.url.clone(), reason })
}

/// Status 200 and the body (plain or chunked) of a whole response.
fn parse_response(raw: &[u8]) -> Result<String, String> {
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n").ok_or("no complete response head")?;
    let head = std::str::from_utf8(&raw[..end]).map_err(|_| "response head is not UTF-8")?;
    let status = head.lines().next().unwrap_or_default();
    if status.split_whitespace().nth(1) != Some("200") {
        return Err(format!("answered `{status}`"));
    }
    let chunked = head.lines().any(|l| {
        let l = l.to_ascii_lowercase();
        l.starts_with("transfer-encoding:") && l.contains("chunked")
    });
    let body = &raw[end + 4..];
    let body = if chunked { dechunk(body)? } else { body.to_vec() };
    if body.len() > MAX_BODY {
        return Err(format!("body over {MAX_BODY} bytes"));
    }
    String::from_utf8(body).map_err(|_| "body is not UTF-8".to_owned())
}

fn dechunk(mut body: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    loop {
        let line_end = body.windows(2).position(|w| w == b"\r\n").ok_or("truncated chunk size")?;
        let size = std::str::from_utf8(&body[..line_end]).ok().and_then(|s| {
            let hex = s.split(';').next().unwrap_or_default().trim();
            usize::from_str_radix(hex, 16).ok()
        });
        let size = size.ok_or("bad chunk size")?;
        body = &body[line_end + 2..];
        if size == 0 {
            return Ok(out);
        }
        if body.len() < size + 2 || out.len() + size > MAX_BODY {
            return Err("truncated or oversized chunk".into());
        }
        out.extend_from_slice(&body[..size]);
        body = &body[size + 2..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_default_the_port_and_path() {
        let t = Target::parse("http://leader:9464/metrics").unwrap();
        assert_eq!((t.authority.as_str(), t.path.as_str()), ("leader:9464", "/metrics"));
        let t = Target::parse("http://leader").unwrap();
        assert_eq!((t.authority.as_str(), t.path.as_str()), ("leader:80", "/metrics"));
        for bad in ["https://leader/metrics", "leader:9464", "http:///x", "http://user:pw@leader/"] {
            assert!(Target::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn responses_plain_and_chunked() {
        let plain = b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nup 1\n";
        assert_eq!(parse_response(plain).unwrap(), "up 1\n");
        let chunked =
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nup \r\n2\r\n1\n\r\n0\r\n\r\n";
        assert_eq!(parse_response(chunked).unwrap(), "up 1\n");
        let err = parse_response(b"HTTP/1.1 503 Service Unavailable\r\n\r\n").unwrap_err();
        assert!(err.contains("503"), "{err}");
        assert!(parse_response(b"HTTP/1.1 200 OK\r\n").is_err());
    }

    #[tokio::test]
    async fn a_real_endpoint_is_read_and_a_closed_port_is_an_error() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut buf = [0u8; 1024];
            let n = s.read(&mut buf).await.unwrap();
            assert!(std::str::from_utf8(&buf[..n]).unwrap().starts_with("GET /metrics HTTP/1.1\r\n"));
            s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 7\r\n\r\nok 1.5\n").await.unwrap();
        });
        let target = Target::parse(&format!("http://{addr}/metrics")).unwrap();
        assert_eq!(get(&target, Duration::from_secs(5)).await.unwrap(), "ok 1.5\n");
        let closed = Target::parse("http://127.0.0.1:1/metrics").unwrap();
        assert!(matches!(get(&closed, Duration::from_secs(5)).await, Err(ScrapeError::Io { .. })));
    }
}
