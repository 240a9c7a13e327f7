//! Whole Poseidon2 Merkle trees on the device, laid out exactly as Plonky3's binary
//! `MerkleTreeMmcs` (p3-merkle-tree 0.8) lays them out.
//!
//! The layout, for matrices whose heights sit on the `ceil(max_height / 2^k)` ladder:
//!
//! * matrices are taken tallest first (a stable sort: equal heights keep their order);
//! * layer 0 holds the sponge hash of each row of all tallest matrices concatenated, padded
//!   with zero digests to an even length (`padded_len`; a single row stays a single digest);
//! * layer k+1 has `len(layer k) / 2` real nodes `C(left, right)`, again zero-padded to an
//!   even length; when matrices of height `h` with `h.next_power_of_two()` equal to
//!   `(len(layer k) / 2).next_power_of_two()` remain, node i becomes `C(C(left, right),
//!   H(rows i of those matrices))`, or `C(node, 0)` past their height;
//! * the last layer is the root.
//!
//! # What crosses the bus
//!
//! Up: the rows of every matrix once (gathered row by row, so any [`Matrix`] works, in
//! staging chunks of at most [`STAGING_BYTES`]) and a few uniform words per level. Down: every
//! digest layer (about `2 * max_height` digests of 32 bytes), which the prover keeps for
//! openings. Leaf hashing, injection hashing and every compression level are recorded into
//! one command buffer and submitted once.

use std::cmp::Reverse;

use p3_baby_bear::BabyBear;
use p3_matrix::Matrix;

use crate::field::as_words;
use crate::gpu::GpuError;
use crate::poseidon2::{CompressLevel, DIGEST_ELEMS, Digest, Poseidon2Kernel, digests_from_words};

/// Most bytes of matrix rows gathered on the host before they are handed to the device.
pub const STAGING_BYTES: usize = 32 << 20;

/// Plonky3's `padded_len` for arity 2: even, except that 0 and 1 stay as they are.
fn padded_len(len: usize) -> usize {
    if len <= 1 { len } else { len.next_multiple_of(2) }
}

fn log2_ceil(n: usize) -> usize {
    n.next_power_of_two().trailing_zeros() as usize
}

/// Whether every height is `ceil(max_height / 2^k)` for some k (what `MerkleTreeMmcs` admits),
/// with at least one non-empty matrix.
pub fn heights_admissible(heights: impl Iterator<Item = usize> + Clone) -> bool {
    let Some(max_height) = heights.clone().max().filter(|&h| h > 0) else {
        return false;
    };
    let log_max = log2_ceil(max_height);
    heights.into_iter().all(|h| h > 0 && h == ((max_height - 1) >> (log_max - log2_ceil(h))) + 1)
}

/// One level above the leaves: where it lives in the digest buffer and what it injects.
struct Level {
    offset: usize,
    count: usize,
    padded: usize,
    /// Matrices injected at this level, and where their row digests go.
    inject: Option<(Vec<usize>, usize)>,
}

/// Layout of all digest layers in one buffer (in digests): layers first, then the scratch
/// space of injected-row digests.
struct Plan {
    tallest: Vec<usize>,
    leaf_len: usize,
    levels: Vec<Level>,
    layer_digests: usize,
    total_digests: usize,
}

impl Plan {
    fn new(heights: &[usize]) -> Plan {
        let mut order: Vec<usize> = (0..heights.len()).collect();
        order.sort_by_key(|&i| Reverse(heights[i]));
        let max_height = heights[order[0]];
        let split = order.iter().position(|&i| heights[i] != max_height).unwrap_or(order.len());
        let tallest = order[..split].to_vec();
        let mut rest = order[split..].iter().copied().peekable();

        let leaf_len = padded_len(max_height);
        let mut levels = Vec::new();
        let mut offset = leaf_len;
        let mut prev = leaf_len;
        let mut pending = Vec::new();
        while prev > 1 {
            let count = prev / 2;
            let padded = padded_len(count);
            let mut injected = Vec::new();
            while let Some(&m) = rest.peek() {
                if heights[m].next_power_of_two() != count.next_power_of_two() {
                    break;
                }
                injected.push(m);
                rest.next();
            }
            let inject = (!injected.is_empty()).then(|| {
                let rows = heights[injected[0]];
                pending.push(rows);
                (injected, rows)
            });
            levels.push(Level { offset, count, padded, inject });
            offset += padded;
            prev = padded;
        }
        let layer_digests = offset;
        let total_digests = layer_digests + pending.iter().sum::<usize>();
        Plan { tallest, leaf_len, levels, layer_digests, total_digests }
    }
}

fn too_large(what: &str, bytes: usize, limit: u64) -> GpuError {
    GpuError::TooLarge(format!(
        "Merkle tree: {what} of {bytes} bytes exceeds the device's limit of {limit} bytes"
    ))
}

/// Build every digest layer of the tree `MerkleTreeMmcs` would build over `leaves` (binary,
/// Poseidon2 sponge leaves, truncated-permutation compression), on the device.
///
/// Returns the layers bottom-up, each zero-padded as Plonky3 pads it; the last is `[root]`.
/// Heights must be admissible ([`heights_admissible`]); the caller checks.
///
/// ```no_run
/// use p3_baby_bear::BabyBear;
/// use p3_matrix::dense::RowMajorMatrix;
/// use proofline_shaders::{Gpu, Poseidon2Kernel, merkle_layers};
///
/// let kernel = Poseidon2Kernel::new(Gpu::first().unwrap());
/// let matrix = RowMajorMatrix::new(vec![BabyBear::new(7); 1 << 20], 16);
/// let layers = merkle_layers(&kernel, &[matrix]).unwrap();
/// println!("root {:?}", layers.last().unwrap()[0]);
/// ```
pub fn merkle_layers<M: Matrix<BabyBear>>(
    kernel: &Poseidon2Kernel,
    leaves: &[M],
) -> Result<Vec<Vec<Digest>>, GpuError> {
    let heights: Vec<usize> = leaves.iter().map(|m| m.height()).collect();
    assert!(heights_admissible(heights.iter().copied()), "matrix heights {heights:?} are not admissible");
    kernel.gpu().scoped("Merkle tree", || build_layers(kernel, leaves, &heights))
}

fn build_layers<M: Matrix<BabyBear>>(
    kernel: &Poseidon2Kernel,
    leaves: &[M],
    heights: &[usize],
) -> Result<Vec<Vec<Digest>>, GpuError> {
    let plan = Plan::new(heights);
    let gpu = kernel.gpu();
    let tree = DeviceTree::new(kernel, &plan)?;
    let chunk_bytes = (tree.binding_limit as usize).min(STAGING_BYTES);

    let mut encoder = gpu.device.create_command_encoder(&Default::default());
    let mut scratch = Vec::new();
    // Hash the rows of one height group into digests [dst, dst + height).
    let mut hash_group = |encoder: &mut wgpu::CommandEncoder, group: &[usize], dst: usize| {
        let mats: Vec<&M> = group.iter().map(|&i| &leaves[i]).collect();
        let height = mats[0].height();
        let width: usize = mats.iter().map(|m| m.width()).sum();
        if width * 4 > chunk_bytes {
            return Err(too_large("one row", width * 4, chunk_bytes as u64));
        }
        let rows_per_chunk = if width == 0 { height } else { chunk_bytes / (width * 4) };
        let mut first = 0;
        while first < height {
            let rows = rows_per_chunk.min(height - first);
            scratch.clear();
            for r in first..first + rows {
                for m in &mats {
                    scratch.extend_from_slice(as_words(&m.row_slice(r).expect("row in range")));
                }
            }
            let buffer = gpu.storage_empty("merkle-rows", scratch.len());
            gpu.queue.write_buffer(&buffer, 0, bytemuck::cast_slice(&scratch));
            tree.hash_rows(encoder, &buffer, rows, width, dst + first);
            first += rows;
        }
        Ok(())
    };

    hash_group(&mut encoder, &plan.tallest, 0)?;
    tree.record_levels(&mut encoder, heights[plan.tallest[0]], hash_group)?;
    gpu.queue.submit([encoder.finish()]);
    tree.read_layers()
}

/// [`merkle_layers`] of one `height x width` row-major matrix that is already on the device
/// (the first `height * width` words of `rows`, e.g. an LDE the NTT just produced): nothing
/// is uploaded. Submitted behind whatever wrote `rows`.
pub(crate) fn merkle_layers_of_device_rows(
    kernel: &Poseidon2Kernel,
    rows: &wgpu::Buffer,
    height: usize,
    width: usize,
) -> Result<Vec<Vec<Digest>>, GpuError> {
    assert!(height > 0 && width > 0, "a non-empty matrix");
    kernel.gpu().scoped("Merkle tree", || {
        let plan = Plan::new(&[height]);
        let tree = DeviceTree::new(kernel, &plan)?;
        let mut encoder = kernel.gpu().device.create_command_encoder(&Default::default());
        tree.hash_rows(&mut encoder, rows, height, width, 0);
        tree.record_levels(&mut encoder, height, |_, _, _| unreachable!("one matrix injects nothing"))?;
        kernel.gpu().queue.submit([encoder.finish()]);
        tree.read_layers()
    })
}

/// The digest buffer of one tree being built, and the dispatches that fill it.
struct DeviceTree<'a> {
    kernel: &'a Poseidon2Kernel,
    plan: &'a Plan,
    digests: wgpu::Buffer,
    binding_limit: u64,
}

impl<'a> DeviceTree<'a> {
    fn new(kernel: &'a Poseidon2Kernel, plan: &'a Plan) -> Result<Self, GpuError> {
        let limits = kernel.gpu().limits();
        let binding_limit = limits.max_storage_buffer_binding_size.min(limits.max_buffer_size);
        let digest_bytes = plan.total_digests * DIGEST_ELEMS * 4;
        // The kernels address digest words with u32 indices.
        if digest_bytes as u64 > binding_limit.min(u32::MAX as u64) {
            return Err(too_large("digest layers", digest_bytes, binding_limit));
        }
        let digests = kernel.gpu().storage_empty("merkle-digests", plan.total_digests * DIGEST_ELEMS);
        Ok(DeviceTree { kernel, plan, digests, binding_limit })
    }

    /// Sponge-hash `count` rows of `width` words from `rows` into digests `dst..`.
    fn hash_rows(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        rows: &wgpu::Buffer,
        count: usize,
        width: usize,
        dst: usize,
    ) {
        self.kernel.record_hash_rows(encoder, &self.digests, rows, count, width, dst);
    }

    /// Zero the leaf layer's padding, then record every compression level above the leaves
    /// (`max_height` of them hashed already); `inject(encoder, group, dst)` hashes the rows
    /// of the shorter matrices a level injects.
    fn record_levels(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        max_height: usize,
        mut inject: impl FnMut(&mut wgpu::CommandEncoder, &[usize], usize) -> Result<(), GpuError>,
    ) -> Result<(), GpuError> {
        let plan = self.plan;
        if plan.leaf_len > max_height {
            let bytes = ((plan.leaf_len - max_height) * DIGEST_ELEMS * 4) as u64;
            encoder.clear_buffer(&self.digests, (max_height * DIGEST_ELEMS * 4) as u64, Some(bytes));
        }
        let mut scratch_at = plan.layer_digests;
        let mut src = 0;
        for level in &plan.levels {
            let inject = match &level.inject {
                Some((group, rows)) => {
                    inject(encoder, group, scratch_at)?;
                    scratch_at += rows;
                    Some((scratch_at - rows, *rows))
                }
                None => None,
            };
            let compress =
                CompressLevel { count: level.count, padded: level.padded, src, dst: level.offset, inject };
            self.kernel.record_compress(encoder, &self.digests, &compress);
            src = level.offset;
        }
        Ok(())
    }

    /// Wait for the device and split the digest buffer into layers, leaves first.
    fn read_layers(&self) -> Result<Vec<Vec<Digest>>, GpuError> {
        let plan = self.plan;
        let mut words = self.kernel.gpu().read(&self.digests, plan.layer_digests * DIGEST_ELEMS)?;
        let mut layers = Vec::with_capacity(plan.levels.len() + 1);
        let mut rest = words.split_off(plan.leaf_len * DIGEST_ELEMS);
        layers.push(digests_from_words(words));
        for level in &plan.levels {
            let tail = rest.split_off(level.padded * DIGEST_ELEMS);
            layers.push(digests_from_words(rest));
            rest = tail;
        }
        Ok(layers)
    }
}
