//! ClaimService: intake through three channels, the claim record, its history,
//! and emergency advances (先救助后认定).

use fangpin_domain::access::TownshipCode;
use fangpin_domain::claim::{ClaimState, may_pay_emergency_advance};
use fangpin_domain::identity::CountyCode;
use fangpin_domain::ledger::PostingKind;
use fangpin_proto::tonic::{self, Request, Response, Status};
use fangpin_proto::v1::{self as pb, claim_service_server::ClaimService};
use fangpin_store::claims::{self as claim_store, ClaimRecord, TransitionRecord};
use fangpin_store::{counties, timestamp};
use uuid::Uuid;

use crate::services::{claim_ids, claim_policy, load_claim, pay_out_of_pool};
use crate::write_path::app::App;
use crate::write_path::convert::{self, Check, MAX_LABEL_CHARS, MAX_TEXT_CHARS};
use crate::write_path::error::AppError;

pub const MAX_CLAIMS_PAGE: u32 = 500;

pub struct ClaimApi(pub App);

/// ListClaims' optional cuts, checked: the place asked for (a township or
/// village of the county, as a village-code prefix) and the rest.
struct Cuts {
    place_prefix: String,
    filter: claim_store::ClaimFilter,
}

impl Cuts {
    fn check(
        c: &mut Check,
        county: Option<&CountyCode>,
        req: &pb::ListClaimsRequest,
    ) -> Option<Cuts> {
        let state = c.state_filter("state", req.state);
        let mut place_prefix = String::new();
        if !req.township_code.is_empty() {
            match TownshipCode::parse(&req.township_code) {
                Ok(t) if county.is_some_and(|county| t.county() != county) => {
                    c.bad("township_code", "lies outside county_code");
                }
                Ok(t) => place_prefix = t.as_str().to_string(),
                Err(e) => c.bad("township_code", e.to_string()),
            }
        }
        if !req.village_code.is_empty()
            && let Some(village) = c.village("village_code", &req.village_code)
        {
            if county.is_some_and(|county| village.county() != *county) {
                c.bad("village_code", "lies outside county_code");
            } else if !village.as_str().starts_with(&place_prefix) {
                c.bad("village_code", "lies outside township_code");
            } else {
                place_prefix = village.as_str().to_string();
            }
        }
        let relief_kind = match req.relief_kind {
            0 => Some(None),
            kind => c.relief_kind("relief_kind", kind).map(Some),
        };
        let channel = match req.channel {
            0 => Some(None),
            channel => c.channel("channel", channel).map(Some),
        };
        let date = |c: &mut Check, field: &str, text: &str| match text {
            "" => Some(None),
            text => c.date(field, text).map(Some),
        };
        let intake_from = date(c, "intake_from", &req.intake_from);
        let intake_to = date(c, "intake_to", &req.intake_to);
        if let (Some(Some(from)), Some(Some(to))) = (intake_from, intake_to)
            && from > to
        {
            c.bad("intake_to", "is before intake_from");
        }
        Some(Cuts {
            place_prefix,
            filter: claim_store::ClaimFilter {
                village_prefix: String::new(),
                state: state?,
                relief_kind: relief_kind?,
                channel: channel?,
                intake_from: intake_from?,
                intake_to: intake_to?,
            },
        })
    }

    /// The filter within the caller's scope (`Listing::village_prefix`):
    /// None when the place asked for and the scope do not meet.
    fn within(self, scope_prefix: Option<String>) -> Option<claim_store::ClaimFilter> {
        let prefix = narrower_prefix(&scope_prefix?, &self.place_prefix)?.to_string();
        Some(claim_store::ClaimFilter {
            village_prefix: prefix,
            ..self.filter
        })
    }
}

/// Of two village-code prefixes, the one that lies within the other, or
/// None when they name places apart.
fn narrower_prefix<'a>(a: &'a str, b: &'a str) -> Option<&'a str> {
    if a.starts_with(b) {
        Some(a)
    } else if b.starts_with(a) {
        Some(b)
    } else {
        None
    }
}

#[tonic::async_trait]
impl ClaimService for ClaimApi {
    async fn submit_claim(
        &self,
        request: Request<pb::SubmitClaimRequest>,
    ) -> Result<Response<pb::ClaimResponse>, Status> {
        let req = request.into_inner();
        let mut c = Check::new();
        let request_id = c.request_id(&req.request_id);
        let household_id = c.uuid("household_id", &req.household_id);
        let relief_kind = c.relief_kind("relief_kind", req.relief_kind);
        let channel = c.channel("channel", req.channel);
        let event_date = c.date("event_date", &req.event_date);
        let event_reference = c.text("event_reference", &req.event_reference, MAX_LABEL_CHARS);
        let claimed_cost = c.money("claimed_cost_yuan", &req.claimed_cost_yuan);
        let description = c.optional_text("description", &req.description, MAX_TEXT_CHARS);
        let submitted_by = c.text("submitted_by", &req.submitted_by, MAX_LABEL_CHARS);
        c.finish()?;
        let household_id = household_id.expect("checked");
        crate::write_path::scope::authorize_channel(channel.expect("checked"))?;
        crate::write_path::scope::check_acting_person(
            "submitted_by",
            submitted_by.as_deref().expect("checked"),
        )?;
        self.0.authorize_household(household_id).await?;
        let today = self.0.today();
        let event_date = event_date.expect("checked");
        if event_date > today {
            return Err(AppError::invalid("event_date", "must not lie in the future").into());
        }
        // The household fixes the county; read it before taking the county's lock.
        let household = {
            let mut conn = self.0.store.read().await.map_err(AppError::from)?;
            counties::get_household(&mut conn, household_id)
                .await
                .map_err(AppError::from)?
                .ok_or_else(|| AppError::not_found("household", household_id))?
        };
        let calendar = self.0.calendar.clone();
        let relief_kind = relief_kind.expect("checked");
        let lock = household.county_code.clone();
        let claim_id = Uuid::now_v7();
        tracing::Span::current().record(
            crate::transport::telemetry::FIELD_CLAIM_ID,
            claim_id.to_string(),
        );
        let mut claim = ClaimRecord {
            claim_id,
            county_code: household.county_code.clone(),
            policy_year: household.policy_year,
            policy_version: 0,
            household_id,
            village_code: household.village_code.clone(),
            relief_kind,
            channel: channel.expect("checked"),
            state: ClaimState::Received,
            event_date,
            event_reference: event_reference.expect("checked"),
            claimed_cost: claimed_cost.expect("checked"),
            description: description.expect("checked"),
            submitted_by: submitted_by.expect("checked"),
            intake_date: today,
            survey_deadline: today,
            survey_deadline_provisional: false,
            surveyor: None,
            assessment: None,
            advance: fangpin_domain::Fen::ZERO,
            payout: None,
            publicity: None,
            recommendation_reason: None,
            objections: 0,
            payout_returns: 0,
            paid_account_masked: None,
            paid_bank_reference: None,
            filed: false,
        };
        let response = self
            .0
            .write(
                "SubmitClaim",
                &req,
                &request_id.expect("checked").to_string(),
                &lock,
                move |conn, ctx| {
                    Box::pin(async move {
                        open_claim(conn, &ctx, &calendar, &mut claim, household.household_type)
                            .await?;
                        Ok(super::claim_response(&claim))
                    })
                },
            )
            .await?;
        Ok(Response::new(response))
    }

    async fn get_claim(
        &self,
        request: Request<pb::GetClaimRequest>,
    ) -> Result<Response<pb::ClaimResponse>, Status> {
        let req = request.into_inner();
        let mut c = Check::new();
        let id = c.uuid("claim_id", &req.claim_id);
        c.finish()?;
        self.0.authorize_claim(id.expect("checked")).await?;
        let mut conn = self.0.store.read().await.map_err(AppError::from)?;
        let claim = load_claim(&mut conn, id.expect("checked")).await?;
        Ok(Response::new(super::claim_response(&claim)))
    }

    async fn list_claims(
        &self,
        request: Request<pb::ListClaimsRequest>,
    ) -> Result<Response<pb::ListClaimsResponse>, Status> {
        let req = request.into_inner();
        let mut c = Check::new();
        let county = c.county("county_code", &req.county_code);
        let cuts = Cuts::check(&mut c, county.as_ref(), &req);
        let size = c.page_size("page_size", req.page_size, MAX_CLAIMS_PAGE);
        let after = c.uuid_token("page_token", &req.page_token);
        c.finish()?;
        let (size, county) = (size.expect("checked"), county.expect("checked"));
        let mut listing = self.0.listing();
        // A village committee's or township's page is narrowed in SQL, so
        // its pages are full; every row is still checked below.
        let Some(filter) = cuts
            .expect("checked")
            .within(listing.village_prefix(&county))
        else {
            return Ok(Response::new(pb::ListClaimsResponse::default()));
        };
        let mut conn = self.0.store.read().await.map_err(AppError::from)?;
        let claims = claim_store::list_claims(
            &mut conn,
            county.as_str(),
            &filter,
            after.expect("checked"),
            size,
        )
        .await
        .map_err(AppError::from)?;
        drop(conn);
        // The token is computed on the rows read, so a row left out below
        // does not end the listing early.
        let next_page_token = convert::next_page_token(&claims, size, |c| c.claim_id.to_string());
        let mut shown = Vec::with_capacity(claims.len());
        for claim in &claims {
            if listing.shows(&claim.place()).await? {
                shown.push(convert::claim_to_pb(claim));
            }
        }
        Ok(Response::new(pb::ListClaimsResponse {
            claims: shown,
            next_page_token,
        }))
    }

    async fn count_claims(
        &self,
        request: Request<pb::CountClaimsRequest>,
    ) -> Result<Response<pb::ClaimCounts>, Status> {
        let req = request.into_inner();
        let mut c = Check::new();
        let county = c.county("county_code", &req.county_code);
        c.finish()?;
        let county = county.expect("checked");
        let mut listing = self.0.listing();
        // The rows ListClaims would show, counted in SQL: the prefix narrows
        // a village's or township's count, and the whole-county scopes
        // (the county's own roles, its insurer) see all of the county or
        // none of it, which `shows_county` decides once.
        let filter = match listing.village_prefix(&county) {
            Some(prefix) if listing.shows_county(&county).await? => claim_store::ClaimFilter {
                village_prefix: prefix,
                ..claim_store::ClaimFilter::default()
            },
            _ => return Ok(Response::new(pb::ClaimCounts::default())),
        };
        let mut conn = self.0.store.read().await.map_err(AppError::from)?;
        let mut counts = claim_store::count_by_state(&mut conn, county.as_str(), &filter)
            .await
            .map_err(AppError::from)?;
        drop(conn);
        let mut counts: Vec<pb::ClaimStateCount> = counts
            .drain(..)
            .map(|(state, claims)| pb::ClaimStateCount {
                state: convert::state_to_pb(state) as i32,
                claims,
            })
            .collect();
        counts.sort_by_key(|c| c.state);
        let total = counts.iter().map(|c| c.claims).sum();
        Ok(Response::new(pb::ClaimCounts { counts, total }))
    }

    async fn get_claim_history(
        &self,
        request: Request<pb::GetClaimRequest>,
    ) -> Result<Response<pb::ClaimHistoryResponse>, Status> {
        let req = request.into_inner();
        let mut c = Check::new();
        let id = c.uuid("claim_id", &req.claim_id);
        c.finish()?;
        let id = id.expect("checked");
        self.0.authorize_claim(id).await?;
        // The claim and its transitions from one moment.
        let mut conn = self.0.store.read_snapshot().await.map_err(AppError::from)?;
        load_claim(&mut conn, id).await?;
        let transitions = claim_store::list_transitions(&mut conn, id)
            .await
            .map_err(AppError::from)?;
        let to_pb = |s: Option<ClaimState>| {
            s.map_or(pb::ClaimState::Unspecified, convert::state_to_pb)
                .into()
        };
        Ok(Response::new(pb::ClaimHistoryResponse {
            transitions: transitions
                .into_iter()
                .map(|t| pb::Transition {
                    from_state: to_pb(t.from_state),
                    to_state: to_pb(Some(t.to_state)),
                    event: t.event,
                    actor: t.actor,
                    reason: t.reason,
                    at: t.at,
                })
                .collect(),
        }))
    }

    async fn pay_emergency_advance(
        &self,
        request: Request<pb::PayEmergencyAdvanceRequest>,
    ) -> Result<Response<pb::AdvanceResponse>, Status> {
        let req = request.into_inner();
        let (request_id, claim_id) = claim_ids(&req.request_id, &req.claim_id)?;
        let mut c = Check::new();
        let amount = c.positive_money("amount_yuan", &req.amount_yuan);
        let approved_by = c.optional_text("approved_by", &req.approved_by, MAX_LABEL_CHARS);
        let reason = c.text("reason", &req.reason, MAX_TEXT_CHARS);
        c.finish()?;
        let (amount, approved_by, reason) = (
            amount.expect("checked"),
            approved_by.expect("checked"),
            reason.expect("checked"),
        );
        let response = self
            .0
            .write_claim("PayEmergencyAdvance", &req, &request_id, claim_id, move |conn, claim, ctx| {
                Box::pin(async move {
                    if !may_pay_emergency_advance(claim.channel, claim.state, claim.advance > fangpin_domain::Fen::ZERO) {
                        return Err(AppError::precondition(
                            "ADVANCE",
                            format!("claim/{claim_id}"),
                            "an emergency advance is paid once, on an emergency claim, before the survey decides",
                        ));
                    }
                    let policy = claim_policy(conn, claim).await?;
                    if amount > policy.case_cap {
                        return Err(AppError::invalid("amount_yuan", format!("must not exceed the case cap {}", policy.case_cap)));
                    }
                    // Only after the township head's approval, within it.
                    let approved_by =
                        super::emergency::check_advance(conn, claim.claim_id, amount, &approved_by).await?;
                    let reference = format!("advance approved by {approved_by}: {reason}");
                    let (entry, pool, flag) =
                        pay_out_of_pool(conn, claim, PostingKind::EmergencyAdvance, amount, &reference, &ctx).await?;
                    claim.advance = amount;
                    let note = TransitionRecord {
                        from_state: Some(claim.state),
                        to_state: claim.state,
                        event: "pay_emergency_advance".into(),
                        actor: approved_by,
                        reason,
                        at: timestamp(ctx.now),
                    };
                    claim_store::append_transition(conn, claim.claim_id, &note, &ctx.request_id).await?;
                    Ok(pb::AdvanceResponse {
                        claim: Some(convert::claim_to_pb(claim)),
                        entry: Some(convert::entry_to_pb(&entry)),
                        pool: Some(pool),
                        top_up_flag: flag.as_ref().map(convert::flag_to_pb),
                    })
                })
            })
            .await?;
        Ok(Response::new(response))
    }

    async fn approve_emergency(
        &self,
        request: Request<pb::ApproveEmergencyRequest>,
    ) -> Result<Response<pb::EmergencyDecision>, Status> {
        let req = request.into_inner();
        super::emergency::decide(
            &self.0,
            "ApproveEmergency",
            &req,
            (&req.request_id, &req.claim_id),
            Some(&req.amount_yuan),
            ("approved_by", &req.approved_by),
            &req.reason,
        )
        .await
        .map(Response::new)
    }

    async fn refuse_emergency(
        &self,
        request: Request<pb::RefuseEmergencyRequest>,
    ) -> Result<Response<pb::EmergencyDecision>, Status> {
        let req = request.into_inner();
        super::emergency::decide(
            &self.0,
            "RefuseEmergency",
            &req,
            (&req.request_id, &req.claim_id),
            None,
            ("refused_by", &req.refused_by),
            &req.reason,
        )
        .await
        .map(Response::new)
    }

    async fn get_emergency_decision(
        &self,
        request: Request<pb::GetClaimRequest>,
    ) -> Result<Response<pb::EmergencyDecision>, Status> {
        super::emergency::get(&self.0, &request.into_inner().claim_id)
            .await
            .map(Response::new)
    }
}

/// Takes a new claim in: checks it against the county's current policy,
/// fixes the policy version and the survey deadline, inserts it, freezes the
/// policy version and records the intake transition. Shared by SubmitClaim
/// and by claims made from screening runs.
pub(crate) async fn open_claim(
    conn: &mut fangpin_store::Conn,
    ctx: &crate::write_path::app::WriteContext,
    calendar: &fangpin_domain::calendar::WorkCalendar,
    claim: &mut ClaimRecord,
    household_type: fangpin_domain::policy::HouseholdType,
) -> Result<(), AppError> {
    let relief_kind = claim.relief_kind;
    let policy = counties::get_policy(conn, &claim.county_code, claim.policy_year, None)
        .await?
        .ok_or_else(|| {
            AppError::precondition(
                "POLICY",
                format!("policy/{}/{}", claim.county_code, claim.policy_year),
                "the household's county has no policy for its policy year",
            )
        })?;
    if policy.policy.rule(household_type, relief_kind).is_none() {
        return Err(AppError::invalid(
            "relief_kind",
            format!(
                "the county's policy has no {} relief for {} households",
                relief_kind.as_str(),
                household_type.as_str()
            ),
        ));
    }
    if !policy.policy.covers(claim.event_date) {
        return Err(AppError::invalid(
            "event_date",
            format!(
                "must fall within the policy year {} to {}",
                policy.policy.starts_on, policy.policy.ends_on
            ),
        ));
    }
    claim.policy_version = policy.version;
    // Intake never stops for want of a calendar: past the covered years the
    // deadline counts Monday to Friday and is marked provisional.
    let deadline = calendar.deadline(ctx.today, policy.policy.survey_deadline_working_days);
    claim.survey_deadline = deadline.date;
    claim.survey_deadline_provisional = deadline.provisional;
    // One event, one payout: any claim for the event that is not rejected
    // (open or paid) holds it. The unique index is the guard; this read
    // names the claim that holds it.
    if let Some((existing, state)) = claim_store::claim_for_event(
        conn,
        claim.household_id,
        relief_kind,
        &claim.event_reference,
    )
    .await?
    {
        return Err(AppError::AlreadyExists(format!(
            "claim {existing} ({}) already covers this household's {} event {:?}; \
             only a rejected claim may be followed by a new one",
            state.as_str(),
            relief_kind.as_str(),
            claim.event_reference
        )));
    }
    match claim_store::insert_claim(conn, claim, ctx.now).await {
        Err(e) if e.is_unique_violation() => {
            return Err(AppError::AlreadyExists(
                "a claim for this household, relief kind and event already exists".into(),
            ));
        }
        other => other?,
    }
    // The version is frozen from its first use: the assessment
    // must follow the rules the claim was taken in under.
    counties::freeze_policy(conn, &claim.county_code, claim.policy_year, policy.version).await?;
    let intake = TransitionRecord {
        from_state: None,
        to_state: ClaimState::Received,
        event: format!("submit_{}", claim.channel.as_str()),
        actor: claim.submitted_by.clone(),
        reason: claim.description.clone(),
        at: timestamp(ctx.now),
    };
    claim_store::append_transition(conn, claim.claim_id, &intake, &ctx.request_id).await?;
    if deadline.provisional {
        let (_, last) = calendar.years();
        let note = TransitionRecord {
            from_state: Some(ClaimState::Received),
            to_state: ClaimState::Received,
            event: "provisional_deadline".into(),
            actor: crate::write_path::calendar::CALENDAR_ACTOR.into(),
            reason: format!(
                "survey deadline {} is provisional: the working-day calendar covers years up to \
                 {last}, so days after {last}-12-31 were counted Monday to Friday; it is \
                 recomputed when the next year's arrangement is loaded",
                deadline.date
            ),
            at: timestamp(ctx.now),
        };
        claim_store::append_transition(conn, claim.claim_id, &note, &ctx.request_id).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::narrower_prefix;

    #[test]
    fn the_narrower_of_two_places_or_none() {
        assert_eq!(narrower_prefix("", ""), Some(""));
        assert_eq!(narrower_prefix("", "130421100"), Some("130421100"));
        assert_eq!(narrower_prefix("130421100", ""), Some("130421100"));
        assert_eq!(
            narrower_prefix("130421100", "130421100201"),
            Some("130421100201")
        );
        assert_eq!(
            narrower_prefix("130421100201", "130421100"),
            Some("130421100201")
        );
        assert_eq!(narrower_prefix("130421100", "130421101201"), None);
    }
}
