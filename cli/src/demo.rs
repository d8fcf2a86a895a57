//! `fourfold demo`: a small fleet of agents, driven by a scripted model, governed by all four
//! controls on the embedded default (the policy and documents under `examples/fleet/`).
//!
//! - `coder` fixes the login flow: it asks for the current auth docs, writes in its scope, and is
//!   denied the `.env` file and a module outside its task (permission);
//! - `releaser` pushes to `main`: a review gate holds the push until `alice` approves it;
//! - `integrator` writes the orders client from the API docs, which change mid-run: the
//!   `context-fresh` gate holds the write until it re-reads (stale-context); its test run then
//!   fails although everything was allowed and current (model);
//! - `researcher` summarises the docs with model calls until its token budget stops it (budget).
//!
//! The model is scripted (no network, no keys); its tokens are counted exactly in `o200k_base`
//! and priced from the built-in LiteLLM table. The demo writes the trace file, reads it back, and
//! prints each run's summary and diagnosis.

use std::error::Error;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use fourfold::context::ContextStore;
use fourfold::cost::{count, femtos_to_micros, Budget, CostMeter, Scope, TokenCounts};
use fourfold::trace::{self, explain, Durability, SpanKind, TraceFileSink, TraceReader, Tracer};
use fourfold::{ActionEvent, AgentSession, Fourfold, Policy, Request, SessionError};

const POLICY: &str = include_str!("../../examples/fleet/policy.toml");
const DOCS: [(&str, &str); 4] = [
    (
        "docs/auth.md",
        include_str!("../../examples/fleet/docs/auth.md"),
    ),
    (
        "docs/orders-api.md",
        include_str!("../../examples/fleet/docs/orders-api.md"),
    ),
    (
        "docs/releasing.md",
        include_str!("../../examples/fleet/docs/releasing.md"),
    ),
    (
        "legacy/orders-api.md",
        include_str!("../../examples/fleet/legacy/orders-api.md"),
    ),
];
const ORDERS_API_V2: &str = include_str!("../../examples/fleet/orders-api-v2.md");
/// A runbook under `secrets/`, which the policy's `no-secrets` rule keeps from every agent: the
/// store holds it, and the coder's ask, which it matches, is not served it.
const SECRET_RUNBOOK: (&str, &str) = (
    "secrets/login-keys.md",
    "# Login keys\n\n## Logging a user in: the signing key\n\nA user's session token is signed with the \
     key in vault path `kv/auth/signing`; rotate it with `vault write kv/auth/signing`.\n",
);

/// The model every agent calls: scripted, priced as this model.
const MODEL: &str = "gpt-4o";
/// The workspace the policy governs; it need not exist.
const ROOT: &str = "/srv/shop";

/// Runs the demo, writing its trace under `out` (default `fourfold-demo/`).
pub fn run(out: Option<PathBuf>) -> Result<ExitCode, Box<dyn Error>> {
    let out = out.unwrap_or_else(|| PathBuf::from("fourfold-demo"));
    std::fs::create_dir_all(&out)?;
    let trace_path = out.join("demo.trace");
    for stale in [trace_path.clone(), trace::head_path(&trace_path)] {
        if stale.exists() {
            std::fs::remove_file(stale)?;
        }
    }
    let tracer = Tracer::builder()
        .sink(TraceFileSink::open(&trace_path, Durability::default())?)
        .build()?;
    let cost = CostMeter::builder().savings_model(MODEL).budget(
        Budget::tokens(Scope::Agent("researcher".into()))
            .soft(2_000.0)
            .hard(3_000.0),
    );
    let fourfold = Fourfold::builder()
        .policy(Policy::builder_from_toml(POLICY)?.root(ROOT))
        .tracer(tracer)
        .context(ContextStore::builder().archive("legacy/"))
        .cost(cost)
        .build()?;
    let context = fourfold.context().ok_or("the demo needs a context store")?;
    for (key, text) in DOCS.into_iter().chain([SECRET_RUNBOOK]) {
        context.put(key, text)?;
    }
    println!("fourfold demo: four agents, one policy, one trace ({MODEL} scripted, no network)\n");

    coder(&fourfold)?;
    releaser(&fourfold)?;
    integrator(&fourfold)?;
    researcher(&fourfold)?;

    let tracer = fourfold.tracer().ok_or("the demo needs a tracer")?;
    tracer.flush()?;
    summarize(&fourfold, &trace_path)?;
    let report_path = out.join("report.html");
    crate::report_cmd::write_report(&trace_path, &report_path)?;
    println!("  the report is {}", report_path.display());
    Ok(ExitCode::SUCCESS)
}

/// The scripted model call: counts the prompt and the reply in `o200k_base`, records the usage.
fn call_model(session: &AgentSession, prompt: &str, reply: &str) -> Result<(), Box<dyn Error>> {
    let _span = session.span(MODEL, SpanKind::LlmCall);
    let counts = TokenCounts {
        input: count(MODEL, prompt)?.tokens,
        output: count(MODEL, reply)?.tokens,
        ..TokenCounts::default()
    };
    session.guard(Request::tool(
        session.agent(),
        "llm",
        serde_json::json!({ "model": MODEL }),
    ))?;
    session.record_usage(MODEL, counts)?;
    Ok(())
}

fn say(agent: &str, what: impl std::fmt::Display) {
    println!("  {agent:<10} {what}");
}

/// Guards `request` and prints what came of it.
fn try_guard(session: &AgentSession, request: Request, what: &str) -> bool {
    match session.guard(request) {
        Ok(decision) => {
            let rule = decision.rule.map(|rule| rule.id).unwrap_or_default();
            say(session.agent(), format!("ALLOW   {what} (rule `{rule}`)"));
            true
        }
        Err(error) => {
            let label = match &error {
                SessionError::Pending(_) => "PENDING",
                SessionError::StaleContext { .. } => "STALE  ",
                SessionError::BudgetExceeded(_) => "BUDGET ",
                _ => "DENY   ",
            };
            say(session.agent(), format!("{label} {what}: {error}"));
            false
        }
    }
}

fn act(session: &AgentSession, tool: &str, arguments: serde_json::Value, error: Option<&str>) {
    session.act(ActionEvent {
        tool: tool.into(),
        arguments_json: arguments.to_string(),
        result_digest: None,
        duration_ns: None,
        error: error.map(str::to_string),
    });
}

fn coder(fourfold: &Fourfold) -> Result<(), Box<dyn Error>> {
    let session = fourfold.session("coder", Some("T-12"));
    let step = session.span("fix the login flow", SpanKind::Step);
    let answer = session.ask("how do I log a user in", 90)?;
    for hit in &answer.hits {
        say(
            "coder",
            format!(
                "READ    {} [{}] v{}, {} tokens (whole files: {})",
                hit.pointer,
                hit.heading_path.join(" > "),
                hit.version,
                hit.tokens,
                answer.tokens_baseline
            ),
        );
    }
    if answer.withheld > 0 {
        say(
            "coder",
            format!(
                "WITHHELD {} matching document(s): the policy does not let coder read them",
                answer.withheld
            ),
        );
    }
    call_model(
        &session,
        "Fix the login flow. Docs: auth::login(credentials)...",
        "Edit src/auth/login.rs to build Credentials before calling auth::login.",
    )?;
    session.decide(
        "edit src/auth/login.rs",
        "the docs say login takes a Credentials value",
        &["keep the two-argument call"],
    );
    if try_guard(
        &session,
        Request::write("coder", "src/auth/login.rs"),
        "write src/auth/login.rs",
    ) {
        act(
            &session,
            "edit",
            serde_json::json!({ "path": "src/auth/login.rs" }),
            None,
        );
    }
    try_guard(&session, Request::read("coder", ".env"), "read .env");
    try_guard(
        &session,
        Request::write("coder", "src/billing/invoice.rs"),
        "write src/billing/invoice.rs",
    );
    drop(step);
    session.end(None);
    Ok(())
}

fn releaser(fourfold: &Fourfold) -> Result<(), Box<dyn Error>> {
    let session = fourfold.session("releaser", Some("T-13"));
    let push = Request::run("releaser", "git push origin main");
    if let Err(SessionError::Pending(decision)) = session.guard(push.clone()) {
        let approval_id = decision.approval_id.unwrap_or_default();
        say(
            "releaser",
            format!(
                "PENDING run `git push origin main`: approval `{approval_id}` waits for a reviewer"
            ),
        );
        fourfold
            .policy()
            .approve(&approval_id, "alice", "release notes reviewed")?;
        say(
            "alice",
            format!("APPROVE `{approval_id}` (release notes reviewed)"),
        );
    }
    if try_guard(&session, push, "run `git push origin main`") {
        act(
            &session,
            "bash",
            serde_json::json!({ "command": "git push origin main" }),
            None,
        );
    }
    session.end(None);
    Ok(())
}

fn integrator(fourfold: &Fourfold) -> Result<(), Box<dyn Error>> {
    let session = fourfold.session("integrator", Some("T-14"));
    let answer = session.ask("how do I create an orders API client", 90)?;
    for hit in &answer.hits {
        say(
            "integrator",
            format!(
                "READ    {} [{}] v{}",
                hit.pointer,
                hit.heading_path.join(" > "),
                hit.version
            ),
        );
    }
    call_model(
        &session,
        "Write the orders client. Docs: OrdersClient::new(base_url, api_key)...",
        "Use OrdersClient::new(base_url, api_key) in src/orders/client.rs.",
    )?;
    session.decide(
        "write src/orders/client.rs with OrdersClient::new",
        "the orders API docs show OrdersClient::new",
        &[],
    );
    // The API team publishes release 2.0 of the docs while the agent works.
    let context = fourfold.context().ok_or("the demo needs a context store")?;
    context.put("docs/orders-api.md", ORDERS_API_V2)?;
    say(
        "docs-bot",
        "PUT     docs/orders-api.md v2 (API keys retired, OrdersClient::new is gone)",
    );
    let write = Request::write("integrator", "src/orders/client.rs");
    if !try_guard(&session, write.clone(), "write src/orders/client.rs") {
        for section in session.reread()? {
            say(
                "integrator",
                format!(
                    "REREAD  {} v{}: {}",
                    section.pointer(),
                    section.version,
                    first_line(&section.text)
                ),
            );
        }
        call_model(
            &session,
            "The docs changed: OrdersClient::builder()...",
            "Use OrdersClient::builder().base_url(url).token(token).build().",
        )?;
        session.decide(
            "write src/orders/client.rs with the builder",
            "release 2.0 retired OrdersClient::new",
            &["keep OrdersClient::new"],
        );
        if try_guard(&session, write, "write src/orders/client.rs") {
            act(
                &session,
                "edit",
                serde_json::json!({ "path": "src/orders/client.rs" }),
                None,
            );
        }
    }
    if try_guard(
        &session,
        Request::run("integrator", "cargo test -p orders"),
        "run `cargo test -p orders`",
    ) {
        let error = "test client::lists_orders failed: expected 50 orders, got 49";
        act(
            &session,
            "bash",
            serde_json::json!({ "command": "cargo test -p orders" }),
            Some(error),
        );
        say(
            "integrator",
            format!("FAILED  cargo test -p orders: {error}"),
        );
    }
    session.end(None);
    Ok(())
}

fn researcher(fourfold: &Fourfold) -> Result<(), Box<dyn Error>> {
    let session = fourfold.session("researcher", Some("T-15"));
    let summary_prompt = DOCS
        .iter()
        .map(|(_, text)| *text)
        .collect::<Vec<_>>()
        .join("\n");
    for round in 1.. {
        let estimate = TokenCounts {
            input: count(MODEL, &summary_prompt)?.tokens,
            output: 400,
            ..TokenCounts::default()
        };
        let reservation = match session.reserve(MODEL, estimate) {
            Ok(reservation) => reservation,
            Err(error) => {
                say(
                    "researcher",
                    format!("BUDGET  model call {round} refused before it was made: {error}"),
                );
                break;
            }
        };
        let reply = "The shop's docs cover login, the orders API and releases. ".repeat(4);
        let actual = TokenCounts {
            input: count(MODEL, &summary_prompt)?.tokens,
            output: count(MODEL, &reply)?.tokens,
            ..TokenCounts::default()
        };
        let record = reservation.commit(actual)?;
        say(
            "researcher",
            format!(
                "MODEL   call {round}: {} in / {} out tokens, ${:.6}",
                actual.input,
                actual.output,
                record.micros() as f64 / 1e6
            ),
        );
        if round > 20 {
            break;
        }
    }
    session.end(None);
    Ok(())
}

fn first_line(text: &str) -> String {
    let line = text
        .lines()
        .find(|line| !line.trim().is_empty() && !line.starts_with('#'))
        .unwrap_or("");
    line.chars().take(90).collect()
}

/// `1 action`, `2 actions`.
fn counted(n: u64, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// Reads the trace back and prints each run's summary and diagnosis.
fn summarize(fourfold: &Fourfold, trace_path: &Path) -> Result<(), Box<dyn Error>> {
    let runs = TraceReader::open(trace_path)?.runs()?;
    println!("\nDiagnosis (read back from the trace):\n");
    let mut n_verdicts = 0;
    for run in &runs.runs {
        let explanation = explain(run);
        let totals = &explanation.totals;
        let denied = totals.gates.get("denied").copied().unwrap_or(0);
        println!(
            "  {} ({}, task {}): {} ({} failed), {} denied, {}, {} in / {} out tokens, context {} tokens served ({} in their files whole)",
            explanation.agent_id,
            explanation.run_id,
            explanation.task_id.as_deref().unwrap_or("-"),
            counted(totals.n_actions as u64, "action"),
            totals.n_failed_actions,
            denied,
            counted(totals.cost.n_calls as u64, "model call"),
            totals.cost.input_tokens,
            totals.cost.output_tokens,
            totals.context_tokens_served,
            totals.context_tokens_baseline,
        );
        for diagnosis in &explanation.diagnoses {
            n_verdicts += 1;
            println!("    {:<14} {}", diagnosis.verdict.name(), diagnosis.detail);
        }
    }
    if let Some(cost) = fourfold.cost() {
        let report = cost.report();
        println!(
            "\n  fleet: {} model calls, {} tokens in / {} out, ${:.6} spent; {} tokens (${:.6}) saved by serving sections instead of whole files",
            report.total.calls,
            report.total.input_tokens,
            report.total.output_tokens,
            femtos_to_micros(report.total.spent_femtos) as f64 / 1e6,
            report.total.saved_tokens,
            femtos_to_micros(report.total.saved_femtos) as f64 / 1e6,
        );
    }
    println!("  tokens: o200k_base (exact for {MODEL}); prices: the built-in LiteLLM table; savings against reading the served sections' files whole");
    println!(
        "\n  {n_verdicts} verdicts; the trace is {}",
        trace_path.display()
    );
    println!("  see it with: fourfold trace show {0} | fourfold trace explain {0} | fourfold trace verify {0}", trace_path.display());
    Ok(())
}
