//! The prover side of the contract: any [`ProofSystem`] as an exec prover binary.
//!
//! [`main`] reads the step from the command line, runs it in-process and writes the
//! files and exit code `docs/EXEC.md` asks for. `proofline-keccak-prover` is this
//! function around the keccak plugin; a Rust prover gets the contract for free the
//! same way.

use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use proofline_plugin::{
    ExecCx, JobMeta, LaneDevice, LeafSource, PlanOptions, PluginError, ProofSystem, Verdict,
};

use crate::contract::{
    EXIT_BAD_INPUT, EXIT_FAILED, EXIT_INVALID, EXIT_RETRY, EXIT_USAGE, PlanFile, PlanSegment, Step,
};

/// A step's failure: the exit code and the line for stderr.
#[derive(Debug, PartialEq, Eq)]
pub struct StepFailure {
    pub code: i32,
    pub message: String,
}

impl From<PluginError> for StepFailure {
    fn from(e: PluginError) -> Self {
        let code = match &e {
            PluginError::BadInput(_) => EXIT_BAD_INPUT,
            PluginError::Failed { retryable: true, .. } | PluginError::Cancelled => EXIT_RETRY,
            PluginError::Failed { retryable: false, .. } => EXIT_FAILED,
        };
        Self { code, message: e.to_string() }
    }
}

fn io_failure(what: &str, path: &Path, e: std::io::Error) -> StepFailure {
    StepFailure { code: EXIT_RETRY, message: format!("{what} {}: {e}", path.display()) }
}

const USAGE: &str = "usage: PROVER plan IN OUTDIR | segment IN OUT | aggregate LEFT RIGHT OUT | \
                     wrap ROOT META LEAVES OUT | verify PROOF (see docs/EXEC.md)";

/// Run the step named by the process's arguments; print failures to stderr.
pub fn main(plugin: &dyn ProofSystem) -> ExitCode {
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    match run_step(plugin, &args) {
        Ok(code) => ExitCode::from(code as u8),
        Err(failure) => {
            eprintln!("{}", failure.message);
            ExitCode::from(failure.code as u8)
        }
    }
}

/// Run one step; `Ok` carries the exit code (0, or [`EXIT_INVALID`] from `verify`).
pub fn run_step(plugin: &dyn ProofSystem, args: &[OsString]) -> Result<i32, StepFailure> {
    let step = args.first().and_then(|s| s.to_str()).and_then(Step::from_name);
    let paths: Vec<PathBuf> = args.iter().skip(1).map(PathBuf::from).collect();
    match (step, paths.as_slice()) {
        (Some(Step::Plan), [input, outdir]) => plan(plugin, input, outdir).map(|()| 0),
        (Some(Step::Segment), [input, out]) => {
            let proof = plugin.prove_segment(&mut lane_cx(), &read(input)?)?;
            write_atomically(out, &proof).map(|()| 0)
        }
        (Some(Step::Aggregate), [left, right, out]) => {
            let proof = plugin.aggregate(&mut lane_cx(), &read(left)?, &read(right)?)?;
            write_atomically(out, &proof).map(|()| 0)
        }
        (Some(Step::Wrap), [root, meta, leaves, out]) => {
            let leaves = LeafDir::open(leaves)?;
            let job = std::env::var("PROOFLINE_JOB").unwrap_or_default();
            let meta = read(meta)?;
            let job = JobMeta { job: &job, meta: &meta, leaves: &leaves };
            let proof = plugin.wrap(&mut lane_cx(), &read(root)?, &job)?;
            write_atomically(out, &proof).map(|()| 0)
        }
        (Some(Step::Verify), [proof]) => match plugin.verify(&read(proof)?)? {
            Verdict::Valid { statement } => {
                println!("{statement}");
                Ok(0)
            }
            Verdict::Invalid { reason } => {
                println!("{reason}");
                Ok(EXIT_INVALID)
            }
        },
        _ => Err(StepFailure { code: EXIT_USAGE, message: USAGE.into() }),
    }
}

fn plan(plugin: &dyn ProofSystem, input: &Path, outdir: &Path) -> Result<(), StepFailure> {
    let segment_size = match std::env::var("PROOFLINE_SEGMENT_SIZE") {
        Ok(text) => Some(text.parse().map_err(|_| StepFailure {
            code: EXIT_BAD_INPUT,
            message: format!("PROOFLINE_SEGMENT_SIZE={text:?} is not a whole number"),
        })?),
        Err(_) => None,
    };
    let plan = plugin.plan(&read(input)?, &PlanOptions { segment_size })?;
    let mut segments = Vec::with_capacity(plan.segments.len());
    for (i, segment) in plan.segments.iter().enumerate() {
        let payload = format!("segment-{i}");
        write_atomically(&outdir.join(&payload), &segment.payload)?;
        segments.push(PlanSegment { payload, cost: segment.cost });
    }
    write_atomically(&outdir.join("meta"), &plan.meta)?;
    let file = PlanFile { segments, meta: "meta".into(), summary: plan.summary, name: plan.name };
    let json = serde_json::to_vec_pretty(&file).expect("a plan file serializes");
    write_atomically(&outdir.join("plan.json"), &json)
}

/// The lane this step runs on, from `PROOFLINE_TASK`, `PROOFLINE_LANE`, `PROOFLINE_DEVICE`.
fn lane_cx() -> ExecCx {
    let var = |name| std::env::var(name).unwrap_or_default();
    let device = match var("PROOFLINE_DEVICE").strip_prefix("gpu:").map(str::parse) {
        Some(Ok(n)) => LaneDevice::Gpu(n),
        _ => LaneDevice::Cpu,
    };
    let lane = var("PROOFLINE_LANE").parse().unwrap_or(0);
    // The runtime cancels a step by killing it: nothing here sets the flag.
    ExecCx::new(var("PROOFLINE_TASK"), lane, Arc::new(AtomicBool::new(false))).on(device)
}

fn read(path: &Path) -> Result<Vec<u8>, StepFailure> {
    fs::read(path).map_err(|e| io_failure("cannot read", path, e))
}

/// Write `OUT.tmp`, then rename: a killed step never leaves a half-written `OUT`.
fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), StepFailure> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    fs::write(&tmp, bytes).map_err(|e| io_failure("cannot write", &tmp, e))?;
    fs::rename(&tmp, path).map_err(|e| io_failure("cannot rename to", path, e))
}

/// `LEAVES/0 .. LEAVES/n-1`, as `wrap` reads them.
struct LeafDir {
    dir: PathBuf,
    count: u32,
}

impl LeafDir {
    fn open(dir: &Path) -> Result<Self, StepFailure> {
        let entries = fs::read_dir(dir).map_err(|e| io_failure("cannot list", dir, e))?;
        let count = entries.count() as u32;
        Ok(Self { dir: dir.to_owned(), count })
    }
}

impl LeafSource for LeafDir {
    fn leaf_count(&self) -> u32 {
        self.count
    }

    fn leaf(&self, index: u32) -> Result<Vec<u8>, PluginError> {
        let path = self.dir.join(index.to_string());
        fs::read(&path).map_err(|e| PluginError::permanent(format!("leaf {}: {e}", path.display())))
    }
}
