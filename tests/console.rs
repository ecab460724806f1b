//! The web console (docs/console.md): the reads it is built on (claims cut
//! and counted, the audit chain through the API), its files and gRPC-Web on
//! the API's port, and then the console itself in Debian's Chromium,
//! signing in at a real OpenID Connect provider (console/e2e).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;

use fangpin_proto::tonic::Code;
use fangpin_proto::v1 as pb;
use fangpin_server::transport::auth::{Authenticator, TokenVerifier};
use fangpin_server::transport::console::SignIn;
use fangpin_tests::flow::{self, COUNTY, OTHER_VILLAGE, VILLAGE};
use fangpin_tests::{TestServer, date, request_id, resident_id};

const YEAR: i32 = 2024;

/// A household of `village` with a claim submitted through `channel` for
/// `kind` on `day` of March; returns the claim id.
async fn submitted(
    s: &TestServer,
    village: &str,
    sequence: u32,
    kind: pb::ReliefKind,
    channel: pb::Channel,
    day: u32,
) -> String {
    s.set_date(date(YEAR, 3, day));
    let household = s
        .enrollment()
        .enroll_household(pb::EnrollHouseholdRequest {
            request_id: request_id(),
            county_code: COUNTY.into(),
            policy_year: YEAR,
            village_code: village.into(),
            household_type: pb::HouseholdType::Marginal.into(),
            head: Some(pb::Person {
                id_number: resident_id("19700101", sequence),
                name: format!("户主{sequence}"),
                relation: String::new(),
            }),
            members: vec![],
            bank_account: format!("62170002{sequence:08}"),
        })
        .await
        .expect("enroll")
        .into_inner()
        .household_id;
    s.claims()
        .submit_claim(pb::SubmitClaimRequest {
            request_id: request_id(),
            household_id: household,
            relief_kind: kind.into(),
            channel: channel.into(),
            event_date: format!("{YEAR}-02-01"),
            event_reference: format!("event-{sequence}"),
            claimed_cost_yuan: "5000.00".into(),
            description: String::new(),
            submitted_by: "village".into(),
        })
        .await
        .expect("submit")
        .into_inner()
        .claim
        .expect("claim")
        .claim_id
}

async fn listed(s: &TestServer, request: pb::ListClaimsRequest) -> Vec<String> {
    let mut ids: Vec<String> = s
        .claims()
        .list_claims(pb::ListClaimsRequest {
            county_code: COUNTY.into(),
            ..request
        })
        .await
        .expect("list")
        .into_inner()
        .claims
        .into_iter()
        .map(|c| c.claim_id)
        .collect();
    ids.sort();
    ids
}

fn sorted(mut ids: Vec<&String>) -> Vec<String> {
    ids.sort();
    ids.into_iter().cloned().collect()
}

#[tokio::test]
async fn claims_are_listed_by_every_cut_and_counted_by_state() {
    let s = TestServer::start(date(YEAR, 3, 1)).await;
    flow::funded_county(&s, YEAR, "1000000.00").await;
    // Two filed illness referrals (one in each village, intake 1 March),
    // and two village applications in VILLAGE on 5 and 9 March.
    let (filed_home, _) = flow::filed_claim(&s, YEAR, VILLAGE, 1).await;
    let (filed_other, _) = flow::filed_claim(&s, YEAR, OTHER_VILLAGE, 2).await;
    let schooling = submitted(
        &s,
        VILLAGE,
        3,
        pb::ReliefKind::Schooling,
        pb::Channel::VillageApplication,
        5,
    )
    .await;
    let accident = submitted(
        &s,
        VILLAGE,
        4,
        pb::ReliefKind::Accident,
        pb::Channel::VillageApplication,
        9,
    )
    .await;

    let all = listed(&s, pb::ListClaimsRequest::default()).await;
    assert_eq!(all.len(), 4);
    let township = &VILLAGE[..9];
    assert_eq!(
        listed(
            &s,
            pb::ListClaimsRequest {
                township_code: township.into(),
                ..Default::default()
            }
        )
        .await,
        sorted(vec![&filed_home, &schooling, &accident])
    );
    assert_eq!(
        listed(
            &s,
            pb::ListClaimsRequest {
                village_code: OTHER_VILLAGE.into(),
                ..Default::default()
            }
        )
        .await,
        sorted(vec![&filed_other])
    );
    assert_eq!(
        listed(
            &s,
            pb::ListClaimsRequest {
                relief_kind: pb::ReliefKind::Schooling.into(),
                ..Default::default()
            }
        )
        .await,
        sorted(vec![&schooling])
    );
    assert_eq!(
        listed(
            &s,
            pb::ListClaimsRequest {
                channel: pb::Channel::DepartmentReferral.into(),
                ..Default::default()
            }
        )
        .await,
        sorted(vec![&filed_home, &filed_other])
    );
    // Both ends inclusive.
    assert_eq!(
        listed(
            &s,
            pb::ListClaimsRequest {
                intake_from: format!("{YEAR}-03-05"),
                intake_to: format!("{YEAR}-03-09"),
                ..Default::default()
            }
        )
        .await,
        sorted(vec![&schooling, &accident])
    );
    // The cuts combine: filed and in VILLAGE's township.
    assert_eq!(
        listed(
            &s,
            pb::ListClaimsRequest {
                state: pb::ClaimState::Filed.into(),
                township_code: township.into(),
                ..Default::default()
            }
        )
        .await,
        sorted(vec![&filed_home])
    );
    // Paging under a cut keeps to it.
    let first = s
        .claims()
        .list_claims(pb::ListClaimsRequest {
            county_code: COUNTY.into(),
            township_code: township.into(),
            page_size: 2,
            ..Default::default()
        })
        .await
        .expect("page 1")
        .into_inner();
    let second = s
        .claims()
        .list_claims(pb::ListClaimsRequest {
            county_code: COUNTY.into(),
            township_code: township.into(),
            page_size: 2,
            page_token: first.next_page_token.clone(),
            ..Default::default()
        })
        .await
        .expect("page 2")
        .into_inner();
    assert_eq!(first.claims.len() + second.claims.len(), 3);
    assert!(second.next_page_token.is_empty());

    // Bad cuts are refused by field, and nothing is listed.
    for (request, field) in [
        (
            pb::ListClaimsRequest {
                township_code: "410102001".into(),
                ..Default::default()
            },
            "township_code",
        ),
        (
            pb::ListClaimsRequest {
                township_code: township.into(),
                village_code: OTHER_VILLAGE.into(),
                ..Default::default()
            },
            "village_code",
        ),
        (
            pb::ListClaimsRequest {
                village_code: "12345".into(),
                ..Default::default()
            },
            "village_code",
        ),
        (
            pb::ListClaimsRequest {
                relief_kind: 99,
                ..Default::default()
            },
            "relief_kind",
        ),
        (
            pb::ListClaimsRequest {
                channel: 99,
                ..Default::default()
            },
            "channel",
        ),
        (
            pb::ListClaimsRequest {
                intake_from: "2024-3-1".into(),
                ..Default::default()
            },
            "intake_from",
        ),
        (
            pb::ListClaimsRequest {
                intake_from: format!("{YEAR}-03-09"),
                intake_to: format!("{YEAR}-03-05"),
                ..Default::default()
            },
            "intake_to",
        ),
    ] {
        let status = s
            .claims()
            .list_claims(pb::ListClaimsRequest {
                county_code: COUNTY.into(),
                ..request
            })
            .await
            .expect_err(field);
        assert_eq!(status.code(), Code::InvalidArgument, "{field}: {status:?}");
        assert!(status.message().contains(field), "{field}: {status:?}");
    }

    // The counts are of the same rows, grouped by state.
    let counts = s
        .claims()
        .count_claims(pb::CountClaimsRequest {
            county_code: COUNTY.into(),
        })
        .await
        .expect("count")
        .into_inner();
    assert_eq!(counts.total, 4);
    let of = |state: pb::ClaimState| {
        counts
            .counts
            .iter()
            .find(|c| c.state == state as i32)
            .map_or(0, |c| c.claims)
    };
    assert_eq!(of(pb::ClaimState::Filed), 2);
    assert_eq!(of(pb::ClaimState::Received), 2);
    assert!(counts.counts.windows(2).all(|w| w[0].state < w[1].state));
    let status = s
        .claims()
        .count_claims(pb::CountClaimsRequest {
            county_code: "13042".into(),
        })
        .await
        .expect_err("bad county");
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(status.message().contains("county_code"), "{status:?}");
    s.stop().await;
}

#[tokio::test]
async fn the_audit_chain_is_verified_and_listed_through_the_api() {
    let s = TestServer::start(date(YEAR, 3, 1)).await;
    let empty = s
        .audit()
        .verify_audit_chain(pb::VerifyAuditChainRequest {
            county_code: COUNTY.into(),
        })
        .await
        .expect("verify empty")
        .into_inner();
    assert!(empty.intact);
    assert_eq!((empty.entries_checked, empty.head_seq), (0, 0));
    assert!(empty.head_hash.is_empty());

    flow::funded_county(&s, YEAR, "1000000.00").await;
    let (claim, _) = flow::filed_claim(&s, YEAR, VILLAGE, 1).await;
    flow::pay(&s, &claim).await;
    let report = s
        .audit()
        .verify_audit_chain(pb::VerifyAuditChainRequest {
            county_code: COUNTY.into(),
        })
        .await
        .expect("verify")
        .into_inner();
    assert!(report.intact, "{report:?}");
    assert!(report.entries_checked >= 10, "{report:?}");
    assert_eq!(report.head_seq, report.entries_checked);
    assert_eq!(report.head_hash.len(), 64);
    assert!(report.verified_at.ends_with('Z'), "{report:?}");

    // Paged in order, each linked to the one before, ending at the head.
    let mut entries = Vec::new();
    let mut after_seq = 0;
    loop {
        let page = s
            .audit()
            .list_audit_entries(pb::ListAuditEntriesRequest {
                county_code: COUNTY.into(),
                after_seq,
                page_size: 3,
            })
            .await
            .expect("page")
            .into_inner();
        assert!(page.entries.len() <= 3);
        entries.extend(page.entries);
        if page.next_after_seq == 0 {
            break;
        }
        after_seq = page.next_after_seq;
    }
    assert_eq!(entries.len() as u64, report.entries_checked);
    for (i, pair) in entries.windows(2).enumerate() {
        assert_eq!(pair[0].seq, i as u64 + 1);
        assert_eq!(pair[1].prev_hash, pair[0].hash);
    }
    let last = entries.last().expect("entries");
    assert_eq!((last.seq, &last.hash), (report.head_seq, &report.head_hash));
    assert!(
        entries
            .iter()
            .any(|e| e.rpc == "/fangpin.v1.PayoutService/PayClaim" && e.object.ends_with(&claim)),
        "the payout is on the chain"
    );

    let status = s
        .audit()
        .list_audit_entries(pb::ListAuditEntriesRequest {
            county_code: COUNTY.into(),
            after_seq: 0,
            page_size: 1001,
        })
        .await
        .expect_err("page too large");
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(status.message().contains("page_size"), "{status:?}");
    s.stop().await;
}

/// One HTTP/1.1 exchange on a new connection, as a browser makes it:
/// the status line, the headers (names in lower case) and the body.
fn http1(addr: std::net::SocketAddr, request: &[u8]) -> (String, Vec<(String, String)>, Vec<u8>) {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream.write_all(request).expect("send");
    let mut response = Vec::new();
    stream.read_to_end(&mut response).expect("read");
    let split = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("end of headers");
    let head = String::from_utf8(response[..split].to_vec()).expect("headers are text");
    let mut lines = head.split("\r\n");
    let status = lines.next().expect("status line").to_string();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    (status, headers, response[split + 4..].to_vec())
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

#[tokio::test]
async fn the_console_is_served_beside_the_api_and_the_browser_speaks_grpc_web() {
    let s = TestServer::start(date(YEAR, 3, 1)).await;
    let addr = s.addr;
    tokio::task::spawn_blocking(move || {
        let get = |path: &str| {
            http1(
                addr,
                format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes(),
            )
        };
        let (status, headers, _) = get("/");
        assert!(status.contains(" 303 "), "{status}");
        assert_eq!(header(&headers, "location"), Some("/console/"));

        // The sign-in callback lands on the page with its query.
        let (status, headers, body) = get("/console/?code=abc&state=xyz");
        assert!(status.contains(" 200 "), "{status}");
        assert_eq!(
            header(&headers, "content-type"),
            Some("text/html; charset=utf-8")
        );
        let csp = header(&headers, "content-security-policy").expect("CSP");
        assert!(csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"));
        assert_eq!(header(&headers, "referrer-policy"), Some("no-referrer"));
        assert!(String::from_utf8_lossy(&body).contains("lang=\"zh-CN\""));

        let (status, _, body) = get("/console/app.js");
        assert!(status.contains(" 200 "), "{status}");
        assert!(body.len() > 10_000, "the bundle, not a stub");
        let (status, _, body) = get("/console/config.json");
        assert!(status.contains(" 200 "), "{status}");
        let config: serde_json::Value = serde_json::from_slice(&body).expect("JSON");
        assert_eq!(config["auth"], "development");
        let (status, _, _) = get("/console/secrets.txt");
        assert!(status.contains(" 404 "), "{status}");

        // A gRPC-Web call over HTTP/1.1: one empty message frame in, the
        // answer's frame and then the trailers frame out.
        let frame = [0u8, 0, 0, 0, 0];
        let mut request = b"POST /fangpin.v1.ServiceInfoService/GetServiceInfo HTTP/1.1\r\n\
              Host: x\r\nConnection: close\r\ncontent-type: application/grpc-web+proto\r\n\
              x-grpc-web: 1\r\ncontent-length: 5\r\n\r\n"
            .to_vec();
        request.extend_from_slice(&frame);
        let (status, headers, body) = http1(addr, &request);
        assert!(status.contains(" 200 "), "{status}");
        assert_eq!(
            header(&headers, "content-type"),
            Some("application/grpc-web+proto")
        );
        let body = dechunk(&headers, body);
        assert_eq!(body[0], 0, "a message frame first");
        let len = u32::from_be_bytes(body[1..5].try_into().expect("4 bytes")) as usize;
        let info = <pb::ServiceInfo as fangpin_proto::prost::Message>::decode(&body[5..5 + len])
            .expect("decode");
        assert_eq!(info.today, format!("{YEAR}-03-01"));
        let trailers = &body[5 + len..];
        assert_eq!(trailers[0], 0x80, "then the trailers frame");
        assert!(String::from_utf8_lossy(&trailers[5..]).contains("grpc-status:0"));
    })
    .await
    .expect("HTTP checks");
    s.stop().await;
}

/// The body of a `Transfer-Encoding: chunked` response, or `body` as it is.
fn dechunk(headers: &[(String, String)], body: Vec<u8>) -> Vec<u8> {
    if header(headers, "transfer-encoding") != Some("chunked") {
        return body;
    }
    let mut out = Vec::new();
    let mut rest = &body[..];
    loop {
        let line_end = rest.windows(2).position(|w| w == b"\r\n").expect("size");
        let size = usize::from_str_radix(
            std::str::from_utf8(&rest[..line_end]).expect("hex").trim(),
            16,
        )
        .expect("chunk size");
        rest = &rest[line_end + 2..];
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&rest[..size]);
        rest = &rest[size + 2..];
    }
}

// ---- In a real browser ------------------------------------------------------

fn console_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../console")
}

/// What the browser test needs, or why it cannot run here. CI sets
/// FANGPIN_REQUIRE_BROWSER=1, so there a missing piece fails the test.
fn browser_prerequisites() -> Result<PathBuf, String> {
    let chromium =
        PathBuf::from(std::env::var("FANGPIN_CHROMIUM").unwrap_or("/usr/bin/chromium".into()));
    if !chromium.is_file() {
        return Err(format!("no Chromium at {}", chromium.display()));
    }
    for needed in ["node_modules/.bin/playwright", "node_modules/oidc-provider"] {
        if !console_dir().join(needed).exists() {
            return Err(format!(
                "console/{needed} is missing (PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --prefix console)"
            ));
        }
    }
    let openpyxl = Command::new("python3")
        .args(["-c", "import openpyxl"])
        .status();
    if !openpyxl.is_ok_and(|s| s.success()) {
        return Err("python3 cannot import openpyxl (pip install openpyxl)".into());
    }
    Ok(chromium)
}

/// The OpenID Connect provider of console/e2e/oidc-provider.mjs, killed
/// when dropped.
struct Provider(Child);

impl Drop for Provider {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn a_county_officer_and_a_finance_officer_use_the_console_in_chromium() {
    let chromium = match browser_prerequisites() {
        Ok(chromium) => chromium,
        Err(why) if std::env::var("FANGPIN_REQUIRE_BROWSER").as_deref() != Ok("1") => {
            eprintln!("SKIPPED: the browser test cannot run here: {why}");
            return;
        }
        Err(why) => panic!("FANGPIN_REQUIRE_BROWSER=1 but {why}"),
    };

    // The data, written in development mode: a funded county with a paid
    // claim and a few more in other states.
    let mut s = TestServer::start(date(YEAR, 3, 1)).await;
    flow::funded_county(&s, YEAR, "1000000.00").await;
    let (paid, _) = flow::filed_claim(&s, YEAR, VILLAGE, 1).await;
    let payout = flow::pay(&s, &paid).await;
    let assessed = s
        .claims()
        .get_claim(pb::GetClaimRequest {
            claim_id: paid.clone(),
        })
        .await
        .expect("claim")
        .into_inner()
        .claim
        .expect("claim")
        .assessment
        .expect("assessed")
        .amount_yuan;
    assert!(!payout.claim.expect("paid claim").payout_yuan.is_empty());
    flow::filed_claim(&s, YEAR, OTHER_VILLAGE, 2).await;
    submitted(
        &s,
        VILLAGE,
        3,
        pb::ReliefKind::Schooling,
        pb::Channel::VillageApplication,
        12,
    )
    .await;

    // The server's address first, so the provider knows the console's
    // redirect URI; then the provider's keys, so the server verifies its
    // tokens.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let origin = format!("http://{}", listener.local_addr().expect("address"));
    let dir = tempfile::tempdir().expect("temporary directory");
    let jwks_path = dir.path().join("jwks.json");
    let accounts = serde_json::json!({
        "county-officer": {"role": "county_office", "counties": [COUNTY]},
        "finance-officer": {"role": "finance_bureau", "counties": [COUNTY]},
        "village-1": {"role": "village_committee", "counties": [COUNTY], "village": VILLAGE},
    });
    let mut child = Command::new("node")
        .current_dir(console_dir())
        .arg("e2e/oidc-provider.mjs")
        .args(["--console-origin", &origin, "--audience", "fangpin"])
        .arg("--accounts")
        .arg(accounts.to_string())
        .arg("--jwks-out")
        .arg(&jwks_path)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start the OpenID Connect provider (node)");
    let stdout = child.stdout.take().expect("stdout");
    let provider = Provider(child);
    let issuer = tokio::task::spawn_blocking(move || {
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("provider's first line");
        line
    })
    .await
    .expect("read");
    let issuer = issuer
        .trim()
        .strip_prefix("issuer ")
        .unwrap_or_else(|| panic!("provider said {issuer:?}"))
        .to_string();
    let jwks = std::fs::read_to_string(&jwks_path).expect("the provider's JWK set");
    let verifier = TokenVerifier::from_jwks(&jwks, &issuer, "fangpin", 60).expect("verifier");
    let mut options = s.restart_options();
    options.authenticator = Arc::new(Authenticator::Tokens(verifier));
    options.console = SignIn::Oidc {
        issuer: issuer.clone(),
        client_id: "fangpin-console".into(),
        scope: "openid fangpin".into(),
        resource: "fangpin".into(),
    };
    s.restart_on(Some(listener), options).await;

    let screenshots = std::env::var("FANGPIN_SCREENSHOT_DIR").ok();
    let console_url = format!("{origin}/console/");
    let status = tokio::task::spawn_blocking(move || {
        let mut run = Command::new(console_dir().join("node_modules/.bin/playwright"));
        run.current_dir(console_dir())
            .arg("test")
            .env("FANGPIN_CONSOLE_URL", &console_url)
            .env("FANGPIN_CHROMIUM", &chromium)
            .env("FANGPIN_E2E_COUNTY", COUNTY)
            .env("FANGPIN_E2E_CLAIM_ID", &paid)
            .env("FANGPIN_E2E_ASSESSED_YUAN", &assessed)
            .env("FANGPIN_E2E_POLICY_YEAR", YEAR.to_string())
            .env("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1");
        if let Some(dir) = &screenshots {
            run.env("FANGPIN_SCREENSHOT_DIR", dir);
        }
        run.status()
    })
    .await
    .expect("run")
    .expect("start playwright");
    drop(provider);
    assert!(status.success(), "the browser tests failed (above)");
    s.stop().await;
}
