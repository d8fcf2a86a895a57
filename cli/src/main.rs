//! The `fourfold` command-line tool.
//!
//! INVARIANT: the CLI's dependencies (clap) stay out of the `fourfold` library; this binary only
//! parses arguments and prints what the library decides.

mod context_cmd;
mod cost_cmd;
mod demo;
mod hook_cmd;
mod mcp_cmd;
mod mcp_gateway;
mod policy_cmd;
mod report_cmd;
mod tokens_cmd;
mod trace_cmd;
mod trace_query;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// What a subcommand returns: its exit code, or the error that stopped it.
pub(crate) type CliResult = Result<ExitCode, Box<dyn std::error::Error>>;

/// fourfold: reliability, observability, context and cost controls for AI agents.
#[derive(Parser)]
#[command(name = "fourfold", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a small fleet of scripted agents under all four controls, and diagnose their runs.
    Demo {
        /// Where to write the trace (default `fourfold-demo/`).
        #[arg(long)]
        out: Option<std::path::PathBuf>,
    },
    /// Check requests against a policy and manage pending approvals.
    Policy(policy_cmd::PolicyArgs),
    /// List, approve and reject the pending approvals of a policy's review gates.
    Approvals(policy_cmd::ApprovalsArgs),
    /// Ingest documents into a saved context store, and ask it.
    Context(context_cmd::ContextArgs),
    /// Write one self-contained HTML page about a trace: runs, verdicts, charts and timelines.
    Report(report_cmd::ReportArgs),
    /// Show, verify, explain, query and export trace files.
    Trace(trace_cmd::TraceArgs),
    /// Count tokens exactly, as OpenAI's tiktoken does.
    Tokens(tokens_cmd::TokensArgs),
    /// Report what agents spent and saved.
    Cost(cost_cmd::CostArgs),
    /// Answer coding agents' hooks (Claude Code) with the policy, and record them in the trace.
    Hook(hook_cmd::HookArgs),
    /// Serve the context store to MCP clients, or govern an upstream MCP server's tools.
    Mcp(mcp_cmd::McpArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Demo { out } => demo::run(out),
        Command::Policy(args) => policy_cmd::run(args),
        Command::Approvals(args) => policy_cmd::run_approvals(args),
        Command::Context(args) => context_cmd::run(args),
        Command::Report(args) => report_cmd::run(args),
        Command::Trace(args) => trace_cmd::run(args),
        Command::Tokens(args) => tokens_cmd::run(args),
        Command::Cost(args) => cost_cmd::run(args),
        Command::Hook(args) => hook_cmd::run(args),
        Command::Mcp(args) => mcp_cmd::run(args),
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error}");
            let mut source = std::error::Error::source(error.as_ref());
            while let Some(cause) = source {
                eprintln!("  caused by: {cause}");
                source = cause.source();
            }
            ExitCode::from(2)
        }
    }
}
