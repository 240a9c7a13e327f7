//! The timeline picture: where a job's time went, as SVG (`--timeline FILE.svg` of
//! `stdio`, `--timeline DIR` of `batch`, and the service's `timeline.svg`).
//!
//! One row per worker lane (in order of first use; wrap runs on the `leader` row, drawn
//! last), one bar per task attempt from its start to its end, coloured by kind
//! (segment, aggregation, wrap). Wasted attempts (failed, timed out, lost, duplicate)
//! are drawn faded with a red outline; the fold's critical path
//! ([`Timeline::critical_path`]) has a thick black outline. The time axis is in seconds
//! since the job started. The legend sits in a strip under the chart.
//!
//! What is drawn where is decided by the pure [`bars`]; plotters' SVG backend draws it.
//! Every attempt is exactly one `<rect>` filled with its kind's colour ([`KIND_COLOURS`],
//! opacity 1, or [`WASTED_OPACITY`] when wasted); the legend uses circles, so counting
//! those rects counts attempts.

use std::path::Path;

use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use proofline_runtime::leader::timeline::{SpanKind, Timeline};

use crate::Failure;

/// Fill of segment, aggregation and wrap bars, in that order (as the SVG writes them).
pub const KIND_COLOURS: [(&str, RGBColor); 3] = [
    ("segment", RGBColor(0x4E, 0x79, 0xA7)),
    ("aggregation", RGBColor(0xF2, 0x8E, 0x2B)),
    ("wrap", RGBColor(0x59, 0xA1, 0x4F)),
];
/// Opacity of a wasted attempt's bar (a done one is opaque).
pub const WASTED_OPACITY: f64 = 0.35;
const WASTED_OUTLINE: RGBColor = RGBColor(0xD6, 0x27, 0x28);

const WIDTH: u32 = 1200;
const ROW_PX: u32 = 26;
const LEGEND_PX: u32 = 40;

/// One attempt as drawn: its row, its time span in seconds, and how it is marked.
#[derive(Clone, Debug, PartialEq)]
pub struct Bar {
    pub row: usize,
    pub start: f64,
    pub end: f64,
    pub kind: SpanKind,
    pub wasted: bool,
    pub critical: bool,
}

/// The rows (lane names, `leader` last) and one bar per span of `timeline`.
pub fn bars(timeline: &Timeline) -> (Vec<String>, Vec<Bar>) {
    let mut rows: Vec<String> = timeline.lanes().into_iter().map(str::to_owned).collect();
    if let Some(i) = rows.iter().position(|r| r == "leader") {
        let leader = rows.remove(i);
        rows.push(leader);
    }
    let critical = timeline.critical_path();
    let bars = timeline
        .spans
        .iter()
        .enumerate()
        .map(|(i, s)| Bar {
            row: rows.iter().position(|r| *r == s.lane).expect("lanes() lists every span's lane"),
            start: s.start.as_secs_f64(),
            end: s.finish.as_secs_f64().max(s.start.as_secs_f64()),
            kind: s.kind,
            wasted: s.outcome.is_wasted(),
            critical: critical.contains(&i),
        })
        .collect();
    (rows, bars)
}

fn colour(kind: SpanKind) -> RGBColor {
    KIND_COLOURS[match kind {
        SpanKind::Segment => 0,
        SpanKind::Aggregate => 1,
        SpanKind::Wrap => 2,
    }]
    .1
}

/// The picture of `timeline` as an SVG document; `title` (e.g. the job id) heads it,
/// followed by the job's elapsed time and its count of attempts.
pub fn render_svg(timeline: &Timeline, title: &str) -> Result<String, Failure> {
    let (rows, bars) = bars(timeline);
    let wasted = bars.iter().filter(|b| b.wasted).count();
    let caption = format!(
        "{title}: {:.1} s, {} attempts ({wasted} wasted)",
        timeline.elapsed.as_secs_f64(),
        bars.len()
    );
    let mut svg = String::new();
    draw(&mut svg, &caption, &rows, &bars, timeline.elapsed.as_secs_f64())
        .map_err(|e| Failure::other(format!("drawing the timeline: {e}")))?;
    Ok(svg)
}

/// Draw `timeline` (of job `title`) into the SVG file `path`, atomically.
pub fn write_svg(timeline: &Timeline, title: &str, path: &Path) -> Result<(), Failure> {
    let svg = render_svg(timeline, title)?;
    proofline_runtime::store::write_durably(path, svg.as_bytes())
        .map_err(|e| Failure::other(format!("writing the timeline to {}: {e}", path.display())))
}

type DrawResult = Result<(), Box<dyn std::error::Error>>;

fn draw(svg: &mut String, caption: &str, rows: &[String], bars: &[Bar], elapsed: f64) -> DrawResult {
    let n = rows.len().max(1);
    let height = 110 + LEGEND_PX + ROW_PX * n as u32;
    let root = SVGBackend::with_string(svg, (WIDTH, height)).into_drawing_area();
    root.fill(&WHITE)?;
    let (chart_area, legend_area) = root.split_vertically(height - LEGEND_PX);

    let x_end = bars.iter().map(|b| b.end).fold(elapsed, f64::max).max(1e-3) * 1.01;
    let longest = rows.iter().map(|r| r.chars().count()).max().unwrap_or(6) as u32;
    let mut chart = ChartBuilder::on(&chart_area)
        .caption(caption, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(20 + 7 * longest.min(40))
        .build_cartesian_2d(0f64..x_end, Rows(n))?;
    let row_name = |y: &f64| {
        let r = (n as f64 - y).floor() as usize;
        rows.get(r).cloned().unwrap_or_default()
    };
    chart
        .configure_mesh()
        .disable_y_mesh()
        .x_labels(12)
        .x_max_light_lines(2)
        .x_desc("seconds since the job started")
        .y_desc("worker/lane")
        .y_label_formatter(&row_name)
        .x_label_formatter(&|x| format!("{x:.1}"))
        .draw()?;

    // A bar is at least a pixel wide, so a very short attempt still shows.
    let min_width = x_end / f64::from(WIDTH);
    let corners = |b: &Bar| {
        let top = n as f64 - b.row as f64 - 0.15;
        let bottom = n as f64 - b.row as f64 - 0.85;
        [(b.start, top), (b.end.max(b.start + min_width), bottom)]
    };
    chart.draw_series(bars.iter().map(|b| {
        let opacity = if b.wasted { WASTED_OPACITY } else { 1.0 };
        Rectangle::new(corners(b), colour(b.kind).mix(opacity).filled())
    }))?;
    let outline = |b: &Bar, style: ShapeStyle| {
        let [(x0, y0), (x1, y1)] = corners(b);
        PathElement::new(vec![(x0, y0), (x1, y0), (x1, y1), (x0, y1), (x0, y0)], style)
    };
    // A hairline between attempts that follow each other on a lane.
    chart.draw_series(bars.iter().filter(|b| !b.wasted).map(|b| outline(b, WHITE.stroke_width(1))))?;
    chart
        .draw_series(bars.iter().filter(|b| b.wasted).map(|b| outline(b, WASTED_OUTLINE.stroke_width(2))))?;
    chart.draw_series(bars.iter().filter(|b| b.critical).map(|b| outline(b, BLACK.stroke_width(3))))?;

    draw_legend(&legend_area)
}

/// The y axis: `n` rows, row `r` (from the top) centred at `n - r - 0.5`, with a
/// label at each centre.
struct Rows(usize);

impl Ranged for Rows {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        let share = value / self.0 as f64;
        limit.0 + (share * f64::from(limit.1 - limit.0)).round() as i32
    }

    fn key_points<Hint: KeyPointHint>(&self, _hint: Hint) -> Vec<f64> {
        (0..self.0).map(|r| self.0 as f64 - r as f64 - 0.5).collect()
    }

    fn range(&self) -> std::ops::Range<f64> {
        0.0..self.0 as f64
    }
}

/// The legend strip: a circle and a word per mark (circles, so no legend entry is
/// mistaken for an attempt's bar).
fn draw_legend(area: &DrawingArea<SVGBackend<'_>, plotters::coord::Shift>) -> DrawResult {
    let font = ("sans-serif", 14).into_font().color(&BLACK).pos(Pos::new(HPos::Left, VPos::Center));
    let y = 16;
    let mut x = 20;
    let label = |x: &mut i32, text: &str| -> DrawResult {
        area.draw(&Text::new(text.to_owned(), (*x + 12, y), font.clone()))?;
        *x += 12 + 7 * text.chars().count() as i32 + 28;
        Ok(())
    };
    for (name, colour) in KIND_COLOURS {
        area.draw(&Circle::new((x, y), 6, colour.filled()))?;
        label(&mut x, name)?;
    }
    area.draw(&Circle::new((x, y), 6, RGBColor(0x88, 0x88, 0x88).mix(WASTED_OPACITY).filled()))?;
    area.draw(&Circle::new((x, y), 6, WASTED_OUTLINE.stroke_width(2)))?;
    label(&mut x, "wasted attempt (failed, timed out, lost, duplicate)")?;
    area.draw(&Circle::new((x, y), 6, BLACK.stroke_width(3)))?;
    label(&mut x, "critical path of the fold")?;
    area.present()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use proofline_runtime::leader::timeline::{Span, SpanEnd};

    use super::*;

    fn span(task: &str, kind: SpanKind, range: (u32, u32), lane: &str, ms: (u64, u64), end: SpanEnd) -> Span {
        Span {
            task: task.into(),
            kind,
            first: range.0,
            end: range.1,
            attempt: 1,
            lane: lane.into(),
            start: Duration::from_millis(ms.0),
            finish: Duration::from_millis(ms.1),
            outcome: end,
        }
    }

    fn job() -> Timeline {
        use SpanEnd::*;
        use SpanKind::*;
        Timeline {
            spans: vec![
                span("seg-0", Segment, (0, 1), "w/0", (0, 10), Done),
                span("seg-1", Segment, (1, 2), "w/1", (0, 30), Failed),
                span("seg-1", Segment, (1, 2), "w/1", (30, 50), Done),
                span("agg-0-1", Aggregate, (0, 2), "w/0", (50, 60), Done),
                span("wrap", Wrap, (0, 2), "leader", (60, 70), Done),
            ],
            elapsed: Duration::from_millis(70),
        }
    }

    #[test]
    fn one_bar_per_attempt_on_its_lane_row_with_leader_last() {
        let (rows, bars) = bars(&job());
        assert_eq!(rows, ["w/0", "w/1", "leader"]);
        assert_eq!(bars.len(), 5);
        assert_eq!(bars.iter().map(|b| b.row).collect::<Vec<_>>(), [0, 1, 1, 0, 2]);
        assert_eq!(bars.iter().map(|b| b.wasted).collect::<Vec<_>>(), [false, true, false, false, false]);
        // wrap <- agg-0-1 <- seg-1 (the second attempt: it finished last).
        assert_eq!(bars.iter().map(|b| b.critical).collect::<Vec<_>>(), [false, false, true, true, true]);
        assert!((bars[2].start - 0.030).abs() < 1e-9 && (bars[2].end - 0.050).abs() < 1e-9);
    }

    #[test]
    fn the_svg_has_one_kind_coloured_rect_per_attempt_and_marks_the_wasted_one() {
        let svg = render_svg(&job(), "job-1-abcdef12").unwrap_or_else(|e| panic!("{}", e.message));
        assert!(svg.starts_with("<svg"), "{}", &svg[..80]);
        let fills = |hex: &str| svg.matches(&format!("fill=\"{hex}\"")).count();
        let rects: usize = svg
            .lines()
            .filter(|l| l.trim_start().starts_with("<rect"))
            .filter(|l| KIND_COLOURS.iter().any(|(_, c)| l.contains(&hex(*c))))
            .count();
        assert_eq!(rects, 5);
        let faded = svg.lines().filter(|l| l.contains(&format!("opacity=\"{WASTED_OPACITY}\""))).count();
        // One faded bar, plus the legend's faded circle.
        assert_eq!(faded, 2, "{svg}");
        assert!(fills(&hex(KIND_COLOURS[2].1)) >= 2, "wrap bar and its legend circle");
        assert!(svg.contains("job-1-abcdef12: 0.1 s, 5 attempts (1 wasted)"), "{svg}");
        let texts: Vec<&str> = svg.lines().map(str::trim).collect();
        assert!(texts.contains(&"w/1") && texts.contains(&"leader"), "lane labels: {svg}");
    }

    #[test]
    fn an_empty_timeline_still_draws() {
        let svg = render_svg(&Timeline::default(), "empty").unwrap_or_else(|e| panic!("{}", e.message));
        assert!(svg.contains("0 attempts"));
    }

    fn hex(c: RGBColor) -> String {
        format!("#{:02X}{:02X}{:02X}", c.0, c.1, c.2)
    }
}
