//! A queue's tickets in its Durable Object storage: one row each, from
//! enqueue until `keep_ms` after it was matched, expired or left.
//!
//! ```text
//! _mm_tickets (ticket PK, n, player, criteria JSON, since_ms, status, sim, players JSON, until_ms)
//! ```

use serde::{Deserialize, Serialize};

use crate::sql::SqlValue;
use crate::storage::{SqlConn, StorageError};

/// Where a ticket stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Waiting,
    Assigned,
    Expired,
    Left,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Waiting => "waiting",
            Status::Assigned => "assigned",
            Status::Expired => "expired",
            Status::Left => "left",
        }
    }

    fn parse(s: &str) -> Option<Status> {
        [
            Status::Waiting,
            Status::Assigned,
            Status::Expired,
            Status::Left,
        ]
        .into_iter()
        .find(|x| x.as_str() == s)
    }
}

/// One ticket.
#[derive(Clone, Debug, PartialEq)]
pub struct Ticket {
    pub ticket: String,
    /// Its number in the queue (1, 2, …): arrival order.
    pub n: u64,
    pub player: String,
    /// Whether `player` is a verified user id (else an anonymous one).
    pub verified: bool,
    /// The criteria, as JSON text.
    pub criteria: String,
    pub since_ms: i64,
    pub status: Status,
    /// Once assigned: the simulation shard and everyone in the group.
    pub sim: Option<String>,
    pub players: Vec<String>,
    /// Waiting: when it expires; otherwise when it is forgotten.
    pub until_ms: i64,
}

const COLUMNS: &str =
    "ticket, n, player, verified, criteria, since_ms, status, sim, players, until_ms";

pub struct TicketStore<C> {
    sql: C,
}

impl<C: SqlConn> TicketStore<C> {
    pub fn open(sql: C) -> Result<Self, StorageError> {
        sql.exec(
            "CREATE TABLE IF NOT EXISTS _mm_tickets (ticket TEXT PRIMARY KEY NOT NULL, \
             n INTEGER NOT NULL, player TEXT NOT NULL, verified INTEGER NOT NULL, \
             criteria TEXT NOT NULL, since_ms INTEGER NOT NULL, status TEXT NOT NULL, \
             sim TEXT, players TEXT NOT NULL, until_ms INTEGER NOT NULL) STRICT",
            &[],
        )?;
        sql.exec(
            "CREATE INDEX IF NOT EXISTS _mm_tickets_status ON _mm_tickets (status, n)",
            &[],
        )?;
        Ok(TicketStore { sql })
    }

    pub fn sql(&self) -> &C {
        &self.sql
    }

    pub fn put(&self, t: &Ticket) -> Result<(), StorageError> {
        self.sql.exec(
            &format!(
                "INSERT INTO _mm_tickets ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) \
                 ON CONFLICT(ticket) DO UPDATE SET status = excluded.status, sim = excluded.sim, \
                 players = excluded.players, until_ms = excluded.until_ms"
            ),
            &[
                SqlValue::Text(t.ticket.clone()),
                SqlValue::Integer(t.n as i64),
                SqlValue::Text(t.player.clone()),
                SqlValue::Integer(i64::from(t.verified)),
                SqlValue::Text(t.criteria.clone()),
                SqlValue::Integer(t.since_ms),
                SqlValue::Text(t.status.as_str().into()),
                t.sim.clone().map_or(SqlValue::Null, SqlValue::Text),
                SqlValue::Text(serde_json::to_string(&t.players).unwrap_or_else(|_| "[]".into())),
                SqlValue::Integer(t.until_ms),
            ],
        )?;
        Ok(())
    }

    pub fn get(&self, ticket: &str) -> Result<Option<Ticket>, StorageError> {
        Ok(self
            .select("WHERE ticket = ?1", &[SqlValue::Text(ticket.into())])?
            .pop())
    }

    /// The waiting tickets, oldest first.
    pub fn waiting(&self) -> Result<Vec<Ticket>, StorageError> {
        self.select("WHERE status = 'waiting' ORDER BY n", &[])
    }

    /// The waiting ticket of a verified player, if any.
    pub fn waiting_for(&self, player: &str) -> Result<Option<Ticket>, StorageError> {
        Ok(self
            .select(
                "WHERE status = 'waiting' AND verified = 1 AND player = ?1",
                &[SqlValue::Text(player.into())],
            )?
            .pop())
    }

    /// Tickets whose time is up at `now_ms`.
    pub fn due(&self, now_ms: i64) -> Result<Vec<Ticket>, StorageError> {
        self.select(
            "WHERE until_ms <= ?1 ORDER BY n",
            &[SqlValue::Integer(now_ms)],
        )
    }

    pub fn delete(&self, ticket: &str) -> Result<(), StorageError> {
        self.sql.exec(
            "DELETE FROM _mm_tickets WHERE ticket = ?1",
            &[SqlValue::Text(ticket.into())],
        )?;
        Ok(())
    }

    /// The earliest `until_ms`: when the queue next has something to do.
    pub fn next_due(&self) -> Result<Option<i64>, StorageError> {
        let rows = self
            .sql
            .exec("SELECT MIN(until_ms) FROM _mm_tickets", &[])?;
        Ok(match rows.first().and_then(|r| r.first()) {
            Some(SqlValue::Integer(at)) => Some(*at),
            _ => None,
        })
    }

    /// Tickets per status.
    pub fn counts(&self) -> Result<Vec<(String, i64)>, StorageError> {
        let rows = self.sql.exec(
            "SELECT status, COUNT(*) FROM _mm_tickets GROUP BY status ORDER BY status",
            &[],
        )?;
        Ok(rows
            .into_iter()
            .filter_map(|r| match r.as_slice() {
                [SqlValue::Text(s), SqlValue::Integer(n)] => Some((s.clone(), *n)),
                _ => None,
            })
            .collect())
    }

    fn select(&self, rest: &str, params: &[SqlValue]) -> Result<Vec<Ticket>, StorageError> {
        let sql = format!("SELECT {COLUMNS} FROM _mm_tickets {rest}");
        let rows = self.sql.exec(&sql, params)?;
        rows.into_iter()
            .map(|r| match r.as_slice() {
                [SqlValue::Text(ticket), SqlValue::Integer(n), SqlValue::Text(player), SqlValue::Integer(verified), SqlValue::Text(criteria), SqlValue::Integer(since), SqlValue::Text(status), sim, SqlValue::Text(players), SqlValue::Integer(until)] => {
                    Ok(Ticket {
                        ticket: ticket.clone(),
                        n: *n as u64,
                        player: player.clone(),
                        verified: *verified != 0,
                        criteria: criteria.clone(),
                        since_ms: *since,
                        status: Status::parse(status)
                            .ok_or_else(|| StorageError::new("a ticket of unknown status", &sql))?,
                        sim: match sim {
                            SqlValue::Text(s) => Some(s.clone()),
                            _ => None,
                        },
                        players: serde_json::from_str(players).unwrap_or_default(),
                        until_ms: *until,
                    })
                }
                _ => Err(StorageError::new("a malformed _mm_tickets row", &sql)),
            })
            .collect()
    }
}
