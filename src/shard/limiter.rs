//! A token bucket: `rate` messages per second on average, `burst` at once;
//! and the count of a connection's refusals, which closes a connection that
//! keeps sending regardless. In memory only: after the object wakes every
//! bucket starts full and every count at zero, which errs on the side of
//! letting clients through.

#[derive(Clone, Debug)]
pub struct TokenBucket {
    rate_per_ms: f64,
    burst: f64,
    tokens: f64,
    last_ms: i64,
}

impl TokenBucket {
    pub fn new(rate_per_sec: u32, burst: u32, now_ms: i64) -> Self {
        TokenBucket {
            rate_per_ms: rate_per_sec as f64 / 1000.0,
            burst: burst.max(1) as f64,
            tokens: burst.max(1) as f64,
            last_ms: now_ms,
        }
    }

    /// Takes one token if there is one.
    pub fn take(&mut self, now_ms: i64) -> bool {
        let elapsed = (now_ms - self.last_ms).max(0) as f64;
        self.tokens = (self.tokens + elapsed * self.rate_per_ms).min(self.burst);
        self.last_ms = now_ms.max(self.last_ms);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// The window in which a connection's rate refusals are counted: this many
/// refusals ([`crate::protocol::Limits::msg_burst`]) within it, counted from
/// the first, close the connection (4429).
pub const REFUSAL_WINDOW_MS: i64 = 10_000;

/// A connection's rate refusals in the current window. A message let
/// through does not reset it: only the window's end does.
#[derive(Clone, Debug, Default)]
pub struct Refusals {
    started_ms: i64,
    count: u32,
}

impl Refusals {
    /// Counts a refusal at `now_ms`; whether it is the `max`-th within one
    /// window.
    pub fn count(&mut self, now_ms: i64, max: u32) -> bool {
        if self.count == 0 || now_ms - self.started_ms >= REFUSAL_WINDOW_MS {
            self.started_ms = now_ms;
            self.count = 0;
        }
        self.count += 1;
        self.count >= max.max(1)
    }
}

#[cfg(test)]
mod tests {
    use super::{Refusals, TokenBucket, REFUSAL_WINDOW_MS};

    #[test]
    fn refusals_close_within_a_window_only() {
        let mut r = Refusals::default();
        assert!(!r.count(0, 3) && !r.count(5_000, 3));
        assert!(r.count(9_999, 3), "the third within 10 s");
        let mut r = Refusals::default();
        assert!(!r.count(0, 3) && !r.count(1, 3));
        // A new window starts with the first refusal after the old one ends.
        assert!(!r.count(REFUSAL_WINDOW_MS, 3));
        assert!(!r.count(REFUSAL_WINDOW_MS + 1, 3));
        assert!(r.count(REFUSAL_WINDOW_MS + 2, 3));
    }

    #[test]
    fn burst_then_rate() {
        let mut b = TokenBucket::new(10, 3, 0);
        assert!(b.take(0) && b.take(0) && b.take(0));
        assert!(!b.take(0));
        assert!(!b.take(50));
        assert!(b.take(100));
        assert!(!b.take(100));
    }
}
