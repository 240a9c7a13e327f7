//! A worker's results over a real RabbitMQ: a busy worker's results share messages,
//! and none waits for company once the worker has nothing else to run.
//!
//! The workers' linger is an hour, so a result held when it must not be makes the job
//! time out (a failure), with no timing threshold to tune.

use std::sync::Arc;
use std::time::Duration;

use proofline_runtime::leader::{Leader, LeaderConfig};
use proofline_runtime::plugin::{PlanOptions, PluginRegistry, ProofSystem, Verdict};
use proofline_runtime::store::{ArtifactStore, MemStore};
use proofline_runtime::transport::{AmqpConfig, AmqpTransport, Transport};
use proofline_runtime::worker::{Worker, WorkerArgs, WorkerConfig};
use proofline_sim::SimPlugin;
use proofline_tests::rabbit::RabbitBroker;
use serde_json::{Value, json};

const LINGER: Duration = Duration::from_secs(3600);
const JOB_TIMEOUT: Duration = Duration::from_secs(60);

struct Cluster {
    broker: RabbitBroker,
    leader: Leader,
    _worker: Worker,
    sim: SimPlugin,
}

async fn cluster() -> Cluster {
    let broker = tokio::task::block_in_place(|| RabbitBroker::start_with_management(200));
    let config = AmqpConfig { result_linger: LINGER, ..AmqpConfig::new(broker.amqp_uri()) };
    let to_worker: Arc<dyn Transport> = Arc::new(AmqpTransport::connect(config).await.expect("connect"));
    let to_leader: Arc<dyn Transport> =
        Arc::new(AmqpTransport::connect(AmqpConfig::new(broker.amqp_uri())).await.expect("connect"));
    let store: Arc<dyn ArtifactStore> = Arc::new(MemStore::default());
    let sim = SimPlugin::new();
    let mut plugins = PluginRegistry::new();
    plugins.register(Arc::new(sim.clone()));
    let mut config = WorkerConfig::new("w", 1);
    config.prefetch = 64;
    let worker = Worker::start(WorkerArgs { config, transport: to_worker, store: store.clone(), plugins })
        .await
        .expect("worker starts");
    let leader = Leader::start(to_leader, store, LeaderConfig::default()).await.expect("leader starts");
    Cluster { broker, leader, _worker: worker, sim }
}

impl Cluster {
    async fn prove(&self, workload: Value) -> proofline_runtime::leader::JobOutput {
        let plan = self.sim.plan(workload.to_string().as_bytes(), &PlanOptions::default()).unwrap();
        let out = tokio::time::timeout(JOB_TIMEOUT, self.leader.prove(Arc::new(self.sim.clone()), plan))
            .await
            .expect("no result waited for company: the job finished")
            .expect("proven");
        assert!(matches!(self.sim.verify(&out.proof).unwrap(), Verdict::Valid { .. }));
        out
    }

    /// Messages published to result queues so far, once the broker's counters settle.
    fn result_messages(&self) -> f64 {
        let read = || {
            let body =
                self.broker.management_api("GET", "/api/queues/%2f?columns=name,message_stats").unwrap();
            let queues: Value = serde_json::from_str(&body).unwrap();
            queues
                .as_array()
                .expect("a list of queues")
                .iter()
                .filter(|q| q["name"].as_str().is_some_and(|n| n.starts_with("proofline.results.")))
                .map(|q| q["message_stats"]["publish"].as_f64().unwrap_or(0.0))
                .sum::<f64>()
        };
        let mut last = read();
        for _ in 0..30 {
            std::thread::sleep(Duration::from_millis(500));
            let now = read();
            if now == last && now > 0.0 {
                return now;
            }
            last = now;
        }
        panic!("the broker's result counters did not settle: {last}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lone_task_is_answered_at_once_however_long_the_linger() {
    let c = cluster().await;
    // Each job's one result goes at once: held for company, it would wait an hour.
    for _ in 0..3 {
        let out = c.prove(json!({"tasks": 1, "cost": {"fixed": {"micros": 0}}})).await;
        assert_eq!((out.stats.segments, out.stats.aggregations), (1, 0));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_workers_results_share_messages_and_every_one_arrives() {
    let c = cluster().await;
    let out = c.prove(json!({"tasks": 200, "cost": {"fixed": {"micros": 1000}}, "work": "sleep"})).await;
    assert_eq!((out.stats.segments, out.stats.aggregations, out.stats.duplicates), (200, 199, 0));
    let messages = tokio::task::block_in_place(|| c.result_messages());
    // One message per result would be 399; sent as they finished, about 180 (16-20
    // held, also with two CPU hogs beside the test). Running-task heartbeats travel in
    // result messages too, a few at most here.
    assert!(messages <= 399.0 / 4.0, "{messages} result messages for 399 results");
}
