//! `fourfold mcp gateway`: every `tools/call` of an upstream MCP server, through the policy.
//!
//! The gateway starts the upstream server as a child process (an MCP client over its stdio, with
//! the official SDK), and serves the MCP client on its own stdio: `tools/list` is the upstream's,
//! unchanged; each `tools/call` is first `session.guard` of the tool call (the tool's name, its
//! arguments as the request's arguments). An allowed call goes through; a denied one returns a tool
//! error naming the rule; a call a review gate holds waits for a reviewer up to `--wait-seconds`, or
//! fails at once with the approval id. Every call is traced with its arguments, the upstream's
//! latency and its error.
//!
//! INVARIANT: fail closed: a call the gateway cannot judge (a failed store, a policy error) is
//! refused, never passed through.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use fourfold::{ActionEvent, AgentSession, Fourfold, Request, SessionError};
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, ListToolsResult,
    PaginatedRequestParams, ServerCapabilities, ServerConfig,
};
use rmcp::service::{Peer, RequestContext, RoleClient, RoleServer};
use rmcp::transport::TokioChildProcess;
use rmcp::{ErrorData, ServerHandler, ServiceExt};

use crate::CliResult;

pub(crate) fn run(config: &Path, agent: &str, wait_seconds: u64, upstream: &[String]) -> CliResult {
    let Some((program, args)) = upstream.split_first() else {
        return Err("give the upstream server's command after `--`".into());
    };
    let fourfold = Fourfold::from_config(config)?;
    let session = Arc::new(fourfold.session(agent, None));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let mut command = tokio::process::Command::new(program);
        command.args(args);
        let upstream = ().serve(TokioChildProcess::new(command)?).await?;
        let gateway = Gateway {
            upstream: upstream.peer().clone(),
            session: Arc::clone(&session),
            wait: (wait_seconds > 0).then(|| Duration::from_secs(wait_seconds)),
        };
        let running = gateway.serve(rmcp::transport::stdio()).await?;
        running.waiting().await?;
        upstream.cancel().await?;
        Ok::<(), Box<dyn std::error::Error>>(())
    })?;
    super::mcp_cmd::shut_down(&fourfold, Some(session))?;
    Ok(ExitCode::SUCCESS)
}

#[derive(Clone)]
struct Gateway {
    upstream: Peer<RoleClient>,
    session: Arc<AgentSession>,
    wait: Option<Duration>,
}

fn refused(message: String) -> CallToolResponse {
    CallToolResult::error(vec![ContentBlock::text(message)]).into()
}

impl Gateway {
    /// The policy's answer for a call, on a blocking thread (waiting for a reviewer blocks).
    async fn judge(&self, request: Request) -> Result<(), String> {
        let session = Arc::clone(&self.session);
        let wait = self.wait;
        let judged = tokio::task::spawn_blocking(move || match wait {
            Some(wait) => session.guard_waiting(request, wait).map_err(Box::new),
            None => session.guard(request).map_err(Box::new),
        })
        .await;
        let tool = |error: &SessionError| -> String {
            match error {
                SessionError::Denied(decision) => {
                    let rule = decision
                        .rule
                        .as_ref()
                        .map_or("no rule allows it".to_string(), |rule| format!("rule `{}`", rule.id));
                    format!("fourfold denied this call ({rule}): {}", decision.reason)
                }
                SessionError::Pending(decision) => format!(
                    "fourfold holds this call for review: approval `{}` is pending ({}); once it is approved (`fourfold approvals approve`), call again",
                    decision.approval_id.as_deref().unwrap_or(""),
                    decision.reason
                ),
                other => format!("fourfold refused this call: {other}"),
            }
        };
        match judged {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(error)) => Err(tool(&error)),
            Err(join) => Err(format!(
                "fourfold refused this call: the check failed ({join})"
            )),
        }
    }
}

impl ServerHandler for Gateway {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build()).with_instructions(
            "The tools of an upstream MCP server, each call checked by fourfold's policy and recorded in its trace.",
        )
    }

    async fn list_tools(
        &self,
        request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        self.upstream
            .list_tools(request)
            .await
            .map_err(|error| ErrorData::internal_error(format!("upstream server: {error}"), None))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let name = request.name.to_string();
        let arguments = serde_json::Value::Object(request.arguments.clone().unwrap_or_default());
        let record = |duration: Option<Duration>, error: Option<String>| {
            self.session.act(ActionEvent {
                tool: name.clone(),
                arguments_json: arguments.to_string(),
                result_digest: None,
                duration_ns: duration.map(|duration| duration.as_nanos() as u64),
                error,
            });
        };
        if let Err(message) = self
            .judge(Request::tool(
                self.session.agent(),
                name.as_str(),
                arguments.clone(),
            ))
            .await
        {
            record(None, Some(message.clone()));
            return Ok(refused(message));
        }
        let started = Instant::now();
        match self.upstream.call_tool(request).await {
            Ok(result) => {
                let error =
                    (result.is_error == Some(true)).then(|| "the upstream tool failed".to_string());
                record(Some(started.elapsed()), error);
                Ok(result.into())
            }
            Err(error) => {
                record(Some(started.elapsed()), Some(error.to_string()));
                Err(ErrorData::internal_error(
                    format!("upstream server: {error}"),
                    None,
                ))
            }
        }
    }
}
