//! What the router does with a `/v1/cache` request: which objects it asks
//! and with what, whether the request reads or writes (for the manifest's
//! `cache.read` / `cache.write`), and how the objects' answers make one.
//! Plain values in and out, so the Worker glue only carries it out.
//!
//! | route | object request |
//! |---|---|
//! | `GET`, `PUT`, `DELETE /v1/cache/{key}` | the same, at `key/{key}` of the key's object |
//! | `POST /v1/cache/{key}/incr` | `POST key/{key}/incr` |
//! | `POST /v1/cache` `{cmd}` | `POST command` to the key's object; `DEL` and `EXISTS` split by object, their replies summed; `PING` to `cache-0` |
//!
//! `{key}` is percent-encoded in the path (a key with `/` has `%2F`).
//!
//! ```
//! use pylon_workers::cache::plan::{plan, Access, Merge};
//! use pylon_workers::host::Method;
//! let p = plan(Method::Post, "", br#"{"cmd": ["DEL", "a", "b", "c"]}"#).unwrap();
//! assert_eq!(p.access, Access::Write);
//! assert_eq!(p.merge, Merge::Sum);
//! assert_eq!(p.calls.iter().map(|c| c.keys).sum::<usize>(), 3);
//! ```

use serde_json::{json, Value as Json};

use super::{check_key, object_of, CacheError, Command, OBJECTS};
use crate::api_error::ApiError;
use crate::host::{Method, Response};
use crate::http::percent_decode_path;

/// Which of the manifest's two rules applies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    Read,
    Write,
}

/// How the answers combine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Merge {
    /// One call; its answer as it is.
    One,
    /// `{reply: n}` from each; the sum (the first refusal, if any).
    Sum,
}

/// One request to one cache object.
#[derive(Clone, Debug, PartialEq)]
pub struct Call {
    /// Which object: its name is [`super::object_name`] of it.
    pub object: usize,
    pub method: Method,
    pub rest: String,
    pub body: Option<Json>,
    /// How many keys of the request it carries.
    pub keys: usize,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    pub access: Access,
    /// Every key the request touches (decoded), for the tenant check
    /// ([`super::scope::check`]).
    pub keys: Vec<String>,
    pub calls: Vec<Call>,
    pub merge: Merge,
}

fn json_body(body: &[u8]) -> Result<Json, ApiError> {
    serde_json::from_slice(body)
        .map_err(|e| CacheError::BadRequest(format!("the body is not JSON: {e}")).into())
}

fn one(
    access: Access,
    keys: Vec<String>,
    object: usize,
    method: Method,
    rest: String,
    body: Option<Json>,
) -> Plan {
    let calls = vec![Call {
        object,
        method,
        rest,
        body,
        keys: 1,
    }];
    Plan {
        access,
        keys,
        calls,
        merge: Merge::One,
    }
}

/// The plan for `method` `/v1/cache[/{rest}]` with `body` (`rest` as in
/// the URL, still percent-encoded).
pub fn plan(method: Method, rest: &str, body: &[u8]) -> Result<Plan, ApiError> {
    if rest.is_empty() {
        if method != Method::Post {
            return Err(ApiError::method_not_allowed(
                "POST /v1/cache takes a command; a key is at /v1/cache/{key}",
            ));
        }
        return command(json_body(body)?);
    }
    let (encoded, verb) = match rest.split_once('/') {
        None => (rest, None),
        Some((k, v)) => (k, Some(v)),
    };
    let key = percent_decode_path(encoded).ok_or_else(|| {
        CacheError::BadKey("the key's percent-encoding is bad or not UTF-8".into())
    })?;
    check_key(&key)?;
    let object = object_of(&key);
    // The object gets the key as the URL had it (ASCII, percent-encoded).
    let at = format!("key/{encoded}");
    match (method, verb) {
        (Method::Get, None) => Ok(one(Access::Read, vec![key], object, method, at, None)),
        (Method::Delete, None) => Ok(one(Access::Write, vec![key], object, method, at, None)),
        (Method::Put, None) => {
            let b = json_body(body)?;
            Ok(one(Access::Write, vec![key], object, method, at, Some(b)))
        }
        (Method::Post, Some("incr")) => {
            let b = match body.iter().all(u8::is_ascii_whitespace) {
                true => json!({}),
                false => json_body(body)?,
            };
            let at = at + "/incr";
            Ok(one(Access::Write, vec![key], object, method, at, Some(b)))
        }
        (_, None | Some("incr")) => Err(ApiError::method_not_allowed(
            "a key takes GET, PUT and DELETE, and POST …/incr (docs/cache.md)",
        )),
        (_, Some(_)) => Err(ApiError::not_found(
            "no cache route here: a key with \"/\" is percent-encoded (%2F)",
        )),
    }
}

fn command(body: Json) -> Result<Plan, ApiError> {
    let cmd = Command::parse(&body)?;
    let access = match cmd.is_read() {
        true => Access::Read,
        false => Access::Write,
    };
    let all_keys: Vec<String> = cmd.keys().into_iter().map(str::to_owned).collect();
    let (name, keys) = match &cmd {
        Command::Del(keys) => ("DEL", keys),
        Command::Exists(keys) => ("EXISTS", keys),
        other => {
            let object = other.keys().first().map_or(0, |k| object_of(k));
            return Ok(one(
                access,
                all_keys,
                object,
                Method::Post,
                "command".into(),
                Some(body),
            ));
        }
    };
    // Each object gets its own keys, in the order given.
    let mut groups: Vec<Vec<Json>> = vec![Vec::new(); OBJECTS];
    for k in keys {
        groups[object_of(k)].push(json!(k));
    }
    let mut calls = Vec::new();
    for (object, keys) in groups.into_iter().enumerate() {
        if keys.is_empty() {
            continue;
        }
        let n = keys.len();
        let mut cmd = vec![json!(name)];
        cmd.extend(keys);
        calls.push(Call {
            object,
            method: Method::Post,
            rest: "command".into(),
            body: Some(json!({ "cmd": cmd })),
            keys: n,
        });
    }
    Ok(Plan {
        access,
        keys: all_keys,
        calls,
        merge: Merge::Sum,
    })
}

/// One answer from the objects' answers, in the order of the calls.
pub fn merge(merge: Merge, answers: Vec<Response>) -> Response {
    if let Some(refused) = answers.iter().find(|a| !(200..300).contains(&a.status)) {
        return refused.clone();
    }
    match merge {
        Merge::One => answers
            .into_iter()
            .next()
            .unwrap_or_else(|| ApiError::internal("no answer").into()),
        Merge::Sum => {
            let n: i64 = answers
                .iter()
                .map(|a| a.body["reply"].as_i64().unwrap_or(0))
                .sum();
            Response::ok(json!({ "reply": n }))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_of_a_request_is_named_for_the_tenant_check() {
        let p = plan(Method::Get, "team%3Aacme%2Fhits", b"").unwrap();
        assert_eq!(p.keys, ["team:acme/hits"]);
        let p = plan(
            Method::Post,
            "",
            br#"{"cmd": ["DEL", "a/1", "b/2", "c/3"]}"#,
        )
        .unwrap();
        assert_eq!(p.keys, ["a/1", "b/2", "c/3"]);
        let p = plan(Method::Post, "", br#"{"cmd": ["INCRBY", "a/n", 2]}"#).unwrap();
        assert_eq!(p.keys, ["a/n"]);
        let p = plan(Method::Post, "", br#"{"cmd": ["PING"]}"#).unwrap();
        assert!(p.keys.is_empty());
    }

    #[test]
    fn key_routes_go_to_the_keys_object() {
        let p = plan(Method::Get, "user%2F1", b"").unwrap();
        assert_eq!(p.access, Access::Read);
        assert_eq!(p.calls.len(), 1);
        assert_eq!(p.calls[0].object, object_of("user/1"));
        assert_eq!(p.calls[0].rest, "key/user%2F1");
        let p = plan(Method::Post, "n/incr", b"").unwrap();
        assert_eq!(
            (p.access, p.calls[0].rest.as_str()),
            (Access::Write, "key/n/incr")
        );
        assert_eq!(p.calls[0].body, Some(json!({})));
        let p = plan(Method::Put, "k", br#"{"value": 1}"#).unwrap();
        assert_eq!(p.calls[0].body, Some(json!({"value": 1})));
        assert_eq!(
            plan(Method::Delete, "k", b"").unwrap().access,
            Access::Write
        );
    }

    #[test]
    fn refusals() {
        let cases: [(Method, &str, &[u8], u16, &str); 7] = [
            (Method::Get, "%zz", b"", 400, "BAD_KEY"),
            (Method::Get, "a%0Ab", b"", 400, "BAD_KEY"),
            (Method::Get, "a/b", b"", 404, "NOT_FOUND"),
            (Method::Post, "k", b"", 405, "METHOD_NOT_ALLOWED"),
            (Method::Get, "", b"", 405, "METHOD_NOT_ALLOWED"),
            (Method::Put, "k", b"{", 400, "BAD_REQUEST"),
            (
                Method::Post,
                "",
                br#"{"cmd": ["NOPE"]}"#,
                400,
                "UNKNOWN_COMMAND",
            ),
        ];
        for (m, rest, body, status, code) in cases {
            let e = plan(m, rest, body).unwrap_err();
            assert_eq!((e.status, e.code), (status, code), "{m:?} {rest}: {e}");
        }
        let long = "k".repeat(513);
        assert_eq!(plan(Method::Get, &long, b"").unwrap_err().code, "BAD_KEY");
    }

    #[test]
    fn multi_key_commands_split_by_object_and_sum() {
        let keys: Vec<String> = (0..40).map(|i| format!("key-{i}")).collect();
        let mut cmd = vec![json!("exists")];
        cmd.extend(keys.iter().map(|k| json!(k)));
        let body = json!({ "cmd": cmd }).to_string();
        let p = plan(Method::Post, "", body.as_bytes()).unwrap();
        assert_eq!((p.access, p.merge), (Access::Read, Merge::Sum));
        assert!(p.calls.len() > 1 && p.calls.len() <= OBJECTS);
        for c in &p.calls {
            let sent = c.body.as_ref().unwrap()["cmd"].as_array().unwrap().clone();
            assert_eq!(sent[0], "EXISTS");
            assert_eq!(sent.len() - 1, c.keys);
            for k in &sent[1..] {
                assert_eq!(object_of(k.as_str().unwrap()), c.object);
            }
        }
        assert_eq!(p.calls.iter().map(|c| c.keys).sum::<usize>(), 40);
        let answers = p
            .calls
            .iter()
            .map(|c| Response::ok(json!({ "reply": c.keys })))
            .collect();
        assert_eq!(merge(p.merge, answers).body["reply"], 40);
        let refused = vec![
            Response::ok(json!({"reply": 1})),
            Response::json(500, json!({"error": {"code": "INTERNAL"}})),
        ];
        assert_eq!(merge(Merge::Sum, refused).status, 500);
        let ping = plan(Method::Post, "", br#"{"cmd": ["PING"]}"#).unwrap();
        assert_eq!((ping.access, ping.calls[0].object), (Access::Read, 0));
    }
}
