//! The CostMeter end to end: counts equal to `tiktoken`'s on the checked-in texts of
//! `fixtures/tokens/cases.json` (made by `scripts/regen-token-counts.py`), prices from the
//! built-in LiteLLM table, budgets that stop work across threads, savings, events and reports.

use fourfold::cost::{count, count_chat, encoding_for_model, ChatMessage, Encoding};
use serde_json::Value;

/// The fixture of texts and counts made by `tiktoken`.
fn cases() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/tokens/cases.json");
    let text = std::fs::read_to_string(path).expect("fixture is readable");
    serde_json::from_str(&text).expect("fixture is JSON")
}

/// Expands a large text's generator spec exactly as `expand` in the script does.
fn expand(spec: &Value) -> String {
    if let Some(unit) = spec.get("repeat") {
        let times = spec["times"].as_u64().expect("times") as usize;
        return unit.as_str().expect("repeat unit").repeat(times);
    }
    let random = &spec["random"];
    let pieces: Vec<&str> = random["pieces"]
        .as_array()
        .expect("pieces")
        .iter()
        .map(|piece| piece.as_str().expect("piece"))
        .collect();
    let min_bytes = random["min_bytes"].as_u64().expect("min_bytes") as usize;
    let mut state = random["seed"].as_u64().expect("seed");
    if state == 0 {
        state = 1;
    }
    let mut text = String::with_capacity(min_bytes + 64);
    while text.len() < min_bytes {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        text.push_str(pieces[(state % pieces.len() as u64) as usize]);
    }
    text
}

#[test]
fn counts_equal_tiktoken() {
    let cases = cases();
    let mut n_checked = 0;
    let mut failures = Vec::new();
    for case in cases["cases"].as_array().expect("cases") {
        let name = case["name"].as_str().expect("name");
        let text = match case.get("text") {
            Some(text) => text.as_str().expect("text").to_string(),
            None => {
                let text = expand(&case["generate"]);
                assert_eq!(
                    text.len() as u64,
                    case["n_bytes"].as_u64().unwrap(),
                    "{name}"
                );
                text
            }
        };
        for (encoding_name, expected) in case["counts"].as_object().expect("counts") {
            let encoding = Encoding::from_name(encoding_name).expect("known encoding");
            let counted = encoding.count(&text);
            if Some(counted) != expected.as_u64() {
                failures.push(format!(
                    "{name} {encoding_name}: {counted}, tiktoken {expected}"
                ));
            }
            n_checked += 1;
        }
    }
    assert!(failures.is_empty(), "counts differ: {failures:#?}");
    assert!(n_checked >= 80, "only {n_checked} counts checked");
}

#[test]
fn chat_counts_equal_the_cookbook() {
    let cases = cases();
    for chat in cases["chats"].as_array().expect("chats") {
        let model = chat["model"].as_str().unwrap();
        let messages: Vec<ChatMessage> =
            serde_json::from_value(chat["messages"].clone()).expect("messages");
        let counted = count_chat(model, &messages).unwrap();
        assert_eq!(Some(counted.tokens), chat["expected"].as_u64(), "{model}");
        assert!(!counted.estimated);
    }
}

#[test]
fn models_map_to_tiktokens_encodings() {
    let cases = cases();
    for (model, encoding) in cases["models"].as_object().expect("models") {
        let expected = Encoding::from_name(encoding.as_str().unwrap());
        assert_eq!(encoding_for_model(model), expected, "{model}");
        assert_eq!(count(model, "hi").unwrap().encoding, expected.unwrap());
    }
}

use std::sync::Arc;

use fourfold::cost::{
    read_ledger, Budget, CostError, CostMeter, ModelPrice, PriceTable, Provider, RecordKind,
    Report, Scope, TokenCounts, UnknownModel, Usage, BUDGET_GATE,
};
use fourfold::{ContextEvent, Event, EventKind, ManualClock, PluginRegistry, Request, Verdict};
use proptest::prelude::*;

use crate::util::Events;

impl Events {
    /// `cost` for cost events, `gate:<outcome>:<reason>` for gate events.
    fn summary(&self) -> Vec<String> {
        self.0
            .lock()
            .iter()
            .map(|event| match &event.kind {
                EventKind::Cost(cost) => format!(
                    "cost {} {}us saved={} warning={}",
                    cost.model,
                    cost.cost_micros,
                    cost.saved_tokens,
                    cost.warning.is_some()
                ),
                EventKind::Gate(gate) => {
                    assert_eq!(gate.gates, vec![BUDGET_GATE.to_string()]);
                    format!("gate {}", gate.outcome.name())
                }
                other => other.name().to_string(),
            })
            .collect()
    }
}

/// A table with one model at $1 per million input tokens and $2 per million output tokens.
fn prices() -> PriceTable {
    let mut table = PriceTable::empty("USD").unwrap();
    table.set("m", ModelPrice::per_million(1.0, 2.0).unwrap());
    table
}

fn tokens(input: u64, output: u64) -> TokenCounts {
    TokenCounts {
        input,
        output,
        ..TokenCounts::default()
    }
}

fn meter_with(budgets: Vec<Budget>) -> (CostMeter, Arc<Events>, Arc<ManualClock>) {
    let events = Arc::new(Events::default());
    let plugins = Arc::new(PluginRegistry::new());
    plugins.install(events.clone()).unwrap();
    let clock = Arc::new(ManualClock::new(1_700_000_000_000_000_000));
    let mut builder = CostMeter::builder()
        .prices(prices())
        .plugins(plugins)
        .clock(clock.clone());
    for budget in budgets {
        builder = builder.budget(budget);
    }
    (builder.build().unwrap(), events, clock)
}

#[test]
fn provider_usage_is_priced_from_the_builtin_table() {
    let meter = CostMeter::builder().build().unwrap();
    let anthropic = r#"{"usage": {"input_tokens": 1000, "output_tokens": 200,
        "cache_creation_input_tokens": 4000, "cache_read_input_tokens": 10000}}"#;
    let counts = TokenCounts::from_usage_json(Provider::Anthropic, anthropic).unwrap();
    let record = meter
        .record(Usage::new("coder", "claude-sonnet-4-5", counts).task("T-1"))
        .unwrap();
    // $3/M input, $3.75/M cache write, $0.30/M cache read, $15/M output.
    assert_eq!(record.micros(), 3_000 + 15_000 + 3_000 + 3_000);
    let openai = r#"{"prompt_tokens": 2000, "completion_tokens": 500,
        "prompt_tokens_details": {"cached_tokens": 1000}}"#;
    let counts = TokenCounts::from_usage_json(Provider::OpenAi, openai).unwrap();
    let record = meter.record(Usage::new("coder", "gpt-4o", counts)).unwrap();
    // $2.50/M input, $1.25/M cached, $10/M output.
    assert_eq!(record.micros(), 2_500 + 1_250 + 5_000);
    let report = meter.report();
    assert_eq!(report.total.calls, 2);
    assert_eq!(report.by_model["gpt-4o"].cache_read_tokens, 1000);
    assert_eq!(report.by_task["T-1"].calls, 1);
    assert_eq!(report.by_task["-"].calls, 1);
    assert_eq!(report.to_json()["total"]["spent_micros"], 32_750);
}

#[test]
fn unknown_models_are_refused_or_zero_with_a_warning() {
    let (meter, events, _) = meter_with(vec![]);
    meter
        .record(Usage::new("a", "m", tokens(1_000_000, 0)))
        .unwrap();
    let error = meter
        .record(Usage::new("a", "mystery", tokens(5, 5)))
        .unwrap_err();
    assert!(matches!(error, CostError::UnknownModel(ref model) if model == "mystery"));
    // The refused record changed nothing.
    assert_eq!(meter.report().total.calls, 1);

    let plugins = Arc::new(PluginRegistry::new());
    plugins.install(events.clone()).unwrap();
    let lenient = CostMeter::builder()
        .prices(prices())
        .plugins(plugins)
        .unknown_model(UnknownModel::ZeroWithWarning)
        .build()
        .unwrap();
    let record = lenient
        .record(Usage::new("a", "mystery", tokens(5, 5)))
        .unwrap();
    assert_eq!(record.femtos, 0);
    assert!(record.warning.unwrap().contains("mystery"));
    assert_eq!(lenient.report().total.warned_records, 1);
    assert_eq!(
        events.summary(),
        vec![
            "cost m 1000000us saved=0 warning=false",
            "cost mystery 0us saved=0 warning=true"
        ]
    );
}

#[test]
fn a_hard_limit_refuses_the_reservation_that_would_cross_it() {
    let budget = Budget::tokens(Scope::Agent("coder".into()))
        .soft(60.0)
        .hard(100.0);
    let (meter, events, _) = meter_with(vec![budget]);
    let estimate = Usage::new("coder", "m", tokens(30, 20)).task("T-1");
    let first = meter.reserve(&estimate).unwrap();
    let second = meter.reserve(&estimate).unwrap();
    // 50 + 50 held: a third would make 150.
    let error = meter.reserve(&estimate).unwrap_err();
    let CostError::Exceeded(exceeded) = error else {
        panic!("expected BudgetExceeded, got {error}");
    };
    assert_eq!(
        (exceeded.limit(), exceeded.reserved(), exceeded.requested()),
        (100, 100, 50)
    );
    assert_eq!(exceeded.budget(), "agent:coder/tokens");
    // Another agent is not covered by the budget.
    drop(
        meter
            .reserve(&Usage::new("tester", "m", tokens(500, 0)))
            .unwrap(),
    );
    // Committing less than reserved frees the rest; dropping releases everything.
    first.commit(tokens(30, 5)).unwrap();
    drop(second);
    let third = meter.reserve(&estimate).unwrap();
    third.commit(tokens(30, 20)).unwrap();
    // 35 + 50 = 85 spent: past the soft limit (warned once), and 50 more does not fit.
    assert!(meter.reserve(&estimate).is_err());
    meter
        .record(Usage::new("coder", "m", tokens(1, 0)))
        .unwrap();
    assert_eq!(
        events.summary(),
        vec![
            "gate denied",
            "cost m 40us saved=0 warning=false",
            "cost m 70us saved=0 warning=false",
            "gate allowed",
            "gate denied",
            "cost m 1us saved=0 warning=false",
        ]
    );
    assert_eq!(meter.report().by_agent["coder"].spent_tokens(), 86);
}

#[test]
fn money_budgets_and_rolling_windows() {
    // $1 per hour for the fleet: 0.5 M input tokens at $1/M is $0.50.
    let budget = Budget::money(Scope::Fleet, "USD").hard(1.0).rolling(3600);
    let (meter, _, clock) = meter_with(vec![budget]);
    let half_dollar = Usage::new("a", "m", tokens(500_000, 0));
    meter
        .reserve(&half_dollar)
        .unwrap()
        .commit(half_dollar.counts)
        .unwrap();
    clock.advance(1_800 * 1_000_000_000);
    meter
        .reserve(&half_dollar)
        .unwrap()
        .commit(half_dollar.counts)
        .unwrap();
    assert!(matches!(
        meter.reserve(&half_dollar),
        Err(CostError::Exceeded(_))
    ));
    // An hour after the first call, it has left the window.
    clock.advance(1_800 * 1_000_000_000);
    assert!(meter.reserve(&half_dollar).is_ok());
}

#[test]
fn bad_budgets_are_typed_errors_and_lose_nothing() {
    let (meter, _, _) = meter_with(vec![Budget::tokens(Scope::Fleet).hard(1000.0)]);
    meter.record(Usage::new("a", "m", tokens(10, 10))).unwrap();
    for budget in [
        Budget::tokens(Scope::Fleet).hard(f64::NAN),
        Budget::money(Scope::Fleet, "USD").soft(f64::INFINITY),
        Budget::money(Scope::Fleet, "XXX").hard(1.0),
        Budget::money(Scope::Fleet, "EUR").hard(1.0),
        Budget::tokens(Scope::Fleet).hard(-5.0),
    ] {
        assert!(
            matches!(meter.add_budget(budget.clone()), Err(CostError::Budget(_))),
            "{budget:?}"
        );
    }
    let build = CostMeter::builder()
        .budget(Budget::tokens(Scope::Fleet).hard(f64::NAN))
        .build();
    assert!(matches!(build, Err(CostError::Budget(_))));
    // Bad usage is refused before anything is counted.
    let overflowing = TokenCounts {
        input: u64::MAX,
        output: 1,
        ..TokenCounts::default()
    };
    assert!(matches!(
        meter.record(Usage::new("a", "m", overflowing)),
        Err(CostError::Usage(_))
    ));
    assert!(matches!(
        meter.reserve(&Usage::new("a", "m", overflowing)),
        Err(CostError::Usage(_))
    ));
    assert_eq!(meter.report().total.spent_tokens(), 20);
    // The budget still enforces: 20 spent, 981 more would cross 1000.
    assert!(meter
        .reserve(&Usage::new("a", "m", tokens(981, 0)))
        .is_err());
    assert!(meter.reserve(&Usage::new("a", "m", tokens(980, 0))).is_ok());
}

const BUDGET_POLICY: &str = r#"
[gates.budget]
kind = "plugin"

[[rule]]
id = "calls"
effect = "gate"
gates = ["budget"]
tools = [{ name = "llm" }]
"#;

#[test]
fn the_policy_budget_gate_holds_actions() {
    let budget = Budget::tokens(Scope::Task("T-1".into()))
        .soft(50.0)
        .hard(100.0);
    let (meter, _, _) = meter_with(vec![budget]);
    let plugins = Arc::new(PluginRegistry::new());
    plugins.install(Arc::new(meter.clone())).unwrap();
    let policy = crate::util::builder(BUDGET_POLICY)
        .plugins(plugins)
        .build()
        .unwrap();
    let call = Request::tool("coder", "llm", serde_json::json!({})).task("T-1");
    crate::util::check(&policy, call.clone(), Verdict::Allow);
    meter
        .record(Usage::new("coder", "m", tokens(60, 0)).task("T-1"))
        .unwrap();
    crate::util::check(&policy, call.clone(), Verdict::Pending);
    meter
        .record(Usage::new("coder", "m", tokens(40, 0)).task("T-1"))
        .unwrap();
    crate::util::check(&policy, call.clone(), Verdict::Deny);
    // Another task is not held.
    let other = Request::tool("coder", "llm", serde_json::json!({})).task("T-2");
    crate::util::check(&policy, other, Verdict::Allow);
}

#[test]
fn savings_sit_beside_spending() {
    let events = Arc::new(Events::default());
    let plugins = Arc::new(PluginRegistry::new());
    plugins.install(events.clone()).unwrap();
    let meter = CostMeter::builder()
        .prices(prices())
        .plugins(plugins.clone())
        .savings_model("m")
        .build()
        .unwrap();
    plugins.install(Arc::new(meter.clone())).unwrap();
    meter
        .record(Usage::new("coder", "m", tokens(2_000, 100)).task("T-1"))
        .unwrap();
    meter
        .record_saved("coder", Some("T-1"), None, "m", 10_000)
        .unwrap();
    // The ContextStore's event: 1,000 tokens served instead of 31,000.
    plugins.emit(&Event {
        run_id: "r".into(),
        agent_id: "coder".into(),
        task_id: Some("T-1".into()),
        seq: 1,
        timestamp_ns: 0,
        span_id: None,
        parent_span_id: None,
        kind: EventKind::Context(ContextEvent {
            query: None,
            sections: vec![],
            tokens_served: 1_000,
            tokens_baseline: 31_000,
            withheld: 0,
        }),
    });
    let report = meter.report();
    let task = &report.by_task["T-1"];
    assert_eq!((task.spent_tokens(), task.saved_tokens), (2_100, 40_000));
    let json = report.to_json();
    assert_eq!(json["by_task"]["T-1"]["spent_micros"], 2_200);
    assert_eq!(json["by_task"]["T-1"]["saved_micros"], 40_000);
    assert!(events
        .summary()
        .contains(&"cost m 0us saved=30000 warning=false".to_string()));
}

#[test]
fn the_ledger_reads_back_to_the_same_report() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cost.jsonl");
    let meter = CostMeter::builder()
        .prices(prices())
        .ledger(&path)
        .build()
        .unwrap();
    meter
        .record(Usage::new("a", "m", tokens(3, 4)).task("t").run("r"))
        .unwrap();
    meter
        .record(Usage::new("b", "m", tokens(1, 0)).estimated(true))
        .unwrap();
    meter
        .record_saved("a", Some("t"), Some("r"), "m", 77)
        .unwrap();
    let records = read_ledger(&path).unwrap();
    assert_eq!(records.len(), 3);
    assert_eq!(records[2].kind, RecordKind::Saved);
    let report = Report::from_records(&records);
    assert_eq!(report, meter.report());
    assert_eq!(report.to_json()["by_agent"]["b"]["estimated"], true);
    // A torn last line is skipped; a bad line in the middle is an error naming it.
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, format!("{text}{{\"kind\":\"sp")).unwrap();
    assert_eq!(read_ledger(&path).unwrap().len(), 3);
    std::fs::write(&path, format!("not json\n{text}")).unwrap();
    assert!(matches!(
        read_ledger(&path),
        Err(CostError::LedgerCorrupt { line: 1, .. })
    ));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// Many threads reserve random estimates and commit random actuals no larger than the
    /// estimate (or drop the reservation): the committed sum never passes the hard limit, and
    /// the meter's totals equal what the threads committed.
    #[test]
    fn threads_never_overspend_a_hard_limit(
        limit in 1u64..5_000,
        plans in proptest::collection::vec(
            proptest::collection::vec((1u64..400, 0u64..=100, any::<bool>()), 1..40),
            2..8,
        ),
    ) {
        let meter = CostMeter::builder()
            .prices(prices())
            .budget(Budget::tokens(Scope::Agent("a".into())).hard(limit as f64))
            .budget(Budget::money(Scope::Fleet, "USD").hard(limit as f64 * 1e-6))
            .build()
            .unwrap();
        let handles: Vec<_> = plans
            .into_iter()
            .map(|plan| {
                let meter = meter.clone();
                std::thread::spawn(move || {
                    let mut committed = 0u64;
                    for (estimate, percent, commit) in plan {
                        let usage = Usage::new("a", "m", tokens(estimate, 0));
                        let Ok(reservation) = meter.reserve(&usage) else {
                            continue;
                        };
                        if commit {
                            let actual = estimate * percent / 100;
                            reservation.commit(tokens(actual, 0)).unwrap();
                            committed += actual;
                        }
                    }
                    committed
                })
            })
            .collect();
        let committed: u64 = handles.into_iter().map(|handle| handle.join().unwrap()).sum();
        prop_assert!(committed <= limit, "committed {} > limit {}", committed, limit);
        let report = meter.report();
        prop_assert_eq!(report.total.spent_tokens(), committed);
        // $1 per million input tokens: one token is one micro-unit.
        prop_assert!(report.total.spent_femtos <= u128::from(limit) * 1_000_000_000);
    }
}
