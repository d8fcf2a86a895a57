//! `AgentSession`: one run of one agent, through which every control is reached.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;
use rustc_hash::FxHashMap;

use crate::context::{Answer, ContextError, ContextStore, DocVersion, ReadScope, Section, Session};
use crate::cost::{CostRecord, Reservation, TokenCounts, Usage};
use crate::event::{ActionEvent, ContextEvent, DecisionEvent, EventKind, ServedSection};
use crate::policy::{Decision, Request, Verdict};
use crate::trace::{Run, Span, SpanKind};

use super::err::SessionError;
use super::fourfold::{ContextScope, Fourfold};
use super::fresh::CONTEXT_FRESH_GATE;
use crate::cost::BUDGET_GATE;

/// The tool name the policy judges a write-back by ([`AgentSession::record_finding`]), with the
/// arguments `{"topic": ...}`; the MCP server's tool of the same name is the same call.
pub const RECORD_TOOL: &str = "context_record";

/// Numbers the runs of a process that has no tracer to name them.
static N_UNTRACED_RUNS: AtomicU64 = AtomicU64::new(0);

/// One run of one agent on one task. Every call is checked by the control it belongs to and
/// recorded (when the [`Fourfold`] has a tracer) under the run's id:
///
/// - [`guard`](AgentSession::guard) a tool call before it runs (policy and gates);
/// - [`ask`](AgentSession::ask) for context, and [`reread`](AgentSession::reread) what changed;
/// - [`reserve`](AgentSession::reserve) before a model call and commit after it, or
///   [`record_usage`](AgentSession::record_usage) once it is done;
/// - [`decide`](AgentSession::decide) and [`act`](AgentSession::act) to say what the agent chose
///   and what came of it; [`span`](AgentSession::span) for its steps.
///
/// The run ends when the session is dropped, or with [`end`](AgentSession::end).
#[derive(Debug)]
pub struct AgentSession {
    fourfold: Fourfold,
    agent: String,
    task: Option<String>,
    run_id: String,
    run: Option<Run>,
    context: Option<Arc<Session>>,
}

impl AgentSession {
    pub(super) fn start(fourfold: Fourfold, agent: &str, task: Option<&str>) -> AgentSession {
        let run = fourfold
            .shared
            .tracer
            .as_ref()
            .map(|tracer| tracer.start_run(agent, task));
        let run_id = match &run {
            Some(run) => run.id().to_string(),
            None => format!(
                "run-{}-{}",
                std::process::id(),
                N_UNTRACED_RUNS.fetch_add(1, Ordering::Relaxed) + 1
            ),
        };
        let context = fourfold.shared.context.as_ref().map(|store| {
            let session = store.session(agent, Some(&run_id), task);
            let session = match fourfold.shared.context_scope {
                ContextScope::Policy => session.scoped(policy_scope(&fourfold, agent, task)),
                ContextScope::All => session,
            };
            let session = Arc::new(session);
            fourfold.shared.runs.insert(&run_id, &session);
            session
        });
        AgentSession {
            fourfold,
            agent: agent.to_string(),
            task: task.map(str::to_string),
            run_id,
            run,
            context,
        }
    }

    /// The `Fourfold` this session belongs to: its policy takes the approvals of the requests
    /// this session's gates hold.
    pub fn fourfold(&self) -> &Fourfold {
        &self.fourfold
    }

    /// The agent.
    pub fn agent(&self) -> &str {
        &self.agent
    }

    /// The task, if any.
    pub fn task(&self) -> Option<&str> {
        self.task.as_deref()
    }

    /// The run's id, as the trace names it.
    pub fn run_id(&self) -> &str {
        &self.run_id
    }

    /// Checks a tool call before it runs. The request is made the session's own: its agent,
    /// task and run are replaced by the session's, so that a session cannot act for another.
    ///
    /// `Ok` with the decision when the call may go ahead. Otherwise an error that names what
    /// held it: [`SessionError::StaleContext`] when the `context-fresh` gate failed (the
    /// changed sections listed), [`SessionError::BudgetExceeded`] when the `budget` gate failed,
    /// [`SessionError::Pending`] when a review gate waits (with the approval id), and
    /// [`SessionError::Denied`] for any other denial. The policy records the decision as an
    /// event, so a tracer sees it.
    pub fn guard(&self, mut request: Request) -> Result<Decision, SessionError> {
        request.agent = self.agent.clone();
        request.task = self.task.clone();
        request.run_id = Some(self.run_id.clone());
        let decision = self.fourfold.shared.policy.check(&request)?;
        match decision.verdict {
            Verdict::Allow => Ok(decision),
            Verdict::Pending => Err(SessionError::Pending(Box::new(decision))),
            Verdict::Deny => Err(self.diagnose_denial(decision)),
        }
    }

    /// Says which control a denial came from: a built-in gate that fails now, or the policy.
    /// Like [`AgentSession::guard`], but a request a review gate holds waits, up to `timeout`,
    /// for a reviewer to resolve its approval (from any process sharing the policy's store; a
    /// PostgreSQL store wakes the wait at once), then is decided again: allowed once approved,
    /// denied once rejected or expired, still [`SessionError::Pending`] if nobody answered in time.
    pub fn guard_waiting(
        &self,
        request: Request,
        timeout: std::time::Duration,
    ) -> Result<Decision, SessionError> {
        match self.guard(request.clone()) {
            Err(SessionError::Pending(decision)) => {
                let Some(approval_id) = decision.approval_id.clone() else {
                    return Err(SessionError::Pending(decision));
                };
                self.fourfold
                    .shared
                    .policy
                    .wait_for_approval(&approval_id, timeout)?;
                self.guard(request)
            }
            other => other,
        }
    }

    fn diagnose_denial(&self, decision: Decision) -> SessionError {
        let named = |gate: &str| decision.gates.iter().any(|name| name == gate);
        if named(CONTEXT_FRESH_GATE) {
            if let Some(context) = &self.context {
                let changes = context.changed();
                if !changes.is_empty() {
                    return SessionError::StaleContext {
                        decision: Box::new(decision),
                        changes,
                    };
                }
            }
        }
        if named(BUDGET_GATE) {
            if let Some(cost) = &self.fourfold.shared.cost {
                if let Err(exceeded) =
                    cost.check(&self.agent, self.task.as_deref(), Some(&self.run_id))
                {
                    return SessionError::BudgetExceeded(exceeded);
                }
            }
        }
        SessionError::Denied(Box::new(decision))
    }

    /// Asks the context store for the current canonical sections that answer `query`, within
    /// `budget_tokens`. Sections this run already holds, unchanged, come back as pointers. The
    /// ask is recorded as a `Context` event with the versions served, and the tokens it saved
    /// against reading the documents whole go to the cost meter (when it has a savings model).
    pub fn ask(&self, query: &str, budget_tokens: u64) -> Result<Answer, SessionError> {
        let context = self
            .context
            .as_ref()
            .ok_or(SessionError::Missing("context store"))?;
        Ok(context.ask(query, budget_tokens))
    }

    /// The section `id` as it is now, if this run may be served its document (under the
    /// default [`ContextScope::Policy`], if the policy lets the agent read it).
    pub fn get_section(&self, id: &str) -> Result<Option<Section>, SessionError> {
        let context = self
            .context
            .as_ref()
            .ok_or(SessionError::Missing("context store"))?;
        Ok(context.get_section(id))
    }

    /// Re-reads every section this run was served that has changed since: serves the current
    /// versions, records them as read (so the `context-fresh` gate passes again) and as a
    /// `Context` event. Sections that are gone are forgotten.
    pub fn reread(&self) -> Result<Vec<Section>, SessionError> {
        let context = self
            .context
            .as_ref()
            .ok_or(SessionError::Missing("context store"))?;
        let (sections, changes) = context.reread_changed();
        if !changes.is_empty() {
            let tokens_served = sections
                .iter()
                .map(|section| u64::from(section.tokens))
                .sum();
            self.record(EventKind::Context(ContextEvent {
                query: Some(format!("re-read {} changed section(s)", changes.len())),
                sections: sections
                    .iter()
                    .map(|section| ServedSection {
                        key: section.key.clone(),
                        section_id: section.id.clone(),
                        version: section.version,
                        freshness: section.marker.freshness.name().to_string(),
                    })
                    .collect(),
                tokens_served,
                tokens_baseline: tokens_served,
                withheld: 0,
            }));
        }
        Ok(sections)
    }

    /// Writes a finding back to the documentation (a decision, an incident, what worked), as
    /// the next section of `records/<topic>.md`, so that the other agents are served it.
    ///
    /// The policy decides first, as the tool call [`RECORD_TOOL`] with `{"topic": topic}`: no
    /// rule, no write-back, and a rule can scope the topics (`glob = { topic = "findings/**" }`).
    /// The finding goes to the fleet's shared documents when the context store follows them
    /// (every process is served it), and otherwise to the context store, whose journal keeps
    /// it if the store was opened from a snapshot. The write is recorded as an action, failed
    /// or not; a refusal is recorded by the policy as its decision.
    pub fn record_finding(&self, topic: &str, text: &str) -> Result<DocVersion, SessionError> {
        let store = self
            .fourfold
            .context()
            .ok_or(SessionError::Missing("context store"))?;
        let arguments = serde_json::json!({ "topic": topic });
        self.guard(Request::tool(&self.agent, RECORD_TOOL, arguments.clone()))?;
        let recorded = self.write_finding(store, topic, text);
        self.act(ActionEvent {
            tool: RECORD_TOOL.to_string(),
            arguments_json: arguments.to_string(),
            result_digest: None,
            duration_ns: None,
            error: recorded.as_ref().err().map(ToString::to_string),
        });
        Ok(recorded?)
    }

    fn write_finding(
        &self,
        store: &ContextStore,
        topic: &str,
        text: &str,
    ) -> Result<DocVersion, ContextError> {
        #[cfg(feature = "postgres")]
        if let Some(shared) = self.fourfold.shared_documents() {
            return shared.record(topic, text);
        }
        store.record(topic, text)
    }

    /// Holds the worst case of a model call against every budget covering this run, before the
    /// call: fails with [`SessionError::BudgetExceeded`] if it would cross a hard limit. Commit
    /// the reservation with the call's actual counts; dropping it releases the hold.
    pub fn reserve(&self, model: &str, estimate: TokenCounts) -> Result<Reservation, SessionError> {
        let cost = self.cost()?;
        Ok(cost.reserve(&self.usage(model, estimate))?)
    }

    /// Records a call whose counts are an estimate because the provider gave no usage numbers
    /// (counted locally, or by a model without a public tokenizer): the record, its trace event
    /// and every report say so.
    pub fn record_estimated_usage(
        &self,
        model: &str,
        counts: TokenCounts,
    ) -> Result<CostRecord, SessionError> {
        let cost = self.cost()?;
        let mut usage = self.usage(model, counts);
        usage.estimated = true;
        Ok(cost.record(usage)?)
    }

    /// Records a finished model call's usage (priced, and counted against the budgets).
    pub fn record_usage(
        &self,
        model: &str,
        counts: TokenCounts,
    ) -> Result<CostRecord, SessionError> {
        let cost = self.cost()?;
        Ok(cost.record(self.usage(model, counts))?)
    }

    /// Records what the agent chose, why, and what it did not choose.
    pub fn decide(&self, choice: &str, rationale: &str, alternatives: &[&str]) {
        self.record(EventKind::Decision(DecisionEvent {
            choice: choice.to_string(),
            rationale: rationale.to_string(),
            alternatives: alternatives
                .iter()
                .map(|alternative| alternative.to_string())
                .collect(),
        }));
    }

    /// Records a tool call that ran: its arguments, a digest of its result, how long it took and
    /// the error it failed with, if it did.
    pub fn act(&self, action: ActionEvent) {
        self.record(EventKind::Action(action));
    }

    /// Starts a span (a step, a model call, a tool call) under the run; `None` without a tracer.
    pub fn span(&self, name: &str, kind: SpanKind) -> Option<Span> {
        self.run.as_ref().map(|run| run.span(name, kind))
    }

    /// Ends the run, with the error it failed with, if any.
    pub fn end(mut self, error: Option<&str>) {
        if let Some(run) = self.run.take() {
            run.end(error);
        }
    }

    fn record(&self, kind: EventKind) {
        if let Some(run) = &self.run {
            run.record(kind);
        }
    }

    fn cost(&self) -> Result<&crate::cost::CostMeter, SessionError> {
        self.fourfold
            .shared
            .cost
            .as_ref()
            .ok_or(SessionError::Missing("cost meter"))
    }

    fn usage(&self, model: &str, counts: TokenCounts) -> Usage {
        let mut usage = Usage::new(self.agent.clone(), model, counts);
        usage.task = self.task.clone();
        usage.run = Some(self.run_id.clone());
        usage
    }
}

/// The request a session of `agent` on `task` scoped by the policy ([`ContextScope::Policy`]) is
/// served document `key` by, if the policy allows it outright: a read of the key, as a path under
/// the policy's root. For tools that show what an agent would be served.
pub fn document_read(agent: &str, task: Option<&str>, key: &str) -> Request {
    let request = Request::read(agent, key);
    match task {
        Some(task) => request.task(task),
        None => request,
    }
}

/// The most documents a session keeps the policy's answer for; past it, it forgets them all.
const MAX_JUDGED_KEYS: usize = 4_096;

/// The documents `agent` may be served on `task`: those the policy lets it read outright, each
/// judged at its key as a path under the policy's root (an ingest's keys are paths relative to
/// the folder it read). Once the `Fourfold` is gone, nothing is allowed.
///
/// The answers are kept for the session while the policy's generation stays the same (at most
/// [`MAX_JUDGED_KEYS`] of them), so a run asking again and again judges each document once.
fn policy_scope(fourfold: &Fourfold, agent: &str, task: Option<&str>) -> ReadScope {
    let shared = Arc::downgrade(&fourfold.shared);
    let agent = agent.to_string();
    let task = task.map(str::to_string);
    let judged: Mutex<(u64, FxHashMap<String, bool>)> = Mutex::default();
    Arc::new(move |key: &str| {
        let Some(shared) = shared.upgrade() else {
            return false;
        };
        // Read before judging: a change while judging bumps it past what the answer is kept as.
        let generation = shared.policy.generation();
        {
            let (kept_for, answers) = &mut *judged.lock();
            if *kept_for != generation || answers.len() >= MAX_JUDGED_KEYS {
                *kept_for = generation;
                answers.clear();
            }
            if let Some(&allowed) = answers.get(key) {
                return allowed;
            }
        }
        let allowed = shared
            .policy
            .permits(&document_read(&agent, task.as_deref(), key));
        let (kept_for, answers) = &mut *judged.lock();
        if *kept_for == generation {
            answers.insert(key.to_string(), allowed);
        }
        allowed
    })
}
