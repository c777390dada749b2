//! Matchmaking: a queue of players as its own hosted object (one per queue
//! name). Players enqueue with criteria; a matching function of yours forms
//! groups of the waiting tickets; each group gets a fresh simulation shard
//! id; each player learns its assignment over its socket or by polling its
//! ticket. Tickets that wait too long expire; a player may leave. The
//! object ([`Matchmaker`]) is in `object.rs`; docs/sims.md, "Matchmaking",
//! is the guide.
//!
//! ```
//! use pylon_workers::sim::matchmaking::{MatchRules, Pairs, Waiting};
//! use serde_json::json;
//! let waiting: Vec<Waiting<_>> = ["duel", "race", "duel"].iter().enumerate().map(|(i, mode)| Waiting {
//!     ticket: format!("t{i}"), player: format!("p{i}"), since_ms: 0,
//!     criteria: serde_json::from_value(json!({"mode": mode})).unwrap(),
//! }).collect();
//! assert_eq!(Pairs.form_groups(&waiting, 0), vec![vec![0, 2]]);
//! ```

mod object;
mod store;
mod wire;

pub use object::{Matchmaker, TicketConn};
pub use store::{Status, Ticket};
pub use wire::{decode_ticket_msg, encode_ticket_msg, TicketMsg};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// A waiting ticket, as the matching function sees it.
#[derive(Clone, Debug, PartialEq)]
pub struct Waiting<C> {
    pub ticket: String,
    pub player: String,
    pub criteria: C,
    /// When it was enqueued (ms since the epoch).
    pub since_ms: i64,
}

/// How a queue matches players: the criteria a player brings and the
/// function that forms groups.
pub trait MatchRules: Sized + 'static {
    /// What a player asks for (`{"mode": "duel"}`), the body of its
    /// enqueue request.
    type Criteria: Serialize + DeserializeOwned + Clone + 'static;

    /// The queue's configuration.
    fn config() -> MatchConfig;

    /// The rules of the queue named `name`.
    fn new(name: &str) -> Self;

    /// Groups among `waiting` (oldest first), as indices into it. A ticket
    /// in no group waits on; one named twice, or an index out of range,
    /// makes the group void. Called on every enqueue and every
    /// `rematch_ms` while tickets wait.
    fn form_groups(&self, waiting: &[Waiting<Self::Criteria>], now_ms: i64) -> Vec<Vec<usize>>;

    /// The simulation shard id of the queue's `n`th group (1, 2, …):
    /// `{queue}-{n}`, or a hash of the queue's name when that would pass
    /// the 128 characters of a shard name.
    fn shard_id(&self, queue: &str, n: u64) -> String {
        let id = format!("{queue}-{n}");
        if id.len() <= crate::route::MAX_SHARD_NAME {
            id
        } else {
            format!("mm{:016x}-{n}", super::seed_of(queue))
        }
    }
}

/// The configuration of a kind of queue.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MatchConfig {
    /// The queue kind's name.
    pub kind: &'static str,
    /// The simulation kind its groups play (told to the players).
    pub sim_kind: &'static str,
    /// A ticket not matched within this long expires.
    pub ticket_ttl_ms: i64,
    /// How long a matched, expired or left ticket can still be polled.
    pub keep_ms: i64,
    /// Waiting tickets at most; one more is refused (503 `QUEUE_FULL`).
    pub max_waiting: u32,
    /// The largest criteria body, in bytes.
    pub max_criteria_bytes: usize,
    /// Match again this often while tickets wait (for rules that relax
    /// with time); 0: only when a ticket arrives.
    pub rematch_ms: i64,
}

impl MatchConfig {
    /// Defaults: tickets wait up to 60 s and are kept 10 min after, 1,000
    /// waiting at most, criteria up to 4 KiB, matching on arrival only.
    pub const fn new(kind: &'static str, sim_kind: &'static str) -> MatchConfig {
        MatchConfig {
            kind,
            sim_kind,
            ticket_ttl_ms: 60_000,
            keep_ms: 600_000,
            max_waiting: 1_000,
            max_criteria_bytes: 4 * 1024,
            rematch_ms: 0,
        }
    }
}

/// Pairs players who ask for the same mode, oldest first: the example
/// rules (`{"mode": "duel"}` in, groups of two sent to a `plane`).
pub struct Pairs;

/// What a [`Pairs`] player asks for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mode {
    pub mode: String,
}

impl MatchRules for Pairs {
    type Criteria = Mode;

    fn config() -> MatchConfig {
        MatchConfig::new("pairs", "plane")
    }

    fn new(_: &str) -> Self {
        Pairs
    }

    fn form_groups(&self, waiting: &[Waiting<Mode>], _now_ms: i64) -> Vec<Vec<usize>> {
        let mut open: std::collections::BTreeMap<&str, usize> = Default::default();
        let mut groups = Vec::new();
        for (i, w) in waiting.iter().enumerate() {
            match open.remove(w.criteria.mode.as_str()) {
                Some(first) => groups.push(vec![first, i]),
                None => {
                    open.insert(&w.criteria.mode, i);
                }
            }
        }
        groups
    }
}
