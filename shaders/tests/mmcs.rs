//! `GpuMmcs` commits, opens and multi-opens exactly as Plonky3's CPU `MerkleTreeMmcs`
//! (the prover's `ValMmcs`), and the CPU verifier accepts its openings. Fails (does not skip)
//! without an adapter.

mod common;

use std::sync::Arc;

use common::{assert_ran, matrix, seed};
use p3_baby_bear::BabyBear;
use p3_commit::{BatchOpeningRef, ExtensionMmcs, Mmcs};
use p3_field::BasedVectorSpace;
use p3_field::extension::BinomialExtensionField;
use p3_matrix::Matrix;
use p3_matrix::dense::RowMajorMatrix;
use proofline_shaders::{Gpu, GpuMmcs, Products};
use rand::{Rng, SeedableRng, rngs::StdRng};

/// Commit `shapes` (height, width) on the GPU and on the CPU and compare everything.
fn check(mmcs: &GpuMmcs, rng: &mut StdRng, seed: u64, shapes: &[(usize, usize)]) {
    let what = format!("seed {seed}, shapes {shapes:?}, cap height {}", mmcs.cpu().cap_height());
    let matrices: Vec<_> = shapes.iter().map(|&(h, w)| matrix(rng, h, w)).collect();
    let dims: Vec<_> = matrices.iter().map(|m| m.dimensions()).collect();
    let cpu = mmcs.cpu();
    let (cpu_root, cpu_data) = cpu.commit(matrices.clone());
    let (root, data) = mmcs.commit(matrices);
    assert!(data.on_gpu(), "{what}: committed on the CPU");
    assert_eq!(root, cpu_root, "{what}: commitment");
    assert_eq!(mmcs.get_matrix_heights(&data), cpu.get_matrix_heights(&cpu_data));

    let max_height = shapes.iter().map(|s| s.0).max().unwrap();
    let mut indices = vec![0, max_height - 1, max_height / 2];
    indices.extend((0..4).map(|_| rng.random_range(0..max_height)));
    for &index in &indices {
        let (values, proof) = mmcs.open_batch(index, &data).unpack();
        let (cpu_values, cpu_proof) = cpu.open_batch(index, &cpu_data).unpack();
        assert_eq!(values, cpu_values, "{what}: opened rows at {index}");
        assert_eq!(proof, cpu_proof, "{what}: proof at {index}");
        cpu.verify_batch(&root, &dims, index, BatchOpeningRef::new(&values, &proof))
            .unwrap_or_else(|e| panic!("{what}: CPU verifier rejects the GPU opening at {index}: {e:?}"));
        mmcs.verify_batch(&root, &dims, index, BatchOpeningRef::new(&values, &proof)).unwrap();
    }

    let (values, proof) = mmcs.open_multi_batch(&indices, &data);
    let (cpu_values, cpu_proof) = cpu.open_multi_batch(&indices, &cpu_data);
    assert_eq!(values, cpu_values, "{what}: multi-opened rows");
    assert_eq!(proof.sibling_hashes, cpu_proof.sibling_hashes, "{what}: multi-proof");
    cpu.verify_multi_batch(&root, &dims, &indices, &values, &proof)
        .unwrap_or_else(|e| panic!("{what}: CPU verifier rejects the GPU multi-opening: {e:?}"));
}

const SHAPES: &[&[(usize, usize)]] = &[
    // One matrix, widths around the sponge rate.
    &[(1 << 12, 1)],
    &[(1 << 12, 40)],
    &[(64, 7)],
    &[(4, 8)],
    &[(2, 9)],
    &[(1, 16)],
    &[(1, 1)],
    // Several of the same height: rows are concatenated before hashing.
    &[(256, 7), (256, 9), (256, 1)],
    &[(2, 8), (2, 8)],
    // Different heights: shorter matrices injected higher up, in any commit order.
    &[(1 << 12, 8), (1 << 10, 16), (4, 7), (1, 9)],
    &[(2, 40), (1 << 12, 1), (64, 9), (64, 1), (1, 7), (2, 16)],
    &[(4, 9), (2, 1), (1, 8)],
    // Heights that are not powers of two (the ceil(max / 2^k) ladder).
    &[(1000, 9), (500, 7), (125, 16), (63, 1), (1, 40)],
    &[(7, 8), (4, 1), (2, 16), (1, 9)],
    &[(3, 1)],
];

fn all_shapes(products: Products) {
    let seed = seed();
    let mut rng = StdRng::seed_from_u64(seed);
    let gpu = Arc::new(Gpu::with_products(products).expect("a Vulkan adapter (lavapipe in CI)"));
    let mmcs = GpuMmcs::on(gpu.clone());
    for shapes in SHAPES {
        check(&mmcs, &mut rng, seed, shapes);
    }
    let capped = GpuMmcs::new(Some(gpu.clone()), 2).with_threshold(0);
    for shapes in [&SHAPES[1], &SHAPES[9], &SHAPES[12], &SHAPES[5]] {
        check(&capped, &mut rng, seed, shapes);
    }
    let ran = assert_ran(&gpu, &format!("{products:?}, seed {seed}"));
    assert!(ran.poseidon2 > 0 && ran.merkle > 0 && ran.skipped == 0, "{ran}");
}

#[test]
fn int64_commitments_match_cpu() {
    all_shapes(Products::Int64);
}

#[test]
fn portable_commitments_match_cpu() {
    all_shapes(Products::Portable);
}

#[test]
fn small_matrices_and_no_gpu_fall_back_to_cpu() {
    let mut rng = StdRng::seed_from_u64(seed());
    let gpu = Arc::new(Gpu::with_products(Products::Int64).expect("a Vulkan adapter (lavapipe in CI)"));
    for mmcs in [GpuMmcs::new(None, 0), GpuMmcs::new(Some(gpu.clone()), 0).with_threshold(1 << 20)] {
        let m = matrix(&mut rng, 64, 8);
        let (root, data) = mmcs.commit(vec![m.clone()]);
        assert!(!data.on_gpu());
        assert_eq!(root, mmcs.cpu().commit(vec![m]).0);
        let (values, proof) = mmcs.open_batch(3, &data).unpack();
        mmcs.verify_batch(&root, &[data_dims(&mmcs, &data)], 3, BatchOpeningRef::new(&values, &proof))
            .unwrap();
    }
    let kept = gpu.counters();
    assert!(kept.launches() == 0 && kept.fallbacks == 0 && kept.skipped == 1, "{kept}");
}

fn data_dims(
    mmcs: &GpuMmcs,
    data: &<GpuMmcs as Mmcs<BabyBear>>::ProverData<RowMajorMatrix<BabyBear>>,
) -> p3_matrix::Dimensions {
    mmcs.get_matrices(data)[0].dimensions()
}

#[test]
fn extension_mmcs_over_gpu_matches_cpu() {
    type Challenge = BinomialExtensionField<BabyBear, 4>;
    let mut rng = StdRng::seed_from_u64(seed());
    let gpu = Arc::new(Gpu::with_products(Products::Int64).expect("a Vulkan adapter (lavapipe in CI)"));
    let mmcs = GpuMmcs::on(gpu.clone());
    let gpu_ext = ExtensionMmcs::<BabyBear, Challenge, _>::new(mmcs.clone());
    let cpu_ext = ExtensionMmcs::<BabyBear, Challenge, _>::new(mmcs.cpu().clone());
    let values: Vec<Challenge> = (0..512 * 3)
        .map(|_| Challenge::from_basis_coefficients_fn(|_| BabyBear::new(rng.random_range(0..0x7800_0001))))
        .collect();
    let m = RowMajorMatrix::new(values, 3);
    let (root, data) = gpu_ext.commit(vec![m.clone()]);
    let (cpu_root, cpu_data) = cpu_ext.commit(vec![m]);
    assert_eq!(root, cpu_root);
    let (values, proof) = gpu_ext.open_batch(77, &data).unpack();
    assert_eq!((values.clone(), proof.clone()), cpu_ext.open_batch(77, &cpu_data).unpack());
    let dims = [p3_matrix::Dimensions { width: 3, height: 512 }];
    cpu_ext.verify_batch(&root, &dims, 77, BatchOpeningRef::new(&values, &proof)).unwrap();
    assert_ran(&gpu, "extension MMCS");
}

/// The whole FRI PCS with `GpuMmcs` in both MMCS slots: same commitments as with the CPU
/// MMCS, and the serialized proof deserializes as the CPU configuration's proof and verifies.
#[test]
fn fri_pcs_with_gpu_mmcs_verifies_on_cpu() {
    use p3_challenger::{CanObserve, DuplexChallenger, FieldChallenger};
    use p3_commit::Pcs;
    use p3_dft::Radix2DitParallel;
    use p3_fri::{FriParameters, TwoAdicFriPcs};
    use proofline_shaders::CpuMmcs;

    type Val = BabyBear;
    type Challenge = BinomialExtensionField<Val, 4>;
    type Perm = p3_baby_bear::Poseidon2BabyBear<16>;
    type Challenger = DuplexChallenger<Val, Perm, 16, 8>;
    type GpuPcs = TwoAdicFriPcs<Val, Radix2DitParallel<Val>, GpuMmcs, ExtensionMmcs<Val, Challenge, GpuMmcs>>;
    type CpuPcs = TwoAdicFriPcs<Val, Radix2DitParallel<Val>, CpuMmcs, ExtensionMmcs<Val, Challenge, CpuMmcs>>;

    let seed = seed();
    let mut rng = StdRng::seed_from_u64(seed);
    let gpu = Arc::new(Gpu::with_products(Products::Int64).expect("a Vulkan adapter (lavapipe in CI)"));
    let mmcs = GpuMmcs::on(gpu.clone());
    let gpu_pcs = GpuPcs::new(
        Radix2DitParallel::default(),
        mmcs.clone(),
        FriParameters::new_testing(ExtensionMmcs::new(mmcs.clone()), 0),
    );
    let cpu_pcs = CpuPcs::new(
        Radix2DitParallel::default(),
        mmcs.cpu().clone(),
        FriParameters::new_testing(ExtensionMmcs::new(mmcs.cpu().clone()), 0),
    );
    let challenger = Challenger::new(p3_baby_bear::default_babybear_poseidon2_16());

    let polys: Vec<_> = [(6, 5), (6, 9), (4, 3)]
        .iter()
        .map(|&(log_n, width)| {
            let domain =
                <GpuPcs as Pcs<Challenge, Challenger>>::natural_domain_for_degree(&gpu_pcs, 1 << log_n);
            (domain, matrix(&mut rng, 1 << log_n, width))
        })
        .collect();
    let (commit, data) = <GpuPcs as Pcs<Challenge, Challenger>>::commit(&gpu_pcs, polys.clone()).unwrap();
    let (cpu_commit, _) = <CpuPcs as Pcs<Challenge, Challenger>>::commit(&cpu_pcs, polys.clone()).unwrap();
    assert_eq!(commit, cpu_commit, "seed {seed}: PCS commitment");

    let mut p_challenger = challenger.clone();
    p_challenger.observe(commit.clone());
    let zeta: Challenge = p_challenger.sample_algebra_element();
    let points = vec![vec![zeta]; polys.len()];
    let (openings, proof) = gpu_pcs.open(vec![(&data, points).into()], &mut p_challenger).unwrap();

    let bytes = postcard::to_allocvec(&proof).unwrap();
    let cpu_proof: <CpuPcs as Pcs<Challenge, Challenger>>::Proof = postcard::from_bytes(&bytes).unwrap();
    let mut v_challenger = challenger;
    v_challenger.observe(commit.clone());
    assert_eq!(v_challenger.sample_algebra_element::<Challenge>(), zeta);
    let claims = polys
        .iter()
        .zip(&openings[0])
        .map(|((domain, _), values)| (*domain, vec![(zeta, values[0].clone())]))
        .collect();
    cpu_pcs
        .verify(vec![(commit, claims).into()], &cpu_proof, &mut v_challenger)
        .unwrap_or_else(|e| panic!("seed {seed}: CPU PCS rejects the GPU proof: {e:?}"));
    assert_ran(&gpu, &format!("FRI PCS, seed {seed}"));
}
