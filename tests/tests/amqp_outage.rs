//! A broker that stays away past the give-up time, against real private RabbitMQ
//! brokers: the AMQP transport is lost as a whole (never half-alive), a leader fails
//! its jobs naming the broker; and the dead-letter queue's limits, fresh or inherited.

use std::sync::Arc;
use std::time::{Duration, Instant};

use proofline_runtime::leader::{Leader, LeaderConfig};
use proofline_runtime::plugin::{PlanOptions, ProofSystem};
use proofline_runtime::store::FsStore;
use proofline_runtime::task::Control;
use proofline_runtime::transport::amqp::lapin::{self, ConnectionProperties, options, types::FieldTable};
use proofline_runtime::transport::{AmqpConfig, AmqpTransport, Transport};
use proofline_sim::SimPlugin;
use proofline_tests::rabbit::RabbitBroker;

const GIVE_UP: Duration = Duration::from_secs(2);

fn broker() -> RabbitBroker {
    tokio::task::block_in_place(RabbitBroker::start_new)
}

async fn connect(broker: &RabbitBroker) -> AmqpTransport {
    let config = AmqpConfig { reconnect_give_up: GIVE_UP, ..AmqpConfig::new(broker.amqp_uri()) };
    AmqpTransport::connect(config).await.expect("connect to the test broker")
}

fn hint() -> Control {
    Control::CancelJob { job: "j".into(), run: 1 }
}

use proofline_runtime::error_chain as chain;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_give_up_time_the_transport_is_lost_as_a_whole() {
    let mut broker = broker();
    let port = broker.port();
    let t = connect(&broker).await;
    let mut results = t.open_results("proofline.results.outage").await.unwrap();
    let mut controls = t.subscribe_control("w").await.unwrap();
    let mut tasks = t.consume("w", 4).await.unwrap();
    tokio::task::block_in_place(|| broker.stop());
    // Something keeps using the connection, as a worker's pump does.
    let poll = tokio::spawn(async move {
        loop {
            if tasks.next_batch().await.is_err() {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    });
    let reason = tokio::time::timeout(GIVE_UP + Duration::from_secs(15), t.lost()).await.expect("given up");
    assert!(reason.contains(&format!("127.0.0.1:{port}")), "names the broker: {reason}");
    assert!(!reason.contains("guest"), "{reason}");
    assert_eq!(t.lost_reason().as_deref(), Some(reason.as_str()));
    // Every stream ends; every call fails at once with the same reason.
    let ended = tokio::time::timeout(Duration::from_secs(10), async {
        assert!(results.recv().await.is_none());
        assert!(controls.recv().await.is_none());
    });
    ended.await.expect("result and control streams end");
    let started = Instant::now();
    let err = t.broadcast(hint()).await.unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(1), "fails fast: {:?}", started.elapsed());
    assert!(err.to_string().contains("unreachable"), "{err}");
    // Even once the broker is back: the process is meant to be restarted.
    tokio::task::block_in_place(|| broker.start());
    assert!(t.broadcast(hint()).await.is_err(), "lost for good");
    poll.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_fails_its_job_naming_the_broker_when_it_stays_away() {
    let mut broker = broker();
    let port = broker.port();
    let store_dir = tempfile::tempdir().unwrap();
    let transport: Arc<dyn Transport> = Arc::new(connect(&broker).await);
    let store = Arc::new(FsStore::open(store_dir.path().to_str().unwrap()).unwrap());
    let leader = Leader::start(transport, store, LeaderConfig::default()).await.unwrap();
    let sim = SimPlugin::new();
    let plan =
        sim.plan(br#"{"tasks": 4, "cost": {"fixed": {"micros": 100}}}"#, &PlanOptions::default()).unwrap();
    // No worker: the job waits for results that cannot come once the broker is gone.
    let job = leader.submit(Arc::new(sim) as Arc<dyn ProofSystem>, plan).await.unwrap();
    let job_id = job.job.clone();
    // Let the job publish its tasks first: this test is about a broker that goes away
    // while the job waits, not one that resets the connection mid-publish (that fails
    // the job at once with the publish error: a separate, known gap).
    tokio::time::sleep(Duration::from_secs(1)).await;
    tokio::task::block_in_place(|| broker.stop());
    let err = tokio::time::timeout(GIVE_UP + Duration::from_secs(20), job.wait())
        .await
        .expect("the job fails instead of hanging")
        .unwrap_err();
    let text = chain(&err);
    assert!(text.contains(&format!("127.0.0.1:{port}")), "names the broker: {text}");
    assert!(text.contains("unreachable"), "says why: {text}");
    assert!(store_dir.path().join(&job_id).exists(), "the job's artifacts are kept");
}

/// `rabbitmqctl list_queues name arguments`: the line of `queue`.
fn queue_arguments(broker: &RabbitBroker, queue: &str) -> String {
    let out = broker.rabbitmqctl(&["list_queues", "-q", "name", "arguments"]);
    let listing = String::from_utf8_lossy(&out.stdout).into_owned();
    let line = listing.lines().find(|l| l.split_whitespace().next() == Some(queue));
    line.unwrap_or_else(|| panic!("no {queue} in:\n{listing}")).to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fresh_broker_gets_a_bounded_dead_letter_queue() {
    let broker = broker();
    let _t = connect(&broker).await;
    let args = tokio::task::block_in_place(|| queue_arguments(&broker, "proofline.dead"));
    assert!(args.contains("x-max-length") && args.contains("100000"), "{args}");
    assert!(args.contains("x-message-ttl") && args.contains("604800000"), "{args}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_existing_plain_dead_letter_queue_is_used_as_it_is() {
    let broker = broker();
    // An older Proofline declared it without arguments.
    let conn = lapin::Connection::connect(&broker.amqp_uri(), ConnectionProperties::default()).await.unwrap();
    let channel = conn.create_channel().await.unwrap();
    channel
        .queue_declare(
            "proofline.dead".into(),
            options::QueueDeclareOptions::durable(),
            FieldTable::default(),
        )
        .await
        .unwrap();
    let _ = conn.close(200, "done".into()).await;

    let t = connect(&broker).await;
    let args = tokio::task::block_in_place(|| queue_arguments(&broker, "proofline.dead"));
    assert!(!args.contains("x-max-length"), "left as it was: {args}");
    // Dead-lettering still reaches it.
    let conn = lapin::Connection::connect(&broker.amqp_uri(), ConnectionProperties::default()).await.unwrap();
    let channel = conn.create_channel().await.unwrap();
    channel.confirm_select(Default::default()).await.unwrap();
    channel
        .basic_publish(
            "".into(),
            "proofline.tasks".into(),
            options::BasicPublishOptions::default(),
            b"not an envelope",
            Default::default(),
        )
        .await
        .unwrap()
        .await
        .unwrap();
    let mut stream = t.consume("w", 1).await.unwrap();
    let _ = tokio::time::timeout(Duration::from_secs(2), stream.next_batch()).await;
    let until = Instant::now() + Duration::from_secs(10);
    while t.queue_depth("proofline.dead").await.unwrap() < 1 {
        assert!(Instant::now() < until, "the garbage message never reached proofline.dead");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
