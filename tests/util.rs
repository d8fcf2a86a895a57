//! Helpers shared by the integration tests.

use fourfold::{Event, Plugin, Policy, PolicyBuilder, Request, Verdict};
use parking_lot::Mutex;

/// The workspace root every test policy uses; it need not exist.
pub const ROOT: &str = "/work/repo";

/// A builder for the policy in `text`, rooted at [`ROOT`].
pub fn builder(text: &str) -> PolicyBuilder {
    Policy::builder_from_toml(text)
        .unwrap_or_else(|error| panic!("test policy does not parse: {error}"))
        .root(ROOT)
}

/// The policy in `text`, rooted at [`ROOT`], with approvals in memory.
pub fn policy(text: &str) -> Policy {
    builder(text)
        .build()
        .unwrap_or_else(|error| panic!("test policy does not compile: {error}"))
}

/// The verdict of `request` under `policy`.
pub fn verdict(policy: &Policy, request: &Request) -> Verdict {
    policy
        .check(request)
        .unwrap_or_else(|error| panic!("check failed: {error}"))
        .verdict
}

/// Asserts that `request` gets `expected` under `policy`.
#[track_caller]
pub fn check(policy: &Policy, request: Request, expected: Verdict) {
    let decision = policy.check(&request).expect("check failed");
    assert_eq!(
        decision.verdict, expected,
        "{request:?}\n  reason: {}",
        decision.reason
    );
}

/// A plugin that keeps every event it is handed.
#[derive(Default)]
pub struct Events(pub Mutex<Vec<Event>>);

impl Plugin for Events {
    fn name(&self) -> &str {
        "events"
    }
    fn on_event(&self, event: &Event) {
        self.0.lock().push(event.clone());
    }
}
