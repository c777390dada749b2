//! Who signed in with GitHub: `GET /user` for the stable numeric id, and
//! `GET /user/emails` for the primary verified address (GitHub's API wants
//! a `User-Agent`).

use serde_json::Value as Json;

use super::error::SignInError;
use super::store::Identity;
use crate::http::{HttpClient, HttpRequest};

fn get(api_url: &str, path: &str, token: &str) -> HttpRequest {
    HttpRequest::get(format!("{}{path}", api_url.trim_end_matches('/')))
        .header("authorization", format!("Bearer {token}"))
        .header("accept", "application/vnd.github+json")
        .header("user-agent", super::USER_AGENT)
}

/// The GitHub identity behind `token`.
pub async fn user(
    http: &impl HttpClient,
    api_url: &str,
    token: &str,
) -> Result<Identity, SignInError> {
    let fail = |what: &str| SignInError::Provider(format!("GitHub {what}"));
    let resp = http
        .send(get(api_url, "/user", token))
        .await
        .map_err(|e| SignInError::Provider(format!("GitHub /user: {e}")))?;
    if !resp.is_success() {
        return Err(fail(&format!("/user answered {}", resp.status)));
    }
    let me: Json = resp.json().map_err(|_| fail("/user is not JSON"))?;
    let id = match &me["id"] {
        Json::Number(n) if n.is_u64() => n.to_string(),
        _ => return Err(fail("/user has no numeric id")),
    };
    // The address list needs the user:email scope; without it, no address.
    let email = match http.send(get(api_url, "/user/emails", token)).await {
        Ok(r) if r.is_success() => r
            .json::<Vec<Json>>()
            .ok()
            .and_then(|list| {
                list.into_iter()
                    .find(|e| e["primary"] == true && e["verified"] == true)
            })
            .and_then(|e| e["email"].as_str().map(str::to_ascii_lowercase)),
        _ => None,
    };
    Ok(Identity {
        provider: "github".into(),
        subject: id,
        email,
    })
}
