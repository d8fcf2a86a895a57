//! The `fourfold` binary: `policy check` as scripts use it (JSON in, JSON out), approvals across
//! invocations, bad input, the demo, and `trace show`, `verify` and `export`.

mod common;

use common::run_with_stdin;
use std::path::Path;
use std::process::{Command, Output};

const POLICY: &str = r#"
[[rule]]
id = "read-src"
effect = "allow"
read = ["src/**"]

[[rule]]
id = "no-secrets"
effect = "deny"
read = [".env"]

[[rule]]
id = "push"
effect = "gate"
gates = ["human-review"]
run = ["git push*"]
"#;

fn fourfold(args: &[&str], stdin: &str) -> Output {
    run_with_stdin(
        Command::new(env!("CARGO_BIN_EXE_fourfold")).args(args),
        stdin,
    )
}

/// Ingests `docs` into the store saved at `store`, which must succeed.
fn ingest_docs(docs: &std::path::Path, store: &str) {
    let ingest = fourfold(
        &[
            "context",
            "ingest",
            docs.to_str().unwrap(),
            "--store",
            store,
        ],
        "",
    );
    assert!(ingest.status.success(), "{ingest:?}");
}

/// `fourfold context ask QUERY --store STORE EXTRA...`: its exit code and what it printed.
fn context_ask(store: &str, query: &str, extra: &[&str]) -> (Option<i32>, String) {
    let mut args = vec!["context", "ask", query, "--store", store];
    args.extend_from_slice(extra);
    let output = fourfold(&args, "");
    (
        output.status.code(),
        String::from_utf8(output.stdout).unwrap(),
    )
}

fn write_policy(dir: &Path) -> String {
    let file = dir.join("policy.toml");
    std::fs::write(&file, POLICY).unwrap();
    file.to_str().unwrap().to_string()
}

fn lines(output: &Output) -> Vec<serde_json::Value> {
    String::from_utf8(output.stdout.clone())
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).expect("each line is JSON"))
        .collect()
}

#[test]
fn check_reads_requests_from_stdin_and_prints_decisions() {
    let dir = tempfile::tempdir().unwrap();
    let policy = write_policy(dir.path());
    let output = fourfold(
        &["policy", "check", "--policy", &policy],
        "{\"agent\":\"a\",\"action\":\"read\",\"path\":\"src/lib.rs\"}\n\n{\"agent\":\"a\",\"action\":\"read\",\"path\":\".env\"}\n",
    );
    assert!(output.status.success(), "{output:?}");
    let decisions = lines(&output);
    assert_eq!(decisions.len(), 2);
    assert_eq!(decisions[0]["effect"], "allow");
    assert_eq!(decisions[0]["rule"]["id"], "read-src");
    assert_eq!(decisions[0]["rule"]["line"], 2);
    assert_eq!(decisions[0]["rule"]["file"], policy.as_str());
    assert_eq!(decisions[1]["effect"], "deny");
    assert_eq!(decisions[1]["rule"]["id"], "no-secrets");
    assert!(decisions[1]["reason"].as_str().unwrap().contains(".env"));
}

#[test]
fn check_takes_one_request_as_an_argument() {
    let dir = tempfile::tempdir().unwrap();
    let policy = write_policy(dir.path());
    let request = r#"{"agent":"a","action":"net","url":"https://example.com"}"#;
    let output = fourfold(&["policy", "check", "--policy", &policy, request], "");
    assert!(output.status.success());
    assert_eq!(lines(&output)[0]["effect"], "deny");
    assert_eq!(lines(&output)[0]["rule"], serde_json::Value::Null);
}

#[test]
fn a_bad_request_line_is_reported_and_the_rest_still_checked() {
    let dir = tempfile::tempdir().unwrap();
    let policy = write_policy(dir.path());
    let output = fourfold(
        &["policy", "check", "--policy", &policy],
        "not json\n{\"agent\":\"a\",\"action\":\"fly\"}\n{\"agent\":\"a\",\"action\":\"read\",\"path\":\"src/x\"}\n",
    );
    assert_eq!(output.status.code(), Some(2));
    let decisions = lines(&output);
    assert!(decisions[0]["error"]
        .as_str()
        .unwrap()
        .starts_with("invalid request"));
    assert!(decisions[1]["error"].is_string());
    assert_eq!(decisions[2]["effect"], "allow");
}

#[test]
fn a_bad_policy_file_names_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.toml");
    std::fs::write(
        &file,
        "[[rule]]\nid = \"x\"\neffect = \"permit\"\nread = [\"**\"]\n",
    )
    .unwrap();
    let output = fourfold(
        &["policy", "check", "--policy", file.to_str().unwrap(), "{}"],
        "",
    );
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(
        stderr.contains("bad.toml:3: rule `x`: unknown effect `permit`"),
        "{stderr}"
    );
}

#[test]
fn approvals_work_across_invocations() {
    let dir = tempfile::tempdir().unwrap();
    let policy = write_policy(dir.path());
    let push = r#"{"agent":"a","action":"run","command":"git push origin main"}"#;
    let pending = lines(&fourfold(
        &["policy", "check", "--policy", &policy, push],
        "",
    ));
    assert_eq!(pending[0]["effect"], "pending", "{pending:?}");
    let approval_id = pending[0]["approval_id"].as_str().unwrap().to_string();
    let listed = lines(&fourfold(&["policy", "approvals", "--policy", &policy], ""));
    assert_eq!(listed[0]["id"], approval_id.as_str());
    let approved = fourfold(
        &[
            "policy",
            "approve",
            "--policy",
            &policy,
            &approval_id,
            "--by",
            "alice",
            "--reason",
            "ok",
        ],
        "",
    );
    assert!(approved.status.success(), "{approved:?}");
    assert_eq!(
        lines(&fourfold(
            &["policy", "check", "--policy", &policy, push],
            ""
        ))[0]["effect"],
        "allow"
    );
    assert_eq!(
        lines(&fourfold(
            &["policy", "check", "--policy", &policy, push],
            ""
        ))[0]["effect"],
        "pending"
    );
    let again = fourfold(
        &[
            "policy",
            "reject",
            "--policy",
            &policy,
            &approval_id,
            "--by",
            "bob",
        ],
        "",
    );
    assert_eq!(again.status.code(), Some(2));
    assert!(String::from_utf8(again.stderr)
        .unwrap()
        .contains("already used"));
}

/// The connection settings of a new database `ff_cli_<name>_<pid>` on the test server, or `None`
/// (the test is skipped) when there is no server outside CI.
fn fresh_database(name: &str) -> Option<String> {
    let server = match std::env::var("FOURFOLD_TEST_POSTGRES") {
        Ok(server) => server,
        Err(_) if std::env::var("CI").is_ok_and(|ci| ci == "true") => {
            panic!(
                "CI must run the PostgreSQL tests: run cargo test under scripts/with-postgres.sh"
            )
        }
        Err(_) => {
            eprintln!("skipped: no PostgreSQL server (run `scripts/with-postgres.sh cargo test`)");
            return None;
        }
    };
    let database = format!("ff_cli_{name}_{}", std::process::id());
    let mut admin =
        postgres::Client::connect(&format!("{server} dbname=postgres"), postgres::NoTls).unwrap();
    admin
        .batch_execute(&format!("CREATE DATABASE {database}"))
        .unwrap();
    Some(format!("{server} dbname={database}"))
}

/// A `fourfold.toml` in `dir` with the test policy, a PostgreSQL `[store]` at `settings`, and
/// `more` after them.
fn write_fleet_config(dir: &std::path::Path, settings: &str, more: &str) -> std::path::PathBuf {
    write_policy(dir);
    let config = dir.join("fourfold.toml");
    std::fs::write(
        &config,
        format!("[policy]\nfile = \"policy.toml\"\n[store]\nurl = \"{settings}\"\n{more}"),
    )
    .unwrap();
    config
}

#[test]
fn approvals_of_a_fleet_are_resolved_from_another_process_through_its_config() {
    let Some(settings) = fresh_database("approvals") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let config = write_fleet_config(dir.path(), &settings, "");
    // An agent's process is held at the review gate; the approval lands in PostgreSQL.
    let fleet = fourfold::Fourfold::from_config(&config).unwrap();
    let session = fleet.session("a", None);
    let push = fourfold::Request::run("a", "git push origin main");
    let approval_id = match session.guard(push.clone()) {
        Err(fourfold::SessionError::Pending(decision)) => decision.approval_id.unwrap(),
        other => panic!("expected a pending approval, got {other:?}"),
    };
    // A reviewer's terminal, another process, sees it and approves it.
    let config = config.display().to_string();
    let listed = lines(&fourfold(&["approvals", "list", "--config", &config], ""));
    assert_eq!(listed[0]["id"], approval_id.as_str(), "{listed:?}");
    let approved = fourfold(
        &[
            "approvals",
            "approve",
            "--config",
            &config,
            &approval_id,
            "--by",
            "alice",
        ],
        "",
    );
    assert!(approved.status.success(), "{approved:?}");
    assert!(session.guard(push).is_ok());
    assert!(lines(&fourfold(&["approvals", "list", "--config", &config], "")).is_empty());
}

#[test]
fn the_demo_runs_the_fleet_and_diagnoses_every_failure() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("demo");
    let output = fourfold(&["demo", "--out", out.to_str().unwrap()], "");
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    for expected in [
        "ALLOW",
        "PENDING",
        "APPROVE",
        "STALE",
        "REREAD",
        "WITHHELD 1 matching document(s)",
        "BUDGET",
        "rule `no-secrets`",
        "permission ",
        "stale-context ",
        "budget ",
        "model ",
    ] {
        assert!(
            stdout.contains(expected),
            "demo output lacks {expected:?}:\n{stdout}"
        );
    }
    // The trace it names is whole, and says the same.
    let trace = out.join("demo.trace");
    let trace = trace.to_str().unwrap();
    assert!(fourfold(&["trace", "verify", trace], "").status.success());
    let explained = fourfold(&["trace", "explain", trace], "");
    let explained = String::from_utf8(explained.stdout).unwrap();
    for verdict in ["permission", "stale-context", "budget", "model"] {
        assert!(
            explained.contains("verdict: #") && explained.contains(verdict),
            "trace explain lacks {verdict:?}:\n{explained}"
        );
    }
    // The coder's ask matched the runbook under secrets/, which the policy kept from it.
    assert!(
        explained.contains("1 document(s) withheld by the policy"),
        "{explained}"
    );
}

/// Writes a small trace with one run: a tool call that failed.
fn write_trace(path: &Path) -> String {
    use fourfold::trace::{Durability, SpanKind, TraceFileSink, Tracer};
    let tracer = Tracer::builder()
        .sink(TraceFileSink::open(path, Durability::default()).unwrap())
        .build()
        .unwrap();
    let run = tracer.start_run("coder", Some("T-12"));
    let run_id = run.id().to_string();
    let tool = run.span("bash", SpanKind::ToolCall);
    tool.record(fourfold::EventKind::Decision(fourfold::DecisionEvent {
        choice: "run the tests".into(),
        rationale: "a red test".into(),
        alternatives: vec![],
    }));
    tool.end(Some("exit 101"));
    run.end(None);
    tracer.close().unwrap();
    run_id
}

#[test]
fn trace_show_prints_each_run_as_a_timeline() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("agent.trace");
    let run_id = write_trace(&path);
    let output = fourfold(
        &["trace", "show", path.to_str().unwrap(), "--run", &run_id],
        "",
    );
    assert!(output.status.success(), "{output:?}");
    let stdout = String::from_utf8(output.stdout).unwrap();
    let expected = format!(
        "run {run_id}\n  ▸ invoke_agent coder (agent coder, task T-12)\n    ▸ execute_tool bash\n      #1 decision: run the tests (a red test)\n    ◂ failed: exit 101\n  ◂ ok\n"
    );
    assert_eq!(stdout, expected);
    let missing = fourfold(
        &["trace", "show", path.to_str().unwrap(), "--run", "nope"],
        "",
    );
    assert_eq!(missing.status.code(), Some(2));
}

#[test]
fn trace_verify_passes_an_intact_trace_and_names_a_damaged_frame() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("agent.trace");
    write_trace(&path);
    let intact = fourfold(&["trace", "verify", path.to_str().unwrap()], "");
    assert!(intact.status.success());
    assert!(String::from_utf8(intact.stdout)
        .unwrap()
        .starts_with("ok: 5 frames, last hash "));
    let mut bytes = std::fs::read(&path).unwrap();
    let last = bytes.len() - 3;
    bytes[last] ^= 0x55;
    std::fs::write(&path, bytes).unwrap();
    let damaged = fourfold(&["trace", "verify", path.to_str().unwrap()], "");
    assert_eq!(damaged.status.code(), Some(1));
    let stdout = String::from_utf8(damaged.stdout).unwrap();
    assert!(
        stdout.contains("frame 4 at byte") && stdout.contains("checksum mismatch"),
        "{stdout}"
    );
    let foreign = dir.path().join("notes.txt");
    std::fs::write(&foreign, "hello").unwrap();
    let foreign_output = fourfold(&["trace", "verify", foreign.to_str().unwrap()], "");
    assert!(String::from_utf8(foreign_output.stdout)
        .unwrap()
        .contains("not a fourfold trace file"));
}

/// The spans of every line of an OTLP/JSON Lines file.
fn otlp_spans(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .flat_map(|line| {
            let request: serde_json::Value = serde_json::from_str(line).expect("each line is JSON");
            request["resourceSpans"][0]["scopeSpans"][0]["spans"]
                .as_array()
                .unwrap()
                .clone()
        })
        .collect()
}

fn attribute<'a>(span: &'a serde_json::Value, key: &str) -> Option<&'a serde_json::Value> {
    span["attributes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|attribute| attribute["key"] == key)
        .map(|attribute| &attribute["value"])
}

#[test]
fn trace_export_writes_otlp_json_lines_and_recovers_a_torn_run() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("agent.trace");
    let out = dir.path().join("otlp.jsonl");
    let run_id = write_trace(&path);
    let export = |expected_stdout: &str| {
        let output = fourfold(
            &[
                "trace",
                "export",
                path.to_str().unwrap(),
                "--otlp",
                out.to_str().unwrap(),
            ],
            "",
        );
        assert!(output.status.success(), "{output:?}");
        let stdout = String::from_utf8(output.stdout).unwrap();
        assert!(stdout.starts_with(expected_stdout), "{stdout}");
        stdout
    };
    export(&format!("exported 2 spans of 1 run to {}\n", out.display()));
    assert_eq!(std::fs::read_to_string(&out).unwrap().lines().count(), 1);
    let spans = otlp_spans(&out);
    let names: Vec<&str> = spans
        .iter()
        .map(|span| span["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["execute_tool bash", "invoke_agent coder"]);
    let (tool, run) = (&spans[0], &spans[1]);
    assert_eq!(tool["traceId"], run["traceId"]);
    assert_eq!(tool["traceId"].as_str().unwrap().len(), 32);
    assert_eq!(tool["parentSpanId"], run["spanId"]);
    assert_eq!(tool["status"]["code"], 2);
    assert_eq!(tool["status"]["message"], "exit 101");
    assert_eq!(tool["events"][0]["name"], "fourfold.decision");
    assert_eq!(
        attribute(run, "fourfold.run.id").unwrap()["stringValue"],
        run_id.as_str()
    );
    assert_eq!(
        attribute(run, "gen_ai.operation.name").unwrap()["stringValue"],
        "invoke_agent"
    );
    // A crash cut the run's end short: the run is still exported, unfinished.
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() - 3]).unwrap();
    let stdout = export(&format!(
        "exported 2 spans of 1 run to {} (1 unfinished)\n",
        out.display()
    ));
    assert!(stdout.contains("partial frame"), "{stdout}");
    let spans = otlp_spans(&out);
    assert_eq!(spans.len(), 2, "the output is replaced, not appended to");
    assert_eq!(
        attribute(&spans[1], "fourfold.span.unfinished").unwrap()["boolValue"],
        true
    );
    assert_eq!(spans[1]["endTimeUnixNano"], spans[0]["endTimeUnixNano"]);
}

/// Writes a run that decides, is allowed, acts and pays for a model call.
fn write_explained_trace(path: &Path) -> String {
    use fourfold::trace::{Durability, SpanKind, TraceFileSink, Tracer};
    use fourfold::{ActionEvent, CostEvent, DecisionEvent, EventKind, GateEvent, GateEventOutcome};
    let tracer = Tracer::builder()
        .sink(TraceFileSink::open(path, Durability::default()).unwrap())
        .build()
        .unwrap();
    let run = tracer.start_run("coder", Some("T-12"));
    let run_id = run.id().to_string();
    let step = run.span("fix", SpanKind::Step);
    let llm = step.child("gpt-4o", SpanKind::LlmCall);
    llm.record(EventKind::Cost(CostEvent {
        model: "gpt-4o".into(),
        provider: Some("openai".into()),
        input_tokens: 1_000,
        output_tokens: 20,
        cached_tokens: 0,
        reasoning_tokens: 0,
        cost_micros: 2_700,
        currency: "USD".into(),
        estimated: false,
        cache_write_tokens: 0,
        saved_tokens: 0,
        saved_micros: 0,
        warning: None,
    }));
    llm.end(None);
    step.record(EventKind::Decision(DecisionEvent {
        choice: "run the tests".into(),
        rationale: "a red test".into(),
        alternatives: vec![],
    }));
    step.record(EventKind::Gate(GateEvent {
        request_json: r#"{"run":"cargo test"}"#.into(),
        outcome: GateEventOutcome::Allowed,
        rule: None,
        gates: vec![],
        approval_id: None,
        approver: None,
        reason: "allowed by rule `tests`".into(),
    }));
    let tool = step.child("bash", SpanKind::ToolCall);
    tool.record(EventKind::Action(ActionEvent {
        tool: "bash".into(),
        arguments_json: r#"{"command":"cargo test"}"#.into(),
        result_digest: None,
        duration_ns: Some(3_000_000),
        error: Some("exit 101".into()),
    }));
    tool.end(Some("exit 101"));
    step.end(None);
    run.end(None);
    tracer.close().unwrap();
    run_id
}

#[test]
fn trace_explain_prints_each_action_with_its_reasons() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("agent.trace");
    let run_id = write_explained_trace(&path);
    let file = path.to_str().unwrap();
    let output = fourfold(&["trace", "explain", file, "--run", &run_id], "");
    assert!(output.status.success(), "{output:?}");
    let stdout = String::from_utf8(output.stdout).unwrap();
    for expected in [
        format!("run {run_id} (agent coder, task T-12)"),
        "1. #4 bash {\"command\":\"cargo test\"}: failed: exit 101".to_string(),
        "   in:       invoke_agent coder > step fix > execute_tool bash".to_string(),
        "   decision: #2 run the tests (a red test)".to_string(),
        "   gate:     #3 allowed: allowed by rule `tests`".to_string(),
        "   cost:     1 model call, 1000 in / 20 out tokens, 0.002700 USD".to_string(),
        "totals: 1 action (1 failed, 0 unchecked), 1 decision, gates allowed=1".to_string(),
    ] {
        assert!(
            stdout.contains(&expected),
            "missing {expected:?} in\n{stdout}"
        );
    }

    let json = fourfold(&["trace", "explain", file, "--json"], "");
    assert!(json.status.success(), "{json:?}");
    let explanations = lines(&json);
    assert_eq!(explanations.len(), 1);
    assert_eq!(explanations[0]["run_id"], run_id.as_str());
    assert_eq!(explanations[0]["actions"][0]["action"]["tool"], "bash");
    assert_eq!(
        explanations[0]["totals"]["cost"]["cost_micros"]["USD"],
        2_700
    );

    let missing = fourfold(&["trace", "explain", file, "--run", "nope"], "");
    assert_eq!(missing.status.code(), Some(2));
}

#[test]
fn trace_query_prints_the_selected_events_as_json_lines() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("agent.trace");
    let run_id = write_explained_trace(&path);
    let file = path.to_str().unwrap();
    let kinds = |args: &[&str]| -> Vec<String> {
        let mut argv = vec!["trace", "query", file];
        argv.extend_from_slice(args);
        let output = fourfold(&argv, "");
        assert!(output.status.success(), "{output:?}");
        lines(&output)
            .iter()
            .map(|event| {
                let kind = event["kind"].as_object().unwrap();
                kind.keys().next().unwrap().clone()
            })
            .collect()
    };
    assert_eq!(kinds(&[]), vec!["Cost", "Decision", "Gate", "Action"]);
    assert_eq!(
        kinds(&["--kind", "action", "--kind", "cost"]),
        vec!["Cost", "Action"]
    );
    assert_eq!(kinds(&["--outcome", "allowed"]), vec!["Gate"]);
    assert_eq!(kinds(&["--outcome", "denied"]), Vec::<String>::new());
    assert_eq!(kinds(&["--run", &run_id, "--agent", "coder"]).len(), 4);
    assert_eq!(kinds(&["--task", "T-13"]), Vec::<String>::new());
    assert_eq!(kinds(&["--until", "1"]), Vec::<String>::new());

    let unknown = fourfold(&["trace", "query", file, "--kind", "gates"], "");
    assert_eq!(unknown.status.code(), Some(2));
    let stderr = String::from_utf8(unknown.stderr).unwrap();
    assert!(
        stderr.contains(
            "unknown event kind `gates`; expected one of: decision, action, gate, cost, context"
        ),
        "{stderr}"
    );
}

#[test]
fn a_reviewer_resolves_gates_with_the_approvals_command() {
    let dir = tempfile::tempdir().unwrap();
    let policy = write_policy(dir.path());
    let check = |request: &str| {
        lines(&fourfold(
            &["policy", "check", "--policy", &policy, request],
            "",
        ))
    };
    let push = r#"{"agent":"a","action":"run","command":"git push origin main"}"#;
    let other = r#"{"agent":"a","action":"run","command":"git push origin fix"}"#;
    let push_id = check(push)[0]["approval_id"].as_str().unwrap().to_string();
    let other_id = check(other)[0]["approval_id"].as_str().unwrap().to_string();
    let listed = lines(&fourfold(&["approvals", "list", "--policy", &policy], ""));
    assert_eq!(listed.len(), 2, "{listed:?}");
    let resolve = |verb: &str, id: &str, by: &str| {
        fourfold(
            &[
                "approvals",
                verb,
                "--policy",
                &policy,
                id,
                "--by",
                by,
                "--reason",
                "looked",
            ],
            "",
        )
    };
    assert!(resolve("approve", &push_id, "alice").status.success());
    let rejected = resolve("reject", &other_id, "bob");
    assert!(rejected.status.success());
    assert_eq!(lines(&rejected)[0]["state"], "rejected", "{rejected:?}");
    assert_eq!(check(push)[0]["effect"], "allow");
    assert_eq!(check(other)[0]["effect"], "deny");
    assert!(lines(&fourfold(&["approvals", "list", "--policy", &policy], "")).is_empty());
    assert_eq!(
        resolve("approve", "ap-unknown", "alice").status.code(),
        Some(2)
    );
}

#[test]
fn context_ingest_then_ask_serves_the_current_section() {
    let dir = tempfile::tempdir().unwrap();
    let docs = dir.path().join("docs");
    std::fs::create_dir_all(docs.join("guide")).unwrap();
    std::fs::write(
        docs.join("guide/auth.md"),
        "# Auth\n\n## Logging in\n\nCall `login(credentials)` with a Credentials value.\n",
    )
    .unwrap();
    std::fs::write(docs.join("logo.png"), [0x89, b'P', b'N', b'G', 0, 0, 0, 1]).unwrap();
    let store = dir.path().join("store");
    let store = store.to_str().unwrap();
    let ingest = |expected: &str| {
        let output = fourfold(
            &[
                "context",
                "ingest",
                docs.to_str().unwrap(),
                "--store",
                store,
            ],
            "",
        );
        let stdout = String::from_utf8(output.stdout).unwrap();
        assert!(output.status.success(), "{stdout}");
        assert!(stdout.contains(expected), "{stdout}");
    };
    ingest("2 files (1 new or changed, 0 unchanged), 0 deleted, 1 skipped");
    let ask = || {
        let output = fourfold(
            &[
                "context",
                "ask",
                "how do I log in",
                "--store",
                store,
                "--json",
            ],
            "",
        );
        assert!(output.status.success(), "{output:?}");
        serde_json::from_slice::<serde_json::Value>(&output.stdout).unwrap()
    };
    let answer = ask();
    assert_eq!(answer["hits"][0]["key"], "guide/auth.md");
    assert_eq!(answer["hits"][0]["version"], 1);
    std::fs::write(
        docs.join("guide/auth.md"),
        "# Auth\n\n## Logging in\n\nCall `login(token)` with a session token.\n",
    )
    .unwrap();
    ingest("(1 new or changed, 0 unchanged)");
    let answer = ask();
    assert_eq!(answer["hits"][0]["version"], 2);
    assert!(answer["hits"][0]["text"]
        .as_str()
        .unwrap()
        .contains("login(token)"));
    let nothing = fourfold(&["context", "ask", "zebra quagga", "--store", store], "");
    assert_eq!(nothing.status.code(), Some(1));

    // A guide that says an old name was renamed: asking with the old name says so.
    std::fs::write(
        docs.join("guide/upgrading.md"),
        "# Upgrading\n\n## Renamed\n\n* `signin()` has been renamed to `login()`.\n",
    )
    .unwrap();
    ingest("(1 new or changed, 1 unchanged)");
    let renamed = fourfold(&["context", "ask", "signin() fails", "--store", store], "");
    let stdout = String::from_utf8(renamed.stdout).unwrap();
    assert!(renamed.status.success(), "{stdout}");
    assert!(
        stdout.contains("renamed: signin is now login (guide/upgrading.md:3); searched for both"),
        "{stdout}"
    );
}

/// `context ask --rerank-command` previews what a `[context.rerank]` program would serve.
#[test]
fn context_ask_with_a_reranking_program() {
    let dir = tempfile::tempdir().unwrap();
    let docs = dir.path().join("docs");
    std::fs::create_dir_all(&docs).unwrap();
    std::fs::write(
        docs.join("short.md"),
        "# Short\n\nThe login token expires.\n",
    )
    .unwrap();
    std::fs::write(
        docs.join("long.md"),
        "# Long\n\nA login page and its token, which says much more about many other things than the short one.\n",
    )
    .unwrap();
    let store = dir.path().join("store");
    let store = store.to_str().unwrap();
    ingest_docs(&docs, store);
    let ask = |extra: &[&str]| {
        let (code, stdout) = context_ask(store, "login token", extra);
        assert_eq!(code, Some(0), "{stdout}");
        stdout
    };
    let first_is_short = |out: &str| match (out.find("short.md"), out.find("long.md")) {
        (Some(short), Some(long)) => short < long,
        _ => panic!("both pages should be served:\n{out}"),
    };
    let plain = ask(&[]);
    assert!(first_is_short(&plain), "{plain}");
    assert!(!plain.contains("reranked"), "{plain}");
    // A program that reverses the search's order.
    let reverse = "python3 -c 'import json, sys\nfor line in sys.stdin:\n    print(json.dumps({\"scores\": [-c[\"score\"] for c in json.loads(line)[\"candidates\"]]}), flush=True)'";
    let reversed = ask(&["--rerank-command", reverse]);
    assert!(reversed.contains("reranked"), "{reversed}");
    assert!(!first_is_short(&reversed), "{reversed}");
    // One that ends at once: the search's order, and why.
    let failed = ask(&["--rerank-command", "exit 0"]);
    assert!(
        failed.contains("not reranked, in the search's order:"),
        "{failed}"
    );
    assert!(first_is_short(&failed), "{failed}");
}

#[test]
fn context_ask_as_an_agent_is_scoped_by_the_policy() {
    let dir = tempfile::tempdir().unwrap();
    let docs = dir.path().join("docs");
    std::fs::create_dir_all(docs.join("guide")).unwrap();
    std::fs::create_dir_all(docs.join("internal")).unwrap();
    std::fs::write(
        docs.join("guide/auth.md"),
        "# Auth\n\n## Logging in\n\nCall `login(credentials)` with a Credentials value.\n",
    )
    .unwrap();
    std::fs::write(
        docs.join("internal/auth.md"),
        "# Auth internals\n\n## Logging in\n\nThe login service signs sessions with the key in vault path kv/auth.\n",
    )
    .unwrap();
    let policy = dir.path().join("policy.toml");
    std::fs::write(
        &policy,
        "[[rule]]\nid = \"guides\"\neffect = \"allow\"\nagents = [\"coder\"]\nread = [\"guide/**\"]\n",
    )
    .unwrap();
    let store = dir.path().join("store");
    let store = store.to_str().unwrap();
    ingest_docs(&docs, store);
    let ask = |extra: &[&str]| context_ask(store, "logging in", extra);
    // Unscoped, the operator sees both pages.
    let (code, everything) = ask(&[]);
    assert_eq!(code, Some(0), "{everything}");
    assert!(everything.contains("internal/auth.md") && everything.contains("guide/auth.md"));
    // As the coder, only the guide, and a line saying one more page matched.
    let policy = policy.to_str().unwrap();
    let (code, coder) = ask(&["--as", "coder", "--policy", policy]);
    assert_eq!(code, Some(0), "{coder}");
    assert!(
        coder.contains("guide/auth.md") && !coder.contains("internal/auth.md"),
        "{coder}"
    );
    assert!(
        coder.contains("withheld: 1 matching document(s)"),
        "{coder}"
    );
    // An agent the policy names nowhere is served nothing (exit 1), and told why.
    let (code, stranger) = ask(&["--as", "stranger", "--policy", policy, "--task", "T-1"]);
    assert_eq!(code, Some(1), "{stranger}");
    assert!(
        stranger.contains("withheld: 2 matching document(s)"),
        "{stranger}"
    );
    // --as needs the policy that scopes it.
    let (code, _) = ask(&["--as", "coder"]);
    assert_eq!(code, Some(2));

    // Ingested again under `docs`, the documents move to the workspace's paths (the old keys
    // are retired), which a policy's rules for `docs/guide/**` name.
    let ingest = fourfold(
        &[
            "context",
            "ingest",
            docs.to_str().unwrap(),
            "--prefix",
            "docs",
            "--store",
            store,
        ],
        "",
    );
    assert!(ingest.status.success(), "{ingest:?}");
    let report = String::from_utf8(ingest.stdout).unwrap();
    assert!(report.contains("2 deleted"), "{report}");
    let (code, moved) = ask(&[]);
    assert_eq!(code, Some(0), "{moved}");
    assert!(moved.contains("docs/guide/auth.md:"), "{moved}");
    let bad = fourfold(
        &[
            "context",
            "ingest",
            docs.to_str().unwrap(),
            "--prefix",
            "../up",
            "--store",
            store,
        ],
        "",
    );
    assert_eq!(bad.status.code(), Some(2), "{bad:?}");
    assert!(String::from_utf8(bad.stderr)
        .unwrap()
        .contains("invalid key prefix `../up`"));
}

/// The Chromium binary of Debian's `chromium` package, which the test command installs.
fn chromium() -> Option<&'static str> {
    ["chromium", "chromium-browser"].into_iter().find(|name| {
        Command::new(name)
            .arg("--version")
            .output()
            .is_ok_and(|output| output.status.success())
    })
}

#[test]
fn the_report_opens_in_headless_chromium_with_the_runs_and_verdicts() {
    let Some(chromium) = chromium() else {
        // CI installs Chromium (.ci/test); elsewhere the test says why it did not run.
        assert!(
            std::env::var_os("CI").is_none(),
            "Chromium is not installed, and CI must run this test"
        );
        eprintln!("skipped: Chromium is not installed (apt-get install chromium)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("demo");
    let demo = fourfold(&["demo", "--out", out.to_str().unwrap()], "");
    assert!(demo.status.success(), "{demo:?}");
    let report = out.join("report.html");
    let url = format!("file://{}", report.display());
    let headless = |extra: &[&str]| {
        let output = Command::new(chromium)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--disable-background-networking",
                &format!("--user-data-dir={}", dir.path().join("profile").display()),
            ])
            .args(extra)
            .arg(&url)
            .output()
            .expect("chromium runs");
        assert!(output.status.success(), "{output:?}");
        output
    };
    let dom = String::from_utf8(headless(&["--dump-dom"]).stdout).unwrap();
    let explained = fourfold(
        &["trace", "explain", out.join("demo.trace").to_str().unwrap()],
        "",
    );
    let explained = String::from_utf8(explained.stdout).unwrap();
    let run_ids: Vec<&str> = explained
        .lines()
        .filter_map(|line| line.strip_prefix("run ")?.split_whitespace().next())
        .collect();
    assert_eq!(run_ids.len(), 4, "{explained}");
    for run_id in run_ids {
        assert!(
            dom.contains(&format!("data-run=\"{run_id}\"")),
            "{run_id} is not on the page"
        );
    }
    for verdict in ["permission", "stale-context", "budget", "model"] {
        assert!(
            dom.contains(&format!("class=\"diagnosis\" data-verdict=\"{verdict}\"")),
            "verdict {verdict} is not on the page"
        );
    }
    assert!(dom.contains("id=\"tokens-chart\"") && dom.contains("id=\"money-chart\""));
    let screenshot = dir.path().join("report.png");
    headless(&[
        &format!("--screenshot={}", screenshot.display()),
        "--window-size=1200,2400",
        "--hide-scrollbars",
    ]);
    let png = std::fs::read(&screenshot).unwrap();
    assert!(
        png.starts_with(b"\x89PNG\r\n\x1a\n") && png.len() > 20_000,
        "{} bytes",
        png.len()
    );
}

#[test]
fn context_ingest_with_a_config_publishes_a_folder_to_the_fleet() {
    let Some(settings) = fresh_database("ingest") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let config = write_fleet_config(dir.path(), &settings, "[context]\nshared = true\n");
    let docs = dir.path().join("docs");
    std::fs::create_dir_all(&docs).unwrap();
    std::fs::write(
        docs.join("deploy.md"),
        "# Deploy\n\nRun `make deploy` from main.\n",
    )
    .unwrap();
    std::fs::write(docs.join("old.md"), "# Old\n\nSoon gone.\n").unwrap();
    let ingest = || {
        fourfold(
            &[
                "context",
                "ingest",
                docs.to_str().unwrap(),
                "--config",
                config.to_str().unwrap(),
            ],
            "",
        )
    };
    let first = ingest();
    assert!(first.status.success(), "{first:?}");
    let stdout = String::from_utf8_lossy(&first.stdout);
    assert!(stdout.contains("2 new or changed"), "{stdout}");
    // Another process of the fleet is served what the command published.
    let fleet = fourfold::Fourfold::from_config(&config).unwrap();
    let shared = fleet.shared_documents().unwrap();
    let answer = shared.context().ask("how do I deploy", 300);
    assert_eq!(answer.hits[0].key, "deploy.md");
    std::fs::remove_file(docs.join("old.md")).unwrap();
    let second = ingest();
    let stdout = String::from_utf8_lossy(&second.stdout);
    assert!(
        second.status.success() && stdout.contains("1 retired"),
        "{stdout}"
    );
    shared.refresh().unwrap();
    assert!(shared.context().get("old.md").is_none());
    assert!(shared.context().get("deploy.md").is_some());
    // A config without shared documents is refused with why.
    let local = dir.path().join("local.toml");
    std::fs::write(&local, "[policy]\nfile = \"policy.toml\"\n[context]\n").unwrap();
    let refused = fourfold(
        &[
            "context",
            "ingest",
            docs.to_str().unwrap(),
            "--config",
            local.to_str().unwrap(),
        ],
        "",
    );
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("shared = true"));
}
