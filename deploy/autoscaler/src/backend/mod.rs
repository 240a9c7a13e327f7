//! Where workers run: one trait, two backends. `kube` sizes Deployments through their
//! scale subresource and ranks pods for deletion; `local` starts and stops
//! `proofline-worker` processes on this host.

pub mod kube;
pub mod local;

use std::future::Future;

use thiserror::Error;

use crate::policy::{PoolNow, PoolSpec};
use crate::scrape::Target;

/// A pool as it is now, and its workers.
#[derive(Clone, Debug, Default)]
pub struct PoolView {
    pub now: PoolNow,
    pub workers: Vec<Worker>,
}

/// One worker (a pod, a process).
#[derive(Clone, Debug)]
pub struct Worker {
    pub name: String,
    /// Its `/metrics` (`None`: no address yet).
    pub metrics: Option<Target>,
    /// Not running and ready yet: holds no work.
    pub starting: bool,
    /// The deletion cost it carries now (kube), to skip patches that change nothing.
    pub deletion_cost: Option<i32>,
}

#[derive(Debug, Error)]
pub enum BackendError {
    #[error("Kubernetes API: {what}")]
    Kube {
        what: String,
        #[source]
        source: ::kube::Error,
    },
    #[error("Deployment {0} has no label selector in its scale subresource (status.selector)")]
    NoSelector(String),
    #[error("cannot start {worker}")]
    Spawn {
        worker: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot pick a free port for a worker's health endpoint")]
    Port(#[source] std::io::Error),
}

/// Sizes pools.
pub trait Backend: Send {
    /// The pool as it is now.
    fn observe(&mut self, pool: &PoolSpec) -> impl Future<Output = Result<PoolView, BackendError>> + Send;

    /// Set `pool` to `to` workers. When lowering, `costs[i]` is how costly it is to
    /// remove `view.workers[i]` (lowest first); the caller has already kept `to` high
    /// enough that only workers holding nothing need to go.
    fn scale(
        &mut self,
        pool: &PoolSpec,
        view: &PoolView,
        to: u32,
        costs: &[i32],
    ) -> impl Future<Output = Result<(), BackendError>> + Send;

    /// The autoscaler is stopping (the local backend drains its workers; pods stay).
    fn shutdown(&mut self) -> impl Future<Output = ()> + Send {
        async {}
    }
}
