//! The one message of a matchmaking socket, `mm_ticket`: where the
//! ticket stands, sent when the socket opens and whenever it changes. In
//! the envelope and both encodings of `pylon.v1` (docs/protocol.md,
//! "Matchmaking").
//!
//! ```
//! use pylon_workers::protocol::Encoding;
//! use pylon_workers::sim::matchmaking::{decode_ticket_msg, encode_ticket_msg, Status, TicketMsg};
//! let m = TicketMsg { ticket: "t1-ab".into(), player: "ada".into(), status: Status::Assigned,
//!                     kind: "plane".into(), sim: Some("duels-1".into()), players: vec!["ada".into(), "bo".into()] };
//! for enc in Encoding::ALL {
//!     assert_eq!(decode_ticket_msg(enc, encode_ticket_msg(enc, &m).as_ref()).unwrap(), m);
//! }
//! ```

use serde::{Deserialize, Serialize};
use serde_json::{json, Value as Json};

use super::store::Status;
use crate::host::Wire;
use crate::protocol::{Encoding, Frame, FrameRef};
use crate::sim::SimError;

/// `mm_ticket` (postcard: a one-variant enum, tag 0, then these fields).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TicketMsg {
    pub ticket: String,
    pub player: String,
    pub status: Status,
    /// The simulation kind the queue's groups play.
    pub kind: String,
    /// Once assigned: the simulation shard to join.
    pub sim: Option<String>,
    /// Once assigned: the group's players.
    pub players: Vec<String>,
}

#[derive(Serialize, Deserialize)]
enum Envelope {
    Ticket(TicketMsg),
}

impl Wire for TicketMsg {
    fn encode(&self, encoding: Encoding) -> Frame {
        encode_ticket_msg(encoding, self)
    }
}

pub fn encode_ticket_msg(encoding: Encoding, m: &TicketMsg) -> Frame {
    match encoding {
        Encoding::Json => {
            let mut v = json!({
                "type": "mm_ticket",
                "ticket": m.ticket,
                "player": m.player,
                "status": m.status.as_str(),
                "kind": m.kind,
            });
            if let Some(sim) = &m.sim {
                v["sim"] = json!(sim);
            }
            if !m.players.is_empty() {
                v["players"] = json!(m.players);
            }
            Frame::Text(v.to_string())
        }
        Encoding::Postcard => {
            Frame::Binary(postcard::to_allocvec(&Envelope::Ticket(m.clone())).unwrap_or_default())
        }
    }
}

/// Decodes an `mm_ticket` (client side).
pub fn decode_ticket_msg(encoding: Encoding, frame: FrameRef<'_>) -> Result<TicketMsg, SimError> {
    match encoding {
        Encoding::Json => {
            #[derive(Deserialize)]
            struct J {
                #[serde(rename = "type")]
                ty: String,
                ticket: String,
                player: String,
                status: Status,
                kind: String,
                sim: Option<String>,
                #[serde(default)]
                players: Vec<String>,
            }
            let j: J = serde_json::from_slice(frame.as_bytes())
                .map_err(|e| SimError::BadInput(e.to_string()))?;
            if j.ty != "mm_ticket" {
                return Err(SimError::UnknownType(j.ty));
            }
            Ok(TicketMsg {
                ticket: j.ticket,
                player: j.player,
                status: j.status,
                kind: j.kind,
                sim: j.sim,
                players: j.players,
            })
        }
        Encoding::Postcard => match postcard::from_bytes::<Envelope>(frame.as_bytes()) {
            Ok(Envelope::Ticket(m)) => Ok(m),
            Err(e) => Err(SimError::BadInput(e.to_string())),
        },
    }
}

/// A ticket as an HTTP answer shows it.
pub(crate) fn ticket_json(m: &TicketMsg, since_ms: i64, until_ms: i64) -> Json {
    let mut v = json!({
        "ticket": m.ticket,
        "player": m.player,
        "status": m.status.as_str(),
        "kind": m.kind,
        "since_ms": since_ms,
        "until_ms": until_ms,
    });
    if let Some(sim) = &m.sim {
        v["sim"] = json!(sim);
        v["players"] = json!(m.players);
    }
    v
}
