//! Room members added over HTTP (`_pylon_members`, docs/rooms.md): which
//! presence entries belong to no socket, and when each expires. Their
//! presence itself is stored like a socket's, in `_pylon_presence`.

use super::{int, text, ShardStore};
use crate::sql::SqlValue;
use crate::storage::{SqlConn, StorageError};

impl<C: SqlConn> ShardStore<C> {
    /// Keeps `conn` as an HTTP member, expiring at `expires_ms` (`None`:
    /// never), beside its presence (stored with [`ShardStore::set_presence`]).
    pub fn put_member(&self, conn: &str, expires_ms: Option<i64>) -> Result<(), StorageError> {
        self.run(
            "INSERT INTO _pylon_members (conn, expires) VALUES (?1, ?2) \
             ON CONFLICT(conn) DO UPDATE SET expires = excluded.expires",
            &[
                SqlValue::Text(conn.into()),
                expires_ms.map_or(SqlValue::Null, SqlValue::Integer),
            ],
        )
    }

    /// Drops the HTTP member `conn` and its presence.
    pub fn delete_member(&self, conn: &str) -> Result<(), StorageError> {
        let params = [SqlValue::Text(conn.into())];
        self.run("DELETE FROM _pylon_members WHERE conn = ?1", &params)?;
        self.run("DELETE FROM _pylon_presence WHERE conn = ?1", &params)
    }

    /// The HTTP members and when each expires, by name.
    pub fn members(&self) -> Result<Vec<(String, Option<i64>)>, StorageError> {
        self.read(
            "SELECT conn, expires FROM _pylon_members ORDER BY conn",
            &[],
            |r| {
                let expires = match r[1] {
                    SqlValue::Null => None,
                    ref v => Some(int(v)),
                };
                (text(&r[0]).unwrap_or_default().to_owned(), expires)
            },
        )
    }

    /// The members expired at `now_ms`.
    pub fn expired_members(&self, now_ms: i64) -> Result<Vec<String>, StorageError> {
        self.read(
            "SELECT conn FROM _pylon_members WHERE expires IS NOT NULL AND expires <= ?1 \
             ORDER BY conn",
            &[SqlValue::Integer(now_ms)],
            |r| text(&r[0]).unwrap_or_default().to_owned(),
        )
    }

    /// The earliest expiry of any member, if one expires.
    pub fn next_member_expiry(&self) -> Result<Option<i64>, StorageError> {
        let rows = self.read(
            "SELECT min(expires) FROM _pylon_members WHERE expires IS NOT NULL",
            &[],
            |r| match r[0] {
                SqlValue::Null => None,
                ref v => Some(int(v)),
            },
        )?;
        Ok(rows.into_iter().next().flatten())
    }
}
