//! `exec`: any prover binary as a Proofline proof system.
//!
//! Each step runs the operator's program once, with files in and files out, the way the
//! EthProofs dispatcher runs a proving binary per block. The contract (arguments,
//! environment, exit codes, the plan file) is written for prover authors in
//! `docs/EXEC.md`; in short:
//!
//! ```text
//! PROVER plan IN OUTDIR                 writes OUTDIR/plan.json and the files it names
//! PROVER segment IN OUT                 proves one segment payload
//! PROVER aggregate LEFT RIGHT OUT       folds two adjacent proofs
//! PROVER wrap ROOT META LEAVES OUT      LEAVES/0 .. LEAVES/n-1: the segment proofs
//! PROVER verify PROOF                   exit 0 valid (stdout: statement), 1 invalid
//! ```
//!
//! Exit 2 means bad input (never retried), 75 a transient failure, a signal or a
//! timeout is retried, anything else is a permanent failure; the tail of stderr goes
//! into the task's failure. Cancelling a task kills the step's whole process group.
//!
//! The plugin's version is the BLAKE3 digest of the binary (`exec@blake3-1f2e…`):
//! tasks carry it, so a worker with a different binary refuses them with a clear
//! message instead of mixing provers.

pub mod contract;
mod process;
pub use process::kill_running;
pub mod prover;

use std::ffi::OsString;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

use proofline_plugin::{
    ExecCx, JobMeta, LaneDevice, Plan, PlanOptions, PluginError, PluginId, ProofSystem, SegmentSpec,
    StepKind, Verdict,
};

use contract::{PlanFile, Step, judge, judge_verify, said};
use process::{Finished, Invocation};

/// Default for [`ExecConfig::timeout`]: one step may run an hour.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(3600);
/// The largest file a step may hand back (a proof, a payload, the plan).
pub const MAX_OUTPUT_BYTES: u64 = 4 << 30;

/// How to run the prover.
#[derive(Clone, Debug)]
pub struct ExecConfig {
    /// The prover binary (`--exec-prover`).
    pub program: PathBuf,
    /// The longest one step may run before its process group is killed.
    pub timeout: Duration,
}

impl ExecConfig {
    pub fn new(program: impl Into<PathBuf>) -> Self {
        Self { program: program.into(), timeout: DEFAULT_TIMEOUT }
    }
}

/// Why the prover binary cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("exec prover {path}: cannot read it")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("exec prover {path}: not an executable file")]
    NotExecutable { path: PathBuf },
}

/// The `exec` plugin: one prover binary, pinned by its digest.
#[derive(Clone, Debug)]
pub struct ExecPlugin {
    program: PathBuf,
    digest: String,
    timeout: Duration,
}

impl ExecPlugin {
    /// The plugin's name in registries and task ids.
    pub const NAME: &'static str = "exec";

    /// Check the binary is an executable file and pin its digest.
    pub fn open(config: &ExecConfig) -> Result<Self, OpenError> {
        use std::os::unix::fs::PermissionsExt;
        let read = |source| OpenError::Read { path: config.program.clone(), source };
        let program = fs::canonicalize(&config.program).map_err(read)?;
        let meta = fs::metadata(&program).map_err(read)?;
        if !meta.is_file() || meta.permissions().mode() & 0o111 == 0 {
            return Err(OpenError::NotExecutable { path: config.program.clone() });
        }
        let mut hasher = blake3::Hasher::new();
        hasher.update_reader(fs::File::open(&program).map_err(read)?).map_err(read)?;
        let digest = hex::encode(&hasher.finalize().as_bytes()[..8]);
        Ok(Self { program, digest, timeout: config.timeout })
    }

    /// The binary this plugin runs (canonical path).
    pub fn program(&self) -> &Path {
        &self.program
    }

    /// Run one step in a fresh scratch directory `dir`, judge its ending.
    fn run(
        &self,
        step: Step,
        args: Vec<OsString>,
        dir: &Path,
        env: Vec<(&'static str, String)>,
        cancelled: &dyn Fn() -> bool,
    ) -> Result<Finished, PluginError> {
        let mut full = vec![OsString::from(step.name())];
        full.extend(args);
        let inv = Invocation {
            program: &self.program,
            args: full,
            env,
            cwd: dir,
            timeout: self.timeout,
            cancelled,
        };
        let started = std::time::Instant::now();
        let finished = process::run(&inv).map_err(|e| {
            PluginError::retryable(format!("exec prover {}: cannot start it: {e}", self.program.display()))
        })?;
        tracing::debug!(step = step.name(), ending = ?finished.ending, seconds = started.elapsed().as_secs_f64(), "exec prover step");
        Ok(finished)
    }

    /// Run a step that must succeed (every step but `verify`).
    fn run_ok(
        &self,
        step: Step,
        args: Vec<OsString>,
        dir: &Path,
        env: Vec<(&'static str, String)>,
        cancelled: &dyn Fn() -> bool,
    ) -> Result<(), PluginError> {
        let finished = self.run(step, args, dir, env, cancelled)?;
        judge(step, finished.ending, &said(&finished.stderr, &finished.stdout))
    }

    /// Run a worker-side step with `args` (files in `dir`) then `OUT`, and read `OUT` back.
    fn produce(
        &self,
        cx: &ExecCx,
        step: Step,
        dir: &Path,
        mut args: Vec<OsString>,
        mut env: Vec<(&'static str, String)>,
    ) -> Result<Vec<u8>, PluginError> {
        let out = dir.join("out");
        args.push(out.clone().into_os_string());
        env.extend(cx_env(cx));
        self.run_ok(step, args, dir, env, &|| cx.is_cancelled())?;
        read_output(&out, step.name())
    }
}

/// A fresh scratch directory, removed when dropped.
fn scratch() -> Result<tempfile::TempDir, PluginError> {
    tempfile::Builder::new()
        .prefix("proofline-exec-")
        .tempdir()
        .map_err(|e| PluginError::retryable(format!("exec: cannot make a scratch directory: {e}")))
}

fn make_dir(path: &Path) -> Result<(), PluginError> {
    fs::create_dir(path)
        .map_err(|e| PluginError::retryable(format!("exec: cannot make {}: {e}", path.display())))
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> Result<OsString, PluginError> {
    let path = dir.join(name);
    fs::write(&path, bytes)
        .map_err(|e| PluginError::retryable(format!("exec: cannot write {}: {e}", path.display())))?;
    Ok(path.into_os_string())
}

/// Read a file a step wrote; a missing or oversized file is the prover's fault.
fn read_output(path: &Path, step: &str) -> Result<Vec<u8>, PluginError> {
    let file = fs::File::open(path).map_err(|e| {
        PluginError::permanent(format!(
            "exec prover {step} exited 0 but {} is unreadable: {e}",
            path.display()
        ))
    })?;
    let mut bytes = Vec::new();
    file.take(MAX_OUTPUT_BYTES + 1).read_to_end(&mut bytes).map_err(|e| {
        PluginError::permanent(format!("exec prover {step}: reading {}: {e}", path.display()))
    })?;
    if bytes.len() as u64 > MAX_OUTPUT_BYTES {
        return Err(PluginError::permanent(format!(
            "exec prover {step}: {} is over {MAX_OUTPUT_BYTES} bytes",
            path.display()
        )));
    }
    Ok(bytes)
}

/// What a step learns about its lane from the environment.
fn cx_env(cx: &ExecCx) -> Vec<(&'static str, String)> {
    let device = match cx.device {
        LaneDevice::Cpu => "cpu".to_string(),
        LaneDevice::Gpu(n) => format!("gpu:{n}"),
    };
    vec![
        ("PROOFLINE_TASK", cx.task.clone()),
        ("PROOFLINE_LANE", cx.lane.to_string()),
        ("PROOFLINE_DEVICE", device),
    ]
}

impl ProofSystem for ExecPlugin {
    fn id(&self) -> PluginId {
        PluginId::new(Self::NAME, format!("blake3-{}", self.digest))
    }

    /// The step timeout, plus a margin, so that the prover is killed by its own
    /// timeout (with its stderr in the message) before the leader gives up on it.
    fn task_timeout(&self, _kind: StepKind, _cost: u64) -> Duration {
        self.timeout + Duration::from_secs(30)
    }

    fn plan(&self, input: &[u8], opts: &PlanOptions) -> Result<Plan, PluginError> {
        let dir = scratch()?;
        let outdir = dir.path().join("plan");
        make_dir(&outdir)?;
        let args = vec![write(dir.path(), "input", input)?, outdir.clone().into_os_string()];
        let env = opts.segment_size.map(|n| ("PROOFLINE_SEGMENT_SIZE", n.to_string())).into_iter().collect();
        self.run_ok(Step::Plan, args, dir.path(), env, &|| false)?;
        let file = PlanFile::parse(&read_output(&outdir.join("plan.json"), "plan")?)
            .map_err(|e| PluginError::permanent(format!("exec prover plan: {e}")))?;
        let segments = file
            .segments
            .iter()
            .map(|s| {
                Ok(SegmentSpec { payload: read_output(&outdir.join(&s.payload), "plan")?, cost: s.cost })
            })
            .collect::<Result<_, PluginError>>()?;
        let meta = read_output(&outdir.join(&file.meta), "plan")?;
        Ok(Plan { segments, meta, summary: file.summary, name: file.name })
    }

    fn prove_segment(&self, cx: &mut ExecCx, segment: &[u8]) -> Result<Vec<u8>, PluginError> {
        let dir = scratch()?;
        let args = vec![write(dir.path(), "segment", segment)?];
        self.produce(cx, Step::Segment, dir.path(), args, vec![])
    }

    fn aggregate(&self, cx: &mut ExecCx, left: &[u8], right: &[u8]) -> Result<Vec<u8>, PluginError> {
        let dir = scratch()?;
        let args = vec![write(dir.path(), "left", left)?, write(dir.path(), "right", right)?];
        self.produce(cx, Step::Aggregate, dir.path(), args, vec![])
    }

    fn wrap(&self, cx: &mut ExecCx, root: &[u8], job: &JobMeta) -> Result<Vec<u8>, PluginError> {
        let dir = scratch()?;
        let leaves = dir.path().join("leaves");
        make_dir(&leaves)?;
        for i in 0..job.leaves.leaf_count() {
            write(&leaves, &i.to_string(), &job.leaves.leaf(i)?)?;
        }
        let args = vec![
            write(dir.path(), "root", root)?,
            write(dir.path(), "meta", job.meta)?,
            leaves.into_os_string(),
        ];
        self.produce(cx, Step::Wrap, dir.path(), args, vec![("PROOFLINE_JOB", job.job.to_string())])
    }

    fn verify(&self, proof: &[u8]) -> Result<Verdict, PluginError> {
        let dir = scratch()?;
        let args = vec![write(dir.path(), "proof", proof)?];
        let finished = self.run(Step::Verify, args, dir.path(), vec![], &|| false)?;
        judge_verify(finished.ending, &finished.stdout, &finished.stderr)
    }
}
