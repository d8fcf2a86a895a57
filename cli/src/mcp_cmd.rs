//! `fourfold mcp serve`: the ContextStore as an MCP server over stdio, for MCP clients and coding
//! agents. The protocol is the official Rust SDK's (`rmcp`), not hand-written JSON-RPC.
//!
//! One server process is one client's session: one governed `AgentSession` (one traced run), whose
//! context session remembers what it served, so a section asked for again unchanged comes back as
//! a pointer. Tools: `context_ask`, `context_get_section`, `context_changed_since` and
//! `context_record` (guarded by the policy as the tool `context_record`). Every call is traced; the
//! tokens served against the baseline are priced as savings when the config names a
//! `savings_model`. With a snapshot folder configured, each tool call first takes in what other
//! processes wrote there (`ContextStore::refresh`), such as `fourfold context ingest`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Args, Subcommand};
use fourfold::context::SectionRead;
use fourfold::{ActionEvent, AgentSession, Fourfold, SessionError};
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{CallToolResult, ContentBlock, ServerCapabilities, ServerConfig};
use rmcp::{schemars, tool, tool_handler, tool_router, ErrorData, ServerHandler, ServiceExt};
use serde::Deserialize;
use serde_json::json;

use crate::CliResult;

#[derive(Args)]
pub(crate) struct McpArgs {
    #[command(subcommand)]
    command: McpCommand,
}

#[derive(Subcommand)]
enum McpCommand {
    /// Serve the context store over MCP on stdio.
    Serve {
        /// The `fourfold.toml` (its `[context]` section is required).
        #[arg(long)]
        config: PathBuf,
        /// Ingest this folder into the store before serving.
        #[arg(long)]
        docs: Option<PathBuf>,
        /// Which files of `--docs` to ingest.
        #[arg(long = "glob", default_value = "**/*.md")]
        globs: Vec<String>,
        /// The folder the documents of `--docs` are keyed under (`docs` keys its `auth.md`
        /// `docs/auth.md`). Default: the folder's path under the policy's root when it lies
        /// there, so that the keys are the paths the policy's `read` rules name; otherwise
        /// none (keys relative to the folder).
        #[arg(long = "docs-prefix", requires = "docs", value_name = "PREFIX")]
        docs_prefix: Option<String>,
        /// The agent the policy and the trace see.
        #[arg(long, default_value = "mcp-client")]
        agent: String,
        /// Serve streamable HTTP at this loopback address (`127.0.0.1:8765`, path `/mcp`) instead
        /// of stdio; each MCP session is its own traced run.
        #[arg(long)]
        http: Option<std::net::SocketAddr>,
        /// With `--http`: require `Authorization: Bearer <token>` on every request, the token
        /// read from this environment variable (never from the command line, where other users
        /// of the machine can read it).
        #[arg(long, requires = "http", value_name = "VAR")]
        auth_token_env: Option<String>,
        /// With `--http`: a browser origin allowed to call the server besides the server's own
        /// (`http://localhost:6274`, say, for an inspector). Requests from any other origin are
        /// refused; requests without an `Origin` header (every non-browser client) are served.
        #[arg(long = "allow-origin", requires = "http", value_name = "ORIGIN")]
        allowed_origins: Vec<String>,
    },
    /// Put every tool call of an upstream MCP server through the policy: start the server given
    /// after `--` (or reach the one at `--upstream-url`), offer its tools unchanged, pass allowed
    /// calls through, refuse denied ones with the rule, and hold gated ones for a reviewer.
    Gateway {
        /// The `fourfold.toml`.
        #[arg(long)]
        config: PathBuf,
        /// The agent the policy and the trace see.
        #[arg(long, default_value = "mcp-client")]
        agent: String,
        /// How long a call a review gate holds waits for a reviewer, in seconds; 0 fails it at
        /// once with the approval id (approve it, then call again).
        #[arg(long, default_value_t = 0)]
        wait_seconds: u64,
        /// A remote upstream server's streamable HTTP endpoint (`https://host/mcp`), instead of
        /// a command to start.
        #[arg(long = "upstream-url", value_name = "URL", conflicts_with = "upstream")]
        upstream_url: Option<String>,
        /// The environment variable holding the bearer token the upstream URL wants (sent as
        /// `Authorization: Bearer <token>`; never taken on the command line).
        #[arg(
            long = "upstream-token-env",
            value_name = "VAR",
            requires = "upstream_url"
        )]
        upstream_token_env: Option<String>,
        /// A PEM file of the certificate authorities to trust for an https:// upstream URL,
        /// instead of the system's (a private CA).
        #[arg(
            long = "upstream-ca-file",
            value_name = "PEM",
            requires = "upstream_url"
        )]
        upstream_ca_file: Option<PathBuf>,
        /// The upstream server's command and arguments.
        #[arg(last = true, required_unless_present = "upstream_url")]
        upstream: Vec<String>,
    },
}

pub(crate) fn run(args: McpArgs) -> CliResult {
    match args.command {
        McpCommand::Serve {
            config,
            docs,
            globs,
            docs_prefix,
            agent,
            http,
            auth_token_env,
            allowed_origins,
        } => {
            let docs = docs.map(|dir| Docs {
                dir,
                globs,
                prefix: docs_prefix,
            });
            match http {
                Some(address) => {
                    let access = HttpAccess::new(auth_token_env.as_deref(), allowed_origins)?;
                    serve_http(&config, docs.as_ref(), &agent, address, access)
                }
                None => serve(&config, docs.as_ref(), &agent),
            }
        }
        McpCommand::Gateway {
            config,
            agent,
            wait_seconds,
            upstream_url,
            upstream_token_env,
            upstream_ca_file,
            upstream,
        } => {
            let upstream = match upstream_url {
                Some(url) => super::mcp_gateway::Upstream::remote(
                    &url,
                    upstream_token_env,
                    upstream_ca_file.as_deref(),
                )?,
                None => super::mcp_gateway::Upstream::Command(upstream),
            };
            super::mcp_gateway::run(&config, &agent, wait_seconds, upstream)
        }
    }
}

/// What `--docs` ingests: the folder, the globs of its files and the prefix of their keys, if
/// given (else [`docs_prefix`]).
struct Docs {
    dir: PathBuf,
    globs: Vec<String>,
    prefix: Option<String>,
}

/// The controls of `config`, with `docs` ingested into its context store.
fn load(
    config: &std::path::Path,
    docs: Option<&Docs>,
) -> Result<Fourfold, Box<dyn std::error::Error>> {
    let fourfold = Fourfold::from_config(config)?;
    let Some(store) = fourfold.context() else {
        return Err(format!("`{}` has no `[context]` section to serve", config.display()).into());
    };
    if let Some(docs) = docs {
        let globs: Vec<&str> = docs.globs.iter().map(String::as_str).collect();
        let prefix = match &docs.prefix {
            Some(prefix) => prefix.clone(),
            None => docs_prefix(&fourfold.policy().root(), &docs.dir)?,
        };
        // With a snapshot configured, an ingest that changed something saves it, so the next
        // start loads it instead of indexing it again.
        store.ingest_dir_as(&docs.dir, &prefix, &globs, |_| {})?;
    }
    Ok(fourfold)
}

/// The key prefix of `--docs DIR` by default: DIR's path under the policy's `root` when it lies
/// there (`docs` for the workspace's `docs/`), so that a session scoped by the policy, which
/// judges each document at its key as a path under the root, is served what the `read` rules
/// name; none when DIR lies elsewhere (keys relative to DIR, as `--docs-prefix` can change).
fn docs_prefix(root: &str, dir: &std::path::Path) -> Result<String, Box<dyn std::error::Error>> {
    let (Ok(root), Ok(dir)) = (std::fs::canonicalize(root), std::fs::canonicalize(dir)) else {
        // A folder that cannot be resolved is reported by the ingest itself.
        return Ok(String::new());
    };
    let Ok(relative) = dir.strip_prefix(&root) else {
        return Ok(String::new());
    };
    match relative.to_str() {
        Some(relative) => Ok(relative.replace('\\', "/")),
        None => Err(format!(
            "--docs `{}`: its path under the policy's root is not UTF-8; give --docs-prefix",
            dir.display()
        )
        .into()),
    }
}

/// Who may call the HTTP server, besides being on the machine: the bearer token every request
/// must carry, if one is set, and the browser origins allowed besides the server's own.
struct HttpAccess {
    token: Option<Arc<str>>,
    allowed_origins: Vec<String>,
}

impl HttpAccess {
    fn new(
        token_env: Option<&str>,
        allowed_origins: Vec<String>,
    ) -> Result<HttpAccess, Box<dyn std::error::Error>> {
        let token = token_env
            .map(|var| token_from_env("--auth-token-env", var))
            .transpose()?
            .map(|token| Arc::from(token.as_str()));
        Ok(HttpAccess {
            token,
            allowed_origins,
        })
    }
}

/// The token held by the environment variable `var`, which the option `flag` names: unset, empty
/// or not UTF-8 is an error, never no token. Tokens are not taken on the command line, where
/// other users could read them.
pub(crate) fn token_from_env(flag: &str, var: &str) -> Result<String, Box<dyn std::error::Error>> {
    match std::env::var(var) {
        Ok(token) if !token.trim().is_empty() => Ok(token.trim().to_string()),
        Ok(_) => Err(format!("`{flag} {var}`: `{var}` is empty").into()),
        Err(std::env::VarError::NotPresent) => {
            Err(format!("`{flag} {var}`: `{var}` is not set").into())
        }
        Err(std::env::VarError::NotUnicode(_)) => {
            Err(format!("`{flag} {var}`: `{var}` is not UTF-8").into())
        }
    }
}

/// Refuses a request that does not carry the bearer token, with 401, before the MCP service
/// sees it. The comparison takes the same time wherever the tokens differ.
async fn require_token(
    axum::extract::State(token): axum::extract::State<Arc<str>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    use subtle::ConstantTimeEq;
    let presented = request
        .headers()
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .unwrap_or("");
    if bool::from(presented.as_bytes().ct_eq(token.as_bytes())) {
        next.run(request).await
    } else {
        (
            axum::http::StatusCode::UNAUTHORIZED,
            [(axum::http::header::WWW_AUTHENTICATE, "Bearer")],
            "fourfold: this MCP server needs `Authorization: Bearer <token>`\n",
        )
            .into_response()
    }
}

/// Streamable HTTP on a loopback address, until interrupted.
fn serve_http(
    config: &std::path::Path,
    docs: Option<&Docs>,
    agent: &str,
    address: std::net::SocketAddr,
    access: HttpAccess,
) -> CliResult {
    use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
    use rmcp::transport::streamable_http_server::{
        StreamableHttpServerConfig, StreamableHttpService,
    };
    if !address.ip().is_loopback() {
        return Err(format!(
            "`--http {address}` is not a loopback address; the MCP server listens on loopback only"
        )
        .into());
    }
    let fourfold = load(config, docs)?;
    let agent = agent.to_string();
    let sessions = fourfold.clone();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(address).await?;
        let port = listener.local_addr()?.port();
        // rmcp checks the Host header against loopback names (DNS rebinding); the Origin check
        // keeps web pages of other origins from calling the server through the browser.
        let mut allowed_origins = vec![
            format!("http://127.0.0.1:{port}"),
            format!("http://localhost:{port}"),
            format!("http://[::1]:{port}"),
        ];
        allowed_origins.extend(access.allowed_origins);
        let service = StreamableHttpService::new(
            move || {
                Ok(ContextServer {
                    session: Arc::new(sessions.session(&agent, None)),
                })
            },
            Arc::new(LocalSessionManager::default()),
            StreamableHttpServerConfig::default().with_allowed_origins(allowed_origins),
        );
        eprintln!(
            "fourfold: MCP over streamable HTTP at http://{}/mcp{}",
            listener.local_addr()?,
            if access.token.is_some() {
                " (bearer token required)"
            } else {
                ""
            }
        );
        let router = axum::Router::new().nest_service("/mcp", service);
        let router = match access.token {
            Some(token) => router.layer(axum::middleware::from_fn_with_state(token, require_token)),
            None => router,
        };
        axum::serve(listener, router)
            .with_graceful_shutdown(async {
                // Ctrl-C or SIGTERM: stop taking requests, then close the trace cleanly.
                let mut terminate =
                    tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = async {
                        match terminate.as_mut() {
                            Some(terminate) => { terminate.recv().await; }
                            None => std::future::pending::<()>().await,
                        }
                    } => {}
                }
            })
            .await?;
        Ok::<(), Box<dyn std::error::Error>>(())
    })?;
    shut_down(&fourfold, None)?;
    Ok(ExitCode::SUCCESS)
}

/// Ends a server's session, once nothing else holds it, and closes the trace, so that the
/// session's end and every record reach the trace file before the command exits.
pub(crate) fn shut_down(
    fourfold: &Fourfold,
    session: Option<Arc<AgentSession>>,
) -> Result<(), Box<dyn std::error::Error>> {
    if let Some(Ok(session)) = session.map(Arc::try_unwrap) {
        session.end(None);
    }
    if let Some(tracer) = fourfold.tracer() {
        tracer.close()?;
    }
    Ok(())
}

fn serve(config: &std::path::Path, docs: Option<&Docs>, agent: &str) -> CliResult {
    let fourfold = load(config, docs)?;
    let session = Arc::new(fourfold.session(agent, None));
    let server = ContextServer {
        session: Arc::clone(&session),
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let running = server.serve(rmcp::transport::stdio()).await?;
        running.waiting().await?;
        Ok::<(), Box<dyn std::error::Error>>(())
    })?;
    shut_down(&fourfold, Some(session))?;
    Ok(ExitCode::SUCCESS)
}

/// The MCP server: the session's context, as tools (the router is built from the `#[tool]`
/// methods by `tool_router`).
#[derive(Clone)]
struct ContextServer {
    session: Arc<AgentSession>,
}

/// `context_ask`'s arguments.
#[derive(Deserialize, schemars::JsonSchema)]
struct AskParams {
    /// What to look up, in words.
    query: String,
    /// The most tokens of section text to serve (default 2000).
    budget_tokens: Option<u64>,
}

/// `context_get_section`'s arguments.
#[derive(Deserialize, schemars::JsonSchema)]
struct SectionParams {
    /// A section id from `context_ask`.
    section_id: String,
}

/// A section version the client read.
#[derive(Deserialize, schemars::JsonSchema)]
struct Read {
    /// The document's key.
    key: String,
    /// The section's id.
    section_id: String,
    /// The version read.
    version: u64,
}

/// `context_changed_since`'s arguments.
#[derive(Deserialize, schemars::JsonSchema)]
struct ChangedParams {
    /// The section versions read.
    reads: Vec<Read>,
}

/// `context_record`'s arguments.
#[derive(Deserialize, schemars::JsonSchema)]
struct RecordParams {
    /// What the finding is about (`findings/auth`, say); the policy may scope write-backs by it.
    topic: String,
    /// The finding, as markdown.
    text: String,
}

fn json_result(value: serde_json::Value) -> CallToolResult {
    CallToolResult::success(vec![ContentBlock::text(value.to_string())])
}

fn failed(message: impl std::fmt::Display) -> CallToolResult {
    CallToolResult::error(vec![ContentBlock::text(message.to_string())])
}

impl ContextServer {
    /// Runs a tool's `body` on tokio's blocking threads. The server's runtime has one thread,
    /// which every client of `--http` shares, and a tool may wait: on a reranking program (up
    /// to its timeout), on a policy gate's command, on the snapshot folder or PostgreSQL; on
    /// the runtime's thread that wait would hold up every other client's calls.
    async fn off_runtime(
        &self,
        body: impl FnOnce(&ContextServer) -> CallToolResult + Send + 'static,
    ) -> Result<CallToolResult, ErrorData> {
        let server = self.clone();
        tokio::task::spawn_blocking(move || body(&server))
            .await
            .map_err(|error| ErrorData::internal_error(format!("the tool failed: {error}"), None))
    }

    /// Takes in what other processes wrote to the snapshot folder since the last call (an
    /// ingest by `fourfold context ingest`, another server's findings), so that each tool
    /// serves the folder as it is now. A folder that cannot be read fails the call: the failure
    /// to return, if any.
    fn refresh_failure(&self) -> Option<CallToolResult> {
        match self
            .session
            .fourfold()
            .context()
            .map(|store| store.refresh())
        {
            Some(Err(error)) => Some(failed(format!(
                "the context snapshot folder cannot be read: {error}"
            ))),
            _ => None,
        }
    }

    fn record(&self, tool: &str, arguments: serde_json::Value, error: Option<String>) {
        self.session.act(ActionEvent {
            tool: tool.into(),
            arguments_json: arguments.to_string(),
            result_digest: None,
            duration_ns: None,
            error,
        });
    }
}

#[tool_router]
impl ContextServer {
    #[tool(
        description = "The current canonical documentation sections that answer a query, within a token budget, each with its key, heading path, file:line pointer, version and freshness. A section this session was already served, unchanged, comes back as a pointer without its text. `renames` lists old names in the query that the documents say were renamed (old, new, pointer); the search looked for the new names too. `withheld` counts documents that matched but that the policy does not let this client read. `reranked` says a reranking model configured for the server ordered the sections; `rerank_error` says why it did not, when it failed."
    )]
    async fn context_ask(
        &self,
        Parameters(params): Parameters<AskParams>,
    ) -> Result<CallToolResult, ErrorData> {
        self.off_runtime(move |server| server.ask(params)).await
    }

    #[tool(description = "One section, as it is now, by the id `context_ask` gave.")]
    async fn context_get_section(
        &self,
        Parameters(params): Parameters<SectionParams>,
    ) -> Result<CallToolResult, ErrorData> {
        self.off_runtime(move |server| server.get_section(params))
            .await
    }

    #[tool(
        description = "Which of the section versions read are no longer current, with what changed and where the section is now."
    )]
    async fn context_changed_since(
        &self,
        Parameters(params): Parameters<ChangedParams>,
    ) -> Result<CallToolResult, ErrorData> {
        self.off_runtime(move |server| server.changed_since(params))
            .await
    }

    #[tool(
        description = "Write a finding back to the documentation, as the next version of the record of `topic` (kept under `records/`, served like any document). The policy decides whether this client may, by the topic."
    )]
    async fn context_record(
        &self,
        Parameters(params): Parameters<RecordParams>,
    ) -> Result<CallToolResult, ErrorData> {
        self.off_runtime(move |server| server.record_finding(params))
            .await
    }
}

/// The tools' bodies, run by [`ContextServer::off_runtime`].
impl ContextServer {
    fn ask(&self, params: AskParams) -> CallToolResult {
        if let Some(failure) = self.refresh_failure() {
            return failure;
        }
        let budget = params.budget_tokens.unwrap_or(2_000);
        match self.session.ask(&params.query, budget) {
            Ok(answer) => json_result(json!({
                "sections": answer.hits.iter().map(|hit| json!({
                    "key": hit.key,
                    "section_id": hit.section_id,
                    "heading_path": hit.heading_path,
                    "pointer": hit.pointer,
                    "version": hit.version,
                    "freshness": hit.freshness.name(),
                    "tokens": hit.tokens,
                    "already_served": hit.already_served,
                    "text": hit.text,
                })).collect::<Vec<_>>(),
                "renames": answer.renames,
                "withheld": answer.withheld,
                "reranked": answer.reranked,
                "rerank_error": answer.rerank_error,
                "tokens_served": answer.tokens_served,
                "tokens_baseline": answer.tokens_baseline,
            })),
            Err(error) => failed(error),
        }
    }

    fn get_section(&self, params: SectionParams) -> CallToolResult {
        if let Some(failure) = self.refresh_failure() {
            return failure;
        }
        // Only a section of a document this client's agent may be served (the session's scope).
        let section = self.session.get_section(&params.section_id).ok().flatten();
        self.record(
            "context_get_section",
            json!({ "section_id": params.section_id }),
            section.is_none().then(|| "no such section".to_string()),
        );
        match section {
            Some(section) => json_result(json!({
                "key": section.key,
                "section_id": section.id,
                "heading_path": section.heading_path,
                "pointer": section.pointer(),
                "version": section.version,
                "freshness": section.marker.freshness.name(),
                "text": section.text,
            })),
            None => failed(format!("no section `{}`", params.section_id)),
        }
    }

    fn changed_since(&self, params: ChangedParams) -> CallToolResult {
        let reads: Vec<SectionRead> = params
            .reads
            .into_iter()
            .map(|read| SectionRead {
                key: read.key,
                section_id: read.section_id,
                version: read.version,
            })
            .collect();
        let Some(store) = self.session.fourfold().context() else {
            return failed("this server has no context store");
        };
        if let Some(failure) = self.refresh_failure() {
            return failure;
        }
        let changes = store.changed_since(&reads);
        self.record(
            "context_changed_since",
            json!({ "n_reads": reads.len(), "n_changed": changes.len() }),
            None,
        );
        json_result(json!({ "changes": changes }))
    }

    fn record_finding(&self, params: RecordParams) -> CallToolResult {
        // A record appends to the topic's record as the folder has it now.
        if let Some(failure) = self.refresh_failure() {
            return failure;
        }
        // The session asks the policy, writes to the fleet or the snapshot, and records the
        // action.
        match self.session.record_finding(&params.topic, &params.text) {
            Ok(version) => json_result(json!(version)),
            Err(
                refused @ (SessionError::Denied(_)
                | SessionError::Pending(_)
                | SessionError::StaleContext { .. }
                | SessionError::BudgetExceeded(_)),
            ) => failed(format!("fourfold refused context_record: {refused}")),
            Err(SessionError::Missing(_)) => failed("this server has no context store"),
            Err(error) => failed(error),
        }
    }
}

#[tool_handler]
impl ServerHandler for ContextServer {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build()).with_instructions(
            "fourfold's context store: ask for the current canonical documentation instead of rereading files; every answer carries a pointer, a version and a freshness marker.",
        )
    }
}
