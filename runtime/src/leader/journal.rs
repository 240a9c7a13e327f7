//! The job manifest and journal: enough in the artifact store to resume a job whose
//! leader died, so that finished segments are not proven again.
//!
//! `{job}/manifest` is written once, before any task is published: the plugin, the
//! segment payload references and the wrap metadata. `{job}/journal/{seq}` entries are
//! appended as results arrive, one per handled batch, each listing the tasks that
//! finished and their artifacts. Both carry a BLAKE3 checksum of their own content.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::plugin::Plan;
use crate::store::{ArtifactStore, StoreError};
use crate::task::ArtifactRef;

const VERSION: u32 = 1;

/// What a job is, independent of how far it got.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Manifest {
    pub version: u32,
    pub job: String,
    /// `name@version` of the plugin.
    pub plugin: String,
    pub summary: String,
    pub meta: ArtifactRef,
    pub segments: Vec<SegmentRef>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SegmentRef {
    pub payload: ArtifactRef,
    pub cost: u64,
}

/// A task that finished, and where its output lives.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    pub task: String,
    pub start: u32,
    pub end: u32,
    pub depth: u32,
    pub artifact: ArtifactRef,
}

#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error(
        "job {job} has no manifest in the store (wrong --store, wrong job id, or the job already finished and was cleaned up)"
    )]
    NoManifest { job: String },
    #[error("{key}: {reason}")]
    Corrupt { key: String, reason: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// `{"body": ..., "blake3": "..."}`: JSON that knows whether it was damaged.
#[derive(Serialize, Deserialize)]
struct Sealed<T> {
    body: T,
    blake3: String,
}

fn seal<T: Serialize>(body: T) -> Vec<u8> {
    let digest = blake3::hash(&serde_json::to_vec(&body).expect("serializable"));
    serde_json::to_vec(&Sealed { body, blake3: digest.to_hex().to_string() }).expect("serializable")
}

fn unseal<T: Serialize + for<'de> Deserialize<'de>>(key: &str, bytes: &[u8]) -> Result<T, JournalError> {
    let corrupt = |reason: String| JournalError::Corrupt { key: key.to_owned(), reason };
    let sealed: Sealed<T> = serde_json::from_slice(bytes).map_err(|e| corrupt(e.to_string()))?;
    let digest = blake3::hash(&serde_json::to_vec(&sealed.body).expect("serializable"));
    if digest.to_hex().as_str() != sealed.blake3 {
        return Err(corrupt("checksum mismatch".into()));
    }
    Ok(sealed.body)
}

/// Appends records of one job.
pub struct Journal {
    store: Arc<dyn ArtifactStore>,
    job: String,
    next_seq: u64,
}

impl Journal {
    /// Store the plan (payloads, metadata) and the manifest of a new job.
    pub fn create(
        store: Arc<dyn ArtifactStore>,
        job: &str,
        plugin: &str,
        plan: Plan,
    ) -> Result<(Self, Manifest), StoreError> {
        let meta = store.put(&format!("{job}/meta"), &plan.meta)?;
        let mut segments = Vec::with_capacity(plan.segments.len());
        for (i, segment) in plan.segments.into_iter().enumerate() {
            let payload = store.put(&format!("{job}/seg-{i}.in"), &segment.payload)?;
            segments.push(SegmentRef { payload, cost: segment.cost });
        }
        let manifest = Manifest {
            version: VERSION,
            job: job.to_owned(),
            plugin: plugin.to_owned(),
            summary: plan.summary,
            meta,
            segments,
        };
        store.put(&format!("{job}/manifest"), &seal(&manifest))?;
        Ok((Self { store, job: job.to_owned(), next_seq: 0 }, manifest))
    }

    /// Read a job's manifest and everything its journal says finished.
    pub fn open(
        store: Arc<dyn ArtifactStore>,
        job: &str,
    ) -> Result<(Self, Manifest, Vec<Record>), JournalError> {
        let key = format!("{job}/manifest");
        let bytes = store.get_raw(&key)?.ok_or_else(|| JournalError::NoManifest { job: job.to_owned() })?;
        let manifest: Manifest = unseal(&key, &bytes)?;
        let mut records = Vec::new();
        let mut seq = 0;
        while let Some(bytes) = store.get_raw(&Self::entry_key(job, seq))? {
            let entry: Vec<Record> = unseal(&Self::entry_key(job, seq), &bytes)?;
            records.extend(entry);
            seq += 1;
        }
        Ok((Self { store, job: job.to_owned(), next_seq: seq }, manifest, records))
    }

    fn entry_key(job: &str, seq: u64) -> String {
        format!("{job}/journal/{seq:010}")
    }

    pub fn append(&mut self, records: &[Record]) -> Result<(), StoreError> {
        if records.is_empty() {
            return Ok(());
        }
        self.store.put(&Self::entry_key(&self.job, self.next_seq), &seal(records))?;
        self.next_seq += 1;
        Ok(())
    }
}

/// The finished ranges no other finished range contains: what a resumed fold starts from.
pub fn maximal_ranges(records: &[Record]) -> Vec<Record> {
    let mut sorted: Vec<&Record> = records.iter().collect();
    // By start, widest first: a range is maximal iff it is not inside the last kept one.
    sorted.sort_by_key(|r| (r.start, std::cmp::Reverse(r.end)));
    let mut out: Vec<Record> = Vec::new();
    for r in sorted {
        if out.last().is_some_and(|last| r.end <= last.end) {
            continue;
        }
        out.push(r.clone());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugin::SegmentSpec;
    use crate::store::MemStore;

    fn record(task: &str, start: u32, end: u32) -> Record {
        let artifact = ArtifactRef { uri: format!("mem:j/{task}"), blake3: [0; 32], len: 0 };
        Record { task: task.into(), start, end, depth: 0, artifact }
    }

    #[test]
    fn journal_round_trips_and_detects_damage() {
        let store: Arc<dyn ArtifactStore> = Arc::new(MemStore::default());
        let plan = Plan {
            segments: vec![
                SegmentSpec { payload: b"a".to_vec(), cost: 1 },
                SegmentSpec { payload: b"b".to_vec(), cost: 2 },
            ],
            meta: b"meta".to_vec(),
            summary: "two".into(),
        };
        let (mut journal, _) = Journal::create(store.clone(), "j", "sim@1", plan).unwrap();
        journal.append(&[record("seg-0", 0, 1)]).unwrap();
        journal.append(&[]).unwrap();
        journal.append(&[record("seg-1", 1, 2), record("agg-0-1", 0, 2)]).unwrap();
        let (_, manifest, records) = Journal::open(store.clone(), "j").unwrap();
        assert_eq!(manifest.segments.len(), 2);
        assert_eq!(records.len(), 3);
        assert!(matches!(Journal::open(store.clone(), "nope"), Err(JournalError::NoManifest { .. })));
        store.put("j/journal/0000000001", b"{\"body\": [], \"blake3\": \"00\"}").unwrap();
        assert!(matches!(Journal::open(store, "j"), Err(JournalError::Corrupt { .. })));
    }

    #[test]
    fn maximal_ranges_drop_what_a_bigger_range_covers() {
        let records =
            [record("seg-0", 0, 1), record("seg-1", 1, 2), record("agg-0-1", 0, 2), record("seg-3", 3, 4)];
        let max: Vec<_> = maximal_ranges(&records).into_iter().map(|r| r.task).collect();
        assert_eq!(max, ["agg-0-1", "seg-3"]);
    }
}
