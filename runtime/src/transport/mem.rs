//! The in-memory broker: the semantics of the AMQP transport inside one process.
//!
//! Tasks and results are handed over as values: the broker keeps a published task and
//! delivers a copy (so a requeue can deliver it again), and a result goes straight to
//! its leader's queue (encoding them only to decode them again in the same process
//! cost about 9,200 instructions per task: docs/BENCHMARKS.md, section 1). Bytes
//! published as if off the wire ([`MemBroker::publish_raw`]) are validated on delivery
//! like the AMQP transport's, and a dead-lettered task is kept encoded.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::{Notify, mpsc};

use super::{
    Acker, BoxFuture, ControlStream, Delivery, ResultStream, Settle, TaskStream, Transport, TransportError,
};
use crate::envelope::Envelope;
use crate::task::{Control, Task, TaskResult};

/// An in-process broker. Clones share one broker.
///
/// ```
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// use proofline_runtime::transport::{MemBroker, Transport, Settle};
/// # use proofline_runtime::task::*;
/// let broker = MemBroker::default();
/// # let task = Task { job: "j".into(), run: 1, id: "seg-0".into(), kind: TaskKind::Segment, plugin: "p@1".into(),
/// #   inputs: vec![], start: 0, end: 1, attempt: 1, max_attempts: 3, deadline_ms: 1000, cost: 1, reply_to: "r".into() };
/// broker.publish(vec![task]).await.unwrap();
/// let mut stream = broker.consume("worker-1", 8).await.unwrap();
/// let batch = stream.next_batch().await.unwrap();
/// assert_eq!(batch.len(), 1);
/// for d in batch { d.settle(Settle::Ack); }
/// assert_eq!(broker.stats().ready, 0);
/// # });
/// ```
#[derive(Clone, Default)]
pub struct MemBroker {
    inner: Arc<Inner>,
}

/// How long a busy worker's results may wait for more to travel with them
/// ([`Transport::result_linger`]; `worker::linger` says when they wait at all).
///
/// A result handed over wakes the worker actor and the leader, and the refill it frees
/// wakes a lane: with 1 ms tasks on 2 lanes, those threads took a core from a spinning
/// lane 2,000 times a second. 2 ms measured best of 1, 2 and 4 (docs/BENCHMARKS.md,
/// section 1).
const MEM_RESULT_LINGER: Duration = Duration::from_millis(2);

#[derive(Default)]
struct Inner {
    state: Mutex<State>,
    /// Woken whenever a consumer might be able to take something.
    wake: Notify,
}

#[derive(Default)]
struct State {
    next_tag: u64,
    next_consumer: u64,
    ready: VecDeque<Message>,
    unacked: HashMap<u64, (u64, Message)>,
    held_by: HashMap<u64, usize>,
    /// Prefetch window of each consumer.
    windows: HashMap<u64, usize>,
    dead: Vec<(Vec<u8>, String)>,
    results: HashMap<String, mpsc::UnboundedSender<TaskResult>>,
    /// Control subscribers, by worker name.
    control: Vec<(String, mpsc::UnboundedSender<Control>)>,
    /// Leaders listening for hunger reports; each report goes to the next in turn.
    hunger: Vec<mpsc::UnboundedSender<Control>>,
    next_hunger: usize,
    delivered: u64,
    redelivered: u64,
}

impl State {
    /// Whether `consumer` should take now. Refills go in batches: a consumer that still
    /// holds work waits until half its window is free (or all that is ready fits),
    /// which saves a wake-up per task.
    fn could_take(&self, consumer: u64) -> bool {
        let held = self.held_by.get(&consumer).copied().unwrap_or(0);
        let window = self.windows.get(&consumer).copied().unwrap_or(1);
        let room = window.saturating_sub(held);
        !self.ready.is_empty() && room > 0 && (held == 0 || room >= self.ready.len().min((window / 2).max(1)))
    }
}

struct Message {
    tag: u64,
    body: Body,
    redelivered: bool,
}

/// What a message holds.
enum Body {
    /// A task published by a leader of this process.
    Task(Task),
    /// Bytes as if off the wire: decoded and validated on delivery.
    Raw(Vec<u8>),
}

impl Message {
    /// Whether this is a task of run `run` of `job` (to drop a cancelled run's queued tasks).
    fn is_run(&self, job: &str, run: u64) -> bool {
        matches!(&self.body, Body::Task(t) if t.run == run && t.job == job)
    }

    /// The message as it would be on the wire (for the dead-letter queue).
    fn into_bytes(self) -> Vec<u8> {
        match self.body {
            Body::Task(task) => Envelope::Task(task).encode(),
            Body::Raw(bytes) => bytes,
        }
    }
}

/// Counters of the broker, for tests and benchmarks.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BrokerStats {
    pub ready: usize,
    pub unacked: usize,
    pub dead_lettered: usize,
    pub delivered: u64,
    pub redelivered: u64,
}

impl MemBroker {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.inner.state.lock().expect("broker lock poisoned")
    }

    pub fn stats(&self) -> BrokerStats {
        let s = self.lock();
        BrokerStats {
            ready: s.ready.len(),
            unacked: s.unacked.len(),
            dead_lettered: s.dead.len(),
            delivered: s.delivered,
            redelivered: s.redelivered,
        }
    }

    /// Messages moved to the dead-letter queue, with the reason.
    pub fn dead_letters(&self) -> Vec<(Vec<u8>, String)> {
        self.lock().dead.clone()
    }

    /// Publish raw bytes as if they came off the wire (tests of poison messages).
    pub fn publish_raw(&self, bytes: Vec<u8>) {
        let mut s = self.lock();
        let tag = s.next_tag;
        s.next_tag += 1;
        s.ready.push_back(Message { tag, body: Body::Raw(bytes), redelivered: false });
        drop(s);
        self.inner.wake.notify_waiters();
    }

    fn settle(&self, consumer: u64, tag: u64, how: Settle) {
        let mut s = self.lock();
        let Some((owner, mut msg)) = s.unacked.remove(&tag) else {
            return;
        };
        debug_assert_eq!(owner, consumer);
        if let Some(held) = s.held_by.get_mut(&owner) {
            *held -= 1;
        }
        let wake = match how {
            // An ack only matters to a consumer whose refill it unblocks.
            Settle::Ack => s.could_take(owner),
            Settle::Requeue => {
                msg.redelivered = true;
                s.ready.push_front(msg);
                true
            }
            Settle::DeadLetter => {
                s.dead.push((msg.into_bytes(), "rejected by consumer".into()));
                false
            }
        };
        drop(s);
        if wake {
            self.inner.wake.notify_waiters();
        }
    }

    /// Take up to the consumer's free prefetch room; `None` when nothing can be taken.
    fn take(&self, consumer: u64, prefetch: usize) -> Vec<Delivery> {
        let mut s = self.lock();
        s.windows.insert(consumer, prefetch);
        if !s.could_take(consumer) {
            return Vec::new();
        }
        let held = s.held_by.get(&consumer).copied().unwrap_or(0);
        let mut out = Vec::new();
        while held + out.len() < prefetch {
            let Some(msg) = s.ready.pop_front() else {
                break;
            };
            let task = match &msg.body {
                Body::Task(task) => Ok(task.clone()),
                Body::Raw(bytes) => match Envelope::decode(bytes) {
                    Ok(Envelope::Task(task)) => Ok(task),
                    Ok(other) => Err(format!("expected a task, got {other:?}")),
                    Err(e) => Err(format!("undecodable: {e}")),
                },
            };
            let task = match task {
                Ok(task) => task,
                Err(reason) => {
                    tracing::warn!(tag = msg.tag, %reason, "dead-lettering message");
                    s.dead.push((msg.into_bytes(), reason));
                    continue;
                }
            };
            s.delivered += 1;
            s.redelivered += u64::from(msg.redelivered);
            let acker = Box::new(MemAcker { broker: self.clone(), consumer, tag: msg.tag });
            out.push(Delivery::new(task, msg.redelivered, acker));
            s.unacked.insert(msg.tag, (consumer, msg));
        }
        *s.held_by.entry(consumer).or_default() += out.len();
        out
    }

    /// Hand results to their leaders' queues, under one lock.
    fn deliver_results(&self, results: Vec<(String, TaskResult)>) -> Result<(), TransportError> {
        let s = self.lock();
        for (reply_to, result) in results {
            match s.results.get(&reply_to) {
                Some(tx) => tx.send(result).map_err(|_| TransportError::Closed)?,
                // Like an unroutable AMQP publish: nobody listens any more (leader gone).
                None => tracing::debug!(queue = %reply_to, "result for a closed result queue dropped"),
            }
        }
        Ok(())
    }

    /// A consumer went away: everything it held goes back to the front of the queue.
    fn drop_consumer(&self, consumer: u64) {
        let mut s = self.lock();
        let tags: Vec<u64> =
            s.unacked.iter().filter(|(_, (owner, _))| *owner == consumer).map(|(&t, _)| t).collect();
        for tag in tags {
            let (_, mut msg) = s.unacked.remove(&tag).expect("listed");
            msg.redelivered = true;
            s.ready.push_front(msg);
        }
        s.held_by.remove(&consumer);
        s.windows.remove(&consumer);
        drop(s);
        self.inner.wake.notify_waiters();
    }
}

struct MemAcker {
    broker: MemBroker,
    consumer: u64,
    tag: u64,
}

impl Acker for MemAcker {
    fn settle(&self, how: Settle) {
        self.broker.settle(self.consumer, self.tag, how);
    }
}

struct MemStream {
    broker: MemBroker,
    consumer: u64,
    prefetch: usize,
    paused: bool,
}

impl TaskStream for MemStream {
    fn next_batch(&mut self) -> BoxFuture<'_, Result<Vec<Delivery>, TransportError>> {
        Box::pin(async move {
            loop {
                let woken = self.broker.inner.wake.notified();
                tokio::pin!(woken);
                woken.as_mut().enable();
                if !self.paused {
                    let batch = self.broker.take(self.consumer, self.prefetch);
                    if !batch.is_empty() {
                        return Ok(batch);
                    }
                }
                woken.await;
            }
        })
    }

    fn pause(&mut self) -> BoxFuture<'_, Result<(), TransportError>> {
        self.paused = true;
        Box::pin(async { Ok(()) })
    }

    fn resume(&mut self) -> BoxFuture<'_, Result<(), TransportError>> {
        self.paused = false;
        self.broker.inner.wake.notify_waiters();
        Box::pin(async { Ok(()) })
    }
}

impl Drop for MemStream {
    fn drop(&mut self) {
        self.broker.drop_consumer(self.consumer);
    }
}

impl Transport for MemBroker {
    fn describe(&self) -> String {
        "in-memory".into()
    }

    fn result_linger(&self) -> Duration {
        MEM_RESULT_LINGER
    }

    fn publish(&self, tasks: Vec<Task>) -> BoxFuture<'_, Result<(), TransportError>> {
        Box::pin(async move {
            let mut s = self.lock();
            for task in tasks {
                let tag = s.next_tag;
                s.next_tag += 1;
                s.ready.push_back(Message { tag, body: Body::Task(task), redelivered: false });
            }
            drop(s);
            self.inner.wake.notify_waiters();
            Ok(())
        })
    }

    fn open_results(&self, queue: &str) -> BoxFuture<'_, Result<ResultStream, TransportError>> {
        let queue = queue.to_owned();
        Box::pin(async move {
            let (tx, rx) = mpsc::unbounded_channel();
            self.lock().results.insert(queue, tx);
            Ok(rx)
        })
    }

    fn cancel_job(&self, job: &str, run: u64) -> BoxFuture<'_, Result<(), TransportError>> {
        let job = job.to_owned();
        Box::pin(async move {
            self.lock().ready.retain(|m| !m.is_run(&job, run));
            self.broadcast(Control::CancelJob { job, run }).await
        })
    }

    fn broadcast(&self, control: Control) -> BoxFuture<'_, Result<(), TransportError>> {
        Box::pin(async move {
            self.lock().control.retain(|(_, tx)| tx.send(control.clone()).is_ok());
            Ok(())
        })
    }

    fn direct(&self, worker: &str, control: Control) -> BoxFuture<'_, Result<(), TransportError>> {
        let worker = worker.to_owned();
        Box::pin(async move {
            let mut s = self.lock();
            s.control.retain(|(_, tx)| !tx.is_closed());
            // Like a direct exchange: every subscriber bound under that name.
            for (_, tx) in s.control.iter().filter(|(name, _)| *name == worker) {
                let _ = tx.send(control.clone());
            }
            Ok(())
        })
    }

    fn subscribe_control(&self, worker: &str) -> BoxFuture<'_, Result<ControlStream, TransportError>> {
        let worker = worker.to_owned();
        Box::pin(async move {
            let (tx, rx) = mpsc::unbounded_channel();
            self.lock().control.push((worker, tx));
            Ok(rx)
        })
    }

    fn report_hunger(&self, hunger: Control) -> BoxFuture<'_, Result<(), TransportError>> {
        Box::pin(async move {
            let mut s = self.lock();
            s.hunger.retain(|tx| !tx.is_closed());
            if !s.hunger.is_empty() {
                let next = s.next_hunger % s.hunger.len();
                s.next_hunger = next + 1;
                let _ = s.hunger[next].send(hunger);
            }
            Ok(())
        })
    }

    fn subscribe_hunger(&self) -> BoxFuture<'_, Result<ControlStream, TransportError>> {
        Box::pin(async move {
            let (tx, rx) = mpsc::unbounded_channel();
            self.lock().hunger.push(tx);
            Ok(rx)
        })
    }

    fn consume(
        &self,
        _consumer: &str,
        prefetch: usize,
    ) -> BoxFuture<'_, Result<Box<dyn TaskStream>, TransportError>> {
        Box::pin(async move {
            let mut s = self.lock();
            let consumer = s.next_consumer;
            s.next_consumer += 1;
            drop(s);
            let stream =
                MemStream { broker: self.clone(), consumer, prefetch: prefetch.max(1), paused: false };
            Ok(Box::new(stream) as Box<dyn TaskStream>)
        })
    }

    fn reply(&self, reply_to: &str, result: TaskResult) -> BoxFuture<'_, Result<(), TransportError>> {
        let reply_to = reply_to.to_owned();
        Box::pin(async move { self.deliver_results(vec![(reply_to, result)]) })
    }

    fn reply_many(&self, results: Vec<(String, TaskResult)>) -> BoxFuture<'_, Result<(), TransportError>> {
        Box::pin(async move { self.deliver_results(results) })
    }
}
