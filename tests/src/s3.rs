//! Real S3-compatible servers for tests, each on a free loopback port.
//!
//! * [`S3Server::moto`]: moto's server (in memory), from `.venv-s3`.
//! * [`S3Server::s3s_fs`]: s3s-fs (state on disk, checks request signatures), from
//!   `.tools/bin`; [`S3Server::stop`] + [`S3Server::start`] restart it on the same
//!   port and data directory.
//!
//! Both are installed by `scripts/services/s3.sh`. A missing server is a test
//! failure (with the install hint), never a skip. Servers are killed (by the pid this
//! harness started) when the [`S3Server`] is dropped.
//!
//! ```no_run
//! use proofline_runtime::store::{ArtifactStore, S3Store};
//! use proofline_tests::s3::S3Server;
//! let server = S3Server::moto();
//! server.create_bucket("proofs");
//! let store = S3Store::connect(server.config("proofs", "runs")).unwrap();
//! store.put("job/seg-0", b"proof").unwrap();
//! ```

use std::fs::File;
use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use proofline_runtime::store::s3_sdk::Client;
use proofline_runtime::store::{S3Config, S3Credentials};

/// Access key the servers accept.
pub const ACCESS_KEY: &str = "proofline-test-key";
/// Secret key the servers accept (tests check it never shows up in messages).
pub const SECRET_KEY: &str = "proofline-test-secret-8c1f0e";

const INSTALL_HINT: &str = "run scripts/services/s3.sh (installs moto[server] into .venv-s3 \
                            and s3s-fs into .tools)";

/// Which server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum S3Kind {
    Moto,
    S3sFs,
}

/// A running (or stopped) S3-compatible server.
pub struct S3Server {
    kind: S3Kind,
    port: u16,
    child: Option<Child>,
    /// Logs, and s3s-fs's data under `data/`.
    dir: tempfile::TempDir,
}

/// The repository root (where `.venv-s3` and `.tools` live).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("tests/ has a parent").to_path_buf()
}

/// A port nothing listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .expect("bind an ephemeral loopback port")
        .port()
}

impl S3Server {
    /// moto's server, in memory.
    pub fn moto() -> Self {
        Self::launch(S3Kind::Moto)
    }

    /// s3s-fs, on disk, checking signatures against [`ACCESS_KEY`]/[`SECRET_KEY`].
    pub fn s3s_fs() -> Self {
        Self::launch(S3Kind::S3sFs)
    }

    fn launch(kind: S3Kind) -> Self {
        let dir = tempfile::tempdir().expect("temp dir for the S3 server");
        std::fs::create_dir_all(dir.path().join("data")).expect("data dir");
        let mut server = Self { kind, port: free_port(), child: None, dir };
        // Another test may take the free port between our probe and the server's bind: then
        // the server exits at once (address in use) and we try a fresh port.
        for attempt in 1.. {
            match server.try_start() {
                Ok(()) => break,
                Err(e) if attempt < 5 => {
                    eprintln!("{e}; retrying on another port");
                    server.port = free_port();
                }
                Err(e) => panic!("{e}"),
            }
        }
        server
    }

    fn binary(&self) -> PathBuf {
        let path = match self.kind {
            S3Kind::Moto => repo_root().join(".venv-s3/bin/moto_server"),
            S3Kind::S3sFs => repo_root().join(".tools/bin/s3s-fs"),
        };
        assert!(path.exists(), "{} is missing: {INSTALL_HINT}", path.display());
        path
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The kind of server.
    pub fn kind(&self) -> S3Kind {
        self.kind
    }

    /// Start the server (again) on its port; returns once it accepts connections.
    pub fn start(&mut self) {
        if let Err(e) = self.try_start() {
            panic!("{e}");
        }
    }

    /// [`start`](Self::start), or why the server did not come up.
    fn try_start(&mut self) -> Result<(), String> {
        if self.child.is_some() {
            return Ok(());
        }
        let log_path = self.dir.path().join("server.log");
        let log = File::options().create(true).append(true).open(&log_path).expect("server log");
        let port = self.port.to_string();
        let mut cmd = Command::new(self.binary());
        match self.kind {
            S3Kind::Moto => {
                cmd.args(["-H", "127.0.0.1", "-p", &port]);
            }
            S3Kind::S3sFs => {
                cmd.args(["--host", "127.0.0.1", "--port", &port])
                    .args(["--access-key", ACCESS_KEY, "--secret-key", SECRET_KEY])
                    .arg(self.dir.path().join("data"));
            }
        }
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log handle"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {:?}: {e} ({INSTALL_HINT})", self.kind));
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, self.port));
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            // Listening, and still alive a moment later: the listener is ours, not another
            // process's on a port we lost.
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                std::thread::sleep(Duration::from_millis(100));
                if matches!(child.try_wait(), Ok(None)) {
                    break;
                }
            }
            if let Ok(Some(status)) = child.try_wait() {
                let log = std::fs::read_to_string(&log_path).unwrap_or_default();
                return Err(format!("{:?} exited ({status}) at startup on {addr}:\n{log}", self.kind));
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("{:?} did not listen on {addr} within 30 s", self.kind));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.child = Some(child);
        Ok(())
    }

    /// Kill the server (SIGKILL, like a crash). s3s-fs keeps its data for [`start`](Self::start).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Whether the server process is running.
    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// A store config for `bucket`/`prefix` on this server (path style, static
    /// credentials, short budgets fit for tests are left at their defaults).
    pub fn config(&self, bucket: &str, prefix: &str) -> S3Config {
        let mut config = S3Config::new(bucket, prefix);
        config.endpoint = Some(self.endpoint());
        config.path_style = true;
        config.region = Some("us-east-1".into());
        config.credentials =
            Some(S3Credentials { access_key_id: ACCESS_KEY.into(), secret_access_key: SECRET_KEY.into() });
        config
    }

    /// Run `f` with an SDK client for this server (to create buckets, tamper with
    /// objects), on a fresh runtime. Not for use inside an async test.
    pub fn with_client<T, Fut>(&self, f: impl FnOnce(Client) -> Fut) -> T
    where
        Fut: Future<Output = T>,
    {
        let config = self.config("unused", "");
        block_on(async move { f(config.sdk_client().await).await })
    }

    /// Create `bucket`, retrying for a few seconds while the fresh server warms up.
    pub fn create_bucket(&self, bucket: &str) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match self.with_client(|c| async move { c.create_bucket().bucket(bucket).send().await }) {
                Ok(_) => return,
                // Only a request that never reached the server is retried.
                Err(e @ proofline_runtime::store::s3_sdk::error::SdkError::DispatchFailure(_))
                    if Instant::now() < deadline =>
                {
                    eprintln!("create bucket {bucket} on {:?}: {e:?}; retrying", self.kind);
                    std::thread::sleep(Duration::from_millis(200));
                }
                Err(e) => panic!("create bucket {bucket} on {:?}: {e:?}\n{}", self.kind, self.log()),
            }
        }
    }

    /// The server's log so far (for failure messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Run `fut` to completion on a fresh current-thread runtime (test helpers only;
/// not for use inside an async test).
fn block_on<F: Future>(fut: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("test runtime").block_on(fut)
}
