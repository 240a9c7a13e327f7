//! Settling a multi-task message task by task.
//!
//! AMQP settles whole messages, while a worker settles tasks: some of a batch finish,
//! one is handed back to a hungry peer, one is dead-lettered. Each task of the batch
//! becomes its own [`Delivery`](crate::transport::Delivery) whose acker is a
//! [`Member`] of one shared [`BatchAck`]:
//!
//! 1. **Ack**: the task is done (its result was sent first).
//! 2. **Requeue** / **dead-letter**: the task alone is published again, at once (to the
//!    task queue, or to the dead-letter exchange), so a hungry peer gets it without
//!    waiting for the rest of the batch.
//! 3. When every task is settled and every such publish confirmed, the message is
//!    acked. If a publish failed, the whole message is requeued instead: tasks already
//!    done run again (the leader keeps the first result), nothing is lost.
//!
//! A worker that dies before step 3 leaves the message unacked: the broker redelivers
//! all of it. Duplicates, never losses.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use lapin::Channel;
use lapin::options::{BasicAckOptions, BasicNackOptions};

use super::connection::{PublishKind, Shared};
use super::stream::run_eagerly;
use crate::envelope::Envelope;
use crate::transport::{Acker, Settle};

/// One multi-task message, shared by the deliveries of its tasks.
pub(super) struct BatchAck {
    shared: Arc<Shared>,
    channel: Channel,
    tag: u64,
    /// Cleared when the channel is given up (the broker has requeued the message).
    live: Arc<AtomicBool>,
    /// The message as received: decoded again only to publish one task on its own.
    bytes: Vec<u8>,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    unsettled: usize,
    publishing: usize,
    failed: bool,
    done: bool,
}

impl BatchAck {
    pub(super) fn new(
        shared: Arc<Shared>,
        channel: Channel,
        tag: u64,
        live: Arc<AtomicBool>,
        bytes: Vec<u8>,
        tasks: usize,
    ) -> Arc<Self> {
        let state = Mutex::new(State { unsettled: tasks, publishing: 0, failed: false, done: false });
        Arc::new(Self { shared, channel, tag, live, bytes, state })
    }

    fn settle(self: &Arc<Self>, index: usize, how: Settle) {
        if !self.live.load(Ordering::SeqCst) {
            // The channel is gone: the broker has requeued the whole message already.
            return;
        }
        let mut state = self.state.lock().expect("batch state lock");
        state.unsettled = state.unsettled.saturating_sub(1);
        if how != Settle::Ack {
            state.publishing += 1;
            let batch = self.clone();
            self.shared.handle.spawn(async move {
                let published = batch.publish_alone(index, how).await;
                let mut state = batch.state.lock().expect("batch state lock");
                state.publishing -= 1;
                state.failed |= !published;
                batch.finish_if_settled(&mut state);
            });
        }
        self.finish_if_settled(&mut state);
    }

    /// Publish task `index` as a message of its own: back to the task queue, or to the
    /// dead-letter exchange. Whether the broker confirmed it.
    async fn publish_alone(&self, index: usize, how: Settle) -> bool {
        let task = match Envelope::decode(&self.bytes) {
            Ok(Envelope::Tasks(mut tasks)) if index < tasks.len() => tasks.swap_remove(index),
            _ => return false,
        };
        let topology = &self.shared.topology;
        let (exchange, key) = match how {
            Settle::DeadLetter => (topology.dlx(), topology.tasks()),
            _ => (String::new(), topology.tasks()),
        };
        let bytes = Envelope::Task(task).encode();
        match self.shared.publish(&exchange, &key, vec![bytes], PublishKind::Durable).await {
            Ok(0) => true,
            Ok(_) => false,
            Err(e) => {
                tracing::warn!(error = %e, "could not publish one task of a batch on its own; requeueing the batch");
                false
            }
        }
    }

    fn finish_if_settled(&self, state: &mut State) {
        if state.done || state.unsettled > 0 || state.publishing > 0 {
            return;
        }
        state.done = true;
        if !self.live.load(Ordering::SeqCst) {
            return;
        }
        let (channel, tag, failed) = (self.channel.clone(), self.tag, state.failed);
        run_eagerly(&self.shared.handle, async move {
            if failed {
                channel.basic_nack(tag, BasicNackOptions { multiple: false, requeue: true }).await
            } else {
                channel.basic_ack(tag, BasicAckOptions::default()).await
            }
        });
    }
}

/// The acker of one task of a [`BatchAck`].
pub(super) struct Member {
    pub(super) batch: Arc<BatchAck>,
    pub(super) index: usize,
}

impl Acker for Member {
    fn settle(&self, how: Settle) {
        self.batch.settle(self.index, how);
    }
}
