//! The health server in front of a real worker on a real RabbitMQ: `/livez` follows
//! the worker actor, `/readyz` the readiness flag, `/metrics` the worker's series.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use proofline_runtime::store::FsStore;
use proofline_runtime::transport::{AmqpConfig, AmqpTransport, Transport};
use proofline_runtime::worker::{Worker, WorkerArgs, WorkerConfig};
use proofline_tests::rabbit::RabbitBroker;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{Limits, Probes, serve, serve_metrics, worker_check};

/// `GET path` over a fresh connection: status code and body.
async fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    let mut conn = tokio::net::TcpStream::connect(addr).await.expect("connect to the health server");
    let request = format!("GET {path} HTTP/1.1\r\nhost: test\r\nconnection: close\r\n\r\n");
    conn.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    tokio::time::timeout(Duration::from_secs(5), conn.read_to_string(&mut response))
        .await
        .expect("a response within 5 s")
        .unwrap();
    let code = response.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body = response.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default();
    (code, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn livez_turns_503_once_the_worker_actor_dies() {
    let broker = tokio::task::block_in_place(RabbitBroker::start_new);
    let store_dir = tempfile::tempdir().unwrap();
    let amqp = AmqpTransport::connect(AmqpConfig::new(broker.amqp_uri())).await.unwrap();
    let transport: Arc<dyn Transport> = Arc::new(amqp.clone());
    let store = Arc::new(FsStore::open(store_dir.path().to_str().unwrap()).unwrap());
    let slot = Arc::new(OnceLock::new());
    let ready = Arc::new(AtomicBool::new(false));
    let probes = Probes { live: worker_check(amqp.clone(), slot.clone()), ready: ready.clone() };
    let addr = serve("127.0.0.1:0".parse().unwrap(), probes, Limits::default()).await.unwrap();
    // Before the worker started: live, not ready.
    assert_eq!(get(addr, "/livez").await.0, 200);
    assert_eq!(get(addr, "/readyz").await.0, 503);

    let config = WorkerConfig::new("health-test", 1);
    let args = WorkerArgs { config, transport, store, plugins: proofline_plugins::builtin() };
    let worker = Worker::start(args).await.unwrap();
    let _ = slot.set(worker.liveness());
    ready.store(true, Ordering::Relaxed);
    assert_eq!(get(addr, "/livez").await, (200, "ok\n".to_owned()));
    assert_eq!(get(addr, "/readyz").await.0, 200);
    assert_eq!(get(addr, "/nope").await.0, 404);
    // `/metrics` on the health address and on a metrics-only address.
    proofline_runtime::metrics::install().unwrap();
    let metrics_addr = serve_metrics("127.0.0.1:0".parse().unwrap(), Limits::default()).await.unwrap();
    assert_eq!(get(metrics_addr, "/livez").await.0, 404, "the metrics address serves only /metrics");
    let until = Instant::now() + Duration::from_secs(5);
    for at in [addr, metrics_addr] {
        loop {
            // The actor exports its held tasks on its next tick.
            let (code, body) = get(at, "/metrics").await;
            assert_eq!(code, 200, "{body}");
            if body.contains("proofline_worker_tasks_held 0") {
                break;
            }
            assert!(Instant::now() < until, "no proofline_worker_tasks_held on {at}:\n{body}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    worker.actor.kill();
    let until = Instant::now() + Duration::from_secs(5);
    let (code, body) = loop {
        let (code, body) = get(addr, "/livez").await;
        if code != 200 || Instant::now() > until {
            break (code, body);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(code, 503, "{body}");
    assert!(body.contains("worker actor stopped"), "{body}");
    assert!(!worker.is_alive());
    let (code, body) = get(addr, "/readyz").await;
    assert_eq!(code, 503, "ready flag still set, but not live: {body}");
}
