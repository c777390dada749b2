//! The frames a channel's socket carries (docs/pubsub.md, "Socket
//! protocol", version [`PROTOCOL_VERSION`]). Server to client only: a
//! subscriber sends nothing but the keepalive, which the platform answers.
//!
//! ```json
//! {"type": "message", "id": 7, "at": 1764633600000, "data": {"text": "hi"}}
//! {"type": "ready", "v": 1, "channel": "chat:1", "lastId": 7, "gap": false}
//! {"type": "error", "code": "BAD_REQUEST", "message": "…"}
//! ```

use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::host::{ConnState, Wire};
use crate::protocol::{Encoding, Frame};

/// The version of the socket protocol, in the `ready` frame.
pub const PROTOCOL_VERSION: u32 = 1;

/// One frame, its JSON text built once (a message's data is spliced in as
/// stored, never parsed again).
#[derive(Clone, Debug, PartialEq)]
pub struct ChannelFrame(pub String);

impl ChannelFrame {
    /// A message: `data` is its stored JSON text.
    pub fn message(id: i64, at_ms: i64, data: &str) -> ChannelFrame {
        ChannelFrame(format!(
            r#"{{"type":"message","id":{id},"at":{at_ms},"data":{data}}}"#
        ))
    }

    /// Sent once per socket, after the history it asked for: live messages
    /// follow. `gap`: messages after the `after` it gave were dropped by
    /// retention before it could have them.
    pub fn ready(channel: &str, last_id: i64, gap: bool) -> ChannelFrame {
        let v = json!({"type": "ready", "v": PROTOCOL_VERSION, "channel": channel,
            "lastId": last_id, "gap": gap});
        ChannelFrame(v.to_string())
    }

    pub fn error(code: &str, message: &str) -> ChannelFrame {
        ChannelFrame(json!({"type": "error", "code": code, "message": message}).to_string())
    }
}

impl Wire for ChannelFrame {
    fn encode(&self, _: Encoding) -> Frame {
        // Channel sockets speak JSON only (accept refuses postcard).
        Frame::Text(self.0.clone())
    }
}

/// A subscriber's state (its socket's attachment): where its replay starts.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Subscriber {
    /// Replay the kept messages after this id; `None`: live ones only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<i64>,
}

impl ConnState for Subscriber {
    fn encoding(&self) -> Encoding {
        Encoding::Json
    }
}
