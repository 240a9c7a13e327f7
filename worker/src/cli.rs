//! Command-line interface of `proofline-worker`. Every flag also reads `PROOFLINE_*`.

use std::net::SocketAddr;

use clap::{Parser, ValueEnum};

#[derive(Parser, Debug)]
#[command(name = "proofline-worker", version, about = "Join a Proofline cluster and prove tasks")]
pub struct Cli {
    /// RabbitMQ to take tasks from.
    #[arg(long, env = "PROOFLINE_AMQP_URI", default_value = "amqp://127.0.0.1:5672/%2f")]
    pub amqp_uri: String,
    /// Artifact store shared with the leader: `s3://BUCKET/PREFIX`, or `fs:DIR` on a shared volume.
    #[arg(long, env = "PROOFLINE_STORE", default_value = proofline_runtime::store::DEFAULT_STORE)]
    pub store: String,
    /// S3 endpoint URL, for MinIO and other S3-compatible servers.
    #[arg(long, env = "PROOFLINE_S3_ENDPOINT")]
    pub s3_endpoint: Option<String>,
    /// Path-style addressing, which most non-AWS S3 servers need.
    #[arg(long, env = "PROOFLINE_S3_PATH_STYLE")]
    pub s3_path_style: bool,
    /// S3 region (default: from the AWS environment or profile).
    #[arg(long, env = "PROOFLINE_S3_REGION")]
    pub s3_region: Option<String>,
    /// Local artifact cache in front of a remote store, in MiB (0: none): a worker that
    /// made a child proof does not download it again to aggregate it.
    #[arg(long, env = "PROOFLINE_CACHE_MIB", default_value_t = 1024)]
    pub cache_mib: u64,
    /// CPU lanes (tasks run at once on the CPU; default one per CPU; 0: GPU lanes only).
    #[arg(long, env = "PROOFLINE_LANES")]
    pub lanes: Option<usize>,
    /// GPU lanes: `auto` runs one per hardware adapter (none if there is none), `off`
    /// none, `required` fails (exit 1) when no adapter is found, and falls back to a
    /// CPU Vulkan driver (lavapipe) when there is no hardware one.
    #[arg(long, env = "PROOFLINE_GPU", default_value = "auto")]
    pub gpu: proofline_shaders::GpuMode,
    /// Tasks held at once, running or queued on lanes (default 2 per lane).
    #[arg(long, env = "PROOFLINE_PREFETCH")]
    pub prefetch: Option<usize>,
    /// Do not ask peers for work or hand unstarted work to hungry peers.
    #[arg(long, env = "PROOFLINE_NO_SHARE")]
    pub no_share: bool,
    /// Name in logs and results (default: host name and process id).
    #[arg(long, env = "PROOFLINE_WORKER_NAME")]
    pub name: Option<String>,
    /// Liveness (`/livez`) and readiness (`/readyz`) endpoints.
    #[arg(long, env = "PROOFLINE_HEALTH_ADDR", default_value = "127.0.0.1:8080")]
    pub health_addr: SocketAddr,
    /// On SIGTERM, seconds running tasks get to finish before they are requeued.
    #[arg(long, env = "PROOFLINE_SHUTDOWN_GRACE_SECS", default_value_t = 30)]
    pub shutdown_grace_secs: u64,
    /// Log format on stderr.
    #[arg(long, env = "PROOFLINE_LOG_FORMAT", value_enum, default_value = "text")]
    pub log_format: LogFormat,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}
