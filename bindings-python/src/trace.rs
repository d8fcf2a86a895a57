//! `fourfold.Tracer`, `Run`, `Span`, `TraceReader` and `Event`: the observability face.

use std::path::PathBuf;
use std::time::Duration;

use fourfold::trace::{
    Durability, EventKindName, JsonLinesSink, MemorySink, Overflow, Query, Redactor, SpanKind,
    TraceFileSink, TraceReader as CoreReader, TraceRecord,
};
use fourfold::{ActionEvent, DecisionEvent, EventKind, GateEventOutcome};
use parking_lot::Mutex;
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::convert::{exception_text, from_python, repr, repr_opt, to_python};
use crate::error::{invalid_request, no_panic, raise, IntoPyError, OrRaise};

/// One event of a trace: a decision, an action, a cost, a gate outcome or context served.
#[pyclass(frozen, module = "fourfold._fourfold")]
pub struct Event {
    /// The run it belongs to.
    #[pyo3(get)]
    run_id: String,
    /// The agent of that run.
    #[pyo3(get)]
    agent: String,
    /// The task of that run, if any.
    #[pyo3(get)]
    task: Option<String>,
    /// Its order within the run.
    #[pyo3(get)]
    seq: u64,
    /// When, in nanoseconds since the Unix epoch.
    #[pyo3(get)]
    timestamp_ns: u64,
    /// The span it was recorded in, if any.
    #[pyo3(get)]
    span_id: Option<u64>,
    /// `decision`, `action`, `gate`, `cost` or `context`.
    #[pyo3(get)]
    kind: &'static str,
    inner: fourfold::Event,
}

impl From<fourfold::Event> for Event {
    fn from(event: fourfold::Event) -> Event {
        Event {
            run_id: event.run_id.clone(),
            agent: event.agent_id.clone(),
            task: event.task_id.clone(),
            seq: event.seq,
            timestamp_ns: event.timestamp_ns,
            span_id: event.span_id,
            kind: event.kind.name(),
            inner: event,
        }
    }
}

/// The payload of an event kind as JSON (`{"Cost": {...}}` becomes `{...}`).
fn payload(kind: &EventKind) -> serde_json::Value {
    match kind {
        EventKind::Decision(event) => serde_json::to_value(event),
        EventKind::Action(event) => serde_json::to_value(event),
        EventKind::Gate(event) => serde_json::to_value(event),
        EventKind::Cost(event) => serde_json::to_value(event),
        EventKind::Context(event) => serde_json::to_value(event),
    }
    // INVARIANT: event payloads are plain serde data, which serde_json always encodes.
    .unwrap_or(serde_json::Value::Null)
}

#[pymethods]
impl Event {
    /// The kind's fields: `choice` and `rationale` of a decision, `tool` and `error` of an
    /// action, `outcome`, `rule` and `reason` of a gate, token counts of a cost, sections of a
    /// context event.
    #[getter]
    fn data<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_python(py, &payload(&self.inner.kind))
    }

    /// The event as a dict: the common fields, `kind`, and the kind's fields under `data`.
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let dict = PyDict::new(py);
        dict.set_item("run_id", &self.run_id)?;
        dict.set_item("agent", &self.agent)?;
        dict.set_item("task", &self.task)?;
        dict.set_item("seq", self.seq)?;
        dict.set_item("timestamp_ns", self.timestamp_ns)?;
        dict.set_item("span_id", self.span_id)?;
        dict.set_item("parent_span_id", self.inner.parent_span_id)?;
        dict.set_item("kind", self.kind)?;
        dict.set_item("data", self.data(py)?)?;
        Ok(dict.into_any())
    }

    fn __repr__(&self) -> String {
        let summary = match &self.inner.kind {
            EventKind::Decision(event) => format!("choice={}", repr(&event.choice)),
            EventKind::Action(event) => format!(
                "tool={}, error={}",
                repr(&event.tool),
                repr_opt(event.error.as_deref())
            ),
            EventKind::Gate(event) => format!(
                "outcome={}, rule_id={}",
                repr(event.outcome.name()),
                repr_opt(event.rule.as_ref().map(|rule| rule.id.as_str()))
            ),
            EventKind::Cost(event) => format!(
                "model={}, input_tokens={}, output_tokens={}, cost_micros={}",
                repr(&event.model),
                event.input_tokens,
                event.output_tokens,
                event.cost_micros
            ),
            EventKind::Context(event) => format!(
                "query={}, sections={}, tokens_served={}",
                repr_opt(event.query.as_deref()),
                event.sections.len(),
                event.tokens_served
            ),
        };
        format!(
            "Event(kind={}, run_id={}, seq={}, {summary})",
            repr(self.kind),
            repr(&self.run_id),
            self.seq
        )
    }
}

pub(crate) fn span_kind(name: &str) -> PyResult<SpanKind> {
    match name {
        "step" => Ok(SpanKind::Step),
        "llm" | "llm_call" => Ok(SpanKind::LlmCall),
        "tool" | "tool_call" => Ok(SpanKind::ToolCall),
        other => Err(invalid_request(format!(
            "span kind `{other}` is not `step`, `llm_call` or `tool_call`"
        ))),
    }
}

/// An action event from the keyword arguments the bindings take.
pub(crate) fn action_event(
    tool: &str,
    arguments: Option<&Bound<'_, PyAny>>,
    result_digest: Option<String>,
    duration_ms: Option<f64>,
    error: Option<String>,
) -> PyResult<ActionEvent> {
    let arguments_json = match arguments {
        Some(arguments) => {
            let value: serde_json::Value = from_python(arguments)?;
            value.to_string()
        }
        None => "{}".to_string(),
    };
    let duration_ns = match duration_ms {
        Some(ms) if ms.is_finite() && ms >= 0.0 => Some((ms * 1e6) as u64),
        Some(ms) => {
            return Err(invalid_request(format!(
                "duration_ms must be a finite number >= 0, not {ms}"
            )))
        }
        None => None,
    };
    Ok(ActionEvent {
        tool: tool.to_string(),
        arguments_json,
        result_digest,
        duration_ns,
        error,
    })
}

pub(crate) fn decision_event(
    choice: &str,
    rationale: &str,
    alternatives: Vec<String>,
) -> EventKind {
    EventKind::Decision(DecisionEvent {
        choice: choice.to_string(),
        rationale: rationale.to_string(),
        alternatives,
    })
}

/// A step, LLM call or tool call within a run. Ends when `end` is called or its `with` block
/// closes (with the exception's message as the error, if one escaped).
#[pyclass(frozen, module = "fourfold._fourfold")]
pub struct Span {
    inner: Mutex<Option<fourfold::trace::Span>>,
    id: u64,
}

impl Span {
    pub(crate) fn new(span: fourfold::trace::Span) -> Span {
        Span {
            id: span.id(),
            inner: Mutex::new(Some(span)),
        }
    }

    fn with<T>(&self, body: impl FnOnce(&fourfold::trace::Span) -> T) -> PyResult<T> {
        match self.inner.lock().as_ref() {
            Some(span) => Ok(body(span)),
            None => Err(raise(
                "TraceError",
                "this span has ended".into(),
                Vec::new(),
            )),
        }
    }
}

#[pymethods]
impl Span {
    /// The span's id, unique within its run.
    #[getter]
    fn id(&self) -> u64 {
        self.id
    }

    /// A span nested in this one; `kind` is `step`, `llm_call` or `tool_call`.
    #[pyo3(signature = (name, kind="step"))]
    fn child(&self, name: &str, kind: &str) -> PyResult<Span> {
        let kind = span_kind(kind)?;
        no_panic(|| self.with(|span| Span::new(span.child(name, kind))))
    }

    /// Records a decision in this span: what was chosen, why, and what else was considered.
    #[pyo3(signature = (choice, rationale="", alternatives=Vec::new()))]
    fn decide(&self, choice: &str, rationale: &str, alternatives: Vec<String>) -> PyResult<()> {
        no_panic(|| self.with(|span| span.record(decision_event(choice, rationale, alternatives))))
    }

    /// Records an action in this span: the tool, its arguments (JSON-like), a digest of its
    /// result, how long it took and its error.
    #[pyo3(signature = (tool, arguments=None, *, result_digest=None, duration_ms=None, error=None))]
    fn act(
        &self,
        tool: &str,
        arguments: Option<&Bound<'_, PyAny>>,
        result_digest: Option<String>,
        duration_ms: Option<f64>,
        error: Option<String>,
    ) -> PyResult<()> {
        let action = action_event(tool, arguments, result_digest, duration_ms, error)?;
        no_panic(|| self.with(|span| span.record(EventKind::Action(action))))
    }

    /// Ends the span, with `error` if it failed. Ending twice does nothing.
    #[pyo3(signature = (error=None))]
    fn end(&self, error: Option<&str>) -> PyResult<()> {
        no_panic(|| {
            if let Some(span) = self.inner.lock().take() {
                span.end(error);
            }
            Ok(())
        })
    }

    fn __enter__(slf: Py<Span>) -> Py<Span> {
        slf
    }

    fn __exit__(
        &self,
        _kind: Option<&Bound<'_, PyAny>>,
        value: Option<&Bound<'_, PyAny>>,
        _traceback: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<bool> {
        let error = exception_text(value)?;
        self.end(error.as_deref())?;
        Ok(false)
    }

    fn __repr__(&self) -> String {
        let state = if self.inner.lock().is_some() {
            "open"
        } else {
            "ended"
        };
        format!("Span(id={}, {state})", self.id)
    }
}

/// One run of an agent on a task: the root of its spans and events.
#[pyclass(frozen, module = "fourfold._fourfold")]
pub struct Run {
    inner: Mutex<Option<fourfold::trace::Run>>,
    id: String,
}

impl Run {
    fn with<T>(&self, body: impl FnOnce(&fourfold::trace::Run) -> T) -> PyResult<T> {
        match self.inner.lock().as_ref() {
            Some(run) => Ok(body(run)),
            None => Err(raise("TraceError", "this run has ended".into(), Vec::new())),
        }
    }
}

#[pymethods]
impl Run {
    /// The run's id.
    #[getter]
    fn id(&self) -> &str {
        &self.id
    }

    /// A span directly under the run; `kind` is `step`, `llm_call` or `tool_call`.
    #[pyo3(signature = (name, kind="step"))]
    fn span(&self, name: &str, kind: &str) -> PyResult<Span> {
        let kind = span_kind(kind)?;
        no_panic(|| self.with(|run| Span::new(run.span(name, kind))))
    }

    /// Records a decision at the run's level.
    #[pyo3(signature = (choice, rationale="", alternatives=Vec::new()))]
    fn decide(&self, choice: &str, rationale: &str, alternatives: Vec<String>) -> PyResult<()> {
        no_panic(|| self.with(|run| run.record(decision_event(choice, rationale, alternatives))))
    }

    /// Records an action at the run's level.
    #[pyo3(signature = (tool, arguments=None, *, result_digest=None, duration_ms=None, error=None))]
    fn act(
        &self,
        tool: &str,
        arguments: Option<&Bound<'_, PyAny>>,
        result_digest: Option<String>,
        duration_ms: Option<f64>,
        error: Option<String>,
    ) -> PyResult<()> {
        let action = action_event(tool, arguments, result_digest, duration_ms, error)?;
        no_panic(|| self.with(|run| run.record(EventKind::Action(action))))
    }

    /// Ends the run, with `error` if it failed. Ending twice does nothing.
    #[pyo3(signature = (error=None))]
    fn end(&self, error: Option<&str>) -> PyResult<()> {
        no_panic(|| {
            if let Some(run) = self.inner.lock().take() {
                run.end(error);
            }
            Ok(())
        })
    }

    fn __enter__(slf: Py<Run>) -> Py<Run> {
        slf
    }

    fn __exit__(
        &self,
        _kind: Option<&Bound<'_, PyAny>>,
        value: Option<&Bound<'_, PyAny>>,
        _traceback: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<bool> {
        let error = exception_text(value)?;
        self.end(error.as_deref())?;
        Ok(false)
    }

    fn __repr__(&self) -> String {
        format!("Run(id={})", repr(&self.id))
    }
}

/// Records runs, spans and events on a writer thread: the caller never waits on disk.
#[pyclass(frozen, module = "fourfold._fourfold")]
pub struct Tracer {
    pub(crate) inner: fourfold::trace::Tracer,
    memory: Option<MemorySink>,
}

impl Tracer {
    pub(crate) fn of(inner: fourfold::trace::Tracer) -> Tracer {
        Tracer {
            inner,
            memory: None,
        }
    }
}

#[pymethods]
impl Tracer {
    /// A tracer writing to the hash-chained trace file `path`, to JSON Lines at `jsonl`, and/or
    /// in memory (`memory=True`, the default when neither file is given; read with `events()`).
    /// A full queue drops events and records how many (`overflow="drop"`), or makes the caller
    /// wait (`overflow="block"`). Secrets are masked before an event leaves the caller's thread
    /// (`redact=False` turns that off; `redact_patterns` adds `(name, regex)` pairs). The trace file
    /// is synced every `sync_every` events, every `sync_interval_ms`, and on every gate event.
    #[new]
    #[pyo3(signature = (
        path=None, *, jsonl=None, memory=None, capacity=None, overflow="drop", redact=true,
        redact_patterns=Vec::new(), sync_every=1000, sync_interval_ms=100
    ))]
    fn new(
        py: Python<'_>,
        path: Option<PathBuf>,
        jsonl: Option<PathBuf>,
        memory: Option<bool>,
        capacity: Option<usize>,
        overflow: &str,
        redact: bool,
        redact_patterns: Vec<(String, String)>,
        sync_every: Option<u64>,
        sync_interval_ms: Option<u64>,
    ) -> PyResult<Tracer> {
        no_panic(|| {
            let mut builder = fourfold::trace::Tracer::builder();
            builder = builder.overflow(match overflow {
                "drop" => Overflow::Drop,
                "block" => Overflow::Block,
                other => {
                    return Err(invalid_request(format!(
                        "overflow `{other}` is not `drop` or `block`"
                    )))
                }
            });
            if let Some(capacity) = capacity {
                builder = builder.capacity(capacity);
            }
            builder = builder.redactor(if !redact {
                Redactor::none()
            } else if redact_patterns.is_empty() {
                Redactor::default_patterns()
            } else {
                let patterns: Vec<(&str, &str)> = redact_patterns
                    .iter()
                    .map(|(name, pattern)| (name.as_str(), pattern.as_str()))
                    .collect();
                Redactor::with_patterns(&patterns).or_raise()?
            });
            let durability = Durability {
                every_n_records: sync_every,
                every: sync_interval_ms.map(Duration::from_millis),
                on_gate: true,
            };
            let memory = match memory.unwrap_or(path.is_none() && jsonl.is_none()) {
                true => Some(MemorySink::new()),
                false => None,
            };
            let built = py.detach(|| {
                if let Some(path) = &path {
                    builder = builder.sink(TraceFileSink::open(path, durability)?);
                }
                if let Some(jsonl) = &jsonl {
                    builder = builder.sink(JsonLinesSink::open(jsonl)?);
                }
                if let Some(memory) = &memory {
                    builder = builder.sink(memory.clone());
                }
                builder.build()
            });
            Ok(Tracer {
                inner: built.or_raise()?,
                memory,
            })
        })
    }

    /// Starts a run of `agent` on `task`.
    #[pyo3(signature = (agent, task=None))]
    fn start_run(&self, agent: &str, task: Option<&str>) -> PyResult<Run> {
        no_panic(|| {
            let run = self.inner.start_run(agent, task);
            Ok(Run {
                id: run.id().to_string(),
                inner: Mutex::new(Some(run)),
            })
        })
    }

    /// Waits until every event recorded so far is written and synced.
    fn flush(&self, py: Python<'_>) -> PyResult<()> {
        no_panic(|| py.detach(|| self.inner.flush()).or_raise())
    }

    /// Flushes and stops the writer thread; later events are dropped.
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        no_panic(|| py.detach(|| self.inner.close()).or_raise())
    }

    /// How many events a full queue dropped (`overflow="drop"`).
    #[getter]
    fn n_dropped(&self) -> u64 {
        self.inner.n_dropped()
    }

    /// The events written to the in-memory sink so far (after `flush()`).
    fn events(&self, py: Python<'_>) -> PyResult<Vec<Event>> {
        no_panic(|| {
            let Some(memory) = &self.memory else {
                return Err(invalid_request(
                    "this tracer has no in-memory sink (pass memory=True); read its file with TraceReader",
                ));
            };
            let records = py.detach(|| memory.records());
            Ok(records
                .into_iter()
                .filter_map(|record| match record {
                    TraceRecord::Event(event) => Some(Event::from(event)),
                    _ => None,
                })
                .collect())
        })
    }

    fn __repr__(&self) -> String {
        format!("Tracer(n_dropped={})", self.inner.n_dropped())
    }
}

/// Reads a trace file back: its events by run, agent, task, kind, gate outcome and time, its runs,
/// and why a run failed. A torn tail (a crash mid-write) is reported, not an error.
#[pyclass(frozen, module = "fourfold._fourfold")]
pub struct TraceReader {
    path: PathBuf,
    n_frames: u64,
    torn_tail: Option<(u64, u64)>,
}

impl TraceReader {
    fn open(&self) -> Result<CoreReader, fourfold::TraceError> {
        CoreReader::open(&self.path)
    }
}

#[pymethods]
impl TraceReader {
    /// Opens the trace file at `path`; a file that is not a trace raises `TraceCorrupt`.
    #[new]
    fn new(py: Python<'_>, path: PathBuf) -> PyResult<TraceReader> {
        no_panic(|| {
            let opened = py.detach(|| -> Result<_, fourfold::TraceError> {
                let mut reader = CoreReader::open(&path)?;
                while reader.next_record()?.is_some() {}
                Ok((reader.head().n_frames, reader.torn_tail()))
            });
            let (n_frames, torn_tail) = opened.or_raise()?;
            Ok(TraceReader {
                path,
                n_frames,
                torn_tail: torn_tail.map(|torn| (torn.offset, torn.n_bytes)),
            })
        })
    }

    /// The number of whole frames when the file was opened.
    #[getter]
    fn n_frames(&self) -> u64 {
        self.n_frames
    }

    /// `(offset, length)` of a partial last frame that a crash left, or `None`.
    #[getter]
    fn torn_tail(&self) -> Option<(u64, u64)> {
        self.torn_tail
    }

    /// The events that match every filter given: `run`, `agent`, `task`, `kind` (`decision`,
    /// `action`, `gate`, `cost`, `context`), `gate_outcome` (`allowed`, `denied`, `pending`,
    /// `approved`, `rejected`, `expired`, `consumed`) and a time range in nanoseconds.
    #[pyo3(signature = (*, run=None, agent=None, task=None, kind=None, gate_outcome=None, since_ns=None, until_ns=None))]
    fn events(
        &self,
        py: Python<'_>,
        run: Option<&str>,
        agent: Option<&str>,
        task: Option<&str>,
        kind: Option<&str>,
        gate_outcome: Option<&str>,
        since_ns: Option<u64>,
        until_ns: Option<u64>,
    ) -> PyResult<Vec<Event>> {
        no_panic(|| {
            let mut query = Query::all();
            if let Some(run) = run {
                query = query.run(run);
            }
            if let Some(agent) = agent {
                query = query.agent(agent);
            }
            if let Some(task) = task {
                query = query.task(task);
            }
            if let Some(kind) = kind {
                let kind: EventKindName =
                    kind.parse()
                        .map_err(|error: fourfold::trace::UnknownName| {
                            invalid_request(error.to_string())
                        })?;
                query = query.kind(kind);
            }
            if let Some(outcome) = gate_outcome {
                let outcome: GateEventOutcome =
                    outcome
                        .parse()
                        .map_err(|error: fourfold::trace::UnknownName| {
                            invalid_request(error.to_string())
                        })?;
                query = query.gate_outcome(outcome);
            }
            if let Some(since_ns) = since_ns {
                query = query.since(since_ns);
            }
            if let Some(until_ns) = until_ns {
                query = query.until(until_ns);
            }
            let events = py
                .detach(|| self.open()?.events(query).collect::<Result<Vec<_>, _>>())
                .or_raise()?;
            Ok(events.into_iter().map(Event::from).collect())
        })
    }

    /// The ids of the runs in the trace, in the order they started.
    fn run_ids(&self, py: Python<'_>) -> PyResult<Vec<String>> {
        no_panic(|| {
            let runs = py.detach(|| self.open()?.runs()).or_raise()?;
            Ok(runs.runs.into_iter().map(|run| run.run_id).collect())
        })
    }

    /// What run `run_id` did and, if it failed, why: its actions, gates and costs, and a verdict
    /// (`stale-context`, `permission`, `budget`, `gate-rejected` or `model`) for each failure.
    fn explain<'py>(&self, py: Python<'py>, run_id: &str) -> PyResult<Bound<'py, PyAny>> {
        no_panic(|| {
            let explanation = py
                .detach(|| {
                    let runs = self.open()?.runs()?;
                    Ok(runs.get(run_id).map(fourfold::trace::explain))
                })
                .map_err(|error: fourfold::TraceError| error.into_py_error())?;
            match explanation {
                Some(explanation) => to_python(py, &explanation),
                None => Err(invalid_request(format!("the trace has no run `{run_id}`"))),
            }
        })
    }

    /// Checks the file frame by frame (checksums, hash chain, torn tail, head file). Returns the
    /// number of frames; a damaged file raises `TraceCorrupt` naming the frame and byte offset.
    #[staticmethod]
    fn verify(py: Python<'_>, path: PathBuf) -> PyResult<u64> {
        no_panic(|| {
            let verified = py.detach(|| fourfold::trace::verify(&path)).or_raise()?;
            Ok(verified.head.n_frames)
        })
    }

    fn __repr__(&self) -> String {
        format!(
            "TraceReader(path={}, n_frames={}, torn_tail={})",
            repr(&self.path.to_string_lossy()),
            self.n_frames,
            match self.torn_tail {
                Some((offset, n_bytes)) => format!("({offset}, {n_bytes})"),
                None => "None".to_string(),
            }
        )
    }
}
