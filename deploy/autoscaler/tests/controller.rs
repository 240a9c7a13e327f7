//! The controller's round against a real HTTP leader endpoint (a tiny server serving a
//! fixed exposition) and the local backend: `--dry-run` decides but starts nothing; a
//! real round acts (here: fails to start a missing binary, and counts it); a leader
//! that cannot be read is counted and leaves pools as they are.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use proofline_autoscaler::backend::local::{LocalBackend, LocalConfig};
use proofline_autoscaler::controller::Controller;
use proofline_autoscaler::metrics::Meters;
use proofline_autoscaler::policy::{Policy, PoolSpec, Reason, Tuning};
use proofline_autoscaler::scrape::Target;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Serve `body` as `/metrics` to every connection; returns its URL.
async fn leader_serving(body: &'static str) -> Target {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut buf = [0u8; 2048];
            let _ = s.read(&mut buf).await;
            let head = format!("HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n", body.len());
            let _ = s.write_all(format!("{head}{body}").as_bytes()).await;
        }
    });
    Target::parse(&format!("http://{addr}/metrics")).unwrap()
}

fn controller(leader: Target, dry_run: bool) -> (Controller<LocalBackend>, Arc<Mutex<Meters>>) {
    let pool = PoolSpec { name: "local".into(), target: "local".into(), rate: 1.0, min: 0, max: 4 };
    let policy = Policy::new(vec![pool], Tuning::default());
    let backend = LocalBackend::new(LocalConfig {
        worker_bin: "/nonexistent/proofline-worker".into(),
        args: Vec::new(),
    });
    let meters = Arc::new(Mutex::new(Meters::default()));
    (Controller::new(policy, backend, vec![leader], dry_run, meters.clone()), meters)
}

const BUSY_LEADER: &str =
    "proofline_outstanding_cost{state=\"ready\"} 300\nproofline_outstanding_cost{state=\"dispatched\"} 60\n";

#[tokio::test]
async fn dry_run_decides_but_starts_nothing() {
    let (mut c, meters) = controller(leader_serving(BUSY_LEADER).await, true);
    let round = c.round().await;
    // 360 units to clear in 120 s at 1/s per worker: 3 workers wanted.
    assert_eq!(
        (round[0].decision.from, round[0].decision.to, round[0].decision.reason),
        (0, 3, Reason::ScaleUp)
    );
    assert_eq!(c.backend().started(), 0, "a dry run starts no worker");
    let text = meters.lock().unwrap().render();
    assert!(text.contains(r#"proofline_autoscaler_replicas{pool="local",kind="desired"} 3"#), "{text}");
    assert!(text.contains(r#"proofline_autoscaler_backend_errors_total{pool="local"} 0"#), "{text}");
}

#[tokio::test]
async fn a_real_round_acts_and_counts_what_failed() {
    let (mut c, meters) = controller(leader_serving(BUSY_LEADER).await, false);
    c.round().await;
    assert_eq!(c.backend().started(), 1, "it tried to start a worker");
    let text = meters.lock().unwrap().render();
    assert!(text.contains(r#"proofline_autoscaler_backend_errors_total{pool="local"} 1"#), "{text}");
}

#[tokio::test]
async fn a_leader_that_cannot_be_read_is_counted_and_starts_nothing() {
    let closed = Target::parse("http://127.0.0.1:1/metrics").unwrap();
    let (mut c, meters) = controller(closed, false);
    let round = tokio::time::timeout(Duration::from_secs(10), c.round()).await.unwrap();
    assert_eq!(round[0].applied, 0);
    assert_eq!(c.backend().started(), 0);
    let text = meters.lock().unwrap().render();
    assert!(text.contains(r#"proofline_autoscaler_scrape_errors_total{target="leader"} 1"#), "{text}");
}
