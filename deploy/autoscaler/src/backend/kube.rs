//! The `kube` backend: one worker Deployment per pool, in one namespace.
//!
//! The only API calls it makes (the Role in `deploy/kubernetes` grants exactly these):
//! 1. `GET apps/v1 deployments/{name}/scale`: replicas asked for, and the pods' label
//!    selector (`status.selector`), so no `get` on Deployments is needed.
//! 2. `LIST pods?labelSelector=...`: the pool's pods, their IPs (for `/metrics`),
//!    which are pending unschedulable and since when.
//! 3. Before lowering replicas only: `PATCH pods/{name}` (merge) setting
//!    `controller.kubernetes.io/pod-deletion-cost` where it changes, so the
//!    ReplicaSet removes the idle pods.
//! 4. `PATCH apps/v1 deployments/{name}/scale` (merge `spec.replicas`) when the
//!    replicas change.

use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, ListParams, Patch, PatchParams};
use serde_json::json;

use super::{Backend, BackendError, PoolView, Worker};
use crate::policy::{PoolNow, PoolSpec};
use crate::scrape::Target;

pub const DELETION_COST: &str = "controller.kubernetes.io/pod-deletion-cost";
/// Field manager named in patches.
const MANAGER: &str = "proofline-autoscaler";

pub struct KubeBackend {
    deployments: Api<Deployment>,
    pods: Api<Pod>,
    metrics_port: u16,
}

impl KubeBackend {
    pub fn new(client: kube::Client, namespace: &str, metrics_port: u16) -> Self {
        Self {
            deployments: Api::namespaced(client.clone(), namespace),
            pods: Api::namespaced(client, namespace),
            metrics_port,
        }
    }
}

fn patch_params() -> PatchParams {
    PatchParams { field_manager: Some(MANAGER.to_owned()), ..PatchParams::default() }
}

fn kube_error(what: String) -> impl FnOnce(kube::Error) -> BackendError {
    move |source| BackendError::Kube { what, source }
}

/// Whether the scheduler has said it cannot place the pod, and since when.
fn unschedulable_since(pod: &Pod, now: Timestamp) -> Option<Duration> {
    let status = pod.status.as_ref()?;
    if status.phase.as_deref() != Some("Pending") {
        return None;
    }
    let condition = status.conditions.as_ref()?.iter().find(|c| {
        c.type_ == "PodScheduled" && c.status == "False" && c.reason.as_deref() == Some("Unschedulable")
    })?;
    let since = condition
        .last_transition_time
        .as_ref()
        .or(pod.metadata.creation_timestamp.as_ref())
        .map(|t| t.0)
        .unwrap_or(now);
    Some(Duration::try_from(now.duration_since(since)).unwrap_or_default())
}

fn is_ready(pod: &Pod) -> bool {
    let Some(status) = &pod.status else { return false };
    status.phase.as_deref() == Some("Running")
        && status.conditions.iter().flatten().any(|c| c.type_ == "Ready" && c.status == "True")
}

impl Backend for KubeBackend {
    async fn observe(&mut self, pool: &PoolSpec) -> Result<PoolView, BackendError> {
        let name = &pool.target;
        let scale = self
            .deployments
            .get_scale(name)
            .await
            .map_err(kube_error(format!("reading the scale of {name}")))?;
        let replicas = scale.spec.and_then(|s| s.replicas).unwrap_or(0).max(0) as u32;
        let selector = scale
            .status
            .and_then(|s| s.selector)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| BackendError::NoSelector(name.clone()))?;
        let pods = self
            .pods
            .list(&ListParams::default().labels(&selector))
            .await
            .map_err(kube_error(format!("listing the pods of {name} ({selector})")))?;
        let now = Timestamp::now();
        let mut view = PoolView { now: PoolNow { replicas, ..PoolNow::default() }, workers: Vec::new() };
        for pod in pods.items.iter().filter(|p| p.metadata.deletion_timestamp.is_none()) {
            if let Some(waited) = unschedulable_since(pod, now) {
                view.now.pending_unschedulable += 1;
                view.now.oldest_pending = view.now.oldest_pending.max(Some(waited));
            }
            let ip = pod.status.as_ref().and_then(|s| s.pod_ip.as_deref());
            view.workers.push(Worker {
                name: pod.metadata.name.clone().unwrap_or_default(),
                metrics: ip
                    .and_then(|ip| Target::parse(&format!("http://{ip}:{}/metrics", self.metrics_port)).ok()),
                starting: !is_ready(pod),
                deletion_cost: pod
                    .metadata
                    .annotations
                    .as_ref()
                    .and_then(|a| a.get(DELETION_COST))
                    .and_then(|v| v.parse().ok()),
            });
        }
        Ok(view)
    }

    async fn scale(
        &mut self,
        pool: &PoolSpec,
        view: &PoolView,
        to: u32,
        costs: &[i32],
    ) -> Result<(), BackendError> {
        if to < view.now.replicas {
            for (worker, &cost) in view.workers.iter().zip(costs) {
                if worker.deletion_cost == Some(cost) {
                    continue;
                }
                let patch = json!({ "metadata": { "annotations": { DELETION_COST: cost.to_string() } } });
                self.pods
                    .patch(&worker.name, &patch_params(), &Patch::Merge(&patch))
                    .await
                    .map_err(kube_error(format!("ranking pod {} for deletion", worker.name)))?;
            }
        }
        if to != view.now.replicas {
            let patch = json!({ "spec": { "replicas": to } });
            self.deployments
                .patch_scale(&pool.target, &patch_params(), &Patch::Merge(&patch))
                .await
                .map_err(kube_error(format!("scaling {} to {to}", pool.target)))?;
        }
        Ok(())
    }
}
