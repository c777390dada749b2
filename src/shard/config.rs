//! A shard's tunables, with their defaults, and how deployments set them:
//! string variables (wrangler `[vars]`), parsed here so bad values are
//! refused with the variable's name.
//!
//! ```
//! use pylon_workers::shard::ShardConfig;
//! let vars = [("PYLON_MAX_FRAME_BYTES", "65536"), ("PYLON_MSGS_PER_SEC", "20")];
//! let c = ShardConfig::from_vars(|k| vars.iter().find(|(n, _)| *n == k).map(|(_, v)| v.to_string())).unwrap();
//! assert_eq!(c.limits.max_frame_bytes, 65536);
//! assert_eq!(c.limits.msgs_per_sec, 20);
//! assert_eq!(c.limits.max_subs_per_conn, 100); // the default
//! ```

use crate::protocol::Limits;

/// Tunables of one shard; every one has a documented default (see
/// docs/protocol.md, "Limits", and [`VARS`]).
#[derive(Clone, Debug)]
pub struct ShardConfig {
    pub limits: Limits,
    /// Change-log entries kept, in seqs (resume reaches back this far).
    pub log_keep_seqs: u64,
    /// Change-log entries older than this are dropped, in milliseconds.
    pub log_keep_ms: i64,
    /// A resume that would replay more touched rows than this gets a
    /// `reset` and a fresh `snap` instead (cheaper for both sides).
    pub max_resume_rows: usize,
    /// Writes whose diffs may be coalesced into one flush. The Durable
    /// Object flushes at once when idle and at most every few milliseconds
    /// when busy, and in any case every this many writes. `1` sends each
    /// write's diffs with its ack.
    pub max_batch: u32,
    /// A busy shard flushes at most this often (ms): the least a write's
    /// diffs and ack wait for the writes that join its batch.
    pub flush_gap_ms: u32,
    /// A busy shard's fan-out budget, frames per second (diffs and acks
    /// together): after a flush, the next waits the time its frames take
    /// at this rate, between `flush_gap_ms` and [`MAX_FLUSH_GAP_MS`]
    /// ([`FlushPacer`](super::FlushPacer)).
    pub flush_frames_per_sec: u32,
    /// The host's send window (`PYLON_SEND_WINDOW_BYTES`, read and checked
    /// by the host), announced in `welcome` so clients size receipts.
    pub send_window: u64,
}

impl Default for ShardConfig {
    fn default() -> Self {
        ShardConfig {
            limits: Limits::default(),
            log_keep_seqs: 10_000,
            log_keep_ms: 7 * 24 * 3600 * 1000,
            max_resume_rows: 1_000,
            max_batch: 256,
            flush_gap_ms: 4,
            flush_frames_per_sec: 10_000,
            send_window: crate::host::window::DEFAULT_WINDOW,
        }
    }
}

/// The variables read by [`ShardConfig::from_vars`], with what each sets.
pub const VARS: &[(&str, &str)] = &[
    (
        "PYLON_MAX_FRAME_BYTES",
        "largest frame or HTTP body accepted, bytes (1048576)",
    ),
    (
        "PYLON_MAX_SUBS_PER_CONN",
        "live subscriptions per connection (100)",
    ),
    (
        "PYLON_MAX_CONNS_PER_SHARD",
        "open connections per shard (1000)",
    ),
    (
        "PYLON_MSGS_PER_SEC",
        "sustained messages per second per connection (100)",
    ),
    (
        "PYLON_MSG_BURST",
        "messages a connection may send at once, and rate refusals within 10 s that close it (200)",
    ),
    ("PYLON_MAX_OPS_PER_MUT", "ops in one mutation (1000)"),
    (
        "PYLON_OP_RETENTION_SECS",
        "how long op ids are remembered for dedup, seconds (86400)",
    ),
    (
        "PYLON_LOG_KEEP_SEQS",
        "change-log entries kept, in seqs (10000)",
    ),
    (
        "PYLON_LOG_KEEP_SECS",
        "change-log entries kept, in seconds (604800)",
    ),
    (
        "PYLON_MAX_RESUME_ROWS",
        "touched rows above which a resume gets a reset (1000)",
    ),
    (
        "PYLON_MAX_BATCH",
        "writes whose diffs one flush may coalesce; 1 = none (256)",
    ),
    (
        "PYLON_FLUSH_GAP_MS",
        "least time between two flushes of a busy shard, ms (4)",
    ),
    (
        "PYLON_FLUSH_FRAMES_PER_SEC",
        "frames (diffs and acks) a busy shard's flushes send per second at most; spaces its flushes up to 50 ms apart (10000)",
    ),
    (
        "PYLON_MAX_PRESENCE_BYTES",
        "bytes of one connection's presence (16384)",
    ),
    (
        "PYLON_MAX_PRESENCE_TOTAL_BYTES",
        "bytes of presence of all a shard's connections together (524288)",
    ),
];

/// The longest a busy shard waits after a flush, ms, however many frames
/// it sent: a shard of any size flushes at least this often, and a write
/// waits at most this long for the writes that join its batch.
pub const MAX_FLUSH_GAP_MS: i64 = 50;

/// A variable that is set but is not a positive whole number.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{name} = {value:?} is not a positive whole number")]
pub struct ConfigError {
    pub name: &'static str,
    pub value: String,
}

impl ShardConfig {
    /// The defaults, overridden by each variable `get` returns.
    pub fn from_vars(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let mut c = ShardConfig::default();
        for (name, _) in VARS {
            let Some(raw) = get(name) else { continue };
            let n: u64 = raw
                .trim()
                .parse()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| ConfigError {
                    name,
                    value: raw.clone(),
                })?;
            let small = || {
                u32::try_from(n).map_err(|_| ConfigError {
                    name,
                    value: raw.clone(),
                })
            };
            match *name {
                "PYLON_MAX_FRAME_BYTES" => c.limits.max_frame_bytes = n as usize,
                "PYLON_MAX_SUBS_PER_CONN" => c.limits.max_subs_per_conn = small()?,
                "PYLON_MAX_CONNS_PER_SHARD" => c.limits.max_conns_per_shard = small()?,
                "PYLON_MSGS_PER_SEC" => c.limits.msgs_per_sec = small()?,
                "PYLON_MSG_BURST" => c.limits.msg_burst = small()?,
                "PYLON_MAX_OPS_PER_MUT" => c.limits.max_ops_per_mut = small()?,
                "PYLON_OP_RETENTION_SECS" => c.limits.op_retention_secs = n,
                "PYLON_LOG_KEEP_SEQS" => c.log_keep_seqs = n,
                "PYLON_LOG_KEEP_SECS" => c.log_keep_ms = (n as i64).saturating_mul(1000),
                "PYLON_MAX_RESUME_ROWS" => c.max_resume_rows = n as usize,
                "PYLON_MAX_BATCH" => c.max_batch = small()?,
                "PYLON_FLUSH_GAP_MS" => c.flush_gap_ms = small()?,
                "PYLON_FLUSH_FRAMES_PER_SEC" => c.flush_frames_per_sec = small()?,
                "PYLON_MAX_PRESENCE_BYTES" => c.limits.max_presence_bytes = n as usize,
                "PYLON_MAX_PRESENCE_TOTAL_BYTES" => c.limits.max_presence_total_bytes = n as usize,
                _ => unreachable!("every name in VARS is handled"),
            }
        }
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_variable_is_read() {
        let c = ShardConfig::from_vars(|_| Some("7".into())).unwrap();
        assert_eq!(c.limits.max_frame_bytes, 7);
        assert_eq!(c.limits.max_subs_per_conn, 7);
        assert_eq!(c.limits.max_conns_per_shard, 7);
        assert_eq!(c.limits.msgs_per_sec, 7);
        assert_eq!(c.limits.msg_burst, 7);
        assert_eq!(c.limits.max_ops_per_mut, 7);
        assert_eq!(c.limits.op_retention_secs, 7);
        assert_eq!(c.log_keep_seqs, 7);
        assert_eq!(c.log_keep_ms, 7000);
        assert_eq!(c.max_resume_rows, 7);
        assert_eq!(c.max_batch, 7);
        assert_eq!(c.flush_gap_ms, 7);
        assert_eq!(c.flush_frames_per_sec, 7);
        assert_eq!(c.limits.max_presence_bytes, 7);
        assert_eq!(c.limits.max_presence_total_bytes, 7);
    }

    #[test]
    fn bad_values_name_their_variable() {
        for bad in ["0", "-1", "lots", "99999999999"] {
            let e = ShardConfig::from_vars(|k| (k == "PYLON_MSG_BURST").then(|| bad.to_string()))
                .unwrap_err();
            assert_eq!(e.name, "PYLON_MSG_BURST", "{bad}");
        }
    }
}
