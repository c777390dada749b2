//! Which functions an app has: Rust ones registered by name in one place
//! ([`Functions`]), and the TypeScript bundle's ([`ScriptFunctions`]).

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

use super::{Ctx, Db, FnError};
use crate::host::Pending;
use crate::policy::AuthContext;
use crate::shard::rooms::RoomOp;
use crate::value::Value;

/// The three kinds of function.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FnKind {
    /// Reads; may be subscribed to (`watch`).
    Query,
    /// Reads and writes, all or nothing, inside the shard's turn.
    Mutation,
    /// Runs outside any transaction; may do I/O; calls the others.
    Action,
}

impl FnKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FnKind::Query => "query",
            FnKind::Mutation => "mutation",
            FnKind::Action => "action",
        }
    }
}

/// A function's name, kind and whether policies are skipped for it.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct FunctionInfo {
    pub name: String,
    pub kind: FnKind,
    /// Trusted functions read and write as the shard itself: policies are
    /// not applied to their `ctx.db` calls (`ctx.auth` is still the caller).
    #[serde(default)]
    pub trusted: bool,
}

/// A Rust query or mutation.
pub type RustFn = Arc<dyn Fn(&mut Ctx<'_>, Value) -> Result<Value, FnError> + Send + Sync>;

/// How an action calls queries and mutations by name (the runtime
/// implements it: in the Worker, a request to the shard).
pub trait ActionHost {
    fn run<'a>(
        &'a self,
        kind: FnKind,
        name: &'a str,
        args: Value,
    ) -> Pending<'a, Result<Value, FnError>>;

    /// Publishes `data` to `channel` as the action's caller (docs/pubsub.md):
    /// `{id, at}`. A host that cannot reach channels refuses.
    fn publish<'a>(&'a self, channel: &'a str, data: Value) -> Pending<'a, Result<Value, FnError>> {
        let _ = (channel, data);
        Box::pin(async {
            Err(FnError::new(
                crate::protocol::ErrorCode::Unavailable,
                "this run cannot publish to channels",
            ))
        })
    }

    /// One operation of the rooms API (docs/rooms.md) as the action's
    /// caller, under the same rules and with the same refusals as over
    /// HTTP: `body` is the route's body (`{after?, limit?}` for
    /// [`RoomOp::List`], whose `room` is empty), the answer its answer. A
    /// host that cannot reach rooms refuses.
    fn room<'a>(
        &'a self,
        op: RoomOp,
        room: &'a str,
        body: serde_json::Value,
    ) -> Pending<'a, Result<Value, FnError>> {
        let _ = (op, room, body);
        Box::pin(async {
            Err(FnError::new(
                crate::protocol::ErrorCode::Unavailable,
                "this run cannot reach rooms",
            ))
        })
    }
}

/// What a Rust action gets: the caller, and the shard's queries and
/// mutations by name.
pub struct ActionCtx<'a> {
    pub auth: &'a AuthContext,
    pub host: &'a dyn ActionHost,
}

impl ActionCtx<'_> {
    pub async fn run_query(&self, name: &str, args: Value) -> Result<Value, FnError> {
        self.host.run(FnKind::Query, name, args).await
    }

    pub async fn run_mutation(&self, name: &str, args: Value) -> Result<Value, FnError> {
        self.host.run(FnKind::Mutation, name, args).await
    }

    /// Publishes `data` to `channel` (docs/pubsub.md) as the caller, whom
    /// the manifest's `channels` rules must let publish: `{id, at}`.
    pub async fn publish(&self, channel: &str, data: Value) -> Result<Value, FnError> {
        self.host.publish(channel, data).await
    }

    /// The function's own error, as [`Ctx::error`].
    pub fn error(&self, code: &str, message: impl Into<String>) -> FnError {
        FnError::app(code, message)
    }

    /// The rooms API (docs/rooms.md) as the caller: Pylon's `RoomOps`.
    pub fn rooms(&self) -> RoomOps<'_> {
        RoomOps { host: self.host }
    }
}

/// An action's rooms (`ActionCtx::rooms`), acting as its caller: the
/// shard rules let it into the room, and it joins, updates and removes
/// only itself unless it is an admin. A refusal is the HTTP API's, as
/// a [`FnError`] of the nearest code whose message starts with the
/// API's own (`"BAD_MEMBER: …"`, `"FORBIDDEN: …"`).
pub struct RoomOps<'a> {
    host: &'a dyn ActionHost,
}

impl RoomOps<'_> {
    /// Adds (or updates) `member` with its presence (`Value::Null`: `{}`);
    /// with `ttl_ms` it leaves that long after.
    pub async fn join(
        &self,
        room: &str,
        member: &str,
        presence: Value,
        ttl_ms: Option<i64>,
    ) -> Result<(), FnError> {
        let presence = (!presence.is_null()).then_some(presence);
        let body = member_body(member, presence, ttl_ms);
        self.host.room(RoomOp::Join, room, body).await.map(drop)
    }

    /// Replaces a member's presence (`ttl_ms` renews its time);
    /// `MEMBER_NOT_FOUND` if it is not in the room.
    pub async fn set_presence(
        &self,
        room: &str,
        member: &str,
        presence: Value,
        ttl_ms: Option<i64>,
    ) -> Result<(), FnError> {
        let body = member_body(member, Some(presence), ttl_ms);
        self.host.room(RoomOp::Presence, room, body).await.map(drop)
    }

    /// Removes a member: whether it was in the room.
    pub async fn leave(&self, room: &str, member: &str) -> Result<bool, FnError> {
        let body = member_body(member, None, None);
        let answer = self.host.room(RoomOp::Leave, room, body).await?;
        let answer = serde_json::to_value(&answer).unwrap_or_default();
        Ok(answer["left"] == serde_json::Value::Bool(true))
    }

    /// A `bcast` of `topic` and `data` to every socket of the room.
    pub async fn broadcast(&self, room: &str, topic: &str, data: Value) -> Result<(), FnError> {
        let body = serde_json::json!({ "topic": topic, "data": data });
        self.host
            .room(RoomOp::Broadcast, room, body)
            .await
            .map(drop)
    }

    /// The room's size and members: `{room, size, members, sockets}`.
    pub async fn get(&self, room: &str) -> Result<Value, FnError> {
        self.host
            .room(RoomOp::Get, room, serde_json::Value::Null)
            .await
    }

    /// Rooms with members that the caller may enter, by name, after
    /// `after`, `limit` of them (1 to 1000; `None`: 100): `{rooms, next}`.
    pub async fn list(&self, after: Option<&str>, limit: Option<u32>) -> Result<Value, FnError> {
        let body = serde_json::json!({ "after": after, "limit": limit });
        self.host.room(RoomOp::List, "", body).await
    }
}

fn member_body(member: &str, presence: Option<Value>, ttl_ms: Option<i64>) -> serde_json::Value {
    let mut body = serde_json::json!({ "member": member });
    if let Some(p) = presence {
        body["presence"] = serde_json::to_value(&p).unwrap_or_default();
    }
    if let Some(t) = ttl_ms {
        body["ttlMs"] = serde_json::json!(t);
    }
    body
}

/// A Rust action: an async function of its context and arguments.
pub type RustAction =
    Arc<dyn for<'a> Fn(ActionCtx<'a>, Value) -> Pending<'a, Result<Value, FnError>> + Send + Sync>;

/// The TypeScript functions bundled into the Worker (the wasm glue
/// implements this over the bundle's registry; see docs/functions.md).
pub trait ScriptFunctions: Send + Sync {
    /// Every function of the bundle.
    fn list(&self) -> Vec<FunctionInfo>;
    /// Runs a query or mutation over `db`, or an action over `host`; the
    /// runtime validates `args` against the function's validators.
    fn run<'a>(
        &'a self,
        name: &'a str,
        kind: FnKind,
        auth: &'a AuthContext,
        db: Option<&'a mut dyn Db>,
        host: Option<std::rc::Rc<dyn ActionHost>>,
        args: &'a Value,
    ) -> Pending<'a, Result<Value, FnError>>;
}

/// A Rust function as registered.
#[derive(Clone)]
pub enum RustBody {
    Sync(RustFn),
    Action(RustAction),
}

/// Where a function found by name lives.
pub enum Found<'a> {
    Rust(&'a RustBody),
    Script(&'a dyn ScriptFunctions),
}

/// An app's functions: Rust ones registered here, by name, plus the
/// TypeScript bundle's (a name may be one or the other, not both: the
/// Rust one wins and `cargo test` of the app can check with
/// [`Functions::clashes`]).
#[derive(Clone, Default)]
pub struct Functions {
    rust: BTreeMap<String, (FunctionInfo, RustBody)>,
    scripts: Option<Arc<dyn ScriptFunctions>>,
    script_list: Arc<OnceLock<Vec<FunctionInfo>>>,
}

impl Functions {
    pub fn new() -> Self {
        Functions::default()
    }

    fn add(mut self, name: &str, kind: FnKind, trusted: bool, body: RustBody) -> Self {
        assert!(
            super::valid_name(name),
            "function name {name:?}: a letter, then letters, digits or _, at most 64"
        );
        let info = FunctionInfo {
            name: name.to_owned(),
            kind,
            trusted,
        };
        self.rust.insert(name.to_owned(), (info, body));
        self
    }

    pub fn query<F>(self, name: &str, f: F) -> Self
    where
        F: Fn(&mut Ctx<'_>, Value) -> Result<Value, FnError> + Send + Sync + 'static,
    {
        self.add(name, FnKind::Query, false, RustBody::Sync(Arc::new(f)))
    }

    pub fn mutation<F>(self, name: &str, f: F) -> Self
    where
        F: Fn(&mut Ctx<'_>, Value) -> Result<Value, FnError> + Send + Sync + 'static,
    {
        self.add(name, FnKind::Mutation, false, RustBody::Sync(Arc::new(f)))
    }

    /// A mutation whose `ctx.db` calls skip the policies.
    pub fn trusted_mutation<F>(self, name: &str, f: F) -> Self
    where
        F: Fn(&mut Ctx<'_>, Value) -> Result<Value, FnError> + Send + Sync + 'static,
    {
        self.add(name, FnKind::Mutation, true, RustBody::Sync(Arc::new(f)))
    }

    pub fn action<F>(self, name: &str, f: F) -> Self
    where
        F: for<'a> Fn(ActionCtx<'a>, Value) -> Pending<'a, Result<Value, FnError>>
            + Send
            + Sync
            + 'static,
    {
        self.add(name, FnKind::Action, false, RustBody::Action(Arc::new(f)))
    }

    /// The TypeScript bundle's functions (the runtime sets this).
    pub fn with_scripts(mut self, scripts: Arc<dyn ScriptFunctions>) -> Self {
        self.scripts = Some(scripts);
        self.script_list = Arc::new(OnceLock::new());
        self
    }

    fn script_list(&self) -> &[FunctionInfo] {
        match &self.scripts {
            Some(s) => self.script_list.get_or_init(|| s.list()),
            None => &[],
        }
    }

    /// The function named `name`, if any.
    pub fn lookup(&self, name: &str) -> Option<FunctionInfo> {
        if let Some((info, _)) = self.rust.get(name) {
            return Some(info.clone());
        }
        self.script_list().iter().find(|f| f.name == name).cloned()
    }

    /// Where `name` runs.
    pub fn find(&self, name: &str) -> Option<(FunctionInfo, Found<'_>)> {
        if let Some((info, body)) = self.rust.get(name) {
            return Some((info.clone(), Found::Rust(body)));
        }
        let info = self.script_list().iter().find(|f| f.name == name)?.clone();
        Some((info, Found::Script(self.scripts.as_deref()?)))
    }

    /// Every function, Rust first, by name.
    pub fn list(&self) -> Vec<FunctionInfo> {
        let mut all: Vec<FunctionInfo> = self.rust.values().map(|(i, _)| i.clone()).collect();
        all.extend(
            self.script_list()
                .iter()
                .filter(|f| !self.rust.contains_key(&f.name))
                .cloned(),
        );
        all
    }

    /// Names defined both in Rust and in the bundle.
    pub fn clashes(&self) -> Vec<String> {
        self.script_list()
            .iter()
            .filter(|f| self.rust.contains_key(&f.name))
            .map(|f| f.name.clone())
            .collect()
    }
}
