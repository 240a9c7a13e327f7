//! `proofline-autoscaler`: see the crate docs and `--help`.

use std::process::ExitCode;
use std::sync::{Arc, Mutex};

use anyhow::Context;
use clap::Parser;
use proofline_autoscaler::backend::Backend;
use proofline_autoscaler::backend::kube::KubeBackend;
use proofline_autoscaler::backend::local::{LocalBackend, LocalConfig};
use proofline_autoscaler::cli::{BackendKind, Cli, Command, LogFormat};
use proofline_autoscaler::controller::Controller;
use proofline_autoscaler::metrics::{self, Meters};
use proofline_autoscaler::policy::{Policy, PoolSpec};
use proofline_autoscaler::scrape::Target;
use proofline_autoscaler::sim;

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logs(cli.log_format);
    if let Some(Command::Simulate(args)) = &cli.command {
        return match sim::run(args) {
            Ok(report) => {
                print!("{report}");
                ExitCode::SUCCESS
            }
            Err(e) => usage(&e),
        };
    }
    let pools = match cli.pools() {
        Ok(p) => p,
        Err(e) => return usage(&e),
    };
    if cli.leader_metrics.is_empty() {
        return usage(
            "--leader-metrics: at least one leader's /metrics URL is needed (http://HOST:PORT/metrics)",
        );
    }
    let leaders = match cli.leader_metrics.iter().map(|u| Target::parse(u)).collect::<Result<Vec<_>, _>>() {
        Ok(t) => t,
        Err(e) => return usage(&format!("--leader-metrics: {e}")),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build();
    let outcome =
        runtime.context("starting the async runtime").and_then(|rt| rt.block_on(run(cli, pools, leaders)));
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            ExitCode::FAILURE
        }
    }
}

fn usage(message: &str) -> ExitCode {
    eprintln!("error: {message}");
    ExitCode::from(2)
}

async fn run(cli: Cli, pools: Vec<PoolSpec>, leaders: Vec<Target>) -> anyhow::Result<()> {
    let policy = Policy::new(pools, cli.tuning());
    let meters = Arc::new(Mutex::new(Meters::default()));
    let bound = metrics::serve(cli.listen, meters.clone(), cli.interval_secs)
        .await
        .with_context(|| format!("listening on {} (--listen)", cli.listen))?;
    tracing::info!(listen = %bound, backend = ?cli.backend, dry_run = cli.dry_run,
        pools = ?policy.pools().iter().map(|p| &p.name).collect::<Vec<_>>(), "autoscaler started");
    match cli.backend {
        BackendKind::Kube => {
            let client = kube::Client::try_default().await.context("connecting to the Kubernetes API")?;
            let namespace = cli.namespace.clone().unwrap_or_else(|| client.default_namespace().to_owned());
            let backend = KubeBackend::new(client, &namespace, cli.worker_metrics_port);
            drive(cli, policy, backend, leaders, meters).await
        }
        BackendKind::Local => {
            let worker_bin = cli.worker_bin.clone().unwrap_or_else(default_worker_bin);
            let backend = LocalBackend::new(LocalConfig { worker_bin, args: cli.worker_args.clone() });
            drive(cli, policy, backend, leaders, meters).await
        }
    }
}

async fn drive<B: Backend>(
    cli: Cli,
    policy: Policy,
    backend: B,
    leaders: Vec<Target>,
    meters: Arc<Mutex<Meters>>,
) -> anyhow::Result<()> {
    let controller = Controller::new(policy, backend, leaders, cli.dry_run, meters);
    controller.run(cli.interval_secs, stop_signal()).await;
    Ok(())
}

/// SIGTERM or Ctrl-C.
async fn stop_signal() {
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

fn default_worker_bin() -> std::path::PathBuf {
    let sibling = std::env::current_exe().ok().and_then(|exe| Some(exe.parent()?.join("proofline-worker")));
    sibling.filter(|p| p.exists()).unwrap_or_else(|| "proofline-worker".into())
}

fn init_logs(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.with_target(false).init(),
        LogFormat::Json => builder.json().init(),
    }
}
