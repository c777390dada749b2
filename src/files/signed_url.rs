//! Signed upload URLs: a grant to upload one file (shard, id, exact size
//! and type, as one caller) until a time, signed by the Worker with
//! HMAC-SHA-256 under `PYLON_FILES_SECRET` and carried in the URL as
//! `?token=`. The Worker checks the signature, the file it names and the
//! expiry, then streams the body into R2 as for any upload. (R2's own
//! presigned URLs go to its S3 endpoint, which `wrangler dev` does not
//! have; this works the same locally and deployed.)
//!
//! A multipart upload's token is the same grant with the upload it is
//! for ([`MultipartRef`]: R2's upload id and the object key's random
//! part); [`verify`] refuses it for a single PUT and [`verify_multipart`]
//! refuses a single upload's token, or one for another upload.
//!
//! ```
//! use pylon_workers::files::signed_url::{sign, verify, UploadGrant};
//! use pylon_workers::policy::AuthContext;
//! let g = UploadGrant { shard: "board".into(), id: "f1".into(), content_type: "image/png".into(),
//!     size: 10, expires_at: 1_000, caller: AuthContext::anonymous(), name: None, row: None,
//!     multipart: None };
//! let token = sign(&g, b"secret");
//! assert_eq!(verify(&token, b"secret", 999, "board", "f1").unwrap(), g);
//! assert_eq!(verify(&token, b"secret", 1_000, "board", "f1").unwrap_err().code(), "URL_EXPIRED");
//! ```

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use super::FileError;
use crate::policy::AuthContext;

/// What the signature covers besides the payload: a version, so a token
/// of another kind or format signed with the same secret never passes.
const DOMAIN: &[u8] = b"pylon-files.upload.v1.";
/// Tokens longer than this are refused unread.
const MAX_TOKEN_CHARS: usize = 4096;

/// Leave to upload one file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UploadGrant {
    #[serde(rename = "s")]
    pub shard: String,
    #[serde(rename = "i")]
    pub id: String,
    #[serde(rename = "t")]
    pub content_type: String,
    /// The exact size in bytes (the upload's `Content-Length` must match).
    #[serde(rename = "n")]
    pub size: u64,
    /// Unix seconds; the URL works before this second.
    #[serde(rename = "e")]
    pub expires_at: i64,
    /// Who asked for the URL: the row is written as them.
    #[serde(rename = "c")]
    pub caller: AuthContext,
    #[serde(rename = "m", default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(rename = "r", default, skip_serializing_if = "Option::is_none")]
    pub row: Option<String>,
    /// For a multipart upload: which one.
    #[serde(rename = "u", default, skip_serializing_if = "Option::is_none")]
    pub multipart: Option<MultipartRef>,
}

/// The multipart upload a grant is for.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MultipartRef {
    /// R2's upload id.
    #[serde(rename = "u")]
    pub upload_id: String,
    /// The object key's random part (`object_key(shard, id, nonce)`).
    #[serde(rename = "k")]
    pub nonce: String,
}

fn mac(secret: &[u8], payload: &str) -> Hmac<Sha256> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(DOMAIN);
    mac.update(payload.as_bytes());
    mac
}

/// The token for `grant`: `{payload}.{signature}`, both base64url.
pub fn sign(grant: &UploadGrant, secret: &[u8]) -> String {
    let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(grant).expect("a grant serializes"));
    let sig = URL_SAFE_NO_PAD.encode(mac(secret, &payload).finalize().into_bytes());
    format!("{payload}.{sig}")
}

fn bad(why: &str) -> FileError {
    FileError::BadSignature(format!("the upload URL {why}"))
}

/// The grant `token` carries, if its signature holds, it is for file
/// `id` of `shard`, it is not a multipart upload's, and it has not
/// expired at `now` (Unix seconds).
pub fn verify(
    token: &str,
    secret: &[u8],
    now: i64,
    shard: &str,
    id: &str,
) -> Result<UploadGrant, FileError> {
    let grant = verify_any(token, secret, now, shard, id)?;
    if grant.multipart.is_some() {
        return Err(bad("is for a multipart upload's parts"));
    }
    Ok(grant)
}

/// As [`verify`], for multipart upload `upload_id` of the file: the
/// grant and the upload it names.
pub fn verify_multipart(
    token: &str,
    secret: &[u8],
    now: i64,
    shard: &str,
    id: &str,
    upload_id: &str,
) -> Result<(UploadGrant, MultipartRef), FileError> {
    let grant = verify_any(token, secret, now, shard, id)?;
    match grant.multipart.clone() {
        Some(m) if m.upload_id == upload_id => Ok((grant, m)),
        Some(_) => Err(bad("is for another upload")),
        None => Err(bad("is for a single upload, not a multipart one")),
    }
}

fn verify_any(
    token: &str,
    secret: &[u8],
    now: i64,
    shard: &str,
    id: &str,
) -> Result<UploadGrant, FileError> {
    if token.len() > MAX_TOKEN_CHARS {
        return Err(bad("is too long"));
    }
    let (payload, sig) = token.split_once('.').ok_or_else(|| bad("has no signature"))?;
    let sig = URL_SAFE_NO_PAD
        .decode(sig)
        .map_err(|_| bad("has a malformed signature"))?;
    mac(secret, payload)
        .verify_slice(&sig)
        .map_err(|_| bad("was not signed by this app, or was changed"))?;
    let grant: UploadGrant = URL_SAFE_NO_PAD
        .decode(payload)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or_else(|| bad("has a malformed payload"))?;
    if grant.shard != shard || grant.id != id {
        return Err(bad("is for another file"));
    }
    if now >= grant.expires_at {
        return Err(FileError::UrlExpired {
            expired_at: grant.expires_at,
            now,
        });
    }
    Ok(grant)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant() -> UploadGrant {
        UploadGrant {
            shard: "team:a".into(),
            id: "f1".into(),
            content_type: "image/png".into(),
            size: 1234,
            expires_at: 2_000,
            caller: AuthContext {
                user_id: Some("u1".into()),
                roles: vec!["r".into()],
                ..AuthContext::default()
            },
            name: Some("cat.png".into()),
            row: Some("card-1".into()),
            multipart: None,
        }
    }

    #[test]
    fn multipart_grants() {
        let mut g = grant();
        g.multipart = Some(MultipartRef { upload_id: "up-1".into(), nonce: "00ff".into() });
        let t = sign(&g, b"k1");
        let (back, m) = verify_multipart(&t, b"k1", 1_999, "team:a", "f1", "up-1").unwrap();
        assert_eq!((back, m.nonce.as_str()), (g.clone(), "00ff"));
        let code = |t: &str, now, id, up| verify_multipart(t, b"k1", now, "team:a", id, up).unwrap_err().code();
        assert_eq!(code(&t, 0, "f1", "up-2"), "BAD_SIGNATURE");
        assert_eq!(code(&t, 0, "f2", "up-1"), "BAD_SIGNATURE");
        assert_eq!(code(&t, 2_000, "f1", "up-1"), "URL_EXPIRED");
        assert_eq!(verify_multipart(&t, b"k2", 0, "team:a", "f1", "up-1").unwrap_err().code(), "BAD_SIGNATURE");
        // A single upload's token does not work for parts, nor the reverse.
        let single = sign(&grant(), b"k1");
        assert_eq!(code(&single, 0, "f1", "up-1"), "BAD_SIGNATURE");
        assert_eq!(verify(&t, b"k1", 0, "team:a", "f1").unwrap_err().code(), "BAD_SIGNATURE");
        // The upload id changed in the payload, signature kept.
        let (_, sig) = t.split_once('.').unwrap();
        let mut other = g.clone();
        other.multipart = Some(MultipartRef { upload_id: "up-2".into(), nonce: "00ff".into() });
        let forged = sign(&other, b"x").split_once('.').unwrap().0.to_owned();
        assert_eq!(code(&format!("{forged}.{sig}"), 0, "f1", "up-2"), "BAD_SIGNATURE");
    }

    #[test]
    fn round_trip() {
        let t = sign(&grant(), b"k1");
        assert_eq!(verify(&t, b"k1", 1_999, "team:a", "f1").unwrap(), grant());
    }

    #[test]
    fn refusals() {
        let t = sign(&grant(), b"k1");
        let code = |t: &str, key: &[u8], now, shard, id| verify(t, key, now, shard, id).unwrap_err().code();
        assert_eq!(code(&t, b"k2", 0, "team:a", "f1"), "BAD_SIGNATURE");
        assert_eq!(code(&t, b"k1", 2_000, "team:a", "f1"), "URL_EXPIRED");
        assert_eq!(code(&t, b"k1", 0, "team:b", "f1"), "BAD_SIGNATURE");
        assert_eq!(code(&t, b"k1", 0, "team:a", "f2"), "BAD_SIGNATURE");
        assert_eq!(code("nodot", b"k1", 0, "team:a", "f1"), "BAD_SIGNATURE");
        assert_eq!(code(&"a".repeat(5000), b"k1", 0, "team:a", "f1"), "BAD_SIGNATURE");
        // A payload changed to a larger size, signature kept.
        let (_, sig) = t.split_once('.').unwrap();
        let mut bigger = grant();
        bigger.size = 1 << 30;
        let forged_payload = sign(&bigger, b"other").split_once('.').unwrap().0.to_owned();
        assert_eq!(code(&format!("{forged_payload}.{sig}"), b"k1", 0, "team:a", "f1"), "BAD_SIGNATURE");
        // One character of the signature flipped.
        let mut chars: Vec<char> = t.chars().collect();
        let last = chars.len() - 1;
        chars[last] = if chars[last] == 'A' { 'B' } else { 'A' };
        let flipped: String = chars.into_iter().collect();
        assert_eq!(code(&flipped, b"k1", 0, "team:a", "f1"), "BAD_SIGNATURE");
    }
}
