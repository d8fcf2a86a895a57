//! `fourfold policy`: check requests given as JSON, list, approve and reject pending approvals.

use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use fourfold::{Policy, Request};

use crate::CliResult;

#[derive(Args)]
pub(crate) struct PolicyArgs {
    #[command(subcommand)]
    command: PolicyCommand,
}

#[derive(Subcommand)]
enum PolicyCommand {
    /// Decide requests: one JSON request as an argument, or one per line on stdin. Prints one JSON
    /// decision per request. Exits 0 when every line was a valid request, 2 otherwise.
    Check {
        /// The policy file.
        #[arg(long)]
        policy: PathBuf,
        /// A request as JSON, e.g. '{"agent":"coder","action":"read","path":"src/lib.rs"}'.
        request: Option<String>,
    },
    /// List pending approvals as JSON, one per line.
    Approvals {
        /// The policy file (its approval store is used).
        #[arg(long)]
        policy: PathBuf,
    },
    /// Approve a pending approval.
    Approve(Resolution),
    /// Reject a pending approval.
    Reject(Resolution),
}

/// `fourfold approvals`: a person resolves pending review gates from a terminal.
#[derive(Args)]
pub(crate) struct ApprovalsArgs {
    #[command(subcommand)]
    command: ApprovalsCommand,
}

#[derive(Subcommand)]
enum ApprovalsCommand {
    /// List pending approvals as JSON, one per line.
    List(Source),
    /// Approve a pending approval: the identical request is then allowed, once.
    Approve(Resolution),
    /// Reject a pending approval: the request stays denied.
    Reject(Resolution),
}

pub(crate) fn run_approvals(args: ApprovalsArgs) -> CliResult {
    match args.command {
        ApprovalsCommand::List(source) => list_pending(source.policy()?),
        ApprovalsCommand::Approve(resolution) => resolve(resolution, Policy::approve),
        ApprovalsCommand::Reject(resolution) => resolve(resolution, Policy::reject),
    }
}

/// Where the approvals are: beside a policy file, or in the store a `fourfold.toml` names (a
/// fleet's PostgreSQL server, so a reviewer resolves approvals of agents on other machines).
#[derive(Args)]
#[group(required = true, multiple = false)]
struct Source {
    /// The policy file (its approval store is used).
    #[arg(long)]
    policy: Option<PathBuf>,
    /// A `fourfold.toml` (the approval store it names is used).
    #[arg(long)]
    config: Option<PathBuf>,
}

impl Source {
    fn policy(&self) -> Result<Policy, Box<dyn std::error::Error>> {
        match (&self.policy, &self.config) {
            (Some(policy), _) => Ok(Policy::from_file(policy)?),
            (None, Some(config)) => Ok(fourfold::session::policy_from_config(config)?),
            (None, None) => Err("give --policy or --config".into()),
        }
    }
}

fn list_pending(policy: Policy) -> CliResult {
    let mut stdout = std::io::stdout().lock();
    for approval in policy.pending_approvals()? {
        writeln!(stdout, "{}", serde_json::to_string(&approval)?)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Who resolves which approval, and why.
#[derive(Args)]
struct Resolution {
    #[command(flatten)]
    source: Source,
    /// The approval id.
    id: String,
    /// Who resolves it.
    #[arg(long)]
    by: String,
    /// Why.
    #[arg(long, default_value = "")]
    reason: String,
}

pub(crate) fn run(args: PolicyArgs) -> CliResult {
    match args.command {
        PolicyCommand::Check { policy, request } => check(&Policy::from_file(policy)?, request),
        PolicyCommand::Approvals { policy } => list_pending(Policy::from_file(policy)?),
        PolicyCommand::Approve(resolution) => resolve(resolution, Policy::approve),
        PolicyCommand::Reject(resolution) => resolve(resolution, Policy::reject),
    }
}

type Resolve = fn(&Policy, &str, &str, &str) -> Result<fourfold::Approval, fourfold::PolicyError>;

/// Approves or rejects an approval and prints it as JSON.
fn resolve(resolution: Resolution, resolve_with: Resolve) -> CliResult {
    let policy = resolution.source.policy()?;
    let approval = resolve_with(&policy, &resolution.id, &resolution.by, &resolution.reason)?;
    println!("{}", serde_json::to_string(&approval)?);
    Ok(ExitCode::SUCCESS)
}

/// Decides one request line; a line that is not a valid request prints an error object.
fn check_line(
    policy: &Policy,
    line: &str,
    out: &mut impl Write,
) -> Result<bool, Box<dyn std::error::Error>> {
    let decided = serde_json::from_str::<Request>(line)
        .map_err(|error| format!("invalid request: {error}"))
        .and_then(|request| policy.check(&request).map_err(|error| error.to_string()));
    match decided {
        Ok(decision) => {
            writeln!(out, "{}", serde_json::to_string(&decision)?)?;
            Ok(true)
        }
        Err(error) => {
            writeln!(out, "{}", serde_json::json!({ "error": error }))?;
            Ok(false)
        }
    }
}

fn check(policy: &Policy, request: Option<String>) -> CliResult {
    let mut stdout = std::io::stdout().lock();
    let mut all_valid = true;
    match request {
        Some(line) => all_valid &= check_line(policy, &line, &mut stdout)?,
        None => {
            for line in std::io::stdin().lock().lines() {
                let line = line?;
                if line.trim().is_empty() {
                    continue;
                }
                all_valid &= check_line(policy, &line, &mut stdout)?;
                stdout.flush()?;
            }
        }
    }
    Ok(if all_valid {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    })
}
