//! The device DFT, inverse DFT and coset LDE equal Plonky3's `Radix2DitParallel` bit for
//! bit, through the raw kernels and through the `TwoAdicSubgroupDft` seam, for both
//! product variants. Inputs are fresh every run; the seed is in every failure message
//! (set `SHADERS_TEST_SEED` to replay one).

mod common;

use std::sync::Arc;
use std::time::Instant;

use common::{assert_ran, random, seed};
use p3_baby_bear::BabyBear;
use p3_dft::{Radix2DitParallel, TwoAdicSubgroupDft};
use p3_matrix::Matrix;
use p3_matrix::bitrev::BitReversibleMatrix;
use p3_matrix::dense::RowMajorMatrix;
use proofline_shaders::{Gpu, GpuDft, GpuError, Ntt, NttPlan, Products, Transform};
use rand::{Rng, SeedableRng, rngs::StdRng};

fn random_shift(rng: &mut StdRng) -> BabyBear {
    BabyBear::new(rng.random_range(1..0x7800_0001))
}

/// Fails (never skips) without an adapter.
fn ntt(products: Products) -> Ntt {
    Ntt::new(Arc::new(Gpu::with_products(products).expect("a Vulkan adapter (lavapipe in CI)")))
}

/// (log2 rows, width) pairs: the smallest sizes, odd widths, and one large matrix.
const SHAPES: &[(u32, usize)] = &[
    (0, 1),
    (0, 3),
    (1, 1),
    (1, 17),
    (2, 1),
    (2, 8),
    (3, 3),
    (5, 64),
    (7, 17),
    (10, 1),
    (11, 3),
    (12, 8),
    (13, 17),
    (9, 64),
    (16, 8),
];

fn check_kernels(products: Products, tile_words: Option<u32>) {
    let ntt = match tile_words {
        None => ntt(products),
        Some(words) => Ntt::with_tile_words(ntt(products).gpu().clone(), words),
    };
    let cpu = Radix2DitParallel::<BabyBear>::default();
    let seed = seed();
    let mut rng = StdRng::seed_from_u64(seed);
    for &(log_rows, width) in SHAPES {
        let start = Instant::now();
        let rows = 1usize << log_rows;
        let mat = RowMajorMatrix::new(random(&mut rng, rows * width), width);
        // Tiny tiles waste most of a workgroup: keep them to small shapes.
        if tile_words.is_some_and(|words| log_rows > words.ilog2() + 5) {
            continue;
        }
        let what = format!("{products:?}, tiles {tile_words:?}, 2^{log_rows} x {width}, seed {seed}");

        let want = cpu.dft_batch(mat.clone()).bit_reverse_rows().to_row_major_matrix().values;
        assert!(ntt.dft_batch(&mat.values, width).unwrap() == want, "DFT differs: {what}");

        let want = cpu.idft_batch(mat.clone()).values;
        assert!(ntt.idft_batch(&mat.values, width).unwrap() == want, "inverse DFT differs: {what}");

        for added_bits in [0, 1, 3] {
            if log_rows + added_bits > 17 {
                continue;
            }
            let shift = random_shift(&mut rng);
            let want = cpu
                .coset_lde_batch(mat.clone(), added_bits as usize, shift)
                .bit_reverse_rows()
                .to_row_major_matrix();
            let got = ntt.coset_lde_batch(&mat.values, width, added_bits as usize, shift).unwrap();
            assert!(got == want.values, "coset LDE +{added_bits} bits, shift {shift} differs: {what}");
        }
        eprintln!("{what}: all transforms in {:?} (lavapipe: correctness only)", start.elapsed());
    }
    assert_ran(ntt.gpu(), &format!("{products:?}, tiles {tile_words:?}, seed {seed}"));
}

#[test]
fn portable_kernels_match_plonky3() {
    check_kernels(Products::Portable, None);
}

/// Tiny tiles: one or two stages a pass, many strided passes.
#[test]
fn small_tiles_match_plonky3() {
    check_kernels(Products::Portable, Some(64));
    check_kernels(Products::Int64, Some(8));
}

#[test]
fn int64_kernels_match_plonky3() {
    check_kernels(Products::Int64, None);
}

/// The seam returns what `Radix2DitParallel` returns, as the same bit-reversed view.
fn check_seam(products: Products) {
    let gpu = Arc::new(Gpu::with_products(products).expect("a Vulkan adapter (lavapipe in CI)"));
    let dft = GpuDft::on(gpu.clone());
    let cpu = Radix2DitParallel::<BabyBear>::default();
    let seed = seed();
    let mut rng = StdRng::seed_from_u64(seed);
    for (log_rows, width) in [(0, 2), (2, 3), (8, 17), (14, 8)] {
        let what = format!("{products:?}, 2^{log_rows} x {width}, seed {seed}");
        let mat = RowMajorMatrix::new(random(&mut rng, width << log_rows), width);
        let shift = random_shift(&mut rng);
        // Exactly what TwoAdicFriPcs::commit does with the result.
        let got = dft.coset_lde_batch(mat.clone(), 1, shift);
        let want = cpu.coset_lde_batch(mat.clone(), 1, shift);
        assert_eq!(got.height(), want.height(), "{what}");
        for r in [0, got.height() / 3, got.height() - 1] {
            assert!(
                got.row_slice(r).unwrap()[..] == want.row_slice(r).unwrap()[..],
                "natural row {r}: {what}"
            );
        }
        assert!(
            got.bit_reverse_rows().to_row_major_matrix() == want.bit_reverse_rows().to_row_major_matrix(),
            "bit-reversed rows: {what}"
        );
        assert!(
            dft.dft_batch(mat.clone()).to_row_major_matrix()
                == cpu.dft_batch(mat.clone()).to_row_major_matrix()
        );
        assert!(dft.idft_batch(mat.clone()) == cpu.idft_batch(mat.clone()), "inverse DFT: {what}");
        // Provided methods built on the overridden ones.
        assert!(
            dft.lde_batch(mat.clone(), 2).to_row_major_matrix()
                == cpu.lde_batch(mat.clone(), 2).to_row_major_matrix()
        );
        assert!(dft.coset_idft_batch(mat.clone(), shift) == cpu.coset_idft_batch(mat, shift), "{what}");
    }
    let ran = assert_ran(&gpu, &format!("{products:?}, seed {seed}"));
    assert!(ran.ntt > 0 && ran.skipped == 0, "threshold 0: every matrix on the device: {ran}");
}

#[test]
fn portable_seam_matches_plonky3() {
    check_seam(Products::Portable);
}

#[test]
fn int64_seam_matches_plonky3() {
    check_seam(Products::Int64);
}

#[test]
fn a_plan_reruns_and_oversized_inputs_are_refused() {
    let ntt = ntt(Products::Portable);
    let seed = seed();
    let mut rng = StdRng::seed_from_u64(seed);
    let (log_rows, width) = (6, 5);
    let values = random(&mut rng, width << log_rows);
    let shift = random_shift(&mut rng);
    let plan = NttPlan::new(&ntt, Transform::CosetLde { added_bits: 2, shift }, log_rows, width).unwrap();
    let want = Radix2DitParallel::default()
        .coset_lde_batch(RowMajorMatrix::new(values.clone(), width), 2, shift)
        .bit_reverse_rows()
        .to_row_major_matrix()
        .values;
    for _ in 0..2 {
        plan.load(&values);
        plan.run();
        plan.run(); // timing reruns leave the shape intact; reload for the result
        plan.load(&values);
        plan.run();
        assert!(plan.read().unwrap() == want, "plan rerun, seed {seed}");
    }
    assert_eq!(plan.output_len(), width << (log_rows + 2));
    // The LDE's bit reversal and zero padding live in its first forward pass's loads.
    assert_eq!(plan.passes(), (2, 0), "one tile pass per direction at this size, no bit-reversal pass");
    assert_eq!(NttPlan::new(&ntt, Transform::Idft, log_rows, width).unwrap().passes(), (1, 1));
    assert_eq!(NttPlan::new(&ntt, Transform::Dft, log_rows, width).unwrap().passes(), (1, 0));
    // Past BabyBear's two-adicity, and past any device's buffers.
    assert!(matches!(NttPlan::new(&ntt, Transform::Dft, 28, 1), Err(GpuError::TooLarge(_))));
    assert!(matches!(NttPlan::new(&ntt, Transform::Dft, 27, 1 << 12), Err(GpuError::TooLarge(_))));
    assert!(matches!(ntt.coset_lde_batch(&values, width, 30, shift), Err(GpuError::TooLarge(_))));
    // Below the threshold the seam stays on the CPU, with the same result.
    let seam = GpuDft::on(ntt.gpu().clone()).with_min_log_rows(10);
    let mat = RowMajorMatrix::new(values, width);
    let before = ntt.gpu().counters();
    let got = seam.coset_lde_batch(mat.clone(), 1, shift).to_row_major_matrix();
    assert!(got == Radix2DitParallel::default().coset_lde_batch(mat, 1, shift).to_row_major_matrix());
    let kept = ntt.gpu().counters().since(&before);
    assert!(kept.launches() == 0 && kept.skipped == 1, "counted as skipped: {kept}");
    assert_ran(ntt.gpu(), &format!("plan reruns, seed {seed}"));
}

/// Sizes where the dispatch grid goes 2-D (over 65535 workgroups) and an LDE reaching
/// 2^24 rows, both product variants sharing one input.
#[test]
fn large_transforms_match_plonky3() {
    let seed = seed();
    let mut rng = StdRng::seed_from_u64(seed);
    let cpu = Radix2DitParallel::<BabyBear>::default();
    let wide = RowMajorMatrix::new(random(&mut rng, 128 << 17), 128);
    let tall = RowMajorMatrix::new(random(&mut rng, 1 << 23), 1);
    let shift = random_shift(&mut rng);
    let want_wide = cpu.idft_batch(wide.clone()).values;
    let want_tall =
        cpu.coset_lde_batch(tall.clone(), 1, shift).bit_reverse_rows().to_row_major_matrix().values;
    for products in [Products::Portable, Products::Int64] {
        let ntt = ntt(products);
        let start = Instant::now();
        let got = ntt.idft_batch(&wide.values, 128).unwrap();
        assert!(got == want_wide, "{products:?}: inverse DFT 2^17 x 128, seed {seed}");
        let got = ntt.coset_lde_batch(&tall.values, 1, 1, shift).unwrap();
        assert!(got == want_tall, "{products:?}: coset LDE 2^23 -> 2^24, seed {seed}");
        eprintln!("{products:?}: large transforms in {:?} (lavapipe: correctness only)", start.elapsed());
        assert_ran(ntt.gpu(), &format!("{products:?}, seed {seed}"));
    }
}
