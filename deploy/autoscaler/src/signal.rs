//! The figures the autoscaler reads from Prometheus expositions: the leaders' outstanding
//! cost (queued at the leader and out with workers, so work that busy workers hold
//! counts, unlike a broker's ready count) and each worker's held tasks.

use thiserror::Error;

/// Leader gauge: estimated cost of outstanding tasks, by state (ready, dispatched).
pub const OUTSTANDING_COST: &str = "proofline_outstanding_cost";
/// Worker gauge: tasks received and not yet finished (queued on lanes or running).
pub const TASKS_HELD: &str = "proofline_worker_tasks_held";

#[derive(Debug, Error, PartialEq)]
pub enum SignalError {
    #[error("no `{0}` series in the exposition (is this a Proofline leader's or worker's /metrics?)")]
    Missing(&'static str),
    #[error("`{series}` has the value `{value}`, not a finite number >= 0")]
    BadValue { series: &'static str, value: String },
}

/// One sample line: `name{labels} value [timestamp]`.
#[derive(Debug, PartialEq)]
struct Sample<'a> {
    name: &'a str,
    labels: &'a str,
    value: &'a str,
}

fn samples(text: &str) -> impl Iterator<Item = Sample<'_>> {
    text.lines().filter_map(|line| {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            return None;
        }
        let (series, rest) = match line.find('{') {
            Some(open) => {
                let close = open + line[open..].find('}')?;
                (&line[..close + 1], &line[close + 1..])
            }
            None => line.split_at(line.find(char::is_whitespace)?),
        };
        let (name, labels) = match series.find('{') {
            Some(open) => (&series[..open], &series[open + 1..series.len() - 1]),
            None => (series, ""),
        };
        let value = rest.split_whitespace().next()?;
        Some(Sample { name, labels, value })
    })
}

/// Sum of every series of `metric`; an error if there is none or one is not a
/// non-negative number.
fn sum(text: &str, metric: &'static str) -> Result<f64, SignalError> {
    let mut found = false;
    let mut total = 0.0;
    for s in samples(text).filter(|s| s.name == metric) {
        let v: f64 = s.value.parse().map_err(|_| bad(metric, s.value))?;
        if !v.is_finite() || v < 0.0 {
            return Err(bad(metric, s.value));
        }
        found = true;
        total += v;
    }
    found.then_some(total).ok_or(SignalError::Missing(metric))
}

fn bad(series: &'static str, value: &str) -> SignalError {
    SignalError::BadValue { series, value: value.to_owned() }
}

/// A leader's outstanding cost: ready plus dispatched.
pub fn outstanding_cost(leader_metrics: &str) -> Result<f64, SignalError> {
    sum(leader_metrics, OUTSTANDING_COST)
}

/// A worker's held tasks.
pub fn tasks_held(worker_metrics: &str) -> Result<u32, SignalError> {
    sum(worker_metrics, TASKS_HELD).map(|v| v.round() as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LEADER: &str = r#"# HELP proofline_outstanding_cost Estimated cost
# TYPE proofline_outstanding_cost gauge
proofline_outstanding_cost{state="ready"} 120.5
proofline_outstanding_cost{state="dispatched"} 30
proofline_outstanding_tasks{state="ready"} 7
proofline_outstanding_cost_other 99
"#;

    #[test]
    fn the_leader_cost_is_ready_plus_dispatched() {
        assert_eq!(outstanding_cost(LEADER), Ok(150.5));
    }

    #[test]
    fn a_worker_reports_its_held_tasks() {
        let text = "# TYPE proofline_worker_tasks_held gauge\nproofline_worker_tasks_held 3 1700000000\n";
        assert_eq!(tasks_held(text), Ok(3));
    }

    #[test]
    fn a_wrong_endpoint_is_an_error_not_zero_work() {
        assert_eq!(outstanding_cost("up 1\n"), Err(SignalError::Missing(OUTSTANDING_COST)));
        assert_eq!(tasks_held(""), Err(SignalError::Missing(TASKS_HELD)));
    }

    #[test]
    fn negative_or_garbage_values_are_errors() {
        for value in ["-1", "NaN", "x", "+Inf"] {
            let text = format!("proofline_outstanding_cost{{state=\"ready\"}} {value}\n");
            assert!(matches!(outstanding_cost(&text), Err(SignalError::BadValue { .. })), "{value}");
        }
    }

    #[test]
    fn label_values_with_spaces_do_not_confuse_the_parser() {
        let text = "proofline_outstanding_cost{state=\"ready\",note=\"a b\"} 2\n";
        assert_eq!(outstanding_cost(text), Ok(2.0));
    }
}
