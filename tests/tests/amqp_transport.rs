//! The AMQP transport against real, private RabbitMQ brokers (one per test, see
//! `proofline_tests::rabbit`): delivery, redelivery, dead-lettering, results,
//! control broadcasts, pause/resume, broker restarts and connection errors.
//!
//! Throughput (not asserted, printed): `cargo test --release -p proofline-tests
//! --test amqp_transport -- --ignored --nocapture throughput`.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use proofline_runtime::envelope::Envelope;
use proofline_runtime::task::{Control, Outcome, Task, TaskKind, TaskResult};
use proofline_runtime::transport::amqp::batching::MAX_TASKS_PER_MESSAGE;
use proofline_runtime::transport::amqp::lapin::{
    self, BasicProperties, ConnectionProperties, options::BasicPublishOptions,
};
use proofline_runtime::transport::{AmqpConfig, AmqpTransport, Delivery, Settle, TaskStream, Transport};
use proofline_tests::rabbit::RabbitBroker;

fn broker() -> RabbitBroker {
    tokio::task::block_in_place(RabbitBroker::start_new)
}

fn task(job: &str, i: u32) -> Task {
    Task {
        job: job.into(),
        run: 1,
        id: format!("seg-{i}"),
        kind: TaskKind::Segment,
        plugin: "sim@1".into(),
        inputs: vec![],
        start: i,
        end: i + 1,
        attempt: 1,
        max_attempts: 3,
        deadline_ms: 60_000,
        cost: 1,
        reply_to: "proofline.results.test".into(),
    }
}

fn result(job: &str, i: u32) -> TaskResult {
    TaskResult {
        job: job.into(),
        task: format!("seg-{i}"),
        attempt: 1,
        start: i,
        end: i + 1,
        outcome: Outcome::Running,
        ran_on: "w/0".into(),
        exec_micros: 7,
        held: 2,
    }
}

/// Make leader `t` know that `job`'s segments take no time (as a worker's result
/// would): it packs them many to a message from then on.
async fn prime(t: &AmqpTransport, job: &str) {
    let queue = t.topology().results(&format!("prime-{job}"));
    let mut results = t.open_results(&queue).await.unwrap();
    let mut ran = result(job, 0);
    (ran.outcome, ran.exec_micros) = (Outcome::Failed { message: "primed".into(), retryable: true }, 0);
    t.reply(&queue, ran.clone()).await.unwrap();
    let got = tokio::time::timeout(Duration::from_secs(10), results.recv()).await.expect("primed").unwrap();
    assert_eq!(got, ran);
}

async fn connect(broker: &RabbitBroker) -> AmqpTransport {
    AmqpTransport::connect(AmqpConfig::new(broker.amqp_uri())).await.expect("connect to the test broker")
}

/// Take deliveries until `n` are held (or panic after `within`).
async fn take(stream: &mut Box<dyn TaskStream>, n: usize, within: Duration) -> Vec<Delivery> {
    let mut held = Vec::new();
    let deadline = Instant::now() + within;
    while held.len() < n {
        let left = deadline.saturating_duration_since(Instant::now());
        let batch = tokio::time::timeout(left, stream.next_batch())
            .await
            .unwrap_or_else(|_| panic!("only {} of {n} deliveries within {within:?}", held.len()))
            .expect("next_batch");
        held.extend(batch);
    }
    held
}

/// No delivery within `wait`.
async fn assert_quiet(stream: &mut Box<dyn TaskStream>, wait: Duration) {
    if let Ok(batch) = tokio::time::timeout(wait, stream.next_batch()).await {
        panic!("unexpected deliveries: {batch:?}");
    }
}

/// Wait until `queue` holds `expected` ready messages.
async fn wait_depth(t: &AmqpTransport, queue: &str, expected: u32) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let depth = t.queue_depth(queue).await.expect("queue depth");
        if depth == expected {
            return;
        }
        assert!(Instant::now() < deadline, "{queue} holds {depth} messages, expected {expected}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Publish raw bytes to `queue` with plain lapin (as a buggy or hostile peer would).
async fn publish_raw(broker: &RabbitBroker, queue: &str, payloads: &[Vec<u8>]) {
    let conn = lapin::Connection::connect(&broker.amqp_uri(), ConnectionProperties::default())
        .await
        .expect("raw connection");
    let channel = conn.create_channel().await.expect("raw channel");
    channel.confirm_select(Default::default()).await.expect("confirms");
    for payload in payloads {
        channel
            .basic_publish(
                "".into(),
                queue.into(),
                BasicPublishOptions::default(),
                payload,
                BasicProperties::default().with_delivery_mode(2),
            )
            .await
            .expect("raw publish")
            .await
            .expect("raw confirm");
    }
    let _ = conn.close(200, "done".into()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publishes_consumes_and_acks_exactly_once() {
    let broker = broker();
    let t = connect(&broker).await;
    assert_eq!(t.describe(), format!("amqp://127.0.0.1:{}/%2f", broker.port()));
    let tasks = t.topology().tasks();
    const N: u32 = 300;
    // Unknown tasks travel one per message.
    t.publish((0..N).map(|i| task("j0", i)).collect()).await.unwrap();
    wait_depth(&t, &tasks, N).await;
    let mut stream = t.consume("w0", 16).await.unwrap();
    let mut acked = 0;
    while acked < N {
        for d in take(&mut stream, 1, Duration::from_secs(10)).await {
            d.settle(Settle::Ack);
            acked += 1;
        }
    }
    drop(stream);
    wait_depth(&t, &tasks, 0).await;
    // Known no-op tasks, and no consumer: packed as tight as the batch limit allows.
    prime(&t, "j1").await;
    t.publish((0..N).map(|i| task("j1", i)).collect()).await.unwrap();
    wait_depth(&t, &tasks, N.div_ceil(MAX_TASKS_PER_MESSAGE as u32)).await;

    let mut stream = t.consume("w1", 16).await.unwrap();
    let mut seen = HashSet::new();
    while seen.len() < N as usize {
        let batch = tokio::time::timeout(Duration::from_secs(10), stream.next_batch())
            .await
            .expect("deliveries keep coming")
            .unwrap();
        assert!(!batch.is_empty() && batch.len() <= 16 * MAX_TASKS_PER_MESSAGE, "batch of {}", batch.len());
        for d in batch {
            assert!(!d.redelivered);
            assert!(seen.insert(d.task.id.clone()), "duplicate {}", d.task.id);
            d.settle(Settle::Ack);
        }
    }
    assert_quiet(&mut stream, Duration::from_millis(300)).await;
    // Had an ack been lost, dropping the consumer would requeue its message.
    drop(stream);
    tokio::time::sleep(Duration::from_millis(300)).await;
    wait_depth(&t, &tasks, 0).await;
    wait_depth(&t, &t.topology().dead(), 0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsettled_deliveries_of_a_dropped_consumer_are_redelivered() {
    let broker = broker();
    let t = connect(&broker).await;
    t.publish((0..5).map(|i| task("j2", i)).collect()).await.unwrap();

    // A stream dropped while its deliveries are still held.
    let mut first = t.consume("w1", 10).await.unwrap();
    let held = take(&mut first, 5, Duration::from_secs(10)).await;
    assert!(held.iter().all(|d| !d.redelivered));
    drop(first);
    let mut second = t.consume("w2", 10).await.unwrap();
    let again = take(&mut second, 5, Duration::from_secs(10)).await;
    assert!(again.iter().all(|d| d.redelivered), "{again:?}");
    let ids: HashSet<_> = again.iter().map(|d| d.task.id.clone()).collect();
    assert_eq!(ids.len(), 5);
    // Settling (here: dropping = requeue) the stale deliveries changes nothing.
    drop(held);

    // A whole connection closed while holding them.
    drop(second);
    drop(again);
    let other = connect(&broker).await;
    let mut third = other.consume("w3", 10).await.unwrap();
    let held = take(&mut third, 5, Duration::from_secs(10)).await;
    other.close().await;
    let mut fresh = t.consume("w4", 10).await.unwrap();
    let again = take(&mut fresh, 5, Duration::from_secs(10)).await;
    assert!(again.iter().all(|d| d.redelivered));
    drop(held);
    drop(third);
    for d in again {
        d.settle(Settle::Ack);
    }
    assert_quiet(&mut fresh, Duration::from_millis(300)).await;
    drop(fresh);
    tokio::time::sleep(Duration::from_millis(300)).await;
    wait_depth(&t, &t.topology().tasks(), 0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_messages_are_dead_lettered_and_consumption_goes_on() {
    let broker = broker();
    let config = AmqpConfig { max_message_bytes: 4096, ..AmqpConfig::new(broker.amqp_uri()) };
    let t = AmqpTransport::connect(config).await.unwrap();
    let tasks = t.topology().tasks();
    let garbage = vec![
        b"\x01not an envelope".to_vec(),
        Envelope::Task(task("j3", 0)).encode(),
        Envelope::Result(result("j3", 9)).encode(),
        vec![],
        vec![0x01; 5000],
        Envelope::Task(task("j3", 1)).encode(),
    ];
    publish_raw(&broker, &tasks, &garbage).await;

    let mut stream = t.consume("w1", 4).await.unwrap();
    let got = take(&mut stream, 2, Duration::from_secs(10)).await;
    let ids: Vec<_> = got.iter().map(|d| d.task.id.as_str()).collect();
    assert_eq!(ids, ["seg-0", "seg-1"]);
    for d in got {
        d.settle(Settle::Ack);
    }
    wait_depth(&t, &t.topology().dead(), 4).await;
    // Still consuming after the poison.
    t.publish(vec![task("j3", 2)]).await.unwrap();
    let got = take(&mut stream, 1, Duration::from_secs(10)).await;
    assert_eq!(got[0].task.id, "seg-2");
    got.into_iter().for_each(|d| d.settle(Settle::Ack));

    // Oversized tasks are refused before publishing.
    let mut big = task("j3", 3);
    big.plugin = "x".repeat(5000);
    let err = t.publish(vec![big]).await.unwrap_err().to_string();
    assert!(err.contains("j3/seg-3") && err.contains("limit"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_letter_settle_lands_in_the_dead_queue() {
    let broker = broker();
    let t = connect(&broker).await;
    // One message each (a batch's members are settled through `BatchAck`, tested below).
    t.publish(vec![task("j4", 0)]).await.unwrap();
    t.publish(vec![task("j4", 1)]).await.unwrap();
    let mut stream = t.consume("w1", 2).await.unwrap();
    let mut got = take(&mut stream, 2, Duration::from_secs(10)).await;
    got.pop().unwrap().settle(Settle::DeadLetter);
    got.pop().unwrap().settle(Settle::Requeue);
    let again = take(&mut stream, 1, Duration::from_secs(10)).await;
    assert!(again[0].redelivered);
    again.into_iter().for_each(|d| d.settle(Settle::Ack));
    wait_depth(&t, &t.topology().dead(), 1).await;
    wait_depth(&t, &t.topology().tasks(), 0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_is_settled_task_by_task_and_redelivered_whole_when_its_holder_dies() {
    let broker = broker();
    let t = connect(&broker).await;
    let (tasks, dead) = (t.topology().tasks(), t.topology().dead());
    let mut a = t.consume("w1", 4).await.unwrap();
    prime(&t, "j9").await;
    // Known no-op tasks, one consumer: the ten travel as one message.
    t.publish((0..10).map(|i| task("j9", i)).collect()).await.unwrap();
    let mut held = take(&mut a, 10, Duration::from_secs(10)).await;
    let ids: HashSet<_> = held.iter().map(|d| d.task.id.clone()).collect();
    assert_eq!(ids.len(), 10);

    // One handed back, one dead-lettered, while the rest are still held.
    let handed_back = held.pop().unwrap();
    let handed_back_id = handed_back.task.id.clone();
    handed_back.settle(Settle::Requeue);
    // The handed-back task is available at once, before the rest of its batch is settled.
    let again = take(&mut a, 1, Duration::from_secs(10)).await;
    assert_eq!(again[0].task.id, handed_back_id);
    held.pop().unwrap().settle(Settle::DeadLetter);
    wait_depth(&t, &dead, 1).await;
    again.into_iter().for_each(|d| d.settle(Settle::Ack));

    // Three more done, then the holder dies with five unsettled: the whole message
    // comes back (duplicates, never losses), handed-back and dead-lettered ones too.
    for d in held.drain(..3) {
        d.settle(Settle::Ack);
    }
    drop(a);
    let mut b = t.consume("w2", 4).await.unwrap();
    let back = take(&mut b, 10, Duration::from_secs(10)).await;
    assert!(back.iter().all(|d| d.redelivered), "{back:?}");
    drop(held);
    back.into_iter().for_each(|d| d.settle(Settle::Ack));
    assert_quiet(&mut b, Duration::from_millis(300)).await;
    drop(b);
    tokio::time::sleep(Duration::from_millis(300)).await;
    wait_depth(&t, &tasks, 0).await;
    wait_depth(&t, &dead, 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publish_is_spread_over_the_consumers_before_it_is_packed() {
    let broker = broker();
    let t = connect(&broker).await;
    let mut a = t.consume("w1", 4).await.unwrap();
    let mut b = t.consume("w2", 4).await.unwrap();
    prime(&t, "j11").await;
    t.publish((0..10).map(|i| task("j11", i)).collect()).await.unwrap();
    // Both consumers get some at once, and every task arrives once.
    let mut held = take(&mut a, 1, Duration::from_secs(10)).await;
    held.extend(take(&mut b, 1, Duration::from_secs(10)).await);
    while held.len() < 10 {
        tokio::select! {
            Ok(batch) = a.next_batch() => held.extend(batch),
            Ok(batch) = b.next_batch() => held.extend(batch),
            _ = tokio::time::sleep(Duration::from_secs(10)) => panic!("only {held:?} arrived"),
        }
    }
    let ids: HashSet<_> = held.iter().map(|d| d.task.id.clone()).collect();
    assert_eq!((ids.len(), held.len()), (10, 10), "each task once: {held:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn results_travel_many_to_a_message() {
    let broker = broker();
    let (leader, worker) = (connect(&broker).await, connect(&broker).await);
    let queue = leader.topology().results("leader-batch");
    let mut results = leader.open_results(&queue).await.unwrap();
    let sent: Vec<_> = (0..600).map(|i| (queue.clone(), result("j10", i))).collect();
    worker.reply_many(sent).await.unwrap();
    for i in 0..600 {
        let got =
            tokio::time::timeout(Duration::from_secs(10), results.recv()).await.expect("result").unwrap();
        assert_eq!(got, result("j10", i), "in order, each once");
    }
    assert!(tokio::time::timeout(Duration::from_millis(300), results.recv()).await.is_err());
    wait_depth(&leader, &queue, 0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn results_and_control_broadcasts_flow() {
    let broker = broker();
    let leader = connect(&broker).await;
    let worker = connect(&broker).await;
    let queue = leader.topology().results("leader-1");
    let mut results = leader.open_results(&queue).await.unwrap();
    for i in 0..3 {
        worker.reply(&queue, result("j5", i)).await.unwrap();
    }
    publish_raw(&broker, &queue, &[b"junk".to_vec()]).await;
    worker.reply(&queue, result("j5", 3)).await.unwrap();
    for i in 0..4 {
        let got = tokio::time::timeout(Duration::from_secs(10), results.recv())
            .await
            .expect("result arrives")
            .expect("stream open");
        assert_eq!(got, result("j5", i));
    }
    wait_depth(&leader, &leader.topology().dead(), 1).await;
    wait_depth(&leader, &queue, 0).await;
    // A result for a leader that is gone is dropped, not an error.
    worker.reply("proofline.results.nobody", result("j5", 0)).await.unwrap();

    let mut a = worker.subscribe_control("w1").await.unwrap();
    let mut b = leader.subscribe_control("w2").await.unwrap();
    let give = Control::GiveBack { tasks: 3 };
    leader.broadcast(give.clone()).await.unwrap();
    leader.cancel_job("j5", 1).await.unwrap();
    for stream in [&mut a, &mut b] {
        for expected in [give.clone(), Control::CancelJob { job: "j5".into(), run: 1 }] {
            assert_eq!(recv(stream).await, expected);
        }
    }
    // Directed: only w2 gets it (and w1 gets the broadcast after it, nothing before).
    leader.direct("w2", Control::GiveBack { tasks: 1 }).await.unwrap();
    leader.direct("nobody", Control::GiveBack { tasks: 9 }).await.unwrap();
    leader.broadcast(give.clone()).await.unwrap();
    assert_eq!(recv(&mut b).await, Control::GiveBack { tasks: 1 });
    assert_eq!(recv(&mut b).await, give);
    assert_eq!(recv(&mut a).await, give);
}

async fn recv(stream: &mut proofline_runtime::transport::ControlStream) -> Control {
    tokio::time::timeout(Duration::from_secs(10), stream.recv())
        .await
        .expect("control arrives")
        .expect("stream open")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_hunger_report_reaches_one_leader() {
    let broker = broker();
    let worker = connect(&broker).await;
    let (l1, l2) = (connect(&broker).await, connect(&broker).await);
    let mut h1 = l1.subscribe_hunger().await.unwrap();
    let mut h2 = l2.subscribe_hunger().await.unwrap();
    let hungry = |i: u32| Control::Hungry { worker: format!("w{i}"), idle_lanes: 1, lanes: 2 };
    for i in 0..20 {
        worker.report_hunger(hungry(i)).await.unwrap();
    }
    let mut got = Vec::new();
    while got.len() < 20 {
        tokio::select! {
            Some(c) = h1.recv() => got.push((1, c)),
            Some(c) = h2.recv() => got.push((2, c)),
            _ = tokio::time::sleep(Duration::from_secs(10)) => panic!("only {} reports arrived", got.len()),
        }
    }
    assert_quiet_controls(&mut h1, &mut h2).await;
    let mut reports: Vec<_> = got.iter().map(|(_, c)| c.clone()).collect();
    reports.sort_by_key(|c| format!("{c:?}"));
    let mut expected: Vec<_> = (0..20).map(hungry).collect();
    expected.sort_by_key(|c| format!("{c:?}"));
    assert_eq!(reports, expected, "each report once");
    assert!(got.iter().any(|(l, _)| *l == 1) && got.iter().any(|(l, _)| *l == 2), "shared by both leaders");
}

async fn assert_quiet_controls(
    a: &mut proofline_runtime::transport::ControlStream,
    b: &mut proofline_runtime::transport::ControlStream,
) {
    tokio::select! {
        Some(c) = a.recv() => panic!("unexpected {c:?}"),
        Some(c) = b.recv() => panic!("unexpected {c:?}"),
        _ = tokio::time::sleep(Duration::from_millis(300)) => {}
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pause_stops_deliveries_until_resume() {
    let broker = broker();
    let t = connect(&broker).await;
    let tasks = t.topology().tasks();
    let mut stream = t.consume("w1", 8).await.unwrap();
    t.publish((0..3).map(|i| task("j6", i)).collect()).await.unwrap();
    let held = take(&mut stream, 3, Duration::from_secs(10)).await;

    stream.pause().await.unwrap();
    t.publish((3..8).map(|i| task("j6", i)).collect()).await.unwrap();
    wait_depth(&t, &tasks, 5).await;
    assert_quiet(&mut stream, Duration::from_millis(500)).await;
    wait_depth(&t, &tasks, 5).await;
    // Held deliveries stay held, and can be settled while paused.
    held.into_iter().for_each(|d| d.settle(Settle::Ack));

    stream.resume().await.unwrap();
    let rest = take(&mut stream, 5, Duration::from_secs(10)).await;
    let ids: HashSet<_> = rest.iter().map(|d| d.task.id.clone()).collect();
    assert_eq!(ids, (3..8).map(|i| format!("seg-{i}")).collect::<HashSet<_>>());
    rest.into_iter().for_each(|d| d.settle(Settle::Ack));
    wait_depth(&t, &tasks, 0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn survives_a_broker_restart() {
    let mut broker = broker();
    let leader = connect(&broker).await;
    let worker = connect(&broker).await;
    let queue = leader.topology().results("leader-r");
    let mut results = leader.open_results(&queue).await.unwrap();
    let mut controls = worker.subscribe_control("w1").await.unwrap();
    let mut stream = worker.consume("w1", 8).await.unwrap();
    leader.publish(vec![task("j7", 0)]).await.unwrap();

    tokio::task::block_in_place(|| broker.stop());
    // Published while the broker is down: retried until it is back.
    let publisher = leader.clone();
    let during = tokio::spawn(async move { publisher.publish(vec![task("j7", 1)]).await });
    tokio::time::sleep(Duration::from_millis(500)).await;
    tokio::task::block_in_place(|| broker.start());
    during.await.unwrap().expect("publish during the outage");
    leader.publish(vec![task("j7", 2)]).await.unwrap();

    // The consumer made before the restart gets all three (seg-0 possibly twice:
    // it may have been delivered, unacked, before the restart).
    let mut seen = HashSet::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while seen.len() < 3 {
        let left = deadline.saturating_duration_since(Instant::now());
        let batch = tokio::time::timeout(left, stream.next_batch())
            .await
            .unwrap_or_else(|_| panic!("after the restart only got {seen:?}"))
            .unwrap();
        for d in batch {
            seen.insert(d.task.id.clone());
            worker.reply(&queue, result("j7", d.task.start)).await.unwrap();
            d.settle(Settle::Ack);
        }
    }
    let mut got = HashSet::new();
    while got.len() < 3 {
        let r = tokio::time::timeout(Duration::from_secs(30), results.recv())
            .await
            .expect("results flow after the restart")
            .expect("result stream open");
        got.insert(r.task);
    }
    // The control subscription comes back by itself (broadcasts during the
    // outage are lost: resend until one arrives).
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        leader.cancel_job("j7", 1).await.unwrap();
        if let Ok(got) = tokio::time::timeout(Duration::from_millis(500), controls.recv()).await {
            assert_eq!(got, Some(Control::CancelJob { job: "j7".into(), run: 1 }));
            break;
        }
        assert!(Instant::now() < deadline, "no control after the restart");
    }
}

/// Publishes that overlap the broker going down and coming back (the stop itself, not
/// only the time it is away) all succeed: a channel that dies while it is set up is
/// set up again on the next connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publishes_across_a_broker_restart_all_land() {
    let mut broker = broker();
    let leader = connect(&broker).await;
    let worker = connect(&broker).await;
    let mut stream = worker.consume("w1", 1000).await.unwrap();
    let publisher = leader.clone();
    let (stop_tx, mut stop) = tokio::sync::watch::channel(false);
    let publishing = tokio::spawn(async move {
        let mut sent = 0u32;
        while !*stop.borrow_and_update() {
            publisher.publish(vec![task("j8", sent)]).await.map_err(|e| format!("publish {sent}: {e}"))?;
            sent += 1;
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        Ok::<u32, String>(sent)
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    tokio::task::block_in_place(|| broker.stop());
    tokio::time::sleep(Duration::from_millis(300)).await;
    tokio::task::block_in_place(|| broker.start());
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop_tx.send(true).unwrap();
    let sent = publishing.await.unwrap().expect("every publish across the restart succeeds");
    assert!(sent > 20, "the publisher kept going ({sent} publishes)");
    // Every task is in the queue: durable messages survive the restart.
    let mut seen = HashSet::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while seen.len() < sent as usize {
        let left = deadline.saturating_duration_since(Instant::now());
        let Ok(Ok(batch)) = tokio::time::timeout(left, stream.next_batch()).await else {
            panic!("only {} of {sent} tasks arrived", seen.len());
        };
        for d in batch {
            seen.insert(d.task.start);
            d.settle(Settle::Ack);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_errors_are_fast_and_redacted() {
    async fn fails(uri: &str) -> String {
        let started = Instant::now();
        let config = AmqpConfig { connect_timeout: Duration::from_secs(3), ..AmqpConfig::new(uri) };
        let err = match AmqpTransport::connect(config).await {
            Ok(_) => panic!("{uri} connected"),
            Err(e) => e.to_string(),
        };
        assert!(started.elapsed() < Duration::from_secs(6), "{uri}: {:?}", started.elapsed());
        assert!(!err.contains("hunter2"), "password leaked: {err}");
        err
    }
    let err = fails("amqp://guest:hunter2@127.0.0.1:notaport/%2f").await;
    assert!(err.contains("invalid AMQP URI"), "{err}");
    let err = fails("http://guest:hunter2@example.com/").await;
    assert!(err.contains("invalid AMQP URI"), "{err}");

    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let err = fails(&format!("amqp://guest:hunter2@127.0.0.1:{port}/%2f")).await;
    assert!(err.contains(&format!("127.0.0.1:{port}")), "{err}");

    let broker = broker();
    let uri = format!("amqp://guest:hunter2@127.0.0.1:{}/%2f", broker.port());
    let err = fails(&uri).await;
    assert!(err.contains(&format!("127.0.0.1:{}", broker.port())), "{err}");
    eprintln!("wrong credentials: {err}");
}

/// Rough rates on this machine, printed (timed assertions do not belong in tests).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "measurement: run with --release --ignored --nocapture"]
async fn throughput() {
    let broker = broker();
    let t = connect(&broker).await;
    const N: u32 = 20_000;
    let tasks: Vec<_> = (0..N).map(|i| task("bench", i)).collect();
    let started = Instant::now();
    for chunk in tasks.chunks(1000) {
        t.publish(chunk.to_vec()).await.unwrap();
    }
    let publish = started.elapsed();
    for prefetch in [1usize, 100] {
        let mut stream = t.consume("bench", prefetch).await.unwrap();
        let started = Instant::now();
        let n = if prefetch == 1 { N / 10 } else { N - N / 10 };
        let mut done = 0;
        while done < n {
            for d in stream.next_batch().await.unwrap() {
                d.settle(Settle::Ack);
                done += 1;
            }
        }
        let rate = f64::from(done) / started.elapsed().as_secs_f64();
        println!("consume+ack, prefetch {prefetch}: {done} tasks, {rate:.0}/s");
    }
    println!(
        "confirmed publish (batches of 1000): {N} tasks in {publish:?}, {:.0}/s",
        f64::from(N) / publish.as_secs_f64()
    );
}
