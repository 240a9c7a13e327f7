//! Running the service's jobs on the leader: the scheduler that starts queued jobs,
//! one runner per job, the restore at start-up and the retention sweep.
//!
//! A job's run:
//!
//! 1. its record is written as `running`;
//! 2. if the leader's manifest of the job is in the store (the service stopped while
//!    it ran), it is resumed from its journal; otherwise its stored input is planned
//!    and submitted under the job's id, ordered by its submission time;
//! 3. its progress is shown while it runs;
//! 4. proven: the proof and timeline, then the `proven` record, are written durably,
//!    and only then the leader's artifacts are deleted ([`super::registry`] has why);
//!    failed: the record says why, and the leader's artifacts stay (`stdio --resume`
//!    can still finish it) until retention; cancelled: its artifacts are deleted;
//! 5. if the service is stopping, a run that ends without a proof records nothing:
//!    the job stays `running` in the store and resumes on the next start.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use proofline_runtime::error_chain as chain;
use proofline_runtime::leader::timeline::Timeline;
use proofline_runtime::leader::{JobError, JobHandle, JobOptions, JobOutput};
use proofline_runtime::task::ArtifactRef;

use super::registry::{self, Counts, Stats};
use super::service::{Live, Service, now_ms};
use super::state::{Event, JobState, Restore, StartMode};

/// Start queued jobs whenever a slot is free, until the service stops.
pub async fn schedule(svc: Arc<Service>) {
    loop {
        while let Some(record) = svc.claim_next() {
            svc.runners.fetch_add(1, Ordering::SeqCst);
            let svc = svc.clone();
            tokio::spawn(async move {
                run(&svc, &record.id).await;
                svc.runners.fetch_sub(1, Ordering::SeqCst);
                svc.wake.notify_one();
            });
        }
        if svc.is_stopping() {
            return;
        }
        svc.wake.notified().await;
    }
}

/// Steps 1-5 of the module doc.
async fn run(svc: &Service, id: &str) {
    if let Err(e) = svc.persist(id).await {
        tracing::warn!(job = %id, "could not record the start (it is still queued in the store): {e}");
    }
    let handle = match start(svc, id).await {
        Ok(handle) => handle,
        Err(message) => {
            tracing::error!(job = %id, "could not start: {message}");
            fail(svc, id, message).await;
            return;
        }
    };
    tracing::info!(job = %id, "running");
    svc.attach(id, Live { progress: handle.progress.clone(), canceller: handle.canceller() });
    let (outcome, timeline) = handle.wait_with_timeline().await;
    let progress = svc.detach(id);
    finish(svc, id, outcome, timeline, progress).await;
}

/// Step 2: resume the job from its journal, or plan and submit its stored input.
async fn start(svc: &Service, id: &str) -> Result<JobHandle, String> {
    let Some(record) = svc.get(id).map(|s| s.record) else { return Err("deleted".into()) };
    let options = JobOptions {
        id: Some(id.to_owned()),
        client: record.client.clone(),
        order: Some(record.order),
        timeline: true,
    };
    let leader = svc.cluster.leader();
    let job = id.to_owned();
    let manifest = registry::blocking(&svc.store, move |s| registry::has_manifest(s, &job)).await;
    let manifest = manifest.map_err(|e| format!("looking for the job's manifest: {e}"))?;
    if super::state::start_mode(manifest) == StartMode::Resume {
        match leader.resume_with(id, &svc.plugins, options.clone()).await {
            Ok(handle) => {
                tracing::info!(job = %id, "resumed from its journal");
                return Ok(handle);
            }
            Err(e @ JobError::Resume { .. }) => {
                // An unreadable journal: prove it again from its input rather than lose it.
                tracing::warn!(job = %id, "cannot resume ({}); proving it again from its input", chain(&e));
                let job = id.to_owned();
                registry::blocking(&svc.store, move |s| s.delete_prefix(&job))
                    .await
                    .map_err(|e| format!("clearing the unreadable journal: {e}"))?;
            }
            Err(e) => return Err(chain(&e)),
        }
    }
    // The plugin that accepted the job (the service may have restarted with another).
    let plugin =
        svc.plugins.get_exact(&record.plugin).cloned().ok_or_else(|| {
            format!("the job needs plugin {}, which this build does not have", record.plugin)
        })?;
    let input_ref = record.input.clone();
    let input = registry::blocking(&svc.store, move |s| s.get(&input_ref)).await;
    let input = input.map_err(|e| format!("reading the job's input: {e}"))?;
    let (planner, opts) = (plugin.clone(), svc.plan_options.clone());
    let source = format!("in the stored input of job {id}");
    let plan = tokio::task::spawn_blocking(move || {
        crate::prove::plan_input(planner.as_ref(), &input, &source, &opts)
    })
    .await
    .map_err(|e| format!("planning panicked: {e}"))?
    .map_err(|f| f.message)?;
    leader.submit_with(plugin, plan, options).await.map_err(|e| chain(&e))
}

/// Step 4 (and 5).
async fn finish(
    svc: &Service,
    id: &str,
    outcome: Result<JobOutput, JobError>,
    timeline: Option<Timeline>,
    progress: Option<proofline_runtime::leader::Progress>,
) {
    let leader = svc.cluster.leader();
    if svc.state(id) == Some(JobState::Cancelled) {
        discard(svc, id).await;
        return;
    }
    let output = match outcome {
        Ok(output) => output,
        Err(_) if svc.is_stopping() => {
            tracing::info!(job = %id, "stopped with the service; it resumes on the next start");
            return;
        }
        Err(e) if e.is_cancelled() => {
            // Cancelled by something other than DELETE (none today): record it as such.
            if svc.apply(id, Event::Cancel, |r| r.finished_ms = Some(now_ms())).is_some() {
                let _ = svc.persist(id).await;
            }
            discard(svc, id).await;
            return;
        }
        Err(e) => {
            let message = chain(&e);
            tracing::error!(job = %id, "failed: {message}");
            // Where a failed job's time went is what its operator wants to see.
            let stored = match timeline {
                Some(timeline) => store_timeline(svc, id, &timeline).await,
                None => None,
            };
            fail_with(svc, id, message, progress, stored).await;
            return;
        }
    };
    crate::prove::log_stats(&output);
    match store_proof(svc, id, &output).await {
        Ok((proof, timeline)) => {
            let counts = progress.as_ref().map(Counts::from);
            let stats = Stats::from(&output.stats);
            let recorded = svc.apply(id, Event::Proven, |r| {
                r.proof = Some(proof);
                r.timeline = timeline;
                r.finished_ms = Some(now_ms());
                r.progress = counts;
                r.stats = Some(stats);
            });
            let Some(record) = recorded else { return };
            if let Err(e) = svc.persist(id).await {
                // The store still says running: the job resumes on restart, and its
                // artifacts must stay for that.
                tracing::error!(job = %id, "proven, but the record could not be written: {e}");
                return;
            }
            if let (Some(start), Some(end)) = (record.started_ms, record.finished_ms) {
                svc.note_duration(end.saturating_sub(start) as f64 / 1e3);
            }
            tracing::info!(job = %id, "proven: {}", record.summary);
            if let Err(e) = leader.discard(id).await {
                tracing::warn!(job = %id, "proof stored, but the job's artifacts were not deleted: {}", chain(&e));
            }
        }
        Err(e) => {
            let message = format!("the proof could not be stored: {e}; the job's artifacts are kept");
            tracing::error!(job = %id, "{message}");
            fail_with(svc, id, message, progress, None).await;
        }
    }
}

/// A failed job's timeline, stored for `GET .../timeline.svg`; `None` if it could not be.
async fn store_timeline(svc: &Service, id: &str, timeline: &Timeline) -> Option<ArtifactRef> {
    let (json, job) = (serde_json::to_vec(timeline).expect("a timeline serializes"), id.to_owned());
    match registry::blocking(&svc.store, move |s| registry::put_timeline(s, &job, &json)).await {
        Ok(stored) => Some(stored),
        Err(e) => {
            tracing::warn!(job = %id, "the failed job's timeline was not stored: {e}");
            None
        }
    }
}

/// Step 4's first writes: the proof file and the timeline.
async fn store_proof(
    svc: &Service,
    id: &str,
    output: &JobOutput,
) -> Result<(proofline_runtime::task::ArtifactRef, Option<proofline_runtime::task::ArtifactRef>), String> {
    let file = crate::prove::proof_file(output);
    let timeline = output.timeline.as_ref().map(|t| serde_json::to_vec(t).expect("a timeline serializes"));
    let job = id.to_owned();
    registry::blocking(&svc.store, move |s| {
        let proof = registry::put_proof(s, &job, &file)?;
        let timeline = timeline.map(|t| registry::put_timeline(s, &job, &t)).transpose()?;
        Ok::<_, proofline_runtime::store::StoreError>((proof, timeline))
    })
    .await
    .map_err(|e| e.to_string())
}

async fn fail(svc: &Service, id: &str, message: String) {
    fail_with(svc, id, message, None, None).await;
}

async fn fail_with(
    svc: &Service,
    id: &str,
    message: String,
    progress: Option<proofline_runtime::leader::Progress>,
    timeline: Option<ArtifactRef>,
) {
    let counts = progress.as_ref().map(Counts::from);
    let failed = svc.apply(id, Event::Failed, |r| {
        r.error = Some(message);
        r.finished_ms = Some(now_ms());
        r.progress = counts;
        if timeline.is_some() {
            r.timeline = timeline;
        }
    });
    if failed.is_some()
        && let Err(e) = svc.persist(id).await
    {
        tracing::error!(job = %id, "could not record the failure: {e}");
    }
}

/// Delete a cancelled job's artifacts (unless `--keep-artifacts`).
async fn discard(svc: &Service, id: &str) {
    if let Err(e) = svc.cluster.leader().discard(id).await {
        tracing::warn!(job = %id, "cancelled, but its artifacts were not deleted: {}", chain(&e));
    }
}

/// Load the store's records into the service (before it serves): unfinished jobs are
/// queued again, finished ones served as they are (module doc of [`super::state`]).
pub async fn restore(svc: &Service) -> Result<(), String> {
    let listing = registry::blocking(&svc.store, registry::list).await.map_err(|e| e.to_string())?;
    let (mut requeued, mut kept) = (0, 0);
    let mut restored = Vec::new();
    for (job, loaded) in listing {
        let mut record = match loaded {
            Ok(Some(record)) => record,
            Ok(None) => {
                // An input whose record was never written: the job was never accepted.
                tracing::info!(%job, "deleting an input that was never accepted");
                let prefix = registry::prefix(&job);
                let _ = registry::blocking(&svc.store, move |s| s.delete_prefix(&prefix)).await;
                continue;
            }
            Err(e) => {
                tracing::error!(%job, "skipping a job record that cannot be read (left in the store): {e}");
                continue;
            }
        };
        match super::state::restore(record.state) {
            Restore::Requeue => {
                if let Some(state) = super::state::next(record.state, Event::Interrupted) {
                    record.state = state;
                }
                requeued += 1;
            }
            Restore::Keep => kept += 1,
            Restore::KeepAndClean => {
                kept += 1;
                let job = job.clone();
                if let Err(e) = registry::blocking(&svc.store, move |s| s.delete_prefix(&job)).await {
                    tracing::warn!(job = %record.id, "could not delete the job's leftover artifacts: {e}");
                }
            }
        }
        restored.push(record);
    }
    // In submission order, so that fair-queueing tags follow it as they did.
    restored.sort_by_key(|r| r.order);
    for record in restored {
        svc.insert(record);
    }
    tracing::info!(requeued, kept, "jobs restored from the store");
    Ok(())
}

/// Delete finished jobs past `--retention`, every [`super::state::sweep_interval`].
pub async fn sweep(svc: Arc<Service>) {
    if svc.limits.retention.is_zero() {
        return;
    }
    let every = super::state::sweep_interval(svc.limits.retention);
    loop {
        for id in svc.expired(now_ms()) {
            match svc.delete(&id).await {
                Ok(()) => tracing::info!(job = %id, "deleted: past the retention period"),
                Err(e) => tracing::warn!(job = %id, "retention: {e} (tried again later)"),
            }
        }
        tokio::time::sleep(every).await;
    }
}

/// Stop: no job starts any more, running ones are interrupted (they stay `running` in
/// the store and resume on the next start), and their runners get `grace` to end.
pub async fn stop(svc: &Service, grace: Duration) {
    svc.stopping.store(true, Ordering::SeqCst);
    svc.ready.store(false, Ordering::SeqCst);
    svc.wake.notify_one();
    let interrupted = svc.interrupt_all();
    tracing::info!(interrupted, "stopping: running jobs resume on the next start");
    let until = tokio::time::Instant::now() + grace;
    while svc.runners.load(Ordering::SeqCst) > 0 && tokio::time::Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
