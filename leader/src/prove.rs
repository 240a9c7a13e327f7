//! `stdio` mode: a block on stdin, its proof on stdout; and what `batch` and `serve`
//! share with it (starting the cluster, opening the store, planning an input, writing
//! a proof durably).

use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use proofline_runtime::embedded::Embedded;
use proofline_runtime::leader::{JobError, JobHandle, JobOptions, JobOutput, Leader, LeaderConfig};
use proofline_runtime::plugin::{Plan, PlanOptions, PluginError, PluginRegistry, ProofSystem};
use proofline_runtime::proof_file::ProofFile;
use proofline_runtime::store::{ArtifactStore, StoreError};
use proofline_runtime::transport::{AmqpConfig, AmqpTransport, Transport};
use proofline_runtime::worker::WorkerConfig;

use crate::Failure;
use crate::cli::{Common, ProveArgs, RuntimeKind};
use crate::progress;

/// Keeps whatever runs the tasks alive for as long as the job runs.
pub enum Cluster {
    Embedded(Embedded),
    Remote(Leader),
}

impl Cluster {
    pub fn leader(&self) -> &Leader {
        match self {
            Self::Embedded(e) => &e.leader,
            Self::Remote(l) => l,
        }
    }
}

/// Start the embedded worker (running `plugins`) and a leader, or a leader on the
/// broker (`--runtime`).
pub async fn start_cluster(
    common: &Common,
    plugins: &PluginRegistry,
    store: Arc<dyn ArtifactStore>,
    config: LeaderConfig,
) -> Result<Cluster, Failure> {
    match common.runtime {
        RuntimeKind::InMemory => {
            let cpu_lanes =
                common.lanes.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
            let gpus = proofline_shaders::lane_adapters(common.gpu)
                .map_err(|e| Failure::other(format!("--gpu {}: {e}", common.gpu)))?;
            for gpu in gpus {
                tracing::info!("GPU lane on {}", gpu.describe());
            }
            let gpu_names = gpus.iter().map(|g| g.name().to_owned()).collect();
            if cpu_lanes == 0 && gpus.is_empty() {
                return Err(Failure::bad_input(format!(
                    "--lanes 0 (GPU lanes only) but --gpu {} gives no GPU lane",
                    common.gpu
                )));
            }
            let worker = WorkerConfig::new("embedded", cpu_lanes).with_gpus(gpu_names);
            let embedded = Embedded::start(plugins.clone(), store, worker, config)
                .await
                .map_err(|e| Failure::other(chain(&e)))?;
            tracing::info!(
                runtime = "in-memory",
                cpu_lanes,
                gpu_lanes = gpus.len(),
                "proving with an embedded worker"
            );
            Ok(Cluster::Embedded(embedded))
        }
        RuntimeKind::Amqp => {
            let mut amqp = AmqpConfig::new(&common.amqp_uri);
            amqp.reconnect_give_up = Duration::from_secs(common.broker_give_up_secs);
            let transport = AmqpTransport::connect(amqp)
                .await
                .map_err(|e| Failure::other(format!("cannot reach the broker: {e}")))?;
            tracing::info!(runtime = "amqp", broker = %transport.describe(), "proving on the cluster's workers");
            let transport: Arc<dyn Transport> = Arc::new(transport);
            let leader =
                Leader::start(transport, store, config).await.map_err(|e| Failure::other(chain(&e)))?;
            Ok(Cluster::Remote(leader))
        }
    }
}

pub async fn prove_stdio(common: &Common, args: &ProveArgs) -> Result<(), Failure> {
    let registry = crate::plugins(common)?;
    let config = args.job.leader_config(&common.scheduling);
    let options = JobOptions { timeline: args.timeline.is_some(), ..JobOptions::default() };
    let job = match &args.resume {
        Some(job_id) => {
            let store = open(common)?;
            let cluster = start_cluster(common, &registry, store, config).await?;
            let job = cluster
                .leader()
                .resume_with(job_id, &registry, options)
                .await
                .map_err(|e| resume_failure(&e))?;
            (cluster, job)
        }
        None => {
            let plan = read_and_plan(common, args, &registry)?;
            let store = open(common)?;
            let cluster = start_cluster(common, &registry, store, config).await?;
            let plugin = crate::plugin_named(&registry, &common.plugin)?;
            let job = cluster
                .leader()
                .submit_with(plugin, plan, options)
                .await
                .map_err(|e| Failure::other(chain(&e)))?;
            (cluster, job)
        }
    };
    let (cluster, job) = job;
    tracing::info!(job = %job.job, "job started (after a crash: --resume {})", job.job);
    run_job(cluster.leader(), job, args).await
}

use proofline_runtime::error_chain as chain;

/// A resume that cannot start: a wrong job id or plugin is bad input.
pub fn resume_failure(e: &JobError) -> Failure {
    match e {
        JobError::Resume { .. } | JobError::MissingPlugin { .. } => Failure::bad_input(chain(e)),
        other => Failure::other(chain(other)),
    }
}

/// Open `--store`; a malformed spec is bad input.
pub fn open(common: &Common) -> Result<Arc<dyn ArtifactStore>, Failure> {
    let store = common.s3.open(&common.store).map_err(|e| match e {
        StoreError::InvalidSpec { .. } => Failure::bad_input(e.to_string()),
        other => Failure::other(format!("artifact store: {other}")),
    })?;
    tracing::info!(store = %store.describe(), "artifacts");
    Ok(store)
}

/// Read the block on stdin and plan it; bad input is rejected before anything starts.
fn read_and_plan(common: &Common, args: &ProveArgs, registry: &PluginRegistry) -> Result<Plan, Failure> {
    let plugin = crate::plugin_named(registry, &common.plugin)?;
    // Bounded read: an over-limit input is bad input before it is all in memory.
    let limit = crate::cli::mib_to_bytes(args.max_input_mib).unwrap_or(u64::MAX);
    let read = crate::verify::read_limited(std::io::stdin().lock(), limit)
        .map_err(|e| Failure::other(format!("reading stdin: {e}")))?;
    let crate::verify::Limited::Within(input) = read else {
        return Err(Failure::bad_input(format!(
            "the input on stdin is larger than {} MiB, the most a block with its witness may be \
             (raise it with --max-input-mib)",
            args.max_input_mib
        )));
    };
    if input.iter().all(u8::is_ascii_whitespace) {
        return Err(Failure::bad_input("no input on stdin: pipe a block with its execution witness in"));
    }
    let input = match &args.header {
        Some(path) => with_header(&input, path, limit)?,
        None => input,
    };
    plan_input(plugin.as_ref(), &input, "on stdin", &args.job.plan_options())
}

/// The zero_bin witness `input` with its header from `path`, as one job input; a batch
/// of several blocks is refused (one job proves one block).
fn with_header(input: &[u8], path: &std::path::Path, limit: u64) -> Result<Vec<u8>, Failure> {
    let cannot = |e: std::io::Error| Failure::bad_input(format!("--header {}: {e}", path.display()));
    let file = std::fs::File::open(path).map_err(cannot)?;
    let crate::verify::Limited::Within(header) = crate::verify::read_limited(file, limit).map_err(cannot)?
    else {
        return Err(Failure::bad_input(format!("--header {}: larger than the input limit", path.display())));
    };
    let jobs = proofline_plugins::zero_bin_jobs(input, &header).map_err(|e| match e {
        proofline_plugins::HeaderError::Header(e) => {
            Failure::bad_input(format!("--header {}: {e}", path.display()))
        }
        other => Failure::bad_input(format!("bad input on stdin: {other}")),
    })?;
    match <[Vec<u8>; 1]>::try_from(jobs) {
        Ok([job]) => Ok(job),
        Err(jobs) => Err(Failure::bad_input(format!(
            "bad input on stdin: a zero_bin batch of {} blocks; `stdio` proves one block: give one \
             block at a time (the blocks of a batch are independent jobs)",
            jobs.len()
        ))),
    }
}

/// Plan `input` (read from `source`, e.g. `on stdin`, `in blocks/1.json`); planning
/// validates it, so nothing is published for bad input (exit 2, the plugin's message).
pub fn plan_input(
    plugin: &dyn ProofSystem,
    input: &[u8],
    source: &str,
    opts: &PlanOptions,
) -> Result<Plan, Failure> {
    let plan = plugin.plan(input, opts).map_err(|e| match e {
        PluginError::BadInput(m) => Failure::bad_input(format!("bad input {source}: {m}")),
        other => Failure::other(format!("planning failed: {other}")),
    })?;
    tracing::info!(plugin = %plugin.id(), "{}", plan.summary);
    Ok(plan)
}

/// The proof file for a finished job (`proofline-leader verify` reads it).
pub fn proof_file(output: &JobOutput) -> Vec<u8> {
    ProofFile { plugin: output.plugin.to_string(), body: output.proof.clone() }.encode()
}

/// Log what a finished job did.
pub fn log_stats(output: &JobOutput) {
    let s = &output.stats;
    tracing::info!(job = %output.job, segments = s.segments, aggregations = s.aggregations,
        retries = s.retries, redispatches = s.redispatches, timeouts = s.timeouts, repairs = s.repairs,
        duplicates = s.duplicates,
        resumed_segments = s.resumed_segments,
        elapsed_s = s.elapsed.as_secs_f64(), "proved");
}

/// Wait for the proof, write it durably, and only then delete the job's artifacts.
async fn run_job(leader: &Leader, job: JobHandle, args: &ProveArgs) -> Result<(), Failure> {
    let renderer = tokio::spawn(progress::render(job.progress.clone()));
    let job_id = job.job.clone();
    let canceller = job.canceller();
    let waiting = job.wait_with_timeline();
    tokio::pin!(waiting);
    let outcome = tokio::select! {
        out = &mut waiting => out,
        _ = tokio::signal::ctrl_c() => {
            // Stop this run everywhere (workers drop its tasks); its finished work stays.
            canceller.cancel("interrupted (Ctrl-C)");
            let _ = tokio::time::timeout(Duration::from_secs(5), &mut waiting).await;
            return Err(Failure::other(format!(
                "interrupted; job {job_id} stopped, its finished work is kept: continue it with --resume {job_id}"
            )));
        }
    };
    let _ = renderer.await;
    let (outcome, timeline) = outcome;
    if outcome.is_err()
        && let (Some(path), Some(timeline)) = (&args.timeline, &timeline)
    {
        // Where a failed job's time went (and which attempts failed).
        draw_timeline(timeline, &job_id, path);
    }
    let output = outcome.map_err(|e| {
        Failure::other(format!(
            "job {job_id} failed: {}; its finished work is kept: retry it with --resume {job_id}",
            chain(&e)
        ))
    })?;
    log_stats(&output);
    if let Some(gpu) = proofline_shaders::opened_counters() {
        tracing::info!("gpu kernels: {gpu}");
    }
    if let (Some(path), Some(timeline)) = (&args.timeline, &output.timeline) {
        draw_timeline(timeline, &output.job, path);
    }
    let file = proof_file(&output);
    write_proof(args.out.as_deref(), &file).map_err(|e| {
        Failure::other(format!(
            "{}; the job is kept in the store: write its proof again with --resume {job_id}",
            e.message
        ))
    })?;
    // The proof is durable: the job's artifacts may go.
    if let Err(e) = leader.discard(&job_id).await {
        tracing::warn!(job = %job_id, error = %chain(&e), "proof written, but the job's artifacts were not deleted (gc removes them)");
    }
    Ok(())
}

/// Draw `timeline` into `path`; a picture that cannot be written is reported, nothing more.
fn draw_timeline(timeline: &proofline_runtime::leader::timeline::Timeline, job: &str, path: &Path) {
    match crate::timeline::write_svg(timeline, job, path) {
        Ok(()) => tracing::info!(path = %path.display(), "timeline written"),
        Err(e) => tracing::warn!(path = %path.display(), "timeline not written: {}", e.message),
    }
}

/// Write the whole proof durably or fail: a file appears only complete and synced
/// (temp file, fsync, rename, fsync of the directory); stdout is flushed and, when it
/// is a file, synced too.
pub fn write_proof(out: Option<&Path>, bytes: &[u8]) -> Result<(), Failure> {
    match out {
        None => {
            let mut stdout = std::io::stdout().lock();
            stdout
                .write_all(bytes)
                .and_then(|()| stdout.flush())
                .and_then(|()| sync_stdout())
                .map_err(|e| Failure::other(format!("writing the proof to stdout: {e}")))
        }
        Some(path) => {
            proofline_runtime::store::write_durably(path, bytes)
                .map_err(|e| Failure::other(format!("writing the proof to {}: {e}", path.display())))?;
            tracing::info!(path = %path.display(), bytes = bytes.len(), "proof written");
            Ok(())
        }
    }
}

/// fsync stdout when it is a regular file; pipes and terminals cannot be synced.
fn sync_stdout() -> std::io::Result<()> {
    use std::os::fd::AsFd;
    let fd = std::io::stdout().as_fd().try_clone_to_owned()?;
    let file = std::fs::File::from(fd);
    if file.metadata()?.is_file() { file.sync_all() } else { Ok(()) }
}
