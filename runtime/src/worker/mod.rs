//! The worker: one actor per process that owns the broker subscription and N lanes.
//!
//! A pump task pulls batches from the transport (bounded by the prefetch window) and
//! hands them to the [`WorkerActor`], which spreads them over the lanes' deques. Lanes
//! report finished tasks back to the actor, which publishes the result and only then
//! acks the delivery: a crash in between means a redelivery, never a lost task.
//!
//! Across workers, idle workers broadcast [`Control::Hungry`](crate::task::Control);
//! a worker holding prefetched but unstarted tasks then pauses its subscription and
//! hands them back to the broker, which delivers them to the hungry peer.

mod actor;
mod exec;
mod lane;

use std::sync::Arc;
use std::time::Duration;

use ractor::{ActorRef, RpcReplyPort, call};

use crate::plugin::{LaneDevice, PluginRegistry};
use crate::store::ArtifactStore;
use crate::task::Control;
use crate::transport::{Delivery, Transport};
pub use actor::WorkerActor;

/// How a worker runs.
#[derive(Clone, Debug)]
pub struct WorkerConfig {
    /// Shown in logs and results (`host-1234`); unique per worker process.
    pub name: String,
    /// Lanes in all: the CPU lanes, then one per entry of `gpus`.
    pub lanes: usize,
    /// GPU adapters, one lane each (the last `gpus.len()` lanes): names for logs.
    pub gpus: Vec<String>,
    /// Tasks held (queued on lanes or running) at most; the rest stay in the broker.
    pub prefetch: usize,
    /// Whether idle lanes take tasks queued on busy siblings.
    pub steal: bool,
    /// Whether this worker asks peers for work when idle and hands work to hungry peers.
    pub share: bool,
    /// How often running tasks are reported alive to their leader.
    pub heartbeat: Duration,
}

impl WorkerConfig {
    pub fn new(name: impl Into<String>, lanes: usize) -> Self {
        let lanes = lanes.max(1);
        Self {
            name: name.into(),
            lanes,
            gpus: Vec::new(),
            prefetch: 4 * lanes,
            steal: true,
            share: true,
            heartbeat: Duration::from_secs(2),
        }
    }

    /// Add one lane per GPU adapter (named for logs) after the CPU lanes.
    pub fn with_gpus(mut self, gpus: Vec<String>) -> Self {
        self.lanes += gpus.len();
        self.prefetch += 4 * gpus.len();
        self.gpus = gpus;
        self
    }

    /// The device lane `lane` drives.
    pub fn device_of(&self, lane: usize) -> LaneDevice {
        let cpu_lanes = self.lanes - self.gpus.len();
        if lane < cpu_lanes { LaneDevice::Cpu } else { LaneDevice::Gpu(lane - cpu_lanes) }
    }
}

/// Messages of the [`WorkerActor`].
pub enum WorkerMsg {
    /// New tasks from the broker.
    Deliveries(Vec<Delivery>),
    /// Lanes finished tasks: send their results, then ack them.
    Finished,
    /// A lane thread ended without being asked to (killed or crashed).
    LaneDied {
        lane: usize,
    },
    /// Kill a lane mid-task, as a crash would (chaos testing).
    KillLane(usize),
    /// A broadcast from the cluster.
    Control(Control),
    /// Periodic: heartbeats, hunger, resuming after a give-back.
    Tick,
    /// Stop taking work, hand back what has not started, let running tasks finish.
    Drain,
    /// Give up on running tasks too (after the drain grace period): they are requeued.
    Abandon,
    Stats(RpcReplyPort<WorkerStats>),
}

/// Per-lane counters.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LaneStats {
    pub executed: u64,
    pub stolen: u64,
    pub busy_micros: u64,
}

#[derive(Clone, Debug, Default)]
pub struct WorkerStats {
    pub lanes: Vec<LaneStats>,
    pub lane_restarts: u64,
    pub results_sent: u64,
    /// Tasks running now.
    pub running: usize,
    /// Tasks held but not started.
    pub queued: usize,
    /// Unstarted tasks handed back to the broker for hungry peers.
    pub given_back: u64,
    pub hungry_broadcasts: u64,
    pub draining: bool,
}

/// Arguments of [`WorkerActor`].
pub struct WorkerArgs {
    pub config: WorkerConfig,
    pub transport: Arc<dyn Transport>,
    pub store: Arc<dyn ArtifactStore>,
    pub plugins: PluginRegistry,
}

/// A started worker: the actor plus the shutdown sequence.
pub struct Worker {
    pub actor: ActorRef<WorkerMsg>,
}

impl Worker {
    pub async fn start(args: WorkerArgs) -> Result<Self, ractor::SpawnErr> {
        let (actor, _) = ractor::Actor::spawn(None, WorkerActor, args).await?;
        Ok(Self { actor })
    }

    pub async fn stats(&self) -> WorkerStats {
        call!(self.actor, WorkerMsg::Stats).unwrap_or_default()
    }

    /// Graceful stop: take no more work, requeue what has not started, give running
    /// tasks `grace` to finish, then requeue those too. Returns the final stats.
    pub async fn shutdown(self, grace: Duration) -> WorkerStats {
        let _ = self.actor.cast(WorkerMsg::Drain);
        let deadline = tokio::time::Instant::now() + grace;
        loop {
            let stats = self.stats().await;
            if stats.running == 0 && stats.queued == 0 {
                break;
            }
            if tokio::time::Instant::now() >= deadline {
                tracing::warn!(running = stats.running, "grace period over; requeueing running tasks");
                let _ = self.actor.cast(WorkerMsg::Abandon);
                tokio::time::sleep(Duration::from_millis(200)).await;
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let stats = self.stats().await;
        self.actor.stop(None);
        stats
    }
}
