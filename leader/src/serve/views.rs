//! What the API returns for a job: its record and live progress as JSON (the `Job`
//! schema of [`super::openapi`]), and times in RFC 3339.

use serde_json::{Value, json};

use super::registry::Counts;
use super::service::Snapshot;
use super::state::JobState;

/// The `Job` JSON of a snapshot, at `now_ms`.
pub fn job(snapshot: &Snapshot, now_ms: u64) -> Value {
    let r = &snapshot.record;
    let progress = match (&snapshot.progress, &r.progress) {
        (Some(live), _) => Counts::from(live),
        (None, Some(last)) => last.clone(),
        (None, None) => Counts { segments_total: r.segments, cost_total: r.cost_total, ..Counts::default() },
    };
    let end = r.finished_ms.unwrap_or(now_ms);
    let queued_until = r.started_ms.or(r.finished_ms).unwrap_or(now_ms);
    let secs = |ms: u64| ms as f64 / 1e3;
    let id = &r.id;
    let proven = r.state == JobState::Proven;
    json!({
        "id": id,
        "state": r.state.as_str(),
        "client": r.client,
        "plugin": r.plugin,
        "name": r.name,
        "summary": r.summary,
        "progress": {
            "segments_done": progress.segments_done,
            "segments_total": progress.segments_total,
            "aggregations_done": progress.aggregations_done,
            "aggregations_total": progress.aggregations_total,
            "cost_done": progress.cost_done,
            "cost_total": progress.cost_total,
        },
        "timings": {
            "submitted": rfc3339(r.submitted_ms),
            "started": r.started_ms.map(rfc3339),
            "finished": r.finished_ms.map(rfc3339),
            "queued_seconds": secs(queued_until.saturating_sub(r.submitted_ms)),
            "elapsed_seconds": r.started_ms.map(|s| secs(end.saturating_sub(s))),
        },
        "error": r.error,
        "proof": r.proof.as_ref().filter(|_| proven).map(|p| json!({
            "bytes": p.len,
            "blake3": hex(&p.blake3),
        })),
        "stats": r.stats,
        "links": {
            "self": format!("/v1/jobs/{id}"),
            "proof": format!("/v1/jobs/{id}/proof"),
            "timeline": format!("/v1/jobs/{id}/timeline.svg"),
        },
    })
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `2026-12-02T08:52:51.123Z` for milliseconds since the Unix epoch (UTC).
pub fn rfc3339(ms: u64) -> String {
    let (secs, millis) = (ms / 1000, ms % 1000);
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(days as i64);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{millis:03}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

/// Year, month, day of a day count since 1970-01-01 (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use proofline_runtime::plugin::{Plan, SegmentSpec};
    use proofline_runtime::task::ArtifactRef;

    use super::*;
    use crate::serve::registry::JobRecord;

    #[test]
    fn times_are_rfc3339_in_utc() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(rfc3339(1_796_201_571_123), "2026-12-02T08:52:51.123Z");
        assert_eq!(rfc3339(4_102_444_799_999), "2099-12-31T23:59:59.999Z");
    }

    fn record() -> JobRecord {
        let plan = Plan {
            segments: vec![SegmentSpec { payload: vec![], cost: 3 }; 4].into(),
            meta: vec![],
            summary: "four".into(),
            name: "b-1".into(),
        };
        let input = ArtifactRef { uri: "mem:x".into(), blake3: [0; 32], len: 2 };
        JobRecord::new("job-1-00000000".into(), "default".into(), 1, 1_000, "sim@1".into(), &plan, input)
    }

    #[test]
    fn a_queued_job_shows_its_plan_and_waiting_time() {
        let v = job(&Snapshot { record: record(), progress: None }, 3_500);
        assert_eq!(v["state"], "queued");
        assert_eq!(v["progress"]["segments_total"], 4);
        assert_eq!(v["progress"]["cost_total"], 12);
        assert_eq!(v["timings"]["queued_seconds"], 2.5);
        assert!(v["timings"]["started"].is_null() && v["timings"]["elapsed_seconds"].is_null());
        assert!(v["proof"].is_null() && v["error"].is_null());
        assert_eq!(v["links"]["proof"], "/v1/jobs/job-1-00000000/proof");
    }

    #[test]
    fn a_proven_job_shows_its_proof_and_final_timings() {
        let mut r = record();
        r.state = JobState::Proven;
        r.started_ms = Some(2_000);
        r.finished_ms = Some(7_000);
        r.proof = Some(ArtifactRef { uri: "mem:p".into(), blake3: [0xab; 32], len: 99 });
        r.progress = Some(Counts { segments_done: 4, segments_total: 4, ..Counts::default() });
        let v = job(&Snapshot { record: r, progress: None }, 60_000);
        assert_eq!(v["proof"]["bytes"], 99);
        assert_eq!(v["proof"]["blake3"].as_str().unwrap(), "ab".repeat(32));
        assert_eq!(v["timings"]["elapsed_seconds"], 5.0);
        assert_eq!(v["timings"]["queued_seconds"], 1.0);
        assert_eq!(v["progress"]["segments_done"], 4);
    }
}
