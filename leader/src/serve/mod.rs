//! `serve` mode: a long-running proving service with an HTTP API (docs/SERVICE.md).
//!
//! Start-up, in order:
//!
//! 1. refuse an open API beyond loopback ([`auth::check_exposure`], exit 2) and an
//!    unknown plugin (exit 2);
//! 2. bind `--listen` (exit 1 if taken), open the store, take the store's service
//!    lease ([`exclusive`]: one service per store, exit 1 if another one runs) and
//!    start the cluster (an embedded worker, or the broker with `--runtime amqp`);
//! 3. restore the jobs recorded in the store ([`runner::restore`]): unfinished ones
//!    are queued again (a job that was running resumes from its journal), finished
//!    ones are served as they are;
//! 4. start the scheduler and the retention sweep, and serve the API; the log line
//!    `listening on http://ADDR` says it is up.
//!
//! On SIGTERM or Ctrl-C it stops accepting connections, starts no more jobs, and
//! interrupts running ones: they stay `running` in the store and resume from their
//! journals when the service starts again on the same store (nothing proven is lost,
//! nothing accepted is dropped). It exits 0 once their runs ended, or after
//! [`STOP_GRACE`].

mod api;
mod auth;
mod exclusive;
mod openapi;
mod queue;
mod registry;
mod runner;
mod service;
mod state;
mod views;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use clap::Args;

use crate::Failure;
use crate::cli::{Common, DEFAULT_MAX_INPUT_MIB, JobArgs, SharePolicyArg, parse_age, parse_mib};

/// How long running jobs get to stop when the service stops.
pub const STOP_GRACE: Duration = Duration::from_secs(10);

/// The API listener's bounds: 512 connections (one more is closed at once), 10 s to
/// send a request head, keep-alive, no limit on a connection's life (uploads of up to
/// `--max-input-mib` are bounded by the API itself).
const API_LIMITS: proofline_http::Limits = proofline_http::Limits {
    max_connections: 512,
    header_timeout: Duration::from_secs(10),
    connection_timeout: None,
    keep_alive: true,
    max_head_bytes: 64 * 1024,
};

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Address of the HTTP API (port 0: any free port, logged at start).
    #[arg(long, env = "PROOFLINE_LISTEN", default_value = "127.0.0.1:8000")]
    pub listen: SocketAddr,
    /// Bearer token the API requires (`Authorization: Bearer TOKEN`); prefer the
    /// environment variable (a command line is visible to other users). Without one,
    /// the service listens on loopback addresses only.
    #[arg(long, env = "PROOFLINE_API_TOKEN", hide_env_values = true, value_parser = parse_token)]
    pub api_token: Option<auth::Token>,
    /// Largest request body (a block with its witness), in MiB: a larger one is
    /// refused with 413 before it is read whole.
    #[arg(long, env = "PROOFLINE_MAX_INPUT_MIB", default_value_t = DEFAULT_MAX_INPUT_MIB, value_parser = parse_mib)]
    pub max_input_mib: u64,
    /// Jobs proven at once; the others wait in the queue.
    #[arg(long, env = "PROOFLINE_MAX_JOBS", default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub max_jobs: u32,
    /// Jobs waiting at most: a submission beyond is refused with 429 and Retry-After.
    #[arg(long, env = "PROOFLINE_MAX_QUEUED", default_value_t = 256, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub max_queued: u32,
    /// How long finished jobs (proven, failed, cancelled) and their proofs are kept
    /// after they finish, e.g. `90s`, `30m`, `24h`, `7d`; `0` keeps them until deleted.
    #[arg(long, env = "PROOFLINE_RETENTION", default_value = "7d", value_parser = parse_age)]
    pub retention: Duration,
    #[command(flatten)]
    pub job: JobArgs,
}

fn parse_token(text: &str) -> Result<auth::Token, String> {
    auth::Token::new(text.to_owned())
}

pub async fn run(common: &Common, args: &ServeArgs) -> Result<(), Failure> {
    auth::check_exposure(args.listen, args.api_token.is_some()).map_err(Failure::bad_input)?;
    let plugins = crate::plugins(common)?;
    let plugin = crate::plugin_named(&plugins, &common.plugin)?;
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|e| Failure::other(format!("cannot listen on {}: {e}", args.listen)))?;
    let bound = listener.local_addr().map_err(|e| Failure::other(format!("listening: {e}")))?;
    let store = crate::prove::open(common)?;
    let lease = exclusive::acquire(store.clone(), Duration::from_secs(args.job.lease_secs))
        .await
        .map_err(Failure::other)?;
    let cluster = crate::prove::start_cluster(
        common,
        &plugins,
        store.clone(),
        args.job.leader_config(&common.scheduling),
    )
    .await?;
    let limits = service::Limits {
        max_jobs: args.max_jobs as usize,
        max_queued: args.max_queued as usize,
        retention: args.retention,
    };
    let svc = Arc::new(service::Service::new(
        store,
        cluster,
        plugins,
        plugin,
        args.job.plan_options(),
        limits,
        common.scheduling.share_policy == SharePolicyArg::Fair,
        common.scheduling.client_weights.iter().cloned().collect(),
    ));
    // Every leader series from the start (zero until jobs move them), on /metrics.
    proofline_runtime::metrics::leader::register();
    runner::restore(&svc)
        .await
        .map_err(|e| Failure::other(format!("restoring the jobs in the store: {e}")))?;
    svc.ready.store(true, Ordering::SeqCst);
    tokio::spawn(runner::schedule(svc.clone()));
    tokio::spawn(runner::sweep(svc.clone()));
    let api = Arc::new(api::Api {
        service: svc.clone(),
        token: args.api_token.clone(),
        max_input_bytes: crate::cli::mib_to_bytes(args.max_input_mib).unwrap_or(u64::MAX),
        uploads: tokio::sync::Semaphore::new(api::CONCURRENT_UPLOADS),
    });
    tracing::info!(
        auth = if args.api_token.is_some() { "bearer token" } else { "none (loopback only)" },
        max_jobs = args.max_jobs,
        max_queued = args.max_queued,
        retention_s = args.retention.as_secs(),
        "listening on http://{bound}"
    );
    let mut keeper = tokio::spawn(exclusive::keep(lease.clone()));
    let lost = proofline_http::serve(listener, api::router(api), API_LIMITS, "API", async {
        tokio::select! {
            () = stop_signal() => None,
            why = &mut keeper => Some(why.unwrap_or_else(|e| format!("the service lease refresher: {e}"))),
        }
    })
    .await;
    if let Some(why) = &lost {
        tracing::error!("stopping: {why}");
    }
    runner::stop(&svc, STOP_GRACE).await;
    keeper.abort();
    match lost {
        Some(why) => Err(Failure::other(why)),
        None => {
            exclusive::release(lease).await;
            tracing::info!("stopped");
            Ok(())
        }
    }
}

/// SIGTERM (Kubernetes, systemd) or Ctrl-C.
async fn stop_signal() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::warn!("cannot watch SIGTERM: {e}");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        () = terminate => tracing::info!("SIGTERM: stopping"),
        _ = tokio::signal::ctrl_c() => tracing::info!("Ctrl-C: stopping"),
    }
}
