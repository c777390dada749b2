//! JSON Web Keys (RFC 7517) for RS256 and ES256: a JWKS document parsed
//! into public keys, and a token's signature checked with one of them.
//!
//! Only signature keys of two shapes are kept: `kty: RSA` (2048–4096-bit
//! modulus) for RS256 and `kty: EC, crv: P-256` for ES256. `oct` (shared
//! secret) keys are never loaded, so an HS256 token can never be checked
//! against a public key and an RS256 token never against the secret.
//!
//! ```
//! use pylon_workers::auth::jwk::KeySet;
//! use pylon_workers::auth::jwt::Alg;
//! let doc = r#"{"keys":[{"kty":"oct","k":"c2VjcmV0"},{"kty":"EC","crv":"P-384","x":"","y":""}]}"#;
//! let set = KeySet::parse(doc.as_bytes(), &[Alg::Rs256, Alg::Es256]).unwrap();
//! assert!(set.is_empty()); // neither key is one this crate verifies with
//! ```

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use p256::ecdsa::signature::Verifier;
use rsa::{BigUint, Pkcs1v15Sign, RsaPublicKey};
use serde_json::Value as Json;
use sha2::{Digest, Sha256};

use super::error::AuthError;
use super::jwt::Alg;

/// A JWKS with more keys than this is refused (a provider publishes a few).
pub const MAX_KEYS: usize = 32;

/// RSA moduli below this many bits are not accepted.
pub const MIN_RSA_BITS: usize = 2048;

/// The DER `DigestInfo` prefix for SHA-256 (RFC 8017 §9.2, note 1).
const SHA256_DIGEST_INFO: [u8; 19] = [
    0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05,
    0x00, 0x04, 0x20,
];

/// A public key, by type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PublicKey {
    Rsa(RsaPublicKey),
    P256(p256::ecdsa::VerifyingKey),
}

impl PublicKey {
    /// The one algorithm this key verifies.
    pub fn alg(&self) -> Alg {
        match self {
            PublicKey::Rsa(_) => Alg::Rs256,
            PublicKey::P256(_) => Alg::Es256,
        }
    }

    /// Checks `sig` over `signing_input` (the token's `header.payload`).
    /// `alg` must be this key's algorithm.
    pub fn verify(&self, alg: Alg, signing_input: &[u8], sig: &[u8]) -> Result<(), AuthError> {
        if alg != self.alg() {
            return Err(AuthError::BadToken(format!(
                "alg {} does not match the key's type",
                alg.as_str()
            )));
        }
        match self {
            PublicKey::Rsa(k) => {
                let hashed = Sha256::digest(signing_input);
                let scheme = Pkcs1v15Sign {
                    hash_len: Some(32),
                    prefix: SHA256_DIGEST_INFO.to_vec().into_boxed_slice(),
                };
                k.verify(scheme, &hashed, sig)
                    .map_err(|_| AuthError::BadSignature)
            }
            PublicKey::P256(k) => {
                // JWS carries r || s, 32 bytes each (RFC 7518 §3.4), not DER.
                let sig =
                    p256::ecdsa::Signature::from_slice(sig).map_err(|_| AuthError::BadSignature)?;
                k.verify(signing_input, &sig)
                    .map_err(|_| AuthError::BadSignature)
            }
        }
    }
}

/// One usable key of a set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Jwk {
    pub kid: Option<String>,
    pub key: PublicKey,
}

/// The usable keys of a JWKS document.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KeySet {
    keys: Vec<Jwk>,
    /// Entries skipped (other types, other uses, malformed).
    pub skipped: usize,
}

fn b64(v: Option<&Json>, name: &str) -> Result<Vec<u8>, String> {
    let s = v
        .and_then(Json::as_str)
        .ok_or_else(|| format!("`{name}` is missing"))?;
    URL_SAFE_NO_PAD
        .decode(s)
        .map_err(|_| format!("`{name}` is not base64url"))
}

/// One entry of `keys`, or why it is not usable.
fn parse_key(k: &Json, algorithms: &[Alg]) -> Result<Jwk, String> {
    let o = k.as_object().ok_or("not an object")?;
    if let Some(u) = o.get("use") {
        if u.as_str() != Some("sig") {
            return Err("`use` is not `sig`".into());
        }
    }
    let kid = match o.get("kid") {
        None | Some(Json::Null) => None,
        Some(Json::String(s)) => Some(s.clone()),
        Some(_) => return Err("`kid` is not a string".into()),
    };
    let declared = match o.get("alg") {
        None | Some(Json::Null) => None,
        Some(a) => Some(
            a.as_str()
                .and_then(Alg::parse)
                .ok_or("`alg` is not RS256 or ES256")?,
        ),
    };
    let key = match o.get("kty").and_then(Json::as_str) {
        Some("RSA") => {
            let n = BigUint::from_bytes_be(&b64(o.get("n"), "n")?);
            let e = BigUint::from_bytes_be(&b64(o.get("e"), "e")?);
            if n.bits() < MIN_RSA_BITS {
                return Err(format!("the RSA modulus is under {MIN_RSA_BITS} bits"));
            }
            PublicKey::Rsa(RsaPublicKey::new(n, e).map_err(|e| format!("bad RSA key: {e}"))?)
        }
        Some("EC") => {
            if o.get("crv").and_then(Json::as_str) != Some("P-256") {
                return Err("only the P-256 curve is supported".into());
            }
            let (x, y) = (b64(o.get("x"), "x")?, b64(o.get("y"), "y")?);
            if x.len() != 32 || y.len() != 32 {
                return Err("P-256 coordinates are 32 bytes".into());
            }
            let mut sec1 = Vec::with_capacity(65);
            sec1.push(0x04);
            sec1.extend_from_slice(&x);
            sec1.extend_from_slice(&y);
            PublicKey::P256(
                p256::ecdsa::VerifyingKey::from_sec1_bytes(&sec1)
                    .map_err(|_| "the point is not on P-256")?,
            )
        }
        Some(other) => return Err(format!("kty {other:?} is not used")),
        None => return Err("`kty` is missing".into()),
    };
    if declared.is_some_and(|a| a != key.alg()) {
        return Err("`alg` does not match `kty`".into());
    }
    if !algorithms.contains(&key.alg()) {
        return Err(format!(
            "{} is not an accepted algorithm",
            key.alg().as_str()
        ));
    }
    Ok(Jwk { kid, key })
}

impl KeySet {
    /// Parses a JWKS document (`{"keys": [...]}`), keeping the keys for
    /// `algorithms`. Unusable entries are skipped and counted; a document
    /// that is not a JWKS, or has over [`MAX_KEYS`] entries, is an error.
    pub fn parse(body: &[u8], algorithms: &[Alg]) -> Result<KeySet, String> {
        let doc: Json =
            serde_json::from_slice(body).map_err(|_| "the JWKS is not JSON".to_owned())?;
        let list = doc
            .get("keys")
            .and_then(Json::as_array)
            .ok_or("the JWKS has no `keys` list")?;
        if list.len() > MAX_KEYS {
            return Err(format!("the JWKS has over {MAX_KEYS} keys"));
        }
        let mut set = KeySet::default();
        for k in list {
            match parse_key(k, algorithms) {
                Ok(jwk) => set.keys.push(jwk),
                Err(_) => set.skipped += 1,
            }
        }
        Ok(set)
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// The keys that may check a token with `alg` and `kid`: the key with
    /// that `kid` (if its type fits `alg`), or with no `kid` every key of
    /// the type.
    pub fn candidates<'a>(
        &'a self,
        alg: Alg,
        kid: Option<&'a str>,
    ) -> impl Iterator<Item = &'a Jwk> + 'a {
        self.keys
            .iter()
            .filter(move |k| k.key.alg() == alg && (kid.is_none() || k.kid.as_deref() == kid))
    }

    /// Checks a decoded token's signature with the fitting key.
    /// `Ok(false)`: no key fits (an unknown `kid`).
    pub fn verify(
        &self,
        alg: Alg,
        kid: Option<&str>,
        signing_input: &[u8],
        sig: &[u8],
    ) -> Result<bool, AuthError> {
        let mut seen = false;
        for k in self.candidates(alg, kid) {
            seen = true;
            if k.key.verify(alg, signing_input, sig).is_ok() {
                return Ok(true);
            }
        }
        if seen {
            Err(AuthError::BadSignature)
        } else {
            Ok(false)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    // A P-256 public key (the RFC 7515 A.3 example).
    fn ec_jwk() -> Json {
        json!({"kty":"EC","crv":"P-256","kid":"e1",
               "x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
               "y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"})
    }

    const BOTH: &[Alg] = &[Alg::Rs256, Alg::Es256];

    #[test]
    fn keeps_only_usable_keys() {
        let doc = json!({"keys": [
            ec_jwk(),
            {"kty":"oct","k":"c2VjcmV0","kid":"h"},
            {"kty":"EC","crv":"P-256","x":"AA","y":"AA"},
            {"kty":"RSA","n":"AQAB","e":"AQAB"},
            {"kty":"EC","crv":"P-256","use":"enc","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"},
            {"kty":"EC","crv":"P-256","alg":"RS256","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"},
            "nonsense"
        ]});
        let set = KeySet::parse(doc.to_string().as_bytes(), BOTH).unwrap();
        assert_eq!((set.len(), set.skipped), (1, 6));
        assert_eq!(set.candidates(Alg::Es256, Some("e1")).count(), 1);
        assert_eq!(set.candidates(Alg::Es256, None).count(), 1);
        assert_eq!(set.candidates(Alg::Rs256, Some("e1")).count(), 0);
        assert_eq!(set.candidates(Alg::Es256, Some("other")).count(), 0);
        // Not accepted by configuration.
        let rs_only = KeySet::parse(doc.to_string().as_bytes(), &[Alg::Rs256]).unwrap();
        assert!(rs_only.is_empty());
    }

    #[test]
    fn bad_documents() {
        for doc in [&b"nope"[..], b"{}", b"{\"keys\":{}}"] {
            assert!(KeySet::parse(doc, BOTH).is_err());
        }
        let many = json!({"keys": vec![ec_jwk(); MAX_KEYS + 1]});
        assert!(KeySet::parse(many.to_string().as_bytes(), BOTH).is_err());
    }

    #[test]
    fn rfc7515_es256_example_verifies() {
        // RFC 7515 Appendix A.3: an ES256 JWS and its key.
        let input = b"eyJhbGciOiJFUzI1NiJ9.eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ";
        let sig = URL_SAFE_NO_PAD
            .decode("DtEhU3ljbEg8L38VWAfUAqOyKAM6-Xx-F4GawxaepmXFCgfTjDxw5djxLa8ISlSApmWQxfKTUJqPP3-Kg6NU1Q")
            .unwrap();
        let set = KeySet::parse(json!({"keys": [ec_jwk()]}).to_string().as_bytes(), BOTH).unwrap();
        assert_eq!(set.verify(Alg::Es256, Some("e1"), input, &sig), Ok(true));
        assert_eq!(set.verify(Alg::Es256, None, input, &sig), Ok(true));
        let mut bad = sig.clone();
        bad[5] ^= 1;
        assert_eq!(
            set.verify(Alg::Es256, None, input, &bad),
            Err(AuthError::BadSignature)
        );
        assert_eq!(
            set.verify(Alg::Es256, None, input, &sig[..10]),
            Err(AuthError::BadSignature)
        );
        assert_eq!(set.verify(Alg::Es256, Some("x"), input, &sig), Ok(false));
        // The key refuses a token that names another algorithm.
        let key = &set.candidates(Alg::Es256, None).next().unwrap().key;
        assert_eq!(
            key.verify(Alg::Rs256, input, &sig).unwrap_err().reason(),
            "BAD_TOKEN"
        );
    }
}
