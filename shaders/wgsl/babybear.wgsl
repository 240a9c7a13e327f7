// BabyBear (p = 15 * 2^27 + 1) in Montgomery form with R = 2^32: the same u32 words
// Plonky3's `BabyBear` stores, so field slices cross to the GPU without conversion.
// Needs `mul_wide` / `mul_hi` from field_portable.wgsl or field_int64.wgsl.

const BB_P: u32 = 0x78000001u;
// p^-1 mod 2^32.
const BB_MU: u32 = 0x88000001u;

fn bb_add(a: u32, b: u32) -> u32 {
    let s = a + b;
    return select(s, s - BB_P, s >= BB_P);
}

fn bb_sub(a: u32, b: u32) -> u32 {
    return select(a - b, a + BB_P - b, a < b);
}

fn bb_neg(a: u32) -> u32 {
    return select(BB_P - a, 0u, a == 0u);
}

// Montgomery reduction of the 64-bit value (lo, hi) < p * 2^32: returns (lo + hi * 2^32) / 2^32 mod p.
fn bb_monty_reduce(x: vec2<u32>) -> u32 {
    let t = x.x * BB_MU;
    let u_hi = mul_hi(t, BB_P);
    // x - t * p is divisible by 2^32: the low words cancel, only the high words remain.
    return select(x.y - u_hi, x.y + BB_P - u_hi, x.y < u_hi);
}

fn bb_mul(a: u32, b: u32) -> u32 {
    return bb_monty_reduce(mul_wide(a, b));
}
