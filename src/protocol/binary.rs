//! `pylon.v1.postcard`: the serde derive of the message types, written by
//! postcard. See docs/protocol.md, "The postcard mapping".
//!
//! Bounds: postcard reads strings and byte runs only after checking that the
//! input holds them, and reports a sequence length larger than the bytes
//! left as "no size hint", so a lying length prefix cannot make it allocate
//! beyond the frame. Sequences are additionally capped in what they reserve
//! up front, and values in how deep they nest (`bounded.rs`).

use serde::{Deserialize, Serialize};

use super::DecodeError;

pub(crate) fn encode<T: Serialize>(m: &T) -> Vec<u8> {
    // Cannot fail: every sequence and map has a known length, and the
    // output is a growable `Vec`.
    postcard::to_allocvec(m).expect("postcard encoding of a protocol message cannot fail")
}

/// Decodes a whole frame as `T`, an enum whose variants are named `names`
/// (in wire order).
pub(crate) fn decode<'a, T: Deserialize<'a>>(
    bytes: &'a [u8],
    names: &[&str],
) -> Result<T, DecodeError> {
    if bytes.is_empty() {
        return Err(DecodeError::bad_frame("empty frame"));
    }
    let Some(tag) = varint_u32(bytes) else {
        return Err(DecodeError::bad_frame("not postcard: bad message tag"));
    };
    let Some(name) = usize::try_from(tag).ok().and_then(|t| names.get(t)) else {
        return Err(DecodeError::UnknownType {
            ty: tag.to_string(),
            sub: None,
            op: None,
        });
    };
    let bad = |reason: String| DecodeError::BadMessage {
        field: None,
        reason,
        sub: None,
        op: None,
    };
    match postcard::take_from_bytes::<T>(bytes) {
        Ok((m, [])) => Ok(m),
        Ok((_, rest)) => Err(bad(format!("`{name}`: {} trailing bytes", rest.len()))),
        // postcard keeps no text for serde's custom errors (no_std); ours
        // are the value tag and depth checks of `bounded.rs`.
        Err(postcard::Error::SerdeDeCustom) => Err(bad(format!(
            "`{name}`: invalid value (unknown value tag, or values nest deeper than {} levels)",
            super::MAX_VALUE_DEPTH
        ))),
        Err(e) => Err(bad(format!("`{name}`: {e}"))),
    }
}

/// The leading LEB128 varint (a `u32` as postcard writes enum tags), or
/// `None` when it is cut short or too long.
fn varint_u32(bytes: &[u8]) -> Option<u32> {
    let mut out: u32 = 0;
    for (i, b) in bytes.iter().take(5).enumerate() {
        let low = u32::from(b & 0x7f);
        if i == 4 && low > 0x0f {
            return None;
        }
        out |= low << (7 * i);
        if b & 0x80 == 0 {
            return Some(out);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::varint_u32;

    #[test]
    fn varints() {
        assert_eq!(varint_u32(&[0]), Some(0));
        assert_eq!(varint_u32(&[0x7f, 9]), Some(127));
        assert_eq!(varint_u32(&[0x80, 0x01]), Some(128));
        assert_eq!(varint_u32(&[0xff, 0xff, 0xff, 0xff, 0x0f]), Some(u32::MAX));
        assert_eq!(varint_u32(&[0xff, 0xff, 0xff, 0xff, 0x1f]), None);
        assert_eq!(varint_u32(&[0x80]), None);
        assert_eq!(varint_u32(&[]), None);
    }
}
