//! The diagnosis of a run: for every failed action and every request that did not go through,
//! which of the four controls, or the model, it comes down to.
//!
//! - `stale-context`: the `context-fresh` gate held the request because sections the run read had
//!   changed since, or a failed action relied on a section served as stale or duplicate;
//! - `permission`: a rule denied the request, or a review gate still holds it, or a failed action
//!   was kept by the policy from documents its asks matched (the context event's `withheld`);
//! - `budget`: the `budget` gate held the request;
//! - `gate-rejected`: a person or a check rejected the pending approval;
//! - `model`: none of those: the context was current and the action allowed, yet it failed.

use std::fmt;

use serde::Serialize;

use super::explain::{ExplainedAction, ExplainedGate};
use crate::event::GateEventOutcome;

/// The gate of the ContextStore's freshness check, as the session names it.
const CONTEXT_FRESH_GATE: &str = "context-fresh";
/// The gate of the CostMeter, as the session names it.
const BUDGET_GATE: &str = "budget";

/// What a failure comes down to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FailureKind {
    /// The agent acted, or tried to, on context that was no longer current.
    StaleContext,
    /// A rule denied the request, or a review gate still holds it, or the policy kept the agent
    /// from documents its asks matched before an action that failed.
    Permission,
    /// A budget held the request.
    Budget,
    /// A person or a check rejected the request at its gate.
    GateRejected,
    /// The action was allowed and its context current, yet it failed.
    Model,
}

impl FailureKind {
    /// The verdict's name: `stale-context`, `permission`, `budget`, `gate-rejected`, `model`.
    pub fn name(self) -> &'static str {
        match self {
            FailureKind::StaleContext => "stale-context",
            FailureKind::Permission => "permission",
            FailureKind::Budget => "budget",
            FailureKind::GateRejected => "gate-rejected",
            FailureKind::Model => "model",
        }
    }
}

/// One failure and its verdict.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Diagnosis {
    /// The sequence number of the gate event or action in the run.
    pub seq: u64,
    /// What failed: the request or the action, in one line.
    pub subject: String,
    /// The verdict.
    pub verdict: FailureKind,
    /// Why, in one line: the rule, the approver, the changed sections, the error.
    pub detail: String,
}

impl fmt::Display for Diagnosis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "#{} {}: {} ({})",
            self.seq,
            self.verdict.name(),
            self.subject,
            self.detail
        )
    }
}

/// The verdicts of a run's failures, in sequence order: every request that was denied, is still
/// pending or was rejected or expired at its gate, and every action that ended with an error.
pub(crate) fn diagnose(actions: &[ExplainedAction], gates: &[&ExplainedGate]) -> Vec<Diagnosis> {
    let mut diagnoses = Vec::new();
    for (idx, explained) in gates.iter().enumerate() {
        let gate = &explained.gate;
        let named = |name: &str| gate.gates.iter().any(|gate_name| gate_name == name);
        let rule = gate.rule.as_ref().map_or_else(
            || "no rule: denied by default".to_string(),
            |rule| format!("rule `{}`", rule.id),
        );
        let (verdict, detail) = match gate.outcome {
            GateEventOutcome::Denied if named(CONTEXT_FRESH_GATE) => {
                (FailureKind::StaleContext, gate.reason.clone())
            }
            GateEventOutcome::Denied if named(BUDGET_GATE) => {
                (FailureKind::Budget, gate.reason.clone())
            }
            GateEventOutcome::Denied => {
                (FailureKind::Permission, format!("{rule}: {}", gate.reason))
            }
            GateEventOutcome::Pending => {
                let resolved = gate.approval_id.is_some()
                    && gates[idx + 1..].iter().any(|later| {
                        later.gate.approval_id == gate.approval_id
                            && later.gate.outcome != GateEventOutcome::Pending
                    });
                if resolved {
                    continue;
                }
                (
                    FailureKind::Permission,
                    format!(
                        "{rule}: held at gate {} and never resolved",
                        gate.gates.join(", ")
                    ),
                )
            }
            GateEventOutcome::Rejected => (
                FailureKind::GateRejected,
                format!(
                    "rejected by {}: {}",
                    gate.approver.as_deref().unwrap_or("a check"),
                    gate.reason
                ),
            ),
            GateEventOutcome::Expired => (
                FailureKind::Permission,
                format!("{rule}: the approval expired before anyone resolved it"),
            ),
            GateEventOutcome::Allowed | GateEventOutcome::Approved | GateEventOutcome::Consumed => {
                continue
            }
        };
        diagnoses.push(Diagnosis {
            seq: explained.seq,
            subject: format!("request {}", request_summary(&gate.request_json)),
            verdict,
            detail,
        });
    }
    for explained in actions {
        let Some(error) = &explained.action.error else {
            continue;
        };
        let not_current: Vec<String> = explained
            .context
            .iter()
            .filter(|section| section.freshness != "canonical")
            .map(|section| {
                format!(
                    "`{}` v{} ({})",
                    section.key, section.version, section.freshness
                )
            })
            .collect();
        let (verdict, detail) = if not_current.is_empty() && explained.withheld > 0 {
            (
                FailureKind::Permission,
                format!(
                    "the policy withheld {} matching document(s) from the asks before it: {error}",
                    explained.withheld
                ),
            )
        } else if not_current.is_empty() {
            (
                FailureKind::Model,
                format!("context current and action allowed, yet it failed: {error}"),
            )
        } else {
            (
                FailureKind::StaleContext,
                format!("it relied on {}: {error}", not_current.join(", ")),
            )
        };
        diagnoses.push(Diagnosis {
            seq: explained.seq,
            subject: format!(
                "action {} {}",
                explained.action.tool,
                shorten(&explained.action.arguments_json)
            ),
            verdict,
            detail,
        });
    }
    diagnoses.sort_by_key(|diagnosis| diagnosis.seq);
    diagnoses
}

/// What a request asked, without who asked (the run says that): the request as compact JSON
/// without its agent, task, run, working directory and flags, cut short.
fn request_summary(request_json: &str) -> String {
    match serde_json::from_str::<serde_json::Value>(request_json) {
        Ok(serde_json::Value::Object(mut fields)) => {
            for identity in ["agent", "task", "run_id", "run", "cwd", "resolve_symlinks"] {
                fields.remove(identity);
            }
            shorten(&serde_json::Value::Object(fields).to_string())
        }
        _ => shorten(request_json),
    }
}

/// `text` cut to about 100 characters, on a character boundary.
fn shorten(text: &str) -> String {
    const MAX_CHARS: usize = 100;
    if text.chars().count() <= MAX_CHARS {
        return text.to_string();
    }
    let cut: String = text.chars().take(MAX_CHARS).collect();
    format!("{cut}...")
}
