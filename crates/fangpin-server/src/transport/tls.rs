//! The server's TLS identity: its certificate chain and private key, and the
//! CA of client certificates when every client must present one (mutual TLS).
//!
//! Everything is read and checked once, at start-up, so a wrong file stops
//! fangpind with a message naming the file instead of failing each client's
//! handshake later. Rotating a certificate means replacing the files and
//! restarting (or rolling) the server; nothing is re-read while it runs.

use std::fmt;
use std::path::Path;
use std::time::Duration;

use fangpin_proto::tonic::transport::{Certificate, Identity, Server, ServerTlsConfig};
use rustls_pki_types::pem::{self, PemObject};
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// A certificate chain, key or CA bundle is a few KiB; anything past this
/// is the wrong file (a database, a log), not something to read into memory.
pub const MAX_PEM_FILE_BYTES: u64 = 1024 * 1024;

/// A client that has not finished its TLS handshake after this is dropped.
/// tonic sets no handshake timeout of its own: each handshake runs in its own
/// task, so a slow one blocks no other client, but a peer that opens
/// connections and never speaks would hold a task and a socket each for
/// ever. A handshake is two round trips; ten seconds covers any real network.
pub const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// What is wrong with one of the TLS files. `file` is the path (or, for
/// PEM given in memory, what the text is), so the message points at it.
#[derive(Debug, thiserror::Error)]
pub enum TlsLoadError {
    #[error("{file}: cannot read: {source}")]
    Read {
        file: String,
        source: std::io::Error,
    },
    #[error("{file}: larger than {MAX_PEM_FILE_BYTES} bytes, not a PEM certificate or key file")]
    TooLarge { file: String },
    #[error("{file}: not valid PEM: {reason}")]
    NotPem { file: String, reason: String },
    #[error("{file}: no certificate in it (expected PEM blocks \"-----BEGIN CERTIFICATE-----\")")]
    NoCertificate { file: String },
    #[error(
        "{file}: no private key in it (expected a PEM PKCS#8, PKCS#1 or SEC1 key, \"-----BEGIN PRIVATE KEY-----\")"
    )]
    NoPrivateKey { file: String },
    /// The PEM parsed, but rustls refused the combination: most often a key
    /// that does not belong to the certificate, or an unusable CA.
    #[error("{cert_file} with {key_file}: refused by TLS: {reason}")]
    Refused {
        cert_file: String,
        key_file: String,
        reason: String,
    },
}

/// The PEM text of the server's identity, checked: the chain has at least
/// one certificate (the leaf first), the key file holds a private key that
/// matches it, and a client CA, when given, holds at least one certificate.
#[derive(Clone, PartialEq, Eq)]
pub struct TlsIdentity {
    cert_chain_pem: Vec<u8>,
    key_pem: Vec<u8>,
    client_ca_pem: Option<Vec<u8>>,
}

/// Names the files' sizes, never the key's bytes.
impl fmt::Debug for TlsIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsIdentity")
            .field("cert_chain_pem_bytes", &self.cert_chain_pem.len())
            .field("key_pem", &"<hidden>")
            .field(
                "client_ca_pem_bytes",
                &self.client_ca_pem.as_ref().map(Vec::len),
            )
            .finish()
    }
}

impl TlsIdentity {
    /// Reads and checks `[tls]`'s files: `cert_file` (PEM chain, leaf first),
    /// `key_file` (PEM private key) and, for mutual TLS, `client_ca_file`
    /// (PEM certificates of the CAs that sign client certificates).
    pub fn load(
        cert_file: &Path,
        key_file: &Path,
        client_ca_file: Option<&Path>,
    ) -> Result<TlsIdentity, TlsLoadError> {
        let cert = read_bounded(cert_file)?;
        let key = read_bounded(key_file)?;
        let ca = client_ca_file.map(read_bounded).transpose()?;
        TlsIdentity::check(
            (&cert_file.display().to_string(), cert),
            (&key_file.display().to_string(), key),
            client_ca_file.map(|p| p.display().to_string()).zip(ca),
        )
    }

    /// As `load`, from PEM text already in memory (the tests' generated
    /// certificates). Errors name the inputs "certificate chain", "private
    /// key" and "client CA".
    pub fn from_pem(
        cert_chain_pem: Vec<u8>,
        key_pem: Vec<u8>,
        client_ca_pem: Option<Vec<u8>>,
    ) -> Result<TlsIdentity, TlsLoadError> {
        TlsIdentity::check(
            ("certificate chain", cert_chain_pem),
            ("private key", key_pem),
            client_ca_pem.map(|ca| ("client CA".to_string(), ca)),
        )
    }

    fn check(
        (cert_name, cert_chain_pem): (&str, Vec<u8>),
        (key_name, key_pem): (&str, Vec<u8>),
        client_ca: Option<(String, Vec<u8>)>,
    ) -> Result<TlsIdentity, TlsLoadError> {
        certificates(cert_name, &cert_chain_pem)?;
        match PrivateKeyDer::from_pem_slice(&key_pem) {
            Ok(_) => {}
            Err(pem::Error::NoItemsFound) => {
                return Err(TlsLoadError::NoPrivateKey {
                    file: key_name.to_string(),
                });
            }
            Err(e) => {
                return Err(TlsLoadError::NotPem {
                    file: key_name.to_string(),
                    reason: e.to_string(),
                });
            }
        }
        if let Some((ca_name, ca_pem)) = &client_ca {
            certificates(ca_name, ca_pem)?;
        }
        let identity = TlsIdentity {
            cert_chain_pem,
            key_pem,
            client_ca_pem: client_ca.map(|(_, pem)| pem),
        };
        // What the server will do with the files, done once now: rustls
        // checks that the key belongs to the leaf certificate and that the
        // client CAs make a usable verifier.
        Server::builder()
            .tls_config(identity.server_tls_config())
            .map_err(|e| TlsLoadError::Refused {
                cert_file: cert_name.to_string(),
                key_file: key_name.to_string(),
                reason: error_chain(&e),
            })?;
        Ok(identity)
    }

    /// Whether every client must present a certificate signed by the client CA.
    pub fn requires_client_certificates(&self) -> bool {
        self.client_ca_pem.is_some()
    }

    /// tonic's server configuration: this identity, the handshake timeout,
    /// and with a client CA, client certificates required (never optional:
    /// an optional client certificate would let any client in while the
    /// operator believes only certified ones can connect).
    pub fn server_tls_config(&self) -> ServerTlsConfig {
        let config = ServerTlsConfig::new()
            .identity(Identity::from_pem(&self.cert_chain_pem, &self.key_pem))
            .timeout(TLS_HANDSHAKE_TIMEOUT);
        match &self.client_ca_pem {
            Some(ca) => config
                .client_ca_root(Certificate::from_pem(ca))
                .client_auth_optional(false),
            None => config,
        }
    }
}

fn read_bounded(path: &Path) -> Result<Vec<u8>, TlsLoadError> {
    let file = || path.display().to_string();
    let metadata = std::fs::metadata(path).map_err(|source| TlsLoadError::Read {
        file: file(),
        source,
    })?;
    if metadata.len() > MAX_PEM_FILE_BYTES {
        return Err(TlsLoadError::TooLarge { file: file() });
    }
    std::fs::read(path).map_err(|source| TlsLoadError::Read {
        file: file(),
        source,
    })
}

/// The number of certificates in `pem_text`: at least one, all well formed.
fn certificates(name: &str, pem_text: &[u8]) -> Result<usize, TlsLoadError> {
    let mut count = 0;
    for item in CertificateDer::pem_slice_iter(pem_text) {
        item.map_err(|e| TlsLoadError::NotPem {
            file: name.to_string(),
            reason: e.to_string(),
        })?;
        count += 1;
    }
    if count == 0 {
        return Err(TlsLoadError::NoCertificate {
            file: name.to_string(),
        });
    }
    Ok(count)
}

/// An error and its causes on one line: tonic's transport error says only
/// "transport error"; the reason is in its sources.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    // A self-signed P-256 certificate for "localhost" and its key, made once
    // (test data only, never deployed) with
    //   openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    //     -keyout localhost.key -out localhost.crt -days 36500 \
    //     -subj /CN=localhost -addext subjectAltName=DNS:localhost
    const CERT: &str = include_str!("../../testdata/localhost.crt");
    const KEY: &str = include_str!("../../testdata/localhost.key");
    // Another key, which does not belong to CERT
    // (openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256).
    const OTHER_KEY: &str = include_str!("../../testdata/other.key");

    fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).expect("write a test file");
        path
    }

    #[test]
    fn a_matching_certificate_and_key_load_with_or_without_a_client_ca() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let cert = write(dir.path(), "tls.crt", CERT);
        let key = write(dir.path(), "tls.key", KEY);
        let identity = TlsIdentity::load(&cert, &key, None).expect("loads");
        assert!(!identity.requires_client_certificates());
        let identity = TlsIdentity::load(&cert, &key, Some(&cert)).expect("loads with a CA");
        assert!(identity.requires_client_certificates());
        let debug = format!("{identity:?}");
        assert!(!debug.contains("PRIVATE KEY"), "{debug}");
    }

    #[test]
    fn a_missing_file_is_named() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let key = write(dir.path(), "tls.key", KEY);
        let missing = dir.path().join("missing.crt");
        let error = TlsIdentity::load(&missing, &key, None).expect_err("refused");
        assert!(matches!(error, TlsLoadError::Read { .. }), "{error:?}");
        let text = error.to_string();
        assert!(
            text.starts_with(&format!("{}: cannot read: ", missing.display())),
            "{text}"
        );
    }

    #[test]
    fn a_key_file_without_a_key_is_refused_naming_it() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let cert = write(dir.path(), "tls.crt", CERT);
        // The usual mistake: the certificate given twice.
        let error = TlsIdentity::load(&cert, &cert, None).expect_err("refused");
        assert!(
            matches!(&error, TlsLoadError::NoPrivateKey { file } if *file == cert.display().to_string()),
            "{error:?}"
        );
    }

    #[test]
    fn a_certificate_file_without_a_certificate_is_refused() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let key = write(dir.path(), "tls.key", KEY);
        let error = TlsIdentity::load(&key, &key, None).expect_err("refused");
        assert!(
            matches!(&error, TlsLoadError::NoCertificate { file } if *file == key.display().to_string()),
            "{error:?}"
        );
    }

    #[test]
    fn an_empty_client_ca_is_refused_naming_it() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let cert = write(dir.path(), "tls.crt", CERT);
        let key = write(dir.path(), "tls.key", KEY);
        let ca = write(dir.path(), "clients.crt", "");
        let error = TlsIdentity::load(&cert, &key, Some(&ca)).expect_err("refused");
        assert!(
            matches!(&error, TlsLoadError::NoCertificate { file } if *file == ca.display().to_string()),
            "{error:?}"
        );
    }

    #[test]
    fn a_damaged_certificate_is_not_pem() {
        let damaged = CERT.replacen("MII", "M!I", 1);
        let error =
            TlsIdentity::from_pem(damaged.into_bytes(), KEY.into(), None).expect_err("refused");
        assert!(
            matches!(&error, TlsLoadError::NotPem { file, .. } if file == "certificate chain"),
            "{error:?}"
        );
    }

    #[test]
    fn a_key_of_another_certificate_is_refused() {
        let error =
            TlsIdentity::from_pem(CERT.into(), OTHER_KEY.into(), None).expect_err("refused");
        assert!(matches!(error, TlsLoadError::Refused { .. }), "{error:?}");
        let text = error.to_string();
        assert!(
            text.starts_with("certificate chain with private key: refused by TLS: "),
            "{text}"
        );
    }

    #[test]
    fn an_oversized_file_is_refused_unread() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let key = write(dir.path(), "tls.key", KEY);
        let big = dir.path().join("big.crt");
        let file = std::fs::File::create(&big).expect("create");
        file.set_len(MAX_PEM_FILE_BYTES + 1).expect("grow");
        let error = TlsIdentity::load(&big, &key, None).expect_err("refused");
        assert!(matches!(error, TlsLoadError::TooLarge { .. }), "{error:?}");
    }
}
