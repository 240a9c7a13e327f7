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
    /// Where tasks run: `in-memory` embeds a worker in this process (no broker needed);
    /// `amqp` sends them to `proofline-worker` processes through RabbitMQ.
    #[arg(long, global = true, env = "PROOFLINE_RUNTIME", value_enum, default_value = "in-memory")]
    pub runtime: RuntimeKind,
    /// RabbitMQ to use with `--runtime amqp`.
    #[arg(long, global = true, env = "PROOFLINE_AMQP_URI", default_value = "amqp://127.0.0.1:5672/%2f")]
    pub amqp_uri: String,
    /// Artifact store: `fs:DIR`, `s3://BUCKET/PREFIX` or `mem:`.
    #[arg(long, global = true, env = "PROOFLINE_STORE", default_value = proofline_runtime::store::DEFAULT_STORE)]
    pub store: String,
    #[command(flatten)]
    pub s3: S3Args,
    /// Proof system to use.
    #[arg(long, global = true, env = "PROOFLINE_PLUGIN", default_value = "keccak")]
    pub plugin: String,
    /// CPU lanes of the embedded worker (default: one per CPU; 0: GPU lanes only).
    #[arg(long, global = true, env = "PROOFLINE_LANES")]
    pub lanes: Option<usize>,
    /// GPU lanes of the embedded worker: `auto` (one per hardware adapter), `off`, or
    /// `required` (exit 1 when no adapter is found; may use a CPU Vulkan driver).
    #[arg(long, global = true, env = "PROOFLINE_GPU", default_value = "auto")]
    pub gpu: proofline_shaders::GpuMode,
    /// Log format on stderr.
    #[arg(long, global = true, env = "PROOFLINE_LOG_FORMAT", value_enum, default_value = "text")]
    pub log_format: LogFormat,
}

/// S3 settings beyond the standard AWS sources (env, profile, web identity).
#[derive(Args, Debug, Clone)]
pub struct S3Args {
    /// S3 endpoint URL, for MinIO and other S3-compatible servers.
    #[arg(long, global = true, env = "PROOFLINE_S3_ENDPOINT")]
    pub s3_endpoint: Option<String>,
    /// Path-style addressing (`endpoint/bucket/key`), which most non-AWS servers need.
    #[arg(long, global = true, env = "PROOFLINE_S3_PATH_STYLE")]
    pub s3_path_style: bool,
    /// Region (default: from the AWS environment or profile).
    #[arg(long, global = true, env = "PROOFLINE_S3_REGION")]
    pub s3_region: Option<String>,
    /// Local cache in front of a remote store, in MiB (0: none).
    #[arg(long, global = true, env = "PROOFLINE_CACHE_MIB", default_value_t = 512)]
    pub cache_mib: u64,
}

impl S3Args {
    pub fn open(
        &self,
        spec: &str,
    ) -> Result<
        std::sync::Arc<dyn proofline_runtime::store::ArtifactStore>,
        proofline_runtime::store::StoreError,
    > {
        let opts = proofline_runtime::store::StoreOptions {
            s3_endpoint: self.s3_endpoint.clone(),
            s3_path_style: self.s3_path_style,
            s3_region: self.s3_region.clone(),
            cache_bytes: self.cache_mib << 20,
        };
        proofline_runtime::store::open_store_with(spec, &opts)
    }
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
    /// Delete the artifacts of jobs older than a given age (leftovers of failed or
    /// abandoned jobs; proven jobs clean up after themselves).
    Gc {
        /// Age, e.g. `90s`, `30m`, `24h`, `7d`.
        #[arg(long, value_parser = parse_age)]
        older_than: std::time::Duration,
        /// Only list what would be deleted.
        #[arg(long)]
        dry_run: bool,
    },
}

fn parse_age(text: &str) -> Result<std::time::Duration, String> {
    let (number, unit) = text.split_at(text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len()));
    let n: u64 = number.parse().map_err(|_| format!("{text:?}: expected a number then s, m, h or d"))?;
    let secs = match unit {
        "s" | "" => n,
        "m" => n * 60,
        "h" => n * 3600,
        "d" => n * 86400,
        _ => return Err(format!("{text:?}: unit must be s, m, h or d")),
    };
    Ok(std::time::Duration::from_secs(secs))
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
    /// Resume job JOB_ID (printed when it started) after its leader died: nothing is
    /// read from stdin, and finished segments are not proven again.
    #[arg(long, value_name = "JOB_ID")]
    pub resume: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum RuntimeKind {
    InMemory,
    Amqp,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}
