//! The command endpoint's commands, Redis-like: a body
//! `{"cmd": ["SET", "k", "v", "PX", "1500"]}` parsed into a [`Command`].
//! Names are case-insensitive; arguments are strings (a JSON number is
//! taken as its text). Every key, TTL and value is checked here, so a bad
//! command is refused before any object is asked.

use serde_json::Value as Json;

use super::limits::{check_key, check_ttl, check_value, shown};
use super::{CacheError, MAX_KEYS_PER_COMMAND};

/// Every command the cache takes.
pub const COMMANDS: &[&str] = &[
    "GET", "SET", "DEL", "EXISTS", "INCR", "INCRBY", "DECR", "DECRBY", "EXPIRE", "PEXPIRE", "TTL",
    "PTTL", "PERSIST", "GETDEL", "PING",
];

/// `SET … NX` (only if absent) or `XX` (only if present).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SetOnly {
    Absent,
    Present,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Command {
    /// `PING [message]` → `"PONG"` or the message.
    Ping(Option<String>),
    /// `GET key` → the value (a JSON value that is not a string as its
    /// JSON text), or `null`.
    Get(String),
    /// `SET key value [EX s | PX ms] [NX | XX]` → `"OK"`, or `null` when
    /// NX or XX kept it from being set. Without EX/PX the key has no TTL.
    Set {
        key: String,
        value: String,
        ttl_ms: Option<i64>,
        only: Option<SetOnly>,
    },
    /// `DEL key [key …]` → how many existed.
    Del(Vec<String>),
    /// `EXISTS key [key …]` → how many exist (a key named twice counts twice).
    Exists(Vec<String>),
    /// `INCR`, `INCRBY key n`, `DECR`, `DECRBY key n` → the new value; the
    /// key keeps its TTL.
    IncrBy { key: String, by: i64 },
    /// `EXPIRE key s`, `PEXPIRE key ms` → 1, or 0 when there is no key.
    Expire { key: String, ttl_ms: i64 },
    /// `TTL key` (seconds), `PTTL key` (ms) → what is left, -1 for a key
    /// without a TTL, -2 for no key.
    Ttl { key: String, millis: bool },
    /// `PERSIST key` → 1 when a TTL was removed, else 0.
    Persist(String),
    /// `GETDEL key` → the value (as `GET`), and the key is gone.
    GetDel(String),
}

fn bad(message: impl Into<String>) -> CacheError {
    CacheError::BadCommand(message.into())
}

const SHAPE: &str = r#"the body is {"cmd": [name, argument, …]}"#;

/// A command's arguments (1-based, after the name), read with messages
/// that say which argument is wrong.
struct Args<'a> {
    name: &'a str,
    args: &'a [Json],
}

impl Args<'_> {
    fn arity(&self, min: usize, max: usize, usage: &str) -> Result<(), CacheError> {
        let n = self.args.len();
        if (min..=max).contains(&n) {
            return Ok(());
        }
        let want = match (min, max) {
            (a, b) if a == b => format!("{a}"),
            (a, usize::MAX) => format!("at least {a}"),
            (a, b) => format!("{a} to {b}"),
        };
        Err(bad(format!(
            "{name} takes {want} argument(s) ({name} {usage}), not {n}",
            name = self.name
        )))
    }

    fn string(&self, i: usize, what: &str) -> Result<String, CacheError> {
        match self.args.get(i - 1) {
            Some(Json::String(s)) => Ok(s.clone()),
            Some(Json::Number(n)) => Ok(n.to_string()),
            Some(other) => Err(bad(format!(
                "{}: argument {i} ({what}) must be a string, not {}",
                self.name,
                kind(other)
            ))),
            None => Err(bad(format!(
                "{}: argument {i} ({what}) is missing",
                self.name
            ))),
        }
    }

    fn key(&self, i: usize) -> Result<String, CacheError> {
        let key = self.string(i, "key")?;
        check_key(&key)
            .map_err(|e| CacheError::BadKey(format!("{}: argument {i} (key): {e}", self.name)))?;
        Ok(key)
    }

    fn int(&self, i: usize, what: &str) -> Result<i64, CacheError> {
        let s = self.string(i, what)?;
        s.parse::<i64>()
            .ok()
            .filter(|n| n.unsigned_abs() <= crate::sql::MAX_SAFE_INT as u64)
            .ok_or_else(|| {
                bad(format!(
                    "{}: argument {i} ({what}) must be an integer within ±(2^53 − 1), not {}",
                    self.name,
                    shown(&s)
                ))
            })
    }

    /// A TTL argument in `unit_ms` milliseconds.
    fn ttl(&self, i: usize, what: &str, unit_ms: i64) -> Result<i64, CacheError> {
        let n = self.int(i, what)?;
        let ms = n.checked_mul(unit_ms).unwrap_or(i64::MAX);
        check_ttl(ms)
            .map_err(|e| CacheError::BadTtl(format!("{}: argument {i} ({what}): {e}", self.name)))
    }

    fn one_key(&self) -> Result<String, CacheError> {
        self.arity(1, 1, "key")?;
        self.key(1)
    }

    fn keys(&self) -> Result<Vec<String>, CacheError> {
        let n = self.args.len();
        if n == 0 || n > MAX_KEYS_PER_COMMAND {
            return Err(CacheError::too_many_keys(self.name, n));
        }
        (1..=n).map(|i| self.key(i)).collect()
    }

    fn set(&self) -> Result<Command, CacheError> {
        const USAGE: &str = "key value [EX seconds | PX milliseconds] [NX | XX]";
        self.arity(2, 6, USAGE)?;
        let key = self.key(1)?;
        let value = self.string(2, "value")?;
        check_value(&Json::String(value.clone()))?;
        let (mut ttl_ms, mut only) = (None, None);
        let mut i = 3;
        while i <= self.args.len() {
            let option = self.string(i, "option")?.to_ascii_uppercase();
            match option.as_str() {
                "EX" | "PX" => {
                    if ttl_ms.is_some() {
                        return Err(bad(format!(
                            "SET: argument {i} ({option}): EX or PX is given once"
                        )));
                    }
                    let unit = if option == "EX" { 1000 } else { 1 };
                    let what = if option == "EX" {
                        "seconds"
                    } else {
                        "milliseconds"
                    };
                    ttl_ms = Some(self.ttl(i + 1, what, unit)?);
                    i += 2;
                }
                "NX" | "XX" => {
                    if only.is_some() {
                        return Err(bad(format!(
                            "SET: argument {i} ({option}): NX or XX is given once"
                        )));
                    }
                    only = Some(if option == "NX" {
                        SetOnly::Absent
                    } else {
                        SetOnly::Present
                    });
                    i += 1;
                }
                _ => {
                    return Err(bad(format!(
                        "SET: argument {i}: unknown option {}; SET takes EX, PX, NX or XX",
                        shown(&option)
                    )))
                }
            }
        }
        Ok(Command::Set {
            key,
            value,
            ttl_ms,
            only,
        })
    }
}

fn kind(v: &Json) -> &'static str {
    match v {
        Json::Null => "null",
        Json::Bool(_) => "a boolean",
        Json::Number(_) => "a number",
        Json::String(_) => "a string",
        Json::Array(_) => "an array",
        Json::Object(_) => "an object",
    }
}

impl Command {
    /// Parses a command body.
    pub fn parse(body: &Json) -> Result<Command, CacheError> {
        let fields = body.as_object().ok_or_else(|| bad(SHAPE))?;
        if let Some(k) = fields.keys().find(|k| *k != "cmd") {
            return Err(bad(format!("unknown field {}: {SHAPE}", shown(k))));
        }
        let cmd = fields
            .get("cmd")
            .and_then(Json::as_array)
            .ok_or_else(|| bad(SHAPE))?;
        let Some((name, args)) = cmd.split_first() else {
            return Err(bad(format!("cmd is empty: {SHAPE}")));
        };
        let Some(given) = name.as_str() else {
            return Err(bad("cmd[0], the command's name, must be a string"));
        };
        let name = given.to_ascii_uppercase();
        let a = Args { name: &name, args };
        let incr = |by: i64| -> Result<Command, CacheError> {
            a.arity(1, 1, "key")?;
            Ok(Command::IncrBy { key: a.key(1)?, by })
        };
        let incr_by = |sign: i64| -> Result<Command, CacheError> {
            a.arity(2, 2, "key increment")?;
            let key = a.key(1)?;
            Ok(Command::IncrBy {
                key,
                by: sign * a.int(2, "increment")?,
            })
        };
        let expire = |unit: i64, what: &str| -> Result<Command, CacheError> {
            a.arity(2, 2, &format!("key {what}"))?;
            let key = a.key(1)?;
            Ok(Command::Expire {
                key,
                ttl_ms: a.ttl(2, what, unit)?,
            })
        };
        match name.as_str() {
            "PING" => {
                a.arity(0, 1, "[message]")?;
                let message = match args.is_empty() {
                    true => None,
                    false => Some(a.string(1, "message")?),
                };
                Ok(Command::Ping(message))
            }
            "GET" => Ok(Command::Get(a.one_key()?)),
            "SET" => a.set(),
            "DEL" => Ok(Command::Del(a.keys()?)),
            "EXISTS" => Ok(Command::Exists(a.keys()?)),
            "INCR" => incr(1),
            "DECR" => incr(-1),
            "INCRBY" => incr_by(1),
            "DECRBY" => incr_by(-1),
            "EXPIRE" => expire(1000, "seconds"),
            "PEXPIRE" => expire(1, "milliseconds"),
            "TTL" | "PTTL" => Ok(Command::Ttl {
                key: a.one_key()?,
                millis: name == "PTTL",
            }),
            "PERSIST" => Ok(Command::Persist(a.one_key()?)),
            "GETDEL" => Ok(Command::GetDel(a.one_key()?)),
            _ => {
                let shown: String = given.chars().take(40).collect();
                Err(CacheError::UnknownCommand(shown))
            }
        }
    }

    /// Whether it only reads: `GET`, `EXISTS`, `TTL`, `PTTL`, `PING`
    /// (the manifest's `cache.read`); every other command writes.
    pub fn is_read(&self) -> bool {
        matches!(
            self,
            Command::Ping(_) | Command::Get(_) | Command::Exists(_) | Command::Ttl { .. }
        )
    }

    /// The keys it names, in order (none for `PING`).
    pub fn keys(&self) -> Vec<&str> {
        match self {
            Command::Ping(_) => Vec::new(),
            Command::Del(keys) | Command::Exists(keys) => keys.iter().map(String::as_str).collect(),
            Command::Get(k)
            | Command::Persist(k)
            | Command::GetDel(k)
            | Command::Set { key: k, .. }
            | Command::IncrBy { key: k, .. }
            | Command::Expire { key: k, .. }
            | Command::Ttl { key: k, .. } => vec![k.as_str()],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(cmd: Json) -> Result<Command, CacheError> {
        Command::parse(&json!({ "cmd": cmd }))
    }

    #[test]
    fn commands_parse() {
        assert_eq!(
            parse(json!(["set", "k", "v", "px", 1500, "NX"])).unwrap(),
            Command::Set {
                key: "k".into(),
                value: "v".into(),
                ttl_ms: Some(1500),
                only: Some(SetOnly::Absent)
            }
        );
        assert_eq!(
            parse(json!(["SET", "k", "v", "XX", "EX", "2"])).unwrap(),
            Command::Set {
                key: "k".into(),
                value: "v".into(),
                ttl_ms: Some(2000),
                only: Some(SetOnly::Present)
            }
        );
        assert_eq!(
            parse(json!(["DECRBY", "n", "5"])).unwrap(),
            Command::IncrBy {
                key: "n".into(),
                by: -5
            }
        );
        assert_eq!(
            parse(json!(["EXPIRE", "k", 3])).unwrap(),
            Command::Expire {
                key: "k".into(),
                ttl_ms: 3000
            }
        );
        assert_eq!(parse(json!(["PING"])).unwrap(), Command::Ping(None));
        let del = parse(json!(["DEL", "a", "b"])).unwrap();
        assert_eq!(del.keys(), vec!["a", "b"]);
        assert!(!del.is_read());
        assert!(parse(json!(["EXISTS", "a"])).unwrap().is_read());
        assert!(!parse(json!(["GETDEL", "a"])).unwrap().is_read());
    }

    #[test]
    fn refusals_say_which_argument() {
        let cases = [
            (json!(["FLUSHALL"]), "UNKNOWN_COMMAND", "FLUSHALL"),
            (json!(["GET"]), "BAD_COMMAND", "GET takes 1 argument"),
            (json!(["GET", "a", "b"]), "BAD_COMMAND", "not 2"),
            (json!(["GET", {"k": 1}]), "BAD_COMMAND", "argument 1 (key)"),
            (
                json!(["INCRBY", "n", "1.5"]),
                "BAD_COMMAND",
                "argument 2 (increment)",
            ),
            (
                json!(["SET", "k", "v", "PX"]),
                "BAD_COMMAND",
                "argument 4 (milliseconds) is missing",
            ),
            (
                json!(["SET", "k", "v", "PX", "x"]),
                "BAD_COMMAND",
                "argument 4",
            ),
            (
                json!(["SET", "k", "v", "KEEPTTL"]),
                "BAD_COMMAND",
                "argument 3: unknown option",
            ),
            (
                json!(["SET", "k", "v", "NX", "XX"]),
                "BAD_COMMAND",
                "argument 4 (XX)",
            ),
            (
                json!(["SET", "k", "v", "EX", 0]),
                "BAD_TTL",
                "argument 4 (seconds)",
            ),
            (json!(["PEXPIRE", "k", -1]), "BAD_TTL", "argument 2"),
            (json!(["SET", "", "v"]), "BAD_KEY", "argument 1 (key)"),
            (json!(["DEL"]), "BAD_COMMAND", "1 to 100 keys"),
            (json!([]), "BAD_COMMAND", "empty"),
            (json!([7]), "BAD_COMMAND", "name"),
        ];
        for (cmd, code, words) in cases {
            let e = parse(cmd.clone()).unwrap_err();
            assert_eq!(e.code(), code, "{cmd}: {e}");
            assert!(e.to_string().contains(words), "{cmd}: {e}");
        }
        let many: Vec<String> = (0..=MAX_KEYS_PER_COMMAND)
            .map(|i| format!("k{i}"))
            .collect();
        let mut cmd = vec![json!("EXISTS")];
        cmd.extend(many.iter().map(|k| json!(k)));
        assert_eq!(parse(json!(cmd)).unwrap_err().code(), "BAD_COMMAND");
        let e = Command::parse(&json!({"cmd": ["PING"], "x": 1})).unwrap_err();
        assert_eq!(e.code(), "BAD_COMMAND");
        let big = "x".repeat(super::super::MAX_VALUE_BYTES);
        assert_eq!(
            parse(json!(["SET", "k", big])).unwrap_err().code(),
            "VALUE_TOO_LARGE"
        );
    }
}
