//! Tables shared by several areas: claims, ledger postings, the pool.

use anyhow::{Result, anyhow};
use comfy_table::{ContentArrangement, Table, presets::UTF8_FULL_CONDENSED};
use fangpin_proto::v1 as pb;

use crate::names;

pub fn table<const N: usize>(header: [&str; N]) -> Table {
    let mut table = Table::new();
    table
        .load_preset(UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_header(header);
    table
}

/// A two-column record. Empty values are left out: most of a claim's fields
/// stay empty until its later stages, and blank rows would hide the ones
/// that matter now.
pub fn record(rows: Vec<(&str, String)>) -> Table {
    let mut table = Table::new();
    table
        .load_preset(UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Dynamic);
    for (key, value) in rows {
        if !value.is_empty() {
            table.add_row([key.to_owned(), value]);
        }
    }
    table
}

/// A response message the server must always fill; its absence is a server
/// bug, reported as an error rather than a panic.
pub fn required<T>(value: Option<T>, what: &str) -> Result<T> {
    value.ok_or_else(|| anyhow!("the server's response has no {what}"))
}

pub fn yes_no(value: bool) -> String {
    if value { "yes" } else { "no" }.to_owned()
}

/// How much of a claim to print. Each step of the walk prints the claim it
/// changed; repeating the whole assessment and its arithmetic after every
/// step buries the one row that changed, so only `claim show` and the
/// survey findings (where the amount is computed) print it in full.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Detail {
    Summary,
    Full,
}

pub fn print_claim(claim: &pb::Claim, detail: Detail) {
    let mut rows = claim_rows(claim);
    if let (Some(a), Detail::Summary) = (&claim.assessment, detail) {
        let verdict = if a.eligible {
            "eligible"
        } else {
            "not eligible"
        };
        // Next to the advance and payout it is measured against.
        let at = rows
            .iter()
            .position(|(key, _)| *key == "advance paid")
            .unwrap_or(rows.len());
        rows.insert(
            at,
            ("assessed relief", format!("{} ({verdict})", a.amount_yuan)),
        );
    }
    println!("{}", record(rows));
    if let (Some(a), Detail::Full) = (&claim.assessment, detail) {
        println!("Assessment");
        println!("{}", assessment_record(a));
        if !a.explanation.is_empty() {
            println!("Explanation");
            for (i, line) in a.explanation.iter().enumerate() {
                println!("  {:>2}. {line}", i + 1);
            }
        }
    }
}

fn claim_rows(c: &pb::Claim) -> Vec<(&'static str, String)> {
    let version = if c.policy_version == 0 {
        String::new()
    } else {
        c.policy_version.to_string()
    };
    vec![
        ("claim", c.claim_id.clone()),
        ("state", names::claim_state(c.state)),
        ("county", c.county_code.clone()),
        ("policy year", year(c.policy_year)),
        ("policy version", version),
        ("household", c.household_id.clone()),
        ("village", c.village_code.clone()),
        ("relief kind", names::relief_kind(c.relief_kind)),
        ("channel", names::channel(c.channel)),
        ("event date", c.event_date.clone()),
        ("event reference", c.event_reference.clone()),
        ("claimed cost", c.claimed_cost_yuan.clone()),
        ("description", c.description.clone()),
        ("intake date", c.intake_date.clone()),
        ("survey deadline", c.survey_deadline.clone()),
        ("surveyor", c.surveyor.clone()),
        ("recommendation", c.recommendation_reason.clone()),
        ("advance paid", c.advance_paid_yuan.clone()),
        // Held in the pool between filing and payout.
        ("reserved", c.reserved_yuan.clone()),
        ("publicity opens", c.publicity_opens_on.clone()),
        ("last objection day", c.publicity_last_objection_day.clone()),
        ("objections", count(c.objections)),
        ("payout", c.payout_yuan.clone()),
    ]
}

fn assessment_record(a: &pb::Assessment) -> Table {
    record(vec![
        (
            "income per capita",
            a.verified_income_per_capita_yuan.clone(),
        ),
        ("income limit", a.income_limit_yuan.clone()),
        ("verified cost", a.verified_cost_yuan.clone()),
        ("threshold", a.threshold_yuan.clone()),
        ("eligible", yes_no(a.eligible)),
        ("amount", a.amount_yuan.clone()),
        ("surveyed by", a.surveyed_by.clone()),
        ("notes", a.notes.clone()),
        ("evidence", a.evidence_refs.join(", ")),
    ])
}

pub fn claims_table<'a>(claims: impl IntoIterator<Item = &'a pb::Claim>) -> Table {
    let mut table = table([
        "claim",
        "household",
        "village",
        "kind",
        "channel",
        "state",
        "claimed",
        "intake",
        "deadline",
        "surveyor",
    ]);
    for c in claims {
        table.add_row([
            c.claim_id.clone(),
            c.household_id.clone(),
            c.village_code.clone(),
            names::relief_kind(c.relief_kind),
            names::channel(c.channel),
            names::claim_state(c.state),
            c.claimed_cost_yuan.clone(),
            c.intake_date.clone(),
            c.survey_deadline.clone(),
            c.surveyor.clone(),
        ]);
    }
    table
}

/// A reversal names the entry it undoes by id; the table shows entries by
/// sequence, so the reversed one is shown as `#seq` when it is in the same
/// list, by id otherwise. The column appears only when some entry has it.
pub fn entries_table<'a>(entries: impl IntoIterator<Item = &'a pb::LedgerEntry>) -> Table {
    let entries: Vec<&pb::LedgerEntry> = entries.into_iter().collect();
    let reversals = entries.iter().any(|e| !e.reverses_entry_id.is_empty());
    let mut header = vec![
        "seq",
        "kind",
        "debit",
        "credit",
        "amount",
        "claim",
        "reference",
        "posted at",
    ];
    if reversals {
        header.push("reverses");
    }
    let mut table = Table::new();
    table
        .load_preset(UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_header(header);
    for e in &entries {
        let mut row = vec![
            e.sequence.to_string(),
            e.kind.clone(),
            e.debit_account.clone(),
            e.credit_account.clone(),
            e.amount_yuan.clone(),
            e.claim_id.clone(),
            e.reference.clone(),
            e.posted_at.clone(),
        ];
        if reversals {
            row.push(reversed_entry(&entries, &e.reverses_entry_id));
        }
        table.add_row(row);
    }
    table
}

fn reversed_entry(entries: &[&pb::LedgerEntry], id: &str) -> String {
    if id.is_empty() {
        return String::new();
    }
    entries
        .iter()
        .find(|e| e.entry_id == id)
        .map_or_else(|| id.to_owned(), |e| format!("#{}", e.sequence))
}

pub fn pool_record(p: &pb::PoolBalance) -> Table {
    record(vec![
        ("county", p.county_code.clone()),
        ("policy year", year(p.policy_year)),
        ("year state", p.year_state.clone()),
        ("opening", p.opening_yuan.clone()),
        ("premiums", p.premiums_yuan.clone()),
        ("top-ups", p.top_ups_yuan.clone()),
        ("relief paid", p.relief_paid_yuan.clone()),
        ("advances", p.advances_yuan.clone()),
        ("service fee", p.service_fee_yuan.clone()),
        ("pool", p.pool_yuan.clone()),
        // Filed relief reserved but not yet paid, and what is left to promise.
        ("pending", p.pending_yuan.clone()),
        ("available", p.available_yuan.clone()),
        ("shortfall", p.shortfall_yuan.clone()),
        ("rolled over", p.rolled_over_yuan.clone()),
        ("entries", p.entries.to_string()),
    ])
}

pub fn flags_table<'a>(flags: impl IntoIterator<Item = &'a pb::TopUpFlag>) -> Table {
    let mut table = table([
        "flag",
        "claim",
        "shortfall",
        "raised at",
        "cleared at",
        "cleared by",
    ]);
    for f in flags {
        table.add_row([
            f.flag_id.clone(),
            f.claim_id.clone(),
            f.shortfall_yuan.clone(),
            f.raised_at.clone(),
            f.cleared_at.clone(),
            f.cleared_by_entry.clone(),
        ]);
    }
    table
}

/// The money side of a premium, advance, payout or top-up.
pub fn print_posting(
    entry: Option<&pb::LedgerEntry>,
    pool: Option<&pb::PoolBalance>,
    flag: Option<&pb::TopUpFlag>,
) {
    if let Some(entry) = entry {
        println!("Posting");
        println!("{}", entries_table([entry]));
    }
    if let Some(pool) = pool {
        println!("Pool");
        println!("{}", pool_record(pool));
    }
    // The payment was made regardless; county finance has to act on this.
    if let Some(flag) = flag {
        println!(
            "TOP-UP NEEDED: the pool is short by {} (flag {}); county finance must top it up",
            flag.shortfall_yuan, flag.flag_id
        );
    }
}

pub fn year(y: i32) -> String {
    if y == 0 { String::new() } else { y.to_string() }
}

fn count(n: u32) -> String {
    if n == 0 { String::new() } else { n.to_string() }
}
