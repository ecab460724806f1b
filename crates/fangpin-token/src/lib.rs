//! The bearer tokens fangpin issues itself (`fangpin admin token`, and the
//! tests): the claims of docs/access.md, Ed25519 signing and the JWK set
//! that verifies them. fangpind verifies them (its `transport::auth`); the
//! command line signs them. Both depend on this crate and neither on the
//! other, so the claims cannot disagree and the CLI does not link the server.

use std::time::{SystemTime, UNIX_EPOCH};

use fangpin_domain::access;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::{Deserialize, Serialize};

/// Tokens live at most a working day (docs/access.md): `exp - iat` above
/// this is refused, so a stolen token cannot be good for a month.
pub const MAX_TOKEN_LIFETIME_SECS: u64 = 12 * 3600;

fn now_secs() -> u64 {
    // Before 1970 only on a broken clock; every token is then "issued in the
    // future" and refused, which is the safe answer.
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The claims of a token fangpin issues itself (`fangpin admin token`) or a
/// test mints: the scope claims of docs/access.md plus the registered ones.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct TokenClaims {
    pub sub: String,
    pub role: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub counties: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub insurer: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub village: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub township: Option<String>,
    pub iss: String,
    pub aud: String,
    pub iat: u64,
    pub exp: u64,
}

impl TokenClaims {
    /// Claims for `principal`'s shape, valid from `now` for `lifetime_secs`.
    pub fn new(
        sub: &str,
        role: access::Role,
        issuer: &str,
        audience: &str,
        now: u64,
        lifetime_secs: u64,
    ) -> TokenClaims {
        TokenClaims {
            sub: sub.to_string(),
            role: role.as_str().to_string(),
            counties: Vec::new(),
            insurer: None,
            village: None,
            township: None,
            iss: issuer.to_string(),
            aud: audience.to_string(),
            iat: now,
            exp: now + lifetime_secs,
        }
    }

    /// The current time, as `iat` wants it.
    pub fn now() -> u64 {
        now_secs()
    }
}

/// Signs `claims` with an Ed25519 private key (PKCS#8 DER) under key id
/// `kid`: what `fangpin admin token` and the tests use. A county without an
/// identity provider of its own can run on these; one with a provider
/// configures the provider's JWK set instead.
pub fn sign_ed25519(
    claims: &TokenClaims,
    pkcs8_der: &[u8],
    kid: &str,
) -> Result<String, jsonwebtoken::errors::Error> {
    let mut header = Header::new(Algorithm::EdDSA);
    header.kid = Some(kid.to_string());
    jsonwebtoken::encode(&header, claims, &EncodingKey::from_ed_der(pkcs8_der))
}

/// The JWK set (JSON) that verifies tokens of an Ed25519 public key.
pub fn ed25519_jwks(public_key: &[u8; 32], kid: &str) -> String {
    use base64::Engine as _;
    let x = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(public_key);
    serde_json::json!({
        "keys": [{"kty": "OKP", "crv": "Ed25519", "x": x, "kid": kid, "alg": "EdDSA", "use": "sig"}]
    })
    .to_string()
}

/// A new Ed25519 signing key from the operating system's random source:
/// its PKCS#8 DER encoding and its public key.
pub fn generate_ed25519() -> anyhow::Result<(Vec<u8>, [u8; 32])> {
    use ed25519_dalek::pkcs8::EncodePrivateKey as _;
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|e| anyhow::anyhow!("no random source: {e}"))?;
    let key = ed25519_dalek::SigningKey::from_bytes(&seed);
    let der = key
        .to_pkcs8_der()
        .map_err(|e| anyhow::anyhow!("encoding the key: {e}"))?;
    Ok((der.as_bytes().to_vec(), key.verifying_key().to_bytes()))
}
