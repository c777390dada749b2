//! The trait a simulation implements: the same contract as Pylon's
//! `SimState`. The engine owns time, inputs, storage and sockets; the state
//! only changes when the engine calls it, so a replay of the same inputs
//! gives the same state (docs/sims.md).

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::{SimConfig, SimRng};
use crate::policy::AuthContext;

/// When an input is applied. Everything here comes from the input log, so
/// a replay sees the same values.
#[derive(Clone, Debug, PartialEq)]
pub struct Now {
    /// The tick this input precedes: it is applied right before tick
    /// `tick` runs (inputs of one tick in arrival order).
    pub tick: u64,
    /// When the shard received it (ms since the epoch, as logged).
    pub ms: i64,
    /// A generator seeded for this input (shard name and log position).
    pub rng: SimRng,
}

/// One tick: its number and a generator seeded for it (shard name and
/// tick number).
#[derive(Clone, Debug, PartialEq)]
pub struct Step {
    /// 1 for the first tick; grows by one per tick run (skipped ticks take
    /// no number).
    pub number: u64,
    pub rng: SimRng,
}

/// A simulation: a game match, a zone, an auction lot. Its value is the
/// whole state; the engine persists it with postcard (so the type must
/// round-trip through postcard: no `#[serde(untagged)]` or internally
/// tagged enums, no `serde_json::Value`).
///
/// Determinism is the implementer's part of the contract: given the same
/// calls in the same order, a state must end the same. Use [`Now`] and
/// [`Step`] for time and randomness, never the clock or a global
/// generator, and iterate ordered collections (`BTreeMap`, not `HashMap`).
pub trait SimState: Serialize + DeserializeOwned + 'static {
    /// What a subscriber sends (over its socket, or `POST`). Decoded from
    /// JSON or postcard, as the sender's encoding; the log keeps it as
    /// postcard.
    type Input: Serialize + DeserializeOwned + 'static;
    /// What a subscriber sees. In JSON its fields sit beside the engine's
    /// `type`, `tick`, `acked` and `final` (names it must not use); a
    /// snapshot that is not a JSON object goes under `snapshot`.
    type Snapshot: Serialize + 'static;
    /// Why `apply_input` refused an input: sent to its sender as
    /// `INPUT_REJECTED` and counted; the simulation goes on.
    type Error: std::fmt::Display;

    /// The kind's configuration (tick rate, limits).
    fn config() -> SimConfig;

    /// The state of a new shard named `name`.
    fn new(name: &str) -> Self;

    /// Applies one input of `subscriber`, before the tick `now.tick`.
    fn apply_input(
        &mut self,
        subscriber: &str,
        input: Self::Input,
        now: Now,
    ) -> Result<(), Self::Error>;

    /// Advances by `dt` seconds (`1 / tick_hz`; 0 for an event-driven
    /// kind).
    fn tick(&mut self, dt: f64, step: Step);

    /// What everyone may see (the stats and the final state show it).
    fn snapshot(&self) -> Self::Snapshot;

    /// What `subscriber` sees: its area of interest, its fog of war.
    fn snapshot_for(&self, subscriber: &str) -> Self::Snapshot {
        let _ = subscriber;
        self.snapshot()
    }

    /// Once true, the shard sends everyone a final snapshot, closes their
    /// sockets (4410) and takes no more inputs or subscribers.
    fn is_finished(&self) -> bool {
        false
    }

    /// May `auth` act as `subscriber`? Asked for a socket (on upgrade when
    /// the client names its subscriber, else as it connects) and for every
    /// HTTP input. The default: the verified user id is `subscriber`, or
    /// the caller is an admin. `Err` carries the reason sent back.
    fn authorize_subscribe(&self, subscriber: &str, auth: &AuthContext) -> Result<(), String> {
        default_authorize_subscribe(subscriber, auth)
    }

    /// May `subscriber` (as `auth`) send `input`? The default: yes.
    fn authorize_input(
        &self,
        subscriber: &str,
        auth: &AuthContext,
        input: &Self::Input,
    ) -> Result<(), String> {
        let _ = (subscriber, auth, input);
        Ok(())
    }
}

/// The default of [`SimState::authorize_subscribe`].
pub fn default_authorize_subscribe(subscriber: &str, auth: &AuthContext) -> Result<(), String> {
    if auth.is_admin || auth.user_id.as_deref() == Some(subscriber) {
        Ok(())
    } else {
        Err(format!(
            "subscriber `{subscriber}` is not the verified user (sign in as it, or be an admin)"
        ))
    }
}
