//! `fangpin admin token`: an Ed25519 signing key and the tokens it signs, for
//! a county that has no identity provider of its own (and for trying the
//! service with authentication on). A county with a provider configures the
//! provider's JWK set in `auth.jwks_file` and never uses this.
//!
//! The signing key is the power to act as anyone in any role: keep it off
//! the server (fangpind needs only `jwks.json`), readable by its owner only.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::Subcommand;
use ed25519_dalek::pkcs8::{DecodePrivateKey, EncodePrivateKey, spki::der::pem::LineEnding};
use fangpin_domain::access::{Principal, Role, ScopeClaims};
use fangpin_token::{MAX_TOKEN_LIFETIME_SECS, TokenClaims, ed25519_jwks, sign_ed25519};

/// The key file `keygen` writes beside `jwks.json`.
pub const SIGNING_KEY_FILE: &str = "token-signing-key.pem";
pub const JWKS_FILE: &str = "jwks.json";

#[derive(Subcommand)]
pub enum TokenCmd {
    /// Make an Ed25519 signing key (token-signing-key.pem, owner-only) and
    /// the JWK set that verifies it (jwks.json, for fangpind's
    /// auth.jwks_file). Existing files are never overwritten.
    Keygen {
        #[arg(long, value_name = "DIR")]
        out_dir: PathBuf,
        /// The key id tokens name (`kid`); use a new one at each rotation
        #[arg(long, default_value = "fangpin-1")]
        kid: String,
    },
    /// Sign a token and print it. The claims are checked as the server will
    /// check them, so a token for a role without its scope is refused here.
    Issue {
        #[arg(long, value_name = "FILE")]
        signing_key: PathBuf,
        #[arg(long, default_value = "fangpin-1")]
        kid: String,
        /// The server's auth.issuer
        #[arg(long)]
        issuer: String,
        /// The server's auth.audience
        #[arg(long, default_value = "fangpin")]
        audience: String,
        /// The account (becomes the audit log's actor)
        #[arg(long)]
        sub: String,
        /// surveyor, village_committee, township, county_office,
        /// department_feeder, finance_bureau or auditor
        #[arg(long)]
        role: String,
        /// A county code in scope (repeat for several)
        #[arg(long = "county", value_name = "CODE")]
        counties: Vec<String>,
        /// Surveyors: the insurance company
        #[arg(long)]
        insurer: Option<String>,
        /// Village committees: the 12-digit village code
        #[arg(long)]
        village: Option<String>,
        /// Townships: the 9-digit township code
        #[arg(long)]
        township: Option<String>,
        /// Lifetime in hours, at most 12 (a working day)
        #[arg(long, default_value_t = 8)]
        hours: u64,
    },
}

pub fn run(cmd: TokenCmd) -> Result<()> {
    match cmd {
        TokenCmd::Keygen { out_dir, kid } => {
            let (key, jwks) = keygen(&out_dir, &kid)?;
            println!("signing key: {} (keep it off the server)", key.display());
            println!(
                "JWK set:     {} (fangpind's auth.jwks_file)",
                jwks.display()
            );
            Ok(())
        }
        TokenCmd::Issue {
            signing_key,
            kid,
            issuer,
            audience,
            sub,
            role,
            counties,
            insurer,
            village,
            township,
            hours,
        } => {
            let scope = ScopeClaims {
                sub,
                role,
                counties,
                insurer,
                village,
                township,
            };
            let token = issue(&signing_key, &kid, &issuer, &audience, &scope, hours)?;
            println!("{token}");
            Ok(())
        }
    }
}

/// Writes a new key pair into `out_dir`; returns the two paths.
pub fn keygen(out_dir: &Path, kid: &str) -> Result<(PathBuf, PathBuf)> {
    if kid.is_empty() || kid.len() > 64 || !kid.bytes().all(|b| b.is_ascii_graphic()) {
        bail!("--kid must be 1 to 64 printable ASCII characters");
    }
    std::fs::create_dir_all(out_dir).with_context(|| format!("creating {}", out_dir.display()))?;
    let (der, public) = fangpin_token::generate_ed25519()?;
    let key = ed25519_dalek::SigningKey::from_pkcs8_der(&der).context("the generated key")?;
    let pem = key
        .to_pkcs8_pem(LineEnding::LF)
        .context("encoding the key")?;
    let key_path = out_dir.join(SIGNING_KEY_FILE);
    let jwks_path = out_dir.join(JWKS_FILE);
    write_new(&key_path, pem.as_bytes(), true)?;
    write_new(&jwks_path, ed25519_jwks(&public, kid).as_bytes(), false)?;
    Ok((key_path, jwks_path))
}

/// A token for `scope`, valid from now for `hours`.
pub fn issue(
    signing_key: &Path,
    kid: &str,
    issuer: &str,
    audience: &str,
    scope: &ScopeClaims,
    hours: u64,
) -> Result<String> {
    let lifetime = hours.saturating_mul(3600);
    if hours == 0 || lifetime > MAX_TOKEN_LIFETIME_SECS {
        bail!(
            "--hours must be between 1 and {}",
            MAX_TOKEN_LIFETIME_SECS / 3600
        );
    }
    // The server would refuse a token whose claims make no principal.
    Principal::from_claims(scope).context("these claims would be refused")?;
    let role = Role::parse(&scope.role).context("unknown role")?;
    let pem = std::fs::read_to_string(signing_key)
        .with_context(|| format!("reading {}", signing_key.display()))?;
    let key = ed25519_dalek::SigningKey::from_pkcs8_pem(&pem)
        .with_context(|| format!("{} is not an Ed25519 PKCS#8 key", signing_key.display()))?;
    let der = key.to_pkcs8_der().context("encoding the key")?;
    let mut claims = TokenClaims::new(
        &scope.sub,
        role,
        issuer,
        audience,
        TokenClaims::now(),
        lifetime,
    );
    claims.counties = scope.counties.clone();
    claims.insurer = scope.insurer.clone();
    claims.village = scope.village.clone();
    claims.township = scope.township.clone();
    sign_ed25519(&claims, der.as_bytes(), kid).context("signing")
}

fn write_new(path: &Path, bytes: &[u8], secret: bool) -> Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    if secret {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    #[cfg(not(unix))]
    let _ = secret;
    let mut file = options
        .open(path)
        .with_context(|| format!("creating {} (it must not exist yet)", path.display()))?;
    file.write_all(bytes)
        .with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use fangpin_server::transport::auth::TokenVerifier;

    fn scope(role: &str) -> ScopeClaims {
        ScopeClaims {
            sub: "office-li".into(),
            role: role.into(),
            counties: vec!["130426".into()],
            ..ScopeClaims::default()
        }
    }

    #[test]
    fn an_issued_token_verifies_against_the_written_jwks() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let (key, jwks) = keygen(dir.path(), "k1").expect("keygen");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&key).expect("key").permissions().mode();
            assert_eq!(mode & 0o077, 0, "the signing key is owner-only");
        }
        let token = issue(
            &key,
            "k1",
            "https://iss",
            "fangpin",
            &scope("county_office"),
            8,
        )
        .expect("issue");
        let verifier = TokenVerifier::load(&jwks, "https://iss", "fangpin", 60).expect("jwks");
        let principal = verifier.verify(&token).expect("valid");
        assert_eq!(principal.subject(), "office-li");
        assert_eq!(principal.role(), Role::CountyOffice);
        assert!(keygen(dir.path(), "k1").is_err(), "never overwrites");
    }

    #[test]
    fn bad_claims_and_lifetimes_are_refused_at_issue() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let (key, _) = keygen(dir.path(), "k1").expect("keygen");
        // A surveyor needs its insurer.
        assert!(issue(&key, "k1", "i", "fangpin", &scope("surveyor"), 8).is_err());
        assert!(issue(&key, "k1", "i", "fangpin", &scope("county_office"), 13).is_err());
        assert!(issue(&key, "k1", "i", "fangpin", &scope("county_office"), 0).is_err());
    }
}
