//! A worker's task subscription: one channel with `basic.qos(prefetch)` and manual
//! acks, re-subscribed after reconnects, paused by cancelling its consumer.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures_util::{FutureExt, StreamExt};
use lapin::options::{
    BasicAckOptions, BasicCancelOptions, BasicConsumeOptions, BasicNackOptions, BasicQosOptions,
    BasicRejectOptions,
};
use lapin::types::FieldTable;
use lapin::{Channel, Consumer};
use tokio::runtime::Handle;

use super::batch_ack::{BatchAck, Member};
use super::connection::Shared;
use crate::envelope::Envelope;
use crate::task::Task;
use crate::transport::{Acker, BoxFuture, Delivery, Settle, TaskStream, TransportError};

/// How long `pause` waits for deliveries already on the wire before the cancel-ok.
const CANCEL_DRAIN: Duration = Duration::from_secs(2);

/// One channel and, unless paused, its consumer.
struct Subscription {
    channel: Channel,
    consumer: Option<Consumer>,
    /// Cleared when the channel is given up: settling its deliveries is then pointless
    /// (the broker requeued them) and would hit a closed channel.
    live: Arc<AtomicBool>,
}

impl Subscription {
    fn retire(self, handle: &Handle, reason: &'static str) {
        self.live.store(false, Ordering::SeqCst);
        drop(self.consumer);
        if self.channel.status().connected() {
            let channel = self.channel;
            // Polled once here: the close frame is queued behind every settle already
            // queued on this channel, so none of them is lost to the close.
            run_eagerly(handle, async move { channel.close(200, reason.into()).await });
        }
    }
}

/// Poll `fut` once now (lapin queues a frame on its first poll, in call order) and
/// let the runtime finish it; failures only matter for debugging.
pub(super) fn run_eagerly<F>(handle: &Handle, fut: F)
where
    F: std::future::Future<Output = Result<(), lapin::Error>> + Send + 'static,
{
    let mut fut = Box::pin(fut);
    match fut.as_mut().now_or_never() {
        Some(Ok(())) => {}
        Some(Err(e)) => tracing::debug!(error = %e, "AMQP settle/close failed"),
        None => {
            handle.spawn(async move {
                if let Err(e) = fut.await {
                    tracing::debug!(error = %e, "AMQP settle/close failed");
                }
            });
        }
    }
}

/// The [`TaskStream`] of [`AmqpTransport`](super::AmqpTransport).
pub(super) struct AmqpTaskStream {
    shared: Arc<Shared>,
    name: String,
    prefetch: u16,
    paused: bool,
    sub: Option<Subscription>,
    consumers_started: u64,
}

impl AmqpTaskStream {
    /// Subscribe now, so that a broker problem is reported by `consume` itself.
    pub(super) async fn open(
        shared: Arc<Shared>,
        name: String,
        prefetch: u16,
    ) -> Result<Self, TransportError> {
        let mut stream =
            Self { shared, name, prefetch: prefetch.max(1), paused: false, sub: None, consumers_started: 0 };
        stream.subscribe().await?;
        Ok(stream)
    }

    fn next_tag(&mut self) -> String {
        self.consumers_started += 1;
        format!("{}#{}", self.name, self.consumers_started)
    }

    async fn start_consumer(&mut self, channel: &Channel) -> Result<Consumer, lapin::Error> {
        let tag = self.next_tag();
        channel
            .basic_consume(
                self.shared.topology.tasks().into(),
                tag.into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await
    }

    /// Make sure a live channel exists and (unless paused) consumes. A new channel
    /// is built completely before it is stored, so a cancelled call leaves nothing
    /// half-made behind (the dropped channel closes and its deliveries are requeued).
    async fn subscribe(&mut self) -> Result<(), TransportError> {
        if let Some(sub) = &self.sub
            && !sub.channel.status().connected()
        {
            tracing::warn!(consumer = %self.name, "task channel lost; re-subscribing");
            if let Some(sub) = self.sub.take() {
                sub.retire(&self.shared.handle, "channel lost");
            }
        }
        let deadline = self.shared.give_up_deadline();
        let mut attempt = 0;
        loop {
            attempt += 1;
            if self.sub.is_none() {
                let channel = self.shared.channel(deadline).await?;
                let qos = channel.basic_qos(self.prefetch, BasicQosOptions { global: false }).await;
                if let Err(e) = qos {
                    self.retry_or_fail(&e, deadline, attempt).await?;
                    continue;
                }
                let consumer = if self.paused {
                    None
                } else {
                    match self.start_consumer(&channel).await {
                        Ok(consumer) => Some(consumer),
                        Err(e) => {
                            self.retry_or_fail(&e, deadline, attempt).await?;
                            continue;
                        }
                    }
                };
                self.sub = Some(Subscription { channel, consumer, live: Arc::new(AtomicBool::new(true)) });
                return Ok(());
            }
            let Some(channel) = self.sub.as_ref().map(|s| s.channel.clone()) else {
                continue;
            };
            if self.paused || self.sub.as_ref().is_some_and(|s| s.consumer.is_some()) {
                return Ok(());
            }
            match self.start_consumer(&channel).await {
                Ok(consumer) => {
                    if let Some(sub) = self.sub.as_mut() {
                        sub.consumer = Some(consumer);
                    }
                    return Ok(());
                }
                Err(e) => {
                    if let Some(sub) = self.sub.take() {
                        sub.retire(&self.shared.handle, "consume failed");
                    }
                    self.retry_or_fail(&e, deadline, attempt).await?;
                }
            }
        }
    }

    async fn retry_or_fail(
        &self,
        error: &lapin::Error,
        deadline: tokio::time::Instant,
        attempt: u32,
    ) -> Result<(), TransportError> {
        let what = format!("consuming {} on", self.shared.topology.tasks());
        if !super::connection::retryable(error) {
            return Err(self.shared.error(&what, error));
        }
        if tokio::time::Instant::now() >= deadline {
            // Like a result or control stream: a subscription never fails alone.
            let error = self.shared.error(&what, error);
            let give_up = self.shared.config.reconnect_give_up;
            return Err(self.shared.lose(format!("cannot re-subscribe within {give_up:?}: {error}")));
        }
        tracing::warn!(consumer = %self.name, attempt, error = %error, "task subscription failed; retrying");
        tokio::time::sleep(super::connection::backoff(attempt)).await;
        Ok(())
    }

    /// Validate one delivery: each task it carries becomes a [`Delivery`] (settled
    /// together through a [`BatchAck`] when there are several); anything else is
    /// dead-lettered (rejected without requeue) with a warning.
    fn accept(
        &self,
        delivery: lapin::message::Delivery,
        channel: &Channel,
        live: &Arc<AtomicBool>,
        into: &mut Vec<Delivery>,
    ) {
        let limit = self.shared.config.max_message_bytes;
        let verdict = if delivery.data.len() > limit {
            Err(format!("{} bytes, above the {limit}-byte limit", delivery.data.len()))
        } else {
            match Envelope::decode(&delivery.data) {
                Ok(Envelope::Task(task)) => Ok(vec![task]),
                Ok(Envelope::Tasks(tasks)) if !tasks.is_empty() => Ok(tasks),
                Ok(other) => Err(format!("expected a task, got {}", kind_name(&other))),
                Err(e) => Err(e.to_string()),
            }
        };
        let mut tasks: Vec<Task> = match verdict {
            Ok(tasks) => tasks,
            Err(reason) => {
                tracing::warn!(
                    queue = %self.shared.topology.tasks(),
                    delivery_tag = delivery.delivery_tag,
                    %reason,
                    "dead-lettering invalid message"
                );
                crate::metrics::worker::dead_lettered(crate::metrics::worker::DeadLetter::Undecodable);
                let (channel, tag) = (channel.clone(), delivery.delivery_tag);
                run_eagerly(&self.shared.handle, async move {
                    channel.basic_reject(tag, BasicRejectOptions { requeue: false }).await
                });
                return;
            }
        };
        let (tag, redelivered) = (delivery.delivery_tag, delivery.redelivered);
        if tasks.len() == 1 {
            let acker = AmqpAcker {
                channel: channel.clone(),
                tag,
                live: live.clone(),
                handle: self.shared.handle.clone(),
            };
            into.extend(tasks.pop().map(|task| Delivery::new(task, redelivered, Box::new(acker))));
            return;
        }
        let batch = BatchAck::new(
            self.shared.clone(),
            channel.clone(),
            tag,
            live.clone(),
            delivery.data,
            tasks.len(),
        );
        into.extend(tasks.into_iter().enumerate().map(|(index, task)| {
            Delivery::new(task, redelivered, Box::new(Member { batch: batch.clone(), index }))
        }));
    }
}

pub(super) fn kind_name(envelope: &Envelope) -> &'static str {
    match envelope {
        Envelope::Task(_) => "a task",
        Envelope::Result(_) => "a result",
        Envelope::Control(_) => "a control message",
        Envelope::Tasks(_) => "a task batch",
        Envelope::Results(_) => "a result batch",
    }
}

impl TaskStream for AmqpTaskStream {
    fn next_batch(&mut self) -> BoxFuture<'_, Result<Vec<Delivery>, TransportError>> {
        Box::pin(async move {
            loop {
                if self.paused {
                    // Like the in-memory broker: nothing arrives until `resume`.
                    std::future::pending::<()>().await;
                }
                self.subscribe().await?;
                let Some(sub) = self.sub.as_mut() else {
                    continue;
                };
                let live = sub.live.clone();
                let channel = sub.channel.clone();
                let Some(consumer) = sub.consumer.as_mut() else {
                    continue;
                };
                let first = match consumer.next().await {
                    Some(Ok(delivery)) => delivery,
                    Some(Err(e)) => {
                        tracing::warn!(consumer = %self.name, error = %e, "task consumer failed; re-subscribing");
                        if let Some(sub) = self.sub.take() {
                            sub.retire(&self.shared.handle, "consumer failed");
                        }
                        continue;
                    }
                    None => {
                        tracing::warn!(consumer = %self.name, "task consumer cancelled; re-subscribing");
                        if let Some(sub) = self.sub.take() {
                            sub.retire(&self.shared.handle, "consumer cancelled");
                        }
                        continue;
                    }
                };
                // Drain what is already buffered without waiting.
                let mut raw = vec![first];
                while raw.len() < usize::from(self.prefetch) {
                    match consumer.next().now_or_never() {
                        Some(Some(Ok(delivery))) => raw.push(delivery),
                        _ => break,
                    }
                }
                let mut batch = Vec::with_capacity(raw.len());
                for delivery in raw {
                    self.accept(delivery, &channel, &live, &mut batch);
                }
                if !batch.is_empty() {
                    return Ok(batch);
                }
            }
        })
    }

    fn pause(&mut self) -> BoxFuture<'_, Result<(), TransportError>> {
        Box::pin(async move {
            self.paused = true;
            let Some(sub) = self.sub.as_mut() else {
                return Ok(());
            };
            let Some(mut consumer) = sub.consumer.take() else {
                return Ok(());
            };
            let channel = sub.channel.clone();
            if let Err(e) = channel.basic_cancel(consumer.tag(), BasicCancelOptions::default()).await {
                // The channel is gone, and with it everything it held.
                tracing::warn!(consumer = %self.name, error = %e, "cancel failed; dropping the channel");
                if let Some(sub) = self.sub.take() {
                    sub.retire(&self.shared.handle, "cancel failed");
                }
                return Ok(());
            }
            // Deliveries sent before the cancel-ok were never handed out: give them
            // back to the broker for other consumers.
            while let Ok(Some(item)) = tokio::time::timeout(CANCEL_DRAIN, consumer.next()).await {
                if let Ok(delivery) = item {
                    let requeue = BasicNackOptions { multiple: false, requeue: true };
                    let _ = channel.basic_nack(delivery.delivery_tag, requeue).await;
                }
            }
            Ok(())
        })
    }

    fn resume(&mut self) -> BoxFuture<'_, Result<(), TransportError>> {
        Box::pin(async move {
            self.paused = false;
            self.subscribe().await
        })
    }
}

impl Drop for AmqpTaskStream {
    fn drop(&mut self) {
        // Closing the channel makes the broker requeue everything it holds unsettled.
        if let Some(sub) = self.sub.take() {
            sub.retire(&self.shared.handle, "consumer dropped");
        }
    }
}

/// Settles one delivery from any thread, on the transport's runtime.
struct AmqpAcker {
    channel: Channel,
    tag: u64,
    live: Arc<AtomicBool>,
    handle: Handle,
}

impl Acker for AmqpAcker {
    fn settle(&self, how: Settle) {
        if !self.live.load(Ordering::SeqCst) {
            // The channel is gone: the broker has requeued the message already.
            return;
        }
        let (channel, tag) = (self.channel.clone(), self.tag);
        // A failure means a dead channel: the broker requeued it; duplicates are fine.
        run_eagerly(&self.handle, async move {
            match how {
                Settle::Ack => channel.basic_ack(tag, BasicAckOptions::default()).await,
                Settle::Requeue => {
                    let requeue = BasicNackOptions { multiple: false, requeue: true };
                    channel.basic_nack(tag, requeue).await
                }
                Settle::DeadLetter => channel.basic_reject(tag, BasicRejectOptions { requeue: false }).await,
            }
        });
    }
}
