//! Command-line interface of `proofline-leader`. Every flag also reads `PROOFLINE_*`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Parser, Debug)]
#[command(
    name = "proofline-leader",
    version,
    about = "Prove blocks with zero-knowledge proofs, locally or on a cluster"
)]
pub struct Cli {
    #[command(flatten)]
    pub common: Common,
    #[command(subcommand)]
    pub mode: Mode,
}

#[derive(Args, Debug)]
pub struct Common {
    /// Where tasks run: `in-memory` embeds a worker in this process (no broker needed).
    #[arg(
        long,
        global = true,
        env = "PROOFLINE_RUNTIME",
        value_enum,
        default_value = "in-memory"
    )]
    pub runtime: RuntimeKind,
    /// Artifact store: `fs:DIR` or `mem:`.
    #[arg(long, global = true, env = "PROOFLINE_STORE", default_value = proofline_runtime::store::DEFAULT_STORE)]
    pub store: String,
    /// Proof system to use.
    #[arg(
        long,
        global = true,
        env = "PROOFLINE_PLUGIN",
        default_value = "keccak"
    )]
    pub plugin: String,
    /// Lanes of the embedded worker (default: one per CPU).
    #[arg(long, global = true, env = "PROOFLINE_LANES")]
    pub lanes: Option<usize>,
    /// Log format on stderr.
    #[arg(
        long,
        global = true,
        env = "PROOFLINE_LOG_FORMAT",
        value_enum,
        default_value = "text"
    )]
    pub log_format: LogFormat,
}

#[derive(Subcommand, Debug)]
pub enum Mode {
    /// Read a block (with its execution witness) on stdin, write its proof to stdout.
    Stdio(ProveArgs),
    /// Check a proof file: exit 0 only if it verifies.
    Verify {
        /// The proof file (`-` for stdin).
        file: PathBuf,
    },
}

#[derive(Args, Debug)]
pub struct ProveArgs {
    /// Write the proof to this file instead of stdout.
    #[arg(long, short, env = "PROOFLINE_OUT")]
    pub out: Option<PathBuf>,
    /// Most work per segment, in the plugin's unit (Keccak-f permutations for keccak).
    #[arg(long, env = "PROOFLINE_SEGMENT_SIZE")]
    pub segment_size: Option<u64>,
    /// Dispatches of one task before the job fails.
    #[arg(long, env = "PROOFLINE_MAX_ATTEMPTS", default_value_t = 3)]
    pub max_attempts: u32,
    /// Seconds to wait for a task's result before dispatching it again.
    #[arg(long, env = "PROOFLINE_TASK_DEADLINE_SECS", default_value_t = 600)]
    pub task_deadline_secs: u64,
    /// Keep intermediate artifacts in the store after the job.
    #[arg(long, env = "PROOFLINE_KEEP_ARTIFACTS")]
    pub keep_artifacts: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum RuntimeKind {
    InMemory,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}
