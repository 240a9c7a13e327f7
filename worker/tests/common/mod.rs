//! Shared pieces of the cluster tests: worker processes and an in-process leader.
#![allow(dead_code)] // each test binary uses its own subset of these helpers

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use proofline_runtime::leader::{Leader, LeaderConfig};
use proofline_runtime::store::FsStore;
use proofline_runtime::transport::{AmqpConfig, AmqpTransport, Transport};
use proofline_tests::rabbit::RabbitBroker;

/// A `proofline-worker` process; killed on drop.
pub struct WorkerProcess {
    pub child: Child,
    pub log: Arc<Mutex<String>>,
}

impl WorkerProcess {
    pub fn spawn(name: &str, amqp_uri: &str, store_dir: &Path, extra: &[&str]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_proofline-worker"))
            .args(["--amqp-uri", amqp_uri, "--name", name, "--health-addr", "127.0.0.1:0"])
            .arg("--store")
            .arg(format!("fs:{}", store_dir.display()))
            .args(extra)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn proofline-worker");
        let log = Arc::new(Mutex::new(String::new()));
        let sink = log.clone();
        let stderr = child.stderr.take().expect("piped");
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let mut log = sink.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
        });
        let worker = Self { child, log };
        worker.wait_for_log("consuming tasks from", Duration::from_secs(30));
        worker
    }

    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    pub fn wait_for_log(&self, needle: &str, timeout: Duration) {
        let until = Instant::now() + timeout;
        while !self.log().contains(needle) {
            assert!(Instant::now() < until, "worker never logged {needle:?}; log:\n{}", self.log());
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([&format!("-{signal}"), &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }
}

impl Drop for WorkerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A leader in this process, talking to `amqp_uri`, storing under `store_dir`.
pub async fn leader(amqp_uri: &str, store_dir: &Path, config: LeaderConfig) -> Leader {
    let transport: Arc<dyn Transport> =
        Arc::new(AmqpTransport::connect(AmqpConfig::new(amqp_uri)).await.unwrap());
    let store = Arc::new(FsStore::open(store_dir.to_str().unwrap()).unwrap());
    Leader::start(transport, store, config).await.unwrap()
}

/// Wait until `queue` holds at least `depth` ready messages (via rabbitmqctl).
pub fn wait_for_queue_depth(broker: &RabbitBroker, queue: &str, depth: u64, timeout: Duration) {
    let until = Instant::now() + timeout;
    loop {
        let out = broker.rabbitmqctl(&["list_queues", "-q", "name", "messages"]);
        let listing = String::from_utf8_lossy(&out.stdout).into_owned();
        let found = listing
            .lines()
            .filter_map(|l| l.split_once(char::is_whitespace))
            .find(|(name, _)| *name == queue)
            .and_then(|(_, n)| n.trim().parse::<u64>().ok())
            .unwrap_or(0);
        if found >= depth {
            return;
        }
        assert!(Instant::now() < until, "{queue} never reached {depth} messages:\n{listing}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Publish raw bytes (not an envelope) straight to a queue, as a buggy client would.
pub async fn publish_raw(amqp_uri: &str, queue: &str, bytes: &[u8]) {
    use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
    let conn = lapin::Connection::connect(amqp_uri, lapin::ConnectionProperties::default()).await.unwrap();
    let channel = conn.create_channel().await.unwrap();
    channel.confirm_select(ConfirmSelectOptions::default()).await.unwrap();
    channel
        .basic_publish("".into(), queue.into(), BasicPublishOptions::default(), bytes, Default::default())
        .await
        .unwrap()
        .await
        .unwrap();
    let _ = conn.close(200, "bye".into()).await;
}

pub fn example_block() -> Vec<u8> {
    std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/example-block.json")).unwrap()
}
