//! Progress on stderr: a live bar on a terminal, log lines otherwise.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use proofline_runtime::leader::Progress;
use tokio::sync::watch;

/// Seconds between progress log lines when stderr is not a terminal.
const LOG_EVERY: Duration = Duration::from_secs(2);

/// Render progress until the sender side is dropped.
pub async fn render(mut rx: watch::Receiver<Progress>) {
    let bar = std::io::stderr().is_terminal().then(|| {
        let bar = ProgressBar::new(1);
        bar.set_style(
            ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:30} {msg}")
                .expect("valid template"),
        );
        bar.enable_steady_tick(Duration::from_millis(200));
        bar
    });
    let mut last_log = Instant::now();
    while rx.changed().await.is_ok() {
        let p = rx.borrow_and_update().clone();
        let line = describe(&p);
        match &bar {
            Some(bar) => {
                bar.set_length(u64::from(p.segments_total + p.aggregations_total).max(1));
                bar.set_position(u64::from(p.segments_done + p.aggregations_done));
                bar.set_message(line);
            }
            None if last_log.elapsed() >= LOG_EVERY => {
                last_log = Instant::now();
                tracing::info!("progress: {line}");
            }
            None => {}
        }
    }
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
}

/// `segments 3/8, aggregations 1/7, depth 1, elapsed 4.2s, ETA 6.1s`
pub fn describe(p: &Progress) -> String {
    let eta = eta(p).map(|d| format!(", ETA {:.1}s", d.as_secs_f64())).unwrap_or_default();
    format!(
        "segments {}/{}, aggregations {}/{}, depth {}, elapsed {:.1}s{eta}",
        p.segments_done,
        p.segments_total,
        p.aggregations_done,
        p.aggregations_total,
        p.depth,
        p.elapsed.as_secs_f64()
    )
}

/// Remaining time, assuming the rest proceeds at the rate of the work done so far.
fn eta(p: &Progress) -> Option<Duration> {
    let done = p.cost_done as f64;
    let total = p.cost_total as f64;
    if done <= 0.0 || total <= 0.0 {
        return None;
    }
    let fraction = done / total;
    Some(p.elapsed.mul_f64((1.0 - fraction) / fraction))
}
