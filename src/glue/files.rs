//! `/v1/files` in the Worker (docs/files.md): who the caller is and
//! whether the shard rules let them at the shard, the engine's decision
//! (`files::…`), then R2 and the shard's file row, in the order that
//! leaves no half file visible: an upload's bytes are complete in R2
//! before its row is inserted; a delete removes the row, then the bytes.

use serde_json::json;
use worker::{Env, HttpMetadata, Method, Request, Response, Result, UploadedPart};

use crate::api_error::ApiError;
use crate::app::App;
use crate::files::multipart::{parse_complete, parse_part, PartPlan};
use crate::files::path::{self, FilePath, Tail};
use crate::files::serve::{plan_download, StoredFile};
use crate::files::signed_url::{self, MultipartRef, UploadGrant};
use crate::files::upload::{check_meta, plan_upload, Declared, Upload};
use crate::files::{object_key, FileError, FilesConfig};
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
/// A multipart completion's body, at most (10,000 parts and their etags).
const MAX_COMPLETE_BYTES: usize = 1024 * 1024;

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
    let route = match (req.method(), &at.tail) {
        (Method::Put, Tail::File) => Route::Upload,
        (Method::Get, Tail::File) => Route::Download,
        (Method::Delete, Tail::File) => Route::Delete,
        (Method::Post, Tail::UploadUrl) => Route::UploadUrl,
        (Method::Post, Tail::Uploads) => Route::Start,
        (Method::Put, Tail::Part(u, n)) => Route::Part(u.clone(), n.clone()),
        (Method::Post, Tail::Complete(u)) => Route::Complete(u.clone()),
        (Method::Delete, Tail::Upload(u)) => Route::Abort(u.clone()),
        _ => {
            return respond::error(&ApiError::method_not_allowed(
                "a file takes PUT, GET and DELETE; its upload-url and uploads take POST; \
                 an upload's parts take PUT, its complete POST, the upload DELETE",
            ))
        }
    };
    // A signed upload URL, or a multipart upload's token, carries its
    // caller; anything else identifies one.
    let (caller, grant) = match (&route, &token) {
        (Route::Upload, Some(t)) => match verify_grant(env, t, &at) {
            Ok(g) => (g.caller.clone(), Some((g, None))),
            Err(e) => return respond::error(&e.into()),
        },
        (Route::Part(u, _) | Route::Complete(u) | Route::Abort(u), t) => {
            let t = t.as_deref().unwrap_or("");
            match secret(env).and_then(|k| signed_url::verify_multipart(t, &k, now_secs(), &at.shard, &at.id, u)) {
                Ok((g, m)) => (g.caller.clone(), Some((g, Some(m)))),
                Err(e) => return respond::error(&e.into()),
            }
        }
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
    match (route, grant) {
        (Route::Upload, g) => ctx.upload(req, g.map(|(g, _)| g)).await,
        (Route::Download, _) => ctx.download(&req).await,
        (Route::Delete, _) => ctx.delete().await,
        (Route::UploadUrl, _) => ctx.upload_url(req).await,
        (Route::Start, _) => ctx.start_multipart(req).await,
        (Route::Part(_, n), Some((g, Some(m)))) => ctx.put_part(req, &g, &m, &n).await,
        (Route::Complete(_), Some((g, Some(m)))) => ctx.complete(req, &g, &m).await,
        (Route::Abort(_), Some((_, Some(m)))) => ctx.abort(&m).await,
        _ => respond::error(&ApiError::internal("a multipart route without its grant")),
    }
}

enum Route {
    Upload,
    Download,
    Delete,
    UploadUrl,
    /// `POST …/uploads`.
    Start,
    /// `PUT …/uploads/{uploadId}/parts/{n}`.
    Part(String, String),
    /// `POST …/uploads/{uploadId}/complete`.
    Complete(String),
    /// `DELETE …/uploads/{uploadId}`.
    Abort(String),
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
            self.config, &self.at.shard, &self.at.id, &declared, grant.as_ref(), true, owner, now_ms(), &nonce,
        ) {
            Ok(p) => p,
            Err(e) => return respond::error(&e.into()),
        };
        if let Some(answer) = self.may_insert(&plan.row, "uploading this file") {
            return answer;
        }
        if let Some(answer) = self.id_taken().await? {
            return Ok(answer);
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
        self.commit(&bucket, &plan, &nonce).await
    }

    /// A file id already in use (and visible) is refused before any byte
    /// is stored: the answer, if it is.
    async fn id_taken(&self) -> Result<Option<Response>> {
        let q = json!({"entity": self.config.entity, "where": {"id": self.at.id}, "count": true});
        match self.shard("query", q).await {
            Ok(a) if a.ok() && a.body["count"].as_u64().unwrap_or(0) > 0 => Ok(Some(respond::error(&ApiError::new(
                409,
                "ALREADY_EXISTS",
                format!("file {} exists; delete it first", self.at.id),
            ))?)),
            Ok(a) if !a.ok() => Ok(Some(respond::json(a.status, &a.body)?)),
            Ok(_) => Ok(None),
            Err(e) => Ok(Some(respond::internal("file row", &e)?)),
        }
    }

    /// The bytes are complete in R2: the row makes them visible. If the
    /// insert is refused, the object is deleted.
    async fn commit(&self, bucket: &worker::Bucket, plan: &Upload, nonce: &str) -> Result<Response> {
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

    /// The body of `upload-url` and `uploads`, `{type, size, name?,
    /// row?}`, checked as an upload of it would be (limits, type, insert
    /// policies): the upload it would be and its name and row, or the
    /// answer.
    async fn asked(
        &self,
        req: &mut Request,
        single: bool,
    ) -> Result<std::result::Result<(Upload, Option<String>, Option<String>), Response>> {
        let bytes = match body::read_capped(req, MAX_REQUEST_BYTES).await {
            Ok(b) => b,
            Err(e) => return Ok(Err(respond::error(&e.to_api_error("BAD_REQUEST"))?)),
        };
        let asked: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
        let (Some(content_type), Some(size)) = (asked["type"].as_str(), asked["size"].as_u64()) else {
            let e = FileError::BadRequest("the body is {\"type\": …, \"size\": n}".into());
            return Ok(Err(respond::error(&e.into())?));
        };
        let (name, row) = (asked["name"].as_str(), asked["row"].as_str());
        if let Err(e) = check_meta(name, row) {
            return Ok(Err(respond::error(&e.into())?));
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
        let plan = match plan_upload(
            self.config, &self.at.shard, &self.at.id, &declared, None, single, owner, now_ms(), "",
        ) {
            Ok(p) => p,
            Err(e) => return Ok(Err(respond::error(&e.into())?)),
        };
        if let Some(answer) = self.may_insert(&plan.row, "uploading this file") {
            return Ok(Err(answer?));
        }
        Ok(Ok((plan, declared.name, declared.row)))
    }

    fn grant(&self, plan: &Upload, name: Option<String>, row: Option<String>) -> UploadGrant {
        UploadGrant {
            shard: self.at.shard.clone(),
            id: self.at.id.clone(),
            content_type: plan.content_type.clone(),
            size: plan.size,
            expires_at: now_secs() + self.config.signed_url_seconds,
            caller: self.caller.clone(),
            name,
            row,
            multipart: None,
        }
    }

    /// `POST …/upload-url {type, size, name?, row?}`: a signed URL to PUT
    /// the file to, as this caller, within `files.signedUrlSeconds`.
    async fn upload_url(&self, mut req: Request) -> Result<Response> {
        let secret = match secret(self.env) {
            Ok(s) => s,
            Err(e) => return respond::error(&e.into()),
        };
        let (plan, name, row) = match self.asked(&mut req, true).await? {
            Ok(a) => a,
            Err(answer) => return Ok(answer),
        };
        let grant = self.grant(&plan, name, row);
        let token = signed_url::sign(&grant, &secret);
        let url = format!("/v1/files/{}/{}?token={token}", self.at.shard, self.at.id);
        respond::json(
            200,
            &json!({
                "url": url,
                "method": "PUT",
                "headers": {"Content-Type": grant.content_type},
                "expiresAt": rfc3339_from_ms(grant.expires_at * 1000),
            }),
        )
    }

    /// `POST …/uploads {type, size, name?, row?}`: starts a multipart
    /// upload in R2 after the checks a single upload makes (shard rules,
    /// limits, type, insert policies, the id free), and answers how to cut
    /// the file and a token for its parts, as this caller, within
    /// `files.signedUrlSeconds`.
    async fn start_multipart(&self, mut req: Request) -> Result<Response> {
        let secret = match secret(self.env) {
            Ok(s) => s,
            Err(e) => return respond::error(&e.into()),
        };
        let (plan, name, row) = match self.asked(&mut req, false).await? {
            Ok(a) => a,
            Err(answer) => return Ok(answer),
        };
        let parts = match PartPlan::for_size(plan.size) {
            Ok(p) => p,
            Err(e) => return respond::error(&e.into()),
        };
        if let Some(answer) = self.id_taken().await? {
            return Ok(answer);
        }
        let nonce = crate::signin::random::token(&CryptoRandom, 16);
        let key = object_key(&self.at.shard, &self.at.id, &nonce);
        let meta = HttpMetadata {
            content_type: Some(plan.content_type.clone()),
            ..HttpMetadata::default()
        };
        let upload = match r2::bucket(self.env)?.create_multipart_upload(key).http_metadata(meta).execute().await {
            Ok(u) => u,
            Err(e) => return respond::internal("starting a multipart upload", &e),
        };
        let upload_id = upload.upload_id().await;
        let mut grant = self.grant(&plan, name, row);
        grant.multipart = Some(MultipartRef { upload_id: upload_id.clone(), nonce });
        let token = signed_url::sign(&grant, &secret);
        let url = format!(
            "/v1/files/{}/{}/uploads/{}",
            self.at.shard,
            self.at.id,
            crate::http::percent_encode(&upload_id)
        );
        respond::json(
            201,
            &json!({
                "uploadId": upload_id,
                "url": url,
                "size": parts.size,
                "partBytes": parts.part_bytes,
                "parts": parts.parts,
                "expiresAt": rfc3339_from_ms(grant.expires_at * 1000),
                "token": token,
            }),
        )
    }

    /// `PUT …/uploads/{uploadId}/parts/{n}?token=`: part `n`, exactly its
    /// size, streamed into R2; answers its etag.
    async fn put_part(&self, req: Request, grant: &UploadGrant, m: &MultipartRef, raw_n: &str) -> Result<Response> {
        let checked = PartPlan::for_size(grant.size).and_then(|p| {
            let n = parse_part(raw_n, p.parts)?;
            let length = req.headers().get("Content-Length").ok().flatten().ok_or(FileError::LengthRequired)?;
            let length: u64 = length
                .trim()
                .parse()
                .map_err(|_| FileError::BadRequest(format!("Content-Length {length:?} is not a size")))?;
            p.check_part(n, length)?;
            Ok((n, length))
        });
        let (n, length) = match checked {
            Ok(c) => c,
            Err(e) => return respond::error(&e.into()),
        };
        let key = object_key(&self.at.shard, &self.at.id, &m.nonce);
        let upload = r2::bucket(self.env)?.resume_multipart_upload(key, m.upload_id.clone())?;
        match r2::put_part(&upload, n, &req, length).await {
            Ok(etag) => respond::json(200, &json!({"part": n, "etag": etag})),
            Err(r2::PartFailed::R2(e)) if r2::no_such_upload(&e) => {
                respond::error(&FileError::UploadNotFound(m.upload_id.clone()).into())
            }
            Err(r2::PartFailed::Body(e) | r2::PartFailed::R2(e)) => {
                worker::console_error!("file part {n} of {}: {e}", m.upload_id);
                respond::error(&ApiError::bad_request(
                    "UPLOAD_INCOMPLETE",
                    format!("part {n}'s body was not the {length} bytes declared, or storing it failed"),
                ))
            }
        }
    }

    /// `POST …/uploads/{uploadId}/complete?token=` `[{part, etag}, …]`:
    /// R2 joins the parts into the object, and only then is the file row
    /// inserted (as the caller who started the upload).
    async fn complete(&self, mut req: Request, grant: &UploadGrant, m: &MultipartRef) -> Result<Response> {
        let bytes = match body::read_capped(&mut req, MAX_COMPLETE_BYTES).await {
            Ok(b) => b,
            Err(e) => return respond::error(&e.to_api_error("BAD_REQUEST")),
        };
        let asked: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
        let listed = PartPlan::for_size(grant.size)
            .and_then(|p| p.check_complete(&parse_complete(&asked)?));
        let listed = match listed {
            Ok(l) => l,
            Err(e) => return respond::error(&e.into()),
        };
        let size = grant.size.to_string();
        let declared = Declared {
            length: Some(&size),
            content_type: Some(&grant.content_type),
            ..Declared::default()
        };
        let owner = self.caller.user_id.as_deref();
        let plan = match plan_upload(
            self.config, &self.at.shard, &self.at.id, &declared, Some(grant), false, owner, now_ms(), &m.nonce,
        ) {
            Ok(p) => p,
            Err(e) => return respond::error(&e.into()),
        };
        if let Some(answer) = self.id_taken().await? {
            return Ok(answer);
        }
        let bucket = r2::bucket(self.env)?;
        let upload = bucket.resume_multipart_upload(plan.object_key.clone(), m.upload_id.clone())?;
        let parts = listed.into_iter().map(|(n, etag)| UploadedPart::new(n, etag));
        if let Err(e) = upload.complete(parts).await {
            // Completed already (the Worker stopped before the row was
            // written, and this is the retry): the object is whole.
            let whole = r2::no_such_upload(&e)
                && matches!(bucket.head(plan.object_key.clone()).await, Ok(Some(o)) if o.size() == grant.size);
            if !whole {
                if r2::no_such_upload(&e) {
                    return respond::error(&FileError::UploadNotFound(m.upload_id.clone()).into());
                }
                worker::console_error!("file complete {}: {e}", m.upload_id);
                return respond::error(&ApiError::bad_request(
                    "UPLOAD_INCOMPLETE",
                    "R2 did not join the parts: an etag that is not its part's, or storing failed",
                ));
            }
        }
        self.commit(&bucket, &plan, &m.nonce).await
    }

    /// `DELETE …/uploads/{uploadId}?token=`: R2 drops the parts.
    async fn abort(&self, m: &MultipartRef) -> Result<Response> {
        let key = object_key(&self.at.shard, &self.at.id, &m.nonce);
        let upload = r2::bucket(self.env)?.resume_multipart_upload(key, m.upload_id.clone())?;
        match upload.abort().await {
            Ok(()) => respond::json(200, &json!({"aborted": true})),
            Err(e) if r2::no_such_upload(&e) => {
                respond::error(&FileError::UploadNotFound(m.upload_id.clone()).into())
            }
            Err(e) => respond::internal("aborting a multipart upload", &e),
        }
    }
}
