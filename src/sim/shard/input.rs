//! Taking an input: the checks, the log row written before the
//! acknowledgement, the queue; and who a client may name as subscriber.

use super::{Accepted, Act, SimShard, MAX_SUBSCRIBER_LEN};
use crate::policy::AuthContext;
use crate::sim::driver::{Queued, Rejection};
use crate::sim::error::SimError;
use crate::sim::store::{decode_input, encode_input, LogRow};
use crate::sim::SimState;
use crate::sql::MAX_SAFE_INT;
use crate::storage::SqlConn;

impl<S: SimState, C: SqlConn> SimShard<S, C> {
    /// Takes one input: checks it, logs it (durable in this handler's
    /// commit, with the acknowledgement the caller sends), queues it.
    pub(super) fn take(
        &mut self,
        subscriber: &str,
        auth: &AuthContext,
        seq: Option<u64>,
        input: S::Input,
        now_ms: i64,
    ) -> Result<Accepted, SimError> {
        if self.finished {
            return Err(SimError::SimFinished);
        }
        self.sim
            .state()
            .authorize_input(subscriber, auth, &input)
            .map_err(|reason| SimError::Forbidden { reason })?;
        let last = self.taken.get(subscriber).copied().unwrap_or(0);
        let seq = match seq {
            Some(0) => return Err(SimError::BadInput("seq starts at 1".into())),
            Some(s) if s > MAX_SAFE_INT as u64 => {
                return Err(SimError::BadInput("seq is at most 2^53 - 1".into()))
            }
            Some(s) => s,
            None => last + 1,
        };
        let tick = self.sim.tick() + 1;
        if seq <= last {
            return Ok(Accepted {
                seq,
                tick,
                dup: true,
            });
        }
        if self.sim.queued() >= self.config.max_queued_inputs as usize {
            return Err(SimError::QueueFull {
                max: self.config.max_queued_inputs,
            });
        }
        let text =
            encode_input(&input).map_err(|e| self.internal(format!("encoding an input: {e}")))?;
        // The state gets what the log gives back on a restore, so a live
        // run and its replay see the same value.
        let input: S::Input = decode_input(&text).map_err(|e| {
            self.internal(format!(
                "the kind's Input does not round-trip through postcard: {e}"
            ))
        })?;
        let row = LogRow {
            log: self.sim.figures().logged + 1,
            tick,
            subscriber: subscriber.to_owned(),
            seq,
            at_ms: now_ms,
            input: text,
        };
        self.store
            .append(&row)
            .map_err(|e| self.internal(format!("logging an input: {e}")))?;
        self.taken.insert(subscriber.to_owned(), seq);
        self.sim.enqueue(Queued {
            log: row.log,
            tick,
            subscriber: row.subscriber,
            seq,
            at_ms: now_ms,
            input,
        });
        Ok(Accepted {
            seq,
            tick,
            dup: false,
        })
    }

    /// An internal failure: the detail goes to the log, not the client.
    pub(super) fn internal(&mut self, detail: String) -> SimError {
        self.notes.push(format!("sim {}: {detail}", self.name));
        SimError::Internal("the input could not be taken".into())
    }

    /// After an input was logged: an event-driven kind ticks now; a
    /// real-time one makes sure it is ticking.
    pub(super) fn after_input(&mut self, now_ms: i64, out: &mut Vec<Act<S>>) -> Vec<Rejection> {
        if self.config.is_event_driven() {
            self.run_ticks(1, now_ms, out)
        } else {
            self.start(now_ms, out);
            Vec::new()
        }
    }
}

/// A subscriber id a client names: 1 to 128 bytes, no control characters,
/// not a connection id (those are the shard's to give).
pub fn check_subscriber(s: &str) -> Result<(), SimError> {
    if s.is_empty() || s.len() > MAX_SUBSCRIBER_LEN || s.chars().any(char::is_control) {
        return Err(SimError::BadInput(format!(
            "subscriber: 1 to {MAX_SUBSCRIBER_LEN} bytes, no control characters"
        )));
    }
    if is_connection_id(s) {
        return Err(SimError::BadInput(format!(
            "subscriber `{s}` has the form of a connection id (c1, c2, …), which only sockets get"
        )));
    }
    Ok(())
}

/// Whether `subscriber` is a socket's own connection id (`c` and digits):
/// no client can name one, so a kind may trust it to be that socket.
pub fn is_connection_id(subscriber: &str) -> bool {
    subscriber
        .strip_prefix('c')
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}
