//! EnrollmentService: counties, the insured pool, households and premiums.

use fangpin_domain::ledger::{Account, Posting, PostingKind};
use fangpin_domain::policy::Policy;
use fangpin_proto::tonic::{self, Request, Response, Status};
use fangpin_proto::v1::{self as pb, enrollment_service_server::EnrollmentService};
use fangpin_store::Conn;
use fangpin_store::counties::{self, CountyRecord, HouseholdRecord, PersonRecord};
use fangpin_store::ledger as ledger_store;
use uuid::Uuid;

use fangpin_domain::identity::{Relation, ResidentId};
use fangpin_domain::personal_data::{Column, mask_account};

use crate::services::pool_balance;
use crate::write_path::app::App;
use crate::write_path::convert::{self, Check, MAX_LABEL_CHARS};
use crate::write_path::error::AppError;
use crate::write_path::personal_data;

/// Most persons one household may enrol; larger families are split by the village.
pub const MAX_HOUSEHOLD_PERSONS: usize = fangpin_domain::roster::MAX_HOUSEHOLD_PERSONS;
/// A county-level division has at most a few million rural people.
pub const MAX_RURAL_POPULATION: u64 = 50_000_000;

pub struct EnrollmentApi(pub App);

/// The policy in force for a year (its latest version), required for anything
/// that depends on the pool's size or the premium.
async fn current_policy(conn: &mut Conn, county_code: &str, year: i32) -> Result<Policy, AppError> {
    counties::get_policy(conn, county_code, year, None)
        .await?
        .map(|p| p.policy)
        .ok_or_else(|| {
            AppError::precondition(
                "POLICY",
                format!("policy/{county_code}/{year}"),
                format!("county {county_code} has no policy for {year}; put one first"),
            )
        })
}

fn household_to_pb(
    h: &HouseholdRecord,
    corrections: &[counties::AccountCorrection],
) -> pb::HouseholdResponse {
    pb::HouseholdResponse {
        household_id: h.household_id.to_string(),
        county_code: h.county_code.clone(),
        policy_year: h.policy_year,
        village_code: h.village_code.clone(),
        household_type: convert::household_type_to_pb(h.household_type).into(),
        head_name: h.head_name.clone(),
        head_id_masked: h.head_id_masked.clone(),
        persons: h.persons,
        bank_account_masked: h.bank_account_masked.clone(),
        account_corrections: corrections
            .iter()
            .map(|c| pb::AccountCorrection {
                seq: c.seq,
                old_account_masked: c.old_account_masked.clone(),
                new_account_masked: c.new_account_masked.clone(),
                corrected_by: c.corrected_by.clone(),
                reason: c.reason.clone(),
                at: c.at.clone(),
            })
            .collect(),
    }
}

/// A bank account as enrolment takes it: 8 to 32 digits, spaces around
/// ignored.
fn bank_account<'a>(c: &mut Check, field: &str, raw: &'a str) -> &'a str {
    let account = raw.trim();
    if !(8..=32).contains(&account.len()) || !account.bytes().all(|b| b.is_ascii_digit()) {
        c.bad(field, "must be 8 to 32 digits");
    }
    account
}

async fn county_response(
    conn: &mut Conn,
    county: &CountyRecord,
    year: Option<i32>,
) -> Result<pb::CountyResponse, AppError> {
    let mut response = pb::CountyResponse {
        county_code: county.county_code.clone(),
        name: county.name.clone(),
        rural_population: county.rural_population,
        insurer: county.insurer.clone(),
        ..Default::default()
    };
    response.office = counties::get_office(conn, &county.county_code)
        .await?
        .map(office_to_pb);
    let Some(year) = year else {
        return Ok(response);
    };
    response.policy_year = year;
    if let Some(policy) = counties::get_policy(conn, &county.county_code, year, None).await? {
        let pool_size = policy.policy.pool_size(county.rural_population);
        response.pool_size = pool_size;
        response.premium_due_yuan = policy
            .policy
            .premium_due(pool_size)
            .map(|f| f.to_string())
            .unwrap_or_default();
    }
    let (balances, _) = ledger_store::balances(conn, &county.county_code, year).await?;
    response.premium_received_yuan = balances.balance(Account::PremiumIncome).to_string();
    response.persons_enrolled = counties::count_persons(conn, &county.county_code, year).await?;
    Ok(response)
}

fn office_to_pb(o: counties::OfficeRecord) -> pb::CountyOffice {
    pb::CountyOffice {
        county_code: o.county_code,
        office_name: o.office_name,
        address: o.address,
        phone: o.phone,
        updated_at: o.updated_at,
    }
}

#[tonic::async_trait]
impl EnrollmentService for EnrollmentApi {
    async fn register_county(
        &self,
        request: Request<pb::RegisterCountyRequest>,
    ) -> Result<Response<pb::CountyResponse>, Status> {
        let req = request.into_inner();
        let mut c = Check::new();
        let request_id = c.request_id(&req.request_id);
        let code = c.county("county_code", &req.county_code);
        let name = c.text("name", &req.name, MAX_LABEL_CHARS);
        let insurer = c.text("insurer", &req.insurer, MAX_LABEL_CHARS);
        if req.rural_population == 0 || req.rural_population > MAX_RURAL_POPULATION {
            c.bad(
                "rural_population",
                format!("must be between 1 and {MAX_RURAL_POPULATION}"),
            );
        }
        c.finish()?;
        let county = CountyRecord {
            county_code: code.as_ref().expect("checked").as_str().to_string(),
            name: name.expect("checked"),
            rural_population: req.rural_population,
            insurer: insurer.expect("checked"),
        };
        self.0
            .authorize_new_county(code.as_ref().expect("checked"))?;
        let lock = county.county_code.clone();
        let response = self
            .0
            .write(
                "RegisterCounty",
                &req,
                &request_id.expect("checked").to_string(),
                &lock,
                move |conn, ctx| {
                    Box::pin(async move {
                        if counties::get_county(conn, &county.county_code)
                            .await?
                            .is_some()
                        {
                            return Err(AppError::AlreadyExists(format!(
                                "county {} is already registered",
                                county.county_code
                            )));
                        }
                        counties::insert_county(conn, &county, ctx.now).await?;
                        county_response(conn, &county, None).await
                    })
                },
            )
            .await?;
        Ok(Response::new(response))
    }

    async fn set_county_office(
        &self,
        request: Request<pb::SetCountyOfficeRequest>,
    ) -> Result<Response<pb::CountyOffice>, Status> {
        let req = request.into_inner();
        let mut c = Check::new();
        let request_id = c.request_id(&req.request_id);
        let code = c.county("county_code", &req.county_code);
        let max = fangpin_domain::publicity::MAX_OFFICE_FIELD_CHARS;
        let name = c.text("office_name", &req.office_name, max);
        let address = c.text("address", &req.address, max);
        let phone = c.text("phone", &req.phone, max);
        if !req
            .phone
            .chars()
            .all(|ch| ch.is_ascii_digit() || matches!(ch, '-' | ' ' | '(' | ')' | '+' | '/'))
        {
            c.bad("phone", "digits, spaces and - ( ) + / only (0310-3812345)");
        }
        c.finish()?;
        let county_code = code.expect("checked").as_str().to_string();
        self.0.authorize_county(&county_code).await?;
        let (name, address, phone) = (
            name.expect("checked"),
            address.expect("checked"),
            phone.expect("checked"),
        );
        let lock = county_code.clone();
        let response = self
            .0
            .write(
                "SetCountyOffice",
                &req,
                &request_id.expect("checked").to_string(),
                &lock,
                move |conn, ctx| {
                    Box::pin(async move {
                        counties::get_county(conn, &county_code)
                            .await?
                            .ok_or_else(|| AppError::not_found("county", &county_code))?;
                        let office = counties::OfficeRecord {
                            county_code,
                            office_name: name,
                            address,
                            phone,
                            updated_at: fangpin_store::timestamp(ctx.now),
                        };
                        counties::put_office(conn, &office).await?;
                        Ok(office_to_pb(office))
                    })
                },
            )
            .await?;
        Ok(Response::new(response))
    }

    async fn get_county(
        &self,
        request: Request<pb::GetCountyRequest>,
    ) -> Result<Response<pb::CountyResponse>, Status> {
        let req = request.into_inner();
        let mut c = Check::new();
        let code = c.county("county_code", &req.county_code);
        let year = if req.policy_year == 0 {
            Some(None)
        } else {
            c.year("policy_year", req.policy_year).map(Some)
        };
        c.finish()?;
        let code = code.expect("checked");
        self.0.authorize_county(code.as_str()).await?;
        // The county, its pool and its enrolment counts from one moment.
        let mut conn = self.0.store.read_snapshot().await.map_err(AppError::from)?;
        let county = counties::get_county(&mut conn, code.as_str())
            .await
            .map_err(AppError::from)?
            .ok_or_else(|| AppError::not_found("county", &code))?;
        Ok(Response::new(
            county_response(&mut conn, &county, year.expect("checked")).await?,
        ))
    }

    async fn enroll_household(
        &self,
        request: Request<pb::EnrollHouseholdRequest>,
    ) -> Result<Response<pb::HouseholdResponse>, Status> {
        let req = request.into_inner();
        let today = self.0.today();
        let mut c = Check::new();
        let request_id = c.request_id(&req.request_id);
        let county = c.county("county_code", &req.county_code);
        let year = c.year("policy_year", req.policy_year);
        let village = c.village("village_code", &req.village_code);
        if let (Some(county), Some(village)) = (&county, &village)
            && &village.county() != county
        {
            c.bad("village_code", "the village is not in this county");
        }
        let household_type = c.household_type("household_type", req.household_type);
        let account = bank_account(&mut c, "bank_account", &req.bank_account);
        if req.members.len() + 1 > MAX_HOUSEHOLD_PERSONS {
            c.bad(
                "members",
                format!("a household enrols at most {MAX_HOUSEHOLD_PERSONS} persons"),
            );
        }
        let mut persons = Vec::new();
        let default_head = pb::Person::default();
        let head = req.head.as_ref().unwrap_or(&default_head);
        for (field, person, default_relation) in std::iter::once(("head", head, "head"))
            .chain(req.members.iter().map(|m| ("members", m, "")))
            .take(MAX_HOUSEHOLD_PERSONS)
        {
            let at = |f: &str, i: usize| {
                if field == "head" {
                    format!("head.{f}")
                } else {
                    format!("members[{i}].{f}")
                }
            };
            let i = persons.len().saturating_sub(1);
            let id = c.resident_id(&at("id_number", i), &person.id_number);
            let name = c.text(&at("name", i), &person.name, MAX_LABEL_CHARS);
            // A closed set (与户主关系), and one head: the head is the
            // `head` person, so no member may be another.
            let relation = if default_relation.is_empty() {
                match Relation::parse(&person.relation) {
                    Some(Relation::Head) => {
                        c.bad(
                            &at("relation", i),
                            "a household has one head: the `head` person",
                        );
                        None
                    }
                    Some(r) => Some(r.as_str().to_string()),
                    None => {
                        c.bad(
                            &at("relation", i),
                            "must be one of spouse, child, parent, grandparent, grandchild, \
                             sibling, child_in_law, other (or 配偶, 子女, 父母, ...)",
                        );
                        None
                    }
                }
            } else if person.relation.trim().is_empty()
                || Relation::parse(&person.relation) == Some(Relation::Head)
            {
                Some(default_relation.to_string())
            } else {
                c.bad(&at("relation", i), "the head's relation is head (户主)");
                None
            };
            // Nobody enrolled is born after the day of enrolment.
            if let Some(id) = &id
                && id.birth_date() > today
            {
                c.bad(
                    &at("id_number", i),
                    format!(
                        "the birth date {} lies after the enrolment date {today}",
                        id.birth_date()
                    ),
                );
            }
            if let Some(id) = &id
                && persons
                    .iter()
                    .flatten()
                    .any(|p: &(ResidentId, String, String)| &p.0 == id)
            {
                c.bad(&at("id_number", i), "the same person is listed twice");
            }
            persons.push((|| Some((id?, name?, relation?)))());
        }
        c.finish()?;
        let persons: Vec<(ResidentId, String, String)> =
            persons.into_iter().map(|p| p.expect("checked")).collect();
        let county = county.expect("checked").as_str().to_string();
        let household_id = Uuid::now_v7();
        let policy_year = year.expect("checked");
        // Sealed here, before the write: the digits go no further than this
        // handler (docs/personal-data.md). Each value is bound to its column
        // and row, so it cannot be moved to another household and opened.
        let key = &self.0.personal_data;
        let row = household_id.to_string();
        let (head_id, head_name, _) = &persons[0];
        self.0.authorize_county(&county).await?;
        let household = HouseholdRecord {
            household_id,
            county_code: county.clone(),
            policy_year,
            village_code: village.expect("checked").as_str().to_string(),
            household_type: household_type.expect("checked"),
            head_name: head_name.clone(),
            head_id_masked: head_id.masked(),
            head_id_sealed: key.seal(
                Column::HouseholdHeadId,
                &row,
                head_id.as_str(),
                personal_data::nonce()?,
            ),
            bank_account_masked: mask_account(account),
            bank_account_sealed: key.seal(
                Column::HouseholdBankAccount,
                &row,
                account,
                personal_data::nonce()?,
            ),
            persons: u32::try_from(persons.len()).expect("bounded by MAX_HOUSEHOLD_PERSONS"),
        };
        let persons = persons
            .iter()
            .map(|(id, name, relation)| {
                let (id_hash, id_sealed) = personal_data::seal_person(key, policy_year, &row, id)?;
                Ok(PersonRecord {
                    id_hash,
                    id_sealed,
                    name: name.clone(),
                    relation: relation.clone(),
                })
            })
            .collect::<Result<Vec<PersonRecord>, AppError>>()?;
        let response = self
            .0
            .write("EnrollHousehold", &req, &request_id.expect("checked").to_string(), &county.clone(), move |conn, ctx| {
                Box::pin(async move {
                    let record = counties::get_county(conn, &county).await?.ok_or_else(|| AppError::not_found("county", &county))?;
                    let policy = current_policy(conn, &county, household.policy_year).await?;
                    let pool_size = policy.pool_size(record.rural_population);
                    let enrolled = counties::count_persons(conn, &county, household.policy_year).await?;
                    if enrolled + u64::from(household.persons) > pool_size {
                        return Err(AppError::precondition(
                            "POOL_FULL",
                            format!("county/{county}/{}", household.policy_year),
                            format!(
                                "the insured pool holds {pool_size} persons and {enrolled} are enrolled; \
                                 {} more do not fit",
                                household.persons
                            ),
                        ));
                    }
                    match counties::insert_household(conn, &household, &persons, ctx.now).await {
                        Err(e) if e.is_unique_violation() => {
                            return Err(AppError::AlreadyExists(format!(
                                "a person of this household is already insured for {}",
                                household.policy_year
                            )));
                        }
                        other => other?,
                    }
                    Ok(household_to_pb(&household, &[]))
                })
            })
            .await?;
        Ok(Response::new(response))
    }

    async fn import_roster(
        &self,
        request: Request<tonic::Streaming<pb::ImportRosterRequest>>,
    ) -> Result<Response<pb::RosterImport>, Status> {
        crate::services::roster::import_roster(&self.0, request.into_inner())
            .await
            .map(Response::new)
    }

    async fn get_roster_import(
        &self,
        request: Request<pb::GetRosterImportRequest>,
    ) -> Result<Response<pb::RosterImport>, Status> {
        crate::services::roster::get_roster_import(&self.0, request.into_inner())
            .await
            .map(Response::new)
    }

    async fn get_household(
        &self,
        request: Request<pb::GetHouseholdRequest>,
    ) -> Result<Response<pb::HouseholdResponse>, Status> {
        let req = request.into_inner();
        let mut c = Check::new();
        let id = c.uuid("household_id", &req.household_id);
        c.finish()?;
        let id = id.expect("checked");
        self.0.authorize_household(id).await?;
        let mut conn = self.0.store.read().await.map_err(AppError::from)?;
        let household = counties::get_household(&mut conn, id)
            .await
            .map_err(AppError::from)?
            .ok_or_else(|| AppError::not_found("household", id))?;
        let corrections = counties::list_account_corrections(&mut conn, id)
            .await
            .map_err(AppError::from)?;
        Ok(Response::new(household_to_pb(&household, &corrections)))
    }

    async fn correct_bank_account(
        &self,
        request: Request<pb::CorrectBankAccountRequest>,
    ) -> Result<Response<pb::HouseholdResponse>, Status> {
        let req = request.into_inner();
        let mut c = Check::new();
        let request_id = c.request_id(&req.request_id);
        let id = c.uuid("household_id", &req.household_id);
        let account = bank_account(&mut c, "bank_account", &req.bank_account).to_string();
        let reason = c.text(
            "reason",
            &req.reason,
            crate::write_path::convert::MAX_TEXT_CHARS,
        );
        let corrected_by = c.text("corrected_by", &req.corrected_by, MAX_LABEL_CHARS);
        c.finish()?;
        let (id, reason, corrected_by) = (
            id.expect("checked"),
            reason.expect("checked"),
            corrected_by.expect("checked"),
        );
        crate::write_path::scope::check_acting_person("corrected_by", &corrected_by)?;
        self.0.authorize_household(id).await?;
        let county = {
            let mut conn = self.0.store.read().await.map_err(AppError::from)?;
            counties::get_household(&mut conn, id)
                .await
                .map_err(AppError::from)?
                .ok_or_else(|| AppError::not_found("household", id))?
                .county_code
        };
        // Sealed to the household's row, as at enrolment, before the lock.
        let sealed = self.0.personal_data.seal(
            Column::HouseholdBankAccount,
            &id.to_string(),
            &account,
            personal_data::nonce()?,
        );
        let masked = mask_account(&account);
        let response = self
            .0
            .write(
                "CorrectBankAccount",
                &req,
                &request_id.expect("checked").to_string(),
                &county.clone(),
                move |conn, ctx| {
                    Box::pin(async move {
                        let household = counties::get_household(conn, id)
                            .await?
                            .ok_or_else(|| AppError::not_found("household", id))?;
                        let at = fangpin_store::timestamp(ctx.now);
                        counties::correct_bank_account(
                            conn,
                            id,
                            &household.bank_account_masked,
                            &masked,
                            &sealed,
                            &corrected_by,
                            &reason,
                            &ctx.request_id,
                            &at,
                        )
                        .await?;
                        let household = counties::get_household(conn, id)
                            .await?
                            .ok_or_else(|| AppError::not_found("household", id))?;
                        let corrections = counties::list_account_corrections(conn, id).await?;
                        Ok(household_to_pb(&household, &corrections))
                    })
                },
            )
            .await?;
        Ok(Response::new(response))
    }

    async fn record_premium(
        &self,
        request: Request<pb::RecordPremiumRequest>,
    ) -> Result<Response<pb::PostingResponse>, Status> {
        let req = request.into_inner();
        let mut c = Check::new();
        let request_id = c.request_id(&req.request_id);
        let county = c.county("county_code", &req.county_code);
        let year = c.year("policy_year", req.policy_year);
        let amount = c.positive_money("amount_yuan", &req.amount_yuan);
        let reference = c.text("reference", &req.reference, MAX_LABEL_CHARS);
        c.finish()?;
        let county = county.expect("checked").as_str().to_string();
        let (year, amount, reference) = (
            year.expect("checked"),
            amount.expect("checked"),
            reference.expect("checked"),
        );
        self.0.authorize_county(&county).await?;
        let posting = Posting::new(PostingKind::PremiumReceived, amount)
            .map_err(|e| AppError::invalid("amount_yuan", e.to_string()))?;
        let response = self
            .0
            .write(
                "RecordPremium",
                &req,
                &request_id.expect("checked").to_string(),
                &county.clone(),
                move |conn, ctx| {
                    Box::pin(async move {
                        if counties::get_county(conn, &county).await?.is_none() {
                            return Err(AppError::not_found("county", &county));
                        }
                        current_policy(conn, &county, year).await?;
                        let new = ledger_store::NewEntry {
                            county_code: &county,
                            policy_year: year,
                            posting,
                            claim: None,
                            reverses: None,
                            reference: &reference,
                            request_id: &ctx.request_id,
                            now: ctx.now,
                        };
                        let entry = ledger_store::append_entry(conn, new).await?;
                        Ok(pb::PostingResponse {
                            entry: Some(convert::entry_to_pb(&entry)),
                            pool: Some(pool_balance(conn, &county, year).await?),
                        })
                    })
                },
            )
            .await?;
        Ok(Response::new(response))
    }
}
