//! `proofline-keccak-prover` speaks the exec contract (docs/EXEC.md): the plan step's
//! files, exit codes for usage errors, bad input and failed steps. Proving through it
//! end to end is in `tests/tests/exec.rs`.

use std::path::Path;
use std::process::{Command, Output};

use proofline_exec::contract::{EXIT_BAD_INPUT, EXIT_FAILED, EXIT_USAGE, PlanFile};

const PROVER: &str = env!("CARGO_BIN_EXE_proofline-keccak-prover");

fn example() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/example-block.json")
}

fn prover(args: &[&Path], envs: &[(&str, &str)]) -> Output {
    Command::new(PROVER).args(args).envs(envs.iter().copied()).output().unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn plan_writes_the_plan_file_and_every_file_it_names() {
    for (size, segments) in [(None, 2), (Some("500"), 4)] {
        let out_dir = tempfile::tempdir().unwrap();
        let envs: Vec<_> = size.map(|s| ("PROOFLINE_SEGMENT_SIZE", s)).into_iter().collect();
        let out = prover(&[Path::new("plan"), &example(), out_dir.path()], &envs);
        assert!(out.status.success(), "{}", stderr(&out));
        let plan = PlanFile::parse(&std::fs::read(out_dir.path().join("plan.json")).unwrap()).unwrap();
        assert_eq!(plan.segments.len(), segments, "segment size {size:?}");
        assert_eq!(plan.segments.iter().map(|s| s.cost).sum::<u64>(), 1996, "all permutations planned");
        assert!(plan.name.starts_with("22907757-17bc6fcc"), "{}", plan.name);
        for file in plan.segments.iter().map(|s| &s.payload).chain([&plan.meta]) {
            assert!(std::fs::metadata(out_dir.path().join(file)).unwrap().len() > 0, "{file}");
        }
        let leftovers: Vec<_> = std::fs::read_dir(out_dir.path())
            .unwrap()
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|n| n.ends_with(".tmp"))
            .collect();
        assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
    }
}

#[test]
fn usage_errors_bad_input_and_failed_steps_have_their_exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    let usage = prover(&[Path::new("prove")], &[]);
    assert_eq!(usage.status.code(), Some(EXIT_USAGE));
    assert!(stderr(&usage).contains("usage: PROVER plan IN OUTDIR"), "{}", stderr(&usage));

    let junk = dir.path().join("junk");
    std::fs::write(&junk, b"not a proof").unwrap();
    let verify = prover(&[Path::new("verify"), &junk], &[]);
    assert_eq!(verify.status.code(), Some(EXIT_BAD_INPUT), "{}", stderr(&verify));

    let plan = prover(&[Path::new("plan"), &junk, dir.path()], &[]);
    assert_eq!(plan.status.code(), Some(EXIT_BAD_INPUT));
    assert!(stderr(&plan).contains("malformed JSON at line 1"), "{}", stderr(&plan));

    let out = dir.path().join("out");
    let segment = prover(&[Path::new("segment"), &junk, &out], &[]);
    assert_eq!(segment.status.code(), Some(EXIT_FAILED), "{}", stderr(&segment));
    assert!(!out.exists(), "a failed step writes no output");

    let size = prover(&[Path::new("plan"), &example(), dir.path()], &[("PROOFLINE_SEGMENT_SIZE", "lots")]);
    assert_eq!(size.status.code(), Some(EXIT_BAD_INPUT));
    assert!(stderr(&size).contains("PROOFLINE_SEGMENT_SIZE=\"lots\""), "{}", stderr(&size));
}
