//! `batch` mode: many blocks at once, one proof file each, resumable by re-running.
//!
//! 1. The inputs are expanded ([`inputs`]), read with `--max-input-mib` and planned
//!    (bad input is reported with its path; nothing starts for it). Two inputs of the
//!    same block are proven once.
//! 2. Each block is decided ([`decide::decide`]): skipped if `<name>.proof` is in
//!    `--out` and verifies, resumed if `<name>.job` names a job whose manifest is in the
//!    store, else proven afresh, its job id written durably to `<name>.job` before the
//!    job starts.
//! 3. Jobs start in chain order (block number), at most `--max-jobs` at once, sharing the
//!    workers; the leader's scheduler gives the oldest block workers first.
//! 4. A proven block's summary (`<name>.json`), optional timeline picture and proof are
//!    written durably, the proof last; then the job's artifacts are deleted and
//!    `<name>.job` removed. A batch killed at any point loses no finished work.
//!
//! Exit code ([`decide::exit_code`]): 1 if any job failed or was interrupted, else 2 if
//! any input was bad, else 0. A table of every input's outcome goes to stderr.

mod decide;
mod inputs;
mod report;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use proofline_runtime::error_chain as chain;
use proofline_runtime::leader::{JobError, JobHandle, JobOptions, JobOutput};
use proofline_runtime::plugin::{Plan, PlanOptions, PluginRegistry, ProofSystem, Verdict};
use proofline_runtime::proof_file::ProofFile;
use proofline_runtime::store::write_durably;
use tokio::sync::{Semaphore, watch};

use crate::Failure;
use crate::cli::{Common, DEFAULT_MAX_INPUT_MIB, DEFAULT_MAX_PROOF_MIB, JobArgs, mib_to_bytes, parse_mib};
use crate::prove::{Cluster, open, start_cluster};
use decide::{Action, BlockFiles, ExistingProof, Outcome};
use inputs::Input;

#[derive(Args, Debug)]
pub struct BatchArgs {
    /// Block files, directories of them (their `*.json` files), or `-` (paths on stdin).
    #[arg(required = true)]
    pub inputs: Vec<PathBuf>,
    /// Directory for the proofs (`<number>-<hash prefix>.proof`) and their summaries.
    #[arg(long, short, env = "PROOFLINE_OUT")]
    pub out: PathBuf,
    /// Jobs proven at once, sharing the workers (the oldest block gets them first).
    #[arg(long, env = "PROOFLINE_MAX_JOBS", default_value_t = 4,
          value_parser = clap::value_parser!(u32).range(1..=256))]
    pub max_jobs: u32,
    /// Largest block file (with its witness) read, in MiB: a larger one is bad input.
    #[arg(long, env = "PROOFLINE_MAX_INPUT_MIB", default_value_t = DEFAULT_MAX_INPUT_MIB, value_parser = parse_mib)]
    pub max_input_mib: u64,
    /// Draw each job's timeline (one row per worker lane, one bar per task attempt)
    /// into `DIR/<name>.svg`.
    #[arg(long, value_name = "DIR")]
    pub timeline: Option<PathBuf>,
    /// The inputs are Polygon Zero zero_bin witnesses (one block or a batch of blocks
    /// each) and FILE holds their headers (`eth_getBlockByNumber` results, one or an
    /// array): every block becomes a job of its own.
    #[arg(long, value_name = "FILE")]
    pub header: Option<PathBuf>,
    #[command(flatten)]
    pub job: JobArgs,
}

/// One input after planning: a file, or (`--header`) block `part` of a zero_bin file.
struct Entry {
    input: PathBuf,
    part: Option<usize>,
    state: EntryState,
}

enum EntryState {
    /// Planned: a block to decide and maybe prove.
    Block {
        name: String,
        summary: String,
    },
    Done(Outcome),
}

/// A block to prove (or resume).
struct Work {
    index: usize,
    input: PathBuf,
    part: Option<usize>,
    name: String,
    summary: String,
    order: u64,
    action: Action,
}

/// What every block's task shares.
struct Ctx {
    cluster: Cluster,
    registry: PluginRegistry,
    plugin: Arc<dyn ProofSystem>,
    out: PathBuf,
    timeline: Option<PathBuf>,
    plan_options: PlanOptions,
    max_input_mib: u64,
    header: Option<Arc<Vec<u8>>>,
}

pub async fn run(common: &Common, args: &BatchArgs) -> Result<(), Failure> {
    let registry = crate::plugins(common)?;
    let plugin = crate::plugin_named(&registry, &common.plugin)?;
    for dir in std::iter::once(&args.out).chain(&args.timeline) {
        std::fs::create_dir_all(dir)
            .map_err(|e| Failure::other(format!("cannot create {}: {e}", dir.display())))?;
    }
    let header = match &args.header {
        Some(path) => Some(Arc::new(
            inputs::read_block(
                path,
                mib_to_bytes(args.max_input_mib).unwrap_or(u64::MAX),
                args.max_input_mib,
            )
            .map_err(|e| Failure::bad_input(format!("--header: {e}")))?,
        )),
        None => None,
    };
    let expanded =
        inputs::expand(&args.inputs, &inputs::Fs, &mut || std::io::read_to_string(std::io::stdin()));
    tracing::info!(inputs = expanded.len(), "planning");
    let read = Reader { header: header.clone(), mib: args.max_input_mib };
    let (plugin2, options) = (plugin.clone(), args.job.plan_options());
    let mut entries = blocking(move || Ok(plan_all(expanded, plugin2.as_ref(), &options, &read))).await?;

    // Chain order among the planned blocks; a second input of the same block is a duplicate.
    let planned: Vec<usize> =
        (0..entries.len()).filter(|&i| matches!(entries[i].state, EntryState::Block { .. })).collect();
    let names: Vec<&str> = planned
        .iter()
        .map(|&i| match &entries[i].state {
            EntryState::Block { name, .. } => name.as_str(),
            EntryState::Done(_) => unreachable!("only planned entries"),
        })
        .collect();
    let schedule = decide::schedule(&names);
    for (k, of) in schedule.duplicates {
        let of = entries[planned[of]].input.clone();
        entries[planned[k]].state = EntryState::Done(Outcome::Duplicate { of });
    }
    let todo: Vec<Work> = schedule
        .start
        .into_iter()
        .filter_map(|(k, order)| {
            let index = planned[k];
            let EntryState::Block { name, summary } = &entries[index].state else { return None };
            let (input, part) = (entries[index].input.clone(), entries[index].part);
            let (name, summary) = (name.clone(), summary.clone());
            Some(Work { index, input, part, name, summary, order, action: Action::Prove })
        })
        .collect();

    // Decide each block: its proof may be there already, or its job half done.
    let (out, plugin2) = (args.out.clone(), plugin.clone());
    let todo = blocking(move || Ok(decide_all(todo, &out, plugin2.as_ref()))).await?;
    let mut outcomes: Vec<Option<Outcome>> = entries
        .iter()
        .map(|e| match &e.state {
            EntryState::Done(o) => Some(o.clone()),
            EntryState::Block { .. } => None,
        })
        .collect();
    let mut work = Vec::new();
    for w in todo {
        match w.action {
            Action::Skip => outcomes[w.index] = Some(Outcome::Skipped),
            _ => work.push(w),
        }
    }

    if !work.is_empty() {
        let ctx = Arc::new(Ctx {
            cluster: start_cluster(
                common,
                &registry,
                open(common)?,
                args.job.leader_config(&common.scheduling),
            )
            .await?,
            registry,
            plugin,
            out: args.out.clone(),
            timeline: args.timeline.clone(),
            plan_options: args.job.plan_options(),
            max_input_mib: args.max_input_mib,
            header,
        });
        for (index, outcome) in prove_all(ctx, work, args.max_jobs as usize).await {
            outcomes[index] = Some(outcome);
        }
    }

    let outcomes: Vec<Outcome> = outcomes
        .into_iter()
        .map(|o| o.unwrap_or_else(|| Outcome::Failed("internal: no outcome".into())))
        .collect();
    let rows: Vec<report::Row<'_>> = entries
        .iter()
        .zip(&outcomes)
        .map(|(e, outcome)| report::Row {
            block: match &e.state {
                EntryState::Block { name, .. } => name.clone(),
                EntryState::Done(_) => describe(&e.input, e.part),
            },
            outcome,
        })
        .collect();
    eprintln!("{}", report::table(&rows));
    let count = |state: &str| outcomes.iter().filter(|o| o.state() == state).count();
    match decide::exit_code(&outcomes) {
        0 => Ok(()),
        2 => Err(Failure::bad_input(format!(
            "{} of {} inputs were bad input (see above)",
            count("bad input"),
            outcomes.len()
        ))),
        _ => Err(Failure::other(format!(
            "{} block(s) failed, {} interrupted (see above); their finished work is kept: run the same command again to resume",
            count("failed"),
            count("interrupted")
        ))),
    }
}

/// Run a blocking closure off the async workers.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, Failure> + Send + 'static,
) -> Result<T, Failure> {
    tokio::task::spawn_blocking(f).await.map_err(|e| Failure::other(format!("internal: {e}")))?
}

/// The job inputs of one file: `(part, bytes)`, `part` being the block's place in a
/// zero_bin batch (`None` without `--header`).
type JobInputs = Vec<(Option<usize>, Vec<u8>)>;

/// How inputs are read: bounded, and split into one job input per block with `--header`.
struct Reader {
    header: Option<Arc<Vec<u8>>>,
    mib: u64,
}

impl Reader {
    /// The job inputs in `path`: the file itself, or one per block of a zero_bin file.
    fn read(&self, path: &Path) -> Result<JobInputs, Outcome> {
        let bytes = inputs::read_block(path, mib_to_bytes(self.mib).unwrap_or(u64::MAX), self.mib)
            .map_err(Outcome::BadInput)?;
        let Some(header) = &self.header else { return Ok(vec![(None, bytes)]) };
        let jobs = proofline_plugins::zero_bin_jobs(&bytes, header)
            .map_err(|e| Outcome::BadInput(format!("{}: {e}", path.display())))?;
        Ok(jobs.into_iter().enumerate().map(|(i, job)| (Some(i), job)).collect())
    }

    /// The job input of block `part` of `path` (see [`Reader::read`]).
    fn read_part(&self, path: &Path, part: Option<usize>) -> Result<Vec<u8>, Outcome> {
        let mut jobs = self.read(path)?;
        match jobs.iter().position(|(p, _)| *p == part) {
            Some(i) => Ok(jobs.swap_remove(i).1),
            None => Err(Outcome::Failed(format!("{} changed while the batch ran", describe(path, part)))),
        }
    }
}

/// `blocks/1.json`, or `blocks/batch.json [block 3]` for a part of a zero_bin batch.
fn describe(path: &Path, part: Option<usize>) -> String {
    match part {
        Some(i) => format!("{} [block {i}]", path.display()),
        None => path.display().to_string(),
    }
}

/// Read and plan every input (plans are dropped: they are made again when a job starts,
/// so memory does not grow with the number of blocks).
fn plan_all(
    expanded: Vec<Input>,
    plugin: &dyn ProofSystem,
    options: &PlanOptions,
    read: &Reader,
) -> Vec<Entry> {
    let mut entries = Vec::with_capacity(expanded.len());
    for input in expanded {
        let path = match input {
            Input::Bad { path, message } => {
                let outcome = Outcome::BadInput(format!("{}: {message}", path.display()));
                entries.push(Entry { input: path, part: None, state: EntryState::Done(outcome) });
                continue;
            }
            Input::File(path) => path,
        };
        match read.read(&path) {
            Err(outcome) => entries.push(Entry { input: path, part: None, state: EntryState::Done(outcome) }),
            Ok(jobs) => {
                for (part, bytes) in jobs {
                    let state = match plan_bytes(&path, part, &bytes, plugin, options) {
                        Ok(plan) => EntryState::Block { name: plan.name, summary: plan.summary },
                        Err(outcome) => EntryState::Done(outcome),
                    };
                    entries.push(Entry { input: path.clone(), part, state });
                }
            }
        }
    }
    entries
}

/// Plan one block's input; the outcome says what is wrong and where.
fn plan_bytes(
    path: &Path,
    part: Option<usize>,
    bytes: &[u8],
    plugin: &dyn ProofSystem,
    options: &PlanOptions,
) -> Result<Plan, Outcome> {
    let source = format!("in {}", describe(path, part));
    let plan = crate::prove::plan_input(plugin, bytes, &source, options)
        .map_err(|f| if f.code == 2 { Outcome::BadInput(f.message) } else { Outcome::Failed(f.message) })?;
    if !Plan::is_valid_name(&plan.name) {
        return Err(Outcome::Failed(format!(
            "{}: the plugin named it {:?}, not a file name",
            describe(path, part),
            plan.name
        )));
    }
    Ok(plan)
}

/// [`decide_block`] for every block, verifying existing proofs on all CPUs (a re-run
/// of a large batch verifies every proof it skips). Keeps the order of `todo`.
fn decide_all(todo: Vec<Work>, out: &Path, plugin: &dyn ProofSystem) -> Vec<Work> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let per_thread = todo.len().div_ceil(threads).max(1);
    let mut chunks: Vec<Vec<Work>> = Vec::new();
    let mut rest = todo.into_iter().peekable();
    while rest.peek().is_some() {
        chunks.push(rest.by_ref().take(per_thread).collect());
    }
    std::thread::scope(|scope| {
        let running: Vec<_> = chunks
            .into_iter()
            .map(|chunk| {
                scope.spawn(move || {
                    chunk.into_iter().map(|w| decide_block(w, out, plugin)).collect::<Vec<_>>()
                })
            })
            .collect();
        running.into_iter().flat_map(|t| t.join().expect("deciding a block panicked")).collect()
    })
}

/// Look at `--out` for this block: its proof, its recorded job.
fn decide_block(mut work: Work, out: &Path, plugin: &dyn ProofSystem) -> Work {
    let files = BlockFiles::new(out, &work.name);
    let existing = check_proof(&files.proof, plugin);
    let recorded = std::fs::read_to_string(&files.job).ok();
    if let ExistingProof::Unusable(why) = &existing {
        tracing::warn!(block = %work.name, "{}: {why}; proving it again", files.proof.display());
    }
    work.action = decide::decide(&existing, recorded.as_deref());
    if work.action == Action::Skip && recorded.is_some() {
        // The proof is durable; the job's leftover artifacts are for `gc`.
        tracing::info!(block = %work.name, "proof already there; removing the stale {}", files.job.display());
        let _ = std::fs::remove_file(&files.job);
    }
    work
}

/// Whether `path` holds a proof by this plugin that verifies.
fn check_proof(path: &Path, plugin: &dyn ProofSystem) -> ExistingProof {
    let limit = mib_to_bytes(DEFAULT_MAX_PROOF_MIB).unwrap_or(u64::MAX);
    let bytes = match std::fs::File::open(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return ExistingProof::Missing,
        Err(e) => return ExistingProof::Unusable(format!("cannot read it: {e}")),
        Ok(file) => match crate::verify::read_limited(file, limit) {
            Ok(crate::verify::Limited::Within(bytes)) => bytes,
            Ok(crate::verify::Limited::Over) => {
                return ExistingProof::Unusable("too large for a proof".into());
            }
            Err(e) => return ExistingProof::Unusable(format!("cannot read it: {e}")),
        },
    };
    let proof = match ProofFile::decode(&bytes) {
        Ok(proof) => proof,
        Err(e) => return ExistingProof::Unusable(e.to_string()),
    };
    if proof.plugin != plugin.id().to_string() {
        return ExistingProof::Unusable(format!(
            "made by {}, this batch proves with {}",
            proof.plugin,
            plugin.id()
        ));
    }
    match plugin.verify(&proof.body) {
        Ok(Verdict::Valid { .. }) => ExistingProof::Verifies,
        Ok(Verdict::Invalid { reason }) => ExistingProof::Unusable(format!("does not verify: {reason}")),
        Err(e) => ExistingProof::Unusable(format!("does not verify: {e}")),
    }
}

/// Prove `work` (in chain order) at most `max_jobs` at once; Ctrl-C stops them all.
async fn prove_all(ctx: Arc<Ctx>, work: Vec<Work>, max_jobs: usize) -> Vec<(usize, Outcome)> {
    let (stop_tx, stop) = watch::channel(false);
    let ctrl_c = tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            tracing::warn!("interrupted (Ctrl-C): stopping the running jobs, they stay resumable");
            let _ = stop_tx.send(true);
        }
    });
    let slots = Arc::new(Semaphore::new(max_jobs));
    let mut running = tokio::task::JoinSet::new();
    let mut outcomes = Vec::new();
    let mut not_started = work.len();
    for w in work {
        proofline_runtime::metrics::leader::set_queued_jobs(not_started);
        not_started -= 1;
        let mut stopped = stop.clone();
        let slot = tokio::select! {
            slot = slots.clone().acquire_owned() => slot.expect("never closed"),
            () = interrupted(&mut stopped) => {
                outcomes.push((w.index, Outcome::Interrupted("not started (Ctrl-C); re-run to prove it".into())));
                continue;
            }
        };
        if *stop.borrow() {
            outcomes.push((w.index, Outcome::Interrupted("not started (Ctrl-C); re-run to prove it".into())));
            continue;
        }
        // Started one after the other, so their tasks are published in chain order too.
        let files = BlockFiles::new(&ctx.out, &w.name);
        let options =
            JobOptions { order: Some(w.order), timeline: ctx.timeline.is_some(), ..JobOptions::default() };
        let job = tokio::select! {
            job = start_job(&ctx, &w, &files, options) => job,
            () = interrupted(&mut stopped) => Err(Outcome::Interrupted("not started (Ctrl-C); re-run to prove it".into())),
        };
        let job = match job {
            Ok(job) => job,
            Err(outcome) => {
                outcomes.push((w.index, outcome));
                continue;
            }
        };
        let ctx = ctx.clone();
        running.spawn(async move {
            let index = w.index;
            let outcome = prove_block(&ctx, w, files, job, stopped).await;
            drop(slot);
            (index, outcome)
        });
    }
    proofline_runtime::metrics::leader::set_queued_jobs(0);
    while let Some(done) = running.join_next().await {
        match done {
            Ok(outcome) => outcomes.push(outcome),
            Err(e) => tracing::error!("a block's task ended abnormally: {e}"),
        }
    }
    ctrl_c.abort();
    outcomes
}

/// Returns once Ctrl-C was pressed (never, if the sender is gone without it).
async fn interrupted(stop: &mut watch::Receiver<bool>) {
    if stop.wait_for(|s| *s).await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// Wait for one block's job and make its proof durable.
async fn prove_block(
    ctx: &Ctx,
    work: Work,
    files: BlockFiles,
    job: JobHandle,
    mut stop: watch::Receiver<bool>,
) -> Outcome {
    let id = job.job.clone();
    let canceller = job.canceller();
    let waiting = job.wait_with_timeline();
    tokio::pin!(waiting);
    let output = tokio::select! {
        out = &mut waiting => out,
        () = interrupted(&mut stop) => {
            canceller.cancel("interrupted (Ctrl-C)");
            let _ = tokio::time::timeout(Duration::from_secs(5), &mut waiting).await;
            return Outcome::Interrupted(format!("job {id} stopped; re-run to resume it"));
        }
    };
    let output = match output {
        (Ok(output), _) => output,
        (Err(e), timeline) => {
            // A failed job's picture shows where its time went (and which attempts failed).
            if let (Some(dir), Some(timeline)) = (&ctx.timeline, timeline) {
                draw(&timeline, dir, &work.name, &id);
            }
            return Outcome::Failed(format!("job {id} failed: {}; re-run to resume it", chain(&e)));
        }
    };
    crate::prove::log_stats(&output);
    if let Err(message) = finish(ctx, &work, &files, &output).await {
        return Outcome::Failed(message);
    }
    let s = &output.stats;
    Outcome::Proven { elapsed: s.elapsed, resumed_segments: s.resumed_segments, retries: s.retries }
}

/// Resume the recorded job, or record a fresh id and start a new job.
async fn start_job(
    ctx: &Ctx,
    work: &Work,
    files: &BlockFiles,
    options: JobOptions,
) -> Result<JobHandle, Outcome> {
    let leader = ctx.cluster.leader();
    if let Action::Resume(id) = &work.action {
        match leader.resume_with(id, &ctx.registry, options.clone()).await {
            Ok(job) => {
                tracing::info!(block = %work.name, job = %id, "resuming the job of an earlier run");
                return Ok(job);
            }
            // Gone (never started, or cleaned up), unreadable, or for another plugin
            // version: this block is proven afresh.
            Err(e @ (JobError::Resume { .. } | JobError::MissingPlugin { .. })) => {
                tracing::warn!(block = %work.name, "{}; proving it afresh", chain(&e));
            }
            Err(e) => return Err(Outcome::Failed(format!("resuming job {id}: {}", chain(&e)))),
        }
    }
    let (input, part, plugin, plan_options) =
        (work.input.clone(), work.part, ctx.plugin.clone(), ctx.plan_options.clone());
    let read = Reader { header: ctx.header.clone(), mib: ctx.max_input_mib };
    let plan = tokio::task::spawn_blocking(move || {
        let bytes = read.read_part(&input, part)?;
        plan_bytes(&input, part, &bytes, plugin.as_ref(), &plan_options)
    })
    .await
    .map_err(|e| Outcome::Failed(format!("internal: {e}")))??;
    if plan.name != work.name {
        return Err(Outcome::Failed(format!(
            "{} changed while the batch ran (now {})",
            describe(&work.input, work.part),
            plan.name
        )));
    }
    let id = proofline_runtime::task::new_job_id();
    // Recorded before the job exists: a batch killed from here on resumes it.
    write_durably(&files.job, format!("{id}\n").as_bytes())
        .map_err(|e| Outcome::Failed(format!("recording the job id in {}: {e}", files.job.display())))?;
    let options = JobOptions { id: Some(id.clone()), ..options };
    let job = leader
        .submit_with(ctx.plugin.clone(), plan, options)
        .await
        .map_err(|e| Outcome::Failed(format!("starting job {id}: {}", chain(&e))))?;
    tracing::info!(block = %work.name, job = %id, input = %work.input.display(), "{}", work.summary);
    Ok(job)
}

/// Write `<dir>/<name>.svg`; a picture that cannot be written is reported, nothing more.
fn draw(
    timeline: &proofline_runtime::leader::timeline::Timeline,
    dir: &std::path::Path,
    name: &str,
    job: &str,
) {
    let path = decide::timeline_file(dir, name);
    let title = format!("{name} (job {job})");
    if let Err(e) = crate::timeline::write_svg(timeline, &title, &path) {
        tracing::warn!(block = %name, "timeline not written: {}", e.message);
    }
}

/// Summary, picture, then the proof (durable: the block is done), then clean up.
async fn finish(ctx: &Ctx, work: &Work, files: &BlockFiles, output: &JobOutput) -> Result<(), String> {
    let proof = crate::prove::proof_file(output);
    let summary = report::summary_json(&work.input, &work.name, &work.summary, output, proof.len());
    let summary = serde_json::to_vec_pretty(&summary).expect("JSON values serialize");
    write_durably(&files.summary, &summary)
        .map_err(|e| format!("writing {}: {e}; re-run to write it", files.summary.display()))?;
    if let (Some(dir), Some(timeline)) = (&ctx.timeline, &output.timeline) {
        draw(timeline, dir, &work.name, &output.job);
    }
    write_durably(&files.proof, &proof).map_err(|e| {
        format!("writing {}: {e}; the job is kept: re-run to write it", files.proof.display())
    })?;
    tracing::info!(block = %work.name, path = %files.proof.display(), bytes = proof.len(), "proof written");
    // The proof is durable: the job's artifacts and its record may go.
    if let Err(e) = ctx.cluster.leader().discard(&output.job).await {
        tracing::warn!(job = %output.job, "the job's artifacts were not deleted (gc removes them): {}", chain(&e));
    }
    if let Err(e) = std::fs::remove_file(&files.job) {
        tracing::warn!(path = %files.job.display(), "could not remove the job record: {e}");
    }
    Ok(())
}
