//! `watch`: a live query function. It is run once for its first `value`;
//! a write that touches an entity it read marks it, and it is run again
//! after the write's diffs (once per flush, however many writes touched
//! it), its `value` sent only when the result changed. Watches are kept
//! in storage with the entities they read, so a wake rebuilds them
//! without running them.

use std::collections::{BTreeSet, HashMap};
use std::hash::{Hash, Hasher};

use super::errors::{err, storage_err};
use super::{Outbound, ShardEngine};
use crate::functions::FnKind;
use crate::live::Change;
use crate::protocol::{self, ErrorCode, ErrorMsg, FnValue, ServerMsg};
use crate::shard::store::StoredWatch;
use crate::storage::SqlConn;
use crate::value::Value;

/// (connection, watch id).
pub(super) type WatchKey = (String, String);

/// One live query function.
pub(super) struct FnWatch {
    name: String,
    args: Value,
    reads: BTreeSet<String>,
    /// A hash of the last value sent (`None` after a wake: the next run
    /// sends whatever it finds).
    last: Option<u64>,
}

fn hash_of(value: &Value) -> u64 {
    let text = serde_json::to_string(value).expect("values serialize");
    let mut h = std::collections::hash_map::DefaultHasher::new();
    text.hash(&mut h);
    h.finish()
}

/// The watches of the engine and the ones a write marked.
#[derive(Default)]
pub(super) struct Watches {
    live: HashMap<WatchKey, FnWatch>,
    marked: BTreeSet<WatchKey>,
}

impl Watches {
    pub(super) fn count_for(&self, conn: &str) -> usize {
        self.live.keys().filter(|(c, _)| c == conn).count()
    }

    /// Whether a write marked a watch that has not been run again yet.
    pub(super) fn any_marked(&self) -> bool {
        !self.marked.is_empty()
    }

    pub(super) fn holds(&self, conn: &str, id: &str) -> bool {
        self.live.contains_key(&(conn.to_owned(), id.to_owned()))
    }

    /// Marks every watch that read an entity these changes touch.
    pub(super) fn mark(&mut self, changes: &[Change]) {
        if self.live.is_empty() {
            return;
        }
        for (key, w) in &self.live {
            if changes.iter().any(|c| w.reads.contains(&c.entity)) {
                self.marked.insert(key.clone());
            }
        }
    }

    pub(super) fn drop_conn(&mut self, conn: &str) {
        self.live.retain(|(c, _), _| c != conn);
        self.marked.retain(|(c, _)| c != conn);
    }
}

impl<C: SqlConn> ShardEngine<C> {
    /// `watch`: the first `value`, or an error (with `sub`).
    pub(super) async fn watch(
        &mut self,
        conn: &str,
        w: protocol::Watch,
    ) -> Result<Vec<Outbound>, ErrorMsg> {
        let c = &self.conns[conn];
        if c.subs.contains_key(&w.id) || self.watches.holds(conn, &w.id) {
            return Err(err(
                ErrorCode::DuplicateSubscription,
                format!("subscription {:?} is already open", w.id),
            ));
        }
        let max = self.config.limits.max_subs_per_conn as usize;
        if c.subs.len() + self.watches.count_for(conn) >= max {
            return Err(err(
                ErrorCode::TooManySubscriptions,
                format!("at most {max} subscriptions per connection"),
            ));
        }
        let auth = c.info.auth.clone();
        let info = self.function(&w.name, Some(FnKind::Query))?;
        let seq = self.store.seq().map_err(|e| storage_err(&e))?;
        let ran = self
            .run_function(&info, &auth, w.args.clone(), seq + 1, self.clock_ms)
            .await;
        let value = ran
            .value
            .and_then(|v| self.fits(v))
            .map_err(|e| e.to_msg())?;
        let stored = StoredWatch {
            conn: conn.to_owned(),
            id: w.id.clone(),
            name: w.name,
            args: w.args,
            reads: ran.reads,
        };
        self.store.put_watch(&stored).map_err(|e| storage_err(&e))?;
        self.watches.live.insert(
            (conn.to_owned(), w.id.clone()),
            FnWatch {
                name: stored.name,
                args: stored.args,
                reads: stored.reads,
                last: Some(hash_of(&value)),
            },
        );
        Ok(vec![Outbound::To(
            conn.to_owned(),
            ServerMsg::FnValue(FnValue {
                id: w.id,
                seq,
                value,
            }),
        )])
    }

    /// `unsub` of a watch; `None` when `id` is not one.
    pub(super) fn unwatch(
        &mut self,
        conn: &str,
        id: &str,
    ) -> Option<Result<Vec<Outbound>, ErrorMsg>> {
        let key = (conn.to_owned(), id.to_owned());
        self.watches.live.remove(&key)?;
        self.watches.marked.remove(&key);
        Some(
            self.store
                .delete_watch(conn, id)
                .map(|()| Vec::new())
                .map_err(|e| storage_err(&e)),
        )
    }

    /// Rebuilds the watches of connections still open (after a wake).
    pub(super) fn restore_watches(&mut self) -> Result<(), crate::storage::StorageError> {
        for w in self.store.all_watches()? {
            if !self.conns.contains_key(&w.conn) {
                self.store.delete_watch(&w.conn, &w.id)?;
                continue;
            }
            self.watches.live.insert(
                (w.conn, w.id),
                FnWatch {
                    name: w.name,
                    args: w.args,
                    reads: w.reads,
                    last: None,
                },
            );
        }
        Ok(())
    }

    /// Runs the marked watches again and sends the values that changed (an
    /// error is sent as `err` with the watch's id; the watch stays).
    pub(super) async fn rerun_watches(&mut self) -> Vec<Outbound> {
        if self.watches.marked.is_empty() {
            return Vec::new();
        }
        let marked = std::mem::take(&mut self.watches.marked);
        let Ok(seq) = self.store.seq() else {
            // Tried again after the next write.
            self.watches.marked = marked;
            return Vec::new();
        };
        let mut out = Vec::new();
        for key in marked {
            let (conn, id) = &key;
            if self.paused.contains(conn) {
                continue;
            }
            let (Some(c), Some(w)) = (self.conns.get(conn), self.watches.live.get(&key)) else {
                continue;
            };
            let auth = c.info.auth.clone();
            let (name, args) = (w.name.clone(), w.args.clone());
            let ran = match self.function(&name, Some(FnKind::Query)) {
                Ok(info) => {
                    let ran = self
                        .run_function(&info, &auth, args, seq + 1, self.clock_ms)
                        .await;
                    Some((ran.value.and_then(|v| self.fits(v)), ran.reads))
                }
                Err(e) => {
                    out.push(Outbound::To(
                        conn.clone(),
                        ServerMsg::Err(ErrorMsg {
                            sub: Some(id.clone()),
                            ..e
                        }),
                    ));
                    None
                }
            };
            let Some((value, reads)) = ran else { continue };
            let Some(w) = self.watches.live.get_mut(&key) else {
                continue;
            };
            match value {
                Ok(value) => {
                    let h = hash_of(&value);
                    if w.last != Some(h) {
                        w.last = Some(h);
                        out.push(Outbound::To(
                            conn.clone(),
                            ServerMsg::FnValue(FnValue {
                                id: id.clone(),
                                seq,
                                value,
                            }),
                        ));
                    }
                    if reads != w.reads {
                        w.reads = reads;
                        let stored = StoredWatch {
                            conn: conn.clone(),
                            id: id.clone(),
                            name: w.name.clone(),
                            args: w.args.clone(),
                            reads: w.reads.clone(),
                        };
                        let _ = self.store.put_watch(&stored);
                    }
                }
                Err(e) => {
                    w.last = None;
                    let mut e = e.to_msg();
                    e.sub = Some(id.clone());
                    out.push(Outbound::To(conn.clone(), ServerMsg::Err(e)));
                }
            }
        }
        out
    }
}
