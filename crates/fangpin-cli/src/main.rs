//! `fangpin`: the command line for a county poverty-prevention office and
//! the insurer's surveyors, to walk a 防贫保 claim from intake to payout.

mod claim;
mod county;
mod ctx;
mod evidence;
mod export;
mod feed;
mod follow_up;
mod household;
mod names;
mod output;
mod payout;
mod policy;
mod pool;
mod premium;
mod publicity;
mod screening;
mod service;
mod sla;
mod status;
mod survey;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use fangpin_cli::connect::{BearerToken, Transport};
use fangpin_cli::token;
use uuid::Uuid;

use crate::ctx::Ctx;

#[derive(Parser)]
#[command(
    name = "fangpin",
    about = "Poverty-prevention insurance (防贫保) for a county"
)]
struct Cli {
    /// The fangpin server: https://HOST:PORT (TLS), or http:// for a
    /// development server
    #[arg(
        long,
        global = true,
        help_heading = "Global options",
        env = "FANGPIN_SERVER",
        default_value = "http://127.0.0.1:50051"
    )]
    server: String,
    /// PEM certificates of the CA that signed the server's certificate
    /// (default for https: the system's CA store)
    #[arg(
        long,
        global = true,
        value_name = "PATH",
        help_heading = "Global options",
        env = "FANGPIN_CA_CERT"
    )]
    ca_cert: Option<PathBuf>,
    /// PEM client certificate, for a server that requires mutual TLS
    #[arg(
        long,
        global = true,
        value_name = "PATH",
        help_heading = "Global options",
        env = "FANGPIN_CLIENT_CERT",
        requires = "client_key"
    )]
    client_cert: Option<PathBuf>,
    /// PEM private key of --client-cert
    #[arg(
        long,
        global = true,
        value_name = "PATH",
        help_heading = "Global options",
        env = "FANGPIN_CLIENT_KEY",
        requires = "client_cert"
    )]
    client_key: Option<PathBuf>,
    /// File holding the bearer token sent with every call (or put the
    /// token itself in FANGPIN_TOKEN; it is never printed)
    #[arg(
        long,
        global = true,
        value_name = "PATH",
        help_heading = "Global options"
    )]
    token_file: Option<PathBuf>,
    /// Id for a mutating command; pass the id printed by an earlier attempt
    /// to retry it safely (default: a fresh UUID)
    #[arg(
        long,
        global = true,
        value_name = "UUID",
        help_heading = "Global options"
    )]
    request_id: Option<Uuid>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// The server's version, date and working-day calendar coverage
    Status,
    /// Counties and their insurer
    #[command(subcommand)]
    County(county::Cmd),
    /// A county's policy for a year: thresholds, bands, caps
    #[command(subcommand)]
    Policy(policy::Cmd),
    /// Insured households
    #[command(subcommand)]
    Household(household::Cmd),
    /// Premiums paid into the pool
    #[command(subcommand)]
    Premium(premium::Cmd),
    /// Claims: intake, record, history, emergency advance
    #[command(subcommand)]
    Claim(claim::Cmd),
    /// The insurer's field survey
    #[command(subcommand)]
    Survey(survey::Cmd),
    /// Evidence files of a claim: receipts, bills, photos
    #[command(subcommand)]
    Evidence(evidence::Cmd),
    /// Village publicity and objections
    #[command(subcommand)]
    Publicity(publicity::Cmd),
    /// County filing and payment
    #[command(subcommand)]
    Payout(payout::Cmd),
    /// The county fund pool
    #[command(subcommand)]
    Pool(pool::Cmd),
    /// Department data files (医保, 教育, 交警/消防, 产业, 民政)
    #[command(subcommand)]
    Feed(feed::Cmd),
    /// Screening runs over the imported feeds, claims from them, and the
    /// monthly monitoring list
    #[command(subcommand)]
    Screening(screening::Cmd),
    /// After the payout: contact persons, visits, clearing (专人帮扶, 解困销号)
    #[command(subcommand)]
    FollowUp(follow_up::Cmd),
    /// Time limits (限时办结): what is overdue and what falls due soon
    Sla(sla::Cmd),
    /// Bearer tokens signed with a key of your own. Backup, restore, the
    /// audit log's verification and calendar checks open the database or
    /// the file themselves: they are `fangpind admin`.
    #[command(subcommand)]
    Admin(AdminCmd),
}

#[derive(Subcommand)]
enum AdminCmd {
    /// Bearer tokens signed with a key of your own, for a county without an
    /// identity provider (docs/access.md)
    #[command(subcommand)]
    Token(token::TokenCmd),
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    // `fangpin admin token` signs with a local key: it needs no server,
    // certificates or token.
    if let Command::Admin(AdminCmd::Token(cmd)) = cli.command {
        return match token::run(cmd) {
            Ok(()) => ExitCode::SUCCESS,
            Err(err) => {
                eprintln!("error: {err:#}");
                ExitCode::FAILURE
            }
        };
    }
    let ctx = match transport(&cli).and_then(|t| Ctx::new(t, cli.request_id)) {
        Ok(ctx) => ctx,
        Err(err) => {
            eprintln!("error: {err:#}");
            return ExitCode::FAILURE;
        }
    };
    let result = match cli.command {
        Command::Status => service::run(&ctx).await,
        Command::County(cmd) => county::run(&ctx, cmd).await,
        Command::Policy(cmd) => policy::run(&ctx, cmd).await,
        Command::Household(cmd) => household::run(&ctx, cmd).await,
        Command::Premium(cmd) => premium::run(&ctx, cmd).await,
        Command::Claim(cmd) => claim::run(&ctx, cmd).await,
        Command::Survey(cmd) => survey::run(&ctx, cmd).await,
        Command::Evidence(cmd) => evidence::run(&ctx, cmd).await,
        Command::Publicity(cmd) => publicity::run(&ctx, cmd).await,
        Command::Payout(cmd) => payout::run(&ctx, cmd).await,
        Command::Pool(cmd) => pool::run(&ctx, cmd).await,
        Command::Feed(cmd) => feed::run(&ctx, cmd).await,
        Command::Screening(cmd) => screening::run(&ctx, cmd).await,
        Command::FollowUp(cmd) => follow_up::run(&ctx, cmd).await,
        Command::Sla(cmd) => sla::run(&ctx, cmd).await,
        // Answered above, before connecting; kept whole for clarity.
        Command::Admin(AdminCmd::Token(cmd)) => token::run(cmd),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            status::report(&ctx, &err);
            ExitCode::FAILURE
        }
    }
}

/// The global options' connection settings, the token read from its file
/// or `$FANGPIN_TOKEN`.
fn transport(cli: &Cli) -> anyhow::Result<Transport> {
    Ok(Transport {
        server: cli.server.clone(),
        ca_cert: cli.ca_cert.clone(),
        client_cert: cli.client_cert.clone(),
        client_key: cli.client_key.clone(),
        token: Some(BearerToken::from_options(
            cli.token_file.as_deref(),
            &|name| std::env::var(name).ok(),
        )?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn recommend_needs_exactly_one_decision() {
        let parse = |args: &[&str]| {
            Cli::try_parse_from(
                [
                    "fangpin",
                    "survey",
                    "recommend",
                    "c1",
                    "--surveyor",
                    "s",
                    "--reason",
                    "r",
                ]
                .iter()
                .chain(args),
            )
        };
        assert!(parse(&["--approve"]).is_ok());
        assert!(parse(&["--reject"]).is_ok());
        assert!(parse(&[]).is_err());
        assert!(parse(&["--approve", "--reject"]).is_err());
    }

    #[test]
    fn after_payout_commands_parse() {
        let parse = |args: &[&str]| Cli::try_parse_from(["fangpin"].iter().chain(args)).is_ok();
        assert!(parse(&["sla", "--county", "130426"]));
        assert!(parse(&[
            "sla",
            "--county",
            "130426",
            "--within",
            "3",
            "--stage",
            "follow_up_visit",
            "--contact-person",
            "王明",
        ]));
        assert!(!parse(&["sla", "--county", "130426", "--stage", "lunch"]));
        assert!(parse(&[
            "follow-up",
            "assign",
            "c1",
            "--contact",
            "王明,乡政府,13800138000",
            "--by",
            "o",
        ]));
        assert!(
            !parse(&["follow-up", "assign", "c1", "--by", "o"]),
            "a contact is required"
        );
        assert!(parse(&[
            "follow-up",
            "visit",
            "c1",
            "--on",
            "2026-04-01",
            "--mode",
            "call",
            "--contact",
            "王明",
            "--findings",
            "ok",
            "--risk-remains",
            "--by",
            "王明",
        ]));
        assert!(parse(&["follow-up", "household", "h1"]));
        assert!(parse(&["screening", "issue-list", "r1", "--by", "o"]));
        assert!(parse(&[
            "screening",
            "confirm",
            "r1",
            "--household",
            "h1",
            "--kind",
            "illness",
            "--checked-on",
            "2026-12-04",
            "--note",
            "n",
            "--by",
            "t",
        ]));
        assert!(parse(&[
            "pool", "outlook", "--county", "130426", "--year", "2026"
        ]));
    }

    #[test]
    fn county_step_commands_parse() {
        // One command line per string, split on spaces.
        let parse = |line: &str| {
            Cli::try_parse_from(std::iter::once("fangpin").chain(line.split(' '))).is_ok()
        };
        for line in [
            "claim approve-emergency c1 --amount 2000.00 --by t --reason r",
            "claim refuse-emergency c1 --by t --reason r",
            "claim emergency c1",
            "claim advance c1 --amount 1.00 --reason r",
            "payout cross-check c1 --check vehicles --result not_possible --details d --by o",
            "payout decide-hit c1 --reject --reason r --by o",
            "payout decide-hit c1 --resurvey --reason r --by o",
            "payout cross-checks c1",
            "evidence upload c1 bill.pdf --by s --description d",
            "evidence list c1",
            "evidence get e1 -o out.pdf --quiet",
        ] {
            assert!(parse(line), "{line}");
        }
        for line in [
            "payout cross-check c1 --check vehicles --result maybe --by o",
            "payout decide-hit c1 --reason r --by o",
            "payout decide-hit c1 --reject --resurvey --reason r --by o",
        ] {
            assert!(!parse(line), "{line}");
        }
    }

    #[test]
    fn new_pool_and_payout_commands_parse() {
        let parse = |args: &[&str]| Cli::try_parse_from(["fangpin"].iter().chain(args));
        let ok = [
            &["pool", "balance", "--county", "410102", "--year", "2024"][..],
            &[
                "pool",
                "balance",
                "--county",
                "410102",
                "--year",
                "2024",
                "--as-of",
                "2024-06-30",
            ],
            &[
                "pool", "close", "--county", "410102", "--year", "2024", "--by", "f",
            ],
            &[
                "pool", "reopen", "--county", "410102", "--year", "2024", "--by", "o", "--reason",
                "r",
            ],
            &["pool", "year", "--county", "410102", "--year", "2024"],
            &[
                "pool", "match", "--county", "410102", "--year", "2024", "--file", "s.csv",
            ],
            &["pool", "reconcile", "--county", "410102", "--year", "2024"],
            &[
                "pool",
                "reconcile",
                "--county",
                "410102",
                "--year",
                "2024",
                "--csv",
                "r.csv",
                "--xlsx",
                "r.xlsx",
            ],
            &[
                "payout",
                "fail",
                "c1",
                "--by",
                "x",
                "--bank-ref",
                "b",
                "--reason",
                "account closed",
            ],
            &["payout", "retry", "c1", "--by", "x", "--reason", "fixed"],
            &[
                "claim",
                "list",
                "--county",
                "410102",
                "--state",
                "payout_failed",
            ],
        ];
        for args in ok {
            assert!(parse(args).is_ok(), "{args:?}");
        }
        let missing = [
            &[
                "pool", "reopen", "--county", "410102", "--year", "2024", "--by", "o",
            ][..],
            &["pool", "match", "--county", "410102", "--year", "2024"],
            &["payout", "fail", "c1", "--by", "x", "--bank-ref", "b"],
            &["payout", "retry", "c1", "--by", "x"],
            // The database commands are fangpind's now.
            &[
                "admin",
                "backup",
                "--database",
                "sqlite://fangpin.db",
                "--to",
                "b.db",
            ],
        ];
        for args in missing {
            assert!(parse(args).is_err(), "{args:?}");
        }
    }

    #[test]
    fn request_id_is_global() {
        let cli = Cli::try_parse_from([
            "fangpin",
            "payout",
            "pay",
            "c1",
            "--by",
            "x",
            "--bank-ref",
            "b",
            "--request-id",
            "6f1c1f2e-6d1a-4c8e-9a55-0d1e2f3a4b5c",
        ])
        .expect("parses");
        assert!(cli.request_id.is_some());
    }
}
