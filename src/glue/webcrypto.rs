//! RS256/ES256 signatures checked by the runtime's WebCrypto
//! (`crypto.subtle.importKey` of the JWK, then `verify`), so the bundle
//! carries no RSA or elliptic-curve code. Imported keys are kept per
//! isolate: a provider's few keys are imported once, not per token.

use std::cell::RefCell;
use std::collections::HashMap;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use worker::js_sys::{Array, Function, Object, Promise, Reflect, Uint8Array};
use worker::wasm_bindgen::{JsCast, JsValue};
use worker::wasm_bindgen_futures::JsFuture;

use crate::auth::jwk::PublicKey;
use crate::auth::signature::{Checking, SignatureCheck};

/// Imported keys kept at most (a key set holds at most 32; rotation adds).
const MAX_KEPT: usize = 64;

thread_local! {
    /// This isolate's imported keys, by their material.
    static IMPORTED: RefCell<HashMap<PublicKey, JsValue>> = RefCell::new(HashMap::new());
}

/// The Worker's [`SignatureCheck`].
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct WebCrypto;

impl SignatureCheck for WebCrypto {
    fn verify<'a>(
        &'a self,
        key: &'a PublicKey,
        signing_input: &'a [u8],
        sig: &'a [u8],
    ) -> Checking<'a> {
        Box::pin(async move {
            match check(key, signing_input, sig).await {
                Ok(ok) => ok,
                Err(e) => {
                    // A key WebCrypto will not import (a point off the
                    // curve) verifies nothing; say why once per failure.
                    worker::console_warn!(
                        "webcrypto: {:?}",
                        e.as_string().unwrap_or_else(|| format!("{e:?}"))
                    );
                    false
                }
            }
        })
    }
}

async fn check(key: &PublicKey, signing_input: &[u8], sig: &[u8]) -> Result<bool, JsValue> {
    let subtle = subtle()?;
    let crypto_key = imported(&subtle, key).await?;
    let args = Array::of4(
        &verify_algorithm(key)?,
        &crypto_key,
        &Uint8Array::from(sig),
        &Uint8Array::from(signing_input),
    );
    let ok = JsFuture::from(call(&subtle, "verify", &args)?).await?;
    Ok(ok.as_bool() == Some(true))
}

/// `crypto.subtle` of the global scope.
fn subtle() -> Result<JsValue, JsValue> {
    let crypto = Reflect::get(&worker::js_sys::global(), &"crypto".into())?;
    Reflect::get(&crypto, &"subtle".into())
}

/// `target[method](...args)`, a promise.
fn call(target: &JsValue, method: &str, args: &Array) -> Result<Promise, JsValue> {
    let f: Function = Reflect::get(target, &method.into())?.dyn_into()?;
    f.apply(target, args)?.dyn_into()
}

/// The `CryptoKey` of `key`, imported once per isolate.
async fn imported(subtle: &JsValue, key: &PublicKey) -> Result<JsValue, JsValue> {
    if let Some(k) = IMPORTED.with(|m| m.borrow().get(key).cloned()) {
        return Ok(k);
    }
    let args = Array::of5(
        &"jwk".into(),
        &jwk(key)?,
        &import_algorithm(key)?,
        &false.into(),
        &Array::of1(&"verify".into()),
    );
    let k = JsFuture::from(call(subtle, "importKey", &args)?).await?;
    IMPORTED.with(|m| {
        let mut m = m.borrow_mut();
        if m.len() >= MAX_KEPT {
            m.clear();
        }
        m.insert(key.clone(), k.clone());
    });
    Ok(k)
}

/// A plain JS object from string pairs and nested values.
fn object(fields: &[(&str, JsValue)]) -> Result<JsValue, JsValue> {
    let o = Object::new();
    for (k, v) in fields {
        Reflect::set(&o, &(*k).into(), v)?;
    }
    Ok(o.into())
}

fn b64(bytes: &[u8]) -> JsValue {
    URL_SAFE_NO_PAD.encode(bytes).into()
}

fn sha256() -> Result<JsValue, JsValue> {
    object(&[("name", "SHA-256".into())])
}

/// The key as a JWK, as WebCrypto imports it.
fn jwk(key: &PublicKey) -> Result<JsValue, JsValue> {
    match key {
        PublicKey::Rsa { n, e } => object(&[
            ("kty", "RSA".into()),
            ("n", b64(n)),
            ("e", b64(e)),
            ("alg", "RS256".into()),
        ]),
        PublicKey::P256 { x, y } => object(&[
            ("kty", "EC".into()),
            ("crv", "P-256".into()),
            ("x", b64(x)),
            ("y", b64(y)),
        ]),
    }
}

fn import_algorithm(key: &PublicKey) -> Result<JsValue, JsValue> {
    match key {
        PublicKey::Rsa { .. } => {
            object(&[("name", "RSASSA-PKCS1-v1_5".into()), ("hash", sha256()?)])
        }
        PublicKey::P256 { .. } => {
            object(&[("name", "ECDSA".into()), ("namedCurve", "P-256".into())])
        }
    }
}

/// ECDSA in WebCrypto takes `r || s`, as JWS writes it (RFC 7518 §3.4).
fn verify_algorithm(key: &PublicKey) -> Result<JsValue, JsValue> {
    match key {
        PublicKey::Rsa { .. } => object(&[("name", "RSASSA-PKCS1-v1_5".into())]),
        PublicKey::P256 { .. } => object(&[("name", "ECDSA".into()), ("hash", sha256()?)]),
    }
}
