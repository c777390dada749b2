//! The router's per-isolate memory of session checks.
//!
//! Asking the Auth object on every request costs a Durable Object round
//! trip (a few ms in the same colo, more across the world). So a "live"
//! answer is trusted for `ttl_ms` (`PYLON_REVOCATION_CACHE_SECS`, default
//! 10 s); a "revoked" answer is kept until the token would have expired
//! anyway (revocation is permanent). A logout or a refresh-reuse seen by
//! this isolate marks the session revoked here at once; other isolates
//! notice within `ttl_ms`. That is the worst-case revocation delay for
//! new requests; `ttl_ms = 0` asks every time.
//!
//! ```
//! use pylon_workers::signin::revocation::{Cache, Known};
//! let mut c = Cache::new(10_000);
//! assert_eq!(c.get("s1", 0), Known::Ask);
//! c.live("s1", 0);
//! assert_eq!(c.get("s1", 9_999), Known::Live);
//! assert_eq!(c.get("s1", 10_000), Known::Ask);
//! c.revoked("s1", 60_000);
//! assert_eq!(c.get("s1", 20_000), Known::Revoked);
//! ```

use std::collections::HashMap;

/// Entries kept at most; past it the cache is cleared (only costs asks).
pub const MAX_ENTRIES: usize = 10_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Known {
    Live,
    Revoked,
    Ask,
}

#[derive(Clone, Copy)]
enum Entry {
    /// Live, as checked at this time.
    LiveAt(i64),
    /// Revoked; forget it after this time (the token has expired by then).
    RevokedUntil(i64),
}

pub struct Cache {
    ttl_ms: i64,
    entries: HashMap<String, Entry>,
}

impl Cache {
    pub fn new(ttl_ms: i64) -> Self {
        Cache {
            ttl_ms,
            entries: HashMap::new(),
        }
    }

    pub fn set_ttl(&mut self, ttl_ms: i64) {
        self.ttl_ms = ttl_ms;
    }

    pub fn get(&self, sid: &str, now_ms: i64) -> Known {
        match self.entries.get(sid) {
            Some(Entry::LiveAt(t)) if now_ms < t + self.ttl_ms => Known::Live,
            Some(Entry::RevokedUntil(u)) if now_ms <= *u => Known::Revoked,
            _ => Known::Ask,
        }
    }

    fn make_room(&mut self) {
        if self.entries.len() >= MAX_ENTRIES {
            self.entries.clear();
        }
    }

    pub fn live(&mut self, sid: &str, now_ms: i64) {
        if self.ttl_ms > 0 {
            self.make_room();
            self.entries.insert(sid.to_owned(), Entry::LiveAt(now_ms));
        }
    }

    /// Remembers `sid` as revoked until `until_ms`.
    pub fn revoked(&mut self, sid: &str, until_ms: i64) {
        self.make_room();
        self.entries
            .insert(sid.to_owned(), Entry::RevokedUntil(until_ms));
    }
}
