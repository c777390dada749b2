//! The random numbers a simulation may use: a small generator the engine
//! seeds per tick and per input, from the shard's name, so a replay draws
//! the same numbers (docs/sims.md, "Determinism").
//!
//! ```
//! use pylon_workers::sim::SimRng;
//! let mut a = SimRng::new(7);
//! let mut b = SimRng::new(7);
//! assert_eq!(a.next_u64(), b.next_u64());
//! let roll = a.below(6);
//! assert!(roll < 6);
//! ```
//!
//! The sequence is SplitMix64 and is part of the replay contract: it never
//! changes within `pylon.sim.v1`.

use serde::{Deserialize, Serialize};

/// A seeded generator (SplitMix64). Not for secrets.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SimRng {
    state: u64,
}

impl SimRng {
    pub fn new(seed: u64) -> SimRng {
        SimRng { state: seed }
    }

    /// The generator of tick `tick` of the shard seeded `seed`.
    pub(crate) fn for_tick(seed: u64, tick: u64) -> SimRng {
        SimRng::new(mix(seed ^ mix(tick)))
    }

    /// The generator of the input at log position `log`.
    pub(crate) fn for_input(seed: u64, log: u64) -> SimRng {
        SimRng::new(mix(!seed ^ mix(log)))
    }

    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        mix(self.state)
    }

    /// Uniform in `[0, 1)`.
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform in `[0, n)` (0 when `n` is 0), without modulo bias.
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            return 0;
        }
        // Reject the top partial range so every value is equally likely.
        let zone = u64::MAX - (u64::MAX % n);
        loop {
            let x = self.next_u64();
            if x < zone {
                return x % n;
            }
        }
    }

    /// Uniform in `[lo, hi)`.
    pub fn range_f64(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.next_f64()
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        self.next_f64() < p
    }
}

/// SplitMix64's finalizer.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The seed of a shard: FNV-1a of its name (stable across versions).
pub fn seed_of(name: &str) -> u64 {
    name.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequences_are_pinned() {
        // SplitMix64 from seed 0 (the reference values of the algorithm).
        let mut r = SimRng::new(0);
        assert_eq!(r.next_u64(), 0xe220_a839_7b1d_cdaf);
        assert_eq!(r.next_u64(), 0x6e78_9e6a_a1b9_65f4);
        assert_eq!(seed_of(""), 0xcbf2_9ce4_8422_2325);
        assert_ne!(SimRng::for_tick(1, 2), SimRng::for_input(1, 2));
    }

    #[test]
    fn bounded_draws_stay_in_range() {
        let mut r = SimRng::new(42);
        for n in [1, 2, 3, 7, 1000] {
            for _ in 0..100 {
                assert!(r.below(n) < n);
            }
        }
        for _ in 0..100 {
            let x = r.range_f64(-1.0, 1.0);
            assert!((-1.0..1.0).contains(&x));
        }
    }
}
