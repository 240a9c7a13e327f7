//! Proving on the GPU (lavapipe in CI): the LDE and every Merkle tree on the device,
//! the proof byte-identical to the CPU proof and accepted by the stock Plonky3 verifier
//! (a configuration built only from Plonky3's own `Radix2DitParallel` and
//! `MerkleTreeMmcs`, no Proofline types).
//!
//! The seams fall back to the CPU on any device error, so equal proofs alone would pass
//! with every kernel failing: each test also checks the device's counters (kernels of
//! every kind ran, nothing fell back).

use std::sync::Mutex;

use p3_baby_bear::BabyBear;
use p3_commit::ExtensionMmcs;
use p3_dft::Radix2DitParallel;
use p3_field::Field;
use p3_fri::{FriParameters, TwoAdicFriPcs};
use p3_merkle_tree::MerkleTreeMmcs;
use p3_uni_stark::{StarkConfig, setup_preprocessed, verify_with_preprocessed};
use proofline_keccak::air::{BoundKeccakAir, PermIo};
use proofline_keccak::challenger::DeterministicChallenger;
use proofline_keccak::config::{
    Challenge, Compress, FieldHash, Gpu, MERKLE_CAP_HEIGHT, Offload, perm, stark_config_on,
};
use proofline_keccak::sponge::keccak_f;
use proofline_keccak::stark::{encode_proof, prove_perms, prove_perms_with, verify_perms};
use proofline_shaders::GpuCounters;

/// The lane tests share adapter 0: one at a time, so each one's counters are its own.
static ADAPTER_0: Mutex<()> = Mutex::new(());

/// What `gpu` did since `before`, after asserting that the NTT, Poseidon2 and Merkle
/// kernels all ran and nothing fell back to the CPU.
fn assert_kernels_ran(gpu: &Gpu, before: &GpuCounters, what: &str) -> GpuCounters {
    let ran = gpu.counters().since(before);
    assert!(ran.ntt > 0 && ran.poseidon2 > 0 && ran.merkle > 0, "{what}: not every kernel ran: {ran}");
    assert_eq!(ran.fallbacks, 0, "{what}: the device failed and the CPU took over: {ran}");
    ran
}

type StockMmcs =
    MerkleTreeMmcs<<BabyBear as Field>::Packing, <BabyBear as Field>::Packing, FieldHash, Compress, 2, 8>;
type StockPcs = TwoAdicFriPcs<
    BabyBear,
    Radix2DitParallel<BabyBear>,
    StockMmcs,
    ExtensionMmcs<BabyBear, Challenge, StockMmcs>,
>;
type StockConfig = StarkConfig<StockPcs, Challenge, DeterministicChallenger>;

fn stock_config() -> StockConfig {
    let mmcs = StockMmcs::new(FieldHash::new(perm()), Compress::new(perm()), MERKLE_CAP_HEIGHT);
    let fri = FriParameters::new_benchmark(ExtensionMmcs::new(mmcs.clone()));
    StarkConfig::new(
        StockPcs::new(Radix2DitParallel::default(), mmcs, fri),
        DeterministicChallenger::new(perm()),
    )
}

fn fresh_io(n: usize) -> (u64, Vec<PermIo>) {
    let seed = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64;
    let io = (0..n)
        .map(|k| {
            let input = std::array::from_fn(|i| {
                (seed ^ ((k * 25 + i) as u64)).wrapping_mul(0x9e37_79b9_7f4a_7c15).rotate_left(17)
            });
            PermIo { input, output: keccak_f(&input) }
        })
        .collect();
    (seed, io)
}

#[test]
fn gpu_proof_equals_cpu_proof_and_the_stock_verifier_accepts_it() {
    let gpu = Gpu::first().expect("a Vulkan adapter (lavapipe in CI): install mesa-vulkan-drivers");
    let (seed, io) = fresh_io(3);

    let before = gpu.counters();
    let on_gpu = prove_perms_with(&io, &stark_config_on(&gpu, Offload::ALL)).unwrap();
    let ran = assert_kernels_ran(&gpu, &before, &format!("seed {seed}"));
    assert_eq!(ran.skipped, 0, "Offload::ALL keeps nothing on the CPU: {ran}");
    let on_cpu = prove_perms(&io).unwrap();
    let gpu_bytes = encode_proof(&on_gpu);
    assert!(gpu_bytes == encode_proof(&on_cpu), "seed {seed}: the GPU proof differs from the CPU proof");
    verify_perms(&io, &on_gpu).unwrap();

    // The stock Plonky3 verifier, on the bytes.
    let stock = stock_config();
    let proof: p3_uni_stark::Proof<StockConfig> = postcard::from_bytes(&gpu_bytes).unwrap();
    let air = BoundKeccakAir::new(io.clone());
    let (_, vk) = setup_preprocessed(&stock, &air, BoundKeccakAir::degree_bits(io.len())).unwrap().unwrap();
    verify_with_preprocessed(&stock, &air, &proof, &[], Some(&vk))
        .unwrap_or_else(|e| panic!("seed {seed}: stock verifier rejected the GPU proof: {e:?}"));

    // And it still proves exactly these permutations.
    let mut other = io.clone();
    other[1].output[3] ^= 1;
    assert!(verify_perms(&other, &on_gpu).is_err());
}

#[test]
fn a_gpu_lane_proves_a_segment_of_the_example_block_identically() {
    use proofline_keccak::KeccakPlugin;
    use proofline_plugin::{ExecCx, LaneDevice, PlanOptions, ProofSystem};

    let device = proofline_shaders::adapters().first().expect("a Vulkan adapter (lavapipe in CI)");
    let _alone = ADAPTER_0.lock().unwrap_or_else(|e| e.into_inner());
    let block =
        std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/example-block.json")).unwrap();
    // 128 permutations: 3,072 rows padded to 2^12, the smallest trace Offload::DEFAULT
    // sends to the device (lanes prove with the production thresholds).
    assert_eq!(BoundKeccakAir::trace_height(128), 1 << Offload::DEFAULT.min_log_rows);
    let plan = KeccakPlugin.plan(&block, &PlanOptions { segment_size: Some(128) }).unwrap();
    let segment = &plan.segments.get(1).unwrap().into_owned().payload;
    let on = |device| ExecCx::new("seg-1", 0, Default::default()).on(device);
    let before = device.counters();
    let gpu = KeccakPlugin.prove_segment(&mut on(LaneDevice::Gpu(0)), segment).unwrap();
    assert_kernels_ran(device, &before, "example block, segment 1");
    let cpu = KeccakPlugin.prove_segment(&mut on(LaneDevice::Cpu), segment).unwrap();
    assert!(gpu == cpu, "a segment proven on GPU lane 0 differs from the CPU lane's");
    let missing = KeccakPlugin.prove_segment(&mut on(LaneDevice::Gpu(99)), segment).unwrap_err();
    assert!(missing.to_string().contains("GPU adapter 99"), "{missing}");
}

/// A segment of a real mainnet block (#22615247, ZK-PIG prover input from
/// `../shared/fixtures`) large enough for `Offload::DEFAULT` to put its LDE and Merkle
/// trees on the device: the GPU lane's artifact equals the CPU lane's.
///
/// At most 170 permutations (a 2^12-row trace): the 2^13-row LDE of the 2633-column main
/// trace (86 MB) fits lavapipe's 128 MiB storage-buffer binding; twice that does not, and
/// the LDE falls back to the CPU (counted, so this test would catch it).
#[test]
fn a_gpu_lane_proves_a_mainnet_segment_on_the_device_identically() {
    use proofline_keccak::KeccakPlugin;
    use proofline_plugin::{ExecCx, LaneDevice, PlanOptions, ProofSystem};

    let device = proofline_shaders::adapters().first().expect("a Vulkan adapter (lavapipe in CI)");
    let _alone = ADAPTER_0.lock().unwrap_or_else(|e| e.into_inner());
    let block = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/fixtures/mainnet-22615247.zkpig.json"
    ))
    .expect("../shared/fixtures next to the checkout");
    // 170 permutations: 4,080 trace rows, padded to the 2^12-row LDE threshold.
    let plan = KeccakPlugin.plan(&block, &PlanOptions { segment_size: Some(170) }).unwrap();
    assert!(plan.segments.len() > 1, "a real block spans several segments");
    let segment = &plan.segments.get(0).unwrap().into_owned().payload;
    let on = |device| ExecCx::new("seg-0", 0, Default::default()).on(device);
    let before = device.counters();
    let gpu = KeccakPlugin.prove_segment(&mut on(LaneDevice::Gpu(0)), segment).unwrap();
    assert_kernels_ran(device, &before, "mainnet block, segment 0");
    let cpu = KeccakPlugin.prove_segment(&mut on(LaneDevice::Cpu), segment).unwrap();
    assert!(gpu == cpu, "the mainnet segment proven on GPU lane 0 differs from the CPU lane's");
}
