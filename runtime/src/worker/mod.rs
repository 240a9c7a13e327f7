//! The worker: one actor per process that owns the broker subscription and N lanes.
//!
//! A pump task pulls batches from the transport (bounded by the prefetch window) and
//! hands them to the [`WorkerActor`], which spreads them over the lanes' deques. Lanes
//! report finished tasks back to the actor, which publishes the result and only then
//! acks the delivery: a crash in between means a redelivery, never a lost task. A
//! well-fed worker may hold results a few milliseconds so that more share a broker
//! message (see `linger`).
//!
//! Across workers, an idle worker reports hunger to one leader, which directs a
//! give-back at the worker holding the most unstarted tasks (see
//! [`leader::hunger`](crate::leader::hunger)); that worker pauses its subscription and
//! hands them back to the broker, which delivers them to the hungry peer.
//!
//! # Shutdown
//!
//! [`Worker::shutdown`] drains in numbered steps. Every wait has its own timeout, so it
//! returns within `grace` + [`ABANDON_WAIT`] + [`STOP_WAIT`] (plus one [`STATS_TIMEOUT`])
//! whatever the broker does, even when the actor is stuck retrying a publish during an
//! outage and answers nothing:
//!
//! 1. **Drain.** [`WorkerMsg::Drain`] is cast (never awaited): the pump stops taking
//!    deliveries, unstarted tasks go back to the broker, lanes stop after their
//!    current task.
//! 2. **Grace.** Running tasks get `grace` to finish. Progress is polled with `Stats`
//!    calls, each bounded by [`STATS_TIMEOUT`]; an unanswered poll counts as "still
//!    running", and the deadline holds all the same.
//! 3. **Abandon.** Tasks still running are cancelled ([`WorkerMsg::Abandon`]); the
//!    lanes get [`ABANDON_WAIT`] to let go of them.
//! 4. **Stop.** The actor is stopped; its `post_stop` sends the results already
//!    computed and acks them. It gets [`STOP_WAIT`].
//! 5. **Kill.** An actor still alive then (blocked in a publish that retries through a
//!    broker outage) is killed. Nothing is lost: every delivery not acked goes back to
//!    the queue when the connection closes, and its task runs again elsewhere.

mod actor;
mod exec;
mod lane;
mod linger;

use std::sync::Arc;
use std::time::Duration;

use ractor::{ActorRef, RpcReplyPort, call};
use tokio::sync::watch;

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
    /// Broker messages held (their tasks queued on lanes or running) at most; the rest
    /// stay in the broker. A message is one task or a batch of small ones.
    pub prefetch: usize,
    /// Whether idle lanes take tasks queued on busy siblings.
    pub steal: bool,
    /// Whether this worker asks peers for work when idle and hands work to hungry peers.
    pub share: bool,
    /// How often running tasks are reported alive to their leader.
    pub heartbeat: Duration,
}

impl WorkerConfig {
    /// `lanes` CPU lanes; 0 is allowed only when [`with_gpus`](Self::with_gpus) adds
    /// GPU lanes (a worker without any lane refuses to start).
    pub fn new(name: impl Into<String>, lanes: usize) -> Self {
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
    /// Lanes finished tasks: send their results (now or after a linger), then ack them.
    Finished,
    /// The results held for more to share their message are due.
    ResultsDue,
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
    /// Hunger reports sent to leaders.
    pub hunger_reports: u64,
    pub draining: bool,
}

/// Arguments of [`WorkerActor`].
pub struct WorkerArgs {
    pub config: WorkerConfig,
    pub transport: Arc<dyn Transport>,
    pub store: Arc<dyn ArtifactStore>,
    pub plugins: PluginRegistry,
}

/// Shutdown step 2: the longest wait for one `Stats` answer.
pub const STATS_TIMEOUT: Duration = Duration::from_secs(1);
/// Shutdown step 3: how long abandoned lanes get to let go of their tasks.
pub const ABANDON_WAIT: Duration = Duration::from_secs(2);
/// Shutdown step 4: how long the actor gets to send finished results and stop.
pub const STOP_WAIT: Duration = Duration::from_secs(3);

/// A started worker: the actor plus the shutdown sequence.
pub struct Worker {
    pub actor: ActorRef<WorkerMsg>,
    /// True until the actor has stopped, for whatever reason.
    alive: watch::Receiver<bool>,
}

impl Worker {
    pub async fn start(args: WorkerArgs) -> Result<Self, ractor::SpawnErr> {
        let (actor, handle) = ractor::Actor::spawn(None, WorkerActor, args).await?;
        let (alive_tx, alive) = watch::channel(true);
        tokio::spawn(async move {
            let _ = handle.await;
            alive_tx.send_replace(false);
        });
        Ok(Self { actor, alive })
    }

    /// True while the actor runs: false once it stopped or crashed. For liveness probes.
    pub fn is_alive(&self) -> bool {
        self.liveness().is_alive()
    }

    /// A handle that reports [`is_alive`](Self::is_alive) and can wait for the end.
    pub fn liveness(&self) -> Liveness {
        Liveness { actor: self.actor.get_cell(), alive: self.alive.clone() }
    }

    pub async fn stats(&self) -> WorkerStats {
        call!(self.actor, WorkerMsg::Stats).unwrap_or_default()
    }

    /// `Stats`, or `None` if the actor does not answer within [`STATS_TIMEOUT`].
    async fn stats_within(&self) -> Option<WorkerStats> {
        tokio::time::timeout(STATS_TIMEOUT, async { call!(self.actor, WorkerMsg::Stats) }).await.ok()?.ok()
    }

    /// Poll the actor's stats every 50 ms until `done` holds or `deadline` passes; the
    /// last stats seen, and whether `done` held.
    async fn poll_until(
        &self,
        deadline: tokio::time::Instant,
        done: impl Fn(&WorkerStats) -> bool,
    ) -> (Option<WorkerStats>, bool) {
        let mut last = None;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if let Ok(Some(stats)) = tokio::time::timeout(left, self.stats_within()).await {
                let finished = done(&stats);
                last = Some(stats);
                if finished {
                    return (last, true);
                }
            }
            if tokio::time::Instant::now() >= deadline {
                return (last, false);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Graceful stop in bounded time (see the [module documentation](self#shutdown)):
    /// take no more work, requeue what has not started, give running tasks `grace` to
    /// finish, then requeue those too. Returns the last stats the actor gave.
    pub async fn shutdown(self, grace: Duration) -> WorkerStats {
        // 1. Drain.
        let _ = self.actor.cast(WorkerMsg::Drain);
        // 2. Grace.
        let deadline = tokio::time::Instant::now() + grace;
        let (mut last, idle) = self.poll_until(deadline, |s| s.running == 0 && s.queued == 0).await;
        if !idle {
            // 3. Abandon.
            let running = last.as_ref().map(|s| s.running);
            tracing::warn!(?running, "grace period over; requeueing running tasks");
            let _ = self.actor.cast(WorkerMsg::Abandon);
            let until = tokio::time::Instant::now() + ABANDON_WAIT;
            last = self.poll_until(until, |s| s.running == 0).await.0.or(last);
        }
        let stats = match self.stats_within().await {
            Some(stats) => stats,
            None => last.unwrap_or_default(),
        };
        // 4. Stop.
        self.actor.stop(None);
        let mut alive = self.alive.clone();
        let stopped = tokio::time::timeout(STOP_WAIT, alive.wait_for(|a| !*a)).await.is_ok();
        if !stopped {
            // 5. Kill.
            tracing::warn!(
                wait_s = STOP_WAIT.as_secs(),
                "the worker actor did not stop in time (broker unreachable?); killing it: \
                 unsent results are recomputed elsewhere"
            );
            self.actor.kill();
            let _ = tokio::time::timeout(Duration::from_millis(500), alive.wait_for(|a| !*a)).await;
        }
        stats
    }
}

/// Whether a [`Worker`]'s actor still runs; cheap to clone and to ask.
#[derive(Clone)]
pub struct Liveness {
    actor: ractor::ActorCell,
    alive: watch::Receiver<bool>,
}

impl Liveness {
    /// True while the actor runs.
    pub fn is_alive(&self) -> bool {
        *self.alive.borrow() && ractor::ACTIVE_STATES.contains(&self.actor.get_status())
    }

    /// Resolves once the actor has stopped (or crashed).
    pub async fn stopped(&self) {
        let mut alive = self.alive.clone();
        let _ = alive.wait_for(|a| !*a).await;
    }
}
