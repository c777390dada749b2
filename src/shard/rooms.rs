//! The rooms API's requests (docs/rooms.md): what `POST /v1/rooms/{room}/…`
//! bodies hold, checked into typed errors before the engine sees them, and
//! who may act for which member. A room is a shard; its HTTP members are
//! presence entries named `member:{id}` that belong to no socket.
//!
//! ```
//! use pylon_workers::policy::AuthContext;
//! use pylon_workers::shard::rooms::{self, Join};
//! let join = Join::parse(br#"{"member":"alice","presence":{"at":"lobby"},"ttlMs":60000}"#).unwrap();
//! assert_eq!(join.conn(), "member:alice");
//! assert_eq!(Join::parse(br#"{"member":"a b"}"#).unwrap_err().code, "BAD_MEMBER");
//! assert_eq!(Join::parse(br#"{"member":"a","ttlMs":0}"#).unwrap_err().code, "BAD_TTL");
//! assert!(rooms::may_act_as(&AuthContext::user("alice"), "alice").is_ok());
//! assert_eq!(rooms::may_act_as(&AuthContext::user("bob"), "alice").unwrap_err().code, "FORBIDDEN");
//! assert_eq!(rooms::may_act_as(&AuthContext::anonymous(), "alice").unwrap_err().code, "UNAUTHORIZED");
//! ```

use crate::api_error::ApiError;
use crate::policy::AuthContext;
use crate::route::is_shard_name_char;
use crate::value::Value;

/// The presence name of an HTTP member: sockets are `c{n}`, never this.
pub const MEMBER_PREFIX: &str = "member:";
/// Longest member id.
pub const MAX_MEMBER: usize = 128;
/// Longest time to live of a member: a day (renew it with `presence`).
pub const MAX_TTL_MS: i64 = 24 * 60 * 60 * 1000;
/// Longest broadcast topic, in bytes.
pub const MAX_TOPIC: usize = 256;

/// Whether a presence entry is an HTTP member's.
pub fn is_member(conn: &str) -> bool {
    conn.starts_with(MEMBER_PREFIX)
}

/// `POST …/join` and `POST …/presence`: `{member, presence?, ttlMs?}`.
#[derive(Clone, Debug, PartialEq)]
pub struct Join {
    pub member: String,
    /// `None` when the body has none (join: `{}`; presence: required).
    pub presence: Option<Value>,
    /// Expires this long after the request (`None`: join never, presence
    /// keeps the member's expiry).
    pub ttl_ms: Option<i64>,
}

/// `POST …/leave`: `{member}`.
#[derive(Clone, Debug, PartialEq)]
pub struct Leave {
    pub member: String,
}

/// `POST …/broadcast`: `{topic, data?}`.
#[derive(Clone, Debug, PartialEq)]
pub struct Broadcast {
    pub topic: String,
    pub data: Value,
}

fn bad(code: &'static str, message: impl Into<String>) -> ApiError {
    ApiError::bad_request(code, message)
}

/// The body as a JSON object.
fn object(body: &[u8]) -> Result<serde_json::Map<String, serde_json::Value>, ApiError> {
    match serde_json::from_slice(body) {
        Ok(serde_json::Value::Object(m)) => Ok(m),
        Ok(_) => Err(bad("BAD_MESSAGE", "the body is a JSON object")),
        Err(e) => Err(bad("BAD_FRAME", format!("body is not JSON: {e}"))),
    }
}

fn member(m: &serde_json::Map<String, serde_json::Value>) -> Result<String, ApiError> {
    let id = m.get("member").and_then(|v| v.as_str()).unwrap_or("");
    if id.is_empty() || id.len() > MAX_MEMBER || !id.chars().all(is_shard_name_char) {
        return Err(bad(
            "BAD_MEMBER",
            format!("member is 1 to {MAX_MEMBER} characters of A-Z a-z 0-9 . _ - :"),
        ));
    }
    Ok(id.to_owned())
}

impl Join {
    pub fn parse(body: &[u8]) -> Result<Self, ApiError> {
        let m = object(body)?;
        let member = member(&m)?;
        let presence = match m.get("presence") {
            None => None,
            Some(v) => Some(
                serde_json::from_value::<Value>(v.clone())
                    .map_err(|e| bad("BAD_PRESENCE", format!("presence is not a value: {e}")))?,
            ),
        };
        if presence.as_ref().is_some_and(Value::is_null) {
            return Err(bad(
                "BAD_PRESENCE",
                "presence is not null: to remove a member, POST …/leave",
            ));
        }
        let ttl_ms = match m.get("ttlMs") {
            None | Some(serde_json::Value::Null) => None,
            Some(v) => match v.as_i64() {
                Some(t) if (1..=MAX_TTL_MS).contains(&t) => Some(t),
                _ => {
                    return Err(bad(
                        "BAD_TTL",
                        format!("ttlMs is an integer from 1 to {MAX_TTL_MS}"),
                    ))
                }
            },
        };
        Ok(Join {
            member,
            presence,
            ttl_ms,
        })
    }

    /// The member's presence name.
    pub fn conn(&self) -> String {
        format!("{MEMBER_PREFIX}{}", self.member)
    }
}

impl Leave {
    pub fn parse(body: &[u8]) -> Result<Self, ApiError> {
        Ok(Leave {
            member: member(&object(body)?)?,
        })
    }

    pub fn conn(&self) -> String {
        format!("{MEMBER_PREFIX}{}", self.member)
    }
}

impl Broadcast {
    pub fn parse(body: &[u8]) -> Result<Self, ApiError> {
        let m = object(body)?;
        let topic = m.get("topic").and_then(|v| v.as_str()).unwrap_or("");
        if topic.is_empty() || topic.len() > MAX_TOPIC {
            return Err(bad(
                "BAD_TOPIC",
                format!("topic is a string of 1 to {MAX_TOPIC} bytes"),
            ));
        }
        let data = match m.get("data") {
            None => Value::Null,
            Some(v) => serde_json::from_value(v.clone())
                .map_err(|e| bad("BAD_MESSAGE", format!("data is not a value: {e}")))?,
        };
        Ok(Broadcast {
            topic: topic.to_owned(),
            data,
        })
    }
}

/// Whether `caller` may join, update or remove `member`: itself, or any
/// member for an admin (a server with an admin token). The shard rules
/// were checked before the request reached the shard.
pub fn may_act_as(caller: &AuthContext, member: &str) -> Result<(), ApiError> {
    if caller.is_admin || caller.user_id.as_deref() == Some(member) {
        return Ok(());
    }
    if caller.user_id.is_none() {
        return Err(ApiError::new(
            401,
            "UNAUTHORIZED",
            "sign in to join a room: a caller joins as itself (an admin as anyone)",
        ));
    }
    Err(ApiError::new(
        403,
        "FORBIDDEN",
        format!("you may join, update or remove only yourself, not {member:?}"),
    ))
}

/// Who an HTTP broadcast is `from`, as sockets see it: the user's member
/// name, or `server` for an admin or anonymous caller.
pub fn sender(caller: &AuthContext) -> String {
    match &caller.user_id {
        Some(u) if !caller.is_admin => format!("{MEMBER_PREFIX}{u}"),
        _ => "server".to_owned(),
    }
}

/// One of the rooms API's operations, as an action asks for it
/// (`ctx.rooms`, docs/rooms.md): the same routes, checked and answered
/// the same way, the action's caller being the caller.
///
/// ```
/// use pylon_workers::shard::rooms::RoomOp;
/// for op in RoomOp::ALL {
///     assert_eq!(RoomOp::parse(op.as_str()), Some(op));
/// }
/// assert_eq!(RoomOp::parse("setPresence"), None);
/// assert_eq!(RoomOp::Join.shard_route(), Some((true, "rooms/join")));
/// assert_eq!(RoomOp::Get.shard_route(), Some((false, "rooms")));
/// assert_eq!(RoomOp::List.shard_route(), None);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RoomOp {
    /// `POST …/join` `{member, presence?, ttlMs?}`.
    Join,
    /// `POST …/presence` `{member, presence, ttlMs?}`.
    Presence,
    /// `POST …/leave` `{member}`.
    Leave,
    /// `POST …/broadcast` `{topic, data?}`.
    Broadcast,
    /// `GET /v1/rooms/{room}`: size and members.
    Get,
    /// `GET /v1/rooms` `{after?, limit?}`: the room list (no room).
    List,
}

impl RoomOp {
    pub const ALL: [RoomOp; 6] = [
        RoomOp::Join,
        RoomOp::Presence,
        RoomOp::Leave,
        RoomOp::Broadcast,
        RoomOp::Get,
        RoomOp::List,
    ];

    /// The name the functions runtime's bridge passes.
    pub fn as_str(self) -> &'static str {
        match self {
            RoomOp::Join => "join",
            RoomOp::Presence => "presence",
            RoomOp::Leave => "leave",
            RoomOp::Broadcast => "broadcast",
            RoomOp::Get => "get",
            RoomOp::List => "list",
        }
    }

    pub fn parse(s: &str) -> Option<RoomOp> {
        Some(match s {
            "join" => RoomOp::Join,
            "presence" => RoomOp::Presence,
            "leave" => RoomOp::Leave,
            "broadcast" => RoomOp::Broadcast,
            "get" => RoomOp::Get,
            "list" => RoomOp::List,
            _ => return None,
        })
    }

    /// The room's shard request: whether it is a `POST` (else a `GET`)
    /// and its path, as the router forwards `/v1/rooms/{room}[/…]`.
    /// `None` for [`RoomOp::List`], answered from D1.
    pub fn shard_route(self) -> Option<(bool, &'static str)> {
        match self {
            RoomOp::Join => Some((true, "rooms/join")),
            RoomOp::Presence => Some((true, "rooms/presence")),
            RoomOp::Leave => Some((true, "rooms/leave")),
            RoomOp::Broadcast => Some((true, "rooms/broadcast")),
            RoomOp::Get => Some((false, "rooms")),
            RoomOp::List => None,
        }
    }
}

/// Whether an action's caller may act on `room`, as the router decides
/// for a request to `/v1/rooms/{room}`: the room is a shard name
/// (`BAD_SHARD_NAME`), and the shard rules let the caller in (401
/// `UNAUTHORIZED` without an identity where one is needed, 403
/// `FORBIDDEN`).
pub fn admit(
    rules: &crate::auth::AuthConfig,
    room: &str,
    caller: &AuthContext,
) -> Result<(), ApiError> {
    crate::route::validate_shard_name(room)?;
    rules
        .admit_caller(room, caller)
        .map_err(|e| e.to_api_error())
}

/// The page `list` asks for, `{after?, limit?}` (null or missing: the
/// first page of 100), as `GET /v1/rooms?after=&limit=` takes it.
pub fn list_page(body: &serde_json::Value) -> Result<(Option<String>, usize), ApiError> {
    let (after, limit) = match body {
        serde_json::Value::Null => (None, None),
        serde_json::Value::Object(m) => (m.get("after"), m.get("limit")),
        _ => return Err(bad("BAD_MESSAGE", "the body is a JSON object")),
    };
    let after = match after {
        None | Some(serde_json::Value::Null) => None,
        Some(serde_json::Value::String(s)) => Some(s.clone()),
        Some(_) => return Err(bad("BAD_QUERY", "after is a room name")),
    };
    let limit = match limit {
        None | Some(serde_json::Value::Null) => 0,
        Some(v) => match v.as_u64() {
            Some(n) if (1..=1000).contains(&n) => n as usize,
            _ => return Err(bad("BAD_QUERY", "limit is an integer from 1 to 1000")),
        },
    };
    Ok((after, limit))
}

/// A refusal of the rooms API (its HTTP status, code and message) as the
/// error of the action that asked: the nearest protocol code by status,
/// the rooms API's own code at the start of the message
/// (`"BAD_MEMBER: …"`), as for channels.
pub fn refusal_as_fn_error(status: u16, code: &str, message: &str) -> crate::functions::FnError {
    crate::functions::FnError::refusal(status, code, message)
}
