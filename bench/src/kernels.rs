//! GPU kernels vs Plonky3 on the CPU of the same machine: NTT/LDE, Poseidon2, whole
//! Merkle trees, and a keccak segment proven on each.
//!
//! GPU kernel times exclude host transfers (data already on the device); Merkle and
//! segment times are end to end (upload, kernels, read-back) because that is what the
//! prover pays. Run with `--features parallel` to give Plonky3 every CPU core.

use std::time::Instant;

use p3_baby_bear::BabyBear;
use p3_commit::Mmcs;
use p3_dft::{Radix2DitParallel, TwoAdicSubgroupDft};
use p3_field::Field;
use p3_matrix::dense::RowMajorMatrix;
use p3_symmetric::Permutation;
use proofline_keccak::air::PermIo;
use proofline_keccak::config::{Offload, perm, stark_config, stark_config_on};
use proofline_keccak::sponge::keccak_f;
use proofline_keccak::stark::prove_perms_with;
use proofline_shaders::{Gpu, GpuMmcs, Ntt, NttPlan, Poseidon2Kernel, Transform};
use rand::{Rng, SeedableRng, rngs::SmallRng};

use crate::median;

fn time(reps: usize, mut f: impl FnMut()) -> f64 {
    let mut xs: Vec<f64> = (0..reps)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64()
        })
        .collect();
    median(&mut xs)
}

fn random(n: usize, rng: &mut SmallRng) -> Vec<BabyBear> {
    (0..n).map(|_| BabyBear::new(rng.random_range(0..0x7800_0001))).collect()
}

fn gbs(bytes: f64, secs: f64) -> f64 {
    bytes / secs / 1e9
}

/// `log_sizes`: NTT rows / Merkle rows (log2); `segment`: permutations of the keccak
/// segment (0: skip).
pub fn kernels(
    log_sizes: &[u32],
    width: usize,
    perms_log: u32,
    segment: usize,
    reps: usize,
) -> anyhow::Result<()> {
    let gpu = Gpu::first()?;
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let parallel = cfg!(feature = "parallel");
    println!("GPU: {}", gpu.describe());
    println!(
        "CPU: Plonky3 0.8 on {} ({threads} hardware threads available)\n",
        if parallel { "all cores (rayon)" } else { "one core" }
    );
    if !gpu.is_hardware() {
        println!(
            "**{} is a CPU driver: these figures check correctness only, not performance.**\n",
            gpu.name()
        );
    }
    let copy_bytes = if gpu.is_hardware() { 1 << 30 } else { 64 << 20 };
    let copy = gpu.copy_bandwidth(copy_bytes, 10)?;
    println!("Device copy bandwidth (buffer to buffer, read + write): **{:.1} GB/s**\n", copy / 1e9);

    let mut rng = SmallRng::seed_from_u64(7);
    println!("| kernel | size | GPU | CPU (Plonky3) | CPU / GPU | achieved | of copy bw |");
    println!("|---|---|---|---|---|---|---|");
    let ntt = Ntt::new(gpu.clone());
    let cpu_dft = Radix2DitParallel::<BabyBear>::default();
    for &log in log_sizes {
        let values = random(width << log, &mut rng);
        let Ok(plan) =
            NttPlan::new(&ntt, Transform::CosetLde { added_bits: 1, shift: BabyBear::GENERATOR }, log, width)
        else {
            println!("| coset LDE x2 | 2^{log} x {width} | too large for this device | | | | |");
            continue;
        };
        plan.load(&values);
        plan.run();
        gpu.wait()?;
        let t_gpu = time(reps, || {
            plan.run();
            gpu.wait().expect("GPU wait");
        });
        let t_cpu = time(reps.min(3), || {
            let m = RowMajorMatrix::new(values.clone(), width);
            std::hint::black_box(cpu_dft.coset_lde_batch(m, 1, BabyBear::GENERATOR));
        });
        // Least traffic an LDE needs: read the input once, write the 2x output once.
        let bytes = (values.len() * 4 * 3) as f64;
        println!(
            "| coset LDE x2 ({} tile passes, {} bit-reversal) | 2^{log} x {width} | {:.2} ms | {:.2} ms | **{:.1}x** | {:.1} GB/s | {:.0} % |",
            plan.passes().0,
            plan.passes().1,
            t_gpu * 1e3,
            t_cpu * 1e3,
            t_cpu / t_gpu,
            gbs(bytes, t_gpu),
            100.0 * bytes / t_gpu / copy
        );
    }

    let kernel = Poseidon2Kernel::new(gpu.clone());
    let n = 1usize << perms_log;
    let states: Vec<[BabyBear; 16]> =
        (0..n).map(|_| std::array::from_fn(|_| BabyBear::new(rng.random()))).collect();
    let device = kernel.upload(&states);
    kernel.permute_device(&device);
    gpu.wait()?;
    let t_gpu = time(reps, || {
        kernel.permute_device(&device);
        gpu.wait().expect("GPU wait");
    });
    let p = perm();
    let t_cpu = time(reps.min(3), || {
        let mut s = states.clone();
        permute_all(&p, &mut s);
        std::hint::black_box(s);
    });
    println!(
        "| Poseidon2 permutations | 2^{perms_log} states | {:.2} ms ({:.0} M/s) | {:.2} ms ({:.1} M/s) | **{:.1}x** | {:.1} GB/s | {:.0} % |",
        t_gpu * 1e3,
        n as f64 / t_gpu / 1e6,
        t_cpu * 1e3,
        n as f64 / t_cpu / 1e6,
        t_cpu / t_gpu,
        gbs((n * 64 * 2) as f64, t_gpu),
        100.0 * (n * 64 * 2) as f64 / t_gpu / copy
    );

    let gpu_mmcs = GpuMmcs::on(gpu.clone());
    let cpu_mmcs = GpuMmcs::new(None, 0);
    for &log in log_sizes {
        let values = random(width << log, &mut rng);
        let m = || RowMajorMatrix::new(values.clone(), width);
        let (root_gpu, _) = gpu_mmcs.commit(vec![m()]);
        let (root_cpu, _) = cpu_mmcs.commit(vec![m()]);
        anyhow::ensure!(root_gpu == root_cpu, "GPU and CPU Merkle roots differ at 2^{log} x {width}");
        let t_gpu = time(reps, || drop(gpu_mmcs.commit(vec![m()])));
        let t_cpu = time(reps.min(3), || drop(cpu_mmcs.commit(vec![m()])));
        let perms = (1usize << log) * width.div_ceil(8) + (1usize << log);
        println!(
            "| Merkle tree (leaves + nodes, with transfers) | 2^{log} x {width} | {:.2} ms ({:.0} M perm/s) | {:.2} ms | **{:.1}x** | | |",
            t_gpu * 1e3,
            perms as f64 / t_gpu / 1e6,
            t_cpu * 1e3,
            t_cpu / t_gpu
        );
    }

    for &log in log_sizes {
        commit_row(&gpu, log, width, reps, &mut rng);
    }

    if segment > 0 {
        let io: Vec<PermIo> = (0..segment)
            .map(|k| {
                let input = std::array::from_fn(|i| (k * 25 + i) as u64 * 0x9e37_79b9_7f4a_7c15);
                PermIo { input, output: keccak_f(&input) }
            })
            .collect();
        let gpu_config = stark_config_on(&gpu, Offload::DEFAULT);
        let cpu_config = stark_config();
        let mut proofs = (None, None);
        let t_gpu = time(1, || proofs.0 = Some(prove_perms_with(&io, &gpu_config).expect("GPU proof")));
        let t_cpu = time(1, || proofs.1 = Some(prove_perms_with(&io, &cpu_config).expect("CPU proof")));
        let same = proofs.0.map(|p| proofline_keccak::stark::encode_proof(&p))
            == proofs.1.map(|p| proofline_keccak::stark::encode_proof(&p));
        anyhow::ensure!(same, "the GPU proof differs from the CPU proof");
        println!(
            "| keccak segment, whole proof (byte-identical) | {segment} permutations | {:.2} s | {:.2} s | **{:.1}x** | | |",
            t_gpu,
            t_cpu,
            t_cpu / t_gpu
        );
    }
    Ok(())
}

/// One PCS commit (coset LDE x2, then the Merkle tree of the LDE) three ways: fused on the
/// device (`GpuFriPcs`), through Plonky3's stock seams with the GPU DFT and MMCS (the LDE
/// makes a round trip to the host between the two), and Plonky3 on the CPU.
fn commit_row(gpu: &std::sync::Arc<Gpu>, log: u32, width: usize, reps: usize, rng: &mut SmallRng) {
    use proofline_keccak::config::{Challenge, ChallengeMmcs, Challenger, Pcs};
    use proofline_shaders::GpuDft;

    let mmcs = GpuMmcs::on(gpu.clone());
    let cpu_mmcs = GpuMmcs::new(None, 0);
    let fri = |mmcs: &GpuMmcs| p3_fri::FriParameters::new_benchmark(ChallengeMmcs::new(mmcs.clone()));
    let fused = Pcs::new(GpuDft::on(gpu.clone()), mmcs.clone(), fri(&mmcs));
    let stock = p3_fri::TwoAdicFriPcs::new(GpuDft::on(gpu.clone()), mmcs.clone(), fri(&mmcs));
    let cpu = Pcs::new(GpuDft::cpu(), cpu_mmcs.clone(), fri(&cpu_mmcs));
    let domain = p3_commit::Pcs::<Challenge, Challenger>::natural_domain_for_degree(&fused, 1 << log);
    let values = random(width << log, rng);
    let m = || [(domain, RowMajorMatrix::new(values.clone(), width))];
    let fused_root = || p3_commit::Pcs::<Challenge, Challenger>::commit(&fused, m()).expect("commit").0;
    let stock_root = || p3_commit::Pcs::<Challenge, Challenger>::commit(&stock, m()).expect("commit").0;
    let cpu_root = || p3_commit::Pcs::<Challenge, Challenger>::commit(&cpu, m()).expect("commit").0;
    let root = fused_root();
    if root != stock_root() || root != cpu_root() {
        println!("| PCS commit | 2^{log} x {width} | **roots differ: a bug** | | | | |");
        return;
    }
    let t_fused = time(reps, || drop(fused_root()));
    let t_stock = time(reps, || drop(stock_root()));
    let t_cpu = time(reps.min(3), || drop(cpu_root()));
    println!(
        "| PCS commit, fused (LDE x2 + Merkle tree on the device) | 2^{log} x {width} | {:.2} ms | {:.2} ms | **{:.1}x** | | |",
        t_fused * 1e3,
        t_cpu * 1e3,
        t_cpu / t_fused
    );
    println!(
        "| PCS commit, stock seams (LDE to the host and back) | 2^{log} x {width} | {:.2} ms | {:.2} ms | **{:.1}x** | fused / stock: {:.2} | |",
        t_stock * 1e3,
        t_cpu * 1e3,
        t_cpu / t_stock,
        t_fused / t_stock
    );
}

fn permute_all(p: &proofline_keccak::config::Perm, states: &mut [[BabyBear; 16]]) {
    #[cfg(feature = "parallel")]
    {
        use p3_maybe_rayon::prelude::*;
        states.par_iter_mut().for_each(|s| p.permute_mut(s));
    }
    #[cfg(not(feature = "parallel"))]
    states.iter_mut().for_each(|s| p.permute_mut(s));
}
