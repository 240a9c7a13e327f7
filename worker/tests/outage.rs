//! A `proofline-worker` process and a broker that goes away (real RabbitMQ): the
//! worker never stays half-alive, and SIGTERM is honoured whatever the broker does.

mod common;

use std::process::ExitStatus;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{WorkerProcess, leader};
use proofline_runtime::leader::LeaderConfig;
use proofline_runtime::plugin::{PlanOptions, ProofSystem};
use proofline_sim::SimPlugin;
use proofline_tests::rabbit::RabbitBroker as Broker;

/// Wait for the worker to exit within `within`; its status and log.
async fn exit_within(mut worker: WorkerProcess, within: Duration) -> (Option<ExitStatus>, String) {
    let until = Instant::now() + within;
    loop {
        if let Some(status) = worker.child.try_wait().unwrap() {
            // Let the log reader catch the last lines.
            tokio::time::sleep(Duration::from_millis(200)).await;
            return (Some(status), worker.log());
        }
        if Instant::now() > until {
            return (None, worker.log());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_away_longer_than_the_give_up_time_makes_the_worker_exit_1() {
    let mut broker = tokio::task::block_in_place(Broker::start_new);
    let port = broker.port();
    let store = tempfile::tempdir().unwrap();
    let give_up = 3;
    let worker = WorkerProcess::spawn(
        "w",
        &broker.amqp_uri(),
        store.path(),
        &["--lanes", "1", "--broker-give-up-secs", &give_up.to_string()],
    );
    tokio::task::block_in_place(|| broker.stop());
    let stopped = Instant::now();
    // give-up + margin: the worker notices the drop at once, then reconnects for 3 s.
    let (status, log) = exit_within(worker, Duration::from_secs(give_up + 20)).await;
    let status = status.unwrap_or_else(|| {
        panic!("worker still running {:?} after the broker stopped:\n{log}", stopped.elapsed())
    });
    assert_eq!(status.code(), Some(1), "{log}");
    assert!(log.contains("unreachable"), "says why:\n{log}");
    assert!(log.contains(&format!("127.0.0.1:{port}")), "names the broker:\n{log}");
    assert!(log.contains("--broker-give-up-secs 3"), "names the setting:\n{log}");
    assert!(!log.contains("guest:guest"), "no credentials:\n{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_outage_is_ridden_out() {
    let mut broker = tokio::task::block_in_place(Broker::start_new);
    let store = tempfile::tempdir().unwrap();
    let mut worker = WorkerProcess::spawn(
        "w",
        &broker.amqp_uri(),
        store.path(),
        &["--lanes", "1", "--broker-give-up-secs", "120"],
    );
    tokio::task::block_in_place(|| {
        broker.stop();
        broker.start();
    });
    worker.wait_for_log("AMQP reconnected", Duration::from_secs(30));
    assert!(worker.child.try_wait().unwrap().is_none(), "still running:\n{}", worker.log());
    // It still works: a job completes on it.
    let leader = leader(&broker.amqp_uri(), store.path(), LeaderConfig::default()).await;
    let sim = SimPlugin::new();
    let plan =
        sim.plan(br#"{"tasks": 4, "cost": {"fixed": {"micros": 100}}}"#, &PlanOptions::default()).unwrap();
    tokio::time::timeout(Duration::from_secs(60), leader.prove(Arc::new(sim), plan)).await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_during_a_broker_outage_exits_within_the_grace_period() {
    let mut broker = tokio::task::block_in_place(Broker::start_new);
    let store = tempfile::tempdir().unwrap();
    let grace = 2;
    let worker = WorkerProcess::spawn(
        "w",
        &broker.amqp_uri(),
        store.path(),
        // The broker stays away for less than the give-up time: only SIGTERM ends it.
        &["--lanes", "1", "--shutdown-grace-secs", &grace.to_string(), "--broker-give-up-secs", "600"],
    );
    let leader = leader(&broker.amqp_uri(), store.path(), LeaderConfig::default()).await;
    let sim = SimPlugin::new();
    // One task that sleeps for an hour: it is running when the broker goes.
    let plan = sim
        .plan(
            br#"{"tasks": 1, "cost": {"fixed": {"micros": 3600000000}}, "work": "sleep"}"#,
            &PlanOptions::default(),
        )
        .unwrap();
    let _job = leader.submit(Arc::new(sim), plan).await.unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    tokio::task::block_in_place(|| broker.stop());
    // Heartbeats and results now block in publish retries.
    tokio::time::sleep(Duration::from_secs(3)).await;
    worker.signal("TERM");
    let signalled = Instant::now();
    let (status, log) = exit_within(worker, Duration::from_secs(grace + 10)).await;
    let status = status.unwrap_or_else(|| {
        panic!("worker still running {:?} after SIGTERM (grace {grace} s):\n{log}", signalled.elapsed())
    });
    assert_eq!(status.code(), Some(0), "{log}");
    assert!(log.contains("shutting down"), "{log}");
    assert!(log.contains("worker stopped"), "{log}");
}
