//! `fourfold.Fourfold` and `AgentSession`: the four controls joined, one governed session per run.

use std::cell::RefCell;
use std::path::PathBuf;
use std::sync::Arc;

use fourfold::policy::Action;
use fourfold::trace::SpanKind;
use parking_lot::RwLock;
use pyo3::prelude::*;
use pyo3::types::PyString;

use crate::context::{Answer, ContextStore, Section, SharedDocuments};
use crate::convert::{
    exception_text, from_python, python_bool, repr, repr_list, repr_opt, to_python, Holder,
};
use crate::cost::{meter_builder, token_counts, Budget, CostMeter, CostRecord, Reservation};
use crate::error::{invalid_request, no_panic, raise, OrRaise};
use crate::plugin::PyPlugin;
use crate::policy::{Decision, Policy, Request};
use crate::trace::{action_event, span_kind, Span, Tracer};

/// The four controls built together: a policy, and optionally a tracer, a context store and a
/// cost meter, joined by the `context-fresh` and `budget` gates. Hands out one `AgentSession` per
/// run. Safe to share across threads.
#[pyclass(frozen, module = "fourfold._fourfold")]
pub struct Fourfold {
    inner: fourfold::Fourfold,
}

#[pymethods]
impl Fourfold {
    /// Builds the controls from keyword arguments. `policy` is the policy's TOML text, or a path
    /// (`pathlib.Path`) to a policy file; `root` is the workspace its paths are relative to, and
    /// approvals are kept in `store_dir` (in memory without it, or beside a policy file).
    /// `tracer` records every event. `context=True` adds an in-memory ContextStore (`archive`
    /// and `pin` as in `ContextStore`); `context_scope="policy"` (the default) serves each
    /// session's agent only the documents the policy lets it read, `"all"` every document.
    /// `cost=True` adds a CostMeter (`budgets`, `prices`, `currency`, `unknown_model`,
    /// `savings_model`, `ledger` as in `CostMeter`). `plugins` are objects with a `name` and
    /// `on_event` and/or `check` methods.
    #[new]
    #[pyo3(signature = (
        policy, *, root=None, store_dir=None, tracer=None, context=true, archive=Vec::new(),
        pin=Vec::new(), context_scope="policy", cost=true, budgets=Vec::new(), prices=None,
        currency="USD", unknown_model="error", savings_model=None, ledger=None, plugins=Vec::new()
    ))]
    fn new(
        py: Python<'_>,
        policy: &Bound<'_, PyAny>,
        root: Option<PathBuf>,
        store_dir: Option<PathBuf>,
        tracer: Option<&Tracer>,
        context: bool,
        archive: Vec<String>,
        pin: Vec<String>,
        context_scope: &str,
        cost: bool,
        budgets: Vec<Budget>,
        prices: Option<PathBuf>,
        currency: &str,
        unknown_model: &str,
        savings_model: Option<String>,
        ledger: Option<PathBuf>,
        plugins: Vec<Bound<'_, PyAny>>,
    ) -> PyResult<Fourfold> {
        no_panic(|| {
            let mut policy_builder = if let Ok(text) = policy.cast::<PyString>() {
                fourfold::Policy::builder_from_toml(&text.to_cow()?).or_raise()?
            } else {
                let path: PathBuf = policy.extract().map_err(|_| {
                    invalid_request(
                        "`policy` is the policy's TOML text (str) or a path to a policy file",
                    )
                })?;
                py.detach(|| fourfold::Policy::builder_from_file(&path))
                    .or_raise()?
            };
            if let Some(root) = root {
                policy_builder = policy_builder.root(root);
            }
            if let Some(dir) = store_dir {
                policy_builder = policy_builder.store_dir(dir);
            }
            let mut builder = fourfold::Fourfold::builder().policy(policy_builder);
            if let Some(tracer) = tracer {
                builder = builder.tracer(tracer.inner.clone());
            }
            if context {
                builder = builder.context(crate::context::builder(&archive, &pin));
            }
            let scope = fourfold::session::ContextScope::parse(context_scope, "context_scope")
                .map_err(invalid_request)?;
            builder = builder.context_scope(scope);
            if cost || !budgets.is_empty() {
                builder = builder.cost(meter_builder(
                    budgets,
                    prices,
                    currency,
                    unknown_model,
                    savings_model,
                    ledger,
                )?);
            }
            let python_plugins = plugins
                .iter()
                .map(PyPlugin::new)
                .collect::<PyResult<Vec<_>>>()?;
            for plugin in python_plugins {
                builder = builder.plugin(Arc::new(plugin));
            }
            let inner = py.detach(|| builder.build()).or_raise()?;
            Ok(Fourfold { inner })
        })
    }

    /// Builds the controls a `fourfold.toml` describes (relative paths are relative to its
    /// folder).
    #[staticmethod]
    fn from_config(py: Python<'_>, path: PathBuf) -> PyResult<Fourfold> {
        no_panic(|| {
            let inner = py
                .detach(|| fourfold::Fourfold::from_config(&path))
                .or_raise()?;
            Ok(Fourfold { inner })
        })
    }

    /// Starts a governed session (and a traced run) of `agent` on `task`.
    #[pyo3(signature = (agent, task=None))]
    fn session(&self, py: Python<'_>, agent: &str, task: Option<&str>) -> PyResult<AgentSession> {
        no_panic(|| {
            let session = py.detach(|| self.inner.session(agent, task));
            Ok(AgentSession::new(session))
        })
    }

    /// The policy every session checks against (approve and reject pending requests here).
    #[getter]
    fn policy(&self) -> Policy {
        Policy {
            holder: Holder::Of(self.inner.clone()),
        }
    }

    /// The tracer, if one was given.
    #[getter]
    fn tracer(&self) -> Option<Tracer> {
        self.inner.tracer().cloned().map(Tracer::of)
    }

    /// The context store, if there is one.
    #[getter]
    fn context(&self) -> Option<ContextStore> {
        self.inner
            .context()
            .cloned()
            .map(|inner| ContextStore { inner })
    }

    /// The fleet's shared documents, if the config joined the context store to them
    /// (`[context] shared = true` with a PostgreSQL `[store]`).
    #[getter]
    fn shared_documents(&self) -> Option<SharedDocuments> {
        self.inner.shared_documents().map(|_| SharedDocuments {
            fourfold: self.inner.clone(),
        })
    }

    /// The cost meter, if there is one.
    #[getter]
    fn cost(&self) -> Option<CostMeter> {
        self.inner.cost().cloned().map(|inner| CostMeter { inner })
    }

    /// Installs a plugin: an object with a `name` and `on_event(event)` and/or
    /// `check(request)` methods.
    fn install(&self, plugin: &Bound<'_, PyAny>) -> PyResult<()> {
        no_panic(|| {
            let plugin = PyPlugin::new(plugin)?;
            self.inner.plugins().install(Arc::new(plugin)).or_raise()
        })
    }

    /// Removes the plugin `name`; returns whether it was installed.
    fn uninstall(&self, name: &str) -> bool {
        self.inner.plugins().remove(name)
    }

    /// The names of the installed plugins, the built-in ones included.
    #[getter]
    fn plugin_names(&self) -> Vec<String> {
        self.inner.plugins().names()
    }

    fn __repr__(&self) -> String {
        format!(
            "Fourfold(tracer={}, context={}, cost={}, plugins={})",
            python_bool(self.inner.tracer().is_some()),
            python_bool(self.inner.context().is_some()),
            python_bool(self.inner.cost().is_some()),
            repr_list(&self.inner.plugins().names())
        )
    }
}

/// One agent's run under all four controls: every action is guarded by the policy, context is
/// served fresh, usage is metered against the budgets, and everything lands in the trace. Use it as
/// a context manager, or call `end()`. Safe to share across threads.
#[pyclass(frozen, module = "fourfold._fourfold")]
pub struct AgentSession {
    inner: RwLock<Option<fourfold::AgentSession>>,
    agent: String,
    task: Option<String>,
    run_id: String,
    fourfold: fourfold::Fourfold,
}

impl AgentSession {
    fn new(session: fourfold::AgentSession) -> AgentSession {
        AgentSession {
            agent: session.agent().to_string(),
            task: session.task().map(str::to_string),
            run_id: session.run_id().to_string(),
            fourfold: session.fourfold().clone(),
            inner: RwLock::new(Some(session)),
        }
    }

    fn with<T>(
        &self,
        py: Python<'_>,
        body: impl FnOnce(&fourfold::AgentSession) -> T + Send,
    ) -> PyResult<T>
    where
        T: Send,
    {
        py.detach(|| {
            let session = self.inner.read();
            let _inside = InsideCall::enter(self);
            session.as_ref().map(body)
        })
        .ok_or_else(|| {
            raise(
                "FourfoldError",
                format!("session `{}` has ended", self.run_id),
                Vec::new(),
            )
        })
    }
}

thread_local! {
    /// The sessions (by address) that this thread is inside a call of, so that `end` called from
    /// inside one of them (a plugin's gate check ending the session it checks for) raises at once:
    /// waiting for the call to return would wait for itself.
    static INSIDE_CALLS: RefCell<Vec<usize>> = const { RefCell::new(Vec::new()) };
}

/// Marks this thread as inside a call of a session until dropped, unwinding included.
struct InsideCall(usize);

impl InsideCall {
    fn enter(session: &AgentSession) -> InsideCall {
        let address = std::ptr::from_ref(session) as usize;
        INSIDE_CALLS.with(|inside| inside.borrow_mut().push(address));
        InsideCall(address)
    }

    fn is_inside(session: &AgentSession) -> bool {
        let address = std::ptr::from_ref(session) as usize;
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

fn request_from(
    agent: &str,
    request: Option<&Request>,
    read: Option<String>,
    write: Option<String>,
    delete: Option<String>,
    run: Option<String>,
    net: Option<String>,
    tool: Option<String>,
    args: Option<&Bound<'_, PyAny>>,
    cwd: Option<String>,
) -> PyResult<fourfold::Request> {
    let mut actions = Vec::new();
    if let Some(path) = read {
        actions.push(Action::Read { path });
    }
    if let Some(path) = write {
        actions.push(Action::Write { path });
    }
    if let Some(path) = delete {
        actions.push(Action::Delete { path });
    }
    if let Some(command) = run {
        actions.push(Action::Run { command });
    }
    if let Some(url) = net {
        actions.push(Action::Net { url });
    }
    if let Some(name) = tool {
        let args = match args {
            Some(args) => from_python(args)?,
            None => serde_json::Value::Object(serde_json::Map::new()),
        };
        actions.push(Action::Tool { name, args });
    } else if args.is_some() {
        return Err(invalid_request("`args` goes with `tool`"));
    }
    let mut built = match (request, actions.len()) {
        (Some(request), 0) => request.inner.clone(),
        (None, 1) => fourfold::Request::new(agent, actions.remove(0)),
        _ => {
            return Err(invalid_request(
                "give a Request, or exactly one of read=, write=, delete=, run=, net=, tool=",
            ))
        }
    };
    if cwd.is_some() {
        built.cwd = cwd;
    }
    Ok(built)
}

#[pymethods]
impl AgentSession {
    /// The agent.
    #[getter]
    fn agent(&self) -> &str {
        &self.agent
    }

    /// The task, if any.
    #[getter]
    fn task(&self) -> Option<&str> {
        self.task.as_deref()
    }

    /// The run's id (the trace's run).
    #[getter]
    fn run_id(&self) -> &str {
        &self.run_id
    }

    /// The policy of this session's `Fourfold`: approve or reject what its gates hold here.
    #[getter]
    fn policy(&self) -> Policy {
        Policy {
            holder: Holder::Of(self.fourfold.clone()),
        }
    }

    /// Checks an action before the agent takes it: a `Request`, or one of `read=path`,
    /// `write=path`, `delete=path`, `run=command`, `net=url`, `tool=name` (with `args`). Returns
    /// the allowing `Decision`; raises `PolicyDenied`, `GatePending` (with `approval_id`),
    /// `StaleContext` (re-read with `reread()`) or `BudgetExceeded`.
    #[pyo3(signature = (request=None, *, read=None, write=None, delete=None, run=None, net=None, tool=None, args=None, cwd=None))]
    fn guard(
        &self,
        py: Python<'_>,
        request: Option<&Request>,
        read: Option<String>,
        write: Option<String>,
        delete: Option<String>,
        run: Option<String>,
        net: Option<String>,
        tool: Option<String>,
        args: Option<&Bound<'_, PyAny>>,
        cwd: Option<String>,
    ) -> PyResult<Decision> {
        no_panic(|| {
            let request = request_from(
                &self.agent,
                request,
                read,
                write,
                delete,
                run,
                net,
                tool,
                args,
                cwd,
            )?;
            let decision = self
                .with(py, |session| session.guard(request))?
                .or_raise()?;
            Ok(Decision::from(decision))
        })
    }

    /// The canonical current sections that answer `query` within `budget_tokens`; sections this
    /// session already holds unchanged come back as pointers without text.
    #[pyo3(signature = (query, budget_tokens=2000))]
    fn ask(&self, py: Python<'_>, query: &str, budget_tokens: u64) -> PyResult<Answer> {
        no_panic(|| {
            let answer = self
                .with(py, |session| session.ask(query, budget_tokens))?
                .or_raise()?;
            Answer::new(py, answer)
        })
    }

    /// Serves the current version of every section this session read that has changed since,
    /// which clears the `context-fresh` gate.
    fn reread(&self, py: Python<'_>) -> PyResult<Vec<Section>> {
        no_panic(|| {
            let sections = self.with(py, |session| session.reread())?.or_raise()?;
            Ok(sections.into_iter().map(Section::from).collect())
        })
    }

    /// Writes a finding back as the next section of ``records/<topic>.md``, served to the other
    /// agents: the policy judges it first as the tool call ``context_record`` with
    /// ``{"topic": topic}`` (raises ``PolicyDenied`` without a rule that allows it), and it is
    /// shared with the fleet or saved to the context snapshot when there is one. Returns the
    /// version record.
    fn record_finding<'py>(
        &self,
        py: Python<'py>,
        topic: &str,
        text: &str,
    ) -> PyResult<Bound<'py, PyAny>> {
        no_panic(|| {
            let version = self
                .with(py, |session| session.record_finding(topic, text))?
                .or_raise()?;
            to_python(py, &version)
        })
    }

    /// Holds an estimate of a call to `model` against the budgets; raises `BudgetExceeded`.
    #[pyo3(signature = (model, *, input_tokens=0, output_tokens=0))]
    fn reserve(
        &self,
        py: Python<'_>,
        model: &str,
        input_tokens: u64,
        output_tokens: u64,
    ) -> PyResult<Reservation> {
        no_panic(|| {
            let counts = token_counts(input_tokens, output_tokens, 0, 0, 0);
            let reservation = self
                .with(py, |session| session.reserve(model, counts))?
                .or_raise()?;
            Ok(Reservation::new(reservation))
        })
    }

    /// Records a call to `model` with the provider's token counts; the cost lands in the trace
    /// and against the budgets. A call past a hard limit is still recorded (it was made), and
    /// then the `budget` gate denies this agent's next guarded action. `estimated=True` labels
    /// counts made without the provider's usage numbers as an estimate, in the record, the trace
    /// and the reports.
    #[pyo3(signature = (model, *, input_tokens=0, output_tokens=0, cache_read_tokens=0, cache_write_tokens=0, reasoning_tokens=0, estimated=false))]
    fn record_usage(
        &self,
        py: Python<'_>,
        model: &str,
        input_tokens: u64,
        output_tokens: u64,
        cache_read_tokens: u64,
        cache_write_tokens: u64,
        reasoning_tokens: u64,
        estimated: bool,
    ) -> PyResult<CostRecord> {
        no_panic(|| {
            let counts = token_counts(
                input_tokens,
                output_tokens,
                cache_read_tokens,
                cache_write_tokens,
                reasoning_tokens,
            );
            let record = self
                .with(py, |session| match estimated {
                    true => session.record_estimated_usage(model, counts),
                    false => session.record_usage(model, counts),
                })?
                .or_raise()?;
            Ok(CostRecord::from(record))
        })
    }

    /// Records a decision: what was chosen, why, and what else was considered.
    #[pyo3(signature = (choice, rationale="", alternatives=Vec::new()))]
    fn decide(
        &self,
        py: Python<'_>,
        choice: &str,
        rationale: &str,
        alternatives: Vec<String>,
    ) -> PyResult<()> {
        no_panic(|| {
            let alternatives: Vec<&str> = alternatives.iter().map(String::as_str).collect();
            self.with(py, |session| {
                session.decide(choice, rationale, &alternatives)
            })
        })
    }

    /// Records an action the agent took: the tool, its arguments (JSON-like), a digest of its
    /// result, how long it took and its error.
    #[pyo3(signature = (tool, arguments=None, *, result_digest=None, duration_ms=None, error=None))]
    fn act(
        &self,
        py: Python<'_>,
        tool: &str,
        arguments: Option<&Bound<'_, PyAny>>,
        result_digest: Option<String>,
        duration_ms: Option<f64>,
        error: Option<String>,
    ) -> PyResult<()> {
        no_panic(|| {
            let action = action_event(tool, arguments, result_digest, duration_ms, error)?;
            self.with(py, |session| session.act(action))
        })
    }

    /// A span of the run (`step`, `llm_call` or `tool_call`), or `None` without a tracer. Use it
    /// as a context manager; nest with `Span.child`.
    #[pyo3(signature = (name, kind="step"))]
    fn span(&self, py: Python<'_>, name: &str, kind: &str) -> PyResult<Option<Span>> {
        let kind: SpanKind = span_kind(kind)?;
        no_panic(|| {
            let span = self.with(py, |session| session.span(name, kind))?;
            Ok(span.map(Span::new))
        })
    }

    /// Ends the run, with `error` if it failed. Later calls on the session raise; ending twice
    /// does nothing.
    #[pyo3(signature = (error=None))]
    fn end(&self, py: Python<'_>, error: Option<String>) -> PyResult<()> {
        no_panic(|| {
            if InsideCall::is_inside(self) {
                return Err(raise(
                    "FourfoldError",
                    format!(
                        "session `{}` is inside a call that has not returned (is a plugin ending \
                         the session it is checking?); end it once the call has returned",
                        self.run_id
                    ),
                    Vec::new(),
                ));
            }
            let session = py.detach(|| self.inner.write().take());
            if let Some(session) = session {
                py.detach(|| session.end(error.as_deref()));
            }
            Ok(())
        })
    }

    /// Whether the session has ended.
    #[getter]
    fn ended(&self) -> bool {
        self.inner.read().is_none()
    }

    fn __enter__(slf: Py<AgentSession>) -> Py<AgentSession> {
        slf
    }

    fn __exit__(
        &self,
        py: Python<'_>,
        _kind: Option<&Bound<'_, PyAny>>,
        value: Option<&Bound<'_, PyAny>>,
        _traceback: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<bool> {
        let error = exception_text(value)?;
        self.end(py, error)?;
        Ok(false)
    }

    fn __repr__(&self) -> String {
        format!(
            "AgentSession(agent={}, task={}, run_id={})",
            repr(&self.agent),
            repr_opt(self.task.as_deref()),
            repr(&self.run_id)
        )
    }
}
