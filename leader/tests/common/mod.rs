//! Running the `proofline-leader` binary as a user does, with a fresh artifact store.
#![allow(dead_code)] // each test file uses its own subset

use std::io::Write;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};

/// `proofline-leader ARGS` with a fresh store (kept alive by the returned guard),
/// logging at `warn` unless `envs` sets `RUST_LOG`; all three pipes open.
fn spawn(args: &[&str], envs: &[(&str, &str)]) -> (Child, tempfile::TempDir) {
    let store = tempfile::tempdir().unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_proofline-leader"))
        .args(args)
        .env("PROOFLINE_STORE", format!("fs:{}", store.path().display()))
        .env("RUST_LOG", "warn")
        .envs(envs.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    (child, store)
}

/// `proofline-leader ARGS < stdin`, logging at `warn` unless `envs` sets `RUST_LOG`.
pub fn leader_with(args: &[&str], stdin: &[u8], envs: &[(&str, &str)]) -> Output {
    let (mut child, _store) = spawn(args, envs);
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    child.wait_with_output().unwrap()
}

/// The example block of the README's first command.
pub fn example() -> Vec<u8> {
    std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/example-block.json")).unwrap()
}

/// Like [`leader_with`], but stdin is fed from a thread and a child that stops
/// reading early (an over-limit input) is no test failure.
pub fn leader_fed(args: &[&str], stdin: Vec<u8>, envs: &[(&str, &str)]) -> Output {
    let (mut child, _store) = spawn(args, envs);
    let mut pipe = child.stdin.take().unwrap();
    let feeder = std::thread::spawn(move || {
        let _ = pipe.write_all(&stdin); // a broken pipe is the child saying "enough"
    });
    let out = child.wait_with_output().unwrap();
    feeder.join().unwrap();
    out
}
