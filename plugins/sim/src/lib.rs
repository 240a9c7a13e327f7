//! `sim`: a synthetic workload with configurable task costs, for scheduler tests and
//! benchmarks. It proves nothing and is never presented as a proof system: a segment's
//! "proof" records which segments it covers, so the fold's bookkeeping can be checked.
//!
//! The job input is a JSON [`Workload`]:
//! ```json
//! {"tasks": 1000, "cost": {"heavy_tailed": {"min_micros": 500, "alpha": 1.5, "max_micros": 50000}},
//!  "seed": 7, "aggregate_micros": 0, "work": "spin"}
//! ```

mod workload;

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use proofline_plugin::{
    ExecCx, JobMeta, Plan, PlanOptions, PluginError, PluginId, ProofSystem, SegmentSpec, Segments, Verdict,
};
pub use workload::{Cost, Failure, FailureMode, Work, Workload};

/// The sim plugin. Clones share their counters.
#[derive(Clone, Default)]
pub struct SimPlugin {
    counters: Arc<Counters>,
}

/// What ran, as seen by the plugin itself (in this process).
#[derive(Default)]
pub struct Counters {
    /// Segment executions that ran to completion (including duplicates).
    pub segments_completed: AtomicU64,
    pub aggregations_completed: AtomicU64,
    /// Attempts per segment index, for failure injection.
    attempts: std::sync::Mutex<std::collections::HashMap<u32, u32>>,
    pub failures_injected: AtomicU32,
}

impl SimPlugin {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn counters(&self) -> &Counters {
        &self.counters
    }
}

/// A segment's payload: its index, its cost, how to work, and whether to fail.
#[derive(Debug, PartialEq)]
struct Segment {
    index: u32,
    micros: u64,
    aggregate_micros: u64,
    work: Work,
    fail: Option<Failure>,
    artifact_bytes: u64,
}

/// Bytes of an encoded [`Segment`] without a failure.
const SEGMENT_BYTES: usize = 29;

impl Segment {
    /// 29 little-endian bytes (index, micros, aggregate micros, work, artifact bytes),
    /// then the failure as JSON if there is one: small enough to travel inline in the
    /// task (see `proofline_runtime::store::inline`), so a million segments cost no
    /// store round trips and little memory.
    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(SEGMENT_BYTES);
        out.extend_from_slice(&self.index.to_le_bytes());
        out.extend_from_slice(&self.micros.to_le_bytes());
        out.extend_from_slice(&self.aggregate_micros.to_le_bytes());
        out.push(self.work as u8);
        out.extend_from_slice(&self.artifact_bytes.to_le_bytes());
        if let Some(fail) = &self.fail {
            out.extend(serde_json::to_vec(fail).expect("serializable"));
        }
        out
    }

    fn decode(bytes: &[u8]) -> Result<Self, PluginError> {
        let bad = |why: String| PluginError::permanent(format!("sim segment payload: {why}"));
        if bytes.len() < SEGMENT_BYTES {
            return Err(bad(format!("{} bytes, expected at least {SEGMENT_BYTES}", bytes.len())));
        }
        let u64_at = |i: usize| u64::from_le_bytes(bytes[i..i + 8].try_into().expect("8 bytes"));
        let work = match bytes[20] {
            0 => Work::Spin,
            1 => Work::Sleep,
            other => return Err(bad(format!("unknown work {other}"))),
        };
        let fail = match &bytes[SEGMENT_BYTES..] {
            [] => None,
            json => Some(serde_json::from_slice(json).map_err(|e| bad(e.to_string()))?),
        };
        Ok(Self {
            index: u32::from_le_bytes(bytes[..4].try_into().expect("4 bytes")),
            micros: u64_at(4),
            aggregate_micros: u64_at(12),
            work,
            fail,
            artifact_bytes: u64_at(21),
        })
    }
}

/// A "proof" of a range: its bounds, the fold's work settings, then `pad` filler bytes
/// (to give artifacts a realistic size in store benchmarks).
fn range_proof(start: u32, end: u32, aggregate_micros: u64, work: Work, pad: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(17 + pad);
    out.extend_from_slice(&start.to_le_bytes());
    out.extend_from_slice(&end.to_le_bytes());
    out.extend_from_slice(&aggregate_micros.to_le_bytes());
    out.push(work as u8);
    out.extend((0..pad).map(|i| (i as u32 ^ start.wrapping_mul(2_654_435_761) ^ end) as u8));
    out
}

/// `(start, end, aggregate_micros, work)` of a range proof; the filler is ignored.
fn parse_range(bytes: &[u8]) -> Result<(u32, u32, u64, Work), PluginError> {
    if bytes.len() < 17 {
        return Err(PluginError::permanent(format!(
            "sim proof must be at least 17 bytes, got {}",
            bytes.len()
        )));
    }
    let u32_at = |i: usize| u32::from_le_bytes(bytes[i..i + 4].try_into().expect("4 bytes"));
    let micros = u64::from_le_bytes(bytes[8..16].try_into().expect("8 bytes"));
    let work = if bytes[16] == Work::Sleep as u8 { Work::Sleep } else { Work::Spin };
    Ok((u32_at(0), u32_at(4), micros, work))
}

/// `PROOFLINE_SIM_EXEC_LOG`, read once (not once per segment: reading the environment
/// takes a process-wide lock).
fn exec_log() -> Option<&'static std::ffi::OsStr> {
    static LOG: std::sync::OnceLock<Option<std::ffi::OsString>> = std::sync::OnceLock::new();
    LOG.get_or_init(|| std::env::var_os("PROOFLINE_SIM_EXEC_LOG")).as_deref()
}

/// With `PROOFLINE_SIM_EXEC_LOG=FILE`, every completed segment appends `seg-N` to
/// FILE: tests count executions across processes (killed leaders, many workers).
fn log_execution(path: &std::ffi::OsStr, index: u32) {
    use std::io::Write;
    let line = format!("seg-{index}\n");
    let appended = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .and_then(|mut f| f.write_all(line.as_bytes()));
    if let Err(e) = appended {
        eprintln!("sim: cannot append to PROOFLINE_SIM_EXEC_LOG: {e}");
    }
}

/// How often a sleeping task wakes to look for cancellation. Every wake costs CPU: at
/// 2 ms, the sleeps were three quarters of a 100 ms sleep task's worker CPU (`proofline-bench
/// scale`, per thread), and 100-200 workers on 2 cores spent their CPU on it.
const SLEEP_POLL: Duration = Duration::from_millis(10);

/// Spend `micros` of wall time, polling for cancellation.
fn work(cx: &ExecCx, how: Work, micros: u64) -> Result<(), PluginError> {
    let until = Instant::now() + Duration::from_micros(micros);
    while Instant::now() < until {
        if cx.is_cancelled() {
            return Err(PluginError::Cancelled);
        }
        match how {
            Work::Spin => std::hint::spin_loop(),
            Work::Sleep => std::thread::sleep((until - Instant::now()).min(SLEEP_POLL)),
        }
    }
    Ok(())
}

impl ProofSystem for SimPlugin {
    fn id(&self) -> PluginId {
        PluginId::new("sim", env!("CARGO_PKG_VERSION"))
    }

    fn plan(&self, input: &[u8], _opts: &PlanOptions) -> Result<Plan, PluginError> {
        let workload: Workload = serde_json::from_slice(input)
            .map_err(|e| PluginError::bad_input(format!("sim workload: {e}")))?;
        let costs = workload.costs().map_err(PluginError::bad_input)?;
        let total: u64 = costs.iter().sum();
        let tasks = costs.len();
        let summary = format!("sim: {tasks} tasks, {:.1} ms of work", total as f64 / 1e3);
        let meta = [&(tasks as u32).to_le_bytes()[..], &[workload.wrap_reads_leaves as u8]].concat();
        // Made as the leader reads them: a million-segment plan holds its costs, not its payloads.
        let segments = Segments::made(tasks, move |i| {
            let micros = costs[i];
            let fail = workload.fail.clone().filter(|f| f.segments.contains(&(i as u32)));
            let segment = Segment {
                index: i as u32,
                micros,
                aggregate_micros: workload.aggregate_micros,
                work: workload.work,
                fail,
                artifact_bytes: workload.artifact_bytes,
            };
            SegmentSpec { payload: segment.encode(), cost: micros }
        });
        // The meta: the task count, then whether wrap reads the leaves.
        Ok(Plan { segments, meta, summary, name: format!("sim-{}", &blake3::hash(input).to_hex()[..8]) })
    }

    fn prove_segment(&self, cx: &mut ExecCx, payload: &[u8]) -> Result<Vec<u8>, PluginError> {
        let seg = Segment::decode(payload)?;
        if let Some(fail) = &seg.fail {
            let attempt = {
                let mut attempts = self.counters.attempts.lock().expect("attempts lock");
                let a = attempts.entry(seg.index).or_default();
                *a += 1;
                *a
            };
            if fail.times == 0 || attempt <= fail.times {
                self.counters.failures_injected.fetch_add(1, Ordering::Relaxed);
                let message = format!("injected failure in segment {} (attempt {attempt})", seg.index);
                match fail.mode {
                    FailureMode::Panic => panic!("{message}"),
                    FailureMode::Retryable => return Err(PluginError::retryable(message)),
                    FailureMode::Permanent => return Err(PluginError::permanent(message)),
                    FailureMode::Hang => {
                        work(cx, Work::Sleep, 3_600_000_000)?;
                        return Err(PluginError::permanent(format!("{message}: woke after an hour")));
                    }
                }
            }
        }
        work(cx, seg.work, seg.micros)?;
        self.counters.segments_completed.fetch_add(1, Ordering::Relaxed);
        if let Some(log) = exec_log() {
            log_execution(log, seg.index);
        }
        Ok(range_proof(seg.index, seg.index + 1, seg.aggregate_micros, seg.work, seg.artifact_bytes as usize))
    }

    fn aggregate(&self, cx: &mut ExecCx, left: &[u8], right: &[u8]) -> Result<Vec<u8>, PluginError> {
        let (a, m, micros, how) = parse_range(left)?;
        let pad = left.len() - 17;
        let (m2, b, _, _) = parse_range(right)?;
        if m != m2 {
            return Err(PluginError::permanent(format!(
                "sim: ranges {a}..{m} and {m2}..{b} are not adjacent"
            )));
        }
        work(cx, how, micros)?;
        self.counters.aggregations_completed.fetch_add(1, Ordering::Relaxed);
        Ok(range_proof(a, b, micros, how, pad))
    }

    fn wrap(&self, _cx: &mut ExecCx, root: &[u8], job: &JobMeta) -> Result<Vec<u8>, PluginError> {
        let (a, b, ..) = parse_range(root)?;
        let (count, reads_leaves) = match job.meta {
            [n0, n1, n2, n3, flag] => ([*n0, *n1, *n2, *n3], *flag == 1),
            _ => return Err(PluginError::permanent("sim meta must be 5 bytes")),
        };
        let n = u32::from_le_bytes(count);
        if (a, b) != (0, n) {
            return Err(PluginError::permanent(format!("sim: root covers {a}..{b}, expected 0..{n}")));
        }
        for i in (0..job.leaves.leaf_count()).filter(|_| reads_leaves) {
            let (start, end, ..) = parse_range(&job.leaves.leaf(i)?)?;
            if (start, end) != (i, i + 1) {
                return Err(PluginError::permanent(format!("sim: leaf {i} covers {start}..{end}")));
            }
        }
        Ok(root[..8].to_vec())
    }

    fn verify(&self, proof: &[u8]) -> Result<Verdict, PluginError> {
        let bytes: [u8; 8] =
            proof.try_into().map_err(|_| PluginError::bad_input("sim proof must be 8 bytes"))?;
        let (a, b) = (
            u32::from_le_bytes(bytes[..4].try_into().expect("4")),
            u32::from_le_bytes(bytes[4..].try_into().expect("4")),
        );
        Ok(if a == 0 && b > 0 {
            Verdict::Valid {
                statement: format!("sim workload of {b} tasks was folded completely (not a proof)"),
            }
        } else {
            Verdict::Invalid { reason: format!("sim root covers {a}..{b}") }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segment_payloads_round_trip_compactly_and_garbage_is_refused() {
        let plain = Segment {
            index: 7,
            micros: 1000,
            aggregate_micros: 3,
            work: Work::Sleep,
            fail: None,
            artifact_bytes: 1 << 20,
        };
        let bytes = plain.encode();
        assert_eq!(bytes.len(), SEGMENT_BYTES);
        assert_eq!(Segment::decode(&bytes).unwrap(), plain);
        let failing =
            Segment { fail: Some(Failure { segments: vec![7], mode: FailureMode::Hang, times: 1 }), ..plain };
        assert_eq!(Segment::decode(&failing.encode()).unwrap(), failing);
        assert!(Segment::decode(&bytes[..SEGMENT_BYTES - 1]).is_err());
        let mut bad_work = bytes.clone();
        bad_work[20] = 9;
        assert!(Segment::decode(&bad_work).is_err());
        assert!(Segment::decode(&[bytes.as_slice(), b"{not json"].concat()).is_err());
    }

    #[test]
    fn a_planned_segment_proves_its_own_range() {
        let sim = SimPlugin::new();
        let plan =
            sim.plan(br#"{"tasks": 3, "cost": {"fixed": {"micros": 0}}}"#, &PlanOptions::default()).unwrap();
        let mut cx = ExecCx::default();
        let proof = sim.prove_segment(&mut cx, &plan.segments.get(2).unwrap().payload).unwrap();
        assert_eq!(parse_range(&proof).unwrap().0..parse_range(&proof).unwrap().1, 2..3);
    }
}
