//! The monthly monitoring list (月度监测名单) of ScreeningService. Hebi's
//! county office sends the month's list to the townships before the 10th;
//! village cadres check each suggested household at home, and the township
//! confirms it (the claim is submitted) or dismisses it with a reason.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use fangpin_domain::policy::ReliefKind;
use fangpin_domain::time_limits::list_due_date;
use fangpin_proto::tonic::Status;
use fangpin_proto::v1 as pb;
use fangpin_store::monitoring::{self as store, EntryStatus, ListEntryRecord, ListRecord};
use fangpin_store::screening::{self as screening_store, RunRecord};
use fangpin_store::{counties, timestamp};
use uuid::Uuid;

use crate::write_path::app::App;
use crate::write_path::convert::{self, Check, MAX_LABEL_CHARS, MAX_TEXT_CHARS};
use crate::write_path::error::AppError;

/// The most households one run lists: a county's screening finds tens to
/// hundreds a month, and every entry is a home visit.
pub const MAX_LISTED: usize = 10_000;

async fn load_run(app: &App, run_id: Uuid) -> Result<RunRecord, AppError> {
    let run = {
        let mut conn = app.store.read().await?;
        screening_store::get_run(&mut conn, run_id).await?
    };
    match run {
        Some(run) => Ok(run),
        None => Err(AppError::not_found("screening run", run_id)),
    }
}

fn status_to_pb(s: EntryStatus) -> pb::ListEntryStatus {
    match s {
        EntryStatus::Pending => pb::ListEntryStatus::Pending,
        EntryStatus::Confirmed => pb::ListEntryStatus::Confirmed,
        EntryStatus::Dismissed => pb::ListEntryStatus::Dismissed,
    }
}

fn overdue(e: &ListEntryRecord, today: NaiveDate) -> bool {
    e.status == EntryStatus::Pending && today > e.due_on
}

fn entry_to_pb(e: &ListEntryRecord, today: NaiveDate) -> pb::MonitoringListEntry {
    pb::MonitoringListEntry {
        run_id: e.run_id.to_string(),
        township_code: e.township_code.clone(),
        household_id: e.household_id.to_string(),
        village_code: e.village_code.clone(),
        relief_kind: convert::relief_kind_to_pb(e.relief_kind).into(),
        reason: e.reason.clone(),
        cost_yuan: e.cost.to_string(),
        status: status_to_pb(e.status).into(),
        due_on: e.due_on.to_string(),
        overdue: overdue(e, today),
        checked_by: e.checked_by.clone().unwrap_or_default(),
        checked_on: e.checked_on.map(|d| d.to_string()).unwrap_or_default(),
        note: e.note.clone().unwrap_or_default(),
        claim_id: e.claim_id.map(|c| c.to_string()).unwrap_or_default(),
    }
}

fn list_to_pb(
    list: &ListRecord,
    entries: &[ListEntryRecord],
    today: NaiveDate,
) -> pb::MonitoringList {
    let mine = || entries.iter().filter(|e| e.list_id == list.list_id);
    let count = |s: EntryStatus| mine().filter(|e| e.status == s).count() as u32;
    pb::MonitoringList {
        list_id: list.list_id.to_string(),
        run_id: list.run_id.to_string(),
        township_code: list.township_code.clone(),
        issued_on: list.issued_on.to_string(),
        due_on: list.due_on.to_string(),
        issued_by: list.issued_by.clone(),
        entries: mine().count() as u32,
        pending: count(EntryStatus::Pending),
        confirmed: count(EntryStatus::Confirmed),
        dismissed: count(EntryStatus::Dismissed),
        overdue: mine().filter(|e| overdue(e, today)).count() as u32,
    }
}

pub async fn issue(
    app: &App,
    req: pb::IssueMonitoringListRequest,
) -> Result<pb::IssueMonitoringListResponse, Status> {
    let mut c = Check::new();
    let request_id = c.request_id(&req.request_id);
    let run_id = c.uuid("run_id", &req.run_id);
    let issued_by = c.text("issued_by", &req.issued_by, MAX_LABEL_CHARS);
    c.finish()?;
    let (run_id, issued_by) = (run_id.expect("checked"), issued_by.expect("checked"));
    crate::write_path::scope::check_acting_person("issued_by", &issued_by)?;
    let run = load_run(app, run_id).await?;
    if !app.sees_county(&run.county_code).await? {
        return Err(AppError::not_found("screening run", run_id).into());
    }
    let lock = run.county_code.clone();
    app.write(
        "IssueMonitoringList",
        &req,
        &request_id.expect("checked").to_string(),
        &lock,
        move |conn, ctx| {
            Box::pin(async move {
                let policy = counties::get_policy(
                    conn,
                    &run.county_code,
                    run.policy_year,
                    Some(run.policy_version),
                )
                .await?
                .ok_or_else(|| {
                    AppError::Store(fangpin_store::StoreError::Corrupt(format!(
                        "run {run_id} names a missing policy version"
                    )))
                })?;
                let Some(limits) = policy.policy.time_limits else {
                    return Err(AppError::precondition(
                        "POLICY",
                        format!("policy/{}/{}", run.county_code, run.policy_year),
                        "the run's policy sets no time_limits.monitoring_list_due_day",
                    ));
                };
                if !store::lists_of_run(conn, run_id, None).await?.is_empty() {
                    return Err(AppError::precondition(
                        "ALREADY_ISSUED",
                        format!("screening_run/{run_id}"),
                        "this run's monitoring list was already issued",
                    ));
                }
                // Candidates without a claim, grouped by township.
                let mut by_township: BTreeMap<String, Vec<(Uuid, ReliefKind, String)>> =
                    BTreeMap::new();
                let mut listed = 0usize;
                let mut after = None;
                loop {
                    let page = screening_store::list_candidates(conn, run_id, after, 500).await?;
                    let Some(last) = page.last() else { break };
                    after = Some((last.household_id, last.relief_kind));
                    for cand in page.iter().filter(|c| c.claim_id.is_none()) {
                        listed += 1;
                        if listed > MAX_LISTED {
                            return Err(AppError::precondition(
                                "TOO_LARGE",
                                format!("screening_run/{run_id}"),
                                format!("a list holds at most {MAX_LISTED} households"),
                            ));
                        }
                        let township = cand.village_code.get(..9).unwrap_or(&cand.village_code);
                        by_township.entry(township.to_string()).or_default().push((
                            cand.household_id,
                            cand.relief_kind,
                            cand.village_code.clone(),
                        ));
                    }
                }
                if by_township.is_empty() {
                    return Err(AppError::precondition(
                        "NOTHING_TO_LIST",
                        format!("screening_run/{run_id}"),
                        "every candidate of this run already has a claim",
                    ));
                }
                let due_on = list_due_date(ctx.today, limits.monitoring_list_due_day);
                let issued_at = timestamp(ctx.now);
                let mut out = pb::IssueMonitoringListResponse::default();
                for (township, entries) in by_township {
                    let list = ListRecord {
                        list_id: Uuid::now_v7(),
                        run_id,
                        county_code: run.county_code.clone(),
                        township_code: township,
                        issued_on: ctx.today,
                        due_on,
                        issued_by: issued_by.clone(),
                        issued_at: issued_at.clone(),
                    };
                    store::insert_list(conn, &list, &ctx.request_id).await?;
                    for (household, kind, village) in &entries {
                        store::insert_entry(conn, list.list_id, run_id, *household, *kind, village)
                            .await?;
                    }
                    // Just issued: every entry pending, none overdue (the
                    // due day is on or after today).
                    let n = entries.len() as u32;
                    out.lists.push(pb::MonitoringList {
                        entries: n,
                        pending: n,
                        ..list_to_pb(&list, &[], ctx.today)
                    });
                }
                Ok(out)
            })
        },
    )
    .await
}

pub async fn get(
    app: &App,
    req: pb::GetMonitoringListRequest,
) -> Result<pb::GetMonitoringListResponse, Status> {
    let mut c = Check::new();
    let run_id = c.uuid("run_id", &req.run_id);
    let township = if req.township_code.is_empty() {
        Some(None)
    } else {
        match fangpin_domain::access::TownshipCode::parse(&req.township_code) {
            Ok(t) => Some(Some(t.as_str().to_string())),
            Err(e) => {
                c.bad("township_code", e.to_string());
                None
            }
        }
    };
    c.finish()?;
    let (run_id, township) = (run_id.expect("checked"), township.expect("checked"));
    let run = load_run(app, run_id).await?;
    let county = fangpin_domain::identity::CountyCode::parse(&run.county_code)
        .map_err(|e| AppError::Store(fangpin_store::StoreError::Corrupt(e.to_string())))?;
    let mut listing = app.listing();
    // A listing: nothing of the county in the caller's scope reads as a
    // run without lists.
    if listing.village_prefix(&county).is_none() {
        return Ok(pb::GetMonitoringListResponse::default());
    }
    let (lists, entries) = {
        let mut conn = app.store.read().await.map_err(AppError::from)?;
        (
            store::lists_of_run(&mut conn, run_id, township.as_deref())
                .await
                .map_err(AppError::from)?,
            store::list_entries(&mut conn, run_id, township.as_deref())
                .await
                .map_err(AppError::from)?,
        )
    };
    let mut visible = Vec::with_capacity(entries.len());
    for e in entries {
        let place = fangpin_store::places::Place {
            county_code: run.county_code.clone(),
            village_code: e.village_code.clone(),
        };
        if listing.shows(&place).await? {
            visible.push(e);
        }
    }
    let today = app.today();
    Ok(pb::GetMonitoringListResponse {
        // A township sees its own list only (the lists with entries it may see).
        lists: lists
            .iter()
            .filter(|l| visible.iter().any(|e| e.list_id == l.list_id))
            .map(|l| list_to_pb(l, &visible, today))
            .collect(),
        entries: visible.iter().map(|e| entry_to_pb(e, today)).collect(),
    })
}

/// A township's decision on one listed household.
pub enum Decision {
    Confirm,
    Dismiss,
}

pub struct DecideRequest<'a> {
    pub request_id: &'a str,
    pub run_id: &'a str,
    pub household_id: &'a str,
    pub relief_kind: i32,
    pub checked_on: &'a str,
    pub note: &'a str,
    pub checked_by: &'a str,
}

pub async fn decide<Req: fangpin_proto::prost::Message>(
    app: &App,
    rpc: &'static str,
    raw: &Req,
    req: DecideRequest<'_>,
    decision: Decision,
) -> Result<pb::MonitoringListEntry, Status> {
    let note_field = match decision {
        Decision::Confirm => "note",
        Decision::Dismiss => "reason",
    };
    let mut c = Check::new();
    let request_id = c.request_id(req.request_id);
    let run_id = c.uuid("run_id", req.run_id);
    let household_id = c.uuid("household_id", req.household_id);
    let kind = c.relief_kind("relief_kind", req.relief_kind);
    let checked_on = c.date("checked_on", req.checked_on);
    let note = c.text(note_field, req.note, MAX_TEXT_CHARS);
    let checked_by = c.text("checked_by", req.checked_by, MAX_LABEL_CHARS);
    c.finish()?;
    let (run_id, household_id) = (run_id.expect("checked"), household_id.expect("checked"));
    let (kind, checked_on) = (kind.expect("checked"), checked_on.expect("checked"));
    let (note, checked_by) = (note.expect("checked"), checked_by.expect("checked"));
    crate::write_path::scope::check_acting_person("checked_by", &checked_by)?;
    let today = app.today();
    if checked_on > today {
        return Err(AppError::invalid("checked_on", format!("is after today ({today})")).into());
    }
    app.authorize_household(household_id).await?;
    let run = load_run(app, run_id).await?;
    let calendar = app.calendar.clone();
    let lock = run.county_code.clone();
    let confirm = matches!(decision, Decision::Confirm);
    app.write(
        rpc,
        raw,
        &request_id.expect("checked").to_string(),
        &lock,
        move |conn, ctx| {
            Box::pin(async move {
                let subject = format!("monitoring_list/{run_id}/{household_id}/{}", kind.as_str());
                let Some(mut entry) = store::get_entry(conn, run_id, household_id, kind).await?
                else {
                    return Err(AppError::precondition(
                        "NOT_LISTED",
                        subject,
                        "the household is not on this run's monitoring list",
                    ));
                };
                if entry.status != EntryStatus::Pending {
                    return Err(AppError::precondition(
                        "ALREADY_DECIDED",
                        subject,
                        format!("the entry was already {}", entry.status.as_str()),
                    ));
                }
                if checked_on < entry.issued_on {
                    return Err(AppError::invalid(
                        "checked_on",
                        format!("is before the list was issued ({})", entry.issued_on),
                    ));
                }
                if confirm {
                    let candidate =
                        screening_store::get_candidate(conn, run_id, household_id, kind)
                            .await?
                            .ok_or_else(|| {
                                AppError::Store(fangpin_store::StoreError::Corrupt(format!(
                                    "list entry {subject} without its candidate"
                                )))
                            })?;
                    let (claim_id, _) = super::screening::claim_candidate(
                        conn,
                        &ctx,
                        &calendar,
                        &run,
                        &candidate,
                        &checked_by,
                    )
                    .await?;
                    entry.status = EntryStatus::Confirmed;
                    entry.claim_id = Some(claim_id);
                } else {
                    entry.status = EntryStatus::Dismissed;
                }
                entry.checked_by = Some(checked_by);
                entry.checked_on = Some(checked_on);
                entry.note = Some(note);
                store::decide_entry(conn, &entry, &timestamp(ctx.now)).await?;
                Ok(entry_to_pb(&entry, ctx.today))
            })
        },
    )
    .await
}
