//! Sending the sign-in email through a pluggable HTTP email API.
//!
//! One format, the one common providers (Resend, and others with small
//! adapters) take: `POST {PYLON_EMAIL_API_URL}` with
//! `Authorization: Bearer {PYLON_EMAIL_API_KEY}` and a JSON body
//! `{"from", "to": [address], "subject", "text"}`. Any 2xx is success.
//!
//! ```
//! use pylon_workers::signin::email::{message, normalize};
//! assert_eq!(normalize(" Ann@Example.COM ").unwrap(), "ann@example.com");
//! assert!(normalize("not an address").is_err());
//! let m = message("noreply@example.com", "ann@example.com", "https://api.example/v1/auth/email/verify?token=t", "123456", 10);
//! assert_eq!(m["to"][0], "ann@example.com");
//! assert!(m["text"].as_str().unwrap().contains("123456"));
//! ```

use serde_json::{json, Value as Json};

use super::config::EmailConfig;
use super::error::SignInError;
use crate::http::{HttpClient, HttpRequest};

/// The address, trimmed and lower-cased, if it looks deliverable: one `@`,
/// a dotted domain, no spaces or controls, at most 254 bytes.
pub fn normalize(address: &str) -> Result<String, SignInError> {
    let a = address.trim().to_ascii_lowercase();
    let ok = a.len() <= 254
        && a.split('@').count() == 2
        && a.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty()
                && local.len() <= 64
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && domain
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-'))
        })
        && !a
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '<' | '>' | ',' | '"'));
    if ok {
        Ok(a)
    } else {
        Err(SignInError::BadEmail)
    }
}

/// The JSON body of the sign-in message.
pub fn message(from: &str, to: &str, link: &str, code: &str, ttl_minutes: i64) -> Json {
    json!({
        "from": from,
        "to": [to],
        "subject": format!("Your sign-in code: {code}"),
        "text": format!(
            "Sign in by opening this link:\n\n{link}\n\nor type this code: {code}\n\n\
             Both work once, for {ttl_minutes} minutes. If you did not ask to sign in, ignore this message.\n"
        ),
    })
}

/// Sends `body` through the configured API.
pub async fn send(http: &impl HttpClient, c: &EmailConfig, body: &Json) -> Result<(), SignInError> {
    let req = HttpRequest::post_json(c.api_url.as_str(), body)
        .header("authorization", format!("Bearer {}", c.api_key))
        .header("user-agent", super::USER_AGENT);
    let resp = http
        .send(req)
        .await
        .map_err(|e| SignInError::EmailFailed(e.to_string()))?;
    if !resp.is_success() {
        return Err(SignInError::EmailFailed(format!(
            "the email API answered {}",
            resp.status
        )));
    }
    Ok(())
}
