//! Export, then parse the output back with `opentelemetry-proto`'s serde types (which follow
//! the OTLP JSON mapping: hex ids, 64-bit integers as strings or numbers) and check it field by
//! field; the raw text is checked for the stricter parts of the mapping that those types would
//! also accept in another form (ids in hex, 64-bit integers as strings).
//!
//! The HTTP sink is checked against a collector stand-in on loopback that decodes what it receives
//! the same way.

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::common::v1::KeyValue as ProtoKeyValue;
use opentelemetry_proto::tonic::trace::v1::Span as ProtoSpan;

use super::*;
use crate::event::{
    ActionEvent, ContextEvent, CostEvent, DecisionEvent, GateEvent, GateEventOutcome, RuleOrigin,
    ServedSection,
};
use crate::trace::{Sink, TraceError};

fn start(
    run_id: &str,
    span_id: u64,
    parent_span_id: Option<u64>,
    name: &str,
    kind: SpanKind,
    at_ns: u64,
) -> TraceRecord {
    TraceRecord::SpanStart {
        run_id: run_id.into(),
        agent_id: "coder".into(),
        task_id: Some("T-12".into()),
        span_id,
        parent_span_id,
        name: name.into(),
        kind,
        at_ns,
    }
}

fn end(run_id: &str, span_id: u64, at_ns: u64, error: Option<&str>) -> TraceRecord {
    TraceRecord::SpanEnd {
        run_id: run_id.into(),
        span_id,
        at_ns,
        error: error.map(str::to_string),
    }
}

fn event(run_id: &str, span_id: u64, seq: u64, at_ns: u64, kind: EventKind) -> TraceRecord {
    TraceRecord::Event(Event {
        run_id: run_id.into(),
        agent_id: "coder".into(),
        task_id: Some("T-12".into()),
        seq,
        timestamp_ns: at_ns,
        span_id: Some(span_id),
        parent_span_id: None,
        kind,
    })
}

fn cost(input_tokens: u64, output_tokens: u64, provider: Option<&str>) -> EventKind {
    EventKind::Cost(CostEvent {
        model: "gpt-4o".into(),
        provider: provider.map(str::to_string),
        input_tokens,
        output_tokens,
        cached_tokens: input_tokens / 2,
        reasoning_tokens: output_tokens / 2,
        cost_micros: 450,
        currency: "USD".into(),
        estimated: false,
        cache_write_tokens: input_tokens / 4,
        saved_tokens: 0,
        saved_micros: 0,
        warning: provider
            .is_none()
            .then(|| "no price for model `gpt-4o`".to_string()),
    })
}

fn denied_gate() -> EventKind {
    EventKind::Gate(GateEvent {
        request_json: r#"{"action":"read","path":".env"}"#.into(),
        outcome: GateEventOutcome::Denied,
        rule: Some(RuleOrigin {
            id: "no-secrets".into(),
            file: Some("policy.toml".into()),
            line: Some(12),
        }),
        gates: vec!["human-review".into()],
        approval_id: None,
        approver: None,
        reason: "denied by rule `no-secrets`".into(),
    })
}

/// Run `run-a` (never completes: span 5 stays open), a `Dropped` record, then run `run-b`
/// (completes).
fn scenario() -> Vec<TraceRecord> {
    vec![
        start("run-a", 1, None, "coder", SpanKind::Run, 1_000),
        start("run-a", 2, Some(1), "plan", SpanKind::Step, 1_100),
        start("run-a", 3, Some(2), "gpt-4o", SpanKind::LlmCall, 1_200),
        event("run-a", 3, 1, 1_300, cost(100, 20, Some("openai"))),
        event("run-a", 3, 2, 1_350, cost(10, 2, None)),
        end("run-a", 3, 1_400, None),
        start("run-a", 4, Some(2), "bash", SpanKind::ToolCall, 1_500),
        event("run-a", 4, 3, 1_550, denied_gate()),
        event(
            "run-a",
            4,
            4,
            1_600,
            EventKind::Action(ActionEvent {
                tool: "bash".into(),
                arguments_json: r#"{"command":"cat .env"}"#.into(),
                result_digest: None,
                duration_ns: Some(50),
                error: Some("permission denied".into()),
            }),
        ),
        end("run-a", 4, 1_700, Some("exit 1")),
        start("run-a", 5, Some(2), "read_file", SpanKind::ToolCall, 1_800),
        event(
            "run-a",
            5,
            5,
            1_850,
            EventKind::Decision(DecisionEvent {
                choice: "read the docs".into(),
                rationale: "unsure".into(),
                alternatives: vec!["guess".into()],
            }),
        ),
        end("run-a", 2, 1_900, None),
        end("run-a", 1, 2_000, None),
        TraceRecord::Dropped {
            n_events: 7,
            at_ns: 2_500,
        },
        start("run-b", 10, None, "coder", SpanKind::Run, 3_000),
        event(
            "run-b",
            10,
            1,
            3_050,
            EventKind::Context(ContextEvent {
                query: Some("auth".into()),
                sections: vec![ServedSection {
                    key: "docs/auth.md".into(),
                    section_id: "s1".into(),
                    version: 3,
                    freshness: "canonical".into(),
                }],
                tokens_served: 100,
                tokens_baseline: 4_000,
                withheld: 2,
            }),
        ),
        end("run-b", 10, 3_100, None),
    ]
}

fn export(records: Vec<TraceRecord>) -> (String, OtlpStats) {
    let mut out = Vec::new();
    let stats = export_otlp(records, &mut out, "my-agent").unwrap();
    (String::from_utf8(out).unwrap(), stats)
}

fn parse(line: &str) -> ExportTraceServiceRequest {
    serde_json::from_str(line).unwrap_or_else(|error| panic!("{error}: {line}"))
}

fn spans(request: &ExportTraceServiceRequest) -> Vec<&ProtoSpan> {
    request
        .resource_spans
        .iter()
        .flat_map(|resource_spans| &resource_spans.scope_spans)
        .flat_map(|scope_spans| &scope_spans.spans)
        .collect()
}

fn value(attributes: &[ProtoKeyValue], key: &str) -> Option<Value> {
    let found: Vec<&ProtoKeyValue> = attributes.iter().filter(|kv| kv.key == key).collect();
    assert!(found.len() <= 1, "`{key}` repeats");
    found
        .first()
        .and_then(|kv| kv.value.as_ref())
        .and_then(|value| value.value.clone())
}

fn string(value: &str) -> Option<Value> {
    Some(Value::StringValue(value.into()))
}

fn int(value: i64) -> Option<Value> {
    Some(Value::IntValue(value))
}

fn trace_id(run_id: &str) -> Vec<u8> {
    blake3::hash(run_id.as_bytes()).as_bytes()[..16].to_vec()
}

fn span_id(id: u64) -> Vec<u8> {
    id.to_be_bytes().to_vec()
}

#[test]
fn the_output_parses_as_otlp_with_resource_and_scope() {
    let (text, stats) = export(scenario());
    let lines: Vec<&str> = text.lines().collect();
    // The dropped marker, run-b when it completes, then run-a with its unfinished span.
    assert_eq!(lines.len(), 3, "{text}");
    assert_eq!(
        stats,
        OtlpStats {
            n_runs: 2,
            n_spans: 6,
            n_unfinished_spans: 1,
            n_span_events: 6,
            n_dropped_events: 7,
            n_unmatched_records: 0,
            n_batches: 3,
        }
    );
    for line in &lines {
        let request = parse(line);
        assert_eq!(request.resource_spans.len(), 1);
        let resource_spans = &request.resource_spans[0];
        let resource = resource_spans.resource.as_ref().unwrap();
        assert_eq!(
            value(&resource.attributes, "service.name"),
            string("my-agent")
        );
        let scope = resource_spans.scope_spans[0].scope.as_ref().unwrap();
        assert_eq!(scope.name, "fourfold");
        assert_eq!(scope.version, env!("CARGO_PKG_VERSION"));
    }
    let dropped = parse(lines[0]);
    let dropped = spans(&dropped);
    assert_eq!(dropped.len(), 1);
    assert_eq!(dropped[0].name, "fourfold.dropped");
    assert_eq!(dropped[0].start_time_unix_nano, 2_500);
    assert_eq!(dropped[0].end_time_unix_nano, 2_500);
    assert_eq!(
        value(&dropped[0].attributes, "fourfold.dropped.count"),
        int(7)
    );
    assert_eq!(dropped[0].trace_id.len(), 16);
    assert_ne!(dropped[0].trace_id, trace_id("run-a"));
    assert_eq!(dropped[0].span_id.len(), 8);
    let run_b = parse(lines[1]);
    let run_b = spans(&run_b);
    assert_eq!(run_b.len(), 1);
    assert_eq!(run_b[0].trace_id, trace_id("run-b"));
    assert_eq!(run_b[0].events[0].name, "fourfold.context");
    assert_eq!(
        value(&run_b[0].events[0].attributes, "fourfold.context.sections"),
        Some(Value::ArrayValue(
            opentelemetry_proto::tonic::common::v1::ArrayValue {
                values: vec![opentelemetry_proto::tonic::common::v1::AnyValue {
                    value: string("docs/auth.md#s1@v3 canonical"),
                }],
            }
        ))
    );
    assert_eq!(
        value(
            &run_b[0].events[0].attributes,
            "fourfold.context.tokens_baseline"
        ),
        int(4_000)
    );
    assert_eq!(
        value(&run_b[0].events[0].attributes, "fourfold.context.withheld"),
        int(2)
    );
}

#[test]
fn spans_keep_their_tree_names_times_and_kinds() {
    let (text, _) = export(scenario());
    let run_a = parse(text.lines().nth(2).unwrap());
    let run_a = spans(&run_a);
    // (span id, parent, name, kind, start, end).
    type Expected = (u64, Option<u64>, &'static str, i32, u64, u64);
    let expected: [Expected; 5] = [
        (3, Some(2), "chat gpt-4o", 3, 1_200, 1_400),
        (4, Some(2), "execute_tool bash", 1, 1_500, 1_700),
        (2, Some(1), "plan", 1, 1_100, 1_900),
        (1, None, "invoke_agent coder", 1, 1_000, 2_000),
        (5, Some(2), "execute_tool read_file", 1, 1_800, 2_000),
    ];
    assert_eq!(run_a.len(), expected.len());
    for (span, (id, parent, name, kind, start_ns, end_ns)) in run_a.iter().zip(expected) {
        assert_eq!(span.trace_id, trace_id("run-a"), "{name}");
        assert_eq!(span.span_id, span_id(id), "{name}");
        assert_eq!(
            span.parent_span_id,
            parent.map(span_id).unwrap_or_default(),
            "{name}"
        );
        assert_eq!(span.name, name);
        assert_eq!(span.kind, kind, "{name}");
        assert_eq!(span.start_time_unix_nano, start_ns, "{name}");
        assert_eq!(span.end_time_unix_nano, end_ns, "{name}");
    }
}

#[test]
fn spans_carry_the_gen_ai_attributes() {
    let (text, _) = export(scenario());
    let run_a = parse(text.lines().nth(2).unwrap());
    let run_a = spans(&run_a);
    let by_name = |name: &str| *run_a.iter().find(|span| span.name == name).unwrap();
    // (span, attribute, value); `None` means absent.
    let cases: &[(&str, &str, Option<Value>)] = &[
        (
            "invoke_agent coder",
            "gen_ai.operation.name",
            string("invoke_agent"),
        ),
        ("invoke_agent coder", "gen_ai.agent.name", string("coder")),
        ("invoke_agent coder", "fourfold.run.id", string("run-a")),
        ("invoke_agent coder", "fourfold.task.id", string("T-12")),
        ("invoke_agent coder", "fourfold.span.kind", string("run")),
        ("invoke_agent coder", "gen_ai.usage.input_tokens", None),
        ("plan", "gen_ai.operation.name", None),
        ("plan", "fourfold.span.kind", string("step")),
        ("chat gpt-4o", "gen_ai.operation.name", string("chat")),
        ("chat gpt-4o", "gen_ai.request.model", string("gpt-4o")),
        ("chat gpt-4o", "gen_ai.provider.name", string("openai")),
        ("chat gpt-4o", "gen_ai.usage.input_tokens", int(110)),
        ("chat gpt-4o", "gen_ai.usage.output_tokens", int(22)),
        (
            "chat gpt-4o",
            "gen_ai.usage.cache_read.input_tokens",
            int(55),
        ),
        (
            "chat gpt-4o",
            "gen_ai.usage.reasoning.output_tokens",
            int(11),
        ),
        ("chat gpt-4o", "error.type", None),
        (
            "execute_tool bash",
            "gen_ai.operation.name",
            string("execute_tool"),
        ),
        ("execute_tool bash", "gen_ai.tool.name", string("bash")),
        ("execute_tool bash", "error.type", string("_OTHER")),
        ("execute_tool bash", "fourfold.span.unfinished", None),
        (
            "execute_tool read_file",
            "fourfold.span.unfinished",
            Some(Value::BoolValue(true)),
        ),
    ];
    for (span_name, key, expected) in cases {
        let span = by_name(span_name);
        assert_eq!(&value(&span.attributes, key), expected, "{span_name} {key}");
    }
    let status = |name: &str| by_name(name).status.clone();
    let failed = status("execute_tool bash").unwrap();
    assert_eq!((failed.code, failed.message.as_str()), (2, "exit 1"));
    assert_eq!(status("chat gpt-4o"), None);
    assert_eq!(status("execute_tool read_file"), None);
}

#[test]
fn events_become_span_events_with_their_details() {
    let (text, _) = export(scenario());
    let run_a = parse(text.lines().nth(2).unwrap());
    let run_a = spans(&run_a);
    let by_name = |name: &str| *run_a.iter().find(|span| span.name == name).unwrap();
    let chat = by_name("chat gpt-4o");
    let names: Vec<(&str, u64)> = chat
        .events
        .iter()
        .map(|event| (event.name.as_str(), event.time_unix_nano))
        .collect();
    assert_eq!(names, [("fourfold.cost", 1_300), ("fourfold.cost", 1_350)]);
    let bash = by_name("execute_tool bash");
    assert_eq!(bash.events.len(), 2);
    let (gate, action) = (&bash.events[0].attributes, &bash.events[1].attributes);
    assert_eq!(bash.events[0].name, "fourfold.gate");
    assert_eq!(bash.events[0].time_unix_nano, 1_550);
    assert_eq!(bash.events[1].name, "fourfold.action");
    let strings = |values: &[&str]| {
        Some(Value::ArrayValue(
            opentelemetry_proto::tonic::common::v1::ArrayValue {
                values: values
                    .iter()
                    .map(|value| opentelemetry_proto::tonic::common::v1::AnyValue {
                        value: string(value),
                    })
                    .collect(),
            },
        ))
    };
    // (attributes, key, value); `None` means absent.
    let cases: &[(&[ProtoKeyValue], &str, Option<Value>)] = &[
        (gate, "fourfold.seq", int(3)),
        (gate, "fourfold.gate.outcome", string("denied")),
        (gate, "fourfold.gate.rule", string("no-secrets")),
        (gate, "fourfold.gate.rule.file", string("policy.toml")),
        (gate, "fourfold.gate.rule.line", int(12)),
        (gate, "fourfold.gate.gates", strings(&["human-review"])),
        (gate, "fourfold.gate.approval_id", None),
        (gate, "fourfold.gate.approver", None),
        (
            gate,
            "fourfold.gate.reason",
            string("denied by rule `no-secrets`"),
        ),
        (
            gate,
            "fourfold.gate.request",
            string(r#"{"action":"read","path":".env"}"#),
        ),
        (action, "fourfold.action.tool", string("bash")),
        (
            action,
            "fourfold.action.arguments",
            string(r#"{"command":"cat .env"}"#),
        ),
        (action, "fourfold.action.result_digest", None),
        (action, "fourfold.action.duration_ns", int(50)),
        (action, "fourfold.action.error", string("permission denied")),
        (
            &chat.events[0].attributes,
            "fourfold.cost.provider",
            string("openai"),
        ),
        (&chat.events[0].attributes, "fourfold.cost.micros", int(450)),
        (
            &chat.events[0].attributes,
            "fourfold.cost.currency",
            string("USD"),
        ),
        (
            &chat.events[0].attributes,
            "fourfold.cost.estimated",
            Some(Value::BoolValue(false)),
        ),
        (
            &chat.events[0].attributes,
            "fourfold.cost.cache_write_tokens",
            int(100 / 4),
        ),
        (&chat.events[0].attributes, "fourfold.cost.warning", None),
        (
            &chat.events[1].attributes,
            "fourfold.cost.warning",
            string("no price for model `gpt-4o`"),
        ),
        (&chat.events[1].attributes, "fourfold.cost.provider", None),
        (
            &chat.events[1].attributes,
            "fourfold.cost.input_tokens",
            int(10),
        ),
    ];
    for (attributes, key, expected) in cases {
        assert_eq!(&value(attributes, key), expected, "{key}");
    }
    let decision = &by_name("execute_tool read_file").events[0];
    assert_eq!(decision.name, "fourfold.decision");
    assert_eq!(
        value(&decision.attributes, "fourfold.decision.alternatives"),
        strings(&["guess"])
    );
}

#[test]
fn the_text_follows_the_json_mapping() {
    let (text, _) = export(scenario());
    for line in text.lines() {
        let json: serde_json::Value = serde_json::from_str(line).unwrap();
        let spans = json["resourceSpans"][0]["scopeSpans"][0]["spans"]
            .as_array()
            .unwrap();
        for span in spans {
            let is_hex = |value: &serde_json::Value, len: usize| {
                value.as_str().is_some_and(|text| {
                    text.len() == len
                        && text
                            .chars()
                            .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c))
                })
            };
            assert!(is_hex(&span["traceId"], 32), "{span}");
            assert!(is_hex(&span["spanId"], 16), "{span}");
            assert!(
                span.get("parentSpanId")
                    .is_none_or(|parent| is_hex(parent, 16)),
                "{span}"
            );
            assert!(span["startTimeUnixNano"].is_string(), "{span}");
            assert!(span["endTimeUnixNano"].is_string(), "{span}");
            assert!(span["kind"].is_i64(), "{span}");
            for event in span["events"].as_array().into_iter().flatten() {
                assert!(event["timeUnixNano"].is_string(), "{event}");
            }
        }
    }
    // Spot checks of exact text.
    assert!(text.contains(r#""spanId":"0000000000000004","parentSpanId":"0000000000000002""#));
    assert!(text.contains(r#"{"key":"gen_ai.usage.input_tokens","value":{"intValue":"110"}}"#));
    assert!(text.contains(r#""status":{"code":2,"message":"exit 1"}"#));
    assert!(text.contains(r#""startTimeUnixNano":"1000""#));
    let trace_id_hex: String = trace_id("run-a")
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect();
    assert!(text.contains(&format!(r#""traceId":"{trace_id_hex}""#)));
}

#[test]
fn records_that_match_no_open_span_are_counted_not_exported() {
    let cases: Vec<(&str, Vec<TraceRecord>)> = vec![
        (
            "event before any span",
            vec![event("run-x", 1, 1, 10, cost(1, 1, None))],
        ),
        ("end without start", vec![end("run-x", 1, 10, None)]),
        (
            "event in an unknown span",
            vec![
                start("run-x", 1, None, "coder", SpanKind::Run, 10),
                event("run-x", 9, 1, 11, cost(1, 1, None)),
                end("run-x", 1, 12, None),
            ],
        ),
        (
            "end twice",
            vec![
                start("run-x", 1, None, "coder", SpanKind::Run, 10),
                end("run-x", 1, 12, None),
                end("run-x", 1, 13, None),
            ],
        ),
        (
            "start twice",
            vec![
                start("run-x", 1, None, "coder", SpanKind::Run, 10),
                start("run-x", 1, None, "coder", SpanKind::Run, 11),
                end("run-x", 1, 12, None),
            ],
        ),
    ];
    for (what, records) in cases {
        let (text, stats) = export(records);
        assert_eq!(stats.n_unmatched_records, 1, "{what}");
        for line in text.lines() {
            parse(line);
        }
    }
}

#[test]
fn ids_are_never_zero_and_ends_never_precede_starts() {
    let (text, stats) = export(vec![
        start("run-z", 0, None, "coder", SpanKind::Run, 500),
        end("run-z", 0, 400, None),
    ]);
    assert_eq!(stats.n_spans, 1);
    let request = parse(text.trim_end());
    let span = spans(&request)[0];
    assert_eq!(span.span_id, span_id(u64::MAX));
    assert_eq!(
        (span.start_time_unix_nano, span.end_time_unix_nano),
        (500, 500)
    );
}

#[test]
fn events_without_a_span_go_to_the_run_span() {
    let mut run_event = event("run-c", 1, 1, 15, cost(3, 4, Some("anthropic")));
    if let TraceRecord::Event(event) = &mut run_event {
        event.span_id = None;
    }
    let (text, stats) = export(vec![
        start("run-c", 1, None, "coder", SpanKind::Run, 10),
        run_event,
        end("run-c", 1, 20, None),
    ]);
    assert_eq!(stats.n_span_events, 1);
    let request = parse(text.trim_end());
    let span = spans(&request)[0];
    assert_eq!(span.events[0].name, "fourfold.cost");
    assert_eq!(
        value(&span.attributes, "gen_ai.provider.name"),
        string("anthropic")
    );
}

#[test]
fn the_sink_writes_runs_as_they_end_and_open_spans_when_closed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("otlp.jsonl");
    let read_lines = || -> Vec<String> {
        std::fs::read_to_string(&path)
            .unwrap()
            .lines()
            .map(str::to_string)
            .collect()
    };
    let mut sink = OtlpJsonLinesSink::open(&path, "fourfold").unwrap();
    for record in [
        start("run-a", 1, None, "coder", SpanKind::Run, 1_000),
        start("run-a", 2, Some(1), "gpt-4o", SpanKind::LlmCall, 1_100),
        end("run-a", 2, 1_200, None),
    ] {
        sink.write(&record).unwrap();
    }
    sink.flush().unwrap();
    let lines = read_lines();
    assert_eq!(lines.len(), 1, "flush writes the span that ended");
    assert_eq!(spans(&parse(&lines[0]))[0].name, "chat gpt-4o");
    sink.write(&start(
        "run-a",
        3,
        Some(1),
        "bash",
        SpanKind::ToolCall,
        1_300,
    ))
    .unwrap();
    sink.write(&end("run-a", 3, 1_400, None)).unwrap();
    sink.flush().unwrap();
    assert_eq!(read_lines().len(), 2);
    drop(sink);
    let lines = read_lines();
    assert_eq!(lines.len(), 3, "dropping writes the open run span");
    let last = parse(&lines[2]);
    let run_span = spans(&last)[0];
    assert_eq!(run_span.name, "invoke_agent coder");
    assert_eq!(run_span.end_time_unix_nano, 1_400);
    assert_eq!(
        value(&run_span.attributes, "fourfold.span.unfinished"),
        Some(Value::BoolValue(true))
    );
    let mut sink = OtlpJsonLinesSink::open(&path, "fourfold").unwrap();
    sink.write(&start("run-d", 1, None, "coder", SpanKind::Run, 5))
        .unwrap();
    sink.write(&end("run-d", 1, 6, None)).unwrap();
    let stats = sink.close().unwrap();
    assert_eq!((stats.n_runs, stats.n_spans, stats.n_batches), (1, 1, 1));
    assert_eq!(read_lines().len(), 4, "the sink appends");
}

#[test]
fn a_tracer_with_the_sink_exports_its_runs() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("otlp.jsonl");
    let tracer = crate::trace::Tracer::builder()
        .sink(OtlpJsonLinesSink::open(&path, "fourfold").unwrap())
        .build()
        .unwrap();
    let run = tracer.start_run("coder", None);
    let tool = run.span("bash", SpanKind::ToolCall);
    tool.end(Some("exit 2"));
    run.end(None);
    tracer.close().unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 1, "{text}");
    let request = parse(lines[0]);
    let names: Vec<&str> = spans(&request)
        .iter()
        .map(|span| span.name.as_str())
        .collect();
    assert_eq!(names, ["execute_tool bash", "invoke_agent coder"]);
}

/// A collector stand-in on loopback: answers the posts with `statuses` in turn (then 200), and
/// decodes every body it accepts with the OpenTelemetry project's own definitions.
struct Collector {
    endpoint: String,
    server: std::sync::Arc<tiny_http::Server>,
    received: std::thread::JoinHandle<(Vec<ExportTraceServiceRequest>, usize)>,
}

impl Collector {
    fn start(statuses: Vec<u16>) -> Collector {
        let server = std::sync::Arc::new(tiny_http::Server::http("127.0.0.1:0").unwrap());
        let endpoint = format!("http://{}/v1/traces", server.server_addr());
        let listening = std::sync::Arc::clone(&server);
        let received = std::thread::spawn(move || {
            let mut statuses = statuses.into_iter();
            let mut accepted = Vec::new();
            let mut n_posts = 0;
            while let Ok(mut request) = listening.recv() {
                n_posts += 1;
                assert_eq!(request.url(), "/v1/traces");
                let content_type = request
                    .headers()
                    .iter()
                    .find(|header| header.field.equiv("Content-Type"))
                    .map(|header| header.value.to_string());
                assert_eq!(content_type.as_deref(), Some("application/json"));
                let mut body = String::new();
                std::io::Read::read_to_string(request.as_reader(), &mut body).unwrap();
                let status = statuses.next().unwrap_or(200);
                if status == 200 {
                    accepted.push(parse(&body));
                }
                request.respond(tiny_http::Response::empty(status)).unwrap();
            }
            (accepted, n_posts)
        });
        Collector {
            endpoint,
            server,
            received,
        }
    }

    fn stop(self) -> (Vec<ExportTraceServiceRequest>, usize) {
        self.server.unblock();
        self.received.join().unwrap()
    }
}

fn post_scenario(endpoint: &str, options: OtlpHttpOptions) -> (OtlpHttpStats, OtlpHttpMonitor) {
    let mut sink = OtlpHttpSink::new(endpoint, "my-agent", options).unwrap();
    let monitor = sink.monitor();
    for record in scenario() {
        sink.write(&record).unwrap();
    }
    sink.flush().unwrap();
    (sink.close(), monitor)
}

fn quick(max_attempts: u32) -> OtlpHttpOptions {
    OtlpHttpOptions {
        max_attempts,
        backoff: std::time::Duration::from_millis(1),
        ..OtlpHttpOptions::default()
    }
}

#[test]
fn the_http_sink_posts_what_a_collector_decodes_and_retries_a_busy_one() {
    let collector = Collector::start(vec![503]);
    let (stats, monitor) = post_scenario(&collector.endpoint, quick(5));
    let (accepted, n_posts) = collector.stop();
    let (lines, _) = export(scenario());
    let expected: Vec<ProtoSpan> = lines
        .lines()
        .flat_map(|line| spans(&parse(line)).into_iter().cloned().collect::<Vec<_>>())
        .collect();
    let posted: Vec<ProtoSpan> = accepted
        .iter()
        .flat_map(|request| spans(request).into_iter().cloned().collect::<Vec<_>>())
        .collect();
    assert_eq!(
        posted, expected,
        "the collector got what the JSON Lines sink writes"
    );
    assert_eq!(stats.n_retries, 1);
    assert_eq!(n_posts as u64, stats.n_batches_sent + 1);
    assert_eq!(stats.n_spans_sent, expected.len() as u64);
    assert_eq!((stats.n_batches_failed, stats.n_batches_dropped), (0, 0));
    assert_eq!(monitor.stats(), stats);
    let service = &accepted[0].resource_spans[0]
        .resource
        .as_ref()
        .unwrap()
        .attributes;
    assert_eq!(value(service, "service.name"), string("my-agent"));
}

#[test]
fn a_refused_batch_is_counted_not_retried() {
    let collector = Collector::start(vec![400; 10]);
    let (stats, _) = post_scenario(&collector.endpoint, quick(5));
    let (accepted, n_posts) = collector.stop();
    assert!(accepted.is_empty());
    assert_eq!(stats.n_retries, 0);
    assert_eq!(stats.n_batches_failed, n_posts as u64);
    assert!(stats.n_batches_failed > 0);
}

#[test]
fn a_collector_that_is_down_never_blocks_the_writer() {
    // A port nobody listens on: every post fails to connect.
    let endpoint = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}/v1/traces", listener.local_addr().unwrap())
    };
    let options = OtlpHttpOptions {
        queue: 1,
        ..quick(2)
    };
    let mut sink = OtlpHttpSink::new(&endpoint, "my-agent", options).unwrap();
    for round in 0..50u64 {
        for record in scenario() {
            let record = match record {
                TraceRecord::SpanStart {
                    run_id,
                    agent_id,
                    task_id,
                    span_id,
                    parent_span_id,
                    name,
                    kind,
                    at_ns,
                } => TraceRecord::SpanStart {
                    run_id: format!("{run_id}-{round}"),
                    agent_id,
                    task_id,
                    span_id,
                    parent_span_id,
                    name,
                    kind,
                    at_ns,
                },
                other => other,
            };
            sink.write(&record).unwrap();
        }
    }
    let stats = sink.close();
    assert_eq!(stats.n_batches_sent, 0);
    assert!(stats.n_batches_dropped > 0, "{stats:?}");
    assert!(stats.n_batches_failed > 0, "{stats:?}");
}

#[test]
fn only_http_and_https_endpoints_are_taken() {
    for endpoint in ["not a url", "ftp://x/v1/traces", "file:///tmp/traces"] {
        assert!(
            matches!(
                OtlpHttpSink::new(endpoint, "a", OtlpHttpOptions::default()),
                Err(TraceError::Sink { .. })
            ),
            "{endpoint}"
        );
    }
    let sink = OtlpHttpSink::new(
        "https://collector.example.com/v1/traces",
        "a",
        OtlpHttpOptions::default(),
    );
    assert!(sink.is_ok());
}

const TEST_CA: &[u8] = include_bytes!("testdata/ca.pem");

/// An HTTPS collector stand-in on loopback, serving `testdata/server.pem` (for `127.0.0.1`,
/// signed by `testdata/ca.pem`): answers every post 200 and closes the connection.
struct HttpsCollector {
    endpoint: String,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    address: std::net::SocketAddr,
    /// The posts' bodies, and how many connections failed their TLS handshake.
    served: std::thread::JoinHandle<(Vec<String>, usize)>,
}

impl HttpsCollector {
    fn start() -> HttpsCollector {
        use std::io::{Read, Write};
        let der = |pem: &[u8]| -> Vec<Vec<u8>> {
            ureq::tls::parse_pem(pem)
                .filter_map(|item| match item.unwrap() {
                    ureq::tls::PemItem::Certificate(cert) => Some(cert.der().to_vec()),
                    ureq::tls::PemItem::PrivateKey(key) => Some(key.der().to_vec()),
                    _ => None,
                })
                .collect()
        };
        let chain = der(include_bytes!("testdata/server.pem"))
            .into_iter()
            .map(rustls::pki_types::CertificateDer::from)
            .collect();
        let key = rustls::pki_types::PrivateKeyDer::Pkcs8(
            der(include_bytes!("testdata/server.key")).remove(0).into(),
        );
        let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
        let config = std::sync::Arc::new(
            rustls::ServerConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_no_client_auth()
                .with_single_cert(chain, key)
                .unwrap(),
        );
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stopping = std::sync::Arc::clone(&stop);
        let served = std::thread::spawn(move || {
            let (mut bodies, mut n_refused) = (Vec::new(), 0);
            for stream in listener.incoming() {
                if stopping.load(std::sync::atomic::Ordering::SeqCst) {
                    break;
                }
                let connection = rustls::ServerConnection::new(std::sync::Arc::clone(&config));
                let mut tls = rustls::StreamOwned::new(connection.unwrap(), stream.unwrap());
                let mut request = Vec::new();
                let mut buffer = [0u8; 4096];
                let complete = loop {
                    match tls.read(&mut buffer) {
                        Ok(0) | Err(_) => break None,
                        Ok(n) => request.extend_from_slice(&buffer[..n]),
                    }
                    let text = String::from_utf8_lossy(&request).into_owned();
                    let Some((head, body)) = text.split_once("\r\n\r\n") else {
                        continue;
                    };
                    let length: usize = head
                        .lines()
                        .find_map(|line| {
                            let (name, value) = line.split_once(':')?;
                            name.eq_ignore_ascii_case("content-length")
                                .then(|| value.trim().parse().ok())?
                        })
                        .unwrap_or(0);
                    if body.len() >= length {
                        break Some(body.to_string());
                    }
                };
                match complete {
                    Some(body) => {
                        bodies.push(body);
                        let _ = tls.write_all(
                            b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                        );
                        tls.conn.send_close_notify();
                        let _ = tls.flush();
                    }
                    None => n_refused += 1,
                }
            }
            (bodies, n_refused)
        });
        HttpsCollector {
            endpoint: format!("https://{address}/v1/traces"),
            stop,
            address,
            served,
        }
    }

    fn stop(self) -> (Vec<String>, usize) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        let _ = std::net::TcpStream::connect(self.address);
        self.served.join().unwrap()
    }
}

#[test]
fn https_posts_reach_a_collector_whose_certificate_chains_to_the_given_root() {
    let collector = HttpsCollector::start();
    let options = OtlpHttpOptions {
        root_certificates: Some(TEST_CA.to_vec()),
        ..quick(1)
    };
    let (stats, _) = post_scenario(&collector.endpoint, options);
    let (bodies, n_refused) = collector.stop();
    assert!(stats.n_batches_sent > 0, "{stats:?}");
    assert_eq!(bodies.len() as u64, stats.n_batches_sent);
    assert_eq!((stats.n_batches_failed, n_refused), (0, 0));
    let posted: usize = bodies.iter().map(|body| spans(&parse(body)).len()).sum();
    assert_eq!(posted as u64, stats.n_spans_sent);
}

#[test]
fn https_to_a_collector_the_roots_do_not_vouch_for_fails_and_sends_nothing() {
    // Mozilla's roots (the default) do not include the test CA: no post may go out.
    let collector = HttpsCollector::start();
    let (stats, _) = post_scenario(&collector.endpoint, quick(1));
    let (bodies, n_refused) = collector.stop();
    assert!(bodies.is_empty());
    assert_eq!(stats.n_batches_sent, 0);
    assert!(stats.n_batches_failed > 0 && n_refused > 0, "{stats:?}");
}

#[test]
fn a_root_certificate_that_is_not_pem_is_refused_up_front() {
    for pem in [
        &b"not a certificate"[..],
        include_bytes!("testdata/server.key"),
    ] {
        let options = OtlpHttpOptions {
            root_certificates: Some(pem.to_vec()),
            ..quick(1)
        };
        assert!(matches!(
            OtlpHttpSink::new("https://127.0.0.1:1/v1/traces", "a", options),
            Err(TraceError::Sink { .. })
        ));
    }
}

#[test]
fn headers_lists_parse_as_the_opentelemetry_variables_write_them() {
    assert_eq!(
        http::parse_otlp_headers(" api-key=abc%20def%3D , x-team=blue,,").unwrap(),
        vec![
            ("api-key".to_string(), "abc def=".to_string()),
            ("x-team".to_string(), "blue".to_string()),
        ]
    );
    assert_eq!(http::parse_otlp_headers("").unwrap(), vec![]);
    assert!(http::parse_otlp_headers("no-equals").is_err());
    assert!(http::parse_otlp_headers("=value").is_err());
    assert!(http::parse_otlp_headers("k=%FF").is_err());
}

#[test]
fn posts_carry_the_configured_headers_and_bad_ones_are_refused_up_front() {
    let server = std::sync::Arc::new(tiny_http::Server::http("127.0.0.1:0").unwrap());
    let endpoint = format!("http://{}/v1/traces", server.server_addr());
    let listening = std::sync::Arc::clone(&server);
    let seen = std::thread::spawn(move || {
        let mut seen = Vec::new();
        while let Ok(mut request) = listening.recv() {
            let headers: Vec<(String, String)> = request
                .headers()
                .iter()
                .map(|header| {
                    (
                        header.field.to_string().to_ascii_lowercase(),
                        header.value.to_string(),
                    )
                })
                .collect();
            seen.push(headers);
            let mut body = String::new();
            std::io::Read::read_to_string(request.as_reader(), &mut body).unwrap();
            request.respond(tiny_http::Response::empty(200)).unwrap();
        }
        seen
    });
    let options = OtlpHttpOptions {
        headers: http::parse_otlp_headers("api-key=abc%20def,x-team=blue").unwrap(),
        ..quick(1)
    };
    let (stats, _) = post_scenario(&endpoint, options);
    server.unblock();
    let seen = seen.join().unwrap();
    assert!(stats.n_batches_sent > 0 && seen.len() as u64 == stats.n_batches_sent);
    for headers in &seen {
        assert!(headers.contains(&("api-key".to_string(), "abc def".to_string())));
        assert!(headers.contains(&("x-team".to_string(), "blue".to_string())));
    }
    for bad in [("bad name", "v"), ("x-ok", "line\nbreak")] {
        let options = OtlpHttpOptions {
            headers: vec![(bad.0.to_string(), bad.1.to_string())],
            ..quick(1)
        };
        assert!(matches!(
            OtlpHttpSink::new(&endpoint, "my-agent", options),
            Err(TraceError::Sink { .. })
        ));
    }
}
