//! The worker actor: dispatch to lanes, results and acks, cluster control, shutdown.

use std::sync::atomic::Ordering;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use ractor::{Actor, ActorProcessingErr, ActorRef};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::lane::{CancelledRuns, Finished, LaneCtx, LaneSlot, spawn_lane};
use super::linger::hold_results;
use super::{LaneStats, WorkerArgs, WorkerConfig, WorkerMsg, WorkerStats};
use crate::leader::hunger::HungerBackoff;
use crate::metrics::worker::{self as metrics, DeadLetter};
use crate::plugin::LaneDevice;
use crate::task::{Control, Outcome, TaskResult};
use crate::transport::{Settle, TaskStream, Transport};

/// How often the actor looks at heartbeats and hunger.
const TICK: Duration = Duration::from_millis(50);

pub struct WorkerActor;

pub struct WorkerState {
    config: WorkerConfig,
    transport: Arc<dyn Transport>,
    slots: Arc<Vec<Arc<LaneSlot>>>,
    lane_ctx: LaneCtx,
    pump: JoinHandle<()>,
    control: JoinHandle<()>,
    /// Whether the pump takes deliveries.
    accepting: watch::Sender<bool>,
    /// Paused after handing work to a hungry peer; resumes when a lane idles.
    paused_for_peer: bool,
    draining: bool,
    next_lane: usize,
    last_delivery: Instant,
    /// When to tell a leader this worker is hungry.
    hunger: HungerBackoff,
    last_heartbeat: Instant,
    stats: WorkerStats,
    /// How long results may wait for more to share their message (the transport's).
    result_linger: Duration,
    /// A [`WorkerMsg::ResultsDue`] is on its way.
    results_due: bool,
}

impl WorkerState {
    /// The lane with the shortest deque, scanning from a rotating start.
    fn pick_lane(&mut self) -> usize {
        let n = self.slots.len();
        let start = self.next_lane;
        self.next_lane = (start + 1) % n;
        (0..n).map(|k| (start + k) % n).min_by_key(|&i| self.slots[i].deque.len()).unwrap_or(0)
    }

    fn start_lane(&self, index: usize) -> Result<(), ActorProcessingErr> {
        spawn_lane(LaneCtx { index, device: self.config.device_of(index), ..self.lane_ctx.clone() })?;
        Ok(())
    }

    fn queued(&self) -> usize {
        self.lane_ctx.queued()
    }

    fn idle_lanes(&self) -> usize {
        self.slots.iter().filter(|s| s.is_idle()).count()
    }

    /// Take every unstarted task off the lanes and give it back to the broker.
    fn requeue_unstarted(&mut self) -> u64 {
        self.requeue_up_to(u64::MAX)
    }

    /// Give up to `limit` unstarted tasks back to the broker, from the longest deques.
    fn requeue_up_to(&mut self, limit: u64) -> u64 {
        let mut n = 0;
        while n < limit {
            let Some(slot) = self.slots.iter().filter(|s| !s.deque.is_empty()).max_by_key(|s| s.deque.len())
            else {
                break;
            };
            match slot.deque.steal() {
                crossbeam_deque::Steal::Success(d) => {
                    d.settle(Settle::Requeue);
                    n += 1;
                }
                crossbeam_deque::Steal::Retry => continue,
                crossbeam_deque::Steal::Empty => {}
            }
        }
        n
    }

    /// Send the finished results now, or arrange to be told when they are due
    /// (`worker::linger`).
    async fn send_results_when_due(&mut self, myself: &ActorRef<WorkerMsg>) {
        let (waiting, waited) = self.lane_ctx.finished.waiting();
        match hold_results(waiting, waited, self.queued(), self.slots.len(), self.result_linger) {
            None => self.send_results().await,
            Some(wait) if !self.results_due => {
                self.results_due = true;
                myself.send_after(wait, || WorkerMsg::ResultsDue);
            }
            Some(_) => {} // a ResultsDue is on its way
        }
    }

    async fn send_results(&mut self) {
        let finished = self.lane_ctx.finished.drain();
        if finished.is_empty() {
            return;
        }
        let mut replies = Vec::with_capacity(finished.len());
        let mut deliveries = Vec::with_capacity(finished.len());
        let held = u32::try_from(self.queued()).unwrap_or(u32::MAX);
        for (delivery, mut result) in finished {
            result.held = held;
            let task = &delivery.task;
            // The last allowed attempt failed: the leader gives up; the broker keeps a copy.
            let spent = match &result.outcome {
                Outcome::Failed { retryable, .. } => !retryable || task.attempt >= task.max_attempts,
                _ => false,
            };
            if spent {
                metrics::dead_lettered(DeadLetter::Failed);
            }
            replies.push((task.reply_to.clone(), result));
            deliveries.push((delivery, spent));
        }
        match self.transport.reply_many(replies).await {
            Ok(()) => {
                self.stats.results_sent += deliveries.len() as u64;
                for (delivery, spent) in deliveries {
                    delivery.settle(if spent { Settle::DeadLetter } else { Settle::Ack });
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, tasks = deliveries.len(), "could not send results; requeueing");
                deliveries.into_iter().for_each(|(d, _)| d.settle(Settle::Requeue));
            }
        }
    }

    async fn tick(&mut self) {
        let running = self.slots.len() - self.idle_lanes();
        metrics::set_tasks_held(self.queued() + running + self.lane_ctx.finished.len());
        if self.last_heartbeat.elapsed() >= self.config.heartbeat {
            self.last_heartbeat = Instant::now();
            let held = u32::try_from(self.queued()).unwrap_or(u32::MAX);
            let beats: Vec<_> = self
                .slots
                .iter()
                .filter_map(|s| s.current())
                .map(|running| {
                    let task = &running.task;
                    // How long it has run: the leader tells a hung attempt from a live worker.
                    let ran = running.since.elapsed().as_micros().min(u64::MAX as u128) as u64;
                    let mut beat = TaskResult::of(task, Outcome::Running, self.config.name.clone(), ran);
                    beat.held = held;
                    (task.reply_to.clone(), beat)
                })
                .collect();
            if !beats.is_empty()
                && let Err(e) = self.transport.reply_many(beats).await
            {
                tracing::debug!(error = %e, "heartbeats not sent");
            }
        }
        let idle = self.idle_lanes();
        if self.paused_for_peer && idle > 0 && !self.draining {
            self.paused_for_peer = false;
            self.accepting.send_replace(true);
        }
        let hungry = self.config.share
            && !self.draining
            && !self.paused_for_peer
            && idle > 0
            && self.queued() == 0
            && self.hunger.due(self.last_delivery, Instant::now());
        if hungry {
            self.stats.hunger_reports += 1;
            let msg = Control::Hungry {
                worker: self.config.name.clone(),
                idle_lanes: u32::try_from(idle).unwrap_or(u32::MAX),
                lanes: u32::try_from(self.slots.len()).unwrap_or(u32::MAX),
            };
            if let Err(e) = self.transport.report_hunger(msg).await {
                tracing::debug!(error = %e, "hunger report not sent");
            }
        }
    }

    fn on_control(&mut self, control: Control) {
        match control {
            Control::CancelJob { job, run } => {
                // Remember first, so a lane that takes a queued task of it now skips it.
                self.lane_ctx.cancelled.write().expect("cancelled runs lock").insert(job.clone(), run);
                for slot in self.slots.iter() {
                    slot.cancel_if(|t| t.job == job && t.run == run);
                }
            }
            Control::AbandonTask { job, run, task, attempt } => {
                for slot in self.slots.iter() {
                    if slot
                        .cancel_if(|t| t.job == job && t.run == run && t.id == task && t.attempt == attempt)
                    {
                        tracing::warn!(%job, %task, attempt, "abandoning an attempt that ran past its timeout");
                    }
                }
            }
            Control::GiveBack { tasks } => {
                if !self.config.share || self.queued() == 0 {
                    return;
                }
                // Paused until a lane idles, so the broker hands them to the hungry peer.
                self.accepting.send_replace(false);
                self.paused_for_peer = true;
                let n = self.requeue_up_to(u64::from(tasks));
                self.stats.given_back += n;
                tracing::debug!(asked = tasks, tasks = n, "handed unstarted tasks back for a hungry peer");
            }
            // Reports for leaders, never sent to workers.
            Control::Hungry { .. } => {}
        }
    }
}

/// Feed deliveries to the actor while `accepting`; pause the subscription otherwise.
async fn pump(
    mut stream: Box<dyn TaskStream>,
    actor: ActorRef<WorkerMsg>,
    mut accepting: watch::Receiver<bool>,
) {
    loop {
        if !*accepting.borrow_and_update() {
            if let Err(e) = stream.pause().await {
                tracing::warn!(error = %e, "could not pause the task stream");
            }
            if accepting.wait_for(|a| *a).await.is_err() {
                return;
            }
            if let Err(e) = stream.resume().await {
                tracing::warn!(error = %e, "could not resume the task stream");
            }
            continue;
        }
        tokio::select! {
            batch = stream.next_batch() => match batch {
                Ok(batch) => {
                    if actor.cast(WorkerMsg::Deliveries(batch)).is_err() {
                        return;
                    }
                }
                Err(e) => {
                    tracing::error!(error = %e, "task stream failed; retrying in 1 s");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            },
            changed = accepting.changed() => if changed.is_err() { return },
        }
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
        let WorkerArgs { config, transport, store, plugins } = args;
        if config.lanes == 0 {
            return Err("a worker needs at least one lane (CPU or GPU)".into());
        }
        let slots: Arc<Vec<_>> = Arc::new((0..config.lanes).map(|_| Arc::default()).collect());
        let stream = transport.consume(&config.name, config.prefetch).await?;
        let (accepting, accepting_rx) = watch::channel(true);
        let pump = tokio::spawn(pump(stream, myself.clone(), accepting_rx));
        let mut controls = transport.subscribe_control(&config.name).await?;
        let to_actor = myself.clone();
        let control = tokio::spawn(async move {
            while let Some(c) = controls.recv().await {
                if to_actor.cast(WorkerMsg::Control(c)).is_err() {
                    return;
                }
            }
        });
        let lane_ctx = LaneCtx {
            index: 0,
            device: LaneDevice::Cpu,
            slots: slots.clone(),
            steal: config.steal,
            worker_name: config.name.clone(),
            plugins,
            store,
            actor: myself.clone(),
            finished: Arc::new(Finished::default()),
            cancelled: Arc::new(RwLock::new(CancelledRuns::default())),
        };
        let now = Instant::now();
        let result_linger = transport.result_linger();
        let state = WorkerState {
            config,
            transport,
            slots,
            lane_ctx,
            pump,
            control,
            accepting,
            paused_for_peer: false,
            draining: false,
            next_lane: 0,
            last_delivery: now,
            hunger: HungerBackoff::new(),
            last_heartbeat: now,
            stats: WorkerStats::default(),
            result_linger,
            results_due: false,
        };
        for lane in 0..state.config.lanes {
            state.start_lane(lane)?;
        }
        let gpu_lanes = state.config.gpus.len();
        metrics::set_lanes(state.config.lanes - gpu_lanes, gpu_lanes);
        myself.send_interval(TICK, || WorkerMsg::Tick);
        tracing::info!(worker = %state.config.name, lanes = state.config.lanes, gpu_lanes = ?state.config.gpus, prefetch = state.config.prefetch,
            steal = state.config.steal, transport = %state.transport.describe(), "worker started");
        Ok(state)
    }

    async fn handle(
        &self,
        myself: ActorRef<WorkerMsg>,
        msg: WorkerMsg,
        state: &mut WorkerState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            WorkerMsg::Deliveries(batch) => {
                state.last_delivery = Instant::now();
                state.hunger.fed(state.last_delivery);
                if state.draining {
                    batch.into_iter().for_each(|d| d.settle(Settle::Requeue));
                    return Ok(());
                }
                for delivery in batch {
                    let lane = state.pick_lane();
                    state.slots[lane].deque.push(delivery);
                }
                // Wake every lane: the owner and any idle sibling that may steal.
                state.slots.iter().for_each(|s| s.wake());
            }
            WorkerMsg::Finished => state.send_results_when_due(&myself).await,
            WorkerMsg::ResultsDue => {
                state.results_due = false;
                state.send_results_when_due(&myself).await;
            }
            WorkerMsg::LaneDied { lane } => {
                state.stats.lane_restarts += 1;
                let slot = &state.slots[lane];
                slot.kill.store(false, Ordering::Release);
                *slot.current.lock().expect("lane current lock") = None;
                tracing::warn!(lane, "lane died; restarting it");
                state.start_lane(lane)?;
            }
            WorkerMsg::KillLane(lane) => {
                if let Some(slot) = state.slots.get(lane) {
                    slot.kill.store(true, Ordering::Release);
                    slot.cancel_if(|_| true);
                }
            }
            WorkerMsg::Control(control) => state.on_control(control),
            WorkerMsg::Tick => state.tick().await,
            WorkerMsg::Drain => {
                state.draining = true;
                state.accepting.send_replace(false);
                let n = state.requeue_unstarted();
                for slot in state.slots.iter() {
                    slot.stop.store(true, Ordering::Release);
                    slot.wake();
                }
                tracing::info!(requeued = n, running = state.slots.len() - state.idle_lanes(), "draining");
            }
            WorkerMsg::Abandon => {
                for slot in state.slots.iter() {
                    slot.stop.store(true, Ordering::Release);
                    slot.cancel_if(|_| true);
                    slot.wake();
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
                stats.running = state.slots.len() - state.idle_lanes();
                stats.queued = state.queued();
                stats.draining = state.draining;
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
        state.control.abort();
        state.requeue_unstarted();
        for slot in state.slots.iter() {
            slot.stop.store(true, Ordering::Release);
            slot.cancel_if(|_| true);
            slot.wake();
        }
        // Results already computed still go out; their deliveries are acked.
        state.send_results().await;
        Ok(())
    }
}
