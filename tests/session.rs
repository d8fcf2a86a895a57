//! The governed agent session: one `Fourfold` with all four controls, and runs whose guarded
//! calls are allowed, denied, held by a review gate, held by stale context until the agent
//! re-reads, and stopped by a budget; each refusal names the control that made it, and every
//! call lands in the trace under the run's id.

use std::sync::Arc;

use fourfold::context::ContextStore;
use fourfold::cost::{Budget, CostMeter, ModelPrice, PriceTable, Scope, TokenCounts};
use fourfold::trace::{MemorySink, TraceRecord, Tracer};
use fourfold::{
    ActionEvent, CommandGate, EventKind, Fourfold, GateOutcome, Plugin, Request, SessionError,
    Verdict,
};

const POLICY: &str = r#"
[[rule]]
id = "coder-scope"
effect = "allow"
agents = ["coder"]
read = ["**"]
write = ["src/**"]
run = ["cargo test*", "git push*"]

[[rule]]
id = "fresh-writes"
effect = "gate"
gates = ["context-fresh"]
write = ["src/**"]

[[rule]]
id = "push-review"
effect = "gate"
gates = ["human-review"]
run = ["git push*"]

[[rule]]
id = "model-calls"
effect = "gate"
gates = ["budget"]
tools = [{ name = "llm" }]
"#;

const AUTH_DOC_V1: &str =
    "# Auth\n\n## Login\n\nCall `login(user, password)` to open a session; it returns a token.\n";
const AUTH_DOC_V2: &str = "# Auth\n\n## Login\n\nCall `login(credentials)` with a `Credentials` value to open a session; the old two-argument form is gone.\n";

struct Setup {
    fourfold: Fourfold,
    sink: MemorySink,
}

fn setup(budgets: Vec<Budget>) -> Setup {
    let sink = MemorySink::new();
    let tracer = Tracer::builder().sink(sink.clone()).build().unwrap();
    let mut prices = PriceTable::empty("USD").unwrap();
    prices.set("m", ModelPrice::per_million(1.0, 2.0).unwrap());
    let mut cost = CostMeter::builder().prices(prices);
    for budget in budgets {
        cost = cost.budget(budget);
    }
    let fourfold = Fourfold::builder()
        .policy(crate::util::builder(POLICY))
        .tracer(tracer)
        .context(ContextStore::builder())
        .cost(cost)
        .build()
        .unwrap();
    fourfold
        .context()
        .unwrap()
        .put("docs/auth.md", AUTH_DOC_V1)
        .unwrap();
    Setup { fourfold, sink }
}

/// The verdict of a guard that must be allowed or denied (not held by a gate or failing).
#[track_caller]
fn allowed_or_denied(session: &fourfold::AgentSession, request: Request) -> Verdict {
    match session.guard(request) {
        Ok(decision) => decision.verdict,
        Err(SessionError::Denied(decision)) => decision.verdict,
        Err(other) => panic!("{other:?}"),
    }
}

fn tokens(input: u64, output: u64) -> TokenCounts {
    TokenCounts {
        input,
        output,
        ..TokenCounts::default()
    }
}

#[test]
fn an_allowed_call_goes_ahead_and_a_denied_one_names_its_rule() {
    let Setup { fourfold, .. } = setup(vec![]);
    let session = fourfold.session("coder", Some("T-1"));
    let allowed = session
        .guard(Request::run("coder", "cargo test -p auth"))
        .unwrap();
    assert_eq!(allowed.verdict, Verdict::Allow);
    assert_eq!(allowed.rule.unwrap().id, "coder-scope");
    match session.guard(Request::write("coder", "deploy/prod.yaml")) {
        Err(SessionError::Denied(decision)) => {
            assert_eq!(decision.verdict, Verdict::Deny);
            assert!(
                decision.reason.contains("deploy/prod.yaml"),
                "{}",
                decision.reason
            );
        }
        other => panic!("expected a denial, got {other:?}"),
    }
}

#[test]
fn a_session_cannot_act_for_another_agent() {
    let Setup { fourfold, .. } = setup(vec![]);
    // `reviewer` has no rule at all; its session asking in `coder`'s name is still `reviewer`.
    let session = fourfold.session("reviewer", None);
    assert!(matches!(
        session.guard(Request::run("coder", "cargo test")),
        Err(SessionError::Denied(_))
    ));
}

#[test]
fn a_review_gate_holds_until_a_person_approves() {
    let Setup { fourfold, .. } = setup(vec![]);
    let session = fourfold.session("coder", Some("T-1"));
    let push = Request::run("coder", "git push origin main");
    let approval_id = match session.guard(push.clone()) {
        Err(SessionError::Pending(decision)) => decision.approval_id.unwrap(),
        other => panic!("expected a pending approval, got {other:?}"),
    };
    fourfold
        .policy()
        .approve(&approval_id, "alice", "reviewed the diff")
        .unwrap();
    assert_eq!(session.guard(push.clone()).unwrap().verdict, Verdict::Allow);
    // An approval is used once.
    assert!(matches!(session.guard(push), Err(SessionError::Pending(_))));
}

#[test]
fn a_guard_can_wait_for_the_reviewer() {
    let Setup { fourfold, .. } = setup(vec![]);
    let push = Request::run("coder", "git push origin main");
    let reviewer = fourfold.clone();
    let waiting = std::thread::spawn({
        let fourfold = fourfold.clone();
        let push = push.clone();
        move || {
            let session = fourfold.session("coder", Some("T-1"));
            session
                .guard_waiting(push, std::time::Duration::from_secs(30))
                .map_err(Box::new)
        }
    });
    let approval_id = loop {
        if let Some(approval) = reviewer.policy().pending_approvals().unwrap().pop() {
            break approval.id;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    };
    reviewer
        .policy()
        .reject(&approval_id, "bob", "not today")
        .unwrap();
    // Rejected: the wait ends, and the request is denied, naming the rule.
    match waiting.join().unwrap().map_err(|error| *error) {
        Err(SessionError::Denied(decision)) => {
            assert_eq!(decision.rule.unwrap().id, "push-review")
        }
        other => panic!("expected the rejection to deny, got {other:?}"),
    }
}

#[test]
fn stale_context_holds_a_write_until_the_agent_rereads() {
    let Setup { fourfold, .. } = setup(vec![]);
    let session = fourfold.session("coder", Some("T-1"));
    let write = Request::write("coder", "src/auth/login.rs");
    // Nothing read yet: nothing can be stale.
    assert!(session.guard(write.clone()).is_ok());
    let answer = session.ask("how do I call login", 500).unwrap();
    assert_eq!(answer.hits[0].key, "docs/auth.md");
    assert!(session.guard(write.clone()).is_ok());

    // The interface changes under the agent's feet.
    fourfold
        .context()
        .unwrap()
        .put("docs/auth.md", AUTH_DOC_V2)
        .unwrap();
    match session.guard(write.clone()) {
        Err(SessionError::StaleContext { decision, changes }) => {
            assert_eq!(decision.verdict, Verdict::Deny);
            assert_eq!(decision.gates, vec!["context-fresh".to_string()]);
            assert_eq!(changes.len(), 1);
            assert_eq!(changes[0].read.key, "docs/auth.md");
            assert_eq!(changes[0].current_version, Some(2));
        }
        other => panic!("expected stale context, got {other:?}"),
    }
    // A run that read nothing is not held by another run's reads.
    let other = fourfold.session("coder", Some("T-1"));
    assert!(other.guard(write.clone()).is_ok());

    let reread = session.reread().unwrap();
    assert_eq!(reread.len(), 1);
    assert!(reread[0].text.contains("Credentials"));
    assert_eq!(session.guard(write).unwrap().verdict, Verdict::Allow);
}

#[test]
fn a_budget_stops_model_calls_and_the_actions_it_gates() {
    let budget = Budget::tokens(Scope::Agent("coder".into())).hard(1_000.0);
    let Setup { fourfold, .. } = setup(vec![budget]);
    let session = fourfold.session("coder", Some("T-1"));
    let llm = || Request::tool("coder", "llm", serde_json::json!({"prompt": "fix the bug"}));
    assert!(session.guard(llm()).is_ok());
    let reservation = session.reserve("m", tokens(600, 200)).unwrap();
    reservation.commit(tokens(500, 100)).unwrap();
    // 600 spent: a worst case of 500 more would cross the hard limit, so it is refused before
    // the call.
    assert!(matches!(
        session.reserve("m", tokens(400, 100)),
        Err(SessionError::BudgetExceeded(_))
    ));
    session.record_usage("m", tokens(300, 100)).unwrap();
    match session.guard(llm()) {
        Err(SessionError::BudgetExceeded(exceeded)) => {
            assert!(exceeded.to_string().contains("coder"), "{exceeded}");
        }
        other => panic!("expected the budget to stop the call, got {other:?}"),
    }
}

#[test]
fn usage_without_provider_numbers_is_labelled_an_estimate() {
    let Setup { fourfold, sink } = setup(vec![]);
    let session = fourfold.session("coder", Some("T-1"));
    let measured = session.record_usage("m", tokens(100, 20)).unwrap();
    let estimated = session
        .record_estimated_usage("m", tokens(100, 20))
        .unwrap();
    assert!(!measured.estimated);
    assert!(estimated.estimated);
    assert_eq!(estimated.femtos, measured.femtos);
    fourfold.tracer().unwrap().flush().unwrap();
    let labels: Vec<bool> = sink
        .records()
        .iter()
        .filter_map(|record| match record {
            TraceRecord::Event(event) => match &event.kind {
                EventKind::Cost(cost) => Some(cost.estimated),
                _ => None,
            },
            _ => None,
        })
        .collect();
    assert_eq!(labels, [false, true]);
    let report = fourfold.cost().unwrap().report();
    assert_eq!(report.total.estimated_records, 1);
    // The session's Fourfold is the one it came from: its policy takes the approvals.
    assert!(Arc::ptr_eq(
        session.fourfold().plugins(),
        fourfold.plugins()
    ));
}

#[test]
fn controls_the_session_lacks_are_typed_errors() {
    let fourfold = Fourfold::builder()
        .policy(crate::util::builder(POLICY))
        .build()
        .unwrap();
    let session = fourfold.session("coder", None);
    assert!(matches!(
        session.ask("login", 100),
        Err(SessionError::Missing("context store"))
    ));
    assert!(matches!(
        session.record_usage("m", tokens(1, 1)),
        Err(SessionError::Missing("cost meter"))
    ));
    assert!(session
        .span("step", fourfold::trace::SpanKind::Step)
        .is_none());
    assert!(matches!(
        Fourfold::builder().build(),
        Err(fourfold::ConfigError::Invalid { .. })
    ));
}

#[test]
fn a_finding_is_written_back_where_the_policy_allows_and_outlives_the_process() {
    let policy = r#"
[[rule]]
id = "findings"
effect = "allow"
agents = ["coder"]
tools = [{ name = "context_record", glob = { topic = "findings/**" } }]

[[rule]]
id = "reviewers-read-records"
effect = "allow"
agents = ["reviewer"]
read = ["records/**"]
"#;
    let sink = MemorySink::new();
    let backing: Arc<dyn fourfold::Store> = Arc::new(fourfold::MemoryStore::new());
    let fourfold = Fourfold::builder()
        .policy(crate::util::builder(policy))
        .tracer(Tracer::builder().sink(sink.clone()).build().unwrap())
        .context_saved_in(ContextStore::builder(), Arc::clone(&backing))
        .build()
        .unwrap();
    let session = fourfold.session("coder", Some("T-9"));
    // No rule covers this topic: refused before anything is written.
    match session.record_finding("notes", "Builds are slow on Mondays.") {
        Err(SessionError::Denied(decision)) => assert_eq!(decision.verdict, Verdict::Deny),
        other => panic!("{other:?}"),
    }
    assert!(fourfold.context().unwrap().keys().is_empty());
    let version = session
        .record_finding(
            "findings/flaky",
            "The auth tests fail when run in parallel.",
        )
        .unwrap();
    assert_eq!(
        (version.key.as_str(), version.version),
        ("records/findings-flaky.md", 1)
    );
    // Served to another agent, and saved: a store opened from the same backing has it.
    let answer = fourfold
        .session("reviewer", None)
        .ask("auth tests parallel", 300)
        .unwrap();
    assert_eq!(answer.hits[0].key, "records/findings-flaky.md");
    let reopened = ContextStore::open(backing).unwrap();
    assert!(reopened
        .get("records/findings-flaky.md")
        .unwrap()
        .text
        .contains("in parallel"));
    fourfold.tracer().unwrap().flush().unwrap();
    let actions: Vec<String> = sink
        .records()
        .iter()
        .filter_map(|record| match record {
            TraceRecord::Event(event) => match &event.kind {
                EventKind::Action(action) => Some(action.tool.clone()),
                _ => None,
            },
            _ => None,
        })
        .collect();
    assert_eq!(actions, [fourfold::RECORD_TOOL]);
    // Without a context store there is nowhere to write.
    let bare = Fourfold::builder()
        .policy(crate::util::builder(policy))
        .build()
        .unwrap();
    assert!(matches!(
        bare.session("coder", None)
            .record_finding("findings/x", "text"),
        Err(SessionError::Missing("context store"))
    ));
}

const SCOPED_POLICY: &str = r#"
[gates.human-review]
kind = "human"

[[rule]]
id = "public-docs"
effect = "allow"
agents = ["coder"]
read = ["docs/public/**", "handbook/**"]

[[rule]]
id = "gated-docs"
effect = "gate"
gates = ["human-review"]
agents = ["coder"]
read = ["docs/gated/**"]
"#;

const TOKEN_DOC: &str = "# Tokens\n\n## Rotation\n\nLogin tokens rotate every hour; call `refresh_token()` before the hour is up.\n";

/// A `Fourfold` with `SCOPED_POLICY`, a store holding the same kind of page in a folder the coder
/// may read, one it may not and one a gate holds, and a sink of its trace.
fn scoped(scope: fourfold::session::ContextScope) -> (Fourfold, MemorySink) {
    let sink = MemorySink::new();
    let fourfold = Fourfold::builder()
        .policy(crate::util::builder(SCOPED_POLICY))
        .tracer(Tracer::builder().sink(sink.clone()).build().unwrap())
        .context(ContextStore::builder())
        .context_scope(scope)
        .build()
        .unwrap();
    let store = fourfold.context().unwrap();
    store.put("docs/public/tokens.md", TOKEN_DOC).unwrap();
    store
        .put(
            "docs/internal/tokens.md",
            "# Tokens\n\n## Signing keys\n\nLogin tokens are signed with the key in vault path `kv/auth/signing`; `old_login_token` was renamed to `login_token`.\n",
        )
        .unwrap();
    store
        .put(
            "docs/gated/tokens.md",
            "# Tokens\n\n## Revocation\n\nLogin tokens of a departed employee are revoked by the on-call lead.\n",
        )
        .unwrap();
    (fourfold, sink)
}

#[test]
fn asks_serve_only_the_documents_the_policy_lets_the_agent_read() {
    let (fourfold, sink) = scoped(fourfold::session::ContextScope::Policy);
    let session = fourfold.session("coder", Some("T-3"));
    let answer = session.ask("login tokens old_login_token", 2_000).unwrap();
    let keys: Vec<&str> = answer.hits.iter().map(|hit| hit.key.as_str()).collect();
    assert_eq!(keys, ["docs/public/tokens.md"], "{answer:?}");
    // The internal page ranked and so did the gated one: both were left out, and counted.
    assert_eq!(answer.withheld, 2);
    // The rename the internal page states is not applied, nor is its pointer shown.
    assert!(answer.renames.is_empty(), "{:?}", answer.renames);
    // An id learnt elsewhere does not reach the text either.
    let unscoped = fourfold.context().unwrap().ask("signing keys vault", 500);
    let internal = &unscoped.hits[0];
    assert_eq!(internal.key, "docs/internal/tokens.md");
    assert!(session.get_section(&internal.section_id).unwrap().is_none());
    let public = &answer.hits[0];
    assert!(session.get_section(&public.section_id).unwrap().is_some());
    // Judging what to serve decides nothing: no decision recorded, no approval opened.
    fourfold.tracer().unwrap().flush().unwrap();
    let decisions = sink
        .records()
        .iter()
        .filter(|record| {
            matches!(
                record,
                TraceRecord::Event(event)
                    if matches!(event.kind, EventKind::Decision(_) | EventKind::Gate(_))
            )
        })
        .count();
    assert_eq!(decisions, 0);
    assert!(fourfold.policy().pending_approvals().unwrap().is_empty());
    // Another agent, with no rule that lets it read anything, is served nothing.
    let stranger = fourfold.session("stranger", None);
    let nothing = stranger.ask("login tokens", 2_000).unwrap();
    assert!(
        nothing.hits.is_empty() && nothing.withheld == 3,
        "{nothing:?}"
    );
}

/// A run of the coder under `scope`: an ask about the internal page, then a failed action; returns
/// the trace's records and the run's id.
fn ask_then_fail(scope: fourfold::session::ContextScope) -> (Vec<TraceRecord>, String) {
    let (fourfold, sink) = scoped(scope);
    let session = fourfold.session("coder", Some("T-3"));
    let run_id = session.run_id().to_string();
    session.ask("signing keys vault", 2_000).unwrap();
    session.act(ActionEvent {
        tool: "bash".into(),
        arguments_json: r#"{"cmd": "vault read kv/auth"}"#.into(),
        result_digest: None,
        duration_ns: None,
        error: Some("permission denied".into()),
    });
    session.end(None);
    fourfold.tracer().unwrap().flush().unwrap();
    (sink.records(), run_id)
}

#[test]
fn the_trace_says_what_the_policy_withheld_and_why_an_action_then_failed() {
    let (records, run_id) = ask_then_fail(fourfold::session::ContextScope::Policy);
    let withheld: Vec<u64> = records
        .iter()
        .filter_map(|record| match record {
            TraceRecord::Event(event) => match &event.kind {
                EventKind::Context(context) => Some(context.withheld),
                _ => None,
            },
            _ => None,
        })
        .collect();
    assert_eq!(withheld, [1]);
    let timeline = fourfold::trace::timeline(&records, &run_id);
    assert!(
        timeline.iter().any(|line| line
            .text
            .ends_with(", 1 document(s) withheld by the policy")),
        "{timeline:?}"
    );
    let runs = fourfold::trace::Runs::from_records(records.iter());
    let explanation = fourfold::trace::explain(runs.get(&run_id).unwrap());
    assert_eq!(explanation.totals.n_withheld, 1);
    assert_eq!(explanation.actions[0].withheld, 1);
    let diagnosis = &explanation.diagnoses[0];
    assert_eq!(diagnosis.verdict.name(), "permission", "{explanation}");
    assert!(
        diagnosis.detail.contains("withheld 1 matching document"),
        "{diagnosis}"
    );
    let text = explanation.to_string();
    assert!(text.contains("1 matching document(s) withheld"), "{text}");

    // Served everything, the same failure is the model's.
    let (records, run_id) = ask_then_fail(fourfold::session::ContextScope::All);
    let runs = fourfold::trace::Runs::from_records(records.iter());
    let explanation = fourfold::trace::explain(runs.get(&run_id).unwrap());
    assert_eq!(explanation.totals.n_withheld, 0);
    assert_eq!(explanation.diagnoses[0].verdict.name(), "model");
}

/// A reranker that lists the keys it was given and keeps the search's order.
struct KeysSeen(parking_lot::Mutex<Vec<String>>);

impl fourfold::context::Reranker for KeysSeen {
    fn rerank(
        &self,
        _query: &str,
        candidates: &[fourfold::context::RerankCandidate],
    ) -> Result<Vec<f32>, String> {
        self.0
            .lock()
            .extend(candidates.iter().map(|candidate| candidate.key.clone()));
        Ok(candidates.iter().map(|candidate| candidate.score).collect())
    }
}

#[test]
fn a_reranker_is_never_given_what_the_policy_keeps_from_the_agent() {
    let (fourfold, sink) = scoped(fourfold::session::ContextScope::Policy);
    let seen = Arc::new(KeysSeen(parking_lot::Mutex::new(Vec::new())));
    fourfold
        .context()
        .unwrap()
        .set_reranker(Some(seen.clone()), 20);
    let session = fourfold.session("coder", Some("T-3"));
    let answer = session.ask("login tokens old_login_token", 2_000).unwrap();
    assert!(answer.reranked);
    assert_eq!(answer.withheld, 2);
    let seen = seen.0.lock().clone();
    assert!(
        !seen.is_empty() && seen.iter().all(|key| key == "docs/public/tokens.md"),
        "{seen:?}"
    );
    // The session's trace records what it was served, in the reranker's order.
    fourfold.tracer().unwrap().flush().unwrap();
    let served: Vec<Vec<String>> = sink
        .records()
        .iter()
        .filter_map(|record| match record {
            TraceRecord::Event(event) => match &event.kind {
                EventKind::Context(context) => Some(
                    context
                        .sections
                        .iter()
                        .map(|section| section.key.clone())
                        .collect(),
                ),
                _ => None,
            },
            _ => None,
        })
        .collect();
    let keys: Vec<String> = answer.hits.iter().map(|hit| hit.key.clone()).collect();
    assert_eq!(served, [keys]);
    // Asked again, the section it holds comes back as a pointer, as without a reranker.
    let again = session.ask("login tokens old_login_token", 2_000).unwrap();
    assert!(again.hits[0].already_served, "{again:?}");
}

/// A reranker that, while it runs, replaces the policy with one that no longer lets the coder
/// read `docs/public/`, as an operator could while a hosted rerank API takes its time.
/// (It holds the `Fourfold` whose store holds it: a cycle, which the test process ends.)
struct RevokingReranker(Fourfold);

impl fourfold::context::Reranker for RevokingReranker {
    fn rerank(
        &self,
        _query: &str,
        candidates: &[fourfold::context::RerankCandidate],
    ) -> Result<Vec<f32>, String> {
        self.0
            .policy()
            .replace(crate::util::builder(
                &SCOPED_POLICY.replace("\"docs/public/**\", ", ""),
            ))
            .map_err(|error| error.to_string())?;
        Ok(candidates.iter().map(|candidate| candidate.score).collect())
    }
}

#[test]
fn a_document_the_policy_stops_allowing_while_the_reranker_runs_is_not_served() {
    let (fourfold, _sink) = scoped(fourfold::session::ContextScope::Policy);
    fourfold
        .context()
        .unwrap()
        .set_reranker(Some(Arc::new(RevokingReranker(fourfold.clone()))), 20);
    let answer = fourfold
        .session("coder", Some("T-3"))
        .ask("token rotation", 2_000)
        .unwrap();
    assert!(answer.reranked);
    assert!(answer.hits.is_empty(), "{answer:?}");
}

#[test]
fn a_document_the_policy_stops_allowing_is_not_served_again() {
    let (fourfold, _sink) = scoped(fourfold::session::ContextScope::Policy);
    let session = fourfold.session("coder", Some("T-3"));
    let served = session.ask("token rotation", 500).unwrap();
    assert_eq!(served.hits[0].key, "docs/public/tokens.md");
    // The rules change (the public folder is no longer readable), then the page does.
    fourfold
        .policy()
        .replace(crate::util::builder(
            &SCOPED_POLICY.replace("\"docs/public/**\", ", ""),
        ))
        .unwrap();
    fourfold
        .context()
        .unwrap()
        .put(
            "docs/public/tokens.md",
            &TOKEN_DOC.replace("every hour", "every ten minutes"),
        )
        .unwrap();
    // The re-read does not serve the new text; the ask withholds it.
    assert!(session.reread().unwrap().is_empty());
    let again = session.ask("token rotation", 500).unwrap();
    assert!(again
        .hits
        .iter()
        .all(|hit| hit.key != "docs/public/tokens.md"));
    assert!(again.withheld >= 1);
}

#[test]
fn a_grant_during_the_run_widens_what_the_session_is_served() {
    let (fourfold, _sink) = scoped(fourfold::session::ContextScope::Policy);
    let session = fourfold.session("coder", Some("T-3"));
    let before = session.ask("signing keys vault", 500).unwrap();
    assert!(before
        .hits
        .iter()
        .all(|hit| hit.key != "docs/internal/tokens.md"));
    assert_eq!(before.withheld, 1);
    // The session keeps the policy's answers, but not past a change of the grants.
    let grant = fourfold
        .policy()
        .grant(
            "coder",
            "T-3",
            vec![fourfold::Rule::allow("incident").read("docs/internal/**")],
        )
        .unwrap();
    let during = session.ask("signing keys vault", 500).unwrap();
    assert_eq!(during.hits[0].key, "docs/internal/tokens.md");
    assert_eq!(during.withheld, 0);
    // Another task's session is not widened by it, and revoking it narrows this one again.
    let other = fourfold.session("coder", Some("T-4"));
    assert_eq!(other.ask("signing keys vault", 500).unwrap().withheld, 1);
    assert!(fourfold.policy().revoke(&grant));
    let after = session.ask("signing keys vault", 500).unwrap();
    assert!(after
        .hits
        .iter()
        .all(|hit| hit.key != "docs/internal/tokens.md"));
}

#[test]
fn an_ingested_document_is_judged_at_its_key() {
    let repo = tempfile::tempdir().unwrap();
    let docs = repo.path().join("docs");
    std::fs::create_dir_all(docs.join("public")).unwrap();
    std::fs::create_dir_all(docs.join("internal")).unwrap();
    std::fs::write(docs.join("public/tokens.md"), TOKEN_DOC).unwrap();
    std::fs::write(
        docs.join("internal/tokens.md"),
        TOKEN_DOC.replace("every hour", "on every deploy"),
    )
    .unwrap();
    // A fresh Fourfold rooted at the workspace, its store ingested from `folder` as `prefix`.
    let ask_after_ingesting_as = |folder: &std::path::Path, prefix: &str| {
        let fourfold = Fourfold::builder()
            .policy(
                fourfold::Policy::builder_from_toml(SCOPED_POLICY)
                    .unwrap()
                    .root(repo.path()),
            )
            .context(ContextStore::builder())
            .build()
            .unwrap();
        let store = fourfold.context().unwrap();
        store.ingest_dir_as(folder, prefix, &[], |_| {}).unwrap();
        let answer = fourfold
            .session("coder", None)
            .ask("token rotation", 2_000)
            .unwrap();
        let keys: Vec<String> = answer.hits.iter().map(|hit| hit.key.clone()).collect();
        (keys, answer.withheld)
    };
    // Ingested from the workspace's root, the keys are the paths the policy names.
    let served = (vec!["docs/public/tokens.md".to_string()], 1);
    assert_eq!(ask_after_ingesting_as(repo.path(), ""), served);
    // Ingested from `docs/`, the keys (`public/tokens.md`) are paths no rule names: nothing is
    // served, and the answer says how much was kept out.
    assert_eq!(ask_after_ingesting_as(&docs, ""), (Vec::new(), 2));
    // Ingested from `docs/` as `docs`, the keys are the workspace's paths again.
    assert_eq!(ask_after_ingesting_as(&docs, "docs"), served);
    assert_eq!(ask_after_ingesting_as(&docs, "docs/"), served);
}

#[test]
fn a_fourfold_scoped_to_all_serves_every_document() {
    let (fourfold, _sink) = scoped(fourfold::session::ContextScope::All);
    let session = fourfold.session("stranger", None);
    let answer = session.ask("login tokens", 2_000).unwrap();
    assert_eq!(answer.hits.len(), 3, "{answer:?}");
    assert_eq!(answer.withheld, 0);
    let renamed = session.ask("old_login_token", 2_000).unwrap();
    assert_eq!(renamed.renames.len(), 1, "{renamed:?}");
    // The configuration file names the same choice.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("policy.toml"), SCOPED_POLICY).unwrap();
    let config = dir.path().join("fourfold.toml");
    for (scope, expected) in [("all", 1), ("policy", 0)] {
        std::fs::write(
            &config,
            format!("[policy]\nfile = \"policy.toml\"\n[context]\nscope = \"{scope}\"\n"),
        )
        .unwrap();
        let fourfold = Fourfold::from_config(&config).unwrap();
        fourfold
            .context()
            .unwrap()
            .put("docs/internal/tokens.md", TOKEN_DOC)
            .unwrap();
        let hits = fourfold
            .session("coder", None)
            .ask("token rotation", 500)
            .unwrap()
            .hits;
        assert_eq!(hits.len(), expected, "scope {scope}: {hits:?}");
    }
}

#[test]
fn every_call_lands_in_the_trace_under_the_run() {
    let Setup { fourfold, sink } = setup(vec![]);
    let session = fourfold.session("coder", Some("T-1"));
    let run_id = session.run_id().to_string();
    session.ask("how do I call login", 500).unwrap();
    session.decide(
        "edit login.rs",
        "the doc says login takes two arguments",
        &["ask a human"],
    );
    session
        .guard(Request::write("coder", "src/auth/login.rs"))
        .unwrap();
    session.act(ActionEvent {
        tool: "edit".into(),
        arguments_json: r#"{"path": "src/auth/login.rs"}"#.into(),
        result_digest: None,
        duration_ns: Some(1_000),
        error: None,
    });
    session.record_usage("m", tokens(100, 20)).unwrap();
    let _ = session.guard(Request::write("coder", "deploy/prod.yaml"));
    session.end(None);
    fourfold.tracer().unwrap().flush().unwrap();
    let kinds: Vec<&'static str> = sink
        .records()
        .iter()
        .filter_map(|record| match record {
            TraceRecord::Event(event) if event.run_id == run_id => Some(match &event.kind {
                EventKind::Context(_) => "context",
                EventKind::Decision(_) => "decision",
                EventKind::Gate(_) => "gate",
                EventKind::Action(_) => "action",
                EventKind::Cost(_) => "cost",
            }),
            _ => None,
        })
        .collect();
    assert_eq!(
        kinds,
        ["context", "decision", "gate", "action", "cost", "gate"],
        "{:?}",
        sink.records()
    );
}

#[test]
fn a_command_gate_passes_on_exit_status_zero_and_fails_closed() {
    let request = Request::run("coder", "cargo test");
    let outcome = |gate: CommandGate| gate.check(&request);
    assert!(matches!(
        outcome(CommandGate::new("tests-pass", "true", Vec::<String>::new())),
        GateOutcome::Pass { .. }
    ));
    match outcome(CommandGate::new("tests-pass", "sh", ["-c", "exit 3"])) {
        GateOutcome::Fail { reason } => assert!(reason.contains("status 3"), "{reason}"),
        other => panic!("{other:?}"),
    }
    // A program that hangs is stopped and fails the gate.
    match outcome(
        CommandGate::new("tests-pass", "sleep", ["30"])
            .timeout(std::time::Duration::from_millis(200)),
    ) {
        GateOutcome::Fail { reason } => assert!(reason.contains("was stopped"), "{reason}"),
        other => panic!("{other:?}"),
    }
    match outcome(CommandGate::new(
        "tests-pass",
        "/nonexistent/fourfold-test",
        Vec::<String>::new(),
    )) {
        GateOutcome::Fail { reason } => {
            assert!(reason.contains("could not be started"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
    // Installed under its name, it answers a `gate` rule of that name.
    let policy = r#"
[gates.tests-pass]
kind = "plugin"

[[rule]]
id = "merge-after-tests"
effect = "gate"
gates = ["tests-pass"]
run = ["git merge*"]
"#;
    for (program, expected) in [("true", Verdict::Allow), ("false", Verdict::Deny)] {
        let fourfold = Fourfold::builder()
            .policy(crate::util::builder(policy))
            .plugin(Arc::new(CommandGate::new(
                "tests-pass",
                program,
                Vec::<String>::new(),
            )))
            .build()
            .unwrap();
        let session = fourfold.session("coder", None);
        let verdict = allowed_or_denied(&session, Request::run("coder", "git merge feature"));
        assert_eq!(verdict, expected, "{program}");
    }
}

#[test]
fn the_trace_says_what_each_failure_comes_down_to() {
    let budget = Budget::tokens(Scope::Agent("coder".into())).hard(100.0);
    let Setup { fourfold, sink } = setup(vec![budget]);
    let session = fourfold.session("coder", Some("T-1"));
    let run_id = session.run_id().to_string();
    let policy = fourfold.policy();

    // permission: outside the agent's scope.
    assert!(session
        .guard(Request::write("coder", "deploy/prod.yaml"))
        .is_err());
    // gate-rejected: a reviewer says no.
    let Err(SessionError::Pending(pending)) =
        session.guard(Request::run("coder", "git push origin main"))
    else {
        panic!("the push should wait for review");
    };
    policy
        .reject(
            pending.approval_id.as_deref().unwrap(),
            "bob",
            "tests are red",
        )
        .unwrap();
    // Approved and used: not a failure.
    let Err(SessionError::Pending(pending)) =
        session.guard(Request::run("coder", "git push origin fix"))
    else {
        panic!("the push should wait for review");
    };
    policy
        .approve(pending.approval_id.as_deref().unwrap(), "alice", "ok")
        .unwrap();
    session
        .guard(Request::run("coder", "git push origin fix"))
        .unwrap();
    // stale-context: the doc the agent read changes before it writes.
    session.ask("how do I call login", 500).unwrap();
    fourfold
        .context()
        .unwrap()
        .put("docs/auth.md", AUTH_DOC_V2)
        .unwrap();
    assert!(session
        .guard(Request::write("coder", "src/auth/login.rs"))
        .is_err());
    session.reread().unwrap();
    session
        .guard(Request::write("coder", "src/auth/login.rs"))
        .unwrap();
    // model: allowed, context current, and still it failed.
    session.act(ActionEvent {
        tool: "edit".into(),
        arguments_json: r#"{"path": "src/auth/login.rs"}"#.into(),
        result_digest: None,
        duration_ns: None,
        error: Some("the patch did not apply".into()),
    });
    // budget: the model call that would go past the hard limit is held.
    session.record_usage("m", tokens(90, 20)).unwrap();
    assert!(session
        .guard(Request::tool("coder", "llm", serde_json::json!({})))
        .is_err());
    session.end(None);
    fourfold.tracer().unwrap().flush().unwrap();

    let records = sink.records();
    let runs = fourfold::trace::Runs::from_records(records.iter());
    let explanation = fourfold::trace::explain(runs.get(&run_id).unwrap());
    let verdicts: Vec<&str> = explanation
        .diagnoses
        .iter()
        .map(|diagnosis| diagnosis.verdict.name())
        .collect();
    assert_eq!(
        verdicts,
        // The meter records the call that went past the limit (it already happened), then the
        // budget gate holds the next one.
        [
            "permission",
            "gate-rejected",
            "stale-context",
            "model",
            "budget",
            "budget"
        ],
        "{explanation}"
    );
    let details: Vec<&str> = explanation
        .diagnoses
        .iter()
        .map(|d| d.detail.as_str())
        .collect();
    assert!(
        details[1].contains("bob") && details[1].contains("tests are red"),
        "{details:?}"
    );
    assert!(details[2].contains("docs/auth.md"), "{details:?}");
    assert!(
        details[3].contains("the patch did not apply"),
        "{details:?}"
    );
    assert!(
        explanation.to_string().contains("verdict: #"),
        "{explanation}"
    );
}

#[test]
fn one_config_file_builds_all_four_controls() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("policy.toml"), POLICY).unwrap();
    let config = r#"
[policy]
file = "policy.toml"

[trace]
file = "traces/fourfold.trace"

[context]
snapshot = ".fourfold/context"
archive = ["legacy/"]

[cost]
unknown_model = "zero"
ledger = "traces/cost.jsonl"

[[budget]]
scope = "agent:coder"
unit = "tokens"
hard = 150
"#;
    std::fs::write(dir.path().join("fourfold.toml"), config).unwrap();
    let fourfold = Fourfold::from_config(dir.path().join("fourfold.toml")).unwrap();
    let context = fourfold.context().unwrap();
    context.put("docs/auth.md", AUTH_DOC_V1).unwrap();
    context.put("legacy/auth.md", AUTH_DOC_V1).unwrap();
    let session = fourfold.session("coder", Some("T-1"));
    let answer = session.ask("how do I call login", 500).unwrap();
    assert_eq!(answer.hits[0].key, "docs/auth.md");
    session.record_usage("gpt-4o", tokens(100, 20)).unwrap();
    assert!(matches!(
        session.reserve("gpt-4o", tokens(50, 0)),
        Err(SessionError::BudgetExceeded(_))
    ));
    let run_id = session.run_id().to_string();
    session.end(None);
    fourfold.tracer().unwrap().flush().unwrap();
    let runs = fourfold::trace::TraceReader::open(dir.path().join("traces/fourfold.trace"))
        .unwrap()
        .runs()
        .unwrap();
    assert!(runs.get(&run_id).is_some());
    assert!(dir.path().join("traces/cost.jsonl").exists());
}

#[test]
fn a_command_gate_declared_in_the_config_holds_merges() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("policy.toml"),
        "[gates.tests-pass]\nkind = \"plugin\"\n\n[[rule]]\nid = \"merge-after-tests\"\neffect = \"gate\"\ngates = [\"tests-pass\"]\nrun = [\"git merge*\"]\n",
    )
    .unwrap();
    for (marker, expected) in [(true, Verdict::Allow), (false, Verdict::Deny)] {
        let marker_path = dir.path().join("green");
        if marker {
            std::fs::write(&marker_path, "").unwrap();
        } else if marker_path.exists() {
            std::fs::remove_file(&marker_path).unwrap();
        }
        // The gate's command runs in the config's folder: `test -e green` passes once CI is green.
        std::fs::write(
            dir.path().join("fourfold.toml"),
            "[policy]\nfile = \"policy.toml\"\n\n[[command_gate]]\nname = \"tests-pass\"\ncommand = [\"test\", \"-e\", \"green\"]\ndir = \".\"\n",
        )
        .unwrap();
        let fourfold = Fourfold::from_config(dir.path().join("fourfold.toml")).unwrap();
        let session = fourfold.session("coder", None);
        let verdict = allowed_or_denied(&session, Request::run("coder", "git merge feature"));
        assert_eq!(verdict, expected, "marker {marker}");
    }
}

/// `[context.rerank]` starts the program it names, in the config's folder, and the store's
/// asks, a session's too, are served in its order.
#[test]
fn a_config_reranker_orders_what_asks_serve() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("policy.toml"), POLICY).unwrap();
    // Scores each candidate by its text's length: the longer page wins, which BM25 ranks last.
    std::fs::write(
        dir.path().join("by_length.py"),
        "import json, sys\nfor line in sys.stdin:\n    request = json.loads(line)\n    print(json.dumps({\"scores\": [len(c[\"text\"]) for c in request[\"candidates\"]]}), flush=True)\n",
    )
    .unwrap();
    // A Fourfold of `config`, whose store holds the short page.
    let with_config = |config: &str| {
        std::fs::write(dir.path().join("fourfold.toml"), config).unwrap();
        let fourfold = Fourfold::from_config(dir.path().join("fourfold.toml")).unwrap();
        fourfold
            .context()
            .expect("a context store")
            .put("docs/short.md", "# Short\n\nThe login token.\n")
            .unwrap();
        fourfold
    };
    let fourfold = with_config(
        "[policy]\nfile = \"policy.toml\"\n\n[context]\nscope = \"all\"\n\n[context.rerank]\ncommand = [\"python3\", \"by_length.py\"]\ndepth = 5\ntimeout_seconds = 30\nprocesses = 2\ndir = \".\"\n",
    );
    let store = fourfold.context().expect("a context store");
    store
        .put(
            "docs/long.md",
            "# Long\n\nA login page, which says much more about many other things than the short one.\n",
        )
        .unwrap();
    let answer = store.ask("login token", 10_000);
    assert!(answer.reranked, "{:?}", answer.rerank_error);
    assert_eq!(answer.hits[0].key, "docs/long.md");
    let session = fourfold.session("coder", Some("T-1"));
    let served = session.ask("login token", 10_000).unwrap();
    assert!(served.reranked, "{:?}", served.rerank_error);
    assert_eq!(served.hits[0].key, "docs/long.md");

    // The program starts at the first ask that reranks, so loading a config starts nothing (a
    // hook loads it for each tool call); one that cannot start leaves the search's order.
    let fourfold = with_config(
        "[policy]\nfile = \"policy.toml\"\n\n[context.rerank]\ncommand = [\"/nonexistent/reranker\", \"--fast\"]\n",
    );
    let store = fourfold.context().expect("a context store");
    let answer = store.ask("login token", 10_000);
    assert!(!answer.reranked);
    let error = answer.rerank_error.expect("the failure is said");
    assert!(
        error.contains("cannot start `/nonexistent/reranker --fast`"),
        "{error}"
    );
    assert_eq!(answer.hits[0].key, "docs/short.md");
}

#[test]
fn a_bad_config_file_is_a_typed_error_that_names_it() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("policy.toml"), POLICY).unwrap();
    let check = |config: &str, expected: &str| {
        let path = dir.path().join("fourfold.toml");
        std::fs::write(&path, config).unwrap();
        let error = Fourfold::from_config(&path).unwrap_err();
        assert!(
            error.to_string().contains(expected),
            "{config}\n  gave: {error}"
        );
    };
    check(
        "[policy]\nfile = \"policy.toml\"\ncolour = \"blue\"\n",
        "unknown field",
    );
    check("", "missing field `policy`");
    check("[policy]\nfile = \"nowhere.toml\"\n", "nowhere.toml");
    check(
        "[policy]\nfile = \"policy.toml\"\n[[budget]]\nscope = \"team:a\"\nunit = \"tokens\"\nhard = 5\n",
        "budget scope `team:a`",
    );
    check(
        "[policy]\nfile = \"policy.toml\"\n[[budget]]\nscope = \"fleet\"\nunit = \"tokens\"\n",
        "neither `soft` nor `hard`",
    );
    check(
        "[policy]\nfile = \"policy.toml\"\n[[budget]]\nscope = \"fleet\"\nunit = \"tokens\"\nhard = nan\n",
        "budget",
    );
    check(
        "[policy]\nfile = \"policy.toml\"\n[cost]\nunknown_model = \"guess\"\n",
        "`unknown_model` is `error` or `zero`",
    );
    check(
        "[policy]\nfile = \"policy.toml\"\n[trace]\n",
        "names no sink",
    );
    check(
        "[policy]\nfile = \"policy.toml\"\n[[command_gate]]\nname = \"tests-pass\"\ncommand = []\n",
        "command gate `tests-pass` has an empty `command`",
    );
    check(
        "[policy]\nfile = \"policy.toml\"\n[trace]\notlp_endpoint = \"ftp://collector.example.com/v1/traces\"\n",
        "must be http:// or https://",
    );
    check(
        "[policy]\nfile = \"policy.toml\"\n[context]\nshared = true\nsnapshot = \"state\"\n",
        "`[context] shared` and `snapshot` cannot be set together",
    );
    check(
        "[policy]\nfile = \"policy.toml\"\n[context]\nscope = \"everyone\"\n",
        "`[context] scope` is \"policy\"",
    );
    check(
        "[policy]\nfile = \"policy.toml\"\n[context.rerank]\ncommand = []\n",
        "`[context.rerank] command` is empty",
    );
    check(
        "[policy]\nfile = \"policy.toml\"\n[context.rerank]\ncommand = [\"cat\"]\ndepth = 0\n",
        "`[context.rerank] depth` must be at least 1",
    );
    check(
        "[policy]\nfile = \"policy.toml\"\n[context.rerank]\ncommand = [\"cat\"]\ntimeout_seconds = -1\n",
        "`[context.rerank] timeout_seconds` must be a positive number",
    );
    check(
        "[policy]\nfile = \"policy.toml\"\n[context.rerank]\ncommand = [\"cat\"]\nprocesses = 0\n",
        "`[context.rerank] processes` must be at least 1",
    );
    // A command gate may not take the name of a built-in one.
    check(
        "[policy]\nfile = \"policy.toml\"\n[[command_gate]]\nname = \"context-fresh\"\ncommand = [\"true\"]\n",
        "context-fresh",
    );
    assert!(matches!(
        Fourfold::from_config(dir.path().join("absent.toml")),
        Err(fourfold::ConfigError::Read { .. })
    ));
}

#[test]
fn dropping_a_fourfold_frees_its_controls() {
    let Setup { fourfold, .. } = setup(vec![Budget::tokens(Scope::Fleet).hard(10.0)]);
    let session = fourfold.session("coder", Some("T-1"));
    session.ask("how do I call login", 500).unwrap();
    session.end(None);
    let registry = Arc::clone(fourfold.plugins());
    drop(fourfold);
    // The meter and the context store emit to the registry; the registry holds the meter only
    // weakly, so nothing keeps the registry alive but this handle.
    assert_eq!(Arc::strong_count(&registry), 1);
}
