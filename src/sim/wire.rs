//! The messages of a simulation socket, `pylon.sim.v1`, in the envelope
//! and the two encodings of the live protocol (docs/protocol.md,
//! "Simulation shards"): JSON text frames (`{"type": …}`) or postcard
//! binary frames (the variant index, then the fields in order), chosen by
//! the WebSocket subprotocol. Each direction has one encode and one decode
//! function per encoding, and every case goes through them.
//!
//! ```
//! use pylon_workers::protocol::{Encoding, Frame};
//! use pylon_workers::sim::wire::*;
//!
//! let frame = encode_client(Encoding::Json, &SimClientMsg::Input(InputMsg { seq: 3, input: 5u32 }));
//! assert_eq!(frame, Frame::Text(r#"{"type":"sim_input","seq":3,"input":5}"#.into()));
//! let back: SimClientMsg<u32> = decode_client(Encoding::Json, frame.as_ref(), 1024).unwrap();
//! assert_eq!(back, SimClientMsg::Input(InputMsg { seq: 3, input: 5 }));
//!
//! // A snapshot's own fields sit beside the engine's stamps.
//! #[derive(serde::Serialize)]
//! struct Total { total: i64 }
//! let snap = SimServerMsg::Snapshot(SnapshotMsg { tick: 4, acked: 3, is_final: false, snapshot: Total { total: 12 } });
//! assert_eq!(encode_server(Encoding::Json, &snap),
//!            Frame::Text(r#"{"type":"sim_snapshot","tick":4,"acked":3,"total":12}"#.into()));
//! ```

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value as Json};

use super::error::{SimError, SimErrorCode};
use crate::host::Wire;
use crate::protocol::{Encoding, Frame, FrameRef};

/// The protocol name a `sim_welcome` carries.
pub const SIM_PROTOCOL: &str = "pylon.sim.v1";

/// Close codes of simulation sockets (besides those of `protocol::close`).
pub mod close {
    /// The simulation finished (410 Gone): the final snapshot came just
    /// before. Do not reconnect.
    pub const FINISHED: u16 = 4410;
}

/// Client → server. Variant order is wire format.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum SimClientMsg<I> {
    /// `sim_input` (tag 0).
    Input(InputMsg<I>),
}

/// One input of the sender, numbered by it: seqs start at 1 and increase
/// per subscriber; a seq at or below one already taken is a duplicate.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InputMsg<I> {
    pub seq: u64,
    pub input: I,
}

/// Server → client. Variant order is wire format.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum SimServerMsg<P> {
    /// `sim_welcome` (tag 0).
    Welcome(Welcome),
    /// `sim_snapshot` (tag 1).
    Snapshot(SnapshotMsg<P>),
    /// `sim_ack` (tag 2).
    Ack(Ack),
    /// `sim_err` (tag 3).
    Err(SimErr),
}

/// The first message on a socket.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Welcome {
    /// Always [`SIM_PROTOCOL`].
    pub protocol: String,
    /// The shard's name.
    pub sim: String,
    /// The kind's name.
    pub kind: String,
    pub conn: String,
    /// Who this socket acts as: the connection id, or the id it named.
    pub subscriber: String,
    /// The last tick run.
    pub tick: u64,
    /// The subscriber's last seq the state processed.
    pub acked: u64,
    /// Ticks per second (0: event-driven).
    pub tick_hz: u32,
    pub encoding: Encoding,
}

/// What the subscriber sees after tick `tick`, with every input of theirs
/// up to seq `acked` processed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SnapshotMsg<P> {
    pub tick: u64,
    pub acked: u64,
    /// The last snapshot: the simulation finished; the socket closes.
    /// (`final` in JSON.)
    pub is_final: bool,
    pub snapshot: P,
}

/// Input `seq` is durable (logged); it is applied before tick `tick`
/// runs (at the latest, for a duplicate).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Ack {
    pub seq: u64,
    pub tick: u64,
    /// This seq had been taken before; nothing new was logged.
    pub dup: bool,
}

/// A refusal. `seq` names the input it answers, when there is one;
/// `reason` is an authorize hook's or the state's answer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SimErr {
    pub code: SimErrorCode,
    pub message: String,
    pub seq: Option<u64>,
    pub reason: Option<String>,
}

impl SimErr {
    /// The message for `e`, answering input `seq`.
    pub fn of(e: &SimError, seq: Option<u64>) -> SimErr {
        let seq = match e {
            SimError::InputRejected { seq, .. } => Some(*seq),
            _ => seq,
        };
        SimErr {
            code: e.code(),
            message: e.to_string(),
            seq,
            reason: e.reason().map(str::to_owned),
        }
    }
}

impl<P: Serialize> Wire for SimServerMsg<P> {
    fn encode(&self, encoding: Encoding) -> Frame {
        encode_server(encoding, self)
    }
}

// ---------------------------------------------------------------------------
// Client → server
// ---------------------------------------------------------------------------

/// Encodes a client message (client side).
pub fn encode_client<I: Serialize>(encoding: Encoding, msg: &SimClientMsg<I>) -> Frame {
    match (encoding, msg) {
        (Encoding::Json, SimClientMsg::Input(m)) => {
            let input = serde_json::to_string(&m.input).unwrap_or_else(|_| "null".into());
            Frame::Text(format!(
                r#"{{"type":"sim_input","seq":{},"input":{input}}}"#,
                m.seq
            ))
        }
        (Encoding::Postcard, m) => Frame::Binary(postcard::to_allocvec(m).unwrap_or_default()),
    }
}

/// Decodes a client message from a received frame, checking its size
/// against `max_bytes` and its kind against the encoding.
pub fn decode_client<I: DeserializeOwned>(
    encoding: Encoding,
    frame: FrameRef<'_>,
    max_bytes: usize,
) -> Result<SimClientMsg<I>, SimError> {
    check_frame(encoding, frame, max_bytes)?;
    match encoding {
        Encoding::Json => decode_client_json(frame.as_bytes()),
        Encoding::Postcard => decode_postcard(frame.as_bytes(), &["sim_input"]),
    }
}

fn decode_client_json<I: DeserializeOwned>(bytes: &[u8]) -> Result<SimClientMsg<I>, SimError> {
    /// The envelope; unknown fields are skipped, a field given twice is an
    /// error (serde's derive), `null` is absent.
    #[derive(Deserialize)]
    struct Envelope<'a> {
        #[serde(rename = "type")]
        ty: Option<String>,
        seq: Option<u64>,
        #[serde(borrow)]
        input: Option<&'a serde_json::value::RawValue>,
    }
    let text =
        std::str::from_utf8(bytes).map_err(|_| SimError::BadFrame("not UTF-8 text".into()))?;
    let env: Envelope = serde_json::from_str(text).map_err(|e| {
        if e.is_syntax() || e.is_eof() {
            SimError::BadFrame(format!("not JSON: {e}"))
        } else {
            SimError::BadInput(e.to_string())
        }
    })?;
    match env.ty.as_deref() {
        Some("sim_input") => {}
        Some(other) => return Err(SimError::UnknownType(other.to_owned())),
        None => return Err(SimError::BadInput("missing `type`".into())),
    }
    let seq = env
        .seq
        .ok_or_else(|| SimError::BadInput("missing `seq`".into()))?;
    let raw = env
        .input
        .ok_or_else(|| SimError::BadInput("missing `input`".into()))?;
    let input = serde_json::from_str(raw.get())
        .map_err(|e| SimError::BadInput(format!("field `input`: {e}")))?;
    Ok(SimClientMsg::Input(InputMsg { seq, input }))
}

// ---------------------------------------------------------------------------
// Server → client
// ---------------------------------------------------------------------------

/// Encodes a server message. A snapshot that its encoding cannot write
/// (a map with non-string keys in JSON, say) goes out as `sim_err
/// INTERNAL` instead: a bug of the kind, visible to its developer.
pub fn encode_server<P: Serialize>(encoding: Encoding, msg: &SimServerMsg<P>) -> Frame {
    let written = match encoding {
        Encoding::Json => encode_server_json(msg).map(Frame::Text),
        Encoding::Postcard => postcard::to_allocvec(msg)
            .map(Frame::Binary)
            .map_err(|e| e.to_string()),
    };
    written.unwrap_or_else(|e| {
        let err = SimServerMsg::<()>::Err(SimErr {
            code: SimErrorCode::Internal,
            message: format!("the snapshot could not be encoded: {e}"),
            seq: None,
            reason: None,
        });
        encode_server(encoding, &err)
    })
}

fn encode_server_json<P: Serialize>(msg: &SimServerMsg<P>) -> Result<String, String> {
    Ok(match msg {
        SimServerMsg::Welcome(w) => json!({
            "type": "sim_welcome",
            "protocol": w.protocol,
            "sim": w.sim,
            "kind": w.kind,
            "conn": w.conn,
            "subscriber": w.subscriber,
            "tick": w.tick,
            "acked": w.acked,
            "tick_hz": w.tick_hz,
            "encoding": w.encoding.name(),
        })
        .to_string(),
        SimServerMsg::Snapshot(s) => {
            let body = serde_json::to_string(&s.snapshot).map_err(|e| e.to_string())?;
            let mut out = format!(
                r#"{{"type":"sim_snapshot","tick":{},"acked":{}"#,
                s.tick, s.acked
            );
            if s.is_final {
                out.push_str(r#","final":true"#);
            }
            // An object's fields join the envelope; anything else is nested.
            match body.strip_prefix('{') {
                Some("}") => out.push('}'),
                Some(fields) => {
                    out.push(',');
                    out.push_str(fields);
                }
                None => {
                    out.push_str(r#","snapshot":"#);
                    out.push_str(&body);
                    out.push('}');
                }
            }
            out
        }
        SimServerMsg::Ack(a) => {
            let mut v = json!({"type": "sim_ack", "seq": a.seq, "tick": a.tick});
            if a.dup {
                v["dup"] = json!(true);
            }
            v.to_string()
        }
        SimServerMsg::Err(e) => {
            let mut v = json!({"type": "sim_err", "code": e.code.as_str(), "message": e.message});
            if let Some(seq) = e.seq {
                v["seq"] = json!(seq);
            }
            if let Some(r) = &e.reason {
                v["reason"] = json!(r);
            }
            v.to_string()
        }
    })
}

/// Decodes a server message (client side). A snapshot's fields other than
/// the engine's are the kind's snapshot (or its `snapshot` field, for a
/// snapshot that is not a JSON object).
pub fn decode_server<P: DeserializeOwned>(
    encoding: Encoding,
    frame: FrameRef<'_>,
) -> Result<SimServerMsg<P>, SimError> {
    check_frame(encoding, frame, usize::MAX)?;
    match encoding {
        Encoding::Json => decode_server_json(frame.as_bytes()),
        Encoding::Postcard => decode_postcard(
            frame.as_bytes(),
            &["sim_welcome", "sim_snapshot", "sim_ack", "sim_err"],
        ),
    }
}

fn decode_server_json<P: DeserializeOwned>(bytes: &[u8]) -> Result<SimServerMsg<P>, SimError> {
    let mut m: Map<String, Json> =
        serde_json::from_slice(bytes).map_err(|e| SimError::BadFrame(format!("not JSON: {e}")))?;
    let ty = match m.remove("type") {
        Some(Json::String(t)) => t,
        _ => return Err(SimError::BadInput("missing `type`".into())),
    };
    let u = |m: &Map<String, Json>, k: &str| {
        m.get(k)
            .and_then(Json::as_u64)
            .ok_or_else(|| SimError::BadInput(format!("field `{k}`: expected an integer")))
    };
    let s = |m: &Map<String, Json>, k: &str| {
        m.get(k)
            .and_then(Json::as_str)
            .map(str::to_owned)
            .ok_or_else(|| SimError::BadInput(format!("field `{k}`: expected a string")))
    };
    Ok(match ty.as_str() {
        "sim_welcome" => SimServerMsg::Welcome(Welcome {
            protocol: s(&m, "protocol")?,
            sim: s(&m, "sim")?,
            kind: s(&m, "kind")?,
            conn: s(&m, "conn")?,
            subscriber: s(&m, "subscriber")?,
            tick: u(&m, "tick")?,
            acked: u(&m, "acked")?,
            tick_hz: u32::try_from(u(&m, "tick_hz")?)
                .map_err(|_| SimError::BadInput("field `tick_hz`: too large".into()))?,
            encoding: Encoding::from_name(&s(&m, "encoding")?)
                .ok_or_else(|| SimError::BadInput("field `encoding`: unknown".into()))?,
        }),
        "sim_snapshot" => {
            let tick = u(&m, "tick")?;
            let acked = u(&m, "acked")?;
            let is_final = m.get("final").and_then(Json::as_bool).unwrap_or(false);
            for k in ["tick", "acked", "final"] {
                m.remove(k);
            }
            let nested = m.get("snapshot").cloned();
            let snapshot = serde_json::from_value(Json::Object(m))
                .or_else(|e| match nested {
                    Some(v) => serde_json::from_value(v),
                    None => Err(e),
                })
                .map_err(|e| SimError::BadInput(format!("snapshot: {e}")))?;
            SimServerMsg::Snapshot(SnapshotMsg {
                tick,
                acked,
                is_final,
                snapshot,
            })
        }
        "sim_ack" => SimServerMsg::Ack(Ack {
            seq: u(&m, "seq")?,
            tick: u(&m, "tick")?,
            dup: m.get("dup").and_then(Json::as_bool).unwrap_or(false),
        }),
        "sim_err" => SimServerMsg::Err(SimErr {
            code: SimErrorCode::parse(&s(&m, "code")?),
            message: s(&m, "message")?,
            seq: m.get("seq").and_then(Json::as_u64),
            reason: m.get("reason").and_then(Json::as_str).map(str::to_owned),
        }),
        other => return Err(SimError::UnknownType(other.to_owned())),
    })
}

// ---------------------------------------------------------------------------
// Shared
// ---------------------------------------------------------------------------

fn check_frame(encoding: Encoding, frame: FrameRef<'_>, max: usize) -> Result<(), SimError> {
    let len = frame.as_bytes().len();
    if len > max {
        return Err(SimError::InputTooLarge { len, max });
    }
    match (encoding, frame) {
        (Encoding::Json, FrameRef::Binary(_)) => Err(SimError::BadFrame(
            "binary frame on pylon.v1.json (expected text)".into(),
        )),
        (Encoding::Postcard, FrameRef::Text(_)) => Err(SimError::BadFrame(
            "text frame on pylon.v1.postcard (expected binary)".into(),
        )),
        _ => Ok(()),
    }
}

/// A whole frame as `T`, an enum whose variants are `names` in tag order.
fn decode_postcard<T: DeserializeOwned>(bytes: &[u8], names: &[&str]) -> Result<T, SimError> {
    let Some(&first) = bytes.first() else {
        return Err(SimError::BadFrame("empty frame".into()));
    };
    // Every tag in use is below 128: one byte.
    let tag = usize::from(first);
    if first & 0x80 != 0 || tag >= names.len() {
        return Err(SimError::UnknownType(tag.to_string()));
    }
    match postcard::take_from_bytes::<T>(bytes) {
        Ok((m, [])) => Ok(m),
        Ok((_, rest)) => Err(SimError::BadInput(format!(
            "`{}`: {} trailing bytes",
            names[tag],
            rest.len()
        ))),
        Err(e) => Err(SimError::BadInput(format!("`{}`: {e}", names[tag]))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
    struct Pos {
        x: i32,
        y: i32,
    }

    fn server_msgs() -> Vec<SimServerMsg<Pos>> {
        vec![
            SimServerMsg::Welcome(Welcome {
                protocol: SIM_PROTOCOL.into(),
                sim: "m-1".into(),
                kind: "game".into(),
                conn: "c1".into(),
                subscriber: "c1".into(),
                tick: 7,
                acked: 2,
                tick_hz: 20,
                encoding: Encoding::Postcard,
            }),
            SimServerMsg::Snapshot(SnapshotMsg {
                tick: 8,
                acked: 3,
                is_final: true,
                snapshot: Pos { x: -1, y: 2 },
            }),
            SimServerMsg::Ack(Ack {
                seq: 3,
                tick: 9,
                dup: true,
            }),
            SimServerMsg::Err(SimErr {
                code: SimErrorCode::Forbidden,
                message: "no".into(),
                seq: Some(4),
                reason: Some("not your turn".into()),
            }),
        ]
    }

    #[test]
    fn server_messages_round_trip_in_both_encodings() {
        for enc in Encoding::ALL {
            for m in server_msgs() {
                let f = encode_server(enc, &m);
                assert_eq!(decode_server::<Pos>(enc, f.as_ref()).unwrap(), m, "{enc:?}");
            }
        }
    }

    #[test]
    fn client_messages_round_trip_and_bad_ones_are_typed() {
        let m = SimClientMsg::Input(InputMsg {
            seq: 9,
            input: Pos { x: 1, y: 1 },
        });
        for enc in Encoding::ALL {
            let f = encode_client(enc, &m);
            assert_eq!(decode_client::<Pos>(enc, f.as_ref(), 100).unwrap(), m);
            let too_large = decode_client::<Pos>(enc, f.as_ref(), 3).unwrap_err();
            assert_eq!(too_large.code(), SimErrorCode::InputTooLarge);
        }
        let json = |t: &str| decode_client::<Pos>(Encoding::Json, FrameRef::Text(t), 1000);
        let code = |t: &str| json(t).unwrap_err().code();
        assert_eq!(code("{"), SimErrorCode::BadFrame);
        assert_eq!(code(r#"{"type":"sub"}"#), SimErrorCode::UnknownType);
        assert_eq!(
            code(r#"{"type":"sim_input","input":{"x":1,"y":1}}"#),
            SimErrorCode::BadInput
        );
        assert_eq!(
            code(r#"{"type":"sim_input","seq":1,"input":{"x":1}}"#),
            SimErrorCode::BadInput
        );
        assert_eq!(
            code(r#"{"type":"sim_input","seq":1,"seq":2,"input":null}"#),
            SimErrorCode::BadInput
        );
        assert!(json(r#"{"type":"sim_input","seq":1,"input":{"x":1,"y":2},"extra":[1]}"#).is_ok());
        let pc = |b: &[u8]| decode_client::<Pos>(Encoding::Postcard, FrameRef::Binary(b), 100);
        assert_eq!(pc(&[5, 1]).unwrap_err().code(), SimErrorCode::UnknownType);
        assert_eq!(pc(&[0, 1]).unwrap_err().code(), SimErrorCode::BadInput);
        assert_eq!(
            pc(&[0, 1, 2, 2, 0]).unwrap_err().code(),
            SimErrorCode::BadInput
        );
        assert_eq!(
            decode_client::<Pos>(Encoding::Postcard, FrameRef::Text("x"), 100)
                .unwrap_err()
                .code(),
            SimErrorCode::BadFrame
        );
    }

    #[test]
    fn snapshots_that_are_not_objects_are_nested() {
        let m = SimServerMsg::Snapshot(SnapshotMsg {
            tick: 1,
            acked: 0,
            is_final: false,
            snapshot: vec![1, 2],
        });
        let f = encode_server(Encoding::Json, &m);
        assert_eq!(
            f,
            Frame::Text(r#"{"type":"sim_snapshot","tick":1,"acked":0,"snapshot":[1,2]}"#.into())
        );
        assert_eq!(
            decode_server::<Vec<i32>>(Encoding::Json, f.as_ref()).unwrap(),
            m
        );
    }
}
