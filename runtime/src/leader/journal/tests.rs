//! The journal and manifest against a real in-memory store: round trips, torn and
//! damaged entries, parts, records read back.

use super::*;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::plugin::{SegmentSpec, Segments};
use crate::store::MemStore;

fn record(task: &str, start: u32, end: u32) -> Record {
    let artifact = ArtifactRef { uri: format!("mem:j/{task}"), blake3: [0; 32], len: 0 };
    Record { task: task.into(), start, end, depth: 0, artifact, children: Vec::new(), attempt: 1 }
}

#[test]
fn journal_round_trips_and_detects_damage() {
    let store: Arc<dyn ArtifactStore> = Arc::new(MemStore::default());
    let plan = Plan {
        segments: vec![
            SegmentSpec { payload: b"a".to_vec(), cost: 1 },
            SegmentSpec { payload: b"b".to_vec(), cost: 2 },
        ]
        .into(),
        meta: b"meta".to_vec(),
        summary: "two".into(),
        name: "two".into(),
    };
    let (mut journal, _) = Journal::create(store.clone(), "j", "sim@1", plan).unwrap();
    journal.append(&[record("seg-0", 0, 1)]).unwrap();
    journal.append(&[]).unwrap();
    journal.append(&[record("seg-1", 1, 2), record("agg-0-1", 0, 2)]).unwrap();
    let (_, manifest, records) = Journal::open(store.clone(), "j").unwrap();
    assert_eq!(manifest.pages.len(), 2);
    assert_eq!(manifest.pages.payload(1), Some(inline::inline(b"b")), "small payloads are inline");
    assert_eq!(records.len(), 3);
    assert!(matches!(Journal::open(store.clone(), "nope"), Err(JournalError::NoManifest { .. })));
    store.put("j/manifest", b"{\"body\": [], \"blake3\": \"00\"}").unwrap();
    assert!(matches!(Journal::open(store, "j"), Err(JournalError::Corrupt { .. })));
}

#[test]
fn records_and_leaves_are_read_back_as_last_written() {
    let store: Arc<dyn ArtifactStore> = Arc::new(MemStore::default());
    let plan = Plan { segments: vec![].into(), meta: b"m".to_vec(), summary: "s".into(), name: "s".into() };
    let (mut journal, _) = Journal::create(store.clone(), "j", "sim@1", plan).unwrap();
    journal.append(&[record("seg-0", 0, 1), record("seg-1", 1, 2)]).unwrap();
    let before_repair = journal.view();
    let mut repaired = record("seg-1", 1, 2);
    repaired.artifact.uri = "mem:j/seg-1.again".into();
    repaired.attempt = 4;
    journal.append(&[record("agg-0-1", 0, 2), repaired.clone()]).unwrap();

    let view = journal.view();
    let mut recalled = view.recall(&[(1, 2), (0, 2), (5, 6)]).unwrap();
    recalled.sort_by_key(|r| r.start);
    assert_eq!(recalled, [record("agg-0-1", 0, 2), repaired.clone()], "the latest record, none for 5..6");
    let leaves = view.leaves(3).unwrap();
    assert_eq!(leaves, [Some(record("seg-0", 0, 1).artifact), Some(repaired.artifact.clone()), None]);
    assert_eq!(
        before_repair.recall(&[(1, 2)]).unwrap(),
        [record("seg-1", 1, 2)],
        "a view ends where it was taken"
    );

    let sealed = String::from_utf8(seal([repaired])).unwrap();
    assert!(sealed.contains(r#""attempt":4"#), "{sealed}");
    assert!(
        !String::from_utf8(seal([record("seg-0", 0, 1)])).unwrap().contains("attempt"),
        "first attempts cost no bytes"
    );
    store.put_raw("j/journal/0000000000", b"{}").unwrap();
    assert!(matches!(view.leaves(3), Err(JournalError::Corrupt { .. })), "damage is an error, not a gap");
}

fn entry(seq: u64, records: &[Record]) -> (String, Vec<u8>) {
    (Journal::entry_key("j", seq), seal(records))
}

#[test]
fn a_torn_last_entry_ends_the_journal_and_is_overwritten_by_the_next_append() {
    let store: Arc<dyn ArtifactStore> = Arc::new(MemStore::default());
    let plan = Plan { segments: vec![].into(), meta: b"m".to_vec(), summary: "s".into(), name: "s".into() };
    let (mut journal, _) = Journal::create(store.clone(), "j", "sim@1", plan).unwrap();
    journal.append(&[record("seg-0", 0, 1)]).unwrap();
    let mut torn = seal([record("seg-1", 1, 2)]);
    torn.truncate(torn.len() / 2);
    store.put("j/journal/0000000001", &torn).unwrap();

    let (mut journal, _, records) = Journal::open(store.clone(), "j").unwrap();
    assert_eq!(records, [record("seg-0", 0, 1)]);
    journal.append(&[record("seg-2", 2, 3)]).unwrap();
    let (_, _, records) = Journal::open(store, "j").unwrap();
    let tasks: Vec<_> = records.iter().map(|r| r.task.as_str()).collect();
    assert_eq!(tasks, ["seg-0", "seg-2"], "the torn entry was overwritten, not kept in the middle");
}

#[test]
fn replay_drops_only_a_damaged_last_entry() {
    let good = [entry(0, &[record("seg-0", 0, 1)]), entry(1, &[record("seg-1", 1, 2)])];
    let replayed = replay(&good).unwrap();
    assert_eq!((replayed.records.len(), replayed.next_seq, replayed.torn), (2, 2, None));

    for damage in [b"{\"body\": [], \"blake3\": \"00\"}".to_vec(), b"{\"body\": [{\"ta".to_vec(), vec![]] {
        let torn = [good[0].clone(), (Journal::entry_key("j", 1), damage.clone())];
        let replayed = replay(&torn).unwrap();
        assert_eq!((replayed.records.len(), replayed.next_seq), (1, 1));
        assert_eq!(replayed.torn.unwrap().key, "j/journal/0000000001");

        let middle =
            [good[0].clone(), (Journal::entry_key("j", 1), damage), entry(2, &[record("seg-2", 2, 3)])];
        match replay(&middle) {
            Err(JournalError::Corrupt { key, reason }) => {
                assert_eq!(key, "j/journal/0000000001");
                assert!(reason.contains("1 valid entry follow"), "{reason}");
            }
            other => panic!("a damaged middle entry must fail the resume: {other:?}"),
        }
    }
}

#[test]
fn a_large_plan_is_stored_in_parts_and_read_back_whole() {
    let store: Arc<dyn ArtifactStore> = Arc::new(MemStore::default());
    let n = SEGMENTS_PER_PART + 3;
    // Made on demand, as the sim plugin's are: the journal reads each exactly once.
    let made = Arc::new(AtomicUsize::new(0));
    let counter = made.clone();
    let segments = Segments::made(n, move |i| {
        counter.fetch_add(1, Ordering::Relaxed);
        SegmentSpec { payload: (i as u32).to_le_bytes().to_vec(), cost: i as u64 }
    });
    let plan = Plan { segments, meta: vec![], summary: "big".into(), name: "big".into() };
    let (_, created) = Journal::create(store.clone(), "j", "sim@1", plan).unwrap();
    assert_eq!(made.load(Ordering::Relaxed), n);
    assert_eq!((created.pages.len(), created.pages.pages(), created.pages.loaded()), (n, 2, 1));
    let stored: Sealed<serde_json::Value> =
        serde_json::from_slice(&store.get_raw("j/manifest").unwrap().unwrap()).unwrap();
    assert_eq!(stored.body["segment_parts"].as_array().unwrap().len(), 2);
    assert_eq!(stored.body["segments"].as_array().unwrap().len(), 0, "the manifest itself stays small");
    let (_, opened, _) = Journal::open(store.clone(), "j").unwrap();
    assert!(opened.segments.is_empty());
    assert_eq!((opened.pages.len(), opened.pages.loaded()), (n, 0), "costs only: pages load on demand");
    assert_eq!(opened.pages.cost(n - 1), (n - 1) as u64);
    let last = read_part(store.as_ref(), &opened.segment_parts[1]).unwrap();
    assert_eq!(last.len(), 3);
    assert_eq!(last.payload(2), inline::inline(&((n - 1) as u32).to_le_bytes()));
    assert_eq!(created.pages.payload(n - 1), None, "only the first page stays loaded");
    // A damaged part fails the resume (its digest is in the manifest).
    store.put("j/segments/000001", b"{}").unwrap();
    assert!(matches!(Journal::open(store, "j"), Err(JournalError::Store(StoreError::Corrupt { .. }))));
}

#[test]
fn journals_written_before_with_digests_as_number_arrays_still_read() {
    let old = r#"[{"task":"seg-0","start":0,"end":1,"depth":0,"artifact":{"uri":"mem:j/seg-0","blake3":[0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,1],"len":0}}]"#;
    let bytes = format!(r#"{{"body":{old},"blake3":"{}"}}"#, blake3::hash(old.as_bytes()).to_hex());
    let records: Vec<Record> = unseal("k", bytes.as_bytes()).unwrap();
    assert_eq!(records[0].artifact.blake3[31], 1);
    let sealed = String::from_utf8(seal(&records)).unwrap();
    assert!(sealed.contains(&format!(r#""blake3":"{}01""#, "0".repeat(62))), "{sealed}");
    let mut flipped = bytes.clone().into_bytes();
    flipped[20] = b'1';
    assert!(matches!(unseal::<Vec<Record>>("k", &flipped), Err(JournalError::Corrupt { .. })));
}

#[test]
fn seal_writes_what_serde_would_and_unseal_reads_it() {
    let records = vec![record("seg-0", 0, 1), record("agg-0-1", 0, 2)];
    let digest = blake3::hash(&serde_json::to_vec(&records).unwrap()).to_hex().to_string();
    let expected = serde_json::to_vec(&Sealed { body: &records, blake3: digest }).unwrap();
    assert_eq!(seal(&records), expected);
    assert_eq!(unseal::<Vec<Record>>("k", &seal(&records)).unwrap(), records);
}

#[test]
fn maximal_ranges_drop_what_a_bigger_range_covers() {
    let records =
        [record("seg-0", 0, 1), record("seg-1", 1, 2), record("agg-0-1", 0, 2), record("seg-3", 3, 4)];
    let max: Vec<_> = maximal_ranges(&records).into_iter().map(|r| r.task).collect();
    assert_eq!(max, ["agg-0-1", "seg-3"]);
}
