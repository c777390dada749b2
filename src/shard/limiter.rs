//! A token bucket: `rate` messages per second on average, `burst` at once.
//! In memory only: after the object wakes every bucket starts full, which
//! errs on the side of letting clients through.

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

#[cfg(test)]
mod tests {
    use super::TokenBucket;

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
