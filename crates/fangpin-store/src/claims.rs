//! Claims, their state history and objections.

use chrono::{DateTime, NaiveDate, Utc};
use fangpin_domain::Fen;
use fangpin_domain::claim::{Channel, ClaimState};
use fangpin_domain::policy::ReliefKind;
use fangpin_domain::publicity::PublicityPeriod;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{Conn, Result, StoreError, col, parse_date, parse_uuid, timestamp};

/// The surveyor's findings and the policy's verdict, frozen as JSON on the claim.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredAssessment {
    pub verified_income_per_capita: Fen,
    pub verified_cost: Fen,
    pub income_limit: Fen,
    pub threshold: Fen,
    pub eligible: bool,
    pub amount: Fen,
    pub explanation: Vec<String>,
    pub notes: String,
    pub evidence_refs: Vec<String>,
    pub surveyed_by: String,
    /// The computation step by step; absent on assessments stored before
    /// migration 0012.
    #[serde(default)]
    pub computation: Option<fangpin_domain::assessment::Computation>,
    /// Which set of findings this is (1 for the first survey).
    #[serde(default)]
    pub findings_seq: u32,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClaimRecord {
    pub claim_id: Uuid,
    pub county_code: String,
    pub policy_year: i32,
    pub policy_version: u32,
    pub household_id: Uuid,
    pub village_code: String,
    pub relief_kind: ReliefKind,
    pub channel: Channel,
    pub state: ClaimState,
    pub event_date: NaiveDate,
    pub event_reference: String,
    pub claimed_cost: Fen,
    pub description: String,
    pub submitted_by: String,
    pub intake_date: NaiveDate,
    pub survey_deadline: NaiveDate,
    /// The deadline counted days of a year the calendar did not cover.
    pub survey_deadline_provisional: bool,
    pub surveyor: Option<String>,
    pub assessment: Option<StoredAssessment>,
    pub advance: Fen,
    pub payout: Option<Fen>,
    pub publicity: Option<PublicityPeriod>,
    pub recommendation_reason: Option<String>,
    pub objections: u32,
    /// Payouts the bank returned after they were posted.
    pub payout_returns: u32,
    /// What the last payout went to, as PayClaim recorded it.
    pub paid_account_masked: Option<String>,
    pub paid_bank_reference: Option<String>,
    /// Filed (备案) under its procedure, so its relief is reserved or paid:
    /// set by the state machine (`ClaimState::is_filed`), kept here because a
    /// county that files before publicity has filed claims in publicity.
    pub filed: bool,
}

impl ClaimRecord {
    /// Where the claim lives, for the server's scope check.
    pub fn place(&self) -> crate::places::Place {
        crate::places::Place {
            county_code: self.county_code.clone(),
            village_code: self.village_code.clone(),
        }
    }
}

const CLAIM_COLUMNS: &str = "claim_id, county_code, policy_year, policy_version, household_id, village_code, \
    relief_kind, channel, state, event_date, event_reference, claimed_cost_fen, description, submitted_by, \
    intake_date, survey_deadline, surveyor, assessment, advance_fen, payout_fen, publicity_opens_on, \
    publicity_last_day, recommendation_reason, objections, survey_deadline_provisional, payout_returns, \
    paid_account_masked, paid_bank_reference, filed";

fn corrupt(what: &str, value: &str) -> StoreError {
    StoreError::Corrupt(format!("bad stored {what} {value:?}"))
}

fn decode_claim(row: &sqlx::any::AnyRow) -> Result<ClaimRecord> {
    let kind: String = col(row, "relief_kind")?;
    let channel: String = col(row, "channel")?;
    let state: String = col(row, "state")?;
    let year: i64 = col(row, "policy_year")?;
    let version: i64 = col(row, "policy_version")?;
    let assessment: Option<String> = col(row, "assessment")?;
    let opens: Option<String> = col(row, "publicity_opens_on")?;
    let last: Option<String> = col(row, "publicity_last_day")?;
    let objections: i64 = col(row, "objections")?;
    let publicity = match (opens, last) {
        (Some(o), Some(l)) => Some(PublicityPeriod {
            opens_on: parse_date(&o)?,
            last_objection_day: parse_date(&l)?,
        }),
        _ => None,
    };
    Ok(ClaimRecord {
        claim_id: parse_uuid(&col::<String>(row, "claim_id")?)?,
        county_code: col(row, "county_code")?,
        policy_year: i32::try_from(year).map_err(|_| corrupt("policy year", &year.to_string()))?,
        policy_version: u32::try_from(version)
            .map_err(|_| corrupt("policy version", &version.to_string()))?,
        household_id: parse_uuid(&col::<String>(row, "household_id")?)?,
        village_code: col(row, "village_code")?,
        relief_kind: ReliefKind::parse(&kind).ok_or_else(|| corrupt("relief kind", &kind))?,
        channel: Channel::parse(&channel).ok_or_else(|| corrupt("channel", &channel))?,
        state: ClaimState::parse(&state).ok_or_else(|| corrupt("state", &state))?,
        event_date: parse_date(&col::<String>(row, "event_date")?)?,
        event_reference: col(row, "event_reference")?,
        claimed_cost: Fen::new(col(row, "claimed_cost_fen")?),
        description: col(row, "description")?,
        submitted_by: col(row, "submitted_by")?,
        intake_date: parse_date(&col::<String>(row, "intake_date")?)?,
        survey_deadline: parse_date(&col::<String>(row, "survey_deadline")?)?,
        survey_deadline_provisional: col::<i64>(row, "survey_deadline_provisional")? != 0,
        surveyor: col(row, "surveyor")?,
        assessment: assessment
            .map(|a| {
                serde_json::from_str(&a)
                    .map_err(|e| StoreError::Corrupt(format!("stored assessment: {e}")))
            })
            .transpose()?,
        advance: Fen::new(col(row, "advance_fen")?),
        payout: col::<Option<i64>>(row, "payout_fen")?.map(Fen::new),
        publicity,
        recommendation_reason: col(row, "recommendation_reason")?,
        objections: u32::try_from(objections)
            .map_err(|_| corrupt("objection count", &objections.to_string()))?,
        payout_returns: u32::try_from(col::<i64>(row, "payout_returns")?)
            .map_err(|_| corrupt("payout returns", "negative"))?,
        paid_account_masked: col(row, "paid_account_masked")?,
        filed: col::<i64>(row, "filed")? != 0,
        paid_bank_reference: col(row, "paid_bank_reference")?,
    })
}

fn assessment_json(claim: &ClaimRecord) -> Result<Option<String>> {
    claim
        .assessment
        .as_ref()
        .map(|a| {
            serde_json::to_string(a).map_err(|e| StoreError::Corrupt(format!("assessment: {e}")))
        })
        .transpose()
}

/// Inserts a new claim. A second open claim for the same household, relief kind
/// and event fails with a unique violation.
#[tracing::instrument(name = "store.claims.insert_claim", level = "info", skip_all, fields(fangpin.claim_id = %claim.claim_id, fangpin.county_code = %claim.county_code))]
pub async fn insert_claim(conn: &mut Conn, claim: &ClaimRecord, now: DateTime<Utc>) -> Result<()> {
    sqlx::query(
        "INSERT INTO claims (claim_id, county_code, policy_year, policy_version, household_id, village_code, \
         relief_kind, channel, state, event_date, event_reference, claimed_cost_fen, description, submitted_by, \
         intake_date, survey_deadline, advance_fen, objections, created_at, updated_at, survey_deadline_provisional, \
         event_key) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, 0, 0, $17, $17, $18, $19)",
    )
    .bind(claim.claim_id.to_string())
    .bind(&claim.county_code)
    .bind(i64::from(claim.policy_year))
    .bind(i64::from(claim.policy_version))
    .bind(claim.household_id.to_string())
    .bind(&claim.village_code)
    .bind(claim.relief_kind.as_str())
    .bind(claim.channel.as_str())
    .bind(claim.state.as_str())
    .bind(claim.event_date.to_string())
    .bind(&claim.event_reference)
    .bind(claim.claimed_cost.get())
    .bind(&claim.description)
    .bind(&claim.submitted_by)
    .bind(claim.intake_date.to_string())
    .bind(claim.survey_deadline.to_string())
    .bind(timestamp(now))
    .bind(i64::from(claim.survey_deadline_provisional))
    .bind(fangpin_domain::claim::event_key(&claim.event_reference))
    .execute(conn)
    .await?;
    Ok(())
}

/// The claim that holds an event's natural key: the household's claim of
/// this kind for the same normalised event reference that is not rejected.
#[tracing::instrument(name = "store.claims.claim_for_event", level = "info", skip_all)]
pub async fn claim_for_event(
    conn: &mut Conn,
    household_id: Uuid,
    kind: ReliefKind,
    event_reference: &str,
) -> Result<Option<(Uuid, ClaimState)>> {
    let row = sqlx::query(
        "SELECT claim_id, state FROM claims WHERE household_id = $1 AND relief_kind = $2 \
         AND event_key = $3 AND state <> 'rejected' LIMIT 1",
    )
    .bind(household_id.to_string())
    .bind(kind.as_str())
    .bind(fangpin_domain::claim::event_key(event_reference))
    .fetch_optional(conn)
    .await?;
    row.map(|r| {
        let state: String = col(&r, "state")?;
        Ok((
            parse_uuid(&col::<String>(&r, "claim_id")?)?,
            ClaimState::parse(&state).ok_or_else(|| corrupt("state", &state))?,
        ))
    })
    .transpose()
}

/// Writes every field a claim's workflow can change. The identity of a claim
/// (household, kind, event, channel, policy version) is never updated.
#[tracing::instrument(name = "store.claims.update_claim", level = "info", skip_all, fields(fangpin.claim_id = %claim.claim_id, fangpin.county_code = %claim.county_code))]
pub async fn update_claim(conn: &mut Conn, claim: &ClaimRecord, now: DateTime<Utc>) -> Result<()> {
    let done = sqlx::query(
        "UPDATE claims SET state = $1, surveyor = $2, assessment = $3, assessed_amount_fen = $4, advance_fen = $5, \
         payout_fen = $6, publicity_opens_on = $7, publicity_last_day = $8, recommendation_reason = $9, \
         objections = $10, survey_deadline = $11, updated_at = $12, survey_deadline_provisional = $14, \
         payout_returns = $15, paid_account_masked = $16, paid_bank_reference = $17, filed = $18 \
         WHERE claim_id = $13",
    )
    .bind(claim.state.as_str())
    .bind(claim.surveyor.clone())
    .bind(assessment_json(claim)?)
    .bind(claim.assessment.as_ref().map(|a| a.amount.get()))
    .bind(claim.advance.get())
    .bind(claim.payout.map(Fen::get))
    .bind(claim.publicity.map(|p| p.opens_on.to_string()))
    .bind(claim.publicity.map(|p| p.last_objection_day.to_string()))
    .bind(claim.recommendation_reason.clone())
    .bind(i64::from(claim.objections))
    .bind(claim.survey_deadline.to_string())
    .bind(timestamp(now))
    .bind(claim.claim_id.to_string())
    .bind(i64::from(claim.survey_deadline_provisional))
    .bind(i64::from(claim.payout_returns))
    .bind(claim.paid_account_masked.clone())
    .bind(claim.paid_bank_reference.clone())
    .bind(i64::from(claim.filed))
    .execute(conn)
    .await?;
    if done.rows_affected() != 1 {
        return Err(StoreError::Corrupt(format!(
            "claim {} vanished during update",
            claim.claim_id
        )));
    }
    Ok(())
}

#[tracing::instrument(name = "store.claims.get_claim", level = "info", skip_all, fields(fangpin.claim_id = %claim_id))]
pub async fn get_claim(conn: &mut Conn, claim_id: Uuid) -> Result<Option<ClaimRecord>> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {CLAIM_COLUMNS} FROM claims WHERE claim_id = $1"
    )))
    .bind(claim_id.to_string())
    .fetch_optional(conn)
    .await?;
    row.as_ref().map(decode_claim).transpose()
}

/// Claims of a county in id order (ids are UUIDv7, so intake order), after
/// `after` for paging, optionally in one state.
/// Which claims of a county a listing or count covers: every cut is
/// optional, and they combine with AND.
#[derive(Clone, Debug, Default)]
pub struct ClaimFilter {
    /// Digits only: the caller's scope already narrowed by the requested
    /// township or village ("" for the whole county).
    pub village_prefix: String,
    pub state: Option<ClaimState>,
    pub relief_kind: Option<ReliefKind>,
    pub channel: Option<Channel>,
    /// Intake dates, both inclusive.
    pub intake_from: Option<NaiveDate>,
    pub intake_to: Option<NaiveDate>,
}

impl ClaimFilter {
    /// The WHERE clause's cuts after `county_code = $1`, with parameters
    /// from `$first` on, and the values to bind in order. One text shared by
    /// the listing and the count, so the two cannot disagree.
    fn cuts(&self, first: usize) -> (String, [String; 6]) {
        // Village codes are digits, so the prefix needs no LIKE escaping;
        // the assertion keeps it that way.
        assert!(
            self.village_prefix.bytes().all(|b| b.is_ascii_digit()),
            "village prefix is digits"
        );
        let n = |i: usize| first + i;
        let sql = format!(
            " AND village_code LIKE ${} AND (${} = '' OR state = ${}) \
             AND (${} = '' OR relief_kind = ${}) AND (${} = '' OR channel = ${}) \
             AND (${} = '' OR intake_date >= ${}) AND (${} = '' OR intake_date <= ${})",
            n(0),
            n(1),
            n(1),
            n(2),
            n(2),
            n(3),
            n(3),
            n(4),
            n(4),
            n(5),
            n(5),
        );
        let values = [
            format!("{}%", self.village_prefix),
            self.state.map_or("", ClaimState::as_str).to_string(),
            self.relief_kind.map_or("", ReliefKind::as_str).to_string(),
            self.channel.map_or("", Channel::as_str).to_string(),
            self.intake_from.map(|d| d.to_string()).unwrap_or_default(),
            self.intake_to.map(|d| d.to_string()).unwrap_or_default(),
        ];
        (sql, values)
    }
}

/// A page of `county_code`'s claims under `filter`, in claim id order after
/// `after`.
#[tracing::instrument(name = "store.claims.list_claims", level = "info", skip_all, fields(fangpin.county_code = %county_code))]
pub async fn list_claims(
    conn: &mut Conn,
    county_code: &str,
    filter: &ClaimFilter,
    after: Option<Uuid>,
    limit: u32,
) -> Result<Vec<ClaimRecord>> {
    let (cuts, values) = filter.cuts(4);
    let mut query = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {CLAIM_COLUMNS} FROM claims WHERE county_code = $1 AND claim_id > $2{cuts} \
         ORDER BY claim_id LIMIT $3"
    )))
    .bind(county_code)
    .bind(after.map(|a| a.to_string()).unwrap_or_default())
    .bind(i64::from(limit));
    for value in values {
        query = query.bind(value);
    }
    let rows = query.fetch_all(conn).await?;
    rows.iter().map(decode_claim).collect()
}

/// How many of `county_code`'s claims under `filter` are in each state, in
/// one grouped query (the dashboard of a county with 10,000 claims reads
/// one row per state, not the claims).
#[tracing::instrument(name = "store.claims.count_by_state", level = "info", skip_all, fields(fangpin.county_code = %county_code))]
pub async fn count_by_state(
    conn: &mut Conn,
    county_code: &str,
    filter: &ClaimFilter,
) -> Result<Vec<(ClaimState, u64)>> {
    let (cuts, values) = filter.cuts(2);
    let mut query = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT state, COUNT(*) AS claims FROM claims WHERE county_code = $1{cuts} GROUP BY state"
    )))
    .bind(county_code);
    for value in values {
        query = query.bind(value);
    }
    let rows = query.fetch_all(conn).await?;
    rows.iter()
        .map(|row| {
            let state: String = col(row, "state")?;
            let count: i64 = col(row, "claims")?;
            let state = ClaimState::parse(&state).ok_or_else(|| corrupt("claim state", &state))?;
            let count = u64::try_from(count).map_err(|_| corrupt("count", &count.to_string()))?;
            Ok((state, count))
        })
        .collect()
}

/// A surveyor's open surveys, earliest deadline first (the work queue),
/// then by claim id; `after` is the (deadline, claim id) of the last row of
/// the previous page.
#[tracing::instrument(name = "store.claims.list_surveys", level = "info", skip_all)]
pub async fn list_surveys(
    conn: &mut Conn,
    surveyor: &str,
    after: Option<(NaiveDate, Uuid)>,
    limit: u32,
) -> Result<Vec<ClaimRecord>> {
    let (after_date, after_id) = match after {
        Some((d, id)) => (d.to_string(), id.to_string()),
        None => (String::new(), String::new()),
    };
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {CLAIM_COLUMNS} FROM claims WHERE surveyor = $1 AND state = 'under_survey' \
         AND (survey_deadline > $2 OR (survey_deadline = $2 AND claim_id > $3)) \
         ORDER BY survey_deadline, claim_id LIMIT $4"
    )))
    .bind(surveyor)
    .bind(after_date)
    .bind(after_id)
    .bind(i64::from(limit))
    .fetch_all(conn)
    .await?;
    rows.iter().map(decode_claim).collect()
}

/// Whether any claim's survey deadline is provisional. Not instrumented: it
/// runs at every start-up, outside any RPC, where a store span would have
/// no call to belong to.
pub async fn any_provisional_deadline(conn: &mut Conn) -> Result<bool> {
    Ok(
        sqlx::query("SELECT 1 AS one FROM claims WHERE survey_deadline_provisional = 1 LIMIT 1")
            .fetch_optional(conn)
            .await?
            .is_some(),
    )
}

/// Claims whose survey deadline is provisional, of any county, in id order
/// after `after`: the start-up recomputation's batches.
#[tracing::instrument(
    name = "store.claims.list_provisional_deadlines",
    level = "info",
    skip_all
)]
pub async fn list_provisional_deadlines(
    conn: &mut Conn,
    after: Option<Uuid>,
    limit: u32,
) -> Result<Vec<ClaimRecord>> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {CLAIM_COLUMNS} FROM claims WHERE survey_deadline_provisional = 1 AND claim_id > $1 \
         ORDER BY claim_id LIMIT $2"
    )))
    .bind(after.map(|a| a.to_string()).unwrap_or_default())
    .bind(i64::from(limit))
    .fetch_all(conn)
    .await?;
    rows.iter().map(decode_claim).collect()
}

/// The claims of a county's policy year that have not reached a final
/// state (paid or rejected), the first `limit` in id order, and how many
/// there are in all: what stands between a year and its close.
#[tracing::instrument(name = "store.claims.claims_not_final", level = "info", skip_all, fields(fangpin.county_code = %county_code))]
pub async fn claims_not_final(
    conn: &mut Conn,
    county_code: &str,
    policy_year: i32,
    limit: u32,
) -> Result<(Vec<(Uuid, ClaimState)>, i64)> {
    let rows = sqlx::query(
        "SELECT claim_id, state FROM claims WHERE county_code = $1 AND policy_year = $2 \
         AND state NOT IN ('paid', 'rejected', 'disqualified') ORDER BY claim_id LIMIT $3",
    )
    .bind(county_code)
    .bind(i64::from(policy_year))
    .bind(i64::from(limit))
    .fetch_all(&mut *conn)
    .await?;
    let listed = rows
        .iter()
        .map(|r| {
            let state: String = col(r, "state")?;
            Ok((
                parse_uuid(&col::<String>(r, "claim_id")?)?,
                ClaimState::parse(&state).ok_or_else(|| corrupt("state", &state))?,
            ))
        })
        .collect::<Result<Vec<_>>>()?;
    let total: i64 = col(
        &sqlx::query(
            "SELECT COUNT(*) AS n FROM claims WHERE county_code = $1 AND policy_year = $2 \
             AND state NOT IN ('paid', 'rejected', 'disqualified')",
        )
        .bind(county_code)
        .bind(i64::from(policy_year))
        .fetch_one(conn)
        .await?,
        "n",
    )?;
    Ok((listed, total))
}

/// One line of a village notice board.
#[derive(Clone, Debug)]
pub struct NoticeRecord {
    pub claim: ClaimRecord,
    pub head_name: String,
    /// The only form a notice board shows; stored, so no key is needed.
    pub head_id_masked: String,
}

/// Maximum notices on one village board; a village never has this many cases at once.
pub const MAX_NOTICES: i64 = 500;

#[tracing::instrument(name = "store.claims.list_notices", level = "info", skip_all)]
pub async fn list_notices(conn: &mut Conn, village_code: &str) -> Result<Vec<NoticeRecord>> {
    let columns: String = CLAIM_COLUMNS
        .split(", ")
        .map(|c| format!("c.{}", c.trim()))
        .collect::<Vec<_>>()
        .join(", ");
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {columns}, h.head_name, h.head_id_masked FROM claims c \
         JOIN households h ON h.household_id = c.household_id \
         WHERE c.village_code = $1 AND c.state = 'in_publicity' ORDER BY c.claim_id LIMIT $2"
    )))
    .bind(village_code)
    .bind(MAX_NOTICES)
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|row| {
            Ok(NoticeRecord {
                claim: decode_claim(row)?,
                head_name: col(row, "head_name")?,
                head_id_masked: col(row, "head_id_masked")?,
            })
        })
        .collect()
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TransitionRecord {
    /// None for the intake itself.
    pub from_state: Option<ClaimState>,
    pub to_state: ClaimState,
    pub event: String,
    pub actor: String,
    pub reason: String,
    pub at: String,
}

#[tracing::instrument(name = "store.claims.append_transition", level = "info", skip_all, fields(fangpin.claim_id = %claim_id))]
pub async fn append_transition(
    conn: &mut Conn,
    claim_id: Uuid,
    transition: &TransitionRecord,
    request_id: &str,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO claim_transitions (claim_id, seq, from_state, to_state, event, actor, reason, request_id, at) \
         SELECT $1, COALESCE(MAX(seq), 0) + 1, $2, $3, $4, $5, $6, $7, $8 FROM claim_transitions WHERE claim_id = $1",
    )
    .bind(claim_id.to_string())
    .bind(transition.from_state.map_or("", ClaimState::as_str))
    .bind(transition.to_state.as_str())
    .bind(&transition.event)
    .bind(&transition.actor)
    .bind(&transition.reason)
    .bind(request_id)
    .bind(&transition.at)
    .execute(conn)
    .await?;
    Ok(())
}

/// Appends a set of findings to the claim's record of them; returns its
/// sequence number (1 for the first).
#[tracing::instrument(name = "store.claims.append_findings", level = "info", skip_all, fields(fangpin.claim_id = %claim_id))]
pub async fn append_findings(
    conn: &mut Conn,
    claim_id: Uuid,
    assessment: &StoredAssessment,
    recorded_at: &str,
    request_id: &str,
) -> Result<u32> {
    let seq: i64 = col(
        &sqlx::query(
            "SELECT COALESCE(MAX(seq), 0) + 1 AS seq FROM claim_findings WHERE claim_id = $1",
        )
        .bind(claim_id.to_string())
        .fetch_one(&mut *conn)
        .await?,
        "seq",
    )?;
    let seq = u32::try_from(seq).map_err(|_| corrupt("findings seq", &seq.to_string()))?;
    let json = serde_json::to_string(&StoredAssessment {
        findings_seq: seq,
        ..assessment.clone()
    })
    .map_err(|e| StoreError::Corrupt(format!("assessment: {e}")))?;
    sqlx::query(
        "INSERT INTO claim_findings (claim_id, seq, surveyed_by, recorded_at, assessment, request_id) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(claim_id.to_string())
    .bind(i64::from(seq))
    .bind(&assessment.surveyed_by)
    .bind(recorded_at)
    .bind(json)
    .bind(request_id)
    .execute(conn)
    .await?;
    Ok(seq)
}

/// Maximum transitions returned; a claim's workflow has a few dozen at most.
pub const MAX_TRANSITIONS: i64 = 1_000;

#[tracing::instrument(name = "store.claims.list_transitions", level = "info", skip_all, fields(fangpin.claim_id = %claim_id))]
pub async fn list_transitions(conn: &mut Conn, claim_id: Uuid) -> Result<Vec<TransitionRecord>> {
    let rows = sqlx::query(
        "SELECT from_state, to_state, event, actor, reason, at FROM claim_transitions WHERE claim_id = $1 \
         ORDER BY seq LIMIT $2",
    )
    .bind(claim_id.to_string())
    .bind(MAX_TRANSITIONS)
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|row| {
            let from: String = col(row, "from_state")?;
            let to: String = col(row, "to_state")?;
            Ok(TransitionRecord {
                from_state: if from.is_empty() {
                    None
                } else {
                    Some(ClaimState::parse(&from).ok_or_else(|| corrupt("state", &from))?)
                },
                to_state: ClaimState::parse(&to).ok_or_else(|| corrupt("state", &to))?,
                event: col(row, "event")?,
                actor: col(row, "actor")?,
                reason: col(row, "reason")?,
                at: col(row, "at")?,
            })
        })
        .collect()
}

#[tracing::instrument(name = "store.claims.insert_objection", level = "info", skip_all, fields(fangpin.claim_id = %claim_id))]
pub async fn insert_objection(
    conn: &mut Conn,
    claim_id: Uuid,
    objector: &str,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<()> {
    sqlx::query("INSERT INTO objections (objection_id, claim_id, objector, reason, raised_at) VALUES ($1, $2, $3, $4, $5)")
        .bind(Uuid::now_v7().to_string())
        .bind(claim_id.to_string())
        .bind(objector)
        .bind(reason)
        .bind(timestamp(now))
        .execute(conn)
        .await?;
    Ok(())
}

/// An open claim with the day (UTC timestamp) it entered its current state:
/// what the time-limit listing (限时办结) measures each stage from.
#[derive(Clone, Debug)]
pub struct OpenClaim {
    pub claim: ClaimRecord,
    /// The latest transition into the claim's state; None only for a claim
    /// whose history is missing, which the caller treats as its intake.
    pub entered_at: Option<String>,
}

/// The claims of a county in a stage that may have a time limit (the
/// survey, and every state that can wait for filing or for the payout,
/// wherever the claim's procedure puts them), at most `limit` in id order.
#[tracing::instrument(name = "store.claims.open_with_stage_start", level = "info", skip_all, fields(fangpin.county_code = %county_code))]
pub async fn open_with_stage_start(
    conn: &mut Conn,
    county_code: &str,
    limit: u32,
) -> Result<Vec<OpenClaim>> {
    let columns: String = CLAIM_COLUMNS
        .split(", ")
        .map(|c| format!("c.{}", c.trim()))
        .collect::<Vec<_>>()
        .join(", ");
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {columns}, (SELECT MAX(t.at) FROM claim_transitions t \
         WHERE t.claim_id = c.claim_id AND t.to_state = c.state) AS entered_at \
         FROM claims c WHERE c.county_code = $1 \
         AND c.state IN ('received', 'under_survey', 'recommended', 'deliberated', 'township_approved', \
         'publicity_passed', 'filed') \
         ORDER BY c.claim_id LIMIT $2"
    )))
    .bind(county_code)
    .bind(i64::from(limit))
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|row| {
            Ok(OpenClaim {
                claim: decode_claim(row)?,
                entered_at: col(row, "entered_at")?,
            })
        })
        .collect()
}

/// A county year's claims in `states`, in id order, at most `limit`.
#[tracing::instrument(name = "store.claims.in_states", level = "info", skip_all, fields(fangpin.county_code = %county_code))]
pub async fn in_states(
    conn: &mut Conn,
    county_code: &str,
    policy_year: i32,
    states: &[ClaimState],
    limit: u32,
) -> Result<Vec<ClaimRecord>> {
    // States are our own snake_case names, so they are safe to inline.
    let list = states
        .iter()
        .map(|s| format!("'{}'", s.as_str()))
        .collect::<Vec<_>>()
        .join(", ");
    assert!(!states.is_empty(), "at least one state");
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {CLAIM_COLUMNS} FROM claims WHERE county_code = $1 AND policy_year = $2 \
         AND state IN ({list}) ORDER BY claim_id LIMIT $3"
    )))
    .bind(county_code)
    .bind(i64::from(policy_year))
    .bind(i64::from(limit))
    .fetch_all(conn)
    .await?;
    rows.iter().map(decode_claim).collect()
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectionRecord {
    pub objection_id: Uuid,
    pub objector: String,
    pub reason: String,
    pub raised_at: String,
}

/// The most objections one claim lists.
pub const MAX_OBJECTIONS: i64 = 200;

/// A claim's objections in the order they were raised (ids are UUIDv7).
#[tracing::instrument(name = "store.claims.list_objections", level = "info", skip_all, fields(fangpin.claim_id = %claim_id))]
pub async fn list_objections(conn: &mut Conn, claim_id: Uuid) -> Result<Vec<ObjectionRecord>> {
    sqlx::query(
        "SELECT objection_id, objector, reason, raised_at FROM objections WHERE claim_id = $1 \
         ORDER BY objection_id LIMIT $2",
    )
    .bind(claim_id.to_string())
    .bind(MAX_OBJECTIONS)
    .fetch_all(conn)
    .await?
    .iter()
    .map(|r| {
        Ok(ObjectionRecord {
            objection_id: parse_uuid(&col::<String>(r, "objection_id")?)?,
            objector: col(r, "objector")?,
            reason: col(r, "reason")?,
            raised_at: col(r, "raised_at")?,
        })
    })
    .collect()
}
