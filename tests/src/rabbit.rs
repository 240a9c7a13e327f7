//! A private RabbitMQ broker for one test: its own temp dir, free loopback ports, its
//! own node name and its own `epmd` (on a private port, so killing it never disturbs
//! another broker), started from the Debian package's `/usr/lib/rabbitmq/bin`.
//!
//! ```no_run
//! let mut broker = proofline_tests::rabbit::RabbitBroker::start_new();
//! let uri = broker.amqp_uri();
//! broker.stop(); // graceful; data kept
//! broker.start(); // same data dir, same ports
//! drop(broker); // kills the node (by the process group it was started in)
//! ```
//!
//! [`RabbitBroker::start_with_management`] also enables the management plugin on a
//! free loopback port, for benchmarks that read the broker's own counters
//! ([`management_api`](RabbitBroker::management_api)); [`pid`](RabbitBroker::pid) is
//! the Erlang VM's process id, for its CPU time.
//!
//! The calls block for seconds (a broker boots in ~5-10 s): from async tests on a
//! multi-thread runtime wrap them in `tokio::task::block_in_place`.
//!
//! If RabbitMQ is not installed this panics with the install command
//! (`scripts/services/rabbitmq.sh`); with `CI=true` the message says that a missing
//! service is a CI failure. Tests never skip silently.

use std::collections::HashSet;
use std::fs;
use std::io::{Read, Seek, SeekFrom, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Where the Debian package puts the scripts that do not switch users.
pub const RABBITMQ_BIN: &str = "/usr/lib/rabbitmq/bin";

/// The CLI tools' own distribution ports (`rabbitmq-env`: 35672..=35682): never
/// hand those to a broker, or a concurrent `rabbitmqctl` steals its AMQP port.
const CLI_DIST_PORTS: std::ops::RangeInclusive<u16> = 35672..=35682;

const BOOT_TIMEOUT: Duration = Duration::from_secs(90);
const STOP_TIMEOUT: Duration = Duration::from_secs(60);

/// Ports handed out by this process, so that two brokers never share one.
static USED_PORTS: Mutex<Option<HashSet<u16>>> = Mutex::new(None);
static NODE_SEQ: AtomicU64 = AtomicU64::new(0);

/// A running (or stopped) private broker. Dropping it kills the node.
pub struct RabbitBroker {
    dir: tempfile::TempDir,
    node: String,
    port: u16,
    dist_port: u16,
    epmd_port: u16,
    /// The management plugin's HTTP port, when enabled.
    management_port: Option<u16>,
    child: Option<Child>,
    /// Kills the node if this test process dies without running `Drop`.
    watchdog: Option<Child>,
}

/// Run by `sh -c` beside each broker: wait while the test process ($1) lives; if
/// it dies without running `Drop` (killed, timed out), kill the node's process group
/// (its id is in `$2/server.pgid` while a node runs), its epmd (port $3), and remove
/// the data dir $2. (dash's `kill` takes no `--`.)
const WATCHDOG: &str = r#"
while kill -0 "$1" 2>/dev/null; do sleep 1; done
pgid=$(cat "$2/server.pgid" 2>/dev/null)
[ -n "$pgid" ] && kill -9 "-$pgid" 2>/dev/null
for _ in 1 2 3 4 5 6 7 8 9 10; do
    sleep 0.5
    ERL_EPMD_ADDRESS=127.0.0.1 ERL_EPMD_PORT="$3" epmd -kill 2>&1 | grep -q living || break
done
rm -rf "$2"
"#;

impl RabbitBroker {
    /// Start a fresh broker and wait until it is ready. Panics with a clear
    /// message if RabbitMQ is not installed or does not boot.
    pub fn start_new() -> Self {
        Self::start_with(None)
    }

    /// [`start_new`](Self::start_new) with the management plugin enabled on a free
    /// loopback port (offline; HTTP API with the `guest` user), collecting statistics
    /// every `stats_interval_ms` (RabbitMQ's default is 5000) into 1 s samples (the
    /// default 5 s samples make `/api/overview` counters lag by up to 5 s).
    pub fn start_with_management(stats_interval_ms: u64) -> Self {
        Self::start_with(Some(stats_interval_ms))
    }

    fn start_with(management_stats_ms: Option<u64>) -> Self {
        ensure_installed();
        let mut errors = Vec::new();
        for _ in 0..3 {
            let [port, dist_port, epmd_port] = free_ports::<3>();
            let dir = tempfile::Builder::new()
                .prefix("proofline-rabbit-")
                .tempdir()
                .expect("temp dir for RabbitMQ");
            let node = format!(
                "proofline-{}-{}@localhost",
                std::process::id(),
                NODE_SEQ.fetch_add(1, Ordering::Relaxed)
            );
            let (conf, plugins, management_port) = match management_stats_ms {
                None => ("# private test broker\n".to_owned(), "[].\n", None),
                Some(ms) => {
                    let [http] = free_ports::<1>();
                    let conf = format!(
                        "# private test broker\nmanagement.tcp.ip = 127.0.0.1\nmanagement.tcp.port = {http}\n\
                         collect_statistics_interval = {ms}\n\
                         management.sample_retention_policies.global.minute = 1\n\
                         management.sample_retention_policies.basic.minute = 1\n\
                         management.sample_retention_policies.detailed.10 = 1\n"
                    );
                    (conf, "[rabbitmq_management].\n", Some(http))
                }
            };
            fs::write(dir.path().join("rabbitmq.conf"), conf).expect("write rabbitmq.conf");
            fs::write(dir.path().join("enabled_plugins"), plugins).expect("write plugins");
            let mut broker =
                Self { dir, node, port, dist_port, epmd_port, management_port, child: None, watchdog: None };
            broker.start_watchdog();
            match broker.boot() {
                Ok(()) => return broker,
                // A port taken between picking and binding: try others.
                Err(e) => errors.push(e),
            }
        }
        panic!("RabbitMQ did not start (3 attempts):\n{}", errors.join("\n---\n"));
    }

    /// `amqp://guest:guest@127.0.0.1:PORT/%2f` (guest may log in from loopback).
    pub fn amqp_uri(&self) -> String {
        format!("amqp://guest:guest@127.0.0.1:{}/%2f", self.port)
    }

    /// The AMQP port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The Erlang node name (`proofline-PID-N@localhost`).
    pub fn node(&self) -> &str {
        &self.node
    }

    /// The broker's data directory (kept across [`stop`](Self::stop)/[`start`](Self::start)).
    pub fn data_dir(&self) -> &Path {
        self.dir.path()
    }

    /// The management plugin's HTTP port ([`start_with_management`](Self::start_with_management)).
    pub fn management_port(&self) -> Option<u16> {
        self.management_port
    }

    /// `METHOD path` on the management HTTP API (e.g. `GET /api/overview`) as `guest`:
    /// the body of a 2xx answer, else an error naming the status.
    pub fn management_api(&self, method: &str, path: &str) -> Result<String, String> {
        let port = self.management_port.ok_or("the management plugin is not enabled")?;
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let mut conn = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
            .map_err(|e| format!("management API on {addr}: {e}"))?;
        conn.set_read_timeout(Some(Duration::from_secs(30))).map_err(|e| e.to_string())?;
        // HTTP/1.0: the body is never chunked, the server closes after it.
        let request = format!(
            "{method} {path} HTTP/1.0\r\nHost: {addr}\r\nAuthorization: Basic Z3Vlc3Q6Z3Vlc3Q=\r\n\
             Content-Length: 0\r\n\r\n"
        );
        conn.write_all(request.as_bytes()).map_err(|e| format!("{method} {path}: {e}"))?;
        let mut response = Vec::new();
        conn.read_to_end(&mut response).map_err(|e| format!("{method} {path}: {e}"))?;
        let response = String::from_utf8_lossy(&response);
        let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
        let status: u16 = head.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
        if !(200..300).contains(&status) {
            return Err(format!(
                "{method} {path}: HTTP {status}: {}",
                body.chars().take(300).collect::<String>()
            ));
        }
        Ok(body.to_owned())
    }

    /// Process id of the running node's Erlang VM (`beam.smp`), from its pid file.
    pub fn pid(&self) -> Option<u32> {
        let file = self.dir.path().join("mnesia").join(format!("{}.pid", self.node));
        fs::read_to_string(file).ok()?.trim().parse().ok()
    }

    /// Whether the node process is running.
    pub fn is_running(&mut self) -> bool {
        self.child.as_mut().is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// Stop the node gracefully (messages are flushed to disk); data stays.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        // The server script traps TERM, stops the node and waits for it.
        signal(&child.id().to_string(), "TERM");
        let deadline = Instant::now() + STOP_TIMEOUT;
        while Instant::now() < deadline {
            if matches!(child.try_wait(), Ok(Some(_))) {
                let _ = fs::remove_file(self.pgid_file());
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        eprintln!("RabbitMQ {} did not stop in {STOP_TIMEOUT:?}: killing it", self.node);
        kill_group(&mut child);
        let _ = fs::remove_file(self.pgid_file());
    }

    /// Start the node again after [`stop`](Self::stop): same data dir, node name and
    /// ports, so clients reconnect to the same URI. Panics if it does not boot.
    pub fn start(&mut self) {
        assert!(self.child.is_none(), "broker {} already running", self.node);
        if let Err(e) = self.boot() {
            panic!("RabbitMQ did not restart: {e}");
        }
    }

    /// Run `rabbitmqctl ARGS` against this node.
    pub fn rabbitmqctl(&self, args: &[&str]) -> Output {
        self.cli("rabbitmqctl", args)
    }

    fn cli(&self, tool: &str, args: &[&str]) -> Output {
        let mut cmd = Command::new(Path::new(RABBITMQ_BIN).join(tool));
        self.base_env(&mut cmd);
        cmd.arg("-n").arg(&self.node).args(args);
        cmd.stdin(Stdio::null()).output().unwrap_or_else(|e| panic!("cannot run {tool}: {e}"))
    }

    /// What both the server and the CLI need: the cookie (HOME), the node, the epmd.
    fn base_env(&self, cmd: &mut Command) {
        cmd.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.dir.path())
            .env("LANG", "C.UTF-8")
            .env("LC_ALL", "C.UTF-8")
            .env("RABBITMQ_NODENAME", &self.node)
            .env("ERL_EPMD_ADDRESS", "127.0.0.1")
            .env("ERL_EPMD_PORT", self.epmd_port.to_string())
            .current_dir(self.dir.path());
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("server.out")
    }

    /// Start the server and wait until it accepts AMQP and `await_startup` passes.
    fn boot(&mut self) -> Result<(), String> {
        let dir = self.dir.path();
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .map_err(|e| format!("server log: {e}"))?;
        let log_offset = log.metadata().map(|m| m.len()).unwrap_or(0);
        let mut cmd = Command::new(Path::new(RABBITMQ_BIN).join("rabbitmq-server"));
        self.base_env(&mut cmd);
        cmd.env("RABBITMQ_NODE_IP_ADDRESS", "127.0.0.1")
            .env("RABBITMQ_NODE_PORT", self.port.to_string())
            .env("RABBITMQ_DIST_PORT", self.dist_port.to_string())
            .env("RABBITMQ_MNESIA_BASE", dir.join("mnesia"))
            .env("RABBITMQ_LOG_BASE", dir.join("log"))
            .env("RABBITMQ_ENABLED_PLUGINS_FILE", dir.join("enabled_plugins"))
            .env("RABBITMQ_CONFIG_FILE", dir.join("rabbitmq"))
            .env("RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS", "-kernel inet_dist_use_interface {127,0,0,1}")
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(|e| e.to_string())?)
            .stderr(log)
            // Its own process group: Drop kills the script and the node together.
            .process_group(0);
        let child = cmd.spawn().map_err(|e| format!("cannot spawn rabbitmq-server: {e}"))?;
        let _ = fs::write(self.pgid_file(), child.id().to_string());
        self.child = Some(child);
        let started = Instant::now();
        let addr = SocketAddr::from(([127, 0, 0, 1], self.port));
        loop {
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                self.child = None;
                let _ = fs::remove_file(self.pgid_file());
                return Err(format!(
                    "rabbitmq-server exited ({status}) while booting on port {}:\n{}",
                    self.port,
                    self.log_tail(log_offset)
                ));
            }
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                break;
            }
            if started.elapsed() > BOOT_TIMEOUT {
                let tail = self.log_tail(log_offset);
                self.kill();
                return Err(format!("no AMQP listener after {BOOT_TIMEOUT:?}:\n{tail}"));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let out = self.cli("rabbitmqctl", &["-q", "await_startup", "--timeout", "60"]);
        if !out.status.success() {
            let tail = self.log_tail(log_offset);
            self.kill();
            return Err(format!(
                "await_startup failed: {}{}\n{tail}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        Ok(())
    }

    /// The process group of the running server, for the watchdog.
    fn pgid_file(&self) -> PathBuf {
        self.dir.path().join("server.pgid")
    }

    fn start_watchdog(&mut self) {
        let watchdog = Command::new("sh")
            .arg("-c")
            .arg(WATCHDOG)
            .arg("rabbit-watchdog")
            .arg(std::process::id().to_string())
            .arg(self.dir.path())
            .arg(self.epmd_port.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            // Not in the test's process group: it must outlive a Ctrl-C of the test.
            .process_group(0)
            .spawn();
        match watchdog {
            Ok(child) => self.watchdog = Some(child),
            Err(e) => eprintln!("no watchdog for RabbitMQ {}: {e}", self.node),
        }
    }

    fn stop_watchdog(&mut self) {
        if let Some(mut watchdog) = self.watchdog.take() {
            let _ = watchdog.kill();
            let _ = watchdog.wait();
        }
    }

    fn log_tail(&self, from: u64) -> String {
        let mut text = String::new();
        if let Ok(mut f) = fs::File::open(self.log_path()) {
            let len = f.metadata().map(|m| m.len()).unwrap_or(0);
            let start = from.max(len.saturating_sub(4000));
            let _ = f.seek(SeekFrom::Start(start));
            let _ = f.read_to_string(&mut text);
        }
        text
    }

    /// Kill the node now (no flush): the process group we started it in.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            kill_group(&mut child);
            let _ = fs::remove_file(self.pgid_file());
        }
    }

    /// Stop this broker's private epmd (never another's: it listens on our port).
    fn kill_epmd(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let out = Command::new("epmd")
                .arg("-kill")
                .env("ERL_EPMD_PORT", self.epmd_port.to_string())
                .env("ERL_EPMD_ADDRESS", "127.0.0.1")
                .stdin(Stdio::null())
                .output();
            let Ok(out) = out else { return };
            let said =
                format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
                    .to_lowercase();
            // "Killing not allowed - living nodes in database": the killed node is
            // still registered for a moment, try again. "Killed", or "Cannot connect"
            // (nothing listens any more): done.
            if !said.contains("living nodes") || Instant::now() > deadline {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for RabbitBroker {
    fn drop(&mut self) {
        self.stop_watchdog();
        self.kill();
        self.kill_epmd();
    }
}

fn signal(target: &str, sig: &str) {
    let _ = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg("--")
        .arg(target)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// SIGKILL the process group led by `child` (the server script and its node), then
/// reap the script.
fn kill_group(child: &mut Child) {
    signal(&format!("-{}", child.id()), "KILL");
    let _ = child.wait();
}

/// Panic with what to do when RabbitMQ is missing.
fn ensure_installed() {
    let server = Path::new(RABBITMQ_BIN).join("rabbitmq-server");
    if server.exists() {
        return;
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!(
            "RabbitMQ is required in CI but {} is missing: run scripts/services/rabbitmq.sh \
             before the tests (a missing service is a CI failure, not a skip)",
            server.display()
        );
    }
    panic!(
        "RabbitMQ is not installed ({} missing): install it with \
         `scripts/services/rabbitmq.sh` (as root: apt-get install -y rabbitmq-server)",
        server.display()
    );
}

/// `N` distinct free loopback ports, never reused within this process and
/// outside the CLI tools' distribution range.
fn free_ports<const N: usize>() -> [u16; N] {
    let mut used = USED_PORTS.lock().unwrap_or_else(|e| e.into_inner());
    let used = used.get_or_insert_with(HashSet::new);
    let mut held = Vec::new();
    let mut ports = Vec::new();
    while ports.len() < N {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        let port = listener.local_addr().expect("local addr").port();
        held.push(listener);
        if CLI_DIST_PORTS.contains(&port) || used.contains(&port) {
            continue;
        }
        used.insert(port);
        ports.push(port);
    }
    std::array::from_fn(|i| ports[i])
}
