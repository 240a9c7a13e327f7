//! The worker: one actor per process that owns the broker subscription and N lanes.
//!
//! A pump task pulls batches from the transport (bounded by the prefetch window) and
//! hands them to the [`WorkerActor`], which spreads them over the lanes' deques. Lanes
//! report finished tasks back to the actor, which publishes the result and only then
//! acks the delivery: a crash in between means a redelivery, never a lost task.

mod exec;
mod lane;

use std::sync::Arc;
use std::sync::atomic::Ordering;

use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use tokio::task::JoinHandle;

use crate::plugin::PluginRegistry;
use crate::store::ArtifactStore;
use crate::transport::{Delivery, Settle, Transport};
use lane::{LaneCtx, LaneSlot, spawn_lane};

/// How a worker runs.
#[derive(Clone, Debug)]
pub struct WorkerConfig {
    /// Shown in logs and results (`host-1234`).
    pub name: String,
    pub lanes: usize,
    /// Tasks held (queued on lanes or running) at most; the rest stay in the broker.
    pub prefetch: usize,
    /// Whether idle lanes take tasks queued on busy siblings.
    pub steal: bool,
}

impl WorkerConfig {
    pub fn new(name: impl Into<String>, lanes: usize) -> Self {
        let lanes = lanes.max(1);
        Self {
            name: name.into(),
            lanes,
            prefetch: 4 * lanes,
            steal: true,
        }
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
}

/// Arguments of [`WorkerActor`].
pub struct WorkerArgs {
    pub config: WorkerConfig,
    pub transport: Arc<dyn Transport>,
    pub store: Arc<dyn ArtifactStore>,
    pub plugins: PluginRegistry,
}

pub struct WorkerActor;

pub struct WorkerState {
    transport: Arc<dyn Transport>,
    slots: Arc<Vec<Arc<LaneSlot>>>,
    lane_ctx: LaneCtx,
    pump: JoinHandle<()>,
    next_lane: usize,
    stats: WorkerStats,
}

impl WorkerState {
    /// The lane with the shortest deque, scanning from a rotating start.
    fn pick_lane(&mut self) -> usize {
        let n = self.slots.len();
        let start = self.next_lane;
        self.next_lane = (start + 1) % n;
        (0..n)
            .map(|k| (start + k) % n)
            .min_by_key(|&i| self.slots[i].deque.len())
            .unwrap_or(0)
    }

    fn start_lane(&self, index: usize) -> Result<(), ActorProcessingErr> {
        let ctx = LaneCtx {
            index,
            ..self.lane_ctx.clone()
        };
        spawn_lane(ctx)?;
        Ok(())
    }
}

impl Actor for WorkerActor {
    type Msg = WorkerMsg;
    type State = WorkerState;
    type Arguments = WorkerArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<WorkerMsg>,
        args: WorkerArgs,
    ) -> Result<WorkerState, ActorProcessingErr> {
        let WorkerArgs {
            config,
            transport,
            store,
            plugins,
        } = args;
        let slots: Arc<Vec<_>> = Arc::new((0..config.lanes).map(|_| Arc::default()).collect());
        let mut stream = transport.consume(&config.name, config.prefetch).await?;
        let to_actor = myself.clone();
        let pump = tokio::spawn(async move {
            loop {
                match stream.next_batch().await {
                    Ok(batch) => {
                        if to_actor.cast(WorkerMsg::Deliveries(batch)).is_err() {
                            return;
                        }
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "task stream failed");
                        return;
                    }
                }
            }
        });
        let lane_ctx = LaneCtx {
            index: 0,
            slots: slots.clone(),
            steal: config.steal,
            worker_name: config.name.clone(),
            plugins,
            store,
            actor: myself,
            finished: Arc::default(),
        };
        let state = WorkerState {
            transport,
            slots,
            lane_ctx,
            pump,
            next_lane: 0,
            stats: WorkerStats::default(),
        };
        for lane in 0..config.lanes {
            state.start_lane(lane)?;
        }
        tracing::info!(worker = %config.name, lanes = config.lanes, prefetch = config.prefetch,
            steal = config.steal, transport = %state.transport.describe(), "worker started");
        Ok(state)
    }

    async fn handle(
        &self,
        _myself: ActorRef<WorkerMsg>,
        msg: WorkerMsg,
        state: &mut WorkerState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            WorkerMsg::Deliveries(batch) => {
                for delivery in batch {
                    let lane = state.pick_lane();
                    state.slots[lane].deque.push(delivery);
                }
                // Wake every lane: the owner and any idle sibling that may steal.
                state.slots.iter().for_each(|s| s.wake());
            }
            WorkerMsg::Finished => {
                for (delivery, result) in state.lane_ctx.finished.drain() {
                    match state.transport.reply(&delivery.task.reply_to, result).await {
                        Ok(()) => {
                            state.stats.results_sent += 1;
                            delivery.settle(Settle::Ack);
                        }
                        Err(e) => {
                            tracing::warn!(task = %delivery.task.id, error = %e, "could not send result; requeueing");
                            delivery.settle(Settle::Requeue);
                        }
                    }
                }
            }
            WorkerMsg::LaneDied { lane } => {
                state.stats.lane_restarts += 1;
                let slot = &state.slots[lane];
                slot.kill.store(false, Ordering::Release);
                slot.cancel.store(false, Ordering::Release);
                tracing::warn!(lane, "lane died; restarting it");
                state.start_lane(lane)?;
            }
            WorkerMsg::KillLane(lane) => {
                if let Some(slot) = state.slots.get(lane) {
                    slot.kill.store(true, Ordering::Release);
                    slot.cancel.store(true, Ordering::Release);
                }
            }
            WorkerMsg::Stats(reply) => {
                let mut stats = state.stats.clone();
                stats.lanes = state
                    .slots
                    .iter()
                    .map(|s| LaneStats {
                        executed: s.executed.load(Ordering::Relaxed),
                        stolen: s.stolen.load(Ordering::Relaxed),
                        busy_micros: s.busy_micros.load(Ordering::Relaxed),
                    })
                    .collect();
                let _ = reply.send(stats);
            }
        }
        Ok(())
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<WorkerMsg>,
        state: &mut WorkerState,
    ) -> Result<(), ActorProcessingErr> {
        state.pump.abort();
        for slot in state.slots.iter() {
            slot.stop.store(true, Ordering::Release);
            slot.cancel.store(true, Ordering::Release);
            slot.wake();
            // Queued, unstarted tasks go back to the broker (dropping requeues them).
            while !slot.deque.is_empty() {
                let _ = slot.deque.steal();
            }
        }
        Ok(())
    }
}
