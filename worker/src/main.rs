//! `proofline-worker`: joins a cluster over AMQP and runs proof plugins on its lanes.
//!
//! On SIGTERM (or Ctrl-C) it stops taking work, hands unstarted tasks back to the
//! broker, lets running tasks finish within the grace period (then requeues them),
//! and exits 0 within the grace period plus a few seconds, whatever the broker does:
//! a pod can be scaled down without losing work.
//!
//! It exits 1, saying why, when the broker stays unreachable longer than
//! `--broker-give-up-secs` or when the worker actor dies: never a half-alive process
//! that a supervisor would not restart. `/livez` turns 503 in both cases.

mod cli;
mod health;

use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use proofline_runtime::store::{StoreOptions, open_store_with};
use proofline_runtime::transport::{AmqpConfig, AmqpTransport, Transport};
use proofline_runtime::worker::{Worker, WorkerArgs, WorkerConfig};

use cli::{Cli, LogFormat};

fn main() -> ExitCode {
    proofline_runtime::malloc::return_large_buffers_to_the_os();
    let cli = Cli::parse();
    init_logs(cli.log_format);
    if let Err(e) = proofline_runtime::metrics::install() {
        tracing::warn!("metrics are not exported: {e}");
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("proofline-worker: error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let outcome = runtime.block_on(run(cli));
    // Do not wait for background work (a lane's plugin, a blocked store call): every
    // delivery not acked is requeued by the broker when the connection goes.
    runtime.shutdown_timeout(Duration::from_millis(500));
    // Nor for exec prover steps: their tasks are requeued the same way.
    proofline_plugins::kill_running_exec_steps();
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("proofline-worker: error: {e:#}");
            ExitCode::from(1)
        }
    }
}

/// Why the worker stops.
enum End {
    Signal,
    BrokerLost(String),
    ActorDied,
}

fn init_logs(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    match format {
        LogFormat::Text => builder.with_target(false).init(),
        LogFormat::Json => builder.json().init(),
    }
}

fn default_name() -> String {
    format!("{}-{}", proofline_runtime::store::hostname(), std::process::id())
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let lanes = cli.lanes.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let gpus = proofline_shaders::lane_adapters(cli.gpu).with_context(|| format!("--gpu {}", cli.gpu))?;
    let name = cli.name.clone().unwrap_or_else(default_name);
    let gpu_names = gpus.iter().map(|g| g.name().to_owned()).collect();
    if lanes == 0 && gpus.is_empty() {
        anyhow::bail!("--lanes 0 (GPU lanes only) but no GPU lane: see --gpu");
    }
    let mut config = WorkerConfig::new(name, lanes).with_gpus(gpu_names);
    config.prefetch = cli.prefetch.unwrap_or(2 * config.lanes).max(1);
    config.share = !cli.no_share;

    let exec = cli.exec_prover.as_ref().map(|program| proofline_plugins::ExecConfig {
        program: program.clone(),
        timeout: Duration::from_secs(cli.exec_timeout_secs),
    });
    let plugins = proofline_plugins::with_exec(exec.as_ref()).context("--exec-prover")?;

    let opts = StoreOptions {
        s3_endpoint: cli.s3_endpoint.clone(),
        s3_path_style: cli.s3_path_style,
        s3_region: cli.s3_region.clone(),
        cache_bytes: cli.cache_mib << 20,
    };
    let store = open_store_with(&cli.store, &opts).context("opening the artifact store")?;
    let mut amqp_config = AmqpConfig::new(&cli.amqp_uri);
    amqp_config.reconnect_give_up = Duration::from_secs(cli.broker_give_up_secs);
    amqp_config.result_linger = Duration::from_millis(cli.result_linger_ms);
    let amqp = AmqpTransport::connect(amqp_config).await.context("connecting to the broker")?;
    let broker = amqp.describe();
    let transport: Arc<dyn Transport> = Arc::new(amqp.clone());
    let names: Vec<String> =
        plugins.names().iter().filter_map(|n| plugins.get(n)).map(|p| p.id().to_string()).collect();

    let ready = Arc::new(AtomicBool::new(false));
    let liveness = Arc::new(OnceLock::new());
    let probes =
        health::Probes { live: health::worker_check(amqp.clone(), liveness.clone()), ready: ready.clone() };
    let health = health::serve(cli.health_addr, probes, health::Limits::default())
        .await
        .with_context(|| format!("binding the health endpoints on {}", cli.health_addr))?;
    let metrics = match cli.metrics_addr {
        Some(addr) => {
            let bound = health::serve_metrics(addr, health::Limits::default())
                .await
                .with_context(|| format!("binding the metrics endpoint on {addr}"))?;
            format!(", metrics on http://{bound}/metrics")
        }
        None => String::new(),
    };
    let name = config.name.clone();
    let prefetch = config.prefetch;
    let worker = Worker::start(WorkerArgs { config, transport, store: store.clone(), plugins })
        .await
        .map_err(|e| anyhow::anyhow!("starting the worker: {e}"))?;
    let _ = liveness.set(worker.liveness());
    ready.store(true, Ordering::Relaxed);
    let gpu_lanes = if gpus.is_empty() {
        format!("no GPU lanes (--gpu {})", cli.gpu)
    } else {
        let list: Vec<String> = gpus.iter().map(|g| g.describe()).collect();
        format!("{} GPU lane(s) on {}", gpus.len(), list.join(", "))
    };
    tracing::info!(
        "proofline-worker {name}: {lanes} CPU lanes, {gpu_lanes}, consuming tasks from {broker} (prefetch {prefetch}), store {}, plugins {}, health on http://{health}{metrics}",
        store.describe(),
        names.join(", ")
    );

    let alive = worker.liveness();
    let end = tokio::select! {
        () = shutdown_signal() => End::Signal,
        reason = amqp.lost() => End::BrokerLost(reason),
        () = alive.stopped() => End::ActorDied,
    };
    ready.store(false, Ordering::Relaxed);
    match end {
        End::Signal => {}
        End::BrokerLost(reason) => {
            tracing::error!("{reason}; exiting so that the supervisor restarts this worker");
            // Results cannot be sent: hand everything back (the broker requeues it anyway).
            worker.shutdown(Duration::ZERO).await;
            anyhow::bail!("{reason} (--broker-give-up-secs {})", cli.broker_give_up_secs);
        }
        End::ActorDied => {
            anyhow::bail!("the worker actor stopped unexpectedly (see the log above); exiting")
        }
    }
    let grace = Duration::from_secs(cli.shutdown_grace_secs);
    tracing::info!(
        grace_s = grace.as_secs(),
        "shutting down: no new tasks; finishing or handing back what is held"
    );
    let stats = worker.shutdown(grace).await;
    let executed: u64 = stats.lanes.iter().map(|l| l.executed).sum();
    tracing::info!(
        executed,
        results_sent = stats.results_sent,
        given_back = stats.given_back,
        "worker stopped"
    );
    Ok(())
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("installing the SIGTERM handler");
        tokio::select! {
            _ = term.recv() => {},
            _ = tokio::signal::ctrl_c() => {},
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
}
