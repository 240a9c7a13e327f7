//! A private Prometheus server for one test (Debian's `prometheus` package), scraping
//! given loopback targets every second, plus `promtool check metrics` and a minimal
//! HTTP/1.1 GET for reading `/metrics` and the query API.
//!
//! ```no_run
//! use proofline_tests::prometheus::{PrometheusServer, Target};
//! let server = PrometheusServer::start(&[Target::new("proofline-worker", "127.0.0.1:9464")]);
//! let up = server.query("up"); // the `data.result` array of an instant query
//! drop(server); // kills the server, removes its data dir
//! ```
//!
//! If Prometheus is not installed this panics with the install command
//! (`scripts/services/prometheus.sh`); with `CI=true` the message says that a missing
//! service is a CI failure. Tests never skip silently.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// A scrape target: its job name and `host:port`.
#[derive(Clone, Debug)]
pub struct Target {
    pub job: String,
    pub addr: String,
}

impl Target {
    pub fn new(job: &str, addr: impl ToString) -> Self {
        Self { job: job.to_owned(), addr: addr.to_string() }
    }
}

/// A running private Prometheus; killed (and its data dir removed) on drop.
pub struct PrometheusServer {
    dir: tempfile::TempDir,
    port: u16,
    child: Child,
    /// Kills the server if this test process dies without running `Drop`.
    watchdog: Option<Child>,
}

/// Run by `sh -c` beside the server: wait while the test process ($1) lives, then kill
/// the server ($2) and remove its data dir ($3).
const WATCHDOG: &str = r#"
while kill -0 "$1" 2>/dev/null; do sleep 1; done
kill -9 "$2" 2>/dev/null
rm -rf "$3"
"#;

impl PrometheusServer {
    /// Start a server scraping `targets` every second and wait until it is ready.
    pub fn start(targets: &[Target]) -> Self {
        ensure_installed();
        let dir = tempfile::Builder::new().prefix("proofline-prometheus-").tempdir().expect("temp dir");
        let mut jobs: Vec<&str> = targets.iter().map(|t| t.job.as_str()).collect();
        jobs.sort_unstable();
        jobs.dedup();
        let mut config =
            String::from("global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n");
        for job in jobs {
            let addrs: Vec<String> =
                targets.iter().filter(|t| t.job == job).map(|t| format!("'{}'", t.addr)).collect();
            config.push_str(&format!(
                "  - job_name: '{job}'\n    static_configs:\n      - targets: [{}]\n",
                addrs.join(", ")
            ));
        }
        let config_path = dir.path().join("prometheus.yml");
        std::fs::write(&config_path, &config).expect("write prometheus.yml");
        let mut errors = Vec::new();
        for _ in 0..3 {
            // A port taken between picking and binding: try another.
            let port = free_port();
            let log = std::fs::File::create(dir.path().join("prometheus.log")).expect("log file");
            let mut child = Command::new("prometheus")
                .arg(format!("--config.file={}", config_path.display()))
                .arg(format!("--storage.tsdb.path={}", dir.path().join("data").display()))
                .arg(format!("--web.listen-address=127.0.0.1:{port}"))
                .stdin(Stdio::null())
                .stdout(log.try_clone().expect("log file"))
                .stderr(log)
                .spawn()
                .expect("spawn prometheus");
            match wait_ready(&mut child, port, dir.path()) {
                Ok(()) => {
                    let watchdog = Command::new("sh")
                        .args(["-c", WATCHDOG, "watchdog"])
                        .arg(std::process::id().to_string())
                        .arg(child.id().to_string())
                        .arg(dir.path())
                        .stdin(Stdio::null())
                        .spawn()
                        .ok();
                    return Self { dir, port, child, watchdog };
                }
                Err(e) => {
                    errors.push(e);
                    let _ = child.kill();
                    let _ = child.wait();
                    let _ = std::fs::remove_dir_all(dir.path().join("data"));
                }
            }
        }
        panic!("Prometheus did not start (3 attempts):\n{}", errors.join("\n---\n"));
    }

    /// The server's HTTP address.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// The server's own log.
    pub fn log(&self) -> String {
        read_log(self.dir.path())
    }

    /// The data directory (config, TSDB, log).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// `data.result` of the instant query `promql` (an array of `{metric, value}`).
    /// Panics if the API answers with an error.
    pub fn query(&self, promql: &str) -> Vec<serde_json::Value> {
        let path = format!("/api/v1/query?query={}", percent_encode(promql));
        let (status, _, body) =
            http_get(self.addr(), &path).unwrap_or_else(|e| panic!("query {promql:?}: {e}"));
        let json: serde_json::Value =
            serde_json::from_str(&body).unwrap_or_else(|e| panic!("query {promql:?}: {e}: {body}"));
        assert_eq!(status, 200, "query {promql:?}: {body}");
        assert_eq!(json["status"], "success", "query {promql:?}: {body}");
        json["data"]["result"].as_array().cloned().unwrap_or_default()
    }

    /// `(labels, value)` of each series an instant query returns.
    pub fn samples(&self, promql: &str) -> Vec<(serde_json::Map<String, serde_json::Value>, f64)> {
        self.query(promql)
            .into_iter()
            .map(|s| {
                let labels = s["metric"].as_object().cloned().unwrap_or_default();
                let value = s["value"][1].as_str().and_then(|v| v.parse().ok()).unwrap_or(f64::NAN);
                (labels, value)
            })
            .collect()
    }
}

impl Drop for PrometheusServer {
    fn drop(&mut self) {
        if let Some(mut watchdog) = self.watchdog.take() {
            let _ = watchdog.kill();
            let _ = watchdog.wait();
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn read_log(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("prometheus.log")).unwrap_or_default()
}

/// Wait until the server on `port` answers `/-/ready`.
fn wait_ready(child: &mut Child, port: u16, dir: &Path) -> Result<(), String> {
    let until = Instant::now() + READY_TIMEOUT;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!("prometheus exited ({status}):\n{}", read_log(dir)));
        }
        if matches!(http_get(SocketAddr::from(([127, 0, 0, 1], port)), "/-/ready"), Ok((200, _, _))) {
            return Ok(());
        }
        if Instant::now() > until {
            return Err(format!("prometheus not ready after {READY_TIMEOUT:?}:\n{}", read_log(dir)));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Run `promtool check metrics` on an exposition: `Ok` on exit 0, else its output.
pub fn promtool_check_metrics(exposition: &str) -> Result<(), String> {
    ensure_installed();
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn promtool");
    child.stdin.take().expect("piped").write_all(exposition.as_bytes()).expect("write to promtool");
    let out = child.wait_with_output().expect("promtool output");
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "promtool check metrics: {}\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// `GET path` over a fresh connection (HTTP/1.1, `Connection: close`): status code,
/// the head's lines, and the body.
pub fn http_get(addr: SocketAddr, path: &str) -> Result<(u16, String, String), String> {
    let mut conn = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).map_err(|e| e.to_string())?;
    conn.set_read_timeout(Some(Duration::from_secs(10))).map_err(|e| e.to_string())?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    conn.write_all(request.as_bytes()).map_err(|e| e.to_string())?;
    let mut response = Vec::new();
    conn.read_to_end(&mut response).map_err(|e| e.to_string())?;
    let response = String::from_utf8_lossy(&response).into_owned();
    let (head, body) = response.split_once("\r\n\r\n").ok_or_else(|| format!("no HTTP head: {response}"))?;
    let status = head.split_whitespace().nth(1).and_then(|c| c.parse().ok()).ok_or("no status")?;
    let body = if head.to_ascii_lowercase().contains("transfer-encoding: chunked") {
        dechunk(body)?
    } else {
        body.to_owned()
    };
    Ok((status, head.to_owned(), body))
}

/// Decode a chunked body.
fn dechunk(mut rest: &str) -> Result<String, String> {
    let mut body = String::new();
    loop {
        let (size, after) = rest.split_once("\r\n").ok_or("truncated chunk size")?;
        let size = usize::from_str_radix(size.split(';').next().unwrap_or("").trim(), 16)
            .map_err(|e| format!("chunk size {size:?}: {e}"))?;
        if size == 0 {
            return Ok(body);
        }
        body.push_str(after.get(..size).ok_or("truncated chunk")?);
        rest = after.get(size + 2..).ok_or("truncated chunk end")?;
    }
}

/// Percent-encode a query parameter value.
fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A loopback port free now (bound, then released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free loopback port").port()
}

/// Whether `prometheus` and `promtool` are on `PATH`.
fn installed() -> bool {
    ["prometheus", "promtool"].iter().all(|tool| {
        std::env::var_os("PATH")
            .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(tool).is_file()))
    })
}

fn ensure_installed() {
    if installed() {
        return;
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!(
            "Prometheus is required in CI but prometheus/promtool are missing: run \
             scripts/services/prometheus.sh before the tests (a missing service is a CI failure, \
             not a skip)"
        );
    }
    panic!("Prometheus is not installed: run `bash scripts/services/prometheus.sh` (Debian package)");
}

/// A workspace binary (`proofline-leader`, `proofline-worker`) from this test's target
/// directory; panics with the build command if it is missing. `cargo test --workspace`
/// builds them; `cargo test -p proofline-tests` alone does not.
pub fn workspace_binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current test binary");
    // target/<profile>/deps/<test> -> target/<profile>/<name>
    let path = exe.parent().and_then(Path::parent).map(|dir| dir.join(name)).expect("target directory");
    assert!(
        path.is_file(),
        "{} is missing: run `cargo build -p proofline-leader -p proofline-worker` first \
         (`cargo test --workspace` builds it)",
        path.display()
    );
    path
}
