//! OpenTelemetry export: trace records as OTLP/JSON Lines with the GenAI semantic conventions.
//!
//! Each line is one `ExportTraceServiceRequest` in the protobuf JSON mapping, which is what the
//! OpenTelemetry Collector's `otlpjsonfile` receiver reads: lowerCamelCase field names, trace and
//! span ids as lowercase hex, 64-bit integers as decimal strings and enums as integers.
//!
//! The mapping:
//!
//! - A span is exported when it ends. Its trace id is the first 16 bytes of the blake3 hash of its
//!   run id, so every span of a run lands in one trace, and its span id is the record's `u64` id,
//!   big-endian (id 0, which OpenTelemetry reserves for "no span", becomes `ffffffffffffffff`).
//! - Span names and attributes follow the GenAI conventions: `invoke_agent {agent}` for a run,
//!   `chat {model}` (kind client) for a model call, `execute_tool {tool}` for a tool call and the
//!   step's own name for a step, with `gen_ai.operation.name`, `gen_ai.agent.name`,
//!   `gen_ai.request.model`, `gen_ai.tool.name`, `gen_ai.provider.name` and the summed
//!   `gen_ai.usage.*` token counts of the span's own cost events (a parent does not add up its
//!   children). The run id goes in `fourfold.run.id` rather than `gen_ai.conversation.id`: a run is
//!   one invocation of an agent, while a conversation may span many.
//! - Every event becomes a span event of the span it was recorded in (`fourfold.decision`,
//!   `fourfold.action`, `fourfold.gate`, `fourfold.cost`, `fourfold.context`), with its details
//!   under `fourfold.*`. Gate events are span events rather than child spans: a policy decision has
//!   a time but no duration, it belongs to the operation it guarded, and as an event it keeps the
//!   span tree the agent built. A denied or rejected gate does not make the span an error; a span
//!   that ended with an error gets status error, its message, and `error.type` `_OTHER` (the
//!   conventions' value when no error class is known).
//! - A span still open when the input ends (the process died, or the span outlived the Tracer) is
//!   exported by [`OtlpExporter::finish`], ending at the last time seen in its run and marked with
//!   `fourfold.span.unfinished = true`.
//! - A `Dropped` record names no run, so it is not pinned on any run's trace (that would blame a
//!   run for another's losses): it becomes a zero-length span `fourfold.dropped` in a trace of its
//!   own, with `fourfold.dropped.count`.
//! - An event or span end that matches no open span (its start was never seen, or it came after
//!   the span ended) cannot be placed, and is counted in [`OtlpStats::n_unmatched_records`].

use std::io::Write;

use rustc_hash::FxHashMap;
use serde::{Serialize, Serializer};

use super::{SpanKind, TraceRecord};
use crate::event::{Event, EventKind};

mod http;
mod sink;
mod wire;

pub use http::{
    otlp_certificate_from_env, otlp_headers_from_env, OtlpHttpMonitor, OtlpHttpOptions,
    OtlpHttpSink, OtlpHttpStats,
};
pub use sink::OtlpJsonLinesSink;
use wire::*;

/// The service name used when none is given.
const DEFAULT_SERVICE_NAME: &str = "fourfold";

/// Counts of what an [`OtlpExporter`] has exported so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OtlpStats {
    /// Runs whose spans were exported (counted at the first span of each run).
    pub n_runs: u64,
    /// Spans exported, the unfinished ones included and the `fourfold.dropped` markers not.
    pub n_spans: u64,
    /// Spans exported as unfinished: still open when the input ended.
    pub n_unfinished_spans: u64,
    /// Events exported as span events.
    pub n_span_events: u64,
    /// Events the Tracer dropped, as its `Dropped` records count them.
    pub n_dropped_events: u64,
    /// Events and span ends that matched no open span, and span starts that repeated an open
    /// span's id: left out.
    pub n_unmatched_records: u64,
    /// Batches handed out, one per line of OTLP/JSON Lines.
    pub n_batches: u64,
}

/// Spans ready to send: one `ExportTraceServiceRequest`, written as one line of OTLP/JSON Lines.
///
/// It serializes (with serde) to the OTLP JSON mapping; [`OtlpBatch::write_json_line`] writes it
/// as one line.
#[derive(Clone, Debug, PartialEq)]
pub struct OtlpBatch {
    service_name: String,
    spans: Vec<WireSpan>,
}

impl OtlpBatch {
    /// How many spans the batch holds.
    pub fn n_spans(&self) -> usize {
        self.spans.len()
    }

    /// Writes the batch as one line of JSON, newline included.
    pub fn write_json_line(&self, out: &mut impl Write) -> std::io::Result<()> {
        serde_json::to_writer(&mut *out, self)?;
        out.write_all(b"\n")
    }
}

impl Serialize for OtlpBatch {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let request = WireRequest {
            resource_spans: [WireResourceSpans {
                resource: WireResource {
                    attributes: [KeyValue::string("service.name", &self.service_name)],
                },
                scope_spans: [WireScopeSpans {
                    scope: WireScope {
                        name: "fourfold",
                        version: env!("CARGO_PKG_VERSION"),
                    },
                    spans: &self.spans,
                }],
            }],
        };
        request.serialize(serializer)
    }
}

/// Converts a stream of [`TraceRecord`]s into OTLP batches (see the module docs for the mapping).
///
/// Feed it records in the order they were written with [`OtlpExporter::push`], which hands out a
/// run's spans once none of them is open any more; [`OtlpExporter::take_ended`] hands out the
/// spans that ended so far, and [`OtlpExporter::finish`] everything, open spans included.
#[derive(Debug)]
pub struct OtlpExporter {
    service_name: String,
    runs: FxHashMap<String, RunState>,
    n_dropped_records: u64,
    stats: OtlpStats,
}

impl Default for OtlpExporter {
    /// An exporter with the service name `fourfold`.
    fn default() -> OtlpExporter {
        OtlpExporter::new(DEFAULT_SERVICE_NAME)
    }
}

impl OtlpExporter {
    /// An exporter whose batches carry the resource attribute `service.name = service_name`.
    pub fn new(service_name: impl Into<String>) -> OtlpExporter {
        OtlpExporter {
            service_name: service_name.into(),
            runs: FxHashMap::default(),
            n_dropped_records: 0,
            stats: OtlpStats::default(),
        }
    }

    /// What was exported so far.
    pub fn stats(&self) -> OtlpStats {
        self.stats
    }

    /// Takes one record. Returns a batch when the record completes one: the spans of a run none of
    /// whose spans is open any more, or the marker span of a `Dropped` record.
    pub fn push(&mut self, record: &TraceRecord) -> Option<OtlpBatch> {
        match record {
            TraceRecord::SpanStart {
                run_id,
                agent_id,
                task_id,
                span_id,
                parent_span_id,
                name,
                kind,
                at_ns,
            } => {
                let n_runs = &mut self.stats.n_runs;
                let run = self.runs.entry(run_id.clone()).or_insert_with(|| {
                    *n_runs += 1;
                    RunState::new(run_id, *n_runs)
                });
                run.saw(*at_ns);
                if run.open.contains_key(span_id) {
                    self.stats.n_unmatched_records += 1;
                    return None;
                }
                let span = OpenSpan::new(run_id, agent_id, task_id.as_deref(), name, *kind);
                let span = OpenSpan {
                    span_id: *span_id,
                    parent_span_id: *parent_span_id,
                    start_ns: *at_ns,
                    ..span
                };
                if parent_span_id.is_none() && run.root_span_id.is_none() {
                    run.root_span_id = Some(*span_id);
                }
                run.open.insert(*span_id, span);
                None
            }
            TraceRecord::Event(event) => {
                let Some(run) = self.runs.get_mut(&event.run_id) else {
                    self.stats.n_unmatched_records += 1;
                    return None;
                };
                run.saw(event.timestamp_ns);
                let Some(span_id) = event.span_id.or(run.root_span_id) else {
                    self.stats.n_unmatched_records += 1;
                    return None;
                };
                match run.open.get_mut(&span_id) {
                    Some(span) => {
                        span.record(event);
                        self.stats.n_span_events += 1;
                    }
                    None => self.stats.n_unmatched_records += 1,
                }
                None
            }
            TraceRecord::SpanEnd {
                run_id,
                span_id,
                at_ns,
                error,
            } => {
                let Some(run) = self.runs.get_mut(run_id) else {
                    self.stats.n_unmatched_records += 1;
                    return None;
                };
                run.saw(*at_ns);
                let Some(span) = run.open.remove(span_id) else {
                    self.stats.n_unmatched_records += 1;
                    return None;
                };
                if run.root_span_id == Some(*span_id) {
                    run.root_span_id = None;
                }
                run.ended
                    .push(span.into_wire(&run.trace_id, *at_ns, error.as_deref(), false));
                self.stats.n_spans += 1;
                if !run.open.is_empty() {
                    return None;
                }
                let run = self.runs.remove(run_id)?;
                self.batch(run.ended)
            }
            TraceRecord::Dropped { n_events, at_ns } => {
                self.n_dropped_records += 1;
                self.stats.n_dropped_events += n_events;
                let span = dropped_span(*n_events, *at_ns, self.n_dropped_records);
                self.batch(vec![span])
            }
        }
    }

    /// Hands out the spans that ended and were not handed out yet, of runs that still have open
    /// spans. Open spans stay open.
    pub fn take_ended(&mut self) -> Option<OtlpBatch> {
        let mut runs: Vec<&mut RunState> = self.runs.values_mut().collect();
        runs.sort_by_key(|run| run.run_idx);
        let spans: Vec<WireSpan> = runs
            .into_iter()
            .flat_map(|run| std::mem::take(&mut run.ended))
            .collect();
        self.batch(spans)
    }

    /// Hands out every span not handed out yet: the ended ones, and the open ones as unfinished
    /// spans that end at the last time seen in their run. Leaves the exporter empty.
    pub fn finish(&mut self) -> Option<OtlpBatch> {
        let mut runs: Vec<RunState> = self.runs.drain().map(|(_, run)| run).collect();
        runs.sort_by_key(|run| run.run_idx);
        let mut spans = Vec::new();
        for run in runs {
            spans.extend(run.ended);
            let mut open: Vec<OpenSpan> = run.open.into_values().collect();
            open.sort_by_key(|span| (span.start_ns, span.span_id));
            for span in open {
                spans.push(span.into_wire(&run.trace_id, run.last_ns, None, true));
                self.stats.n_spans += 1;
                self.stats.n_unfinished_spans += 1;
            }
        }
        self.batch(spans)
    }

    fn batch(&mut self, spans: Vec<WireSpan>) -> Option<OtlpBatch> {
        if spans.is_empty() {
            return None;
        }
        self.stats.n_batches += 1;
        Some(OtlpBatch {
            service_name: self.service_name.clone(),
            spans,
        })
    }
}

/// Writes `records` to `out` as OTLP/JSON Lines: a line for each run when its last open span ends,
/// one for each `Dropped` record, and a last one with the spans still open at the end, marked
/// unfinished. `out` is written line by line, so wrap a file in a `BufWriter`.
pub fn export_otlp(
    records: impl IntoIterator<Item = TraceRecord>,
    out: &mut impl Write,
    service_name: &str,
) -> std::io::Result<OtlpStats> {
    let mut exporter = OtlpExporter::new(service_name);
    for record in records {
        if let Some(batch) = exporter.push(&record) {
            batch.write_json_line(out)?;
        }
    }
    if let Some(batch) = exporter.finish() {
        batch.write_json_line(out)?;
    }
    out.flush()?;
    Ok(exporter.stats())
}

/// What the exporter keeps of one run until its spans are handed out.
#[derive(Debug)]
struct RunState {
    trace_id: String,
    /// The order the run was first seen in, so batches list runs in input order.
    run_idx: u64,
    open: FxHashMap<u64, OpenSpan>,
    ended: Vec<WireSpan>,
    /// The open span without a parent, which takes the events that name no span.
    root_span_id: Option<u64>,
    /// The latest time seen in the run: where unfinished spans end.
    last_ns: u64,
}

impl RunState {
    fn new(run_id: &str, run_idx: u64) -> RunState {
        RunState {
            trace_id: trace_id_hex(run_id),
            run_idx,
            open: FxHashMap::default(),
            ended: Vec::new(),
            root_span_id: None,
            last_ns: 0,
        }
    }

    fn saw(&mut self, at_ns: u64) {
        self.last_ns = self.last_ns.max(at_ns);
    }
}

/// An open span: what its start said, and what its events added.
#[derive(Debug)]
struct OpenSpan {
    span_id: u64,
    parent_span_id: Option<u64>,
    name: String,
    kind: i32,
    start_ns: u64,
    attributes: Vec<KeyValue>,
    events: Vec<WireEvent>,
    usage: Option<Usage>,
    provider: Option<String>,
}

/// The token counts of a span's cost events, summed.
#[derive(Clone, Copy, Debug, Default)]
struct Usage {
    input_tokens: u64,
    output_tokens: u64,
    cached_tokens: u64,
    reasoning_tokens: u64,
}

impl OpenSpan {
    fn new(
        run_id: &str,
        agent_id: &str,
        task_id: Option<&str>,
        name: &str,
        kind: SpanKind,
    ) -> Self {
        let (span_name, operation, kind_name, otlp_kind) = match kind {
            SpanKind::Run => (
                format!("invoke_agent {name}"),
                Some("invoke_agent"),
                "run",
                SPAN_KIND_INTERNAL,
            ),
            SpanKind::Step => (name.to_string(), None, "step", SPAN_KIND_INTERNAL),
            SpanKind::LlmCall => (
                format!("chat {name}"),
                Some("chat"),
                "llm_call",
                SPAN_KIND_CLIENT,
            ),
            SpanKind::ToolCall => (
                format!("execute_tool {name}"),
                Some("execute_tool"),
                "tool_call",
                SPAN_KIND_INTERNAL,
            ),
        };
        let mut attributes = Vec::new();
        if let Some(operation) = operation {
            attributes.push(KeyValue::string("gen_ai.operation.name", operation));
        }
        attributes.push(KeyValue::string("gen_ai.agent.name", agent_id));
        match kind {
            SpanKind::LlmCall => attributes.push(KeyValue::string("gen_ai.request.model", name)),
            SpanKind::ToolCall => attributes.push(KeyValue::string("gen_ai.tool.name", name)),
            SpanKind::Run | SpanKind::Step => {}
        }
        attributes.push(KeyValue::string("fourfold.run.id", run_id));
        if let Some(task_id) = task_id {
            attributes.push(KeyValue::string("fourfold.task.id", task_id));
        }
        attributes.push(KeyValue::string("fourfold.span.kind", kind_name));
        OpenSpan {
            span_id: 0,
            parent_span_id: None,
            name: span_name,
            kind: otlp_kind,
            start_ns: 0,
            attributes,
            events: Vec::new(),
            usage: None,
            provider: None,
        }
    }

    fn record(&mut self, event: &Event) {
        let seq = KeyValue::int("fourfold.seq", event.seq);
        let (name, mut attributes) = match &event.kind {
            EventKind::Decision(decision) => {
                let mut attributes = vec![
                    KeyValue::string("fourfold.decision.choice", &decision.choice),
                    KeyValue::string("fourfold.decision.rationale", &decision.rationale),
                ];
                push_strings(
                    &mut attributes,
                    "fourfold.decision.alternatives",
                    decision.alternatives.iter().cloned(),
                );
                ("fourfold.decision", attributes)
            }
            EventKind::Action(action) => {
                let mut attributes = vec![
                    KeyValue::string("fourfold.action.tool", &action.tool),
                    KeyValue::string("fourfold.action.arguments", &action.arguments_json),
                ];
                if let Some(digest) = &action.result_digest {
                    attributes.push(KeyValue::string("fourfold.action.result_digest", digest));
                }
                if let Some(duration_ns) = action.duration_ns {
                    attributes.push(KeyValue::int("fourfold.action.duration_ns", duration_ns));
                }
                if let Some(error) = &action.error {
                    attributes.push(KeyValue::string("fourfold.action.error", error));
                }
                ("fourfold.action", attributes)
            }
            EventKind::Gate(gate) => {
                let mut attributes = vec![KeyValue::string(
                    "fourfold.gate.outcome",
                    gate.outcome.name(),
                )];
                if let Some(rule) = &gate.rule {
                    attributes.push(KeyValue::string("fourfold.gate.rule", &rule.id));
                    if let Some(file) = &rule.file {
                        attributes.push(KeyValue::string("fourfold.gate.rule.file", file));
                    }
                    if let Some(line) = rule.line {
                        attributes.push(KeyValue::int("fourfold.gate.rule.line", u64::from(line)));
                    }
                }
                push_strings(
                    &mut attributes,
                    "fourfold.gate.gates",
                    gate.gates.iter().cloned(),
                );
                if let Some(approval_id) = &gate.approval_id {
                    attributes.push(KeyValue::string("fourfold.gate.approval_id", approval_id));
                }
                if let Some(approver) = &gate.approver {
                    attributes.push(KeyValue::string("fourfold.gate.approver", approver));
                }
                attributes.push(KeyValue::string("fourfold.gate.reason", &gate.reason));
                attributes.push(KeyValue::string(
                    "fourfold.gate.request",
                    &gate.request_json,
                ));
                ("fourfold.gate", attributes)
            }
            EventKind::Cost(cost) => {
                let usage = self.usage.get_or_insert_with(Usage::default);
                usage.input_tokens = usage.input_tokens.saturating_add(cost.input_tokens);
                usage.output_tokens = usage.output_tokens.saturating_add(cost.output_tokens);
                usage.cached_tokens = usage.cached_tokens.saturating_add(cost.cached_tokens);
                usage.reasoning_tokens =
                    usage.reasoning_tokens.saturating_add(cost.reasoning_tokens);
                let mut attributes = vec![KeyValue::string("fourfold.cost.model", &cost.model)];
                if let Some(provider) = &cost.provider {
                    self.provider = Some(provider.clone());
                    attributes.push(KeyValue::string("fourfold.cost.provider", provider));
                }
                attributes.extend([
                    KeyValue::int("fourfold.cost.input_tokens", cost.input_tokens),
                    KeyValue::int("fourfold.cost.output_tokens", cost.output_tokens),
                    KeyValue::int("fourfold.cost.cached_tokens", cost.cached_tokens),
                    KeyValue::int("fourfold.cost.reasoning_tokens", cost.reasoning_tokens),
                    KeyValue::int("fourfold.cost.cache_write_tokens", cost.cache_write_tokens),
                    KeyValue::int("fourfold.cost.micros", cost.cost_micros),
                    KeyValue::string("fourfold.cost.currency", &cost.currency),
                    KeyValue::bool("fourfold.cost.estimated", cost.estimated),
                    KeyValue::int("fourfold.cost.saved_tokens", cost.saved_tokens),
                    KeyValue::int("fourfold.cost.saved_micros", cost.saved_micros),
                ]);
                if let Some(warning) = &cost.warning {
                    attributes.push(KeyValue::string("fourfold.cost.warning", warning));
                }
                ("fourfold.cost", attributes)
            }
            EventKind::Context(context) => {
                let mut attributes = Vec::new();
                if let Some(query) = &context.query {
                    attributes.push(KeyValue::string("fourfold.context.query", query));
                }
                push_strings(
                    &mut attributes,
                    "fourfold.context.sections",
                    context.sections.iter().map(|section| {
                        format!(
                            "{}#{}@v{} {}",
                            section.key, section.section_id, section.version, section.freshness
                        )
                    }),
                );
                attributes.extend([
                    KeyValue::int("fourfold.context.tokens_served", context.tokens_served),
                    KeyValue::int("fourfold.context.tokens_baseline", context.tokens_baseline),
                ]);
                if context.withheld > 0 {
                    attributes.push(KeyValue::int("fourfold.context.withheld", context.withheld));
                }
                ("fourfold.context", attributes)
            }
        };
        attributes.insert(0, seq);
        self.events.push(WireEvent {
            time_unix_nano: Nanos(event.timestamp_ns),
            name,
            attributes,
        });
    }

    /// The span as exported, ending at `end_ns` (or at its start, if that is later).
    fn into_wire(
        self,
        trace_id: &str,
        end_ns: u64,
        error: Option<&str>,
        unfinished: bool,
    ) -> WireSpan {
        let mut attributes = self.attributes;
        if let Some(provider) = self.provider {
            attributes.push(KeyValue::string("gen_ai.provider.name", provider));
        }
        if let Some(usage) = self.usage {
            attributes.extend([
                KeyValue::int("gen_ai.usage.input_tokens", usage.input_tokens),
                KeyValue::int("gen_ai.usage.output_tokens", usage.output_tokens),
                KeyValue::int("gen_ai.usage.cache_read.input_tokens", usage.cached_tokens),
                KeyValue::int(
                    "gen_ai.usage.reasoning.output_tokens",
                    usage.reasoning_tokens,
                ),
            ]);
        }
        if error.is_some() {
            attributes.push(KeyValue::string("error.type", "_OTHER"));
        }
        if unfinished {
            attributes.push(KeyValue::bool("fourfold.span.unfinished", true));
        }
        WireSpan {
            trace_id: trace_id.to_string(),
            span_id: span_id_hex(self.span_id),
            parent_span_id: self.parent_span_id.map(span_id_hex).unwrap_or_default(),
            name: self.name,
            kind: self.kind,
            start_time_unix_nano: Nanos(self.start_ns),
            end_time_unix_nano: Nanos(end_ns.max(self.start_ns)),
            attributes,
            events: self.events,
            status: error.map(|message| WireStatus {
                code: STATUS_CODE_ERROR,
                message: message.to_string(),
            }),
        }
    }
}

/// Adds a string-array attribute, unless the array is empty.
fn push_strings(
    attributes: &mut Vec<KeyValue>,
    key: &'static str,
    values: impl Iterator<Item = String>,
) {
    let values: Vec<AnyValue> = values.map(AnyValue::String).collect();
    if !values.is_empty() {
        attributes.push(KeyValue {
            key,
            value: AnyValue::Array(ArrayValue { values }),
        });
    }
}

#[cfg(test)]
mod tests;
