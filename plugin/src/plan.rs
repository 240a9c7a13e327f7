//! [`Plan`]: what a proof system makes of a job's input on the leader.

/// Options the leader passes to [`ProofSystem::plan`](crate::ProofSystem::plan).
#[derive(Clone, Debug, Default)]
pub struct PlanOptions {
    /// Upper bound on one segment's cost, in the plugin's own unit
    /// (Keccak-f permutations for `keccak`). `None`: the plugin's default.
    pub segment_size: Option<u64>,
}

/// One segment of a plan: an opaque payload for
/// [`ProofSystem::prove_segment`](crate::ProofSystem::prove_segment).
#[derive(Clone, Debug)]
pub struct SegmentSpec {
    pub payload: Vec<u8>,
    /// Cost estimate in the plugin's unit; used for scheduling and progress.
    pub cost: u64,
}

/// The result of planning a job: ordered segments `0..n` and what `wrap` needs.
#[derive(Clone, Debug)]
pub struct Plan {
    pub segments: Vec<SegmentSpec>,
    /// Opaque job statement handed to [`ProofSystem::wrap`](crate::ProofSystem::wrap)
    /// (e.g. the block header).
    pub meta: Vec<u8>,
    /// One line for humans: what is being proven.
    pub summary: String,
    /// A short, file-name-safe name for what is proven (`[A-Za-z0-9._-]`, e.g. the
    /// keccak plugin's `<block number>-<hash prefix>`): `batch` names proof files after it.
    pub name: String,
}

impl Plan {
    /// Whether `name` is a usable [`Plan::name`]: 1 to 96 characters of
    /// `[A-Za-z0-9._-]`, not starting with a dot.
    ///
    /// ```
    /// use proofline_plugin::Plan;
    /// assert!(Plan::is_valid_name("19807080-0b4c5b49"));
    /// assert!(!Plan::is_valid_name("../etc"));
    /// ```
    pub fn is_valid_name(name: &str) -> bool {
        (1..=96).contains(&name.len())
            && !name.starts_with('.')
            && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
    }
}
