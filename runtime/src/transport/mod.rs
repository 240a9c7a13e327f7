//! Transports: how tasks reach workers and results reach leaders.
//!
//! Broker semantics whatever the implementation: a task is delivered to one consumer
//! at a time, stays owned by it until settled (ack, requeue, dead-letter), and is
//! requeued if its consumer goes away unsettled. Everything on the wire is an
//! [`Envelope`](crate::envelope::Envelope), validated on receipt.

pub mod amqp;
mod mem;

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

pub use amqp::{AmqpConfig, AmqpTransport};
pub use mem::MemBroker;
use tokio::sync::mpsc;

use crate::envelope::EnvelopeError;
use crate::task::{Control, Task, TaskResult};

/// A boxed, sendable future: keeps [`Transport`] object-safe.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error("transport closed")]
    Closed,
    #[error("broker: {0}")]
    Broker(String),
    #[error(transparent)]
    Envelope(#[from] EnvelopeError),
}

/// Results for one leader process, in arrival order.
pub type ResultStream = mpsc::UnboundedReceiver<TaskResult>;

/// Control broadcasts, as seen by one subscriber.
pub type ControlStream = mpsc::UnboundedReceiver<Control>;

/// A task broker, seen from leaders and from workers.
pub trait Transport: Send + Sync + 'static {
    /// For logs: `in-memory`, `amqp://host:5672` (never credentials).
    fn describe(&self) -> String;
    /// Leader: hand tasks to the broker; returns once the broker holds them.
    fn publish(&self, tasks: Vec<Task>) -> BoxFuture<'_, Result<(), TransportError>>;
    /// Leader: open the result queue `queue` (one per leader process).
    fn open_results(&self, queue: &str) -> BoxFuture<'_, Result<ResultStream, TransportError>>;
    /// Leader: stop run `run` of `job` everywhere: drop its queued tasks where the
    /// broker can, and broadcast [`Control::CancelJob`] so workers skip or abandon the
    /// rest. A later run of the same job (a resume) is not affected.
    fn cancel_job(&self, job: &str, run: u64) -> BoxFuture<'_, Result<(), TransportError>>;
    /// Anyone: send a control message to every subscriber (including the sender's own).
    fn broadcast(&self, control: Control) -> BoxFuture<'_, Result<(), TransportError>>;
    /// Leader: send a control message to the one worker subscribed as `worker`
    /// (dropped when none is). Costs one delivery, whatever the pool's size.
    fn direct(&self, worker: &str, control: Control) -> BoxFuture<'_, Result<(), TransportError>>;
    /// Worker: receive control broadcasts, and the messages [`direct`](Self::direct)ed
    /// at `worker` (a name unique in the cluster).
    fn subscribe_control(&self, worker: &str) -> BoxFuture<'_, Result<ControlStream, TransportError>>;
    /// Worker: tell *one* leader (whichever the broker picks) that this worker is hungry
    /// ([`Control::Hungry`]). A hint: dropped when no leader listens or it goes stale.
    fn report_hunger(&self, hunger: Control) -> BoxFuture<'_, Result<(), TransportError>>;
    /// Leader: receive hunger reports, sharing them with the other leaders (each report
    /// reaches one leader).
    fn subscribe_hunger(&self) -> BoxFuture<'_, Result<ControlStream, TransportError>>;
    /// Worker: start consuming tasks with at most `prefetch` unsettled at a time.
    fn consume(
        &self,
        consumer: &str,
        prefetch: usize,
    ) -> BoxFuture<'_, Result<Box<dyn TaskStream>, TransportError>>;
    /// Worker: send a result to the leader's queue `reply_to`.
    fn reply(&self, reply_to: &str, result: TaskResult) -> BoxFuture<'_, Result<(), TransportError>>;
    /// Worker: how long finished results may wait for more to share their message
    /// (see `worker::linger`): zero where handing one over costs nothing extra.
    fn result_linger(&self) -> Duration {
        Duration::ZERO
    }
    /// Worker: send many results at once (one confirm round trip where the broker allows).
    /// The default sends them one by one.
    fn reply_many(&self, results: Vec<(String, TaskResult)>) -> BoxFuture<'_, Result<(), TransportError>> {
        Box::pin(async move {
            for (reply_to, result) in results {
                self.reply(&reply_to, result).await?;
            }
            Ok(())
        })
    }
}

/// A worker's subscription. Dropping it requeues everything it holds unsettled.
pub trait TaskStream: Send {
    /// Wait for at least one task, then return as many as the prefetch window allows.
    fn next_batch(&mut self) -> BoxFuture<'_, Result<Vec<Delivery>, TransportError>>;
    /// Stop receiving new deliveries until [`resume`](Self::resume); held ones stay held.
    /// A worker pauses while it hands unstarted tasks back to hungry peers, so the broker
    /// does not deliver them straight back to it.
    fn pause(&mut self) -> BoxFuture<'_, Result<(), TransportError>>;
    fn resume(&mut self) -> BoxFuture<'_, Result<(), TransportError>>;
}

/// How a delivery is settled with the broker.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Settle {
    /// Done (its result has been sent).
    Ack,
    /// Give it back to be delivered again (to anyone).
    Requeue,
    /// Poison: move it to the dead-letter queue.
    DeadLetter,
}

/// The broker-side half of a delivery.
pub trait Acker: Send + Sync {
    fn settle(&self, how: Settle);
}

/// One task handed to one consumer. Settle it exactly once; dropping it unsettled
/// requeues it, so a lane that dies never loses its task.
pub struct Delivery {
    pub task: Task,
    /// True if an earlier delivery of this message was not acked.
    pub redelivered: bool,
    /// When this process received it (the start of its queue wait on the worker).
    pub received: std::time::Instant,
    acker: Option<Box<dyn Acker>>,
}

impl Delivery {
    pub fn new(task: Task, redelivered: bool, acker: Box<dyn Acker>) -> Self {
        Self { task, redelivered, received: std::time::Instant::now(), acker: Some(acker) }
    }

    pub fn settle(mut self, how: Settle) {
        if let Some(acker) = self.acker.take() {
            acker.settle(how);
        }
    }
}

impl Drop for Delivery {
    fn drop(&mut self) {
        if let Some(acker) = self.acker.take() {
            acker.settle(Settle::Requeue);
        }
    }
}

impl std::fmt::Debug for Delivery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Delivery").field("task", &self.task.id).field("attempt", &self.task.attempt).finish()
    }
}
