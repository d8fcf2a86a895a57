//! Reading traces back end to end: an agent governed by a policy records into a trace file through
//! the Tracer, and the file is streamed, queried, rebuilt into span trees and explained.

use std::path::Path;
use std::sync::Arc;

use fourfold::trace::{
    self, explain, Durability, EventKindName, Query, SpanKind, TraceFileSink, TraceReader, Tracer,
};
use fourfold::{
    ActionEvent, ContextEvent, CostEvent, DecisionEvent, EventKind, GateEventOutcome,
    PluginRegistry, Policy, Request, ServedSection, Verdict,
};

const POLICY: &str = r#"
[[rule]]
id = "edit-src"
effect = "allow"
agents = ["coder"]
read = ["src/**"]
write = ["src/**"]

[[rule]]
id = "no-env"
effect = "deny"
read = [".env"]
"#;

fn decision(choice: &str) -> EventKind {
    EventKind::Decision(DecisionEvent {
        choice: choice.to_string(),
        rationale: "the test fails on it".to_string(),
        alternatives: vec!["ask a human".to_string()],
    })
}

fn action(tool: &str, arguments_json: &str, error: Option<&str>) -> EventKind {
    EventKind::Action(ActionEvent {
        tool: tool.to_string(),
        arguments_json: arguments_json.to_string(),
        result_digest: Some("b3:00ff".to_string()),
        duration_ns: Some(1_200),
        error: error.map(str::to_string),
    })
}

fn cost(input_tokens: u64, cost_micros: u64) -> EventKind {
    EventKind::Cost(CostEvent {
        model: "gpt-4o".to_string(),
        provider: Some("openai".to_string()),
        input_tokens,
        output_tokens: 50,
        cached_tokens: 0,
        reasoning_tokens: 0,
        cost_micros,
        currency: "USD".to_string(),
        estimated: false,
        cache_write_tokens: 0,
        saved_tokens: 0,
        saved_micros: 0,
        warning: None,
    })
}

fn context(version: u64) -> EventKind {
    EventKind::Context(ContextEvent {
        query: Some("how are tokens parsed".to_string()),
        sections: vec![ServedSection {
            key: "src/lib.rs".to_string(),
            section_id: "parse".to_string(),
            version,
            freshness: "canonical".to_string(),
        }],
        tokens_served: 300,
        tokens_baseline: 9_000,
        withheld: 0,
    })
}

/// Two agents, each with a run of one step, governed by the policy, traced into `path`.
/// Returns the run ids of the coder and the reviewer.
fn record_two_runs(path: &Path) -> (String, String) {
    let tracer = Tracer::builder()
        .sink(TraceFileSink::open(path, Durability::default()).unwrap())
        .build()
        .unwrap();
    let plugins = Arc::new(PluginRegistry::new());
    plugins.install(Arc::new(tracer.clone())).unwrap();
    let policy = Policy::builder_from_toml(POLICY)
        .unwrap()
        .root("/work/repo")
        .plugins(plugins)
        .build()
        .unwrap();

    let coder = tracer.start_run("coder", Some("T-7"));
    let step = coder.span("fix parser", SpanKind::Step);
    step.record(context(4));
    let llm = step.child("gpt-4o", SpanKind::LlmCall);
    llm.record(cost(2_000, 5_000));
    llm.end(None);
    step.record(decision("edit src/parse.rs"));
    let request = Request::write("coder", "src/parse.rs").run_id(coder.id());
    assert_eq!(policy.check(&request).unwrap().verdict, Verdict::Allow);
    let tool = step.child("edit", SpanKind::ToolCall);
    tool.record(action("edit", r#"{"path":"src/parse.rs"}"#, None));
    tool.end(None);
    step.record(decision("read .env for the token"));
    let request = Request::read("coder", ".env").run_id(coder.id());
    assert_eq!(policy.check(&request).unwrap().verdict, Verdict::Deny);
    step.end(None);
    let coder_id = coder.id().to_string();
    coder.end(None);

    let reviewer = tracer.start_run("reviewer", Some("T-8"));
    let request = Request::read("reviewer", "src/parse.rs").run_id(reviewer.id());
    assert_eq!(policy.check(&request).unwrap().verdict, Verdict::Deny);
    reviewer.record(action("cat", r#"{"path":"src/parse.rs"}"#, Some("denied")));
    let reviewer_id = reviewer.id().to_string();
    reviewer.end(Some("denied by policy"));
    tracer.close().unwrap();
    (coder_id, reviewer_id)
}

#[test]
fn a_governed_run_is_explained_from_its_trace_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("agents.trace");
    let (coder_id, _) = record_two_runs(&path);

    let runs = TraceReader::open(&path).unwrap().runs().unwrap();
    assert_eq!(runs.runs.len(), 2);
    assert_eq!(runs.n_dropped_events, 0);
    assert!(runs.torn_tail.is_none());
    let coder = runs.get(&coder_id).unwrap();
    let spans: Vec<(usize, SpanKind, &str)> = coder
        .walk()
        .into_iter()
        .map(|(depth, span)| (depth, span.kind, span.name.as_str()))
        .collect();
    assert_eq!(
        spans,
        vec![
            (0, SpanKind::Run, "coder"),
            (1, SpanKind::Step, "fix parser"),
            (2, SpanKind::LlmCall, "gpt-4o"),
            (2, SpanKind::ToolCall, "edit"),
        ]
    );

    let explanation = explain(coder);
    let [edit] = &explanation.actions[..] else {
        panic!("expected one action: {explanation}");
    };
    assert_eq!(edit.action.tool, "edit");
    assert_eq!(
        edit.decision.as_ref().unwrap().1.choice,
        "edit src/parse.rs"
    );
    let gate_rules: Vec<(GateEventOutcome, &str)> = edit
        .gates
        .iter()
        .map(|gate| {
            (
                gate.gate.outcome,
                gate.gate.rule.as_ref().unwrap().id.as_str(),
            )
        })
        .collect();
    assert_eq!(gate_rules, vec![(GateEventOutcome::Allowed, "edit-src")]);
    assert_eq!(edit.context[0].version, 4);
    assert_eq!(edit.cost.input_tokens, 2_000);
    let refused: Vec<&str> = explanation
        .gates_without_action
        .iter()
        .map(|gate| gate.gate.rule.as_ref().unwrap().id.as_str())
        .collect();
    assert_eq!(refused, vec!["no-env"]);
    assert_eq!(explanation.totals.cost.cost_micros["USD"], 5_000);
    assert_eq!(explanation.totals.n_unchecked_actions, 0);
}

#[test]
fn queries_select_events_across_runs() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("agents.trace");
    let (coder_id, reviewer_id) = record_two_runs(&path);
    let select = |query: Query| -> Vec<(String, &'static str)> {
        TraceReader::open(&path)
            .unwrap()
            .events(query)
            .map(|event| {
                let event = event.unwrap();
                (event.run_id, event.kind.name())
            })
            .collect()
    };
    let denied = select(Query::all().gate_outcome(GateEventOutcome::Denied));
    assert_eq!(
        denied,
        vec![(coder_id.clone(), "gate"), (reviewer_id.clone(), "gate")]
    );
    let reviewer = select(Query::all().agent("reviewer"));
    assert_eq!(
        reviewer,
        vec![(reviewer_id.clone(), "gate"), (reviewer_id, "action")]
    );
    let coder_actions = select(Query::all().task("T-7").kind(EventKindName::Action));
    assert_eq!(coder_actions, vec![(coder_id.clone(), "action")]);
    let everything = select(Query::all());
    let whole = trace::read(&path).unwrap();
    let n_events = whole
        .records
        .iter()
        .filter(|(_, record)| matches!(record, trace::TraceRecord::Event(_)))
        .count();
    assert_eq!(everything.len(), n_events);
    let first_ns = TraceReader::open(&path)
        .unwrap()
        .events(Query::all())
        .next()
        .unwrap()
        .unwrap()
        .timestamp_ns;
    assert_eq!(select(Query::all().until(first_ns)), vec![]);
    assert_eq!(select(Query::all().since(first_ns)).len(), n_events);
}
