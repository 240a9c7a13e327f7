//! The AMQP 0-9-1 transport (RabbitMQ, through lapin): the semantics of
//! [`MemBroker`](super::MemBroker) across processes.
//!
//! # Topology
//!
//! Declared idempotently on every (re)connect ([`topology`]); `P` is
//! [`AmqpConfig::prefix`] (default `proofline`):
//!
//! | name | kind | arguments |
//! |------|------|-----------|
//! | `P.tasks` | durable **quorum** queue | `x-queue-type: quorum`, `x-delivery-limit: N` ([`AmqpConfig::delivery_limit`], default 20), `x-dead-letter-exchange: P.dlx` |
//! | `P.dlx` | durable fanout exchange | |
//! | `P.dead` | durable classic queue bound to `P.dlx` | `x-max-length` ([`AmqpConfig::dead_letter_max_length`], default 100 000; the oldest go first), `x-message-ttl` ([`AmqpConfig::dead_letter_ttl`], default 7 days) |
//! | `P.control` | durable fanout exchange | each subscriber binds its own server-named, exclusive, auto-delete queue |
//! | `P.direct` | durable direct exchange | each subscriber's queue is also bound here with its worker name as key |
//! | `P.hunger` | durable classic queue | `x-message-ttl` 2 s, `x-max-length` 10 000: hunger reports, shared by the leaders' consumers |
//! | `P.results.LEADER` (any name a leader passes to `open_results`) | durable classic queue | `x-expires` ([`AmqpConfig::result_queue_expiry`], default 1 h), `x-dead-letter-exchange: P.dlx` |
//!
//! Small tasks and results travel many to a message ([`batching`]: at least one
//! message per consumer of the task queue, up to 64 tasks or 256 results each, never
//! waiting to fill one); the tasks of one message are settled one by one and the
//! message acked when all are (`batch_ack.rs`). Hunger reports go to `P.hunger`, one
//! leader each; give-backs go through `P.direct` to one worker
//! ([`leader::hunger`](crate::leader::hunger)).
//!
//! Tasks and results are published to the default exchange with the queue name as
//! routing key, persistent (`delivery_mode = 2`), with publisher confirms: `publish`
//! and `reply` return once the broker has confirmed every message of the batch (a
//! nack is an error). Every message received is validated with
//! [`Envelope::decode`](crate::envelope::Envelope::decode); undecodable, oversized or
//! wrong-kind messages are rejected without requeue and so land in `P.dead`.
//!
//! # Why a quorum queue for tasks
//!
//! A quorum queue is replicated (Raft) where a cluster has several nodes and, unlike a
//! classic queue, counts deliveries: a poison task that kills every worker that takes
//! it is dead-lettered after `x-delivery-limit` returns instead of looping forever.
//! It has no exclusive/auto-delete mode and no global QoS (the transport uses per
//! consumer `basic.qos`), both of which this transport avoids anyway. Note that every
//! return counts, including hand-backs to hungry peers (`Settle::Requeue`) and the
//! requeues of a consumer that went away: the limit must stay well above the leader's
//! own `max_attempts` (re-dispatches are new messages, they restart the count).
//! Result queues stay classic: one consumer, short-lived, `x-expires` so that a
//! leader that vanished does not leave its queue behind, yet a leader that merely
//! reconnects finds its pending results (a quorum queue would do too, at a higher
//! cost per queue). Queue arguments must agree between every process of a cluster: a
//! re-declaration with different arguments fails with `PRECONDITION_FAILED`.
//!
//! # Broker restart and lost connections
//!
//! Durable queues and exchanges, persistent messages and quorum queues survive a
//! broker restart: tasks published (confirmed) before it are delivered after it.
//! When the connection drops (see `connection.rs`), publishers retry (re-sending only the
//! messages that were not confirmed) until reconnected. Task streams, result streams
//! and control streams re-subscribe by themselves after a reconnect; reconnect
//! attempts back off from 100 ms to 5 s (jittered) and are logged at warn level with
//! their attempt number.
//!
//! An outage that lasts [`AmqpConfig::reconnect_give_up`] (default 5 min) makes the
//! transport *lost*, for good and as a whole: [`AmqpTransport::lost`] resolves with
//! the reason (naming the broker), result and control streams end, and every call
//! (publish, reply, a task stream's `next_batch`) fails at once with that reason.
//! There is no half-alive state where some streams ended and others retry: the
//! `proofline-worker` process exits 1 and a leader fails its jobs (resumable), and a
//! supervisor restarts them against the broker once it is back.
//!
//! Deliveries held when the connection died were requeued by the broker
//! (`redelivered = true`), and settling them is silently ignored: the leader keeps
//! the first result of a task, duplicates are harmless.
//! Control broadcasts sent while a subscriber was disconnected are lost (they are
//! hints: cancellations are also enforced by the leader ignoring stale results).
//! AMQP heartbeats ([`AmqpConfig::heartbeat`], default 10 s) detect dead peers.

mod batch_ack;
pub mod batching;
mod connection;
mod stream;
mod subscribe;
pub mod topology;

use std::sync::Arc;
use std::time::Duration;

/// The lapin crate this transport is built on (for tests and tools that need raw
/// AMQP access, e.g. publishing garbage or reading the dead-letter queue).
pub use lapin;

use self::connection::{PublishKind, Shared};
use self::topology::Topology;
use super::{BoxFuture, ControlStream, ResultStream, TaskStream, Transport, TransportError};
use crate::envelope::Envelope;
use crate::task::{Control, Task, TaskResult};

/// Settings of an [`AmqpTransport`].
#[derive(Clone)]
pub struct AmqpConfig {
    /// `amqp://user:password@host:port/vhost` (the vhost URL-encoded: `%2f` is `/`).
    pub uri: String,
    /// Prefix of every queue and exchange name (default `proofline`).
    pub prefix: String,
    /// Prefetch window used when [`Transport::consume`] is called with 0.
    pub prefetch: u16,
    /// Largest envelope accepted, sent or received (default 1 MiB). Tasks carry
    /// artifact references, never proofs: anything bigger is a bug or an attack.
    pub max_message_bytes: usize,
    /// Limit for one connection attempt (TCP, AMQP handshake, topology).
    pub connect_timeout: Duration,
    /// AMQP heartbeat interval (0 disables it).
    pub heartbeat: Duration,
    /// How long publishers and consumers keep trying to reconnect before failing.
    pub reconnect_give_up: Duration,
    /// `x-delivery-limit` of the task queue: returns before a task is dead-lettered.
    pub delivery_limit: u32,
    /// `x-expires` of result queues: an unused result queue is deleted after this.
    pub result_queue_expiry: Duration,
    /// `x-max-length` of `P.dead`: beyond it the oldest dead letters are dropped.
    pub dead_letter_max_length: u32,
    /// `x-message-ttl` of `P.dead`: dead letters older than this are dropped.
    pub dead_letter_ttl: Duration,
    /// How long a busy worker's results may wait for more to share their message
    /// (default [`batching::RESULT_LINGER`]; zero sends each batch as soon as it can).
    pub result_linger: Duration,
}

impl AmqpConfig {
    /// Defaults for `uri`.
    pub fn new(uri: impl Into<String>) -> Self {
        Self {
            uri: uri.into(),
            prefix: "proofline".into(),
            prefetch: 16,
            max_message_bytes: 1 << 20,
            connect_timeout: Duration::from_secs(5),
            heartbeat: Duration::from_secs(10),
            reconnect_give_up: Duration::from_secs(300),
            delivery_limit: 20,
            result_queue_expiry: Duration::from_secs(3600),
            dead_letter_max_length: topology::DEAD_MAX_LENGTH,
            dead_letter_ttl: topology::DEAD_TTL,
            result_linger: batching::RESULT_LINGER,
        }
    }

    /// Same configuration with another prefix.
    pub fn with_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }
}

impl Default for AmqpConfig {
    fn default() -> Self {
        Self::new("amqp://127.0.0.1:5672/%2f")
    }
}

impl std::fmt::Debug for AmqpConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AmqpConfig")
            .field("uri", &connection::redact_uri(&self.uri))
            .field("prefix", &self.prefix)
            .field("prefetch", &self.prefetch)
            .field("max_message_bytes", &self.max_message_bytes)
            .field("connect_timeout", &self.connect_timeout)
            .field("heartbeat", &self.heartbeat)
            .field("reconnect_give_up", &self.reconnect_give_up)
            .field("delivery_limit", &self.delivery_limit)
            .field("result_queue_expiry", &self.result_queue_expiry)
            .field("dead_letter_max_length", &self.dead_letter_max_length)
            .field("dead_letter_ttl", &self.dead_letter_ttl)
            .field("result_linger", &self.result_linger)
            .finish()
    }
}

/// A [`Transport`] over RabbitMQ. Clones share one connection.
///
/// ```no_run
/// # async fn demo() -> Result<(), proofline_runtime::transport::TransportError> {
/// use proofline_runtime::transport::{AmqpConfig, AmqpTransport, Transport};
/// let amqp = AmqpTransport::connect(AmqpConfig::new("amqp://127.0.0.1:5672/%2f")).await?;
/// println!("tasks go through {}", amqp.describe());
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct AmqpTransport {
    shared: Arc<Shared>,
    /// Consumers of the task queue, as last read: publishes spread over them.
    consumers: Arc<ConsumerCount>,
}

/// Tasks of one job and kind, published together.
struct BatchGroup {
    mean: Option<Duration>,
    tasks: Vec<Task>,
}

/// The task queue's consumer count, read at most once per [`ConsumerCount::EVERY`].
#[derive(Default)]
struct ConsumerCount {
    count: std::sync::atomic::AtomicUsize,
    read_at: std::sync::Mutex<Option<std::time::Instant>>,
}

impl ConsumerCount {
    const EVERY: Duration = Duration::from_secs(1);

    /// The last count, refreshed in the background when stale; read now (one round
    /// trip) the first time only.
    async fn get(self: &Arc<Self>, shared: &Arc<Shared>) -> usize {
        use std::sync::atomic::Ordering::Relaxed;
        let first = {
            let mut read_at = self.read_at.lock().expect("consumer count lock");
            let now = std::time::Instant::now();
            match *read_at {
                Some(at) if now.duration_since(at) < Self::EVERY => return self.count.load(Relaxed),
                at => {
                    *read_at = Some(now);
                    at.is_none()
                }
            }
        };
        let queue = shared.topology.tasks();
        if first {
            if let Ok((_, consumers)) = shared.queue_counts(&queue).await {
                self.count.store(consumers as usize, Relaxed);
            }
        } else {
            let (this, shared) = (self.clone(), shared.clone());
            shared.handle.clone().spawn(async move {
                if let Ok((_, consumers)) = shared.queue_counts(&queue).await {
                    this.count.store(consumers as usize, Relaxed);
                }
            });
        }
        self.count.load(Relaxed)
    }
}

impl AmqpTransport {
    /// Connect and declare the topology. Must be called inside a tokio runtime: that
    /// runtime then runs the transport's background work (acks, re-subscriptions).
    /// Fails within [`AmqpConfig::connect_timeout`] on a bad URI, bad credentials or
    /// an unreachable broker; the error names the host, never the password.
    pub async fn connect(config: AmqpConfig) -> Result<Self, TransportError> {
        let shared = Shared::connect(config).await?;
        Ok(Self { shared: Arc::new(shared), consumers: Arc::default() })
    }

    /// The queue and exchange names in use.
    pub fn topology(&self) -> &Topology {
        &self.shared.topology
    }

    /// Ready messages in `queue` (a passive declare on a throwaway channel; unacked
    /// messages are not counted). An error if the queue does not exist.
    pub async fn queue_depth(&self, queue: &str) -> Result<u32, TransportError> {
        self.shared.queue_depth(queue).await
    }

    /// Resolves with the reason (naming the broker, never credentials) once the broker
    /// has been unreachable for [`AmqpConfig::reconnect_give_up`]: from then on every
    /// call fails at once. Never resolves while the broker comes back in time.
    pub async fn lost(&self) -> String {
        self.shared.lost().await
    }

    /// The reason the broker was given up, if it was (see [`lost`](Self::lost)).
    pub fn lost_reason(&self) -> Option<String> {
        self.shared.lost_reason()
    }

    /// Close the connection (background consumers end; unsettled deliveries are
    /// requeued by the broker).
    pub async fn close(&self) {
        self.shared.close().await;
    }

    /// `tasks` grouped by job and kind (in order of first appearance), with the mean
    /// run time of such tasks so far.
    fn batch_groups(&self, tasks: Vec<Task>) -> Vec<BatchGroup> {
        let times = self.shared.exec_times.lock().expect("exec times lock");
        let mut groups: Vec<BatchGroup> = Vec::new();
        for task in tasks {
            let same = |g: &&mut BatchGroup| g.tasks[0].job == task.job && g.tasks[0].kind == task.kind;
            match groups.iter_mut().find(same) {
                Some(group) => group.tasks.push(task),
                None => groups.push(BatchGroup { mean: times.mean(&task.job, task.kind), tasks: vec![task] }),
            }
        }
        groups
    }

    /// Encode `tasks` as one message, or as several when one would exceed the message
    /// size limit; a single task above the limit is an error.
    fn encode_tasks(&self, mut tasks: Vec<Task>, into: &mut Vec<Vec<u8>>) -> Result<(), TransportError> {
        let limit = self.shared.config.max_message_bytes;
        let envelope =
            if tasks.len() == 1 { Envelope::Task(tasks.remove(0)) } else { Envelope::Tasks(tasks) };
        let bytes = envelope.encode();
        if bytes.len() <= limit {
            into.push(bytes);
            return Ok(());
        }
        match envelope {
            Envelope::Tasks(mut tasks) => {
                let second = tasks.split_off(tasks.len() / 2);
                self.encode_tasks(tasks, into)?;
                self.encode_tasks(second, into)
            }
            Envelope::Task(task) => Err(TransportError::Broker(format!(
                "task {}/{} is {} bytes, above the {limit}-byte message limit",
                task.job,
                task.id,
                bytes.len()
            ))),
            _ => unreachable!("only tasks are encoded here"),
        }
    }

    async fn publish_envelopes(
        &self,
        exchange: &str,
        routing_key: &str,
        payloads: Vec<Vec<u8>>,
        kind: PublishKind,
    ) -> Result<usize, TransportError> {
        self.shared.publish(exchange, routing_key, payloads, kind).await
    }
}

impl Transport for AmqpTransport {
    fn describe(&self) -> String {
        self.shared.redacted.clone()
    }

    fn result_linger(&self) -> Duration {
        self.shared.config.result_linger
    }

    fn publish(&self, tasks: Vec<Task>) -> BoxFuture<'_, Result<(), TransportError>> {
        Box::pin(async move {
            if tasks.is_empty() {
                return Ok(());
            }
            let consumers = self.consumers.get(&self.shared).await;
            let mut payloads = Vec::new();
            for group in self.batch_groups(tasks) {
                let max = batching::tasks_per_message(group.mean);
                let mut tasks = group.tasks.into_iter();
                for size in batching::message_sizes(tasks.len(), consumers, max) {
                    self.encode_tasks(tasks.by_ref().take(size).collect(), &mut payloads)?;
                }
            }
            let queue = self.shared.topology.tasks();
            let returned = self.publish_envelopes("", &queue, payloads, PublishKind::Durable).await?;
            if returned > 0 {
                return Err(TransportError::Broker(format!(
                    "{returned} task message(s) returned unroutable: queue {queue} is missing"
                )));
            }
            Ok(())
        })
    }

    fn open_results(&self, queue: &str) -> BoxFuture<'_, Result<ResultStream, TransportError>> {
        let queue = queue.to_owned();
        Box::pin(async move {
            topology::check_queue_name(&queue)?;
            self.shared.set_role(crate::metrics::BrokerRole::Leader);
            subscribe::open_results(self.shared.clone(), queue).await
        })
    }

    fn cancel_job(&self, job: &str, run: u64) -> BoxFuture<'_, Result<(), TransportError>> {
        let job = job.to_owned();
        // A shared queue cannot be purged per job: workers skip cancelled jobs' tasks.
        Box::pin(async move { self.broadcast(Control::CancelJob { job, run }).await })
    }

    fn broadcast(&self, control: Control) -> BoxFuture<'_, Result<(), TransportError>> {
        Box::pin(async move {
            let bytes = Envelope::Control(control).encode();
            let exchange = self.shared.topology.control();
            self.publish_envelopes(&exchange, "", vec![bytes], PublishKind::Broadcast).await.map(drop)
        })
    }

    fn direct(&self, worker: &str, control: Control) -> BoxFuture<'_, Result<(), TransportError>> {
        let worker = worker.to_owned();
        Box::pin(async move {
            let bytes = Envelope::Control(control).encode();
            let exchange = self.shared.topology.direct();
            self.publish_envelopes(&exchange, &worker, vec![bytes], PublishKind::Broadcast).await.map(drop)
        })
    }

    fn subscribe_control(&self, worker: &str) -> BoxFuture<'_, Result<ControlStream, TransportError>> {
        let worker = worker.to_owned();
        Box::pin(async move { subscribe::subscribe_control(self.shared.clone(), worker).await })
    }

    fn report_hunger(&self, hunger: Control) -> BoxFuture<'_, Result<(), TransportError>> {
        Box::pin(async move {
            let bytes = Envelope::Control(hunger).encode();
            let queue = self.shared.topology.hunger();
            self.publish_envelopes("", &queue, vec![bytes], PublishKind::Broadcast).await.map(drop)
        })
    }

    fn subscribe_hunger(&self) -> BoxFuture<'_, Result<ControlStream, TransportError>> {
        Box::pin(async move { subscribe::subscribe_hunger(self.shared.clone()).await })
    }

    fn consume(
        &self,
        consumer: &str,
        prefetch: usize,
    ) -> BoxFuture<'_, Result<Box<dyn TaskStream>, TransportError>> {
        let consumer = consumer.to_owned();
        Box::pin(async move {
            let prefetch = match prefetch {
                0 => self.shared.config.prefetch.max(1),
                n => u16::try_from(n).unwrap_or(u16::MAX),
            };
            self.shared.set_role(crate::metrics::BrokerRole::Worker);
            let stream = stream::AmqpTaskStream::open(self.shared.clone(), consumer, prefetch).await?;
            Ok(Box::new(stream) as Box<dyn TaskStream>)
        })
    }

    fn reply(&self, reply_to: &str, result: TaskResult) -> BoxFuture<'_, Result<(), TransportError>> {
        let reply_to = reply_to.to_owned();
        Box::pin(async move {
            topology::check_queue_name(&reply_to)?;
            let bytes = Envelope::Result(result).encode();
            let limit = self.shared.config.max_message_bytes;
            if bytes.len() > limit {
                return Err(TransportError::Broker(format!(
                    "result for {reply_to} is {} bytes, above the {limit}-byte message limit",
                    bytes.len()
                )));
            }
            let returned = self.publish_envelopes("", &reply_to, vec![bytes], PublishKind::Durable).await?;
            if returned > 0 {
                // Like the in-memory broker: nobody listens any more (leader gone).
                tracing::debug!(queue = %reply_to, "result for a missing result queue dropped");
            }
            Ok(())
        })
    }

    fn reply_many(&self, results: Vec<(String, TaskResult)>) -> BoxFuture<'_, Result<(), TransportError>> {
        Box::pin(async move {
            // One message per result queue (per MAX_RESULTS_PER_MESSAGE results), and
            // one wait for the confirms of them all.
            let mut by_queue: std::collections::BTreeMap<String, Vec<TaskResult>> = Default::default();
            for (reply_to, result) in results {
                topology::check_queue_name(&reply_to)?;
                by_queue.entry(reply_to).or_default().push(result);
            }
            let limit = self.shared.config.max_message_bytes;
            for (queue, results) in by_queue {
                let mut payloads = Vec::new();
                let mut results = results.into_iter().peekable();
                while results.peek().is_some() {
                    let chunk: Vec<_> = results.by_ref().take(batching::MAX_RESULTS_PER_MESSAGE).collect();
                    encode_results(&queue, chunk, limit, &mut payloads)?;
                }
                let returned = self.publish_envelopes("", &queue, payloads, PublishKind::Durable).await?;
                if returned > 0 {
                    tracing::debug!(%queue, returned, "results for a missing result queue dropped");
                }
            }
            Ok(())
        })
    }
}

/// Encode `results` as one message, or as several when one would exceed `limit`; a
/// single result above the limit is an error.
fn encode_results(
    queue: &str,
    results: Vec<TaskResult>,
    limit: usize,
    into: &mut Vec<Vec<u8>>,
) -> Result<(), TransportError> {
    let envelope = Envelope::Results(results);
    let bytes = envelope.encode();
    if bytes.len() <= limit {
        into.push(bytes);
        return Ok(());
    }
    let Envelope::Results(mut results) = envelope else { unreachable!("built above") };
    if results.len() == 1 {
        return Err(TransportError::Broker(format!(
            "a result for {queue} is {} bytes, above the {limit}-byte message limit",
            bytes.len()
        )));
    }
    let second = results.split_off(results.len() / 2);
    encode_results(queue, results, limit, into)?;
    encode_results(queue, second, limit, into)
}
