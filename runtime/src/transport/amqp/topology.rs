//! Queue and exchange names, their arguments, and their (idempotent) declaration.
//!
//! See the [module documentation](super) for the table of what exists and why.
//!
//! RabbitMQ refuses to re-declare a queue with other arguments (`PRECONDITION_FAILED`).
//! The one queue whose arguments changed between releases is `P.dead` (it gained a
//! length limit and a TTL): found with its old arguments, it is used as it is, with a
//! warning that says how to get the limits (delete it while it is empty).

use std::time::Duration;

use lapin::options::{ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions};
use lapin::protocol::{AMQPErrorKind, AMQPSoftError};
use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};
use lapin::{Channel, Connection, ErrorKind, ExchangeKind};

use crate::transport::TransportError;

/// The names of one deployment's queues and exchanges, all under one prefix.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Topology {
    prefix: String,
    delivery_limit: u32,
    result_expiry: Duration,
    dead_max_length: u32,
    dead_ttl: Duration,
}

/// Default `x-max-length` of the dead-letter queue: the oldest are dropped beyond it.
pub const DEAD_MAX_LENGTH: u32 = 100_000;
/// Default `x-message-ttl` of the dead-letter queue: 7 days.
pub const DEAD_TTL: Duration = Duration::from_secs(7 * 24 * 3600);
/// A hunger report older than this is dropped unread (the worker asks again if still idle).
pub const HUNGER_TTL: Duration = Duration::from_secs(2);
/// Hunger reports kept at most while no leader reads them (the oldest go first).
pub const HUNGER_MAX_LENGTH: i64 = 10_000;

impl Topology {
    pub(super) fn new(prefix: &str, delivery_limit: u32, result_expiry: Duration) -> Self {
        Self {
            prefix: prefix.to_owned(),
            delivery_limit,
            result_expiry,
            dead_max_length: DEAD_MAX_LENGTH,
            dead_ttl: DEAD_TTL,
        }
    }

    /// Same names with other dead-letter queue limits.
    pub(super) fn with_dead_limits(mut self, max_length: u32, ttl: Duration) -> Self {
        self.dead_max_length = max_length;
        self.dead_ttl = ttl;
        self
    }

    /// The shared task queue: `{prefix}.tasks` (quorum).
    pub fn tasks(&self) -> String {
        format!("{}.tasks", self.prefix)
    }

    /// The dead-letter exchange: `{prefix}.dlx` (fanout).
    pub fn dlx(&self) -> String {
        format!("{}.dlx", self.prefix)
    }

    /// Where dead letters end up: `{prefix}.dead`.
    pub fn dead(&self) -> String {
        format!("{}.dead", self.prefix)
    }

    /// The control broadcast exchange: `{prefix}.control` (fanout).
    pub fn control(&self) -> String {
        format!("{}.control", self.prefix)
    }

    /// The exchange of messages directed at one worker: `{prefix}.direct` (direct,
    /// routing key = the worker's name).
    pub fn direct(&self) -> String {
        format!("{}.direct", self.prefix)
    }

    /// The queue of hunger reports that leaders share: `{prefix}.hunger`.
    pub fn hunger(&self) -> String {
        format!("{}.hunger", self.prefix)
    }

    /// Arguments of the hunger queue: reports are hints, stale after [`HUNGER_TTL`],
    /// and a pool without any leader keeps at most [`HUNGER_MAX_LENGTH`] of them.
    pub fn hunger_queue_args(&self) -> FieldTable {
        let mut args = FieldTable::default();
        let ttl = i64::try_from(HUNGER_TTL.as_millis()).unwrap_or(i64::MAX);
        args.insert("x-message-ttl".into(), AMQPValue::LongLongInt(ttl));
        args.insert("x-max-length".into(), AMQPValue::LongLongInt(HUNGER_MAX_LENGTH));
        args
    }

    /// The conventional result queue of leader `leader`: `{prefix}.results.{leader}`.
    pub fn results(&self, leader: &str) -> String {
        format!("{}.results.{leader}", self.prefix)
    }

    /// Arguments of the task queue.
    pub fn task_queue_args(&self) -> FieldTable {
        let mut args = FieldTable::default();
        args.insert("x-queue-type".into(), long_string("quorum"));
        args.insert("x-delivery-limit".into(), AMQPValue::LongLongInt(i64::from(self.delivery_limit)));
        args.insert("x-dead-letter-exchange".into(), long_string(&self.dlx()));
        args
    }

    /// Arguments of the dead-letter queue: bounded in length (oldest dropped first) and age.
    pub fn dead_queue_args(&self) -> FieldTable {
        let mut args = FieldTable::default();
        args.insert("x-max-length".into(), AMQPValue::LongLongInt(i64::from(self.dead_max_length)));
        let ttl = i64::try_from(self.dead_ttl.as_millis()).unwrap_or(i64::MAX);
        args.insert("x-message-ttl".into(), AMQPValue::LongLongInt(ttl));
        args
    }

    /// Arguments of a result queue.
    pub fn result_queue_args(&self) -> FieldTable {
        let mut args = FieldTable::default();
        let expires = i64::try_from(self.result_expiry.as_millis()).unwrap_or(i64::MAX).max(1);
        args.insert("x-expires".into(), AMQPValue::LongLongInt(expires));
        args.insert("x-dead-letter-exchange".into(), long_string(&self.dlx()));
        args
    }

    /// Declare the shared topology (everything but result and subscriber queues), on
    /// channels of its own (a refused declaration closes its channel).
    pub(super) async fn declare(&self, conn: &Connection) -> Result<(), lapin::Error> {
        let durable_exchange = ExchangeDeclareOptions { durable: true, ..ExchangeDeclareOptions::default() };
        let mut channel = conn.create_channel().await?;
        channel
            .exchange_declare(
                self.dlx().into(),
                ExchangeKind::Fanout,
                durable_exchange,
                FieldTable::default(),
            )
            .await?;
        let declared = channel
            .queue_declare(self.dead().into(), QueueDeclareOptions::durable(), self.dead_queue_args())
            .await;
        if let Err(e) = declared {
            if !is_precondition_failed(&e) {
                return Err(e);
            }
            tracing::warn!(
                queue = %self.dead(),
                "the dead-letter queue exists with other arguments (declared by an older \
                 Proofline, without a length limit or TTL): using it as it is; delete it \
                 while it is empty to get the limits"
            );
            channel = conn.create_channel().await?;
            let passive = QueueDeclareOptions { passive: true, ..QueueDeclareOptions::default() };
            channel.queue_declare(self.dead().into(), passive, FieldTable::default()).await?;
        }
        channel
            .queue_bind(
                self.dead().into(),
                self.dlx().into(),
                ShortString::from(""),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await?;
        channel
            .queue_declare(self.tasks().into(), QueueDeclareOptions::durable(), self.task_queue_args())
            .await?;
        channel
            .exchange_declare(
                self.control().into(),
                ExchangeKind::Fanout,
                durable_exchange,
                FieldTable::default(),
            )
            .await?;
        channel
            .exchange_declare(
                self.direct().into(),
                ExchangeKind::Direct,
                durable_exchange,
                FieldTable::default(),
            )
            .await?;
        channel
            .queue_declare(self.hunger().into(), QueueDeclareOptions::durable(), self.hunger_queue_args())
            .await?;
        let _ = channel.close(200, "topology declared".into()).await;
        Ok(())
    }

    /// Declare result queue `queue` (durable, not exclusive, expiring when unused).
    pub(super) async fn declare_results(&self, channel: &Channel, queue: &str) -> Result<(), lapin::Error> {
        channel
            .queue_declare(queue.into(), QueueDeclareOptions::durable(), self.result_queue_args())
            .await
            .map(drop)
    }
}

/// Whether the broker refused a declaration because the entity exists with other
/// arguments (`406 PRECONDITION_FAILED`).
fn is_precondition_failed(error: &lapin::Error) -> bool {
    matches!(error.kind(), ErrorKind::ProtocolError(e)
        if matches!(e.kind(), AMQPErrorKind::Soft(AMQPSoftError::PRECONDITIONFAILED)))
}

fn long_string(s: &str) -> AMQPValue {
    AMQPValue::LongString(LongString::from(s))
}

/// Refuse names RabbitMQ would refuse, with a clear message, before any round trip.
pub(super) fn check_queue_name(queue: &str) -> Result<(), TransportError> {
    if queue.is_empty() || queue.len() > 255 {
        return Err(TransportError::Broker(format!("invalid queue name {queue:?}: must be 1 to 255 bytes")));
    }
    if queue.starts_with("amq.") {
        return Err(TransportError::Broker(format!(
            "invalid queue name {queue:?}: the amq. prefix is reserved"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_arguments() {
        let t = Topology::new("pl", 7, Duration::from_secs(60));
        assert_eq!(t.tasks(), "pl.tasks");
        assert_eq!(t.dead(), "pl.dead");
        assert_eq!(t.dlx(), "pl.dlx");
        assert_eq!(t.control(), "pl.control");
        assert_eq!(t.results("l1"), "pl.results.l1");
        assert_eq!(t.direct(), "pl.direct");
        assert_eq!(t.hunger(), "pl.hunger");
        let args = t.hunger_queue_args();
        assert_eq!(args.inner().get("x-message-ttl"), Some(&AMQPValue::LongLongInt(2000)));
        assert_eq!(args.inner().get("x-max-length"), Some(&AMQPValue::LongLongInt(10_000)));
        let args = t.task_queue_args();
        let inner = args.inner();
        assert_eq!(inner.get("x-queue-type"), Some(&long_string("quorum")));
        assert_eq!(inner.get("x-delivery-limit"), Some(&AMQPValue::LongLongInt(7)));
        let args = t.result_queue_args();
        assert_eq!(args.inner().get("x-expires"), Some(&AMQPValue::LongLongInt(60_000)));
        let args = t.dead_queue_args();
        assert_eq!(args.inner().get("x-max-length"), Some(&AMQPValue::LongLongInt(100_000)));
        assert_eq!(args.inner().get("x-message-ttl"), Some(&AMQPValue::LongLongInt(604_800_000)));
        let args = t.with_dead_limits(5, Duration::from_secs(2)).dead_queue_args();
        assert_eq!(args.inner().get("x-max-length"), Some(&AMQPValue::LongLongInt(5)));
        assert_eq!(args.inner().get("x-message-ttl"), Some(&AMQPValue::LongLongInt(2000)));
        assert!(check_queue_name("pl.results.l1").is_ok());
        assert!(check_queue_name("").is_err());
        assert!(check_queue_name("amq.foo").is_err());
        assert!(check_queue_name(&"x".repeat(256)).is_err());
    }
}
