//! `fangpin pool`: the county fund pool (资金池), county finance's top-ups,
//! closing the year (年度结转), reconciliation (对账) and bank matching.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::Subcommand;
use comfy_table::CellAlignment;
use fangpin_proto::v1 as pb;
use fangpin_proto::v1::ledger_service_client::LedgerServiceClient;

use crate::ctx::{Ctx, all_pages};
use crate::export::{self, BreakdownLine};
use crate::output::{
    entries_table, flags_table, pool_record, print_posting, record, required, table, year,
};

/// The server takes a statement of at most this size.
const MAX_STATEMENT_BYTES: u64 = 4 * 1024 * 1024;

#[derive(Subcommand)]
pub enum Cmd {
    /// The pool's balance and what went in and out
    Balance {
        #[arg(long)]
        county: String,
        #[arg(long)]
        year: i32,
        /// The balance at the end of this day (Beijing time), entries posted
        /// on it included
        #[arg(long, value_name = "YYYY-MM-DD")]
        as_of: Option<String>,
    },
    /// Calls on county finance to top up the pool (open ones by default)
    Flags {
        #[arg(long)]
        county: String,
        #[arg(long)]
        year: i32,
        /// Include flags already cleared
        #[arg(long)]
        all: bool,
    },
    /// Record money county finance added to the pool
    TopUp {
        #[arg(long)]
        county: String,
        #[arg(long)]
        year: i32,
        #[arg(long)]
        amount: String,
        #[arg(long)]
        reference: String,
    },
    /// Every posting of the pool, in order
    Entries {
        #[arg(long)]
        county: String,
        #[arg(long)]
        year: i32,
    },
    /// Close the year: post the insurer's service fee and carry the surplus
    /// into next year (refused while a payout is pending or a flag is open)
    Close {
        #[arg(long)]
        county: String,
        #[arg(long)]
        year: i32,
        #[arg(long)]
        by: String,
    },
    /// Reopen a closed year, reversing the fee and the rollover (county office)
    Reopen {
        #[arg(long)]
        county: String,
        #[arg(long)]
        year: i32,
        #[arg(long)]
        by: String,
        #[arg(long)]
        reason: String,
    },
    /// Whether the year is open or closed, with every close and reopen
    Year {
        #[arg(long)]
        county: String,
        #[arg(long)]
        year: i32,
    },
    /// Match a bank statement (CSV, UTF-8 or GBK) against the year's payouts
    Match {
        #[arg(long)]
        county: String,
        #[arg(long)]
        year: i32,
        /// The statement as exported by the bank, at most 4 MiB
        #[arg(long, value_name = "statement.csv")]
        file: PathBuf,
    },
    /// The year-end outlook (资金池年末预测): the projected balance and the
    /// chance a top-up will be needed, with the figures it rests on
    Outlook {
        #[arg(long)]
        county: String,
        #[arg(long)]
        year: i32,
        /// Simulated years, 1 to 100,000 (default 10,000)
        #[arg(long, default_value_t = 10_000)]
        runs: u32,
        /// The generator's seed: the same seed gives the same answer
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
    /// The year's reconciliation: the balance identity and the breakdowns
    /// by relief kind and by township, optionally written for Excel
    Reconcile {
        #[arg(long)]
        county: String,
        #[arg(long)]
        year: i32,
        /// Also write it as CSV (UTF-8 with BOM, so Excel reads the Chinese)
        #[arg(long, value_name = "FILE")]
        csv: Option<PathBuf>,
        /// Also write it as an Excel workbook
        #[arg(long, value_name = "FILE")]
        xlsx: Option<PathBuf>,
    },
}

pub async fn run(ctx: &Ctx, cmd: Cmd) -> Result<()> {
    let mut client = LedgerServiceClient::new(ctx.channel.clone());
    match cmd {
        Cmd::Balance {
            county,
            year,
            as_of,
        } => {
            let pool = match as_of {
                None => {
                    let request = pb::PoolRequest {
                        county_code: county,
                        policy_year: year,
                    };
                    client.get_pool_balance(request).await?.into_inner()
                }
                Some(as_of) => {
                    let request = pb::BalanceAsOfRequest {
                        county_code: county,
                        policy_year: year,
                        as_of: as_of.clone(),
                    };
                    let pool = client.get_balance_as_of(request).await?.into_inner();
                    println!("As of the end of {as_of} (Beijing time)");
                    pool
                }
            };
            println!("{}", pool_record(&pool));
        }
        Cmd::Flags { county, year, all } => {
            let request = pb::ListTopUpFlagsRequest {
                county_code: county,
                policy_year: year,
                include_cleared: all,
            };
            let flags = client.list_top_up_flags(request).await?.into_inner().flags;
            if flags.is_empty() {
                println!("no flags{}", if all { "" } else { " open" });
            } else {
                println!("{}", flags_table(&flags));
                println!("{} flag(s)", flags.len());
            }
        }
        Cmd::TopUp {
            county,
            year,
            amount,
            reference,
        } => {
            let request = pb::RecordTopUpRequest {
                request_id: ctx.request_id(),
                county_code: county,
                policy_year: year,
                amount_yuan: amount,
                reference,
            };
            let top_up = client.record_top_up(request).await?.into_inner();
            print_posting(top_up.entry.as_ref(), top_up.pool.as_ref(), None);
            if !top_up.cleared.is_empty() {
                println!("Cleared flags");
                println!("{}", flags_table(&top_up.cleared));
            }
        }
        Cmd::Entries { county, year } => {
            let entries = all_pages(async |page_token| {
                let request = pb::ListEntriesRequest {
                    county_code: county.clone(),
                    policy_year: year,
                    page_size: 0,
                    page_token,
                };
                let page = client.list_entries(request).await?.into_inner();
                Ok((page.entries, page.next_page_token))
            })
            .await?;
            if entries.is_empty() {
                println!("no entries");
            } else {
                println!("{}", entries_table(&entries));
                let plural = if entries.len() == 1 {
                    "entry"
                } else {
                    "entries"
                };
                println!("{} {plural}", entries.len());
            }
        }
        Cmd::Close { county, year, by } => {
            let request = pb::CloseYearRequest {
                request_id: ctx.request_id(),
                county_code: county,
                policy_year: year,
                closed_by: by,
            };
            let closed = client.close_year(request).await?.into_inner();
            print_reconciliation(&required(closed.reconciliation, "reconciliation")?)?;
            let posted: Vec<pb::LedgerEntry> = [
                closed.service_fee_entry,
                closed.rollover_out_entry,
                closed.rollover_in_entry,
            ]
            .into_iter()
            .flatten()
            .collect();
            if posted.is_empty() {
                println!("Nothing posted (no fee or surplus, or the year was already closed).");
            } else {
                println!("Posted");
                println!("{}", entries_table(&posted));
            }
        }
        Cmd::Reopen {
            county,
            year,
            by,
            reason,
        } => {
            let request = pb::ReopenYearRequest {
                request_id: ctx.request_id(),
                county_code: county,
                policy_year: year,
                reopened_by: by,
                reason,
            };
            let status = client.reopen_year(request).await?.into_inner();
            print_year_status(&status);
        }
        Cmd::Year { county, year } => {
            let request = pb::PoolRequest {
                county_code: county,
                policy_year: year,
            };
            let status = client.get_year_status(request).await?.into_inner();
            print_year_status(&status);
        }
        Cmd::Match { county, year, file } => {
            let statement_csv = read_statement(&file)?;
            let request = pb::MatchBankStatementRequest {
                county_code: county,
                policy_year: year,
                statement_csv,
            };
            let report = client.match_bank_statement(request).await?.into_inner();
            print_match_report(&report);
        }
        Cmd::Outlook {
            county,
            year,
            runs,
            seed,
        } => {
            let outlook = client
                .get_pool_outlook(pb::PoolOutlookRequest {
                    county_code: county,
                    policy_year: year,
                    runs,
                    seed,
                })
                .await?
                .into_inner();
            print_outlook(&outlook);
        }
        Cmd::Reconcile {
            county,
            year,
            csv,
            xlsx,
        } => {
            let request = pb::PoolRequest {
                county_code: county,
                policy_year: year,
            };
            let rec = client.get_reconciliation(request).await?.into_inner();
            print_reconciliation(&rec)?;
            if let Some(path) = csv {
                export::write_reconciliation_csv(&rec, &path)?;
                println!("wrote {}", path.display());
            }
            if let Some(path) = xlsx {
                export::write_reconciliation_xlsx(&rec, &path)?;
                println!("wrote {}", path.display());
            }
        }
    }
    Ok(())
}

/// The statement is sent as it is: the server detects UTF-8 or GBK.
fn read_statement(file: &Path) -> Result<Vec<u8>> {
    let size = std::fs::metadata(file)
        .with_context(|| format!("cannot read {}", file.display()))?
        .len();
    if size > MAX_STATEMENT_BYTES {
        bail!(
            "{} is {size} bytes; the server takes statements of at most 4 MiB, split it by month",
            file.display()
        );
    }
    std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))
}

fn print_reconciliation(rec: &pb::Reconciliation) -> Result<()> {
    let rows = export::rows(rec)?;
    let mut summary = table(["项目", "item", "yuan"]);
    for line in &rows.summary {
        summary.add_row([line.zh.to_owned(), line.en.to_owned(), line.value.display()]);
    }
    right_align(&mut summary, &[2]);
    println!("Reconciliation");
    println!("{summary}");
    println!("opening + premiums + top-ups - relief - advances - service fee = closing");
    if !rows.ties {
        // Not an error of the command: the report is still worth reading,
        // and exactly what the county needs to investigate.
        eprintln!(
            "WARNING: the reconciliation does not tie: the identity, the ledger's \
             balances or the breakdowns disagree; report it to the system administrator"
        );
    }
    print_breakdown("By relief kind", "kind", &rows.by_relief_kind);
    print_breakdown("By township", "township", &rows.by_township);
    Ok(())
}

fn print_breakdown(title: &str, key: &str, lines: &[BreakdownLine]) {
    println!("{title}");
    // The total line is always there; alone it means nothing was paid.
    if lines.len() <= 1 {
        println!("  no relief or advances paid");
        return;
    }
    let mut t = table([key, "claims", "relief", "advances"]);
    for l in lines {
        t.add_row([
            l.key.clone(),
            l.claims.to_string(),
            export::format_fen(l.relief_fen),
            export::format_fen(l.advances_fen),
        ]);
    }
    right_align(&mut t, &[1, 2, 3]);
    println!("{t}");
}

fn right_align(t: &mut comfy_table::Table, columns: &[usize]) {
    for &i in columns {
        if let Some(column) = t.column_mut(i) {
            column.set_cell_alignment(CellAlignment::Right);
        }
    }
}

fn stage_name(stage: i32) -> &'static str {
    match pb::OutlookStage::try_from(stage) {
        Ok(pb::OutlookStage::Received) => "received 已受理",
        Ok(pb::OutlookStage::UnderSurvey) => "under survey 入户查勘",
        Ok(pb::OutlookStage::Recommended) => "recommended 拟救助",
        Ok(pb::OutlookStage::InPublicity) => "in publicity 公示中",
        Ok(pb::OutlookStage::PublicityPassed) => "publicity passed 公示无异议",
        _ => "unknown",
    }
}

fn print_outlook(o: &pb::PoolOutlook) {
    println!(
        "{}",
        record(vec![
            ("county", o.county_code.clone()),
            ("policy year", year(o.policy_year)),
            ("as of", o.as_of.clone()),
            ("posted pool", o.posted_pool_yuan.clone()),
            ("reserved (filed)", o.reserved_yuan.clone()),
            ("available", o.available_yuan.clone()),
            ("runs / seed", format!("{} / {}", o.runs, o.seed)),
            ("expected year end", o.expected_yuan.clone()),
            (
                "p5 / p50 / p95",
                format!("{} / {} / {}", o.p5_yuan, o.p50_yuan, o.p95_yuan),
            ),
            (
                "top-up probability",
                format!(
                    "{} ({} of {} runs)",
                    o.top_up_probability, o.top_up_runs, o.runs
                ),
            ),
            ("worst case", o.worst_case_yuan.clone()),
            (
                "months projected",
                format!(
                    "{} (history of up to {} years)",
                    o.months_projected, o.years_of_history
                ),
            ),
        ])
    );
    let mut t = table([
        "stage", "claims", "amount", "reached", "paid", "rate", "prior",
    ]);
    for s in &o.stages {
        t.add_row([
            stage_name(s.stage).to_string(),
            s.claims.to_string(),
            s.amount_yuan.clone(),
            s.reached.to_string(),
            s.paid.to_string(),
            s.rate.clone(),
            if s.prior { "yes" } else { "" }.to_string(),
        ]);
    }
    right_align(&mut t, &[1, 2, 3, 4, 5]);
    println!("{t}");
    if !o.months.is_empty() {
        let mut t = table(["month", "earlier years", "largest"]);
        for m in &o.months {
            t.add_row([
                m.month.to_string(),
                m.years.to_string(),
                m.largest_yuan.clone(),
            ]);
        }
        right_align(&mut t, &[1, 2]);
        println!("{t}");
    }
}

fn print_year_status(status: &pb::YearStatus) {
    println!(
        "{}",
        record(vec![
            ("county", status.county_code.clone()),
            ("policy year", year(status.policy_year)),
            ("state", status.state.clone()),
        ])
    );
    if status.events.is_empty() {
        println!("no events");
        return;
    }
    let mut t = table(["at", "event", "actor", "reason"]);
    for e in &status.events {
        t.add_row([
            e.at.clone(),
            e.event.clone(),
            e.actor.clone(),
            e.reason.clone(),
        ]);
    }
    println!("{t}");
}

fn bank_line_row(b: &pb::BankLine) -> [String; 5] {
    [
        b.line.to_string(),
        b.date.clone(),
        b.amount_yuan.clone(),
        // The server sends it masked already; a table never shows a full
        // account, whatever a server of another version sends.
        fangpin_domain::personal_data::mask_account(&b.account),
        b.reference.clone(),
    ]
}

fn print_match_report(report: &pb::BankMatchReport) {
    if !report.encoding.is_empty() {
        println!("statement encoding: {}", report.encoding);
    }

    println!("Matched: {}", report.matched.len());
    if !report.matched.is_empty() {
        let mut t = table([
            "line",
            "date",
            "amount",
            "account",
            "bank reference",
            "seq",
            "claim",
            "entry reference",
        ]);
        for m in &report.matched {
            let mut row = m
                .bank
                .as_ref()
                .map_or_else(Default::default, bank_line_row)
                .to_vec();
            let entry = m.entry.as_ref();
            row.push(entry.map_or_else(String::new, |e| e.sequence.to_string()));
            row.push(entry.map_or_else(String::new, |e| e.claim_id.clone()));
            row.push(entry.map_or_else(String::new, |e| e.reference.clone()));
            t.add_row(row);
        }
        right_align(&mut t, &[2]);
        println!("{t}");
    }

    println!("Unmatched in bank: {}", report.unmatched_in_bank.len());
    if !report.unmatched_in_bank.is_empty() {
        let mut t = table(["line", "date", "amount", "account", "reference"]);
        for b in &report.unmatched_in_bank {
            t.add_row(bank_line_row(b));
        }
        right_align(&mut t, &[2]);
        println!("{t}");
    }

    println!("Unmatched in ledger: {}", report.unmatched_in_ledger.len());
    if !report.unmatched_in_ledger.is_empty() {
        println!("{}", entries_table(&report.unmatched_in_ledger));
    }

    println!("Bad lines: {}", report.bad_lines.len());
    if !report.bad_lines.is_empty() {
        let mut t = table(["line", "reason"]);
        for b in &report.bad_lines {
            t.add_row([b.line.to_string(), b.reason.clone()]);
        }
        println!("{t}");
    }
}

#[cfg(test)]
mod tests {
    //! The commands against an in-process fake of the ledger service: what
    //! they send and what they write, without the real server.

    use std::sync::{Arc, Mutex};

    use fangpin_proto::tonic::{self, Request, Response, Status};
    use fangpin_proto::v1::ledger_service_server::{LedgerService, LedgerServiceServer};

    use super::*;
    use crate::export::test_data::sample;

    /// What the fake was asked, one line per call.
    #[derive(Clone, Default)]
    struct Fake {
        calls: Arc<Mutex<Vec<String>>>,
        statement: Arc<Mutex<Vec<u8>>>,
    }

    impl Fake {
        fn note(&self, call: String) {
            self.calls.lock().expect("lock").push(call);
        }

        fn calls(&self) -> Vec<String> {
            self.calls.lock().expect("lock").clone()
        }
    }

    fn entry(sequence: u64, kind: &str, amount: &str) -> pb::LedgerEntry {
        pb::LedgerEntry {
            entry_id: format!("e{sequence}"),
            sequence,
            kind: kind.to_owned(),
            amount_yuan: amount.to_owned(),
            ..Default::default()
        }
    }

    #[tonic::async_trait]
    impl LedgerService for Fake {
        async fn get_pool_outlook(
            &self,
            r: Request<pb::PoolOutlookRequest>,
        ) -> Result<Response<pb::PoolOutlook>, Status> {
            let r = r.into_inner();
            self.note(format!(
                "outlook {} {} {} {}",
                r.county_code, r.policy_year, r.runs, r.seed
            ));
            Ok(Response::new(pb::PoolOutlook::default()))
        }
        async fn get_pool_balance(
            &self,
            r: Request<pb::PoolRequest>,
        ) -> Result<Response<pb::PoolBalance>, Status> {
            self.note(format!("balance {}", r.get_ref().county_code));
            Ok(Response::new(pb::PoolBalance::default()))
        }
        async fn list_top_up_flags(
            &self,
            _: Request<pb::ListTopUpFlagsRequest>,
        ) -> Result<Response<pb::ListTopUpFlagsResponse>, Status> {
            Err(Status::unimplemented("fake"))
        }
        async fn record_top_up(
            &self,
            _: Request<pb::RecordTopUpRequest>,
        ) -> Result<Response<pb::TopUpResponse>, Status> {
            Err(Status::unimplemented("fake"))
        }
        async fn list_entries(
            &self,
            _: Request<pb::ListEntriesRequest>,
        ) -> Result<Response<pb::ListEntriesResponse>, Status> {
            Err(Status::unimplemented("fake"))
        }
        async fn get_balance_as_of(
            &self,
            r: Request<pb::BalanceAsOfRequest>,
        ) -> Result<Response<pb::PoolBalance>, Status> {
            self.note(format!("balance as of {}", r.get_ref().as_of));
            Ok(Response::new(pb::PoolBalance::default()))
        }
        async fn get_reconciliation(
            &self,
            r: Request<pb::PoolRequest>,
        ) -> Result<Response<pb::Reconciliation>, Status> {
            let r = r.into_inner();
            self.note(format!("reconcile {} {}", r.county_code, r.policy_year));
            Ok(Response::new(sample()))
        }
        async fn close_year(
            &self,
            r: Request<pb::CloseYearRequest>,
        ) -> Result<Response<pb::CloseYearResponse>, Status> {
            let r = r.into_inner();
            self.note(format!("close by {}", r.closed_by));
            Ok(Response::new(pb::CloseYearResponse {
                reconciliation: Some(sample()),
                service_fee_entry: Some(entry(40, "service_fee", "12500.00")),
                rollover_out_entry: Some(entry(41, "rollover_out", "55100.25")),
                rollover_in_entry: None,
            }))
        }
        async fn reopen_year(
            &self,
            r: Request<pb::ReopenYearRequest>,
        ) -> Result<Response<pb::YearStatus>, Status> {
            let r = r.into_inner();
            self.note(format!("reopen by {} because {}", r.reopened_by, r.reason));
            Ok(Response::new(pb::YearStatus::default()))
        }
        async fn get_year_status(
            &self,
            _: Request<pb::PoolRequest>,
        ) -> Result<Response<pb::YearStatus>, Status> {
            Ok(Response::new(pb::YearStatus {
                state: "closed".to_owned(),
                events: vec![pb::YearEvent {
                    event: "closed".to_owned(),
                    ..Default::default()
                }],
                ..Default::default()
            }))
        }
        async fn resolve_advance_receivable(
            &self,
            _: Request<pb::ResolveAdvanceReceivableRequest>,
        ) -> Result<Response<pb::AdvanceReceivable>, Status> {
            Err(Status::unimplemented("not used by these tests"))
        }

        async fn match_bank_statement(
            &self,
            r: Request<pb::MatchBankStatementRequest>,
        ) -> Result<Response<pb::BankMatchReport>, Status> {
            let r = r.into_inner();
            self.note("match".to_owned());
            *self.statement.lock().expect("lock") = r.statement_csv;
            let bank = pb::BankLine {
                line: 2,
                amount_yuan: "500.00".to_owned(),
                ..Default::default()
            };
            Ok(Response::new(pb::BankMatchReport {
                encoding: "GBK".to_owned(),
                matched: vec![pb::BankMatch {
                    bank: Some(bank.clone()),
                    entry: Some(entry(7, "relief_payout", "500.00")),
                }],
                unmatched_in_bank: vec![bank],
                unmatched_in_ledger: vec![entry(8, "relief_payout", "20.00")],
                bad_lines: vec![pb::BadBankLine {
                    line: 3,
                    reason: "no amount".to_owned(),
                }],
            }))
        }
    }

    async fn serve(fake: Fake) -> Ctx {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(LedgerServiceServer::new(fake))
                .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
        );
        let transport = fangpin_cli::connect::Transport {
            server: format!("http://{addr}"),
            ..Default::default()
        };
        Ctx::new(transport, None).expect("ctx")
    }

    #[tokio::test]
    async fn reconcile_writes_the_csv_and_the_workbook() {
        let fake = Fake::default();
        let ctx = serve(fake.clone()).await;
        let dir = tempfile::tempdir().expect("temp dir");
        let (csv, xlsx) = (dir.path().join("r.csv"), dir.path().join("r.xlsx"));
        let cmd = Cmd::Reconcile {
            county: "410102".to_owned(),
            year: 2024,
            csv: Some(csv.clone()),
            xlsx: Some(xlsx.clone()),
        };
        run(&ctx, cmd).await.expect("reconcile");
        assert_eq!(fake.calls(), ["reconcile 410102 2024"]);
        let written = std::fs::read(&csv).expect("csv written");
        assert_eq!(written, export::reconciliation_csv(&sample()).expect("csv"));
        let book: calamine::Xlsx<_> = calamine::open_workbook(&xlsx).expect("xlsx written");
        assert_eq!(
            calamine::Reader::sheet_names(&book),
            ["汇总", "按救助类型", "按乡镇"]
        );
    }

    #[tokio::test]
    async fn match_sends_the_statement_bytes_as_they_are() {
        let fake = Fake::default();
        let ctx = serve(fake.clone()).await;
        let dir = tempfile::tempdir().expect("temp dir");
        let file = dir.path().join("statement.csv");
        // GBK for "日期,金额": not UTF-8, and must arrive untouched.
        let gbk = b"\xc8\xd5\xc6\xda,\xbd\xf0\xb6\xee\r\n2024-05-01,500.00\r\n".to_vec();
        std::fs::write(&file, &gbk).expect("write");
        let cmd = Cmd::Match {
            county: "410102".to_owned(),
            year: 2024,
            file,
        };
        run(&ctx, cmd).await.expect("match");
        assert_eq!(*fake.statement.lock().expect("lock"), gbk);
    }

    #[tokio::test]
    async fn match_refuses_an_oversized_statement_before_sending() {
        let fake = Fake::default();
        let ctx = serve(fake.clone()).await;
        let dir = tempfile::tempdir().expect("temp dir");
        let file = dir.path().join("big.csv");
        std::fs::File::create(&file)
            .and_then(|f| f.set_len(MAX_STATEMENT_BYTES + 1))
            .expect("big file");
        let cmd = Cmd::Match {
            county: "410102".to_owned(),
            year: 2024,
            file,
        };
        let err = run(&ctx, cmd).await.expect_err("refused");
        assert!(format!("{err:#}").contains("at most 4 MiB"), "{err:#}");
        assert!(fake.calls().is_empty());
    }

    #[tokio::test]
    async fn outlook_sends_its_runs_and_seed() {
        let fake = Fake::default();
        let ctx = serve(fake.clone()).await;
        run(
            &ctx,
            Cmd::Outlook {
                county: "410102".to_owned(),
                year: 2024,
                runs: 500,
                seed: 7,
            },
        )
        .await
        .expect("outlook");
        assert_eq!(fake.calls(), ["outlook 410102 2024 500 7"]);
    }

    #[tokio::test]
    async fn close_reopen_and_balance_as_of_send_their_fields() {
        let fake = Fake::default();
        let ctx = serve(fake.clone()).await;
        let county = || "410102".to_owned();
        run(
            &ctx,
            Cmd::Close {
                county: county(),
                year: 2024,
                by: "finance".to_owned(),
            },
        )
        .await
        .expect("close");
        run(
            &ctx,
            Cmd::Reopen {
                county: county(),
                year: 2024,
                by: "office".to_owned(),
                reason: "late refund".to_owned(),
            },
        )
        .await
        .expect("reopen");
        run(
            &ctx,
            Cmd::Balance {
                county: county(),
                year: 2024,
                as_of: Some("2024-06-30".to_owned()),
            },
        )
        .await
        .expect("as of");
        run(
            &ctx,
            Cmd::Balance {
                county: county(),
                year: 2024,
                as_of: None,
            },
        )
        .await
        .expect("balance");
        run(
            &ctx,
            Cmd::Year {
                county: county(),
                year: 2024,
            },
        )
        .await
        .expect("year");
        assert_eq!(
            fake.calls(),
            [
                "close by finance",
                "reopen by office because late refund",
                "balance as of 2024-06-30",
                "balance 410102",
            ]
        );
    }
}
