//! `Fourfold` and `AgentSession`: the four controls as one system, and one governed run.

use std::cell::RefCell;
use std::sync::{Arc, RwLock};

use fourfold::policy::Policy as CorePolicy;
use fourfold::trace::{Span as CoreSpan, SpanKind};
use fourfold::{
    ActionEvent, AgentSession as CoreSession, DecisionEvent, EventKind, Fourfold as CoreFourfold,
};
use napi::bindgen_prelude::{AsyncTask, Env, Object, Unknown};
use napi_derive::napi;
use serde_json::Value;

use crate::call::{bound_function, ActionArg, Args, BoundCall};
use crate::context::{ask_options, AskOptions, ContextStore, ContextStoreOptions};
use crate::cost::{
    meter_builder, record_json, to_counts, CostMeter, CostMeterOptions, Reservation, TokenCounts,
};
use crate::error::{refusal_line, shield, Fallible, FourfoldError, FOURFOLD_ERROR};
use crate::json::to_json;
use crate::plugin::JsPlugin;
use crate::policy::{decision_line, request_from_args, request_from_parts, Policy, PolicySource};
use crate::task::JsonTask;
use crate::trace::{build_tracer, Tracer, TracerOptions};

/// Where the policy of a `Fourfold` comes from: a file, or TOML text.
#[napi(object)]
pub struct PolicyOptions {
    /// A policy file; its approvals are kept beside it.
    pub file: Option<String>,
    /// Policy TOML text; approvals are kept in memory.
    pub toml: Option<String>,
}

/// The controls of a `Fourfold`; only the policy is required.
#[napi(object)]
pub struct FourfoldOptions {
    /// The policy.
    pub policy: PolicyOptions,
    /// Records every run, decision, action, context and cost event.
    pub trace: Option<TracerOptions>,
    /// Serves context from a store in memory.
    pub context: Option<ContextStoreOptions>,
    /// Which documents a session's asks may serve its agent: `'policy'` (the default) only those
    /// the policy lets it read, `'all'` every one.
    #[napi(ts_type = "'policy' | 'all'")]
    pub context_scope: Option<String>,
    /// Meters and budgets model calls.
    pub cost: Option<CostMeterOptions>,
}

fn install_plugins(
    env: &Env,
    mut builder: fourfold::FourfoldBuilder,
    plugins: Option<Vec<Object>>,
) -> Fallible<fourfold::FourfoldBuilder> {
    for plugin in plugins.iter().flatten() {
        builder = builder.plugin(JsPlugin::from_object(env, plugin)?);
    }
    Ok(builder)
}

/// The four controls of one agent fleet, wired together around one plugin registry. Hands out an
/// `AgentSession` per run.
#[napi]
pub struct Fourfold {
    fourfold: CoreFourfold,
}

#[napi]
impl Fourfold {
    /// Builds the controls the options describe, with JS `plugins` (`{ name, onEvent?, check? }`).
    #[napi(constructor)]
    pub fn new(
        env: Env,
        options: FourfoldOptions,
        plugins: Option<Vec<Object>>,
    ) -> napi::Result<Fourfold> {
        shield(&env, || {
            let policy = match (&options.policy.file, &options.policy.toml) {
                (Some(file), None) => CorePolicy::builder_from_file(std::path::Path::new(file))?,
                (None, Some(toml)) => CorePolicy::builder_from_toml(toml)?,
                _ => {
                    return Err(FourfoldError::invalid(
                        "`policy` needs exactly one of `file` and `toml`",
                    ))
                }
            };
            let mut builder = CoreFourfold::builder().policy(policy);
            if let Some(trace) = &options.trace {
                builder = builder.tracer(build_tracer(trace)?);
            }
            if let Some(context) = options.context {
                builder = builder.context(crate::context::builder(Some(context)));
            }
            if let Some(name) = &options.context_scope {
                let scope = fourfold::session::ContextScope::parse(name, "contextScope")
                    .map_err(FourfoldError::invalid)?;
                builder = builder.context_scope(scope);
            }
            if let Some(cost) = &options.cost {
                builder = builder.cost(meter_builder(cost)?);
            }
            let builder = install_plugins(&env, builder, plugins)?;
            Ok(Fourfold {
                fourfold: builder.build()?,
            })
        })
    }

    /// Builds the controls a `fourfold.toml` describes; relative paths are relative to it.
    #[napi(
        factory,
        ts_args_type = "path: string, options?: { plugins?: Array<object> } | undefined | null"
    )]
    pub fn from_config(env: Env, path: String, options: Option<Object>) -> napi::Result<Fourfold> {
        shield(&env, || {
            let plugins: Option<Vec<Object>> = match &options {
                Some(options) => options
                    .get("plugins")
                    .map_err(|_| FourfoldError::invalid("`plugins` must be an array of plugins"))?,
                None => None,
            };
            let builder = CoreFourfold::builder_from_config(&path)?;
            let builder = install_plugins(&env, builder, plugins)?;
            Ok(Fourfold {
                fourfold: builder.build()?,
            })
        })
    }

    /// Starts a run of `agent`, on `task` if given: every guard, ask, model call, decision and
    /// action through it is checked and recorded under one run id.
    #[napi]
    pub fn session(
        &self,
        env: Env,
        agent: String,
        task: Option<String>,
    ) -> napi::Result<AgentSession> {
        shield(&env, || {
            let session = self.fourfold.session(&agent, task.as_deref());
            Ok(AgentSession {
                run_id: session.run_id().to_string(),
                agent,
                task,
                session: Arc::new(RwLock::new(Some(session))),
            })
        })
    }

    /// The policy.
    #[napi(getter)]
    pub fn policy(&self) -> Policy {
        Policy::new(PolicySource::Of(self.fourfold.clone()))
    }

    /// The tracer, or `null`.
    #[napi(getter)]
    pub fn tracer(&self) -> Option<Tracer> {
        self.fourfold.tracer().cloned().map(Tracer::wrap)
    }

    /// The context store, or `null`.
    #[napi(getter)]
    pub fn context(&self) -> Option<ContextStore> {
        self.fourfold.context().cloned().map(ContextStore::wrap)
    }

    /// The fleet's shared documents, or `null` unless the config joined the context store to
    /// them (`[context] shared = true` with a PostgreSQL `[store]`).
    #[napi(getter)]
    pub fn shared_documents(&self) -> Option<crate::context::SharedDocuments> {
        crate::context::SharedDocuments::of(&self.fourfold)
    }

    /// The cost meter, or `null`.
    #[napi(getter)]
    pub fn cost(&self) -> Option<CostMeter> {
        self.fourfold.cost().cloned().map(CostMeter::wrap)
    }

    /// How many times a plugin's listener panicked or failed (those are caught, never raised).
    #[napi(getter)]
    pub fn n_plugin_panics(&self) -> i64 {
        self.fourfold.plugins().n_panics() as i64
    }
}

/// A tool call that ran, to record with `act`.
#[napi(object)]
pub struct ActionInput {
    /// The tool or program.
    pub tool: String,
    /// Its arguments (recorded as JSON).
    #[napi(ts_type = "unknown")]
    pub args: Option<Value>,
    /// A digest of the result.
    pub result_digest: Option<String>,
    /// How long it took, in milliseconds.
    pub duration_ms: Option<f64>,
    /// The error it failed with, if it did.
    pub error: Option<String>,
}

fn action_event(action: ActionInput) -> ActionEvent {
    ActionEvent {
        tool: action.tool,
        arguments_json: action
            .args
            .map(|args| args.to_string())
            .unwrap_or_else(|| "{}".to_string()),
        result_digest: action.result_digest,
        duration_ns: action
            .duration_ms
            .filter(|ms| ms.is_finite() && *ms >= 0.0)
            .map(|ms| (ms * 1e6) as u64),
        error: action.error,
    }
}

fn span_kind(kind: &str) -> Fallible<SpanKind> {
    match kind {
        "step" => Ok(SpanKind::Step),
        "llm_call" => Ok(SpanKind::LlmCall),
        "tool_call" => Ok(SpanKind::ToolCall),
        other => Err(FourfoldError::invalid(format!(
            "unknown span kind `{other}`; expected `step`, `llm_call` or `tool_call`"
        ))),
    }
}

type SharedSession = Arc<RwLock<Option<CoreSession>>>;

/// One run of one agent on one task. Every call is checked by the control it belongs to and
/// recorded under the run's id. A refusal throws a `FourfoldError` whose `code` names the control.
#[napi]
pub struct AgentSession {
    run_id: String,
    agent: String,
    task: Option<String>,
    // INVARIANT: `None` once the run ended; every call then fails with a typed error.
    session: SharedSession,
}

fn with_session<T>(
    session_lock: &SharedSession,
    body: impl FnOnce(&CoreSession) -> Fallible<T>,
) -> Fallible<T> {
    let guard = session_lock
        .read()
        .map_err(|_| FourfoldError::new(FOURFOLD_ERROR, "the session's lock is poisoned"))?;
    let session = guard
        .as_ref()
        .ok_or_else(|| FourfoldError::invalid("this session has ended"))?;
    let _inside = InsideCall::enter(session_lock);
    body(session)
}

#[napi]
impl AgentSession {
    /// The agent.
    #[napi(getter)]
    pub fn agent(&self) -> String {
        self.agent.clone()
    }

    /// The task, or `null`.
    #[napi(getter)]
    pub fn task(&self) -> Option<String> {
        self.task.clone()
    }

    /// The run's id, as the trace names it.
    #[napi(getter)]
    pub fn run_id(&self) -> String {
        self.run_id.clone()
    }

    /// A function guarding a tool call of this session (`(action, target, argsJson?, cwd?,
    /// resolveSymlinks?)`, the parts `lib/index.js` reads from the request; its
    /// `session.guard(request)` returns the decision as an object), as its agent, task and run.
    /// It returns the decision when the call may go ahead; otherwise it throws
    /// `FOURFOLD_POLICY_DENIED` (with `ruleId`), `FOURFOLD_GATE_PENDING` (with `approvalId`),
    /// `FOURFOLD_STALE_CONTEXT` (with `changes`) or `FOURFOLD_BUDGET_EXCEEDED`.
    /// Not part of the API (left out of the types).
    #[napi(js_name = "__guardFunction", skip_typescript)]
    pub fn guard_function<'env>(&self, env: &'env Env) -> napi::Result<Unknown<'env>> {
        bound_function(
            env,
            "guard",
            BoundGuard {
                agent: self.agent.clone(),
                session: Arc::clone(&self.session),
            },
        )
    }

    /// Guards the request `n` times in Rust and returns the mean nanoseconds per call: the core's
    /// share of `guard`, for `benches/node/bench.js` to subtract from the time per call from JS.
    /// Not part of the API (left out of the types).
    #[napi(js_name = "__guardRepeatedInRust", skip_typescript)]
    pub fn guard_repeated_in_rust(
        &self,
        env: Env,
        action: String,
        target: Option<String>,
        n: u32,
    ) -> napi::Result<f64> {
        shield(&env, || {
            let action = ActionArg::Name(action);
            let request =
                request_from_parts(self.agent.as_str(), &action, target, None, None, None)?;
            with_session(&self.session, |session| {
                let started = std::time::Instant::now();
                for _ in 0..n {
                    // A refusal is timed like a decision: both are the core's answer.
                    let _ = std::hint::black_box(session.guard(request.clone()));
                }
                Ok(started.elapsed().as_nanos() as f64 / f64::from(n.max(1)))
            })
        })
    }

    /// The context sections that answer `query`, within the budget; searched off the JS thread.
    #[napi(ts_return_type = "Promise<import('./lib/types').Answer>")]
    pub fn ask(&self, query: String, options: AskOptions) -> AsyncTask<JsonTask> {
        let session = Arc::clone(&self.session);
        AsyncTask::new(JsonTask::new(move || {
            let budget = ask_options(&options)?.budget_tokens;
            with_session(&session, |session| to_json(&session.ask(&query, budget)?))
        }))
    }

    /// `ask`, on the JS thread.
    #[napi(ts_return_type = "import('./lib/types').Answer")]
    pub fn ask_sync(&self, env: Env, query: String, options: AskOptions) -> napi::Result<Value> {
        shield(&env, || {
            let budget = ask_options(&options)?.budget_tokens;
            with_session(&self.session, |session| {
                to_json(&session.ask(&query, budget)?)
            })
        })
    }

    /// Re-reads every section this run was served that has changed since, so the
    /// `context-fresh` gate passes again.
    #[napi(ts_return_type = "import('./lib/types').Section[]")]
    pub fn reread(&self, env: Env) -> napi::Result<Value> {
        shield(&env, || {
            with_session(&self.session, |session| to_json(&session.reread()?))
        })
    }

    /// Writes a finding back as the next section of `records/<topic>.md`, served to the other
    /// agents: the policy judges it first as the tool call `context_record` with `{ topic }`
    /// (`FOURFOLD_POLICY_DENIED` without a rule that allows it), and it is shared with the fleet or
    /// saved to the context snapshot when there is one.
    #[napi(ts_return_type = "import('./lib/types').DocVersion")]
    pub fn record_finding(&self, env: Env, topic: String, text: String) -> napi::Result<Value> {
        shield(&env, || {
            with_session(&self.session, |session| {
                to_json(&session.record_finding(&topic, &text)?)
            })
        })
    }

    /// Holds a model call's worst case against the budgets covering this run; throws
    /// `FOURFOLD_BUDGET_EXCEEDED` if it would cross a hard limit.
    #[napi]
    pub fn reserve(
        &self,
        env: Env,
        model: String,
        estimate: TokenCounts,
    ) -> napi::Result<Reservation> {
        shield(&env, || {
            let counts = to_counts(&estimate)?;
            with_session(&self.session, |session| {
                Ok(Reservation::wrap(session.reserve(&model, counts)?))
            })
        })
    }

    /// Records a finished model call's usage: priced, and counted against the budgets.
    #[napi(ts_return_type = "import('./lib/types').CostRecord")]
    pub fn record_usage(
        &self,
        env: Env,
        model: String,
        counts: TokenCounts,
    ) -> napi::Result<Value> {
        shield(&env, || {
            let counts = to_counts(&counts)?;
            with_session(&self.session, |session| {
                record_json(&session.record_usage(&model, counts)?)
            })
        })
    }

    /// Records what the agent chose, why, and what it did not choose.
    #[napi]
    pub fn decide(
        &self,
        env: Env,
        choice: String,
        rationale: String,
        alternatives: Option<Vec<String>>,
    ) -> napi::Result<()> {
        shield(&env, || {
            let alternatives = alternatives.unwrap_or_default();
            let alternatives: Vec<&str> = alternatives.iter().map(String::as_str).collect();
            with_session(&self.session, |session| {
                session.decide(&choice, &rationale, &alternatives);
                Ok(())
            })
        })
    }

    /// Records a tool call that ran: its arguments, result digest, duration and error.
    #[napi]
    pub fn act(&self, env: Env, action: ActionInput) -> napi::Result<()> {
        shield(&env, || {
            with_session(&self.session, |session| {
                session.act(action_event(action));
                Ok(())
            })
        })
    }

    /// Starts a span (`step`, `llm_call` or `tool_call`) under the run; `null` without a tracer.
    #[napi]
    pub fn span(&self, env: Env, name: String, kind: String) -> napi::Result<Option<Span>> {
        shield(&env, || {
            let kind = span_kind(&kind)?;
            with_session(&self.session, |session| {
                Ok(session
                    .span(&name, kind)
                    .map(|span| Span { span: Some(span) }))
            })
        })
    }

    /// Ends the run, with the error it failed with, if any. Later calls throw.
    #[napi]
    pub fn end(&self, env: Env, error: Option<String>) -> napi::Result<()> {
        shield(&env, || {
            if InsideCall::is_inside(&self.session) {
                return Err(FourfoldError::invalid(
                    "the session is inside a call that has not returned (is a plugin ending the \
                     session it is checking?); end it once the call has returned",
                ));
            }
            let mut guard = self.session.write().map_err(|_| {
                FourfoldError::new(FOURFOLD_ERROR, "the session's lock is poisoned")
            })?;
            if let Some(session) = guard.take() {
                session.end(error.as_deref());
            }
            Ok(())
        })
    }

    /// Whether the run has ended.
    #[napi(getter)]
    pub fn ended(&self) -> bool {
        self.session
            .read()
            .map(|guard| guard.is_none())
            .unwrap_or(true)
    }
}

thread_local! {
    /// The sessions (by address) that this thread is inside a call of, so that `end` called from
    /// inside one of them (a plugin's gate check ending the session it checks for) throws at once:
    /// waiting for the call to return would wait for itself.
    static INSIDE_CALLS: RefCell<Vec<usize>> = const { RefCell::new(Vec::new()) };
}

/// Marks this thread as inside a call of a session until dropped, unwinding included.
struct InsideCall(usize);

impl InsideCall {
    fn enter(session: &SharedSession) -> InsideCall {
        let address = Arc::as_ptr(session) as usize;
        INSIDE_CALLS.with(|inside| inside.borrow_mut().push(address));
        InsideCall(address)
    }

    fn is_inside(session: &SharedSession) -> bool {
        let address = Arc::as_ptr(session) as usize;
        INSIDE_CALLS.with(|inside| inside.borrow().contains(&address))
    }
}

impl Drop for InsideCall {
    fn drop(&mut self) {
        INSIDE_CALLS.with(|inside| {
            let mut inside = inside.borrow_mut();
            if let Some(idx) = inside.iter().rposition(|&address| address == self.0) {
                inside.remove(idx);
            }
        });
    }
}

/// What a session's bound guard function calls.
struct BoundGuard {
    agent: String,
    session: SharedSession,
}

impl BoundCall for BoundGuard {
    fn call(&self, args: &Args) -> Fallible<String> {
        let request = request_from_args(self.agent.as_str(), args, 0)?;
        with_session(&self.session, |session| match session.guard(request) {
            Ok(decision) => Ok(decision_line(&decision)),
            Err(error) => refusal_line(error),
        })
    }
}

/// A step, model call or tool call of a run, possibly nested.
#[napi]
pub struct Span {
    // INVARIANT: `None` once ended.
    span: Option<CoreSpan>,
}

impl Span {
    fn live(&self) -> Fallible<&CoreSpan> {
        self.span
            .as_ref()
            .ok_or_else(|| FourfoldError::invalid("this span has ended"))
    }
}

#[napi]
impl Span {
    /// The span's id, unique in its tracer.
    #[napi(getter)]
    pub fn id(&self, env: Env) -> napi::Result<i64> {
        shield(&env, || Ok(self.live()?.id() as i64))
    }

    /// Starts a span nested in this one.
    #[napi]
    pub fn child(&self, env: Env, name: String, kind: String) -> napi::Result<Span> {
        shield(&env, || {
            let kind = span_kind(&kind)?;
            Ok(Span {
                span: Some(self.live()?.child(&name, kind)),
            })
        })
    }

    /// Records a tool call that ran, in this span.
    #[napi]
    pub fn act(&self, env: Env, action: ActionInput) -> napi::Result<()> {
        shield(&env, || {
            self.live()?.record(EventKind::Action(action_event(action)));
            Ok(())
        })
    }

    /// Records a choice, in this span.
    #[napi]
    pub fn decide(
        &self,
        env: Env,
        choice: String,
        rationale: String,
        alternatives: Option<Vec<String>>,
    ) -> napi::Result<()> {
        shield(&env, || {
            self.live()?.record(EventKind::Decision(DecisionEvent {
                choice,
                rationale,
                alternatives: alternatives.unwrap_or_default(),
            }));
            Ok(())
        })
    }

    /// Ends the span, with the error it failed with, if any; ending twice does nothing.
    #[napi]
    pub fn end(&mut self, env: Env, error: Option<String>) -> napi::Result<()> {
        shield(&env, || {
            if let Some(span) = self.span.take() {
                span.end(error.as_deref());
            }
            Ok(())
        })
    }
}
