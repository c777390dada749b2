//! The room list on the cold path (`GET /v1/rooms`, docs/rooms.md): one D1
//! row per shard whose member count changed, written behind through the
//! shard's outbox drain like the shard directory, never on the hot path.
//!
//! The table is created by the statements that use it (`CREATE TABLE IF
//! NOT EXISTS`), so no D1 migration of an app's own is needed. Each row
//! carries the shard's room version: a retried or late batch with an older
//! count never overwrites a newer one.

use serde::{Deserialize, Serialize};

use crate::manifest::Manifest;
use crate::policy::AuthContext;
use crate::sql::SqlValue;

use super::cold::{name_page, next_name, sql_text};
use super::error::StoreError;
use super::executor::{D1Executor, Statement};

/// The D1 table of rooms.
pub const ROOMS: &str = "_pylon_rooms";

const CREATE: &str = "CREATE TABLE IF NOT EXISTS _pylon_rooms (room TEXT PRIMARY KEY NOT NULL, \
     members INTEGER NOT NULL, version INTEGER NOT NULL, updated TEXT)";

/// A shard's member count as of its room `version` (greater is newer).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomCount {
    pub room: String,
    pub members: u64,
    pub version: i64,
}

impl RoomCount {
    /// The statements that write this count (dated `at`, RFC 3339): the
    /// table if missing, then the upsert under the version guard.
    pub fn statements(&self, at: Option<&str>) -> Vec<Statement> {
        vec![
            Statement::new(CREATE, Vec::new()),
            Statement::new(
                "INSERT INTO _pylon_rooms (room, members, version, updated) VALUES (?1, ?2, ?3, ?4) \
                 ON CONFLICT (room) DO UPDATE SET members = excluded.members, \
                 version = excluded.version, updated = excluded.updated \
                 WHERE excluded.version > _pylon_rooms.version",
                vec![
                    SqlValue::Text(self.room.clone()),
                    SqlValue::Integer(self.members as i64),
                    SqlValue::Integer(self.version),
                    at.map_or(SqlValue::Null, |t| SqlValue::Text(t.to_owned())),
                ],
            ),
        ]
    }
}

/// One room of the list.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RoomInfo {
    pub room: String,
    pub members: i64,
    /// When the count was drained (RFC 3339), if known.
    pub updated: Option<String>,
}

/// A page of rooms with members, in name order.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RoomPage {
    pub rooms: Vec<RoomInfo>,
    /// The last room of a full page: pass as `after`.
    pub next: Option<String>,
}

/// `GET /v1/rooms?after=&limit=`: the rooms with at least one member that
/// `auth` may enter (the manifest's shard rules, in SQL and again in
/// memory), after `after`, `limit` of them (1..=1000, default 100 when 0).
pub async fn list_rooms<E: D1Executor>(
    executor: &E,
    manifest: &Manifest,
    auth: &AuthContext,
    after: Option<&str>,
    limit: usize,
) -> Result<RoomPage, StoreError> {
    let (limit, cond, params) = name_page(manifest, auth, "room", after, limit);
    let rules = manifest.auth();
    let in_d1 = |e| StoreError::from(e).in_d1();
    // A deployment where no room has drained yet has no table.
    executor.execute(CREATE, &[]).await.map_err(in_d1)?;
    let rows = executor
        .query(
            &format!(
                "SELECT room, members, updated FROM {ROOMS} \
                 WHERE room > ? AND members > 0 AND {cond} ORDER BY room LIMIT ?"
            ),
            &params,
        )
        .await
        .map_err(in_d1)?;
    let next = next_name(&rows, limit);
    let rooms = rows
        .iter()
        .filter(|r| r.len() == 3)
        .map(|r| RoomInfo {
            room: sql_text(&r[0]).unwrap_or_default(),
            members: match r[1] {
                SqlValue::Integer(i) => i,
                _ => 0,
            },
            updated: sql_text(&r[2]),
        })
        .filter(|r| rules.admit_caller(&r.room, auth).is_ok())
        .collect();
    Ok(RoomPage { rooms, next })
}
