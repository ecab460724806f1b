//! FollowUpService: contact persons, visits, clearing and reopening a case
//! after payment (专人帮扶, 解困销号). The rules are
//! `fangpin_domain::follow_up`; this parses, locks, and stores.

use chrono::NaiveDate;
use fangpin_domain::calendar::WorkCalendar;
use fangpin_domain::claim::ClaimState;
use fangpin_domain::follow_up::{
    self as rules, CaseFacts, Contact, MonitoringStatus, VisitMode, check_contacts,
};
use fangpin_proto::tonic::{self, Request, Response, Status};
use fangpin_proto::v1::{self as pb, follow_up_service_server::FollowUpService};
use fangpin_store::follow_up::{
    self as store, CaseRecord, EventRecord, FullCase, StoredContact, VisitRecord,
};
use fangpin_store::{Conn, timestamp};
use uuid::Uuid;

use crate::services::{claim_ids, claim_policy, load_claim};
use crate::write_path::app::{App, WriteContext};
use crate::write_path::convert::{Check, MAX_LABEL_CHARS, MAX_TEXT_CHARS};
use crate::write_path::error::AppError;

pub struct FollowUpApi(pub App);

/// The cadence of a claim's policy, in working days; None when the policy
/// version sets no time limits (policies written before them).
async fn cadence_of(
    conn: &mut Conn,
    claim: &fangpin_store::claims::ClaimRecord,
) -> Result<Option<u32>, AppError> {
    Ok(claim_policy(conn, claim)
        .await?
        .time_limits
        .map(|t| t.follow_up_visit_working_days))
}

fn facts(case: &FullCase) -> (Vec<Contact>, CaseRecord, usize, Option<bool>) {
    (
        case.contacts.iter().map(|c| c.contact.clone()).collect(),
        case.case.clone(),
        case.visits.len(),
        case.visits.last().map(|v| v.risk_remains),
    )
}

/// Loads the claim's case under the write lock, or refuses as a state.
async fn load_case(conn: &mut Conn, claim_id: Uuid) -> Result<FullCase, AppError> {
    store::get_case(conn, claim_id).await?.ok_or_else(|| {
        AppError::precondition(
            "FOLLOW_UP",
            format!("claim/{claim_id}"),
            "no follow-up case: the county assigns contact persons first (AssignContacts)",
        )
    })
}

fn status_to_pb(s: Option<MonitoringStatus>) -> pb::MonitoringStatus {
    match s {
        None => pb::MonitoringStatus::None,
        Some(MonitoringStatus::Monitoring) => pb::MonitoringStatus::Monitoring,
        Some(MonitoringStatus::Cleared) => pb::MonitoringStatus::Cleared,
    }
}

fn mode_to_pb(m: VisitMode) -> pb::VisitMode {
    match m {
        VisitMode::HomeVisit => pb::VisitMode::HomeVisit,
        VisitMode::Call => pb::VisitMode::Call,
    }
}

/// A case as the API shows it, with where it stands against its next visit
/// on `today`.
pub fn case_to_pb(
    case: &FullCase,
    calendar: &WorkCalendar,
    cadence: Option<u32>,
    today: NaiveDate,
) -> pb::FollowUpCase {
    let c = &case.case;
    let mut out = pb::FollowUpCase {
        claim_id: c.claim_id.to_string(),
        household_id: c.household_id.to_string(),
        village_code: c.village_code.clone(),
        status: status_to_pb(Some(c.status)).into(),
        contacts: case
            .contacts
            .iter()
            .map(|s| pb::ContactPerson {
                name: s.contact.name.clone(),
                work_unit: s.contact.work_unit.clone(),
                phone: s.contact.phone.clone(),
                phone_masked: s.phone_masked.clone(),
            })
            .collect(),
        visits: case
            .visits
            .iter()
            .map(|v| pb::Visit {
                seq: v.seq,
                visited_on: v.visited_on.to_string(),
                mode: mode_to_pb(v.mode).into(),
                contact_name: v.contact_name.clone(),
                findings: v.findings.clone(),
                risk_remains: v.risk_remains,
                due_on: v.due_on.map(|d| d.to_string()).unwrap_or_default(),
                working_days_late: v.working_days_late,
                recorded_by: v.recorded_by.clone(),
                recorded_at: v.recorded_at.clone(),
            })
            .collect(),
        events: case
            .events
            .iter()
            .map(|e| pb::MonitoringEvent {
                seq: e.seq,
                event: e.event.clone(),
                status: status_to_pb(Some(e.status)).into(),
                actor: e.actor.clone(),
                reason: e.reason.clone(),
                at: e.at.clone(),
            })
            .collect(),
        visit_every_working_days: cadence.unwrap_or(0),
        ..Default::default()
    };
    if let Some(days) = cadence
        && let Some(s) = rules::visit_status(calendar, c.status, c.cadence_from, days, today)
    {
        out.next_visit_due = s.due.to_string();
        out.visit_overdue = s.overdue;
        out.working_days_over = i32::try_from(s.working_days_over).unwrap_or(i32::MAX);
        out.due_provisional = s.provisional;
    }
    out
}

fn response(
    case: &FullCase,
    calendar: &WorkCalendar,
    cadence: Option<u32>,
    today: NaiveDate,
) -> pb::FollowUpResponse {
    pb::FollowUpResponse {
        follow_up: Some(case_to_pb(case, calendar, cadence, today)),
    }
}

fn contacts_from_pb(c: &mut Check, contacts: &[pb::ContactPerson]) -> Vec<StoredContact> {
    if contacts.len() > rules::MAX_CONTACTS {
        c.bad(
            "contacts",
            format!("at most {} contact persons", rules::MAX_CONTACTS),
        );
        return Vec::new();
    }
    let mut out = Vec::new();
    for (i, p) in contacts.iter().enumerate() {
        let name = c.text(&format!("contacts[{i}].name"), &p.name, MAX_LABEL_CHARS);
        let unit = c.text(
            &format!("contacts[{i}].work_unit"),
            &p.work_unit,
            MAX_LABEL_CHARS,
        );
        let phone = rules::parse_phone(&p.phone).map(str::to_string);
        if phone.is_none() {
            c.bad(
                &format!("contacts[{i}].phone"),
                "must be an 11-digit mobile number or a landline like 0310-1234567",
            );
        }
        if let (Some(name), Some(work_unit), Some(phone)) = (name, unit, phone) {
            out.push(StoredContact {
                phone_masked: rules::mask_phone(&phone),
                contact: Contact {
                    name,
                    work_unit,
                    phone,
                },
            });
        }
    }
    out
}

fn visit_mode(c: &mut Check, value: i32) -> Option<VisitMode> {
    match pb::VisitMode::try_from(value) {
        Ok(pb::VisitMode::HomeVisit) => Some(VisitMode::HomeVisit),
        Ok(pb::VisitMode::Call) => Some(VisitMode::Call),
        _ => {
            c.bad("mode", "must be VISIT_MODE_HOME_VISIT or VISIT_MODE_CALL");
            None
        }
    }
}

impl FollowUpApi {
    /// One follow-up write on the claim's case, under the county's lock:
    /// the claim is loaded, `body` changes the case, and the case is read
    /// back for the response.
    async fn write_case<Req, F>(
        &self,
        rpc: &'static str,
        req: &Req,
        request_id: &str,
        claim_id: Uuid,
        body: F,
    ) -> Result<pb::FollowUpResponse, Status>
    where
        Req: fangpin_proto::prost::Message,
        F: for<'c> FnOnce(
                &'c mut Conn,
                &'c fangpin_store::claims::ClaimRecord,
                Option<u32>,
                WriteContext,
            )
                -> crate::write_path::app::BoxFuture<'c, Result<(), AppError>>
            + Clone
            + Send
            + 'static,
    {
        let place = self.0.authorize_claim(claim_id).await?;
        let calendar = self.0.calendar.clone();
        self.0
            .write(
                rpc,
                req,
                request_id,
                &place.county_code,
                move |conn, ctx| {
                    Box::pin(async move {
                        let claim = load_claim(conn, claim_id).await?;
                        let cadence = cadence_of(conn, &claim).await?;
                        let today = ctx.today;
                        body(conn, &claim, cadence, ctx).await?;
                        let case = load_case(conn, claim_id).await?;
                        Ok(response(&case, &calendar, cadence, today))
                    })
                },
            )
            .await
    }
}

impl FollowUpApi {
    /// ClearCase and ReopenCase: the reason, the acting person (`by`: its
    /// field and value), and the change.
    async fn change<Req: fangpin_proto::prost::Message>(
        &self,
        rpc: &'static str,
        req: &Req,
        ids: (&str, &str),
        change: Change,
        reason: &str,
        by: (&'static str, &str),
    ) -> Result<pb::FollowUpResponse, Status> {
        let (request_id, claim_id) = claim_ids(ids.0, ids.1)?;
        let mut c = Check::new();
        let reason = c.text("reason", reason, MAX_TEXT_CHARS);
        let actor = c.text(by.0, by.1, MAX_LABEL_CHARS);
        c.finish()?;
        let (reason, actor) = (reason.expect("checked"), actor.expect("checked"));
        crate::write_path::scope::check_acting_person(by.0, &actor)?;
        self.write_case(
            rpc,
            req,
            &request_id,
            claim_id,
            move |conn, claim, _cadence, ctx| {
                Box::pin(async move {
                    change_status(conn, claim.claim_id, change, actor, reason, &ctx).await
                })
            },
        )
        .await
    }
}

#[tonic::async_trait]
impl FollowUpService for FollowUpApi {
    async fn assign_contacts(
        &self,
        request: Request<pb::AssignContactsRequest>,
    ) -> Result<Response<pb::FollowUpResponse>, Status> {
        let req = request.into_inner();
        let (request_id, claim_id) = claim_ids(&req.request_id, &req.claim_id)?;
        let mut c = Check::new();
        let contacts = contacts_from_pb(&mut c, &req.contacts);
        let assigned_by = c.text("assigned_by", &req.assigned_by, MAX_LABEL_CHARS);
        c.finish()?;
        let assigned_by = assigned_by.expect("checked");
        crate::write_path::scope::check_acting_person("assigned_by", &assigned_by)?;
        check_contacts(
            &contacts
                .iter()
                .map(|s| s.contact.clone())
                .collect::<Vec<_>>(),
        )
        .map_err(AppError::from)?;
        let response = self
            .write_case(
                "AssignContacts",
                &req,
                &request_id,
                claim_id,
                move |conn, claim, _cadence, ctx| {
                    Box::pin(async move {
                        // Follow-up is for a household the scheme relieved:
                        // a paid claim (a returned payout is paid again first).
                        if claim.state != ClaimState::Paid {
                            return Err(AppError::precondition(
                                "STATE",
                                format!("claim.state={}", claim.state.as_str()),
                                "contact persons are assigned after the payout",
                            ));
                        }
                        let at = timestamp(ctx.now);
                        let names = contacts
                            .iter()
                            .map(|s| s.contact.name.as_str())
                            .collect::<Vec<_>>()
                            .join(", ");
                        let (event, status) = match store::get_case(conn, claim.claim_id).await? {
                            None => {
                                store::insert_case(
                                    conn,
                                    &CaseRecord {
                                        claim_id: claim.claim_id,
                                        county_code: claim.county_code.clone(),
                                        household_id: claim.household_id,
                                        village_code: claim.village_code.clone(),
                                        status: MonitoringStatus::Monitoring,
                                        cadence_from: ctx.today,
                                        opened_at: at.clone(),
                                    },
                                )
                                .await?;
                                ("opened", MonitoringStatus::Monitoring)
                            }
                            Some(case) if case.case.status == MonitoringStatus::Cleared => {
                                return Err(rules::FollowUpError::Cleared.into());
                            }
                            Some(case) => ("contacts_changed", case.case.status),
                        };
                        store::replace_contacts(conn, claim.claim_id, &contacts).await?;
                        store::append_event(
                            conn,
                            claim.claim_id,
                            &EventRecord {
                                seq: 0,
                                event: event.into(),
                                status,
                                actor: assigned_by.clone(),
                                reason: format!("contact persons: {names}"),
                                at,
                            },
                            &ctx.request_id,
                        )
                        .await?;
                        Ok(())
                    })
                },
            )
            .await?;
        Ok(Response::new(response))
    }

    async fn record_visit(
        &self,
        request: Request<pb::RecordVisitRequest>,
    ) -> Result<Response<pb::FollowUpResponse>, Status> {
        let req = request.into_inner();
        let (request_id, claim_id) = claim_ids(&req.request_id, &req.claim_id)?;
        let mut c = Check::new();
        let visited_on = c.date("visited_on", &req.visited_on);
        let mode = visit_mode(&mut c, req.mode);
        let contact_name = c.text("contact_name", &req.contact_name, MAX_LABEL_CHARS);
        let findings = c.text("findings", &req.findings, MAX_TEXT_CHARS);
        let recorded_by = c.text("recorded_by", &req.recorded_by, MAX_LABEL_CHARS);
        c.finish()?;
        let (visited_on, mode) = (visited_on.expect("checked"), mode.expect("checked"));
        let (contact_name, findings) = (contact_name.expect("checked"), findings.expect("checked"));
        let recorded_by = recorded_by.expect("checked");
        crate::write_path::scope::check_acting_person("recorded_by", &recorded_by)?;
        let risk_remains = req.risk_remains;
        let calendar = self.0.calendar.clone();
        let response = self
            .write_case(
                "RecordVisit",
                &req,
                &request_id,
                claim_id,
                move |conn, claim, cadence, ctx| {
                    Box::pin(async move {
                        let case = load_case(conn, claim.claim_id).await?;
                        let (contacts, mut record, visits, last) = facts(&case);
                        let facts = CaseFacts {
                            status: record.status,
                            contacts: &contacts,
                            cadence_from: record.cadence_from,
                            visits,
                            last_visit_risk_remains: last,
                        };
                        rules::check_visit(&facts, &contact_name, visited_on, ctx.today)?;
                        let due = cadence.map(|days| {
                            rules::next_visit_due(&calendar, record.cadence_from, days).0
                        });
                        let late = due.map_or(0, |due| {
                            rules::working_days_late(&calendar, due, visited_on)
                        });
                        let at = timestamp(ctx.now);
                        store::append_visit(
                            conn,
                            claim.claim_id,
                            &VisitRecord {
                                seq: 0,
                                visited_on,
                                mode,
                                contact_name,
                                findings,
                                risk_remains,
                                due_on: due,
                                working_days_late: late,
                                recorded_by,
                                recorded_at: at.clone(),
                            },
                            &ctx.request_id,
                        )
                        .await?;
                        // The next visit is due from this one.
                        record.cadence_from = visited_on;
                        store::update_case(conn, &record, &at).await?;
                        Ok(())
                    })
                },
            )
            .await?;
        Ok(Response::new(response))
    }

    async fn clear_case(
        &self,
        request: Request<pb::ClearCaseRequest>,
    ) -> Result<Response<pb::FollowUpResponse>, Status> {
        let req = request.into_inner();
        let ids = (req.request_id.as_str(), req.claim_id.as_str());
        let by = ("cleared_by", req.cleared_by.as_str());
        self.change("ClearCase", &req, ids, Change::Clear, &req.reason, by)
            .await
            .map(Response::new)
    }

    async fn reopen_case(
        &self,
        request: Request<pb::ReopenCaseRequest>,
    ) -> Result<Response<pb::FollowUpResponse>, Status> {
        let req = request.into_inner();
        let ids = (req.request_id.as_str(), req.claim_id.as_str());
        let by = ("reopened_by", req.reopened_by.as_str());
        self.change("ReopenCase", &req, ids, Change::Reopen, &req.reason, by)
            .await
            .map(Response::new)
    }

    async fn get_follow_up(
        &self,
        request: Request<pb::GetFollowUpRequest>,
    ) -> Result<Response<pb::FollowUpResponse>, Status> {
        let req = request.into_inner();
        let mut c = Check::new();
        let claim_id = c.uuid("claim_id", &req.claim_id);
        c.finish()?;
        let claim_id = claim_id.expect("checked");
        self.0.authorize_claim(claim_id).await?;
        let mut conn = self.0.store.read().await.map_err(AppError::from)?;
        let claim = load_claim(&mut conn, claim_id).await?;
        let Some(case) = store::get_case(&mut conn, claim_id)
            .await
            .map_err(AppError::from)?
        else {
            return Ok(Response::new(pb::FollowUpResponse {
                follow_up: Some(pb::FollowUpCase {
                    claim_id: claim_id.to_string(),
                    household_id: claim.household_id.to_string(),
                    village_code: claim.village_code.clone(),
                    status: pb::MonitoringStatus::None.into(),
                    ..Default::default()
                }),
            }));
        };
        let cadence = cadence_of(&mut conn, &claim).await?;
        Ok(Response::new(response(
            &case,
            &self.0.calendar,
            cadence,
            self.0.today(),
        )))
    }

    async fn get_household_monitoring(
        &self,
        request: Request<pb::GetHouseholdMonitoringRequest>,
    ) -> Result<Response<pb::HouseholdMonitoring>, Status> {
        let req = request.into_inner();
        let mut c = Check::new();
        let household_id = c.uuid("household_id", &req.household_id);
        c.finish()?;
        let household_id = household_id.expect("checked");
        self.0.authorize_household(household_id).await?;
        let mut conn = self.0.store.read().await.map_err(AppError::from)?;
        let cases = store::household_cases(&mut conn, household_id)
            .await
            .map_err(AppError::from)?;
        let today = self.0.today();
        let mut out = Vec::with_capacity(cases.len());
        for case in &cases {
            let claim = load_claim(&mut conn, case.case.claim_id).await?;
            let cadence = cadence_of(&mut conn, &claim).await?;
            out.push(case_to_pb(case, &self.0.calendar, cadence, today));
        }
        let status = if cases.is_empty() {
            None
        } else if cases
            .iter()
            .any(|c| c.case.status == MonitoringStatus::Monitoring)
        {
            Some(MonitoringStatus::Monitoring)
        } else {
            Some(MonitoringStatus::Cleared)
        };
        Ok(Response::new(pb::HouseholdMonitoring {
            household_id: household_id.to_string(),
            status: status_to_pb(status).into(),
            cases: out,
        }))
    }
}

#[derive(Clone, Copy)]
enum Change {
    Clear,
    Reopen,
}

/// Clears or reopens the case and records why; a reopened case owes its
/// next visit from today.
async fn change_status(
    conn: &mut Conn,
    claim_id: Uuid,
    change: Change,
    actor: String,
    reason: String,
    ctx: &WriteContext,
) -> Result<(), AppError> {
    let case = load_case(conn, claim_id).await?;
    let (contacts, mut record, visits, last) = facts(&case);
    let facts = CaseFacts {
        status: record.status,
        contacts: &contacts,
        cadence_from: record.cadence_from,
        visits,
        last_visit_risk_remains: last,
    };
    let event = match change {
        Change::Clear => {
            rules::check_clear(&facts)?;
            record.status = MonitoringStatus::Cleared;
            "cleared"
        }
        Change::Reopen => {
            rules::check_reopen(&facts)?;
            record.status = MonitoringStatus::Monitoring;
            record.cadence_from = ctx.today;
            "reopened"
        }
    };
    let at = timestamp(ctx.now);
    store::update_case(conn, &record, &at).await?;
    store::append_event(
        conn,
        claim_id,
        &EventRecord {
            seq: 0,
            event: event.into(),
            status: record.status,
            actor,
            reason,
            at,
        },
        &ctx.request_id,
    )
    .await?;
    Ok(())
}
