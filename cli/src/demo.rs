//! `fourfold demo`: a scripted coding agent against the example policy.
//!
//! The agent's requests are allowed, denied and gated; a reviewer approves the gated push, and a
//! plugin gate (a stand-in CI status, advanced by the script) passes the merge once tests are green.
//! An audit plugin counts every gate event the policy emits.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use fourfold::{Event, EventKind, GateOutcome, Plugin, PluginRegistry, Policy, Request, Verdict};
use serde_json::json;

/// The example policy, embedded so that the demo runs from any directory.
const DEMO_POLICY: &str = include_str!("../../examples/demo/policy.toml");

/// Counts gate events, as an audit sink would record them.
#[derive(Default)]
struct AuditCounter {
    n_events: AtomicU64,
}

impl Plugin for AuditCounter {
    fn name(&self) -> &str {
        "audit"
    }

    fn on_event(&self, event: &Event) {
        if matches!(event.kind, EventKind::Gate(_)) {
            self.n_events.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// The `tests-pass` gate: pending while CI runs, passing once the script marks it green.
#[derive(Default)]
struct CiStatus {
    green: AtomicBool,
}

impl Plugin for CiStatus {
    fn name(&self) -> &str {
        "tests-pass"
    }

    fn check(&self, _request: &Request) -> GateOutcome {
        if self.green.load(Ordering::SeqCst) {
            GateOutcome::Pass {
                reason: "CI is green".to_string(),
            }
        } else {
            GateOutcome::Pending {
                reason: "CI is still running".to_string(),
            }
        }
    }
}

fn describe(request: &Request) -> String {
    match &request.action {
        fourfold::Action::Read { path } => format!("read {path}"),
        fourfold::Action::Write { path } => format!("write {path}"),
        fourfold::Action::Delete { path } => format!("delete {path}"),
        fourfold::Action::Run { command } => format!("run `{command}`"),
        fourfold::Action::Net { url } => format!("connect {url}"),
        fourfold::Action::Tool { name, .. } => format!("tool {name}"),
    }
}

fn show(policy: &Policy, request: &Request) -> Result<fourfold::Decision, fourfold::PolicyError> {
    let decision = policy.check(request)?;
    let verdict = match decision.verdict {
        Verdict::Allow => "ALLOW  ",
        Verdict::Deny => "DENY   ",
        Verdict::Pending => "PENDING",
    };
    println!("{verdict} {}", describe(request));
    println!("        {}", decision.reason);
    Ok(decision)
}

fn workspace() -> std::io::Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("fourfold-demo-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("src/auth"))?;
    std::fs::write(dir.join("policy.toml"), DEMO_POLICY)?;
    Ok(dir)
}

pub(crate) fn run() -> Result<ExitCode, Box<dyn std::error::Error>> {
    let dir = workspace()?;
    let plugins = Arc::new(PluginRegistry::new());
    let audit = Arc::new(AuditCounter::default());
    let ci = Arc::new(CiStatus::default());
    plugins.install(audit.clone())?;
    plugins.install(ci.clone())?;
    let policy_file = dir.join("policy.toml");
    let policy = Policy::builder_from_file(&policy_file)?
        .plugins(plugins)
        .build()?;
    println!(
        "fourfold demo: agent `coder` on task T-12, policy {}\n",
        policy_file.display()
    );

    let coder = |request: Request| request.task("T-12").run_id("demo-run");
    let script = [
        Request::read("coder", "src/auth/login.rs"),
        Request::write("coder", "src/auth/login.rs"),
        Request::write("coder", "src/billing/pay.rs"),
        Request::read("coder", "config/../.env"),
        Request::run("coder", "cargo test -p auth && cargo fmt --check"),
        Request::run("coder", "cargo test && cat .env"),
        Request::run("coder", "cargo test; rm -rf /"),
        Request::run("coder", "bash -c 'grep KEY .env'"),
        Request::net("coder", "https://api.github.com/repos/acme/app"),
        Request::net("coder", "https://evil-github.com/"),
        Request::run("coder", "git push --force origin main"),
    ];
    for request in script {
        show(&policy, &coder(request))?;
    }

    println!("\n-- a push needs human review --");
    let push = coder(Request::run("coder", "git push origin main"));
    let pending = show(&policy, &push)?;
    let approval_id = pending
        .approval_id
        .ok_or("the push should wait on an approval")?;
    policy.approve(&approval_id, "alice", "reviewed the diff")?;
    println!("APPROVE {approval_id} by alice");
    show(&policy, &push)?;
    println!("(an approval is used once: the same push asks again)");
    show(&policy, &push)?;

    println!("\n-- a merge needs green tests (a plugin gate) --");
    let merge = coder(Request::tool(
        "coder",
        "github.merge_pull_request",
        json!({"number": 42}),
    ));
    show(&policy, &merge)?;
    ci.green.store(true, Ordering::SeqCst);
    println!("CI turns green");
    show(&policy, &merge)?;

    println!(
        "\naudit plugin: {} gate events recorded",
        audit.n_events.load(Ordering::Relaxed)
    );
    std::fs::remove_dir_all(&dir)?;
    Ok(ExitCode::SUCCESS)
}
