//! Who is calling: bearer tokens (JWT) verified against the configured keys,
//! and the role × RPC matrix, enforced for every call in one place
//! (`CallerLayer`, in `caller.rs`, asks [`Authenticator::admit`]).
//! docs/access.md is the specification; the matrix itself is data in
//! `fangpin_domain::access`.
//!
//! The server holds public keys only (a JWK set from `auth.jwks_file`), so a
//! leaked server cannot mint tokens. Symmetric (HS*) keys are refused.
//!
//! A token's `exp`, `nbf` and `iat` are checked against the wall clock, not
//! against `crate::write_path::clock`: `--today` pins the *business* date for training,
//! and must not make every real token look expired or not yet valid.

use std::collections::HashMap;
use std::path::Path;

use fangpin_domain::access::{self, Decision, Principal, ScopeClaims, ScopeError};
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, JwkSet, KeyAlgorithm};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;

/// A token longer than this is refused unread. Ours are a few hundred bytes;
/// the limit keeps a hostile header from costing more than a glance.
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;
// The tokens fangpin issues itself, shared with the command line that
// signs them (crates/fangpin-token).
pub use fangpin_token::{
    MAX_TOKEN_LIFETIME_SECS, TokenClaims, ed25519_jwks, generate_ed25519, sign_ed25519,
};
/// A JWK set larger than this many keys is a mistake (rotation needs two).
pub const MAX_KEYS: usize = 16;

/// The gRPC health service needs no token, so that load balancers and
/// orchestrators can probe.
const HEALTH_PREFIX: &str = "/grpc.health.v1.Health/";
/// Reflection describes the API, not data: any authenticated caller may use it.
const REFLECTION_PREFIX: &str = "/grpc.reflection.";

/// Whether `path` is one of the web console's files (`transport::console`):
/// the same bytes for everyone, holding no data, so fetched without a
/// token. Everything they show comes through the RPCs, which ask for one.
pub fn is_console_path(path: &str) -> bool {
    path == "/" || path == "/console" || path.starts_with("/console/")
}

/// What the server does with the `authorization` metadata of each call.
pub enum Authenticator {
    /// Development mode without `[auth]`: no token is asked for, no role is
    /// checked, and the actor is what the caller names itself
    /// (`x-fangpin-actor`). `fangpind` allows it only with `dev`.
    Development,
    /// Every call but health carries a valid token of a role the matrix
    /// allows for the method.
    Tokens(TokenVerifier),
}

/// How a call was admitted.
#[derive(Debug, PartialEq, Eq)]
pub enum Admission {
    /// Authentication is off (development): no principal, nothing checked.
    Unchecked,
    /// A health probe: no principal needed.
    Health,
    /// A verified caller whose role may call the method.
    Principal(Principal),
    /// A file of the web console: no principal needed.
    Console,
}

/// Why a call was refused before its handler ran. Both variants' `Display`
/// is safe to return to the caller; `reason` is for the server log only.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// UNAUTHENTICATED: one fixed message, whatever the reason, so a caller
    /// probing with forged tokens learns nothing from the answers.
    #[error("missing or invalid token")]
    Unauthenticated { reason: String },
    /// PERMISSION_DENIED: the role may not call the method. Decided from
    /// the method alone, so it reveals nothing about any object.
    #[error("role {role} may not call {method}")]
    WrongRole { role: &'static str, method: String },
}

impl Authenticator {
    /// Decides whether a call to `method` with this `authorization` value
    /// may reach its handler.
    pub fn admit(&self, method: &str, authorization: Option<&[u8]>) -> Result<Admission, Refusal> {
        let verifier = match self {
            Authenticator::Development => return Ok(Admission::Unchecked),
            Authenticator::Tokens(verifier) => verifier,
        };
        if method.starts_with(HEALTH_PREFIX) {
            return Ok(Admission::Health);
        }
        if is_console_path(method) {
            return Ok(Admission::Console);
        }
        let token = bearer(authorization).map_err(|reason| Refusal::Unauthenticated {
            reason: reason.to_string(),
        })?;
        let principal = verifier
            .verify(token)
            .map_err(|e| Refusal::Unauthenticated {
                reason: e.to_string(),
            })?;
        if method.starts_with(REFLECTION_PREFIX) {
            return Ok(Admission::Principal(principal));
        }
        match access::allowed(method, principal.role()) {
            Decision::Allow => Ok(Admission::Principal(principal)),
            Decision::WrongRole | Decision::UnknownMethod => Err(Refusal::WrongRole {
                role: principal.role().as_str(),
                method: access::rule_for(method)
                    .map_or_else(|| "this method".to_string(), |r| r.method.to_string()),
            }),
        }
    }
}

/// The token of `authorization: Bearer <token>`. The scheme is matched
/// without regard to case (RFC 9110 §11.1); nothing else is lenient.
fn bearer(authorization: Option<&[u8]>) -> Result<&str, &'static str> {
    let value = authorization.ok_or("no authorization metadata")?;
    if value.len() > MAX_TOKEN_BYTES + 7 {
        return Err("authorization metadata too long");
    }
    let value = std::str::from_utf8(value).map_err(|_| "authorization is not text")?;
    let (scheme, token) = value
        .split_once(' ')
        .ok_or("authorization is not `Bearer <token>`")?;
    if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() || token.contains(' ') {
        return Err("authorization is not `Bearer <token>`");
    }
    Ok(token)
}

/// Verifies tokens: signature by one of the configured public keys, the
/// registered claims, then the scope claims into a [`Principal`].
pub struct TokenVerifier {
    /// By key id. A set of one key may also verify tokens without `kid`.
    keys: HashMap<String, (DecodingKey, Algorithm)>,
    issuer: String,
    audience: String,
    leeway_secs: u64,
}

/// A problem with the configured keys or claims, found at start-up.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("{path}: cannot read: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("not a JWK set: {0}")]
    NotJwks(String),
    #[error("the JWK set has no keys")]
    NoKeys,
    #[error("the JWK set has {0} keys, at most {MAX_KEYS} allowed")]
    TooManyKeys(usize),
    #[error("key {index}: {reason}")]
    BadKey { index: usize, reason: String },
    #[error("key id {0:?} appears twice")]
    DuplicateKid(String),
    #[error("{0} must not be empty")]
    Empty(&'static str),
}

/// Why a token was refused. Logged, never returned (see [`Refusal`]).
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("token longer than {MAX_TOKEN_BYTES} bytes")]
    TooLong,
    #[error("unreadable token header: {0}")]
    Header(jsonwebtoken::errors::Error),
    #[error("token names no key id and the server has several keys")]
    NoKid,
    #[error("unknown key id {0:?}")]
    UnknownKid(String),
    #[error("token signed with {got:?}, key {kid:?} is for {want:?}")]
    WrongAlgorithm {
        kid: String,
        got: Algorithm,
        want: Algorithm,
    },
    #[error("token rejected: {0}")]
    Rejected(jsonwebtoken::errors::Error),
    #[error("token lives {0} s, more than {MAX_TOKEN_LIFETIME_SECS} s")]
    TooLongLived(u64),
    #[error("token issued in the future")]
    IssuedInFuture,
    #[error("bad scope claims: {0}")]
    Scope(#[from] ScopeError),
}

/// The registered claims fangpin requires besides the scope claims.
#[derive(Deserialize)]
struct TimeClaims {
    exp: u64,
    iat: u64,
}

impl TokenVerifier {
    /// Reads the JWK set at `jwks_file`.
    pub fn load(
        jwks_file: &Path,
        issuer: &str,
        audience: &str,
        leeway_secs: u64,
    ) -> Result<TokenVerifier, SetupError> {
        let text = std::fs::read_to_string(jwks_file).map_err(|source| SetupError::Read {
            path: jwks_file.display().to_string(),
            source,
        })?;
        TokenVerifier::from_jwks(&text, issuer, audience, leeway_secs)
    }

    /// Builds a verifier from a JWK set's JSON. Every key must be a public
    /// key of an asymmetric algorithm: Ed25519 (EdDSA), P-256 (ES256),
    /// P-384 (ES384) or RSA (RS256 unless its `alg` says otherwise).
    pub fn from_jwks(
        jwks: &str,
        issuer: &str,
        audience: &str,
        leeway_secs: u64,
    ) -> Result<TokenVerifier, SetupError> {
        if issuer.is_empty() {
            return Err(SetupError::Empty("auth.issuer"));
        }
        if audience.is_empty() {
            return Err(SetupError::Empty("auth.audience"));
        }
        let set: JwkSet =
            serde_json::from_str(jwks).map_err(|e| SetupError::NotJwks(e.to_string()))?;
        if set.keys.is_empty() {
            return Err(SetupError::NoKeys);
        }
        if set.keys.len() > MAX_KEYS {
            return Err(SetupError::TooManyKeys(set.keys.len()));
        }
        let mut keys = HashMap::new();
        for (index, jwk) in set.keys.iter().enumerate() {
            let bad = |reason: &str| SetupError::BadKey {
                index,
                reason: reason.to_string(),
            };
            let algorithm = match (&jwk.algorithm, jwk.common.key_algorithm) {
                (AlgorithmParameters::OctetKeyPair(p), None | Some(KeyAlgorithm::EdDSA))
                    if p.curve == EllipticCurve::Ed25519 =>
                {
                    Algorithm::EdDSA
                }
                (AlgorithmParameters::EllipticCurve(p), None | Some(KeyAlgorithm::ES256))
                    if p.curve == EllipticCurve::P256 =>
                {
                    Algorithm::ES256
                }
                (AlgorithmParameters::EllipticCurve(p), None | Some(KeyAlgorithm::ES384))
                    if p.curve == EllipticCurve::P384 =>
                {
                    Algorithm::ES384
                }
                (AlgorithmParameters::RSA(_), None | Some(KeyAlgorithm::RS256)) => Algorithm::RS256,
                (AlgorithmParameters::RSA(_), Some(KeyAlgorithm::RS384)) => Algorithm::RS384,
                (AlgorithmParameters::RSA(_), Some(KeyAlgorithm::RS512)) => Algorithm::RS512,
                (AlgorithmParameters::OctetKey(_), _) => {
                    return Err(bad(
                        "symmetric keys are refused: the server holds public keys only",
                    ));
                }
                _ => return Err(bad("unsupported key type, curve or alg")),
            };
            let key = DecodingKey::from_jwk(jwk).map_err(|e| bad(&e.to_string()))?;
            let kid = jwk.common.key_id.clone().unwrap_or_default();
            if keys.insert(kid.clone(), (key, algorithm)).is_some() {
                return Err(SetupError::DuplicateKid(kid));
            }
        }
        Ok(TokenVerifier {
            keys,
            issuer: issuer.to_string(),
            audience: audience.to_string(),
            leeway_secs,
        })
    }

    /// The principal of a valid token.
    pub fn verify(&self, token: &str) -> Result<Principal, TokenError> {
        self.verify_at(token, TokenClaims::now())
    }

    fn verify_at(&self, token: &str, now: u64) -> Result<Principal, TokenError> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(TokenError::TooLong);
        }
        let header = jsonwebtoken::decode_header(token).map_err(TokenError::Header)?;
        let kid = match (header.kid, self.keys.len()) {
            (Some(kid), _) => kid,
            (None, 1) => self.keys.keys().next().cloned().unwrap_or_default(),
            (None, _) => return Err(TokenError::NoKid),
        };
        let (key, algorithm) = self
            .keys
            .get(&kid)
            .ok_or_else(|| TokenError::UnknownKid(kid.chars().take(40).collect()))?;
        // The key decides the algorithm, never the token (alg confusion).
        if header.alg != *algorithm {
            return Err(TokenError::WrongAlgorithm {
                kid,
                got: header.alg,
                want: *algorithm,
            });
        }
        let mut validation = Validation::new(*algorithm);
        validation.set_issuer(&[&self.issuer]);
        validation.set_audience(&[&self.audience]);
        validation.set_required_spec_claims(&["exp", "iat", "iss", "aud", "sub"]);
        validation.leeway = self.leeway_secs;
        validation.validate_nbf = true;
        // exp is checked below against `now`, so tests can pass the time.
        validation.validate_exp = false;
        let data = jsonwebtoken::decode::<serde_json::Value>(token, key, &validation)
            .map_err(TokenError::Rejected)?;
        let times: TimeClaims = serde_json::from_value(data.claims.clone()).map_err(|e| {
            TokenError::Rejected(jsonwebtoken::errors::ErrorKind::Json(e.into()).into())
        })?;
        if times.exp.saturating_add(self.leeway_secs) <= now {
            return Err(TokenError::Rejected(
                jsonwebtoken::errors::ErrorKind::ExpiredSignature.into(),
            ));
        }
        if times.iat > now.saturating_add(self.leeway_secs) {
            return Err(TokenError::IssuedInFuture);
        }
        let lifetime = times.exp.saturating_sub(times.iat);
        if lifetime > MAX_TOKEN_LIFETIME_SECS {
            return Err(TokenError::TooLongLived(lifetime));
        }
        let scope: ScopeClaims = serde_json::from_value(data.claims).map_err(|e| {
            TokenError::Rejected(jsonwebtoken::errors::ErrorKind::Json(e.into()).into())
        })?;
        Ok(Principal::from_claims(&scope)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fangpin_domain::access::{Role, Scope};

    const ISS: &str = "https://sso.example.gov.cn";
    const AUD: &str = "fangpin";
    const NOW: u64 = 1_790_000_000;

    struct Keys {
        der: Vec<u8>,
        verifier: TokenVerifier,
    }

    fn keys() -> Keys {
        let (der, public) = generate_ed25519().expect("key");
        let verifier =
            TokenVerifier::from_jwks(&ed25519_jwks(&public, "k1"), ISS, AUD, 60).expect("verifier");
        Keys { der, verifier }
    }

    fn county_office(now: u64) -> TokenClaims {
        let mut claims = TokenClaims::new("office-li", Role::CountyOffice, ISS, AUD, now, 3600);
        claims.counties = vec!["130426".into()];
        claims
    }

    fn sign(keys: &Keys, claims: &TokenClaims) -> String {
        sign_ed25519(claims, &keys.der, "k1").expect("sign")
    }

    fn refusal(keys: &Keys, claims: &TokenClaims) -> String {
        keys.verifier
            .verify_at(&sign(keys, claims), NOW)
            .expect_err("refused")
            .to_string()
    }

    #[test]
    fn a_valid_token_makes_its_principal() {
        let keys = keys();
        let principal = keys
            .verifier
            .verify_at(&sign(&keys, &county_office(NOW)), NOW)
            .expect("valid");
        assert_eq!(principal.subject(), "office-li");
        assert_eq!(principal.role(), Role::CountyOffice);
        assert!(matches!(principal.scope(), Scope::Counties(c) if c.len() == 1));
    }

    #[test]
    fn expiry_is_checked_with_the_leeway() {
        let keys = keys();
        let mut claims = county_office(NOW - 3600);
        claims.exp = NOW - 59;
        assert!(
            keys.verifier.verify_at(&sign(&keys, &claims), NOW).is_ok(),
            "within leeway"
        );
        claims.exp = NOW - 60;
        assert!(
            refusal(&keys, &claims).contains("Expired"),
            "{}",
            refusal(&keys, &claims)
        );
    }

    #[test]
    fn wrong_issuer_audience_lifetime_or_future_iat_is_refused() {
        let keys = keys();
        let mut claims = county_office(NOW);
        claims.iss = "https://elsewhere".into();
        assert!(refusal(&keys, &claims).contains("Issuer"));
        let mut claims = county_office(NOW);
        claims.aud = "another-service".into();
        assert!(refusal(&keys, &claims).contains("Audience"));
        let mut claims = county_office(NOW);
        claims.exp = NOW + MAX_TOKEN_LIFETIME_SECS + 1;
        assert!(refusal(&keys, &claims).contains("lives"));
        let claims = county_office(NOW + 120);
        assert!(refusal(&keys, &claims).contains("future"));
    }

    #[test]
    fn another_key_or_a_changed_payload_fails_the_signature() {
        let keys = keys();
        let other = self::keys();
        let forged = sign(&other, &county_office(NOW));
        let error = keys.verifier.verify_at(&forged, NOW).expect_err("refused");
        assert!(matches!(error, TokenError::Rejected(_)), "{error}");
        // Swap the payload of a genuine token for one naming another county.
        let genuine = sign(&keys, &county_office(NOW));
        let mut wider = county_office(NOW);
        wider.counties.push("130427".into());
        let widened = sign(&other, &wider);
        let parts: Vec<&str> = genuine.split('.').collect();
        let payload = widened.split('.').nth(1).expect("payload");
        let tampered = format!("{}.{}.{}", parts[0], payload, parts[2]);
        assert!(keys.verifier.verify_at(&tampered, NOW).is_err());
    }

    #[test]
    fn an_unknown_key_id_is_refused() {
        let keys = keys();
        let token = sign_ed25519(&county_office(NOW), &keys.der, "k2").expect("sign");
        assert!(matches!(
            keys.verifier.verify_at(&token, NOW),
            Err(TokenError::UnknownKid(kid)) if kid == "k2"
        ));
    }

    #[test]
    fn bad_scope_claims_are_refused_naming_the_claim() {
        let keys = keys();
        let mut claims = county_office(NOW);
        claims.insurer = Some("中国人寿".into());
        assert!(refusal(&keys, &claims).contains("insurer"));
        let mut claims = county_office(NOW);
        claims.role = "superuser".into();
        assert!(refusal(&keys, &claims).contains("unknown role"));
    }

    #[test]
    fn symmetric_or_empty_key_sets_are_refused() {
        let oct = r#"{"keys":[{"kty":"oct","k":"c2VjcmV0","kid":"h"}]}"#;
        assert!(matches!(
            TokenVerifier::from_jwks(oct, ISS, AUD, 60),
            Err(SetupError::BadKey { index: 0, .. })
        ));
        assert!(matches!(
            TokenVerifier::from_jwks(r#"{"keys":[]}"#, ISS, AUD, 60),
            Err(SetupError::NoKeys)
        ));
        assert!(matches!(
            TokenVerifier::from_jwks("[]", ISS, AUD, 60),
            Err(SetupError::NotJwks(_))
        ));
    }

    #[test]
    fn the_authorization_metadata_must_be_a_bearer_token() {
        assert_eq!(bearer(Some(b"Bearer abc")), Ok("abc"));
        assert_eq!(bearer(Some(b"bearer abc")), Ok("abc"));
        assert!(bearer(None).is_err());
        assert!(bearer(Some(b"Basic abc")).is_err());
        assert!(bearer(Some(b"Bearer ")).is_err());
        assert!(bearer(Some(b"Bearer a b")).is_err());
        assert!(bearer(Some(&[b'x'; MAX_TOKEN_BYTES + 8])).is_err());
    }

    #[test]
    fn admission_checks_token_then_role() {
        let keys = keys();
        let token = format!("Bearer {}", sign(&keys, &county_office(TokenClaims::now())));
        let auth = Authenticator::Tokens(keys.verifier);
        let pay = "/fangpin.v1.PayoutService/PayClaim";
        let file = "/fangpin.v1.PayoutService/FileClaim";
        assert_eq!(
            auth.admit("/grpc.health.v1.Health/Check", None),
            Ok(Admission::Health)
        );
        assert!(matches!(
            auth.admit(file, None),
            Err(Refusal::Unauthenticated { .. })
        ));
        assert!(matches!(
            auth.admit(file, Some(token.as_bytes())),
            Ok(Admission::Principal(p)) if p.role() == Role::CountyOffice
        ));
        let refused = auth
            .admit(pay, Some(token.as_bytes()))
            .expect_err("wrong role");
        assert_eq!(
            refused.to_string(),
            "role county_office may not call /fangpin.v1.PayoutService/PayClaim"
        );
        let refused = auth
            .admit(
                "/fangpin.v1.PayoutService/Nonexistent",
                Some(token.as_bytes()),
            )
            .expect_err("unknown method");
        assert_eq!(
            refused.to_string(),
            "role county_office may not call this method"
        );
        assert_eq!(
            Authenticator::Development.admit(pay, None),
            Ok(Admission::Unchecked)
        );
    }
}
