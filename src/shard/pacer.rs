//! When a busy shard may flush next: after the time the last flush's
//! frames (diffs and acks) take at the fan-out budget.
//!
//! A flush to 100 subscribers is 100 socket sends. A shard that flushes
//! more frames than its sockets carry falls behind on all of them at once
//! and its write rate collapses (docs/benchmarks.md, "Flushes paced by
//! their frames"); fewer, larger diffs keep it ahead. The wait is counted
//! from when the last flush actually ran, so a shard whose events run late
//! (an overloaded thread) slows its flushes further instead of catching
//! up. A budget kept on average (a token bucket, with bursts to catch up)
//! was measured too and fell back into the collapse.
//!
//! ```
//! use pylon_workers::shard::{FlushPacer, ShardConfig};
//!
//! // 1,000 frames a second: a flush of 21 frames takes 21 ms of it.
//! let config = ShardConfig { flush_frames_per_sec: 1_000, ..ShardConfig::default() };
//! let mut p = FlushPacer::new(&config);
//! assert_eq!(p.next_at(0), 0); // never flushed: at once
//! p.flushed(0, 21);
//! assert_eq!(p.next_at(0), 21);
//! assert_eq!(p.next_at(30), 30); // idle since: at once
//! p.flushed(30, 1);
//! assert_eq!(p.next_at(30), 34); // one frame: the least gap
//! ```

use super::config::{ShardConfig, MAX_FLUSH_GAP_MS};

/// Paces one shard's flushes (see the module docs).
#[derive(Clone, Debug)]
pub struct FlushPacer {
    least_gap_ms: i64,
    frames_per_sec: u64,
    /// When the next flush may run, ms: set by the last flush.
    next_ms: Option<i64>,
}

impl FlushPacer {
    pub fn new(config: &ShardConfig) -> Self {
        FlushPacer {
            least_gap_ms: i64::from(config.flush_gap_ms),
            frames_per_sec: u64::from(config.flush_frames_per_sec.max(1)),
            next_ms: None,
        }
    }

    /// Notes a flush at `now_ms` that sent `frames` frames: the next waits
    /// the time they take at the budget, at least the least gap and at
    /// most [`MAX_FLUSH_GAP_MS`] (or the least gap, if set above it).
    pub fn flushed(&mut self, now_ms: i64, frames: usize) {
        let by_frames = (frames as u64)
            .saturating_mul(1000)
            .div_ceil(self.frames_per_sec);
        let by_frames = i64::try_from(by_frames).unwrap_or(i64::MAX);
        let gap = by_frames.clamp(self.least_gap_ms, MAX_FLUSH_GAP_MS.max(self.least_gap_ms));
        self.next_ms = Some(now_ms.saturating_add(gap));
    }

    /// When the next flush may run: `now_ms`, or later while the last
    /// flush's wait lasts.
    pub fn next_at(&self, now_ms: i64) -> i64 {
        self.next_ms.map_or(now_ms, |at| at.max(now_ms))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pacer(frames_per_sec: u32, least: u32) -> FlushPacer {
        FlushPacer::new(&ShardConfig {
            flush_frames_per_sec: frames_per_sec,
            flush_gap_ms: least,
            ..ShardConfig::default()
        })
    }

    fn wait_after(p: &mut FlushPacer, frames: usize) -> i64 {
        p.flushed(1_000, frames);
        p.next_at(1_000) - 1_000
    }

    #[test]
    fn the_wait_grows_with_the_frames_sent() {
        // 10,000 frames a second: 100 members and 16 acks are 11.6 ms.
        let mut p = pacer(10_000, 4);
        assert_eq!(wait_after(&mut p, 0), 4);
        assert_eq!(wait_after(&mut p, 40), 4);
        assert_eq!(wait_after(&mut p, 41), 5);
        assert_eq!(wait_after(&mut p, 116), 12);
        assert_eq!(wait_after(&mut p, 999), MAX_FLUSH_GAP_MS);
        assert_eq!(wait_after(&mut p, usize::MAX), MAX_FLUSH_GAP_MS);
        // A least gap set above the cap wins over it; a huge budget leaves
        // only the least gap.
        assert_eq!(wait_after(&mut pacer(10_000, 80), 10_000), 80);
        assert_eq!(wait_after(&mut pacer(u32::MAX, 4), 999), 4);
    }

    #[test]
    fn the_wait_counts_from_when_the_flush_ran() {
        let mut p = pacer(10_000, 4);
        assert_eq!(p.next_at(7), 7, "never flushed");
        p.flushed(100, 116);
        assert_eq!(p.next_at(100), 112);
        // A flush that ran late (its event came at 130) is not made up
        // for: the next still waits its full time after it.
        p.flushed(130, 116);
        assert_eq!(p.next_at(131), 142);
        assert_eq!(p.next_at(500), 500, "idle since: at once");
    }
}
