//! The real server over TLS and mutual TLS, with certificates made at test
//! time: who gets a response and who is stopped at the handshake.
//!
//! The server runs over SQLite only: the transport does not depend on the
//! database, so this binary is not in the PostgreSQL run.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use fangpin_cli::connect::{BearerToken, Transport};
use fangpin_proto::tonic::Code;
use fangpin_proto::tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity};
use fangpin_proto::v1::GetPolicyRequest;
use fangpin_proto::v1::policy_service_client::PolicyServiceClient;
use fangpin_server::ServerOptions;
use fangpin_server::transport::tls::TlsIdentity;
use fangpin_store::Store;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose, SanType,
};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

/// Every attempt below is over loopback: a handshake or call still going
/// after this is a hang, and the test fails instead of waiting for ever.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);

/// A certificate and its key, PEM.
struct Pem {
    cert: String,
    key: String,
}

/// Two CAs: `ca` signs the server's certificate and the good client's;
/// `other_ca` signs a client the server must not accept.
struct Pki {
    ca: String,
    other_ca: String,
    server: Pem,
    client: Pem,
    stranger: Pem,
}

fn new_ca(name: &str) -> CertifiedIssuer<'static, KeyPair> {
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA parameters");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params.distinguished_name.push(DnType::CommonName, name);
    CertifiedIssuer::self_signed(params, KeyPair::generate().expect("CA key")).expect("CA")
}

fn leaf(
    issuer: &CertifiedIssuer<'static, KeyPair>,
    name: &str,
    sans: Vec<SanType>,
    usage: ExtendedKeyUsagePurpose,
) -> Pem {
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("parameters");
    params.distinguished_name.push(DnType::CommonName, name);
    params.subject_alt_names = sans;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![usage];
    let key = KeyPair::generate().expect("key");
    let cert = params.signed_by(&key, issuer).expect("signed");
    Pem {
        cert: cert.pem(),
        key: key.serialize_pem(),
    }
}

fn pki() -> Pki {
    let ca = new_ca("fangpin test CA");
    let other_ca = new_ca("another CA");
    let server = leaf(
        &ca,
        "fangpind",
        vec![
            SanType::DnsName("localhost".try_into().expect("DNS name")),
            SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)),
        ],
        ExtendedKeyUsagePurpose::ServerAuth,
    );
    let client = leaf(
        &ca,
        "county office",
        Vec::new(),
        ExtendedKeyUsagePurpose::ClientAuth,
    );
    let stranger = leaf(
        &other_ca,
        "stranger",
        Vec::new(),
        ExtendedKeyUsagePurpose::ClientAuth,
    );
    Pki {
        ca: ca.pem(),
        other_ca: other_ca.pem(),
        server,
        client,
        stranger,
    }
}

struct TlsServer {
    addr: SocketAddr,
    health_addr: Option<SocketAddr>,
    shutdown: Option<oneshot::Sender<()>>,
    handle: JoinHandle<Result<(), String>>,
    _dir: tempfile::TempDir,
}

impl TlsServer {
    /// The real server on 127.0.0.1:0 over a fresh SQLite database, with
    /// `tls` as its transport.
    async fn start(tls: TlsIdentity) -> TlsServer {
        TlsServer::start_with(tls, false).await
    }

    /// As `start`, with a plaintext health listener when `health` is set.
    async fn start_with(tls: TlsIdentity, health: bool) -> TlsServer {
        let dir = tempfile::tempdir().expect("temporary directory");
        let url = format!("sqlite://{}", dir.path().join("fangpin.db").display());
        let store = Store::connect(&url).await.expect("open the test database");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind an ephemeral port");
        let addr = listener.local_addr().expect("local address");
        let health_listener = match health {
            true => Some(
                tokio::net::TcpListener::bind("127.0.0.1:0")
                    .await
                    .expect("bind an ephemeral port for health"),
            ),
            false => None,
        };
        let health_addr = health_listener
            .as_ref()
            .map(|l| l.local_addr().expect("health address"));
        let (tx, rx) = oneshot::channel::<()>();
        let options = ServerOptions {
            tls: Some(tls),
            ..ServerOptions::default()
        };
        let handle = tokio::spawn(async move {
            fangpin_server::run_with_health_listener(
                listener,
                health_listener,
                store,
                Arc::new(fangpin_server::SystemClock),
                options,
                async {
                    let _ = rx.await;
                },
            )
            .await
            .map_err(|e| format!("{e:#}"))
        });
        TlsServer {
            addr,
            health_addr,
            shutdown: Some(tx),
            handle,
            _dir: dir,
        }
    }

    fn https(&self) -> Endpoint {
        Endpoint::from_shared(format!("https://{}", self.addr)).expect("valid URI")
    }

    async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        self.handle
            .await
            .expect("server task")
            .expect("server ran cleanly");
    }
}

/// What a client got from the server.
#[derive(Debug)]
enum Outcome {
    /// A health answer: the call went through.
    Served(ServingStatus),
    /// The channel did not come up (TCP, TLS or HTTP/2 handshake).
    ConnectFailed(String),
    /// The channel came up but the call failed, with this status.
    CallFailed(Code, String),
}

impl Outcome {
    /// A failure of the transport, not an answer, whose cause names one of
    /// `causes`: refused at connect, or a call that failed because the
    /// connection died (a TLS 1.3 client learns that its certificate was
    /// refused only after its side of the handshake, so the server's alert
    /// arrives with the first call, which tonic reports as Unknown).
    fn assert_refused(&self, case: &str, causes: &[&str]) {
        let message = match self {
            Outcome::ConnectFailed(message) => message,
            Outcome::CallFailed(Code::Unavailable | Code::Unknown, message) => message,
            other => panic!("{case}: expected a transport failure, got {other:?}"),
        };
        assert!(
            causes.iter().any(|cause| message.contains(cause)),
            "{case}: expected a cause among {causes:?}, got {self:?}"
        );
    }
}

/// Connects with `endpoint` and asks for the server's health.
async fn health(endpoint: Endpoint) -> Outcome {
    let attempt = async {
        let channel = match endpoint.connect().await {
            Ok(channel) => channel,
            Err(e) => return Outcome::ConnectFailed(error_chain(&e)),
        };
        match HealthClient::new(channel)
            .check(HealthCheckRequest::default())
            .await
        {
            Ok(response) => Outcome::Served(response.into_inner().status()),
            Err(status) => Outcome::CallFailed(status.code(), error_chain(&status)),
        }
    };
    tokio::time::timeout(ATTEMPT_TIMEOUT, attempt)
        .await
        .expect("the attempt finished in time (no hang)")
}

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

/// A TLS client that trusts `ca`, names the server "localhost", and
/// presents `client` when given.
fn tls_client(server: &TlsServer, ca: &str, client: Option<&Pem>) -> Endpoint {
    let mut tls = ClientTlsConfig::new()
        .domain_name("localhost")
        .ca_certificate(Certificate::from_pem(ca));
    if let Some(client) = client {
        tls = tls.identity(Identity::from_pem(&client.cert, &client.key));
    }
    server.https().tls_config(tls).expect("client TLS settings")
}

fn server_identity(pki: &Pki, client_ca: Option<&str>) -> TlsIdentity {
    TlsIdentity::from_pem(
        pki.server.cert.clone().into_bytes(),
        pki.server.key.clone().into_bytes(),
        client_ca.map(|ca| ca.as_bytes().to_vec()),
    )
    .expect("the generated identity loads")
}

#[tokio::test]
async fn a_client_trusting_the_ca_is_served_and_others_are_refused() {
    let pki = pki();
    let server = TlsServer::start(server_identity(&pki, None)).await;

    // (a) The CA is trusted: health answers, and a fangpin RPC reaches its
    // handler (NotFound is the application's answer, not the transport's).
    match health(tls_client(&server, &pki.ca, None)).await {
        Outcome::Served(status) => assert_eq!(status, ServingStatus::Serving),
        other => panic!("a client trusting the CA must be served, got {other:?}"),
    }
    let channel = tls_client(&server, &pki.ca, None)
        .connect()
        .await
        .expect("TLS connection");
    let status = PolicyServiceClient::new(channel)
        .get_policy(GetPolicyRequest {
            county_code: "410102".into(),
            policy_year: 2024,
            version: 0,
        })
        .await
        .expect_err("no policy in an empty database");
    assert_eq!(status.code(), Code::NotFound, "{status:?}");

    // (b) Plaintext HTTP/2 against the TLS port.
    let plaintext = Endpoint::from_shared(format!("http://{}", server.addr)).expect("valid URI");
    // The server reads the HTTP/2 preface as a broken TLS hello and hangs up.
    health(plaintext).await.assert_refused(
        "a plaintext client",
        &[
            "broken pipe",
            "connection reset",
            "Connection reset",
            "closed",
        ],
    );

    // (c) A client that does not trust the server's CA refuses the server.
    health(tls_client(&server, &pki.other_ca, None))
        .await
        .assert_refused("a client not trusting the CA", &["UnknownIssuer"]);

    // (e) Without a client CA, a client without a certificate is served,
    // and so is one that brings a certificate nobody asked for.
    match health(tls_client(&server, &pki.ca, Some(&pki.stranger))).await {
        Outcome::Served(status) => assert_eq!(status, ServingStatus::Serving),
        other => panic!("no client certificate is asked for, got {other:?}"),
    }

    server.stop().await;
}

#[tokio::test]
async fn mutual_tls_requires_a_client_certificate_from_the_client_ca() {
    let pki = pki();
    let server = TlsServer::start(server_identity(&pki, Some(&pki.ca))).await;

    // (d) No client certificate.
    health(tls_client(&server, &pki.ca, None))
        .await
        .assert_refused("a client without a certificate", &["CertificateRequired"]);
    // A certificate from another CA.
    health(tls_client(&server, &pki.ca, Some(&pki.stranger)))
        .await
        .assert_refused("a client certificate from another CA", &["UnknownCA"]);
    // A certificate from the client CA: served, after the refusals above.
    match health(tls_client(&server, &pki.ca, Some(&pki.client))).await {
        Outcome::Served(status) => assert_eq!(status, ServingStatus::Serving),
        other => panic!("a client certificate from the client CA must be served, got {other:?}"),
    }

    server.stop().await;
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write a test file");
    path
}

/// The CLI's own connection (`fangpin --server https://... --ca-cert ...
/// --client-cert ... --client-key ... --token-file ...`), against a server
/// loaded from files the way fangpind loads `[tls]`.
#[tokio::test]
async fn the_cli_connects_with_its_ca_client_certificate_and_token() {
    let pki = pki();
    let dir = tempfile::tempdir().expect("temporary directory");
    let identity = TlsIdentity::load(
        &write(dir.path(), "tls.crt", &pki.server.cert),
        &write(dir.path(), "tls.key", &pki.server.key),
        Some(&write(dir.path(), "clients.crt", &pki.ca)),
    )
    .expect("[tls] files load");
    assert!(identity.requires_client_certificates());
    let server = TlsServer::start(identity).await;

    let transport = Transport {
        // The server's certificate names localhost and 127.0.0.1; the URL
        // uses the name, as a county office's would.
        server: format!("https://localhost:{}", server.addr.port()),
        ca_cert: Some(write(dir.path(), "ca.crt", &pki.ca)),
        client_cert: Some(write(dir.path(), "client.crt", &pki.client.cert)),
        client_key: Some(write(dir.path(), "client.key", &pki.client.key)),
        token: Some(
            BearerToken::from_file(&write(dir.path(), "token", "test-token\n"))
                .expect("token file"),
        ),
    };
    let conn = transport
        .channel(ATTEMPT_TIMEOUT, false)
        .expect("the CLI's channel");
    let response = tokio::time::timeout(
        ATTEMPT_TIMEOUT,
        HealthClient::new(conn).check(HealthCheckRequest::default()),
    )
    .await
    .expect("in time")
    .expect("the CLI is served over mutual TLS");
    assert_eq!(response.into_inner().status(), ServingStatus::Serving);

    // Without its client certificate, the same CLI is refused.
    let refused = Transport {
        client_cert: None,
        client_key: None,
        ..transport
    };
    let conn = refused
        .channel(ATTEMPT_TIMEOUT, false)
        .expect("the CLI's channel");
    let status = tokio::time::timeout(
        ATTEMPT_TIMEOUT,
        HealthClient::new(conn).check(HealthCheckRequest::default()),
    )
    .await
    .expect("in time")
    .expect_err("no client certificate, no answer");
    Outcome::CallFailed(status.code(), error_chain(&status)).assert_refused(
        "the CLI without its client certificate",
        &["CertificateRequired"],
    );

    server.stop().await;
}

/// Kubernetes' `grpc:` probes speak plaintext only: the health listener
/// answers them, while the API stays behind (mutual) TLS.
#[tokio::test]
async fn the_plaintext_health_listener_serves_health_and_nothing_else() {
    let pki = pki();
    let server = TlsServer::start_with(server_identity(&pki, Some(&pki.ca)), true).await;
    let health_addr = server.health_addr.expect("a health listener");
    let plaintext = || Endpoint::from_shared(format!("http://{health_addr}")).expect("valid URI");

    match health(plaintext()).await {
        Outcome::Served(status) => assert_eq!(status, ServingStatus::Serving),
        other => panic!("a plaintext probe must get health, got {other:?}"),
    }
    // Per service too, as a probe naming one would ask.
    let named = HealthClient::new(plaintext().connect().await.expect("plaintext connection"))
        .check(HealthCheckRequest {
            service: "fangpin.v1.PolicyService".into(),
        })
        .await
        .expect("a named service's health");
    assert_eq!(named.into_inner().status(), ServingStatus::Serving);

    // Nothing but health is served there.
    let status =
        PolicyServiceClient::new(plaintext().connect().await.expect("plaintext connection"))
            .get_policy(GetPolicyRequest {
                county_code: "410102".into(),
                policy_year: 2024,
                version: 0,
            })
            .await
            .expect_err("the API is not on the health listener");
    assert_eq!(status.code(), Code::Unimplemented, "{status:?}");

    // And the API's port still refuses plaintext.
    let api = Endpoint::from_shared(format!("http://{}", server.addr)).expect("valid URI");
    health(api).await.assert_refused(
        "plaintext on the TLS port",
        &[
            "broken pipe",
            "connection reset",
            "Connection reset",
            "closed",
        ],
    );

    server.stop().await;
}
