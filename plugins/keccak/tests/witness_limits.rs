//! Memory stays bounded on witnesses of many tiny items: an input over the witness
//! limits is rejected before its items are materialised, whatever its size.
//!
//! A counting global allocator measures the peak heap growth of each call; the tests
//! in this binary run one at a time so that their measurements do not mix.

use std::alloc::{GlobalAlloc, Layout, System};
use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use proofline_keccak::witness::limits::{MAX_ITEMS, MAX_JSON_VALUES};
use proofline_keccak::witness::{WitnessError, parse_block_witness};

struct Counting;

static CURRENT: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);
static SERIAL: Mutex<()> = Mutex::new(());

fn grew(by: usize) {
    let now = CURRENT.fetch_add(by, Ordering::Relaxed) + by;
    PEAK.fetch_max(now, Ordering::Relaxed);
}

// SAFETY: every call is forwarded to `System` unchanged; only counters are added.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            grew(layout.size());
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        CURRENT.fetch_sub(layout.size(), Ordering::Relaxed);
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            CURRENT.fetch_sub(layout.size(), Ordering::Relaxed);
            grew(new_size);
        }
        p
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// `f()` and the most the heap grew above its starting point while it ran.
fn peak_growth<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let base = CURRENT.load(Ordering::Relaxed);
    PEAK.store(base, Ordering::Relaxed);
    let out = f();
    (out, PEAK.load(Ordering::Relaxed).saturating_sub(base))
}

/// The README's example block with `extra` empty keys appended to `witness.keys`.
fn with_empty_keys(extra: usize) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/example-block.json");
    let text = std::fs::read_to_string(path).expect("examples/example-block.json");
    let mut doc: serde_json::Value = serde_json::from_str(&text).unwrap();
    doc["witness"]["keys"] = serde_json::Value::Array(Vec::new());
    let mut out = serde_json::to_vec(&doc).unwrap();
    let at = find(&out, b"\"keys\":[]").expect("keys emptied above") + b"\"keys\":[".len();
    let mut keys = Vec::with_capacity(extra * 3);
    for i in 0..extra {
        keys.extend_from_slice(if i == 0 { b"\"\"" } else { b",\"\"" });
    }
    out.splice(at..at, keys);
    out
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

const MIB: usize = 1 << 20;

#[test]
fn millions_of_empty_keys_are_rejected_before_parsing() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let input = with_empty_keys(4 * MAX_JSON_VALUES); // 8 Mi keys, 24 MiB of input
    let (result, peak) = peak_growth(|| parse_block_witness(&input));
    match result {
        Err(WitnessError::TooLarge { what: "JSON values", max, .. }) => assert_eq!(max, MAX_JSON_VALUES),
        other => panic!("expected the JSON value limit, got {other:?}"),
    }
    // Nothing proportional to the input: no JSON tree, no item vectors.
    assert!(peak < MIB, "peak heap growth {peak} bytes for a {} byte input", input.len());
}

#[test]
fn the_item_limit_is_checked_before_hex_is_decoded() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let input = with_empty_keys(MAX_ITEMS); // under the JSON value limit, over the item limit
    let (result, peak) = peak_growth(|| parse_block_witness(&input));
    match result {
        Err(e @ WitnessError::TooLarge { what: "items", .. }) => {
            assert!(e.to_string().contains(&format!("at most {MAX_ITEMS}")), "{e}")
        }
        other => panic!("expected the item limit, got {other:?}"),
    }
    // The JSON tree (32 bytes a value, vectors doubling) but no decoded items: far
    // below the ~250 bytes an empty key costs once planned.
    let per_key = peak / MAX_ITEMS;
    assert!(per_key <= 80, "{per_key} bytes of heap per 3-byte empty key (peak {peak})");
}

#[test]
fn a_witness_under_the_limits_still_parses() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let input = with_empty_keys(100_000);
    let witness = parse_block_witness(&input).expect("within the limits");
    assert_eq!(witness.keys.len(), 100_000);
    assert!(witness.keys.iter().all(Vec::is_empty));
}
