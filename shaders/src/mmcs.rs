//! [`GpuMmcs`]: a Plonky3 [`Mmcs`] whose Merkle trees are built on the device and whose
//! commitments, proofs and openings are identical to the CPU [`CpuMmcs`], so the stock
//! Plonky3 verifier accepts them unchanged.

use std::sync::{Arc, OnceLock};

use p3_baby_bear::{BabyBear, Poseidon2BabyBear, default_babybear_poseidon2_16};
use p3_commit::{BatchOpening, BatchOpeningRef, Mmcs};
use p3_field::Field;
use p3_matrix::{Dimensions, Matrix};
use p3_merkle_tree::{MerkleCap, MerkleTree, MerkleTreeError, MerkleTreeMmcs};
use p3_symmetric::{PaddingFreeSponge, TruncatedPermutation};

use crate::gpu::Gpu;
use crate::merkle::{heights_admissible, merkle_layers};
use crate::poseidon2::{DIGEST_ELEMS, Digest, Poseidon2Kernel};

/// Leaf hash: `PaddingFreeSponge<Poseidon2BabyBear<16>, 16, 8, 8>`.
pub type FieldHash = PaddingFreeSponge<Poseidon2BabyBear<16>, 16, 8, DIGEST_ELEMS>;
/// Node compression: `TruncatedPermutation<Poseidon2BabyBear<16>, 2, 8, 16>`.
pub type Compress = TruncatedPermutation<Poseidon2BabyBear<16>, 2, DIGEST_ELEMS, 16>;
/// The CPU Merkle tree MMCS that [`GpuMmcs`] reproduces (the prover's `ValMmcs`).
pub type CpuMmcs = MerkleTreeMmcs<
    <BabyBear as Field>::Packing,
    <BabyBear as Field>::Packing,
    FieldHash,
    Compress,
    2,
    DIGEST_ELEMS,
>;
type CpuTree<M> = MerkleTree<BabyBear, BabyBear, M, 2, DIGEST_ELEMS>;

/// Matrices with fewer cells than this (in total) are committed on the CPU by
/// [`GpuMmcs::new`]: below it the transfers and launches cost more than they save.
pub const DEFAULT_GPU_THRESHOLD: usize = 1 << 14;

/// What [`GpuMmcs`] keeps for openings: the committed matrices and every digest layer.
pub enum GpuMerkleData<M> {
    /// Built on the device: layers bottom-up, each zero-padded as Plonky3 pads it.
    Gpu {
        /// The committed matrices, in commit order.
        leaves: Vec<M>,
        /// Digest layers, leaves first, `[root]` last.
        layers: Vec<Vec<Digest>>,
    },
    /// Built by the CPU fallback.
    Cpu(CpuTree<M>),
}

impl<M> GpuMerkleData<M> {
    /// Whether the tree was built on the device.
    pub fn on_gpu(&self) -> bool {
        matches!(self, GpuMerkleData::Gpu { .. })
    }
}

/// A Merkle tree MMCS over BabyBear that builds its trees on the GPU.
///
/// Commitments ([`MerkleCap`]), proofs (`Vec<[BabyBear; 8]>`), multi-proofs and openings are
/// those of [`CpuMmcs`] bit for bit; verification is [`CpuMmcs`]'s. Without a device, below
/// the size threshold, or on any device error (logged with `tracing::warn!`), it commits on
/// the CPU instead. Cheap to clone: clones share the compiled kernels.
///
/// ```no_run
/// use p3_baby_bear::BabyBear;
/// use p3_commit::Mmcs;
/// use p3_matrix::dense::RowMajorMatrix;
/// use proofline_shaders::{Gpu, GpuMmcs};
///
/// let mmcs = GpuMmcs::new(Gpu::shared().ok(), 0);
/// let matrix = RowMajorMatrix::new(vec![BabyBear::new(1); 8 << 16], 8);
/// let (root, data) = mmcs.commit(vec![matrix]);
/// let opening = mmcs.open_batch(5, &data);
/// ```
#[derive(Clone)]
pub struct GpuMmcs {
    cpu: CpuMmcs,
    gpu: Option<Arc<Gpu>>,
    kernel: Arc<OnceLock<Poseidon2Kernel>>,
    threshold: usize,
}

impl std::fmt::Debug for GpuMmcs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GpuMmcs")
            .field("gpu", &self.gpu)
            .field("cap_height", &self.cpu.cap_height())
            .field("threshold", &self.threshold)
            .finish()
    }
}

impl GpuMmcs {
    /// An MMCS with Plonky3's default Poseidon2 (`default_babybear_poseidon2_16()`), committing
    /// on `gpu` (the CPU when `None`) above [`DEFAULT_GPU_THRESHOLD`] cells.
    pub fn new(gpu: Option<Arc<Gpu>>, cap_height: usize) -> Self {
        let perm = default_babybear_poseidon2_16();
        let cpu = CpuMmcs::new(FieldHash::new(perm.clone()), Compress::new(perm), cap_height);
        GpuMmcs { cpu, gpu, kernel: Arc::new(OnceLock::new()), threshold: DEFAULT_GPU_THRESHOLD }
    }

    /// Every commitment on `gpu` (threshold 0, cap height 0): for tests.
    pub fn on(gpu: Arc<Gpu>) -> Self {
        Self::new(Some(gpu), 0).with_threshold(0)
    }

    /// Commit on the CPU when the matrices hold fewer than `cells` elements in total.
    pub fn with_threshold(mut self, cells: usize) -> Self {
        self.threshold = cells;
        self
    }

    /// Matrices with fewer cells than this are committed on the CPU.
    pub fn threshold(&self) -> usize {
        self.threshold
    }

    /// The CPU MMCS this one reproduces (and verifies with).
    pub fn cpu(&self) -> &CpuMmcs {
        &self.cpu
    }

    /// The compiled kernels, when a device is configured.
    pub fn kernel(&self) -> Option<&Poseidon2Kernel> {
        let gpu = self.gpu.as_ref()?;
        Some(self.kernel.get_or_init(|| Poseidon2Kernel::new(gpu.clone())))
    }

    pub(crate) fn cap(&self, layers: &[Vec<Digest>]) -> MerkleCap<BabyBear, Digest> {
        let cap_height = self.effective_cap_height(layers.len());
        let layer = &layers[layers.len() - 1 - cap_height];
        MerkleCap::new(layer[..(1 << cap_height).min(layer.len())].to_vec())
    }

    fn effective_cap_height(&self, num_layers: usize) -> usize {
        self.cpu.cap_height().min(num_layers.saturating_sub(1))
    }

    /// Sibling digests of leaf `index` from the leaves up to the cap.
    fn path(&self, layers: &[Vec<Digest>], index: usize) -> Vec<Digest> {
        let levels = layers.len() - 1 - self.effective_cap_height(layers.len());
        (0..levels).map(|l| layers[l][(index >> l) ^ 1]).collect()
    }
}

fn gpu_fell_back(kernel: &Poseidon2Kernel, e: &crate::gpu::GpuError) {
    kernel.gpu().count().fell_back();
    tracing::warn!("GPU Merkle tree failed, committing on the CPU: {e}");
}

fn openings<M: Matrix<BabyBear>>(leaves: &[M], index: usize) -> Vec<Vec<BabyBear>> {
    let max_height = leaves.iter().map(|m| m.height()).max().expect("No committed matrices?");
    assert!(index < max_height, "index {index} out of bounds for height {max_height}");
    let log_max = max_height.next_power_of_two().trailing_zeros();
    leaves
        .iter()
        .map(|m| {
            let reduced = index >> (log_max - m.height().next_power_of_two().trailing_zeros());
            m.row_slice(reduced).expect("row in range").to_vec()
        })
        .collect()
}

/// Boundary siblings of a binary multi-opening in Plonky3's wire order: level by level, groups
/// by ascending parent, missing children by ascending position.
fn pruned_siblings(layers: &[Vec<Digest>], levels: usize, indices: &[usize]) -> Vec<Digest> {
    let mut nodes: Vec<usize> = indices.to_vec();
    nodes.sort_unstable();
    nodes.dedup();
    let mut out = Vec::new();
    for layer in &layers[..levels] {
        let mut parents = Vec::with_capacity(nodes.len());
        let mut i = 0;
        while i < nodes.len() {
            let parent = nodes[i] / 2;
            for child in [2 * parent, 2 * parent + 1] {
                if i < nodes.len() && nodes[i] == child {
                    i += 1;
                } else {
                    out.push(layer[child]);
                }
            }
            parents.push(parent);
        }
        nodes = parents;
    }
    out
}

impl Mmcs<BabyBear> for GpuMmcs {
    type ProverData<M> = GpuMerkleData<M>;
    type Commitment = <CpuMmcs as Mmcs<BabyBear>>::Commitment;
    type Proof = <CpuMmcs as Mmcs<BabyBear>>::Proof;
    type MultiProof = <CpuMmcs as Mmcs<BabyBear>>::MultiProof;
    type Error = MerkleTreeError;

    fn commit<M: Matrix<BabyBear>>(&self, inputs: Vec<M>) -> (Self::Commitment, Self::ProverData<M>) {
        let cells: usize = inputs.iter().map(|m| m.height() * m.width()).sum();
        // Inadmissible heights go to the CPU too, which panics with Plonky3's message.
        let worth_it = cells >= self.threshold && heights_admissible(inputs.iter().map(|m| m.height()));
        if let Some(gpu) = &self.gpu
            && !worth_it
        {
            gpu.count().skipped();
        } else if worth_it && let Some(kernel) = self.kernel() {
            match merkle_layers(kernel, &inputs) {
                Ok(layers) => return (self.cap(&layers), GpuMerkleData::Gpu { leaves: inputs, layers }),
                Err(e) => gpu_fell_back(kernel, &e),
            }
        }
        let (cap, tree) = self.cpu.commit(inputs);
        (cap, GpuMerkleData::Cpu(tree))
    }

    fn open_batch<M: Matrix<BabyBear>>(
        &self,
        index: usize,
        prover_data: &Self::ProverData<M>,
    ) -> BatchOpening<BabyBear, Self> {
        match prover_data {
            GpuMerkleData::Gpu { leaves, layers } => {
                BatchOpening::new(openings(leaves, index), self.path(layers, index))
            }
            GpuMerkleData::Cpu(tree) => {
                let (values, proof) = self.cpu.open_batch(index, tree).unpack();
                BatchOpening::new(values, proof)
            }
        }
    }

    fn get_matrices<'a, M: Matrix<BabyBear>>(&self, prover_data: &'a Self::ProverData<M>) -> Vec<&'a M> {
        match prover_data {
            GpuMerkleData::Gpu { leaves, .. } => leaves.iter().collect(),
            GpuMerkleData::Cpu(tree) => self.cpu.get_matrices(tree),
        }
    }

    fn verify_batch(
        &self,
        commit: &Self::Commitment,
        dimensions: &[Dimensions],
        index: usize,
        batch_opening: BatchOpeningRef<'_, BabyBear, Self>,
    ) -> Result<(), Self::Error> {
        let (values, proof) = batch_opening.unpack();
        self.cpu.verify_batch(commit, dimensions, index, BatchOpeningRef::new(values, proof))
    }

    fn open_multi_batch<M: Matrix<BabyBear>>(
        &self,
        indices: &[usize],
        prover_data: &Self::ProverData<M>,
    ) -> (Vec<Vec<Vec<BabyBear>>>, Self::MultiProof) {
        match prover_data {
            GpuMerkleData::Gpu { leaves, layers } => {
                let values = indices.iter().map(|&i| openings(leaves, i)).collect();
                let levels = layers.len() - 1 - self.effective_cap_height(layers.len());
                let sibling_hashes = pruned_siblings(layers, levels, indices);
                (values, p3_merkle_tree::PrunedMerklePaths { sibling_hashes })
            }
            GpuMerkleData::Cpu(tree) => self.cpu.open_multi_batch(indices, tree),
        }
    }

    fn verify_multi_batch<R: AsRef<[BabyBear]> + PartialEq>(
        &self,
        commit: &Self::Commitment,
        dimensions: &[Dimensions],
        indices: &[usize],
        opened_values: &[Vec<R>],
        proof: &Self::MultiProof,
    ) -> Result<(), Self::Error> {
        self.cpu.verify_multi_batch(commit, dimensions, indices, opened_values, proof)
    }
}
