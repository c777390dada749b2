//! Reconnect delays and random ids, without a random-number crate.

use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Jittered exponential backoff for reconnecting.
///
/// The delay before attempt `n` (counting from 0) is drawn uniformly from
/// `[d/2, d]` where `d = min(max, initial * factor^n)` ("equal jitter": never
/// zero, never in lockstep with other clients). The attempt count resets when
/// a connection reaches LIVE (a `welcome` arrives).
#[derive(Clone, Debug, PartialEq)]
pub struct Backoff {
    /// The upper bound of the first delay. Default 250 ms.
    pub initial: Duration,
    /// The cap on the upper bound. Default 10 s.
    pub max: Duration,
    /// Growth per failed attempt. Default 2.
    pub factor: f64,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            initial: Duration::from_millis(250),
            max: Duration::from_secs(10),
            factor: 2.0,
        }
    }
}

impl Backoff {
    /// The delay before attempt `attempt` (0 = first retry).
    pub fn delay(&self, attempt: u32) -> Duration {
        let exp = self.factor.max(1.0).powi(attempt.min(64) as i32);
        let cap = self.initial.as_secs_f64() * exp;
        let cap = cap.min(self.max.as_secs_f64()).max(0.0);
        let unit = (random_u64() >> 11) as f64 / (1u64 << 53) as f64; // [0, 1)
        Duration::from_secs_f64(cap / 2.0 + cap / 2.0 * unit)
    }
}

/// 64 unpredictable bits: SipHash, keyed randomly per process by the
/// standard library, of a process-wide counter and the clock.
pub(crate) fn random_u64() -> u64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    static KEYS: std::sync::OnceLock<RandomState> = std::sync::OnceLock::new();
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    KEYS.get_or_init(RandomState::new)
        .hash_one((n, nanos, std::process::id()))
}

/// A fresh mutation op id: 128 random bits in UUID v4 form
/// (`9b2e6c1e-4a57-4d0c-b5e3-1f0c7f0a9d21`), as docs/protocol.md asks.
pub fn new_op_id() -> String {
    let (a, b) = (random_u64(), random_u64());
    let a = (a & !0xF000) | 0x4000; // version 4
    let b = (b & !(0xC << 60)) | (0x8 << 60); // variant 10xx
    format!(
        "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xFFFF,
        a & 0xFFFF,
        b >> 48,
        b & 0xFFFF_FFFF_FFFF
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_with_jitter_and_stay_capped() {
        let b = Backoff {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(1),
            factor: 2.0,
        };
        for attempt in 0..20 {
            let cap = (100.0 * 2f64.powi(attempt as i32)).min(1000.0);
            let d = b.delay(attempt).as_secs_f64() * 1000.0;
            assert!(
                d >= cap / 2.0 - 1e-6 && d <= cap + 1e-6,
                "attempt {attempt}: {d} ms, cap {cap}"
            );
        }
        let samples: std::collections::HashSet<Duration> = (0..50).map(|_| b.delay(3)).collect();
        assert!(samples.len() > 40, "delays are jittered");
    }

    #[test]
    fn op_ids_are_uuid_v4_and_unique() {
        let ids: std::collections::HashSet<String> = (0..10_000).map(|_| new_op_id()).collect();
        assert_eq!(ids.len(), 10_000);
        let id = new_op_id();
        assert_eq!(id.len(), 36);
        assert_eq!(&id[14..15], "4");
        assert!(matches!(&id[19..20], "8" | "9" | "a" | "b"), "{id}");
    }
}
