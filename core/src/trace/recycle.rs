//! What the writer thread hands back to recording threads: written records, strings and all.
//!
//! A record's strings are allocated on the thread that records it. Freed on the writer thread,
//! they made glibc's allocator take the recording thread's arena lock on both threads for every
//! record, and the recording thread's own allocations were never served from its thread cache,
//! since nothing was freed there. So the writer hands each written record back in the box it came
//! in, and the recording thread that takes the box frees the record's strings when it puts its
//! next record in the box: in the steady state, a record's strings are freed on a recording
//! thread, into its thread cache, and the strings of its next records come from there.
//!
//! A record handed back holds its strings until a recording thread takes it, so the writer hands
//! back only records whose strings hold at most [`MAX_REUSED_BYTES`], and frees the strings of
//! larger ones itself.

use super::TraceRecord;
use crate::event::{
    ActionEvent, ContextEvent, CostEvent, DecisionEvent, Event, EventKind, GateEvent, RuleOrigin,
    ServedSection,
};

/// The most string capacity, in bytes, that a record handed back may hold; the writer frees the
/// strings of a larger one, so that the records waiting for a recording thread stay small.
pub(super) const MAX_REUSED_BYTES: usize = 512;

/// Calls `visit` on every string of `record`.
pub(super) fn for_each_string(record: &mut TraceRecord, visit: &mut impl FnMut(&mut String)) {
    match record {
        TraceRecord::Event(event) => for_each_event_string(event, visit),
        TraceRecord::SpanStart {
            run_id,
            agent_id,
            task_id,
            span_id: _,
            parent_span_id: _,
            name,
            kind: _,
            at_ns: _,
        } => {
            visit(run_id);
            visit(agent_id);
            task_id.iter_mut().for_each(&mut *visit);
            visit(name);
        }
        TraceRecord::SpanEnd {
            run_id,
            span_id: _,
            at_ns: _,
            error,
        } => {
            visit(run_id);
            error.iter_mut().for_each(&mut *visit);
        }
        TraceRecord::Dropped {
            n_events: _,
            at_ns: _,
        } => {}
    }
}

fn for_each_event_string(event: &mut Event, visit: &mut impl FnMut(&mut String)) {
    // Every struct is taken apart field by field, so that a new string field does not compile here
    // until it is visited.
    let Event {
        run_id,
        agent_id,
        task_id,
        seq: _,
        timestamp_ns: _,
        span_id: _,
        parent_span_id: _,
        kind,
    } = event;
    visit(run_id);
    visit(agent_id);
    task_id.iter_mut().for_each(&mut *visit);
    match kind {
        EventKind::Decision(DecisionEvent {
            choice,
            rationale,
            alternatives,
        }) => {
            visit(choice);
            visit(rationale);
            alternatives.iter_mut().for_each(&mut *visit);
        }
        EventKind::Action(ActionEvent {
            tool,
            arguments_json,
            result_digest,
            duration_ns: _,
            error,
        }) => {
            visit(tool);
            visit(arguments_json);
            result_digest.iter_mut().for_each(&mut *visit);
            error.iter_mut().for_each(&mut *visit);
        }
        EventKind::Gate(GateEvent {
            request_json,
            outcome: _,
            rule,
            gates,
            approval_id,
            approver,
            reason,
        }) => {
            visit(request_json);
            if let Some(RuleOrigin { id, file, line: _ }) = rule {
                visit(id);
                file.iter_mut().for_each(&mut *visit);
            }
            gates.iter_mut().for_each(&mut *visit);
            approval_id.iter_mut().for_each(&mut *visit);
            approver.iter_mut().for_each(&mut *visit);
            visit(reason);
        }
        EventKind::Cost(CostEvent {
            model,
            provider,
            input_tokens: _,
            output_tokens: _,
            cached_tokens: _,
            reasoning_tokens: _,
            cost_micros: _,
            currency,
            estimated: _,
            cache_write_tokens: _,
            saved_tokens: _,
            saved_micros: _,
            warning,
        }) => {
            visit(model);
            provider.iter_mut().for_each(&mut *visit);
            visit(currency);
            warning.iter_mut().for_each(&mut *visit);
        }
        EventKind::Context(ContextEvent {
            query,
            sections,
            tokens_served: _,
            tokens_baseline: _,
            withheld: _,
        }) => {
            query.iter_mut().for_each(&mut *visit);
            for ServedSection {
                key,
                section_id,
                version: _,
                freshness,
            } in sections
            {
                visit(key);
                visit(section_id);
                visit(freshness);
            }
        }
    }
}

/// The bytes of string capacity `record` holds.
pub(super) fn string_capacity(record: &mut TraceRecord) -> usize {
    let mut capacity = 0;
    for_each_string(record, &mut |text| capacity += text.capacity());
    capacity
}

#[cfg(test)]
mod tests {
    // Unit tests of the string visitor: every string of every record kind is visited, and the
    // capacity it sums is what the strings hold.

    use super::*;
    use crate::event::GateEventOutcome;
    use crate::trace::SpanKind;

    fn every_kind(tag: &str) -> Vec<TraceRecord> {
        let text = |name: &str| format!("{tag}-{name}");
        let event = |kind| {
            TraceRecord::Event(Event {
                run_id: text("run"),
                agent_id: text("agent"),
                task_id: Some(text("task")),
                seq: 1,
                timestamp_ns: 2,
                span_id: Some(3),
                parent_span_id: Some(4),
                kind,
            })
        };
        vec![
            event(EventKind::Decision(DecisionEvent {
                choice: text("choice"),
                rationale: text("rationale"),
                alternatives: vec![text("alternative-1"), text("alternative-2")],
            })),
            event(EventKind::Action(ActionEvent {
                tool: text("tool"),
                arguments_json: text("arguments"),
                result_digest: Some(text("digest")),
                duration_ns: Some(5),
                error: Some(text("error")),
            })),
            event(EventKind::Gate(GateEvent {
                request_json: text("request"),
                outcome: GateEventOutcome::Denied,
                rule: Some(RuleOrigin {
                    id: text("rule"),
                    file: Some(text("file")),
                    line: Some(1),
                }),
                gates: vec![text("gate")],
                approval_id: Some(text("approval")),
                approver: Some(text("approver")),
                reason: text("reason"),
            })),
            event(EventKind::Cost(CostEvent {
                model: text("model"),
                provider: Some(text("provider")),
                input_tokens: 1,
                output_tokens: 2,
                cached_tokens: 3,
                reasoning_tokens: 4,
                cost_micros: 5,
                currency: text("currency"),
                estimated: true,
                cache_write_tokens: 6,
                saved_tokens: 7,
                saved_micros: 8,
                warning: Some(text("warning")),
            })),
            event(EventKind::Context(ContextEvent {
                query: Some(text("query")),
                sections: vec![ServedSection {
                    key: text("key"),
                    section_id: text("section"),
                    version: 1,
                    freshness: text("freshness"),
                }],
                tokens_served: 1,
                tokens_baseline: 2,
                withheld: 0,
            })),
            TraceRecord::SpanStart {
                run_id: text("run"),
                agent_id: text("agent"),
                task_id: Some(text("task")),
                span_id: 1,
                parent_span_id: None,
                name: text("name"),
                kind: SpanKind::ToolCall,
                at_ns: 2,
            },
            TraceRecord::SpanEnd {
                run_id: text("run"),
                span_id: 1,
                at_ns: 2,
                error: Some(text("error")),
            },
            TraceRecord::Dropped {
                n_events: 1,
                at_ns: 2,
            },
        ]
    }

    #[test]
    fn every_string_of_every_kind_is_visited_once() {
        for mut record in every_kind("x") {
            let mut visited = Vec::new();
            for_each_string(&mut record, &mut |text| visited.push(text.clone()));
            // Every string of the records above starts with the tag, so the debug form shows each
            // of them once.
            let debug = format!("{record:?}");
            assert_eq!(visited.len(), debug.matches("\"x-").count(), "{debug}");
            for text in &visited {
                assert_eq!(debug.matches(&format!("{text:?}")).count(), 1, "{text}");
            }
        }
    }

    #[test]
    fn the_string_capacity_is_what_the_strings_hold() {
        for mut record in every_kind("x") {
            let mut expected = 0;
            for_each_string(&mut record, &mut |text| {
                text.reserve_exact(100);
                expected += text.capacity();
            });
            assert_eq!(string_capacity(&mut record), expected, "{record:?}");
        }
    }
}
