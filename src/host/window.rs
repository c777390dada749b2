//! Send windows: how far a socket's reader may fall behind.
//!
//! workerd tells a Durable Object nothing about a socket's buffered
//! amount: `send` queues without bound. So the host counts the bytes it
//! sends on each connection, and clients report what they have read with
//! receipts (`recv`), one per [`RECEIPT_STEP`] bytes received and never
//! otherwise (a quiet socket sends nothing extra). When the bytes sent and
//! not yet receipted exceed the window, the host stops sending to that
//! socket and closes it with [`close::BEHIND`](crate::protocol::close::BEHIND);
//! the client resumes with `since` (docs/protocol.md, "Slow readers").
//!
//! A receipt carries the bytes read since the previous one, not a total,
//! so nothing needs to survive an eviction: a socket that outlived the
//! object's memory starts again at zero, with a credit for what was in
//! flight before (at most the window and one frame), which late receipts
//! may use up without being taken as bogus. Receipts drain what this wake
//! sent first, so a reading client is never closed for bytes it read.
//!
//! ```
//! use pylon_workers::host::window::{parse_receipt, receipt_frame, Window};
//! use pylon_workers::protocol::Encoding;
//!
//! let f = receipt_frame(Encoding::Json, 300);
//! assert_eq!(parse_receipt(f.as_ref(), Encoding::Json), Some(Ok(300)));
//! let mut w = Window::default();
//! w.sent(500);
//! assert!(w.receipt(300).is_ok());
//! assert!(!w.behind(200)); // 200 owed: not over a window of 200
//! assert!(w.behind(199));
//! assert!(w.receipt(1_000).is_err()); // more than was sent
//! ```

use std::collections::HashMap;

use crate::protocol::{Encoding, Frame, FrameRef};

/// Clients send a receipt after each this many bytes received (a quarter
/// of the default window).
pub const RECEIPT_STEP: u64 = 256 * 1024;
/// The default window, bytes.
pub const DEFAULT_WINDOW: u64 = 1 << 20;
/// The deployment variable that sets the window.
pub const WINDOW_VAR: &str = "PYLON_SEND_WINDOW_BYTES";
/// The least window: receipts come every [`RECEIPT_STEP`], so a smaller
/// one would close readers that keep up.
pub const MIN_WINDOW: u64 = 4 * RECEIPT_STEP;
/// The postcard tag of `recv`, the same in every socket protocol (far
/// above the tags the protocols' own messages use).
pub const RECEIPT_TAG: u8 = 0x7f;

/// The receipt step for a socket whose server announced `window` in its
/// `welcome`: a quarter of it, as [`RECEIPT_STEP`] is of the default
/// window; [`RECEIPT_STEP`] when none was announced (postcard, older
/// servers, simulations).
pub fn receipt_step(window: Option<u64>) -> u64 {
    window.map_or(RECEIPT_STEP, |w| (w / 4).max(1))
}

/// The window set by [`WINDOW_VAR`], or the default; a bad value is an
/// error naming the variable.
pub fn window_from_vars(get: &dyn Fn(&str) -> Option<String>) -> Result<u64, String> {
    let Some(raw) = get(WINDOW_VAR) else {
        return Ok(DEFAULT_WINDOW);
    };
    raw.trim()
        .parse::<u64>()
        .ok()
        .filter(|n| *n >= MIN_WINDOW)
        .ok_or_else(|| {
            format!(
                "{WINDOW_VAR} = {raw:?} is not a whole number of bytes of at least {MIN_WINDOW}"
            )
        })
}

/// A receipt's frame: JSON `{"type":"recv","bytes":N}`; postcard the tag
/// [`RECEIPT_TAG`], then `bytes` as a varint.
pub fn receipt_frame(encoding: Encoding, bytes: u64) -> Frame {
    match encoding {
        Encoding::Json => Frame::Text(format!(r#"{{"type":"recv","bytes":{bytes}}}"#)),
        Encoding::Postcard => {
            let mut out = vec![RECEIPT_TAG];
            let mut n = bytes;
            while n >= 0x80 {
                out.push((n as u8) | 0x80);
                n >>= 7;
            }
            out.push(n as u8);
            Frame::Binary(out)
        }
    }
}

/// Whether `frame` is a receipt: `None` when it is not one (it goes to the
/// object), else the bytes it reports or why it is malformed.
pub fn parse_receipt(frame: FrameRef<'_>, encoding: Encoding) -> Option<Result<u64, String>> {
    match (encoding, frame) {
        // Cheap test first: every other message goes on untouched.
        (Encoding::Json, FrameRef::Text(t)) if t.len() <= 128 && t.contains("\"recv\"") => {
            let v: serde_json::Value = serde_json::from_str(t).ok()?;
            if v.get("type").and_then(|t| t.as_str()) != Some("recv") {
                return None;
            }
            Some(
                v.get("bytes")
                    .and_then(|b| b.as_u64())
                    .ok_or_else(|| "recv: bytes must be a whole number".to_string()),
            )
        }
        (Encoding::Postcard, FrameRef::Binary(b)) if b.first() == Some(&RECEIPT_TAG) => {
            Some(varint(&b[1..]).ok_or_else(|| "recv: bytes must be one varint".to_string()))
        }
        _ => None,
    }
}

/// A postcard varint that is the whole of `b`.
fn varint(b: &[u8]) -> Option<u64> {
    let mut n: u64 = 0;
    for (i, byte) in b.iter().enumerate() {
        if i >= 10 {
            return None;
        }
        n |= u64::from(byte & 0x7f).checked_shl(7 * i as u32)?;
        if byte & 0x80 == 0 {
            return (i + 1 == b.len()).then_some(n);
        }
    }
    None
}

/// One connection's count: bytes sent and not yet receipted.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Window {
    owed: u64,
    /// Bytes sent before this wake that may still be receipted.
    credit: u64,
}

impl Window {
    /// A socket that outlived an eviction: nothing owed that this wake
    /// knows of, and up to twice the window (the window and one frame,
    /// which is at most the frame limit) in flight from before.
    pub fn resumed(window: u64) -> Self {
        Window {
            owed: 0,
            credit: window.saturating_mul(2),
        }
    }

    pub fn sent(&mut self, bytes: u64) {
        self.owed = self.owed.saturating_add(bytes);
    }

    /// Over the window: send it nothing more.
    pub fn behind(&self, window: u64) -> bool {
        self.owed > window
    }

    /// Bytes sent and not receipted, as far as this wake knows.
    pub fn owed(&self) -> u64 {
        self.owed
    }

    /// A receipt for `bytes`; more than could have been sent is refused
    /// (and changes nothing).
    pub fn receipt(&mut self, bytes: u64) -> Result<(), String> {
        let beyond = bytes.saturating_sub(self.owed);
        if beyond > self.credit {
            return Err(format!(
                "recv: {bytes} bytes is more than the {} sent and not yet receipted",
                self.owed.saturating_add(self.credit)
            ));
        }
        self.owed -= bytes - beyond;
        self.credit -= beyond;
        Ok(())
    }
}

/// Every connection's window, and the limit: the host's bookkeeping,
/// kept out of the generic host so it is compiled once, not per kind.
#[derive(Debug)]
pub struct Windows {
    limit: u64,
    conns: HashMap<String, Window>,
    /// Connections found over the window this wake.
    behind: u64,
}

impl Windows {
    pub fn new(limit: u64) -> Self {
        Windows {
            limit,
            conns: HashMap::new(),
            behind: 0,
        }
    }

    /// A new connection (nothing sent yet).
    pub fn open(&mut self, conn: &str) {
        self.conns.insert(conn.to_owned(), Window::default());
    }

    /// A connection that outlived an eviction.
    pub fn resume(&mut self, conn: &str) {
        let w = Window::resumed(self.limit);
        self.conns.insert(conn.to_owned(), w);
    }

    pub fn close(&mut self, conn: &str) {
        self.conns.remove(conn);
    }

    /// Keeps in `conns` those within their window and counts `bytes` sent
    /// to each; returns those over it (to close, sent nothing).
    #[inline(never)] // one copy, not one per kind
    pub fn admit(&mut self, conns: &mut Vec<String>, bytes: u64) -> Vec<String> {
        let mut behind = Vec::new();
        conns.retain(|c| {
            let w = self.conns.entry(c.clone()).or_default();
            if w.behind(self.limit) {
                behind.push(c.clone());
                return false;
            }
            w.sent(bytes);
            true
        });
        self.behind += behind.len() as u64;
        behind
    }

    /// `frame` from `conn`, if it is a receipt: taken, or why not.
    #[inline(never)] // one copy, not one per kind
    pub fn receipt(
        &mut self,
        conn: &str,
        frame: FrameRef<'_>,
        encoding: Encoding,
    ) -> Option<Result<(), String>> {
        let bytes = match parse_receipt(frame, encoding)? {
            Ok(b) => b,
            Err(why) => return Some(Err(why)),
        };
        Some(
            self.conns
                .entry(conn.to_owned())
                .or_default()
                .receipt(bytes),
        )
    }

    /// For the stats: the window, the most any connection owes, and the
    /// connections closed for it this wake.
    #[inline(never)] // one copy, not one per kind
    pub fn stats(&self) -> serde_json::Value {
        serde_json::json!({
            "bytes": self.limit,
            "most_owed": self.conns.values().map(Window::owed).max().unwrap_or(0),
            "behind_closes": self.behind,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn receipts_round_trip_in_both_encodings() {
        for enc in [Encoding::Json, Encoding::Postcard] {
            for n in [0, 1, 127, 128, 300, RECEIPT_STEP, u64::MAX] {
                let f = receipt_frame(enc, n);
                assert_eq!(parse_receipt(f.as_ref(), enc), Some(Ok(n)), "{enc:?} {n}");
            }
        }
        assert_eq!(
            receipt_frame(Encoding::Postcard, 300),
            Frame::Binary(vec![0x7f, 0xac, 0x02])
        );
    }

    #[test]
    fn other_frames_are_not_receipts() {
        let j = Encoding::Json;
        for t in [
            r#"{"type":"ping","t":1}"#,
            r#"{"type":"bcast","topic":"recv","data":1}"#,
            "not json \"recv\"",
        ] {
            assert_eq!(parse_receipt(FrameRef::Text(t), j), None, "{t}");
        }
        assert_eq!(parse_receipt(FrameRef::Binary(&[0x7f, 1]), j), None);
        assert_eq!(
            parse_receipt(FrameRef::Binary(&[6, 0]), Encoding::Postcard),
            None
        );
    }

    #[test]
    fn malformed_receipts_are_errors() {
        for t in [
            r#"{"type":"recv"}"#,
            r#"{"type":"recv","bytes":"x"}"#,
            r#"{"type":"recv","bytes":-1}"#,
        ] {
            assert!(
                matches!(
                    parse_receipt(FrameRef::Text(t), Encoding::Json),
                    Some(Err(_))
                ),
                "{t}"
            );
        }
        for b in [
            &[0x7f][..],
            &[0x7f, 0x80],
            &[0x7f, 1, 2],
            &[
                0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01,
            ],
        ] {
            assert!(
                matches!(
                    parse_receipt(FrameRef::Binary(b), Encoding::Postcard),
                    Some(Err(_))
                ),
                "{b:?}"
            );
        }
    }

    #[test]
    fn a_resumed_window_takes_late_receipts_up_to_its_credit() {
        let mut w = Window::resumed(100);
        w.sent(50);
        // Receipts drain this wake's bytes first, then the credit.
        assert!(w.receipt(120).is_ok());
        assert_eq!(w.owed(), 0);
        assert!(w.receipt(130).is_ok());
        assert!(w.receipt(1).is_err());
        w.sent(101);
        assert!(w.behind(100));
    }

    #[test]
    fn the_window_variable_is_checked() {
        assert_eq!(window_from_vars(&|_| None), Ok(DEFAULT_WINDOW));
        assert_eq!(window_from_vars(&|_| Some("2097152".into())), Ok(2 << 20));
        for bad in ["0", "lots", "-1", "1000"] {
            let e = window_from_vars(&|_| Some(bad.into())).unwrap_err();
            assert!(e.starts_with(WINDOW_VAR), "{e}");
        }
    }
}
