//! Server functions from the client (docs/functions.md): `call` runs a
//! query or mutation in the shard and waits for its `result`, resent with
//! the same op id across reconnects like a `mut`; `watch` keeps a query
//! function's result up to date ([`FnWatch`]).

use tokio::sync::{mpsc, oneshot, watch};

use super::{driver, new_op_id, wait_view, Client, ClientError, SubStatus};
use crate::protocol::Returned;
use crate::value::Value;

/// The id of watch `key` on the wire (subscriptions are `s<n>`).
pub(super) fn watch_wire_id(key: u64) -> String {
    format!("w{key}")
}

/// The key of a watch's wire id.
pub(super) fn watch_key(id: &str) -> Option<u64> {
    id.strip_prefix('w')?.parse().ok()
}

/// What a watched function holds at one moment.
#[derive(Clone, Debug, PartialEq)]
pub struct WatchView {
    /// The function's latest result (`Null` until the first `value`: see `seq`).
    pub value: Value,
    /// The seq the value was computed at (`None` before the first `value`).
    pub seq: Option<u64>,
    /// `Pending` until the first value, then `Live`; `Failed` when the
    /// server refused the watch (not retried), `Closed` with the client.
    pub status: SubStatus,
    /// Incremented on every change of this view.
    pub version: u64,
}

impl WatchView {
    fn new() -> WatchView {
        WatchView {
            value: Value::Null,
            seq: None,
            status: SubStatus::Pending,
            version: 0,
        }
    }
}

/// A handle on one watched query function. Dropping it sends `unsub`.
#[derive(Debug)]
pub struct FnWatch {
    key: u64,
    view: watch::Receiver<WatchView>,
    cmds: mpsc::UnboundedSender<driver::Command>,
}

impl FnWatch {
    /// This watch's number within the client (the wire id is `w<n>`).
    pub fn id(&self) -> u64 {
        self.key
    }

    /// A copy of the latest value.
    pub fn value(&self) -> Value {
        self.view.borrow().value.clone()
    }

    /// The seq of the latest value.
    pub fn seq(&self) -> Option<u64> {
        self.view.borrow().seq
    }

    pub fn status(&self) -> SubStatus {
        self.view.borrow().status.clone()
    }

    /// A copy of the current view.
    pub fn view(&self) -> WatchView {
        self.view.borrow().clone()
    }

    /// Waits for the next change of the view; fails once the watch is
    /// refused or the client closed.
    pub async fn changed(&mut self) -> Result<(), ClientError> {
        if self.view.changed().await.is_err() {
            return Err(ClientError::Closed { code: None });
        }
        self.view.borrow_and_update().status.clone().into_result()
    }

    /// Waits until `pred` holds for the view and returns a copy of it.
    pub async fn wait_for(
        &mut self,
        pred: impl FnMut(&WatchView) -> bool,
    ) -> Result<WatchView, ClientError> {
        wait_view(&mut self.view, |v| &v.status, pred).await
    }

    /// Waits for the first value (at once if there was one).
    pub async fn ready(&mut self) -> Result<(), ClientError> {
        self.wait_for(|v| v.seq.is_some()).await.map(drop)
    }

    /// Waits until the value was computed at `seq` or later.
    pub async fn wait_seq(&mut self, seq: u64) -> Result<WatchView, ClientError> {
        self.wait_for(|v| v.seq.is_some_and(|s| s >= seq)).await
    }

    /// Stops watching (same as dropping the handle).
    pub fn unwatch(self) {}
}

impl Drop for FnWatch {
    fn drop(&mut self) {
        let _ = self.cmds.send(driver::Command::Unwatch { key: self.key });
    }
}

impl Client {
    /// Runs server function `name` (a query or a mutation) with `args` and
    /// returns its value, or its `err` as [`ClientError::Server`]
    /// (`FUNCTION_ERROR`, `WRONG_KIND`, …). Like [`Client::mutate`]: a fresh
    /// op id, sent again with the same id after a reconnect until
    /// answered, so a mutation is applied once.
    pub async fn call(&self, name: &str, args: Value) -> Result<Value, ClientError> {
        self.call_with_id(new_op_id(), name, args)
            .await
            .map(|r| r.value)
    }

    /// [`Client::call`] with a caller-chosen op id; the whole `result`: the
    /// seq a mutation committed at (every subscription shows it when this
    /// returns) and `dup` when the op had been applied before.
    pub async fn call_with_id(
        &self,
        op: String,
        name: &str,
        args: Value,
    ) -> Result<Returned, ClientError> {
        let (reply, rx) = oneshot::channel();
        self.send(driver::Command::Call {
            op,
            name: name.to_owned(),
            args,
            reply,
        })?;
        rx.await.unwrap_or(Err(ClientError::Closed { code: None }))
    }

    /// Watches query function `name` with `args` and waits for its first
    /// value (or the `err` for it). The server sends a new value whenever
    /// a write changes the result; after a reconnect the watch is sent
    /// again and answered with the current value.
    pub async fn watch(&self, name: &str, args: Value) -> Result<FnWatch, ClientError> {
        let mut w = self.watch_lazy(name, args)?;
        w.ready().await?;
        Ok(w)
    }

    /// [`Client::watch`] without waiting for the first value.
    pub fn watch_lazy(&self, name: &str, args: Value) -> Result<FnWatch, ClientError> {
        let key = self
            .next_sub
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let (view_tx, view) = watch::channel(WatchView::new());
        self.send(driver::Command::Watch {
            key,
            name: name.to_owned(),
            args,
            view: view_tx,
        })?;
        Ok(FnWatch {
            key,
            view,
            cmds: self.cmds.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn watch_ids_round_trip_and_others_are_not_watches() {
        assert_eq!(watch_key(&watch_wire_id(42)), Some(42));
        for other in ["s42", "w", "wx", "", "w-1", "42"] {
            assert_eq!(watch_key(other), None, "{other:?}");
        }
    }
}
