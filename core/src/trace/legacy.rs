//! Trace format 2, the format before `withheld` was added to the context event.
//!
//! Bincode is not self-describing: a payload written in format 2 has no `withheld`, so it is read
//! through these copies of the records' types as they were, and the field is taken as 0. A format 2
//! file that a [`TraceWriter`](super::TraceWriter) appends to stays in format 2 (its frames are
//! hash-chained, so it cannot be rewritten), and the records appended to it are written through
//! these types too, without the field.

use serde::{Deserialize, Serialize};

use super::{SpanKind, TraceRecord};
use crate::event::{
    ActionEvent, ContextEvent, CostEvent, DecisionEvent, Event, EventKind, GateEvent, ServedSection,
};

/// [`TraceRecord`] in format 2.
#[derive(Serialize, Deserialize)]
pub(super) enum TraceRecordV2 {
    Event(EventV2),
    SpanStart {
        run_id: String,
        agent_id: String,
        task_id: Option<String>,
        span_id: u64,
        parent_span_id: Option<u64>,
        name: String,
        kind: SpanKind,
        at_ns: u64,
    },
    SpanEnd {
        run_id: String,
        span_id: u64,
        at_ns: u64,
        error: Option<String>,
    },
    Dropped {
        n_events: u64,
        at_ns: u64,
    },
}

/// [`Event`] in format 2.
#[derive(Serialize, Deserialize)]
pub(super) struct EventV2 {
    run_id: String,
    agent_id: String,
    task_id: Option<String>,
    seq: u64,
    timestamp_ns: u64,
    span_id: Option<u64>,
    parent_span_id: Option<u64>,
    kind: EventKindV2,
}

/// [`EventKind`] in format 2: only the context event differs.
#[derive(Serialize, Deserialize)]
enum EventKindV2 {
    Decision(DecisionEvent),
    Action(ActionEvent),
    Gate(GateEvent),
    Cost(CostEvent),
    Context(ContextEventV2),
}

/// [`ContextEvent`] in format 2: without `withheld`.
#[derive(Serialize, Deserialize)]
struct ContextEventV2 {
    query: Option<String>,
    sections: Vec<ServedSection>,
    tokens_served: u64,
    tokens_baseline: u64,
}

impl From<TraceRecordV2> for TraceRecord {
    fn from(record: TraceRecordV2) -> TraceRecord {
        match record {
            TraceRecordV2::Event(event) => TraceRecord::Event(Event {
                run_id: event.run_id,
                agent_id: event.agent_id,
                task_id: event.task_id,
                seq: event.seq,
                timestamp_ns: event.timestamp_ns,
                span_id: event.span_id,
                parent_span_id: event.parent_span_id,
                kind: match event.kind {
                    EventKindV2::Decision(decision) => EventKind::Decision(decision),
                    EventKindV2::Action(action) => EventKind::Action(action),
                    EventKindV2::Gate(gate) => EventKind::Gate(gate),
                    EventKindV2::Cost(cost) => EventKind::Cost(cost),
                    EventKindV2::Context(context) => EventKind::Context(ContextEvent {
                        query: context.query,
                        sections: context.sections,
                        tokens_served: context.tokens_served,
                        tokens_baseline: context.tokens_baseline,
                        withheld: 0,
                    }),
                },
            }),
            TraceRecordV2::SpanStart {
                run_id,
                agent_id,
                task_id,
                span_id,
                parent_span_id,
                name,
                kind,
                at_ns,
            } => TraceRecord::SpanStart {
                run_id,
                agent_id,
                task_id,
                span_id,
                parent_span_id,
                name,
                kind,
                at_ns,
            },
            TraceRecordV2::SpanEnd {
                run_id,
                span_id,
                at_ns,
                error,
            } => TraceRecord::SpanEnd {
                run_id,
                span_id,
                at_ns,
                error,
            },
            TraceRecordV2::Dropped { n_events, at_ns } => TraceRecord::Dropped { n_events, at_ns },
        }
    }
}

impl From<&TraceRecord> for TraceRecordV2 {
    /// The record as format 2 writes it: a context event loses its `withheld`.
    fn from(record: &TraceRecord) -> TraceRecordV2 {
        match record.clone() {
            TraceRecord::Event(event) => TraceRecordV2::Event(EventV2 {
                run_id: event.run_id,
                agent_id: event.agent_id,
                task_id: event.task_id,
                seq: event.seq,
                timestamp_ns: event.timestamp_ns,
                span_id: event.span_id,
                parent_span_id: event.parent_span_id,
                kind: match event.kind {
                    EventKind::Decision(decision) => EventKindV2::Decision(decision),
                    EventKind::Action(action) => EventKindV2::Action(action),
                    EventKind::Gate(gate) => EventKindV2::Gate(gate),
                    EventKind::Cost(cost) => EventKindV2::Cost(cost),
                    EventKind::Context(context) => EventKindV2::Context(ContextEventV2 {
                        query: context.query,
                        sections: context.sections,
                        tokens_served: context.tokens_served,
                        tokens_baseline: context.tokens_baseline,
                    }),
                },
            }),
            TraceRecord::SpanStart {
                run_id,
                agent_id,
                task_id,
                span_id,
                parent_span_id,
                name,
                kind,
                at_ns,
            } => TraceRecordV2::SpanStart {
                run_id,
                agent_id,
                task_id,
                span_id,
                parent_span_id,
                name,
                kind,
                at_ns,
            },
            TraceRecord::SpanEnd {
                run_id,
                span_id,
                at_ns,
                error,
            } => TraceRecordV2::SpanEnd {
                run_id,
                span_id,
                at_ns,
                error,
            },
            TraceRecord::Dropped { n_events, at_ns } => TraceRecordV2::Dropped { n_events, at_ns },
        }
    }
}
