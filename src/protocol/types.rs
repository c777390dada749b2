//! Every message of `pylon.v1`, as plain Rust types.
//!
//! These types are the in-memory form. The wire forms are produced only by
//! [`super::encode_client`] / [`super::encode_server`] and read only by
//! [`super::decode_client`] / [`super::decode_server`]:
//!
//! * JSON: an object whose `"type"` names the message, plus the fields below
//!   under the same names (snake_case). Written by hand in `json.rs`.
//! * postcard: the serde derive on these types (externally tagged). The
//!   order of enum variants and of struct fields is therefore part of the
//!   wire format: append new variants at the end, never reorder.
//!
//! The serde impls here are the postcard form only; do not feed these types
//! to `serde_json` directly.

use serde::{Deserialize, Serialize};

use super::bounded;
use crate::value::{Row, Value};

/// The protocol name carried in `welcome.protocol`.
pub const PROTOCOL: &str = "pylon.v1";

// ---------------------------------------------------------------------------
// Client → server
// ---------------------------------------------------------------------------

/// A message from a client. Variant order is wire format (postcard).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum ClientMsg {
    /// `hello`: identify and (re)authenticate. Answered by `welcome`.
    Hello(Hello),
    /// `sub`: start a live query. Answered by `snap` (or diffs when resuming).
    Sub(Sub),
    /// `unsub`: stop a live query. Not answered.
    Unsub(Unsub),
    /// `mut`: apply ops all or nothing. Answered by `ack` or `err`.
    Mut(Mut),
    /// `presence`: set (or with `null`, clear) this connection's presence.
    Presence(Presence),
    /// `bcast`: send an ephemeral message to every other connection.
    Bcast(SendBcast),
    /// `ping`: answered by `pong` with the same `t`.
    Ping(Ping),
    /// `call`: run a server function. Answered by `result` or `err`.
    Call(Call),
    /// `watch`: subscribe to a query function. Answered by `value` now and
    /// whenever its result changes; `unsub` with the same id stops it.
    Watch(Watch),
}

#[derive(Clone, Debug, PartialEq, Default, Serialize, Deserialize)]
pub struct Hello {
    /// Free-form client name and version, for logs (`"web/1.4.2"`).
    pub client: Option<String>,
    /// Bearer token; replaces any credentials the connection had.
    pub token: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Default, Serialize, Deserialize)]
pub struct Sub {
    /// Client-chosen subscription id, unique among the connection's live
    /// subscriptions.
    pub id: String,
    /// Entity name as in the manifest.
    pub entity: String,
    /// Filter, parsed by the query module. `Null` (or absent) = every row.
    #[serde(deserialize_with = "bounded::value")]
    pub r#where: Value,
    /// Ordering, parsed by the query module. `Null` (or absent) = by id.
    #[serde(deserialize_with = "bounded::value")]
    pub order: Value,
    /// At most this many rows (after ordering).
    pub limit: Option<u32>,
    /// Resume: the `seq` of the last message the client applied for this
    /// same query. See docs/protocol.md, "Resuming".
    pub since: Option<u64>,
    /// Also maintain `count`, the number of matching rows ignoring `limit`.
    pub count: bool,
}

#[derive(Clone, Debug, PartialEq, Default, Serialize, Deserialize)]
pub struct Unsub {
    pub id: String,
}

#[derive(Clone, Debug, PartialEq, Default, Serialize, Deserialize)]
pub struct Mut {
    /// Client-chosen op id, globally unique (e.g. 128 random bits). Retrying
    /// with the same id never applies the ops twice.
    pub op: String,
    /// Applied in order, all or nothing.
    #[serde(deserialize_with = "bounded::vec")]
    pub ops: Vec<Op>,
}

/// One write inside a `mut`. Variant order is wire format (postcard).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Op {
    /// `{"type":"insert","entity":E,"row":{...}}`: fails with
    /// `ALREADY_EXISTS` when the id is taken. A row without `id` gets one.
    Insert {
        entity: String,
        #[serde(deserialize_with = "bounded::row")]
        row: Row,
    },
    /// `{"type":"update","entity":E,"id":I,"set":{...}}`: sets the given
    /// fields; `NOT_FOUND` when there is no such row.
    Update {
        entity: String,
        id: String,
        #[serde(deserialize_with = "bounded::row")]
        set: Row,
    },
    /// `{"type":"upsert","entity":E,"row":{...}}`: insert, or replace the
    /// whole row with that `id` (which is required).
    Upsert {
        entity: String,
        #[serde(deserialize_with = "bounded::row")]
        row: Row,
    },
    /// `{"type":"delete","entity":E,"id":I}`: `NOT_FOUND` when absent.
    Delete { entity: String, id: String },
}

impl Op {
    /// The wire name (`"type"` in JSON).
    pub fn name(&self) -> &'static str {
        match self {
            Op::Insert { .. } => "insert",
            Op::Update { .. } => "update",
            Op::Upsert { .. } => "upsert",
            Op::Delete { .. } => "delete",
        }
    }

    pub fn entity(&self) -> &str {
        match self {
            Op::Insert { entity, .. }
            | Op::Update { entity, .. }
            | Op::Upsert { entity, .. }
            | Op::Delete { entity, .. } => entity,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Default, Serialize, Deserialize)]
pub struct Presence {
    /// Any value; `Null` clears this connection's presence (a leave).
    #[serde(deserialize_with = "bounded::value")]
    pub state: Value,
}

#[derive(Clone, Debug, PartialEq, Default, Serialize, Deserialize)]
pub struct SendBcast {
    pub topic: String,
    #[serde(deserialize_with = "bounded::value")]
    pub data: Value,
}

/// `call`: run the function `name` with `args` (docs/functions.md).
#[derive(Clone, Debug, PartialEq, Default, Serialize, Deserialize)]
pub struct Call {
    /// Client-chosen op id, as for `mut`: a mutation retried with the same
    /// id is applied once and answered with its first result (`dup`).
    pub op: String,
    pub name: String,
    #[serde(deserialize_with = "bounded::value")]
    pub args: Value,
}

/// `watch`: keep the result of query function `name` up to date.
#[derive(Clone, Debug, PartialEq, Default, Serialize, Deserialize)]
pub struct Watch {
    /// Client-chosen id, in the same space as subscription ids.
    pub id: String,
    pub name: String,
    #[serde(deserialize_with = "bounded::value")]
    pub args: Value,
}

#[derive(Clone, Debug, PartialEq, Default, Serialize, Deserialize)]
pub struct Ping {
    /// Opaque to the server (typically the client's clock in ms), echoed.
    pub t: Option<u64>,
}

impl ClientMsg {
    /// The wire name (`"type"` in JSON).
    pub fn name(&self) -> &'static str {
        match self {
            ClientMsg::Hello(_) => "hello",
            ClientMsg::Sub(_) => "sub",
            ClientMsg::Unsub(_) => "unsub",
            ClientMsg::Mut(_) => "mut",
            ClientMsg::Presence(_) => "presence",
            ClientMsg::Bcast(_) => "bcast",
            ClientMsg::Ping(_) => "ping",
            ClientMsg::Call(_) => "call",
            ClientMsg::Watch(_) => "watch",
        }
    }
}

// ---------------------------------------------------------------------------
// Server → client
// ---------------------------------------------------------------------------

/// A message from the server. Variant order is wire format (postcard).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum ServerMsg {
    /// `welcome`: first message on every connection, and the answer to `hello`.
    Welcome(Welcome),
    /// `snap`: the full result of a subscription at `seq`.
    Snap(Snap),
    /// `diff`: the change of a subscription's result from `from` to `seq`.
    Diff(Diff),
    /// `reset`: drop what you hold for `id`; a fresh `snap` follows.
    Reset(Reset),
    /// `ack`: the mutation `op` is durable at `seq`.
    Ack(Ack),
    /// `err`: a request failed (the connection stays open).
    Err(ErrorMsg),
    /// `presence_state`: every member's presence (sent on join).
    PresenceState(PresenceState),
    /// `presence_diff`: presence changes since the last presence message.
    PresenceDiff(PresenceDiff),
    /// `bcast`: a broadcast from another connection.
    Bcast(Bcast),
    /// `pong`: answer to `ping`.
    Pong(Pong),
    /// `result`: what a `call` returned.
    Returned(Returned),
    /// `value`: a watched query function's result.
    FnValue(FnValue),
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Welcome {
    /// Always [`PROTOCOL`] (`"pylon.v1"`).
    pub protocol: String,
    /// Name of the shard (Durable Object) this connection talks to.
    pub shard: String,
    /// The shard's current seq.
    pub seq: u64,
    /// This connection's id, as seen in presence and `bcast.from`.
    pub conn: String,
    /// The encoding in use.
    pub encoding: super::Encoding,
    /// The send window, in bytes (docs/protocol.md, "Slow readers"): a
    /// client receipts each quarter of it. In JSON only, where a new
    /// optional field is allowed within v1; postcard has no field names,
    /// so its `welcome` keeps its fields and its clients the default step.
    /// `None` from servers that do not announce it.
    #[serde(skip)]
    pub window: Option<u64>,
}

#[derive(Clone, Debug, PartialEq, Default, Serialize, Deserialize)]
pub struct Snap {
    pub id: String,
    /// The result reflects every change up to and including `seq`.
    pub seq: u64,
    /// The result, in query order.
    #[serde(deserialize_with = "bounded::rows")]
    pub rows: Vec<Row>,
    /// Matching rows ignoring `limit`; present iff the `sub` asked for it.
    pub count: Option<u64>,
}

#[derive(Clone, Debug, PartialEq, Default, Serialize, Deserialize)]
pub struct Diff {
    pub id: String,
    /// The `seq` of the previous `snap`/`diff` for this subscription; the
    /// client refuses the diff unless it equals what it holds.
    pub from: u64,
    /// The result after this diff reflects every change up to `seq`.
    pub seq: u64,
    /// New rows, at their positions in the new result.
    #[serde(deserialize_with = "bounded::vec")]
    pub added: Vec<Positioned>,
    /// Rows whose content or position changed, at their new positions.
    #[serde(deserialize_with = "bounded::vec")]
    pub changed: Vec<Positioned>,
    /// Ids of rows that left the result.
    #[serde(deserialize_with = "bounded::vec")]
    pub removed: Vec<String>,
    pub count: Option<u64>,
}

/// A row and its index in the new result (`{pos, row}`).
#[derive(Clone, Debug, PartialEq, Default, Serialize, Deserialize)]
pub struct Positioned {
    pub pos: u32,
    #[serde(deserialize_with = "bounded::row")]
    pub row: Row,
}

#[derive(Clone, Debug, PartialEq, Default, Serialize, Deserialize)]
pub struct Reset {
    pub id: String,
    /// Why; one of the `reset_reason` constants or a newer string.
    pub reason: String,
}

/// Values of `reset.reason` this version sends. Clients must accept others.
pub mod reset_reason {
    /// `sub.since` is older than the shard's change log.
    pub const TOO_OLD: &str = "too_old";
    /// The schema changed under the subscription.
    pub const SCHEMA: &str = "schema";
    /// The server could not compute a diff (e.g. too large); re-snapshotting.
    pub const RESYNC: &str = "resync";
}

#[derive(Clone, Debug, PartialEq, Default, Serialize, Deserialize)]
pub struct Ack {
    pub op: String,
    /// The seq at which the mutation was committed.
    pub seq: u64,
    /// The op had already been applied; `seq` is from the first time.
    pub dup: bool,
}

/// `err`: a failed request. The connection stays open.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ErrorMsg {
    pub code: ErrorCode,
    /// Human-readable; not for matching.
    pub message: String,
    /// The `mut.op` that failed, if the error is about a mutation.
    pub op: Option<String>,
    /// The subscription id, if the error is about a subscription.
    pub sub: Option<String>,
}

impl ErrorMsg {
    /// The reasons an `UNAUTHORIZED` message starts with (then `:`) when
    /// an open connection's identity ended (docs/auth.md, "Open sockets").
    pub const IDENTITY_ENDED: [&'static str; 2] = ["TOKEN_EXPIRED", "SESSION_REVOKED"];

    /// Whether this says the connection's token expired or its session
    /// was revoked: a `hello` with a fresh token renews it.
    pub fn identity_ended(&self) -> bool {
        self.code == ErrorCode::Unauthorized
            && Self::IDENTITY_ENDED.iter().any(|r| {
                self.message
                    .strip_prefix(r)
                    .is_some_and(|rest| rest.starts_with(':'))
            })
    }
}

#[derive(Clone, Debug, PartialEq, Default, Serialize, Deserialize)]
pub struct PresenceState {
    #[serde(deserialize_with = "bounded::vec")]
    pub members: Vec<Member>,
}

#[derive(Clone, Debug, PartialEq, Default, Serialize, Deserialize)]
pub struct PresenceDiff {
    /// Connections that set a presence for the first time.
    #[serde(deserialize_with = "bounded::vec")]
    pub joins: Vec<Member>,
    /// Connections whose presence changed.
    #[serde(deserialize_with = "bounded::vec")]
    pub updates: Vec<Member>,
    /// Connections that cleared their presence or disconnected.
    #[serde(deserialize_with = "bounded::vec")]
    pub leaves: Vec<String>,
}

/// One connection's presence (`{conn, state}`).
#[derive(Clone, Debug, PartialEq, Default, Serialize, Deserialize)]
pub struct Member {
    pub conn: String,
    #[serde(deserialize_with = "bounded::value")]
    pub state: Value,
}

#[derive(Clone, Debug, PartialEq, Default, Serialize, Deserialize)]
pub struct Bcast {
    pub topic: String,
    #[serde(deserialize_with = "bounded::value")]
    pub data: Value,
    /// The sender's connection id.
    pub from: String,
}

#[derive(Clone, Debug, PartialEq, Default, Serialize, Deserialize)]
pub struct Pong {
    pub t: Option<u64>,
}

/// `result`: the answer to `call` `op`.
#[derive(Clone, Debug, PartialEq, Default, Serialize, Deserialize)]
pub struct Returned {
    pub op: String,
    /// A mutation that wrote: the seq it committed at (its diffs came
    /// before this). Otherwise the seq the function read at.
    pub seq: u64,
    #[serde(deserialize_with = "bounded::value")]
    pub value: Value,
    /// The op had already been applied: `value` and `seq` are the first
    /// call's.
    pub dup: bool,
}

/// `value`: the result of watch `id` as of `seq`.
#[derive(Clone, Debug, PartialEq, Default, Serialize, Deserialize)]
pub struct FnValue {
    pub id: String,
    pub seq: u64,
    #[serde(deserialize_with = "bounded::value")]
    pub value: Value,
}

impl ServerMsg {
    /// The wire name (`"type"` in JSON).
    pub fn name(&self) -> &'static str {
        match self {
            ServerMsg::Welcome(_) => "welcome",
            ServerMsg::Snap(_) => "snap",
            ServerMsg::Diff(_) => "diff",
            ServerMsg::Reset(_) => "reset",
            ServerMsg::Ack(_) => "ack",
            ServerMsg::Err(_) => "err",
            ServerMsg::PresenceState(_) => "presence_state",
            ServerMsg::PresenceDiff(_) => "presence_diff",
            ServerMsg::Bcast(_) => "bcast",
            ServerMsg::Pong(_) => "pong",
            ServerMsg::Returned(_) => "result",
            ServerMsg::FnValue(_) => "value",
        }
    }

    /// The `seq` this message reflects, for messages that change what the
    /// client holds (`snap`, `diff`) or report a commit (`ack`, `welcome`).
    pub fn seq(&self) -> Option<u64> {
        match self {
            ServerMsg::Welcome(m) => Some(m.seq),
            ServerMsg::Snap(m) => Some(m.seq),
            ServerMsg::Diff(m) => Some(m.seq),
            ServerMsg::Ack(m) => Some(m.seq),
            ServerMsg::Returned(m) => Some(m.seq),
            ServerMsg::FnValue(m) => Some(m.seq),
            _ => None,
        }
    }
}

// ---------------------------------------------------------------------------
// Error codes
// ---------------------------------------------------------------------------

macro_rules! error_codes {
    ($($(#[$doc:meta])* $name:ident = $s:literal,)*) => {
        /// The `code` of an `err` message. On the wire it is the string
        /// from [`ErrorCode::as_str`] in both encodings, so codes can be
        /// added without breaking old peers; a peer that receives a code it
        /// does not know decodes it as [`ErrorCode::Unknown`].
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum ErrorCode {
            $($(#[$doc])* $name,)*
        }

        impl ErrorCode {
            /// Every code, in table order.
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$name,)*];

            /// The stable wire name (UPPER_SNAKE).
            pub fn as_str(self) -> &'static str {
                match self {
                    $(ErrorCode::$name => $s,)*
                }
            }

            /// The code with wire name `s`, if this build knows it.
            pub fn parse(s: &str) -> Option<ErrorCode> {
                match s {
                    $($s => Some(ErrorCode::$name),)*
                    _ => None,
                }
            }
        }
    };
}

error_codes! {
    /// The frame is not JSON / not postcard, or is the wrong frame kind
    /// (binary on `pylon.v1.json`, text on `pylon.v1.postcard`).
    BadFrame = "BAD_FRAME",
    /// The message `type` (JSON) or variant index (postcard) is unknown.
    UnknownType = "UNKNOWN_TYPE",
    /// A field is missing or has the wrong type; the message names it.
    BadMessage = "BAD_MESSAGE",
    /// The frame exceeds the shard's frame limit; the connection is closed
    /// with 1009 after this error.
    FrameTooLarge = "FRAME_TOO_LARGE",
    /// The entity is not in the manifest.
    UnknownEntity = "UNKNOWN_ENTITY",
    /// A row, `set`, filter or order names a field the entity does not have.
    UnknownField = "UNKNOWN_FIELD",
    /// A value does not fit its field's declared type.
    TypeMismatch = "TYPE_MISMATCH",
    /// A required field is missing or null.
    RequiredField = "REQUIRED_FIELD",
    /// A unique index already holds this value.
    UniqueViolation = "UNIQUE_VIOLATION",
    /// `update` / `delete` of a row that does not exist.
    NotFound = "NOT_FOUND",
    /// `insert` of an id that exists.
    AlreadyExists = "ALREADY_EXISTS",
    /// `where` / `order` / `limit` could not be understood.
    BadQuery = "BAD_QUERY",
    /// `sub` with an id that is already live on this connection.
    DuplicateSubscription = "DUPLICATE_SUBSCRIPTION",
    /// `unsub` (or a server-side reference) to an id that is not live.
    UnknownSubscription = "UNKNOWN_SUBSCRIPTION",
    /// The connection holds the maximum number of subscriptions.
    TooManySubscriptions = "TOO_MANY_SUBSCRIPTIONS",
    /// A subscription's result would not fit in one frame; narrow the
    /// query or lower `limit`. The connection stays open.
    ResultTooLarge = "RESULT_TOO_LARGE",
    /// A `presence` over the per-connection limit, or one that would take
    /// the shard's presence over its total; the previous presence stays.
    PresenceTooLarge = "PRESENCE_TOO_LARGE",
    /// A `mut` has more ops than the shard allows.
    TooManyOps = "TOO_MANY_OPS",
    /// The shard holds the maximum number of connections (sent before
    /// closing with 4503).
    TooManyConnections = "TOO_MANY_CONNECTIONS",
    /// The connection sends faster than allowed; the message was dropped.
    /// Retry after backing off.
    RateLimited = "RATE_LIMITED",
    /// No valid credentials (missing, malformed or expired token).
    Unauthorized = "UNAUTHORIZED",
    /// Credentials are valid but do not allow this.
    Forbidden = "FORBIDDEN",
    /// The shard cannot serve now (e.g. restarting); retry with backoff.
    Unavailable = "UNAVAILABLE",
    /// A bug or an unexpected failure on the server. Retry may help.
    Internal = "INTERNAL",
    /// `call`/`watch` of a function this app does not have.
    UnknownFunction = "UNKNOWN_FUNCTION",
    /// A function called as the wrong kind (`watch` of a mutation, …).
    WrongKind = "WRONG_KIND",
    /// A function's arguments do not fit its validators; the message
    /// starts with the argument's path (`args.items[2].qty: …`).
    BadArgs = "BAD_ARGS",
    /// The function failed on purpose (`ctx.error(code, message)`): the
    /// message starts with the app's own code and `:`. Nothing was written.
    FunctionError = "FUNCTION_ERROR",
    /// The function threw; nothing was written.
    FunctionFailed = "FUNCTION_FAILED",
    /// A query or mutation tried to wait on I/O (`fetch`, timers, …),
    /// which only actions may do; nothing was written.
    MutationIo = "MUTATION_IO",
    /// A query tried to write.
    ReadOnly = "READ_ONLY",
    /// The call used more `ctx.db` calls or rows than one call may.
    FunctionBudget = "FUNCTION_BUDGET",
    /// A job a mutation enqueued breaks a limit of jobs (its name, delay,
    /// retries, priority, key or payload size; the message says which).
    /// Nothing was written.
    BadJob = "BAD_JOB",
    /// A job names a queue the app's manifest does not list
    /// (`jobs.queues`). Nothing was written.
    UnknownQueue = "UNKNOWN_QUEUE",
    /// A code sent by a newer peer that this build does not know. Never
    /// sent; treat like an error of unknown kind.
    Unknown = "UNKNOWN",
}

impl ErrorCode {
    /// Whether retrying the same request unchanged may succeed later.
    pub fn is_retryable(self) -> bool {
        matches!(
            self,
            ErrorCode::RateLimited | ErrorCode::Unavailable | ErrorCode::Internal
        )
    }

    /// Like [`ErrorCode::parse`], mapping an unknown name to `Unknown`.
    pub fn parse_lenient(s: &str) -> ErrorCode {
        ErrorCode::parse(s).unwrap_or(ErrorCode::Unknown)
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for ErrorCode {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for ErrorCode {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = ErrorCode;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an error code string")
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<ErrorCode, E> {
                Ok(ErrorCode::parse_lenient(s))
            }
        }
        d.deserialize_str(V)
    }
}

// ---------------------------------------------------------------------------
// Close codes and limits
// ---------------------------------------------------------------------------

/// WebSocket close codes used by pylon. 1xxx are RFC 6455; 4xxx are ours,
/// chosen as 4000 + the matching HTTP status.
pub mod close {
    /// Normal closure (client or server is done).
    pub const NORMAL: u16 = 1000;
    /// The server is going away (shard restart, deploy). Reconnect.
    pub const GOING_AWAY: u16 = 1001;
    /// Policy violation with no more specific code below.
    pub const POLICY: u16 = 1008;
    /// A frame exceeded the frame limit.
    pub const TOO_LARGE: u16 = 1009;
    /// Internal server error. Reconnect with backoff.
    pub const INTERNAL: u16 = 1011;
    /// Protocol violation: unusable subprotocol, or the client kept sending
    /// frames that could not be decoded.
    pub const PROTOCOL: u16 = 4400;
    /// Credentials missing, invalid or expired. Refresh, then reconnect.
    pub const UNAUTHORIZED: u16 = 4401;
    /// Credentials do not allow access to this shard. Do not retry.
    pub const FORBIDDEN: u16 = 4403;
    /// Too far behind: the client left more than the send window unread
    /// (docs/protocol.md, "Slow readers"). Reconnect and resume with `since`.
    pub const BEHIND: u16 = 4408;
    /// Kept exceeding the message rate. Reconnect after a backoff.
    pub const RATE_LIMITED: u16 = 4429;
    /// The shard has too many connections. Reconnect after a backoff.
    pub const OVERLOADED: u16 = 4503;
}

/// Limits a shard enforces. Every shard may configure its own; `default()`
/// gives the documented defaults.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest frame accepted, in bytes (JSON text is measured in bytes).
    pub max_frame_bytes: usize,
    /// Live subscriptions per connection.
    pub max_subs_per_conn: u32,
    /// Open connections per shard.
    pub max_conns_per_shard: u32,
    /// Sustained messages per second per connection (token-bucket rate).
    pub msgs_per_sec: u32,
    /// Messages a connection may send at once before the rate applies
    /// (token-bucket capacity).
    pub msg_burst: u32,
    /// Ops in one `mut`.
    pub max_ops_per_mut: u32,
    /// How long applied op ids are remembered for deduplication, in seconds.
    pub op_retention_secs: u64,
    /// Bytes of one connection's presence (its JSON).
    pub max_presence_bytes: usize,
    /// Bytes of presence of all a shard's connections together, so that
    /// `presence_state` stays well within a frame.
    pub max_presence_total_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_frame_bytes: 1 << 20,
            max_subs_per_conn: 100,
            max_conns_per_shard: 1_000,
            msgs_per_sec: 100,
            msg_burst: 200,
            max_ops_per_mut: 1_000,
            op_retention_secs: 24 * 60 * 60,
            max_presence_bytes: 16 * 1024,
            max_presence_total_bytes: 512 * 1024,
        }
    }
}

/// Containers (lists and maps) nest at most this deep inside any one
/// `Value` field, in both encodings; a row counts as one level.
pub const MAX_VALUE_DEPTH: usize = crate::value::MAX_DEPTH;
