//! The fixed timestep of a ticking shard: when each tick is due, and how
//! many are owed at a (possibly late) wake.
//!
//! Tick slots are counted from an epoch, so rounding to whole
//! milliseconds never accumulates: slot `n` is due at
//! `epoch + floor(n * 1000 / hz)`.
//!
//! ```
//! use pylon_workers::sim::Schedule;
//! let mut s = Schedule::start(60, 0);
//! assert_eq!(s.due_ms(), 16);
//! assert_eq!(s.take_due(16), 1);
//! assert_eq!(s.due_ms(), 33);
//! assert_eq!(s.take_due(100), 5); // slots at 33, 50, 66, 83, 100
//! assert_eq!(s.due_ms(), 116);
//! ```

/// When the ticks of one running stretch are due.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Schedule {
    hz: u32,
    epoch_ms: i64,
    /// The next slot not yet taken.
    slot: u64,
}

impl Schedule {
    /// Ticking starts now: the first tick is due one period from now.
    pub fn start(hz: u32, now_ms: i64) -> Schedule {
        Schedule {
            hz: hz.max(1),
            epoch_ms: now_ms,
            slot: 1,
        }
    }

    /// Ticking goes on after a wake, with the next tick due at `due_ms`
    /// (the time its timer was set for).
    pub fn resume(hz: u32, due_ms: i64) -> Schedule {
        Schedule {
            hz: hz.max(1),
            epoch_ms: due_ms,
            slot: 0,
        }
    }

    /// When the next tick is due.
    pub fn due_ms(&self) -> i64 {
        let offset = u128::from(self.slot) * 1000 / u128::from(self.hz);
        self.epoch_ms
            .saturating_add(i64::try_from(offset).unwrap_or(i64::MAX))
    }

    /// The number of ticks due by `now_ms` (0 if none), marked taken.
    pub fn take_due(&mut self, now_ms: i64) -> u64 {
        if now_ms < self.epoch_ms {
            return 0;
        }
        // The last slot n with floor(n * 1000 / hz) <= now - epoch.
        let elapsed = u128::try_from(now_ms - self.epoch_ms).unwrap_or(0);
        let last = ((elapsed + 1) * u128::from(self.hz) - 1) / 1000;
        let last = u64::try_from(last).unwrap_or(u64::MAX);
        if last < self.slot {
            return 0;
        }
        let owed = last - self.slot + 1;
        self.slot = last + 1;
        owed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_punctual_wake_owes_one_tick_and_rates_hold_over_a_second() {
        for hz in [1, 20, 30, 60, 144] {
            let mut s = Schedule::start(hz, 1_000);
            let mut ticks = 0;
            while s.due_ms() <= 2_000 {
                let at = s.due_ms();
                assert_eq!(s.take_due(at), 1, "{hz} Hz at {at}");
                ticks += 1;
            }
            assert_eq!(ticks, hz, "{hz} Hz");
        }
    }

    #[test]
    fn early_and_resumed_wakes() {
        let mut s = Schedule::resume(20, 500);
        assert_eq!(s.take_due(499), 0);
        assert_eq!(s.take_due(500), 1);
        assert_eq!(s.due_ms(), 550);
        assert_eq!(s.take_due(1_000), 10);
        assert_eq!(s.due_ms(), 1_050);
    }
}
