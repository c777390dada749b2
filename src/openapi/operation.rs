//! One operation of the document, as a plain description ([`OpSpec`]) and
//! its OpenAPI form ([`OpSpec::to_json`]). Route tables are lists of these;
//! path parameters come from the `{placeholders}` of the path, every other
//! parameter, body and answer names a component of `components.json`.

use serde_json::{json, Map, Value};

use super::access::Access;

/// An operation's group in the document (its tag).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tag {
    Meta,
    ColdPath,
    Shards,
    Functions,
    Jobs,
    Workflows,
    Crons,
    SignIn,
    Objects,
    Sims,
    Matchmaking,
}

impl Tag {
    pub const ALL: [Tag; 11] = [
        Tag::Meta,
        Tag::ColdPath,
        Tag::Shards,
        Tag::Functions,
        Tag::Jobs,
        Tag::Workflows,
        Tag::Crons,
        Tag::SignIn,
        Tag::Objects,
        Tag::Sims,
        Tag::Matchmaking,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Tag::Meta => "meta",
            Tag::ColdPath => "cold path",
            Tag::Shards => "shards",
            Tag::Functions => "functions",
            Tag::Jobs => "jobs",
            Tag::Workflows => "workflows",
            Tag::Crons => "crons",
            Tag::SignIn => "sign-in",
            Tag::Objects => "objects",
            Tag::Sims => "sims",
            Tag::Matchmaking => "matchmaking",
        }
    }

    pub fn description(self) -> &'static str {
        match self {
            Tag::Meta => "Health and this document.",
            Tag::ColdPath => "Queries across shards, answered from D1 (docs/d1.md).",
            Tag::Shards => "One shard: a Durable Object owning its rows (docs/protocol.md, HTTP).",
            Tag::Functions => "The app's server functions, called in a shard (docs/functions.md).",
            Tag::Jobs => "Background jobs (docs/jobs.md).",
            Tag::Workflows => "Durable workflows (docs/workflows.md).",
            Tag::Crons => "The manifest's cron entries (docs/jobs.md, Cron).",
            Tag::SignIn => "Sign-in and sessions (docs/sign-in.md).",
            Tag::Objects => "The app's own object kinds (docs/apps.md).",
            Tag::Sims => "Simulation shards (docs/sims.md).",
            Tag::Matchmaking => "Matchmaking queues (docs/sims.md, Matchmaking).",
        }
    }
}

/// A failure answer, by its response component.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fail {
    BadRequest,
    Unauthorized,
    Forbidden,
    NotFound,
    Conflict,
    TooLarge,
    Unprocessable,
    UpgradeRequired,
    RateLimited,
    Internal,
    BadGateway,
    Unavailable,
}

impl Fail {
    fn status(self) -> u16 {
        match self {
            Fail::BadRequest => 400,
            Fail::Unauthorized => 401,
            Fail::Forbidden => 403,
            Fail::NotFound => 404,
            Fail::Conflict => 409,
            Fail::TooLarge => 413,
            Fail::Unprocessable => 422,
            Fail::UpgradeRequired => 426,
            Fail::RateLimited => 429,
            Fail::Internal => 500,
            Fail::BadGateway => 502,
            Fail::Unavailable => 503,
        }
    }

    /// The response component (`components.json`).
    fn component(self) -> &'static str {
        match self {
            Fail::BadRequest => "BadRequest",
            Fail::Unauthorized => "Unauthorized",
            Fail::Forbidden => "Forbidden",
            Fail::NotFound => "NotFound",
            Fail::Conflict => "Conflict",
            Fail::TooLarge => "TooLarge",
            Fail::Unprocessable => "Unprocessable",
            Fail::UpgradeRequired => "UpgradeRequired",
            Fail::RateLimited => "RateLimited",
            Fail::Internal => "Internal",
            Fail::BadGateway => "BadGateway",
            Fail::Unavailable => "Unavailable",
        }
    }
}

/// A success answer: its status, and the schema of its JSON body, or the
/// response component it is (`101` upgrades, `302` redirects).
#[derive(Clone, Copy, Debug)]
pub enum Answer {
    Json(u16, &'static str),
    Response(u16, &'static str),
}

/// A request body: the schema component, and whether it may be left out.
#[derive(Clone, Copy, Debug)]
pub enum Body {
    None,
    Required(&'static str),
    Optional(&'static str),
}

/// One operation. `query` names parameter components.
#[derive(Clone, Copy, Debug)]
pub struct OpSpec<'a> {
    pub method: &'static str,
    pub path: &'a str,
    pub id: &'a str,
    pub tag: Tag,
    pub summary: &'a str,
    /// More than the summary says, or empty.
    pub detail: &'a str,
    pub access: Access,
    pub query: &'static [&'static str],
    pub body: Body,
    pub ok: &'static [Answer],
    pub fails: &'static [Fail],
}

pub fn schema_ref(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

fn json_content(schema: Value) -> Value {
    json!({ "application/json": { "schema": schema } })
}

/// The `{placeholders}` of a path template, in order.
pub fn placeholders(path: &str) -> impl Iterator<Item = &str> {
    path.split('/')
        .filter_map(|seg| seg.strip_prefix('{')?.strip_suffix('}'))
}

/// Route tables are built with these, at compile time:
/// `OpSpec::get(path, id, tag, access).summary(..).ok(..)`.
impl<'a> OpSpec<'a> {
    pub const fn new(
        method: &'static str,
        path: &'a str,
        id: &'a str,
        tag: Tag,
        access: Access,
    ) -> Self {
        OpSpec {
            method,
            path,
            id,
            tag,
            summary: "",
            detail: "",
            access,
            query: &[],
            body: Body::None,
            ok: &[],
            fails: &[],
        }
    }

    pub const fn get(path: &'a str, id: &'a str, tag: Tag, access: Access) -> Self {
        Self::new("get", path, id, tag, access)
    }

    pub const fn post(path: &'a str, id: &'a str, tag: Tag, access: Access) -> Self {
        Self::new("post", path, id, tag, access)
    }

    pub const fn summary(mut self, summary: &'a str) -> Self {
        self.summary = summary;
        self
    }

    pub const fn detail(mut self, detail: &'a str) -> Self {
        self.detail = detail;
        self
    }

    pub const fn query(mut self, query: &'static [&'static str]) -> Self {
        self.query = query;
        self
    }

    pub const fn body(mut self, body: Body) -> Self {
        self.body = body;
        self
    }

    pub const fn ok(mut self, ok: &'static [Answer]) -> Self {
        self.ok = ok;
        self
    }

    pub const fn fails(mut self, fails: &'static [Fail]) -> Self {
        self.fails = fails;
        self
    }
}

impl OpSpec<'_> {
    /// The operation object; `security` and `who` come from [`Access`]
    /// read against the manifest. Failures every route can answer are
    /// added: 401 where credentials are read, 429 where the router's rate
    /// limit applies (everything but [`Tag::Meta`]), 500.
    pub fn to_json(&self, security: Value, who: &str) -> Value {
        let mut op = Map::new();
        op.insert("operationId".into(), json!(self.id));
        op.insert("tags".into(), json!([self.tag.name()]));
        op.insert("summary".into(), json!(self.summary));
        let text = match self.detail {
            "" => format!("Who: {who}"),
            detail => format!("{detail}\n\nWho: {who}"),
        };
        op.insert("description".into(), json!(text));
        let params: Vec<Value> = placeholders(self.path)
            .chain(self.query.iter().copied())
            .map(|p| json!({ "$ref": format!("#/components/parameters/{p}") }))
            .collect();
        if !params.is_empty() {
            op.insert("parameters".into(), Value::Array(params));
        }
        let body = match self.body {
            Body::None => None,
            Body::Required(s) => Some((s, true)),
            Body::Optional(s) => Some((s, false)),
        };
        if let Some((schema, required)) = body {
            op.insert(
                "requestBody".into(),
                json!({ "required": required, "content": json_content(schema_ref(schema)) }),
            );
        }
        op.insert("responses".into(), Value::Object(self.responses()));
        op.insert("security".into(), security);
        Value::Object(op)
    }

    fn responses(&self) -> Map<String, Value> {
        let mut out = Map::new();
        for ok in self.ok {
            let (status, value) = match *ok {
                Answer::Json(status, schema) => (
                    status,
                    json!({ "description": "OK", "content": json_content(schema_ref(schema)) }),
                ),
                Answer::Response(status, component) => (
                    status,
                    json!({ "$ref": format!("#/components/responses/{component}") }),
                ),
            };
            out.insert(status.to_string(), value);
        }
        let mut fails = self.fails.to_vec();
        if self.access != Access::Public {
            fails.push(Fail::Unauthorized);
        }
        if self.tag != Tag::Meta {
            fails.push(Fail::RateLimited);
        }
        fails.push(Fail::Internal);
        for f in fails {
            out.insert(
                f.status().to_string(),
                json!({ "$ref": format!("#/components/responses/{}", f.component()) }),
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_in_order() {
        let got: Vec<&str> = placeholders("/v1/match/{kind}/{queue}/tickets/{ticket}").collect();
        assert_eq!(got, ["kind", "queue", "ticket"]);
        assert_eq!(placeholders("/healthz").count(), 0);
    }

    #[test]
    fn an_operation() {
        let spec = OpSpec::post(
            "/v1/shards/{shard}/mutate",
            "mutateShard",
            Tag::Shards,
            Access::ShardRules,
        )
        .summary("Write rows")
        .query(&["op"])
        .body(Body::Required("Mutation"))
        .ok(&[Answer::Json(200, "MutationResult")])
        .fails(&[Fail::Conflict]);
        let op = spec.to_json(json!([{ "bearer": [] }]), "anyone");
        assert_eq!(op["operationId"], "mutateShard");
        assert_eq!(op["description"], "Who: anyone");
        assert_eq!(
            op["parameters"],
            json!([{ "$ref": "#/components/parameters/shard" },
                   { "$ref": "#/components/parameters/op" }])
        );
        assert_eq!(op["requestBody"]["required"], true);
        assert_eq!(
            op["requestBody"]["content"]["application/json"]["schema"]["$ref"],
            "#/components/schemas/Mutation"
        );
        let codes: Vec<&String> = op["responses"].as_object().unwrap().keys().collect();
        assert_eq!(codes, ["200", "401", "409", "429", "500"]);
        assert_eq!(op["security"], json!([{ "bearer": [] }]));
    }

    #[test]
    fn public_meta_operations_add_no_401_or_429() {
        let spec = OpSpec::get("/healthz", "health", Tag::Meta, Access::Public)
            .summary("Health")
            .detail("Liveness.")
            .ok(&[Answer::Json(200, "Health")]);
        let op = spec.to_json(json!([]), "anyone");
        let codes: Vec<&String> = op["responses"].as_object().unwrap().keys().collect();
        assert_eq!(codes, ["200", "500"]);
        assert!(op.get("parameters").is_none() && op.get("requestBody").is_none());
        assert_eq!(op["description"], "Liveness.\n\nWho: anyone");
    }
}
