//! Presence as the shard announces it: the state a connection is given and
//! the diff every connection gets when one sets or clears its own.

use super::errors::storage_err;
use super::{Outbound, ShardEngine};
use crate::protocol::{ErrorMsg, Member, PresenceDiff, PresenceState, ServerMsg};
use crate::storage::{SqlConn, StorageError};
use crate::value::Value;

impl<C: SqlConn> ShardEngine<C> {
    pub(super) fn presence_state(&self) -> Result<ServerMsg, StorageError> {
        let members = self
            .store
            .presence()?
            .into_iter()
            .map(|(conn, state)| Member { conn, state })
            .collect();
        Ok(ServerMsg::PresenceState(PresenceState { members }))
    }

    /// Sets (or with null clears) a connection's presence, within the
    /// bounds per connection and per shard; a refused one changes nothing.
    pub(super) fn set_presence(
        &mut self,
        conn: &str,
        state: Value,
    ) -> Result<Vec<Outbound>, ErrorMsg> {
        let present = self.presence.holds(conn);
        let size = (!state.is_null()).then(|| {
            serde_json::to_string(&state)
                .expect("values serialize")
                .len()
        });
        if let Some(size) = size {
            self.presence.admit(conn, size, &self.config.limits)?;
        }
        self.store
            .set_presence(conn, &state)
            .map_err(|e| storage_err(&e))?;
        self.presence.set(conn, size);
        let member = || {
            vec![Member {
                conn: conn.to_owned(),
                state: state.clone(),
            }]
        };
        let diff = match (present, state.is_null()) {
            (false, true) => return Ok(Vec::new()),
            (true, true) => PresenceDiff {
                leaves: vec![conn.to_owned()],
                ..Default::default()
            },
            (false, false) => PresenceDiff {
                joins: member(),
                ..Default::default()
            },
            (true, false) => PresenceDiff {
                updates: member(),
                ..Default::default()
            },
        };
        Ok(vec![Outbound::All {
            except: None,
            msg: ServerMsg::PresenceDiff(diff),
        }])
    }
}
