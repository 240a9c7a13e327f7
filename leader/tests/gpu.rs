//! `proofline-leader --gpu`: a real block proven on a GPU lane of the embedded worker
//! (lavapipe in CI), and the failures a user can hit with the flag.

mod common;

use std::process::Output;

use common::example;

fn leader(args: &[&str], stdin: &[u8], envs: &[(&str, &str)]) -> Output {
    common::leader_with(args, stdin, &[&[("RUST_LOG", "info")], envs].concat())
}

/// `(launches, fallbacks)` of a `gpu kernels: launches=N (..) fallbacks=M ..` log line.
fn kernel_counts(line: &str) -> (u64, u64) {
    let field = |name: &str| -> u64 {
        let key = format!(" {name}=");
        let at = line.find(&key).unwrap_or_else(|| panic!("no {name}= in {line:?}")) + key.len();
        line[at..].split(|c: char| !c.is_ascii_digit()).next().unwrap().parse().unwrap()
    };
    (field("launches"), field("fallbacks"))
}

/// Every segment on the GPU lane (`--lanes 0`), through `GpuFriPcs` on the device, and
/// the proof verifies like any other. The device's counters show that kernels ran for
/// every segment and nothing fell back to the CPU (which would prove the same block).
/// Segments of 170 permutations (2^12 rows): their LDE fits lavapipe's 128 MiB buffers.
#[test]
fn proves_the_example_block_on_a_gpu_lane_only() {
    let out =
        leader(&["--lanes", "0", "--gpu", "required", "stdio", "--segment-size", "170"], &example(), &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("GPU lane on") && stderr.contains("Vulkan"), "names the adapter: {stderr}");
    assert!(stderr.contains("gpu_lanes=1") && stderr.contains("cpu_lanes=0"), "{stderr}");
    let (segments, totals): (Vec<&str>, Vec<&str>) =
        stderr.lines().filter(|l| l.contains("gpu kernels: ")).partition(|l| l.contains("segment proven"));
    assert_eq!(segments.len(), 12, "one line per segment: {stderr}");
    for line in segments {
        let (launches, fallbacks) = kernel_counts(line);
        assert!(launches > 0 && fallbacks == 0, "a segment off the device: {line}");
    }
    let [total] = totals[..] else { panic!("one total after \"proved\": {stderr}") };
    let (launches, fallbacks) = kernel_counts(total);
    assert!(launches > 0 && fallbacks == 0, "{total}");
    let dir = tempfile::tempdir().unwrap();
    let proof = dir.path().join("block.proof");
    std::fs::write(&proof, &out.stdout).unwrap();
    let verified = leader(&["verify", proof.to_str().unwrap()], b"", &[]);
    let said = String::from_utf8_lossy(&verified.stdout);
    assert_eq!(verified.status.code(), Some(0), "{}", String::from_utf8_lossy(&verified.stderr));
    assert!(said.contains("proof verifies") && said.contains("in 12 segments"), "{said}");
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
