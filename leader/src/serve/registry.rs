//! The service's job records in the artifact store: what survives a restart.
//!
//! Each job the service accepted has a prefix of its own next to the leader's:
//!
//! | key                          | written                         | holds                      |
//! |------------------------------|---------------------------------|----------------------------|
//! | `serve-{job}/input`          | before the 202                  | the request body, as sent  |
//! | `serve-{job}/record.json`    | before the 202, on every change | [`JobRecord`]              |
//! | `serve-{job}/proof`          | when proven, before the record  | the proof file             |
//! | `serve-{job}/timeline.json`  | when proven, before the record  | the job's timeline         |
//! | `{job}/...`                  | by the leader while it runs     | manifest, journal, artifacts, lease |
//!
//! A proof is made durable in this order, so that nothing is deleted before it is
//! safe and a crash at any step loses nothing:
//!
//! 1. the proof and the timeline are written (`put` is durable when it returns);
//! 2. the record is rewritten as `proven`, with the proof's BLAKE3 reference;
//! 3. only then the leader's `{job}/` prefix (intermediate proofs, journal) is deleted.
//!
//! A crash before 2 leaves a `running` record whose manifest is still there: the job
//! resumes from its journal on restart and wraps again. A crash between 2 and 3 leaves
//! leftovers that the restart deletes. Separate prefixes keep `gc` (which touches only
//! job-id prefixes) away from the service's proofs: retention deletes those.

use std::sync::Arc;

use proofline_runtime::store::{ArtifactStore, StoreError};
use proofline_runtime::task::{ArtifactRef, is_job_id};
use serde::{Deserialize, Serialize};

use super::state::JobState;

const VERSION: u32 = 1;
const PREFIX: &str = "serve-";

/// Progress counters as recorded and served.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    pub segments_done: u32,
    pub segments_total: u32,
    pub aggregations_done: u32,
    pub aggregations_total: u32,
    pub cost_done: u64,
    pub cost_total: u64,
}

impl From<&proofline_runtime::leader::Progress> for Counts {
    fn from(p: &proofline_runtime::leader::Progress) -> Self {
        Self {
            segments_done: p.segments_done,
            segments_total: p.segments_total,
            aggregations_done: p.aggregations_done,
            aggregations_total: p.aggregations_total,
            cost_done: p.cost_done,
            cost_total: p.cost_total,
        }
    }
}

/// What happened while a proven job ran.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    pub segments: u32,
    pub aggregations: u32,
    pub retries: u64,
    pub redispatches: u64,
    pub timeouts: u64,
    pub repairs: u64,
    pub resumed_segments: u32,
}

impl From<&proofline_runtime::leader::JobStats> for Stats {
    fn from(s: &proofline_runtime::leader::JobStats) -> Self {
        Self {
            segments: s.segments,
            aggregations: s.aggregations,
            retries: s.retries,
            redispatches: s.redispatches,
            timeouts: s.timeouts,
            repairs: s.repairs,
            resumed_segments: s.resumed_segments,
        }
    }
}

/// One job as the service records it (`serve-{job}/record.json`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JobRecord {
    pub version: u32,
    pub id: String,
    pub state: JobState,
    pub client: String,
    /// Submission order: microseconds since the Unix epoch, strictly increasing within
    /// the service; the leader's `JobOptions::order` (oldest first, chain order).
    pub order: u64,
    /// Milliseconds since the Unix epoch.
    pub submitted_ms: u64,
    pub started_ms: Option<u64>,
    pub finished_ms: Option<u64>,
    /// `name@version` of the plugin.
    pub plugin: String,
    pub name: String,
    pub summary: String,
    pub segments: u32,
    pub cost_total: u64,
    pub input: ArtifactRef,
    /// Why it failed (the runtime's error chain, the plugin's message included).
    pub error: Option<String>,
    pub proof: Option<ArtifactRef>,
    pub timeline: Option<ArtifactRef>,
    /// Progress when the job ended (while it runs, the leader's live progress is served).
    pub progress: Option<Counts>,
    pub stats: Option<Stats>,
}

impl JobRecord {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        id: String,
        client: String,
        order: u64,
        submitted_ms: u64,
        plugin: String,
        plan: &proofline_runtime::plugin::Plan,
        input: ArtifactRef,
    ) -> Self {
        Self {
            version: VERSION,
            id,
            state: JobState::Queued,
            client,
            order,
            submitted_ms,
            started_ms: None,
            finished_ms: None,
            plugin,
            name: plan.name.clone(),
            summary: plan.summary.clone(),
            segments: plan.segments.len() as u32,
            cost_total: plan.segments.total_cost(),
            input,
            error: None,
            proof: None,
            timeline: None,
            progress: None,
            stats: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("artifact store: {0}")]
    Store(#[from] StoreError),
    #[error("{key}: not a job record: {reason}")]
    Damaged { key: String, reason: String },
}

/// The service's prefix of `job`.
pub fn prefix(job: &str) -> String {
    format!("{PREFIX}{job}")
}

/// The job id of a service prefix (`serve-{job}`), if it is one.
pub fn job_of_prefix(prefix: &str) -> Option<&str> {
    prefix.strip_prefix(PREFIX).filter(|job| is_job_id(job))
}

fn record_key(job: &str) -> String {
    format!("{PREFIX}{job}/record.json")
}

/// The service prefixes of the store with their records: `Ok(None)` for a prefix
/// without a record (an input whose job was never accepted), `Err` for a record that
/// cannot be read. Nothing is deleted here: the caller decides.
pub type Listing = Vec<(String, Result<Option<JobRecord>, RegistryError>)>;

/// The stored records, one per service prefix found in the store (blocking).
pub fn list(store: &dyn ArtifactStore) -> Result<Listing, RegistryError> {
    let mut out = Vec::new();
    for entry in store.list_jobs()? {
        let Some(job) = job_of_prefix(&entry.job) else { continue };
        out.push((job.to_owned(), load(store, job)));
    }
    Ok(out)
}

/// `None`: the prefix exists without a record (the service stopped between writing
/// the input and the record: the job was never accepted).
fn load(store: &dyn ArtifactStore, job: &str) -> Result<Option<JobRecord>, RegistryError> {
    let key = record_key(job);
    let Some(bytes) = store.get_raw(&key)? else { return Ok(None) };
    let record: JobRecord = serde_json::from_slice(&bytes)
        .map_err(|e| RegistryError::Damaged { key: key.clone(), reason: e.to_string() })?;
    if record.id != job {
        return Err(RegistryError::Damaged { key, reason: format!("it names job {}", record.id) });
    }
    Ok(Some(record))
}

/// Write `record` durably (blocking).
pub fn save(store: &dyn ArtifactStore, record: &JobRecord) -> Result<(), RegistryError> {
    let bytes = serde_json::to_vec_pretty(record).expect("a record serializes");
    store.put(&record_key(&record.id), &bytes)?;
    Ok(())
}

pub fn put_input(store: &dyn ArtifactStore, job: &str, input: &[u8]) -> Result<ArtifactRef, StoreError> {
    store.put(&format!("{PREFIX}{job}/input"), input)
}

pub fn put_proof(store: &dyn ArtifactStore, job: &str, proof: &[u8]) -> Result<ArtifactRef, StoreError> {
    store.put(&format!("{PREFIX}{job}/proof"), proof)
}

pub fn put_timeline(store: &dyn ArtifactStore, job: &str, json: &[u8]) -> Result<ArtifactRef, StoreError> {
    store.put(&format!("{PREFIX}{job}/timeline.json"), json)
}

/// Whether the leader wrote `job`'s manifest (it can be resumed).
pub fn has_manifest(store: &dyn ArtifactStore, job: &str) -> Result<bool, StoreError> {
    Ok(store.get_raw(&format!("{job}/manifest"))?.is_some())
}

/// Delete everything of `job`: the service's prefix and whatever the leader left.
pub fn delete(store: &dyn ArtifactStore, job: &str) -> Result<(), StoreError> {
    store.delete_prefix(job)?;
    store.delete_prefix(&prefix(job))
}

/// Run a blocking store call off the async threads.
pub async fn blocking<T: Send + 'static>(
    store: &Arc<dyn ArtifactStore>,
    f: impl FnOnce(&dyn ArtifactStore) -> T + Send + 'static,
) -> T {
    let store = store.clone();
    tokio::task::spawn_blocking(move || f(&*store)).await.expect("store call panicked")
}

#[cfg(test)]
mod tests {
    use proofline_runtime::plugin::{Plan, SegmentSpec};
    use proofline_runtime::store::MemStore;

    use super::*;

    fn plan() -> Plan {
        Plan {
            segments: vec![
                SegmentSpec { payload: vec![1], cost: 5 },
                SegmentSpec { payload: vec![2], cost: 7 },
            ]
            .into(),
            meta: vec![],
            summary: "two".into(),
            name: "block-1".into(),
        }
    }

    #[test]
    fn records_round_trip_and_are_listed_by_their_prefix_only() {
        let store = MemStore::default();
        let job = "job-1a-0123abcd";
        let input = put_input(&store, job, b"{}").unwrap();
        let record = JobRecord::new(job.into(), "default".into(), 7, 8, "sim@1".into(), &plan(), input);
        assert_eq!((record.segments, record.cost_total), (2, 12));
        save(&store, &record).unwrap();
        // The leader's own prefix and foreign data are not service records.
        store.put(&format!("{job}/manifest"), b"m").unwrap();
        store.put("docs/readme", b"x").unwrap();
        store.put("serve-notajob/record.json", b"x").unwrap();
        let listed = list(&store).unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].1.as_ref().unwrap().as_ref(), Some(&record));
        assert!(has_manifest(&store, job).unwrap());
        delete(&store, job).unwrap();
        assert!(list(&store).unwrap().is_empty());
        assert!(!has_manifest(&store, job).unwrap());
        assert!(store.get_raw("docs/readme").unwrap().is_some());
    }

    #[test]
    fn an_input_without_a_record_or_a_damaged_record_is_reported_not_guessed() {
        let store = MemStore::default();
        put_input(&store, "job-1a-00000001", b"{}").unwrap();
        store.put("serve-job-1a-00000002/record.json", b"{not json").unwrap();
        let listed = list(&store).unwrap();
        assert_eq!(listed.len(), 2);
        assert!(matches!(listed[0], (ref job, Ok(None)) if job == "job-1a-00000001"));
        assert!(matches!(listed[1].1, Err(RegistryError::Damaged { .. })));
    }

    #[test]
    fn prefixes_map_to_job_ids() {
        assert_eq!(prefix("job-1-00000000"), "serve-job-1-00000000");
        assert_eq!(job_of_prefix("serve-job-1-00000000"), Some("job-1-00000000"));
        assert_eq!(job_of_prefix("job-1-00000000"), None);
        assert_eq!(job_of_prefix("serve-x"), None);
    }
}
