//! The task model: jobs, deterministic task ids, artifact references, tasks and results.
//!
//! Tasks carry references to artifacts, never large proof bytes (artifacts of up to 128
//! bytes travel inline in the reference: `store::inline`). Task ids are deterministic
//! (`seg-17`, `agg-16-19`) so a re-sent task writes the same artifact key and a
//! duplicate result is recognised by id.

use std::fmt;

use rkyv::{Archive, Deserialize, Serialize};

/// A content-addressed pointer to bytes in an artifact store.
#[derive(
    Archive, Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize,
)]
pub struct ArtifactRef {
    /// Store-relative location, e.g. `fs:job-1a2b/seg-3` or `mem:job-1a2b/agg-0-7`.
    pub uri: String,
    /// BLAKE3 digest of the bytes; checked on every read.
    pub blake3: [u8; 32],
    pub len: u64,
}

impl fmt::Display for ArtifactRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({} bytes, blake3 {})", self.uri, self.len, hex::encode(&self.blake3[..6]))
    }
}

/// What a task asks a worker to do.
#[derive(Archive, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TaskKind {
    /// Prove one segment; `inputs[0]` is the segment payload.
    Segment,
    /// Fold two adjacent proofs; `inputs` = `[left, right]`.
    Aggregate,
}

impl From<TaskKind> for proofline_plugin::StepKind {
    fn from(kind: TaskKind) -> Self {
        match kind {
            TaskKind::Segment => Self::Segment,
            TaskKind::Aggregate => Self::Aggregate,
        }
    }
}

/// One unit of work, as it travels to workers.
#[derive(Archive, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Task {
    pub job: String,
    /// The run of the job this dispatch belongs to (one per leader incarnation):
    /// cancelling a run never touches a later resumed run of the same job.
    pub run: u64,
    /// Deterministic within the job: see [`segment_task_id`] and [`aggregate_task_id`].
    pub id: String,
    pub kind: TaskKind,
    /// `name@version` of the plugin that must run it.
    pub plugin: String,
    pub inputs: Vec<ArtifactRef>,
    /// Segments covered, half-open: `start..end`.
    pub start: u32,
    pub end: u32,
    /// 1 for the first dispatch; incremented on every re-dispatch.
    pub attempt: u32,
    /// Dispatches the leader allows; a worker dead-letters the last failed attempt.
    pub max_attempts: u32,
    /// The longest this attempt may run, in milliseconds: past it the leader abandons
    /// the attempt and dispatches another, and the worker cancels it.
    pub deadline_ms: u64,
    /// Cost estimate in the plugin's unit.
    pub cost: u64,
    /// Where results go: the leader's result queue.
    pub reply_to: String,
}

/// How a task ended on a worker (or that it is still running).
#[derive(Archive, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Done(ArtifactRef),
    Failed {
        message: String,
        retryable: bool,
    },
    /// Heartbeat: the task is still running on `ran_on` (for `exec_micros` so far);
    /// not a final outcome.
    Running,
    /// An input artifact failed its BLAKE3 check or is missing: the leader recomputes
    /// it, then retries.
    CorruptInput {
        uri: String,
        message: String,
    },
}

/// Control messages between leaders and workers: broadcasts to every worker, hunger
/// reports from a worker to one leader, and give-backs from a leader to one worker.
#[derive(Archive, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub enum Control {
    /// The run `run` of `job` ended: drop its queued tasks and abandon running ones.
    CancelJob { job: String, run: u64 },
    /// Give up on one attempt of a task (it ran past its timeout); the leader has
    /// already dispatched another.
    AbandonTask { job: String, run: u64, task: String, attempt: u32 },
    /// Worker to one leader ([`Transport::report_hunger`](crate::transport::Transport::report_hunger)):
    /// `worker` has `idle_lanes` of its `lanes` idle and nothing queued.
    Hungry { worker: String, idle_lanes: u32, lanes: u32 },
    /// Leader to one worker ([`Transport::direct`](crate::transport::Transport::direct)):
    /// hand up to `tasks` held but unstarted tasks back to the broker, for a hungry peer.
    GiveBack { tasks: u32 },
}

/// A worker's answer to a task.
#[derive(Archive, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct TaskResult {
    pub job: String,
    pub task: String,
    pub attempt: u32,
    pub start: u32,
    pub end: u32,
    pub outcome: Outcome,
    /// `worker-id/lane` that ran it, for logs and stats.
    pub ran_on: String,
    pub exec_micros: u64,
    /// Tasks the worker held but had not started when it sent this: how leaders
    /// know whom to ask for work when a peer is hungry.
    pub held: u32,
}

impl TaskResult {
    /// `task`'s result (or heartbeat) as reported by `ran_on`.
    pub fn of(task: &Task, outcome: Outcome, ran_on: String, exec_micros: u64) -> Self {
        Self {
            job: task.job.clone(),
            task: task.id.clone(),
            attempt: task.attempt,
            start: task.start,
            end: task.end,
            outcome,
            ran_on,
            exec_micros,
            held: 0,
        }
    }
}

impl TaskResult {
    /// The worker part of [`ran_on`](Self::ran_on) (`worker-id/lane`).
    pub fn worker(&self) -> &str {
        self.ran_on.rsplit_once('/').map_or(&self.ran_on, |(worker, _)| worker)
    }
}

/// Every leader's result queue starts with this; a worker replies nowhere else.
pub const RESULTS_QUEUE_PREFIX: &str = "proofline.results.";

/// Id of the segment task `index`: `seg-17`.
pub fn segment_task_id(index: u32) -> String {
    format!("seg-{index}")
}

/// Id of the aggregation covering segments `start..end`: `agg-16-19` (inclusive bounds).
pub fn aggregate_task_id(start: u32, end: u32) -> String {
    format!("agg-{start}-{}", end - 1)
}

/// Whether `id` has the shape [`new_job_id`] makes: `job-<hex seconds>-<8 hex>`.
/// Job ids name store prefixes, so anything else from the network is rejected.
pub fn is_job_id(id: &str) -> bool {
    let Some(rest) = id.strip_prefix("job-") else { return false };
    let Some((secs, salt)) = rest.split_once('-') else { return false };
    let hex = |s: &str| s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    (1..=16).contains(&secs.len()) && hex(secs) && salt.len() == 8 && hex(salt)
}

/// Whether `id` is a task id this runtime makes: `seg-N` or `agg-A-B` with `A <= B`.
pub fn is_task_id(id: &str) -> bool {
    let number = |s: &str| !s.is_empty() && s.len() <= 10 && s.bytes().all(|b| b.is_ascii_digit());
    if let Some(n) = id.strip_prefix("seg-") {
        return number(n) && n.parse::<u32>().is_ok();
    }
    let Some((a, b)) = id.strip_prefix("agg-").and_then(|r| r.split_once('-')) else { return false };
    match (number(a).then(|| a.parse::<u32>()), number(b).then(|| b.parse::<u32>())) {
        (Some(Ok(a)), Some(Ok(b))) => a <= b,
        _ => false,
    }
}

/// A fresh job id: time-ordered and unique enough for one cluster.
pub fn new_job_id() -> String {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    format!("job-{:x}-{}", now.as_secs(), &crate::store::unique_hex()[..8])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn task_ids_are_deterministic_and_readable() {
        assert_eq!(segment_task_id(17), "seg-17");
        assert_eq!(aggregate_task_id(16, 20), "agg-16-19");
    }

    #[test]
    fn fresh_job_ids_are_distinct_and_match_their_pattern() {
        let (a, b) = (new_job_id(), new_job_id());
        assert_ne!(a, b);
        assert!(is_job_id(&a) && is_job_id(&b), "{a} {b}");
        for bad in [
            "",
            "job-",
            "job-1-",
            "job-1-abcdefg",
            "job-1-ABCDEF12",
            "job-1-abcdef12/..",
            "../job-1-abcdef12",
            "docs",
        ] {
            assert!(!is_job_id(bad), "{bad:?} accepted");
        }
    }

    #[test]
    fn task_ids_from_the_network_must_match_the_patterns() {
        for good in ["seg-0", "seg-17", "agg-0-1", "agg-16-19"] {
            assert!(is_task_id(good), "{good}");
        }
        for bad in
            ["", "seg-", "seg--1", "seg-1/../x", "agg-3-1", "agg-1", "agg-1-2-3", "seg-99999999999", "x"]
        {
            assert!(!is_task_id(bad), "{bad:?} accepted");
        }
    }
}
