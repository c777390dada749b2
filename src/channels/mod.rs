//! Pub/sub channels (docs/pubsub.md): Pylon's `PubSubOps` on Durable
//! Objects. Each channel is one object ([`ChannelObject`], class
//! `Channel`, named as the channel): it numbers the messages published to
//! it, keeps the last of them in SQLite (by count and by age, the manifest
//! says how many and how long) and sends each to its subscribers'
//! hibernatable WebSockets. A subscriber resumes with `?after=<id>`: the
//! kept messages after that id, then live ones. One more object
//! ([`ChannelDirectory`], class `ChannelDirectory`, named `directory`)
//! lists the channels that ever had a message.
//!
//! Who may publish and subscribe is the manifest's `channels` section
//! ([`ChannelRules`]); the objects check it themselves, for every request
//! and socket, against the caller the router verified.
//!
//! ```
//! use pylon_workers::channels::{check_name, ChannelRules, Op};
//! use pylon_workers::policy::AuthContext;
//! let rules = ChannelRules::load(&serde_json::json!([
//!     {"pattern": "chat:*", "publish": "signedIn", "subscribe": "anyone"}
//! ])).unwrap();
//! assert!(rules.check(Op::Publish, "chat:1", &AuthContext::user("u1")).is_ok());
//! assert_eq!(check_name("a b").unwrap_err().code(), "BAD_CHANNEL_NAME");
//! ```

mod directory;
mod error;
mod frame;
mod object;
mod rules;
mod store;

pub use directory::{ChannelDirectory, DIRECTORY_NAME};
pub use error::{refusal_as_fn_error, ChannelError};
pub use frame::{ChannelFrame, Subscriber, PROTOCOL_VERSION};
pub use object::{ChannelObject, MAX_REFUSED_FRAMES};
pub use rules::{
    ChannelRule, ChannelRules, Op, Retention, DEFAULT_KEEP_COUNT, DEFAULT_KEEP_MS, MAX_KEEP_COUNT,
    MAX_KEEP_MS, MIN_KEEP_MS,
};

/// The longest channel name, in bytes.
pub const MAX_NAME_BYTES: usize = 128;
/// The largest message: its data as JSON text.
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024;

/// A channel name: 1 to 128 of `A-Z a-z 0-9 . _ - :` (a shard name's
/// characters, so the rules' patterns fit them alike).
pub fn check_name(name: &str) -> Result<(), ChannelError> {
    let ok = !name.is_empty()
        && name.len() <= MAX_NAME_BYTES
        && name.chars().all(crate::route::is_shard_name_char);
    match ok {
        true => Ok(()),
        false => Err(ChannelError::BadName(name.chars().take(40).collect())),
    }
}

/// A message's data as JSON text, within [`MAX_MESSAGE_BYTES`].
pub fn check_data(data: &serde_json::Value) -> Result<String, ChannelError> {
    let text = data.to_string();
    match text.len() <= MAX_MESSAGE_BYTES {
        true => Ok(text),
        false => Err(ChannelError::TooLarge { bytes: text.len() }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(check_name("chat:room-1.a_b").is_ok());
        assert!(check_name(&"a".repeat(MAX_NAME_BYTES)).is_ok());
        for bad in ["", "a b", "a/b", "é", &"a".repeat(MAX_NAME_BYTES + 1)] {
            assert_eq!(
                check_name(bad).unwrap_err().code(),
                "BAD_CHANNEL_NAME",
                "{bad:?}"
            );
        }
    }

    #[test]
    fn data_size() {
        let big = serde_json::json!("x".repeat(MAX_MESSAGE_BYTES));
        assert_eq!(check_data(&big).unwrap_err().status(), 413);
        assert_eq!(
            check_data(&serde_json::json!({"a": 1})).unwrap(),
            r#"{"a":1}"#
        );
    }
}
