//! Job ids, chosen by whoever enqueues before the ledger sees the job, so
//! a mutation can return one at once. A job with an idempotency key gets
//! an id made from the key alone: enqueuing the same key again, from any
//! shard, names the job the ledger kept. A job without one gets an id
//! unique to where it was committed (shard, seq, place, time).
//!
//! ```
//! use pylon_workers::jobs::{job_id_for_key, job_id_for_commit};
//! assert_eq!(job_id_for_key("digest:2026-12-01"), job_id_for_key("digest:2026-12-01"));
//! assert_ne!(job_id_for_commit("room", 7, 0, 1_000), job_id_for_commit("room", 7, 1, 1_000));
//! assert_eq!(job_id_for_key("a").len(), 33);
//! ```

use sha2::{Digest, Sha256};

/// `j` and 128 bits of SHA-256, in hex.
fn id_of(parts: &[&[u8]]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_be_bytes());
        h.update(p);
    }
    let digest = h.finalize();
    let mut id = String::with_capacity(33);
    id.push('j');
    for b in &digest[..16] {
        id.push_str(&format!("{b:02x}"));
    }
    id
}

/// The id of the job with idempotency key `key`.
pub fn job_id_for_key(key: &str) -> String {
    id_of(&[b"key", key.as_bytes()])
}

/// The id of the `idx`-th keyless job of the mutation `seq` of `shard`,
/// committed at `at_ms` (the time keeps it apart from a shard of the same
/// name whose storage was deleted and started again from seq 1).
pub fn job_id_for_commit(shard: &str, seq: u64, idx: u64, at_ms: i64) -> String {
    let place = format!("{seq}.{idx}@{at_ms}");
    id_of(&[b"commit", shard.as_bytes(), place.as_bytes()])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_differ_by_every_part() {
        let base = job_id_for_commit("room", 1, 0, 5);
        for other in [
            job_id_for_commit("room2", 1, 0, 5),
            job_id_for_commit("room", 2, 0, 5),
            job_id_for_commit("room", 1, 1, 5),
            job_id_for_commit("room", 1, 0, 6),
            job_id_for_key("room"),
        ] {
            assert_ne!(base, other);
        }
        // Lengths are part of the hash: no two splits of one text collide.
        assert_ne!(
            job_id_for_commit("a1", 1, 0, 5),
            job_id_for_commit("a", 11, 0, 5)
        );
        assert!(base.starts_with('j') && base[1..].bytes().all(|b| b.is_ascii_hexdigit()));
    }
}
