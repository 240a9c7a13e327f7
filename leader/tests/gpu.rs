//! `proofline-leader --gpu`: a real block proven on a GPU lane of the embedded worker
//! (lavapipe in CI), and the failures a user can hit with the flag.

mod common;

use std::process::Output;

use common::example;

fn leader(args: &[&str], stdin: &[u8], envs: &[(&str, &str)]) -> Output {
    common::leader_with(args, stdin, &[&[("RUST_LOG", "info")], envs].concat())
}

/// Every segment on the GPU lane (`--lanes 0`), through `GpuFriPcs` on the device, and
/// the proof verifies like any other.
#[test]
fn proves_the_example_block_on_a_gpu_lane_only() {
    let out =
        leader(&["--lanes", "0", "--gpu", "required", "stdio", "--segment-size", "512"], &example(), &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("GPU lane on") && stderr.contains("Vulkan"), "names the adapter: {stderr}");
    assert!(stderr.contains("gpu_lanes=1") && stderr.contains("cpu_lanes=0"), "{stderr}");
    let dir = tempfile::tempdir().unwrap();
    let proof = dir.path().join("block.proof");
    std::fs::write(&proof, &out.stdout).unwrap();
    let verified = leader(&["verify", proof.to_str().unwrap()], b"", &[]);
    let said = String::from_utf8_lossy(&verified.stdout);
    assert_eq!(verified.status.code(), Some(0), "{}", String::from_utf8_lossy(&verified.stderr));
    assert!(said.contains("proof verifies") && said.contains("in 4 segments"), "{said}");
}

#[test]
fn gpu_required_without_an_adapter_exits_1() {
    let out =
        leader(&["--gpu", "required", "stdio"], &example(), &[("WGPU_ADAPTER_NAME", "no-such-adapter")]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("--gpu required") && stderr.contains("no GPU adapter found"), "{stderr}");
    assert!(out.stdout.is_empty() && !stderr.contains("panicked"), "{stderr}");
}

#[test]
fn no_lane_at_all_is_bad_input() {
    let out = leader(&["--lanes", "0", "--gpu", "off", "stdio"], &example(), &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--lanes 0") && stderr.contains("no GPU lane"), "{stderr}");
    assert!(out.stdout.is_empty());
}
