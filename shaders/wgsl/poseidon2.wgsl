// Poseidon2 over BabyBear, width 16, bit-identical to Plonky3's
// `default_babybear_poseidon2_16()`. Needs babybear.wgsl (bb_add, bb_sub, bb_mul).
//
// The permutation, as Plonky3 runs it:
//   1. the external linear layer once (M_4 on each 4-block, then the outer circulant),
//   2. 4 external rounds: add 16 round constants, S-box x^7 on every word, external layer,
//   3. 13 internal rounds: add 1 round constant to s[0], S-box on s[0] only, then
//      s <- (J + Diag(V)) s, i.e. s[i] <- V[i] * s[i] + sum(s),
//   4. 4 external rounds with the terminal constants.
//
// Every constant (round constants and the internal diagonal V) is read from binding 0,
// uploaded by poseidon2.rs from p3-baby-bear's public tables, in Montgomery form:
//   [0, 64)    initial external round constants, 4 rounds x 16
//   [64, 128)  terminal external round constants, 4 rounds x 16
//   [128, 141) internal round constants, 13 rounds
//   [141, 157) internal diagonal V (V[0] = -2 is applied as sum - 2 s[0])

const P2_WIDTH: u32 = 16u;
const P2_HALF_FULL_ROUNDS: u32 = 4u;
const P2_PARTIAL_ROUNDS: u32 = 13u;
const P2_EXT_INITIAL: u32 = 0u;
const P2_EXT_TERMINAL: u32 = 64u;
const P2_INTERNAL: u32 = 128u;
const P2_DIAG: u32 = 141u;

@group(0) @binding(0) var<storage, read> p2_constants: array<u32>;

// x^7 (BabyBear's S-box degree): four Montgomery products.
fn p2_sbox(x: u32) -> u32 {
    let x2 = bb_mul(x, x);
    let x3 = bb_mul(x2, x);
    let x4 = bb_mul(x2, x2);
    return bb_mul(x3, x4);
}

// Plonky3's `MDSMat4`: the 4x4 matrix
//   [2 3 1 1]
//   [1 2 3 1]
//   [1 1 2 3]
//   [3 1 1 2]
// applied to s[o .. o + 4].
fn p2_mat4(s: ptr<function, array<u32, 16>>, o: u32) {
    let x0 = (*s)[o];
    let x1 = (*s)[o + 1u];
    let x2 = (*s)[o + 2u];
    let x3 = (*s)[o + 3u];
    let t01 = bb_add(x0, x1);
    let t23 = bb_add(x2, x3);
    let t0123 = bb_add(t01, t23);
    let t01123 = bb_add(t0123, x1);
    let t01233 = bb_add(t0123, x3);
    (*s)[o] = bb_add(t01123, t01);
    (*s)[o + 1u] = bb_add(t01123, bb_add(x2, x2));
    (*s)[o + 2u] = bb_add(t01233, t23);
    (*s)[o + 3u] = bb_add(t01233, bb_add(x0, x0));
}

// The external ("light MDS") layer: M_4 on each block, then every word gets the sum of
// the words at its position within all four blocks.
fn p2_external_linear(s: ptr<function, array<u32, 16>>) {
    p2_mat4(s, 0u);
    p2_mat4(s, 4u);
    p2_mat4(s, 8u);
    p2_mat4(s, 12u);
    var sums: array<u32, 4>;
    for (var k = 0u; k < 4u; k++) {
        sums[k] = bb_add(bb_add((*s)[k], (*s)[k + 4u]), bb_add((*s)[k + 8u], (*s)[k + 12u]));
    }
    for (var i = 0u; i < P2_WIDTH; i++) {
        (*s)[i] = bb_add((*s)[i], sums[i & 3u]);
    }
}

fn p2_external_rounds(s: ptr<function, array<u32, 16>>, first: u32) {
    for (var r = 0u; r < P2_HALF_FULL_ROUNDS; r++) {
        let base = first + r * P2_WIDTH;
        for (var i = 0u; i < P2_WIDTH; i++) {
            (*s)[i] = p2_sbox(bb_add((*s)[i], p2_constants[base + i]));
        }
        p2_external_linear(s);
    }
}

fn p2_internal_rounds(s: ptr<function, array<u32, 16>>) {
    for (var r = 0u; r < P2_PARTIAL_ROUNDS; r++) {
        let s0 = p2_sbox(bb_add((*s)[0], p2_constants[P2_INTERNAL + r]));
        var part = 0u;
        for (var i = 1u; i < P2_WIDTH; i++) {
            part = bb_add(part, (*s)[i]);
        }
        let full = bb_add(part, s0);
        // V[0] = -2: full - 2 s0 = part - s0.
        (*s)[0] = bb_sub(part, s0);
        for (var i = 1u; i < P2_WIDTH; i++) {
            (*s)[i] = bb_add(bb_mul((*s)[i], p2_constants[P2_DIAG + i]), full);
        }
    }
}

// The full Poseidon2 permutation of one 16-word state, in place.
fn p2_permute(s: ptr<function, array<u32, 16>>) {
    p2_external_linear(s);
    p2_external_rounds(s, P2_EXT_INITIAL);
    p2_internal_rounds(s);
    p2_external_rounds(s, P2_EXT_TERMINAL);
}
