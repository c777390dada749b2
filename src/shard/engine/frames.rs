//! The frames a subscription is sent (`snap`, `diff`, `reset`), built in one
//! place so every path that answers one labels them alike.

use super::Outbound;
use crate::live::{self, Subscription};
use crate::protocol::{self, Positioned, ServerMsg, Snap};
use crate::value::Row;

pub(super) fn to_wire(id: &str, from: u64, seq: u64, d: live::Diff) -> ServerMsg {
    let pos = |v: Vec<(usize, Row)>| {
        v.into_iter()
            .map(|(pos, row)| Positioned {
                pos: pos as u32,
                row,
            })
            .collect()
    };
    ServerMsg::Diff(protocol::Diff {
        id: id.to_owned(),
        from,
        seq,
        added: pos(d.added),
        changed: pos(d.changed),
        removed: d.removed,
        count: d.count,
    })
}

pub(super) fn snap(id: &str, seq: u64, sub: &Subscription) -> ServerMsg {
    ServerMsg::Snap(Snap {
        id: id.to_owned(),
        seq,
        rows: sub.rows().to_vec(),
        count: sub.query().count.then(|| sub.count()),
    })
}

/// A `reset` followed by the fresh `snap` it announces.
pub(super) fn reset_then(conn: &str, id: &str, reason: &str, snap: ServerMsg) -> [Outbound; 2] {
    let reset = ServerMsg::Reset(protocol::Reset {
        id: id.to_owned(),
        reason: reason.into(),
    });
    [
        Outbound::To(conn.to_owned(), reset),
        Outbound::To(conn.to_owned(), snap),
    ]
}
