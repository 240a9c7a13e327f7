// 32x32 -> 64-bit products with native 64-bit integers (SHADER_INT64 fast path).
fn mul_wide(a: u32, b: u32) -> vec2<u32> {
    let p = u64(a) * u64(b);
    return vec2<u32>(u32(p & 0xfffffffflu), u32(p >> 32u));
}

fn mul_hi(a: u32, b: u32) -> u32 {
    return u32((u64(a) * u64(b)) >> 32u);
}
