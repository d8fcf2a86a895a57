//! `fourfold hook claude-code` and `fourfold hook gemini-cli`: coding agents' hooks, answered by the
//! policy and recorded in the trace.
//!
//! Claude Code runs the hook as a command for each event, with the event as JSON on stdin
//! (`hook_event_name`, `session_id`, `cwd`, `tool_name`, `tool_input`, ...). For `PreToolUse` the
//! tool call becomes a fourfold request (`Bash` a command line, through the policy's shell
//! analysis; `Read` a read; `Write`, `Edit`, `MultiEdit` and `NotebookEdit` a write; `WebFetch` a
//! network request; `mcp__server__tool` and every other tool a tool call with its input as
//! arguments), and the answer is `permissionDecision` `allow`, `deny` (a rule, stale context or
//! a budget refused it) or `ask` (a review gate holds it), with the deciding rule as the reason.
//! `PostToolUse` and the session events are recorded as actions of the session's run.
//!
//! Gemini CLI's hooks follow the same conventions under other names: `BeforeTool` and `AfterTool`,
//! the tools `run_shell_command`, `read_file`, `read_many_files`, `write_file`, `replace`, and the
//! answer `{"decision": "allow" | "deny", "reason": ...}`; it has no "ask", so a call a review gate
//! holds is denied with its approval id in the reason.
//!
//! INVARIANT: fail closed. An event that cannot be read, or a config that cannot be loaded, is
//! reported on stderr with exit status 2, which blocks a `PreToolUse` call.

use std::fs::{File, OpenOptions};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Subcommand};
use fourfold::{ActionEvent, Fourfold, Request, SessionError};
use serde_json::{json, Value};

use crate::CliResult;

#[derive(Args)]
pub(crate) struct HookArgs {
    #[command(subcommand)]
    tool: HookTool,
}

#[derive(Subcommand)]
enum HookTool {
    /// Answer a Claude Code hook event read from stdin (install it in `.claude/settings.json`).
    ClaudeCode {
        /// The `fourfold.toml` (default: `$FOURFOLD_CONFIG`, else
        /// `$CLAUDE_PROJECT_DIR/.fourfold/fourfold.toml`, else `./fourfold.toml`).
        #[arg(long)]
        config: Option<PathBuf>,
        /// The agent the policy sees.
        #[arg(long, default_value = "claude-code")]
        agent: String,
    },
    /// Answer a Gemini CLI hook event read from stdin (install it in `.gemini/settings.json`).
    GeminiCli {
        /// The `fourfold.toml` (default: `$FOURFOLD_CONFIG`, else
        /// `$GEMINI_PROJECT_DIR/.fourfold/fourfold.toml`, else `./fourfold.toml`).
        #[arg(long)]
        config: Option<PathBuf>,
        /// The agent the policy sees.
        #[arg(long, default_value = "gemini-cli")]
        agent: String,
    },
}

/// Whose hook protocol an event speaks.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Dialect {
    ClaudeCode,
    GeminiCli,
}

impl Dialect {
    fn project_dir_variable(self) -> &'static str {
        match self {
            Dialect::ClaudeCode => "CLAUDE_PROJECT_DIR",
            Dialect::GeminiCli => "GEMINI_PROJECT_DIR",
        }
    }

    fn before_tool(self) -> &'static str {
        match self {
            Dialect::ClaudeCode => "PreToolUse",
            Dialect::GeminiCli => "BeforeTool",
        }
    }

    fn after_tool(self) -> &'static str {
        match self {
            Dialect::ClaudeCode => "PostToolUse",
            Dialect::GeminiCli => "AfterTool",
        }
    }

    fn prefix(self) -> &'static str {
        match self {
            Dialect::ClaudeCode => "claude-code",
            Dialect::GeminiCli => "gemini-cli",
        }
    }
}

pub(crate) fn run(args: HookArgs) -> CliResult {
    match args.tool {
        HookTool::ClaudeCode { config, agent } => answer(Dialect::ClaudeCode, config, &agent),
        HookTool::GeminiCli { config, agent } => answer(Dialect::GeminiCli, config, &agent),
    }
}

/// The config to use, in the documented order.
fn config_path(dialect: Dialect, given: Option<PathBuf>) -> PathBuf {
    if let Some(path) = given {
        return path;
    }
    if let Some(path) = std::env::var_os("FOURFOLD_CONFIG") {
        return PathBuf::from(path);
    }
    if let Some(dir) = std::env::var_os(dialect.project_dir_variable()) {
        return Path::new(&dir).join(".fourfold").join("fourfold.toml");
    }
    PathBuf::from("fourfold.toml")
}

/// Hook processes of one project take turns, so that two appending to one trace file at once
/// cannot fork its hash chain (Claude Code may run hooks of parallel tool calls together).
fn take_turn(config: &Path) -> Result<File, Box<dyn std::error::Error>> {
    let dir = config
        .parent()
        .filter(|dir| !dir.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .join(".fourfold");
    std::fs::create_dir_all(&dir)?;
    let lock = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join("hook.lock"))?;
    lock.lock()?;
    Ok(lock)
}

fn answer(dialect: Dialect, config: Option<PathBuf>, agent: &str) -> CliResult {
    let mut input = String::new();
    std::io::stdin().read_to_string(&mut input)?;
    let event: Value = serde_json::from_str(&input).map_err(|error| {
        format!("fourfold: the hook event is not JSON ({error}); the tool call is blocked")
    })?;
    let name = event
        .get("hook_event_name")
        .and_then(Value::as_str)
        .ok_or("fourfold: the hook event has no `hook_event_name`; the tool call is blocked")?;
    let config = config_path(dialect, config);
    let _turn = take_turn(&config)?;
    let fourfold = Fourfold::from_config(&config).map_err(|error| {
        format!(
            "fourfold: cannot load `{}` ({error}); the tool call is blocked",
            config.display()
        )
    })?;
    let task = event.get("session_id").and_then(Value::as_str);
    let session = fourfold.session(agent, task);
    let outcome = match name {
        name if name == dialect.before_tool() => {
            pre_tool_use(dialect, &session, &event).map(|answer| {
                println!("{answer}");
            })
        }
        name if name == dialect.after_tool() => {
            session.act(post_tool_use(&event));
            Ok(())
        }
        other => {
            session.act(ActionEvent {
                tool: format!("{}:{other}", dialect.prefix()),
                arguments_json: event.to_string(),
                result_digest: None,
                duration_ns: None,
                error: None,
            });
            Ok(())
        }
    };
    session.end(None);
    if let Some(tracer) = fourfold.tracer() {
        tracer.close()?;
    }
    outcome?;
    Ok(ExitCode::SUCCESS)
}

/// The request a Claude Code tool call makes.
fn request_of(dialect: Dialect, agent: &str, event: &Value) -> Result<Request, String> {
    let tool = event
        .get("tool_name")
        .and_then(Value::as_str)
        .ok_or("fourfold: a tool event without `tool_name`; the tool call is blocked")?;
    let input = event.get("tool_input").cloned().unwrap_or(json!({}));
    // The first of `keys` that the input has (tools have renamed their arguments over versions).
    let field = |keys: &[&str]| -> Result<String, String> {
        keys.iter()
            .find_map(|key| input.get(*key).and_then(Value::as_str))
            .map(str::to_string)
            .ok_or_else(|| {
                format!(
                    "fourfold: `{tool}` without `tool_input.{}`; the tool call is blocked",
                    keys[0]
                )
            })
    };
    let mut request = match (dialect, tool) {
        (Dialect::ClaudeCode, "Bash") => Request::run(agent, field(&["command"])?),
        (Dialect::ClaudeCode, "Read") => Request::read(agent, field(&["file_path"])?),
        (Dialect::ClaudeCode, "Write" | "Edit" | "MultiEdit") => {
            Request::write(agent, field(&["file_path"])?)
        }
        (Dialect::ClaudeCode, "NotebookEdit") => Request::write(agent, field(&["notebook_path"])?),
        (Dialect::ClaudeCode, "WebFetch") => Request::net(agent, field(&["url"])?),
        (Dialect::GeminiCli, "run_shell_command") => Request::run(agent, field(&["command"])?),
        (Dialect::GeminiCli, "read_file") => {
            Request::read(agent, field(&["file_path", "absolute_path", "path"])?)
        }
        (Dialect::GeminiCli, "write_file" | "replace") => {
            Request::write(agent, field(&["file_path", "absolute_path", "path"])?)
        }
        _ => Request::tool(agent, tool, input),
    };
    request.cwd = event.get("cwd").and_then(Value::as_str).map(str::to_string);
    Ok(request)
}

fn pre_tool_use(
    dialect: Dialect,
    session: &fourfold::AgentSession,
    event: &Value,
) -> Result<Value, String> {
    let request = request_of(dialect, session.agent(), event)?;
    let (decision, reason) = match session.guard(request) {
        Ok(decision) => ("allow", decision.reason),
        Err(SessionError::Pending(decision)) => ("ask", decision.reason),
        Err(SessionError::Denied(decision)) => ("deny", decision.reason),
        // Stale context, a budget, a failed store: every other answer blocks the call.
        Err(other) => ("deny", other.to_string()),
    };
    Ok(match dialect {
        Dialect::ClaudeCode => json!({
            "hookSpecificOutput": {
                "hookEventName": "PreToolUse",
                "permissionDecision": decision,
                "permissionDecisionReason": format!("fourfold: {reason}"),
            }
        }),
        // Gemini CLI has allow and deny only: a held call is denied, its approval id in the reason.
        Dialect::GeminiCli => json!({
            "decision": if decision == "allow" { "allow" } else { "deny" },
            "reason": format!("fourfold: {reason}"),
        }),
    })
}

/// The action a `PostToolUse` event reports.
fn post_tool_use(event: &Value) -> ActionEvent {
    let response = event.get("tool_response");
    let error = response.and_then(|response| {
        response
            .get("error")
            .and_then(Value::as_str)
            .map(str::to_string)
            .or_else(|| {
                (response.get("is_error").and_then(Value::as_bool) == Some(true))
                    .then(|| "the tool reported an error".to_string())
            })
    });
    ActionEvent {
        tool: event
            .get("tool_name")
            .and_then(Value::as_str)
            .unwrap_or("unknown")
            .to_string(),
        arguments_json: event
            .get("tool_input")
            .map(Value::to_string)
            .unwrap_or_else(|| "{}".into()),
        result_digest: response.map(|response| {
            blake3::hash(response.to_string().as_bytes()).to_hex()[..16].to_string()
        }),
        duration_ns: None,
        error,
    }
}
