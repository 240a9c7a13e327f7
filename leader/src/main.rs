//! `proofline-leader`: prove a block (`stdio`) or check a proof (`verify`).
//!
//! Exit codes: 0 success, 2 bad input (nothing is published, nothing written to
//! stdout), 1 any other failure (including a proof that does not verify).

mod cli;
mod progress;

use std::io::{Read, Write};
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use proofline_runtime::embedded::Embedded;
use proofline_runtime::leader::LeaderConfig;
use proofline_runtime::plugin::{PlanOptions, PluginError, PluginRegistry, ProofSystem, Verdict};
use proofline_runtime::proof_file::{ProofFile, ProofFileError};
use proofline_runtime::store::open_store;
use proofline_runtime::worker::WorkerConfig;

use cli::{Cli, Common, LogFormat, Mode, ProveArgs, RuntimeKind};

/// A failure with the exit code it deserves.
struct Failure {
    code: u8,
    message: String,
}

impl Failure {
    fn bad_input(message: impl Into<String>) -> Self {
        Self {
            code: 2,
            message: message.into(),
        }
    }
    fn other(message: impl Into<String>) -> Self {
        Self {
            code: 1,
            message: message.into(),
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logs(cli.common.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            return report(Failure::other(format!(
                "cannot start the async runtime: {e}"
            )));
        }
    };
    let outcome = runtime.block_on(async {
        match &cli.mode {
            Mode::Stdio(args) => prove_stdio(&cli.common, args).await,
            Mode::Verify { file } => verify(&cli.common, file),
        }
    });
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

/// The plugins this build knows.
fn plugins() -> PluginRegistry {
    let mut registry = PluginRegistry::new();
    registry.register(Arc::new(proofline_keccak::KeccakPlugin));
    registry.register(Arc::new(proofline_sim::SimPlugin::new()));
    registry
}

fn plugin_named(registry: &PluginRegistry, name: &str) -> Result<Arc<dyn ProofSystem>, Failure> {
    registry.get(name).ok_or_else(|| {
        Failure::bad_input(format!(
            "unknown plugin {name:?}; this build has {:?}",
            registry.names()
        ))
    })
}

async fn prove_stdio(common: &Common, args: &ProveArgs) -> Result<(), Failure> {
    let registry = plugins();
    let plugin = plugin_named(&registry, &common.plugin)?;
    let mut input = Vec::new();
    std::io::stdin()
        .read_to_end(&mut input)
        .map_err(|e| Failure::other(format!("reading stdin: {e}")))?;
    if input.iter().all(u8::is_ascii_whitespace) {
        return Err(Failure::bad_input(
            "no input on stdin: pipe a block with its execution witness in",
        ));
    }
    let opts = PlanOptions {
        segment_size: args.segment_size,
    };
    let plan = plugin.plan(&input, &opts).map_err(|e| match e {
        PluginError::BadInput(m) => Failure::bad_input(format!("bad input on stdin: {m}")),
        other => Failure::other(format!("planning failed: {other}")),
    })?;
    tracing::info!(plugin = %plugin.id(), "{}", plan.summary);

    let store = open_store(&common.store).map_err(|e| Failure::bad_input(e.to_string()))?;
    let lanes = common
        .lanes
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let leader_config = LeaderConfig {
        max_attempts: args.max_attempts.max(1),
        task_deadline: Duration::from_secs(args.task_deadline_secs.max(1)),
        keep_artifacts: args.keep_artifacts,
    };
    let cluster = match common.runtime {
        RuntimeKind::InMemory => Embedded::start(
            registry,
            store.clone(),
            WorkerConfig::new("embedded", lanes),
            leader_config,
        )
        .await
        .map_err(|e| Failure::other(e.to_string()))?,
    };
    tracing::info!(runtime = "in-memory", lanes, store = %store.describe(), "proving");

    let job = cluster
        .leader
        .submit(plugin, plan)
        .await
        .map_err(|e| Failure::other(e.to_string()))?;
    let renderer = tokio::spawn(progress::render(job.progress.clone()));
    let job_id = job.job.clone();
    let outcome = tokio::select! {
        out = async { job.wait().await } => out,
        _ = tokio::signal::ctrl_c() => {
            return Err(Failure::other(format!("interrupted; job {job_id} abandoned")));
        }
    };
    let _ = renderer.await;
    let output = outcome.map_err(|e| Failure::other(format!("job {job_id} failed: {e}")))?;
    let s = &output.stats;
    tracing::info!(job = %output.job, segments = s.segments, aggregations = s.aggregations,
        retries = s.retries, redispatches = s.redispatches, duplicates = s.duplicates,
        elapsed_s = s.elapsed.as_secs_f64(), "proved");

    let file = ProofFile {
        plugin: output.plugin.to_string(),
        body: output.proof,
    }
    .encode();
    write_proof(args.out.as_deref(), &file)
}

/// Write the whole proof or nothing: a file appears only complete (temp + rename).
fn write_proof(out: Option<&Path>, bytes: &[u8]) -> Result<(), Failure> {
    match out {
        None => {
            let mut stdout = std::io::stdout().lock();
            stdout
                .write_all(bytes)
                .and_then(|()| stdout.flush())
                .map_err(|e| Failure::other(format!("writing the proof to stdout: {e}")))
        }
        Some(path) => {
            let tmp = path.with_extension("proof.partial");
            std::fs::write(&tmp, bytes)
                .and_then(|()| std::fs::rename(&tmp, path))
                .map_err(|e| {
                    Failure::other(format!("writing the proof to {}: {e}", path.display()))
                })?;
            tracing::info!(path = %path.display(), bytes = bytes.len(), "proof written");
            Ok(())
        }
    }
}

fn verify(_common: &Common, file: &Path) -> Result<(), Failure> {
    let bytes = if file == Path::new("-") {
        let mut buf = Vec::new();
        std::io::stdin().read_to_end(&mut buf).map(|_| buf)
    } else {
        std::fs::read(file)
    }
    .map_err(|e| Failure::bad_input(format!("cannot read {}: {e}", file.display())))?;
    let proof = ProofFile::decode(&bytes).map_err(|e| match e {
        ProofFileError::Malformed(_) => Failure::bad_input(format!("{}: {e}", file.display())),
        ProofFileError::Checksum { .. } => {
            Failure::other(format!("{}: does not verify: {e}", file.display()))
        }
    })?;
    let registry = plugins();
    let name = proof.plugin.split('@').next().unwrap_or_default();
    let plugin = plugin_named(&registry, name)?;
    if plugin.id().to_string() != proof.plugin {
        return Err(Failure::bad_input(format!(
            "{}: made by {}, this build verifies {}",
            file.display(),
            proof.plugin,
            plugin.id()
        )));
    }
    match plugin.verify(&proof.body) {
        Ok(Verdict::Valid { statement }) => {
            println!("proof verifies: {statement}");
            Ok(())
        }
        Ok(Verdict::Invalid { reason }) => Err(Failure::other(format!(
            "{}: does not verify: {reason}",
            file.display()
        ))),
        Err(PluginError::BadInput(m)) => Err(Failure::bad_input(format!(
            "{}: malformed proof: {m}",
            file.display()
        ))),
        Err(e) => Err(Failure::other(format!(
            "{}: verification failed: {e}",
            file.display()
        ))),
    }
}
