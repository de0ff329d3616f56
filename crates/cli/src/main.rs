//! `kjp`: the one binary. A thin layer: parse arguments, call the library, print.

use std::io::{self, BufWriter};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use chrono::NaiveDate;
use clap::{Parser, Subcommand};
use kjp_domain::{Policy, Rupiah, Stage};
use kjp_store::Store;

#[derive(Parser)]
#[command(
    name = "kjp",
    version,
    about = "Runs the KJP Plus education cash-transfer programme: policy, decisions, stages.",
    long_about = "Runs the KJP Plus education cash-transfer programme of DKI Jakarta end to end.\n\n\
        The programme's law lives in a policy file (policy/kjp-plus.toml, built in); every decision\n\
        names the rule and the article that decided it.",
    after_help = "Environment:\n  \
        KJP_DATABASE_URL  sqlite:PATH (default sqlite:kjp.db) or postgres://user@host/db\n  \
        KJP_DATA_DIR      where snapshot files and import reports live (default: next to the SQLite file)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Decide cases: JSON Lines on standard input, one decision per line on standard output.
    #[command(
        long_about = "Decide cases: JSON Lines on standard input, one decision per line on standard output,\n\
        in the same order.\n\n\
        Input line (every fact optional; an absent or null fact is unknown; an unknown field is an error):\n  \
        {\"id\":\"c1\",\"as_of\":\"2025-01-01\",\"birth_date\":\"2012-03-04\",\"nik\":\"3171014403120001\",\n   \
        \"education\":\"enrolled\",\"level\":\"SMP\",\"school\":\"swasta\",\"lurah_recommendation\":false,\n   \
        \"groups\":[\"poor_family\",\"transjakarta_driver\",\"worker\"],\"parent_wage\":5500000,\n   \
        \"parent_ktp_dki\":true,\"in_dtks\":true,\"has_sktm\":true,\"foster_child\":false,\n   \
        \"domiciled_dki\":true,\"on_dki_kk\":true,\"sanctioned\":false,\"family_car\":false,\n   \
        \"family_property_njop\":0,\"family_excluded_occupation\":false}\n\n\
        Output line:\n  \
        {\"id\":\"c1\",\"status\":\"eligible\"|\"ineligible\"|\"review\",\"group\":\"poor_family\",\n   \
        \"reasons\":[{\"code\":\"NOT_IN_DTKS\",\"article\":\"...\",\"text_id\":\"...\",\"text_en\":\"...\"}],\n   \
        \"monthly\":{\"routine\":185000,\"periodic\":115000,\"school_fee\":170000,\"total\":470000},\n   \
        \"policy\":{...},\"as_of\":\"2025-01-01\",\"params\":[...]}\n\n\
        A line that cannot be read gives {\"line\":N,\"error\":\"...\"}; the rest are still decided and the\n\
        exit code is 1.\n\n\
        Example:\n  echo '{\"id\":1,\"as_of\":\"2025-01-01\",\"groups\":[\"worker\"]}' | kjp eval"
    )]
    Eval {
        /// Policy file to use instead of the built-in KJP Plus policy.
        #[arg(long, value_name = "FILE")]
        policy: Option<PathBuf>,
    },
    /// Inspect the policy.
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// Generate a synthetic Jakarta: every agency file, deterministic for a seed.
    ///
    /// At --scale 1 it is the real size (about 11 million residents) and calibrated so that
    /// tahap I 2025 gives the real number of recipients per level.
    Generate {
        /// 1 is the real size; 0.05 is 5 percent.
        #[arg(long, default_value_t = 0.05)]
        scale: f64,
        /// The same seed gives the same files, byte for byte.
        #[arg(long, default_value_t = 7)]
        seed: u64,
        /// Directory to write the files to (created if needed).
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
    /// The whole stage run on a small synthetic Jakarta: generate, import, open tahap I 2025,
    /// verify, settle, decree, then serve the public status check on localhost with an
    /// example NIK and date of birth to try.
    Demo {
        /// Size of the synthetic Jakarta (1 is the real size).
        #[arg(long, default_value_t = 0.05)]
        scale: f64,
        #[arg(long, default_value_t = 7)]
        seed: u64,
        /// Where to put the data and the database (the database is made anew each run).
        #[arg(long, value_name = "DIR", default_value = "kjp-demo")]
        dir: PathBuf,
        /// Port of the status check served at the end.
        #[arg(long, default_value_t = 8080)]
        port: u16,
        /// Stop after the decree instead of serving the status check.
        #[arg(long)]
        no_serve: bool,
    },
    /// Import agency files into immutable, content-hashed snapshots (see docs/formats.md).
    ///
    /// Bad rows are reported with line, column and reason (on screen and in a report file);
    /// good rows are kept; importing the same file again changes nothing.
    Import {
        /// Import every known source file found in this directory.
        #[arg(long, value_name = "DIR", conflicts_with = "files")]
        data: Option<PathBuf>,
        /// Files to import, named after their source (dukcapil.csv, dtks.csv, ...).
        files: Vec<PathBuf>,
        /// Import even a file with no good rows, or with less than half the good rows of the
        /// current snapshot of its source (normally refused: a truncated export must not
        /// silently exclude families).
        #[arg(long)]
        force: bool,
    },
    /// Run a stage (tahap): open it, verify every candidate, report, export, what-if.
    #[command(subcommand)]
    Stage(StageCommand),
    /// Benchmarks that need real data files.
    #[command(subcommand)]
    Bench(BenchCommand),
    /// Apply any missing database migrations and list those applied (every command applies
    /// them when it opens the database; this does only that).
    Migrate,
    /// Back up a SQLite database online (a consistent copy while others work) with its
    /// snapshot files; PostgreSQL is backed up with pg_dump (docs/operations.md).
    Backup {
        /// The copy to write, e.g. backups/kjp-2025-03-10.db (must not exist); the snapshot
        /// files go to a `-data` directory beside it.
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
    /// Serve the public status check (page at /, JSON at /api/v1/status, /healthz).
    ///
    /// Answers come from an in-memory index built from the decreed stages at startup and
    /// rebuilt periodically; a stage not yet decreed answers "in process".
    ///
    /// Settings: defaults, then `--config FILE`, then `KJP_*` environment variables, then
    /// these flags (docs/operations.md). Stops on Ctrl-C or SIGTERM after answering the
    /// requests in flight.
    Serve(kjp_cli::config::ServeArgs),
    /// Staff accounts of the console at /staff.
    #[command(subcommand)]
    User(UserCommand),
    /// The audit log of the staff console.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Other agencies' API clients: a bearer token each, scoped, revocable, audited.
    #[command(subcommand)]
    Client(ClientCommand),
    /// Payments, the bank's files, card rules and sanctions (issue 6).
    #[command(flatten)]
    Money(kjp_cli::money::MoneyCommand),
}

#[derive(Subcommand)]
enum UserCommand {
    /// Create an account and print its generated password (shown once).
    Add {
        #[arg(long)]
        username: String,
        /// admin, school, post, social, bank or auditor.
        #[arg(long)]
        role: String,
        /// A kecamatan code (31.71.01) for post and social, an NPSN for school.
        #[arg(long)]
        scope: Option<String>,
    },
    /// Give an account a new generated password (printed once) and lift any lock-out.
    Reset {
        #[arg(long)]
        username: String,
    },
}

#[derive(Subcommand)]
enum ClientCommand {
    /// Create a client and print its token (shown once; only its sha256 is kept).
    Add {
        /// The client's name, as it appears in the audit log (`client:NAME`).
        name: String,
        /// The agency it belongs to, e.g. "Dinas Sosial DKI Jakarta".
        #[arg(long)]
        agency: String,
        /// Comma-separated: registry.search, registry.subscribe, files.import (or
        /// files.import:SOURCE for one source file, e.g. files.import:dtks), decree.export.
        #[arg(long)]
        scope: String,
    },
    /// Every client, live or revoked, with its scopes.
    List,
    /// Revoke a client's token at once, in every server process.
    Revoke { name: String },
    /// Give a client a new token (printed once); the old one stops working.
    Rotate { name: String },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Recompute the hash chain: exit 1 if any entry was edited or deleted.
    Verify,
}

#[derive(Subcommand)]
enum StageCommand {
    /// Open a stage: `kjp stage open 2025 1` (benefit months January to June); a KJMU
    /// stage with `--programme kjmu` (then named kjmu/2025/1).
    Open {
        /// The year, e.g. 2025.
        year: i32,
        /// 1 (January to June) or 2 (July to December).
        half: u8,
        /// kjp-plus (the default) or kjmu.
        #[arg(long, default_value = "kjp-plus", value_parser = parse_programme)]
        programme: kjp_domain::Programme,
    },
    /// Decide every candidate from the latest snapshots and store each decision with its
    /// evidence; sources that disagree put the decision in review, never a silent exclusion.
    Verify {
        /// The stage (tahap), e.g. 2025/1.
        stage: Stage,
        /// Policy file to use instead of the built-in one.
        #[arg(long, value_name = "FILE")]
        policy: Option<PathBuf>,
    },
    /// Counts by level, city and reason, the cost, and the comparison with the previous stage.
    Summary {
        /// The stage (tahap), e.g. 2025/1.
        stage: Stage,
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
    /// Write one row per candidate: nik,birth_date,status,level,monthly_total,reason_codes,...
    Export {
        /// The stage (tahap), e.g. 2025/1.
        stage: Stage,
        /// The CSV file to write.
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
    /// Show, without changing anything, who a policy change would add or remove, and why.
    ///
    /// Example: what would switching off the car screen do?
    ///   kjp stage impact 2025/1 --screen family_car=off
    Impact {
        stage: Stage,
        /// The proposed policy file (default: the policy the stage was verified with).
        #[arg(long, value_name = "FILE")]
        policy: Option<PathBuf>,
        /// Switch an exclusion screen on or off in the proposal: NAME=on|off (repeatable).
        #[arg(long, value_name = "NAME=on|off")]
        screen: Vec<String>,
        /// Instead: what a budget ceiling of this many rupiah for the whole stage would do
        /// (who is left unfunded, by level and city, in the policy's [funding] order).
        #[arg(long, value_name = "RUPIAH", value_parser = parse_rupiah, conflicts_with_all = ["policy", "screen"])]
        budget: Option<Rupiah>,
        /// Instead: what the agency files imported since the stage's last run would change
        /// (the stage run on the latest snapshots, compared child by child; nothing stored).
        #[arg(long, conflicts_with_all = ["policy", "screen", "budget"])]
        data: bool,
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
    /// Set the stage's budget ceiling (rupiah for the whole stage) and apply it: eligible
    /// children beyond it, in the policy's [funding] order, are eligible but unfunded.
    ///
    /// See its effect first with `kjp stage impact 2025/1 --budget RUPIAH`.
    Budget {
        stage: Stage,
        /// The budget for the whole stage, e.g. 4_000_000_000_000 or 4.000.000.000.000.
        #[arg(long, value_name = "RUPIAH", value_parser = parse_rupiah, required_unless_present = "clear")]
        set: Option<Rupiah>,
        /// Remove the ceiling: every eligible child is funded.
        #[arg(long, conflicts_with = "set")]
        clear: bool,
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
    /// Settle decisions in review before the decree, each with who, when and why.
    ///
    ///   kjp stage resolve 2025/1 --rule later-source-wins --reason "Samsat blocks are newer"
    ///   kjp stage resolve 2025/1 --nik 3171... --as eligible --reason "car sold, receipt seen"
    #[command(group(clap::ArgGroup::new("what").required(true).args(["rule", "nik"])))]
    Resolve {
        stage: Stage,
        /// Settle every conflict this documented rule decides: later-source-wins (a Samsat
        /// block or transfer dated after the Bapenda record means no car).
        #[arg(long, value_name = "RULE")]
        rule: Option<String>,
        /// Settle one child by hand.
        #[arg(long, value_name = "NIK", requires = "outcome")]
        nik: Option<String>,
        /// With --nik: the decision.
        #[arg(long = "as", value_name = "OUTCOME", value_enum)]
        outcome: Option<Outcome>,
        /// Why (recorded with the resolution).
        #[arg(long)]
        reason: String,
        /// Who (default: the login name).
        #[arg(long)]
        by: Option<String>,
        #[arg(long, value_name = "FILE")]
        policy: Option<PathBuf>,
    },
    /// Fix the recipients by Governor's decree: refused while anything is in review; records
    /// the number, date, policy, snapshots, every recipient and a hash; freezes the stage.
    Decree {
        stage: Stage,
        /// The decree number, e.g. "266/2025".
        #[arg(long)]
        number: String,
        /// The decree date (YYYY-MM-DD).
        #[arg(long)]
        date: NaiveDate,
        #[arg(long, default_value = "")]
        note: String,
        #[arg(long, value_name = "FILE")]
        policy: Option<PathBuf>,
    },
    /// Correct a decreed stage: re-assess one child with corrected facts (--fact) or record
    /// an officer's decision (--as), keeping the decision before and after, who, when, why
    /// and the evidence. The correction waits for the next amendment (`kjp stage amend`).
    ///
    ///   kjp stage correct 2025/1 --nik 3171... --fact family_car=no \
    ///       --evidence "Samsat block 2025-04-02 No. 12/2025" --reason "car sold in 2024"
    #[command(group(clap::ArgGroup::new("change").required(true).args(["fact", "outcome"])))]
    Correct {
        stage: Stage,
        #[arg(long, value_name = "NIK")]
        nik: String,
        /// A corrected fact, NAME=VALUE (repeatable): yes/no facts take yes, no or unknown;
        /// parent_wage and family_property_njop whole rupiah.
        #[arg(long, value_name = "NAME=VALUE")]
        fact: Vec<String>,
        /// Or the officer's decision.
        #[arg(long = "as", value_name = "OUTCOME", value_enum, conflicts_with = "fact")]
        outcome: Option<Outcome>,
        /// Why (recorded with the correction and published in the amendment).
        #[arg(long)]
        reason: String,
        /// What proves it, e.g. the Samsat block's number and date.
        #[arg(long, default_value = "")]
        evidence: String,
        /// Who (default: the login name).
        #[arg(long)]
        by: Option<String>,
    },
    /// Record the next numbered amendment of a decreed stage from every pending
    /// correction: who is added, removed or changed, and why, chained by hash to the decree.
    Amend {
        stage: Stage,
        /// The amending decree's number.
        #[arg(long)]
        number: String,
        /// Its date (YYYY-MM-DD).
        #[arg(long)]
        date: NaiveDate,
        #[arg(long, default_value = "")]
        note: String,
    },
    /// Write the decree annex to sign and publish: recipients by school (CSV), totals per
    /// level and city that add up to the rupiah (CSV), and both as one XLSX workbook.
    Annex {
        stage: Stage,
        /// Directory for the files.
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
    /// Re-decide every child of a decreed stage from what was recorded (its facts, under
    /// the policy recorded with the decree) and compare; check the decree's hash.
    Replay {
        /// The stage (tahap), e.g. 2025/1.
        stage: Stage,
    },
}

fn parse_programme(raw: &str) -> Result<kjp_domain::Programme, String> {
    kjp_domain::Programme::parse(raw).ok_or_else(|| format!("{raw:?}: expected kjp-plus or kjmu"))
}

/// Whole rupiah, with optional `_` or `.` thousands separators: 4_000_000 or 4.000.000.
fn parse_rupiah(raw: &str) -> Result<Rupiah, String> {
    let digits: String =
        raw.trim().trim_start_matches("Rp").trim().chars().filter(|c| *c != '_' && *c != '.').collect();
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "{raw:?} is not a whole number of rupiah (e.g. 4000000000000 or 4.000.000.000.000)"
        ));
    }
    digits.parse::<i64>().map(Rupiah::new).map_err(|_| format!("{raw:?} is too large"))
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Outcome {
    Eligible,
    Ineligible,
}

#[derive(Subcommand)]
enum BenchCommand {
    /// Time reading and parsing the latest snapshots: the floor for `kjp stage verify`.
    Parse,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Format {
    Table,
    Json,
}

#[derive(Subcommand)]
enum PolicyCommand {
    /// Print the groups, requirements, exemptions, screens, parameters and amounts in force
    /// on a date, each with its citation.
    Show {
        /// The reference date (YYYY-MM-DD); default today.
        #[arg(long, value_name = "DATE")]
        date: Option<NaiveDate>,
        /// Policy file to use instead of the built-in one.
        #[arg(long, value_name = "FILE")]
        policy: Option<PathBuf>,
    },
    /// Check a policy file strictly and report the first problem with its line.
    Check {
        /// The policy file.
        file: PathBuf,
    },
}

/// A policy file, or the one shipped for the programme.
fn load_policy(path: Option<&Path>, programme: kjp_domain::Programme) -> anyhow::Result<Policy> {
    match path {
        None => Ok(Policy::shipped(programme)),
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading policy {}", path.display()))?;
            Ok(Policy::parse(&path.display().to_string(), &text)?)
        }
    }
}

fn database_url() -> String {
    std::env::var("KJP_DATABASE_URL").unwrap_or_else(|_| "sqlite:kjp.db".into())
}

async fn store() -> anyhow::Result<Store> {
    let url = database_url();
    let dir = std::env::var_os("KJP_DATA_DIR").map(PathBuf::from);
    Store::open(&url, dir).await.with_context(|| format!("opening the database {url}"))
}

fn print_json(value: &impl serde::Serialize) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

async fn import(files: Vec<PathBuf>, force: bool) -> anyhow::Result<ExitCode> {
    let store = store().await?;
    let mut failed = false;
    for path in files {
        let started = std::time::Instant::now();
        match kjp_import::import_file(&store, &path, force).await {
            Ok(i) => {
                let s = &i.snapshot;
                let what = match (i.new, i.reactivated) {
                    (true, _) => "imported",
                    (false, true) => "already imported; made the current snapshot of its source again",
                    (false, false) => "already imported, nothing changed",
                };
                println!(
                    "{}: {what}: snapshot {}… ({} rows, {} good, {} bad) in {:.1} s",
                    path.display(),
                    &s.sha256[..12],
                    s.rows_total,
                    s.rows_good,
                    s.rows_bad,
                    started.elapsed().as_secs_f64()
                );
                for e in &i.first_errors {
                    let col =
                        if e.column.is_empty() { String::new() } else { format!(", column {}", e.column) };
                    println!("    line {}{col}: {}", e.line, e.reason);
                }
                if s.rows_bad > i.first_errors.len() as i64 && i.new {
                    println!("    ... every bad row is in {}", s.report_path);
                } else if s.rows_bad > 0 && i.new {
                    println!("    report: {}", s.report_path);
                }
            }
            Err(e) => {
                failed = true;
                eprintln!("kjp import: {e}");
            }
        }
    }
    Ok(if failed { ExitCode::from(1) } else { ExitCode::SUCCESS })
}

fn proposed_policy(current: &Policy, file: Option<&Path>, screens: &[String]) -> anyhow::Result<Policy> {
    let mut p = match file {
        Some(_) => load_policy(file, kjp_domain::Programme::KjpPlus)?,
        None => current.clone(),
    };
    for s in screens {
        let (name, state) =
            s.split_once('=').with_context(|| format!("--screen {s:?}: expected NAME=on|off"))?;
        let on = match state {
            "on" => true,
            "off" => false,
            _ => anyhow::bail!("--screen {s:?}: expected NAME=on|off"),
        };
        p = p.with_screen(name, on).with_context(|| {
            let names: Vec<&str> = current
                .rules
                .iter()
                .filter(|r| r.scope == kjp_domain::policy::Scope::Screen)
                .map(|r| r.id.as_str())
                .collect();
            format!("--screen {s:?}: no screen named {name:?} (screens: {})", names.join(", "))
        })?;
    }
    Ok(p)
}

fn generate(scale: f64, seed: u64, out: &Path) -> anyhow::Result<kjp_synth::Report> {
    let reporter = kjp_cli::progress::Reporter::new("generate");
    let started = std::time::Instant::now();
    let options = kjp_synth::Options { scale, seed, out: out.to_path_buf() };
    let report = kjp_synth::generate(&options, &reporter.callback())?;
    let kjmu = kjp_synth::kjmu::generate(out, scale, seed)?;
    println!(
        "generated {} residents in {} families and {} KJMU students at scale {scale} (seed {seed}) in {:.1} s into {}",
        report.residents,
        report.families,
        kjmu.students,
        started.elapsed().as_secs_f64(),
        out.display()
    );
    Ok(report)
}

async fn demo(scale: f64, seed: u64, dir: &Path, port: u16, no_serve: bool) -> anyhow::Result<ExitCode> {
    let data = dir.join("data");
    generate(scale, seed, &data)?;
    let db = dir.join("kjp.db");
    // The demo decrees its stage, which can happen only once: start from a new database.
    for stale in ["kjp.db", "kjp.db-wal", "kjp.db-shm"] {
        let _ = std::fs::remove_file(dir.join(stale));
    }
    let _ = std::fs::remove_dir_all(dir.join("kjp-data"));
    let url = format!("sqlite:{}", db.display());
    let store =
        Store::open(&url, Some(dir.join("kjp-data"))).await.with_context(|| format!("opening {url}"))?;
    let files = kjp_import::source_files(&data)?;
    for path in &files {
        // Freshly generated files into a fresh database: nothing to protect against.
        let i = kjp_import::import_file(&store, path, true).await?;
        println!(
            "imported {:<18} {:>9} rows, {:>5} bad (report {})",
            path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(),
            i.snapshot.rows_total,
            i.snapshot.rows_bad,
            i.snapshot.report_path
        );
    }
    let stage = Stage::new(2025, 1)?;
    kjp_import::stage::open(&store, stage).await?;
    let reporter = kjp_cli::progress::Reporter::new("verify");
    let policy = Policy::kjp_plus();
    let started = std::time::Instant::now();
    let v = verify_published(&store, stage, &policy, &reporter).await?;
    println!(
        "\nstage {stage}: {} candidates decided in {:.1} s\n",
        v.candidates,
        started.elapsed().as_secs_f64()
    );
    let s = kjp_import::stage::summary(&store, stage).await?;
    print!("{}", kjp_cli::report::summary(&s));

    // Before the Governor signs, everything in review is settled: the documented rule
    // first. The rest an officer settles one by one, with a reason; this synthetic demo
    // settles them automatically, and says so in each resolution.
    let rule = kjp_domain::conflict::Rule::LaterSourceWins;
    let settled = kjp_import::decree::resolve_by_rule(
        &store,
        stage,
        &policy,
        rule,
        "Samsat's record is later than Bapenda's",
        "kjp demo",
    )
    .await?;
    let left = store.decisions_with_status(stage, "review").await?;
    for d in &left {
        let nik = kjp_domain::Nik::parse(&d.nik)?;
        let why = "synthetic demo: settled automatically; in real use an officer checks both sources";
        kjp_import::decree::resolve_one(
            &store,
            stage,
            &policy,
            &nik,
            kjp_domain::Status::Ineligible,
            why,
            "kjp demo",
        )
        .await?;
    }
    println!(
        "\nsettled {} conflict(s) by later-source-wins; {} other review case(s) settled as ineligible for the demo",
        settled.settled,
        left.len()
    );
    // A budget 2% short of what every eligible child costs, as in 2024 when the budget
    // left eligible children out: the policy's order decides who is funded.
    let cost = kjp_import::stage::summary(&store, stage).await?.six_month_cost;
    let budget = Rupiah::new(cost / 100 * 98);
    if let Some(c) = kjp_import::funding::set_budget(&store, stage, Some(budget)).await? {
        println!("\n{}", kjp_cli::report::ceiling(&c));
    }
    let date = NaiveDate::from_ymd_opt(2025, 3, 10).expect("a real date");
    let req = kjp_import::decree::DecreeRequest {
        number: "DEMO 1/2025".into(),
        date,
        note: "synthetic demo".into(),
    };
    let d = kjp_import::decree::decree(&store, stage, &policy, &req).await?;
    println!(
        "decree {} of {}: {} recipients, {} a month; sha256 {}",
        d.number,
        d.decree_date,
        d.recipients,
        Rupiah::new(d.monthly_total),
        &d.sha256[..16]
    );
    kjp_cli::money::demo(&store, stage, dir).await?;
    let entries = store.decree_entries(stage, 0).await?;
    let example = |status: &str| entries.iter().find(|e| e.status == status).map(|e| e.nik.clone());
    let (recipient, unfunded) = (example("recipient"), example("unfunded"));
    let recipient = match recipient {
        Some(nik) => store.decision(stage, &nik).await?,
        None => None,
    };
    let unfunded = match unfunded {
        Some(nik) => store.decision(stage, &nik).await?,
        None => None,
    };
    let not_recipient = store
        .decisions_with_status(stage, "ineligible")
        .await?
        .into_iter()
        .find(|d| !d.birth_date.is_empty() && d.reasons.contains("NOT_IN_DTKS"));

    let kjmu = demo_kjmu(&store).await?;

    println!("\nData:      {}", data.display());
    println!("Database:  {url}");
    println!("Snapshots: {}", store.data_dir().display());
    println!("\nTry:");
    println!("  KJP_DATABASE_URL={url} kjp stage summary 2025/1 --format json");
    println!("  KJP_DATABASE_URL={url} kjp stage export 2025/1 --out decisions.csv");
    println!("  KJP_DATABASE_URL={url} kjp stage impact 2025/1 --screen family_car=off");
    println!("  KJP_DATABASE_URL={url} kjp stage impact 2025/1 --budget {}", cost / 100 * 95);
    println!("  KJP_DATABASE_URL={url} kjp stage annex 2025/1 --out annex");
    println!("\nThe public status check (year 2025, stage 1):");
    for (what, d) in
        [("a recipient", &recipient), ("unfunded", &unfunded), ("not a recipient", &not_recipient)]
    {
        if let Some(d) = d {
            let birth = d.birth_date.split('-').rev().collect::<Vec<_>>().join("-");
            println!("  {what:<16} NIK {}  date of birth {birth}", d.nik);
        }
    }
    println!("\nKJMU (programme KJMU, year 2025, stage 1):");
    for (what, d) in [("a recipient", &kjmu.0), ("not a recipient", &kjmu.1)] {
        if let Some(d) = d {
            let birth = d.birth_date.split('-').rev().collect::<Vec<_>>().join("-");
            println!("  {what:<16} NIK {}  date of birth {birth}", d.nik);
        }
    }
    // One staff account per role, in the example recipient's kecamatan and school.
    let example =
        recipient.as_ref().map(|d| (d.kelurahan.get(..8).unwrap_or("31.71.01").to_string(), d.npsn.clone()));
    let (kecamatan, npsn) = example.unwrap_or_else(|| ("31.71.01".into(), "20100001".into()));
    let accounts = kjp_cli::staff::demo_accounts(&store, &kecamatan, &npsn).await?;
    print!("\n{}", kjp_cli::staff::accounts_table(&accounts));
    if no_serve {
        store.close().await;
        return Ok(ExitCode::SUCCESS);
    }
    let state = kjp_server::AppState::load(store, policy, kjp_server::Config::default())
        .await
        .context("building the status index")?;
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await.with_context(|| {
        format!("listening on 127.0.0.1:{port} (choose another with --port, or --no-serve)")
    })?;
    println!("\nStatus check at http://{}/  (Ctrl-C to stop)", listener.local_addr()?);
    println!(
        "Staff console at http://localhost:{}/staff  (sign in with an account above)",
        listener.local_addr()?.port()
    );
    kjp_server::serve(listener, state, kjp_server::shutdown_signal()).await?;
    Ok(ExitCode::SUCCESS)
}

/// The demo's second programme: KJMU tahap I 2025 on the same data and engine, decided
/// under policy/kjmu.toml and decreed. Returns an example recipient and non-recipient.
async fn demo_kjmu(
    store: &Store,
) -> anyhow::Result<(Option<kjp_store::DecisionRow>, Option<kjp_store::DecisionRow>)> {
    let stage = Stage::of(kjp_domain::Programme::Kjmu, 2025, 1)?;
    let policy = Policy::kjmu();
    kjp_import::stage::open(store, stage).await?;
    let reporter = kjp_cli::progress::Reporter::new("verify KJMU");
    let v = verify_published(store, stage, &policy, &reporter).await?;
    let s = kjp_import::stage::summary(store, stage).await?;
    println!(
        "\nKJMU stage {stage}: {} students decided: {} eligible, {} ineligible, {} in review",
        v.candidates, s.eligible_total, s.ineligible, s.review
    );
    for r in &s.ineligible_by_reason {
        println!("  {:<28} {:>7}", r.code, r.count);
    }
    for d in store.decisions_with_status(stage, "review").await? {
        let nik = kjp_domain::Nik::parse(&d.nik)?;
        let why = "synthetic demo: settled automatically; in real use an officer checks the sources";
        kjp_import::decree::resolve_one(
            store,
            stage,
            &policy,
            &nik,
            kjp_domain::Status::Ineligible,
            why,
            "kjp demo",
        )
        .await?;
    }
    let req = kjp_import::decree::DecreeRequest {
        number: "DEMO KJMU 1/2025".into(),
        date: NaiveDate::from_ymd_opt(2025, 3, 10).expect("a real date"),
        note: "synthetic demo".into(),
    };
    let d = kjp_import::decree::decree(store, stage, &policy, &req).await?;
    println!(
        "KJMU decree {}: {} recipients, {} a month ({} a semester each: education fee to the university and personal support)",
        d.number,
        d.recipients,
        Rupiah::new(d.monthly_total),
        Rupiah::new(d.monthly_total / d.recipients.max(1) * 6)
    );
    let recipient = match store.recipients(stage).await?.first() {
        Some(e) => store.decision(stage, &e.nik).await?,
        None => None,
    };
    let not_recipient = store
        .decisions_with_status(stage, "ineligible")
        .await?
        .into_iter()
        .find(|d| !d.birth_date.is_empty() && d.reasons == "GPA_TOO_LOW");
    Ok((recipient, not_recipient))
}

async fn run_async(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Demo { scale, seed, dir, port, no_serve } => {
            return demo(scale, seed, &dir, port, no_serve).await
        }
        Command::Money(command) => return kjp_cli::money::run(command).await,
        Command::Migrate => {
            let store = store().await?;
            let applied = store.migrations().await?;
            let last = applied.last().map_or(0, |a| a.version);
            println!("{}: at migration {last}", store.url());
            for a in &applied {
                println!("  {:>4} {:<24} applied {}", a.version, a.name, a.applied_at);
            }
        }
        Command::Backup { out } => {
            let store = store().await?;
            let stem =
                out.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "kjp".into());
            let data = out.with_file_name(format!("{stem}-data"));
            let started = std::time::Instant::now();
            let copied = store.backup(&out, &data).await?;
            println!(
                "backed up {} to {} and {copied} new snapshot file(s) to {} in {:.1} s",
                store.url(),
                out.display(),
                data.display(),
                started.elapsed().as_secs_f64()
            );
            println!(
                "restore: KJP_DATABASE_URL=sqlite:{} kjp ... (the snapshots are found in {})",
                out.display(),
                data.display()
            );
        }
        Command::Serve(args) => {
            let settings = args.settings(|k| std::env::var(k).ok())?;
            kjp_server::init_logging(settings.log_format)?;
            let (bind, port) = (settings.bind, settings.port);
            let dir = std::env::var_os("KJP_DATA_DIR").map(PathBuf::from);
            let store = Store::open(&settings.database_url, dir)
                .await
                .with_context(|| format!("opening the database {}", settings.database_url))?;
            let staff_store = store.clone();
            let state = kjp_server::AppState::load(store, Policy::kjp_plus(), settings.server())
                .await
                .context("building the status index")?;
            state.set_console(kjp_server::console::Settings {
                sla_days: i64::from(settings.complaint_sla_days),
                ..Default::default()
            });
            for (stage, children) in state.index().sizes() {
                match children {
                    Some(n) => println!("Stage {stage}: decreed, {n} children indexed"),
                    None => println!("Stage {stage}: not decreed (answers \"in process\")"),
                }
            }
            let _reloader = state.spawn_reloader(settings.reload);
            // Registry notifications to subscribed agencies (docs/registry.md).
            let _notifier = state.spawn_notifier(Default::default());
            // On demand: `kill -HUP PID` rebuilds the index now (e.g. right after a decree).
            #[cfg(unix)]
            {
                let state = state.clone();
                let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?;
                tokio::spawn(async move {
                    while hup.recv().await.is_some() {
                        match state.reload().await {
                            Ok(()) => println!("Status index rebuilt"),
                            Err(e) => eprintln!("kjp: status index not rebuilt, keeping the old one: {e}"),
                        }
                    }
                });
            }
            let listener = tokio::net::TcpListener::bind((bind, port))
                .await
                .with_context(|| format!("listening on {bind}:{port}"))?;
            println!("Status check at http://{}/", listener.local_addr()?);
            println!("Staff console at http://{}/staff", listener.local_addr()?);
            if staff_store.staff_users().await?.is_empty() {
                println!("No staff account yet: create one with `kjp user add --username NAME --role admin`");
            }
            kjp_server::serve(listener, state, kjp_server::shutdown_signal()).await?;
        }
        Command::User(UserCommand::Add { username, role, scope }) => {
            let store = store().await?;
            let a = kjp_cli::staff::add_user(&store, &username, &role, scope.as_deref()).await?;
            println!("created {} ({}); password: {}", a.username, a.role.label(), a.password);
            println!("It is shown only now. Sign in at /staff/login.");
        }
        Command::User(UserCommand::Reset { username }) => {
            let store = store().await?;
            let password = kjp_cli::staff::reset_user(&store, &username).await?;
            println!("{username}: new password {password} (shown only now); any lock-out is lifted");
        }
        Command::Client(command) => {
            let store = store().await?;
            match command {
                ClientCommand::Add { name, agency, scope } => {
                    let token = kjp_cli::clients::add(&store, &name, &agency, &scope).await?;
                    println!("created API client {name}; token: {token}");
                    println!("It is shown only now. Send it as: Authorization: Bearer {token}");
                }
                ClientCommand::List => print!("{}", kjp_cli::clients::list(&store).await?),
                ClientCommand::Revoke { name } => {
                    kjp_cli::clients::revoke(&store, &name).await?;
                    println!("{name}: revoked; its token is refused from now on");
                }
                ClientCommand::Rotate { name } => {
                    let token = kjp_cli::clients::rotate(&store, &name).await?;
                    println!("{name}: new token {token} (shown only now); the old one is refused");
                }
            }
        }
        Command::Audit(AuditCommand::Verify) => {
            let store = store().await?;
            let (ok, text) = kjp_cli::staff::verify_audit(&store).await?;
            print!("{text}");
            if !text.ends_with('\n') {
                println!();
            }
            if !ok {
                return Ok(ExitCode::from(1));
            }
        }
        Command::Import { data, files, force } => {
            let files = match data {
                Some(dir) => kjp_import::source_files(&dir)?,
                None if files.is_empty() => anyhow::bail!("give --data DIR or the files to import"),
                None => files,
            };
            return import(files, force).await;
        }
        Command::Stage(StageCommand::Open { year, half, programme }) => {
            let stage = Stage::of(programme, year, half)?;
            let store = store().await?;
            let (row, new) = kjp_import::stage::open(&store, stage).await?;
            let months = stage.benefit_months();
            println!(
                "stage {} {} ({}), reference date {}, benefit months {} to {}",
                row.stage,
                if new { "opened" } else { "was already open" },
                row.state.as_str(),
                row.as_of,
                months[0].format("%Y-%m"),
                months[5].format("%Y-%m"),
            );
        }
        Command::Stage(StageCommand::Verify { stage, policy }) => {
            let policy = load_policy(policy.as_deref(), stage.programme())?;
            let store = store().await?;
            let started = std::time::Instant::now();
            let reporter = kjp_cli::progress::Reporter::new("verify");
            let v = verify_published(&store, stage, &policy, &reporter).await?;
            println!(
                "stage {stage}: run {} decided {} candidates in {:.1} s",
                v.run,
                v.candidates,
                started.elapsed().as_secs_f64()
            );
            let s = kjp_import::stage::summary(&store, stage).await?;
            print!("{}", kjp_cli::report::summary(&s));
        }
        Command::Stage(StageCommand::Summary { stage, format }) => {
            let store = store().await?;
            let s = kjp_import::stage::summary(&store, stage).await?;
            match format {
                Format::Json => print_json(&s)?,
                Format::Table => print!("{}", kjp_cli::report::summary(&s)),
            }
        }
        Command::Stage(StageCommand::Export { stage, out }) => {
            let store = store().await?;
            let n = kjp_import::stage::export(&store, stage, &out).await?;
            println!("{}: {n} candidates of stage {stage}", out.display());
        }
        Command::Stage(StageCommand::Impact { stage, data: true, format, .. }) => {
            let store = store().await?;
            let reporter = kjp_cli::progress::Reporter::new("what-if");
            let i = kjp_import::stage::data_impact(&store, stage, &reporter.callback()).await?;
            match format {
                Format::Json => print_json(&i)?,
                Format::Table => print!("{}", kjp_cli::report::impact(&i)),
            }
        }
        Command::Stage(StageCommand::Impact { stage, budget: Some(budget), format, .. }) => {
            let store = store().await?;
            let policy = kjp_import::stage::recorded_policy(&store, stage).await?;
            let c = kjp_import::funding::what_if(&store, stage, &policy, budget).await?;
            match format {
                Format::Json => print_json(&c)?,
                Format::Table => println!("{}nothing was changed", kjp_cli::report::ceiling(&c)),
            }
        }
        Command::Stage(StageCommand::Budget { stage, set, clear: _, format }) => {
            let store = store().await?;
            match kjp_import::funding::set_budget(&store, stage, set).await? {
                Some(c) => match format {
                    Format::Json => print_json(&c)?,
                    Format::Table => print!("{}", kjp_cli::report::ceiling(&c)),
                },
                None => println!("stage {stage}: no budget ceiling; every eligible child is funded"),
            }
        }
        Command::Stage(StageCommand::Impact { stage, policy, screen, format, budget: None, data: false }) => {
            let store = store().await?;
            // Compare with the rules the stage was actually decided under.
            let current = kjp_import::stage::recorded_policy(&store, stage).await?;
            let proposed = proposed_policy(&current, policy.as_deref(), &screen)?;
            let i = kjp_import::stage::impact(&store, stage, &current, &proposed).await?;
            match format {
                Format::Json => print_json(&i)?,
                Format::Table => print!("{}", kjp_cli::report::impact(&i)),
            }
        }
        Command::Stage(StageCommand::Resolve { stage, rule, nik, outcome, reason, by, policy }) => {
            let policy = load_policy(policy.as_deref(), stage.programme())?;
            let by = by.or_else(|| std::env::var("USER").ok()).unwrap_or_else(|| "cli".into());
            let store = store().await?;
            match (rule, nik, outcome) {
                (Some(rule), _, _) => {
                    let rule = kjp_domain::conflict::Rule::parse(&rule).with_context(|| {
                        format!("--rule {rule:?}: the documented rules are: later-source-wins")
                    })?;
                    let s = kjp_import::decree::resolve_by_rule(&store, stage, &policy, rule, &reason, &by)
                        .await?;
                    println!("stage {stage}: {} decision(s) settled by {}", s.settled, rule.name());
                    for (outcome, n) in &s.by_outcome {
                        println!("  now {outcome:<12} {n:>9}");
                    }
                    let left: usize = s.left.values().sum();
                    println!("left for an officer: {left}");
                    for (what, n) in &s.left {
                        println!("  {what:<40} {n:>9}");
                    }
                }
                (None, Some(nik), Some(outcome)) => {
                    let nik = kjp_domain::Nik::parse(&nik)?;
                    let outcome = match outcome {
                        Outcome::Eligible => kjp_domain::Status::Eligible,
                        Outcome::Ineligible => kjp_domain::Status::Ineligible,
                    };
                    let d =
                        kjp_import::decree::resolve_one(&store, stage, &policy, &nik, outcome, &reason, &by)
                            .await?;
                    println!(
                        "stage {stage}: {} is now {} ({})",
                        nik.masked(),
                        d.status,
                        Rupiah::new(d.monthly_total)
                    );
                }
                _ => anyhow::bail!("give --rule RULE, or --nik NIK --as eligible|ineligible"),
            }
        }
        Command::Stage(StageCommand::Decree { stage, number, date, note, policy }) => {
            let policy = load_policy(policy.as_deref(), stage.programme())?;
            let store = store().await?;
            let req = kjp_import::decree::DecreeRequest { number, date, note };
            let d = kjp_import::decree::decree(&store, stage, &policy, &req).await?;
            println!(
                "stage {stage} decreed by Keputusan Gubernur {} of {}: {} recipients, {} a month ({} for six months)",
                d.number,
                d.decree_date,
                d.recipients,
                Rupiah::new(d.monthly_total),
                Rupiah::new(d.monthly_total * 6)
            );
            if d.unfunded > 0 {
                println!("{} eligible children are unfunded under the budget ceiling", d.unfunded);
            }
            println!("sha256 {}", d.sha256);
        }
        Command::Stage(StageCommand::Correct { stage, nik, fact, outcome, reason, evidence, by }) => {
            let by = by.or_else(|| std::env::var("USER").ok()).unwrap_or_else(|| "cli".into());
            let nik = kjp_domain::Nik::parse(&nik)?;
            let change = match outcome {
                Some(Outcome::Eligible) => kjp_import::amend::Change::Outcome(kjp_domain::Status::Eligible),
                Some(Outcome::Ineligible) => {
                    kjp_import::amend::Change::Outcome(kjp_domain::Status::Ineligible)
                }
                None => kjp_import::amend::Change::Facts(
                    fact.iter()
                        .map(|f| {
                            f.split_once('=')
                                .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
                                .with_context(|| {
                                    format!("--fact {f:?}: expected NAME=VALUE, e.g. family_car=no")
                                })
                        })
                        .collect::<anyhow::Result<_>>()?,
                ),
            };
            let store = store().await?;
            let req = kjp_import::amend::CorrectionRequest { nik, change, reason, evidence, by };
            let c = kjp_import::amend::correct(&store, stage, &req).await?;
            println!(
                "stage {stage}: correction {} for {}: {} -> {} ({} a month); it waits for the next amendment (`kjp stage amend`)",
                c.seq,
                nik.masked(),
                c.status_before,
                c.status_after,
                Rupiah::new(c.monthly_total)
            );
        }
        Command::Stage(StageCommand::Amend { stage, number, date, note }) => {
            let store = store().await?;
            let req = kjp_import::decree::DecreeRequest { number, date, note };
            let (d, entries) = kjp_import::amend::amend(&store, stage, &req).await?;
            println!(
                "stage {stage}: amendment {} (Keputusan Gubernur {} of {}): {} recipients now, {} a month",
                d.amendment,
                d.number,
                d.decree_date,
                d.recipients,
                Rupiah::new(d.monthly_total)
            );
            for e in &entries {
                let nik = kjp_domain::Nik::parse(&e.nik).map(|n| n.masked()).unwrap_or_default();
                println!(
                    "  {:<8} {nik} {:>12}  {}",
                    e.change,
                    Rupiah::new(e.monthly_total).to_string(),
                    e.reason
                );
            }
            println!("sha256 {}", d.sha256);
        }
        Command::Stage(StageCommand::Annex { stage, out }) => {
            let store = store().await?;
            let a = kjp_import::annex::annex(&store, stage, &out).await?;
            println!(
                "decree annex of stage {stage}: {} recipients, {} a month ({} for six months)",
                a.recipients,
                Rupiah::new(a.monthly_total),
                Rupiah::new(a.monthly_total * 6)
            );
            for p in [&a.recipients_csv, &a.totals_csv, &a.xlsx] {
                println!("  {}", p.display());
            }
        }
        Command::Stage(StageCommand::Replay { stage }) => {
            let store = store().await?;
            let r = kjp_import::decree::replay(&store, stage).await?;
            println!(
                "stage {stage}: {} of {} decisions reproduced; decree hash {}",
                r.matching,
                r.decisions,
                if r.hash_ok { "matches" } else { "DOES NOT MATCH" }
            );
            if r.mismatching > 0 || !r.hash_ok {
                for n in &r.mismatches {
                    println!("  not reproduced: {n}");
                }
                return Ok(ExitCode::from(1));
            }
        }
        Command::Bench(BenchCommand::Parse) => {
            let store = store().await?;
            let snapshots = store.latest_snapshots().await?;
            let started = std::time::Instant::now();
            let sources = kjp_import::verify::load(&snapshots)?;
            let secs = started.elapsed().as_secs_f64();
            let bytes: u64 =
                snapshots.iter().filter_map(|s| std::fs::metadata(&s.path).ok()).map(|m| m.len()).sum();
            println!(
                "read and parsed {} snapshots ({:.0} MB, {} residents) in {secs:.2} s: the floor for `kjp stage verify`",
                snapshots.len(),
                bytes as f64 / 1e6,
                sources.persons.len()
            );
        }
        _ => unreachable!("synchronous commands are handled in run"),
    }
    Ok(ExitCode::SUCCESS)
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Eval { policy } => {
            let policy = load_policy(policy.as_deref(), kjp_domain::Programme::KjpPlus)?;
            let stdin = io::stdin().lock();
            let stdout = BufWriter::with_capacity(1 << 16, io::stdout().lock());
            let summary = kjp_cli::eval::run(&policy, stdin, stdout).context("writing decisions")?;
            if summary.errors > 0 {
                eprintln!(
                    "kjp eval: {} line(s) could not be decided; {} decided",
                    summary.errors, summary.decided
                );
                return Ok(ExitCode::from(1));
            }
        }
        Command::Policy(PolicyCommand::Show { date, policy }) => {
            let policy = load_policy(policy.as_deref(), kjp_domain::Programme::KjpPlus)?;
            let date = date.unwrap_or_else(|| chrono::Local::now().date_naive());
            print!("{}", kjp_cli::policy_show::render(&policy, date));
        }
        Command::Generate { scale, seed, out } => {
            generate(scale, seed, &out)?;
        }
        command @ (Command::Import { .. }
        | Command::Stage(_)
        | Command::Bench(_)
        | Command::Demo { .. }
        | Command::Migrate
        | Command::Backup { .. }
        | Command::User(_)
        | Command::Audit(_)
        | Command::Client(_)
        | Command::Serve(_)
        | Command::Money(_)) => {
            let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
            return runtime.block_on(run_async(command));
        }
        Command::Policy(PolicyCommand::Check { file }) => {
            let policy = load_policy(Some(&file), kjp_domain::Programme::KjpPlus)?;
            println!(
                "{}: ok ({} {}, {} rules, {} groups, sha256 {})",
                file.display(),
                policy.id,
                policy.version,
                policy.rules.len(),
                policy.group_ids.len(),
                policy.sha256
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// A stage run whose progress every server's `/metrics` shows while it goes on.
async fn verify_published(
    store: &Store,
    stage: Stage,
    policy: &Policy,
    reporter: &kjp_cli::progress::Reporter,
) -> Result<kjp_import::stage::Verified, kjp_import::stage::StageError> {
    let published = reporter.publish(store, &stage.to_string()).await;
    let v = kjp_import::stage::verify(store, stage, policy, &reporter.callback()).await;
    published.finish().await;
    v
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("kjp: error: {e:#}");
            ExitCode::from(2)
        }
    }
}
