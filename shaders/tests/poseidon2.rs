//! Poseidon2 on the device equals Plonky3's `default_babybear_poseidon2_16()`: the
//! permutation, the padding-free sponge and the truncated-permutation compression, on fresh
//! random inputs, for both product variants. Fails (does not skip) without an adapter.

mod common;

use std::sync::Arc;

use common::{assert_ran, random, seed};
use p3_baby_bear::{BabyBear, default_babybear_poseidon2_16};
use p3_field::PrimeCharacteristicRing;
use p3_symmetric::Permutation;
use p3_symmetric::{CryptographicHasher, PaddingFreeSponge, PseudoCompressionFunction, TruncatedPermutation};
use proofline_shaders::{Gpu, Poseidon2Kernel, Products};
use rand::{SeedableRng, rngs::StdRng};

type Perm = p3_baby_bear::Poseidon2BabyBear<16>;

fn kernel(products: Products) -> Poseidon2Kernel {
    let gpu = Gpu::with_products(products).expect("a Vulkan adapter (lavapipe in CI)");
    Poseidon2Kernel::new(Arc::new(gpu))
}

fn permutation(products: Products) {
    let seed = seed();
    let mut rng = StdRng::seed_from_u64(seed);
    let kernel = kernel(products);
    let perm: Perm = default_babybear_poseidon2_16();
    let edges = [BabyBear::ZERO, BabyBear::ONE, BabyBear::NEG_ONE];
    let mut states: Vec<[BabyBear; 16]> = edges.iter().map(|&x| [x; 16]).collect();
    let values = random(&mut rng, 16 * 3000);
    states.extend(values.chunks_exact(16).map(|c| <[BabyBear; 16]>::try_from(c).unwrap()));
    let gpu = kernel.permute(&states).unwrap();
    assert_eq!(assert_ran(kernel.gpu(), &format!("{products:?}, seed {seed}")).poseidon2, 1);
    for (i, (state, out)) in states.iter().zip(&gpu).enumerate() {
        assert_eq!(*out, perm.permute(*state), "{products:?}, seed {seed}: permutation of state {i}");
    }
}

fn sponge(products: Products) {
    let seed = seed();
    let mut rng = StdRng::seed_from_u64(seed);
    let kernel = kernel(products);
    let hash = PaddingFreeSponge::<Perm, 16, 8, 8>::new(default_babybear_poseidon2_16());
    // Widths around the rate: empty blocks, partial blocks, several blocks.
    for width in [1, 7, 8, 9, 15, 16, 17, 40, 100] {
        let rows = 97;
        let values = random(&mut rng, rows * width);
        let gpu = kernel.hash_rows(&values, width).unwrap();
        assert_eq!(gpu.len(), rows);
        for (r, digest) in gpu.iter().enumerate() {
            let row = &values[r * width..(r + 1) * width];
            assert_eq!(
                *digest,
                hash.hash_slice(row),
                "{products:?}, seed {seed}: sponge of row {r}, width {width}"
            );
        }
    }
    assert_eq!(assert_ran(kernel.gpu(), &format!("{products:?}, seed {seed}")).poseidon2, 9, "one per width");
}

fn compression(products: Products) {
    let seed = seed();
    let mut rng = StdRng::seed_from_u64(seed);
    let kernel = kernel(products);
    let compress = TruncatedPermutation::<Perm, 2, 8, 16>::new(default_babybear_poseidon2_16());
    let values = random(&mut rng, 16 * 1000);
    let pairs: Vec<[[BabyBear; 8]; 2]> =
        values.chunks_exact(16).map(|c| [c[..8].try_into().unwrap(), c[8..].try_into().unwrap()]).collect();
    let gpu = kernel.compress(&pairs).unwrap();
    assert_eq!(assert_ran(kernel.gpu(), &format!("{products:?}, seed {seed}")).merkle, 1);
    for (i, (pair, digest)) in pairs.iter().zip(&gpu).enumerate() {
        assert_eq!(*digest, compress.compress(*pair), "{products:?}, seed {seed}: compression {i}");
    }
}

#[test]
fn portable_permutation_matches_plonky3() {
    permutation(Products::Portable);
}

#[test]
fn int64_permutation_matches_plonky3() {
    permutation(Products::Int64);
}

#[test]
fn portable_sponge_matches_plonky3() {
    sponge(Products::Portable);
}

#[test]
fn int64_sponge_matches_plonky3() {
    sponge(Products::Int64);
}

#[test]
fn portable_compression_matches_plonky3() {
    compression(Products::Portable);
}

#[test]
fn int64_compression_matches_plonky3() {
    compression(Products::Int64);
}

#[test]
fn permute_device_keeps_data_on_device() {
    let kernel = kernel(Products::Int64);
    let perm: Perm = default_babybear_poseidon2_16();
    let states: Vec<[BabyBear; 16]> =
        (0..257u32).map(|i| std::array::from_fn(|j| BabyBear::new(i * 16 + j as u32))).collect();
    let device = kernel.upload(&states);
    kernel.permute_device(&device);
    kernel.permute_device(&device);
    kernel.gpu().wait().unwrap();
    let twice = kernel.download(&device).unwrap();
    assert_eq!(assert_ran(kernel.gpu(), "permute_device").poseidon2, 2);
    for (state, out) in states.iter().zip(&twice) {
        assert_eq!(*out, perm.permute(perm.permute(*state)));
    }
}
