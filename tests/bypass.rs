//! Runs the bypass table `bypass.toml`: every attempt must be denied, or pending where the policy
//! gates it. All failures are reported together.

use std::collections::BTreeMap;

use fourfold::{Request, Verdict};
use serde::Deserialize;

use crate::util;

#[derive(Deserialize)]
struct Table {
    policies: BTreeMap<String, PolicyText>,
    case: Vec<Case>,
}

#[derive(Deserialize)]
struct PolicyText {
    text: String,
}

#[derive(Deserialize)]
struct Case {
    class: String,
    #[serde(default = "base_policy")]
    policy: String,
    request: Option<toml::Table>,
    expect: String,
}

fn base_policy() -> String {
    "base".to_string()
}

fn request_of(mut table: toml::Table) -> Request {
    table
        .entry("agent")
        .or_insert_with(|| toml::Value::String("coder".into()));
    table
        .entry("task")
        .or_insert_with(|| toml::Value::String("T-1".into()));
    toml::Value::Table(table)
        .try_into()
        .unwrap_or_else(|error| panic!("bad request in bypass.toml: {error}"))
}

#[test]
fn every_bypass_attempt_is_stopped() {
    let table: Table = toml::from_str(include_str!("bypass.toml")).expect("bypass.toml parses");
    let mut failures = Vec::new();
    let mut n_cases = 0;
    for case in table.case {
        n_cases += 1;
        let text = &table.policies[&case.policy].text;
        let built = util::builder(text).build();
        let (actual, reason) = match (&built, case.request) {
            (Err(error), _) => ("load-error".to_string(), error.to_string()),
            (Ok(_), None) => panic!("case of class `{}` has no request", case.class),
            (Ok(policy), Some(request)) => {
                let request = request_of(request);
                let decision = policy.check(&request).expect("check failed");
                let verdict = match decision.verdict {
                    Verdict::Allow => "allow",
                    Verdict::Deny => "deny",
                    Verdict::Pending => "pending",
                };
                (
                    verdict.to_string(),
                    format!("{:?}: {}", request.action, decision.reason),
                )
            }
        };
        if actual != case.expect {
            failures.push(format!(
                "[{}] expected {}, got {}: {reason}",
                case.class, case.expect, actual
            ));
        }
    }
    assert!(n_cases > 100, "the table lost its cases");
    assert!(
        failures.is_empty(),
        "{} of {n_cases} bypass cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
