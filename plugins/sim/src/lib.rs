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

use proofline_runtime::plugin::{
    ExecCx, JobMeta, Plan, PlanOptions, PluginError, PluginId, ProofSystem, SegmentSpec, Verdict,
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
#[derive(serde::Serialize, serde::Deserialize)]
struct Segment {
    index: u32,
    micros: u64,
    aggregate_micros: u64,
    work: Work,
    fail: Option<Failure>,
    #[serde(default)]
    artifact_bytes: u64,
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

/// With `PROOFLINE_SIM_EXEC_LOG=FILE`, every completed segment appends `seg-N` to
/// FILE: tests count executions across processes (killed leaders, many workers).
fn log_execution(index: u32) {
    use std::io::Write;
    let Some(path) = std::env::var_os("PROOFLINE_SIM_EXEC_LOG") else { return };
    let line = format!("seg-{index}\n");
    let appended = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .and_then(|mut f| f.write_all(line.as_bytes()));
    if let Err(e) = appended {
        eprintln!("sim: cannot append to PROOFLINE_SIM_EXEC_LOG: {e}");
    }
}

/// Spend `micros` of wall time, polling for cancellation.
fn work(cx: &ExecCx, how: Work, micros: u64) -> Result<(), PluginError> {
    let until = Instant::now() + Duration::from_micros(micros);
    while Instant::now() < until {
        if cx.is_cancelled() {
            return Err(PluginError::Cancelled);
        }
        match how {
            Work::Spin => std::hint::spin_loop(),
            Work::Sleep => std::thread::sleep((until - Instant::now()).min(Duration::from_millis(2))),
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
        let segments = costs
            .iter()
            .enumerate()
            .map(|(i, &micros)| {
                let fail = workload.fail.clone().filter(|f| f.segments.contains(&(i as u32)));
                let segment = Segment {
                    index: i as u32,
                    micros,
                    aggregate_micros: workload.aggregate_micros,
                    work: workload.work,
                    fail,
                    artifact_bytes: workload.artifact_bytes,
                };
                SegmentSpec { payload: serde_json::to_vec(&segment).expect("serializable"), cost: micros }
            })
            .collect();
        let total: u64 = costs.iter().sum();
        Ok(Plan {
            segments,
            // The task count, then whether wrap reads the leaves.
            meta: [&(costs.len() as u32).to_le_bytes()[..], &[workload.wrap_reads_leaves as u8]].concat(),
            summary: format!("sim: {} tasks, {:.1} ms of work", costs.len(), total as f64 / 1e3),
            name: format!("sim-{}", &blake3::hash(input).to_hex()[..8]),
        })
    }

    fn prove_segment(&self, cx: &mut ExecCx, payload: &[u8]) -> Result<Vec<u8>, PluginError> {
        let seg: Segment = serde_json::from_slice(payload)
            .map_err(|e| PluginError::permanent(format!("sim segment payload: {e}")))?;
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
        log_execution(seg.index);
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
