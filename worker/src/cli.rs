//! Command-line interface of `proofline-worker`. Every flag also reads `PROOFLINE_*`.
//!
//! Flags that can carry credentials (`--amqp-uri`, `--s3-endpoint`) hide their
//! environment values in `--help`; `--cache-mib` rejects sizes whose bytes overflow.

use std::net::SocketAddr;

use clap::{Parser, ValueEnum};
use proofline_runtime::transport::amqp::batching::RESULT_LINGER;

#[derive(Parser, Debug)]
#[command(name = "proofline-worker", version, about = "Join a Proofline cluster and prove tasks")]
pub struct Cli {
    /// RabbitMQ to take tasks from (its password is never printed).
    #[arg(
        long,
        env = "PROOFLINE_AMQP_URI",
        hide_env_values = true,
        default_value = "amqp://127.0.0.1:5672/%2f"
    )]
    pub amqp_uri: String,
    /// Artifact store shared with the leader: `s3://BUCKET/PREFIX`, or `fs:DIR` on a shared volume.
    #[arg(long, env = "PROOFLINE_STORE", default_value = proofline_runtime::store::DEFAULT_STORE)]
    pub store: String,
    /// S3 endpoint URL, for MinIO and other S3-compatible servers.
    #[arg(long, env = "PROOFLINE_S3_ENDPOINT", hide_env_values = true)]
    pub s3_endpoint: Option<String>,
    /// Path-style addressing, which most non-AWS S3 servers need.
    #[arg(long, env = "PROOFLINE_S3_PATH_STYLE")]
    pub s3_path_style: bool,
    /// S3 region (default: from the AWS environment or profile).
    #[arg(long, env = "PROOFLINE_S3_REGION")]
    pub s3_region: Option<String>,
    /// Prover binary for tasks of the `exec` plugin: the same binary as the leader's
    /// `--exec-prover` (tasks carry its digest; another binary refuses them).
    #[arg(long, env = "PROOFLINE_EXEC_PROVER", value_name = "PATH")]
    pub exec_prover: Option<std::path::PathBuf>,
    /// The longest one exec prover step may run before its process group is killed.
    #[arg(long, env = "PROOFLINE_EXEC_TIMEOUT_SECS", default_value_t = 3600,
        value_parser = clap::value_parser!(u64).range(1..))]
    pub exec_timeout_secs: u64,
    /// Local artifact cache in front of a remote store, in MiB (0: none): a worker that
    /// made a child proof does not download it again to aggregate it.
    #[arg(long, env = "PROOFLINE_CACHE_MIB", default_value_t = 1024, value_parser = parse_mib)]
    pub cache_mib: u64,
    /// CPU lanes (tasks run at once on the CPU; default one per CPU; 0: GPU lanes only).
    #[arg(long, env = "PROOFLINE_LANES")]
    pub lanes: Option<usize>,
    /// GPU lanes: `auto` runs one per hardware adapter (none if there is none), `off`
    /// none, `required` fails (exit 1) when no adapter is found, and falls back to a
    /// CPU Vulkan driver (lavapipe) when there is no hardware one.
    #[arg(long, env = "PROOFLINE_GPU", default_value = "auto")]
    pub gpu: proofline_shaders::GpuMode,
    /// Broker messages held at once, running or queued on lanes (default 2 per lane);
    /// a message is one task, or a batch of small tasks.
    #[arg(long, env = "PROOFLINE_PREFETCH")]
    pub prefetch: Option<usize>,
    /// Milliseconds a busy worker's results may wait for more to share their broker
    /// message (0: send as soon as possible). Never delays a worker with nothing else
    /// to run.
    #[arg(long, env = "PROOFLINE_RESULT_LINGER_MS", default_value_t = RESULT_LINGER.as_millis() as u64,
        value_parser = clap::value_parser!(u64).range(0..=1_000))]
    pub result_linger_ms: u64,
    /// Do not ask peers for work or hand unstarted work to hungry peers.
    #[arg(long, env = "PROOFLINE_NO_SHARE")]
    pub no_share: bool,
    /// Name in logs and results (default: host name and process id).
    #[arg(long, env = "PROOFLINE_WORKER_NAME")]
    pub name: Option<String>,
    /// Liveness (`/livez`) and readiness (`/readyz`) endpoints.
    #[arg(long, env = "PROOFLINE_HEALTH_ADDR", default_value = "127.0.0.1:8080")]
    pub health_addr: SocketAddr,
    /// Serve Prometheus metrics at `GET /metrics` on this address too (the health
    /// address always serves them); e.g. `0.0.0.0:9464` in a pod.
    #[arg(long, env = "PROOFLINE_METRICS_ADDR")]
    pub metrics_addr: Option<SocketAddr>,
    /// On SIGTERM, seconds running tasks get to finish before they are requeued.
    #[arg(long, env = "PROOFLINE_SHUTDOWN_GRACE_SECS", default_value_t = 30)]
    pub shutdown_grace_secs: u64,
    /// Seconds the broker may stay unreachable before the worker exits 1 (for its
    /// supervisor to restart it); shorter outages are ridden out by reconnecting.
    #[arg(long, env = "PROOFLINE_BROKER_GIVE_UP_SECS", default_value_t = 300,
        value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub broker_give_up_secs: u64,
    /// Log format on stderr.
    #[arg(long, env = "PROOFLINE_LOG_FORMAT", value_enum, default_value = "text")]
    pub log_format: LogFormat,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// A size in MiB whose byte count (`MiB << 20`) fits in a `u64`.
fn parse_mib(text: &str) -> Result<u64, String> {
    let n: u64 = text.parse().map_err(|_| format!("{text:?}: expected a whole number of MiB"))?;
    match n.checked_mul(1 << 20).and_then(|b| usize::try_from(b).ok()) {
        Some(_) => Ok(n),
        None => Err(format!("{n} MiB is too large (at most {} MiB)", (usize::MAX as u64) >> 20)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_sizes_never_wrap() {
        assert_eq!(parse_mib("1024"), Ok(1024));
        assert_eq!(parse_mib("17592186044415"), Ok(u64::MAX >> 20));
        for bad in ["18446744073709551615", "17592186044416", "-1", "1.5", ""] {
            assert!(parse_mib(bad).is_err(), "{bad}");
        }
    }
}
