//! `fangpin household`: enrol a household into a county's insured pool.

use anyhow::{Result, bail};
use clap::Subcommand;
use fangpin_proto::v1 as pb;
use fangpin_proto::v1::enrollment_service_client::EnrollmentServiceClient;

use crate::ctx::Ctx;
use crate::names::{self, HouseholdTypeArg};
use crate::output::{self, record};

#[derive(Subcommand)]
pub enum Cmd {
    /// Enrol a household for a policy year
    Enroll {
        #[arg(long)]
        county: String,
        #[arg(long)]
        year: i32,
        /// Twelve-digit village code inside the county
        #[arg(long)]
        village: String,
        #[arg(long = "type", value_enum)]
        household_type: HouseholdTypeArg,
        #[arg(long)]
        head_name: String,
        /// The head's 18-character resident ID number
        #[arg(long)]
        head_id: String,
        /// Another member as NAME,ID,RELATION (relation: spouse, child,
        /// parent, other); repeat for each member
        #[arg(long = "member", value_name = "NAME,ID,RELATION", value_parser = parse_member)]
        members: Vec<pb::Person>,
        /// The subsidy card (一卡通) account payouts go to
        #[arg(long)]
        bank_account: String,
    },
    /// Show an enrolled household
    Show { id: String },
}

pub async fn run(ctx: &Ctx, cmd: Cmd) -> Result<()> {
    let mut client = EnrollmentServiceClient::new(ctx.channel.clone());
    let household = match cmd {
        Cmd::Enroll {
            county,
            year,
            village,
            household_type,
            head_name,
            head_id,
            members,
            bank_account,
        } => {
            let request = pb::EnrollHouseholdRequest {
                request_id: ctx.request_id(),
                county_code: county,
                policy_year: year,
                village_code: village,
                household_type: pb::HouseholdType::from(household_type).into(),
                head: Some(pb::Person {
                    id_number: head_id,
                    name: head_name,
                    relation: "head".to_owned(),
                }),
                members,
                bank_account,
            };
            client.enroll_household(request).await?.into_inner()
        }
        Cmd::Show { id } => {
            let request = pb::GetHouseholdRequest { household_id: id };
            client.get_household(request).await?.into_inner()
        }
    };
    println!(
        "{}",
        record(vec![
            ("household", household.household_id),
            ("county", household.county_code),
            ("policy year", output::year(household.policy_year)),
            ("village", household.village_code),
            ("type", names::household_type(household.household_type)),
            ("head", household.head_name),
            ("head id", household.head_id_masked),
            ("persons", household.persons.to_string()),
            ("bank account", household.bank_account_masked),
        ])
    );
    Ok(())
}

/// Parses `NAME,ID,RELATION`. A full-width comma (，) counts as a comma,
/// since clerks type names with a Chinese input method that produces it.
/// The server checks the ID number and relation; this only splits.
pub fn parse_member(value: &str) -> Result<pb::Person> {
    let normalised = value.replace('，', ",");
    let parts: Vec<&str> = normalised.split(',').map(str::trim).collect();
    let [name, id_number, relation] = parts.as_slice() else {
        bail!(
            "expected NAME,ID,RELATION (three parts), got {} part(s)",
            parts.len()
        );
    };
    if let Some(empty) = [("name", name), ("ID", id_number), ("relation", relation)]
        .iter()
        .find(|(_, v)| v.is_empty())
    {
        bail!("the member's {} is empty", empty.0);
    }
    Ok(pb::Person {
        id_number: (*id_number).to_owned(),
        name: (*name).to_owned(),
        relation: relation.to_ascii_lowercase(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn member_with_ascii_commas() {
        let p = parse_member("王芳,13042619800101002X,spouse").expect("parses");
        assert_eq!(p.name, "王芳");
        assert_eq!(p.id_number, "13042619800101002X");
        assert_eq!(p.relation, "spouse");
    }

    #[test]
    fn member_with_fullwidth_commas_and_spaces() {
        let p = parse_member("李小明， 130426201001010011 ，Child").expect("parses");
        assert_eq!(p.name, "李小明");
        assert_eq!(p.id_number, "130426201001010011");
        assert_eq!(p.relation, "child");
    }

    #[test]
    fn member_with_wrong_shape_is_refused() {
        assert!(parse_member("王芳,13042619800101002X").is_err());
        assert!(parse_member("王芳,13042619800101002X,spouse,extra").is_err());
        let err = parse_member(",13042619800101002X,spouse").expect_err("empty name");
        assert!(err.to_string().contains("name"), "{err}");
    }
}
