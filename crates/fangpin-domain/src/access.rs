//! Who may do what (issue 5): the roles, the scope a caller's token grants,
//! the role × RPC matrix, and the scope checks, as data and pure functions.
//!
//! Nothing here verifies a token, reads a request or touches the store. The
//! server authenticates the caller, builds a [`Principal`] from the token's
//! claims, asks [`allowed`] before routing, and after loading the object the
//! call is about asks [`may_access_county`] or [`may_access_village`] with the
//! object's *stored* county and village, never the request's fields alone.
//! `docs/access.md` is the human-readable side of this file; a test keeps its
//! table equal to [`MATRIX`].

use std::fmt;

use serde::Deserialize;

use crate::claim::Channel;
use crate::identity::{CountyCode, DivisionError, VillageCode};

/// The most counties one token may cover. A prefecture has at most a few dozen
/// counties, so a longer list is a mistake in the token, and a bound keeps the
/// scope check and the audit entry small.
pub const MAX_COUNTIES: usize = 64;

/// The longest subject or insurer name accepted, in characters. It matches the
/// server's label limit, since both end up in the audit log and in claim history.
pub const MAX_NAME_CHARS: usize = 200;

/// A caller's role. A token carries exactly one; a person with two jobs gets
/// two accounts, so every audit entry says in which capacity something was done.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    /// A field surveyor of the insurance company serving the county (保险公司查勘员).
    Surveyor,
    /// A village committee (村委会): applications and publicity for one village.
    VillageCommittee,
    /// A township government (乡镇): emergency approvals (遇困即扶) and objections.
    Township,
    /// The county poverty-prevention office (县防贫办): runs the scheme.
    CountyOffice,
    /// A county department that delivers data feeds (医保, 教育, 民政, ...).
    DepartmentFeeder,
    /// The county finance bureau (财政局): premiums, top-ups, the year's books.
    FinanceBureau,
    /// An auditor (审计): reads everything in scope, changes nothing.
    Auditor,
}

impl Role {
    /// Every role, in the order of the matrix's columns.
    pub const ALL: [Role; 7] = [
        Role::Surveyor,
        Role::VillageCommittee,
        Role::Township,
        Role::CountyOffice,
        Role::DepartmentFeeder,
        Role::FinanceBureau,
        Role::Auditor,
    ];

    /// The name used in tokens, audit entries and the docs.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Surveyor => "surveyor",
            Role::VillageCommittee => "village_committee",
            Role::Township => "township",
            Role::CountyOffice => "county_office",
            Role::DepartmentFeeder => "department_feeder",
            Role::FinanceBureau => "finance_bureau",
            Role::Auditor => "auditor",
        }
    }

    /// Parses the exact snake_case name; nothing is trimmed or case-folded,
    /// because a token that spells a role differently was not made by us.
    pub fn parse(text: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == text)
    }

    const fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A set of roles, as a bit set so the matrix can be a `static` table.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct RoleSet(u8);

impl RoleSet {
    pub const EMPTY: RoleSet = RoleSet(0);

    pub const fn of(roles: &[Role]) -> RoleSet {
        let mut bits = 0;
        let mut i = 0;
        while i < roles.len() {
            bits |= roles[i].bit();
            i += 1;
        }
        RoleSet(bits)
    }

    pub const fn contains(self, role: Role) -> bool {
        self.0 & role.bit() != 0
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The roles in the set, in [`Role::ALL`] order.
    pub fn iter(self) -> impl Iterator<Item = Role> {
        Role::ALL.into_iter().filter(move |r| self.contains(*r))
    }
}

impl fmt::Debug for RoleSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

/// Whether an RPC changes anything. Every `Write` call appends an audit entry;
/// an auditor may make every `Read` call and no `Write` call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    Read,
    Write,
}

/// What the per-call scope check is made against, once the server has loaded
/// the object the call is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// A county-wide object: the county, its policy, its ledger year, a feed
    /// import or a screening run. Checked with [`may_access_county`] on the
    /// object's county. Village committees and townships never pass it.
    County,
    /// An object in one village: a household, a claim (through its household),
    /// or a village's notice board. Checked with [`may_access_village`] on the
    /// village stored with the object.
    Village,
    /// A page of claims. The request's county (if any) only narrows the page;
    /// each row is returned only if [`may_access_village`] holds for it, so a
    /// village committee's list is its own village's claims.
    Listing,
}

/// One row of the matrix.
#[derive(Clone, Copy, Debug)]
pub struct RpcRule {
    /// The gRPC path, "/package.Service/Method", as tonic's router sees it.
    pub method: &'static str,
    pub access: Access,
    pub target: Target,
    pub roles: RoleSet,
}

const fn rule(method: &'static str, access: Access, target: Target, roles: &[Role]) -> RpcRule {
    RpcRule {
        method,
        access,
        target,
        roles: RoleSet::of(roles),
    }
}

/// The role × RPC matrix: every RPC of `proto/fangpin/v1` and the roles that
/// may call it. A method not in this table is denied to everyone; a test
/// checks it lists exactly the RPCs the .proto files declare. The reasons for
/// each row are in `docs/access.md`.
#[rustfmt::skip]
pub static MATRIX: &[RpcRule] = {
    // Short names, local to this table, so that it reads as a table.
    use Access::{Read as R, Write as W};
    use Target::{County, Listing, Village};
    const S: Role = Role::Surveyor;
    const V: Role = Role::VillageCommittee;
    const T: Role = Role::Township;
    const C: Role = Role::CountyOffice;
    const D: Role = Role::DepartmentFeeder;
    const F: Role = Role::FinanceBureau;
    const A: Role = Role::Auditor;
    &[
        // The county sets its rules; those who act on them or pay under them read them.
        rule("/fangpin.v1.PolicyService/PutPolicy", W, County, &[C]),
        rule("/fangpin.v1.PolicyService/GetPolicy", R, County, &[S, C, F, A]),
        rule("/fangpin.v1.EnrollmentService/RegisterCounty", W, County, &[C]),
        rule("/fangpin.v1.EnrollmentService/GetCounty", R, County, &[S, C, F, A]),
        // The county office frames the insured 10%; nobody below it enrols.
        rule("/fangpin.v1.EnrollmentService/EnrollHousehold", W, County, &[C]),
        rule("/fangpin.v1.EnrollmentService/ImportRoster", W, County, &[C]),
        rule("/fangpin.v1.EnrollmentService/GetRosterImport", R, County, &[C, A]),
        rule("/fangpin.v1.EnrollmentService/GetHousehold", R, Village, &[S, V, T, C, A]),
        // Premiums come out of the county budget, so finance records them.
        rule("/fangpin.v1.EnrollmentService/RecordPremium", W, County, &[F]),
        // The county office keeps the pool's accounts of record; a corrected
        // account changes where a family's money goes.
        rule("/fangpin.v1.EnrollmentService/CorrectBankAccount", W, Village, &[C]),
        // The office printed on every notice as where to object.
        rule("/fangpin.v1.EnrollmentService/SetCountyOffice", W, County, &[C]),
        // Three intake channels: village application, township emergency, county
        // referral (`may_submit_via` pairs each role with its channel).
        rule("/fangpin.v1.ClaimService/SubmitClaim", W, Village, &[V, T, C]),
        rule("/fangpin.v1.ClaimService/GetClaim", R, Village, &[S, V, T, C, A]),
        rule("/fangpin.v1.ClaimService/ListClaims", R, Listing, &[S, V, T, C, A]),
        // The same rows as ListClaims, counted: the console's dashboard.
        rule("/fangpin.v1.ClaimService/CountClaims", R, Listing, &[S, V, T, C, A]),
        rule("/fangpin.v1.ClaimService/GetClaimHistory", R, Village, &[S, V, T, C, A]),
        // Money leaves the pool only by the insurer's hand, never by whoever
        // approved it: the township approves an emergency, the insurer advances.
        rule("/fangpin.v1.ClaimService/PayEmergencyAdvance", W, Village, &[S]),
        // 乡镇主要负责同志批准: the township head decides on the emergency
        // before anyone advances money.
        rule("/fangpin.v1.ClaimService/ApproveEmergency", W, Village, &[T]),
        rule("/fangpin.v1.ClaimService/RefuseEmergency", W, Village, &[T]),
        rule("/fangpin.v1.ClaimService/GetEmergencyDecision", R, Village, &[S, V, T, C, A]),
        // The county office hands a case to the insurer; the insurer's dispatcher
        // (a surveyor account) may hand it on within the company.
        rule("/fangpin.v1.SurveyService/AssignSurvey", W, Village, &[S, C]),
        rule("/fangpin.v1.SurveyService/RecordFindings", W, Village, &[S]),
        rule("/fangpin.v1.SurveyService/Recommend", W, Village, &[S]),
        rule("/fangpin.v1.SurveyService/ListWorkQueue", R, Listing, &[S, C, A]),
        // Publicity is posted in the village; the county office may act for it.
        rule("/fangpin.v1.PublicityService/OpenPublicity", W, Village, &[V, C]),
        rule("/fangpin.v1.PublicityService/ListNotices", R, Village, &[V, T, C, A]),
        // Objections reach the village, the township or the county's hotline.
        rule("/fangpin.v1.PublicityService/RaiseObjection", W, Village, &[V, T, C]),
        rule("/fangpin.v1.PublicityService/ClosePublicity", W, Village, &[V, C]),
        // Who objected and what came of it: those who take objections, and
        // the auditor.
        rule("/fangpin.v1.PublicityService/ListObjections", R, Village, &[V, T, C, A]),
        // The county's own steps: the village deliberates (村级评议), the
        // township reviews (乡级审核); the surveyor sees what was sent back.
        rule("/fangpin.v1.PublicityService/RecordDeliberation", W, Village, &[V]),
        rule("/fangpin.v1.PublicityService/RecordTownshipReview", W, Village, &[T]),
        rule("/fangpin.v1.PublicityService/ListReviews", R, Village, &[S, V, T, C, A]),
        // The paper notice: whoever posts or supervises the board, as ListNotices.
        rule("/fangpin.v1.PublicityService/PrintNotice", R, Village, &[V, T, C, A]),
        // The county files (备案); only then does the insurer pay.
        rule("/fangpin.v1.PayoutService/FileClaim", W, Village, &[C]),
        rule("/fangpin.v1.PayoutService/PayClaim", W, Village, &[S]),
        // A returned transfer is seen by the payer and by finance at reconciliation.
        rule("/fangpin.v1.PayoutService/RecordPayoutFailure", W, Village, &[S, F]),
        // Reserving again is a filing act, after the county corrected the account.
        rule("/fangpin.v1.PayoutService/RetryPayout", W, Village, &[C]),
        // The departments' cross-check (信息比对): the county office sends
        // the household to each department and records the answer (feeders
        // only deliver files), then decides on a hit.
        rule("/fangpin.v1.PayoutService/RecordCrossCheck", W, Village, &[C]),
        rule("/fangpin.v1.PayoutService/DecideCrossCheckHit", W, Village, &[C]),
        rule("/fangpin.v1.PayoutService/ListCrossChecks", R, Village, &[T, C, A]),
        rule("/fangpin.v1.LedgerService/GetPoolBalance", R, County, &[C, F, A]),
        // The audit chain: the office that runs the scheme answers for it,
        // the auditor checks it. Its entries name every actor and RPC of the
        // county, so nobody below the county reads them.
        rule("/fangpin.v1.AuditService/VerifyAuditChain", R, County, &[C, A]),
        rule("/fangpin.v1.AuditService/ListAuditEntries", R, County, &[C, A]),
        rule("/fangpin.v1.LedgerService/ListTopUpFlags", R, County, &[C, F, A]),
        rule("/fangpin.v1.LedgerService/RecordTopUp", W, County, &[F]),
        rule("/fangpin.v1.LedgerService/ListEntries", R, County, &[C, F, A]),
        rule("/fangpin.v1.LedgerService/GetBalanceAsOf", R, County, &[C, F, A]),
        rule("/fangpin.v1.LedgerService/GetReconciliation", R, County, &[C, F, A]),
        // Year end is finance's act, with the county office that owns the scheme;
        // reopening is the county office's alone, as the API has always said.
        rule("/fangpin.v1.LedgerService/CloseYear", W, County, &[C, F]),
        rule("/fangpin.v1.LedgerService/ReopenYear", W, County, &[C]),
        rule("/fangpin.v1.LedgerService/GetYearStatus", R, County, &[C, F, A]),
        // Matching stores nothing, so it is a read.
        rule("/fangpin.v1.LedgerService/MatchBankStatement", R, County, &[C, F, A]),
        // The county office owns the scheme's receivables; finance sees them
        // in the reconciliation.
        rule("/fangpin.v1.LedgerService/ResolveAdvanceReceivable", W, Village, &[C]),
        // The outlook stores nothing; it is for those who plan the money.
        rule("/fangpin.v1.LedgerService/GetPoolOutlook", R, County, &[C, F, A]),
        rule("/fangpin.v1.ScreeningService/ImportFeed", W, County, &[D, C]),
        rule("/fangpin.v1.ScreeningService/GetFeedImport", R, County, &[D, C, A]),
        rule("/fangpin.v1.ScreeningService/RunScreening", W, County, &[C]),
        rule("/fangpin.v1.ScreeningService/GetScreeningRun", R, County, &[C, A]),
        rule("/fangpin.v1.ScreeningService/ListScreeningCandidates", R, County, &[C, A]),
        rule("/fangpin.v1.ScreeningService/CreateScreeningClaims", W, County, &[C]),
        // Evidence: the surveyor's receipts and photos, the village's
        // application papers, the county office's own; read by whoever may
        // read the claim, auditors included.
        rule("/fangpin.v1.EvidenceService/UploadEvidence", W, Village, &[S, V, C]),
        rule("/fangpin.v1.EvidenceService/ListEvidence", R, Village, &[S, V, T, C, A]),
        rule("/fangpin.v1.EvidenceService/DownloadEvidence", R, Village, &[S, V, T, C, A]),
        // The monthly monitoring list (月度监测名单): the county office issues
        // it from a run; the township checks the homes and decides.
        rule("/fangpin.v1.ScreeningService/IssueMonitoringList", W, County, &[C]),
        rule("/fangpin.v1.ScreeningService/GetMonitoringList", R, Listing, &[T, C, A]),
        rule("/fangpin.v1.ScreeningService/ConfirmListEntry", W, Village, &[T]),
        rule("/fangpin.v1.ScreeningService/DismissListEntry", W, Village, &[T]),
        // Follow-up after payment (专人帮扶): the county office names the
        // contact persons and clears or reopens the case; the contact
        // persons are village, township or county cadres, so those record
        // visits; all of them and the auditor read it.
        rule("/fangpin.v1.FollowUpService/AssignContacts", W, Village, &[C]),
        rule("/fangpin.v1.FollowUpService/RecordVisit", W, Village, &[V, T, C]),
        rule("/fangpin.v1.FollowUpService/ClearCase", W, Village, &[C]),
        rule("/fangpin.v1.FollowUpService/ReopenCase", W, Village, &[C]),
        rule("/fangpin.v1.FollowUpService/GetFollowUp", R, Village, &[V, T, C, A]),
        rule("/fangpin.v1.FollowUpService/GetHouseholdMonitoring", R, Village, &[V, T, C, A]),
        // Time limits: everyone who owns a stage sees its deadlines, each
        // row only within the caller's scope.
        rule("/fangpin.v1.DeadlineService/ListDeadlines", R, Listing, &[S, V, T, C, A]),
        // The service's own version, date and calendar coverage: nothing of
        // a county, for everyone who works the claims (feeders only import).
        rule("/fangpin.v1.ServiceInfoService/GetServiceInfo", R, Listing, &[S, V, T, C, F, A]),
    ]
};

/// The matrix row of a method, if it is one of ours.
pub fn rule_for(method: &str) -> Option<&'static RpcRule> {
    MATRIX.iter().find(|r| r.method == method)
}

/// The role check's answer. Both refusals become PERMISSION_DENIED on the
/// wire; they are told apart for the log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    Allow,
    /// The method exists but this role may not call it.
    WrongRole,
    /// The method is not in the matrix (a new RPC nobody has decided on yet,
    /// or a made-up path): denied, so forgetting a row fails closed.
    UnknownMethod,
}

impl Decision {
    pub fn is_allowed(self) -> bool {
        self == Decision::Allow
    }
}

/// Whether `role` may call `method` at all. Scope is checked separately, once
/// the object is known.
pub fn allowed(method: &str, role: Role) -> Decision {
    match rule_for(method) {
        None => Decision::UnknownMethod,
        Some(r) if r.roles.contains(role) => Decision::Allow,
        Some(_) => Decision::WrongRole,
    }
}

/// Which intake channel each role may use with SubmitClaim: a village
/// committee takes bottom-up applications and reports emergencies (遇困即扶:
/// 村级报告); a township may report one too; the township head then
/// approves or refuses it (ApproveEmergency, RefuseEmergency) before any
/// advance. The county office refers cases found in department data and may
/// key in a paper application a village forwarded; emergencies are reported
/// where they happen, so not by the county office.
pub fn may_submit_via(role: Role, channel: Channel) -> bool {
    matches!(
        (role, channel),
        (
            Role::VillageCommittee,
            Channel::VillageApplication | Channel::Emergency
        ) | (Role::Township, Channel::Emergency)
            | (
                Role::CountyOffice,
                Channel::DepartmentReferral | Channel::VillageApplication
            )
    )
}

/// A nine-digit township code (乡级区划代码): the county's six digits and three
/// of township, which are not "000" (that would name the county itself).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TownshipCode {
    code: String,
    county: CountyCode,
}

impl TownshipCode {
    pub fn parse(s: &str) -> Result<TownshipCode, ScopeError> {
        let bad = |reason: &'static str| ScopeError::BadTownship {
            code: s.to_owned(),
            reason,
        };
        // Length first, so the byte slicing below is on ASCII digits only.
        if s.len() != 9 || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad("must be 9 digits"));
        }
        let county = CountyCode::parse(&s[..6])
            .map_err(|_| bad("its first 6 digits are not a county code"))?;
        if &s[6..] == "000" {
            return Err(bad("township part 000 names the county"));
        }
        Ok(TownshipCode {
            code: s.to_owned(),
            county,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.code
    }

    /// The county the township lies in (the first six digits).
    pub fn county(&self) -> &CountyCode {
        &self.county
    }
}

impl fmt::Display for TownshipCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.code)
    }
}

/// What a token lets its holder see, by role. Each role has exactly one shape,
/// so a principal that passed [`Principal::new`] cannot be, say, a surveyor
/// without an insurer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Scope {
    /// A surveyor: the counties its company serves, and the company. Both must
    /// hold, because a county may change insurer at the next tender while an
    /// old token still lists it.
    Insurer {
        insurer: String,
        counties: Vec<CountyCode>,
    },
    /// A village committee: one village; its county is implied by the code.
    Village(VillageCode),
    /// A township: every village whose code starts with the township's.
    Township(TownshipCode),
    /// County office, department feeder, finance bureau, auditor: whole counties.
    Counties(Vec<CountyCode>),
}

/// An authenticated caller: who (the token's `sub`), in which role, over what.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    subject: String,
    role: Role,
    scope: Scope,
}

impl Principal {
    /// Checks that the scope has the shape the role needs and stays within
    /// the limits. Counties must be distinct: a duplicate means the token was
    /// assembled carelessly, and we would rather refuse it than guess.
    pub fn new(subject: String, role: Role, scope: Scope) -> Result<Principal, ScopeError> {
        check_name("sub", &subject)?;
        match (role, &scope) {
            (Role::Surveyor, Scope::Insurer { insurer, counties }) => {
                check_name("insurer", insurer)?;
                check_counties(role, counties)?;
            }
            (Role::VillageCommittee, Scope::Village(_)) | (Role::Township, Scope::Township(_)) => {}
            (
                Role::CountyOffice | Role::DepartmentFeeder | Role::FinanceBureau | Role::Auditor,
                Scope::Counties(counties),
            ) => check_counties(role, counties)?,
            _ => return Err(ScopeError::WrongShape { role }),
        }
        Ok(Principal {
            subject,
            role,
            scope,
        })
    }

    /// Builds a principal from the flat claims of a verified token, naming the
    /// claim that is missing, unexpected or malformed.
    pub fn from_claims(claims: &ScopeClaims) -> Result<Principal, ScopeError> {
        let role = Role::parse(&claims.role).ok_or_else(|| ScopeError::UnknownRole {
            role: truncate(&claims.role),
        })?;
        let counties = claims
            .counties
            .iter()
            .map(|c| CountyCode::parse(c).map_err(|source| ScopeError::BadCounty { source }))
            .collect::<Result<Vec<_>, _>>()?;
        let forbid = |claim: &'static str, present: bool| {
            if present {
                Err(ScopeError::Unexpected { role, claim })
            } else {
                Ok(())
            }
        };
        let require = |claim: &'static str, value: &Option<String>| {
            value.clone().ok_or(ScopeError::Missing { role, claim })
        };
        let scope = match role {
            Role::Surveyor => {
                forbid("village", claims.village.is_some())?;
                forbid("township", claims.township.is_some())?;
                Scope::Insurer {
                    insurer: require("insurer", &claims.insurer)?,
                    counties,
                }
            }
            Role::VillageCommittee => {
                forbid("insurer", claims.insurer.is_some())?;
                forbid("township", claims.township.is_some())?;
                let village = VillageCode::parse(&require("village", &claims.village)?)
                    .map_err(|source| ScopeError::BadVillage { source })?;
                check_implied_county(role, &counties, &village.county())?;
                Scope::Village(village)
            }
            Role::Township => {
                forbid("insurer", claims.insurer.is_some())?;
                forbid("village", claims.village.is_some())?;
                let township = TownshipCode::parse(&require("township", &claims.township)?)?;
                check_implied_county(role, &counties, township.county())?;
                Scope::Township(township)
            }
            Role::CountyOffice | Role::DepartmentFeeder | Role::FinanceBureau | Role::Auditor => {
                forbid("insurer", claims.insurer.is_some())?;
                forbid("village", claims.village.is_some())?;
                forbid("township", claims.township.is_some())?;
                Scope::Counties(counties)
            }
        };
        Principal::new(claims.sub.clone(), role, scope)
    }

    pub fn subject(&self) -> &str {
        &self.subject
    }

    pub fn role(&self) -> Role {
        self.role
    }

    pub fn scope(&self) -> &Scope {
        &self.scope
    }

    /// Whether any part of the caller's scope lies in `county`: for a village
    /// committee or township, whether its village or township does. Use it to
    /// choose which rows to read for a [`Target::Listing`]; it grants nothing
    /// by itself.
    pub fn touches_county(&self, county: &CountyCode) -> bool {
        match &self.scope {
            Scope::Insurer { counties, .. } | Scope::Counties(counties) => {
                counties.contains(county)
            }
            Scope::Village(village) => village.county() == *county,
            Scope::Township(township) => township.county() == county,
        }
    }
}

/// The scope claims of a token, as the server's JWT library deserializes them
/// (the registered claims `exp`, `iat`, `iss` and `aud` are the server's
/// business and ignored here). Absent optional claims may be missing or null.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
pub struct ScopeClaims {
    pub sub: String,
    pub role: String,
    #[serde(default)]
    pub counties: Vec<String>,
    #[serde(default)]
    pub insurer: Option<String>,
    #[serde(default)]
    pub village: Option<String>,
    #[serde(default)]
    pub township: Option<String>,
}

/// Why token claims do not make a principal. Messages quote only codes and
/// claim names, which are not personal data, so they may be logged.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ScopeError {
    #[error("unknown role {role:?}")]
    UnknownRole { role: String },
    #[error("claim {claim} is empty")]
    EmptyName { claim: &'static str },
    #[error("claim {claim} is longer than {MAX_NAME_CHARS} characters")]
    NameTooLong { claim: &'static str },
    #[error("claim {claim} has leading or trailing whitespace or a control character")]
    UntidyName { claim: &'static str },
    #[error("role {role} needs the claim {claim}")]
    Missing { role: Role, claim: &'static str },
    #[error("role {role} must not carry the claim {claim}")]
    Unexpected { role: Role, claim: &'static str },
    #[error("role {role} needs at least one county")]
    NoCounty { role: Role },
    #[error("{got} counties, at most {MAX_COUNTIES} allowed")]
    TooManyCounties { got: usize },
    #[error("county {county} is listed twice")]
    DuplicateCounty { county: CountyCode },
    #[error("bad county code: {source}")]
    BadCounty { source: DivisionError },
    #[error("bad village code: {source}")]
    BadVillage { source: DivisionError },
    #[error("bad township code {code:?}: {reason}")]
    BadTownship { code: String, reason: &'static str },
    #[error("role {role}: counties may list only the county its village or township lies in")]
    CountyMismatch { role: Role },
    #[error("role {role} does not go with this kind of scope")]
    WrongShape { role: Role },
}

/// Quotes at most a few characters of untrusted input in an error.
fn truncate(s: &str) -> String {
    s.chars().take(40).collect()
}

fn check_name(claim: &'static str, name: &str) -> Result<(), ScopeError> {
    if name.is_empty() {
        return Err(ScopeError::EmptyName { claim });
    }
    if name.chars().count() > MAX_NAME_CHARS {
        return Err(ScopeError::NameTooLong { claim });
    }
    // Names are compared for equality (the insurer with the county's insurer)
    // and written to the audit log, so invisible differences are refused.
    if name.trim() != name || name.chars().any(char::is_control) {
        return Err(ScopeError::UntidyName { claim });
    }
    Ok(())
}

fn check_counties(role: Role, counties: &[CountyCode]) -> Result<(), ScopeError> {
    if counties.is_empty() {
        return Err(ScopeError::NoCounty { role });
    }
    if counties.len() > MAX_COUNTIES {
        return Err(ScopeError::TooManyCounties {
            got: counties.len(),
        });
    }
    // Quadratic, but bounded by MAX_COUNTIES and run once per token.
    for (i, county) in counties.iter().enumerate() {
        if counties[..i].contains(county) {
            return Err(ScopeError::DuplicateCounty {
                county: county.clone(),
            });
        }
    }
    Ok(())
}

/// A village committee's or township's county follows from its code; a token
/// may repeat it in `counties` (issuers like uniform tokens) but not add others.
fn check_implied_county(
    role: Role,
    counties: &[CountyCode],
    implied: &CountyCode,
) -> Result<(), ScopeError> {
    match counties {
        [] => Ok(()),
        [only] if only == implied => Ok(()),
        _ => Err(ScopeError::CountyMismatch { role }),
    }
}

/// Whether the caller may act on a county-wide object of `county`, whose
/// insurer is `county_insurer` (as stored with the county, not as the request
/// says). Village committees and townships see no county-wide object.
pub fn may_access_county(p: &Principal, county: &CountyCode, county_insurer: &str) -> bool {
    match &p.scope {
        Scope::Insurer { insurer, counties } => {
            counties.contains(county) && insurer == county_insurer
        }
        Scope::Counties(counties) => counties.contains(county),
        Scope::Village(_) | Scope::Township(_) => false,
    }
}

/// Whether the caller may act on an object in `village` (a household, a claim,
/// a notice board). `county_insurer` is the insurer stored with the village's
/// county; only a surveyor's answer depends on it.
///
/// This takes the insurer, unlike a bare village check, so that a surveyor
/// whose company lost a county's tender cannot keep reading its claims.
pub fn may_access_village(p: &Principal, village: &VillageCode, county_insurer: &str) -> bool {
    match &p.scope {
        Scope::Village(own) => own == village,
        Scope::Township(township) => village.township_code() == township.as_str(),
        Scope::Insurer { .. } | Scope::Counties(_) => {
            may_access_county(p, &village.county(), county_insurer)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    const INSURER: &str = "中国人寿";

    fn county(s: &str) -> CountyCode {
        CountyCode::parse(s).unwrap()
    }

    fn village(s: &str) -> VillageCode {
        VillageCode::parse(s).unwrap()
    }

    fn claims(role: &str) -> ScopeClaims {
        ScopeClaims {
            sub: "user-1".to_owned(),
            role: role.to_owned(),
            ..ScopeClaims::default()
        }
    }

    fn principal(role: Role, scope: Scope) -> Principal {
        Principal::new("user-1".to_owned(), role, scope).unwrap()
    }

    // ---- The matrix against the .proto files -------------------------------

    /// Every .proto of the API, read at compile time so the test needs no
    /// working directory. `proto_files_are_all_listed` catches a new file.
    const PROTOS: [(&str, &str); 14] = [
        (
            "audit.proto",
            include_str!("../../../proto/fangpin/v1/audit.proto"),
        ),
        (
            "evidence.proto",
            include_str!("../../../proto/fangpin/v1/evidence.proto"),
        ),
        (
            "service_info.proto",
            include_str!("../../../proto/fangpin/v1/service_info.proto"),
        ),
        (
            "follow_up.proto",
            include_str!("../../../proto/fangpin/v1/follow_up.proto"),
        ),
        (
            "deadlines.proto",
            include_str!("../../../proto/fangpin/v1/deadlines.proto"),
        ),
        (
            "claim.proto",
            include_str!("../../../proto/fangpin/v1/claim.proto"),
        ),
        (
            "common.proto",
            include_str!("../../../proto/fangpin/v1/common.proto"),
        ),
        (
            "enrollment.proto",
            include_str!("../../../proto/fangpin/v1/enrollment.proto"),
        ),
        (
            "ledger.proto",
            include_str!("../../../proto/fangpin/v1/ledger.proto"),
        ),
        (
            "payout.proto",
            include_str!("../../../proto/fangpin/v1/payout.proto"),
        ),
        (
            "policy.proto",
            include_str!("../../../proto/fangpin/v1/policy.proto"),
        ),
        (
            "publicity.proto",
            include_str!("../../../proto/fangpin/v1/publicity.proto"),
        ),
        (
            "screening.proto",
            include_str!("../../../proto/fangpin/v1/screening.proto"),
        ),
        (
            "survey.proto",
            include_str!("../../../proto/fangpin/v1/survey.proto"),
        ),
    ];

    /// The full method paths a .proto file declares. A small parser for the
    /// subset our files use: `//` comments, one `package`, `service X {` blocks
    /// whose `rpc Name(` lines may span lines.
    fn declared_rpcs(source: &str) -> Vec<String> {
        let code: String = source
            .lines()
            .map(|line| line.split("//").next().unwrap_or(""))
            .collect::<Vec<_>>()
            .join("\n");
        let package = code
            .split(';')
            .find_map(|stmt| stmt.trim().strip_prefix("package "))
            .map(|p| p.trim().to_owned());
        let mut out = Vec::new();
        let mut rest = code.as_str();
        while let Some(start) = find_word(rest, "service") {
            let after = &rest[start + "service".len()..];
            let open = after.find('{').expect("service body");
            let name = after[..open].trim();
            let close = after.find('}').expect("end of service");
            let body = &after[open + 1..close];
            let mut b = body;
            while let Some(r) = find_word(b, "rpc") {
                let tail = &b[r + 3..];
                let paren = tail.find('(').expect("rpc arguments");
                let method = tail[..paren].trim();
                let package = package.as_deref().expect("package before services");
                out.push(format!("/{package}.{name}/{method}"));
                b = &tail[paren..];
            }
            rest = &after[close + 1..];
        }
        out
    }

    /// The position of `word` standing alone (not inside `ServiceRequest`).
    fn find_word(haystack: &str, word: &str) -> Option<usize> {
        let bytes = haystack.as_bytes();
        let mut from = 0;
        while let Some(i) = haystack[from..].find(word).map(|i| i + from) {
            let before = i == 0 || !(bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_');
            let j = i + word.len();
            let after = j == bytes.len() || bytes[j].is_ascii_whitespace();
            if before && after {
                return Some(i);
            }
            from = j;
        }
        None
    }

    #[test]
    fn matrix_covers_exactly_the_declared_rpcs() {
        let declared: Vec<String> = PROTOS.iter().flat_map(|(_, s)| declared_rpcs(s)).collect();
        let declared_set: BTreeSet<&str> = declared.iter().map(String::as_str).collect();
        assert_eq!(declared.len(), declared_set.len(), "an RPC declared twice");
        // Thirteen services and seventy-five RPCs today; the parser found them all.
        assert_eq!(declared.len(), 75, "{declared:#?}");

        let table: Vec<&str> = MATRIX.iter().map(|r| r.method).collect();
        let table_set: BTreeSet<&str> = table.iter().copied().collect();
        assert_eq!(
            table.len(),
            table_set.len(),
            "a method listed twice in MATRIX"
        );
        let missing: Vec<_> = declared_set.difference(&table_set).collect();
        let extra: Vec<_> = table_set.difference(&declared_set).collect();
        assert!(
            missing.is_empty(),
            "RPCs with no row in MATRIX: {missing:?}"
        );
        assert!(
            extra.is_empty(),
            "MATRIX rows for no declared RPC: {extra:?}"
        );
    }

    #[test]
    fn proto_files_are_all_listed() {
        // The one place this crate reads a file, and only in a test: a new
        // .proto must be added to PROTOS, or its RPCs would escape the check.
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../proto/fangpin/v1");
        let on_disk: BTreeSet<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|name| name.ends_with(".proto"))
            .collect();
        let listed: BTreeSet<String> = PROTOS.iter().map(|(n, _)| (*n).to_owned()).collect();
        assert_eq!(on_disk, listed);
    }

    #[test]
    fn the_parser_handles_comments_and_lookalike_words() {
        let src = "package a.b;\n// service Fake { rpc No(X) returns (Y); }\n\
                   message ServiceRequest { string rpc_name = 1; }\n\
                   service Real {\n  rpc One(A) returns (B); // rpc Two(\n  rpc\n Three(stream C) returns (D);\n}\n";
        assert_eq!(declared_rpcs(src), ["/a.b.Real/One", "/a.b.Real/Three"]);
    }

    // ---- Invariants of the matrix -----------------------------------------

    #[test]
    fn every_rpc_has_a_role_and_auditors_read_everything_and_write_nothing() {
        for r in MATRIX {
            assert!(!r.roles.is_empty(), "{} has no role", r.method);
            assert_eq!(
                r.roles.contains(Role::Auditor),
                r.access == Access::Read,
                "{}: the auditor may call exactly the reads",
                r.method
            );
        }
    }

    #[test]
    fn village_and_township_roles_only_reach_village_level_rpcs() {
        // may_access_county is false for them, so a County row would be a
        // role granted in the matrix and always refused by scope: a mistake.
        for r in MATRIX {
            for role in [Role::VillageCommittee, Role::Township] {
                if r.roles.contains(role) {
                    assert_ne!(r.target, Target::County, "{} for {role}", r.method);
                }
            }
        }
    }

    #[test]
    fn feeders_only_touch_feeds_and_money_moves_by_separate_hands() {
        let of = |role: Role| -> BTreeSet<&str> {
            MATRIX
                .iter()
                .filter(|r| r.roles.contains(role))
                .map(|r| r.method.rsplit('/').next().unwrap())
                .collect()
        };
        assert_eq!(
            of(Role::DepartmentFeeder),
            BTreeSet::from(["ImportFeed", "GetFeedImport"])
        );
        // Whoever files or approves does not pay, and the reverse.
        let payers = rule_for("/fangpin.v1.PayoutService/PayClaim")
            .unwrap()
            .roles;
        let filers = rule_for("/fangpin.v1.PayoutService/FileClaim")
            .unwrap()
            .roles;
        assert!(payers.iter().all(|r| !filers.contains(r)));
        let advancers = rule_for("/fangpin.v1.ClaimService/PayEmergencyAdvance")
            .unwrap()
            .roles;
        assert!(!advancers.contains(Role::Township));
        assert!(!of(Role::FinanceBureau).contains("SubmitClaim"));
    }

    #[test]
    fn allowed_answers_from_the_matrix_and_denies_unknown_methods() {
        assert_eq!(
            allowed(
                "/fangpin.v1.ClaimService/SubmitClaim",
                Role::VillageCommittee
            ),
            Decision::Allow
        );
        assert_eq!(
            allowed("/fangpin.v1.ClaimService/SubmitClaim", Role::FinanceBureau),
            Decision::WrongRole
        );
        assert_eq!(
            allowed("/fangpin.v1.LedgerService/RecordTopUp", Role::Auditor),
            Decision::WrongRole
        );
        for role in Role::ALL {
            for method in [
                "",
                "/grpc.health.v1.Health/Check",
                "/fangpin.v1.ClaimService/submitclaim",
                "/fangpin.v1.ClaimService/SubmitClaim/",
                "fangpin.v1.ClaimService/SubmitClaim",
            ] {
                assert_eq!(allowed(method, role), Decision::UnknownMethod, "{method:?}");
            }
        }
    }

    /// The matrix as the markdown table in docs/access.md.
    fn markdown_table() -> String {
        let mut out = String::from("| RPC | kind | scope |");
        for role in Role::ALL {
            out.push_str(&format!(" {} |", role.as_str()));
        }
        out.push_str("\n|---|---|---|");
        for _ in Role::ALL {
            out.push_str(":-:|");
        }
        out.push('\n');
        for r in MATRIX {
            let short = r.method.trim_start_matches("/fangpin.v1.");
            let kind = match r.access {
                Access::Read => "read",
                Access::Write => "write",
            };
            let target = match r.target {
                Target::County => "county",
                Target::Village => "village",
                Target::Listing => "listing",
            };
            out.push_str(&format!("| `{short}` | {kind} | {target} |"));
            for role in Role::ALL {
                out.push_str(if r.roles.contains(role) {
                    " ✓ |"
                } else {
                    " |"
                });
            }
            out.push('\n');
        }
        out
    }

    #[test]
    fn the_documented_table_is_the_matrix() {
        let doc = include_str!("../../../docs/access.md");
        let table = markdown_table();
        assert!(
            doc.contains(&table),
            "docs/access.md is out of date; its table should read:\n{table}"
        );
    }

    #[test]
    fn submit_channels_follow_the_role() {
        use Channel::*;
        assert!(may_submit_via(Role::VillageCommittee, VillageApplication));
        assert!(may_submit_via(Role::VillageCommittee, Emergency));
        assert!(may_submit_via(Role::Township, Emergency));
        assert!(!may_submit_via(Role::Township, DepartmentReferral));
        assert!(may_submit_via(Role::CountyOffice, DepartmentReferral));
        assert!(!may_submit_via(Role::CountyOffice, Emergency));
        // A role that may submit has some channel; one that may not has none.
        let submit = rule_for("/fangpin.v1.ClaimService/SubmitClaim").unwrap();
        for role in Role::ALL {
            let some = Channel::ALL.into_iter().any(|c| may_submit_via(role, c));
            assert_eq!(some, submit.roles.contains(role), "{role}");
        }
    }

    // ---- Roles and principals ----------------------------------------------

    #[test]
    fn roles_round_trip_and_parse_strictly() {
        for role in Role::ALL {
            assert_eq!(Role::parse(role.as_str()), Some(role));
        }
        assert_eq!(Role::parse("Surveyor"), None);
        assert_eq!(Role::parse(" auditor"), None);
        assert_eq!(Role::parse("admin"), None);
    }

    #[test]
    fn each_role_needs_its_scope() {
        let mut c = claims("surveyor");
        c.counties = vec!["130426".to_owned()];
        assert_eq!(
            Principal::from_claims(&c),
            Err(ScopeError::Missing {
                role: Role::Surveyor,
                claim: "insurer"
            })
        );
        c.insurer = Some(INSURER.to_owned());
        let p = Principal::from_claims(&c).unwrap();
        assert_eq!(p.role(), Role::Surveyor);
        c.counties.clear();
        assert_eq!(
            Principal::from_claims(&c),
            Err(ScopeError::NoCounty {
                role: Role::Surveyor
            })
        );

        let mut v = claims("village_committee");
        assert!(matches!(
            Principal::from_claims(&v),
            Err(ScopeError::Missing {
                claim: "village",
                ..
            })
        ));
        v.village = Some("130426100201".to_owned());
        assert!(Principal::from_claims(&v).is_ok());
        v.counties = vec!["130426".to_owned()];
        assert!(
            Principal::from_claims(&v).is_ok(),
            "the implied county may be repeated"
        );
        v.counties = vec!["130427".to_owned()];
        assert!(matches!(
            Principal::from_claims(&v),
            Err(ScopeError::CountyMismatch { .. })
        ));
        v.counties.clear();
        v.insurer = Some(INSURER.to_owned());
        assert!(matches!(
            Principal::from_claims(&v),
            Err(ScopeError::Unexpected {
                claim: "insurer",
                ..
            })
        ));

        let mut t = claims("township");
        t.township = Some("130426100".to_owned());
        let p = Principal::from_claims(&t).unwrap();
        assert!(p.touches_county(&county("130426")));
        for bad in [
            "13042610",
            "130426000",
            "13042610a",
            "000000100",
            "1304261000",
        ] {
            t.township = Some(bad.to_owned());
            assert!(
                matches!(
                    Principal::from_claims(&t),
                    Err(ScopeError::BadTownship { .. })
                ),
                "{bad}"
            );
        }

        for role in [
            "county_office",
            "department_feeder",
            "finance_bureau",
            "auditor",
        ] {
            let mut o = claims(role);
            assert!(matches!(
                Principal::from_claims(&o),
                Err(ScopeError::NoCounty { .. })
            ));
            o.counties = vec!["130426".to_owned(), "130427".to_owned()];
            assert!(Principal::from_claims(&o).is_ok());
            o.village = Some("130426100201".to_owned());
            assert!(matches!(
                Principal::from_claims(&o),
                Err(ScopeError::Unexpected {
                    claim: "village",
                    ..
                })
            ));
        }
    }

    #[test]
    fn limits_and_tidiness_of_claims() {
        let mut o = claims("county_office");
        o.counties = vec!["130426".to_owned(), "130426".to_owned()];
        assert!(matches!(
            Principal::from_claims(&o),
            Err(ScopeError::DuplicateCounty { .. })
        ));
        // 65 distinct valid county codes: 130401..130465 minus none ending 00.
        o.counties = (1..=65).map(|n| format!("1304{n:02}")).collect();
        assert_eq!(
            Principal::from_claims(&o),
            Err(ScopeError::TooManyCounties { got: 65 })
        );
        o.counties.truncate(64);
        assert!(Principal::from_claims(&o).is_ok());

        o.counties = vec!["130400".to_owned()];
        assert!(matches!(
            Principal::from_claims(&o),
            Err(ScopeError::BadCounty { .. })
        ));

        let mut s = claims("surveyor");
        s.counties = vec!["130426".to_owned()];
        for bad in ["", " 中国人寿", "中国人寿\n"] {
            s.insurer = Some(bad.to_owned());
            assert!(Principal::from_claims(&s).is_err(), "{bad:?}");
        }
        s.insurer = Some("保".repeat(MAX_NAME_CHARS + 1));
        assert_eq!(
            Principal::from_claims(&s),
            Err(ScopeError::NameTooLong { claim: "insurer" })
        );

        let mut e = claims("auditor");
        e.counties = vec!["130426".to_owned()];
        e.sub = String::new();
        assert_eq!(
            Principal::from_claims(&e),
            Err(ScopeError::EmptyName { claim: "sub" })
        );
        assert!(matches!(
            Principal::from_claims(&claims("root")),
            Err(ScopeError::UnknownRole { .. })
        ));
    }

    #[test]
    fn new_refuses_a_scope_of_the_wrong_shape() {
        let r = Principal::new(
            "x".to_owned(),
            Role::Auditor,
            Scope::Village(village("130426100201")),
        );
        assert_eq!(
            r,
            Err(ScopeError::WrongShape {
                role: Role::Auditor
            })
        );
    }

    #[test]
    fn claims_deserialize_from_token_json() {
        let json = r#"{"sub":"u-7","role":"surveyor","counties":["130426"],
            "insurer":"中国人寿","village":null,"exp":1900000000,"iss":"fangpin"}"#;
        let c: ScopeClaims = serde_json::from_str(json).unwrap();
        let p = Principal::from_claims(&c).unwrap();
        assert_eq!(p.subject(), "u-7");
        assert!(may_access_county(&p, &county("130426"), INSURER));
    }

    // ---- Scope checks -------------------------------------------------------

    #[test]
    fn surveyors_need_the_county_and_its_insurer() {
        let p = principal(
            Role::Surveyor,
            Scope::Insurer {
                insurer: INSURER.to_owned(),
                counties: vec![county("130426")],
            },
        );
        assert!(may_access_county(&p, &county("130426"), INSURER));
        assert!(!may_access_county(&p, &county("130426"), "中国人保"));
        assert!(!may_access_county(&p, &county("130427"), INSURER));
        assert!(may_access_village(&p, &village("130426100201"), INSURER));
        assert!(!may_access_village(
            &p,
            &village("130426100201"),
            "中国人保"
        ));
        assert!(!may_access_village(&p, &village("130427100201"), INSURER));
    }

    #[test]
    fn village_committees_and_townships_stay_below_the_county() {
        let v = principal(
            Role::VillageCommittee,
            Scope::Village(village("130426100201")),
        );
        assert!(may_access_village(&v, &village("130426100201"), INSURER));
        assert!(!may_access_village(&v, &village("130426100202"), INSURER));
        assert!(!may_access_county(&v, &county("130426"), INSURER));
        assert!(v.touches_county(&county("130426")));
        assert!(!v.touches_county(&county("130427")));

        let t = principal(
            Role::Township,
            Scope::Township(TownshipCode::parse("130426100").unwrap()),
        );
        assert!(may_access_village(&t, &village("130426100201"), INSURER));
        assert!(may_access_village(&t, &village("130426100999"), INSURER));
        assert!(!may_access_village(&t, &village("130426101201"), INSURER));
        assert!(!may_access_county(&t, &county("130426"), INSURER));
    }

    #[test]
    fn county_roles_see_whole_counties_whatever_the_insurer() {
        for role in [
            Role::CountyOffice,
            Role::DepartmentFeeder,
            Role::FinanceBureau,
            Role::Auditor,
        ] {
            let p = principal(
                role,
                Scope::Counties(vec![county("130426"), county("130427")]),
            );
            assert!(may_access_county(&p, &county("130427"), "any"));
            assert!(!may_access_county(&p, &county("130428"), "any"));
            assert!(may_access_village(&p, &village("130427100201"), "any"));
            assert!(!may_access_village(&p, &village("130428100201"), "any"));
        }
    }

    fn village_code() -> impl Strategy<Value = VillageCode> {
        // A few counties and townships so that near misses (same county, same
        // township, neighbouring village) come up often.
        (
            prop::sample::select(vec!["130426", "130427", "410621"]),
            1u32..4,
            1u32..6,
        )
            .prop_map(|(c, t, v)| village(&format!("{c}{:03}{:03}", 99 + t, 200 + v)))
    }

    proptest! {
        #[test]
        fn a_village_committee_never_reaches_outside_its_village(
            own in village_code(),
            other in village_code(),
            insurer in prop::sample::select(vec![INSURER, "中国人保", ""]),
        ) {
            let p = principal(Role::VillageCommittee, Scope::Village(own.clone()));
            prop_assert_eq!(may_access_village(&p, &other, insurer), own == other);
            prop_assert!(!may_access_county(&p, &other.county(), insurer));
        }

        #[test]
        fn a_township_reaches_exactly_its_villages(
            own in village_code(),
            other in village_code(),
        ) {
            let t = TownshipCode::parse(own.township_code()).unwrap();
            let p = principal(Role::Township, Scope::Township(t));
            prop_assert_eq!(
                may_access_village(&p, &other, INSURER),
                own.township_code() == other.township_code()
            );
        }
    }
}
