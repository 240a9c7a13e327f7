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
    }
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
    t.publish((0..N).map(|i| task("j1", i)).collect()).await.unwrap();
    wait_depth(&t, &tasks, N).await;

    let mut stream = t.consume("w1", 16).await.unwrap();
    let mut seen = HashSet::new();
    while seen.len() < N as usize {
        let batch = tokio::time::timeout(Duration::from_secs(10), stream.next_batch())
            .await
            .expect("deliveries keep coming")
            .unwrap();
        assert!(!batch.is_empty() && batch.len() <= 16, "batch of {}", batch.len());
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
    t.publish(vec![task("j4", 0), task("j4", 1)]).await.unwrap();
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

    let mut a = worker.subscribe_control().await.unwrap();
    let mut b = leader.subscribe_control().await.unwrap();
    let hungry = Control::Hungry { worker: "w9".into(), idle_lanes: 2 };
    leader.broadcast(hungry.clone()).await.unwrap();
    leader.cancel_job("j5", 1).await.unwrap();
    for stream in [&mut a, &mut b] {
        for expected in [hungry.clone(), Control::CancelJob { job: "j5".into(), run: 1 }] {
            let got = tokio::time::timeout(Duration::from_secs(10), stream.recv())
                .await
                .expect("control arrives")
                .expect("stream open");
            assert_eq!(got, expected);
        }
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
    let mut controls = worker.subscribe_control().await.unwrap();
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
