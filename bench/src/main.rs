//! `proofline-bench`: the figures of docs/BENCHMARKS.md, as ratios measured in one run.
//!
//! ```text
//! cargo run --release -p proofline-bench -- runtime     # per-task overhead, 1 ms efficiency
//!     # (--count-instructions: instructions per task under valgrind, on a portable build)
//! cargo run --release -p proofline-bench -- stealing    # heavy-tailed makespan vs lower bound
//! cargo run --release -p proofline-bench -- keccak      # end-to-end proving vs Plonky3 alone
//! cargo run --release -p proofline-bench -- cluster     # over RabbitMQ with worker processes
//! cargo run --release -p proofline-bench -- store       # fs vs S3 vs S3 + cache, 1 MiB artifacts
//! cargo run --release -p proofline-bench -- kernels     # GPU kernels vs Plonky3 on the CPU
//! cargo run --release -p proofline-bench -- sharing     # concurrent jobs: share policies compared
//! cargo run --release -p proofline-bench -- scale       # 30/100/200 worker processes: makespan, broker load, connect
//! ```

mod amqp;
mod instructions;
mod keccak;
mod kernels;
mod scale;
mod sharing;
mod sim;
mod store;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(about = "Proofline benchmarks (prints markdown tables)")]
struct Cli {
    #[command(subcommand)]
    what: What,
}

#[derive(Subcommand)]
enum What {
    /// No-op and 1 ms sim tasks through the in-memory runtime.
    Runtime {
        #[arg(long, default_value_t = 10_000)]
        tasks: u32,
        #[arg(long, default_value_t = 3)]
        reps: usize,
        /// Tasks out at once (default: the leader's automatic window).
        #[arg(long)]
        window: Option<usize>,
        /// Publish every ready task at once (no window), as before the window existed.
        #[arg(long)]
        unbounded: bool,
        /// Only the no-op job (what `--count-instructions` runs under valgrind).
        #[arg(long)]
        noop_only: bool,
        /// Also count instructions per no-op task under valgrind (see `instructions.rs`).
        #[arg(long)]
        count_instructions: bool,
        /// The build counted: a portable one (default: target/portable/release/proofline-bench).
        #[arg(long)]
        instructions_exe: Option<std::path::PathBuf>,
        /// Segments of the two counted jobs.
        #[arg(long, value_delimiter = ',', default_value = "2000,10000")]
        instructions_sizes: Vec<u32>,
        /// Where the callgrind files go.
        #[arg(long, default_value = "target/callgrind")]
        instructions_dir: std::path::PathBuf,
    },
    /// Makespan of a heavy-tailed workload, stealing on vs off, against the lower bound.
    Stealing {
        #[arg(long, default_value_t = 300)]
        tasks: u32,
        #[arg(long, default_value_t = 3)]
        reps: usize,
    },
    /// Over a private local RabbitMQ with worker processes (build proofline-worker in release first).
    Cluster {
        #[arg(long, default_value_t = 10_000)]
        tasks: u32,
        #[arg(long, default_value_t = 3)]
        reps: usize,
    },
    /// 1 MiB artifacts on the fs store vs S3 (local moto) with and without the cache.
    Store {
        #[arg(long, default_value_t = 3)]
        reps: usize,
    },
    /// GPU kernels (NTT/LDE, Poseidon2, Merkle trees, a keccak segment) vs Plonky3 on the CPU.
    Kernels {
        /// log2 rows of the LDE and Merkle cases (default: 16,18,20,22 on a GPU, 10,12,14 on a CPU driver).
        #[arg(long, value_delimiter = ',')]
        log_rows: Vec<u32>,
        /// Columns of the LDE and Merkle cases.
        #[arg(long, default_value_t = 64)]
        width: usize,
        /// log2 of the Poseidon2 states permuted (default: 22 on a GPU, 14 on a CPU driver).
        #[arg(long)]
        log_perms: Option<u32>,
        /// Keccak-f permutations of the segment proven both ways (default: 4096 on a GPU, 0 = skip, on a CPU driver).
        #[arg(long)]
        segment: Option<usize>,
        #[arg(long, default_value_t = 5)]
        reps: usize,
    },
    /// Concurrent jobs sharing the workers: per-job completion and makespan by share policy.
    Sharing {
        #[arg(long, default_value_t = 8)]
        jobs: usize,
        #[arg(long, default_value_t = 64)]
        tasks: u32,
        /// Sleep of every segment and aggregation, in microseconds.
        #[arg(long, default_value_t = 10_000)]
        micros: u64,
        /// Worker processes (1 lane each) for the AMQP rows (0: skip them; needs
        /// proofline-worker built in release next to this binary).
        #[arg(long, default_value_t = 3)]
        amqp_workers: usize,
    },
    /// N worker processes (1 lane each) on one private RabbitMQ: makespan vs ideal, broker
    /// CPU and deliveries per task, leader connect time while the workers idle.
    Scale(scale::Scale),
    /// End-to-end keccak proving vs one direct Plonky3 `prove` of the same permutations.
    Keccak {
        /// Block files (any supported witness format).
        blocks: Vec<std::path::PathBuf>,
        #[arg(long, default_value_t = 2)]
        lanes: usize,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    if let What::Store { reps } = cli.what {
        // The S3 test server's set-up blocks: it runs outside the async runtime.
        return store::store_overhead(reps);
    }
    if let What::Kernels { log_rows, width, log_perms, segment, reps } = cli.what {
        let hardware = proofline_shaders::Gpu::first().map(|g| g.is_hardware()).unwrap_or(false);
        let log_rows = match (log_rows.is_empty(), hardware) {
            (false, _) => log_rows,
            (true, true) => vec![16, 18, 20, 22],
            (true, false) => vec![10, 12, 14],
        };
        let log_perms = log_perms.unwrap_or(if hardware { 22 } else { 14 });
        let segment = segment.unwrap_or(if hardware { 4096 } else { 0 });
        return kernels::kernels(&log_rows, width, log_perms, segment, reps);
    }
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    match cli.what {
        What::Runtime {
            tasks,
            reps,
            window,
            unbounded,
            noop_only,
            count_instructions,
            instructions_exe,
            instructions_sizes,
            instructions_dir,
        } => {
            use proofline_runtime::leader::scheduler::{Scheduling, SharePolicy};
            let policy = if unbounded { SharePolicy::Unbounded } else { SharePolicy::default() };
            let scheduling = Scheduling { policy, window, ..Scheduling::default() };
            if !(count_instructions && reps == 0) {
                rt.block_on(sim::runtime_overhead(tasks, reps, scheduling, noop_only))?;
            }
            if count_instructions {
                let exe = instructions_exe.unwrap_or_else(instructions::default_exe);
                let [small, large] = instructions_sizes[..] else {
                    anyhow::bail!("--instructions-sizes takes two sizes, e.g. 2000,10000");
                };
                instructions::instructions(&exe, &instructions_dir, small, large)?;
            }
            Ok(())
        }
        What::Stealing { tasks, reps } => rt.block_on(sim::stealing_makespan(tasks, reps)),
        What::Cluster { tasks, reps } => rt.block_on(amqp::cluster(tasks, reps)),
        What::Keccak { blocks, lanes } => rt.block_on(keccak::end_to_end(&blocks, lanes)),
        What::Sharing { jobs, tasks, micros, amqp_workers } => {
            rt.block_on(sharing::sharing(jobs, tasks, micros, amqp_workers))
        }
        What::Scale(cfg) => rt.block_on(scale::scale(cfg)),
        What::Store { .. } | What::Kernels { .. } => unreachable!("handled above"),
    }
}

/// Median of measurements (sorts in place).
pub fn median(xs: &mut [f64]) -> f64 {
    xs.sort_by(|a, b| a.total_cmp(b));
    xs[xs.len() / 2]
}
