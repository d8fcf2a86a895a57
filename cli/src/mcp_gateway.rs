//! `fourfold mcp gateway`: every `tools/call` of an upstream MCP server, through the policy.
//!
//! The gateway starts the upstream server as a child process (an MCP client over its stdio, with
//! the official SDK), or reaches a remote one over streamable HTTP (`--upstream-url`, with a
//! bearer token from the environment), and serves the MCP client on its own stdio: `tools/list` is the upstream's,
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
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::transport::{StreamableHttpClientTransport, TokioChildProcess};
use rmcp::{ErrorData, ServerHandler, ServiceExt};

use crate::CliResult;

/// Where the gateway's upstream server is.
pub(crate) enum Upstream {
    /// A command (and its arguments) to start, spoken to over its stdio.
    Command(Vec<String>),
    /// A streamable HTTP endpoint, with the bearer token to send, if any, and the certificate
    /// authorities to trust instead of the system's, if any.
    Remote {
        url: String,
        token: Option<String>,
        roots: Option<Vec<reqwest::Certificate>>,
    },
}

impl Upstream {
    /// A remote upstream at `url` (`http://` or `https://`), with the token held by the
    /// environment variable `token_env`, if given: unset or empty is an error, not no token.
    /// With `ca_file`, an https:// upstream's certificate must chain to one of the PEM
    /// certificates in it (and only to those); a file without one is an error.
    pub(crate) fn remote(
        url: &str,
        token_env: Option<String>,
        ca_file: Option<&Path>,
    ) -> Result<Upstream, Box<dyn std::error::Error>> {
        let https = match url.split_once("://") {
            Some((scheme @ ("http" | "https"), rest)) if !rest.is_empty() => scheme == "https",
            _ => {
                return Err(
                    format!("--upstream-url `{url}`: give an http:// or https:// URL").into(),
                )
            }
        };
        let token = token_env
            .map(|var| super::mcp_cmd::token_from_env("--upstream-token-env", &var))
            .transpose()?;
        let roots = ca_file
            .map(|path| {
                if !https {
                    return Err(format!(
                        "--upstream-ca-file: `{url}` is not an https:// URL"
                    ));
                }
                let pem = std::fs::read(path)
                    .map_err(|error| format!("--upstream-ca-file `{}`: {error}", path.display()))?;
                match reqwest::Certificate::from_pem_bundle(&pem) {
                    Ok(roots) if !roots.is_empty() => Ok(roots),
                    Ok(_) => Err(format!(
                        "--upstream-ca-file `{}`: no PEM certificate in it",
                        path.display()
                    )),
                    Err(error) => Err(format!("--upstream-ca-file `{}`: {error}", path.display())),
                }
            })
            .transpose()?;
        Ok(Upstream::Remote {
            url: url.to_string(),
            token,
            roots,
        })
    }
}

/// The HTTP client for an upstream whose certificate chains to `roots` only: as rmcp's own
/// default client (no idle connections kept, redirects followed only within the origin, at most
/// ten), with the roots in place of the system's.
fn client_trusting(
    roots: Vec<reqwest::Certificate>,
) -> Result<reqwest::Client, Box<dyn std::error::Error>> {
    let redirects = reqwest::redirect::Policy::custom(|attempt| {
        let same_origin = attempt
            .previous()
            .first()
            .is_some_and(|first| first.origin() == attempt.url().origin());
        if attempt.previous().len() > MAX_REDIRECTS {
            attempt.error("too many redirects")
        } else if same_origin {
            attempt.follow()
        } else {
            attempt.stop()
        }
    });
    Ok(reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .redirect(redirects)
        .tls_certs_only(roots)
        .build()?)
}

/// Redirects an upstream request may follow, as rmcp's default client.
const MAX_REDIRECTS: usize = 10;

pub(crate) fn run(config: &Path, agent: &str, wait_seconds: u64, upstream: Upstream) -> CliResult {
    if let Upstream::Command(command) = &upstream {
        if command.is_empty() {
            return Err("give the upstream server's command after `--`".into());
        }
    }
    let fourfold = Fourfold::from_config(config)?;
    let session = Arc::new(fourfold.session(agent, None));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let upstream = match upstream {
            Upstream::Command(command) => {
                let (program, args) = command.split_first().ok_or("no upstream command")?;
                let mut command = tokio::process::Command::new(program);
                command.args(args);
                ().serve(TokioChildProcess::new(command)?).await?
            }
            Upstream::Remote { url, token, roots } => {
                // reqwest's rustls carries no crypto provider of its own here: use ring's, as
                // the OTLP sink does (a provider installed already is kept).
                let _ = rustls::crypto::ring::default_provider().install_default();
                let mut config = StreamableHttpClientTransportConfig::with_uri(url.as_str());
                if let Some(token) = token {
                    config = config.auth_header(token);
                }
                let transport = match roots {
                    Some(roots) => {
                        StreamableHttpClientTransport::with_client(client_trusting(roots)?, config)
                    }
                    None => StreamableHttpClientTransport::from_config(config),
                };
                ().serve(transport)
                    .await
                    .map_err(|error| format!("upstream {url}: {error}"))?
            }
        };
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
