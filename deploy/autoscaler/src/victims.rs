//! Which workers may go when a pool shrinks: never one that holds work.
//!
//! Each worker's state comes from its own `/metrics` (tasks held). A pool is lowered
//! only by as many workers as hold nothing (not started yet, or idle); the kube
//! backend ranks pods with `controller.kubernetes.io/pod-deletion-cost` from
//! [`deletion_cost`] so the ReplicaSet removes exactly those, the local backend stops
//! them itself ([`pick`]). A worker that takes a task between the scrape and its
//! SIGTERM hands unstarted tasks back and finishes running ones within its grace.

/// What a worker was doing at the last look.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Load {
    /// Not running yet (pod pending or starting, process not ready): holds nothing.
    Starting,
    /// Holds no task.
    Idle,
    /// Holds this many tasks (queued on lanes or running).
    Busy(u32),
    /// Running, but its metrics could not be read: treated as busy.
    Unknown,
}

impl Load {
    pub fn from_held(held: u32) -> Self {
        if held == 0 { Self::Idle } else { Self::Busy(held) }
    }

    pub fn holds_nothing(self) -> bool {
        matches!(self, Self::Starting | Self::Idle)
    }
}

/// `controller.kubernetes.io/pod-deletion-cost` for a worker: the ReplicaSet removes
/// the lowest first. Idle 0, unknown 1,000, busy 10,000 plus what it holds.
pub fn deletion_cost(load: Load) -> i32 {
    match load {
        Load::Starting | Load::Idle => 0,
        Load::Unknown => 1_000,
        Load::Busy(held) => 10_000i32.saturating_add(held.min(1_000_000) as i32),
    }
}

/// The lowest replica count reachable from `current` toward `wanted` without removing
/// a worker that holds work: `wanted` when raising, else at most `current` minus the
/// workers that hold nothing.
pub fn safe_target(current: u32, wanted: u32, loads: &[Load]) -> u32 {
    if wanted >= current {
        return wanted;
    }
    let free = loads.iter().filter(|l| l.holds_nothing()).count() as u32;
    wanted.max(current.saturating_sub(free))
}

/// The indices of `count` workers to stop, cheapest first (starting before idle);
/// fewer when fewer hold nothing.
pub fn pick(loads: &[Load], count: usize) -> Vec<usize> {
    let mut free: Vec<usize> = (0..loads.len()).filter(|&i| loads[i].holds_nothing()).collect();
    free.sort_by_key(|&i| (loads[i] != Load::Starting, i));
    free.truncate(count);
    free
}

#[cfg(test)]
mod tests {
    use super::*;
    use Load::*;

    #[test]
    fn shrinking_stops_at_the_busy_workers() {
        let loads = [Busy(2), Idle, Busy(1), Starting, Unknown];
        assert_eq!(safe_target(5, 1, &loads), 3, "only the idle and the starting one may go");
        assert_eq!(safe_target(5, 4, &loads), 4);
        assert_eq!(safe_target(5, 8, &loads), 8, "growing is never held back");
        assert_eq!(safe_target(2, 0, &[Busy(1), Busy(3)]), 2);
        assert_eq!(safe_target(2, 0, &[Idle, Idle]), 0);
    }

    #[test]
    fn idle_pods_are_the_cheapest_to_delete() {
        let costs: Vec<i32> = [Idle, Starting, Unknown, Busy(1), Busy(5)].map(deletion_cost).to_vec();
        assert!(costs[0] == 0 && costs[1] == 0 && costs[2] > 0);
        assert!(costs[3] > costs[2] && costs[4] > costs[3], "{costs:?}");
        assert_eq!(deletion_cost(Busy(u32::MAX)), 10_000 + 1_000_000);
    }

    #[test]
    fn victims_are_starting_then_idle_never_busy() {
        let loads = [Idle, Busy(1), Starting, Idle, Unknown];
        assert_eq!(pick(&loads, 2), vec![2, 0]);
        assert_eq!(pick(&loads, 9), vec![2, 0, 3]);
        assert!(pick(&[Busy(1), Unknown], 2).is_empty());
    }
}
