//! Diff delivery: a write's changes applied to the windows they affect, their
//! diffs sent at once or, when coalescing, one per window at the next flush.

use std::collections::HashSet;

use super::frames::{reset_then, snap, to_wire};
use super::windows::{readable, LiveSub, Window};
use super::{Outbound, ShardEngine};
use crate::live::{self, Change, SubKey, SubKeyMap, Subscription};
use crate::manifest::Manifest;
use crate::protocol::reset_reason;
use crate::shard::store::ShardStore;
use crate::storage::SqlConn;
use crate::value::Row;

/// Applies `changes` (all of one seq) to a window's rows; the diff its
/// members need, or why the window must be reloaded.
async fn update_window<C: SqlConn>(
    sub: &mut Subscription,
    changes: &[Change],
    visible: &dyn Fn(&Row) -> bool,
    store: &ShardStore<C>,
) -> Result<live::Diff, String> {
    if let [change] = changes {
        return sub
            .apply(change, visible, store)
            .await
            .map_err(|e| e.to_string());
    }
    sub.reload(visible, store).await.map_err(|e| e.to_string())
}

/// [`update_window`] for a marked window: its diff is the flush's.
async fn absorb_into_window<C: SqlConn>(
    sub: &mut Subscription,
    changes: &[Change],
    visible: &dyn Fn(&Row) -> bool,
    store: &ShardStore<C>,
) -> Result<(), String> {
    if let [change] = changes {
        return sub
            .absorb(change, visible, store)
            .await
            .map_err(|e| e.to_string());
    }
    sub.absorb_reload(visible, store)
        .await
        .map_err(|e| e.to_string())
}

/// Sends `d` (the window's change up to `seq`) to each member of `w`: one
/// message per distinct (subscription id, from seq), since members that
/// share both (the same app code on every client) get identical frames.
/// Members of `paused` connections are skipped and keep their seq.
fn send_diff(
    w: &Window,
    subs: &mut SubKeyMap<LiveSub>,
    paused: &HashSet<String>,
    d: live::Diff,
    seq: u64,
    out: &mut Vec<Outbound>,
) {
    let mut groups: Vec<((String, u64), Vec<String>)> = Vec::new();
    for m in &w.members {
        let Some(live) = subs.get_mut(m) else {
            continue;
        };
        if live.seq >= seq {
            continue; // answered after these changes: it holds them already
        }
        if !paused.is_empty() && paused.contains(&live.conn) {
            continue; // its identity ended: caught up when renewed
        }
        let at = (live.id.as_str(), live.seq);
        match groups
            .iter_mut()
            .find(|((id, from), _)| (id.as_str(), *from) == at)
        {
            Some((_, conns)) => conns.push(live.conn.clone()),
            None => groups.push(((live.id.clone(), live.seq), vec![live.conn.clone()])),
        }
        live.seq = seq;
    }
    let mut d = Some(d);
    let last = groups.len();
    for (i, ((id, from), conns)) in groups.into_iter().enumerate() {
        let diff = if i + 1 == last {
            d.take().expect("taken once, last")
        } else {
            d.clone().expect("not taken yet")
        };
        out.push(Outbound::Many {
            conns,
            msg: to_wire(&id, from, seq, diff),
        });
    }
}

/// Reloads a window that could not be maintained and sends each member a
/// reset and the fresh snapshot. `false` if even the reload failed.
async fn resync_window<C: SqlConn>(
    w: &mut Window,
    manifest: &Manifest,
    subs: &mut SubKeyMap<LiveSub>,
    paused: &HashSet<String>,
    store: &ShardStore<C>,
    seq: u64,
    out: &mut Vec<Outbound>,
) -> bool {
    let entity = w.sub.query().entity.clone();
    let visible = readable(manifest, &entity, &w.auth);
    let Ok(new) = Subscription::load(w.sub.query().clone(), &visible, store).await else {
        return false;
    };
    w.sub = new;
    for m in &w.members {
        let Some(live) = subs.get_mut(m) else {
            continue;
        };
        if paused.contains(&live.conn) {
            continue;
        }
        let fresh = snap(&live.id, seq, &w.sub);
        out.extend(reset_then(
            &live.conn,
            &live.id,
            reset_reason::RESYNC,
            fresh,
        ));
        live.seq = seq;
    }
    true
}

impl<C: SqlConn> ShardEngine<C> {
    /// Applies the changes of `seq` to every window they can affect. Sends
    /// the diffs now, or, when coalescing, leaves them for the next flush.
    pub(super) async fn fan_out(&mut self, changes: &[Change], seq: u64) -> Vec<Outbound> {
        self.watches.mark(changes);
        let mut out = self.sweep_ended();
        let mut keys: Vec<SubKey> = Vec::new();
        let mut of_one: Vec<SubKey> = Vec::new();
        for ch in changes {
            // `affected_into` clears its buffer: every change's windows,
            // not only the last one's (a mutation writing two entities, or
            // two rows in different buckets of an indexed field).
            self.index.affected_into(ch, &mut of_one);
            keys.extend_from_slice(&of_one);
        }
        keys.sort_unstable_by_key(|k| k.0);
        keys.dedup();
        let coalescing = self.coalescing();
        let Self {
            store,
            manifest,
            subs,
            windows,
            dirty,
            paused,
            ..
        } = self;
        let mut advanced: Vec<SubKey> = Vec::new();
        for key in keys {
            let Some(w) = windows.get_mut(&key) else {
                continue;
            };
            let entity = w.sub.query().entity.clone();
            let visible = readable(manifest, &entity, &w.auth);
            if coalescing {
                if !w.sub.is_marked() {
                    // The next flush diffs against the window as it is now.
                    w.sub.mark();
                    dirty.push(key);
                }
                if !w.resync
                    && absorb_into_window(&mut w.sub, changes, &visible, store)
                        .await
                        .is_err()
                {
                    w.resync = true;
                }
                continue;
            }
            let diff = if w.resync {
                // A reload failed before: try it again rather than apply
                // this write to rows that may be behind.
                Err(String::new())
            } else {
                update_window(&mut w.sub, changes, &visible, store).await
            };
            drop(visible);
            match diff {
                Ok(d) if d.is_empty() => {}
                Ok(d) => {
                    send_diff(w, subs, paused, d, seq, &mut out);
                    advanced.push(key);
                }
                Err(_) => {
                    let reloaded =
                        resync_window(w, manifest, subs, paused, store, seq, &mut out).await;
                    // Until a reload works its rows may be behind storage:
                    // no before-image is taken from it (`held_row`).
                    w.resync = !reloaded;
                    if reloaded {
                        advanced.push(key);
                    }
                }
            }
        }
        self.advance_windows(&advanced, seq);
        out
    }

    /// Records that `keys` sent at `seq`, in memory and in storage.
    fn advance_windows(&mut self, keys: &[SubKey], seq: u64) {
        for k in keys {
            if let Some(w) = self.windows.get_mut(k) {
                w.sent = seq;
            }
        }
        let idents: Vec<&str> = keys
            .iter()
            .filter_map(|k| self.windows.get(k))
            .map(|w| w.ident.as_str())
            .collect();
        if let Err(e) = self.store.advance_windows(&idents, seq) {
            // The diffs are still right; a later resume may just send a
            // fresh snapshot for these subscriptions.
            let _ = e;
        }
    }

    /// Sends what coalescing held back: one diff per changed window
    /// covering every write since the last flush, then the acks (and
    /// errors) of those writes, in order. Nothing when nothing is held.
    pub async fn flush(&mut self) -> Vec<Outbound> {
        if !self.has_unflushed() {
            return Vec::new();
        }
        let mut out = self.sweep_ended();
        // The queued writes first, in arrival order: their diffs are only
        // marked on the windows, their answers wait in `pending`.
        let queued = std::mem::take(&mut self.queued);
        self.apply_batch(queued, &mut out).await;
        let seq = match self.store.seq() {
            Ok(s) => s,
            Err(_) => {
                // Without the seq no diff can be labelled; the acks still
                // go (the writes are durable), the windows stay dirty.
                out.append(&mut self.pending);
                return out;
            }
        };
        let dirty = std::mem::take(&mut self.dirty);
        let mut advanced = Vec::new();
        {
            let Self {
                store,
                manifest,
                subs,
                windows,
                paused,
                ..
            } = self;
            for key in dirty {
                let Some(w) = windows.get_mut(&key) else {
                    continue; // every member left
                };
                if !w.sub.is_marked() {
                    continue;
                }
                if std::mem::take(&mut w.resync) {
                    // The reset and snapshot replace the diff; a window
                    // still behind is marked again by its next write.
                    w.sub.unmark();
                    if resync_window(w, manifest, subs, paused, store, seq, &mut out).await {
                        advanced.push(key);
                    } else {
                        // Still behind storage: tried again by the flush
                        // after its next write, and no before-image is
                        // taken from it meanwhile.
                        w.resync = true;
                    }
                    continue;
                }
                let d = w.sub.take_diff();
                if !d.is_empty() {
                    send_diff(w, subs, paused, d, seq, &mut out);
                    advanced.push(key);
                }
            }
        }
        self.advance_windows(&advanced, seq);
        // Watched functions see the whole flush; their values go before
        // the acks, like the diffs.
        out.extend(self.rerun_watches().await);
        out.append(&mut self.pending);
        out
    }
}
