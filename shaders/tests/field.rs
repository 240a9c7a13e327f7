//! BabyBear arithmetic on the device equals Plonky3's, for both product variants.

mod common;

use common::{assert_ran, random, seed};
use p3_baby_bear::BabyBear;
use p3_field::PrimeCharacteristicRing;
use proofline_shaders::{Gpu, Products, mul_add_sub};
use rand::{SeedableRng, rngs::StdRng};

fn check(products: Products) {
    let gpu = Gpu::with_products(products).expect("a Vulkan adapter (lavapipe in CI)");
    // Fresh inputs every run; the seed is in every failure message.
    let seed = seed();
    let mut rng = StdRng::seed_from_u64(seed);
    // Edge values first: 0, 1, p - 1 and their products hit every carry.
    let edges = [BabyBear::ZERO, BabyBear::ONE, BabyBear::NEG_ONE, BabyBear::TWO, -BabyBear::TWO];
    let mut a: Vec<BabyBear> = edges.iter().flat_map(|&x| edges.map(|_| x)).collect();
    let mut b: Vec<BabyBear> = edges.iter().flat_map(|_| edges).collect();
    a.extend(random(&mut rng, 70_000));
    b.extend(random(&mut rng, 70_000));
    let [mul, add, sub] = mul_add_sub(&gpu, &a, &b).unwrap();
    assert_eq!(assert_ran(&gpu, &format!("{products:?}")).field, 1);
    for i in 0..a.len() {
        assert_eq!(mul[i], a[i] * b[i], "{products:?}, seed {seed}: {} * {}", a[i], b[i]);
        assert_eq!(add[i], a[i] + b[i], "{products:?}, seed {seed}: {} + {}", a[i], b[i]);
        assert_eq!(sub[i], a[i] - b[i], "{products:?}, seed {seed}: {} - {}", a[i], b[i]);
    }
}

#[test]
fn portable_products_match_plonky3() {
    check(Products::Portable);
}

#[test]
fn int64_products_match_plonky3() {
    // lavapipe and NVIDIA's driver both offer SHADER_INT64.
    check(Products::Int64);
}
