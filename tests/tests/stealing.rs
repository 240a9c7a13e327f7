//! Stealing across workers, end to end: a worker that joins while another holds every
//! task gets work handed back to it through the leader (hunger report, directed
//! give-back), in memory and over a real RabbitMQ; and an idle pool stays quiet.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use proofline_runtime::leader::{Leader, LeaderConfig};
use proofline_runtime::plugin::{PlanOptions, PluginRegistry, ProofSystem, Verdict};
use proofline_runtime::store::{ArtifactStore, MemStore};
use proofline_runtime::transport::{AmqpConfig, AmqpTransport, MemBroker, Transport};
use proofline_runtime::worker::{Worker, WorkerArgs, WorkerConfig, WorkerStats};
use proofline_sim::SimPlugin;
use proofline_tests::rabbit::RabbitBroker;
use serde_json::json;

async fn worker(
    name: &str,
    transport: Arc<dyn Transport>,
    store: Arc<dyn ArtifactStore>,
    sim: &SimPlugin,
) -> Worker {
    let mut plugins = PluginRegistry::new();
    plugins.register(Arc::new(sim.clone()));
    let mut config = WorkerConfig::new(name, 1);
    config.prefetch = 16;
    Worker::start(WorkerArgs { config, transport, store, plugins }).await.expect("worker starts")
}

fn executed(stats: &WorkerStats) -> u64 {
    stats.lanes.iter().map(|l| l.executed).sum()
}

/// Worker `a` takes all twelve 150 ms segments; `b` joins with nothing and must be fed
/// by give-backs from `a`, directed by the leader.
async fn a_late_worker_is_fed_by_the_holder(transports: [Arc<dyn Transport>; 3]) {
    let [to_leader, to_a, to_b] = transports;
    let sim = SimPlugin::new();
    let store: Arc<dyn ArtifactStore> = Arc::new(MemStore::default());
    let a = worker("a", to_a, store.clone(), &sim).await;
    let leader = Leader::start(to_leader, store.clone(), LeaderConfig::default()).await.unwrap();
    let workload = json!({"tasks": 12, "cost": {"fixed": {"micros": 150_000}}, "work": "sleep"});
    let plan = sim.plan(workload.to_string().as_bytes(), &PlanOptions::default()).unwrap();
    let job = leader.submit(Arc::new(sim.clone()), plan).await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while a.stats().await.queued < 8 {
        assert!(tokio::time::Instant::now() < deadline, "a never held the tasks: {:?}", a.stats().await);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let b = worker("b", to_b, store, &sim).await;
    let out = job.wait().await.unwrap();
    let (a, b) = (a.stats().await, b.stats().await);
    assert!(a.given_back >= 1, "a handed nothing back: {a:?}");
    assert!(b.hunger_reports >= 1 && executed(&b) >= 1, "b was never fed: {b:?}");
    assert_eq!(executed(&a) + executed(&b), 12 + 11, "a: {a:?}, b: {b:?}");
    assert_eq!(sim.counters().segments_completed.load(Ordering::Relaxed), 12);
    assert_eq!((out.stats.segments, out.stats.duplicates), (12, 0));
    assert!(matches!(sim.verify(&out.proof).unwrap(), Verdict::Valid { .. }));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_memory_a_late_worker_is_fed_by_the_holder() {
    let broker: Arc<dyn Transport> = Arc::new(MemBroker::default());
    a_late_worker_is_fed_by_the_holder([broker.clone(), broker.clone(), broker]).await;
}

async fn connect(broker: &RabbitBroker) -> Arc<dyn Transport> {
    Arc::new(AmqpTransport::connect(AmqpConfig::new(broker.amqp_uri())).await.expect("connect"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_rabbitmq_a_late_worker_is_fed_by_the_holder() {
    let broker = tokio::task::block_in_place(RabbitBroker::start_new);
    let transports = [connect(&broker).await, connect(&broker).await, connect(&broker).await];
    a_late_worker_is_fed_by_the_holder(transports).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_worker_reports_hunger_less_and_less_often() {
    let broker = MemBroker::default();
    let sim = SimPlugin::new();
    let mut reports = broker.subscribe_hunger().await.unwrap();
    let w = worker("idle", Arc::new(broker.clone()), Arc::new(MemStore::default()), &sim).await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    let mut seen = 0u64;
    while let Ok(report) = reports.try_recv() {
        assert!(
            matches!(&report, proofline_runtime::task::Control::Hungry { worker, idle_lanes: 1, lanes: 1 } if worker == "idle")
        );
        seen += 1;
    }
    // 50 ms, then 50, 100, 200, 400, 800, 1600 ms later: 7 in 4 s (every 250 ms before: 16).
    assert!((5..=8).contains(&seen), "{seen} hunger reports in 4 s");
    assert_eq!(w.stats().await.hunger_reports, seen);
}
