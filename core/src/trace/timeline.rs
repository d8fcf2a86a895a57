//! A run as an indented timeline: its spans nested under their parents, each event in its span.

use std::collections::BTreeMap;
use std::fmt::Write;

use super::{SpanKind, TraceRecord};
use crate::event::{Event, EventKind};

/// One line of a timeline: how deep it is nested, and what it says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TimelineLine {
    /// Nesting depth: 0 for the run itself.
    pub depth: usize,
    /// The line's text.
    pub text: String,
}

/// The ids of the runs in `records`, in the order they first appear.
pub fn run_ids(records: &[TraceRecord]) -> Vec<String> {
    let mut run_ids: Vec<String> = Vec::new();
    for record in records {
        let run_id = match record {
            TraceRecord::Event(event) => &event.run_id,
            TraceRecord::SpanStart { run_id, .. } | TraceRecord::SpanEnd { run_id, .. } => run_id,
            TraceRecord::Dropped { .. } => continue,
        };
        if !run_ids.contains(run_id) {
            run_ids.push(run_id.clone());
        }
    }
    run_ids
}

fn span_label(kind: SpanKind, name: &str) -> String {
    match kind {
        SpanKind::Run => format!("invoke_agent {name}"),
        SpanKind::Step => format!("step {name}"),
        SpanKind::LlmCall => format!("chat {name}"),
        SpanKind::ToolCall => format!("execute_tool {name}"),
    }
}

fn describe_event(event: &Event) -> String {
    let mut text = format!("#{} ", event.seq);
    // INVARIANT: writing to a `String` cannot fail.
    let _ = match &event.kind {
        EventKind::Decision(decision) => write!(
            text,
            "decision: {} ({})",
            decision.choice, decision.rationale
        ),
        EventKind::Action(action) => match &action.error {
            Some(error) => write!(
                text,
                "action: {} {} failed: {error}",
                action.tool, action.arguments_json
            ),
            None => write!(text, "action: {} {}", action.tool, action.arguments_json),
        },
        EventKind::Gate(gate) => write!(text, "gate: {}: {}", gate.outcome.name(), gate.reason),
        EventKind::Cost(cost) => write!(
            text,
            "cost: {} in={} out={} cached={} {}.{:06} {}{}",
            cost.model,
            cost.input_tokens,
            cost.output_tokens,
            cost.cached_tokens,
            cost.cost_micros / 1_000_000,
            cost.cost_micros % 1_000_000,
            cost.currency,
            if cost.estimated { " (estimate)" } else { "" }
        ),
        EventKind::Context(context) => write!(
            text,
            "context: {} sections, {} tokens served (baseline {}){}",
            context.sections.len(),
            context.tokens_served,
            context.tokens_baseline,
            if context.withheld > 0 {
                format!(", {} document(s) withheld by the policy", context.withheld)
            } else {
                String::new()
            }
        ),
    };
    text
}

/// The timeline of run `run_id`: span starts and ends, and events, nested by span.
pub fn timeline(records: &[TraceRecord], run_id: &str) -> Vec<TimelineLine> {
    let mut depth_of_span: BTreeMap<u64, usize> = BTreeMap::new();
    let mut lines = Vec::new();
    for record in records {
        match record {
            TraceRecord::SpanStart {
                run_id: span_run,
                span_id,
                parent_span_id,
                name,
                kind,
                agent_id,
                task_id,
                ..
            } if span_run == run_id => {
                let depth = parent_span_id
                    .and_then(|parent| depth_of_span.get(&parent))
                    .map_or(0, |depth| depth + 1);
                depth_of_span.insert(*span_id, depth);
                let mut text = format!("▸ {}", span_label(*kind, name));
                if *kind == SpanKind::Run {
                    let _ = write!(
                        text,
                        " (agent {agent_id}{})",
                        task_id
                            .as_deref()
                            .map_or(String::new(), |task| format!(", task {task}"))
                    );
                }
                lines.push(TimelineLine { depth, text });
            }
            TraceRecord::SpanEnd {
                run_id: span_run,
                span_id,
                error,
                ..
            } if span_run == run_id => {
                let depth = depth_of_span.get(span_id).copied().unwrap_or(0);
                let text = match error {
                    Some(error) => format!("◂ failed: {error}"),
                    None => "◂ ok".to_string(),
                };
                lines.push(TimelineLine { depth, text });
            }
            TraceRecord::Event(event) if event.run_id == run_id => {
                let depth = event
                    .span_id
                    .and_then(|span| depth_of_span.get(&span))
                    .map_or(0, |depth| depth + 1);
                lines.push(TimelineLine {
                    depth,
                    text: describe_event(event),
                });
            }
            TraceRecord::Dropped { n_events, .. } => lines.push(TimelineLine {
                depth: 0,
                text: format!("! {n_events} events dropped here (the writer's queue was full)"),
            }),
            _ => {}
        }
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{ActionEvent, DecisionEvent};

    fn start(span_id: u64, parent: Option<u64>, kind: SpanKind, name: &str) -> TraceRecord {
        TraceRecord::SpanStart {
            run_id: "r1".into(),
            agent_id: "coder".into(),
            task_id: Some("T-1".into()),
            span_id,
            parent_span_id: parent,
            name: name.into(),
            kind,
            at_ns: 0,
        }
    }

    fn event(seq: u64, span_id: u64, kind: EventKind) -> TraceRecord {
        TraceRecord::Event(Event {
            run_id: "r1".into(),
            agent_id: "coder".into(),
            task_id: None,
            seq,
            timestamp_ns: 0,
            span_id: Some(span_id),
            parent_span_id: None,
            kind,
        })
    }

    #[test]
    fn nests_spans_and_events() {
        let records = vec![
            start(1, None, SpanKind::Run, "coder"),
            event(
                1,
                1,
                EventKind::Decision(DecisionEvent {
                    choice: "fix".into(),
                    rationale: "red".into(),
                    alternatives: vec![],
                }),
            ),
            start(2, Some(1), SpanKind::ToolCall, "bash"),
            event(
                2,
                2,
                EventKind::Action(ActionEvent {
                    tool: "bash".into(),
                    arguments_json: "{}".into(),
                    result_digest: None,
                    duration_ns: None,
                    error: Some("exit 1".into()),
                }),
            ),
            TraceRecord::SpanEnd {
                run_id: "r1".into(),
                span_id: 2,
                at_ns: 0,
                error: Some("exit 1".into()),
            },
            TraceRecord::Dropped {
                n_events: 3,
                at_ns: 0,
            },
            TraceRecord::SpanEnd {
                run_id: "r1".into(),
                span_id: 1,
                at_ns: 0,
                error: None,
            },
            TraceRecord::SpanEnd {
                run_id: "other".into(),
                span_id: 9,
                at_ns: 0,
                error: None,
            },
        ];
        let rendered: Vec<String> = timeline(&records, "r1")
            .into_iter()
            .map(|line| format!("{}{}", "  ".repeat(line.depth), line.text))
            .collect();
        assert_eq!(
            rendered,
            vec![
                "▸ invoke_agent coder (agent coder, task T-1)",
                "  #1 decision: fix (red)",
                "  ▸ execute_tool bash",
                "    #2 action: bash {} failed: exit 1",
                "  ◂ failed: exit 1",
                "! 3 events dropped here (the writer's queue was full)",
                "◂ ok",
            ]
        );
        assert_eq!(run_ids(&records), vec!["r1", "other"]);
    }
}
