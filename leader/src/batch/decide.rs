//! The decisions of `batch`, as pure functions: file names, chain order, what to do
//! with each block on a (re-)run, and the exit code from the outcomes.

use std::path::{Path, PathBuf};
use std::time::Duration;

/// The files of one block in `--out`, all named after the plan's name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlockFiles {
    /// The proof, `<name>.proof`: its presence (verifying) means the block is done.
    pub proof: PathBuf,
    /// The JSON summary, `<name>.json`.
    pub summary: PathBuf,
    /// The id of the job proving it, `<name>.job`: present from before the job starts
    /// until its proof is durable, so a re-run resumes that job.
    pub job: PathBuf,
}

impl BlockFiles {
    pub fn new(out: &Path, name: &str) -> Self {
        Self {
            proof: out.join(format!("{name}.proof")),
            summary: out.join(format!("{name}.json")),
            job: out.join(format!("{name}.job")),
        }
    }
}

/// The timeline picture of block `name` in `--timeline DIR`.
pub fn timeline_file(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("{name}.svg"))
}

/// The block number a plan name starts with (`22615247-0497f695` -> 22615247), if any.
pub fn block_number(name: &str) -> Option<u64> {
    let digits = name.split('-').next()?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// The order to prove blocks in: by block number where every name has one (chain
/// order), else in input order. Returns `(index into names, order for the scheduler)`.
pub fn chain_order(names: &[&str]) -> Vec<(usize, u64)> {
    let numbers: Option<Vec<u64>> = names.iter().map(|n| block_number(n)).collect();
    let mut order: Vec<(usize, u64)> = match numbers {
        Some(numbers) => numbers.into_iter().enumerate().collect(),
        None => (0..names.len()).map(|i| (i, i as u64)).collect(),
    };
    // Stable: equal numbers keep input order.
    order.sort_by_key(|&(i, n)| (n, i));
    order
}

/// Which blocks to start, in order, and which are another input's block again.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Schedule {
    /// `(index into names, order for the scheduler)`, in the order to start them.
    pub start: Vec<(usize, u64)>,
    /// `(index, index of the first input of the same block)`.
    pub duplicates: Vec<(usize, usize)>,
}

/// [`chain_order`] of `names`, each block once: the first input (in input order)
/// of a block is proven, later ones are its duplicates.
pub fn schedule(names: &[&str]) -> Schedule {
    let mut first: std::collections::HashMap<&str, usize> = Default::default();
    let mut plan = Schedule::default();
    for (i, order) in chain_order(names) {
        match first.get(names[i]) {
            Some(&of) => plan.duplicates.push((i, of)),
            None => {
                first.insert(names[i], i);
                plan.start.push((i, order));
            }
        }
    }
    plan
}

/// What the proof file already in `--out` says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ExistingProof {
    Missing,
    Verifies,
    /// Present but unusable (does not verify, malformed, another plugin): prove again.
    Unusable(String),
}

/// What to do with a block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Its proof is in `--out` and verifies.
    Skip,
    /// Continue the job recorded in `<name>.job`.
    Resume(String),
    /// Start a new job.
    Prove,
}

/// Decide from the proof file and the recorded job id (the `.job` file's text).
pub fn decide(existing: &ExistingProof, recorded: Option<&str>) -> Action {
    if *existing == ExistingProof::Verifies {
        return Action::Skip;
    }
    match recorded.map(str::trim) {
        Some(id) if proofline_runtime::task::is_job_id(id) => Action::Resume(id.to_owned()),
        _ => Action::Prove,
    }
}

/// What happened to one input.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    Proven {
        elapsed: Duration,
        resumed_segments: u32,
        retries: u64,
    },
    /// Its proof was already in `--out` and verifies.
    Skipped,
    /// Another input is the same block (same plan name): proven once, under that input.
    Duplicate {
        of: PathBuf,
    },
    /// Unreadable, too large, or rejected by the plugin: nothing was started for it.
    BadInput(String),
    /// Its job failed (it stays resumable: re-run the command).
    Failed(String),
    /// Ctrl-C stopped its job (resumable) or came before it started.
    Interrupted(String),
}

impl Outcome {
    pub fn state(&self) -> &'static str {
        match self {
            Self::Proven { .. } => "proven",
            Self::Skipped => "skipped",
            Self::Duplicate { .. } => "duplicate",
            Self::BadInput(_) => "bad input",
            Self::Failed(_) => "failed",
            Self::Interrupted(_) => "interrupted",
        }
    }
}

/// 1 if any job failed or was interrupted, else 2 if any input was bad, else 0.
pub fn exit_code<'a>(outcomes: impl IntoIterator<Item = &'a Outcome>) -> u8 {
    let mut code = 0;
    for outcome in outcomes {
        match outcome {
            Outcome::Failed(_) | Outcome::Interrupted(_) => return 1,
            Outcome::BadInput(_) => code = 2,
            _ => {}
        }
    }
    code
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_are_named_after_the_block() {
        let f = BlockFiles::new(Path::new("proofs"), "22615247-0497f695");
        assert_eq!(f.proof, Path::new("proofs/22615247-0497f695.proof"));
        assert_eq!(f.summary, Path::new("proofs/22615247-0497f695.json"));
        assert_eq!(f.job, Path::new("proofs/22615247-0497f695.job"));
        assert_eq!(timeline_file(Path::new("t"), "7-ab"), Path::new("t/7-ab.svg"));
    }

    #[test]
    fn blocks_go_in_chain_order_or_else_input_order() {
        assert_eq!(block_number("22615247-0497f695"), Some(22615247));
        assert_eq!(block_number("sim-1a2b3c4d"), None);
        assert_eq!(block_number("-12"), None);
        assert_eq!(chain_order(&["30-aa", "1-bb", "30-cc", "2-dd"]), [(1, 1), (3, 2), (0, 30), (2, 30)]);
        assert_eq!(chain_order(&["sim-b", "sim-a", "3-x"]), [(0, 0), (1, 1), (2, 2)]);
        assert!(chain_order(&[]).is_empty());
    }

    #[test]
    fn each_block_is_started_once_in_chain_order() {
        let plan = schedule(&["9-a", "3-b", "9-a", "3-b", "5-c"]);
        assert_eq!(plan.start, [(1, 3), (4, 5), (0, 9)]);
        assert_eq!(plan.duplicates, [(3, 1), (2, 0)]);
        let sims = schedule(&["sim-1", "sim-2", "sim-1"]);
        assert_eq!(sims.start, [(0, 0), (1, 1)]);
        assert_eq!(sims.duplicates, [(2, 0)]);
    }

    #[test]
    fn a_verifying_proof_is_skipped_a_recorded_job_resumed_else_proven() {
        let job = "job-6752c1f0-1a2b3c4d";
        assert_eq!(decide(&ExistingProof::Verifies, Some(job)), Action::Skip);
        assert_eq!(decide(&ExistingProof::Missing, Some(&format!("{job}\n"))), Action::Resume(job.into()));
        let bad = ExistingProof::Unusable("does not verify".into());
        assert_eq!(decide(&bad, Some(job)), Action::Resume(job.into()));
        assert_eq!(decide(&bad, None), Action::Prove);
        // A damaged job file is no job id: start afresh.
        assert_eq!(decide(&ExistingProof::Missing, Some("job-zz")), Action::Prove);
        assert_eq!(decide(&ExistingProof::Missing, Some("")), Action::Prove);
    }

    #[test]
    fn failures_outrank_bad_input_which_outranks_success() {
        let proven = Outcome::Proven { elapsed: Duration::ZERO, resumed_segments: 0, retries: 0 };
        let bad = Outcome::BadInput("x".into());
        let failed = Outcome::Failed("y".into());
        assert_eq!(exit_code([&proven, &Outcome::Skipped]), 0);
        assert_eq!(exit_code([&proven, &bad]), 2);
        assert_eq!(exit_code([&bad, &failed, &proven]), 1);
        assert_eq!(exit_code([&Outcome::Interrupted("z".into())]), 1);
        assert_eq!(exit_code([&Outcome::Duplicate { of: "a.json".into() }]), 0);
        assert_eq!(exit_code([]), 0);
    }
}
