//! Background consumers that feed an mpsc: a leader's result queue and a control
//! subscription. Both re-subscribe after reconnects and stop when their receiver
//! is dropped, or when the transport is lost (the broker stayed unreachable past the
//! give-up time, see `connection.rs`): the receiver then sees a closed channel.

use std::sync::Arc;

use futures_util::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicNackOptions, BasicQosOptions, BasicRejectOptions,
    QueueBindOptions, QueueDeclareOptions,
};
use lapin::types::FieldTable;
use lapin::{Channel, Consumer};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::connection::{Shared, backoff};
use super::stream::kind_name;
use crate::envelope::Envelope;
use crate::task::{Control, TaskResult};
use crate::transport::{ControlStream, ResultStream, TransportError};

/// Unacked results a leader may have in flight from the broker.
const RESULT_PREFETCH: u16 = 1000;

/// Declare and consume result queue `queue`; results flow into the returned stream
/// until it is dropped.
pub(super) async fn open_results(shared: Arc<Shared>, queue: String) -> Result<ResultStream, TransportError> {
    let (tx, rx) = mpsc::unbounded_channel();
    let first = results_consumer(&shared, &queue, shared.give_up_deadline()).await?;
    let handle = shared.handle.clone();
    handle.spawn(async move {
        let mut current = Some(first);
        loop {
            let (channel, consumer) = match current.take() {
                Some(pair) => pair,
                None => match resubscribe(&shared, &tx, |d| results_consumer(&shared, &queue, d)).await {
                    Some(pair) => pair,
                    None => return,
                },
            };
            if pump_results(&shared, &queue, &channel, consumer, &tx).await {
                let _ = channel.close(200, "result stream dropped".into()).await;
                return;
            }
            tracing::warn!(%queue, "result consumer lost; re-subscribing");
        }
    });
    Ok(rx)
}

async fn results_consumer(
    shared: &Shared,
    queue: &str,
    deadline: Instant,
) -> Result<(Channel, Consumer), TransportError> {
    let channel = shared.channel(deadline).await?;
    let setup = async {
        shared.topology.declare_results(&channel, queue).await?;
        channel.basic_qos(RESULT_PREFETCH, BasicQosOptions { global: false }).await?;
        channel
            .basic_consume(queue.into(), "".into(), BasicConsumeOptions::default(), FieldTable::default())
            .await
    };
    match setup.await {
        Ok(consumer) => Ok((channel, consumer)),
        Err(e) => Err(shared.error(&format!("result queue {queue} on"), &e)),
    }
}

/// Forward results until the consumer ends (`false`) or the receiver is gone (`true`).
async fn pump_results(
    shared: &Shared,
    queue: &str,
    channel: &Channel,
    mut consumer: Consumer,
    tx: &mpsc::UnboundedSender<TaskResult>,
) -> bool {
    let limit = shared.config.max_message_bytes;
    loop {
        let item = tokio::select! {
            _ = tx.closed() => return true,
            item = consumer.next() => item,
        };
        let delivery = match item {
            Some(Ok(delivery)) => delivery,
            Some(Err(e)) => {
                tracing::debug!(%queue, error = %e, "result consumer error");
                return false;
            }
            None => return false,
        };
        let verdict = if delivery.data.len() > limit {
            Err(format!("{} bytes, above the {limit}-byte limit", delivery.data.len()))
        } else {
            match Envelope::decode(&delivery.data) {
                Ok(Envelope::Result(result)) => Ok(vec![result]),
                Ok(Envelope::Results(results)) => Ok(results),
                Ok(other) => Err(format!("expected a result, got {}", kind_name(&other))),
                Err(e) => Err(e.to_string()),
            }
        };
        match verdict {
            Ok(results) => {
                {
                    let mut times = shared.exec_times.lock().expect("exec times lock");
                    for r in results.iter().filter(|r| !matches!(r.outcome, crate::task::Outcome::Running)) {
                        times.record(&r.job, &r.task, r.exec_micros);
                    }
                }
                if results.into_iter().any(|result| tx.send(result).is_err()) {
                    // Nobody listens any more: leave it in the queue for a successor.
                    let requeue = BasicNackOptions { multiple: false, requeue: true };
                    let _ = channel.basic_nack(delivery.delivery_tag, requeue).await;
                    return true;
                }
                // Acked only once it is in the leader's hands (the mpsc).
                let _ = channel.basic_ack(delivery.delivery_tag, BasicAckOptions::default()).await;
            }
            Err(reason) => {
                tracing::warn!(%queue, %reason, "dead-lettering invalid result message");
                let reject = BasicRejectOptions { requeue: false };
                let _ = channel.basic_reject(delivery.delivery_tag, reject).await;
            }
        }
    }
}

/// Retry `subscribe` with backoff until it works, the receiver is dropped, or the
/// transport is closed or lost. A stream never ends alone: if it cannot be restored
/// within the give-up time (the broker is up but keeps refusing), the whole transport
/// is declared lost. Either way the receiver then sees a closed channel.
async fn resubscribe<T, P, F, Fut>(shared: &Shared, tx: &mpsc::UnboundedSender<T>, subscribe: F) -> Option<P>
where
    F: Fn(Instant) -> Fut,
    Fut: std::future::Future<Output = Result<P, TransportError>>,
{
    let deadline = shared.give_up_deadline();
    let mut attempt = 0;
    loop {
        if tx.is_closed() || shared.is_closed().await {
            return None;
        }
        if let Some(reason) = shared.lost_reason() {
            tracing::error!("subscription ended: {reason}");
            return None;
        }
        match subscribe(deadline).await {
            Ok(pair) => return Some(pair),
            Err(TransportError::Closed) => return None,
            Err(e) => {
                attempt += 1;
                let delay = backoff(attempt);
                if shared.lost_reason().is_some() {
                    continue;
                }
                if Instant::now() + delay > deadline {
                    let reason = format!(
                        "cannot re-subscribe within {:?} (the reconnect give-up time): {e}",
                        shared.config.reconnect_give_up
                    );
                    tracing::error!("subscription ended: {}", shared.lose(reason));
                    return None;
                }
                tracing::warn!(attempt, error = %e, "re-subscription failed; retrying");
                tokio::time::sleep(delay).await;
            }
        }
    }
}

/// Where a control stream reads from.
#[derive(Clone)]
enum ControlSource {
    /// A fresh exclusive queue bound to the broadcast exchange, and to the direct
    /// exchange under the worker's name.
    Worker(String),
    /// The shared hunger queue (leaders compete for its reports).
    Hunger,
}

/// Forward broadcasts, and the messages directed at `worker`.
pub(super) async fn subscribe_control(
    shared: Arc<Shared>,
    worker: String,
) -> Result<ControlStream, TransportError> {
    subscribe_controls(shared, ControlSource::Worker(worker)).await
}

/// Forward hunger reports (a leader's share of them).
pub(super) async fn subscribe_hunger(shared: Arc<Shared>) -> Result<ControlStream, TransportError> {
    subscribe_controls(shared, ControlSource::Hunger).await
}

async fn subscribe_controls(
    shared: Arc<Shared>,
    source: ControlSource,
) -> Result<ControlStream, TransportError> {
    let (tx, rx) = mpsc::unbounded_channel();
    let first = control_consumer(&shared, &source, shared.give_up_deadline()).await?;
    let handle = shared.handle.clone();
    handle.spawn(async move {
        let mut current = Some(first);
        loop {
            let (channel, consumer) = match current.take() {
                Some(pair) => pair,
                None => match resubscribe(&shared, &tx, |d| control_consumer(&shared, &source, d)).await {
                    Some(pair) => pair,
                    None => return,
                },
            };
            if pump_controls(&shared, consumer, &tx).await {
                // Closing the channel deletes an exclusive auto-delete queue.
                let _ = channel.close(200, "control stream dropped".into()).await;
                return;
            }
            tracing::warn!("control consumer lost; re-subscribing");
        }
    });
    Ok(rx)
}

async fn control_consumer(
    shared: &Shared,
    source: &ControlSource,
    deadline: Instant,
) -> Result<(Channel, Consumer), TransportError> {
    let channel = shared.channel(deadline).await?;
    let topology = &shared.topology;
    let setup = async {
        let queue = match source {
            ControlSource::Worker(worker) => {
                let options = QueueDeclareOptions {
                    exclusive: true,
                    auto_delete: true,
                    ..QueueDeclareOptions::default()
                };
                let queue = channel.queue_declare("".into(), options, FieldTable::default()).await?;
                let name = queue.name().clone();
                for (exchange, key) in [(topology.control(), ""), (topology.direct(), worker.as_str())] {
                    let (exchange, key) = (exchange.as_str().into(), key.into());
                    let options = QueueBindOptions::default();
                    channel.queue_bind(name.clone(), exchange, key, options, FieldTable::default()).await?;
                }
                name
            }
            ControlSource::Hunger => topology.hunger().into(),
        };
        // Controls are hints: auto-ack is fine for them.
        let options = BasicConsumeOptions { no_ack: true, ..BasicConsumeOptions::default() };
        channel.basic_consume(queue, "".into(), options, FieldTable::default()).await
    };
    match setup.await {
        Ok(consumer) => Ok((channel, consumer)),
        Err(e) => {
            let what = match source {
                ControlSource::Worker(_) => format!("subscribing to {} on", topology.control()),
                ControlSource::Hunger => format!("consuming {} on", topology.hunger()),
            };
            Err(shared.error(&what, &e))
        }
    }
}

/// Forward controls until the consumer ends (`false`) or the receiver is gone (`true`).
async fn pump_controls(shared: &Shared, mut consumer: Consumer, tx: &mpsc::UnboundedSender<Control>) -> bool {
    let limit = shared.config.max_message_bytes;
    loop {
        let item = tokio::select! {
            _ = tx.closed() => return true,
            item = consumer.next() => item,
        };
        let delivery = match item {
            Some(Ok(delivery)) => delivery,
            Some(Err(e)) => {
                tracing::debug!(error = %e, "control consumer error");
                return false;
            }
            None => return false,
        };
        let control = if delivery.data.len() > limit {
            Err(format!("{} bytes, above the limit", delivery.data.len()))
        } else {
            match Envelope::decode(&delivery.data) {
                Ok(Envelope::Control(control)) => Ok(control),
                Ok(other) => Err(format!("expected a control, got {}", kind_name(&other))),
                Err(e) => Err(e.to_string()),
            }
        };
        match control {
            Ok(control) => {
                if tx.send(control).is_err() {
                    return true;
                }
            }
            Err(reason) => tracing::warn!(%reason, "dropping invalid control message"),
        }
    }
}
