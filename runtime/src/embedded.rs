//! A whole cluster in one process: the in-memory broker, one worker, one leader.
//! This is what `proofline-leader stdio` runs by default.

use std::sync::Arc;

use ractor::{Actor, ActorRef, call};

use crate::leader::{JobError, Leader, LeaderConfig};
use crate::plugin::PluginRegistry;
use crate::store::ArtifactStore;
use crate::transport::{MemBroker, Transport};
use crate::worker::{WorkerActor, WorkerArgs, WorkerConfig, WorkerMsg, WorkerStats};

/// An embedded cluster.
///
/// ```
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// use std::sync::Arc;
/// use proofline_runtime::{embedded::Embedded, plugin::*, store::MemStore, worker::WorkerConfig};
/// # struct Echo;
/// # impl ProofSystem for Echo {
/// #   fn id(&self) -> PluginId { PluginId::new("echo", "1") }
/// #   fn plan(&self, i: &[u8], _: &PlanOptions) -> Result<Plan, PluginError> {
/// #     Ok(Plan { segments: i.iter().map(|b| SegmentSpec { payload: vec![*b], cost: 1 }).collect(), meta: vec![], summary: String::new(), name: "echo".into() }) }
/// #   fn prove_segment(&self, _: &mut ExecCx, s: &[u8]) -> Result<Vec<u8>, PluginError> { Ok(s.to_vec()) }
/// #   fn aggregate(&self, _: &mut ExecCx, l: &[u8], r: &[u8]) -> Result<Vec<u8>, PluginError> { Ok([l, r].concat()) }
/// #   fn wrap(&self, _: &mut ExecCx, root: &[u8], _: &JobMeta) -> Result<Vec<u8>, PluginError> { Ok(root.to_vec()) }
/// #   fn verify(&self, _: &[u8]) -> Result<Verdict, PluginError> { unreachable!() }
/// # }
/// let plugin: Arc<dyn ProofSystem> = Arc::new(Echo);
/// let mut plugins = PluginRegistry::new();
/// plugins.register(plugin.clone());
/// let cluster = Embedded::start(plugins, Arc::new(MemStore::default()),
///     WorkerConfig::new("local", 2), Default::default()).await.unwrap();
/// let plan = plugin.plan(b"fold me", &PlanOptions::default()).unwrap();
/// let out = cluster.leader.prove(plugin, plan).await.unwrap();
/// assert_eq!(out.proof, b"fold me");
/// # });
/// ```
pub struct Embedded {
    pub broker: MemBroker,
    pub leader: Leader,
    pub worker: ActorRef<WorkerMsg>,
}

impl Embedded {
    pub async fn start(
        plugins: PluginRegistry,
        store: Arc<dyn ArtifactStore>,
        worker: WorkerConfig,
        leader: LeaderConfig,
    ) -> Result<Self, JobError> {
        let broker = MemBroker::default();
        let transport: Arc<dyn Transport> = Arc::new(broker.clone());
        let args = WorkerArgs { config: worker, transport: transport.clone(), store: store.clone(), plugins };
        let (worker, _) = Actor::spawn(None, WorkerActor, args)
            .await
            .map_err(|e| JobError::Internal(format!("could not start the worker: {e}")))?;
        let leader = Leader::start(transport, store, leader).await?;
        Ok(Self { broker, leader, worker })
    }

    pub async fn worker_stats(&self) -> WorkerStats {
        call!(self.worker, WorkerMsg::Stats).unwrap_or_default()
    }

    /// Kill a lane mid-task, as a crash would; the worker restarts it.
    pub fn kill_lane(&self, lane: usize) {
        let _ = self.worker.cast(WorkerMsg::KillLane(lane));
    }
}

impl Drop for Embedded {
    fn drop(&mut self) {
        self.worker.stop(None);
    }
}
