//! `GpuFriPcs` (LDE and Merkle tree fused on the device) commits exactly as Plonky3's
//! CPU `TwoAdicFriPcs`: the same commitment, the same committed LDE, and an opening proof
//! the CPU PCS verifies. Fails (does not skip) without an adapter.

mod common;

use std::sync::Arc;

use common::{assert_ran, matrix, seed};
use p3_baby_bear::BabyBear;
use p3_challenger::{CanObserve, DuplexChallenger, FieldChallenger};
use p3_commit::{ExtensionMmcs, Mmcs, Pcs, PolynomialSpace};
use p3_dft::Radix2DitParallel;
use p3_field::PrimeCharacteristicRing;
use p3_field::extension::BinomialExtensionField;
use p3_fri::{FriParameters, TwoAdicFriPcs};
use proofline_shaders::{CpuMmcs, Gpu, GpuDft, GpuFriPcs, GpuMerkleData, GpuMmcs, Products};
use rand::{SeedableRng, rngs::StdRng};

type Val = BabyBear;
type Challenge = BinomialExtensionField<Val, 4>;
type Challenger = DuplexChallenger<Val, p3_baby_bear::Poseidon2BabyBear<16>, 16, 8>;
type FusedPcs = GpuFriPcs<ExtensionMmcs<Val, Challenge, GpuMmcs>>;
type CpuPcs = TwoAdicFriPcs<Val, Radix2DitParallel<Val>, CpuMmcs, ExtensionMmcs<Val, Challenge, CpuMmcs>>;

/// The fused PCS on a fresh device, the CPU PCS, and the device.
fn pcs_pair(products: Products, log_blowup: usize) -> (FusedPcs, CpuPcs, Arc<Gpu>) {
    let gpu = Arc::new(Gpu::with_products(products).expect("a Vulkan adapter (lavapipe in CI)"));
    let mmcs = GpuMmcs::on(gpu.clone());
    let fri = |m| FriParameters { log_blowup, ..FriParameters::new_testing(m, 0) };
    let fused = FusedPcs::new(GpuDft::on(gpu.clone()), mmcs.clone(), fri(ExtensionMmcs::new(mmcs.clone())));
    let cpu = CpuPcs::new(
        Radix2DitParallel::default(),
        mmcs.cpu().clone(),
        FriParameters { log_blowup, ..FriParameters::new_testing(ExtensionMmcs::new(mmcs.cpu().clone()), 0) },
    );
    (fused, cpu, gpu)
}

/// One matrix per commit (the fused path), on the natural domain and on a shifted coset,
/// the smallest sizes included; then an opening the CPU PCS verifies.
fn check(products: Products, log_blowup: usize) {
    let seed = seed();
    let mut rng = StdRng::seed_from_u64(seed);
    let (fused, cpu, gpu) = pcs_pair(products, log_blowup);
    let challenger = Challenger::new(p3_baby_bear::default_babybear_poseidon2_16());
    for (log_n, width, shifted) in
        [(0, 1, false), (1, 3, false), (5, 17, true), (9, 8, false), (11, 40, true)]
    {
        let what = format!(
            "{products:?}, blowup 2^{log_blowup}, 2^{log_n} x {width}, shifted {shifted}, seed {seed}"
        );
        let natural = <FusedPcs as Pcs<Challenge, Challenger>>::natural_domain_for_degree(&fused, 1 << log_n);
        // A coset g H of the same size, as the quotient chunks use.
        let domain = if shifted { natural.create_disjoint_domain(1 << log_n) } else { natural };
        let evals = matrix(&mut rng, 1 << log_n, width);
        let (commit, data) =
            <FusedPcs as Pcs<Challenge, Challenger>>::commit(&fused, [(domain, evals.clone())]).unwrap();
        let (cpu_commit, cpu_data) =
            <CpuPcs as Pcs<Challenge, Challenger>>::commit(&cpu, [(domain, evals.clone())]).unwrap();
        assert!(data.on_gpu(), "the commit ran on the device: {what}");
        assert_eq!(commit, cpu_commit, "commitment: {what}");
        let GpuMerkleData::Gpu { leaves, .. } = &data else { unreachable!() };
        let lde = &leaves[0];
        assert!(lde == GpuMmcs::new(None, 0).cpu().get_matrices(&cpu_data)[0], "committed LDE: {what}");
        assert!(lde.values.iter().any(|&v| v != BabyBear::ZERO), "a real LDE: {what}");

        let mut p_challenger = challenger.clone();
        p_challenger.observe(commit.clone());
        let zeta: Challenge = p_challenger.sample_algebra_element();
        let (openings, proof) =
            fused.open(vec![(&data, vec![vec![zeta]]).into()], &mut p_challenger).unwrap();
        let mut v_challenger = challenger.clone();
        v_challenger.observe(commit.clone());
        assert_eq!(v_challenger.sample_algebra_element::<Challenge>(), zeta);
        let claims = vec![(domain, vec![(zeta, openings[0][0][0].clone())])];
        // The proof on the wire, read back as the CPU configuration's proof.
        let bytes = postcard::to_allocvec(&proof).unwrap();
        let proof: <CpuPcs as Pcs<Challenge, Challenger>>::Proof = postcard::from_bytes(&bytes).unwrap();
        cpu.verify(vec![(commit, claims).into()], &proof, &mut v_challenger)
            .unwrap_or_else(|e| panic!("CPU PCS rejects the fused commit's opening: {e:?}: {what}"));
    }
    let ran = assert_ran(&gpu, &format!("{products:?}, blowup 2^{log_blowup}, seed {seed}"));
    assert!(ran.ntt > 0 && ran.poseidon2 > 0 && ran.merkle > 0, "{ran}");
}

#[test]
fn portable_fused_commits_match_plonky3() {
    check(Products::Portable, 1);
}

#[test]
fn int64_fused_commits_match_plonky3() {
    check(Products::Int64, 1);
    check(Products::Int64, 3);
}

/// Several matrices in one commit take Plonky3's own path, with the same result.
#[test]
fn multi_matrix_commits_take_the_stock_path() {
    let seed = seed();
    let mut rng = StdRng::seed_from_u64(seed);
    let (fused, cpu, gpu) = pcs_pair(Products::Int64, 1);
    let polys: Vec<_> = [(6, 5), (4, 3)]
        .iter()
        .map(|&(log_n, width)| {
            let d = <FusedPcs as Pcs<Challenge, Challenger>>::natural_domain_for_degree(&fused, 1 << log_n);
            (d, matrix(&mut rng, 1 << log_n, width))
        })
        .collect();
    let (commit, _) = <FusedPcs as Pcs<Challenge, Challenger>>::commit(&fused, polys.clone()).unwrap();
    let (cpu_commit, _) = <CpuPcs as Pcs<Challenge, Challenger>>::commit(&cpu, polys).unwrap();
    assert_eq!(commit, cpu_commit, "seed {seed}");
    let ran = assert_ran(&gpu, &format!("seed {seed}"));
    assert!(ran.ntt > 0 && ran.merkle > 0, "the stock path still runs the seams on the device: {ran}");
}
