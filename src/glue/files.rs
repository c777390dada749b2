//! `/v1/files` in the Worker (docs/files.md): who the caller is and
//! whether the shard rules let them at the shard, the engine's decision
//! (`files::…`), then R2 and the shard's file row, in the order that
//! leaves no half file visible: an upload's bytes are complete in R2
//! before its row is inserted; a delete removes the row, then the bytes.

use serde_json::json;
use worker::{Env, Method, Request, Response, Result};

use crate::api_error::ApiError;
use crate::app::App;
use crate::files::path::{self, FilePath};
use crate::files::serve::{plan_download, StoredFile};
use crate::files::signed_url::{self, UploadGrant};
use crate::files::upload::{check_meta, plan_upload, Declared};
use crate::files::{FileError, FilesConfig};
use crate::glue::internal::{self, SHARD_BINDING};
use crate::glue::random::CryptoRandom;
use crate::glue::{auth, body, r2, respond, session_gate};
use crate::manifest::Manifest;
use crate::policy::{AuthContext, Decision};
use crate::time::{now_ms, now_secs, rfc3339_from_ms};

/// The secret that signs upload URLs (a Worker secret).
const SECRET_VAR: &str = "PYLON_FILES_SECRET";
/// A signed-URL request's body, at most.
const MAX_REQUEST_BYTES: usize = 4096;

/// `/v1/files/{rest}`.
pub(crate) async fn handle(req: Request, env: &Env, app: &App, rest: &str) -> Result<Response> {
    let at = match path::parse(rest) {
        Ok(p) => p,
        Err(e) => return respond::error(&e),
    };
    let manifest = match respond::manifest(app)? {
        Ok(m) => m,
        Err(answer) => return Ok(answer),
    };
    let Some(config) = manifest.background().files.clone() else {
        let e = FileError::NotConfigured("this app has no files section in its manifest".into());
        return respond::error(&e.into());
    };
    let token = query(&req, "token");
    // A signed upload URL carries its caller; anything else identifies one.
    let (caller, grant) = match (&token, req.method(), at.upload_url) {
        (Some(t), Method::Put, false) => match verify_grant(env, t, &at) {
            Ok(g) => (g.caller.clone(), Some(g)),
            Err(e) => return respond::error(&e.into()),
        },
        _ => match session_gate::identify(env, app, &req).await? {
            Ok(c) => (c, None),
            Err(answer) => return Ok(answer),
        },
    };
    if let Err(e) = manifest.auth().admit_caller(&at.shard, &caller) {
        return auth::refusal(&e);
    }
    let ctx = Ctx {
        env,
        manifest: &manifest,
        config: &config,
        at: &at,
        caller: &caller,
    };
    match (req.method(), at.upload_url) {
        (Method::Put, false) => ctx.upload(req, grant).await,
        (Method::Get, false) => ctx.download(&req).await,
        (Method::Delete, false) => ctx.delete().await,
        (Method::Post, true) => ctx.upload_url(req).await,
        _ => respond::error(&ApiError::method_not_allowed(
            "a file takes PUT, GET and DELETE; its upload-url takes POST",
        )),
    }
}

fn query(req: &Request, name: &str) -> Option<String> {
    let url = req.url().ok()?;
    let found = url.query_pairs().find(|(k, _)| k == name);
    found.map(|(_, v)| v.into_owned())
}

fn secret(env: &Env) -> std::result::Result<Vec<u8>, FileError> {
    env.secret(SECRET_VAR)
        .map(|s| s.to_string())
        .or_else(|_| env.var(SECRET_VAR).map(|v| v.to_string()))
        .ok()
        .filter(|s| !s.is_empty())
        .map(String::into_bytes)
        .ok_or_else(|| FileError::NotConfigured(format!("signed upload URLs need {SECRET_VAR}")))
}

fn verify_grant(env: &Env, token: &str, at: &FilePath) -> std::result::Result<UploadGrant, FileError> {
    signed_url::verify(token, &secret(env)?, now_secs(), &at.shard, &at.id)
}

struct Ctx<'a> {
    env: &'a Env,
    manifest: &'a Manifest,
    config: &'a FilesConfig,
    at: &'a FilePath,
    caller: &'a AuthContext,
}

impl Ctx<'_> {
    /// A request to the file's shard, as the caller (its policies apply).
    async fn shard(&self, rest: &str, body: serde_json::Value) -> Result<internal::Answer> {
        internal::call(
            self.env,
            SHARD_BINDING,
            &self.at.shard,
            Method::Post,
            rest,
            "",
            Some(&body),
            self.caller,
        )
        .await
    }

    /// The file row, if the caller may read it: `Err` is the answer.
    async fn row(&self) -> Result<std::result::Result<serde_json::Value, Response>> {
        let q = json!({"entity": self.config.entity, "where": {"id": self.at.id}, "limit": 1});
        let answer = match self.shard("query", q).await {
            Ok(a) => a,
            Err(e) => return Ok(Err(respond::internal("file row", &e)?)),
        };
        if !answer.ok() {
            return Ok(Err(respond::json(answer.status, &answer.body)?));
        }
        match answer.body["rows"].get(0) {
            Some(r) => Ok(Ok(r.clone())),
            None => Ok(Err(respond::error(
                &FileError::NotFound(format!("{}/{}", self.at.shard, self.at.id)).into(),
            )?)),
        }
    }

    /// Whether the policies let the caller insert `row`: the answer if not.
    fn may_insert(&self, row: &crate::value::Row, what: &str) -> Option<Result<Response>> {
        match self.manifest.policies().can_insert(&self.config.entity, self.caller, row) {
            Decision::Allow => None,
            Decision::Deny(_) => Some(respond::refused(self.caller, what)),
        }
    }

    async fn upload(&self, req: Request, grant: Option<UploadGrant>) -> Result<Response> {
        let headers = req.headers();
        let (length, content_type) = (headers.get("Content-Length")?, headers.get("Content-Type")?);
        let declared = Declared {
            length: length.as_deref(),
            content_type: content_type.as_deref(),
            name: query(&req, "name"),
            row: query(&req, "row"),
        };
        let nonce = crate::signin::random::token(&CryptoRandom, 16);
        let owner = self.caller.user_id.as_deref();
        let plan = match plan_upload(
            self.config, &self.at.shard, &self.at.id, &declared, grant.as_ref(), owner, now_ms(), &nonce,
        ) {
            Ok(p) => p,
            Err(e) => return respond::error(&e.into()),
        };
        if let Some(answer) = self.may_insert(&plan.row, "uploading this file") {
            return answer;
        }
        // A file id already in use (and visible) is refused before the
        // body is read, not after it was stored.
        let q = json!({"entity": self.config.entity, "where": {"id": self.at.id}, "count": true});
        match self.shard("query", q).await {
            Ok(a) if a.ok() && a.body["count"].as_u64().unwrap_or(0) > 0 => {
                return respond::error(&ApiError::new(
                    409,
                    "ALREADY_EXISTS",
                    format!("file {} exists; delete it first", self.at.id),
                ));
            }
            Ok(a) if !a.ok() => return respond::json(a.status, &a.body),
            Ok(_) => {}
            Err(e) => return respond::internal("file row", &e),
        }
        let bucket = r2::bucket(self.env)?;
        if let Err(e) = r2::put_body(&bucket, &plan.object_key, &req, plan.size, &plan.content_type).await {
            // A body that ended early or ran long, or R2 failed: nothing
            // was stored (a put is whole or absent).
            worker::console_error!("file upload {}: {e}", plan.object_key);
            return respond::error(&ApiError::bad_request(
                "UPLOAD_INCOMPLETE",
                format!("the body was not the {} bytes declared, or storing it failed", plan.size),
            ));
        }
        // The bytes are complete: the row makes them visible.
        let op = format!("file-{nonce}");
        let insert = json!({"op": op, "ops": [{"type": "insert", "entity": self.config.entity, "row": plan.row}]});
        let answer = self.shard("mutate", insert).await;
        match answer {
            Ok(a) if a.ok() => respond::json(201, &json!({ "file": plan.row })),
            other => {
                // No row: drop the bytes it would have named.
                if let Err(e) = bucket.delete(&plan.object_key).await {
                    worker::console_error!("file {}: orphan left: {e}", plan.object_key);
                }
                match other {
                    Ok(a) => respond::json(a.status, &a.body),
                    Err(e) => respond::internal("file row insert", &e),
                }
            }
        }
    }

    async fn download(&self, req: &Request) -> Result<Response> {
        let row = match self.row().await? {
            Ok(r) => r,
            Err(answer) => return Ok(answer),
        };
        let Some(file) = StoredFile::from_row(&row) else {
            return respond::error(&ApiError::internal("the file row lacks key, size or type"));
        };
        let headers = req.headers();
        let plan = match plan_download(
            &file,
            headers.get("If-None-Match")?.as_deref(),
            headers.get("Range")?.as_deref(),
        ) {
            Ok(p) => p,
            Err(e) => {
                let mut resp = respond::error(&e.into())?;
                resp.headers_mut().set("Content-Range", &format!("bytes */{}", file.size))?;
                return Ok(resp);
            }
        };
        let mut resp = if plan.body {
            let bucket = r2::bucket(self.env)?;
            match r2::get_body(&bucket, &file.key, plan.range).await? {
                Some(body) => Response::from_body(body)?,
                None => {
                    return respond::error(
                        &FileError::NotFound(format!("{}/{}", self.at.shard, self.at.id)).into(),
                    )
                }
            }
        } else {
            Response::empty()?
        }
        .with_status(plan.status);
        let out = resp.headers_mut();
        for (name, value) in &plan.headers {
            out.set(name, value)?;
        }
        Ok(resp)
    }

    async fn delete(&self) -> Result<Response> {
        let row = match self.row().await? {
            Ok(r) => r,
            Err(answer) => return Ok(answer),
        };
        let op = format!("file-delete-{}", crate::signin::random::token(&CryptoRandom, 12));
        let del = json!({"op": op, "ops": [{"type": "delete", "entity": self.config.entity, "id": self.at.id}]});
        match self.shard("mutate", del).await {
            Ok(a) if a.ok() => {}
            Ok(a) => return respond::json(a.status, &a.body),
            Err(e) => return respond::internal("file row delete", &e),
        }
        // The row is gone, so nothing names the bytes any more.
        if let Some(key) = row["key"].as_str() {
            if let Err(e) = r2::bucket(self.env)?.delete(key).await {
                worker::console_error!("file {key}: orphan left: {e}");
            }
        }
        respond::json(200, &json!({ "deleted": true }))
    }

    /// `POST …/upload-url {type, size, name?, row?}`: a signed URL to PUT
    /// the file to, as this caller, within `files.signedUrlSeconds`.
    async fn upload_url(&self, mut req: Request) -> Result<Response> {
        let secret = match secret(self.env) {
            Ok(s) => s,
            Err(e) => return respond::error(&e.into()),
        };
        let bytes = match body::read_capped(&mut req, MAX_REQUEST_BYTES).await {
            Ok(b) => b,
            Err(e) => return respond::error(&e.to_api_error("BAD_REQUEST")),
        };
        let asked: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
        let (Some(content_type), Some(size)) = (asked["type"].as_str(), asked["size"].as_u64()) else {
            return respond::error(&FileError::BadRequest("the body is {\"type\": …, \"size\": n}".into()).into());
        };
        let (name, row) = (asked["name"].as_str(), asked["row"].as_str());
        if let Err(e) = check_meta(name, row) {
            return respond::error(&e.into());
        }
        let length = size.to_string();
        let declared = Declared {
            length: Some(&length),
            content_type: Some(content_type),
            name: name.map(str::to_owned),
            row: row.map(str::to_owned),
        };
        let owner = self.caller.user_id.as_deref();
        // The row it would be, to check the limits and policies now.
        let plan = match plan_upload(self.config, &self.at.shard, &self.at.id, &declared, None, owner, now_ms(), "") {
            Ok(p) => p,
            Err(e) => return respond::error(&e.into()),
        };
        if let Some(answer) = self.may_insert(&plan.row, "uploading this file") {
            return answer;
        }
        let expires_at = now_secs() + self.config.signed_url_seconds;
        let grant = UploadGrant {
            shard: self.at.shard.clone(),
            id: self.at.id.clone(),
            content_type: plan.content_type,
            size,
            expires_at,
            caller: self.caller.clone(),
            name: declared.name,
            row: declared.row,
        };
        let token = signed_url::sign(&grant, &secret);
        let url = format!("/v1/files/{}/{}?token={token}", self.at.shard, self.at.id);
        respond::json(
            200,
            &json!({
                "url": url,
                "method": "PUT",
                "headers": {"Content-Type": grant.content_type},
                "expiresAt": rfc3339_from_ms(expires_at * 1000),
            }),
        )
    }
}
