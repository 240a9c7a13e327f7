//! Command line (every flag also reads a `PROOFLINE_*` variable) and pool syntax.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};

use crate::policy::{PoolSpec, Tuning};

/// Size Proofline worker pools from all outstanding work (queued and in flight, by
/// cost), never removing a worker that holds work.
#[derive(Debug, Parser)]
#[command(version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Where workers run: `kube` (Deployments in a namespace) or `local` (worker
    /// processes on this host).
    #[arg(long, env = "PROOFLINE_AUTOSCALER_BACKEND", value_enum, default_value = "kube")]
    pub backend: BackendKind,
    /// Namespace of the worker Deployments (kube; default: the pod's own, or the
    /// kubeconfig's).
    #[arg(long, env = "PROOFLINE_NAMESPACE")]
    pub namespace: Option<String>,
    /// A pool, in order of preference (fastest first):
    /// `NAME=DEPLOYMENT,rate=COST_PER_SEC,min=N,max=N` (rate: cost units one worker
    /// clears per second; min 0, max 10 unless given). Repeat, or `;`-separate in the
    /// variable.
    #[arg(long = "pool", env = "PROOFLINE_POOLS", value_delimiter = ';', value_parser = parse_pool)]
    pub pools: Vec<PoolSpec>,
    /// Local backend without `--pool`: one pool of at most this many workers.
    #[arg(long, env = "PROOFLINE_MAX_WORKERS", default_value_t = 4)]
    pub max_workers: u32,
    /// Local backend without `--pool`: cost units one worker clears per second.
    #[arg(long, env = "PROOFLINE_WORKER_RATE", default_value_t = 1.0, value_parser = parse_rate)]
    pub worker_rate: f64,
    /// The worker binary the local backend starts (default: `proofline-worker` next to
    /// this binary, else on PATH).
    #[arg(long, env = "PROOFLINE_WORKER_BIN")]
    pub worker_bin: Option<PathBuf>,
    /// Leaders' `/metrics` URLs (`http://HOST:PORT/metrics`), whose outstanding cost
    /// is summed. Repeat, or `,`-separate in the variable.
    #[arg(long = "leader-metrics", env = "PROOFLINE_LEADER_METRICS", value_delimiter = ',')]
    pub leader_metrics: Vec<String>,
    /// Port of the workers' `/metrics` in their pods (kube).
    #[arg(long, env = "PROOFLINE_WORKER_METRICS_PORT", default_value_t = 9464)]
    pub worker_metrics_port: u16,
    /// Size pools to clear all outstanding work in this many seconds.
    #[arg(long, env = "PROOFLINE_TARGET_DRAIN_SECS", default_value = "120", value_parser = parse_secs)]
    pub target_drain_secs: Duration,
    /// Shrink a pool only to the highest size recommended over this many seconds.
    #[arg(long, env = "PROOFLINE_SCALE_DOWN_DELAY_SECS", default_value = "60", value_parser = parse_secs)]
    pub scale_down_delay_secs: Duration,
    /// With no work for this many seconds, pools go to their minimum (until then one
    /// warm worker stays).
    #[arg(long, env = "PROOFLINE_IDLE_TO_ZERO_SECS", default_value = "300", value_parser = parse_secs)]
    pub idle_to_zero_secs: Duration,
    /// Most workers added to one pool per round.
    #[arg(long, env = "PROOFLINE_MAX_BURST", default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_burst: u32,
    /// Pods pending unschedulable this many seconds are given up on.
    #[arg(long, env = "PROOFLINE_PENDING_GIVE_UP_SECS", default_value = "600", value_parser = parse_secs)]
    pub pending_give_up_secs: Duration,
    /// Seconds between rounds.
    #[arg(long, env = "PROOFLINE_INTERVAL_SECS", default_value = "10", value_parser = parse_secs)]
    pub interval_secs: Duration,
    /// Log what would be done; change nothing.
    #[arg(long, env = "PROOFLINE_DRY_RUN")]
    pub dry_run: bool,
    /// Address of `/metrics` and `/livez`.
    #[arg(long, env = "PROOFLINE_AUTOSCALER_LISTEN", default_value = "127.0.0.1:9465")]
    pub listen: SocketAddr,
    /// Log format on stderr.
    #[arg(long, env = "PROOFLINE_LOG_FORMAT", value_enum, default_value = "text")]
    pub log_format: LogFormat,
    /// Arguments for every worker the local backend starts (after `--`).
    #[arg(last = true)]
    pub worker_args: Vec<String>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Compare autoscaling policies on a simulated day of bursty block arrivals.
    Simulate(crate::sim::SimArgs),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum BackendKind {
    Kube,
    Local,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

impl Cli {
    pub fn tuning(&self) -> Tuning {
        Tuning {
            target_drain: self.target_drain_secs,
            scale_down_delay: self.scale_down_delay_secs,
            idle_to_zero: self.idle_to_zero_secs,
            max_burst: self.max_burst,
            pending_give_up: self.pending_give_up_secs,
        }
    }

    /// The pools to size: `--pool`s, or for the local backend one implicit pool.
    pub fn pools(&self) -> Result<Vec<PoolSpec>, String> {
        if self.pools.is_empty() {
            return match self.backend {
                BackendKind::Local => Ok(vec![PoolSpec {
                    name: "local".into(),
                    target: "local".into(),
                    rate: self.worker_rate,
                    min: 0,
                    max: self.max_workers,
                }]),
                BackendKind::Kube => {
                    Err("--pool: at least one pool is needed (NAME=DEPLOYMENT,rate=R,max=N)".into())
                }
            };
        }
        if self.backend == BackendKind::Local && self.pools.len() > 1 {
            return Err("--pool: the local backend runs one pool".into());
        }
        let mut names: Vec<&str> = self.pools.iter().map(|p| p.name.as_str()).collect();
        names.sort_unstable();
        if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
            return Err(format!("--pool: pool `{}` is given twice", w[0]));
        }
        Ok(self.pools.clone())
    }
}

/// `NAME=TARGET[,rate=R][,min=N][,max=N]`.
pub fn parse_pool(text: &str) -> Result<PoolSpec, String> {
    let mut parts = text.split(',');
    let head = parts.next().unwrap_or_default().trim();
    let (name, target) = head.split_once('=').ok_or_else(|| format!("`{head}`: expected NAME=DEPLOYMENT"))?;
    let valid = |s: &str| {
        !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
    };
    if !valid(name) || !valid(target) {
        return Err(format!("`{head}`: names are letters, digits, `-`, `_` and `.`"));
    }
    let mut pool = PoolSpec { name: name.into(), target: target.into(), rate: 1.0, min: 0, max: 10 };
    for part in parts {
        let (key, value) =
            part.trim().split_once('=').ok_or_else(|| format!("`{part}`: expected KEY=VALUE"))?;
        let count = || value.parse::<u32>().map_err(|_| format!("{key}={value}: expected a whole number"));
        match key {
            "rate" => pool.rate = parse_rate(value)?,
            "min" => pool.min = count()?,
            "max" => pool.max = count()?,
            _ => return Err(format!("`{key}`: unknown pool setting (rate, min, max)")),
        }
    }
    if pool.min > pool.max {
        return Err(format!("pool {name}: min {} is above max {}", pool.min, pool.max));
    }
    Ok(pool)
}

fn parse_rate(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(r) if r.is_finite() && r > 0.0 => Ok(r),
        _ => Err(format!("rate `{text}`: expected a number of cost units per second above 0")),
    }
}

fn parse_secs(text: &str) -> Result<Duration, String> {
    match text.parse::<f64>() {
        Ok(s) if s.is_finite() && s > 0.0 && s <= 7.0 * 86_400.0 => Ok(Duration::from_secs_f64(s)),
        _ => Err(format!("`{text}`: expected seconds above 0 (at most a week)")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pools_parse_with_defaults_and_settings() {
        let p = parse_pool("gpu=proofline-worker-gpu,rate=4,max=8").unwrap();
        assert_eq!(
            (p.name.as_str(), p.target.as_str(), p.rate, p.min, p.max),
            ("gpu", "proofline-worker-gpu", 4.0, 0, 8)
        );
        let p = parse_pool("cpu=w").unwrap();
        assert_eq!((p.rate, p.min, p.max), (1.0, 0, 10));
    }

    #[test]
    fn bad_pools_say_what_is_wrong() {
        for (text, says) in [
            ("gpu", "NAME=DEPLOYMENT"),
            ("gpu=w,rate=0", "above 0"),
            ("gpu=w,rate=x", "above 0"),
            ("gpu=w,min=3,max=2", "above max"),
            ("gpu=w,speed=2", "unknown pool setting"),
            ("g u=w", "names are"),
            ("gpu=w,max=-1", "whole number"),
        ] {
            let err = parse_pool(text).unwrap_err();
            assert!(err.contains(says), "{text}: {err}");
        }
    }

    #[test]
    fn pools_come_from_the_environment_too() {
        let cli = Cli::try_parse_from([
            "proofline-autoscaler",
            "--pool",
            "gpu=a,rate=4;cpu=b",
            "--leader-metrics",
            "http://l:9464/metrics",
        ])
        .unwrap();
        assert_eq!(cli.pools().unwrap().iter().map(|p| p.name.as_str()).collect::<Vec<_>>(), ["gpu", "cpu"]);
        let twice = Cli::try_parse_from(["x", "--pool", "a=b", "--pool", "a=c"]).unwrap();
        assert!(twice.pools().unwrap_err().contains("twice"));
        let none = Cli::try_parse_from(["x"]).unwrap();
        assert!(none.pools().unwrap_err().contains("at least one pool"));
        let local = Cli::try_parse_from(["x", "--backend", "local", "--max-workers", "3"]).unwrap();
        assert_eq!(local.pools().unwrap()[0].max, 3);
        assert!(Cli::try_parse_from(["x", "--interval-secs", "0"]).is_err());
    }
}
