// Batched radix-2 NTT over BabyBear on a row-major matrix: `width` columns, 2^log_rows
// rows, element (r, c) at r * width + c; every column is transformed independently.
//
// `dif` runs `stages` consecutive decimation-in-frequency stages in workgroup memory:
// natural-order input, bit-reversed output once all log_rows stages have run. The
// stages of one pass have half-sizes 2^(lo + stages - 1) down to 2^lo; the rows they
// mix are base + j * 2^lo for j < 2^stages. Each workgroup loads such rows for 2^log_r
// neighbouring bases (so strided passes still read contiguous runs of memory) and a
// chunk of 2^log_c columns into a tile, runs the stages there, and writes it back.
// Tile layout: index (j << (log_r + log_c)) | (l << log_c) | c.
//
// `bitrev` permutes rows into bit-reversed order in place and multiplies every element by
// `scale`: the inverse DFT's 1/n.
//
// Twiddles: tw[m - 1 + k] = w_{2m}^k for every power of two m and k < m (Montgomery
// form), so the table for a large size serves every smaller one.
//
// TILE_WORDS (a power of two) is substituted by the host from the device limits.

struct Params {
    width: u32,
    log_rows: u32,
    // dif: log2 of the smallest half-size in this pass; bitrev: unused.
    lo: u32,
    // dif: stages in this pass; bitrev: unused.
    stages: u32,
    // dif: log2 of the columns per tile; bitrev: unused.
    log_c: u32,
    // dif: column chunks per row group, ceil(width / 2^log_c); bitrev: unused.
    chunks: u32,
    // bitrev: Montgomery form of 1/n; dif_gather: log2 of the source rows.
    scale: u32,
    // dif: log2 of the neighbouring bases per tile (at most lo); bitrev: unused.
    log_r: u32,
}

@group(0) @binding(0) var<storage, read_write> data: array<u32>;
@group(0) @binding(1) var<storage, read> tw: array<u32>;
@group(0) @binding(2) var<uniform> p: Params;

const WG: u32 = 256u;

var<workgroup> tile: array<u32, TILE_WORDS>;

// Where one workgroup of a `dif` pass works: its rows, columns and tile size.
struct TileSpot {
    base: u32,
    low: u32,
    c0: u32,
    cols: u32,
    cmask: u32,
    rmask: u32,
    seg: u32,
    count: u32,
}

// This workgroup's tile number (the dispatch grid may hold spare groups past the last).
fn tile_group(wg: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return wg.x + wg.y * nwg.x;
}

fn tile_groups() -> u32 {
    return (1u << (p.log_rows - p.stages - p.log_r)) * p.chunks;
}

fn tile_spot(g: u32) -> TileSpot {
    var t: TileSpot;
    let chunk = g % p.chunks;
    let rg = g / p.chunks;
    let low_bits = p.lo - p.log_r;
    t.low = (rg & ((1u << low_bits) - 1u)) << p.log_r;
    let high = rg >> low_bits;
    t.base = (high << (p.lo + p.stages)) | t.low;
    t.c0 = chunk << p.log_c;
    t.cols = min(1u << p.log_c, p.width - t.c0);
    t.cmask = (1u << p.log_c) - 1u;
    t.rmask = (1u << p.log_r) - 1u;
    t.seg = p.log_r + p.log_c;
    t.count = 1u << (p.stages + t.seg);
    return t;
}

// The matrix row that tile element e holds.
fn tile_row(t: TileSpot, e: u32) -> u32 {
    return t.base + ((e >> t.seg) << p.lo) + ((e >> p.log_c) & t.rmask);
}

// The pass's stages on the tile, between barriers (called in uniform control flow).
fn tile_stages(lid: u32, t: TileSpot) {
    let pairs = t.count >> 1u;
    for (var s = 0u; s < p.stages; s++) {
        let tj = p.stages - 1u - s;
        let m = 1u << (p.lo + tj);
        for (var q = lid; q < pairs; q += WG) {
            let lc = q & ((1u << t.seg) - 1u);
            let pj = q >> t.seg;
            let kj = pj & ((1u << tj) - 1u);
            let j0 = ((pj >> tj) << (tj + 1u)) | kj;
            let i0 = (j0 << t.seg) | lc;
            let i1 = i0 + (1u << (tj + t.seg));
            let a = tile[i0];
            let b = tile[i1];
            tile[i0] = bb_add(a, b);
            let k = (kj << p.lo) | t.low | (lc >> p.log_c);
            tile[i1] = bb_mul(bb_sub(a, b), tw[m - 1u + k]);
        }
        workgroupBarrier();
    }
}

fn tile_store(lid: u32, t: TileSpot) {
    for (var e = lid; e < t.count; e += WG) {
        let c = e & t.cmask;
        if (c < t.cols) {
            data[tile_row(t, e) * p.width + t.c0 + c] = tile[e];
        }
    }
}

@compute @workgroup_size(256)
fn dif(
    @builtin(local_invocation_index) lid: u32,
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
) {
    let g = tile_group(wg, nwg);
    // Workgroup-uniform: the barriers below stay in uniform control flow.
    if (g >= tile_groups()) {
        return;
    }
    let t = tile_spot(g);
    for (var e = lid; e < t.count; e += WG) {
        let c = e & t.cmask;
        if (c < t.cols) {
            tile[e] = data[tile_row(t, e) * p.width + t.c0 + c];
        }
    }
    workgroupBarrier();
    tile_stages(lid, t);
    tile_store(lid, t);
}

// `dif_gather`: the first forward pass of a coset LDE, reading its input straight from
// the inverse DFT's output instead of a bit-reversed, scaled and zero-padded copy.
// Natural row r of the padded coefficients is src[rev(r)] * factors[r] for r below the
// source's 2^src_log rows (factors[r] = s^r / n) and zero above, so the bit-reversal pass,
// the zero fill and half of this pass's reads disappear.
@group(0) @binding(3) var<storage, read> src: array<u32>;
@group(0) @binding(4) var<storage, read> factors: array<u32>;

@compute @workgroup_size(256)
fn dif_gather(
    @builtin(local_invocation_index) lid: u32,
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
) {
    let g = tile_group(wg, nwg);
    if (g >= tile_groups()) {
        return;
    }
    let t = tile_spot(g);
    // In a gather pass `scale` holds log2 of the source's rows.
    let src_log = p.scale;
    let src_rows = 1u << src_log;
    for (var e = lid; e < t.count; e += WG) {
        let c = e & t.cmask;
        if (c < t.cols) {
            let r = tile_row(t, e);
            var v = 0u;
            if (r < src_rows) {
                let src_row = select(0u, reverseBits(r) >> (32u - src_log), src_log > 0u);
                v = bb_mul(src[src_row * p.width + t.c0 + c], factors[r]);
            }
            tile[e] = v;
        }
    }
    workgroupBarrier();
    tile_stages(lid, t);
    tile_store(lid, t);
}

@compute @workgroup_size(256)
fn bitrev(@builtin(global_invocation_id) id: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let t = id.x + id.y * nwg.x * WG;
    let rows = 1u << p.log_rows;
    if (t >= rows * p.width) {
        return;
    }
    let c = t % p.width;
    let i = t / p.width;
    // reverseBits(i) >> 32 is not allowed: one row needs no reversal.
    let j = select(0u, reverseBits(i) >> (32u - p.log_rows), p.log_rows > 0u);
    if (i > j) {
        return;
    }
    let a = data[i * p.width + c];
    if (i == j) {
        data[i * p.width + c] = bb_mul(a, p.scale);
        return;
    }
    let b = data[j * p.width + c];
    data[j * p.width + c] = bb_mul(a, p.scale);
    data[i * p.width + c] = bb_mul(b, p.scale);
}
