//! Who may do what (docs/access.md), through the real server with bearer
//! tokens: the whole role × RPC matrix with in-scope tokens, the same matrix
//! with tokens of another county, village, township or insurer, and the
//! token checks themselves. Runs on SQLite and, with
//! FANGPIN_TEST_DATABASE_URL, on PostgreSQL.
//!
//! Calls go through a raw gRPC client (`RawCodec`), so one loop can walk
//! every method of `access::MATRIX` by its path.

use std::str::FromStr;
use std::sync::Arc;

use bytes::{Buf, BufMut};
use fangpin_domain::access::{Access, MATRIX, Role, Target};
use fangpin_proto::prost::Message;
use fangpin_proto::tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use fangpin_proto::tonic::codegen::http::uri::PathAndQuery;
use fangpin_proto::tonic::metadata::MetadataValue;
use fangpin_proto::tonic::{Code, Request, Status};
use fangpin_proto::v1 as pb;
use fangpin_server::ServerOptions;
use fangpin_server::transport::auth::{
    Authenticator, TokenClaims, TokenVerifier, ed25519_jwks, generate_ed25519, sign_ed25519,
};
use fangpin_tests::flow::{COUNTY, INSURER, OTHER_VILLAGE, VILLAGE};
use fangpin_tests::{TestServer, date, request_id, resident_id};

const ISSUER: &str = "https://sso.test.example";
const AUDIENCE: &str = "fangpin";
const KID: &str = "test-1";
/// A second county, with its own household and claim: the objects a token
/// of `COUNTY` must not reach.
const OTHER_COUNTY: &str = "130427";
const OTHER_COUNTY_VILLAGE: &str = "130427100201";
const OTHER_INSURER: &str = "另一家保险公司";
/// A county nobody registered: what "not there" looks like.
const NO_COUNTY: &str = "130428";

/// Sends and receives encoded messages as they are, so one client can call
/// any method by its path.
#[derive(Clone, Copy, Default)]
struct RawCodec;

struct Raw;

impl Encoder for Raw {
    type Item = Vec<u8>;
    type Error = Status;
    fn encode(&mut self, item: Vec<u8>, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put_slice(&item);
        Ok(())
    }
}

impl Decoder for Raw {
    type Item = Vec<u8>;
    type Error = Status;
    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Vec<u8>>, Status> {
        let bytes = src.copy_to_bytes(src.remaining());
        Ok(Some(bytes.to_vec()))
    }
}

impl Codec for RawCodec {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = Raw;
    type Decoder = Raw;
    fn encoder(&mut self) -> Raw {
        Raw
    }
    fn decoder(&mut self) -> Raw {
        Raw
    }
}

/// Where a token's scope lies relative to the fixture's objects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Place {
    /// Covers `COUNTY`, `VILLAGE` and the county's insurer.
    Home,
    /// Covers none of them: another county, village, township or insurer.
    Away,
}

/// The ids of the fixture's objects.
#[derive(Clone, Debug, Default)]
struct Ids {
    household: String,
    claim: String,
    import: String,
    roster: String,
    run: String,
    other_household: String,
    other_claim: String,
    evidence: String,
}

struct World {
    s: TestServer,
    signing_key: Arc<Vec<u8>>,
    ids: Ids,
}

fn subject(role: Role) -> String {
    role.as_str().to_string()
}

impl World {
    async fn start() -> World {
        let (der, public) = generate_ed25519().expect("signing key");
        let verifier = TokenVerifier::from_jwks(&ed25519_jwks(&public, KID), ISSUER, AUDIENCE, 60)
            .expect("verifier");
        let options = ServerOptions {
            authenticator: Arc::new(Authenticator::Tokens(verifier)),
            ..ServerOptions::default()
        };
        let s = TestServer::start_with(date(2024, 3, 1), options).await;
        let mut world = World {
            s,
            signing_key: Arc::new(der),
            ids: Ids::default(),
        };
        world.build_fixture().await;
        world
    }

    fn claims(&self, role: Role, place: Place) -> TokenClaims {
        let mut claims = TokenClaims::new(
            &subject(role),
            role,
            ISSUER,
            AUDIENCE,
            TokenClaims::now(),
            3600,
        );
        let home = place == Place::Home;
        match role {
            Role::Surveyor => {
                // Away: the county's own list, but another insurer. The
                // county check alone would let it through.
                claims.counties = vec![COUNTY.into()];
                claims.insurer = Some(if home { INSURER } else { OTHER_INSURER }.into());
            }
            Role::VillageCommittee => {
                claims.village = Some(if home { VILLAGE } else { OTHER_VILLAGE }.into());
            }
            Role::Township => {
                let village = if home { VILLAGE } else { OTHER_VILLAGE };
                claims.township = Some(village[..9].into());
            }
            _ => claims.counties = vec![if home { COUNTY } else { OTHER_COUNTY }.into()],
        }
        claims
    }

    fn sign(&self, claims: &TokenClaims) -> String {
        sign_ed25519(claims, &self.signing_key, KID).expect("sign")
    }

    fn token(&self, role: Role, place: Place) -> String {
        self.sign(&self.claims(role, place))
    }

    /// Calls `method` with `messages` (one, or a header and chunks for a
    /// client stream) and the bearer `token`.
    async fn call(
        &self,
        method: &str,
        token: Option<&str>,
        messages: Vec<Vec<u8>>,
    ) -> Result<Vec<u8>, Status> {
        let mut grpc = fangpin_proto::tonic::client::Grpc::new(self.s.channel.clone());
        grpc.ready()
            .await
            .map_err(|e| Status::unavailable(e.to_string()))?;
        let path = PathAndQuery::from_str(method).expect("a path");
        fn bearer<T>(mut request: Request<T>, token: Option<&str>) -> Request<T> {
            if let Some(token) = token {
                let value = MetadataValue::try_from(format!("Bearer {token}")).expect("ascii");
                request.metadata_mut().insert("authorization", value);
            }
            request
        }
        if method.ends_with("/ImportFeed")
            || method.ends_with("/UploadEvidence")
            || method.ends_with("/ImportRoster")
        {
            let stream = tokio_stream::iter(messages);
            grpc.client_streaming(bearer(Request::new(stream), token), path, RawCodec)
                .await
                .map(|r| r.into_inner())
        } else if method.ends_with("/DownloadEvidence") {
            // The answer's messages, concatenated: enough to see what leaked.
            let [message]: [Vec<u8>; 1] = messages.try_into().expect("one message");
            let mut stream = grpc
                .server_streaming(bearer(Request::new(message), token), path, RawCodec)
                .await?
                .into_inner();
            let mut out = Vec::new();
            while let Some(part) = stream.message().await? {
                out.extend_from_slice(&part);
            }
            Ok(out)
        } else {
            let [message]: [Vec<u8>; 1] = messages.try_into().expect("one message");
            grpc.unary(bearer(Request::new(message), token), path, RawCodec)
                .await
                .map(|r| r.into_inner())
        }
    }

    /// `call` as `role` at `place`, expecting success.
    async fn must<M: Message + Default>(
        &self,
        role: Role,
        place: Place,
        method: &str,
        request: impl Message,
    ) -> M {
        let token = self.token(role, place);
        let bytes = self
            .call(method, Some(&token), vec![request.encode_to_vec()])
            .await
            .unwrap_or_else(|e| panic!("{method} as {role}: {e:?}"));
        M::decode(bytes.as_slice()).expect("response decodes")
    }

    /// Two counties, each with a policy, money, a household and a claim; in
    /// `COUNTY` the claim is filed, a feed is imported and screening has run.
    /// Every step is made by the role the matrix gives it.
    async fn build_fixture(&mut self) {
        use Role::*;
        for (place, county, insurer) in [
            (Place::Home, COUNTY, INSURER),
            (Place::Away, OTHER_COUNTY, INSURER),
        ] {
            let _: pb::CountyResponse = self
                .must(
                    CountyOffice,
                    place,
                    "/fangpin.v1.EnrollmentService/RegisterCounty",
                    pb::RegisterCountyRequest {
                        request_id: request_id(),
                        county_code: county.into(),
                        name: format!("县{county}"),
                        rural_population: 100_000,
                        insurer: insurer.into(),
                    },
                )
                .await;
            let code = fangpin_domain::identity::CountyCode::parse(county).expect("county");
            let policy = fangpin_server::write_path::convert::policy_to_pb(
                &fangpin_domain::policy::Policy::example(code, 2024),
                0,
                false,
            );
            let _: pb::PolicyResponse = self
                .must(
                    CountyOffice,
                    place,
                    "/fangpin.v1.PolicyService/PutPolicy",
                    pb::PutPolicyRequest {
                        request_id: request_id(),
                        policy: Some(policy),
                    },
                )
                .await;
            let _: pb::PostingResponse = self
                .must(
                    FinanceBureau,
                    place,
                    "/fangpin.v1.EnrollmentService/RecordPremium",
                    pb::RecordPremiumRequest {
                        request_id: request_id(),
                        county_code: county.into(),
                        policy_year: 2024,
                        amount_yuan: "500000.00".into(),
                        reference: "premium".into(),
                    },
                )
                .await;
            let _: pb::CountyOffice = self
                .must(
                    CountyOffice,
                    place,
                    "/fangpin.v1.EnrollmentService/SetCountyOffice",
                    office_request(county),
                )
                .await;
        }
        let household: pb::HouseholdResponse = self
            .must(
                CountyOffice,
                Place::Home,
                ENROLL,
                enroll(COUNTY, VILLAGE, 1),
            )
            .await;
        self.ids.household = household.household_id;
        // The other county's committee is a village there; `Away` for a
        // village committee means another village of COUNTY, so this
        // household is enrolled by its own county office with a home-style
        // token of that county.
        let other: pb::HouseholdResponse = self
            .must(
                CountyOffice,
                Place::Away,
                ENROLL,
                enroll(OTHER_COUNTY, OTHER_COUNTY_VILLAGE, 2),
            )
            .await;
        self.ids.other_household = other.household_id;
        let claim: pb::ClaimResponse = self
            .must(
                VillageCommittee,
                Place::Home,
                "/fangpin.v1.ClaimService/SubmitClaim",
                submit(&self.ids.household, Role::VillageCommittee),
            )
            .await;
        self.ids.claim = claim.claim.expect("claim").claim_id;
        let other: pb::ClaimResponse = self
            .must(
                CountyOffice,
                Place::Away,
                "/fangpin.v1.ClaimService/SubmitClaim",
                submit(&self.ids.other_household, Role::CountyOffice),
            )
            .await;
        self.ids.other_claim = other.claim.expect("claim").claim_id;

        let claim_id = self.ids.claim.clone();
        let steps: Vec<(Role, &str, Vec<u8>)> = vec![
            (
                CountyOffice,
                "/fangpin.v1.SurveyService/AssignSurvey",
                assign(&claim_id, CountyOffice).encode_to_vec(),
            ),
            (
                Surveyor,
                "/fangpin.v1.SurveyService/RecordFindings",
                findings(&claim_id).encode_to_vec(),
            ),
            (
                Surveyor,
                "/fangpin.v1.SurveyService/Recommend",
                recommend(&claim_id).encode_to_vec(),
            ),
            (
                VillageCommittee,
                "/fangpin.v1.PublicityService/OpenPublicity",
                pb::OpenPublicityRequest {
                    request_id: request_id(),
                    claim_id: claim_id.clone(),
                    opened_by: subject(VillageCommittee),
                }
                .encode_to_vec(),
            ),
        ];
        for (role, method, message) in steps {
            let token = self.token(role, Place::Home);
            self.call(method, Some(&token), vec![message])
                .await
                .unwrap_or_else(|e| panic!("{method}: {e:?}"));
        }
        let token = self.token(Surveyor, Place::Home);
        let uploaded = self
            .call(
                "/fangpin.v1.EvidenceService/UploadEvidence",
                Some(&token),
                upload_messages(&claim_id),
            )
            .await
            .expect("evidence");
        self.ids.evidence = pb::Evidence::decode(uploaded.as_slice())
            .expect("decodes")
            .evidence_id;
        self.s.set_date(date(2024, 3, 15));
        for (role, method, message) in [
            (
                VillageCommittee,
                "/fangpin.v1.PublicityService/ClosePublicity",
                pb::ClosePublicityRequest {
                    request_id: request_id(),
                    claim_id: claim_id.clone(),
                    closed_by: subject(VillageCommittee),
                }
                .encode_to_vec(),
            ),
            (
                CountyOffice,
                "/fangpin.v1.PayoutService/FileClaim",
                file(&claim_id).encode_to_vec(),
            ),
        ] {
            let token = self.token(role, Place::Home);
            self.call(method, Some(&token), vec![message])
                .await
                .unwrap_or_else(|e| panic!("{method}: {e:?}"));
        }
        let token = self.token(DepartmentFeeder, Place::Home);
        let import = self
            .call(IMPORT, Some(&token), import_messages(COUNTY))
            .await
            .expect("import");
        self.ids.import = pb::FeedImport::decode(import.as_slice())
            .expect("decodes")
            .import_id;
        let token = self.token(CountyOffice, Place::Home);
        let roster = self
            .call(
                "/fangpin.v1.EnrollmentService/ImportRoster",
                Some(&token),
                roster_messages(COUNTY),
            )
            .await
            .expect("roster");
        self.ids.roster = pb::RosterImport::decode(roster.as_slice())
            .expect("decodes")
            .import_id;
        let run: pb::ScreeningRun = self
            .must(
                CountyOffice,
                Place::Home,
                "/fangpin.v1.ScreeningService/RunScreening",
                pb::RunScreeningRequest {
                    request_id: request_id(),
                    county_code: COUNTY.into(),
                    as_of: "2024-03-15".into(),
                },
            )
            .await;
        self.ids.run = run.run_id;
    }
}

const ENROLL: &str = "/fangpin.v1.EnrollmentService/EnrollHousehold";
const IMPORT: &str = "/fangpin.v1.ScreeningService/ImportFeed";

fn enroll(county: &str, village: &str, sequence: u32) -> pb::EnrollHouseholdRequest {
    let first17 = format!("{county}19650101{sequence:03}");
    let id = fangpin_domain::identity::ResidentId::from_first17(&first17).expect("valid");
    pb::EnrollHouseholdRequest {
        request_id: request_id(),
        county_code: county.into(),
        policy_year: 2024,
        village_code: village.into(),
        household_type: pb::HouseholdType::UnstableEscaped.into(),
        head: Some(pb::Person {
            id_number: id.as_str().to_string(),
            name: format!("户主{sequence}"),
            relation: String::new(),
        }),
        members: vec![],
        bank_account: format!("62170001{sequence:08}"),
    }
}

/// The intake channel each role submits through (`access::may_submit_via`).
fn submit(household: &str, role: Role) -> pb::SubmitClaimRequest {
    let channel = match role {
        Role::VillageCommittee => pb::Channel::VillageApplication,
        Role::Township => pb::Channel::Emergency,
        _ => pb::Channel::DepartmentReferral,
    };
    pb::SubmitClaimRequest {
        request_id: request_id(),
        household_id: household.into(),
        relief_kind: pb::ReliefKind::Illness.into(),
        channel: channel.into(),
        event_date: "2024-02-01".into(),
        event_reference: "admission".into(),
        claimed_cost_yuan: "100000.00".into(),
        description: String::new(),
        submitted_by: subject(role),
    }
}

fn assign(claim: &str, by: Role) -> pb::AssignSurveyRequest {
    pb::AssignSurveyRequest {
        request_id: request_id(),
        claim_id: claim.into(),
        surveyor: subject(Role::Surveyor),
        insurer: INSURER.into(),
        assigned_by: subject(by),
    }
}

fn findings(claim: &str) -> pb::RecordFindingsRequest {
    pb::RecordFindingsRequest {
        request_id: request_id(),
        claim_id: claim.into(),
        surveyor: subject(Role::Surveyor),
        verified_income_per_capita_yuan: "3000.00".into(),
        verified_cost_yuan: "100000.00".into(),
        notes: String::new(),
        evidence_refs: vec![],
        prior_incomes_per_capita_yuan: Vec::new(),
        income_evidence_refs: Vec::new(),
    }
}

fn recommend(claim: &str) -> pb::RecommendRequest {
    pb::RecommendRequest {
        request_id: request_id(),
        claim_id: claim.into(),
        surveyor: subject(Role::Surveyor),
        approve: true,
        reason: "eligible".into(),
    }
}

fn file(claim: &str) -> pb::FileClaimRequest {
    pb::FileClaimRequest {
        request_id: request_id(),
        claim_id: claim.into(),
        filed_by: subject(Role::CountyOffice),
        cross_check_note: "ok".into(),
    }
}

/// A small PNG (its signature and a few bytes) uploaded to `claim`.
fn office_request(county: &str) -> pb::SetCountyOfficeRequest {
    pb::SetCountyOfficeRequest {
        request_id: request_id(),
        county_code: county.into(),
        office_name: "县防贫工作领导小组办公室".into(),
        address: "县政府大院3号楼".into(),
        phone: "0310-3812345".into(),
    }
}

fn upload_messages(claim: &str) -> Vec<Vec<u8>> {
    use sha2::{Digest, Sha256};
    let mut file = vec![0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A];
    file.extend_from_slice(format!("photo of the home, claim {claim}").as_bytes());
    use pb::upload_evidence_request::Part;
    vec![
        pb::UploadEvidenceRequest {
            part: Some(Part::Header(pb::EvidenceHeader {
                request_id: request_id(),
                claim_id: claim.into(),
                file_name: "home.png".into(),
                sha256: hex::encode(Sha256::digest(&file)),
                size_bytes: file.len() as u64,
                description: "入户照片".into(),
                uploaded_by: subject(Role::Surveyor),
            })),
        }
        .encode_to_vec(),
        pb::UploadEvidenceRequest {
            part: Some(Part::Data(file.into())),
        }
        .encode_to_vec(),
    ]
}

/// A one-row medical feed for the fixture's household head.
fn import_messages(county: &str) -> Vec<Vec<u8>> {
    use sha2::{Digest, Sha256};
    let head = resident_id("19650101", 1);
    let file = format!(
        "id_number,settlement_date,inpatient,total_cost,reimbursed,out_of_pocket\n\
         {head},2024-02-10,1,8000.00,5000.00,3000.00\n"
    )
    .into_bytes();
    let header = pb::FeedHeader {
        request_id: request_id(),
        county_code: county.into(),
        policy_year: 2024,
        kind: pb::FeedKind::Medical.into(),
        encoding: pb::FeedEncoding::Utf8.into(),
        file_name: "medical.csv".into(),
        sha256: hex::encode(Sha256::digest(&file)),
        size_bytes: file.len() as u64,
    };
    use pb::import_feed_request::Part;
    vec![
        pb::ImportFeedRequest {
            part: Some(Part::Header(header)),
        }
        .encode_to_vec(),
        pb::ImportFeedRequest {
            part: Some(Part::Data(file.into())),
        }
        .encode_to_vec(),
    ]
}

/// A one-household roster for `county`, of a person nobody enrolled.
fn roster_messages(county: &str) -> Vec<Vec<u8>> {
    use sha2::{Digest, Sha256};
    let head = resident_id("19770707", 7);
    let file = format!(
        "户编号,村代码,户类型,姓名,证件号码,与户主关系,一卡通账号\n\
         R1,{county}100201,marginal,罗一,{head},户主,6217000099990001\n"
    )
    .into_bytes();
    let header = pb::RosterHeader {
        request_id: request_id(),
        county_code: county.into(),
        policy_year: 2024,
        format: pb::RosterFormat::CsvUtf8.into(),
        file_name: "roster.csv".into(),
        sha256: hex::encode(Sha256::digest(&file)),
        size_bytes: file.len() as u64,
    };
    use pb::import_roster_request::Part;
    vec![
        pb::ImportRosterRequest {
            part: Some(Part::Header(header)),
        }
        .encode_to_vec(),
        pb::ImportRosterRequest {
            part: Some(Part::Data(file.into())),
        }
        .encode_to_vec(),
    ]
}

/// A request for `method`, as `role` would make it, about the objects of
/// `ids`: the fixture's own (`COUNTY`) unless `county`, `claim` and the rest
/// name others.
struct Target_<'a> {
    county: &'a str,
    household: &'a str,
    claim: &'a str,
    import: &'a str,
    roster: &'a str,
    run: &'a str,
    evidence: &'a str,
    village: &'a str,
}

fn request_for(method: &str, role: Role, t: &Target_<'_>) -> Vec<Vec<u8>> {
    let name = method.rsplit('/').next().expect("a method name");
    let county = t.county.to_string();
    let pool = || pb::PoolRequest {
        county_code: county.clone(),
        policy_year: 2024,
    };
    let sub = subject(role);
    let message = match name {
        "PutPolicy" => {
            let code = fangpin_domain::identity::CountyCode::parse(t.county).expect("county");
            pb::PutPolicyRequest {
                request_id: request_id(),
                policy: Some(fangpin_server::write_path::convert::policy_to_pb(
                    &fangpin_domain::policy::Policy::example(code, 2025),
                    0,
                    false,
                )),
            }
            .encode_to_vec()
        }
        "GetPolicy" => pb::GetPolicyRequest {
            county_code: county.clone(),
            policy_year: 2024,
            version: 0,
        }
        .encode_to_vec(),
        "RegisterCounty" => pb::RegisterCountyRequest {
            request_id: request_id(),
            county_code: county.clone(),
            name: "again".into(),
            rural_population: 100_000,
            insurer: INSURER.into(),
        }
        .encode_to_vec(),
        "GetCounty" => pb::GetCountyRequest {
            county_code: county.clone(),
            policy_year: 2024,
        }
        .encode_to_vec(),
        "EnrollHousehold" => {
            let mut request = enroll(t.county, t.village, 7);
            request.county_code = county.clone();
            request.encode_to_vec()
        }
        "GetHousehold" => pb::GetHouseholdRequest {
            household_id: t.household.into(),
        }
        .encode_to_vec(),
        "ResolveAdvanceReceivable" => pb::ResolveAdvanceReceivableRequest {
            request_id: request_id(),
            claim_id: t.claim.into(),
            resolution: pb::ReceivableResolution::WrittenOff.into(),
            note: "not to be recovered from a family in crisis".into(),
            resolved_by: sub,
        }
        .encode_to_vec(),
        "GetServiceInfo" => pb::GetServiceInfoRequest {}.encode_to_vec(),
        "CorrectBankAccount" => pb::CorrectBankAccountRequest {
            request_id: request_id(),
            household_id: t.household.into(),
            bank_account: "6217000199990001".into(),
            reason: "the bank returned the transfer: account closed".into(),
            corrected_by: sub,
        }
        .encode_to_vec(),
        "RecordPremium" => pb::RecordPremiumRequest {
            request_id: request_id(),
            county_code: county.clone(),
            policy_year: 2024,
            amount_yuan: "1.00".into(),
            reference: "more premium".into(),
        }
        .encode_to_vec(),
        "SubmitClaim" => submit(t.household, role).encode_to_vec(),
        "GetClaim" | "GetClaimHistory" => pb::GetClaimRequest {
            claim_id: t.claim.into(),
        }
        .encode_to_vec(),
        "ListClaims" => pb::ListClaimsRequest {
            county_code: county.clone(),
            page_size: 100,
            ..Default::default()
        }
        .encode_to_vec(),
        "CountClaims" => pb::CountClaimsRequest {
            county_code: county.clone(),
        }
        .encode_to_vec(),
        "VerifyAuditChain" => pb::VerifyAuditChainRequest {
            county_code: county.clone(),
        }
        .encode_to_vec(),
        "ListAuditEntries" => pb::ListAuditEntriesRequest {
            county_code: county.clone(),
            after_seq: 0,
            page_size: 10,
        }
        .encode_to_vec(),
        "PayEmergencyAdvance" => pb::PayEmergencyAdvanceRequest {
            request_id: request_id(),
            claim_id: t.claim.into(),
            amount_yuan: "100.00".into(),
            approved_by: "township head".into(),
            reason: "emergency".into(),
        }
        .encode_to_vec(),
        "AssignSurvey" => assign(t.claim, role).encode_to_vec(),
        "RecordFindings" => findings(t.claim).encode_to_vec(),
        "Recommend" => recommend(t.claim).encode_to_vec(),
        "ListWorkQueue" => pb::ListWorkQueueRequest {
            surveyor: subject(Role::Surveyor),
            page_size: 100,
            page_token: String::new(),
        }
        .encode_to_vec(),
        "OpenPublicity" => pb::OpenPublicityRequest {
            request_id: request_id(),
            claim_id: t.claim.into(),
            opened_by: sub,
        }
        .encode_to_vec(),
        "ListNotices" => pb::ListNoticesRequest {
            village_code: t.village.into(),
        }
        .encode_to_vec(),
        "RaiseObjection" => pb::RaiseObjectionRequest {
            request_id: request_id(),
            claim_id: t.claim.into(),
            objector: "a villager".into(),
            reason: "the family owns a car".into(),
        }
        .encode_to_vec(),
        "ClosePublicity" => pb::ClosePublicityRequest {
            request_id: request_id(),
            claim_id: t.claim.into(),
            closed_by: sub,
        }
        .encode_to_vec(),
        "FileClaim" => {
            let mut request = file(t.claim);
            request.filed_by = sub;
            request.encode_to_vec()
        }
        "PayClaim" => pb::PayClaimRequest {
            request_id: request_id(),
            claim_id: t.claim.into(),
            paid_by: sub,
            bank_reference: "TX-1".into(),
        }
        .encode_to_vec(),
        "RecordPayoutFailure" => pb::RecordPayoutFailureRequest {
            request_id: request_id(),
            claim_id: t.claim.into(),
            recorded_by: sub,
            bank_reference: "TX-1".into(),
            reason: "account closed".into(),
        }
        .encode_to_vec(),
        "RetryPayout" => pb::RetryPayoutRequest {
            request_id: request_id(),
            claim_id: t.claim.into(),
            retried_by: sub,
            reason: "account corrected".into(),
        }
        .encode_to_vec(),
        "GetPoolBalance" | "GetReconciliation" | "GetYearStatus" => pool().encode_to_vec(),
        "ListTopUpFlags" => pb::ListTopUpFlagsRequest {
            county_code: county.clone(),
            policy_year: 2024,
            include_cleared: true,
        }
        .encode_to_vec(),
        "RecordTopUp" => pb::RecordTopUpRequest {
            request_id: request_id(),
            county_code: county.clone(),
            policy_year: 2024,
            amount_yuan: "1.00".into(),
            reference: "top-up".into(),
        }
        .encode_to_vec(),
        "ListEntries" => pb::ListEntriesRequest {
            county_code: county.clone(),
            policy_year: 2024,
            page_size: 100,
            page_token: String::new(),
        }
        .encode_to_vec(),
        "GetBalanceAsOf" => pb::BalanceAsOfRequest {
            county_code: county.clone(),
            policy_year: 2024,
            as_of: "2024-03-15".into(),
        }
        .encode_to_vec(),
        "CloseYear" => pb::CloseYearRequest {
            request_id: request_id(),
            county_code: county.clone(),
            policy_year: 2024,
            closed_by: sub,
        }
        .encode_to_vec(),
        "ReopenYear" => pb::ReopenYearRequest {
            request_id: request_id(),
            county_code: county.clone(),
            policy_year: 2024,
            reopened_by: sub,
            reason: "a late correction".into(),
        }
        .encode_to_vec(),
        "MatchBankStatement" => pb::MatchBankStatementRequest {
            county_code: county.clone(),
            policy_year: 2024,
            statement_csv: b"date,account,amount,reference\n".to_vec(),
        }
        .encode_to_vec(),
        "ImportFeed" => return import_messages(t.county),
        "ImportRoster" => return roster_messages(t.county),
        "GetRosterImport" => pb::GetRosterImportRequest {
            import_id: t.roster.into(),
        }
        .encode_to_vec(),
        "GetFeedImport" => pb::GetFeedImportRequest {
            import_id: t.import.into(),
        }
        .encode_to_vec(),
        "RunScreening" => pb::RunScreeningRequest {
            request_id: request_id(),
            county_code: county.clone(),
            as_of: "2024-03-15".into(),
        }
        .encode_to_vec(),
        "GetScreeningRun" => pb::GetScreeningRunRequest {
            run_id: t.run.into(),
        }
        .encode_to_vec(),
        "ListScreeningCandidates" => pb::ListScreeningCandidatesRequest {
            run_id: t.run.into(),
            page_size: 10,
            page_token: String::new(),
        }
        .encode_to_vec(),
        "CreateScreeningClaims" => pb::CreateScreeningClaimsRequest {
            request_id: request_id(),
            run_id: t.run.into(),
            submitted_by: sub,
        }
        .encode_to_vec(),
        "UploadEvidence" => {
            let mut messages = upload_messages(t.claim);
            if role != Role::Surveyor {
                // The acting person is the caller.
                let mut header =
                    pb::UploadEvidenceRequest::decode(messages[0].as_slice()).expect("decodes");
                if let Some(pb::upload_evidence_request::Part::Header(h)) = &mut header.part {
                    h.uploaded_by = sub.clone();
                }
                messages[0] = header.encode_to_vec();
            }
            return messages;
        }
        "ListEvidence" => pb::ListEvidenceRequest {
            claim_id: t.claim.into(),
        }
        .encode_to_vec(),
        "DownloadEvidence" => pb::DownloadEvidenceRequest {
            evidence_id: t.evidence.into(),
        }
        .encode_to_vec(),
        "ListObjections" => pb::ListObjectionsRequest {
            claim_id: t.claim.into(),
        }
        .encode_to_vec(),
        "RecordDeliberation" => pb::RecordDeliberationRequest {
            request_id: request_id(),
            claim_id: t.claim.into(),
            held_on: "2026-03-01".into(),
            members: 9,
            present: 9,
            in_favour: 9,
            minutes_evidence_id: t.evidence.into(),
            recorded_by: sub,
            note: String::new(),
        }
        .encode_to_vec(),
        "RecordTownshipReview" => pb::RecordTownshipReviewRequest {
            request_id: request_id(),
            claim_id: t.claim.into(),
            decision: pb::TownshipDecision::Approved.into(),
            reason: String::new(),
            reviewed_by: sub,
        }
        .encode_to_vec(),
        "ListReviews" => pb::ListReviewsRequest {
            claim_id: t.claim.into(),
        }
        .encode_to_vec(),
        "PrintNotice" => pb::PrintNoticeRequest {
            village_code: t.village.into(),
        }
        .encode_to_vec(),
        "SetCountyOffice" => office_request(t.county).encode_to_vec(),
        "ApproveEmergency" => pb::ApproveEmergencyRequest {
            request_id: request_id(),
            claim_id: t.claim.into(),
            amount_yuan: "100.00".into(),
            approved_by: sub,
            reason: "a fire".into(),
        }
        .encode_to_vec(),
        "RefuseEmergency" => pb::RefuseEmergencyRequest {
            request_id: request_id(),
            claim_id: t.claim.into(),
            refused_by: sub,
            reason: "insured elsewhere".into(),
        }
        .encode_to_vec(),
        "GetEmergencyDecision" => pb::GetClaimRequest {
            claim_id: t.claim.into(),
        }
        .encode_to_vec(),
        "RecordCrossCheck" => pb::RecordCrossCheckRequest {
            request_id: request_id(),
            claim_id: t.claim.into(),
            check: "vehicles".into(),
            result: pb::CrossCheckResult::Clear.into(),
            details: String::new(),
            checked_by: sub,
        }
        .encode_to_vec(),
        "DecideCrossCheckHit" => pb::DecideCrossCheckHitRequest {
            request_id: request_id(),
            claim_id: t.claim.into(),
            decision: pb::CrossCheckDecision::Resurvey.into(),
            reason: "the car is the neighbour's".into(),
            decided_by: sub,
        }
        .encode_to_vec(),
        "ListCrossChecks" => pb::ListCrossChecksRequest {
            claim_id: t.claim.into(),
        }
        .encode_to_vec(),
        "IssueMonitoringList" => pb::IssueMonitoringListRequest {
            request_id: request_id(),
            run_id: t.run.into(),
            issued_by: sub,
        }
        .encode_to_vec(),
        "GetMonitoringList" => pb::GetMonitoringListRequest {
            run_id: t.run.into(),
            township_code: String::new(),
        }
        .encode_to_vec(),
        "ConfirmListEntry" => pb::ConfirmListEntryRequest {
            request_id: request_id(),
            run_id: t.run.into(),
            household_id: t.household.into(),
            relief_kind: pb::ReliefKind::Illness.into(),
            checked_on: "2024-03-01".into(),
            note: "home checked".into(),
            checked_by: sub,
        }
        .encode_to_vec(),
        "DismissListEntry" => pb::DismissListEntryRequest {
            request_id: request_id(),
            run_id: t.run.into(),
            household_id: t.household.into(),
            relief_kind: pb::ReliefKind::Illness.into(),
            checked_on: "2024-03-01".into(),
            reason: "costs reimbursed".into(),
            checked_by: sub,
        }
        .encode_to_vec(),
        "AssignContacts" => pb::AssignContactsRequest {
            request_id: request_id(),
            claim_id: t.claim.into(),
            contacts: vec![pb::ContactPerson {
                name: "王干部".into(),
                work_unit: "乡政府".into(),
                phone: "13800138000".into(),
                phone_masked: String::new(),
            }],
            assigned_by: sub,
        }
        .encode_to_vec(),
        "RecordVisit" => pb::RecordVisitRequest {
            request_id: request_id(),
            claim_id: t.claim.into(),
            visited_on: "2024-03-01".into(),
            mode: pb::VisitMode::HomeVisit.into(),
            contact_name: "王干部".into(),
            findings: "income steady".into(),
            risk_remains: false,
            recorded_by: sub,
        }
        .encode_to_vec(),
        "ClearCase" => pb::ClearCaseRequest {
            request_id: request_id(),
            claim_id: t.claim.into(),
            reason: "risk cleared".into(),
            cleared_by: sub,
        }
        .encode_to_vec(),
        "ReopenCase" => pb::ReopenCaseRequest {
            request_id: request_id(),
            claim_id: t.claim.into(),
            reason: "risk returned".into(),
            reopened_by: sub,
        }
        .encode_to_vec(),
        "GetFollowUp" => pb::GetFollowUpRequest {
            claim_id: t.claim.into(),
        }
        .encode_to_vec(),
        "GetHouseholdMonitoring" => pb::GetHouseholdMonitoringRequest {
            household_id: t.household.into(),
        }
        .encode_to_vec(),
        "GetPoolOutlook" => pb::PoolOutlookRequest {
            county_code: county.clone(),
            policy_year: 2024,
            runs: 100,
            seed: 1,
        }
        .encode_to_vec(),
        "ListDeadlines" => pb::ListDeadlinesRequest {
            county_code: county.clone(),
            within_working_days: 10,
            ..Default::default()
        }
        .encode_to_vec(),
        other => panic!("no request for {other}: add one when the matrix grows"),
    };
    vec![message]
}

fn home(ids: &Ids) -> Target_<'_> {
    Target_ {
        county: COUNTY,
        household: &ids.household,
        claim: &ids.claim,
        import: &ids.import,
        roster: &ids.roster,
        run: &ids.run,
        evidence: &ids.evidence,
        village: VILLAGE,
    }
}

#[tokio::test]
async fn every_role_and_rpc_pair_is_allowed_or_denied_as_the_matrix_says() {
    let w = World::start().await;
    let target = home(&w.ids);
    let (mut allowed, mut denied, mut ok) = (0, 0, 0);
    for rule in MATRIX {
        for role in Role::ALL {
            let token = w.token(role, Place::Home);
            let result = w
                .call(
                    rule.method,
                    Some(&token),
                    request_for(rule.method, role, &target),
                )
                .await;
            let what = format!("{} as {role}", rule.method);
            if rule.roles.contains(role) {
                allowed += 1;
                match (&result, rule.access) {
                    (Ok(_), _) => ok += 1,
                    // A write may meet the state earlier calls left (a
                    // claim already filed, a county already registered):
                    // the rules answered, so access did not stop it.
                    (Err(status), Access::Write)
                        if matches!(
                            status.code(),
                            Code::FailedPrecondition | Code::AlreadyExists
                        ) => {}
                    // A machine without a CJK font prints no notice; the
                    // access check let the call through all the same.
                    (Err(status), Access::Read)
                        if rule.method.ends_with("/PrintNotice")
                            && fangpin_tests::notice_font().is_none()
                            && status.code() == Code::FailedPrecondition =>
                    {
                        ok += 1
                    }
                    (Err(status), _) => panic!("{what}: allowed, but {status:?}"),
                }
            } else {
                denied += 1;
                let status = result.expect_err(&what);
                assert_eq!(status.code(), Code::PermissionDenied, "{what}: {status:?}");
                // The method and role only: nothing about any object.
                assert_eq!(
                    status.message(),
                    format!("role {role} may not call {}", rule.method),
                    "{what}"
                );
                assert!(status.details().is_empty(), "{what}: no details");
            }
        }
    }
    assert_eq!(allowed + denied, MATRIX.len() * Role::ALL.len());
    // Every read an allowed role makes in scope succeeds outright.
    let reads: usize = MATRIX
        .iter()
        .filter(|r| r.access == Access::Read)
        .map(|r| r.roles.iter().count())
        .sum();
    assert!(ok >= reads, "{ok} successes, {reads} allowed reads");
    eprintln!("{allowed} allowed pairs ({ok} succeeded outright), {denied} denied");
    w.s.stop().await;
}

/// What a call about `target` tells an out-of-scope caller, with the ids
/// replaced, so that answers about different objects can be compared.
fn shape(result: &Result<Vec<u8>, Status>, ids: &[&str]) -> String {
    match result {
        Ok(bytes) => format!("ok {} bytes", bytes.len()),
        Err(status) => {
            let mut message = status.message().to_string();
            for id in ids {
                message = message.replace(id, "<id>");
            }
            format!("{:?}: {message}", status.code())
        }
    }
}

#[tokio::test]
async fn out_of_scope_objects_look_exactly_like_missing_ones() {
    let w = World::start().await;
    let before = w
        .call(
            "/fangpin.v1.ClaimService/GetClaim",
            Some(&w.token(Role::Auditor, Place::Home)),
            request_for(
                "/fangpin.v1.ClaimService/GetClaim",
                Role::Auditor,
                &home(&w.ids),
            ),
        )
        .await
        .expect("claim");
    let missing_ids = Ids {
        household: uuid::Uuid::now_v7().to_string(),
        claim: uuid::Uuid::now_v7().to_string(),
        import: uuid::Uuid::now_v7().to_string(),
        roster: uuid::Uuid::now_v7().to_string(),
        run: uuid::Uuid::now_v7().to_string(),
        evidence: uuid::Uuid::now_v7().to_string(),
        ..Ids::default()
    };
    let missing = Target_ {
        county: NO_COUNTY,
        household: &missing_ids.household,
        claim: &missing_ids.claim,
        import: &missing_ids.import,
        roster: &missing_ids.roster,
        run: &missing_ids.run,
        evidence: &missing_ids.evidence,
        village: "130428100201",
    };
    let real = home(&w.ids);
    let all_ids = [
        w.ids.household.as_str(),
        &w.ids.claim,
        &w.ids.import,
        &w.ids.roster,
        &w.ids.run,
        &w.ids.evidence,
        &missing_ids.household,
        &missing_ids.claim,
        &missing_ids.import,
        &missing_ids.roster,
        &missing_ids.run,
        &missing_ids.evidence,
        COUNTY,
        NO_COUNTY,
    ];
    let mut checked = 0;
    for rule in MATRIX {
        for role in rule.roles.iter() {
            let token = w.token(role, Place::Away);
            let what = format!("{} as {role} of elsewhere", rule.method);
            let on_real = w
                .call(
                    rule.method,
                    Some(&token),
                    request_for(rule.method, role, &real),
                )
                .await;
            match rule.target {
                Target::Listing => {
                    // Rows out of scope are left out: the fixture's claim
                    // (assigned to `surveyor`) never shows.
                    let bytes = on_real.unwrap_or_else(|e| panic!("{what}: {e:?}"));
                    let text = String::from_utf8_lossy(&bytes);
                    assert!(!text.contains(&w.ids.claim), "{what}: the claim leaked");
                }
                Target::County | Target::Village => {
                    // Refused as not found, or (a notice board) shown empty.
                    match &on_real {
                        Err(status) => {
                            assert_eq!(status.code(), Code::NotFound, "{what}: {status:?}")
                        }
                        Ok(bytes) => assert!(bytes.is_empty(), "{what}: shown {bytes:?}"),
                    }
                    let on_missing = w
                        .call(
                            rule.method,
                            Some(&token),
                            request_for(rule.method, role, &missing),
                        )
                        .await;
                    assert_eq!(
                        shape(&on_real, &all_ids),
                        shape(&on_missing, &all_ids),
                        "{what}: out of scope must read as not there"
                    );
                }
            }
            checked += 1;
        }
    }
    // The notice board of another village reads as empty.
    let token = w.token(Role::VillageCommittee, Place::Away);
    let notices = w
        .call(
            "/fangpin.v1.PublicityService/ListNotices",
            Some(&token),
            vec![
                pb::ListNoticesRequest {
                    village_code: VILLAGE.into(),
                }
                .encode_to_vec(),
            ],
        )
        .await
        .expect("notices");
    let notices = pb::ListNoticesResponse::decode(notices.as_slice()).expect("decodes");
    assert!(notices.notices.is_empty());
    // Nothing the refused writes asked for happened.
    let after = w
        .call(
            "/fangpin.v1.ClaimService/GetClaim",
            Some(&w.token(Role::Auditor, Place::Home)),
            request_for(
                "/fangpin.v1.ClaimService/GetClaim",
                Role::Auditor,
                &home(&w.ids),
            ),
        )
        .await
        .expect("claim");
    assert_eq!(before, after, "the claim is unchanged");
    assert!(checked > 80, "{checked} out-of-scope pairs");
    w.s.stop().await;
}

/// Every RPC, called by a role it allows with an all-default request (what
/// a careless client sends first), answers a clean error naming what is
/// wrong, or an empty read: never INTERNAL or UNKNOWN. No write among them
/// changes the audit log.
#[tokio::test]
async fn every_rpc_answers_an_empty_request_cleanly() {
    let w = World::start().await;
    let audit_rows = || async {
        let mut conn = sqlx::AnyConnection::connect(w.s.database_url())
            .await
            .expect("database");
        let n: i64 = sqlx::Row::get(
            &sqlx::query("SELECT COUNT(*) AS n FROM audit_log")
                .fetch_one(&mut conn)
                .await
                .expect("count"),
            "n",
        );
        n
    };
    let before = audit_rows().await;
    for rule in MATRIX {
        let role = rule.roles.iter().next().expect("every RPC has a role");
        let token = w.token(role, Place::Home);
        let result = w.call(rule.method, Some(&token), vec![Vec::new()]).await;
        let what = format!("{} as {role} with an empty request", rule.method);
        match result {
            // Reads without a required field (the service's own status).
            Ok(_) => assert_eq!(rule.access, Access::Read, "{what}: a write succeeded"),
            Err(status) => {
                assert!(
                    matches!(
                        status.code(),
                        Code::InvalidArgument | Code::NotFound | Code::FailedPrecondition
                    ),
                    "{what}: {status:?}"
                );
                if status.code() == Code::InvalidArgument {
                    assert!(
                        tonic_types::StatusExt::get_details_bad_request(&status).is_some(),
                        "{what}: no field named"
                    );
                }
            }
        }
    }
    assert_eq!(audit_rows().await, before, "nothing was recorded");
    w.s.stop().await;
}

#[tokio::test]
async fn tokens_that_are_missing_expired_forged_or_for_another_audience_are_refused() {
    let w = World::start().await;
    let method = "/fangpin.v1.ClaimService/GetClaim";
    let request = || request_for(method, Role::CountyOffice, &home(&w.ids));
    let refused = |result: Result<Vec<u8>, Status>, what: &str| {
        let status = result.expect_err(what);
        assert_eq!(status.code(), Code::Unauthenticated, "{what}: {status:?}");
        assert_eq!(status.message(), "missing or invalid token", "{what}");
    };
    refused(w.call(method, None, request()).await, "no token");
    refused(
        w.call(method, Some("not-a-jwt"), request()).await,
        "garbage",
    );

    let mut expired = w.claims(Role::CountyOffice, Place::Home);
    expired.iat -= 7200;
    expired.exp = TokenClaims::now() - 120;
    refused(
        w.call(method, Some(&w.sign(&expired)), request()).await,
        "expired",
    );

    let mut audience = w.claims(Role::CountyOffice, Place::Home);
    audience.aud = "another-service".into();
    refused(
        w.call(method, Some(&w.sign(&audience)), request()).await,
        "audience",
    );

    let mut issuer = w.claims(Role::CountyOffice, Place::Home);
    issuer.iss = "https://impostor.example".into();
    refused(
        w.call(method, Some(&w.sign(&issuer)), request()).await,
        "issuer",
    );

    // Signed by a key the server does not hold, under the server key's id.
    let (other_key, _) = generate_ed25519().expect("key");
    let forged =
        sign_ed25519(&w.claims(Role::CountyOffice, Place::Home), &other_key, KID).expect("sign");
    refused(
        w.call(method, Some(&forged), request()).await,
        "bad signature",
    );

    // A valid token of another county: its claims read as missing.
    let other = w.token(Role::CountyOffice, Place::Away);
    let status = w
        .call(method, Some(&other), request())
        .await
        .expect_err("other county");
    assert_eq!(status.code(), Code::NotFound);
    assert_eq!(status.message(), format!("claim {} not found", w.ids.claim));

    // Health needs no token.
    let mut health = tonic_health::pb::health_client::HealthClient::new(w.s.channel.clone());
    let serving = health
        .check(tonic_health::pb::HealthCheckRequest::default())
        .await
        .expect("health without a token")
        .into_inner();
    assert_eq!(
        serving.status,
        tonic_health::pb::health_check_response::ServingStatus::Serving as i32
    );
    w.s.stop().await;
}

#[tokio::test]
async fn a_replayed_request_id_is_answered_only_within_scope() {
    let w = World::start().await;
    let method = "/fangpin.v1.EnrollmentService/RecordPremium";
    let request = pb::RecordPremiumRequest {
        request_id: request_id(),
        county_code: COUNTY.into(),
        policy_year: 2024,
        amount_yuan: "10.00".into(),
        reference: "premium".into(),
    }
    .encode_to_vec();
    let home_token = w.token(Role::FinanceBureau, Place::Home);
    let first = w
        .call(method, Some(&home_token), vec![request.clone()])
        .await
        .expect("premium");
    let again = w
        .call(method, Some(&home_token), vec![request.clone()])
        .await
        .expect("replay");
    assert_eq!(first, again);
    let away = w.token(Role::FinanceBureau, Place::Away);
    let status = w
        .call(method, Some(&away), vec![request])
        .await
        .expect_err("not the stored answer");
    assert_eq!(status.code(), Code::NotFound);
    w.s.stop().await;
}

#[tokio::test]
async fn channels_and_acting_persons_follow_the_token() {
    let w = World::start().await;
    // A township submits emergencies only (遇困即扶).
    let mut application = submit(&w.ids.household, Role::Township);
    application.channel = pb::Channel::VillageApplication.into();
    let township = w.token(Role::Township, Place::Home);
    let status = w
        .call(
            "/fangpin.v1.ClaimService/SubmitClaim",
            Some(&township),
            vec![application.encode_to_vec()],
        )
        .await
        .expect_err("wrong channel");
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");

    // The county office files under its own name, not someone else's.
    let mut filing = file(&w.ids.claim);
    filing.filed_by = "somebody-else".into();
    let office = w.token(Role::CountyOffice, Place::Home);
    let status = w
        .call(
            "/fangpin.v1.PayoutService/FileClaim",
            Some(&office),
            vec![filing.encode_to_vec()],
        )
        .await
        .expect_err("another name");
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert!(status.message().contains("filed_by"), "{status:?}");

    // The audit log names the token's subject and role.
    sqlx::any::install_default_drivers();
    let mut conn = sqlx::AnyConnection::connect(w.s.database_url())
        .await
        .expect("database");
    let rows: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT actor, role, rpc FROM audit_log WHERE county_code = $1 ORDER BY seq",
    )
    .bind(COUNTY)
    .fetch_all(&mut conn)
    .await
    .expect("audit rows");
    assert!(
        rows.contains(&(
            "village_committee".into(),
            "village_committee".into(),
            "/fangpin.v1.ClaimService/SubmitClaim".into()
        )),
        "{rows:?}"
    );
    assert!(
        rows.iter().all(|(actor, role, _)| actor == role),
        "{rows:?}"
    );
    drop(conn);
    w.s.stop().await;
}

use sqlx::Connection as _;
