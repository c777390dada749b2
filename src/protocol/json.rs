//! `pylon.v1.json`: each message is one object, `{"type": <name>, ...fields}`.
//!
//! Decoding is two passes over the text, neither of which recurses without
//! bound or copies more than the fields it keeps:
//!
//! 1. [`Obj::parse`] reads the top-level object into borrowed slices of the
//!    known fields (`&RawValue`, no copy); unknown fields are skipped and a
//!    known field given twice is an error. serde_json skips and captures
//!    values iteratively, so depth cannot overflow the stack here.
//! 2. Each field the message `type` needs is parsed from its slice into its
//!    Rust type, so an error names the field. `Value`s and rows go through
//!    the depth-bounded seeds of `bounded.rs`.
//!
//! JSON `null` for a field is the same as the field being absent. Absent
//! `Value` fields are `Null`; absent lists in `diff` / `presence_diff` are
//! empty; absent booleans are `false`.

use serde::de::{
    self, DeserializeOwned, DeserializeSeed, Deserializer as _, IgnoredAny, MapAccess, Visitor,
};
use serde::ser::{SerializeMap, Serializer};
use serde::Serialize;
use serde_json::value::RawValue;
use std::fmt;

use super::bounded::{RowSeed, ValueSeed};
use super::*;
use crate::value::{Row, Value};

// ---------------------------------------------------------------------------
// Field tables
// ---------------------------------------------------------------------------

const MAX_FIELDS: usize = 32;

const CLIENT_FIELDS: &[&str] = &[
    "type", "client", "token", "id", "entity", "where", "order", "limit", "since", "count", "op",
    "ops", "state", "topic", "data", "t", "name", "args",
];
const OP_FIELDS: &[&str] = &["type", "entity", "row", "id", "set"];
const SERVER_FIELDS: &[&str] = &[
    "type", "protocol", "shard", "seq", "conn", "encoding", "id", "rows", "count", "from", "added",
    "changed", "removed", "reason", "op", "dup", "code", "message", "sub", "members", "joins",
    "updates", "leaves", "topic", "data", "t", "value", "window",
];
const POS_FIELDS: &[&str] = &["pos", "row"];
const MEMBER_FIELDS: &[&str] = &["conn", "state"];

/// A field problem, before the message context (sub/op) is attached.
struct Bad {
    field: Option<String>,
    reason: String,
}

/// serde_json's message without the " at line L column C" suffix (each
/// field is parsed alone, so the position would mislead).
fn reason(e: &serde_json::Error) -> String {
    let s = e.to_string();
    match s.rfind(" at line ") {
        Some(i) => s[..i].to_owned(),
        None => s,
    }
}

// ---------------------------------------------------------------------------
// Pass 1: an object as borrowed slices of its known fields
// ---------------------------------------------------------------------------

/// Where an object sits, for naming its fields in errors.
#[derive(Clone, Copy)]
enum At {
    Top,
    In(&'static str, usize),
}

struct Obj<'a> {
    names: &'static [&'static str],
    vals: [Option<&'a RawValue>; MAX_FIELDS],
    at: At,
}

/// The object visitor's result; a duplicate is reported after the fact so
/// the error can name the field.
struct Slots<'a> {
    vals: [Option<&'a RawValue>; MAX_FIELDS],
    dup: Option<usize>,
}

enum ObjErr {
    /// The text is not JSON at all.
    Syntax(String),
    Bad(Bad),
}

impl<'a> Obj<'a> {
    fn parse(text: &'a str, names: &'static [&'static str], at: At) -> Result<Obj<'a>, ObjErr> {
        debug_assert!(names.len() <= MAX_FIELDS);
        let here = || match at {
            At::Top => None,
            At::In(list, i) => Some(format!("{list}[{i}]")),
        };
        let mut de = serde_json::Deserializer::from_str(text);
        let slots = de
            .deserialize_map(ObjVisitor { names })
            .and_then(|s| de.end().map(|()| s))
            .map_err(|e| match e.classify() {
                serde_json::error::Category::Data => ObjErr::Bad(Bad {
                    field: here(),
                    reason: reason(&e),
                }),
                _ => ObjErr::Syntax(reason(&e)),
            })?;
        let obj = Obj {
            names,
            vals: slots.vals,
            at,
        };
        if let Some(i) = slots.dup {
            return Err(ObjErr::Bad(Bad {
                field: Some(obj.field_name(names[i])),
                reason: "given twice".into(),
            }));
        }
        Ok(obj)
    }

    fn field_name(&self, name: &str) -> String {
        match self.at {
            At::Top => name.to_owned(),
            At::In(list, i) => format!("{list}[{i}].{name}"),
        }
    }

    fn raw(&self, name: &str) -> Option<&'a RawValue> {
        let i = self.names.iter().position(|n| *n == name)?;
        self.vals[i]
    }

    fn bad(&self, name: &str, reason: impl Into<String>) -> Bad {
        Bad {
            field: Some(self.field_name(name)),
            reason: reason.into(),
        }
    }

    /// Parses field `name` with `f`, or `None` when absent or null.
    fn opt_with<T>(
        &self,
        name: &str,
        f: impl FnOnce(&'a str) -> Result<T, serde_json::Error>,
    ) -> Result<Option<T>, Bad> {
        match self.raw(name) {
            None => Ok(None),
            Some(raw) => f(raw.get())
                .map(Some)
                .map_err(|e| self.bad(name, reason(&e))),
        }
    }

    fn opt<T: DeserializeOwned>(&self, name: &str) -> Result<Option<T>, Bad> {
        self.opt_with(name, serde_json::from_str)
    }

    fn req<T: DeserializeOwned>(&self, name: &str) -> Result<T, Bad> {
        self.opt(name)?.ok_or_else(|| self.bad(name, "missing"))
    }

    fn flag(&self, name: &str) -> Result<bool, Bad> {
        Ok(self.opt(name)?.unwrap_or(false))
    }

    fn value(&self, name: &str) -> Result<Value, Bad> {
        Ok(self
            .opt_with(name, |s| seeded(s, ValueSeed { depth: 0 }))?
            .unwrap_or(Value::Null))
    }

    fn row(&self, name: &str) -> Result<Row, Bad> {
        self.opt_with(name, |s| seeded(s, RowSeed))?
            .ok_or_else(|| self.bad(name, "missing"))
    }

    fn rows(&self, name: &str) -> Result<Vec<Row>, Bad> {
        let raws = self
            .opt_with(name, serde_json::from_str::<Vec<&'a RawValue>>)?
            .ok_or_else(|| self.bad(name, "missing"))?;
        raws.iter()
            .enumerate()
            .map(|(i, r)| {
                seeded(r.get(), RowSeed).map_err(|e| self.bad(&format!("{name}[{i}]"), reason(&e)))
            })
            .collect()
    }

    /// A list of objects, each parsed with `f`; absent is `None`.
    fn objs<T>(
        &self,
        name: &'static str,
        names: &'static [&'static str],
        f: impl Fn(&Obj<'a>) -> Result<T, Bad>,
    ) -> Result<Option<Vec<T>>, Bad> {
        let Some(raws) = self.opt_with(name, serde_json::from_str::<Vec<&'a RawValue>>)? else {
            return Ok(None);
        };
        // Nested lists keep the outer position out of the name; the only
        // nesting in v1 is one level deep.
        let mut out = Vec::with_capacity(raws.len());
        for (i, raw) in raws.into_iter().enumerate() {
            let o = match Obj::parse(raw.get(), names, At::In(name, i)) {
                Ok(o) => o,
                Err(ObjErr::Bad(b)) => return Err(b),
                Err(ObjErr::Syntax(r)) => return Err(self.bad(name, r)),
            };
            out.push(f(&o)?);
        }
        Ok(Some(out))
    }

    /// A string field's value when it is a string, ignoring every error
    /// (for the `sub` / `op` context of an error).
    fn peek_str(&self, name: &str) -> Option<String> {
        self.opt::<String>(name).ok().flatten()
    }
}

/// Parses all of `text` with `seed`.
fn seeded<'a, S: DeserializeSeed<'a>>(
    text: &'a str,
    seed: S,
) -> Result<S::Value, serde_json::Error> {
    let mut de = serde_json::Deserializer::from_str(text);
    let v = seed.deserialize(&mut de)?;
    de.end()?;
    Ok(v)
}

struct ObjVisitor {
    names: &'static [&'static str],
}

impl<'de> Visitor<'de> for ObjVisitor {
    type Value = Slots<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Slots<'de>, A::Error> {
        let mut slots = Slots {
            vals: [None; MAX_FIELDS],
            dup: None,
        };
        let mut seen = 0u64;
        while let Some(key) = map.next_key_seed(KeySeed { names: self.names })? {
            match key {
                Some(i) => {
                    let v = map.next_value::<Option<&'de RawValue>>()?;
                    if seen & (1 << i) != 0 {
                        slots.dup.get_or_insert(i);
                    }
                    seen |= 1 << i;
                    slots.vals[i] = v;
                }
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(slots)
    }
}

/// Reads a key as the index of a known name, without allocating.
struct KeySeed {
    names: &'static [&'static str],
}

impl<'de> DeserializeSeed<'de> for KeySeed {
    type Value = Option<usize>;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Option<usize>, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeySeed {
    type Value = Option<usize>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a field name")
    }
    fn visit_str<E: de::Error>(self, s: &str) -> Result<Option<usize>, E> {
        Ok(self.names.iter().position(|n| *n == s))
    }
}

// ---------------------------------------------------------------------------
// Pass 2: typed messages
// ---------------------------------------------------------------------------

/// Shared top level of both decoders: pass 1, then `f` by `type`, with the
/// `id` / `op` context attached to any error.
fn decode_top<T>(
    bytes: &[u8],
    names: &'static [&'static str],
    f: impl FnOnce(&str, &Obj<'_>) -> Result<Option<T>, Bad>,
) -> Result<T, DecodeError> {
    let text = std::str::from_utf8(bytes).map_err(|_| DecodeError::bad_frame("not UTF-8"))?;
    let obj = match Obj::parse(text, names, At::Top) {
        Ok(o) => o,
        Err(ObjErr::Syntax(r)) => return Err(DecodeError::bad_frame(format!("not JSON: {r}"))),
        Err(ObjErr::Bad(b)) => {
            return Err(DecodeError::BadMessage {
                field: b.field,
                reason: b.reason,
                sub: None,
                op: None,
            })
        }
    };
    let sub = obj.peek_str("id");
    let op = obj.peek_str("op");
    let ty: String = match obj.req("type") {
        Ok(t) => t,
        Err(b) => {
            return Err(DecodeError::BadMessage {
                field: b.field,
                reason: b.reason,
                sub,
                op,
            })
        }
    };
    match f(&ty, &obj) {
        Ok(Some(m)) => Ok(m),
        Ok(None) => Err(DecodeError::UnknownType { ty, sub, op }),
        Err(b) => Err(DecodeError::BadMessage {
            field: b.field,
            reason: b.reason,
            sub,
            op,
        }),
    }
}

pub(crate) fn decode_client(bytes: &[u8]) -> Result<ClientMsg, DecodeError> {
    decode_top(bytes, CLIENT_FIELDS, client)
}

/// The message of type `ty`, or `None` for an unknown type.
fn client(ty: &str, o: &Obj<'_>) -> Result<Option<ClientMsg>, Bad> {
    Ok(Some(match ty {
        "hello" => ClientMsg::Hello(Hello {
            client: o.opt("client")?,
            token: o.opt("token")?,
        }),
        "sub" => ClientMsg::Sub(Sub {
            id: o.req("id")?,
            entity: o.req("entity")?,
            r#where: o.value("where")?,
            order: o.value("order")?,
            limit: o.opt("limit")?,
            since: o.opt("since")?,
            count: o.flag("count")?,
        }),
        "unsub" => ClientMsg::Unsub(Unsub { id: o.req("id")? }),
        "mut" => ClientMsg::Mut(Mut {
            op: o.req("op")?,
            ops: o
                .objs("ops", OP_FIELDS, op)?
                .ok_or_else(|| o.bad("ops", "missing"))?,
        }),
        "presence" => ClientMsg::Presence(Presence {
            state: o.value("state")?,
        }),
        "bcast" => ClientMsg::Bcast(SendBcast {
            topic: o.req("topic")?,
            data: o.value("data")?,
        }),
        "ping" => ClientMsg::Ping(Ping { t: o.opt("t")? }),
        "call" => ClientMsg::Call(Call {
            op: o.req("op")?,
            name: o.req("name")?,
            args: o.value("args")?,
        }),
        "watch" => ClientMsg::Watch(Watch {
            id: o.req("id")?,
            name: o.req("name")?,
            args: o.value("args")?,
        }),
        _ => return Ok(None),
    }))
}

fn op(o: &Obj<'_>) -> Result<Op, Bad> {
    let ty: String = o.req("type")?;
    Ok(match ty.as_str() {
        "insert" => Op::Insert {
            entity: o.req("entity")?,
            row: o.row("row")?,
        },
        "update" => Op::Update {
            entity: o.req("entity")?,
            id: o.req("id")?,
            set: o.row("set")?,
        },
        "upsert" => Op::Upsert {
            entity: o.req("entity")?,
            row: o.row("row")?,
        },
        "delete" => Op::Delete {
            entity: o.req("entity")?,
            id: o.req("id")?,
        },
        _ => return Err(o.bad("type", format!("unknown op `{ty}`"))),
    })
}

fn positioned(o: &Obj<'_>) -> Result<Positioned, Bad> {
    Ok(Positioned {
        pos: o.req("pos")?,
        row: o.row("row")?,
    })
}

fn member(o: &Obj<'_>) -> Result<Member, Bad> {
    Ok(Member {
        conn: o.req("conn")?,
        state: o.value("state")?,
    })
}

pub(crate) fn decode_server(bytes: &[u8]) -> Result<ServerMsg, DecodeError> {
    decode_top(bytes, SERVER_FIELDS, server)
}

/// The message of type `ty`, or `None` for an unknown type.
fn server(ty: &str, o: &Obj<'_>) -> Result<Option<ServerMsg>, Bad> {
    Ok(Some(match ty {
        "welcome" => ServerMsg::Welcome(Welcome {
            protocol: o.req("protocol")?,
            shard: o.req("shard")?,
            seq: o.req("seq")?,
            conn: o.req("conn")?,
            encoding: {
                let name: String = o.req("encoding")?;
                Encoding::from_name(&name)
                    .ok_or_else(|| o.bad("encoding", format!("unknown encoding `{name}`")))?
            },
            window: o.opt("window")?,
        }),
        "snap" => ServerMsg::Snap(Snap {
            id: o.req("id")?,
            seq: o.req("seq")?,
            rows: o.rows("rows")?,
            count: o.opt("count")?,
        }),
        "diff" => ServerMsg::Diff(Diff {
            id: o.req("id")?,
            from: o.req("from")?,
            seq: o.req("seq")?,
            added: o.objs("added", POS_FIELDS, positioned)?.unwrap_or_default(),
            changed: o
                .objs("changed", POS_FIELDS, positioned)?
                .unwrap_or_default(),
            removed: o.opt("removed")?.unwrap_or_default(),
            count: o.opt("count")?,
        }),
        "reset" => ServerMsg::Reset(Reset {
            id: o.req("id")?,
            reason: o.req("reason")?,
        }),
        "ack" => ServerMsg::Ack(Ack {
            op: o.req("op")?,
            seq: o.req("seq")?,
            dup: o.flag("dup")?,
        }),
        "err" => ServerMsg::Err(ErrorMsg {
            code: ErrorCode::parse_lenient(&o.req::<String>("code")?),
            message: o.req("message")?,
            op: o.opt("op")?,
            sub: o.opt("sub")?,
        }),
        "presence_state" => ServerMsg::PresenceState(PresenceState {
            members: o
                .objs("members", MEMBER_FIELDS, member)?
                .ok_or_else(|| o.bad("members", "missing"))?,
        }),
        "presence_diff" => ServerMsg::PresenceDiff(PresenceDiff {
            joins: o.objs("joins", MEMBER_FIELDS, member)?.unwrap_or_default(),
            updates: o
                .objs("updates", MEMBER_FIELDS, member)?
                .unwrap_or_default(),
            leaves: o.opt("leaves")?.unwrap_or_default(),
        }),
        "bcast" => ServerMsg::Bcast(Bcast {
            topic: o.req("topic")?,
            data: o.value("data")?,
            from: o.req("from")?,
        }),
        "pong" => ServerMsg::Pong(Pong { t: o.opt("t")? }),
        "result" => ServerMsg::Returned(Returned {
            op: o.req("op")?,
            seq: o.req("seq")?,
            value: o.value("value")?,
            dup: o.flag("dup")?,
        }),
        "value" => ServerMsg::FnValue(FnValue {
            id: o.req("id")?,
            seq: o.req("seq")?,
            value: o.value("value")?,
        }),
        _ => return Ok(None),
    }))
}

// ---------------------------------------------------------------------------
// Encoding
// ---------------------------------------------------------------------------

/// The JSON form of `T` (the in-memory types' own `Serialize` is postcard's).
struct J<'a, T>(&'a T);

/// A list in JSON form.
struct JList<'a, T>(&'a [T]);

impl<T> Serialize for JList<'_, T>
where
    for<'a> J<'a, T>: Serialize,
{
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.iter().map(J))
    }
}

fn opt<M: SerializeMap, T: Serialize>(m: &mut M, k: &str, v: &Option<T>) -> Result<(), M::Error> {
    match v {
        Some(v) => m.serialize_entry(k, v),
        None => Ok(()),
    }
}

fn non_null<M: SerializeMap>(m: &mut M, k: &str, v: &Value) -> Result<(), M::Error> {
    if v.is_null() {
        Ok(())
    } else {
        m.serialize_entry(k, v)
    }
}

fn non_empty<M: SerializeMap, T>(m: &mut M, k: &str, v: &[T]) -> Result<(), M::Error>
where
    for<'a> J<'a, T>: Serialize,
{
    if v.is_empty() {
        Ok(())
    } else {
        m.serialize_entry(k, &JList(v))
    }
}

fn flag<M: SerializeMap>(m: &mut M, k: &str, v: bool) -> Result<(), M::Error> {
    if v {
        m.serialize_entry(k, &true)
    } else {
        Ok(())
    }
}

impl Serialize for J<'_, ClientMsg> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("type", self.0.name())?;
        match self.0 {
            ClientMsg::Hello(x) => {
                opt(&mut m, "client", &x.client)?;
                opt(&mut m, "token", &x.token)?;
            }
            ClientMsg::Sub(x) => {
                m.serialize_entry("id", &x.id)?;
                m.serialize_entry("entity", &x.entity)?;
                non_null(&mut m, "where", &x.r#where)?;
                non_null(&mut m, "order", &x.order)?;
                opt(&mut m, "limit", &x.limit)?;
                opt(&mut m, "since", &x.since)?;
                flag(&mut m, "count", x.count)?;
            }
            ClientMsg::Unsub(x) => m.serialize_entry("id", &x.id)?,
            ClientMsg::Mut(x) => {
                m.serialize_entry("op", &x.op)?;
                m.serialize_entry("ops", &JList(&x.ops))?;
            }
            ClientMsg::Presence(x) => m.serialize_entry("state", &x.state)?,
            ClientMsg::Bcast(x) => {
                m.serialize_entry("topic", &x.topic)?;
                m.serialize_entry("data", &x.data)?;
            }
            ClientMsg::Ping(x) => opt(&mut m, "t", &x.t)?,
            ClientMsg::Call(x) => {
                m.serialize_entry("op", &x.op)?;
                m.serialize_entry("name", &x.name)?;
                non_null(&mut m, "args", &x.args)?;
            }
            ClientMsg::Watch(x) => {
                m.serialize_entry("id", &x.id)?;
                m.serialize_entry("name", &x.name)?;
                non_null(&mut m, "args", &x.args)?;
            }
        }
        m.end()
    }
}

impl Serialize for J<'_, Op> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("type", self.0.name())?;
        match self.0 {
            Op::Insert { entity, row } | Op::Upsert { entity, row } => {
                m.serialize_entry("entity", entity)?;
                m.serialize_entry("row", row)?;
            }
            Op::Update { entity, id, set } => {
                m.serialize_entry("entity", entity)?;
                m.serialize_entry("id", id)?;
                m.serialize_entry("set", set)?;
            }
            Op::Delete { entity, id } => {
                m.serialize_entry("entity", entity)?;
                m.serialize_entry("id", id)?;
            }
        }
        m.end()
    }
}

impl Serialize for J<'_, Positioned> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(2))?;
        m.serialize_entry("pos", &self.0.pos)?;
        m.serialize_entry("row", &self.0.row)?;
        m.end()
    }
}

impl Serialize for J<'_, Member> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(2))?;
        m.serialize_entry("conn", &self.0.conn)?;
        m.serialize_entry("state", &self.0.state)?;
        m.end()
    }
}

impl Serialize for J<'_, ServerMsg> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("type", self.0.name())?;
        match self.0 {
            ServerMsg::Welcome(x) => {
                m.serialize_entry("protocol", &x.protocol)?;
                m.serialize_entry("shard", &x.shard)?;
                m.serialize_entry("seq", &x.seq)?;
                m.serialize_entry("conn", &x.conn)?;
                m.serialize_entry("encoding", x.encoding.name())?;
                opt(&mut m, "window", &x.window)?;
            }
            ServerMsg::Snap(x) => {
                m.serialize_entry("id", &x.id)?;
                m.serialize_entry("seq", &x.seq)?;
                m.serialize_entry("rows", &x.rows)?;
                opt(&mut m, "count", &x.count)?;
            }
            ServerMsg::Diff(x) => {
                m.serialize_entry("id", &x.id)?;
                m.serialize_entry("from", &x.from)?;
                m.serialize_entry("seq", &x.seq)?;
                non_empty(&mut m, "added", &x.added)?;
                non_empty(&mut m, "changed", &x.changed)?;
                if !x.removed.is_empty() {
                    m.serialize_entry("removed", &x.removed)?;
                }
                opt(&mut m, "count", &x.count)?;
            }
            ServerMsg::Reset(x) => {
                m.serialize_entry("id", &x.id)?;
                m.serialize_entry("reason", &x.reason)?;
            }
            ServerMsg::Ack(x) => {
                m.serialize_entry("op", &x.op)?;
                m.serialize_entry("seq", &x.seq)?;
                flag(&mut m, "dup", x.dup)?;
            }
            ServerMsg::Err(x) => {
                m.serialize_entry("code", x.code.as_str())?;
                m.serialize_entry("message", &x.message)?;
                opt(&mut m, "op", &x.op)?;
                opt(&mut m, "sub", &x.sub)?;
            }
            ServerMsg::PresenceState(x) => m.serialize_entry("members", &JList(&x.members))?,
            ServerMsg::PresenceDiff(x) => {
                non_empty(&mut m, "joins", &x.joins)?;
                non_empty(&mut m, "updates", &x.updates)?;
                if !x.leaves.is_empty() {
                    m.serialize_entry("leaves", &x.leaves)?;
                }
            }
            ServerMsg::Bcast(x) => {
                m.serialize_entry("topic", &x.topic)?;
                m.serialize_entry("data", &x.data)?;
                m.serialize_entry("from", &x.from)?;
            }
            ServerMsg::Pong(x) => opt(&mut m, "t", &x.t)?,
            ServerMsg::Returned(x) => {
                m.serialize_entry("op", &x.op)?;
                m.serialize_entry("seq", &x.seq)?;
                m.serialize_entry("value", &x.value)?;
                flag(&mut m, "dup", x.dup)?;
            }
            ServerMsg::FnValue(x) => {
                m.serialize_entry("id", &x.id)?;
                m.serialize_entry("seq", &x.seq)?;
                m.serialize_entry("value", &x.value)?;
            }
        }
        m.end()
    }
}

fn to_text<T: Serialize>(v: &T) -> String {
    // Cannot fail: every map key is a string and `Value` maps non-finite
    // floats to null, so the only error source (the writer) is a `Vec`.
    serde_json::to_string(v).expect("JSON encoding of a protocol message cannot fail")
}

pub(crate) fn encode_client(m: &ClientMsg) -> String {
    to_text(&J(m))
}

pub(crate) fn encode_server(m: &ServerMsg) -> String {
    to_text(&J(m))
}
