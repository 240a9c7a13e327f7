//! The `local` backend: `proofline-worker` processes on this host, one pool.
//!
//! 1. Up: start workers with the configured arguments, each with a health address of
//!    its own (`--health-addr 127.0.0.1:PORT`, which also serves `/metrics`).
//! 2. Observe: reap workers that exited; a worker is `starting` until its `/readyz`
//!    answers 200 once.
//! 3. Down: SIGTERM the cheapest workers (the caller only asks for as many as hold
//!    nothing); a stopping worker hands back unstarted work, finishes running work
//!    within its grace, and is reaped when it exits. It no longer counts as a replica.
//! 4. Shutdown: SIGTERM every worker and wait for all to exit. Should the autoscaler
//!    die instead, its workers get SIGTERM from the kernel (`PR_SET_PDEATHSIG`).

use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use tokio::process::{Child, Command};

use super::{Backend, BackendError, PoolView, Worker};
use crate::policy::{PoolNow, PoolSpec};
use crate::scrape::{self, Target};

/// How to start a worker.
#[derive(Clone, Debug)]
pub struct LocalConfig {
    pub worker_bin: PathBuf,
    /// Arguments for every worker (broker, store, lanes...).
    pub args: Vec<String>,
}

struct Process {
    name: String,
    child: Child,
    health: SocketAddr,
    ready: bool,
    stopping: bool,
}

pub struct LocalBackend {
    config: LocalConfig,
    processes: Vec<Process>,
    started: u64,
}

impl LocalBackend {
    pub fn new(config: LocalConfig) -> Self {
        Self { config, processes: Vec::new(), started: 0 }
    }

    /// Workers started so far (for tests and logs).
    pub fn started(&self) -> u64 {
        self.started
    }

    fn start_one(&mut self) -> Result<(), BackendError> {
        let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .and_then(|l| l.local_addr())
            .map_err(BackendError::Port)?;
        self.started += 1;
        let name = format!("autoscaled-{}-{}", std::process::id(), self.started);
        let mut command = Command::new(&self.config.worker_bin);
        command
            .args(&self.config.args)
            .args(["--health-addr", &port.to_string(), "--name", &name])
            .stdin(Stdio::null())
            .stdout(Stdio::null());
        // If the autoscaler dies, its workers get SIGTERM: they hand unstarted work back
        // and finish what runs, instead of running on with nobody to stop them.
        // SAFETY: prctl(2) is async-signal-safe; nothing else runs between fork and exec.
        unsafe {
            command.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) == -1 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = command.spawn().map_err(|source| BackendError::Spawn { worker: name.clone(), source })?;
        tracing::info!(worker = %name, pid = child.id(), health = %port, "started a worker");
        self.processes.push(Process { name, child, health: port, ready: false, stopping: false });
        Ok(())
    }

    fn running(&self) -> impl Iterator<Item = &Process> {
        self.processes.iter().filter(|p| !p.stopping)
    }
}

fn terminate(p: &mut Process) {
    if let Some(pid) = p.child.id() {
        // SAFETY: kill(2) on a child we spawned and have not reaped yet.
        unsafe { libc::kill(pid as libc::pid_t, libc::SIGTERM) };
    }
    p.stopping = true;
}

impl Backend for LocalBackend {
    async fn observe(&mut self, _pool: &PoolSpec) -> Result<PoolView, BackendError> {
        self.processes.retain_mut(|p| match p.child.try_wait() {
            Ok(None) => true,
            Ok(Some(status)) => {
                let expected = p.stopping;
                tracing::info!(worker = %p.name, %status, expected, "a worker exited");
                false
            }
            Err(e) => {
                tracing::warn!(worker = %p.name, error = %e, "cannot poll a worker");
                true
            }
        });
        for p in self.processes.iter_mut().filter(|p| !p.ready && !p.stopping) {
            let readyz = Target::parse(&format!("http://{}/readyz", p.health)).expect("a well-formed URL");
            p.ready = scrape::get(&readyz, Duration::from_secs(2)).await.is_ok();
        }
        let workers = self
            .running()
            .map(|p| Worker {
                name: p.name.clone(),
                metrics: Target::parse(&format!("http://{}/metrics", p.health)).ok(),
                starting: !p.ready,
                deletion_cost: None,
            })
            .collect::<Vec<_>>();
        let now = PoolNow { replicas: workers.len() as u32, ..PoolNow::default() };
        Ok(PoolView { now, workers })
    }

    async fn scale(
        &mut self,
        _pool: &PoolSpec,
        view: &PoolView,
        to: u32,
        costs: &[i32],
    ) -> Result<(), BackendError> {
        let current = view.workers.len() as u32;
        for _ in current..to {
            self.start_one()?;
        }
        if to < current {
            let mut order: Vec<usize> = (0..view.workers.len()).collect();
            order.sort_by_key(|&i| costs.get(i).copied().unwrap_or(i32::MAX));
            for i in order.into_iter().take((current - to) as usize) {
                let name = &view.workers[i].name;
                if let Some(p) = self.processes.iter_mut().find(|p| &p.name == name && !p.stopping) {
                    tracing::info!(worker = %name, cost = costs.get(i), "stopping a worker (SIGTERM)");
                    terminate(p);
                }
            }
        }
        Ok(())
    }

    async fn shutdown(&mut self) {
        for p in self.processes.iter_mut().filter(|p| !p.stopping) {
            terminate(p);
        }
        for p in &mut self.processes {
            match p.child.wait().await {
                Ok(status) => tracing::info!(worker = %p.name, %status, "worker stopped"),
                Err(e) => tracing::warn!(worker = %p.name, error = %e, "cannot wait for a worker"),
            }
        }
        self.processes.clear();
    }
}
