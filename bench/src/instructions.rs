//! Instructions per no-op task, counted by valgrind (callgrind): a figure that does not
//! move with the machine's load, so a change that adds 10% per task shows in one number.
//!
//! Perf counters are not available on the development VMs and valgrind cannot decode
//! the default `-C target-cpu=native` build (AVX-512), so the count runs a portable
//! build of this benchmark (`scripts/bench/instructions.sh` builds it):
//!
//! ```text
//! RUSTFLAGS="-C target-cpu=x86-64-v2" CARGO_TARGET_DIR=target/portable cargo build --release -p proofline-bench
//! ./target/release/proofline-bench runtime --count-instructions
//! ```
//!
//! Two job sizes run, each in its own process under `valgrind --tool=callgrind`
//! (`runtime --noop-only --reps 1 --tasks N`); start-up, the warm-up job and anything
//! else paid once cancel out of `(I(N2) - I(N1)) / (tasks(N2) - tasks(N1))`. The sim
//! plugin's planning is counted by callgrind per function and reported apart (the
//! timed figures exclude it too). The callgrind files stay in `--instructions-dir` for
//! `callgrind_annotate`.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};

/// One counted run.
#[derive(Clone, Debug, PartialEq)]
pub struct Count {
    /// Segments of the job (tasks = 2 x segments - 1).
    pub segments: u32,
    /// Every instruction the process executed, all threads.
    pub total: u64,
    /// Inclusive instructions of the plugin's `plan`.
    pub plan: u64,
}

impl Count {
    fn tasks(&self) -> u64 {
        2 * u64::from(self.segments) - 1
    }
}

/// `(all, plan)` instructions per task between two counted runs.
pub fn per_task(small: &Count, large: &Count) -> Option<(f64, f64)> {
    let tasks = large.tasks().checked_sub(small.tasks()).filter(|&t| t > 0)? as f64;
    let all = large.total.checked_sub(small.total)? as f64 / tasks;
    let plan = large.plan.saturating_sub(small.plan) as f64 / tasks;
    Some((all, plan))
}

/// The `totals:` (or `summary:`) line of a callgrind output file: instructions, all threads.
pub fn callgrind_total(text: &str) -> Option<u64> {
    text.lines()
        .rev()
        .find_map(|l| l.strip_prefix("totals:").or_else(|| l.strip_prefix("summary:")))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
}

/// Inclusive instructions of the functions whose name contains `needle`, from
/// `callgrind_annotate --inclusive=yes` output (the largest such line: a function's
/// callers include it, never the other way round); `None` if no function matches.
pub fn annotate_inclusive(text: &str, needle: &str) -> Option<u64> {
    text.lines()
        .filter(|l| l.contains(needle))
        .filter_map(|l| l.split_whitespace().next()?.replace(',', "").parse::<u64>().ok())
        .max()
}

/// The portable build next to the default target directory, else this executable.
pub fn default_exe() -> PathBuf {
    let portable = PathBuf::from("target/portable/release/proofline-bench");
    if portable.exists() {
        return portable;
    }
    std::env::current_exe().unwrap_or(portable)
}

fn count(exe: &Path, dir: &Path, segments: u32) -> anyhow::Result<Count> {
    let out = dir.join(format!("callgrind.{segments}.out"));
    let status = Command::new("valgrind")
        .args(["--tool=callgrind", "--quiet"])
        .arg(format!("--callgrind-out-file={}", out.display()))
        .arg(exe)
        .args(["runtime", "--noop-only", "--reps", "1", "--tasks", &segments.to_string()])
        .stdout(std::process::Stdio::null())
        .status()
        .context("running valgrind (apt-get install valgrind)")?;
    if !status.success() {
        bail!(
            "valgrind on {} failed ({status}); a -C target-cpu=native build cannot run under valgrind: \
             build with RUSTFLAGS=\"-C target-cpu=x86-64-v2\" CARGO_TARGET_DIR=target/portable",
            exe.display()
        );
    }
    let text = std::fs::read_to_string(&out).with_context(|| format!("reading {}", out.display()))?;
    let total = callgrind_total(&text).with_context(|| format!("no totals line in {}", out.display()))?;
    let annotated = Command::new("callgrind_annotate")
        .args(["--inclusive=yes", "--threshold=100"])
        .arg(&out)
        .output()
        .context("running callgrind_annotate")?;
    let annotated = String::from_utf8_lossy(&annotated.stdout);
    std::fs::write(dir.join(format!("annotate.{segments}.txt")), annotated.as_bytes())?;
    // Not found is an error, not 0: a renamed trait once made planning silently vanish.
    let needle = "SimPlugin as proofline_plugin::system::ProofSystem>::plan";
    let plan = annotate_inclusive(&annotated, needle)
        .with_context(|| format!("no `{needle}` in {}'s profile", out.display()))?;
    Ok(Count { segments, total, plan })
}

/// Count `small` and `large` no-op jobs under callgrind and print the row.
pub fn instructions(exe: &Path, dir: &Path, small: u32, large: u32) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)?;
    eprintln!("counting instructions of {} under callgrind ({small} and {large} segments)...", exe.display());
    let a = count(exe, dir, small)?;
    let b = count(exe, dir, large)?;
    let (all, plan) = per_task(&a, &b).context("the larger job must have more tasks")?;
    println!();
    println!(
        "| instructions per no-op task ({small} vs {large} segments, callgrind, portable build) | all | of which planning | runtime |"
    );
    println!("|---|---|---|---|");
    println!("| map+fold, in-memory, 2 lanes | {all:.0} | {plan:.0} | **{:.0}** |", all - plan);
    eprintln!(
        "per-function costs: callgrind_annotate {} (inclusive: --inclusive=yes)",
        dir.join(format!("callgrind.{large}.out")).display()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_task_cancels_what_both_runs_pay() {
        let small = Count { segments: 1000, total: 1_000_000 + 1999 * 50, plan: 1000 * 4 };
        let large = Count { segments: 5000, total: 1_000_000 + 9999 * 50, plan: 5000 * 4 };
        let (all, plan) = per_task(&small, &large).unwrap();
        assert_eq!(all, 50.0);
        assert_eq!(plan, 2.0);
        assert_eq!(per_task(&large, &small), None);
    }

    #[test]
    fn parses_callgrind_totals_and_annotations() {
        let out = "events: Ir\nfn=main\n1 5\nsummary: 123456\ntotals: 123456\n";
        assert_eq!(callgrind_total(out), Some(123456));
        assert_eq!(callgrind_total("events: Ir\n"), None);
        let annotated = "\
            1,234,567 (100.0%)  PROGRAM TOTALS\n\
            45,000 (3.6%)  ???:<proofline_sim::SimPlugin as proofline_runtime::plugin::ProofSystem>::plan [/x]\n\
            40,000 (3.2%)  ???:<proofline_sim::SimPlugin as proofline_runtime::plugin::ProofSystem>::plan'2 [/x]\n";
        let needle = "SimPlugin as proofline_runtime::plugin::ProofSystem>::plan";
        assert_eq!(annotate_inclusive(annotated, needle), Some(45_000));
        assert_eq!(annotate_inclusive(annotated, "absent"), None);
    }
}
