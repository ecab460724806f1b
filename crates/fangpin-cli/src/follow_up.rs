//! `fangpin follow-up`: after the payout (专人帮扶, 解困销号): contact
//! persons, their visits, clearing and reopening a household's case.

use anyhow::{Result, bail};
use clap::Subcommand;
use fangpin_proto::v1 as pb;
use fangpin_proto::v1::follow_up_service_client::FollowUpServiceClient;

use crate::ctx::Ctx;
use crate::names::{self, VisitModeArg};
use crate::output::{record, required, table, yes_no};

#[derive(Subcommand)]
pub enum Cmd {
    /// Give a paid claim's household one or two contact persons, or replace them
    Assign {
        claim_id: String,
        /// NAME,WORK_UNIT,PHONE (once or twice)
        #[arg(long = "contact", required = true, value_name = "NAME,WORK_UNIT,PHONE")]
        contacts: Vec<String>,
        #[arg(long)]
        by: String,
    },
    /// Record a contact person's visit or call
    Visit {
        claim_id: String,
        /// YYYY-MM-DD
        #[arg(long)]
        on: String,
        #[arg(long, value_enum, default_value = "home_visit")]
        mode: VisitModeArg,
        /// The contact person who went
        #[arg(long)]
        contact: String,
        #[arg(long)]
        findings: String,
        /// The risk of falling into poverty remains (default: gone)
        #[arg(long)]
        risk_remains: bool,
        #[arg(long)]
        by: String,
    },
    /// Clear the case (解困销号) after a visit found the risk gone
    Clear {
        claim_id: String,
        #[arg(long)]
        reason: String,
        #[arg(long)]
        by: String,
    },
    /// Reopen a cleared case: the risk returned
    Reopen {
        claim_id: String,
        #[arg(long)]
        reason: String,
        #[arg(long)]
        by: String,
    },
    /// One claim's case: contacts, visits, status changes, the next visit
    Show { claim_id: String },
    /// A household's monitoring status over all its cases
    Household { household_id: String },
}

fn parse_contact(text: &str) -> Result<pb::ContactPerson> {
    let parts: Vec<&str> = text.split(',').map(str::trim).collect();
    let [name, work_unit, phone] = parts[..] else {
        bail!("--contact {text:?}: expected NAME,WORK_UNIT,PHONE");
    };
    Ok(pb::ContactPerson {
        name: name.to_owned(),
        work_unit: work_unit.to_owned(),
        phone: phone.to_owned(),
        phone_masked: String::new(),
    })
}

pub async fn run(ctx: &Ctx, cmd: Cmd) -> Result<()> {
    let mut client = FollowUpServiceClient::new(ctx.channel.clone());
    let response = match cmd {
        Cmd::Assign {
            claim_id,
            contacts,
            by,
        } => {
            let contacts = contacts
                .iter()
                .map(|c| parse_contact(c))
                .collect::<Result<Vec<_>>>()?;
            client
                .assign_contacts(pb::AssignContactsRequest {
                    request_id: ctx.request_id(),
                    claim_id,
                    contacts,
                    assigned_by: by,
                })
                .await?
        }
        Cmd::Visit {
            claim_id,
            on,
            mode,
            contact,
            findings,
            risk_remains,
            by,
        } => {
            client
                .record_visit(pb::RecordVisitRequest {
                    request_id: ctx.request_id(),
                    claim_id,
                    visited_on: on,
                    mode: pb::VisitMode::from(mode).into(),
                    contact_name: contact,
                    findings,
                    risk_remains,
                    recorded_by: by,
                })
                .await?
        }
        Cmd::Clear {
            claim_id,
            reason,
            by,
        } => {
            client
                .clear_case(pb::ClearCaseRequest {
                    request_id: ctx.request_id(),
                    claim_id,
                    reason,
                    cleared_by: by,
                })
                .await?
        }
        Cmd::Reopen {
            claim_id,
            reason,
            by,
        } => {
            client
                .reopen_case(pb::ReopenCaseRequest {
                    request_id: ctx.request_id(),
                    claim_id,
                    reason,
                    reopened_by: by,
                })
                .await?
        }
        Cmd::Show { claim_id } => {
            client
                .get_follow_up(pb::GetFollowUpRequest { claim_id })
                .await?
        }
        Cmd::Household { household_id } => {
            let h = client
                .get_household_monitoring(pb::GetHouseholdMonitoringRequest { household_id })
                .await?
                .into_inner();
            println!(
                "household {}: {}",
                h.household_id,
                names::monitoring_status(h.status)
            );
            for case in &h.cases {
                print_case(case);
            }
            return Ok(());
        }
    };
    print_case(&required(response.into_inner().follow_up, "follow_up")?);
    Ok(())
}

fn print_case(c: &pb::FollowUpCase) {
    let next = if c.next_visit_due.is_empty() {
        "none".to_owned()
    } else {
        format!(
            "{} ({} working days {}{})",
            c.next_visit_due,
            c.working_days_over.abs(),
            if c.visit_overdue { "overdue" } else { "left" },
            if c.due_provisional {
                ", provisional"
            } else {
                ""
            }
        )
    };
    println!(
        "{}",
        record(vec![
            ("claim", c.claim_id.clone()),
            ("household", c.household_id.clone()),
            ("village", c.village_code.clone()),
            ("status", names::monitoring_status(c.status)),
            (
                "visit every",
                format!("{} working days", c.visit_every_working_days),
            ),
            ("next visit", next),
        ])
    );
    if !c.contacts.is_empty() {
        let mut t = table(["contact person", "work unit", "phone"]);
        for p in &c.contacts {
            t.add_row([p.name.clone(), p.work_unit.clone(), p.phone.clone()]);
        }
        println!("{t}");
    }
    if !c.visits.is_empty() {
        let mut t = table([
            "#",
            "visited",
            "mode",
            "by",
            "due",
            "days late",
            "risk remains",
            "findings",
        ]);
        for v in &c.visits {
            t.add_row([
                v.seq.to_string(),
                v.visited_on.clone(),
                names::visit_mode(v.mode),
                v.contact_name.clone(),
                v.due_on.clone(),
                v.working_days_late.to_string(),
                yes_no(v.risk_remains),
                v.findings.clone(),
            ]);
        }
        println!("{t}");
    }
    if !c.events.is_empty() {
        let mut t = table(["at", "event", "status", "by", "reason"]);
        for e in &c.events {
            t.add_row([
                e.at.clone(),
                e.event.clone(),
                names::monitoring_status(e.status),
                e.actor.clone(),
                e.reason.clone(),
            ]);
        }
        println!("{t}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contacts_parse_as_three_fields() {
        let c = parse_contact("王明, 乡政府, 13800138000").expect("parses");
        assert_eq!(
            (c.name.as_str(), c.work_unit.as_str(), c.phone.as_str()),
            ("王明", "乡政府", "13800138000")
        );
        assert!(parse_contact("王明,13800138000").is_err());
    }
}
