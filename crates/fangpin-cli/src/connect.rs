//! How the CLI reaches the server: the one place that builds its gRPC
//! channels. An `https://` server is reached over TLS (the server's CA from
//! `--ca-cert`, else the platform's CA store), with a client certificate
//! when the server requires mutual TLS; `http://` is plaintext, for
//! development servers only. A bearer token, when given, goes with every
//! call as `authorization: Bearer <token>`.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, Result, bail, ensure};
use fangpin_proto::tonic::metadata::{Ascii, MetadataValue};
use fangpin_proto::tonic::service::Interceptor;
use fangpin_proto::tonic::service::interceptor::InterceptedService;
use fangpin_proto::tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};
use fangpin_proto::tonic::{Request, Status};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// What every command's client is built on: a channel whose calls carry
/// the token.
pub type Conn = InterceptedService<Channel, BearerToken>;

/// The environment variable holding the token text itself (a file is
/// `--token-file`). Never a flag: a flag's value shows in `ps`.
pub const ENV_TOKEN: &str = "FANGPIN_TOKEN";

/// A token is a JWT of a few KiB at most; the limit keeps a wrong file (a
/// binary, a log) from being sent as a header.
pub const MAX_TOKEN_BYTES: usize = 16 * 1024;
/// A certificate, key or CA bundle is a few KiB.
const MAX_PEM_FILE_BYTES: u64 = 1024 * 1024;
/// Reaching the server, TCP and TLS handshake included.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// How to reach the server, from the global options.
#[derive(Clone, Debug, Default)]
pub struct Transport {
    /// `http://HOST:PORT` (plaintext) or `https://HOST:PORT` (TLS).
    pub server: String,
    /// PEM certificates trusted to sign the server's certificate.
    pub ca_cert: Option<PathBuf>,
    /// PEM client certificate (chain) and its key, for mutual TLS.
    pub client_cert: Option<PathBuf>,
    pub client_key: Option<PathBuf>,
    /// The token, already read (`BearerToken::from_file` or `from_text`).
    pub token: Option<BearerToken>,
}

/// A bearer token, sent on every call. Its text is never printed: `Debug`
/// hides it, and the header is marked sensitive so HTTP/2 does not keep it
/// in its header compression table.
#[derive(Clone, Default)]
pub struct BearerToken(Option<MetadataValue<Ascii>>);

impl fmt::Debug for BearerToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Some(_) => f.write_str("BearerToken(<hidden>)"),
            None => f.write_str("BearerToken(none)"),
        }
    }
}

impl BearerToken {
    /// No token: calls go without `authorization`.
    pub fn none() -> BearerToken {
        BearerToken(None)
    }

    /// The token in `text`, surrounding whitespace (a file's last newline)
    /// removed. `source` names where it came from, for the error; the
    /// error never quotes the text.
    pub fn from_text(text: &str, source: &str) -> Result<BearerToken> {
        let token = text.trim();
        ensure!(!token.is_empty(), "{source}: the token is empty");
        ensure!(
            token.len() <= MAX_TOKEN_BYTES,
            "{source}: the token is longer than {MAX_TOKEN_BYTES} bytes"
        );
        // A JWT is base64url and dots; anything else would be mangled or
        // refused as a header value.
        ensure!(
            token.bytes().all(|b| b.is_ascii_graphic()),
            "{source}: the token has characters other than visible ASCII"
        );
        let mut value: MetadataValue<Ascii> = format!("Bearer {token}")
            .parse()
            .with_context(|| format!("{source}: the token is not a valid header value"))?;
        value.set_sensitive(true);
        Ok(BearerToken(Some(value)))
    }

    /// The token in the file at `path` (its whole content, trimmed).
    pub fn from_file(path: &Path) -> Result<BearerToken> {
        let source = path.display().to_string();
        let text = std::fs::read(path).with_context(|| format!("{source}: cannot read"))?;
        let text = String::from_utf8(text)
            .map_err(|_| anyhow::anyhow!("{source}: the token is not UTF-8 text"))?;
        BearerToken::from_text(&text, &source)
    }

    /// `--token-file` or `$FANGPIN_TOKEN`; both at once is refused rather
    /// than one silently winning.
    pub fn from_options(
        token_file: Option<&Path>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<BearerToken> {
        let from_env = env(ENV_TOKEN).filter(|v| !v.is_empty());
        match (token_file, from_env) {
            (Some(_), Some(_)) => {
                bail!("both --token-file and {ENV_TOKEN} are set: give the token one way")
            }
            (Some(path), None) => BearerToken::from_file(path),
            (None, Some(text)) => BearerToken::from_text(&text, ENV_TOKEN),
            (None, None) => Ok(BearerToken::none()),
        }
    }

    pub fn is_some(&self) -> bool {
        self.0.is_some()
    }
}

impl Interceptor for BearerToken {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        if let Some(value) = &self.0 {
            request
                .metadata_mut()
                .insert("authorization", value.clone());
        }
        Ok(request)
    }
}

impl Transport {
    /// A channel whose calls time out after `timeout`. It connects lazily,
    /// so a command that fails on its own input says so without a server;
    /// the files (CA, client certificate, key) are read and checked now.
    pub fn channel(&self, timeout: Duration, adaptive_window: bool) -> Result<Conn> {
        let endpoint = self
            .endpoint()?
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(timeout)
            .http2_adaptive_window(adaptive_window);
        Ok(InterceptedService::new(
            endpoint.connect_lazy(),
            self.token.clone().unwrap_or_default(),
        ))
    }

    /// The endpoint with its TLS settings, everything checked.
    pub fn endpoint(&self) -> Result<Endpoint> {
        let server = &self.server;
        let endpoint = Endpoint::from_shared(server.clone())
            .with_context(|| format!("invalid server address {server:?}"))?;
        let uri = endpoint.uri();
        let tls_files =
            self.ca_cert.is_some() || self.client_cert.is_some() || self.client_key.is_some();
        match uri.scheme_str() {
            Some("https") => {}
            Some("http") => {
                // Certificates with a plaintext URL are a mistake: the user
                // expects TLS and would silently not get it.
                ensure!(
                    !tls_files,
                    "--ca-cert, --client-cert and --client-key need an https:// server, not {server:?}"
                );
                // A plaintext token can be read by anyone on the path; only
                // a development server on this machine may get one.
                let host = uri.host().unwrap_or_default();
                ensure!(
                    !self.token.as_ref().is_some_and(BearerToken::is_some)
                        || matches!(host, "localhost" | "127.0.0.1" | "[::1]" | "::1"),
                    "refusing to send the token over plaintext to {server:?}: use https://"
                );
                return Ok(endpoint);
            }
            _ => bail!("the server address {server:?} must start with https:// or http://"),
        }
        let mut tls = ClientTlsConfig::new().timeout(CONNECT_TIMEOUT);
        tls = match &self.ca_cert {
            Some(path) => {
                let pem = read_pem(path)?;
                certificates_in(path, &pem)?;
                tls.ca_certificate(Certificate::from_pem(pem))
            }
            None => tls.with_native_roots(),
        };
        match (&self.client_cert, &self.client_key) {
            (Some(cert_path), Some(key_path)) => {
                let cert = read_pem(cert_path)?;
                certificates_in(cert_path, &cert)?;
                let key = read_pem(key_path)?;
                PrivateKeyDer::from_pem_slice(&key).map_err(|e| {
                    anyhow::anyhow!("{}: no usable PEM private key: {e}", key_path.display())
                })?;
                tls = tls.identity(Identity::from_pem(cert, key));
            }
            (None, None) => {}
            (Some(_), None) => bail!("--client-cert needs --client-key"),
            (None, Some(_)) => bail!("--client-key needs --client-cert"),
        }
        endpoint
            .tls_config(tls)
            .with_context(|| format!("TLS settings for {server:?}"))
    }
}

fn read_pem(path: &Path) -> Result<Vec<u8>> {
    let size = std::fs::metadata(path)
        .with_context(|| format!("{}: cannot read", path.display()))?
        .len();
    ensure!(
        size <= MAX_PEM_FILE_BYTES,
        "{}: larger than {MAX_PEM_FILE_BYTES} bytes, not a PEM file",
        path.display()
    );
    std::fs::read(path).with_context(|| format!("{}: cannot read", path.display()))
}

/// At least one certificate, every one well formed.
fn certificates_in(path: &Path, pem: &[u8]) -> Result<()> {
    let mut count = 0;
    for item in CertificateDer::pem_slice_iter(pem) {
        item.map_err(|e| anyhow::anyhow!("{}: not valid PEM: {e}", path.display()))?;
        count += 1;
    }
    ensure!(count > 0, "{}: no PEM certificate in it", path.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln";

    fn transport(server: &str) -> Transport {
        Transport {
            server: server.to_string(),
            ..Transport::default()
        }
    }

    #[test]
    fn the_token_goes_as_a_bearer_header_and_never_prints() {
        let mut token = BearerToken::from_text(&format!("  {TOKEN}\n"), "test").expect("valid");
        let request = token.call(Request::new(())).expect("intercepted");
        let header = request
            .metadata()
            .get("authorization")
            .expect("authorization sent");
        assert_eq!(header.to_str().expect("ascii"), format!("Bearer {TOKEN}"));
        assert!(header.is_sensitive());
        assert_eq!(format!("{token:?}"), "BearerToken(<hidden>)");

        let mut none = BearerToken::none();
        let request = none.call(Request::new(())).expect("intercepted");
        assert!(request.metadata().get("authorization").is_none());
    }

    #[test]
    fn a_bad_token_is_refused_without_quoting_it() {
        for text in ["", "  \n", "two words", "tab\there"] {
            let error = BearerToken::from_text(text, "FANGPIN_TOKEN").expect_err("refused");
            let message = format!("{error:#}");
            assert!(message.starts_with("FANGPIN_TOKEN: "), "{message}");
            if !text.trim().is_empty() {
                assert!(!message.contains(text.trim()), "{message}");
            }
        }
        let long = "a".repeat(MAX_TOKEN_BYTES + 1);
        assert!(BearerToken::from_text(&long, "x").is_err());
    }

    #[test]
    fn the_token_comes_from_a_file_or_the_environment_not_both() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let path = dir.path().join("token");
        std::fs::write(&path, format!("{TOKEN}\n")).expect("write");
        let env = |name: &str| (name == ENV_TOKEN).then(|| TOKEN.to_string());
        let nothing = |_: &str| None;
        assert!(
            BearerToken::from_options(Some(&path), &nothing)
                .expect("file")
                .is_some()
        );
        assert!(
            BearerToken::from_options(None, &env)
                .expect("env")
                .is_some()
        );
        assert!(
            !BearerToken::from_options(None, &nothing)
                .expect("none")
                .is_some()
        );
        let error = BearerToken::from_options(Some(&path), &env).expect_err("both");
        assert!(
            error
                .to_string()
                .contains("both --token-file and FANGPIN_TOKEN")
        );
    }

    #[test]
    fn plaintext_refuses_certificates_and_remote_tokens() {
        let mut t = transport("http://10.0.0.5:50051");
        t.ca_cert = Some("/ca.crt".into());
        let error = t.endpoint().expect_err("certificates need https");
        assert!(
            error.to_string().contains("need an https:// server"),
            "{error}"
        );

        let mut t = transport("http://10.0.0.5:50051");
        t.token = Some(BearerToken::from_text(TOKEN, "test").expect("valid"));
        let error = t.endpoint().expect_err("no token over plaintext");
        assert!(
            error.to_string().contains("refusing to send the token"),
            "{error}"
        );
        assert!(!error.to_string().contains(TOKEN));

        let mut t = transport("http://127.0.0.1:50051");
        t.token = Some(BearerToken::from_text(TOKEN, "test").expect("valid"));
        t.endpoint()
            .expect("a local development server may get the token");
        transport("http://10.0.0.5:50051")
            .endpoint()
            .expect("plaintext without credentials is allowed");
    }

    #[test]
    fn https_checks_its_files_and_pairs() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let empty = dir.path().join("empty.crt");
        std::fs::write(&empty, "").expect("write");
        let mut t = transport("https://fangpin.example:50051");
        t.ca_cert = Some(empty.clone());
        let error = t.endpoint().expect_err("an empty CA");
        assert!(error.to_string().contains("no PEM certificate"), "{error}");

        let mut t = transport("https://fangpin.example:50051");
        t.client_cert = Some(empty);
        let error = t.endpoint().expect_err("a certificate without its key");
        assert_eq!(error.to_string(), "--client-cert needs --client-key");

        let error = transport("ftp://fangpin.example")
            .endpoint()
            .expect_err("scheme");
        assert!(
            error
                .to_string()
                .contains("must start with https:// or http://")
        );
    }
}
