//! `fangpin household`: enrol a household into a county's insured pool.

use std::path::{Path, PathBuf};

use anyhow::{Result, bail};
use clap::Subcommand;
use fangpin_proto::tonic;
use fangpin_proto::v1 as pb;
use fangpin_proto::v1::enrollment_service_client::EnrollmentServiceClient;

use crate::ctx::Ctx;
use crate::feed::{
    EncodingArg, IMPORT_TIMEOUT, bar, file_name, scan_with_bar, send_file, sends_utf8,
};
use crate::names::{self, HouseholdTypeArg};
use crate::output::{self, record, table};

/// Row errors printed; the rest are a `fangpin household import-show` away.
const ERRORS_SHOWN: usize = 20;

/// Streams a roster to the server: hashed first (with a bar), then sent
/// (with another), and answered with what was enrolled and refused.
async fn import(
    ctx: &Ctx,
    county: String,
    year: i32,
    encoding: EncodingArg,
    quiet: bool,
    path: &Path,
) -> Result<pb::RosterImport> {
    let scanned = scan_with_bar(path, quiet).await?;
    let xlsx = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("xlsx"));
    let format = match (xlsx, encoding) {
        (true, EncodingArg::Auto) => pb::RosterFormat::Xlsx,
        (true, _) => bail!("an .xlsx workbook has no text encoding: leave out --encoding"),
        (false, _) if sends_utf8(encoding, &scanned, path)? => pb::RosterFormat::CsvUtf8,
        (false, _) => pb::RosterFormat::CsvGbk,
    };
    let header = pb::RosterHeader {
        request_id: ctx.request_id(),
        county_code: county,
        policy_year: year,
        format: format.into(),
        file_name: file_name(path),
        sha256: scanned.sha256.clone(),
        size_bytes: scanned.size,
    };
    let sending = bar(quiet, scanned.size, "sending");
    let (messages, reader) = send_file(
        path,
        &sending,
        pb::ImportRosterRequest {
            part: Some(pb::import_roster_request::Part::Header(header)),
        },
        |chunk| pb::ImportRosterRequest {
            part: Some(pb::import_roster_request::Part::Data(chunk)),
        },
    );
    let mut client = EnrollmentServiceClient::new(ctx.long_channel(IMPORT_TIMEOUT)?);
    let mut request = tonic::Request::new(messages);
    request.set_timeout(IMPORT_TIMEOUT);
    let result = client.import_roster(request).await;
    sending.finish_and_clear();
    reader.abort();
    Ok(result?.into_inner())
}

fn print_import(s: &pb::RosterImport, errors_shown: usize) {
    let format = pb::RosterFormat::try_from(s.format)
        .map(|f| {
            f.as_str_name()
                .trim_start_matches("ROSTER_FORMAT_")
                .to_ascii_lowercase()
        })
        .unwrap_or_else(|_| format!("unknown({})", s.format));
    let mut rows = vec![
        ("import", s.import_id.clone()),
        ("county", s.county_code.clone()),
        ("policy year", output::year(s.policy_year)),
        ("file", s.file_name.clone()),
        ("format", format),
        ("sha256", s.sha256.clone()),
        ("rows", s.rows_total.to_string()),
        ("households enrolled", s.households_enrolled.to_string()),
        ("persons enrolled", s.persons_enrolled.to_string()),
        ("households refused", s.households_rejected.to_string()),
        ("rows refused", s.rows_rejected.to_string()),
        (
            "pool",
            format!("{} of {} insured", s.persons_insured, s.pool_size),
        ),
        ("imported at", s.imported_at.clone()),
    ];
    if s.duplicate {
        rows.push((
            "duplicate",
            "yes: this file was imported before; nobody was enrolled again".into(),
        ));
    }
    println!("{}", record(rows));
    if !s.errors_by_reason.is_empty() {
        let mut t = table(["refused because", "errors"]);
        for r in &s.errors_by_reason {
            t.add_row(vec![r.code.clone(), r.errors.to_string()]);
        }
        println!("{t}");
    }
    if !s.errors.is_empty() {
        let mut t = table(["line", "household", "field", "code", "reason"]);
        for e in s.errors.iter().take(errors_shown) {
            t.add_row(vec![
                e.line.to_string(),
                e.household_no.clone(),
                e.field.clone(),
                e.code.clone(),
                e.reason.clone(),
            ]);
        }
        println!("{t}");
        let total: u64 = s.errors_by_reason.iter().map(|r| r.errors).sum();
        let shown = s.errors.len().min(errors_shown) as u64;
        if shown < total {
            println!(
                "{} more errors; `fangpin household import-show {}` lists up to 1,000",
                total - shown,
                s.import_id
            );
        }
    }
}

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
    /// Enrol a county's roster (花名册): a CSV (UTF-8 or GBK) or XLSX file
    /// as the monitoring system exports it, streamed with a progress bar
    /// (docs/roster.md)
    Import {
        #[arg(long)]
        county: String,
        #[arg(long)]
        year: i32,
        /// utf8 or gbk for a CSV file; auto: UTF-8 if the whole file is,
        /// otherwise GBK. An .xlsx file is read as a workbook.
        #[arg(long, value_enum, default_value = "auto")]
        encoding: EncodingArg,
        /// No progress bar (for scripts and logs)
        #[arg(long)]
        quiet: bool,
        file: PathBuf,
    },
    /// A roster import's summary and its row errors (up to 1,000)
    ImportShow { import_id: String },
}

pub async fn run(ctx: &Ctx, cmd: Cmd) -> Result<()> {
    let mut client = EnrollmentServiceClient::new(ctx.channel.clone());
    let household = match cmd {
        Cmd::Import {
            county,
            year,
            encoding,
            quiet,
            file,
        } => {
            let summary = import(ctx, county, year, encoding, quiet, &file).await?;
            print_import(&summary, ERRORS_SHOWN);
            return Ok(());
        }
        Cmd::ImportShow { import_id } => {
            let summary = client
                .get_roster_import(pb::GetRosterImportRequest { import_id })
                .await?
                .into_inner();
            print_import(&summary, usize::MAX);
            return Ok(());
        }
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
