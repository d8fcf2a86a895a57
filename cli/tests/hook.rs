//! `fourfold hook claude-code` and `fourfold hook gemini-cli` on hook events as Claude Code and
//! Gemini CLI document them (checked-in samples in `fixtures/claude-code/` and
//! `fixtures/gemini-cli/`, one per tool kind, with `$ROOT` standing for the project folder): the
//! decision for each, what lands in the trace, and the fail-closed answer to a malformed event.

mod common;

use common::run_with_stdin;
use std::path::Path;
use std::process::{Command, Output};

const POLICY: &str = r#"
[[rule]]
id = "claude-code"
effect = "allow"
agents = ["claude-code"]
read = ["**"]
write = ["src/**"]
run = ["cargo test*", "cat *", "curl *", "git push*"]
tools = [{ name = "mcp__github__create_issue" }]

[[rule]]
id = "no-secrets"
effect = "deny"
read = [".env", "**/.env"]

[[rule]]
id = "push-review"
effect = "gate"
gates = ["human-review"]
run = ["git push*"]
"#;

fn project() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("policy.toml"), POLICY).unwrap();
    std::fs::write(
        dir.path().join("fourfold.toml"),
        "[policy]\nfile = \"policy.toml\"\n[trace]\nfile = \"claude.trace\"\n",
    )
    .unwrap();
    dir
}

fn hook(root: &Path, event: &str) -> Output {
    hook_of("claude-code", root, event)
}

fn hook_of(tool: &str, root: &Path, event: &str) -> Output {
    run_with_stdin(
        Command::new(env!("CARGO_BIN_EXE_fourfold"))
            .args(["hook", tool])
            .env("CLAUDE_PROJECT_DIR", root)
            .env("FOURFOLD_CONFIG", root.join("fourfold.toml")),
        event,
    )
}

fn sample(root: &Path, name: &str) -> String {
    sample_of("claude-code", root, name)
}

fn sample_of(tool: &str, root: &Path, name: &str) -> String {
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures")
            .join(tool)
            .join(format!("{name}.json")),
    )
    .unwrap();
    text.replace("$ROOT", root.to_str().unwrap())
}

/// Runs sample `name` and checks the decision and that the reason names `reason`.
#[track_caller]
fn check(root: &Path, name: &str, decision: &str, reason: &str) {
    let output = hook(root, &sample(root, name));
    assert!(output.status.success(), "{name}: {output:?}");
    let answer: serde_json::Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|error| panic!("{name}: {error}: {output:?}"));
    let specific = &answer["hookSpecificOutput"];
    assert_eq!(specific["hookEventName"], "PreToolUse", "{name}");
    assert_eq!(specific["permissionDecision"], decision, "{name}: {answer}");
    let said = specific["permissionDecisionReason"].as_str().unwrap();
    assert!(
        said.contains(reason),
        "{name}: {said:?} should name {reason:?}"
    );
}

#[test]
fn each_tool_kind_gets_the_policy_s_answer() {
    let dir = project();
    let root = dir.path();
    check(root, "bash-cat-env", "deny", "no-secrets");
    check(root, "bash-cargo-test", "allow", "claude-code");
    // Every part of a compound command must be allowed; the upload of .env is not.
    check(root, "bash-compound", "deny", "");
    check(root, "bash-git-push", "ask", "push-review");
    check(root, "read-src", "allow", "claude-code");
    check(root, "read-env", "deny", "no-secrets");
    check(root, "write-src", "allow", "claude-code");
    check(root, "edit-outside", "deny", "deploy/prod.yaml");
    check(root, "webfetch", "deny", "pastebin.example");
    check(root, "mcp-tool", "allow", "claude-code");
}

#[test]
fn tool_results_and_session_events_land_in_the_trace() {
    let dir = project();
    let root = dir.path();
    check(root, "bash-cat-env", "deny", "no-secrets");
    for name in ["post-tool-use", "session-start"] {
        let output = hook(root, &sample(root, name));
        assert!(output.status.success(), "{name}: {output:?}");
        assert!(output.stdout.is_empty(), "{name} answers nothing");
    }
    let trace = root.join("claude.trace");
    let shown = Command::new(env!("CARGO_BIN_EXE_fourfold"))
        .args(["trace", "show", trace.to_str().unwrap()])
        .output()
        .unwrap();
    let shown = String::from_utf8(shown.stdout).unwrap();
    assert!(shown.contains("denied: read `.env`"), "{shown}");
    assert!(shown.contains("action: Bash"), "{shown}");
    assert!(shown.contains("claude-code:SessionStart"), "{shown}");
    assert!(shown.contains("task abc123"), "{shown}");
    let verified = Command::new(env!("CARGO_BIN_EXE_fourfold"))
        .args(["trace", "verify", trace.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(verified.status.success(), "{verified:?}");
}

#[test]
fn hooks_of_parallel_tool_calls_keep_the_trace_whole() {
    let dir = project();
    let root = dir.path().to_path_buf();
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let root = root.clone();
            std::thread::spawn(move || {
                let output = hook(&root, &sample(&root, "read-src"));
                assert!(output.status.success(), "{output:?}");
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    let verified = Command::new(env!("CARGO_BIN_EXE_fourfold"))
        .args([
            "trace",
            "verify",
            root.join("claude.trace").to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(verified.status.success(), "{verified:?}");
}

#[test]
fn a_malformed_event_or_config_blocks_the_call_and_says_why() {
    let dir = project();
    let root = dir.path();
    for (event, said) in [
        ("not json", "not JSON"),
        ("{\"tool_name\": \"Bash\"}", "hook_event_name"),
        (
            "{\"hook_event_name\": \"PreToolUse\", \"tool_name\": \"Bash\", \"tool_input\": {}}",
            "tool_input.command",
        ),
    ] {
        let output = hook(root, event);
        assert_eq!(output.status.code(), Some(2), "{event}: {output:?}");
        let stderr = String::from_utf8(output.stderr).unwrap();
        assert!(stderr.contains(said), "{event}: {stderr}");
        assert!(stderr.contains("blocked"), "{event}: {stderr}");
    }
    std::fs::write(
        root.join("fourfold.toml"),
        "[policy]\nfile = \"missing.toml\"\n",
    )
    .unwrap();
    let output = hook(root, &sample(root, "read-src"));
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    assert!(String::from_utf8(output.stderr)
        .unwrap()
        .contains("cannot load"));
}

/// Runs Gemini CLI sample `name` and checks the decision and that the reason names `reason`.
#[track_caller]
fn check_gemini(root: &Path, name: &str, decision: &str, reason: &str) {
    let output = hook_of("gemini-cli", root, &sample_of("gemini-cli", root, name));
    assert!(output.status.success(), "{name}: {output:?}");
    let answer: serde_json::Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|error| panic!("{name}: {error}: {output:?}"));
    assert_eq!(answer["decision"], decision, "{name}: {answer}");
    let said = answer["reason"].as_str().unwrap();
    assert!(
        said.contains(reason),
        "{name}: {said:?} should name {reason:?}"
    );
}

#[test]
fn gemini_cli_events_get_the_same_answers_in_its_protocol() {
    let dir = project();
    let root = dir.path();
    // The policy's agent for Gemini CLI is `gemini-cli`; give it the same rights.
    std::fs::write(
        root.join("policy.toml"),
        POLICY.replace("agents = [\"claude-code\"]", "agents = [\"gemini-cli\"]"),
    )
    .unwrap();
    check_gemini(root, "shell-cat-env", "deny", "no-secrets");
    check_gemini(root, "read-file", "allow", "claude-code");
    check_gemini(root, "replace-outside", "deny", "deploy/prod.yaml");
    // No "ask" in Gemini CLI: a held call is denied, with its approval id.
    check_gemini(root, "shell-git-push", "deny", "approval `ap-");
    let output = hook_of(
        "gemini-cli",
        root,
        &sample_of("gemini-cli", root, "after-tool"),
    );
    assert!(
        output.status.success() && output.stdout.is_empty(),
        "{output:?}"
    );
    let shown = Command::new(env!("CARGO_BIN_EXE_fourfold"))
        .args(["trace", "show", root.join("claude.trace").to_str().unwrap()])
        .output()
        .unwrap();
    let shown = String::from_utf8(shown.stdout).unwrap();
    assert!(shown.contains("agent gemini-cli, task gem-1"), "{shown}");
    assert!(shown.contains("action: read_file"), "{shown}");
}
