//! Shared result windows: subscriptions with the same query under the same
//! visibility read one maintained window, so a write is applied and diffed once.

use super::ShardEngine;
use crate::live::{SubKey, Subscription};
use crate::manifest::Manifest;
use crate::policy::AuthContext;
use crate::query::Query;
use crate::storage::{SqlConn, StorageError};
use crate::value::{Row, Value};

pub(super) struct LiveSub {
    pub(super) conn: String,
    pub(super) id: String,
    /// The shared window this subscription reads.
    pub(super) window: SubKey,
    /// The last seq sent for this subscription (the next diff's `from`).
    pub(super) seq: u64,
}

/// What makes two subscriptions see the same rows: the same query (its
/// JSON) under the same visibility (`*` when the entity has no policy,
/// else the caller itself), joined by a unit separator.
pub(super) type WindowIdent = String;

/// One maintained result window, shared by every subscription with the
/// same [`WindowIdent`]: a write is applied to it once, and its diff is
/// built once, however many connections hold it.
pub(super) struct Window {
    pub(super) ident: WindowIdent,
    /// Marked while writes are being coalesced: the next flush diffs
    /// against the rows (and count) its members hold, as of its last diff.
    pub(super) sub: Subscription,
    /// Whose read policies decide which rows it holds.
    pub(super) auth: AuthContext,
    pub(super) members: Vec<SubKey>,
    /// The last seq this window sent a diff at (kept in storage, so that
    /// subscriptions rebuilt after a wake know their next `from`).
    pub(super) sent: u64,
    /// It could not be maintained since the last flush: the flush sends
    /// its members a reset and a fresh snapshot. While set, its rows may
    /// be behind storage.
    pub(super) resync: bool,
}

/// Rows [`ShardEngine::held_row`] looks at before it gives up: a window
/// without a limit may hold a whole table, and past a few hundred rows
/// the point read it saves is the cheaper of the two.
const HELD_SCAN: usize = 256;

pub(super) fn readable<'a>(
    manifest: &'a Manifest,
    entity: &'a str,
    auth: &'a AuthContext,
) -> impl Fn(&Row) -> bool + 'a {
    move |r: &Row| manifest.policies().can_read(entity, auth, r).is_allowed()
}

impl<C: SqlConn> ShardEngine<C> {
    /// Row `id` of `entity` as a window holds it, which is the row as
    /// stored: every applied write reaches the windows it affects before
    /// the next write is applied (`fan_out`), and a window that may have
    /// missed one is marked for a resync and skipped here. Windows hold
    /// whole rows (a query selects every field). `None`: no window holds
    /// it among the first [`HELD_SCAN`] rows looked at; read storage.
    ///
    /// The caller must not ask for a row that the write being applied
    /// has already written (no window has seen that yet).
    pub(super) fn held_row(&self, entity: &str, id: &str) -> Option<&Row> {
        let mut budget = HELD_SCAN;
        for w in self.windows.values() {
            let q = w.sub.query();
            if w.resync || q.count || q.entity != entity {
                continue;
            }
            let rows = w.sub.rows();
            let looked = rows.len().min(budget);
            let found = rows[..looked]
                .iter()
                .find(|r| r.get("id").and_then(Value::as_str) == Some(id));
            if found.is_some() {
                return found;
            }
            budget -= looked;
            if budget == 0 {
                return None;
            }
        }
        None
    }

    fn take_key(&mut self) -> SubKey {
        let key = SubKey(self.next_key);
        self.next_key += 1;
        key
    }

    /// The shared window for `query` as `auth` sees it: the open one, or a
    /// new one loaded from storage (current as of the stored seq).
    pub(super) async fn window_for(
        &mut self,
        query_json: &Value,
        query: Query,
        auth: &AuthContext,
    ) -> Result<SubKey, StorageError> {
        let visibility = if self.manifest.policies().for_entity(&query.entity).is_open() {
            "*".to_owned()
        } else {
            serde_json::to_string(auth).expect("an AuthContext serializes")
        };
        let ident = format!(
            "{}\u{1f}{visibility}",
            serde_json::to_string(query_json).expect("a Value serializes")
        );
        if let Some(&key) = self.window_of.get(&ident) {
            return Ok(key);
        }
        let sent = self.store.window_seq(&ident)?;
        let entity = query.entity.clone();
        let sub = Subscription::load(query, &readable(&self.manifest, &entity, auth), &self.store)
            .await?;
        let key = self.take_key();
        self.index.insert(key, sub.query());
        self.window_of.insert(ident.clone(), key);
        self.windows.insert(
            key,
            Window {
                ident,
                sub,
                auth: auth.clone(),
                members: Vec::new(),
                sent,
                resync: false,
            },
        );
        Ok(key)
    }

    pub(super) fn add_live(&mut self, conn: String, id: String, window: SubKey, seq: u64) {
        let key = self.take_key();
        if let Some(c) = self.conns.get_mut(&conn) {
            c.subs.insert(id.clone(), key);
        }
        if let Some(w) = self.windows.get_mut(&window) {
            w.members.push(key);
        }
        self.subs.insert(
            key,
            LiveSub {
                conn,
                id,
                window,
                seq,
            },
        );
    }

    /// Drops a subscription, and its window when nobody else reads it.
    pub(super) fn remove_live(&mut self, key: SubKey) {
        let Some(live) = self.subs.remove(&key) else {
            return;
        };
        self.release_window(live.window, Some(key));
    }

    /// Takes `member` out of the window and drops the window once empty.
    pub(super) fn release_window(&mut self, window: SubKey, member: Option<SubKey>) {
        let Some(w) = self.windows.get_mut(&window) else {
            return;
        };
        if let Some(m) = member {
            w.members.retain(|k| *k != m);
        }
        if w.members.is_empty() {
            let w = self.windows.remove(&window).expect("just seen");
            self.window_of.remove(&w.ident);
            self.index.remove(window);
            if w.sent > 0 {
                // Only tidiness: a stale row is never larger than a new
                // member's own seq.
                let _ = self.store.forget_window(&w.ident);
            }
        }
    }
}
