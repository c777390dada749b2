//! When a busy shard may flush next: the frames its flushes send (diffs and
//! acks) paced to a budget per second.
//!
//! A flush to 100 subscribers is 100 socket sends. A shard that flushes
//! more frames than its sockets carry falls behind on all of them at once
//! and its write rate collapses (docs/benchmarks.md, "Flushes paced by
//! their frames"); fewer, larger diffs keep it ahead. The pacer is a
//! virtual clock (the generic cell rate algorithm): each flush moves it on
//! by the time its frames take at the budget, and a flush may run while
//! the clock is at most [`BURST_MS`] ahead of real time. So a shard whose
//! frames stay under the budget on average never waits longer than the
//! least gap, and a busy one settles at one flush per its frames' time.
//!
//! ```
//! use pylon_workers::shard::{FlushPacer, ShardConfig};
//!
//! // 1,000 frames a second: a flush of 40 frames takes 40 ms of it.
//! let config = ShardConfig { flush_frames_per_sec: 1_000, ..ShardConfig::default() };
//! let mut p = FlushPacer::new(&config);
//! assert_eq!(p.next_at(0), 0); // never flushed: at once
//! p.flushed(0, 40);
//! assert_eq!(p.next_at(0), 4); // within the burst: the least gap
//! p.flushed(4, 40);
//! assert_eq!(p.next_at(4), 30); // the clock is at 80, 50 of it a burst
//! p.flushed(30, 40);
//! assert_eq!(p.next_at(30), 70); // then one flush per 40 ms
//! ```

use super::config::{ShardConfig, MAX_FLUSH_GAP_MS};

/// How far the pacer's clock may run ahead of real time before a flush
/// waits, ms: an idle shard's burst.
pub const BURST_MS: i64 = 50;

/// Paces one shard's flushes (see the module docs).
#[derive(Clone, Debug)]
pub struct FlushPacer {
    least_gap_ms: i64,
    frames_per_sec: u64,
    /// When the last flush ran, ms.
    flushed_ms: Option<i64>,
    /// The virtual clock: when the frames sent so far are paid for, µs.
    paid_us: i64,
}

impl FlushPacer {
    pub fn new(config: &ShardConfig) -> Self {
        FlushPacer {
            least_gap_ms: i64::from(config.flush_gap_ms),
            frames_per_sec: u64::from(config.flush_frames_per_sec.max(1)),
            flushed_ms: None,
            paid_us: i64::MIN / 2,
        }
    }

    /// Notes a flush at `now_ms` that sent `frames` frames. One flush is
    /// charged at most [`MAX_FLUSH_GAP_MS`], so a room of any size gets a
    /// flush at least that often.
    pub fn flushed(&mut self, now_ms: i64, frames: usize) {
        let cost_us = (frames as u64)
            .saturating_mul(1_000_000)
            .div_ceil(self.frames_per_sec)
            .min(MAX_FLUSH_GAP_MS as u64 * 1000) as i64;
        self.paid_us = self.paid_us.max(now_ms.saturating_mul(1000)) + cost_us;
        self.flushed_ms = Some(now_ms);
    }

    /// When the next flush may run: not before `now_ms`, the least gap
    /// after the last flush, or the time the clock is within the burst.
    pub fn next_at(&self, now_ms: i64) -> i64 {
        let Some(last) = self.flushed_ms else {
            return now_ms;
        };
        let paid_ms = (self.paid_us - BURST_MS * 1000 + 999).div_euclid(1000);
        (last + self.least_gap_ms).max(paid_ms).max(now_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pacer(frames_per_sec: u32) -> FlushPacer {
        FlushPacer::new(&ShardConfig {
            flush_frames_per_sec: frames_per_sec,
            ..ShardConfig::default()
        })
    }

    /// Flushes as early as allowed from `t`, each sending `frames`; their
    /// times.
    fn busy(p: &mut FlushPacer, mut t: i64, frames: usize, n: usize) -> Vec<i64> {
        let mut at = Vec::new();
        for _ in 0..n {
            t = p.next_at(t);
            p.flushed(t, frames);
            at.push(t);
        }
        at
    }

    #[test]
    fn frames_under_the_budget_wait_only_the_least_gap() {
        // A writer to 100 subscribers every 13 ms: 7,800 frames a second.
        let mut p = pacer(10_000);
        for i in 0..200 {
            let t = i * 13;
            assert_eq!(p.next_at(t), t, "write {i}");
            p.flushed(t, 101);
        }
        // Writes closer than the least gap still wait for it.
        assert_eq!(p.next_at(200 * 13 - 13 + 1), 200 * 13 - 13 + 4);
    }

    #[test]
    fn a_busy_shard_settles_at_its_frames_time() {
        // 116 frames (100 diffs, 16 acks) at 10,000 a second: 11.6 ms.
        let mut p = pacer(10_000);
        let at = busy(&mut p, 0, 116, 200);
        // A burst at the least gap first, then the budget's pace.
        assert_eq!(&at[..3], &[0, 4, 8]);
        let tail: Vec<i64> = at[150..].windows(2).map(|w| w[1] - w[0]).collect();
        assert!(tail.iter().all(|d| (11..=12).contains(d)), "{tail:?}");
        let span = (at[199] - at[100]) as f64 / 99.0;
        assert!((span - 11.6).abs() < 0.05, "{span}");
    }

    #[test]
    fn one_flush_is_charged_at_most_the_longest_gap() {
        // 1,000 subscribers at 10,000 a second would be 100 ms each.
        let mut p = pacer(10_000);
        let at = busy(&mut p, 0, 1_000, 50);
        let tail: Vec<i64> = at[10..].windows(2).map(|w| w[1] - w[0]).collect();
        assert!(tail.iter().all(|d| *d == MAX_FLUSH_GAP_MS), "{tail:?}");
        assert_eq!(pacer(1).next_at(7), 7, "never flushed");
        // Charged 50 ms, all of it within the burst: only the least gap.
        let mut p = pacer(1);
        p.flushed(0, usize::MAX);
        assert_eq!(p.next_at(0), 4);
    }

    #[test]
    fn an_idle_spell_pays_the_debt_but_earns_no_more_than_a_burst() {
        let mut p = pacer(10_000);
        busy(&mut p, 0, 116, 100);
        // A second later everything is paid: the next flush is at once,
        // and the burst after it is the same as a fresh shard's.
        let t = 10_000;
        assert_eq!(p.next_at(t), t);
        let at = busy(&mut p, t, 116, 20);
        let mut fresh = pacer(10_000);
        let want: Vec<i64> = busy(&mut fresh, 0, 116, 20)
            .into_iter()
            .map(|x| x + t)
            .collect();
        assert_eq!(at, want);
    }
}
