//! `proofline-leader`: prove a block (`stdio`), many blocks (`batch`), run the proving
//! service (`serve`), check a proof (`verify`) or clean the store (`gc`).
//!
//! Exit codes: 0 success, 2 bad input (nothing is published, nothing written to
//! stdout), 1 any other failure (including a proof that does not verify).

mod batch;
mod cli;
mod gc;
mod progress;
mod prove;
mod serve;
mod timeline;
mod verify;

use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use proofline_runtime::plugin::{PluginRegistry, ProofSystem};

use cli::{Cli, LogFormat, Mode};

/// A failure with the exit code it deserves.
pub struct Failure {
    code: u8,
    message: String,
}

impl Failure {
    pub fn bad_input(message: impl Into<String>) -> Self {
        Self { code: 2, message: message.into() }
    }
    pub fn other(message: impl Into<String>) -> Self {
        Self { code: 1, message: message.into() }
    }
}

fn main() -> ExitCode {
    proofline_runtime::malloc::return_large_buffers_to_the_os();
    let cli = Cli::parse();
    init_logs(cli.common.log_format);
    if let Err(e) = proofline_runtime::metrics::install() {
        tracing::warn!("metrics are not exported: {e}");
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => return report(Failure::other(format!("cannot start the async runtime: {e}"))),
    };
    let outcome = runtime.block_on(async {
        if let Some(addr) = cli.common.metrics_addr.filter(|_| cli.mode.runs_jobs()) {
            let app = proofline_http::metrics_router()
                .fallback(|| async { (axum::http::StatusCode::NOT_FOUND, "try /metrics\n") });
            let limits = proofline_http::Limits { max_connections: 32, ..proofline_http::Limits::PROBES };
            let bound = proofline_http::spawn(addr, app, limits, "metrics endpoint")
                .await
                .map_err(|e| Failure::other(format!("binding the metrics endpoint on {addr}: {e}")))?;
            // Every leader series, at zero until the first job moves it.
            proofline_runtime::metrics::leader::register();
            tracing::info!("metrics on http://{bound}/metrics");
        }
        match &cli.mode {
            Mode::Stdio(args) => prove::prove_stdio(&cli.common, args).await,
            Mode::Batch(args) => batch::run(&cli.common, args).await,
            Mode::Serve(args) => serve::run(&cli.common, args).await,
            Mode::Verify { file, max_proof_mib } => verify::verify(&cli.common, file, *max_proof_mib),
            Mode::Gc { older_than, dry_run } => gc::gc(&cli.common, *older_than, *dry_run),
        }
    });
    // Exec prover steps still running on other lanes (a job failed, or was stopped)
    // must not outlive the leader.
    proofline_plugins::kill_running_exec_steps();
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => report(failure),
    }
}

fn report(failure: Failure) -> ExitCode {
    eprintln!("proofline-leader: error: {}", failure.message);
    ExitCode::from(failure.code)
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

pub fn plugin_named(registry: &PluginRegistry, name: &str) -> Result<Arc<dyn ProofSystem>, Failure> {
    registry.get(name).ok_or_else(|| {
        if name == proofline_plugins::ExecPlugin::NAME {
            return Failure::bad_input("--plugin exec needs the prover binary: --exec-prover PATH");
        }
        Failure::bad_input(format!("unknown plugin {name:?}; this build has {:?}", registry.names()))
    })
}

/// The plugins of this build, with `exec` when `--exec-prover` names a usable binary.
pub fn plugins(common: &cli::Common) -> Result<PluginRegistry, Failure> {
    proofline_plugins::with_exec(common.exec.config().as_ref()).map_err(|e| {
        let cause = std::error::Error::source(&e).map(|c| format!(": {c}")).unwrap_or_default();
        Failure::bad_input(format!("--exec-prover: {e}{cause}"))
    })
}
