//! A toy typed plugin (sums of numbers) driven through `Erased` exactly as the runtime
//! drives any plugin: plan, prove every segment, fold, wrap from the stored leaves,
//! verify; and bytes that are not this plugin's are refused the way the runtime needs.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use proofline_plugin::codec::Codec;
use proofline_plugin::typed::{Erased, TypedLeaves, TypedPlan, TypedProofSystem};
use proofline_plugin::*;
use serde::{Deserialize, Serialize};

/// Proves the sum of a list of numbers: a "proof" of segments `start..end` is their sum.
struct Sum;

#[derive(Serialize, Deserialize, Debug, PartialEq)]
struct Range {
    start: u32,
    end: u32,
    sum: u64,
}

impl TypedProofSystem for Sum {
    type Segment = (u32, u64);
    type Proof = Range;
    type Meta = u64;
    type Final = (u64, u32);
    const CODEC: Codec = Codec::new(7);

    fn id(&self) -> PluginId {
        PluginId::new("sum", "1")
    }

    fn plan(&self, input: &[u8], _: &PlanOptions) -> Result<TypedPlan<(u32, u64), u64>, PluginError> {
        let numbers: Vec<u64> = std::str::from_utf8(input)
            .map_err(|_| PluginError::bad_input("not UTF-8"))?
            .split(',')
            .map(|n| n.trim().parse().map_err(|_| PluginError::bad_input(format!("{n:?} is not a number"))))
            .collect::<Result<_, _>>()?;
        let total = numbers.iter().sum();
        let segments = numbers.into_iter().enumerate().map(|(i, n)| ((i as u32, n), 1)).collect();
        Ok(TypedPlan { segments, meta: total, summary: format!("sum = {total}"), name: "sum".into() })
    }

    fn prove_segment(&self, _: &mut ExecCx, (index, n): (u32, u64)) -> Result<Range, PluginError> {
        Ok(Range { start: index, end: index + 1, sum: n })
    }

    fn aggregate(&self, _: &mut ExecCx, left: Range, right: Range) -> Result<Range, PluginError> {
        if left.end != right.start {
            return Err(PluginError::permanent("not adjacent"));
        }
        Ok(Range { start: left.start, end: right.end, sum: left.sum + right.sum })
    }

    fn wrap(
        &self,
        _: &mut ExecCx,
        root: Range,
        total: u64,
        leaves: &TypedLeaves<'_, Range>,
    ) -> Result<(u64, u32), PluginError> {
        let from_leaves: u64 =
            (0..leaves.len()).map(|i| leaves.get(i).map(|r| r.sum)).sum::<Result<_, _>>()?;
        if root.sum != total || from_leaves != total || root.end != leaves.len() {
            return Err(PluginError::permanent("the root does not cover the plan"));
        }
        Ok((total, leaves.len()))
    }

    fn verify(&self, (total, count): (u64, u32)) -> Result<Verdict, PluginError> {
        Ok(Verdict::Valid { statement: format!("{count} numbers sum to {total}") })
    }
}

/// Leaves as a store holds them; `.1` more are listed than are there (a store away).
struct Stored(Vec<Vec<u8>>, u32);

impl LeafSource for Stored {
    fn leaf_count(&self) -> u32 {
        self.0.len() as u32 + self.1
    }
    fn leaf(&self, index: u32) -> Result<Vec<u8>, PluginError> {
        self.0.get(index as usize).cloned().ok_or_else(|| PluginError::retryable("store away"))
    }
}

fn cx() -> ExecCx {
    ExecCx::new("t", 0, Arc::new(AtomicBool::new(false)))
}

#[test]
fn a_typed_plugin_runs_through_the_byte_seam() {
    let plugin: Arc<dyn ProofSystem> = Arc::new(Erased(Sum));
    let plan = plugin.plan(b"3, 4, 5", &PlanOptions::default()).unwrap();
    assert_eq!((plan.segments.len(), plan.summary.as_str()), (3, "sum = 12"));
    assert!(plan.segments.iter().all(|s| s.payload[0] == 7), "every payload carries the codec version");

    let leaves: Vec<Vec<u8>> =
        plan.segments.iter().map(|s| plugin.prove_segment(&mut cx(), &s.payload).unwrap()).collect();
    let left = plugin.aggregate(&mut cx(), &leaves[0], &leaves[1]).unwrap();
    let root = plugin.aggregate(&mut cx(), &left, &leaves[2]).unwrap();
    assert!(
        plugin.aggregate(&mut cx(), &leaves[0], &leaves[2]).is_err(),
        "the plugin's own checks still run"
    );

    let stored = Stored(leaves, 0);
    let proof =
        plugin.wrap(&mut cx(), &root, &JobMeta { job: "j", meta: &plan.meta, leaves: &stored }).unwrap();
    assert_eq!(plugin.verify(&proof).unwrap(), Verdict::Valid { statement: "3 numbers sum to 12".into() });
}

#[test]
fn bytes_that_are_not_the_plugins_are_refused_as_the_runtime_needs() {
    let plugin = Erased(Sum);
    // An artifact from another build (another codec version) is a permanent failure.
    let foreign = Codec::new(8).encode(&(0u32, 1u64));
    let err = plugin.prove_segment(&mut cx(), &foreign).unwrap_err();
    assert!(!err.is_retryable() && err.to_string().contains("unknown format version 8"), "{err}");
    // A final proof that is not one is bad input.
    assert!(matches!(plugin.verify(b"junk"), Err(PluginError::BadInput(_))));
    // A leaf the store cannot give keeps the store's (retryable) error.
    let plan = plugin.plan(b"1, 2", &PlanOptions::default()).unwrap();
    let leaf = plugin.prove_segment(&mut cx(), &plan.segments.get(0).unwrap().payload).unwrap();
    let right = plugin.prove_segment(&mut cx(), &plan.segments.get(1).unwrap().payload).unwrap();
    let root = plugin.aggregate(&mut cx(), &leaf, &right).unwrap();
    let missing = Stored(vec![leaf], 1);
    let job = JobMeta { job: "j", meta: &plan.meta, leaves: &missing };
    assert_eq!(plugin.wrap(&mut cx(), &root, &job).unwrap_err(), PluginError::retryable("store away"));
    // Bad input from `plan` stays bad input.
    assert!(matches!(plugin.plan(b"1, x", &PlanOptions::default()), Err(PluginError::BadInput(_))));
}
