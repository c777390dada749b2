//! The rooms API on the engine (docs/rooms.md): HTTP members join, update
//! and leave the same presence the sockets see (each change is the
//! `presence_diff` a socket's own would be), broadcasts reach every socket
//! as `bcast`, members expire after their time to live, and the member
//! count is kept for the room list on D1 (written behind by the outbox
//! drain).

use serde_json::json;

use super::errors::storage_err;
use super::{Outbound, ShardEngine};
use crate::api_error::ApiError;
use crate::policy::AuthContext;
use crate::protocol::{Bcast, PresenceDiff, ServerMsg};
use crate::shard::rooms::{self, Broadcast, Join, Leave};
use crate::storage::{SqlConn, StorageError};
use crate::store::RoomCount;
use crate::value::Value;

/// Meta key: the member count last noted.
const ROOM_SIZE: &str = "room_size";
/// Meta key: raised each time the count changes.
const ROOM_VERSION: &str = "room_version";
/// Meta key: the version the room list on D1 holds.
const ROOM_LISTED: &str = "room_listed";

fn internal(e: &StorageError) -> ApiError {
    ApiError::from(&storage_err(e))
}

impl<C: SqlConn> ShardEngine<C> {
    /// `join` (or with `update`, `presence`: the member must be in the
    /// room): sets the member's presence and expiry, within the presence
    /// bounds; sockets see a join or an update.
    pub fn room_join(
        &mut self,
        caller: &AuthContext,
        join: Join,
        update: bool,
        now_ms: i64,
    ) -> Result<Vec<Outbound>, ApiError> {
        self.tick(now_ms);
        rooms::may_act_as(caller, &join.member)?;
        let conn = join.conn();
        let present = self.presence.holds(&conn);
        if update && !present {
            return Err(not_member(&join.member));
        }
        let state = match join.presence {
            Some(p) => p,
            None if update => {
                return Err(ApiError::bad_request(
                    "BAD_PRESENCE",
                    "the body names the member's new presence",
                ))
            }
            None => Value::Map(Default::default()),
        };
        let expires = match join.ttl_ms {
            Some(ttl) => Some(now_ms.saturating_add(ttl)),
            // An update without ttlMs keeps the member's expiry.
            None if update => self.member_expiry(&conn).map_err(|e| internal(&e))?,
            None => None,
        };
        let out = self
            .set_presence(&conn, state)
            .map_err(|e| ApiError::from(&e))?;
        self.store
            .put_member(&conn, expires)
            .map_err(|e| internal(&e))?;
        Ok(self.without_paused(out))
    }

    /// `leave`: the member goes (sockets see it leave); whether it was in
    /// the room.
    pub fn room_leave(
        &mut self,
        caller: &AuthContext,
        leave: Leave,
        now_ms: i64,
    ) -> Result<(bool, Vec<Outbound>), ApiError> {
        self.tick(now_ms);
        rooms::may_act_as(caller, &leave.member)?;
        let conn = leave.conn();
        let present = self.presence.holds(&conn);
        self.store.delete_member(&conn).map_err(|e| internal(&e))?;
        self.presence.set(&conn, None);
        if !present {
            return Ok((false, Vec::new()));
        }
        Ok((true, self.without_paused(leaves(vec![conn]))))
    }

    /// `broadcast`: a `bcast` to every socket, from [`rooms::sender`].
    pub fn room_broadcast(&self, caller: &AuthContext, b: Broadcast) -> Vec<Outbound> {
        self.without_paused(vec![Outbound::All {
            except: None,
            msg: ServerMsg::Bcast(Bcast {
                topic: b.topic,
                data: b.data,
                from: rooms::sender(caller),
            }),
        }])
    }

    /// `GET`: the room's size and members, as a socket's `presence_state`
    /// has them (sockets with a presence and HTTP members), and its open
    /// sockets.
    pub fn room_info(&self) -> Result<serde_json::Value, StorageError> {
        let expiry: std::collections::HashMap<String, Option<i64>> =
            self.store.members()?.into_iter().collect();
        let members: Vec<serde_json::Value> = self
            .store
            .presence()?
            .into_iter()
            .map(|(conn, state)| {
                let mut m = json!({ "conn": conn, "state": state });
                if let Some(id) = conn.strip_prefix(rooms::MEMBER_PREFIX) {
                    m["member"] = json!(id);
                    if let Some(Some(at)) = expiry.get(&conn) {
                        m["expiresAt"] = json!(at);
                    }
                }
                m
            })
            .collect();
        Ok(json!({
            "room": self.shard,
            "size": members.len(),
            "members": members,
            "sockets": self.conns.len(),
        }))
    }

    /// Members whose time ran out at `now_ms` leave.
    pub fn expire_members(&mut self, now_ms: i64) -> Result<Vec<Outbound>, StorageError> {
        let gone = self.store.expired_members(now_ms)?;
        if gone.is_empty() {
            return Ok(Vec::new());
        }
        for conn in &gone {
            self.store.delete_member(conn)?;
            self.presence.set(conn, None);
        }
        Ok(self.without_paused(leaves(gone)))
    }

    /// When the next member expires.
    pub fn next_member_expiry(&self) -> Result<Option<i64>, StorageError> {
        self.store.next_member_expiry()
    }

    fn member_expiry(&self, conn: &str) -> Result<Option<i64>, StorageError> {
        let members = self.store.members()?;
        Ok(members
            .into_iter()
            .find(|(c, _)| c == conn)
            .and_then(|m| m.1))
    }

    /// Notes the member count; a change raises the room version, so the
    /// room list on D1 is due. Whether it is due. Runs after every event:
    /// storage is read only when the count changed or a listing was
    /// taken.
    pub fn note_room_size(&mut self) -> Result<bool, StorageError> {
        let size = self.presence.len() as i64;
        if let Some((noted, due)) = self.room_noted {
            if noted == size {
                return Ok(due);
            }
        }
        // One read for the three (a wake notes the count once).
        let meta = self.store.meta()?;
        let [stored, mut version, listed] = meta.ints([ROOM_SIZE, ROOM_VERSION, ROOM_LISTED])?;
        if stored != size {
            meta.set(ROOM_SIZE, crate::sql::SqlValue::Integer(size))?;
            version = meta.add(ROOM_VERSION, 1)?;
        }
        let due = version > listed;
        self.room_noted = Some((size, due));
        Ok(due)
    }

    /// The count the room list on D1 does not have yet.
    pub fn room_listing(&self) -> Result<Option<RoomCount>, StorageError> {
        let [size, version, listed] =
            self.store
                .meta()?
                .ints([ROOM_SIZE, ROOM_VERSION, ROOM_LISTED])?;
        if version <= listed {
            return Ok(None);
        }
        Ok(Some(RoomCount {
            room: self.shard.clone(),
            members: size.max(0) as u64,
            version,
        }))
    }

    /// The room list on D1 took `version`.
    pub fn room_listed(&mut self, version: i64) -> Result<(), StorageError> {
        let meta = self.store.meta()?;
        if meta.int(ROOM_LISTED)? < version {
            meta.set(ROOM_LISTED, crate::sql::SqlValue::Integer(version))?;
        }
        // Whether another count is due is read again at the next note.
        self.room_noted = None;
        Ok(())
    }
}

fn not_member(member: &str) -> ApiError {
    ApiError::new(
        404,
        "MEMBER_NOT_FOUND",
        format!("{member:?} is not in this room: join first"),
    )
}

fn leaves(conns: Vec<String>) -> Vec<Outbound> {
    vec![Outbound::All {
        except: None,
        msg: ServerMsg::PresenceDiff(PresenceDiff {
            leaves: conns,
            ..Default::default()
        }),
    }]
}
