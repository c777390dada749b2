//! The Auth Durable Object's tables: users and their provider identities,
//! sessions (one per sign-in, the "family" of its refresh tokens), refresh
//! tokens stored as SHA-256 hashes, used OAuth states, and pending email
//! codes (HMACs only). Synchronous SQL over [`SqlConn`], so the same code
//! runs on DO SQLite and on rusqlite in tests; every method is one event's
//! work with no await inside, so it commits as a unit.
//!
//! Raw tokens never reach the store: the router hashes them first.
//!
//! ```
//! # #[cfg(feature = "sqlite")] {
//! use pylon_workers::signin::store::{AuthStore, Identity, NewSession, Refusal, hash_token};
//! use pylon_workers::storage::SqliteConn;
//! let s = AuthStore::open(SqliteConn::open_in_memory().unwrap()).unwrap();
//! let id = Identity { provider: "github".into(), subject: "42".into(), email: None };
//! let new = NewSession { user_id: "u_1".into(), tenant: None, roles: vec![], sid: "s_1".into(),
//!     refresh_hash: hash_token("r1"), expires_ms: 10_000 };
//! let user = s.sign_in(&id, &new, 0).unwrap();
//! assert_eq!(user.id, "u_1");
//! let (_, sid) = s.refresh(&hash_token("r1"), &hash_token("r2"), 1).unwrap().unwrap();
//! assert_eq!(sid, "s_1");
//! // The old token again: reuse; the whole session is revoked.
//! assert_eq!(s.refresh(&hash_token("r1"), &hash_token("r3"), 2).unwrap().unwrap_err(),
//!            Refusal::RefreshReused { sid: "s_1".into() });
//! assert!(!s.live("s_1", 3).unwrap());
//! # }
//! ```

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::sql::SqlValue;
use crate::storage::{SqlConn, StorageError};

/// Wrong attempts allowed on one email code before it is dropped.
pub const MAX_CODE_ATTEMPTS: i64 = 5;

const SCHEMA: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS auth_users (id TEXT PRIMARY KEY, email TEXT, tenant TEXT,
        roles TEXT NOT NULL, created_ms INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS auth_identities (provider TEXT NOT NULL, subject TEXT NOT NULL,
        user_id TEXT NOT NULL, email TEXT, PRIMARY KEY (provider, subject))",
    "CREATE TABLE IF NOT EXISTS auth_sessions (sid TEXT PRIMARY KEY, user_id TEXT NOT NULL,
        created_ms INTEGER NOT NULL, expires_ms INTEGER NOT NULL, revoked_ms INTEGER,
        revoked_why TEXT)",
    "CREATE TABLE IF NOT EXISTS auth_refresh (hash TEXT PRIMARY KEY, sid TEXT NOT NULL,
        used_ms INTEGER)",
    "CREATE INDEX IF NOT EXISTS auth_refresh_sid ON auth_refresh (sid)",
    "CREATE TABLE IF NOT EXISTS auth_states (id TEXT PRIMARY KEY, expires_ms INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS auth_email_codes (email TEXT PRIMARY KEY, code_hash TEXT NOT NULL,
        link_hash TEXT NOT NULL UNIQUE, redirect TEXT NOT NULL, expires_ms INTEGER NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0, created_ms INTEGER NOT NULL)",
    "CREATE INDEX IF NOT EXISTS auth_sessions_expiry ON auth_sessions (expires_ms)",
];

/// SHA-256 of a token, hex: what the store keeps instead of the token.
pub fn hash_token(token: &str) -> String {
    Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A signed-in user as the store keeps it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub id: String,
    pub email: Option<String>,
    pub tenant: Option<String>,
    pub roles: Vec<String>,
}

/// Who the provider says signed in.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    /// `github`, the OIDC provider's name, or `email`.
    pub provider: String,
    /// The provider's stable id for the user (GitHub's numeric id, OIDC
    /// `sub`, the lower-cased address for email).
    pub subject: String,
    /// A verified address, when the provider gave one.
    pub email: Option<String>,
}

/// What a sign-in creates (ids and hashes made by the caller).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewSession {
    /// Used only if the identity has no user yet.
    pub user_id: String,
    pub tenant: Option<String>,
    pub roles: Vec<String>,
    pub sid: String,
    pub refresh_hash: String,
    /// The session's absolute end (its refresh tokens die with it).
    pub expires_ms: i64,
}

/// Why a store operation said no.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Refusal {
    RefreshInvalid,
    /// The token was already used: session `sid` is now revoked.
    RefreshReused {
        sid: String,
    },
    StateUsed,
    CodeInvalid,
    /// A code was sent to this address too recently; nothing was sent.
    TooSoon,
}

pub struct AuthStore<C: SqlConn> {
    conn: C,
}

fn text(v: &SqlValue) -> Option<String> {
    match v {
        SqlValue::Text(t) => Some(t.clone()),
        _ => None,
    }
}

fn t(s: &str) -> SqlValue {
    SqlValue::Text(s.to_owned())
}

fn opt(s: &Option<String>) -> SqlValue {
    s.as_deref().map(t).unwrap_or(SqlValue::Null)
}

fn int(i: i64) -> SqlValue {
    SqlValue::Integer(i)
}

impl<C: SqlConn> AuthStore<C> {
    /// Opens the store, creating its tables if needed.
    pub fn open(conn: C) -> Result<Self, StorageError> {
        for s in SCHEMA {
            conn.exec(s, &[])?;
        }
        Ok(AuthStore { conn })
    }

    fn user(&self, id: &str) -> Result<Option<User>, StorageError> {
        let rows = self.conn.exec(
            "SELECT id, email, tenant, roles FROM auth_users WHERE id = ?",
            &[t(id)],
        )?;
        Ok(rows.first().map(|r| User {
            id: text(&r[0]).unwrap_or_default(),
            email: text(&r[1]),
            tenant: text(&r[2]),
            roles: text(&r[3])
                .and_then(|j| serde_json::from_str(&j).ok())
                .unwrap_or_default(),
        }))
    }

    /// Forgets sessions that have ended (their tokens have all expired by
    /// then, so "unknown" answers as "not live" just as well).
    fn purge(&self, now_ms: i64) -> Result<(), StorageError> {
        self.conn.exec(
            "DELETE FROM auth_refresh WHERE sid IN (SELECT sid FROM auth_sessions WHERE expires_ms < ?)",
            &[int(now_ms)],
        )?;
        self.conn.exec(
            "DELETE FROM auth_sessions WHERE expires_ms < ?",
            &[int(now_ms)],
        )?;
        Ok(())
    }

    /// Finds or creates the user of `id` and opens a session for it.
    pub fn sign_in(
        &self,
        id: &Identity,
        new: &NewSession,
        now_ms: i64,
    ) -> Result<User, StorageError> {
        self.purge(now_ms)?;
        let found = self.conn.exec(
            "SELECT user_id FROM auth_identities WHERE provider = ? AND subject = ?",
            &[t(&id.provider), t(&id.subject)],
        )?;
        let user_id = match found.first().and_then(|r| text(&r[0])) {
            Some(u) => {
                if id.email.is_some() {
                    self.conn.exec(
                        "UPDATE auth_identities SET email = ? WHERE provider = ? AND subject = ?",
                        &[opt(&id.email), t(&id.provider), t(&id.subject)],
                    )?;
                }
                u
            }
            None => {
                let roles = serde_json::to_string(&new.roles).expect("strings serialize");
                self.conn.exec(
                    "INSERT INTO auth_users (id, email, tenant, roles, created_ms) VALUES (?, ?, ?, ?, ?)",
                    &[t(&new.user_id), opt(&id.email), opt(&new.tenant), t(&roles), int(now_ms)],
                )?;
                self.conn.exec(
                    "INSERT INTO auth_identities (provider, subject, user_id, email) VALUES (?, ?, ?, ?)",
                    &[t(&id.provider), t(&id.subject), t(&new.user_id), opt(&id.email)],
                )?;
                new.user_id.clone()
            }
        };
        self.conn.exec(
            "INSERT INTO auth_sessions (sid, user_id, created_ms, expires_ms) VALUES (?, ?, ?, ?)",
            &[t(&new.sid), t(&user_id), int(now_ms), int(new.expires_ms)],
        )?;
        self.conn.exec(
            "INSERT INTO auth_refresh (hash, sid) VALUES (?, ?)",
            &[t(&new.refresh_hash), t(&new.sid)],
        )?;
        self.user(&user_id)?
            .ok_or_else(|| StorageError::new("the user vanished", "SELECT auth_users"))
    }

    /// Rotates refresh token `hash` to `new_hash`: the user and session id,
    /// or why not. A token used before revokes its whole session (reuse
    /// means it was copied).
    pub fn refresh(
        &self,
        hash: &str,
        new_hash: &str,
        now_ms: i64,
    ) -> Result<Result<(User, String), Refusal>, StorageError> {
        let rows = self.conn.exec(
            "SELECT r.sid, r.used_ms, s.user_id, s.expires_ms, s.revoked_ms FROM auth_refresh r
             JOIN auth_sessions s ON s.sid = r.sid WHERE r.hash = ?",
            &[t(hash)],
        )?;
        let Some(r) = rows.first() else {
            return Ok(Err(Refusal::RefreshInvalid));
        };
        let sid = text(&r[0]).unwrap_or_default();
        let used = !matches!(r[1], SqlValue::Null);
        let expired = !matches!(r[3], SqlValue::Integer(e) if e > now_ms);
        let revoked = !matches!(r[4], SqlValue::Null);
        if used {
            self.revoke(&sid, now_ms, "refresh token reused")?;
            return Ok(Err(Refusal::RefreshReused { sid }));
        }
        if expired || revoked {
            return Ok(Err(Refusal::RefreshInvalid));
        }
        self.conn.exec(
            "UPDATE auth_refresh SET used_ms = ? WHERE hash = ?",
            &[int(now_ms), t(hash)],
        )?;
        self.conn.exec(
            "INSERT INTO auth_refresh (hash, sid) VALUES (?, ?)",
            &[t(new_hash), t(&sid)],
        )?;
        let user_id = text(&r[2]).unwrap_or_default();
        match self.user(&user_id)? {
            Some(u) => Ok(Ok((u, sid))),
            None => Ok(Err(Refusal::RefreshInvalid)),
        }
    }

    /// Revokes session `sid` (idempotent; the first reason stays).
    pub fn revoke(&self, sid: &str, now_ms: i64, why: &str) -> Result<(), StorageError> {
        self.conn.exec(
            "UPDATE auth_sessions SET revoked_ms = ?, revoked_why = ? WHERE sid = ? AND revoked_ms IS NULL",
            &[int(now_ms), t(why), t(sid)],
        )?;
        // Its refresh tokens can never be used again.
        self.conn.exec(
            "DELETE FROM auth_refresh WHERE sid = ? AND used_ms IS NULL",
            &[t(sid)],
        )?;
        Ok(())
    }

    /// Revokes the session of refresh token `hash`; its id, if any.
    pub fn revoke_refresh(&self, hash: &str, now_ms: i64) -> Result<Option<String>, StorageError> {
        let rows = self
            .conn
            .exec("SELECT sid FROM auth_refresh WHERE hash = ?", &[t(hash)])?;
        let sid = rows.first().and_then(|r| text(&r[0]));
        if let Some(s) = &sid {
            self.revoke(s, now_ms, "logout")?;
        }
        Ok(sid)
    }

    /// Whether session `sid` exists, is not revoked and has not ended.
    pub fn live(&self, sid: &str, now_ms: i64) -> Result<bool, StorageError> {
        let rows = self.conn.exec(
            "SELECT 1 FROM auth_sessions WHERE sid = ? AND revoked_ms IS NULL AND expires_ms > ?",
            &[t(sid), int(now_ms)],
        )?;
        Ok(!rows.is_empty())
    }

    /// Marks OAuth state `id` used; `false` if it already was.
    pub fn consume_state(
        &self,
        id: &str,
        expires_ms: i64,
        now_ms: i64,
    ) -> Result<bool, StorageError> {
        self.conn.exec(
            "DELETE FROM auth_states WHERE expires_ms < ?",
            &[int(now_ms)],
        )?;
        match self.conn.exec(
            "INSERT INTO auth_states (id, expires_ms) VALUES (?, ?)",
            &[t(id), int(expires_ms)],
        ) {
            Ok(_) => Ok(true),
            Err(e) if e.is_unique_violation() => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Stores a new code and link for `email`, replacing any earlier one,
    /// unless one was issued less than `resend_gap_ms` ago (then `false`,
    /// and the earlier code stays).
    #[allow(clippy::too_many_arguments)]
    pub fn email_start(
        &self,
        email: &str,
        code_hash: &str,
        link_hash: &str,
        redirect: &str,
        expires_ms: i64,
        resend_gap_ms: i64,
        now_ms: i64,
    ) -> Result<bool, StorageError> {
        self.conn.exec(
            "DELETE FROM auth_email_codes WHERE expires_ms < ?",
            &[int(now_ms)],
        )?;
        let recent = self.conn.exec(
            "SELECT 1 FROM auth_email_codes WHERE email = ? AND created_ms > ?",
            &[t(email), int(now_ms - resend_gap_ms)],
        )?;
        if !recent.is_empty() {
            return Ok(false);
        }
        self.conn
            .exec("DELETE FROM auth_email_codes WHERE email = ?", &[t(email)])?;
        self.conn.exec(
            "INSERT INTO auth_email_codes (email, code_hash, link_hash, redirect, expires_ms, created_ms)
             VALUES (?, ?, ?, ?, ?, ?)",
            &[
                t(email),
                t(code_hash),
                t(link_hash),
                t(redirect),
                int(expires_ms),
                int(now_ms),
            ],
        )?;
        Ok(true)
    }

    /// Checks a typed code: the redirect target if right (the code is then
    /// gone). A wrong code counts an attempt; the last allowed one drops it.
    pub fn email_code(
        &self,
        email: &str,
        code_hash: &str,
        now_ms: i64,
    ) -> Result<Option<String>, StorageError> {
        let rows = self.conn.exec(
            "SELECT code_hash, redirect, expires_ms, attempts FROM auth_email_codes WHERE email = ?",
            &[t(email)],
        )?;
        let Some(r) = rows.first() else {
            return Ok(None);
        };
        let live = matches!(r[2], SqlValue::Integer(e) if e > now_ms)
            && matches!(r[3], SqlValue::Integer(a) if a < MAX_CODE_ATTEMPTS);
        let right =
            text(&r[0]).is_some_and(|h| super::csrf::ct_eq(h.as_bytes(), code_hash.as_bytes()));
        if live && right {
            self.conn
                .exec("DELETE FROM auth_email_codes WHERE email = ?", &[t(email)])?;
            return Ok(text(&r[1]));
        }
        if !live {
            self.conn
                .exec("DELETE FROM auth_email_codes WHERE email = ?", &[t(email)])?;
        } else {
            self.conn.exec(
                "UPDATE auth_email_codes SET attempts = attempts + 1 WHERE email = ?",
                &[t(email)],
            )?;
            self.conn.exec(
                "DELETE FROM auth_email_codes WHERE email = ? AND attempts >= ?",
                &[t(email), int(MAX_CODE_ATTEMPTS)],
            )?;
        }
        Ok(None)
    }

    /// Checks a magic link: the address and redirect target if it is live
    /// (the link and its code are then gone).
    pub fn email_link(
        &self,
        link_hash: &str,
        now_ms: i64,
    ) -> Result<Option<(String, String)>, StorageError> {
        let rows = self.conn.exec(
            "SELECT email, redirect FROM auth_email_codes WHERE link_hash = ? AND expires_ms > ?
             AND attempts < ?",
            &[t(link_hash), int(now_ms), int(MAX_CODE_ATTEMPTS)],
        )?;
        let Some(r) = rows.first() else {
            return Ok(None);
        };
        self.conn.exec(
            "DELETE FROM auth_email_codes WHERE link_hash = ?",
            &[t(link_hash)],
        )?;
        Ok(Some((
            text(&r[0]).unwrap_or_default(),
            text(&r[1]).unwrap_or_default(),
        )))
    }
}

#[cfg(all(test, feature = "sqlite", not(target_arch = "wasm32")))]
mod tests {
    use super::*;
    use crate::storage::SqliteConn;

    fn session(sid: &str, refresh: &str, expires_ms: i64) -> NewSession {
        NewSession {
            user_id: format!("u-{sid}"),
            tenant: None,
            roles: vec!["r".into()],
            sid: sid.into(),
            refresh_hash: hash_token(refresh),
            expires_ms,
        }
    }

    fn count(s: &AuthStore<SqliteConn>, table: &str) -> i64 {
        match s
            .conn
            .exec(&format!("SELECT COUNT(*) FROM {table}"), &[])
            .unwrap()[0][0]
        {
            SqlValue::Integer(n) => n,
            _ => -1,
        }
    }

    #[test]
    fn ended_sessions_are_purged_and_codes_throttled() {
        let s = AuthStore::open(SqliteConn::open_in_memory().unwrap()).unwrap();
        let id = |sub: &str| Identity {
            provider: "email".into(),
            subject: sub.into(),
            email: Some(sub.into()),
        };
        let u = s
            .sign_in(&id("a@x.io"), &session("s1", "r1", 1_000), 0)
            .unwrap();
        assert_eq!(u.roles, ["r"]);
        assert!(s.live("s1", 999).unwrap() && !s.live("s1", 1_000).unwrap());
        // The same identity later: same user, and the ended session is gone.
        let again = s
            .sign_in(&id("a@x.io"), &session("s2", "r2", 9_000), 2_000)
            .unwrap();
        assert_eq!(again.id, u.id);
        assert_eq!(count(&s, "auth_sessions"), 1);
        assert_eq!(count(&s, "auth_refresh"), 1);
        assert_eq!(
            s.refresh(&hash_token("r1"), &hash_token("r9"), 2_001)
                .unwrap(),
            Err(Refusal::RefreshInvalid)
        );

        assert!(s
            .email_start("a@x.io", "c1", "l1", "/", 10_000, 30, 0)
            .unwrap());
        assert!(!s
            .email_start("a@x.io", "c2", "l2", "/", 10_000, 30, 29)
            .unwrap());
        assert_eq!(
            s.email_code("a@x.io", "c1", 29).unwrap().as_deref(),
            Some("/")
        );
        assert!(s
            .email_start("a@x.io", "c3", "l3", "/", 10_000, 30, 31)
            .unwrap());
        assert!(s.consume_state("st", 100, 0).unwrap());
        assert!(!s.consume_state("st", 100, 50).unwrap());
    }
}
