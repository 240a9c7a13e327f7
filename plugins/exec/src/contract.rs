//! The exec contract as data: the steps, how a prover's ending is judged, the plan file.
//!
//! Everything here is pure; [`crate::process`] runs the program and [`crate::ExecPlugin`]
//! moves the files. The contract itself, for prover authors, is `docs/EXEC.md`.

use std::time::Duration;

use proofline_plugin::{PluginError, Verdict};
use serde::{Deserialize, Serialize};

/// Exit code: the input (or the proof handed to `verify`) is malformed. Never retried;
/// the leader's CLI exits with code 2.
pub const EXIT_BAD_INPUT: i32 = 2;
/// Exit code: a transient failure (`EX_TEMPFAIL`); the task is dispatched again.
pub const EXIT_RETRY: i32 = 75;
/// Exit code of `verify`: the proof is well-formed and does not verify.
pub const EXIT_INVALID: i32 = 1;
/// Exit code: a permanent failure (any code not listed here means the same).
pub const EXIT_FAILED: i32 = 1;
/// Exit code: the prover was called with arguments it does not understand (`EX_USAGE`).
pub const EXIT_USAGE: i32 = 64;

/// One call into the prover, named as its first argument.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    Plan,
    Segment,
    Aggregate,
    Wrap,
    Verify,
}

impl Step {
    const ALL: [Step; 5] = [Self::Plan, Self::Segment, Self::Aggregate, Self::Wrap, Self::Verify];

    /// The step a prover is asked for by its first argument.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|step| step.name() == name)
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Plan => "plan",
            Self::Segment => "segment",
            Self::Aggregate => "aggregate",
            Self::Wrap => "wrap",
            Self::Verify => "verify",
        }
    }
}

/// How a prover process ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ending {
    /// It exited with this code.
    Exited(i32),
    /// A signal killed it (a crash, or the kernel's OOM killer).
    Signalled(i32),
    /// It ran past the step timeout; its process group was killed.
    TimedOut(Duration),
    /// The runtime cancelled the task; its process group was killed.
    Cancelled,
}

/// What the prover said, for messages: the tail of its stderr (or stdout if stderr was
/// silent), on one line.
pub fn said(stderr: &str, stdout: &str) -> String {
    let text = if stderr.trim().is_empty() { stdout } else { stderr };
    let line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if line.is_empty() { "(no output)".into() } else { line }
}

/// Judge the ending of any step but `verify`: `Ok` when the prover exited 0.
///
/// | ending | meaning |
/// |---|---|
/// | exit 0 | done; the output file must exist |
/// | exit 2 | bad input: never retried |
/// | exit 75 | transient: retried |
/// | killed by a signal, timed out | retried (a crash or OOM kill may not recur) |
/// | any other exit code | permanent failure |
pub fn judge(step: Step, ending: Ending, output: &str) -> Result<(), PluginError> {
    match ending {
        Ending::Exited(0) => Ok(()),
        other => Err(failure(step, other, output)),
    }
}

/// The error for a step that did not succeed (an exit 0 here is reported as a failure).
fn failure(step: Step, ending: Ending, output: &str) -> PluginError {
    let step = step.name();
    match ending {
        Ending::Exited(EXIT_BAD_INPUT) => PluginError::bad_input(format!("{step}: {output}")),
        Ending::Exited(EXIT_RETRY) => PluginError::retryable(format!(
            "exec prover {step} exited with code {EXIT_RETRY} (transient): {output}"
        )),
        Ending::Exited(code) => {
            PluginError::permanent(format!("exec prover {step} exited with code {code}: {output}"))
        }
        Ending::Signalled(signal) => {
            PluginError::retryable(format!("exec prover {step} was killed by signal {signal}: {output}"))
        }
        Ending::TimedOut(after) => PluginError::retryable(format!(
            "exec prover {step} ran past its {}s timeout and was killed: {output}",
            after.as_secs()
        )),
        Ending::Cancelled => PluginError::Cancelled,
    }
}

/// Judge the ending of `verify`: exit 0 is valid (stdout is the statement), exit 1 is
/// invalid (stdout, or stderr, is the reason), exit 2 is not a proof.
pub fn judge_verify(ending: Ending, stdout: &str, stderr: &str) -> Result<Verdict, PluginError> {
    let said_out = |fallback: &str| match stdout.trim() {
        "" => fallback.trim().to_string(),
        text => text.to_string(),
    };
    match ending {
        Ending::Exited(0) => Ok(Verdict::Valid { statement: said_out("(the prover printed no statement)") }),
        Ending::Exited(EXIT_INVALID) => Ok(Verdict::Invalid { reason: said_out(stderr) }),
        other => Err(failure(Step::Verify, other, &said(stderr, stdout))),
    }
}

/// `OUTDIR/plan.json`, written by the prover's `plan` step.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlanFile {
    /// The segments, in order.
    pub segments: Vec<PlanSegment>,
    /// File (in OUTDIR) holding the job statement handed to `wrap`.
    pub meta: String,
    /// One line for humans: what is being proven.
    pub summary: String,
    /// File-name-safe name of what is proven (`[A-Za-z0-9._-]`, at most 96 characters).
    pub name: String,
}

/// One segment of a [`PlanFile`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlanSegment {
    /// File (in OUTDIR) holding the segment payload handed to `segment`.
    pub payload: String,
    /// Cost estimate, in the prover's own unit (used for scheduling and progress).
    pub cost: u64,
}

impl PlanFile {
    /// Parse and check `plan.json`: at least one segment, file names that stay inside
    /// OUTDIR, a usable name.
    pub fn parse(bytes: &[u8]) -> Result<Self, String> {
        let plan: Self = serde_json::from_slice(bytes).map_err(|e| format!("plan.json: {e}"))?;
        if plan.segments.is_empty() {
            return Err("plan.json: no segments".into());
        }
        check_file_name(&plan.meta).map_err(|e| format!("plan.json meta: {e}"))?;
        for (i, segment) in plan.segments.iter().enumerate() {
            check_file_name(&segment.payload).map_err(|e| format!("plan.json segments[{i}].payload: {e}"))?;
        }
        if !proofline_plugin::Plan::is_valid_name(&plan.name) {
            return Err(format!(
                "plan.json name {:?}: expected 1 to 96 characters of [A-Za-z0-9._-], not starting with a dot",
                plan.name
            ));
        }
        Ok(plan)
    }
}

/// A file name inside OUTDIR: no separators, not `.` or `..`, not empty.
pub fn check_file_name(name: &str) -> Result<(), String> {
    let plain = !name.is_empty() && name != "." && name != ".." && !name.contains(['/', '\\', '\0']);
    if plain { Ok(()) } else { Err(format!("{name:?} is not a plain file name inside OUTDIR")) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_map_to_retryable_permanent_and_bad_input() {
        assert_eq!(judge(Step::Segment, Ending::Exited(0), ""), Ok(()));
        let bad = judge(Step::Plan, Ending::Exited(2), "line 3: not JSON").unwrap_err();
        assert_eq!(bad, PluginError::bad_input("plan: line 3: not JSON"));
        assert!(judge(Step::Segment, Ending::Exited(75), "busy").unwrap_err().is_retryable());
        let crash = judge(Step::Aggregate, Ending::Signalled(11), "segfault").unwrap_err();
        assert!(crash.is_retryable());
        assert!(crash.to_string().contains("killed by signal 11: segfault"), "{crash}");
        let hung = judge(Step::Segment, Ending::TimedOut(Duration::from_secs(5)), "").unwrap_err();
        assert!(hung.is_retryable() && hung.to_string().contains("5s timeout"), "{hung}");
        let failed = judge(Step::Wrap, Ending::Exited(1), "no root").unwrap_err();
        assert!(!failed.is_retryable());
        assert_eq!(failed.to_string(), "exec prover wrap exited with code 1: no root");
        assert_eq!(judge(Step::Segment, Ending::Cancelled, ""), Err(PluginError::Cancelled));
    }

    #[test]
    fn verify_reads_the_verdict_from_the_exit_code() {
        let valid = judge_verify(Ending::Exited(0), "block 1 proven\n", "").unwrap();
        assert_eq!(valid, Verdict::Valid { statement: "block 1 proven".into() });
        let invalid = judge_verify(Ending::Exited(1), "", "leaf 3 rejected\n").unwrap();
        assert_eq!(invalid, Verdict::Invalid { reason: "leaf 3 rejected".into() });
        let malformed = judge_verify(Ending::Exited(2), "", "not a proof").unwrap_err();
        assert_eq!(malformed, PluginError::bad_input("verify: not a proof"));
        assert!(judge_verify(Ending::Exited(9), "", "").is_err());
    }

    #[test]
    fn what_the_prover_said_is_one_line_and_never_empty() {
        assert_eq!(said("error:\n  bad  thing\n", "ignored"), "error: bad thing");
        assert_eq!(said("  ", "from stdout"), "from stdout");
        assert_eq!(said("", ""), "(no output)");
    }

    #[test]
    fn plan_files_stay_inside_outdir() {
        let good = br#"{"segments":[{"payload":"seg-0","cost":3}],"meta":"meta","summary":"s","name":"n-1"}"#;
        let plan = PlanFile::parse(good).unwrap();
        assert_eq!(plan.segments, vec![PlanSegment { payload: "seg-0".into(), cost: 3 }]);
        let escape = br#"{"segments":[{"payload":"../x","cost":3}],"meta":"meta","summary":"s","name":"n"}"#;
        let err = PlanFile::parse(escape).unwrap_err();
        assert!(err.contains("segments[0].payload") && err.contains("plain file name"), "{err}");
        let empty = br#"{"segments":[],"meta":"m","summary":"s","name":"n"}"#;
        assert_eq!(PlanFile::parse(empty).unwrap_err(), "plan.json: no segments");
        let name = br#"{"segments":[{"payload":"p","cost":1}],"meta":"m","summary":"s","name":"a/b"}"#;
        assert!(PlanFile::parse(name).unwrap_err().contains("name \"a/b\""));
        let extra = br#"{"segments":[{"payload":"p","cost":1}],"meta":"m","summary":"s","name":"n","x":1}"#;
        assert!(PlanFile::parse(extra).unwrap_err().contains("unknown field"));
    }
}
