//! `sub` and `unsub`: a subscription's first answer (a snapshot, or what it
//! missed since its `since`) and its removal.

use std::collections::{BTreeMap, HashMap};

use super::errors::{err, query_err, storage_err};
use super::frames::{reset_then, snap, to_wire};
use super::ops::id_of;
use super::windows::readable;
use super::{Outbound, ShardEngine};
use crate::live::{self, SubKey, Subscription};
use crate::protocol::{self, reset_reason, Encoding, ErrorCode, ErrorMsg};
use crate::query::Query;
use crate::shard::store::{LogEntry, StoredSub};
use crate::storage::{SqlConn, StorageError};
use crate::value::{Row, Value};

/// The query JSON of a `sub`, in the query language's shape.
fn sub_query_json(s: &protocol::Sub) -> Value {
    let mut q = BTreeMap::new();
    q.insert("entity".to_owned(), Value::from(s.entity.as_str()));
    if !s.r#where.is_null() {
        q.insert("where".to_owned(), s.r#where.clone());
    }
    if !s.order.is_null() {
        q.insert("order".to_owned(), s.order.clone());
    }
    if let Some(l) = s.limit {
        q.insert("limit".to_owned(), Value::Int(l as i64));
    }
    if s.count {
        q.insert("count".to_owned(), Value::Bool(true));
    }
    Value::Map(q)
}

impl<C: SqlConn> ShardEngine<C> {
    pub(super) async fn subscribe(
        &mut self,
        conn: &str,
        s: protocol::Sub,
    ) -> Result<Vec<Outbound>, ErrorMsg> {
        let c = &self.conns[conn];
        if c.subs.contains_key(&s.id) {
            return Err(err(
                ErrorCode::DuplicateSubscription,
                format!("subscription {:?} is already open", s.id),
            ));
        }
        if c.subs.len() >= self.config.limits.max_subs_per_conn as usize {
            return Err(err(
                ErrorCode::TooManySubscriptions,
                format!(
                    "at most {} subscriptions per connection",
                    self.config.limits.max_subs_per_conn
                ),
            ));
        }
        let entity = self.entity(&s.entity)?;
        let query_json = sub_query_json(&s);
        let query = Query::parse(entity, &query_json).map_err(|e| query_err(&e))?;
        let auth = c.info.auth.clone();
        let encoding = c.info.encoding;
        let seq = self.store.seq().map_err(|e| storage_err(&e))?;
        let window = self
            .window_for(&query_json, query, &auth)
            .await
            .map_err(|e| storage_err(&e))?;
        let result = self.answer_sub(conn, &s, encoding, window, seq).await;
        match result {
            Ok(out) => {
                self.store
                    .put_sub(&StoredSub {
                        conn: conn.to_owned(),
                        id: s.id.clone(),
                        query: query_json,
                        seq,
                    })
                    .map_err(|e| storage_err(&e))?;
                self.add_live(conn.to_owned(), s.id, window, seq);
                Ok(out)
            }
            Err(e) => {
                self.release_window(window, None);
                Err(e)
            }
        }
    }

    /// The first answer to a `sub` over `window`: a snapshot, or what was
    /// missed since the client's `since`.
    async fn answer_sub(
        &self,
        conn: &str,
        s: &protocol::Sub,
        encoding: Encoding,
        window: SubKey,
        seq: u64,
    ) -> Result<Vec<Outbound>, ErrorMsg> {
        let w = &self.windows[&window];
        let sub = &w.sub;
        let visible = readable(&self.manifest, &sub.query().entity, &w.auth);
        // Built once: measured against the frame limit, then sent if it is
        // the answer.
        let snap_msg = snap(&s.id, seq, sub);
        let size = protocol::encode_server(encoding, &snap_msg).len();
        if size > self.config.limits.max_frame_bytes {
            return Err(err(
                ErrorCode::ResultTooLarge,
                format!("the result is {size} bytes, over the {} byte frame limit: narrow it or lower limit", self.config.limits.max_frame_bytes),
            ));
        }
        let mut out = Vec::new();
        match s.since {
            Some(since) if since <= seq => match self.missed(sub, &visible, since, seq).await {
                Ok(Some(diff)) => out.push(Outbound::To(
                    conn.to_owned(),
                    to_wire(&s.id, since, seq, diff),
                )),
                Ok(None) => out.extend(reset_then(conn, &s.id, reset_reason::TOO_OLD, snap_msg)),
                Err(e) => return Err(storage_err(&e)),
            },
            // A seq this shard never reached: the client's state is from
            // elsewhere (another deployment, wiped storage).
            Some(_) => out.extend(reset_then(conn, &s.id, reset_reason::RESYNC, snap_msg)),
            None => out.push(Outbound::To(conn.to_owned(), snap_msg)),
        }
        Ok(out)
    }

    /// The one diff that takes a client from its window at `since` to the
    /// current window, or `None` when the log does not reach back or too much
    /// changed (then the client gets a reset and a fresh snapshot).
    pub(super) async fn missed(
        &self,
        now: &Subscription,
        visible: &dyn Fn(&Row) -> bool,
        since: u64,
        seq: u64,
    ) -> Result<Option<live::Diff>, StorageError> {
        if since == seq {
            return Ok(Some(live::Diff::default()));
        }
        match self.store.log_range()? {
            Some((oldest, _)) if oldest <= since + 1 => {}
            _ => return Ok(None),
        }
        let q = now.query();
        // The earliest before-image of each row touched since `since`.
        let mut touched: HashMap<String, Option<Row>> = HashMap::new();
        for LogEntry {
            entity, id, before, ..
        } in self.store.log_since(since)?
        {
            if entity == q.entity {
                touched.entry(id).or_insert(before);
            }
        }
        if touched.len() > self.config.max_resume_rows {
            return Ok(None);
        }
        let admitted = |r: &Row| q.admits(r) && visible(r);
        if q.count {
            let mut then = now.count() as i64;
            let entity = self
                .manifest
                .entity(&q.entity)
                .expect("subscribed entities exist");
            for (id, before) in &touched {
                if self
                    .store
                    .get_row(entity, id)?
                    .as_ref()
                    .is_some_and(admitted)
                {
                    then -= 1;
                }
                if before.as_ref().is_some_and(admitted) {
                    then += 1;
                }
            }
            return Ok(Some(if then == now.count() as i64 {
                live::Diff::default()
            } else {
                live::Diff {
                    count: Some(now.count()),
                    ..Default::default()
                }
            }));
        }
        // The window at `since`: untouched rows as they are now, plus the
        // touched rows as they were, in order, cut to the limit.
        let limit = q.limit.unwrap_or(usize::MAX);
        let mut then: Vec<Row> = Vec::new();
        let mut after: Option<Row> = None;
        let page = 256.min(limit.saturating_add(touched.len())).max(1);
        loop {
            let batch = self.store.query_rows(&q.page(after.as_ref(), page))?;
            let n = batch.len();
            for r in &batch {
                if !touched.contains_key(id_of(r)) && visible(r) {
                    then.push(r.clone());
                }
            }
            if n < page || then.len() >= limit {
                break;
            }
            after = batch.into_iter().next_back();
        }
        then.extend(touched.into_values().flatten().filter(|r| admitted(r)));
        then.sort_by(|a, b| q.compare(a, b));
        then.truncate(limit);
        Ok(Some(live::between(&then, now.rows())))
    }

    pub(super) fn unsubscribe(&mut self, conn: &str, id: &str) -> Result<Vec<Outbound>, ErrorMsg> {
        let c = self
            .conns
            .get_mut(conn)
            .expect("caller checked the connection");
        let Some(key) = c.subs.remove(id) else {
            return Err(ErrorMsg {
                sub: Some(id.to_owned()),
                ..err(
                    ErrorCode::UnknownSubscription,
                    format!("no open subscription {id:?}"),
                )
            });
        };
        self.remove_live(key);
        self.store
            .delete_sub(conn, id)
            .map_err(|e| storage_err(&e))?;
        Ok(Vec::new())
    }
}
