//! The sim workload description and its cost distributions.

use rand::{Rng, SeedableRng, rngs::SmallRng};
use serde::{Deserialize, Serialize};

/// A synthetic job.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Workload {
    pub tasks: u32,
    pub cost: Cost,
    #[serde(default)]
    pub seed: u64,
    /// Work per aggregation.
    #[serde(default)]
    pub aggregate_micros: u64,
    #[serde(default)]
    pub work: Work,
    #[serde(default)]
    pub fail: Option<Failure>,
    /// Size of each segment's and aggregation's output, for store benchmarks.
    #[serde(default)]
    pub artifact_bytes: u64,
    /// Wrap reads every leaf (as a real prover's wrap does), so a lost leaf matters.
    #[serde(default)]
    pub wrap_reads_leaves: bool,
}

/// How long each segment task takes.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Cost {
    Fixed {
        micros: u64,
    },
    Uniform {
        min_micros: u64,
        max_micros: u64,
    },
    /// Pareto: `min_micros / U^(1/alpha)`, capped at `max_micros`.
    HeavyTailed {
        min_micros: u64,
        alpha: f64,
        max_micros: u64,
    },
}

/// How a task spends its time.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Work {
    /// Busy CPU (what paladin's benchmark does).
    #[default]
    Spin = 0,
    /// Sleep: time without CPU, to isolate scheduling from CPU contention.
    Sleep = 1,
}

/// Make some segments fail.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Failure {
    pub segments: Vec<u32>,
    pub mode: FailureMode,
    /// Fail the first `times` attempts; 0 = always.
    #[serde(default)]
    pub times: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureMode {
    Retryable,
    Permanent,
    Panic,
    /// Sleep for an hour (a deadlocked prover), heartbeats flowing; gives up only when
    /// the runtime cancels the attempt.
    Hang,
}

impl Workload {
    /// The cost of each task in microseconds, drawn from the seeded distribution.
    pub fn costs(&self) -> Result<Vec<u64>, String> {
        if self.tasks == 0 {
            return Err("sim workload: tasks must be at least 1".into());
        }
        let mut rng = SmallRng::seed_from_u64(self.seed);
        let draw = |rng: &mut SmallRng| -> Result<u64, String> {
            Ok(match self.cost {
                Cost::Fixed { micros } => micros,
                Cost::Uniform { min_micros, max_micros } => {
                    if min_micros > max_micros {
                        return Err("sim workload: uniform min_micros > max_micros".into());
                    }
                    rng.random_range(min_micros..=max_micros)
                }
                Cost::HeavyTailed { min_micros, alpha, max_micros } => {
                    if alpha <= 0.0 {
                        return Err("sim workload: heavy_tailed alpha must be > 0".into());
                    }
                    let u: f64 = rng.random_range(f64::EPSILON..1.0);
                    ((min_micros as f64) / u.powf(1.0 / alpha)).min(max_micros as f64) as u64
                }
            })
        };
        (0..self.tasks).map(|_| draw(&mut rng)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heavy_tail_is_seeded_bounded_and_skewed() {
        let w = Workload {
            tasks: 2000,
            cost: Cost::HeavyTailed { min_micros: 100, alpha: 1.2, max_micros: 100_000 },
            seed: 3,
            aggregate_micros: 0,
            work: Work::Spin,
            fail: None,
            artifact_bytes: 0,
            wrap_reads_leaves: false,
        };
        let a = w.costs().unwrap();
        assert_eq!(a, w.costs().unwrap());
        assert!(a.iter().all(|&c| (100..=100_000).contains(&c)));
        let mean = a.iter().sum::<u64>() as f64 / a.len() as f64;
        let mut sorted = a.clone();
        sorted.sort();
        assert!(mean > 1.5 * sorted[a.len() / 2] as f64, "mean {mean} median {}", sorted[a.len() / 2]);
    }
}
