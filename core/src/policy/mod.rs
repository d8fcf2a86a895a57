//! Policy: scoped permissions and review gates, checked before every tool call of an agent.
//!
//! A [`Policy`] is loaded from a TOML file ([`Policy::from_file`], format in `docs/policy.md`) or
//! built in code ([`Policy::builder`]). Before each tool call, an agent framework asks
//! [`Policy::check`] with a [`Request`] and gets a [`Decision`]: allow, deny, or pending (held by a
//! review gate, with an approval id). Deny beats gate beats allow, no match is deny, and every
//! decision names the rule that made it.
//!
//! Shell commands are parsed with a real shell grammar (tree-sitter-bash) into their simple
//! commands, and every one of them, every file it touches and every host it reaches must be allowed.

mod approval;
mod atom;
mod builder;
mod command;
mod compiled;
mod err;
mod file;
mod judge;
mod net;
mod network;
mod operands;
mod path;
mod plain;
mod program;
mod rule;
mod shell;
mod tool;
mod word;
mod wrappers;

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};
use serde::{Deserialize, Serialize};

pub use approval::{Approval, ApprovalState};
pub use atom::Access;
pub use builder::{PolicyBuilder, DEFAULT_ALLOWED_ENV, PROTECT_RULE_ID};
pub use err::{ApprovalError, DecisionError, InvalidPolicyError, PolicyError, PolicyLoadError};
pub use rule::{Effect, GateDef, GateKind, Rule, ToolRule, HUMAN_REVIEW};

use approval::{ApprovalBook, StoredApproval, TransitionError};
use builder::PolicyState;
use judge::{Grant, Judge, Judgement};

use crate::event::{Clock, Event, EventKind, GateEvent, GateEventOutcome, RuleOrigin, Sequencer};
use crate::plugin::{GateOutcome, PluginRegistry};
use crate::store::Store;
use crate::trace::EventKindName;

/// What an agent asks to do. As JSON: `{"agent": "coder", "task": "T-12", "action": "read",
/// "path": "src/lib.rs"}` (see `docs/policy.md` for every action).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Request {
    /// The agent asking.
    pub agent: String,
    /// The task it works on; rules and grants scoped to a task apply only with it.
    #[serde(default)]
    pub task: Option<String>,
    /// The run the request belongs to, for the events it causes.
    #[serde(default)]
    pub run_id: Option<String>,
    /// The working directory of the request, absolute or relative to the workspace root.
    #[serde(default)]
    pub cwd: Option<String>,
    /// Resolve symbolic links in this request's paths before matching, even when the policy does
    /// not (`[workspace] resolve_symlinks`).
    #[serde(default)]
    pub resolve_symlinks: bool,
    /// What it asks to do.
    #[serde(flatten)]
    pub action: Action,
}

/// The action of a [`Request`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "lowercase")]
pub enum Action {
    /// Read a file or list a directory.
    Read {
        /// The path, absolute or relative to the working directory.
        path: String,
    },
    /// Create or change a file.
    Write {
        /// The path, absolute or relative to the working directory.
        path: String,
    },
    /// Remove a file or directory.
    Delete {
        /// The path, absolute or relative to the working directory.
        path: String,
    },
    /// Run a shell command line.
    Run {
        /// The command line, as the shell would receive it.
        command: String,
    },
    /// Connect to a network destination.
    Net {
        /// A URL, `host`, `host:port` or `user@host`.
        url: String,
    },
    /// Call a generic tool (an MCP tool, a function of the agent framework).
    Tool {
        /// The tool's name.
        name: String,
        /// Its arguments, a JSON object.
        #[serde(default)]
        args: serde_json::Value,
    },
}

impl Action {
    /// The path access of a read, write or delete action.
    pub fn access(&self) -> Option<Access> {
        match self {
            Action::Read { .. } => Some(Access::Read),
            Action::Write { .. } => Some(Access::Write),
            Action::Delete { .. } => Some(Access::Delete),
            _ => None,
        }
    }
}

impl Request {
    /// A request of `agent` to do `action`, outside any task.
    pub fn new(agent: impl Into<String>, action: Action) -> Request {
        Request {
            agent: agent.into(),
            task: None,
            run_id: None,
            cwd: None,
            resolve_symlinks: false,
            action,
        }
    }

    /// A request to read `path`.
    pub fn read(agent: impl Into<String>, path: impl Into<String>) -> Request {
        Request::new(agent, Action::Read { path: path.into() })
    }

    /// A request to write `path`.
    pub fn write(agent: impl Into<String>, path: impl Into<String>) -> Request {
        Request::new(agent, Action::Write { path: path.into() })
    }

    /// A request to delete `path`.
    pub fn delete(agent: impl Into<String>, path: impl Into<String>) -> Request {
        Request::new(agent, Action::Delete { path: path.into() })
    }

    /// A request to run the shell command line `command`.
    pub fn run(agent: impl Into<String>, command: impl Into<String>) -> Request {
        Request::new(
            agent,
            Action::Run {
                command: command.into(),
            },
        )
    }

    /// A request to connect to `url`.
    pub fn net(agent: impl Into<String>, url: impl Into<String>) -> Request {
        Request::new(agent, Action::Net { url: url.into() })
    }

    /// A request to call tool `name` with `args`.
    pub fn tool(
        agent: impl Into<String>,
        name: impl Into<String>,
        args: serde_json::Value,
    ) -> Request {
        Request::new(
            agent,
            Action::Tool {
                name: name.into(),
                args,
            },
        )
    }

    /// Sets the task.
    pub fn task(mut self, task: impl Into<String>) -> Request {
        self.task = Some(task.into());
        self
    }

    /// Sets the run id.
    pub fn run_id(mut self, run_id: impl Into<String>) -> Request {
        self.run_id = Some(run_id.into());
        self
    }

    /// Sets the working directory.
    pub fn cwd(mut self, cwd: impl Into<String>) -> Request {
        self.cwd = Some(cwd.into());
        self
    }

    /// Asks that symbolic links in the request's paths be resolved before matching.
    pub fn resolve_symlinks(mut self) -> Request {
        self.resolve_symlinks = true;
        self
    }
}

/// The verdict of a [`Decision`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// Go ahead.
    Allow,
    /// Do not.
    Deny,
    /// Wait: a review gate holds the request; ask again once the approval is resolved.
    Pending,
}

/// What the policy decided about a request, and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    /// Allow, deny or pending.
    #[serde(rename = "effect")]
    pub verdict: Verdict,
    /// The rule that decided (none when nothing matched, or the request was refused before any rule
    /// was consulted).
    pub rule: Option<RuleOrigin>,
    /// Why, in one line.
    pub reason: String,
    /// The gates involved.
    pub gates: Vec<String>,
    /// The approval that holds the request (pending), or that allowed it (used).
    pub approval_id: Option<String>,
}

impl Decision {
    /// Whether the request may go ahead.
    pub fn is_allowed(&self) -> bool {
        self.verdict == Verdict::Allow
    }

    /// `Ok` when allowed; otherwise a [`DecisionError`] to stop the tool call with `?`.
    pub fn into_result(self) -> Result<Decision, DecisionError> {
        DecisionError::from_decision(self)
    }
}

/// Scoped permissions and review gates for agents. `Send + Sync`: share one across threads; checks
/// never block each other.
pub struct Policy {
    state: RwLock<Arc<PolicyState>>,
    grants: RwLock<Arc<Vec<Arc<Grant>>>>,
    store: Arc<dyn Store>,
    plugins: Arc<PluginRegistry>,
    clock: Arc<dyn Clock>,
    sequencer: Sequencer,
    // INVARIANT: held while a gated request looks up or opens its approval, so that one process
    // never opens two approvals for one request.
    gate_lock: Mutex<()>,
    /// Whether this policy has seen the store's approval index marked ready; once it has, its
    /// gated checks stop reading the mark (no process unmarks it).
    approval_index_ready: AtomicBool,
    n_grants: AtomicU64,
    /// Bumped after every change of the rules in force or of the grants ([`Policy::generation`]).
    generation: AtomicU64,
}

impl std::fmt::Debug for Policy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = self.state.read();
        f.debug_struct("Policy")
            .field("root", &state.root)
            .field("file", &state.file_label)
            .field("n_rules", &state.rules.rules.len())
            .finish_non_exhaustive()
    }
}

impl Policy {
    /// Starts a policy in code.
    pub fn builder() -> PolicyBuilder {
        PolicyBuilder::new()
    }

    /// Loads a policy file. Pending approvals are kept in the directory named by the file's
    /// `[approvals] store`, by default `.fourfold/` beside the file.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Policy, PolicyLoadError> {
        Policy::builder_from_file(path.as_ref())?.build()
    }

    /// Reads a policy file into a builder, to add a store, plugins or a clock before building.
    pub fn builder_from_file(path: &Path) -> Result<PolicyBuilder, PolicyLoadError> {
        let text =
            std::fs::read_to_string(path).map_err(|error| PolicyLoadError::read(path, error))?;
        let builder = file::parse(&text, Some(path))?;
        if builder.store_dir.is_some() {
            return Ok(builder);
        }
        let default_dir = path.parent().unwrap_or(Path::new(".")).join(".fourfold");
        Ok(builder.store_dir(default_dir))
    }

    /// Parses a policy from TOML text. Relative paths are relative to the current directory and
    /// approvals are kept in memory unless the builder is given a store.
    pub fn builder_from_toml(text: &str) -> Result<PolicyBuilder, PolicyLoadError> {
        Ok(file::parse(text, None)?)
    }

    pub(crate) fn from_parts(
        state: PolicyState,
        store: Arc<dyn Store>,
        plugins: Arc<PluginRegistry>,
        clock: Arc<dyn Clock>,
    ) -> Policy {
        Policy {
            state: RwLock::new(Arc::new(state)),
            grants: RwLock::new(Arc::new(Vec::new())),
            store,
            plugins,
            clock,
            sequencer: Sequencer::new(),
            gate_lock: Mutex::new(()),
            approval_index_ready: AtomicBool::new(false),
            n_grants: AtomicU64::new(0),
            generation: AtomicU64::new(0),
        }
    }

    fn approval_book(&self) -> ApprovalBook<'_> {
        ApprovalBook {
            store: self.store.as_ref(),
            index_ready: &self.approval_index_ready,
        }
    }

    /// The plugins that see this policy's events and back its plugin gates.
    pub fn plugins(&self) -> &Arc<PluginRegistry> {
        &self.plugins
    }

    /// The workspace root, absolute.
    pub fn root(&self) -> String {
        self.state.read().root.clone()
    }

    /// Decides `request`. A denial is a decision, not an error; an error means the decision could
    /// not be made (the approval store failed), and the request must not go ahead.
    pub fn check(&self, request: &Request) -> Result<Decision, PolicyError> {
        let state = Arc::clone(&self.state.read());
        let grants = Arc::clone(&self.grants.read());
        let judge = Judge {
            state: &state,
            grants: &grants,
        };
        let origin = |rule: Option<compiled::RuleRef>| {
            rule.and_then(|rule| judge.rule_meta(rule))
                .map(|meta| meta.origin.clone())
        };
        let decision = match judge.judge(request) {
            Judgement::Allow { rule, reason } => Decision {
                verdict: Verdict::Allow,
                rule: origin(rule),
                reason,
                gates: vec![],
                approval_id: None,
            },
            Judgement::Deny { rule, reason } => Decision {
                verdict: Verdict::Deny,
                rule: origin(rule),
                reason,
                gates: vec![],
                approval_id: None,
            },
            Judgement::Gate {
                rule,
                gates,
                reason,
            } => {
                let held = Decision {
                    verdict: Verdict::Pending,
                    rule: origin(Some(rule)),
                    reason,
                    gates,
                    approval_id: None,
                };
                return self.through_gates(&state, request, held);
            }
        };
        let outcome = match decision.verdict {
            Verdict::Allow => GateEventOutcome::Allowed,
            _ => GateEventOutcome::Denied,
        };
        self.emit(request, outcome, &decision, None);
        Ok(decision)
    }

    /// Whether `request` is allowed outright, without deciding it: nothing is recorded, no gate
    /// runs and no approval is opened. A request a rule would hold at a gate is not allowed.
    /// For filtering what an agent is shown (the context store serves only the documents its
    /// agent may read), not for letting an action go ahead: that is [`Policy::check`].
    pub fn permits(&self, request: &Request) -> bool {
        let state = Arc::clone(&self.state.read());
        let grants = Arc::clone(&self.grants.read());
        let judge = Judge {
            state: &state,
            grants: &grants,
        };
        matches!(judge.judge(request), Judgement::Allow { .. })
    }

    /// A number that changes whenever the rules in force or the grants do (`replace`, `reload`,
    /// `grant`, `revoke`, `end_task`): what [`Policy::permits`] answered stays true while it is
    /// the same, so a caller may keep the answers (read it before asking).
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Runs a gated request through its gates and approvals.
    fn through_gates(
        &self,
        state: &PolicyState,
        request: &Request,
        held: Decision,
    ) -> Result<Decision, PolicyError> {
        let _gate_guard = self.gate_lock.lock();
        let book = self.approval_book();
        let now_ns = self.clock.now_ns();
        if let Some(stored) = book.find_for(request)? {
            if let Some(decision) = self.resume(state, &book, stored, request, &held, now_ns)? {
                return Ok(decision);
            }
        }
        // No live approval: run the plugin gates now, then open an approval for what is left.
        let mut outstanding = Vec::new();
        for gate in &held.gates {
            match self.run_gate(state, gate, request) {
                Some(GateOutcome::Fail { reason }) => {
                    let decision = Decision {
                        verdict: Verdict::Deny,
                        reason: format!("gate `{gate}` failed: {reason}"),
                        ..held
                    };
                    self.emit(request, GateEventOutcome::Denied, &decision, None);
                    return Ok(decision);
                }
                Some(GateOutcome::Pass { .. }) => {}
                Some(GateOutcome::Pending { .. }) | None => outstanding.push(gate.clone()),
            }
        }
        if outstanding.is_empty() {
            let decision = Decision {
                verdict: Verdict::Allow,
                reason: format!("{}; every gate passed", held.reason),
                ..held
            };
            self.emit(request, GateEventOutcome::Allowed, &decision, None);
            return Ok(decision);
        }
        let expires_ns = held
            .gates
            .iter()
            .filter_map(|gate| state.gates.get(gate).and_then(|def| def.expires_after_ns))
            .min()
            .map(|after_ns| now_ns.saturating_add(after_ns));
        let approval = Approval {
            id: approval::new_id(now_ns),
            request: request.clone(),
            gates: outstanding,
            rule: held.rule.clone(),
            reason: held.reason.clone(),
            created_ns: now_ns,
            expires_ns,
            state: ApprovalState::Pending,
        };
        if !book.create(&approval)? {
            return Err(ApprovalError::Conflict(approval.id).into());
        }
        let decision = Decision {
            approval_id: Some(approval.id.clone()),
            reason: format!("{}; approval `{}` is pending", held.reason, approval.id),
            ..held
        };
        self.emit(request, GateEventOutcome::Pending, &decision, None);
        Ok(decision)
    }

    /// Continues with the live approval of an identical request; `None` to open a new one.
    fn resume(
        &self,
        state: &PolicyState,
        book: &ApprovalBook<'_>,
        stored: StoredApproval,
        request: &Request,
        held: &Decision,
        now_ns: u64,
    ) -> Result<Option<Decision>, PolicyError> {
        let id = stored.approval.id.clone();
        let with = |verdict: Verdict, reason: String| Decision {
            verdict,
            reason,
            approval_id: Some(id.clone()),
            ..held.clone()
        };
        if stored.approval.is_expired_at(now_ns)
            && !matches!(stored.approval.state, ApprovalState::Rejected { .. })
        {
            let expired = transition(book, &stored, ApprovalState::Expired { at_ns: now_ns })?;
            let decision = with(Verdict::Deny, format!("approval `{id}` expired"));
            self.emit(&expired.request, GateEventOutcome::Expired, &decision, None);
            return Ok(None);
        }
        match &stored.approval.state {
            ApprovalState::Approved { approver, note, .. } => {
                let reason =
                    format!("approved by `{approver}` ({note}); approval `{id}` is now used");
                let decision = with(Verdict::Allow, reason);
                self.use_approval(book, &stored, approver.clone(), request, decision, now_ns)
                    .map(Some)
            }
            ApprovalState::Rejected { approver, note, .. } => {
                let decision = with(
                    Verdict::Deny,
                    format!("rejected by `{approver}`: {note} (approval `{id}`)"),
                );
                self.emit(
                    request,
                    GateEventOutcome::Denied,
                    &decision,
                    Some(approver.clone()),
                );
                Ok(Some(decision))
            }
            ApprovalState::Pending => {
                let mut still_outstanding = false;
                for gate in &stored.approval.gates {
                    match self.run_gate(state, gate, request) {
                        Some(GateOutcome::Fail { reason }) => {
                            let rejected = ApprovalState::Rejected {
                                approver: gate.clone(),
                                note: reason.clone(),
                                at_ns: now_ns,
                            };
                            transition(book, &stored, rejected)?;
                            let decision = with(
                                Verdict::Deny,
                                format!("gate `{gate}` failed: {reason} (approval `{id}`)"),
                            );
                            self.emit(
                                request,
                                GateEventOutcome::Rejected,
                                &decision,
                                Some(gate.clone()),
                            );
                            return Ok(Some(decision));
                        }
                        Some(GateOutcome::Pass { .. }) => {}
                        Some(GateOutcome::Pending { .. }) | None => still_outstanding = true,
                    }
                }
                if still_outstanding {
                    return Ok(Some(with(
                        Verdict::Pending,
                        format!("{}; approval `{id}` is pending", held.reason),
                    )));
                }
                let by = stored.approval.gates.join("+");
                let decision = with(
                    Verdict::Allow,
                    format!("gates {by} passed; approval `{id}` is now used"),
                );
                self.use_approval(book, &stored, by, request, decision, now_ns)
                    .map(Some)
            }
            ApprovalState::Used { .. } | ApprovalState::Expired { .. } => Ok(None),
        }
    }

    /// Marks an approval used by `request` (once: the compare-and-swap fails for a second user) and
    /// records it.
    fn use_approval(
        &self,
        book: &ApprovalBook<'_>,
        stored: &StoredApproval,
        approver: String,
        request: &Request,
        decision: Decision,
        now_ns: u64,
    ) -> Result<Decision, PolicyError> {
        let used = ApprovalState::Used {
            approver: approver.clone(),
            at_ns: now_ns,
        };
        transition(book, stored, used)?;
        self.emit(
            request,
            GateEventOutcome::Consumed,
            &decision,
            Some(approver),
        );
        Ok(decision)
    }

    /// The outcome of a plugin gate, or `None` for a gate a person resolves.
    fn run_gate(&self, state: &PolicyState, gate: &str, request: &Request) -> Option<GateOutcome> {
        match state.gates.get(gate).map(|def| def.kind) {
            Some(GateKind::Plugin) => Some(self.plugins.check_gate(gate, request)),
            _ => None,
        }
    }

    /// Approves the pending approval `id`: the next identical request is allowed, once.
    pub fn approve(&self, id: &str, approver: &str, reason: &str) -> Result<Approval, PolicyError> {
        let state = ApprovalState::Approved {
            approver: approver.to_string(),
            note: reason.to_string(),
            at_ns: self.clock.now_ns(),
        };
        self.resolve(id, state, GateEventOutcome::Approved, approver, reason)
    }

    /// Rejects the pending approval `id`: the request stays denied.
    pub fn reject(&self, id: &str, approver: &str, reason: &str) -> Result<Approval, PolicyError> {
        let state = ApprovalState::Rejected {
            approver: approver.to_string(),
            note: reason.to_string(),
            at_ns: self.clock.now_ns(),
        };
        self.resolve(id, state, GateEventOutcome::Rejected, approver, reason)
    }

    fn resolve(
        &self,
        id: &str,
        next: ApprovalState,
        outcome: GateEventOutcome,
        approver: &str,
        reason: &str,
    ) -> Result<Approval, PolicyError> {
        let book = self.approval_book();
        let stored = book
            .get(id)?
            .ok_or_else(|| ApprovalError::Unknown(id.to_string()))?;
        if stored.approval.state != ApprovalState::Pending {
            return Err(ApprovalError::AlreadyResolved {
                id: id.to_string(),
                state: stored.approval.state.name(),
            }
            .into());
        }
        let now_ns = self.clock.now_ns();
        if stored.approval.is_expired_at(now_ns) {
            transition(&book, &stored, ApprovalState::Expired { at_ns: now_ns })?;
            return Err(ApprovalError::Expired(id.to_string()).into());
        }
        let resolved = transition(&book, &stored, next)?;
        let decision = Decision {
            verdict: if outcome == GateEventOutcome::Approved {
                Verdict::Allow
            } else {
                Verdict::Deny
            },
            rule: resolved.rule.clone(),
            reason: format!("{} by `{approver}`: {reason}", outcome.name()),
            gates: resolved.gates.clone(),
            approval_id: Some(resolved.id.clone()),
        };
        self.emit(
            &resolved.request,
            outcome,
            &decision,
            Some(approver.to_string()),
        );
        Ok(resolved)
    }

    /// The approval `id`, in whatever state.
    pub fn approval(&self, id: &str) -> Result<Option<Approval>, PolicyError> {
        let book = self.approval_book();
        Ok(book.get(id)?.map(|stored| stored.approval))
    }

    /// Waits until approval `id` is no longer pending (approved, rejected, used or expired) or
    /// `timeout` passes, and returns it as it is then (`None` if there is no such approval). A
    /// store that can notify (PostgreSQL) wakes the wait the moment a reviewer anywhere resolves
    /// it; others are polled.
    pub fn wait_for_approval(
        &self,
        id: &str,
        timeout: std::time::Duration,
    ) -> Result<Option<Approval>, PolicyError> {
        let deadline = std::time::Instant::now() + timeout;
        let book = self.approval_book();
        loop {
            let Some(stored) = book.get(id)? else {
                return Ok(None);
            };
            let now = std::time::Instant::now();
            if stored.approval.state != ApprovalState::Pending || now >= deadline {
                return Ok(Some(stored.approval));
            }
            self.store.wait_for_change(
                approval::NAMESPACE,
                id,
                Some(&stored.bytes),
                deadline - now,
            )?;
        }
    }

    /// Every approval still waiting for its gates, oldest first.
    pub fn pending_approvals(&self) -> Result<Vec<Approval>, PolicyError> {
        let book = self.approval_book();
        Ok(book
            .all()?
            .into_iter()
            .map(|stored| stored.approval)
            .filter(|approval| approval.state == ApprovalState::Pending)
            .collect())
    }

    /// Grants `rules` to `agent` for `task` only, until revoked or the task ends. Whatever agents,
    /// roles or tasks the rules name are replaced by this agent and task. Returns the grant id.
    pub fn grant(&self, agent: &str, task: &str, rules: Vec<Rule>) -> Result<String, PolicyError> {
        let rules: Vec<Rule> = rules
            .into_iter()
            .map(|mut rule| {
                rule.agents = Some(vec![agent.to_string()]);
                rule.roles = None;
                rule.tasks = Some(vec![task.to_string()]);
                rule
            })
            .collect();
        let mut grants = self.grants.write();
        let compiled = self.state.read().compile_grant(&rules)?;
        let id = format!(
            "grant-{}",
            self.n_grants.fetch_add(1, Ordering::Relaxed) + 1
        );
        let mut next: Vec<Arc<Grant>> = grants.as_ref().clone();
        next.push(Arc::new(Grant {
            id: id.clone(),
            agent: agent.to_string(),
            task: task.to_string(),
            rules,
            compiled,
        }));
        *grants = Arc::new(next);
        self.generation.fetch_add(1, Ordering::AcqRel);
        Ok(id)
    }

    /// Revokes the grant `grant_id`; returns whether it existed.
    pub fn revoke(&self, grant_id: &str) -> bool {
        self.retain_grants(|grant| grant.id != grant_id) > 0
    }

    /// Revokes every grant for `task` (call it when the task ends); returns how many there were.
    pub fn end_task(&self, task: &str) -> usize {
        self.retain_grants(|grant| grant.task != task)
    }

    fn retain_grants(&self, keep: impl Fn(&Grant) -> bool) -> usize {
        let mut grants = self.grants.write();
        let before = grants.len();
        let next: Vec<Arc<Grant>> = grants.iter().filter(|grant| keep(grant)).cloned().collect();
        let removed = before - next.len();
        *grants = Arc::new(next);
        self.generation.fetch_add(1, Ordering::AcqRel);
        removed
    }

    /// Reads the policy file again. On any error the policy in force stays as it was.
    pub fn reload(&self) -> Result<(), PolicyLoadError> {
        let source = self
            .state
            .read()
            .source_file
            .clone()
            .ok_or(PolicyLoadError::NoSource)?;
        let text = std::fs::read_to_string(&source)
            .map_err(|error| PolicyLoadError::read(&source, error))?;
        self.replace(file::parse(&text, Some(&source))?)
    }

    /// Replaces the rules in force by those of `builder` (its store, plugins and clock are ignored:
    /// the policy keeps its own). Grants are kept and recompiled; on any error nothing changes.
    pub fn replace(&self, builder: PolicyBuilder) -> Result<(), PolicyLoadError> {
        let next_state = PolicyState::compile(&builder)?;
        let mut grants = self.grants.write();
        let mut next_grants = Vec::with_capacity(grants.len());
        for grant in grants.iter() {
            let compiled = next_state.compile_grant(&grant.rules).map_err(|error| {
                InvalidPolicyError::new(format!(
                    "grant `{}` no longer compiles: {}",
                    grant.id,
                    error.reason()
                ))
            })?;
            next_grants.push(Arc::new(Grant {
                id: grant.id.clone(),
                agent: grant.agent.clone(),
                task: grant.task.clone(),
                rules: grant.rules.clone(),
                compiled,
            }));
        }
        *self.state.write() = Arc::new(next_state);
        *grants = Arc::new(next_grants);
        self.generation.fetch_add(1, Ordering::AcqRel);
        Ok(())
    }

    fn emit(
        &self,
        request: &Request,
        outcome: GateEventOutcome,
        decision: &Decision,
        approver: Option<String>,
    ) {
        if !self.plugins.listens(EventKindName::Gate) {
            return;
        }
        let run_id = request.run_id.clone().unwrap_or_default();
        let event = Event {
            seq: self.sequencer.next(&run_id),
            run_id,
            agent_id: request.agent.clone(),
            task_id: request.task.clone(),
            timestamp_ns: self.clock.now_ns(),
            span_id: None,
            parent_span_id: None,
            kind: EventKind::Gate(GateEvent {
                request_json: serde_json::to_string(request).unwrap_or_default(),
                outcome,
                rule: decision.rule.clone(),
                gates: decision.gates.clone(),
                approval_id: decision.approval_id.clone(),
                approver,
                reason: decision.reason.clone(),
            }),
        };
        self.plugins.emit(&event);
    }
}

fn transition(
    book: &ApprovalBook<'_>,
    stored: &StoredApproval,
    state: ApprovalState,
) -> Result<Approval, PolicyError> {
    book.transition(stored, state).map_err(|error| match error {
        TransitionError::Store(error) => PolicyError::Store(error),
        TransitionError::Approval(error) => PolicyError::Approval(error),
    })
}
