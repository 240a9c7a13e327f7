//! The job manifest and journal: enough in the artifact store to resume a job whose
//! leader died, so that finished segments are not proven again.
//!
//! `{job}/manifest` is written once, before any task is published: the plugin, the
//! segment payload references and the wrap metadata. `{job}/journal/{seq}` entries are
//! appended as results arrive, one per handled batch, each listing the tasks that
//! finished and their artifacts. Both carry a BLAKE3 checksum of their own content.
//!
//! The leader keeps only the records the fold still needs; [`Journal::recall`] reads
//! others back when a repair needs them, and [`Journal::leaves`] the segments' artifacts
//! for wrap.
//!
//! Reading the journal back ([`replay`]) stops at the first missing entry. A damaged
//! entry is handled by where it is:
//!
//! * the **last** entry (nothing follows it) is a torn write: the leader died while
//!   writing it, on a store whose writes are not atomic. The journal ends before it
//!   (a warning is logged); its tasks are simply run again, and the next append
//!   overwrites it.
//! * an entry **followed by valid ones** cannot come from a crash (entries are
//!   written one after another): the store was damaged, and resuming is refused
//!   ([`JournalError::Corrupt`]) rather than silently forgetting work in the middle.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::segments::{SegmentPages, SegmentTable};
use crate::plugin::Plan;
use crate::store::{ArtifactStore, StoreError, inline};
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
    /// [`Plan::name`](crate::plugin::Plan::name); empty in journals written before it existed.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(with = "artifact_json")]
    pub meta: ArtifactRef,
    /// Every segment, in order (in the stored manifest: only when there are at most
    /// [`SEGMENTS_PER_PART`]; see `segment_parts`).
    #[serde(default)]
    pub segments: Vec<SegmentRef>,
    /// A plan of more than [`SEGMENTS_PER_PART`] segments keeps them in parts of that
    /// many (`{job}/segments/{k}`, each sealed like the manifest): no single document,
    /// and no single buffer while writing it, grows with the plan.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub segment_parts: Vec<ArtifactRef>,
    /// The segments once read or made (`Journal::create`, `Journal::open`): what
    /// the leader holds (all of a one-part plan; the costs and the first page of a
    /// larger one, whose other pages are read back from `segment_parts`). `segments`
    /// is then empty.
    #[serde(skip)]
    pub pages: SegmentPages,
}

/// Segments per part of a large manifest.
pub const SEGMENTS_PER_PART: usize = 1 << 15;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SegmentRef {
    #[serde(with = "artifact_json")]
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
    #[serde(with = "artifact_json")]
    pub artifact: ArtifactRef,
    /// The tasks whose outputs an aggregation folded (their records hold the
    /// artifacts), so a resumed leader can run it again if its artifact is lost. Empty
    /// for segments (their input is in the manifest) and in older journals.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub children: Vec<String>,
    /// The attempt that made `artifact` (written only when not the first), so a repair
    /// of a task read back from the journal is numbered after it.
    #[serde(default = "first_attempt", skip_serializing_if = "is_first_attempt")]
    pub attempt: u32,
}

fn first_attempt() -> u32 {
    1
}

fn is_first_attempt(attempt: &u32) -> bool {
    *attempt == 1
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

/// The JSON of `Sealed { body, blake3 }`, with the body serialized once, straight into
/// the output (a manifest of a million segments is hundreds of megabytes of JSON).
fn seal<T: Serialize>(body: T) -> Vec<u8> {
    let mut out = Vec::with_capacity(4096);
    out.extend_from_slice(b"{\"body\":");
    serde_json::to_writer(&mut out, &body).expect("serializable");
    let digest = blake3::hash(&out[8..]);
    out.extend_from_slice(b",\"blake3\":\"");
    out.extend_from_slice(digest.to_hex().as_bytes());
    out.extend_from_slice(b"\"}");
    out
}

fn unseal<T: Serialize + for<'de> Deserialize<'de>>(key: &str, bytes: &[u8]) -> Result<T, JournalError> {
    let corrupt = |reason: String| JournalError::Corrupt { key: key.to_owned(), reason };
    // As [`seal`] writes it: the digest is checked over the body's bytes as stored.
    const HEAD: &[u8] = b"{\"body\":";
    const TAIL: usize = b",\"blake3\":\"\"}".len() + 64;
    if bytes.len() >= HEAD.len() + TAIL && bytes.starts_with(HEAD) {
        let (body, tail) = bytes[HEAD.len()..].split_at(bytes.len() - HEAD.len() - TAIL);
        if tail.starts_with(b",\"blake3\":\"") && tail.ends_with(b"\"}") {
            if blake3::hash(body).to_hex().as_bytes() != &tail[11..75] {
                return Err(corrupt("checksum mismatch".into()));
            }
            return serde_json::from_slice(body).map_err(|e| corrupt(e.to_string()));
        }
    }
    // Laid out otherwise (written by hand): the digest of the body as serialized again.
    let sealed: Sealed<T> = serde_json::from_slice(bytes).map_err(|e| corrupt(e.to_string()))?;
    let digest = blake3::hash(&serde_json::to_vec(&sealed.body).expect("serializable"));
    if digest.to_hex().as_str() != sealed.blake3 {
        return Err(corrupt("checksum mismatch".into()));
    }
    Ok(sealed.body)
}

/// Artifact references in the manifest and journal: the digest as 64 hex digits
/// (journals written before read too, with the digest as an array of 32 numbers).
mod artifact_json {
    use serde::de::Error;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    use crate::task::ArtifactRef;

    #[derive(Serialize)]
    struct Out<'a> {
        uri: &'a str,
        blake3: &'a str,
        len: u64,
    }

    #[derive(Deserialize)]
    struct In {
        uri: String,
        blake3: Digest,
        len: u64,
    }

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Digest {
        Hex(String),
        Bytes([u8; 32]),
    }

    pub fn serialize<S: Serializer>(a: &ArtifactRef, s: S) -> Result<S::Ok, S::Error> {
        let mut hex = [0u8; 64];
        hex::encode_to_slice(a.blake3, &mut hex).expect("64 hex digits");
        let hex = std::str::from_utf8(&hex).expect("hex is ASCII");
        Out { uri: &a.uri, blake3: hex, len: a.len }.serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<ArtifactRef, D::Error> {
        let In { uri, blake3, len } = In::deserialize(d)?;
        let blake3 = match blake3 {
            Digest::Bytes(bytes) => bytes,
            Digest::Hex(hex) => {
                let mut bytes = [0u8; 32];
                hex::decode_to_slice(&hex, &mut bytes).map_err(D::Error::custom)?;
                bytes
            }
        };
        Ok(ArtifactRef { uri, blake3, len })
    }
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
        let n = plan.segments.len();
        // Every cost, kept apart only for a plan of several parts (one part's table has them).
        let paged = n > SEGMENTS_PER_PART;
        let mut costs = Vec::with_capacity(if paged { n } else { 0 });
        let mut page = SegmentTable::default();
        // The references of the part being written (or of the whole plan, if one part).
        let mut refs = Vec::with_capacity(n.min(SEGMENTS_PER_PART));
        let (mut first, mut segment_parts) = (None, Vec::new());
        for (i, segment) in plan.segments.into_iter().enumerate() {
            // Small payloads travel inline in their tasks (and in the manifest).
            let payload = inline::save(store.as_ref(), || format!("{job}/seg-{i}.in"), &segment.payload)?;
            let segment_ref = SegmentRef { payload, cost: segment.cost };
            let inline = inline::is_inline(&segment_ref.payload).then_some(&segment.payload[..]);
            if paged {
                costs.push(segment.cost);
            }
            page.push_known(&segment_ref, inline);
            refs.push(segment_ref);
            if paged && (page.len() == SEGMENTS_PER_PART || i + 1 == n) {
                let k = segment_parts.len();
                segment_parts.push(store.put(&format!("{job}/segments/{k:06}"), &seal(&refs))?);
                refs.clear();
                let done = std::mem::take(&mut page);
                first.get_or_insert(done);
            }
        }
        let mut manifest = Manifest {
            version: VERSION,
            job: job.to_owned(),
            plugin: plugin.to_owned(),
            summary: plan.summary,
            name: plan.name,
            meta,
            // A one-part plan's references (a larger plan's went out with its parts).
            segments: refs,
            segment_parts,
            pages: SegmentPages::default(),
        };
        store.put_raw(&format!("{job}/manifest"), &seal(&manifest))?;
        manifest.segments = Vec::new();
        manifest.pages = match first {
            // The first page stays loaded: it is the first to go out.
            Some(first) => {
                let mut pages = SegmentPages::paged(costs, SEGMENTS_PER_PART);
                pages.load(0, first);
                pages
            }
            None => SegmentPages::held(page),
        };
        Ok((Self { store, job: job.to_owned(), next_seq: 0 }, manifest))
    }

    /// Read a job's manifest and everything its journal says finished.
    pub fn open(
        store: Arc<dyn ArtifactStore>,
        job: &str,
    ) -> Result<(Self, Manifest, Vec<Record>), JournalError> {
        let key = format!("{job}/manifest");
        let bytes = store.get_raw(&key)?.ok_or_else(|| JournalError::NoManifest { job: job.to_owned() })?;
        let mut manifest: Manifest = unseal(&key, &bytes)?;
        manifest.pages = if manifest.segment_parts.is_empty() {
            SegmentPages::held(std::mem::take(&mut manifest.segments).into_iter().collect())
        } else {
            // Every part is read once for the costs (and checked); pages load on demand.
            let mut costs = Vec::new();
            for part in &manifest.segment_parts {
                let page = read_part(store.as_ref(), part)?;
                costs.extend((0..page.len()).map(|j| page.cost(j)));
            }
            SegmentPages::paged(costs, SEGMENTS_PER_PART)
        };
        let mut entries = Vec::new();
        while let Some(bytes) = store.get_raw(&Self::entry_key(job, entries.len() as u64))? {
            entries.push((Self::entry_key(job, entries.len() as u64), bytes));
        }
        let replayed = replay(&entries)?;
        if let Some(torn) = &replayed.torn {
            tracing::warn!(
                job,
                entry = %torn.key,
                reason = %torn.reason,
                "the job journal's last entry is torn (the leader died writing it): the journal ends before it, its tasks run again"
            );
        }
        let journal = Self { store, job: job.to_owned(), next_seq: replayed.next_seq };
        Ok((journal, manifest, replayed.records))
    }

    fn entry_key(job: &str, seq: u64) -> String {
        format!("{job}/journal/{seq:010}")
    }

    /// A read-only view of the entries written so far (for another thread).
    pub fn view(&self) -> JournalView {
        JournalView { store: self.store.clone(), job: self.job.clone(), entries: self.next_seq }
    }

    pub fn append(&mut self, records: &[Record]) -> Result<(), StoreError> {
        if records.is_empty() {
            return Ok(());
        }
        self.store.put_raw(&Self::entry_key(&self.job, self.next_seq), &seal(records))?;
        self.next_seq += 1;
        Ok(())
    }
}

/// One page of a large plan's segments, from its part in the store (checked against
/// the digest the manifest holds, and its seal).
pub fn read_part(store: &dyn ArtifactStore, part: &ArtifactRef) -> Result<SegmentTable, JournalError> {
    let bytes = store.get(part)?;
    Ok(unseal::<Vec<SegmentRef>>(&part.uri, &bytes)?.into_iter().collect())
}

/// The entries of a journal as far as they were written when the view was taken.
pub struct JournalView {
    store: Arc<dyn ArtifactStore>,
    job: String,
    entries: u64,
}

impl JournalView {
    /// The latest record of each task over one of `ranges` (`(start, end)`), read back
    /// from the entries written so far; a range the journal has no record of is absent.
    pub fn recall(&self, ranges: &[(u32, u32)]) -> Result<Vec<Record>, JournalError> {
        let wanted: std::collections::HashSet<(u32, u32)> = ranges.iter().copied().collect();
        let mut found: std::collections::HashMap<(u32, u32), Record> = Default::default();
        self.read_each(|r| {
            if wanted.contains(&(r.start, r.end)) {
                found.insert((r.start, r.end), r);
            }
        })?;
        Ok(found.into_values().collect())
    }

    /// The artifacts of segments `0..n`, as last journalled; `None` for a segment with
    /// no record.
    pub fn leaves(&self, n: u32) -> Result<Vec<Option<ArtifactRef>>, JournalError> {
        let mut leaves = vec![None; n as usize];
        self.read_each(|r| {
            if r.end == r.start + 1 && r.end <= n {
                leaves[r.start as usize] = Some(r.artifact);
            }
        })?;
        Ok(leaves)
    }

    /// Every record written so far, in order, one entry in memory at a time.
    fn read_each(&self, mut each: impl FnMut(Record)) -> Result<(), JournalError> {
        for seq in 0..self.entries {
            let key = Journal::entry_key(&self.job, seq);
            let bytes = self.store.get_raw(&key)?.ok_or_else(|| JournalError::Corrupt {
                key: key.clone(),
                reason: "the entry is missing".into(),
            })?;
            unseal::<Vec<Record>>(&key, &bytes)?.into_iter().for_each(&mut each);
        }
        Ok(())
    }
}

/// What the journal's entries say, read in order.
#[derive(Debug)]
pub struct Replayed {
    pub records: Vec<Record>,
    /// Sequence number of the next entry to write (overwrites a torn last entry).
    pub next_seq: u64,
    /// The torn last entry that was dropped, if any.
    pub torn: Option<Torn>,
}

/// A last journal entry that could not be read.
#[derive(Debug, PartialEq, Eq)]
pub struct Torn {
    pub key: String,
    pub reason: String,
}

/// Decode the entries `(key, bytes)` in sequence order: a damaged last entry ends the
/// journal; a damaged entry before a valid one is [`JournalError::Corrupt`].
pub fn replay(entries: &[(String, Vec<u8>)]) -> Result<Replayed, JournalError> {
    let mut records = Vec::new();
    for (i, (key, bytes)) in entries.iter().enumerate() {
        match unseal::<Vec<Record>>(key, bytes) {
            Ok(entry) => records.extend(entry),
            Err(JournalError::Corrupt { key, reason }) if i + 1 == entries.len() => {
                return Ok(Replayed { records, next_seq: i as u64, torn: Some(Torn { key, reason }) });
            }
            Err(JournalError::Corrupt { key, reason }) => {
                let reason = format!(
                    "{reason}; {} valid entr{} follow it, so this is damage, not a torn last write \
                     (restore the entry or start the job again)",
                    entries.len() - i - 1,
                    if entries.len() - i - 1 == 1 { "y" } else { "ies" }
                );
                return Err(JournalError::Corrupt { key, reason });
            }
            Err(e) => return Err(e),
        }
    }
    Ok(Replayed { records, next_seq: entries.len() as u64, torn: None })
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
mod tests;
