//! The policy end to end: decisions name their rule, gates and approvals (durable, used once,
//! expiring), scope grants, atomic reload, plugins and audit events, and many threads at once.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use fourfold::policy::ApprovalError;
use fourfold::{
    Event, EventKind, GateEventOutcome, GateOutcome, ManualClock, Plugin, PluginRegistry, Policy,
    PolicyError, Request, Rule, StoreError, Verdict,
};
use parking_lot::Mutex;

use crate::util::{self, check, ROOT};

const GATED: &str = r#"
[gates.ci]
kind = "plugin"

[gates.review]
kind = "human"
expires_after = "1h"

[[rule]]
id = "dev"
effect = "allow"
agents = ["coder"]
read = ["**"]
run = ["cargo test*", "git status"]

[[rule]]
id = "push"
effect = "gate"
gates = ["human-review"]
run = ["git push*"]

[[rule]]
id = "deploy"
effect = "gate"
gates = ["review"]
run = ["make deploy"]

[[rule]]
id = "merge"
effect = "gate"
gates = ["ci"]
tools = [{ name = "merge" }]
"#;

fn push() -> Request {
    Request::run("coder", "git push origin main").task("T-1")
}

#[test]
fn decisions_name_rule_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("policy.toml");
    std::fs::write(&file, format!("[workspace]\nroot = \"{ROOT}\"\n{GATED}")).unwrap();
    let policy = Policy::from_file(&file).unwrap();
    let decision = policy.check(&Request::read("coder", "src/lib.rs")).unwrap();
    assert_eq!(decision.verdict, Verdict::Allow);
    let rule = decision.rule.unwrap();
    assert_eq!(rule.id, "dev");
    assert_eq!(rule.file.as_deref(), Some(file.to_str().unwrap()));
    assert_eq!(rule.line, Some(11));
    let denied = policy
        .check(&Request::read("stranger", "src/lib.rs"))
        .unwrap();
    assert_eq!((denied.verdict, denied.rule), (Verdict::Deny, None));
    assert!(
        denied.reason.contains("no rule allows agent `stranger`"),
        "{}",
        denied.reason
    );
}

#[test]
fn an_approval_survives_a_restart_and_is_used_once() {
    let dir = tempfile::tempdir().unwrap();
    let open = || util::builder(GATED).store_dir(dir.path()).build().unwrap();
    let pending = open().check(&push()).unwrap();
    assert_eq!(pending.verdict, Verdict::Pending);
    let approval_id = pending.approval_id.clone().unwrap();

    // A restart neither loses nor approves it.
    let restarted = open();
    assert_eq!(restarted.pending_approvals().unwrap().len(), 1);
    let again = restarted.check(&push()).unwrap();
    assert_eq!(
        (again.verdict, again.approval_id),
        (Verdict::Pending, Some(approval_id.clone()))
    );

    restarted
        .approve(&approval_id, "alice", "looks good")
        .unwrap();
    // Only the exact request may use it.
    check(
        &open(),
        Request::run("coder", "git push origin dev").task("T-1"),
        Verdict::Pending,
    );
    check(&open(), push().task("T-2"), Verdict::Pending);
    let used = open().check(&push()).unwrap();
    assert_eq!(used.verdict, Verdict::Allow, "{}", used.reason);
    assert_eq!(used.approval_id.as_deref(), Some(approval_id.as_str()));
    let next = open().check(&push()).unwrap();
    assert_eq!(next.verdict, Verdict::Pending);
    assert_ne!(next.approval_id.as_deref(), Some(approval_id.as_str()));
    assert!(matches!(
        open().approve(&approval_id, "bob", ""),
        Err(PolicyError::Approval(ApprovalError::AlreadyResolved {
            state: "used",
            ..
        }))
    ));
}

#[test]
fn an_approval_is_found_again_through_its_request_not_by_reading_every_approval() {
    let dir = tempfile::tempdir().unwrap();
    let open = || util::builder(GATED).store_dir(dir.path()).build().unwrap();
    let policy = open();
    // Many approvals of other requests, and the one asked about among them.
    for idx in 0..40 {
        let other = Request::run("coder", format!("git push origin branch-{idx}")).task("T-1");
        assert_eq!(policy.check(&other).unwrap().verdict, Verdict::Pending);
    }
    let approval_id = policy.check(&push()).unwrap().approval_id.unwrap();
    assert_eq!(
        open().check(&push()).unwrap().approval_id.as_deref(),
        Some(approval_id.as_str())
    );

    // A store from before the index: the approvals alone. The first gated check indexes them.
    std::fs::remove_dir_all(dir.path().join("approvals-by-request")).unwrap();
    let upgraded = open();
    assert_eq!(
        upgraded.check(&push()).unwrap().approval_id.as_deref(),
        Some(approval_id.as_str())
    );
    upgraded.approve(&approval_id, "alice", "").unwrap();
    assert_eq!(open().check(&push()).unwrap().verdict, Verdict::Allow);
    assert_eq!(open().check(&push()).unwrap().verdict, Verdict::Pending);

    // Tool arguments that differ only in the order of their keys make the same request.
    let merge = |args: serde_json::Value| Request::tool("coder", "merge", args);
    let first = policy
        .check(&merge(
            serde_json::json!({"base": "main", "head": "fix", "squash": true}),
        ))
        .unwrap();
    let reordered = policy
        .check(&merge(
            serde_json::json!({"squash": true, "head": "fix", "base": "main"}),
        ))
        .unwrap();
    assert_eq!(first.verdict, Verdict::Pending);
    assert_eq!(first.approval_id, reordered.approval_id);
    let other = policy
        .check(&merge(
            serde_json::json!({"base": "main", "head": "other", "squash": true}),
        ))
        .unwrap();
    assert_ne!(first.approval_id, other.approval_id);
}

#[test]
fn rejected_and_unknown_approvals() {
    let policy = util::policy(GATED);
    let approval_id = policy.check(&push()).unwrap().approval_id.unwrap();
    policy
        .reject(&approval_id, "alice", "not on a friday")
        .unwrap();
    let denied = policy.check(&push()).unwrap();
    assert_eq!(denied.verdict, Verdict::Deny);
    assert!(
        denied.reason.contains("not on a friday"),
        "{}",
        denied.reason
    );
    assert!(matches!(
        policy.approve("ap-0000000000000000", "alice", ""),
        Err(PolicyError::Approval(ApprovalError::Unknown(_)))
    ));
    assert!(matches!(
        policy.approve("../../etc/passwd", "alice", ""),
        Err(PolicyError::Approval(ApprovalError::Unknown(_)))
    ));
}

#[test]
fn approvals_expire() {
    let clock = Arc::new(ManualClock::new(1_000));
    let policy = util::builder(GATED).clock(clock.clone()).build().unwrap();
    let deploy = Request::run("coder", "make deploy");
    let first = policy.check(&deploy).unwrap().approval_id.unwrap();
    clock.advance(3_600 * 1_000_000_000);
    assert!(matches!(
        policy.approve(&first, "alice", ""),
        Err(PolicyError::Approval(ApprovalError::Expired(_)))
    ));
    let second = policy.check(&deploy).unwrap();
    assert_eq!(second.verdict, Verdict::Pending);
    assert_ne!(second.approval_id.as_deref(), Some(first.as_str()));
    policy
        .approve(second.approval_id.as_deref().unwrap(), "alice", "")
        .unwrap();
    clock.advance(3_600 * 1_000_000_000);
    check(&policy, deploy, Verdict::Pending);
}

/// A plugin gate whose answer the test sets, which also records every event it sees.
struct Ci {
    answer: Mutex<GateOutcome>,
    events: Mutex<Vec<Event>>,
}

impl Plugin for Ci {
    fn name(&self) -> &str {
        "ci"
    }
    fn on_event(&self, event: &Event) {
        self.events.lock().push(event.clone());
    }
    fn check(&self, _request: &Request) -> GateOutcome {
        self.answer.lock().clone()
    }
}

#[test]
fn plugin_gates_and_audit_events() {
    let ci = Arc::new(Ci {
        answer: Mutex::new(GateOutcome::Pending {
            reason: "running".into(),
        }),
        events: Mutex::new(vec![]),
    });
    let plugins = Arc::new(PluginRegistry::new());
    plugins.install(ci.clone()).unwrap();
    let policy = util::builder(GATED).plugins(plugins).build().unwrap();
    let merge = Request::tool("coder", "merge", serde_json::json!({"pr": 1})).run_id("run-7");
    check(&policy, merge.clone(), Verdict::Pending);
    *ci.answer.lock() = GateOutcome::Pass {
        reason: "green".into(),
    };
    check(&policy, merge.clone(), Verdict::Allow);
    *ci.answer.lock() = GateOutcome::Fail {
        reason: "red".into(),
    };
    check(&policy, merge.clone(), Verdict::Deny);
    check(
        &policy,
        Request::read("coder", "x").run_id("run-7"),
        Verdict::Allow,
    );

    let events = ci.events.lock();
    let outcomes: Vec<GateEventOutcome> = events
        .iter()
        .map(|event| match &event.kind {
            EventKind::Gate(gate) => gate.outcome,
            other => panic!("unexpected event {other:?}"),
        })
        .collect();
    assert_eq!(
        outcomes,
        vec![
            GateEventOutcome::Pending,
            GateEventOutcome::Consumed,
            GateEventOutcome::Denied,
            GateEventOutcome::Allowed
        ]
    );
    let seqs: Vec<u64> = events.iter().map(|event| event.seq).collect();
    assert_eq!(seqs, vec![1, 2, 3, 4]);
    assert!(events
        .iter()
        .all(|event| event.run_id == "run-7" && event.agent_id == "coder"));
}

struct PanickingGate;

impl Plugin for PanickingGate {
    fn name(&self) -> &str {
        "ci"
    }
    fn check(&self, _request: &Request) -> GateOutcome {
        panic!("gate bug")
    }
}

#[test]
fn a_panicking_gate_denies() {
    let plugins = Arc::new(PluginRegistry::new());
    plugins.install(Arc::new(PanickingGate)).unwrap();
    let policy = util::builder(GATED).plugins(plugins).build().unwrap();
    let decision = policy
        .check(&Request::tool("coder", "merge", serde_json::json!({})))
        .unwrap();
    assert_eq!(decision.verdict, Verdict::Deny);
    assert!(decision.reason.contains("panicked"), "{}", decision.reason);
}

#[test]
fn permits_says_allow_outright_and_decides_nothing() {
    struct CountingGate(AtomicUsize);
    impl Plugin for CountingGate {
        fn name(&self) -> &str {
            "ci"
        }
        fn check(&self, _request: &Request) -> GateOutcome {
            self.0.fetch_add(1, Ordering::SeqCst);
            GateOutcome::Pass {
                reason: "green".into(),
            }
        }
    }
    let events = Arc::new(util::Events::default());
    let ci = Arc::new(CountingGate(AtomicUsize::new(0)));
    let plugins = Arc::new(PluginRegistry::new());
    plugins.install(events.clone()).unwrap();
    plugins.install(ci.clone()).unwrap();
    let policy = util::builder(GATED).plugins(plugins).build().unwrap();
    assert!(policy.permits(&Request::read("coder", "src/lib.rs")));
    // No rule: default deny. A gate, even one that would pass, is not "outright".
    assert!(!policy.permits(&Request::read("reviewer", "src/lib.rs")));
    assert!(!policy.permits(&push()));
    assert!(!policy.permits(&Request::tool(
        "coder",
        "merge",
        serde_json::json!({"pr": 1})
    )));
    // A grant counts, for its agent and task only.
    policy
        .grant("reviewer", "T-4", vec![Rule::allow("docs").read("docs/**")])
        .unwrap();
    assert!(policy.permits(&Request::read("reviewer", "docs/a.md").task("T-4")));
    assert!(!policy.permits(&Request::read("reviewer", "docs/a.md").task("T-5")));
    // Nothing was recorded, no gate ran, no approval was opened.
    assert!(events.0.lock().is_empty());
    assert_eq!(ci.0.load(Ordering::SeqCst), 0);
    assert!(policy.pending_approvals().unwrap().is_empty());
    // The same requests, checked, are decided and recorded as usual.
    check(
        &policy,
        Request::read("coder", "src/lib.rs"),
        Verdict::Allow,
    );
    assert_eq!(events.0.lock().len(), 1);
}

#[test]
fn scopes_are_granted_for_one_task_and_revoked() {
    let policy = util::policy(GATED);
    let write = |task: &str| Request::write("coder", "src/auth/login.rs").task(task);
    check(&policy, write("T-12"), Verdict::Deny);
    let grant_id = policy
        .grant(
            "coder",
            "T-12",
            vec![Rule::allow("auth-scope").write("src/auth/**")],
        )
        .unwrap();
    check(&policy, write("T-12"), Verdict::Allow);
    check(&policy, write("T-13"), Verdict::Deny);
    check(
        &policy,
        Request::write("reviewer", "src/auth/x").task("T-12"),
        Verdict::Deny,
    );
    check(
        &policy,
        Request::write("coder", "src/billing/x").task("T-12"),
        Verdict::Deny,
    );
    assert!(policy.revoke(&grant_id));
    check(&policy, write("T-12"), Verdict::Deny);
    policy
        .grant(
            "coder",
            "T-12",
            vec![Rule::allow("again").write("src/auth/**")],
        )
        .unwrap();
    assert_eq!(policy.end_task("T-12"), 1);
    check(&policy, write("T-12"), Verdict::Deny);
    assert!(policy
        .grant("coder", "T-12", vec![Rule::allow("bad").write("../x")])
        .is_err());
}

#[test]
fn a_failed_reload_keeps_the_old_policy() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("policy.toml");
    let write_policy = |read: &str| {
        std::fs::write(
            &file,
            format!("[workspace]\nroot = \"{ROOT}\"\n[[rule]]\nid = \"r\"\neffect = \"allow\"\nread = [\"{read}\"]\n"),
        )
        .unwrap()
    };
    write_policy("docs/**");
    let policy = Policy::from_file(&file).unwrap();
    check(&policy, Request::read("a", "docs/x"), Verdict::Allow);
    write_policy("src/[");
    let error = policy.reload().unwrap_err();
    assert!(error.to_string().contains(":6:"), "{error}");
    check(&policy, Request::read("a", "docs/x"), Verdict::Allow);
    std::fs::write(&file, b"\xff\xfe not utf-8").unwrap();
    assert!(policy.reload().is_err());
    check(&policy, Request::read("a", "docs/x"), Verdict::Allow);
    write_policy("src/**");
    policy.reload().unwrap();
    check(&policy, Request::read("a", "docs/x"), Verdict::Deny);
    check(&policy, Request::read("a", "src/x"), Verdict::Allow);
}

#[test]
fn agents_cannot_rewrite_their_policy_or_approvals() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("policy.toml");
    std::fs::write(
        &file,
        "[[rule]]\nid = \"all\"\neffect = \"allow\"\nwrite = [\"**\"]\ndelete = [\"**\"]\n",
    )
    .unwrap();
    let policy = Policy::from_file(&file).unwrap();
    check(&policy, Request::write("a", "src/x"), Verdict::Allow);
    for request in [
        Request::write("a", "policy.toml"),
        Request::delete("a", ".fourfold/approvals/ap-1"),
        Request::write("a", file.to_str().unwrap()),
    ] {
        let decision = policy.check(&request).unwrap();
        assert_eq!(decision.verdict, Verdict::Deny, "{request:?}");
        assert_eq!(decision.rule.unwrap().id, fourfold::policy::PROTECT_RULE_ID);
    }
}

#[test]
fn a_corrupt_approval_is_an_error_and_stays_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let policy = util::builder(GATED).store_dir(dir.path()).build().unwrap();
    let corrupt = dir.path().join("approvals").join("ap-corrupt");
    std::fs::create_dir_all(corrupt.parent().unwrap()).unwrap();
    std::fs::write(&corrupt, b"{ not json").unwrap();
    assert!(matches!(
        policy.check(&push()),
        Err(PolicyError::Store(StoreError::Corrupt(_)))
    ));
    assert!(matches!(
        policy.pending_approvals(),
        Err(PolicyError::Store(StoreError::Corrupt(_)))
    ));
    assert_eq!(std::fs::read(&corrupt).unwrap(), b"{ not json");
    check(
        &policy,
        Request::read("coder", "src/lib.rs"),
        Verdict::Allow,
    );
}

#[test]
fn many_threads_check_while_the_policy_changes() {
    let policy = Arc::new(util::policy(GATED));
    let n_allowed = Arc::new(AtomicUsize::new(0));
    std::thread::scope(|scope| {
        for thread_idx in 0..8 {
            let policy = Arc::clone(&policy);
            let n_allowed = Arc::clone(&n_allowed);
            scope.spawn(move || {
                for check_idx in 0..500 {
                    let read = Request::read("coder", format!("src/{thread_idx}/{check_idx}.rs"));
                    if util::verdict(&policy, &read) == Verdict::Allow {
                        n_allowed.fetch_add(1, Ordering::Relaxed);
                    }
                    assert_eq!(
                        util::verdict(&policy, &Request::read("coder", "../x")),
                        Verdict::Deny
                    );
                }
            });
        }
        let policy = Arc::clone(&policy);
        scope.spawn(move || {
            for grant_idx in 0..50 {
                let task = format!("T-{grant_idx}");
                policy
                    .grant("coder", &task, vec![Rule::allow("g").write("src/**")])
                    .unwrap();
                policy.replace(util::builder(GATED)).unwrap();
                policy.end_task(&task);
            }
        });
    });
    assert_eq!(n_allowed.load(Ordering::Relaxed), 8 * 500);
}

#[test]
fn a_recursive_read_names_the_rule_it_may_run_into() {
    let policy = util::policy(
        "[[rule]]\nid = \"all\"\neffect = \"allow\"\nread = [\"**\"]\nrun = [\"grep*\"]\n\
         [[rule]]\nid = \"no-secrets\"\neffect = \"deny\"\nread = [\"./secrets/\"]\n",
    );
    let decision = policy.check(&Request::run("a", "grep -r KEY .")).unwrap();
    assert_eq!(decision.verdict, Verdict::Deny);
    assert_eq!(decision.rule.unwrap().id, "no-secrets");
    assert!(
        decision
            .reason
            .contains("may reach paths denied by rule `no-secrets`"),
        "{}",
        decision.reason
    );
    check(
        &policy,
        Request::run("a", "grep -r KEY src"),
        Verdict::Allow,
    );
    let direct = policy
        .check(&Request::run("a", "grep -r KEY secrets"))
        .unwrap();
    assert!(
        direct.reason.contains("is denied by rule `no-secrets`"),
        "{}",
        direct.reason
    );
}

#[test]
fn symlinks_are_resolved_when_the_policy_or_the_request_asks() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("repo");
    std::fs::create_dir_all(root.join("src")).unwrap();
    std::fs::write(dir.path().join("secret"), "key").unwrap();
    std::os::unix::fs::symlink(dir.path().join("secret"), root.join("src/innocent.txt")).unwrap();
    let text =
        "[[rule]]\nid = \"src\"\neffect = \"allow\"\nread = [\"src/**\"]\nrun = [\"cat*\"]\n";
    let lexical = Policy::builder_from_toml(text)
        .unwrap()
        .root(&root)
        .build()
        .unwrap();
    check(
        &lexical,
        Request::read("a", "src/innocent.txt"),
        Verdict::Allow,
    );
    for request in [
        Request::read("a", "src/innocent.txt").resolve_symlinks(),
        Request::run("a", "cat src/innocent.txt").resolve_symlinks(),
    ] {
        let decision = lexical.check(&request).unwrap();
        assert_eq!(decision.verdict, Verdict::Deny, "{request:?}");
        assert!(
            decision.reason.contains("outside the workspace root"),
            "{}",
            decision.reason
        );
    }
    let resolving = Policy::builder_from_toml(text)
        .unwrap()
        .root(&root)
        .resolve_symlinks(true)
        .build()
        .unwrap();
    check(
        &resolving,
        Request::read("a", "src/innocent.txt"),
        Verdict::Deny,
    );
}
