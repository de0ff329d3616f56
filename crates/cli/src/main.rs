//! `kjp`: the one binary. A thin layer: parse arguments, call the library, print.

use std::io::{self, BufWriter};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use chrono::NaiveDate;
use clap::{Parser, Subcommand};
use kjp_domain::Policy;

#[derive(Parser)]
#[command(
    name = "kjp",
    version,
    about = "Runs the KJP Plus education cash-transfer programme: policy, decisions, stages.",
    long_about = "Runs the KJP Plus education cash-transfer programme of DKI Jakarta end to end.\n\n\
        The programme's law lives in a policy file (policy/kjp-plus.toml, built in); every decision\n\
        names the rule and the article that decided it."
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

fn load_policy(path: Option<&Path>) -> anyhow::Result<Policy> {
    match path {
        None => Ok(Policy::kjp_plus()),
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading policy {}", path.display()))?;
            Ok(Policy::parse(&path.display().to_string(), &text)?)
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Eval { policy } => {
            let policy = load_policy(policy.as_deref())?;
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
            let policy = load_policy(policy.as_deref())?;
            let date = date.unwrap_or_else(|| chrono::Local::now().date_naive());
            print!("{}", kjp_cli::policy_show::render(&policy, date));
        }
        Command::Policy(PolicyCommand::Check { file }) => {
            let policy = load_policy(Some(&file))?;
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

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("kjp: error: {e:#}");
            ExitCode::from(2)
        }
    }
}
