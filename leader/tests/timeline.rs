//! `--timeline FILE.svg`: the picture of a real job is a valid SVG (resvg renders it to
//! PNG), has exactly one bar per task attempt the job reported in its stats, and marks
//! a failed attempt.
//!
//! `docs/timeline.png` (mainnet block 22615247's timeline) comes from this test:
//! `PROOFLINE_TIMELINE_PNG=$PWD/docs/timeline.png cargo test -p proofline-leader --test timeline`.

mod common;

use std::collections::HashMap;
use std::path::Path;
use std::process::Output;

/// The fills the leader gives segment, aggregation and wrap bars (`leader/src/timeline.rs`,
/// `KIND_COLOURS`); its legend uses circles, so a `<rect>` of these fills is a bar.
const SEGMENT: &str = "#4E79A7";
const AGGREGATION: &str = "#F28E2B";
const WRAP: &str = "#59A14F";
const WASTED_OPACITY: &str = "opacity=\"0.35\"";

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The counters of the leader's `proved` log line (`segments=8 aggregations=7 ...`).
fn stats(log: &str) -> HashMap<String, u64> {
    let line = log.lines().find(|l| l.contains(" proved") && l.contains("segments=")).expect(log);
    line.split_whitespace()
        .filter_map(|field| field.split_once('='))
        .filter_map(|(k, v)| Some((k.to_owned(), v.parse().ok()?)))
        .collect()
}

/// Bars in the SVG by fill, and how many of them are drawn as wasted.
fn bars(svg: &str) -> (HashMap<&'static str, usize>, usize) {
    let mut by_kind = HashMap::new();
    let mut wasted = 0;
    for line in svg.lines().map(str::trim).filter(|l| l.starts_with("<rect")) {
        for fill in [SEGMENT, AGGREGATION, WRAP] {
            if line.contains(&format!("fill=\"{fill}\"")) {
                *by_kind.entry(fill).or_default() += 1;
                wasted += usize::from(line.contains(WASTED_OPACITY));
            }
        }
    }
    (by_kind, wasted)
}

/// Render with resvg (system fonts for the labels) and return the PNG and its pixels.
fn render_png(svg: &str) -> (Vec<u8>, resvg::tiny_skia::Pixmap) {
    let mut options = resvg::usvg::Options::default();
    let fonts = options.fontdb_mut();
    fonts.load_system_fonts();
    // The SVG asks for `sans-serif`; fontdb maps it to Arial unless told otherwise.
    if let Some(family) = ["DejaVu Sans", "Liberation Sans", "Noto Sans"]
        .into_iter()
        .find(|name| fonts.faces().any(|f| f.families.iter().any(|(n, _)| n == name)))
    {
        fonts.set_sans_serif_family(family);
    }
    let tree = resvg::usvg::Tree::from_str(svg, &options).expect("a valid SVG document");
    let size = tree.size().to_int_size();
    let mut pixmap = resvg::tiny_skia::Pixmap::new(size.width(), size.height()).unwrap();
    resvg::render(&tree, resvg::tiny_skia::Transform::default(), &mut pixmap.as_mut());
    (pixmap.encode_png().unwrap(), pixmap)
}

fn has_pixel_of(pixmap: &resvg::tiny_skia::Pixmap, hex: &str) -> bool {
    let rgb: Vec<u8> = (0..3).map(|i| u8::from_str_radix(&hex[1 + 2 * i..3 + 2 * i], 16).unwrap()).collect();
    pixmap.pixels().iter().any(|p| [p.red(), p.green(), p.blue()] == rgb[..] && p.alpha() == 255)
}

#[test]
fn a_real_block_draws_one_bar_per_attempt_and_renders_to_png() {
    let dir = tempfile::tempdir().unwrap();
    let svg_path = dir.path().join("job.svg");
    // A real mainnet block (the example, 22907757): 1996 permutations in segments of
    // 300, so 7 segments, 6 aggregations and one wrap.
    let out = common::leader_with(
        &["stdio", "--segment-size", "300", "--timeline", svg_path.to_str().unwrap()],
        &common::example(),
        &[("RUST_LOG", "info")],
    );
    let log = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{log}");
    assert!(!out.stdout.is_empty(), "the proof still reaches stdout");
    let s = stats(&log);
    assert_eq!(s["segments"], 7, "{log}");
    let wasted_expected = s["retries"] + s["redispatches"] + s["timeouts"] + s["duplicates"];
    let attempts = s["segments"] + s["aggregations"] + 1 + wasted_expected;

    let svg = std::fs::read_to_string(&svg_path).unwrap();
    let (by_kind, wasted) = bars(&svg);
    assert_eq!(by_kind.values().sum::<usize>() as u64, attempts, "one bar per attempt: {by_kind:?}\n{log}");
    assert_eq!(wasted as u64, wasted_expected);
    if wasted_expected == 0 {
        assert_eq!(by_kind[SEGMENT] as u64, s["segments"]);
        assert_eq!(by_kind[AGGREGATION] as u64, s["aggregations"]);
        assert_eq!(by_kind[WRAP], 1);
    }
    // The critical path (wrap, the root aggregation, ... a segment) is outlined thick.
    let thick = svg.lines().filter(|l| l.contains("<polyline") && l.contains("stroke-width=\"3\"")).count();
    assert!(thick >= 3, "wrap, root aggregation and a segment at least: {thick}");
    let job = log.split("--resume ").nth(1).and_then(|r| r.split(')').next()).expect(&log);
    assert!(svg.contains(&format!("{job}: ")), "the title names the job: {job}");

    let (png, pixmap) = render_png(&svg);
    assert!(png.starts_with(b"\x89PNG"));
    assert!(pixmap.width() >= 1000 && pixmap.height() >= 200);
    for fill in [SEGMENT, AGGREGATION, WRAP] {
        assert!(has_pixel_of(&pixmap, fill), "no {fill} bar in the rendered picture");
    }
    if let Some(path) = std::env::var_os("PROOFLINE_TIMELINE_PNG") {
        std::fs::write(Path::new(&path), &png).unwrap();
    }
}

#[test]
fn a_failed_attempt_is_drawn_wasted() {
    let dir = tempfile::tempdir().unwrap();
    let svg_path = dir.path().join("job.svg");
    // Segment 2 fails once (retryable) and succeeds on its second attempt.
    let workload = br#"{"tasks": 6, "cost": {"fixed": {"micros": 20000}}, "work": "sleep",
        "fail": {"segments": [2], "mode": "retryable", "times": 1}}"#;
    let out = common::leader_with(
        &["--plugin", "sim", "--lanes", "2", "stdio", "--timeline", svg_path.to_str().unwrap()],
        workload,
        &[("RUST_LOG", "info")],
    );
    let log = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{log}");
    let s = stats(&log);
    assert_eq!(s["retries"], 1, "{log}");

    let svg = std::fs::read_to_string(&svg_path).unwrap();
    let (by_kind, wasted) = bars(&svg);
    assert_eq!(wasted, 1, "the failed attempt is faded");
    assert_eq!(by_kind[SEGMENT], 6 + 1, "six segments and the failed attempt");
    assert_eq!(by_kind[AGGREGATION] as u64, s["aggregations"]);
    // Its red outline (the legend's is a circle).
    let red = svg.lines().filter(|l| l.contains("<polyline") && l.contains("stroke=\"#D62728\"")).count();
    assert_eq!(red, 1);
    assert!(svg.contains("(1 wasted)"), "title counts it");
    let (_, pixmap) = render_png(&svg);
    assert!(has_pixel_of(&pixmap, "#D62728"), "the red outline is drawn");
}

#[test]
fn a_failed_job_is_drawn_too() {
    let dir = tempfile::tempdir().unwrap();
    let svg_path = dir.path().join("job.svg");
    // Segment 1 fails for good: the job fails, and its picture shows why.
    let workload = br#"{"tasks": 4, "cost": {"fixed": {"micros": 1000}},
        "fail": {"segments": [1], "mode": "permanent"}}"#;
    let out = common::leader_with(
        &["--plugin", "sim", "--lanes", "2", "stdio", "--timeline", svg_path.to_str().unwrap()],
        workload,
        &[],
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let svg = std::fs::read_to_string(&svg_path).unwrap();
    let (_, wasted) = bars(&svg);
    assert_eq!(wasted, 1, "the failing attempt is drawn wasted");
    assert!(svg.contains("(1 wasted)"), "title counts it");
    render_png(&svg);
}
