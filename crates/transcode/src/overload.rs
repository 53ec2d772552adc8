//! Overload shedding: when a stream's rungs fall behind, which rung to shed, and when to bring
//! one back. Decided without a clock or GStreamer: the feeder observes the stream about once a
//! second and carries out the [`Action`].
//!
//! - A stream is *behind* when a rung that is not shed makes media slower than
//!   `behind_below` times the rate its input arrives at (a publisher that sends slowly is not an
//!   overload), or when frames were dropped at its input since the last observation.
//! - Behind for `shed_after` sheds the first rung in shedding order that is not shed yet
//!   (lowest `shed_priority`, then the tallest), and the next one only after as long again.
//! - Not behind, with the process's CPU use below `restore_cpu_below`, for `restore_after`
//!   brings the last rung shed back. A rung that has to be shed again within
//!   [`BACKOFF_RESET`] of a comeback doubles that wait, up to [`MAX_BACKOFF`] times; a
//!   comeback that holds for [`BACKOFF_RESET`] resets it.

use std::time::{Duration, Instant};

use crate::config::Overload;

/// The longest the restore wait grows to, as a multiple of `restore_after`.
const MAX_BACKOFF: u32 = 8;
/// A comeback that holds this long resets the backoff.
const BACKOFF_RESET: Duration = Duration::from_secs(300);

/// Why a rung was shed (the `reason` label and the API's word).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShedReason {
    /// A rung made media slower than its input arrived.
    BehindRealtime,
    /// Frames were dropped at the stream's input: the pipeline could not take them.
    InputDropping,
    /// Asked for from outside (the test builds' fault hook).
    Forced,
}

impl ShedReason {
    /// Every reason, for zeroed counters.
    pub const ALL: [ShedReason; 3] = [
        ShedReason::BehindRealtime,
        ShedReason::InputDropping,
        ShedReason::Forced,
    ];

    /// The `reason` label.
    pub fn label(self) -> &'static str {
        match self {
            ShedReason::BehindRealtime => "behind_realtime",
            ShedReason::InputDropping => "input_dropping",
            ShedReason::Forced => "forced",
        }
    }
}

/// What the feeder should do now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Action {
    /// Shed the rung of this index.
    Shed(usize, ShedReason),
    /// Bring the rung of this index back.
    Restore(usize),
}

/// One look at the stream.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Observation {
    pub(crate) now: Instant,
    /// Why the stream is behind now, if it is.
    pub(crate) behind: Option<ShedReason>,
    /// The process's CPU use since the last look, as a share of the CPUs it may use; `None`
    /// where it cannot be read (a comeback then waits only for nothing to be behind).
    pub(crate) cpu_busy: Option<f64>,
}

/// One publish's shedding state.
#[derive(Debug)]
pub(crate) struct Policy {
    config: Overload,
    /// The rungs that may be shed, first to go first.
    order: Vec<usize>,
    /// Shed rungs, in the order they were shed.
    shed: Vec<usize>,
    behind_since: Option<Instant>,
    calm_since: Option<Instant>,
    last_action: Option<Instant>,
    last_restore: Option<Instant>,
    backoff: u32,
}

impl Policy {
    /// The policy of a stream whose sheddable rungs are `order`, first to go first.
    pub(crate) fn new(config: Overload, order: Vec<usize>) -> Policy {
        Policy {
            config,
            order,
            shed: Vec::new(),
            behind_since: None,
            calm_since: None,
            last_action: None,
            last_restore: None,
            backoff: 1,
        }
    }

    /// Whether a rung is shed now.
    pub(crate) fn is_shed(&self, rung: usize) -> bool {
        self.shed.contains(&rung)
    }

    /// A rung shed (or brought back) from outside the policy; it comes back like any other.
    pub(crate) fn force(&mut self, rung: usize, shed: bool, now: Instant) {
        self.shed.retain(|r| *r != rung);
        if shed {
            self.shed.push(rung);
        }
        self.last_action = Some(now);
        self.behind_since = None;
        self.calm_since = None;
    }

    /// The restore wait now.
    pub(crate) fn restore_wait(&self) -> Duration {
        self.config.restore_after * self.backoff
    }

    /// Takes one observation; says what to do, if anything.
    pub(crate) fn observe(&mut self, o: Observation) -> Option<Action> {
        if !self.config.shed {
            return None;
        }
        let now = o.now;
        let since = |t: Option<Instant>| t.map(|t| now.saturating_duration_since(t));
        if self.backoff > 1
            && self.last_restore.is_some()
            && self.last_action == self.last_restore
            && since(self.last_restore).is_some_and(|d| d >= BACKOFF_RESET)
        {
            self.backoff = 1;
        }
        match o.behind {
            Some(reason) => {
                self.calm_since = None;
                let behind_for =
                    now.saturating_duration_since(*self.behind_since.get_or_insert(now));
                let settled = since(self.last_action).is_none_or(|d| d >= self.config.shed_after);
                if behind_for < self.config.shed_after || !settled {
                    return None;
                }
                let next = *self.order.iter().find(|i| !self.shed.contains(i))?;
                if since(self.last_restore).is_some_and(|d| d < BACKOFF_RESET)
                    && self.last_action == self.last_restore
                {
                    self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
                }
                self.shed.push(next);
                // The next one needs as long again behind, counted from now.
                self.behind_since = Some(now);
                self.last_action = Some(now);
                Some(Action::Shed(next, reason))
            }
            None => {
                self.behind_since = None;
                if self.shed.is_empty() {
                    return None;
                }
                if o.cpu_busy
                    .is_some_and(|b| b >= self.config.restore_cpu_below)
                {
                    self.calm_since = None;
                    return None;
                }
                let calm_for = now.saturating_duration_since(*self.calm_since.get_or_insert(now));
                let wait = self.restore_wait();
                if calm_for < wait || since(self.last_action).is_some_and(|d| d < wait) {
                    return None;
                }
                let rung = self.shed.pop()?;
                self.calm_since = Some(now);
                self.last_action = Some(now);
                self.last_restore = Some(now);
                Some(Action::Restore(rung))
            }
        }
    }
}

/// The shedding order of a ladder's sheddable rungs, given as (index, `shed_priority`, height):
/// lowest priority first, then the tallest.
pub(crate) fn shedding_order(mut rungs: Vec<(usize, u32, u32)>) -> Vec<usize> {
    rungs.sort_by_key(|&(i, priority, height)| (priority, std::cmp::Reverse(height), i));
    rungs.into_iter().map(|(i, _, _)| i).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> Overload {
        Overload {
            shed: true,
            behind_below: 0.9,
            shed_after: Duration::from_secs(10),
            restore_cpu_below: 0.6,
            restore_after: Duration::from_secs(30),
        }
    }

    /// Feeds one observation a second from `t` for `secs` seconds; returns the actions with the
    /// second they came at.
    fn run(
        p: &mut Policy,
        t0: Instant,
        from: u64,
        secs: u64,
        behind: Option<ShedReason>,
        cpu: f64,
    ) -> Vec<(u64, Action)> {
        (from..from + secs)
            .filter_map(|s| {
                p.observe(Observation {
                    now: t0 + Duration::from_secs(s),
                    behind,
                    cpu_busy: Some(cpu),
                })
                .map(|a| (s, a))
            })
            .collect()
    }

    #[test]
    fn sheds_one_rung_per_period_behind_in_order_and_never_more_than_it_may() {
        let t0 = Instant::now();
        let mut p = Policy::new(config(), vec![1, 3, 2]);
        let behind = Some(ShedReason::BehindRealtime);
        // A short dip sheds nothing.
        assert!(run(&mut p, t0, 0, 9, behind, 1.0).is_empty());
        assert!(run(&mut p, t0, 9, 1, None, 1.0).is_empty());
        let actions = run(&mut p, t0, 10, 60, behind, 1.0);
        assert_eq!(
            actions,
            [
                (20, Action::Shed(1, ShedReason::BehindRealtime)),
                (30, Action::Shed(3, ShedReason::BehindRealtime)),
                (40, Action::Shed(2, ShedReason::BehindRealtime)),
            ],
            "one per 10 s behind, in order, then nothing is left to shed"
        );
        assert!(p.is_shed(1) && p.is_shed(2) && p.is_shed(3));
    }

    #[test]
    fn brings_rungs_back_with_hysteresis_and_backs_off_when_they_fall_behind_again() {
        let t0 = Instant::now();
        let mut p = Policy::new(config(), vec![1, 2]);
        let behind = Some(ShedReason::InputDropping);
        assert_eq!(
            run(&mut p, t0, 0, 21, behind, 1.0),
            [
                (10, Action::Shed(1, ShedReason::InputDropping)),
                (20, Action::Shed(2, ShedReason::InputDropping))
            ]
        );
        // Busy CPU: nothing comes back, however long.
        assert!(run(&mut p, t0, 21, 100, None, 0.8).is_empty());
        // Headroom: the last shed comes back after 30 s, the next 30 s later.
        assert_eq!(
            run(&mut p, t0, 121, 61, None, 0.3),
            [(151, Action::Restore(2)), (181, Action::Restore(1))]
        );
        // It falls behind again at once: shed again, and the next comeback waits twice as long.
        assert_eq!(
            run(&mut p, t0, 182, 11, behind, 1.0),
            [(192, Action::Shed(1, ShedReason::InputDropping))]
        );
        assert_eq!(p.restore_wait(), Duration::from_secs(60));
        assert_eq!(
            run(&mut p, t0, 193, 61, None, 0.3),
            [(253, Action::Restore(1))]
        );
        // That comeback holds for five minutes: the wait is back to 30 s.
        assert!(run(&mut p, t0, 254, 300, None, 0.3).is_empty());
        assert_eq!(p.restore_wait(), Duration::from_secs(30));
    }

    #[test]
    fn off_means_never() {
        let t0 = Instant::now();
        let mut p = Policy::new(
            Overload {
                shed: false,
                ..config()
            },
            vec![1],
        );
        assert!(run(&mut p, t0, 0, 100, Some(ShedReason::BehindRealtime), 1.0).is_empty());
    }

    #[test]
    fn order_is_priority_then_tallest() {
        assert_eq!(
            shedding_order(vec![(1, 0, 720), (2, 0, 480), (3, 0, 360)]),
            [1, 2, 3]
        );
        assert_eq!(
            shedding_order(vec![(1, 5, 720), (2, 0, 480), (3, 0, 360)]),
            [2, 3, 1]
        );
    }
}
