// Merkle tree kernels over Poseidon2 (needs poseidon2.wgsl): leaf hashing with
// `PaddingFreeSponge<Perm, 16, 8, 8>` and one level of `TruncatedPermutation<Perm, 2, 8, 16>`
// compression with `MerkleTreeMmcs`'s injection of shorter matrices.
//
// Digests live in one buffer (`digests`), 8 words each, addressed by digest index: every
// layer of the tree, then scratch space for the digests of injected rows.

struct MerkleParams {
    // hash_rows: rows to hash. compress: real nodes of the output layer.
    count: u32,
    // compress: output layer length after padding (slots past `count` get the zero digest).
    padded: u32,
    // compress: first digest of the input layer.
    src: u32,
    // Both: first digest written.
    dst: u32,
    // hash_rows: words per row (all matrices of one height, concatenated).
    width: u32,
    // compress: first injected-row digest.
    inject: u32,
    // compress: how many output nodes get an injected-row digest (the rest get zero).
    inject_len: u32,
    // compress: bit 0 set when this level injects rows.
    flags: u32,
}

const DIGEST: u32 = 8u;
const RATE: u32 = 8u;

@group(0) @binding(1) var<uniform> params: MerkleParams;
@group(0) @binding(2) var<storage, read_write> digests: array<u32>;
@group(0) @binding(3) var<storage, read> rows: array<u32>;

fn flat_index(id: vec3<u32>, n: vec3<u32>) -> u32 {
    return id.x + id.y * n.x * 64u;
}

// Padding-free sponge in overwrite mode: each block of up to 8 words overwrites the rate,
// then the state is permuted; a row of width 0 hashes to the zero digest.
@compute @workgroup_size(64)
fn hash_rows(@builtin(global_invocation_id) id: vec3<u32>, @builtin(num_workgroups) n: vec3<u32>) {
    let i = flat_index(id, n);
    if (i >= params.count) { return; }
    let width = params.width;
    let base = i * width;
    var s: array<u32, 16>;
    var k = 0u;
    loop {
        if (k >= width) { break; }
        let take = min(RATE, width - k);
        for (var j = 0u; j < take; j++) {
            s[j] = rows[base + k + j];
        }
        p2_permute(&s);
        k += take;
    }
    let out = (params.dst + i) * DIGEST;
    for (var j = 0u; j < DIGEST; j++) {
        digests[out + j] = s[j];
    }
}

fn compress_pair(s: ptr<function, array<u32, 16>>) {
    p2_permute(s);
}

// One tree level: node i = C(left, right) from the layer below, then, on injecting levels,
// C(node, H(rows i)) (or C(node, 0) past the injected height). Padding slots get zero.
@compute @workgroup_size(64)
fn compress(@builtin(global_invocation_id) id: vec3<u32>, @builtin(num_workgroups) n: vec3<u32>) {
    let i = flat_index(id, n);
    if (i >= params.padded) { return; }
    let out = (params.dst + i) * DIGEST;
    if (i >= params.count) {
        for (var j = 0u; j < DIGEST; j++) {
            digests[out + j] = 0u;
        }
        return;
    }
    var s: array<u32, 16>;
    let children = (params.src + 2u * i) * DIGEST;
    for (var j = 0u; j < 16u; j++) {
        s[j] = digests[children + j];
    }
    compress_pair(&s);
    if ((params.flags & 1u) != 0u) {
        if (i < params.inject_len) {
            let injected = (params.inject + i) * DIGEST;
            for (var j = 0u; j < DIGEST; j++) {
                s[DIGEST + j] = digests[injected + j];
            }
        } else {
            for (var j = 0u; j < DIGEST; j++) {
                s[DIGEST + j] = 0u;
            }
        }
        compress_pair(&s);
    }
    for (var j = 0u; j < DIGEST; j++) {
        digests[out + j] = s[j];
    }
}
