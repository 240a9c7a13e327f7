//! What `batch` tells: the JSON summary next to each proof, and the table on stderr.

use std::path::Path;

use proofline_runtime::leader::JobOutput;
use serde_json::{Value, json};

use super::decide::Outcome;

/// `<name>.json`: where the proof came from and what proving it took.
pub fn summary_json(
    input: &Path,
    name: &str,
    summary: &str,
    output: &JobOutput,
    proof_bytes: usize,
) -> Value {
    let s = &output.stats;
    let mut doc = json!({
        "block": name,
        "summary": summary,
        "input": input.display().to_string(),
        "job": output.job,
        "plugin": output.plugin.to_string(),
        "proof": format!("{name}.proof"),
        "proof_bytes": proof_bytes,
        "stats": {
            "segments": s.segments,
            "aggregations": s.aggregations,
            "depth": s.depth,
            "resumed_segments": s.resumed_segments,
            "retries": s.retries,
            "redispatches": s.redispatches,
            "timeouts": s.timeouts,
            "duplicates": s.duplicates,
            "repairs": s.repairs,
            "elapsed_s": s.elapsed.as_secs_f64(),
            "wrap_s": s.wrap.as_secs_f64(),
        },
    });
    if let Some(timeline) = &output.timeline {
        doc["attempts"] = json!(timeline.spans.len());
        doc["wasted_attempts"] = json!(timeline.spans.iter().filter(|s| s.outcome.is_wasted()).count());
    }
    doc
}

/// One row of the table: what to call the input, and how it went.
pub struct Row<'a> {
    pub block: String,
    pub outcome: &'a Outcome,
}

/// The table: `block  state  time  note`, one line per input, columns aligned.
pub fn table(rows: &[Row<'_>]) -> String {
    let cells: Vec<[String; 4]> = rows
        .iter()
        .map(|r| {
            let (time, note) = match r.outcome {
                Outcome::Proven { elapsed, resumed_segments, retries } => {
                    let mut notes = Vec::new();
                    if *resumed_segments > 0 {
                        notes.push(format!("resumed: {resumed_segments} segments already proven"));
                    }
                    if *retries > 0 {
                        notes.push(format!("{retries} retries"));
                    }
                    (format!("{:.1}s", elapsed.as_secs_f64()), notes.join("; "))
                }
                Outcome::Skipped => ("-".into(), "proof already there and verifies".into()),
                Outcome::Duplicate { of } => ("-".into(), format!("same block as {}", of.display())),
                Outcome::BadInput(m) | Outcome::Failed(m) | Outcome::Interrupted(m) => {
                    ("-".into(), m.clone())
                }
            };
            [r.block.clone(), r.outcome.state().to_owned(), time, note]
        })
        .collect();
    let header = ["block", "state", "time", "note"].map(str::to_owned);
    let width = |c: usize| cells.iter().chain([&header]).map(|r| r[c].chars().count()).max().unwrap_or(0);
    let widths = [width(0), width(1), width(2)];
    let line = |r: &[String; 4]| {
        format!(
            "{:w0$}  {:w1$}  {:>w2$}  {}",
            r[0],
            r[1],
            r[2],
            r[3],
            w0 = widths[0],
            w1 = widths[1],
            w2 = widths[2]
        )
        .trim_end()
        .to_owned()
    };
    std::iter::once(&header).chain(&cells).map(line).collect::<Vec<_>>().join("\n")
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn the_table_has_a_line_per_input_with_aligned_columns() {
        let proven =
            Outcome::Proven { elapsed: Duration::from_millis(41_230), resumed_segments: 3, retries: 0 };
        let bad = Outcome::BadInput("bad input in blocks/x.json: malformed JSON".into());
        let rows = [
            Row { block: "22615247-0497f695".into(), outcome: &proven },
            Row { block: "blocks/x.json".into(), outcome: &bad },
            Row { block: "1265656-ac77c202".into(), outcome: &Outcome::Skipped },
        ];
        let t = table(&rows);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 4);
        assert!(lines[0].starts_with("block "), "{t}");
        assert!(
            lines[1].contains("proven") && lines[1].contains("41.2s") && lines[1].contains("resumed: 3"),
            "{t}"
        );
        assert!(lines[2].contains("bad input") && lines[2].contains("malformed JSON"), "{t}");
        assert!(lines[3].contains("skipped") && lines[3].contains("verifies"), "{t}");
        // Aligned: the state column starts at the same place on every line.
        let at = |l: &str, word: &str| l.find(word).unwrap();
        assert_eq!(at(lines[0], "state"), at(lines[1], "proven"));
        assert_eq!(at(lines[1], "proven"), at(lines[2], "bad input"));
    }
}
