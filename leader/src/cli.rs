//! Command-line interface of `proofline-leader`. Every flag also reads `PROOFLINE_*`.
//!
//! Flags that can carry credentials (`--amqp-uri`, `--s3-endpoint`) hide their
//! environment values in `--help`. Sizes and ages are parsed with checked arithmetic:
//! a value that would overflow is bad input (exit 2), never a silently wrapped number.

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
    /// RabbitMQ to use with `--runtime amqp` (its password is never printed).
    #[arg(
        long,
        global = true,
        env = "PROOFLINE_AMQP_URI",
        hide_env_values = true,
        default_value = "amqp://127.0.0.1:5672/%2f"
    )]
    pub amqp_uri: String,
    /// Seconds the broker may stay unreachable before the job fails (it stays
    /// resumable); shorter outages are ridden out by reconnecting.
    #[arg(long, global = true, env = "PROOFLINE_BROKER_GIVE_UP_SECS", default_value_t = 300,
        value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub broker_give_up_secs: u64,
    /// Artifact store: `fs:DIR`, `s3://BUCKET/PREFIX` or `mem:`.
    #[arg(long, global = true, env = "PROOFLINE_STORE", default_value = proofline_runtime::store::DEFAULT_STORE)]
    pub store: String,
    #[command(flatten)]
    pub s3: S3Args,
    /// Proof system to use: `keccak`, `sim`, or `exec` (an external prover binary,
    /// `--exec-prover`).
    #[arg(long, global = true, env = "PROOFLINE_PLUGIN", default_value = "keccak")]
    pub plugin: String,
    #[command(flatten)]
    pub exec: ExecArgs,
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
    /// Serve Prometheus metrics at `GET /metrics` on this address while the leader
    /// runs (stdio, batch, serve), e.g. `127.0.0.1:9464`.
    #[arg(long, global = true, env = "PROOFLINE_METRICS_ADDR")]
    pub metrics_addr: Option<std::net::SocketAddr>,
    #[command(flatten)]
    pub scheduling: SchedulingArgs,
}

/// How jobs share the workers (`batch` and `serve` run several at once).
#[derive(Args, Debug, Clone)]
pub struct SchedulingArgs {
    /// How tasks of concurrent jobs share the workers: `fair` (weighted fair share
    /// among clients, oldest job first within a client), `fifo` (oldest job first),
    /// `round-robin` (equal shares per job), `unbounded` (publish every ready task at
    /// once, no window).
    #[arg(long, global = true, env = "PROOFLINE_SHARE_POLICY", value_enum, default_value = "fair")]
    pub share_policy: SharePolicyArg,
    /// Tasks out with the workers at once, across all jobs (0: automatic: 4 per lane
    /// that reported work in the last 30 s, at least 16 while jobs share the workers
    /// and 256 while one job has them to itself).
    #[arg(long, global = true, env = "PROOFLINE_DISPATCH_WINDOW", default_value_t = 0)]
    pub dispatch_window: usize,
    /// A client's weight in the fair share, `NAME=WEIGHT` (repeatable; default 1).
    #[arg(long = "client-weight", global = true, env = "PROOFLINE_CLIENT_WEIGHTS", value_delimiter = ',',
          value_parser = parse_client_weight)]
    pub client_weights: Vec<(String, u32)>,
}

impl SchedulingArgs {
    pub fn scheduling(&self) -> proofline_runtime::leader::scheduler::Scheduling {
        use proofline_runtime::leader::scheduler::{Scheduling, SharePolicy};
        Scheduling {
            policy: match self.share_policy {
                SharePolicyArg::Fair => SharePolicy::Fair,
                SharePolicyArg::Fifo => SharePolicy::Fifo,
                SharePolicyArg::RoundRobin => SharePolicy::RoundRobin,
                SharePolicyArg::Unbounded => SharePolicy::Unbounded,
            },
            window: (self.dispatch_window > 0).then_some(self.dispatch_window),
            weights: self.client_weights.iter().cloned().collect(),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum SharePolicyArg {
    Fair,
    Fifo,
    RoundRobin,
    Unbounded,
}

/// `NAME=WEIGHT` with a client name of `[A-Za-z0-9._-]` and a weight of 1 to 1000.
fn parse_client_weight(text: &str) -> Result<(String, u32), String> {
    let (name, weight) =
        text.split_once('=').ok_or_else(|| format!("{text:?}: expected NAME=WEIGHT, e.g. sequencer=3"))?;
    if !is_client_name(name) {
        return Err(format!("{name:?}: a client name is 1 to 64 characters of A-Z a-z 0-9 . _ -"));
    }
    match weight.parse::<u32>() {
        Ok(w @ 1..=1000) => Ok((name.to_owned(), w)),
        _ => Err(format!("{weight:?}: a weight is a whole number from 1 to 1000")),
    }
}

/// A client name as `--client-weight` and the service accept it.
pub fn is_client_name(name: &str) -> bool {
    (1..=64).contains(&name.len()) && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
}

/// The `exec` plugin: an external prover binary (contract: docs/EXEC.md).
#[derive(Args, Debug, Clone)]
pub struct ExecArgs {
    /// Prover binary run for every step of `--plugin exec`. Workers need the same
    /// binary (the plugin version is its digest).
    #[arg(long, global = true, env = "PROOFLINE_EXEC_PROVER", value_name = "PATH")]
    pub exec_prover: Option<PathBuf>,
    /// The longest one step of the exec prover may run before its process group is
    /// killed (the attempt is then retried).
    #[arg(long, global = true, env = "PROOFLINE_EXEC_TIMEOUT_SECS", default_value_t = 3600,
        value_parser = clap::value_parser!(u64).range(1..))]
    pub exec_timeout_secs: u64,
}

impl ExecArgs {
    /// The exec plugin's settings, when a prover is given.
    pub fn config(&self) -> Option<proofline_plugins::ExecConfig> {
        self.exec_prover.as_ref().map(|program| proofline_plugins::ExecConfig {
            program: program.clone(),
            timeout: std::time::Duration::from_secs(self.exec_timeout_secs),
        })
    }
}

/// S3 settings beyond the standard AWS sources (env, profile, web identity).
#[derive(Args, Debug, Clone)]
pub struct S3Args {
    /// S3 endpoint URL, for MinIO and other S3-compatible servers.
    #[arg(long, global = true, env = "PROOFLINE_S3_ENDPOINT", hide_env_values = true)]
    pub s3_endpoint: Option<String>,
    /// Path-style addressing (`endpoint/bucket/key`), which most non-AWS servers need.
    #[arg(long, global = true, env = "PROOFLINE_S3_PATH_STYLE")]
    pub s3_path_style: bool,
    /// Region (default: from the AWS environment or profile).
    #[arg(long, global = true, env = "PROOFLINE_S3_REGION")]
    pub s3_region: Option<String>,
    /// Local cache in front of a remote store, in MiB (0: none).
    #[arg(long, global = true, env = "PROOFLINE_CACHE_MIB", default_value_t = 512, value_parser = parse_mib)]
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
            cache_bytes: mib_to_bytes(self.cache_mib).unwrap_or(u64::MAX),
        };
        proofline_runtime::store::open_store_with(spec, &opts)
    }
}

#[derive(Subcommand, Debug)]
pub enum Mode {
    /// Read a block (with its execution witness) on stdin, write its proof to stdout.
    Stdio(ProveArgs),
    /// Prove many blocks: one proof file each in `--out`, resumable by re-running.
    Batch(crate::batch::BatchArgs),
    /// A long-running proving service with an HTTP API.
    Serve(crate::serve::ServeArgs),
    /// Check a proof file: exit 0 only if it verifies.
    Verify {
        /// The proof file (`-` for stdin).
        file: PathBuf,
        /// Largest proof file read, in MiB: a larger one is bad input (exit 2) and is
        /// never read whole into memory.
        #[arg(long, env = "PROOFLINE_MAX_PROOF_MIB", default_value_t = DEFAULT_MAX_PROOF_MIB, value_parser = parse_mib)]
        max_proof_mib: u64,
    },
    /// Delete the artifacts of jobs older than a given age (leftovers of failed or
    /// abandoned jobs; proven jobs clean up after themselves). Only prefixes named like
    /// a job id (`job-<hex>-<8 hex>`) are touched, never other data in the store, and a
    /// job whose lease a leader still refreshes is kept.
    Gc {
        /// Age of a job's newest artifact, e.g. `90s`, `30m`, `24h`, `7d`.
        #[arg(long, value_parser = parse_age)]
        older_than: std::time::Duration,
        /// Delete nothing: list exactly what would be deleted, and what is skipped and why.
        #[arg(long)]
        dry_run: bool,
    },
}

impl Mode {
    /// Whether this mode proves jobs (and so serves `--metrics-addr`).
    pub fn runs_jobs(&self) -> bool {
        matches!(self, Mode::Stdio(_) | Mode::Batch(_) | Mode::Serve(_))
    }
}

/// The smallest `--task-deadline-secs`: three heartbeat intervals of a worker. A
/// shorter deadline would re-dispatch running tasks between their heartbeats.
pub const MIN_TASK_DEADLINE_SECS: u64 = 6;

/// Default `--max-input-mib`: a mainnet block with its witness is a few MiB.
pub const DEFAULT_MAX_INPUT_MIB: u64 = 512;
/// Default `--max-proof-mib`: a final proof carries its leaves (~1.5 MB per segment).
pub const DEFAULT_MAX_PROOF_MIB: u64 = 1024;

/// A job id as the leader prints them (`job-<hex>-<8 hex>`): it names a store prefix.
pub fn parse_job_id(text: &str) -> Result<String, String> {
    if proofline_runtime::task::is_job_id(text) {
        Ok(text.to_owned())
    } else {
        Err(format!("{text:?} is not a job id (like job-6752c1f0-1a2b3c4d, printed when the job started)"))
    }
}

/// `MiB * 2^20`, or `None` when it does not fit in a `u64`.
pub fn mib_to_bytes(mib: u64) -> Option<u64> {
    mib.checked_mul(1 << 20)
}

/// A size in MiB whose byte count fits in a `u64` (and in memory addresses).
pub fn parse_mib(text: &str) -> Result<u64, String> {
    let n: u64 = text.parse().map_err(|_| format!("{text:?}: expected a whole number of MiB"))?;
    match mib_to_bytes(n).and_then(|b| usize::try_from(b).ok()) {
        Some(_) => Ok(n),
        None => Err(format!("{n} MiB is too large (at most {} MiB)", (usize::MAX as u64) >> 20)),
    }
}

/// `90s`, `30m`, `24h`, `7d` (or plain seconds); a value whose seconds overflow is an error.
pub fn parse_age(text: &str) -> Result<std::time::Duration, String> {
    let (number, unit) = text.split_at(text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len()));
    let unit_secs: u64 = match unit {
        "s" | "" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86400,
        _ => return Err(format!("{text:?}: unit must be s, m, h or d")),
    };
    let too_large = || format!("{text:?} is too large (at most {} seconds)", u64::MAX);
    let n: u64 = match number.parse() {
        Ok(n) => n,
        Err(_) if !number.is_empty() => return Err(too_large()),
        Err(_) => return Err(format!("{text:?}: expected a number then s, m, h or d")),
    };
    let secs = n.checked_mul(unit_secs).ok_or_else(too_large)?;
    Ok(std::time::Duration::from_secs(secs))
}

#[derive(Args, Debug)]
pub struct ProveArgs {
    /// Write the proof to this file instead of stdout.
    #[arg(long, short, env = "PROOFLINE_OUT")]
    pub out: Option<PathBuf>,
    /// Resume job JOB_ID (printed when it started) after its leader died: nothing is
    /// read from stdin, and finished segments are not proven again.
    #[arg(long, value_name = "JOB_ID", value_parser = parse_job_id)]
    pub resume: Option<String>,
    /// Largest block (with its witness) read from stdin, in MiB: a larger one is bad
    /// input (exit 2), rejected before it is read whole into memory.
    #[arg(long, env = "PROOFLINE_MAX_INPUT_MIB", default_value_t = DEFAULT_MAX_INPUT_MIB, value_parser = parse_mib)]
    pub max_input_mib: u64,
    /// Draw where the job's time went (one row per worker lane, one bar per task
    /// attempt) into this SVG file.
    #[arg(long, value_name = "FILE.svg", env = "PROOFLINE_TIMELINE")]
    pub timeline: Option<PathBuf>,
    /// The block header for a Polygon Zero zero_bin witness on stdin (which holds only
    /// the block's hash): its `eth_getBlockByNumber` JSON result, an array of them, or
    /// the JSON-RPC response.
    #[arg(long, value_name = "FILE", conflicts_with = "resume")]
    pub header: Option<PathBuf>,
    #[command(flatten)]
    pub job: JobArgs,
}

/// How each job is run: segment size, retries, deadlines, lease.
#[derive(Args, Debug, Clone)]
pub struct JobArgs {
    /// Most work per segment, in the plugin's unit (Keccak-f permutations for keccak).
    #[arg(long, env = "PROOFLINE_SEGMENT_SIZE")]
    pub segment_size: Option<u64>,
    /// Dispatches of one task before the job fails.
    #[arg(long, env = "PROOFLINE_MAX_ATTEMPTS", default_value_t = 3)]
    pub max_attempts: u32,
    /// Seconds without a result or a heartbeat from a task before it is dispatched
    /// again (workers send heartbeats every 2 s, so at least 6).
    #[arg(long, env = "PROOFLINE_TASK_DEADLINE_SECS", default_value_t = 600,
          value_parser = clap::value_parser!(u64).range(MIN_TASK_DEADLINE_SECS..))]
    pub task_deadline_secs: u64,
    /// Seconds one attempt of a task may run (heartbeats or not) before it is
    /// cancelled on its worker and dispatched again. Default: the plugin's estimate
    /// from the task's cost (keccak: 2 min + 50 ms per permutation).
    #[arg(long, env = "PROOFLINE_TASK_TIMEOUT_SECS", value_parser = clap::value_parser!(u64).range(1..))]
    pub task_timeout_secs: Option<u64>,
    /// Seconds the job's lease in the store outlives this leader's last refresh:
    /// after a crash, `--resume` (and a restarted `serve`, for its own store lease)
    /// waits at most this long for it to lapse.
    #[arg(long, env = "PROOFLINE_LEASE_SECS", default_value_t = 15, value_parser = clap::value_parser!(u64).range(3..=3600))]
    pub lease_secs: u64,
    /// Keep intermediate artifacts in the store after the job.
    #[arg(long, env = "PROOFLINE_KEEP_ARTIFACTS")]
    pub keep_artifacts: bool,
}

impl JobArgs {
    /// The leader's policies for these flags.
    pub fn leader_config(&self, scheduling: &SchedulingArgs) -> proofline_runtime::leader::LeaderConfig {
        use std::time::Duration;
        proofline_runtime::leader::LeaderConfig {
            max_attempts: self.max_attempts.max(1),
            task_deadline: Duration::from_secs(self.task_deadline_secs),
            task_timeout: self.task_timeout_secs.map(Duration::from_secs),
            keep_artifacts: self.keep_artifacts,
            lease_ttl: Duration::from_secs(self.lease_secs),
            scheduling: scheduling.scheduling(),
        }
    }

    pub fn plan_options(&self) -> proofline_runtime::plugin::PlanOptions {
        proofline_runtime::plugin::PlanOptions { segment_size: self.segment_size }
    }
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn ages_parse_with_checked_arithmetic() {
        assert_eq!(parse_age("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_age("7d"), Ok(Duration::from_secs(7 * 86400)));
        assert_eq!(parse_age("15"), Ok(Duration::from_secs(15)));
        // u64::MAX / 86400 + 1 days overflow the seconds; 20 digits overflow the number.
        for bad in ["213503982334602d", "99999999999999999999d", "18446744073709551616"] {
            assert!(parse_age(bad).unwrap_err().contains("too large"), "{bad}");
        }
        for bad in ["", "d", "7w", "-1d", "1.5h"] {
            assert!(parse_age(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn client_weights_are_names_with_small_whole_weights() {
        assert_eq!(parse_client_weight("seq-1=3"), Ok(("seq-1".to_owned(), 3)));
        for bad in ["seq", "=3", "a b=2", "x=0", "x=1001", "x=-1", "x=1.5"] {
            assert!(parse_client_weight(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn sizes_parse_with_checked_arithmetic() {
        assert_eq!(parse_mib("512"), Ok(512));
        assert_eq!(mib_to_bytes(512), Some(512 << 20));
        assert_eq!(mib_to_bytes(u64::MAX >> 20), Some((u64::MAX >> 20) << 20));
        assert_eq!(mib_to_bytes((u64::MAX >> 20) + 1), None);
        assert!(parse_mib("18446744073709551615").unwrap_err().contains("too large"));
        assert!(parse_mib("17592186044416").is_err()); // 2^44 MiB = 2^64 bytes
        assert!(parse_mib("-1").is_err());
    }
}
