//! `Tracer` and `TraceReader`: recording runs, and reading a trace file back off the JS thread.

use std::path::PathBuf;

use fourfold::trace::{
    explain, verify, Durability, JsonLinesSink, RunTree, SpanKind, TraceFileSink,
    TraceReader as CoreReader, Tracer as CoreTracer,
};
use napi::bindgen_prelude::{AsyncTask, Env};
use napi_derive::napi;
use serde_json::{json, Value};

use crate::error::{shield, Fallible, FourfoldError};
use crate::json::to_json;
use crate::plugin::event_json;
use crate::task::JsonTask;

/// Where a `Tracer` writes.
#[napi(object)]
pub struct TracerOptions {
    /// The hash-chained trace file.
    pub file: Option<String>,
    /// A JSON Lines copy of every record.
    pub jsonl: Option<String>,
}

/// The core tracer for `options`.
pub fn build_tracer(options: &TracerOptions) -> Fallible<CoreTracer> {
    if options.file.is_none() && options.jsonl.is_none() {
        return Err(FourfoldError::invalid(
            "a tracer needs a `file`, a `jsonl` file, or both",
        ));
    }
    let mut builder = CoreTracer::builder();
    if let Some(file) = &options.file {
        builder = builder.sink(TraceFileSink::open(file, Durability::default())?);
    }
    if let Some(jsonl) = &options.jsonl {
        builder = builder.sink(JsonLinesSink::open(jsonl)?);
    }
    Ok(builder.build()?)
}

/// A run as JS sees it, with its events in the same shape as a plugin's `onEvent` gets them.
fn run_json(run: &RunTree) -> Fallible<Value> {
    let mut value = to_json(run)?;
    let events = |events: &[fourfold::Event]| -> Fallible<Value> {
        Ok(Value::Array(
            events.iter().map(event_json).collect::<Fallible<_>>()?,
        ))
    };
    if let Some(object) = value.as_object_mut() {
        object.insert("looseEvents".into(), events(&run.loose_events)?);
        if let Some(Value::Array(spans)) = object.get_mut("spans") {
            for (span_json, span) in spans.iter_mut().zip(&run.spans) {
                if let Some(span_object) = span_json.as_object_mut() {
                    span_object.insert("events".into(), events(&span.events)?);
                    span_object.insert("kind".into(), Value::from(span_kind_name(span.kind)));
                }
            }
        }
    }
    Ok(value)
}

/// A span kind as JS names it, the way `session.span` takes it.
fn span_kind_name(kind: SpanKind) -> &'static str {
    match kind {
        SpanKind::Run => "run",
        SpanKind::Step => "step",
        SpanKind::LlmCall => "llm_call",
        SpanKind::ToolCall => "tool_call",
    }
}

/// `value` with every gate `outcome` in lowercase, as events name them (`allowed`, `denied`).
fn lowercase_outcomes(value: &mut Value) {
    match value {
        Value::Object(object) => {
            for (key, field) in object.iter_mut() {
                match field {
                    Value::String(text) if key == "outcome" => *text = text.to_lowercase(),
                    other => lowercase_outcomes(other),
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(lowercase_outcomes),
        _ => {}
    }
}

/// Records runs, spans and events to a trace file and a JSON Lines file, on its own thread. Built
/// by a `Fourfold` from its `trace` options (`fourfold.tracer`); sessions record through it.
#[napi]
pub struct Tracer {
    tracer: CoreTracer,
}

impl Tracer {
    /// A JS tracer sharing `tracer`.
    pub fn wrap(tracer: CoreTracer) -> Tracer {
        Tracer { tracer }
    }

    /// The core tracer.
    pub fn core(&self) -> &CoreTracer {
        &self.tracer
    }
}

#[napi]
impl Tracer {
    /// Waits until every record so far is written.
    #[napi]
    pub fn flush(&self, env: Env) -> napi::Result<()> {
        shield(&env, || Ok(self.tracer.flush()?))
    }

    /// Flushes and stops the writer; later records are dropped.
    #[napi]
    pub fn close(&self, env: Env) -> napi::Result<()> {
        shield(&env, || Ok(self.tracer.close()?))
    }

    /// How many events were dropped because the writer could not keep up.
    #[napi(getter)]
    pub fn n_dropped(&self) -> i64 {
        self.tracer.n_dropped() as i64
    }
}

/// Reads a trace file back: its runs, their explanations, and a frame-by-frame verification.
/// Every read runs off the JS thread.
#[napi]
pub struct TraceReader {
    path: PathBuf,
}

#[napi]
impl TraceReader {
    /// A reader of the trace file at `path` (opened by each read).
    #[napi(constructor)]
    pub fn new(path: String) -> TraceReader {
        TraceReader {
            path: PathBuf::from(path),
        }
    }

    /// Every run of the trace, as a tree of spans with their events.
    #[napi(ts_return_type = "Promise<import('./lib/types').RunTree[]>")]
    pub fn runs(&self) -> AsyncTask<JsonTask> {
        let path = self.path.clone();
        AsyncTask::new(JsonTask::new(move || {
            let runs = CoreReader::open(&path)?.runs()?;
            Ok(Value::Array(
                runs.runs.iter().map(run_json).collect::<Fallible<_>>()?,
            ))
        }))
    }

    /// Why each run did what it did: every action with its decision, context, gates and cost, and
    /// a verdict for every failure.
    #[napi(ts_return_type = "Promise<import('./lib/types').Explanation[]>")]
    pub fn explain(&self) -> AsyncTask<JsonTask> {
        let path = self.path.clone();
        AsyncTask::new(JsonTask::new(move || {
            let runs = CoreReader::open(&path)?.runs()?;
            let explanations: Vec<_> = runs.runs.iter().map(explain).collect();
            let mut value = to_json(&explanations)?;
            lowercase_outcomes(&mut value);
            Ok(value)
        }))
    }

    /// Checks the file frame by frame; a damaged, reordered or truncated trace rejects with
    /// `FOURFOLD_TRACE_CORRUPT` naming the frame and its offset.
    #[napi(ts_return_type = "Promise<{ nFrames: number; headFileChecked: boolean }>")]
    pub fn verify(&self) -> AsyncTask<JsonTask> {
        let path = self.path.clone();
        AsyncTask::new(JsonTask::new(move || {
            let verified = verify(&path)?;
            Ok(json!({
                "nFrames": verified.head.n_frames,
                "headFileChecked": verified.head_file_checked,
            }))
        }))
    }
}
