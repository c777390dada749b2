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
use serde_json::Value as Json;

use super::error::AuthError;
use super::jwt::Alg;
use super::signature::SignatureCheck;

/// A JWKS with more keys than this is refused (a provider publishes a few).
pub const MAX_KEYS: usize = 32;

/// RSA moduli below this many bits are not accepted.
pub const MIN_RSA_BITS: usize = 2048;

/// RSA moduli above this many bits are not accepted.
pub const MAX_RSA_BITS: usize = 4096;

/// A public key's material, by type, checked for shape when parsed. The
/// signature is checked by a [`SignatureCheck`] (WebCrypto in the Worker).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum PublicKey {
    /// Modulus and public exponent, big-endian without leading zeros.
    Rsa { n: Vec<u8>, e: Vec<u8> },
    /// The point's coordinates (whether it is on the curve is the
    /// checker's business: a point off it verifies nothing).
    P256 { x: [u8; 32], y: [u8; 32] },
}

impl PublicKey {
    /// The one algorithm this key verifies.
    pub fn alg(&self) -> Alg {
        match self {
            PublicKey::Rsa { .. } => Alg::Rs256,
            PublicKey::P256 { .. } => Alg::Es256,
        }
    }

    /// Checks `sig` over `signing_input` (the token's `header.payload`)
    /// with `check`. `alg` must be this key's algorithm.
    pub async fn verify(
        &self,
        check: &dyn SignatureCheck,
        alg: Alg,
        signing_input: &[u8],
        sig: &[u8],
    ) -> Result<(), AuthError> {
        if alg != self.alg() {
            return Err(AuthError::BadToken(format!(
                "alg {} does not match the key's type",
                alg.as_str()
            )));
        }
        if check.verify(self, signing_input, sig).await {
            Ok(())
        } else {
            Err(AuthError::BadSignature)
        }
    }
}

/// `bytes` without leading zeros.
fn unpadded(mut bytes: Vec<u8>) -> Vec<u8> {
    let zeros = bytes.iter().take_while(|&&b| b == 0).count();
    bytes.drain(..zeros);
    bytes
}

/// The bit length of a big-endian number without leading zeros.
fn bit_len(n: &[u8]) -> usize {
    n.first()
        .map_or(0, |&b| n.len() * 8 - b.leading_zeros() as usize)
}

/// An RSA key's shape: a 2048–4096-bit modulus, an odd exponent from 3
/// below 2^33 (what the `rsa` crate and WebCrypto both take).
fn rsa_key(n: Vec<u8>, e: Vec<u8>) -> Result<PublicKey, String> {
    let (n, e) = (unpadded(n), unpadded(e));
    let bits = bit_len(&n);
    if bits < MIN_RSA_BITS {
        return Err(format!("the RSA modulus is under {MIN_RSA_BITS} bits"));
    }
    if bits > MAX_RSA_BITS {
        return Err(format!("the RSA modulus is over {MAX_RSA_BITS} bits"));
    }
    let exponent = e.iter().fold(0u64, |v, &b| {
        v.saturating_mul(256).saturating_add(u64::from(b))
    });
    if e.len() > 5 || exponent < 3 || exponent >= 1 << 33 || exponent % 2 == 0 {
        return Err("bad RSA key: the exponent is not an odd number from 3 below 2^33".into());
    }
    if n.last().is_some_and(|b| b % 2 == 0) {
        return Err("bad RSA key: the modulus is even".into());
    }
    Ok(PublicKey::Rsa { n, e })
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
        Some("RSA") => rsa_key(b64(o.get("n"), "n")?, b64(o.get("e"), "e")?)?,
        Some("EC") => {
            if o.get("crv").and_then(Json::as_str) != Some("P-256") {
                return Err("only the P-256 curve is supported".into());
            }
            let coordinate = |name: &str| -> Result<[u8; 32], String> {
                b64(o.get(name), name)?
                    .try_into()
                    .map_err(|_| "P-256 coordinates are 32 bytes".to_owned())
            };
            PublicKey::P256 {
                x: coordinate("x")?,
                y: coordinate("y")?,
            }
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

    /// Checks a decoded token's signature with the fitting key, by
    /// `check`. `Ok(false)`: no key fits (an unknown `kid`).
    pub async fn verify(
        &self,
        check: &dyn SignatureCheck,
        alg: Alg,
        kid: Option<&str>,
        signing_input: &[u8],
        sig: &[u8],
    ) -> Result<bool, AuthError> {
        let mut seen = false;
        for k in self.candidates(alg, kid) {
            seen = true;
            if k.key.verify(check, alg, signing_input, sig).await.is_ok() {
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
    use crate::auth::signature::RustCrypto;
    use futures_util::FutureExt;
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
        let verify = |kid: Option<&str>, sig: &[u8]| {
            set.verify(&RustCrypto, Alg::Es256, kid, input, sig)
                .now_or_never()
                .expect("RustCrypto answers at once")
        };
        assert_eq!(verify(Some("e1"), &sig), Ok(true));
        assert_eq!(verify(None, &sig), Ok(true));
        let mut bad = sig.clone();
        bad[5] ^= 1;
        assert_eq!(verify(None, &bad), Err(AuthError::BadSignature));
        assert_eq!(verify(None, &sig[..10]), Err(AuthError::BadSignature));
        assert_eq!(verify(Some("x"), &sig), Ok(false));
        // The key refuses a token that names another algorithm.
        let key = &set.candidates(Alg::Es256, None).next().unwrap().key;
        let other = key
            .verify(&RustCrypto, Alg::Rs256, input, &sig)
            .now_or_never()
            .unwrap();
        assert_eq!(other.unwrap_err().reason(), "BAD_TOKEN");
    }

    #[test]
    fn rsa_keys_are_checked_for_shape() {
        let n = |bits: usize| {
            let mut v = vec![0xffu8; bits / 8];
            v.insert(0, 0); // a leading zero, as some providers write it
            v
        };
        let e = vec![1, 0, 1];
        assert!(rsa_key(n(2048), e.clone()).is_ok());
        assert!(rsa_key(n(4096), e.clone()).is_ok());
        assert!(rsa_key(n(2040), e.clone())
            .unwrap_err()
            .contains("under 2048"));
        assert!(rsa_key(n(4104), e.clone())
            .unwrap_err()
            .contains("over 4096"));
        for bad_e in [vec![], vec![1], vec![2], vec![1, 0, 0], vec![2, 0, 0, 0, 1]] {
            assert!(
                rsa_key(n(2048), bad_e.clone()).is_err(),
                "exponent {bad_e:?}"
            );
        }
        let mut even = n(2048);
        *even.last_mut().unwrap() = 0xfe;
        assert!(rsa_key(even, e.clone()).is_err());
        let PublicKey::Rsa { n: kept, .. } = rsa_key(n(2048), e).unwrap() else {
            panic!()
        };
        assert_eq!(kept.len(), 256, "leading zeros are dropped");
    }

    #[test]
    fn a_point_off_the_curve_verifies_nothing() {
        let mut doc = ec_jwk();
        doc["y"] = json!(URL_SAFE_NO_PAD.encode([7u8; 32]));
        let set = KeySet::parse(json!({"keys": [doc]}).to_string().as_bytes(), BOTH).unwrap();
        assert_eq!(set.len(), 1, "the shape is right");
        let sig = [1u8; 64];
        assert_eq!(
            set.verify(&RustCrypto, Alg::Es256, None, b"a.b", &sig)
                .now_or_never()
                .unwrap(),
            Err(AuthError::BadSignature)
        );
    }
}
