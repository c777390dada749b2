//! Request routing shared by the router Worker and the Shard object: which
//! handler a path belongs to, and which shard names are valid.
//!
//! ```
//! use pylon_workers::route::{parse, Route};
//! assert_eq!(parse("/healthz"), Ok(Route::Health));
//! let r = parse("/v1/shards/room-1/ws").unwrap();
//! assert_eq!(r, Route::Shard { shard: "room-1".into(), rest: "ws".into() });
//! assert_eq!(parse("/v1/shards/bad%20name/ws").unwrap_err().code, "BAD_SHARD_NAME");
//! ```

use crate::api_error::ApiError;

/// Longest shard name accepted.
pub const MAX_SHARD_NAME: usize = 128;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Route {
    /// `GET /healthz`
    Health,
    /// `GET /v1/openapi.json`: the OpenAPI document of the app's API
    /// (docs/openapi.md).
    OpenApi,
    /// `/v1/query`: a cold-path query, answered from D1.
    ColdQuery,
    /// `/v1/shards`: the shard directory, from D1.
    ShardList,
    /// `/v1/auth/{rest}`: sign-in and sessions (docs/sign-in.md).
    Auth { rest: String },
    /// `/v1/shards/{shard}/{rest}`: handled by the Shard object `{shard}`.
    /// `rest` is what follows the shard name, without the leading slash.
    Shard { shard: String, rest: String },
    /// `/v1/objects/{kind}/{name}/{rest}` (or `/v1/sims/…`, `/v1/match/…`):
    /// the object
    /// `{name}` of one of the app's own kinds (its class name in `export!`,
    /// in any case; docs/apps.md).
    /// Names follow the shard name rules, shard access rules included.
    Object {
        kind: String,
        name: String,
        rest: String,
    },
    /// `/v1/jobs[/{rest}]`, `/v1/workflows[/{rest}]`, `/v1/crons[/{rest}]`:
    /// background work (docs/jobs.md, docs/workflows.md).
    Background { area: Area, rest: String },
    /// `GET /v1/rooms`: the rooms with members, from D1 (docs/rooms.md).
    RoomList,
    /// `/v1/rooms/{room}[/{rest}]`: the rooms API of shard `{room}`
    /// (docs/rooms.md), handled by the Shard object as `rooms[/{rest}]`.
    Room { room: String, rest: String },
    /// `/v1/cache[/{rest}]`: the cache (docs/cache.md); `rest` is still
    /// percent-encoded (a key may hold `/`, sent as `%2F`).
    Cache { rest: String },
    /// `/v1/files[/{rest}]`: files on R2 (docs/files.md); `rest` is still
    /// percent-encoded.
    Files { rest: String },
    /// `/v1/channels[/{rest}]`: pub/sub channels (docs/pubsub.md).
    Channels { rest: String },
}

/// Which background service a route is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Area {
    Jobs,
    Workflows,
    Crons,
}

/// Routes a request path (no query string).
pub fn parse(path: &str) -> Result<Route, ApiError> {
    match path {
        "/healthz" => return Ok(Route::Health),
        "/v1/openapi.json" => return Ok(Route::OpenApi),
        "/v1/query" => return Ok(Route::ColdQuery),
        "/v1/shards" => return Ok(Route::ShardList),
        "/v1/rooms" => return Ok(Route::RoomList),
        _ => {}
    }
    for (prefix, area) in [
        ("/v1/jobs", Area::Jobs),
        ("/v1/workflows", Area::Workflows),
        ("/v1/crons", Area::Crons),
    ] {
        if let Some(after) = path.strip_prefix(prefix) {
            if after.is_empty() || after.starts_with('/') {
                return Ok(Route::Background {
                    area,
                    rest: after.trim_start_matches('/').to_owned(),
                });
            }
        }
    }
    if let Some(after) = path.strip_prefix("/v1/cache") {
        if after.is_empty() || after.starts_with('/') {
            return Ok(Route::Cache {
                rest: after.strip_prefix('/').unwrap_or(after).to_owned(),
            });
        }
    }
    if let Some(after) = path.strip_prefix("/v1/rooms/") {
        let (room, rest) = after.split_once('/').unwrap_or((after, ""));
        validate_shard_name(room)?;
        return Ok(Route::Room {
            room: room.to_owned(),
            rest: rest.to_owned(),
        });
    }
    if let Some(after) = path.strip_prefix("/v1/files") {
        if after.is_empty() || after.starts_with('/') {
            return Ok(Route::Files {
                rest: after.strip_prefix('/').unwrap_or(after).to_owned(),
            });
        }
    }
    if let Some(after) = path.strip_prefix("/v1/channels") {
        if after.is_empty() || after.starts_with('/') {
            return Ok(Route::Channels {
                rest: after.strip_prefix('/').unwrap_or(after).to_owned(),
            });
        }
    }
    if let Some(rest) = path.strip_prefix("/v1/auth/") {
        return Ok(Route::Auth {
            rest: rest.to_owned(),
        });
    }
    if let Some(after) = path.strip_prefix("/v1/shards/") {
        let (shard, rest) = after.split_once('/').unwrap_or((after, ""));
        validate_shard_name(shard)?;
        return Ok(Route::Shard {
            shard: shard.to_owned(),
            rest: rest.to_owned(),
        });
    }
    // `/v1/sims/…` and `/v1/match/…` are the same route, named for
    // simulation shards and matchmaking queues.
    if let Some(after) = path
        .strip_prefix("/v1/objects/")
        .or_else(|| path.strip_prefix("/v1/sims/"))
        .or_else(|| path.strip_prefix("/v1/match/"))
    {
        let (kind, after) = after.split_once('/').unwrap_or((after, ""));
        validate_kind_name(kind)?;
        let (name, rest) = after.split_once('/').unwrap_or((after, ""));
        validate_shard_name(name)?;
        return Ok(Route::Object {
            kind: kind.to_owned(),
            name: name.to_owned(),
            rest: rest.to_owned(),
        });
    }
    Err(ApiError::not_found(format!("no route for {path}")))
}

/// A kind is named by its Durable Object class: a Rust identifier of at
/// most 64 ASCII characters.
pub fn validate_kind_name(kind: &str) -> Result<(), ApiError> {
    let ok = !kind.is_empty()
        && kind.len() <= 64
        && kind.starts_with(|c: char| c.is_ascii_alphabetic())
        && kind.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if ok {
        Ok(())
    } else {
        let shown: String = kind.chars().take(40).collect();
        Err(ApiError::not_found(format!("no object kind {shown:?}")))
    }
}

/// Whether `c` may appear in a shard name: `A-Z a-z 0-9 . _ - :`.
pub fn is_shard_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | ':')
}

/// Shard names are 1 to 128 characters of `A-Z a-z 0-9 . _ - :`.
pub fn validate_shard_name(name: &str) -> Result<(), ApiError> {
    if name.is_empty() || name.len() > MAX_SHARD_NAME || !name.chars().all(is_shard_name_char) {
        let shown: String = name.chars().take(40).collect();
        return Err(ApiError::bad_request(
            "BAD_SHARD_NAME",
            format!(
                "shard name {shown:?} is invalid: use 1 to {MAX_SHARD_NAME} characters of A-Z a-z 0-9 . _ - :"
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shard_names() {
        assert!(validate_shard_name("team:acme.room_1-b").is_ok());
        assert!(validate_shard_name(&"a".repeat(128)).is_ok());
        for bad in ["", "a b", "ä", "a/b", "a%20", &"a".repeat(129)] {
            assert_eq!(
                validate_shard_name(bad).unwrap_err().code,
                "BAD_SHARD_NAME",
                "{bad:?}"
            );
        }
    }

    #[test]
    fn routes() {
        assert_eq!(parse("/nope").unwrap_err().code, "NOT_FOUND");
        assert_eq!(parse("/v1/query"), Ok(Route::ColdQuery));
        assert_eq!(parse("/v1/openapi.json"), Ok(Route::OpenApi));
        assert_eq!(parse("/v1/shards"), Ok(Route::ShardList));
        assert_eq!(parse("/v1/rooms"), Ok(Route::RoomList));
        assert_eq!(
            parse("/v1/rooms/lobby.1/join"),
            Ok(Route::Room {
                room: "lobby.1".into(),
                rest: "join".into()
            })
        );
        assert_eq!(parse("/v1/rooms/a%20b").unwrap_err().code, "BAD_SHARD_NAME");
        assert_eq!(parse("/v1/cache"), Ok(Route::Cache { rest: "".into() }));
        assert_eq!(
            parse("/v1/cache/user%2F1/incr"),
            Ok(Route::Cache {
                rest: "user%2F1/incr".into()
            })
        );
        assert_eq!(parse("/v1/caches").unwrap_err().code, "NOT_FOUND");
        assert_eq!(
            parse("/v1/files/board/f%2E1"),
            Ok(Route::Files {
                rest: "board/f%2E1".into()
            })
        );
        assert_eq!(parse("/v1/filesx").unwrap_err().code, "NOT_FOUND");
        assert_eq!(
            parse("/v1/channels"),
            Ok(Route::Channels { rest: "".into() })
        );
        assert_eq!(
            parse("/v1/channels/chat:1/ws"),
            Ok(Route::Channels {
                rest: "chat:1/ws".into()
            })
        );
        assert_eq!(parse("/v1/channelz").unwrap_err().code, "NOT_FOUND");
        assert_eq!(
            parse("/v1/auth/oauth/github/start"),
            Ok(Route::Auth {
                rest: "oauth/github/start".into()
            })
        );
        assert_eq!(parse("/v1/shards/").unwrap_err().code, "BAD_SHARD_NAME");
        assert_eq!(
            parse("/v1/shards/r1").unwrap(),
            Route::Shard {
                shard: "r1".into(),
                rest: "".into()
            }
        );
        assert_eq!(
            parse("/v1/objects/Tally/votes-1/ws").unwrap(),
            Route::Object {
                kind: "Tally".into(),
                name: "votes-1".into(),
                rest: "ws".into()
            }
        );
        assert_eq!(
            parse("/v1/objects/Tally/v").unwrap(),
            Route::Object {
                kind: "Tally".into(),
                name: "v".into(),
                rest: "".into()
            }
        );
        assert_eq!(
            parse("/v1/objects/Tally").unwrap_err().code,
            "BAD_SHARD_NAME"
        );
        assert_eq!(
            parse("/v1/sims/counter/c-1/ws").unwrap(),
            Route::Object {
                kind: "counter".into(),
                name: "c-1".into(),
                rest: "ws".into()
            }
        );
        assert_eq!(
            parse("/v1/match/duels/q-1/tickets/t1").unwrap(),
            Route::Object {
                kind: "duels".into(),
                name: "q-1".into(),
                rest: "tickets/t1".into()
            }
        );
        assert_eq!(
            parse("/v1/objects/Tally/a%20b").unwrap_err().code,
            "BAD_SHARD_NAME"
        );
        for bad in ["", "1x", "a-b", "a.b", &"A".repeat(65)] {
            assert_eq!(
                parse(&format!("/v1/objects/{bad}/n")).unwrap_err().code,
                "NOT_FOUND",
                "{bad:?}"
            );
        }
        assert_eq!(
            parse("/v1/shards/r1/a/b").unwrap(),
            Route::Shard {
                shard: "r1".into(),
                rest: "a/b".into()
            }
        );
    }
}
