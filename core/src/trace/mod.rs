//! Tracer: a tamper-evident record of what agents decided, did, spent and were allowed.
//!
//! A [`Tracer`] records runs, nested spans and events of the five kinds; the agent's thread only
//! masks secrets and hands the record to a writer thread over a bounded channel, which writes it
//! to the [`Sink`]s. Installed as a plugin, the Tracer records every policy decision.
//!
//! The trace file is an append-only file of checksummed, hash-chained frames
//! ([`TraceWriter`], [`read`], [`verify`]), that survives crashes (a reader stops at the last whole
//! frame and reports the torn tail; a writer that reopens the file appends after it) and shows any
//! altered, removed, reordered or truncated frame. The format is in `docs/trace-format.md`.

mod diagnose;
mod err;
mod explain;
mod file;
mod legacy;
mod otlp;
#[cfg(feature = "postgres")]
mod postgres;
mod prefilter;
mod reader;
mod recycle;
mod redact;
mod report;
mod sink;
mod timeline;
mod tracer;

pub use diagnose::{Diagnosis, FailureKind};
pub use err::{FrameError, FrameProblem, TraceError};
pub use explain::{explain, CostTotals, ExplainedAction, ExplainedGate, Explanation, RunTotals};
pub use file::{
    decode, head_path, read, read_head, verify, FrameHash, TornTail, TraceContents, TraceHead,
    TraceWriter, Verified, HEADER, MAX_PAYLOAD_LEN,
};
pub use otlp::{
    export_otlp, otlp_certificate_from_env, otlp_headers_from_env, OtlpBatch, OtlpExporter,
    OtlpHttpMonitor, OtlpHttpOptions, OtlpHttpSink, OtlpHttpStats, OtlpJsonLinesSink, OtlpStats,
};
#[cfg(feature = "postgres")]
pub use postgres::PostgresTraceSink;
pub use reader::{
    EventKindName, Query, RunTree, Runs, RunsBuilder, SpanNode, TraceReader, UnknownName,
};
pub use redact::{RedactError, Redactor};
pub use report::html_report;
pub use sink::{Durability, JsonLinesSink, MemorySink, Sink, TraceFileSink};
pub use timeline::{run_ids, timeline, TimelineLine};
pub use tracer::{Overflow, Run, Span, Tracer, TracerBuilder};

use serde::{Deserialize, Serialize};

use crate::event::Event;

/// What a span stands for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SpanKind {
    /// A whole run of an agent (`invoke_agent` in OpenTelemetry's GenAI conventions).
    Run,
    /// A step of the agent's loop.
    Step,
    /// A call to a language model (`chat`).
    LlmCall,
    /// A tool call (`execute_tool`).
    ToolCall,
}

/// One record of a trace file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum TraceRecord {
    /// An event of any of the five kinds.
    Event(Event),
    /// A span began. Events carry the id of the span they happened in.
    SpanStart {
        /// The run the span belongs to.
        run_id: String,
        /// The agent of the run.
        agent_id: String,
        /// The task of the run, if any.
        task_id: Option<String>,
        /// The span's id, unique in its tracer.
        span_id: u64,
        /// The span it is nested in (none for a run's root span).
        parent_span_id: Option<u64>,
        /// What it is: the agent, model or tool name, or the step's name.
        name: String,
        /// What kind of span it is.
        kind: SpanKind,
        /// When it began, in nanoseconds since the Unix epoch.
        at_ns: u64,
    },
    /// A span ended.
    SpanEnd {
        /// The run the span belongs to.
        run_id: String,
        /// The span's id.
        span_id: u64,
        /// When it ended, in nanoseconds since the Unix epoch.
        at_ns: u64,
        /// The error it ended with, if it failed.
        error: Option<String>,
    },
    /// Events that were dropped because the writer could not keep up, so that the trace itself
    /// says that it is incomplete, and by how much.
    Dropped {
        /// How many events were dropped since the previous record of this kind.
        n_events: u64,
        /// When the drop was recorded, in nanoseconds since the Unix epoch.
        at_ns: u64,
    },
}
