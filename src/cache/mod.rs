//! The cache (docs/cache.md): Pylon's `CacheOps` on Durable Objects. Keys
//! are spread over [`OBJECTS`] objects (`cache-0` … `cache-7`) by a stable
//! hash of the key, so every key lives in exactly one object and its
//! counters and TTLs are consistent; each object ([`CacheObject`]) keeps
//! its keys in SQLite, checks expiry on every read and deletes expired
//! rows on a durable timer set for the earliest expiry.
//!
//! The router reaches the objects for `/v1/cache` ([`plan`] says which
//! objects and how their answers combine); the objects' own routes are
//! internal.
//!
//! ```
//! use pylon_workers::cache::{object_name, object_of, Command};
//! let cmd = Command::parse(&serde_json::json!({"cmd": ["SET", "k", "v", "PX", 1500]})).unwrap();
//! assert!(!cmd.is_read());
//! assert_eq!(object_name(object_of("k")), format!("cache-{}", object_of("k")));
//! ```

mod command;
mod error;
mod limits;
mod object;
pub mod plan;
mod scope;
mod store;

pub use command::{Command, SetOnly, COMMANDS};
pub use error::CacheError;
pub use limits::{
    check_key, check_ttl, check_value, MAX_KEYS_PER_COMMAND, MAX_KEY_BYTES, MAX_TTL_MS,
    MAX_VALUE_BYTES,
};
pub use object::CacheObject;
pub use scope::{check as check_scope, key_shard, CacheScope};

/// How many objects hold the cache's keys: one object serves requests one
/// at a time, so one object per cache would be its throughput limit.
pub const OBJECTS: usize = 8;

/// The object that holds `key`: FNV-1a (64 bits) of its bytes, modulo
/// [`OBJECTS`]. Stable across releases: changing it would strand every
/// key in an object that is no longer asked for it.
pub fn object_of(key: &str) -> usize {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in key.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    (h % OBJECTS as u64) as usize
}

/// Object `i`'s name in the `CACHE` namespace.
pub fn object_name(i: usize) -> String {
    format!("cache-{i}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a_is_the_published_function() {
        // FNV-1a 64 of "a" is 0xaf63dc4c8601ec8c (the reference vectors).
        let h = 0xaf63_dc4c_8601_ec8c_u64;
        assert_eq!(object_of("a"), (h % OBJECTS as u64) as usize);
    }

    #[test]
    fn keys_spread_over_every_object() {
        let mut seen = [0usize; OBJECTS];
        for i in 0..400 {
            seen[object_of(&format!("user:{i}"))] += 1;
        }
        assert!(seen.iter().all(|n| *n > 20), "{seen:?}");
    }
}
