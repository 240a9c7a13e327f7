//! [`GpuFriPcs`]: Plonky3's `TwoAdicFriPcs` over [`GpuDft`] and [`GpuMmcs`], with the LDE
//! and the Merkle tree of a single-matrix commitment fused on the device.
//!
//! Through the stock seams the LDE goes to the device, comes back to the host (the prover
//! needs it there for quotients and openings), and goes up again for the Merkle tree:
//! `TwoAdicFriPcs::commit` flattens the DFT's output into a `RowMajorMatrix` before the
//! MMCS sees it, so no device handle can cross. This wrapper overrides `commit` alone:
//! the tree is hashed straight from the NTT's output buffer while the LDE is read back,
//! which saves one host-to-device copy of the largest matrix of a proof (the main trace)
//! and the host-side gathering of its rows. Everything else is `TwoAdicFriPcs`'s own code,
//! and commitments, prover data and proofs are identical to it (tests compare them).

use std::sync::Arc;

use p3_baby_bear::BabyBear;
use p3_challenger::{CanObserve, FieldChallenger, GrindingChallenger};
use p3_commit::{
    CommitmentOpening, Mmcs, OpenedValues, OpeningRequest, Pcs, PeriodicLdeTable, UnivariateStarkPcs,
};
use p3_field::coset::TwoAdicMultiplicativeCoset;
use p3_field::{ExtensionField, Field};
use p3_fri::{FriParameters, TwoAdicFriPcs};
use p3_matrix::Matrix;
use p3_matrix::bitrev::BitReversedMatrixView;
use p3_matrix::dense::{RowMajorMatrix, RowMajorMatrixCow};

use crate::dft::GpuDft;
use crate::gpu::GpuError;
use crate::merkle::merkle_layers_of_device_rows;
use crate::mmcs::{GpuMerkleData, GpuMmcs};
use crate::ntt::{NttPlan, Transform};

type Inner<FriMmcs> = TwoAdicFriPcs<BabyBear, GpuDft, GpuMmcs, FriMmcs>;
type Domain = TwoAdicMultiplicativeCoset<BabyBear>;
type Commitment = <GpuMmcs as Mmcs<BabyBear>>::Commitment;
type ProverData = GpuMerkleData<RowMajorMatrix<BabyBear>>;

/// `TwoAdicFriPcs<BabyBear, GpuDft, GpuMmcs, FriMmcs>` with device-resident commits.
///
/// Without a GPU, below the DFT's or the MMCS's size thresholds, for commits of several
/// matrices, or on any device error (logged), it is exactly `TwoAdicFriPcs`.
///
/// ```no_run
/// use p3_baby_bear::BabyBear;
/// use p3_commit::ExtensionMmcs;
/// use p3_field::extension::BinomialExtensionField;
/// use p3_fri::FriParameters;
/// use proofline_shaders::{Gpu, GpuDft, GpuFriPcs, GpuMmcs};
///
/// let gpu = Gpu::first().unwrap();
/// let mmcs = GpuMmcs::new(Some(gpu.clone()), 0);
/// let fri = FriParameters::new_benchmark(ExtensionMmcs::<BabyBear, BinomialExtensionField<BabyBear, 4>, _>::new(mmcs.clone()));
/// let pcs = GpuFriPcs::new(GpuDft::on(gpu), mmcs, fri);
/// # let _ = pcs;
/// ```
#[derive(Clone, Debug)]
pub struct GpuFriPcs<FriMmcs> {
    inner: Inner<FriMmcs>,
    dft: GpuDft,
    mmcs: GpuMmcs,
    log_blowup: usize,
}

impl<FriMmcs> GpuFriPcs<FriMmcs> {
    /// The PCS `TwoAdicFriPcs::new(dft, mmcs, fri)` builds, committing on `dft`'s and
    /// `mmcs`'s device when they share one.
    pub fn new(dft: GpuDft, mmcs: GpuMmcs, fri: FriParameters<FriMmcs>) -> Self {
        let log_blowup = fri.log_blowup;
        GpuFriPcs { inner: TwoAdicFriPcs::new(dft.clone(), mmcs.clone(), fri), dft, mmcs, log_blowup }
    }

    /// The LDE of `evals` onto `g K` and its Merkle tree, on the device; `None` when this
    /// commit is not for the device.
    fn commit_on_device(
        &self,
        domain: &Domain,
        evals: &RowMajorMatrix<BabyBear>,
    ) -> Option<Result<(Commitment, ProverData), GpuError>> {
        let ntt = self.dft.device_for(evals)?;
        let kernel = self.mmcs.kernel()?;
        let lde_cells = evals.values.len() << self.log_blowup;
        if !Arc::ptr_eq(ntt.gpu(), kernel.gpu()) || lde_cells < self.mmcs.threshold() {
            return None;
        }
        assert_eq!(domain.size(), evals.height());
        let (width, log_rows) = (evals.width(), evals.height().ilog2());
        // As TwoAdicFriPcs: evaluations over x H become evaluations over g K.
        let shift = BabyBear::GENERATOR / domain.shift();
        let added_bits = self.log_blowup as u32;
        let run = || {
            let plan = NttPlan::new(ntt, Transform::CosetLde { added_bits, shift }, log_rows, width)?;
            plan.load(&evals.values);
            plan.run();
            let layers =
                merkle_layers_of_device_rows(kernel, plan.buffer(), evals.height() << added_bits, width)?;
            let lde = RowMajorMatrix::new(plan.read()?, width);
            Ok((self.mmcs.cap(&layers), GpuMerkleData::Gpu { leaves: vec![lde], layers }))
        };
        Some(ntt.gpu().scoped("commit", run))
    }
}

impl<FriMmcs, Challenge, Challenger> Pcs<Challenge, Challenger> for GpuFriPcs<FriMmcs>
where
    FriMmcs: Mmcs<Challenge>,
    Challenge: ExtensionField<BabyBear>,
    Challenger:
        FieldChallenger<BabyBear> + CanObserve<FriMmcs::Commitment> + GrindingChallenger<Witness = BabyBear>,
{
    type Domain = Domain;
    type Commitment = Commitment;
    type ProverData = ProverData;
    type Proof = <Inner<FriMmcs> as Pcs<Challenge, Challenger>>::Proof;
    type Error = <Inner<FriMmcs> as Pcs<Challenge, Challenger>>::Error;
    type ProverError = <Inner<FriMmcs> as Pcs<Challenge, Challenger>>::ProverError;

    fn natural_domain_for_degree(&self, degree: usize) -> Domain {
        Pcs::<Challenge, Challenger>::natural_domain_for_degree(&self.inner, degree)
    }

    fn commit(
        &self,
        evaluations: impl IntoIterator<Item = (Domain, RowMajorMatrix<BabyBear>)>,
    ) -> Result<(Commitment, ProverData), Self::ProverError> {
        let evaluations: Vec<_> = evaluations.into_iter().collect();
        if let [(domain, evals)] = &evaluations[..] {
            match self.commit_on_device(domain, evals) {
                Some(Ok(committed)) => return Ok(committed),
                Some(Err(e)) => {
                    if let Some(ntt) = self.dft.ntt() {
                        ntt.gpu().count().fell_back();
                    }
                    tracing::warn!(
                        "GPU commit of {} x {} failed, committing through the stock path: {e}",
                        evals.height(),
                        evals.width()
                    )
                }
                None => {}
            }
        }
        Pcs::<Challenge, Challenger>::commit(&self.inner, evaluations)
    }

    fn open(
        &self,
        requests: Vec<OpeningRequest<'_, ProverData, Challenge>>,
        challenger: &mut Challenger,
    ) -> Result<(OpenedValues<Challenge>, Self::Proof), Self::ProverError> {
        self.inner.open(requests, challenger)
    }

    fn verify(
        &self,
        commitments: Vec<CommitmentOpening<Challenge, Commitment, Domain>>,
        proof: &Self::Proof,
        challenger: &mut Challenger,
    ) -> Result<(), Self::Error> {
        self.inner.verify(commitments, proof, challenger)
    }
}

impl<FriMmcs, Challenge, Challenger> UnivariateStarkPcs<Challenge, Challenger> for GpuFriPcs<FriMmcs>
where
    FriMmcs: Mmcs<Challenge>,
    Challenge: ExtensionField<BabyBear>,
    Challenger:
        FieldChallenger<BabyBear> + CanObserve<FriMmcs::Commitment> + GrindingChallenger<Witness = BabyBear>,
{
    type EvaluationsOnDomain<'a> = BitReversedMatrixView<RowMajorMatrixCow<'a, BabyBear>>;

    const ZK: bool = <Inner<FriMmcs> as UnivariateStarkPcs<Challenge, Challenger>>::ZK;

    fn log_max_trace_height(&self) -> usize {
        UnivariateStarkPcs::<Challenge, Challenger>::log_max_trace_height(&self.inner)
    }

    fn log_min_trace_height(&self) -> usize {
        UnivariateStarkPcs::<Challenge, Challenger>::log_min_trace_height(&self.inner)
    }

    fn get_quotient_ldes(
        &self,
        evaluations: impl IntoIterator<Item = (Domain, RowMajorMatrix<BabyBear>)>,
        num_chunks: usize,
    ) -> Result<Vec<RowMajorMatrix<BabyBear>>, Self::ProverError> {
        UnivariateStarkPcs::<Challenge, Challenger>::get_quotient_ldes(&self.inner, evaluations, num_chunks)
    }

    fn commit_ldes(
        &self,
        ldes: Vec<RowMajorMatrix<BabyBear>>,
    ) -> Result<(Commitment, ProverData), Self::ProverError> {
        UnivariateStarkPcs::<Challenge, Challenger>::commit_ldes(&self.inner, ldes)
    }

    fn get_evaluations_on_domain<'a>(
        &self,
        prover_data: &'a ProverData,
        idx: usize,
        domain: Domain,
    ) -> Self::EvaluationsOnDomain<'a> {
        UnivariateStarkPcs::<Challenge, Challenger>::get_evaluations_on_domain(
            &self.inner,
            prover_data,
            idx,
            domain,
        )
    }

    fn build_periodic_lde_table(
        &self,
        periodic_cols: &[Vec<BabyBear>],
        trace_domain: Domain,
        quotient_domain: Domain,
    ) -> PeriodicLdeTable<BabyBear> {
        UnivariateStarkPcs::<Challenge, Challenger>::build_periodic_lde_table(
            &self.inner,
            periodic_cols,
            trace_domain,
            quotient_domain,
        )
    }
}
