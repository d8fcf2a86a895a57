//! The Tracer end to end: nested spans and events of every kind, many threads into one tracer,
//! one sequence per run whichever way its events come, a span that outlives its run, what happens
//! when the queue is full, policy decisions recorded through the plugin, redaction, the trace file
//! sink, and a failing sink.

use std::sync::{Arc, Barrier};

use fourfold::trace::{
    self, Durability, MemorySink, Overflow, Sink, SpanKind, TraceError, TraceFileSink, TraceRecord,
    Tracer,
};
use fourfold::{
    ActionEvent, ActionRef, CostEvent, DecisionEvent, EventKind, GateEvent, GateEventOutcome,
    PluginRegistry, Policy, Request, Verdict,
};

fn decision(choice: &str) -> EventKind {
    EventKind::Decision(DecisionEvent {
        choice: choice.to_string(),
        rationale: String::new(),
        alternatives: vec![],
    })
}

fn gate(reason: &str) -> EventKind {
    EventKind::Gate(GateEvent {
        request_json: "{}".into(),
        outcome: GateEventOutcome::Allowed,
        rule: None,
        gates: vec![],
        approval_id: None,
        approver: None,
        reason: reason.to_string(),
    })
}

fn memory_tracer(overflow: Overflow, capacity: usize) -> (Tracer, MemorySink) {
    let sink = MemorySink::new();
    let tracer = Tracer::builder()
        .sink(sink.clone())
        .overflow(overflow)
        .capacity(capacity)
        .build()
        .unwrap();
    (tracer, sink)
}

fn events(records: &[TraceRecord]) -> Vec<&fourfold::Event> {
    records
        .iter()
        .filter_map(|record| match record {
            TraceRecord::Event(event) => Some(event),
            _ => None,
        })
        .collect()
}

#[test]
fn spans_nest_and_events_name_their_span() {
    let (tracer, sink) = memory_tracer(Overflow::Block, 1024);
    let run = tracer.start_run("coder", Some("T-12"));
    let run_id = run.id().to_string();
    run.record(decision("plan"));
    {
        let step = run.span("fix the login bug", SpanKind::Step);
        let llm = step.child("gpt-4o", SpanKind::LlmCall);
        llm.record(EventKind::Cost(CostEvent {
            model: "gpt-4o".into(),
            provider: Some("openai".into()),
            input_tokens: 10,
            output_tokens: 5,
            cached_tokens: 0,
            reasoning_tokens: 0,
            cost_micros: 75,
            currency: "USD".into(),
            estimated: false,
            cache_write_tokens: 0,
            saved_tokens: 0,
            saved_micros: 0,
            warning: None,
        }));
        llm.end(None);
        let tool = step.child("bash", SpanKind::ToolCall);
        tool.record(EventKind::Action(ActionEvent {
            tool: "bash".into(),
            arguments_json: "{\"command\":\"cargo test\"}".into(),
            result_digest: None,
            duration_ns: Some(10),
            error: Some("exit 101".into()),
        }));
        tool.end(Some("exit 101"));
    }
    run.end(None);
    tracer.flush().unwrap();

    let records = sink.records();
    let starts: Vec<(u64, Option<u64>, SpanKind)> = records
        .iter()
        .filter_map(|record| match record {
            TraceRecord::SpanStart {
                span_id,
                parent_span_id,
                kind,
                run_id: span_run,
                ..
            } => {
                assert_eq!(span_run, &run_id);
                Some((*span_id, *parent_span_id, *kind))
            }
            _ => None,
        })
        .collect();
    let [(root, None, SpanKind::Run), (step, Some(step_parent), SpanKind::Step), (llm, Some(llm_parent), SpanKind::LlmCall), (tool, Some(tool_parent), SpanKind::ToolCall)] =
        starts[..]
    else {
        panic!("unexpected spans: {starts:?}");
    };
    assert_eq!((step_parent, llm_parent, tool_parent), (root, step, step));
    let n_ends = records
        .iter()
        .filter(|record| matches!(record, TraceRecord::SpanEnd { .. }))
        .count();
    assert_eq!(n_ends, 4, "every span ends, the dropped step too");
    let tool_error = records.iter().find_map(|record| match record {
        TraceRecord::SpanEnd { span_id, error, .. } if *span_id == tool => error.clone(),
        _ => None,
    });
    assert_eq!(tool_error.as_deref(), Some("exit 101"));
    let events = events(&records);
    let spans: Vec<Option<u64>> = events.iter().map(|event| event.span_id).collect();
    assert_eq!(spans, vec![Some(root), Some(llm), Some(tool)]);
    let seqs: Vec<u64> = events.iter().map(|event| event.seq).collect();
    assert_eq!(seqs, vec![1, 2, 3]);
    assert!(events
        .iter()
        .all(|event| event.task_id.as_deref() == Some("T-12") && event.timestamp_ns > 0));
}

#[test]
fn many_threads_lose_nothing_and_keep_each_runs_order() {
    let (tracer, sink) = memory_tracer(Overflow::Block, 64);
    std::thread::scope(|scope| {
        for _ in 0..8 {
            let tracer = tracer.clone();
            scope.spawn(move || {
                let run = tracer.start_run("worker", None);
                for step_idx in 0..1_000 {
                    run.record(decision(&step_idx.to_string()));
                }
            });
        }
    });
    tracer.flush().unwrap();
    let records = sink.records();
    let events = events(&records);
    assert_eq!(events.len(), 8_000);
    let mut by_run: std::collections::BTreeMap<&str, Vec<&fourfold::Event>> = Default::default();
    for event in events {
        by_run.entry(event.run_id.as_str()).or_default().push(event);
    }
    assert_eq!(by_run.len(), 8);
    for run_events in by_run.values() {
        for (step_idx, event) in run_events.iter().enumerate() {
            assert_eq!(event.seq, step_idx as u64 + 1);
            assert!(
                matches!(&event.kind, EventKind::Decision(d) if d.choice == step_idx.to_string())
            );
        }
    }
    assert_eq!(tracer.n_dropped(), 0);
}

#[test]
fn a_run_numbers_its_events_in_one_sequence_whichever_way_they_come() {
    let (tracer, sink) = memory_tracer(Overflow::Block, 1024);
    let run = tracer.start_run("coder", Some("T-3"));
    run.record(decision("first"));
    tracer.record(fourfold::Event {
        run_id: run.id().to_string(),
        agent_id: "coder".into(),
        task_id: None,
        seq: 0,
        timestamp_ns: 0,
        span_id: None,
        parent_span_id: None,
        kind: decision("second"),
    });
    let step = run.span("step", SpanKind::Step);
    step.record(decision("third"));
    tracer.flush().unwrap();
    let records = sink.records();
    let seqs: Vec<u64> = events(&records).iter().map(|event| event.seq).collect();
    assert_eq!(seqs, vec![1, 2, 3]);
}

/// Written records come back to the recording thread for reuse, and a span's event is written
/// into the record in place: whatever the record held before (an event recorded with ids of its
/// own, a span's start), the new event carries its own fields and its run's ids only.
#[test]
fn events_recorded_into_reused_records_carry_only_their_own_fields() {
    let (tracer, sink) = memory_tracer(Overflow::Block, 4096);
    let foreign = |idx: u64| fourfold::Event {
        run_id: "foreign-run".into(),
        agent_id: "foreign-agent".into(),
        task_id: Some("foreign-task".into()),
        seq: idx + 1,
        timestamp_ns: 7,
        span_id: Some(999_999),
        parent_span_id: Some(888_888),
        kind: decision(&format!("foreign {idx}")),
    };
    let run = tracer.start_run("agent", None);
    let span = run.span("step", SpanKind::Step);
    for round in 0..4 {
        for idx in 0..300 {
            tracer.record(foreign(round * 300 + idx));
        }
        let _child = span.child("tool", SpanKind::ToolCall);
        tracer.flush().unwrap();
        for idx in 0..300 {
            span.record(decision(&format!("mine {}", round * 300 + idx)));
        }
        tracer.flush().unwrap();
    }
    drop(span);
    run.end(None);
    tracer.close().unwrap();
    let records = sink.records();
    let events = events(&records);
    let mine: Vec<_> = events
        .iter()
        .filter(|event| event.run_id != "foreign-run")
        .collect();
    assert_eq!(mine.len(), 1200);
    for (idx, event) in mine.iter().enumerate() {
        assert_eq!(event.run_id, run_id_of(&records));
        assert_eq!(event.agent_id, "agent");
        assert_eq!(event.task_id, None);
        assert_eq!(event.seq, idx as u64 + 1);
        assert!(event.timestamp_ns > 7);
        assert_ne!(event.span_id, Some(999_999));
        assert!(event.span_id.is_some());
        assert!(event.parent_span_id.is_some());
        assert_ne!(event.parent_span_id, Some(888_888));
        assert_eq!(event.kind, decision(&format!("mine {idx}")));
    }
    let foreign_events: Vec<_> = events
        .iter()
        .filter(|event| event.run_id == "foreign-run")
        .collect();
    assert_eq!(foreign_events.len(), 1200);
    for (idx, event) in foreign_events.iter().enumerate() {
        assert_eq!(**event, &foreign(idx as u64));
    }
}

/// The id of the only run that `records` start a span of.
fn run_id_of(records: &[TraceRecord]) -> String {
    records
        .iter()
        .find_map(|record| match record {
            TraceRecord::SpanStart { run_id, .. } => Some(run_id.clone()),
            _ => None,
        })
        .expect("a run started")
}

#[test]
fn a_span_that_outlives_its_run_still_names_the_run() {
    let (tracer, sink) = memory_tracer(Overflow::Block, 1024);
    let run = tracer.start_run("coder", Some("T-4"));
    let run_id = run.id().to_string();
    let step = run.span("step", SpanKind::Step);
    run.end(None);
    step.record(decision("late"));
    step.end(Some("late error"));
    tracer.flush().unwrap();
    let records = sink.records();
    let [event] = events(&records)[..] else {
        panic!("expected one event: {records:?}");
    };
    assert_eq!(
        (
            event.run_id.as_str(),
            event.agent_id.as_str(),
            event.task_id.as_deref()
        ),
        (run_id.as_str(), "coder", Some("T-4"))
    );
    let n_named_ends = records
        .iter()
        .filter(|record| matches!(record, TraceRecord::SpanEnd { run_id: ended, .. } if *ended == run_id))
        .count();
    assert_eq!(n_named_ends, 2, "{records:?}");
}

/// A sink that waits at a barrier before its first write, so the queue fills up.
struct StalledSink {
    barrier: Arc<Barrier>,
    inner: MemorySink,
    stalled: bool,
}

impl Sink for StalledSink {
    fn write(&mut self, record: &TraceRecord) -> Result<(), TraceError> {
        if !self.stalled {
            self.stalled = true;
            self.barrier.wait();
        }
        self.inner.write(record)
    }
    fn flush(&mut self) -> Result<(), TraceError> {
        Ok(())
    }
}

#[test]
fn a_full_queue_drops_events_and_the_trace_says_how_many() {
    let barrier = Arc::new(Barrier::new(2));
    let inner = MemorySink::new();
    let tracer = Tracer::builder()
        .sink(StalledSink {
            barrier: Arc::clone(&barrier),
            inner: inner.clone(),
            stalled: false,
        })
        .capacity(8)
        .build()
        .unwrap();
    let run = tracer.start_run("coder", None);
    for step_idx in 0..100 {
        run.record(decision(&step_idx.to_string()));
    }
    assert!(tracer.n_dropped() > 0, "a queue of 8 must overflow");
    // Gate events wait for room instead of being dropped.
    let releaser = std::thread::spawn(move || barrier.wait());
    for gate_idx in 0..50 {
        run.record(gate(&gate_idx.to_string()));
    }
    releaser.join().unwrap();
    tracer.flush().unwrap();

    let records = inner.records();
    let n_decisions = events(&records)
        .iter()
        .filter(|event| matches!(event.kind, EventKind::Decision(_)))
        .count() as u64;
    let n_gates = events(&records)
        .iter()
        .filter(|event| matches!(event.kind, EventKind::Gate(_)))
        .count();
    let n_recorded_drops: u64 = records
        .iter()
        .map(|record| match record {
            TraceRecord::Dropped { n_events, .. } => *n_events,
            _ => 0,
        })
        .sum();
    assert_eq!(n_gates, 50);
    assert_eq!(n_recorded_drops, tracer.n_dropped());
    assert_eq!(n_decisions + n_recorded_drops, 100);
    drop(run);
}

#[test]
fn policy_decisions_are_recorded_through_the_plugin() {
    let (tracer, sink) = memory_tracer(Overflow::Block, 1024);
    let plugins = Arc::new(PluginRegistry::new());
    plugins.install(Arc::new(tracer.clone())).unwrap();
    let policy = Policy::builder_from_toml(
        "[[rule]]\nid = \"no-env\"\neffect = \"deny\"\nread = [\".env\"]\n",
    )
    .unwrap()
    .root("/work/repo")
    .plugins(plugins)
    .build()
    .unwrap();
    let decision = policy
        .check(&Request::read("coder", ".env").run_id("run-9"))
        .unwrap();
    assert_eq!(decision.verdict, Verdict::Deny);
    tracer.flush().unwrap();
    let records = sink.records();
    let events = events(&records);
    let [event] = events[..] else {
        panic!("expected one event, got {events:?}")
    };
    assert_eq!(event.run_id, "run-9");
    match &event.kind {
        EventKind::Gate(gate) => {
            assert_eq!(gate.outcome, GateEventOutcome::Denied);
            assert_eq!(gate.rule.as_ref().unwrap().id, "no-env");
        }
        other => panic!("expected a gate event, got {other:?}"),
    }
}

/// The secrets the redaction tests record (a bearer token, an e-mail address, an OpenAI key):
/// none may be left in `text`, the records as debug-printed.
fn assert_no_secret(text: &str) {
    for secret in [
        "abcdef0123456789abcdef",
        "alice@example.com",
        "sk-proj-ABCDEFGHIJKLMNOPQRSTUVWXYZ012345",
    ] {
        assert!(!text.contains(secret), "{secret} leaked: {text}");
    }
}

#[test]
fn secrets_are_masked_before_they_are_recorded() {
    let (tracer, sink) = memory_tracer(Overflow::Block, 1024);
    let run = tracer.start_run("coder", None);
    let tool = run.span("curl", SpanKind::ToolCall);
    tool.record(EventKind::Action(ActionEvent {
        tool: "curl".into(),
        arguments_json: "{\"header\":\"Authorization: Bearer abcdef0123456789abcdef\",\"to\":\"alice@example.com\"}".into(),
        result_digest: None,
        duration_ns: None,
        error: None,
    }));
    tool.end(Some("401 for key sk-proj-ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"));
    tracer.flush().unwrap();
    let text = format!("{:?}", sink.records());
    assert_no_secret(&text);
    assert!(text.contains("[REDACTED:"), "{text}");
}

#[test]
fn a_borrowed_action_is_recorded_as_the_same_event_as_an_owned_one() {
    let (tracer, sink) = memory_tracer(Overflow::Block, 1024);
    let run = tracer.start_run("coder", None);
    let span = run.span("tools", SpanKind::Step);
    let long_arguments = format!("{{\"text\":\"{}\"}}", "x".repeat(700));
    let arguments = [
        "{\"command\":\"cargo test\"}",
        "{\"header\":\"Authorization: Bearer abcdef0123456789abcdef\"}",
        "",
        long_arguments.as_str(),
    ];
    let mut n_pairs = 0;
    // Records enough for the writer to hand its boxes back (64 at a time) several times over.
    for idx in 0..600 {
        let action = ActionRef {
            tool: if idx % 2 == 0 {
                "bash"
            } else {
                "mail alice@example.com"
            },
            arguments_json: arguments[idx % arguments.len()],
            result_digest: (idx % 3 == 0).then_some("blake3:00ff"),
            duration_ns: (idx % 5 != 0).then_some(idx as u64),
            error: (idx % 4 == 1).then_some("401 for key sk-proj-ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"),
        };
        // The same action built by hand, owned.
        let owned = EventKind::Action(ActionEvent {
            tool: action.tool.to_string(),
            arguments_json: action.arguments_json.to_string(),
            result_digest: action.result_digest.map(String::from),
            duration_ns: action.duration_ns,
            error: action.error.map(String::from),
        });
        span.record_action(action);
        span.record(owned.clone());
        n_pairs += 1;
        if idx % 7 == 0 {
            span.record(decision("something else"));
            run.record_action(action);
            run.record(owned);
            n_pairs += 1;
        }
        if idx % 50 == 0 {
            tracer.flush().unwrap();
        }
    }
    span.end(None);
    run.end(None);
    tracer.flush().unwrap();
    let records = sink.records();
    let actions: Vec<&fourfold::Event> = events(&records)
        .into_iter()
        .filter(|event| matches!(event.kind, EventKind::Action(_)))
        .collect();
    assert_eq!(actions.len(), 2 * n_pairs);
    for pair in actions.chunks(2) {
        let (borrowed, owned) = (pair[0], pair[1]);
        assert_eq!(borrowed.kind, owned.kind);
        assert_eq!(borrowed.span_id, owned.span_id);
        assert_eq!(borrowed.run_id, owned.run_id);
        assert_eq!(borrowed.seq + 1, owned.seq);
    }
    let text = format!("{records:?}");
    assert_no_secret(&text);
    assert!(text.contains("blake3:00ff"), "the digest is kept as it is");
}

#[test]
fn the_trace_file_sink_writes_a_verifiable_trace() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("agent.trace");
    let tracer = Tracer::builder()
        .sink(TraceFileSink::open(&path, Durability::default()).unwrap())
        .build()
        .unwrap();
    let run = tracer.start_run("coder", Some("T-1"));
    for step_idx in 0..10 {
        run.record(decision(&step_idx.to_string()));
    }
    run.record(gate("synced at once"));
    run.end(None);
    tracer.close().unwrap();
    let verified = trace::verify(&path).unwrap();
    assert!(verified.head_file_checked);
    let contents = trace::read(&path).unwrap();
    assert_eq!(
        contents.records.len(),
        13,
        "a span start, 11 events, a span end"
    );
    assert_eq!(verified.head.n_frames, 13);
}

struct FailingSink;

impl Sink for FailingSink {
    fn write(&mut self, _record: &TraceRecord) -> Result<(), TraceError> {
        Err(TraceError::Sink {
            reason: "disk full".into(),
        })
    }
    fn flush(&mut self) -> Result<(), TraceError> {
        Ok(())
    }
}

#[test]
fn a_failing_sink_is_reported_by_flush_and_the_others_still_write() {
    let memory = MemorySink::new();
    let tracer = Tracer::builder()
        .sink(FailingSink)
        .sink(memory.clone())
        .build()
        .unwrap();
    tracer.start_run("coder", None).record(decision("x"));
    let error = tracer.flush().unwrap_err();
    assert!(error.to_string().contains("disk full"), "{error}");
    assert_eq!(events(&memory.records()).len(), 1);
    tracer.flush().unwrap();
    tracer.close().unwrap();
    assert!(matches!(tracer.flush(), Err(TraceError::Closed)));
}
