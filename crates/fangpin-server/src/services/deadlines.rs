//! DeadlineService: time limits (限时办结, 在线预警提示). Every open stage
//! with a limit is measured against the working-day calendar on the day of
//! the call: the survey (from intake), filing (from publicity passed),
//! payout (from filing), the next follow-up visit and the monthly list's
//! home checks. `deadlines_of` is also what the overdue gauges count.

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, Utc};
use fangpin_domain::calendar::WorkCalendar;
use fangpin_domain::claim::{ClaimState, Procedure, ReviewStep};
use fangpin_domain::policy::{ReliefKind, TimeLimits};
use fangpin_domain::time_limits::{DueStatus, Stage, due_status, is_listed, status_after};
use fangpin_proto::tonic::{self, Request, Response, Status};
use fangpin_proto::v1::{self as pb, deadline_service_server::DeadlineService};
use fangpin_store::{Conn, StoreError, claims, counties, follow_up, monitoring, places};
use uuid::Uuid;

use crate::write_path::app::App;
use crate::write_path::clock::china_date;
use crate::write_path::convert::{self, Check, MAX_LABEL_CHARS};
use crate::write_path::error::AppError;

pub struct DeadlineApi(pub App);

/// The most open claims, cases and list entries of each kind one listing
/// scans in a county: far above a county's year (thousands of claims).
pub const MAX_SCAN: u32 = 50_000;
/// The most rows one listing returns; the counts cover them all.
pub const MAX_LISTED: usize = 5_000;
/// The furthest ahead "due soon" may look: half a year of working days.
pub const MAX_WITHIN: u32 = 120;

/// The cuts of a listing, all optional.
#[derive(Clone, Debug, Default)]
pub struct Filter {
    pub township: Option<String>,
    pub insurer: Option<String>,
    pub surveyor: Option<String>,
    pub contact_person: Option<String>,
    pub stage: Option<Stage>,
    /// Also list what falls due within this many working days.
    pub within: u32,
}

/// One stage of one case against its deadline.
#[derive(Clone, Debug)]
pub struct Item {
    pub stage: Stage,
    pub claim_id: Option<Uuid>,
    pub household_id: Uuid,
    pub village_code: String,
    pub run_id: Option<Uuid>,
    pub relief_kind: ReliefKind,
    pub began_on: NaiveDate,
    pub status: DueStatus,
    pub responsible_role: &'static str,
    pub responsible: String,
    /// Who the insurer cut matches: the county's insurer, on the stages it
    /// acts in (a survey in hand, a payout).
    insurer: Option<String>,
    /// The contact persons' names, for the contact-person cut.
    contacts: Vec<String>,
}

pub struct Collected {
    pub items: Vec<Item>,
    /// A scan reached its bound: there may be more.
    pub truncated: bool,
}

impl Filter {
    fn keeps(&self, item: &Item) -> bool {
        let township = self
            .township
            .as_ref()
            .is_none_or(|t| item.village_code.starts_with(t.as_str()));
        let stage = self.stage.is_none_or(|s| s == item.stage);
        let insurer = self
            .insurer
            .as_ref()
            .is_none_or(|i| item.insurer.as_deref() == Some(i.as_str()));
        let surveyor = self.surveyor.as_ref().is_none_or(|s| {
            item.stage == Stage::Survey
                && item.responsible_role == "surveyor"
                && &item.responsible == s
        });
        let contact = self
            .contact_person
            .as_ref()
            .is_none_or(|c| item.contacts.iter().any(|n| n == c));
        township && stage && insurer && surveyor && contact && is_listed(&item.status, self.within)
    }
}

/// The policy versions' time limits, each read once per listing.
struct Limits {
    county_code: String,
    by_version: HashMap<(i32, u32), (Option<TimeLimits>, Procedure)>,
}

impl Limits {
    async fn of(
        &mut self,
        conn: &mut Conn,
        year: i32,
        version: u32,
    ) -> Result<Option<TimeLimits>, StoreError> {
        Ok(self.with_procedure(conn, year, version).await?.0)
    }

    /// The version's time limits and its procedure, read once per version.
    async fn with_procedure(
        &mut self,
        conn: &mut Conn,
        year: i32,
        version: u32,
    ) -> Result<(Option<TimeLimits>, Procedure), StoreError> {
        if let Some(limits) = self.by_version.get(&(year, version)) {
            return Ok(limits.clone());
        }
        let policy = counties::get_policy(conn, &self.county_code, year, Some(version))
            .await?
            .ok_or_else(|| {
                StoreError::Corrupt(format!(
                    "a case of {} names missing policy {year} v{version}",
                    self.county_code
                ))
            })?;
        let limits = (policy.policy.time_limits.clone(), policy.policy.procedure());
        self.by_version.insert((year, version), limits.clone());
        Ok(limits)
    }
}

fn stage_start(entered_at: Option<&str>, fallback: NaiveDate) -> NaiveDate {
    entered_at
        .and_then(|at| DateTime::parse_from_rfc3339(at).ok())
        .map_or(fallback, |at| china_date(at.with_timezone(&Utc)))
}

/// Every stage with a time limit in `county_code` on `today`, cut by
/// `filter`, most overdue first.
pub async fn deadlines_of(
    conn: &mut Conn,
    calendar: &WorkCalendar,
    county_code: &str,
    today: NaiveDate,
    filter: &Filter,
) -> Result<Collected, StoreError> {
    let insurer = places::county_insurer(conn, county_code).await?;
    let mut limits = Limits {
        county_code: county_code.to_string(),
        by_version: HashMap::new(),
    };
    let mut items = Vec::new();
    let mut truncated = false;

    let open = claims::open_with_stage_start(conn, county_code, MAX_SCAN).await?;
    truncated |= open.len() as u32 >= MAX_SCAN;
    for o in &open {
        let c = &o.claim;
        let base = |stage, began_on, status, role: &'static str, who: String, ins| Item {
            stage,
            claim_id: Some(c.claim_id),
            household_id: c.household_id,
            village_code: c.village_code.clone(),
            run_id: None,
            relief_kind: c.relief_kind,
            began_on,
            status,
            responsible_role: role,
            responsible: who,
            insurer: ins,
            contacts: Vec::new(),
        };
        let item = match c.state {
            ClaimState::Received | ClaimState::UnderSurvey => {
                let mut status = due_status(calendar, c.survey_deadline, today);
                status.provisional |= c.survey_deadline_provisional;
                match (&c.state, &c.surveyor) {
                    (ClaimState::UnderSurvey, Some(surveyor)) => base(
                        Stage::Survey,
                        c.intake_date,
                        status,
                        "surveyor",
                        surveyor.clone(),
                        insurer.clone(),
                    ),
                    // Not yet handed to the insurer: the county office's move.
                    _ => base(
                        Stage::Survey,
                        c.intake_date,
                        status,
                        "county_office",
                        county_code.to_string(),
                        None,
                    ),
                }
            }
            // Waiting for the county's filing, or, every step done, for the
            // insurer's payout: wherever the claim's procedure puts them.
            state => {
                let (Some(tl), procedure) = limits
                    .with_procedure(conn, c.policy_year, c.policy_version)
                    .await?
                else {
                    continue;
                };
                let began = stage_start(o.entered_at.as_deref(), c.intake_date);
                match state.step_due(&procedure) {
                    Some(Some(ReviewStep::Filing)) => {
                        let status = status_after(calendar, began, tl.filing_working_days, today);
                        base(
                            Stage::Filing,
                            began,
                            status,
                            "county_office",
                            county_code.to_string(),
                            None,
                        )
                    }
                    // Every step done: the insurer's payout is due.
                    Some(None) => {
                        let status = status_after(calendar, began, tl.payout_working_days, today);
                        let who = insurer.clone().unwrap_or_default();
                        base(
                            Stage::Payout,
                            began,
                            status,
                            "insurer",
                            who,
                            insurer.clone(),
                        )
                    }
                    _ => continue,
                }
            }
        };
        if filter.keeps(&item) {
            items.push(item);
        }
    }

    let cases = follow_up::open_cases(conn, county_code, MAX_SCAN).await?;
    truncated |= cases.len() as u32 >= MAX_SCAN;
    for o in &cases {
        let Some(tl) = limits.of(conn, o.policy_year, o.policy_version).await? else {
            continue;
        };
        let status = status_after(
            calendar,
            o.case.cadence_from,
            tl.follow_up_visit_working_days,
            today,
        );

        let item = Item {
            stage: Stage::FollowUpVisit,
            claim_id: Some(o.case.claim_id),
            household_id: o.case.household_id,
            village_code: o.case.village_code.clone(),
            run_id: None,
            relief_kind: o.relief_kind,
            began_on: o.case.cadence_from,
            status,
            responsible_role: "contact_person",
            // Listings show phones masked only.
            responsible: o
                .contacts
                .iter()
                .map(|c| {
                    format!(
                        "{} ({}, {})",
                        c.contact.name, c.contact.work_unit, c.phone_masked
                    )
                })
                .collect::<Vec<_>>()
                .join("; "),
            insurer: None,
            contacts: o.contacts.iter().map(|c| c.contact.name.clone()).collect(),
        };
        if filter.keeps(&item) {
            items.push(item);
        }
    }

    let entries = monitoring::pending_entries(conn, county_code, MAX_SCAN).await?;
    truncated |= entries.len() as u32 >= MAX_SCAN;
    for e in &entries {
        let item = Item {
            stage: Stage::MonitoringList,
            claim_id: None,
            household_id: e.household_id,
            village_code: e.village_code.clone(),
            run_id: Some(e.run_id),
            relief_kind: e.relief_kind,
            began_on: e.issued_on,
            status: due_status(calendar, e.due_on, today),
            responsible_role: "township",
            responsible: e.township_code.clone(),
            insurer: None,
            contacts: Vec::new(),
        };
        if filter.keeps(&item) {
            items.push(item);
        }
    }

    // Most overdue first; then the earliest deadline; then a stable key.
    items.sort_by(|a, b| {
        b.status
            .working_days_over
            .cmp(&a.status.working_days_over)
            .then(a.status.due.cmp(&b.status.due))
            .then(a.stage.cmp(&b.stage))
            .then(a.claim_id.cmp(&b.claim_id))
            .then(a.household_id.cmp(&b.household_id))
            .then(a.relief_kind.as_str().cmp(b.relief_kind.as_str()))
    });
    Ok(Collected { items, truncated })
}

/// Overdue cases per county and stage, for the gauges.
pub async fn overdue_counts(
    conn: &mut Conn,
    calendar: &WorkCalendar,
    today: NaiveDate,
) -> Result<Vec<(String, Stage, u64)>, StoreError> {
    let mut out = Vec::new();
    for county in counties::county_codes(conn).await? {
        let collected = deadlines_of(conn, calendar, &county, today, &Filter::default()).await?;
        for stage in Stage::ALL {
            let n = collected
                .items
                .iter()
                .filter(|i| i.stage == stage && i.status.overdue)
                .count() as u64;
            out.push((county.clone(), stage, n));
        }
    }
    Ok(out)
}

pub fn stage_to_pb(stage: Stage) -> pb::DeadlineStage {
    match stage {
        Stage::Survey => pb::DeadlineStage::Survey,
        Stage::Filing => pb::DeadlineStage::Filing,
        Stage::Payout => pb::DeadlineStage::Payout,
        Stage::FollowUpVisit => pb::DeadlineStage::FollowUpVisit,
        Stage::MonitoringList => pb::DeadlineStage::MonitoringList,
    }
}

fn stage_from_pb(c: &mut Check, value: i32) -> Option<Option<Stage>> {
    match pb::DeadlineStage::try_from(value) {
        Ok(pb::DeadlineStage::Unspecified) => Some(None),
        Ok(pb::DeadlineStage::Survey) => Some(Some(Stage::Survey)),
        Ok(pb::DeadlineStage::Filing) => Some(Some(Stage::Filing)),
        Ok(pb::DeadlineStage::Payout) => Some(Some(Stage::Payout)),
        Ok(pb::DeadlineStage::FollowUpVisit) => Some(Some(Stage::FollowUpVisit)),
        Ok(pb::DeadlineStage::MonitoringList) => Some(Some(Stage::MonitoringList)),
        Err(_) => {
            c.bad("stage", "is not a DeadlineStage");
            None
        }
    }
}

fn optional(c: &mut Check, field: &str, text: &str) -> Option<Option<String>> {
    let text = c.optional_text(field, text, MAX_LABEL_CHARS)?;
    Some(if text.is_empty() { None } else { Some(text) })
}

#[tonic::async_trait]
impl DeadlineService for DeadlineApi {
    async fn list_deadlines(
        &self,
        request: Request<pb::ListDeadlinesRequest>,
    ) -> Result<Response<pb::ListDeadlinesResponse>, Status> {
        let req = request.into_inner();
        let mut c = Check::new();
        let county = c.county("county_code", &req.county_code);
        let township = if req.township_code.is_empty() {
            Some(None)
        } else {
            match fangpin_domain::access::TownshipCode::parse(&req.township_code) {
                Ok(t) => Some(Some(t)),
                Err(e) => {
                    c.bad("township_code", e.to_string());
                    None
                }
            }
        };
        let insurer = optional(&mut c, "insurer", &req.insurer);
        let surveyor = optional(&mut c, "surveyor", &req.surveyor);
        let contact = optional(&mut c, "contact_person", &req.contact_person);
        let stage = stage_from_pb(&mut c, req.stage);
        if req.within_working_days > MAX_WITHIN {
            c.bad(
                "within_working_days",
                format!("at most {MAX_WITHIN} working days"),
            );
        }
        if let (Some(county), Some(Some(t))) = (&county, &township)
            && t.county() != county
        {
            c.bad("township_code", "lies outside county_code");
        }
        c.finish()?;
        let county = county.expect("checked");
        let filter = Filter {
            township: township.expect("checked").map(|t| t.as_str().to_string()),
            insurer: insurer.expect("checked"),
            surveyor: surveyor.expect("checked"),
            contact_person: contact.expect("checked"),
            stage: stage.expect("checked"),
            within: req.within_working_days,
        };
        let today = self.0.today();
        let mut listing = self.0.listing();
        // Nothing of the county in the caller's scope: an empty listing,
        // as for a county without cases.
        if listing.village_prefix(&county).is_none() {
            return Ok(Response::new(pb::ListDeadlinesResponse {
                as_of: today.to_string(),
                ..Default::default()
            }));
        }
        let collected = {
            let mut conn = self.0.store.read().await.map_err(AppError::from)?;
            deadlines_of(&mut conn, &self.0.calendar, county.as_str(), today, &filter)
                .await
                .map_err(AppError::from)?
        };
        let mut out = pb::ListDeadlinesResponse {
            as_of: today.to_string(),
            truncated: collected.truncated,
            ..Default::default()
        };
        for item in collected.items {
            let place = fangpin_store::places::Place {
                county_code: county.as_str().to_string(),
                village_code: item.village_code.clone(),
            };
            if !listing.shows(&place).await? {
                continue;
            }
            if item.status.overdue {
                out.overdue += 1;
            } else {
                out.due_soon += 1;
            }
            if out.deadlines.len() >= MAX_LISTED {
                out.truncated = true;
                continue;
            }
            out.deadlines.push(pb::Deadline {
                stage: stage_to_pb(item.stage).into(),
                claim_id: item.claim_id.map(|c| c.to_string()).unwrap_or_default(),
                household_id: item.household_id.to_string(),
                village_code: item.village_code,
                run_id: item.run_id.map(|r| r.to_string()).unwrap_or_default(),
                relief_kind: convert::relief_kind_to_pb(item.relief_kind).into(),
                began_on: item.began_on.to_string(),
                due_on: item.status.due.to_string(),
                working_days_over: i32::try_from(item.status.working_days_over).unwrap_or(i32::MAX),
                overdue: item.status.overdue,
                provisional: item.status.provisional,
                responsible_role: item.responsible_role.to_string(),
                responsible: item.responsible,
            });
        }
        Ok(Response::new(out))
    }
}
