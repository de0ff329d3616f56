//! The money commands: `kjp accounts`, `kjp pay`, `kjp reconcile`, `kjp transactions`,
//! `kjp sanction` and the SYNTHETIC bank simulator `kjp bank`. Each only translates
//! between the command line and `kjp_import::money`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use chrono::NaiveDate;
use clap::Subcommand;
use kjp_domain::money::parse_month_range;
use kjp_domain::{Nik, Npsn, Policy, Rupiah, Stage};
use kjp_import::money as m;
use kjp_store::Store;
use serde_json::json;

use crate::progress::Reporter;

#[derive(Clone, Copy, PartialEq, Eq, Debug, clap::ValueEnum)]
pub enum Format {
    Table,
    Json,
}

/// The money commands, flattened into `kjp`'s top level.
#[derive(Subcommand, Debug)]
pub enum MoneyCommand {
    /// Students' bank accounts from the bank (Bank DKI): `kjp accounts import FILE`.
    #[command(subcommand)]
    Accounts(AccountsCommand),
    /// Build (or return again) the payment batch of a decreed stage for some benefit months.
    ///
    /// One line per recipient owed a month in the range (routine, periodic and private-school
    /// parts), written as a CSV file for the bank (docs/formats.md). A child is paid at most
    /// once for a month, enforced by the database; running it again for the same months
    /// returns the same batch, file bytes and sha256. Recipients without an active account
    /// are listed for account opening, not paid.
    ///
    ///   kjp pay --stage 2025/1 --months 2025-01..2025-03 --format json
    Pay {
        #[arg(long)]
        stage: Stage,
        /// Benefit months, YYYY-MM..YYYY-MM (or one month).
        #[arg(long)]
        months: String,
        /// Directory for the batch file (default: DATA/payments).
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
        /// Who (default: the login name).
        #[arg(long)]
        by: Option<String>,
    },
    /// Import the bank's return file of a batch: credited, or failed with a reason. Failed
    /// lines stay owed (a later `kjp pay` pays them once the account is fixed); a report
    /// lists who was not paid and why. Credited plus failed equals the batch, to the rupiah.
    Reconcile {
        file: PathBuf,
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
        #[arg(long)]
        by: Option<String>,
    },
    /// The bank's card feed: `kjp transactions import FILE` screens it with the card rules.
    #[command(subcommand)]
    Transactions(TransactionsCommand),
    /// Sanctions (Pergub 110/2021 Pasal 23 and 24), on a school's recommendation.
    #[command(subcommand)]
    Sanction(SanctionCommand),
    /// SYNTHETIC bank files for demos and benchmarks: accounts, a return file, card feeds.
    #[command(subcommand)]
    Bank(BankCommand),
}

#[derive(Subcommand, Debug)]
pub enum AccountsCommand {
    /// Import the bank's accounts file (nik,account,holder,status); bad rows reported.
    Import {
        file: PathBuf,
        #[arg(long)]
        by: Option<String>,
    },
}

#[derive(Subcommand, Debug)]
pub enum TransactionsCommand {
    /// Import and screen a card feed: cash above the monthly limit, purchases outside the
    /// allowed uses, many small withdrawals at one ATM, one merchant serving too many
    /// cards. Flags are for review, never an automatic sanction.
    Import {
        file: PathBuf,
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
        #[arg(long)]
        by: Option<String>,
    },
}

#[derive(Subcommand, Debug)]
pub enum SanctionCommand {
    /// Record a sanction: payments stop from the next unpaid month and the unspent
    /// balance is marked for withdrawal.
    Add {
        #[arg(long)]
        nik: String,
        /// A code of the catalogue in the policy file (`kjp sanction list --catalogue`).
        #[arg(long)]
        category: String,
        #[arg(long)]
        evidence: String,
        /// The date of the act (YYYY-MM-DD).
        #[arg(long)]
        date: NaiveDate,
        /// The recommending school's NPSN.
        #[arg(long)]
        school: String,
        #[arg(long)]
        by: Option<String>,
    },
    /// Lift the sanction in force, on the school's recommendation: the child can be
    /// proposed again in a later stage (the stopped months are not paid back).
    Lift {
        #[arg(long)]
        nik: String,
        #[arg(long)]
        school: String,
        #[arg(long)]
        reason: String,
        #[arg(long)]
        by: Option<String>,
    },
    /// List sanctions (all, or one child's with the audit trail), or the catalogue.
    List {
        #[arg(long)]
        nik: Option<String>,
        #[arg(long)]
        catalogue: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum BankCommand {
    /// SYNTHETIC: an accounts file for a decreed stage's recipients (about 96% active).
    SimulateAccounts {
        #[arg(long)]
        stage: Stage,
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
        #[arg(long, default_value_t = 7)]
        seed: u64,
        /// Every recipient with an active account (for the benchmark of a full batch).
        #[arg(long)]
        all_active: bool,
    },
    /// SYNTHETIC benchmark setup, never for real data: settles every review case of a
    /// verified stage automatically (later-source-wins, the rest ineligible, each
    /// resolution saying so) and decrees it as "BENCH".
    PrepareBench {
        #[arg(long)]
        stage: Stage,
    },
    /// SYNTHETIC: the bank's return file for a batch file, failing --fail-rate of the lines.
    SimulateReturn {
        batch_file: PathBuf,
        #[arg(long, default_value_t = 0.02)]
        fail_rate: f64,
        /// Always fail this NIK's line (repeatable).
        #[arg(long, value_name = "NIK")]
        fail_nik: Vec<u64>,
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
        #[arg(long, default_value_t = 7)]
        seed: u64,
    },
    /// SYNTHETIC: a month of card transactions for every active account.
    SimulateTransactions {
        /// YYYY-MM.
        #[arg(long)]
        month: String,
        #[arg(long, default_value_t = 10)]
        per_card: u32,
        /// Cards sent through one merchant on the 15th (a planted pattern).
        #[arg(long, default_value_t = 400)]
        busy: u64,
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
        #[arg(long, default_value_t = 7)]
        seed: u64,
    },
}

fn who(by: Option<String>) -> String {
    by.or_else(|| std::env::var("USER").ok()).unwrap_or_else(|| "cli".into())
}

async fn store() -> anyhow::Result<Store> {
    let url = std::env::var("KJP_DATABASE_URL").unwrap_or_else(|_| "sqlite:kjp.db".into());
    let dir = std::env::var_os("KJP_DATA_DIR").map(PathBuf::from);
    Store::open(&url, dir).await.with_context(|| format!("opening the database {url}"))
}

fn print_row_errors(errors: &[kjp_import::source::RowError], limit: usize) {
    for e in errors.iter().take(limit) {
        let col = if e.column.is_empty() { String::new() } else { format!(", column {}", e.column) };
        println!("    line {}{col}: {}", e.line, e.reason);
    }
    if errors.len() > limit {
        println!("    ... and {} more", errors.len() - limit);
    }
}

fn masked(nik: i64) -> String {
    Nik::parse(&format!("{nik:016}")).map(|n| n.masked()).unwrap_or_else(|_| "?".into())
}

/// Runs one money command.
pub async fn run(command: MoneyCommand) -> anyhow::Result<ExitCode> {
    match command {
        MoneyCommand::Accounts(AccountsCommand::Import { file, by }) => {
            let store = store().await?;
            let started = Instant::now();
            let i = m::import_accounts(&store, &file, &who(by)).await?;
            println!(
                "{}: {} rows, {} accounts recorded, {} bad, in {:.2} s",
                file.display(),
                i.rows,
                i.written,
                i.errors.len(),
                started.elapsed().as_secs_f64()
            );
            for (status, n) in &i.by_status {
                println!("  {status:<12} {n:>9}");
            }
            print_row_errors(&i.errors, 10);
        }
        MoneyCommand::Pay { stage, months, out, format, by } => {
            let range = parse_month_range(stage, &months)?;
            let store = store().await?;
            let out = out.unwrap_or_else(|| m::default_out(&store));
            let started = Instant::now();
            let reporter = Reporter::new("pay");
            let p = m::pay(&store, stage, range, &out, &who(by), &reporter.callback()).await?;
            let secs = started.elapsed().as_secs_f64();
            let Some(b) = &p.batch else {
                println!("stage {stage}, {months}: nothing owed and no batch recorded for these months");
                print_withheld(&p);
                return Ok(ExitCode::SUCCESS);
            };
            let file = p.file.as_ref().map(|f| f.display().to_string()).unwrap_or_default();
            match format {
                Format::Json => println!(
                    "{}",
                    json!({"batch": b.batch, "lines": b.lines, "total": b.total, "file": file,
                        "sha256": b.file_sha256, "new": p.new, "withheld": p.withheld.len(),
                        "withheld_file": p.withheld_file.as_ref().map(|f| f.display().to_string())})
                ),
                Format::Table => {
                    println!(
                        "batch {} ({}): {} lines, {} in {secs:.2} s",
                        b.batch,
                        if p.new { "new" } else { "recorded before: the same batch" },
                        b.lines,
                        Rupiah::new(b.total)
                    );
                    println!("file   {file}\nsha256 {}", b.file_sha256);
                    let mut rows = store.batch_totals(&b.batch).await?;
                    rows.sort();
                    println!("{:<8} {:<6} {:>9} {:>22}", "level", "city", "lines", "amount");
                    for (level, city, n, sum) in rows {
                        println!("{level:<8} {city:<6} {n:>9} {:>22}", Rupiah::new(sum).to_string());
                    }
                    print_withheld(&p);
                }
            }
        }
        MoneyCommand::Reconcile { file, format, by } => {
            let store = store().await?;
            let started = Instant::now();
            let reporter = Reporter::new("reconcile");
            let r = match m::reconcile(&store, &file, &who(by), &reporter.callback()).await {
                Err(m::MoneyError::BadRows { file, count, errors, .. }) => {
                    eprintln!("kjp reconcile: {file}: {count} bad row(s); nothing was recorded:");
                    print_row_errors(&errors, 20);
                    return Ok(ExitCode::from(1));
                }
                other => other?,
            };
            let secs = started.elapsed().as_secs_f64();
            match format {
                Format::Json => println!(
                    "{}",
                    json!({"batch": r.batch.batch, "new": r.new, "lines": r.sent, "total": r.batch.total,
                        "credited": {"lines": r.credited.0, "amount": r.credited.1},
                        "failed": {"lines": r.failed.0, "amount": r.failed.1},
                        "by_reason": r.by_reason.iter().map(|(k, v)| (k.code().to_string(), json!({"lines": v.0, "amount": v.1}))).collect::<serde_json::Map<_, _>>(),
                        "report": r.report.display().to_string()})
                ),
                Format::Table => {
                    println!(
                        "batch {}: {} lines, {} sent{} in {secs:.2} s",
                        r.batch.batch,
                        r.sent,
                        Rupiah::new(r.batch.total),
                        if r.new { "" } else { " (this return was reconciled before; nothing changed)" }
                    );
                    println!("  credited {:>9} {:>24}", r.credited.0, Rupiah::new(r.credited.1).to_string());
                    println!("  failed   {:>9} {:>24}", r.failed.0, Rupiah::new(r.failed.1).to_string());
                    for (reason, (n, sum)) in &r.by_reason {
                        println!("    {:<18} {n:>7} {:>20}", reason.code(), Rupiah::new(*sum).to_string());
                    }
                    println!(
                        "  money in = money out: {} + {} = {}",
                        Rupiah::new(r.credited.1),
                        Rupiah::new(r.failed.1),
                        Rupiah::new(r.batch.total)
                    );
                    for u in r.unpaid.iter().take(5) {
                        println!(
                            "  not paid: NIK {} {} for {}: {}",
                            masked(u.nik),
                            Rupiah::new(u.amount),
                            u.months,
                            u.reason.explain()
                        );
                    }
                    println!("who was not paid and why: {}", r.report.display());
                    println!("failed lines stay owed: `kjp pay` for the same months pays them once the account is fixed");
                }
            }
        }
        MoneyCommand::Transactions(TransactionsCommand::Import { file, format, by }) => {
            let store = store().await?;
            let started = Instant::now();
            let reporter = Reporter::new("transactions");
            let policy = Policy::kjp_plus();
            let t = m::import_transactions(&store, &policy, &file, &who(by), &reporter.callback()).await?;
            let secs = started.elapsed().as_secs_f64();
            match format {
                Format::Json => println!(
                    "{}",
                    json!({"feed": t.feed.sha256, "new": t.new, "rows": t.feed.rows_total, "bad": t.feed.rows_bad,
                        "cash": t.feed.cash, "purchases": t.feed.purchases, "flags": t.by_kind})
                ),
                Format::Table => {
                    println!(
                        "{}: {} rows ({} bad), cash {}, purchases {}, {} flags for review{} in {secs:.2} s",
                        file.display(),
                        t.feed.rows_total,
                        t.feed.rows_bad,
                        Rupiah::new(t.feed.cash),
                        Rupiah::new(t.feed.purchases),
                        t.feed.flags,
                        if t.new { "" } else { " (imported before; nothing changed)" }
                    );
                    for (kind, n) in &t.by_kind {
                        println!("  {kind:<22} {n:>8}");
                    }
                    print_row_errors(&t.errors, 10);
                }
            }
        }
        MoneyCommand::Sanction(SanctionCommand::Add { nik, category, evidence, date, school, by }) => {
            let store = store().await?;
            let req = m::SanctionRequest {
                nik: Nik::parse(&nik)?,
                category,
                evidence,
                date,
                school: Npsn::parse(&school)?,
                by: who(by),
            };
            let s = m::add_sanction(&store, &Policy::kjp_plus(), &req).await?;
            println!(
                "sanction {} recorded for NIK {}: {}; payments stop from {}; {} marked for withdrawal",
                s.seq,
                req.nik.masked(),
                s.category,
                stop_label(s.stop_from),
                Rupiah::new(s.withdraw)
            );
        }
        MoneyCommand::Sanction(SanctionCommand::Lift { nik, school, reason, by }) => {
            let store = store().await?;
            let n = Nik::parse(&nik)?;
            let school = Npsn::parse(&school)?;
            match store.lift_sanction(n.as_u64() as i64, &school.to_string(), &reason, &who(by)).await? {
                Some(s) => println!(
                    "sanction {} of NIK {} lifted: the child can be proposed again in a later stage",
                    s.seq,
                    n.masked()
                ),
                None => {
                    eprintln!("kjp sanction lift: NIK {} has no sanction in force", n.masked());
                    return Ok(ExitCode::from(1));
                }
            }
        }
        MoneyCommand::Sanction(SanctionCommand::List { nik, catalogue }) => {
            if catalogue {
                for s in &Policy::kjp_plus().money.sanctions {
                    println!("{:<28} {:<8} {} [{}; {}]", s.code, s.who, s.en, s.citation, s.effective);
                }
                return Ok(ExitCode::SUCCESS);
            }
            let store = store().await?;
            let n = nik.as_deref().map(Nik::parse).transpose()?.map(|n| n.as_u64() as i64);
            for s in store.sanctions(n).await? {
                let state = if s.lifted_at.is_empty() {
                    "in force".to_string()
                } else {
                    format!("lifted {}", s.lifted_at)
                };
                println!(
                    "{:016} #{} {} on {} (school {}), stop from {}, withdraw {}, {state}",
                    s.nik,
                    s.seq,
                    s.category,
                    s.act_date,
                    s.school,
                    stop_label(s.stop_from),
                    Rupiah::new(s.withdraw)
                );
            }
            if let Some(n) = n {
                for a in store.audit_trail(Some(&n.to_string())).await? {
                    println!("  {} {} {}: {}", a.at, a.actor, a.action, a.detail);
                }
            }
        }
        MoneyCommand::Bank(b) => return bank(b).await,
    }
    Ok(ExitCode::SUCCESS)
}

fn stop_label(stop: i64) -> String {
    if stop == 0 {
        "the first benefit month (nothing was paid yet)".into()
    } else {
        format!("{}-{:02}", stop / 100, stop % 100)
    }
}

fn print_withheld(p: &m::PayOutcome) {
    if p.withheld.is_empty() {
        return;
    }
    let mut by: std::collections::BTreeMap<&str, (u64, i64)> = Default::default();
    for w in &p.withheld {
        let e = by.entry(w.reason.code()).or_default();
        e.0 += 1;
        e.1 += w.amount;
    }
    println!("not in this batch (owed, kept for later):");
    for (reason, (n, sum)) in by {
        println!("  {reason:<16} {n:>8} {:>22}", Rupiah::new(sum).to_string());
    }
    if let Some(f) = &p.withheld_file {
        println!("list for account opening and follow-up: {}", f.display());
    }
}

async fn bank(command: BankCommand) -> anyhow::Result<ExitCode> {
    match command {
        BankCommand::SimulateAccounts { stage, out, seed, all_active } => {
            let store = store().await?;
            let (text, mix) = simulate_accounts(&store, stage, seed, all_active).await?;
            m::write_atomically(&out, text.as_bytes())?;
            println!(
                "SYNTHETIC accounts for stage {stage}: {} active, {} dormant, {} closed, {} not opened, {} recipients without an account -> {}",
                mix.active,
                mix.dormant,
                mix.closed,
                mix.not_opened,
                mix.absent,
                out.display()
            );
        }
        BankCommand::PrepareBench { stage } => {
            let store = store().await?;
            let policy = Policy::kjp_plus();
            let why = "SYNTHETIC benchmark setup: settled automatically";
            let rule = kjp_domain::conflict::Rule::LaterSourceWins;
            kjp_import::decree::resolve_by_rule(&store, stage, &policy, rule, why, "kjp bank prepare-bench")
                .await?;
            let left = store.decisions_with_status(stage, "review").await?;
            for d in &left {
                let nik = Nik::parse(&d.nik)?;
                let out = kjp_domain::Status::Ineligible;
                kjp_import::decree::resolve_one(
                    &store,
                    stage,
                    &policy,
                    &nik,
                    out,
                    why,
                    "kjp bank prepare-bench",
                )
                .await?;
            }
            let req = kjp_import::decree::DecreeRequest {
                number: "BENCH".into(),
                date: stage.start(),
                note: "SYNTHETIC benchmark".into(),
            };
            let d = kjp_import::decree::decree(&store, stage, &policy, &req).await?;
            println!(
                "SYNTHETIC: stage {stage} settled and decreed for the benchmark: {} recipients",
                d.recipients
            );
        }
        BankCommand::SimulateReturn { batch_file, fail_rate, fail_nik, out, seed } => {
            let text = std::fs::read_to_string(&batch_file)
                .with_context(|| format!("reading {}", batch_file.display()))?;
            let (ret, failed) = kjp_synth::bank::simulate_return(&text, fail_rate, seed, &fail_nik)
                .map_err(anyhow::Error::msg)?;
            m::write_atomically(&out, ret.as_bytes())?;
            println!("SYNTHETIC return file: {failed} failed line(s) -> {}", out.display());
        }
        BankCommand::SimulateTransactions { month, per_card, busy, out, seed } => {
            let (y, mo) = month
                .split_once('-')
                .and_then(|(y, mo)| {
                    Some((y.parse::<i32>().ok()?, mo.parse::<u32>().ok().filter(|m| (1..=12).contains(m))?))
                })
                .with_context(|| format!("--month {month:?}: expected YYYY-MM"))?;
            let store = store().await?;
            let mut cards: Vec<u64> = store
                .accounts()
                .await?
                .into_values()
                .filter(|a| a.status == "active")
                .map(|a| a.nik as u64)
                .collect();
            cards.sort_unstable();
            let file = std::fs::File::create(&out).with_context(|| format!("creating {}", out.display()))?;
            let mut w = std::io::BufWriter::new(file);
            let mix = kjp_synth::bank::transactions(&cards, y, mo, per_card, busy, seed, &mut |s| {
                std::io::Write::write_all(&mut w, s.as_bytes())
            })?;
            std::io::Write::flush(&mut w)?;
            println!(
                "SYNTHETIC card feed {month}: {} rows for {} cards; planted {} cash over the limit, {} outside the allowed uses, {} small-withdrawal series, {} cards at one busy merchant -> {}",
                mix.rows,
                cards.len(),
                mix.cash_over_limit,
                mix.category_not_allowed,
                mix.small_withdrawals,
                mix.busy_merchant_cards,
                out.display()
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The synthetic accounts file for a stage's recipients.
pub async fn simulate_accounts(
    store: &Store,
    stage: Stage,
    seed: u64,
    all_active: bool,
) -> anyhow::Result<(String, kjp_synth::bank::AccountsMix)> {
    let names = store.recipient_names(stage).await?;
    let recipients = store.recipients(stage).await?;
    let list: Vec<(u64, &str)> = recipients
        .iter()
        .filter_map(|r| {
            let n: i64 = r.nik.parse().ok()?;
            Some((n as u64, names.get(&n).map(String::as_str).unwrap_or("")))
        })
        .collect();
    Ok(kjp_synth::bank::accounts(&list, seed, all_active))
}

/// The demo's money part: synthetic accounts, a batch for January to March, a synthetic
/// return with some failures, reconciled; prints a paid line and a failed one with its
/// reason.
pub async fn demo(store: &Store, stage: Stage, dir: &Path) -> anyhow::Result<()> {
    let bank = dir.join("bank");
    let (text, mix) = simulate_accounts(store, stage, 7, false).await?;
    let accounts = bank.join("accounts.csv");
    m::write_atomically(&accounts, text.as_bytes())?;
    m::import_accounts(store, &accounts, "kjp demo").await?;
    println!(
        "\nSYNTHETIC bank accounts: {} active, {} dormant, {} closed, {} not opened, {} without one",
        mix.active, mix.dormant, mix.closed, mix.not_opened, mix.absent
    );
    let range = parse_month_range(stage, "2025-01..2025-03")?;
    let quiet = |_: &str, _: u64, _: u64| {};
    let p = m::pay(store, stage, range, &bank, "kjp demo", &quiet).await?;
    let b = p.batch.context("the demo batch")?;
    println!(
        "paid 2025-01..2025-03: batch {}, {} lines, {} ({} recipients held back for account opening or repair)",
        b.batch,
        b.lines,
        Rupiah::new(b.total),
        p.withheld.len()
    );
    let file = p.file.context("the batch file")?;
    let text = std::fs::read_to_string(&file)?;
    let (ret, _) = kjp_synth::bank::simulate_return(&text, 0.01, 7, &[]).map_err(anyhow::Error::msg)?;
    let ret_path = bank.join(format!("{}.return.csv", b.batch));
    m::write_atomically(&ret_path, ret.as_bytes())?;
    let r = m::reconcile(store, &ret_path, "kjp demo", &quiet).await?;
    println!(
        "SYNTHETIC bank return: {} credited ({}), {} failed ({}); report {}",
        r.credited.0,
        Rupiah::new(r.credited.1),
        r.failed.0,
        Rupiah::new(r.failed.1),
        r.report.display()
    );
    if let Some(l) = store.batch_lines(&b.batch).await?.iter().find(|l| l.status == "credited") {
        println!(
            "  a paid month:       NIK {:016} {} for {}: credited",
            l.nik,
            Rupiah::new(l.amount),
            kjp_domain::money::Months::from_bits(l.months as u8).unwrap_or_default().label(stage)
        );
    }
    if let Some(u) = r.unpaid.first() {
        println!(
            "  a failed payment:   NIK {:016} {} for {}: {} ({})",
            u.nik,
            Rupiah::new(u.amount),
            u.months,
            u.reason.code(),
            u.reason.explain()
        );
    }
    Ok(())
}
