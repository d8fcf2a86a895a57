//! `explain(run)`: for each action, what led to it, what it relied on, what it passed and cost.
//!
//! The trace does not link an action to its decision, context, gates and cost explicitly; an agent
//! records them in order. So `explain` reads each action's *scope* (the nearest enclosing step span,
//! else the whole run) and attributes to it what the scope recorded before it:
//!
//! - the decision: the last decision since the scope's previous action;
//! - the gates: the gate events (policy decisions, approvals) since the scope's previous action.
//!   An action with none is marked *unchecked*: no policy decision was recorded for it;
//! - the cost: the cost events since the scope's previous action (the model call that chose it);
//! - the context: every section served in the scope before the action, at the latest version
//!   served, with its freshness.
//!
//! Events recorded outside any span (policy decisions that the Tracer records as a plugin carry
//! only the run) belong to every scope. Gates after a scope's last action, such as a denied request
//! that the agent then gave up, are listed as gates without an action.

use std::collections::BTreeMap;
use std::fmt::{self, Write as _};

use serde::Serialize;

use super::diagnose::{diagnose, Diagnosis};
use super::reader::{RunTree, SpanNode};
use super::SpanKind;
use crate::event::{
    ActionEvent, CostEvent, DecisionEvent, EventKind, GateEvent, GateEventOutcome, ServedSection,
};

/// Why a run did what it did: every action with its decision, context, gates and cost.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Explanation {
    /// The run's id.
    pub run_id: String,
    /// The agent of the run.
    pub agent_id: String,
    /// The task of the run, if any.
    pub task_id: Option<String>,
    /// The actions, in sequence order.
    pub actions: Vec<ExplainedAction>,
    /// Gate events not followed by an action in their scope, such as a denied request.
    pub gates_without_action: Vec<ExplainedGate>,
    /// Every failure's verdict: stale context, permission, budget, a rejected gate, or the model.
    pub diagnoses: Vec<Diagnosis>,
    /// The run's totals.
    pub totals: RunTotals,
}

/// One action and what led to it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ExplainedAction {
    /// The action's sequence number in the run.
    pub seq: u64,
    /// The span path the action was recorded in, outermost first (such as `invoke_agent coder`,
    /// `step fix`, `execute_tool bash`).
    pub span_path: Vec<String>,
    /// What was done.
    pub action: ActionEvent,
    /// The decision that led to it, with its sequence number.
    pub decision: Option<(u64, DecisionEvent)>,
    /// The sections it relied on, at the latest version served before it.
    pub context: Vec<ServedSection>,
    /// Documents the asks before it (in its step, or in the run outside steps) would have been
    /// served but the policy does not let the agent read: what it looked for and was kept from.
    pub withheld: u64,
    /// The gate events recorded for it.
    pub gates: Vec<ExplainedGate>,
    /// False when no policy decision or approval was recorded for it.
    pub checked: bool,
    /// True when the last gate event before it did not let a request through (denied, pending,
    /// rejected, expired): the action ran anyway, or the gate concerned another request of the
    /// same step. Worth a look either way.
    pub ran_after_refusal: bool,
    /// What the model calls behind it cost.
    pub cost: CostTotals,
}

/// A gate event and its sequence number.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ExplainedGate {
    /// The event's sequence number in the run.
    pub seq: u64,
    /// The gate event.
    pub gate: GateEvent,
}

/// Tokens and money summed over cost events.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct CostTotals {
    /// How many model calls.
    pub n_calls: u64,
    /// Prompt tokens, including cached ones.
    pub input_tokens: u64,
    /// Completion tokens.
    pub output_tokens: u64,
    /// Prompt tokens served from the provider's cache.
    pub cached_tokens: u64,
    /// Reasoning tokens.
    pub reasoning_tokens: u64,
    /// Money, in micro-units, by currency.
    pub cost_micros: BTreeMap<String, u64>,
    /// How many of the calls' counts were estimates.
    pub n_estimated: u64,
}

impl CostTotals {
    fn add(&mut self, cost: &CostEvent) {
        self.n_calls += 1;
        self.input_tokens = self.input_tokens.saturating_add(cost.input_tokens);
        self.output_tokens = self.output_tokens.saturating_add(cost.output_tokens);
        self.cached_tokens = self.cached_tokens.saturating_add(cost.cached_tokens);
        self.reasoning_tokens = self.reasoning_tokens.saturating_add(cost.reasoning_tokens);
        let micros = self.cost_micros.entry(cost.currency.clone()).or_default();
        *micros = micros.saturating_add(cost.cost_micros);
        self.n_estimated += u64::from(cost.estimated);
    }
}

/// What a whole run did, spent and was allowed.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct RunTotals {
    /// Events recorded in the run.
    pub n_events: u64,
    /// Actions.
    pub n_actions: u64,
    /// Actions that ended with an error.
    pub n_failed_actions: u64,
    /// Actions with no policy decision or approval recorded.
    pub n_unchecked_actions: u64,
    /// Decisions.
    pub n_decisions: u64,
    /// Gate events by outcome name (`allowed`, `denied`, ...).
    pub gates: BTreeMap<String, u64>,
    /// Every model call's tokens and money.
    pub cost: CostTotals,
    /// Tokens of context served.
    pub context_tokens_served: u64,
    /// Tokens the agent would have read without the ContextStore.
    pub context_tokens_baseline: u64,
    /// Sections served while stale or duplicate.
    pub n_not_canonical_sections: u64,
    /// Documents the run's asks would have been served but the policy kept from the agent.
    pub n_withheld: u64,
    /// When the run began, in nanoseconds since the Unix epoch.
    pub start_ns: u64,
    /// How long the run took, if its end is in the trace.
    pub duration_ns: Option<u64>,
    /// The error the run ended with.
    pub error: Option<String>,
    /// Spans whose end is not in the trace (the process stopped before they ended).
    pub n_unfinished_spans: u64,
}

/// What one scope (a step, or the run) has seen since its previous action.
#[derive(Default)]
struct Scope {
    decision: Option<(u64, DecisionEvent)>,
    gates: Vec<ExplainedGate>,
    cost: CostTotals,
    context: BTreeMap<(String, String), ServedSection>,
    withheld: u64,
}

/// Explains `run`: each action with its decision, context, gates and cost, and the run's totals.
pub fn explain(run: &RunTree) -> Explanation {
    let scope_of_span = scopes(run);
    let mut scopes: BTreeMap<Option<u64>, Scope> = BTreeMap::new();
    let mut totals = RunTotals::default();
    let mut actions = Vec::new();
    let (start_ns, end_ns) = run.time_range();
    totals.start_ns = start_ns;
    totals.duration_ns = end_ns.map(|end| end.saturating_sub(start_ns));
    totals.error = run.error().map(str::to_string);
    totals.n_unfinished_spans = run
        .spans
        .iter()
        .filter(|span| span.end_ns.is_none())
        .count() as u64;

    for (span, event) in run.events() {
        totals.n_events += 1;
        let own_scope = span.and_then(|span| scope_of_span.get(&span.span_id).copied().flatten());
        let targets: Vec<Option<u64>> = match own_scope {
            Some(step) => vec![Some(step)],
            None => open_steps(run, event.timestamp_ns),
        };
        match &event.kind {
            EventKind::Decision(decision) => {
                totals.n_decisions += 1;
                for target in targets {
                    scopes.entry(target).or_default().decision =
                        Some((event.seq, decision.clone()));
                }
            }
            EventKind::Gate(gate) => {
                *totals
                    .gates
                    .entry(gate.outcome.name().to_string())
                    .or_default() += 1;
                for target in targets {
                    scopes.entry(target).or_default().gates.push(ExplainedGate {
                        seq: event.seq,
                        gate: gate.clone(),
                    });
                }
            }
            EventKind::Cost(cost) => {
                totals.cost.add(cost);
                // A cost counts once, even when several steps were open.
                let target = targets.first().copied().flatten();
                scopes.entry(target).or_default().cost.add(cost);
            }
            EventKind::Context(context) => {
                totals.context_tokens_served = totals
                    .context_tokens_served
                    .saturating_add(context.tokens_served);
                totals.context_tokens_baseline = totals
                    .context_tokens_baseline
                    .saturating_add(context.tokens_baseline);
                totals.n_not_canonical_sections += context
                    .sections
                    .iter()
                    .filter(|section| section.freshness != "canonical")
                    .count() as u64;
                totals.n_withheld = totals.n_withheld.saturating_add(context.withheld);
                for target in targets {
                    let scope = scopes.entry(target).or_default();
                    scope.withheld = scope.withheld.saturating_add(context.withheld);
                    for section in &context.sections {
                        let key = (section.key.clone(), section.section_id.clone());
                        scope.context.insert(key, section.clone());
                    }
                }
            }
            EventKind::Action(action) => {
                let target = targets.first().copied().flatten();
                let scope = scopes.entry(target).or_default();
                let checked = !scope.gates.is_empty();
                let ran_after_refusal = scope
                    .gates
                    .last()
                    .is_some_and(|gate| !passed(gate.gate.outcome));
                totals.n_actions += 1;
                totals.n_failed_actions += u64::from(action.error.is_some());
                totals.n_unchecked_actions += u64::from(!checked);
                actions.push(ExplainedAction {
                    seq: event.seq,
                    span_path: span.map_or_else(Vec::new, |span| span_path(run, span)),
                    action: action.clone(),
                    decision: scope.decision.take(),
                    context: scope.context.values().cloned().collect(),
                    withheld: scope.withheld,
                    gates: std::mem::take(&mut scope.gates),
                    checked,
                    ran_after_refusal,
                    cost: std::mem::take(&mut scope.cost),
                });
            }
        }
    }
    let mut gates_without_action: Vec<ExplainedGate> = Vec::new();
    for scope in scopes.into_values() {
        for gate in scope.gates {
            if !gates_without_action.iter().any(|seen| seen.seq == gate.seq) {
                gates_without_action.push(gate);
            }
        }
    }
    gates_without_action.sort_by_key(|gate| gate.seq);
    // A run-level gate can sit in several scopes: once an action took it, it is not "without".
    gates_without_action.retain(|gate| {
        !actions
            .iter()
            .any(|action| action.gates.iter().any(|taken| taken.seq == gate.seq))
    });
    let mut all_gates: Vec<&ExplainedGate> = actions
        .iter()
        .flat_map(|action| action.gates.iter())
        .chain(gates_without_action.iter())
        .collect();
    all_gates.sort_by_key(|gate| gate.seq);
    all_gates.dedup_by_key(|gate| gate.seq);
    let diagnoses = diagnose(&actions, &all_gates);
    Explanation {
        run_id: run.run_id.clone(),
        agent_id: run.agent_id.clone(),
        task_id: run.task_id.clone(),
        actions,
        gates_without_action,
        diagnoses,
        totals,
    }
}

/// The steps open at `at_ns`, innermost last, or the run (`None`) if none is: where an event
/// recorded outside any step belongs.
fn open_steps(run: &RunTree, at_ns: u64) -> Vec<Option<u64>> {
    let open: Vec<Option<u64>> = run
        .spans
        .iter()
        .filter(|span| span.kind == SpanKind::Step)
        .filter(|span| span.start_ns <= at_ns && span.end_ns.is_none_or(|end| at_ns <= end))
        .map(|span| Some(span.span_id))
        .collect();
    if open.is_empty() {
        vec![None]
    } else {
        open
    }
}

/// The scope of every span: its nearest enclosing step (itself, if it is one), or `None` for the
/// run.
fn scopes(run: &RunTree) -> BTreeMap<u64, Option<u64>> {
    let mut scope_of_span = BTreeMap::new();
    let mut stack: Vec<(usize, Option<u64>)> = run.roots.iter().map(|&idx| (idx, None)).collect();
    while let Some((idx, inherited)) = stack.pop() {
        let span = &run.spans[idx];
        let scope = match span.kind {
            SpanKind::Step => Some(span.span_id),
            _ => inherited,
        };
        scope_of_span.insert(span.span_id, scope);
        stack.extend(span.children.iter().map(|&child| (child, scope)));
    }
    scope_of_span
}

fn span_label(span: &SpanNode) -> String {
    match span.kind {
        SpanKind::Run => format!("invoke_agent {}", span.name),
        SpanKind::Step => format!("step {}", span.name),
        SpanKind::LlmCall => format!("chat {}", span.name),
        SpanKind::ToolCall => format!("execute_tool {}", span.name),
    }
}

fn span_path(run: &RunTree, span: &SpanNode) -> Vec<String> {
    let mut path = vec![span_label(span)];
    let mut current = span;
    // Bounded by the number of spans, so a forged parent cycle cannot loop forever.
    for _ in 0..run.spans.len() {
        let Some(parent) = current.parent_span_id.and_then(|id| run.span(id)) else {
            break;
        };
        if parent
            .children
            .iter()
            .all(|&idx| run.spans[idx].span_id != current.span_id)
        {
            break;
        }
        path.push(span_label(parent));
        current = parent;
    }
    path.reverse();
    path
}

/// `1 action`, `2 actions`.
fn counted(n: u64, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

fn money(micros: &BTreeMap<String, u64>) -> String {
    money_or(micros, "no money recorded", " + ")
}

/// Each currency's amount of `micros`, joined by `separator`, or `none` if there is none.
pub(super) fn money_or(micros: &BTreeMap<String, u64>, none: &str, separator: &str) -> String {
    if micros.is_empty() {
        return none.to_string();
    }
    micros
        .iter()
        .map(|(currency, micros)| amount(*micros, currency))
        .collect::<Vec<_>>()
        .join(separator)
}

/// `micros` micro-units of `currency`, written out: `0.001128 USD`.
pub(super) fn amount(micros: u64, currency: &str) -> String {
    format!(
        "{}.{:06} {currency}",
        micros / 1_000_000,
        micros % 1_000_000
    )
}

fn describe_gate(gate: &ExplainedGate) -> String {
    let mut text = format!("#{} {}", gate.seq, gate.gate.outcome.name());
    if let Some(rule) = &gate.gate.rule {
        let _ = write!(text, " by {rule}");
    }
    if !gate.gate.gates.is_empty() {
        let _ = write!(text, " at gate {}", gate.gate.gates.join(", "));
    }
    if let Some(approver) = &gate.gate.approver {
        let _ = write!(text, ", approver {approver}");
    }
    if !gate.gate.reason.is_empty() {
        let _ = write!(text, ": {}", gate.gate.reason);
    }
    text
}

impl fmt::Display for Explanation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "run {} (agent {}", self.run_id, self.agent_id)?;
        if let Some(task) = &self.task_id {
            write!(f, ", task {task}")?;
        }
        writeln!(f, ")")?;
        for (number, explained) in self.actions.iter().enumerate() {
            let action = &explained.action;
            write!(
                f,
                "{}. #{} {} {}",
                number + 1,
                explained.seq,
                action.tool,
                action.arguments_json
            )?;
            match &action.error {
                Some(error) => writeln!(f, ": failed: {error}")?,
                None => writeln!(f, ": ok")?,
            }
            if !explained.span_path.is_empty() {
                writeln!(f, "   in:       {}", explained.span_path.join(" > "))?;
            }
            match &explained.decision {
                Some((seq, decision)) => writeln!(
                    f,
                    "   decision: #{seq} {} ({})",
                    decision.choice, decision.rationale
                )?,
                None => writeln!(f, "   decision: none recorded")?,
            }
            if explained.gates.is_empty() {
                writeln!(f, "   gates:    none recorded: the action was not checked")?;
            }
            for gate in &explained.gates {
                writeln!(f, "   gate:     {}", describe_gate(gate))?;
            }
            if explained.ran_after_refusal {
                writeln!(
                    f,
                    "   warning:  it ran after a gate that did not let it through"
                )?;
            }
            for section in &explained.context {
                writeln!(
                    f,
                    "   context:  {}#{} v{} ({})",
                    section.key, section.section_id, section.version, section.freshness
                )?;
            }
            if explained.withheld > 0 {
                writeln!(
                    f,
                    "   context:  {} matching document(s) withheld: the policy does not let the \
                     agent read them",
                    explained.withheld
                )?;
            }
            if explained.cost.n_calls > 0 {
                writeln!(
                    f,
                    "   cost:     {}, {} in / {} out tokens, {}",
                    counted(explained.cost.n_calls, "model call"),
                    explained.cost.input_tokens,
                    explained.cost.output_tokens,
                    money(&explained.cost.cost_micros)
                )?;
            }
        }
        for gate in &self.gates_without_action {
            writeln!(f, "no action after gate {}", describe_gate(gate))?;
        }
        for diagnosis in &self.diagnoses {
            writeln!(f, "verdict: {diagnosis}")?;
        }
        let totals = &self.totals;
        write!(
            f,
            "totals: {} ({} failed, {} unchecked), {}, gates",
            counted(totals.n_actions, "action"),
            totals.n_failed_actions,
            totals.n_unchecked_actions,
            counted(totals.n_decisions, "decision")
        )?;
        if totals.gates.is_empty() {
            write!(f, " none")?;
        }
        for (outcome, count) in &totals.gates {
            write!(f, " {outcome}={count}")?;
        }
        writeln!(f)?;
        writeln!(
            f,
            "        {}, {} in / {} out / {} cached / {} reasoning tokens, {}{}",
            counted(totals.cost.n_calls, "model call"),
            totals.cost.input_tokens,
            totals.cost.output_tokens,
            totals.cost.cached_tokens,
            totals.cost.reasoning_tokens,
            money(&totals.cost.cost_micros),
            if totals.cost.n_estimated > 0 {
                format!(" ({} estimated)", totals.cost.n_estimated)
            } else {
                String::new()
            }
        )?;
        writeln!(
            f,
            "        context {} tokens served (baseline {}), {} sections not canonical{}",
            totals.context_tokens_served,
            totals.context_tokens_baseline,
            totals.n_not_canonical_sections,
            if totals.n_withheld > 0 {
                format!(", {} document(s) withheld by the policy", totals.n_withheld)
            } else {
                String::new()
            }
        )?;
        match totals.duration_ns {
            Some(duration) => write!(f, "        took {:.3} s", duration as f64 / 1e9)?,
            None => write!(f, "        did not end in the trace")?,
        }
        if let Some(error) = &totals.error {
            write!(f, ", failed: {error}")?;
        }
        if totals.n_unfinished_spans > 0 {
            write!(f, ", {} spans unfinished", totals.n_unfinished_spans)?;
        }
        writeln!(f)
    }
}

/// Whether `outcome` let the request through.
pub(crate) fn passed(outcome: GateEventOutcome) -> bool {
    matches!(
        outcome,
        GateEventOutcome::Allowed | GateEventOutcome::Approved | GateEventOutcome::Consumed
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{ContextEvent, Event, RuleOrigin};
    use crate::trace::{Runs, TraceRecord};

    #[derive(Default)]
    struct Recorder {
        records: Vec<TraceRecord>,
        seq: u64,
        now_ns: u64,
    }

    impl Recorder {
        fn tick(&mut self) -> u64 {
            self.now_ns += 100_000_000;
            self.now_ns
        }

        fn span(&mut self, span_id: u64, parent: Option<u64>, kind: SpanKind, name: &str) {
            let at_ns = self.tick();
            self.records.push(TraceRecord::SpanStart {
                run_id: "run-1".into(),
                agent_id: "coder".into(),
                task_id: Some("T-1".into()),
                span_id,
                parent_span_id: parent,
                name: name.into(),
                kind,
                at_ns,
            });
        }

        fn end(&mut self, span_id: u64, error: Option<&str>) {
            let at_ns = self.tick();
            self.records.push(TraceRecord::SpanEnd {
                run_id: "run-1".into(),
                span_id,
                at_ns,
                error: error.map(str::to_string),
            });
        }

        fn event(&mut self, span_id: Option<u64>, kind: EventKind) {
            self.seq += 1;
            let timestamp_ns = self.tick();
            self.records.push(TraceRecord::Event(Event {
                run_id: "run-1".into(),
                agent_id: "coder".into(),
                task_id: Some("T-1".into()),
                seq: self.seq,
                timestamp_ns,
                span_id,
                parent_span_id: None,
                kind,
            }));
        }
    }

    fn decision(choice: &str) -> EventKind {
        EventKind::Decision(DecisionEvent {
            choice: choice.into(),
            rationale: "because".into(),
            alternatives: vec![],
        })
    }

    fn action(tool: &str, error: Option<&str>) -> EventKind {
        EventKind::Action(ActionEvent {
            tool: tool.into(),
            arguments_json: "{}".into(),
            result_digest: None,
            duration_ns: Some(5),
            error: error.map(str::to_string),
        })
    }

    fn gate(outcome: GateEventOutcome, rule: &str) -> EventKind {
        EventKind::Gate(GateEvent {
            request_json: "{}".into(),
            outcome,
            rule: Some(RuleOrigin {
                id: rule.into(),
                file: Some("policy.toml".into()),
                line: Some(3),
            }),
            gates: vec![],
            approval_id: None,
            approver: None,
            reason: format!("{} by rule", outcome.name()),
        })
    }

    fn cost(input_tokens: u64, cost_micros: u64) -> EventKind {
        EventKind::Cost(CostEvent {
            model: "gpt-4o".into(),
            provider: Some("openai".into()),
            input_tokens,
            output_tokens: 10,
            cached_tokens: 0,
            reasoning_tokens: 0,
            cost_micros,
            currency: "USD".into(),
            estimated: false,
            cache_write_tokens: 0,
            saved_tokens: 0,
            saved_micros: 0,
            warning: None,
        })
    }

    fn context(version: u64, freshness: &str) -> EventKind {
        EventKind::Context(ContextEvent {
            query: None,
            sections: vec![ServedSection {
                key: "docs/auth.md".into(),
                section_id: "tokens".into(),
                version,
                freshness: freshness.into(),
            }],
            tokens_served: 100,
            tokens_baseline: 4_000,
            withheld: 0,
        })
    }

    /// A run of two steps: the first reads context, decides, is allowed and edits; the second
    /// decides to push, is denied, and gives up; a last unchecked action fails at run level.
    fn two_steps() -> Runs {
        let mut rec = Recorder::default();
        rec.span(1, None, SpanKind::Run, "coder");
        rec.span(2, Some(1), SpanKind::Step, "fix");
        rec.event(Some(2), context(3, "canonical"));
        rec.span(3, Some(2), SpanKind::LlmCall, "gpt-4o");
        rec.event(Some(3), cost(1_000, 2_500));
        rec.end(3, None);
        rec.event(Some(2), decision("edit src/lib.rs"));
        rec.event(None, gate(GateEventOutcome::Allowed, "edit-src"));
        rec.span(4, Some(2), SpanKind::ToolCall, "edit");
        rec.event(Some(4), action("edit", None));
        rec.end(4, None);
        rec.end(2, None);
        rec.span(5, Some(1), SpanKind::Step, "ship");
        rec.event(Some(5), context(4, "stale"));
        rec.event(Some(5), decision("push"));
        rec.event(None, gate(GateEventOutcome::Denied, "no-push"));
        rec.end(5, None);
        rec.event(Some(1), action("bash", Some("exit 1")));
        rec.end(1, Some("gave up"));
        Runs::from_records(&rec.records)
    }

    #[test]
    fn each_action_gets_its_decision_gates_context_and_cost() {
        let runs = two_steps();
        let explanation = explain(&runs.runs[0]);
        assert_eq!(explanation.actions.len(), 2);

        let edit = &explanation.actions[0];
        assert_eq!(edit.action.tool, "edit");
        assert_eq!(
            edit.span_path,
            vec!["invoke_agent coder", "step fix", "execute_tool edit"]
        );
        assert_eq!(edit.decision.as_ref().unwrap().1.choice, "edit src/lib.rs");
        assert_eq!(edit.gates.len(), 1);
        assert_eq!(edit.gates[0].gate.rule.as_ref().unwrap().id, "edit-src");
        assert!(edit.checked);
        assert_eq!(edit.context.len(), 1);
        assert_eq!(edit.context[0].version, 3);
        assert_eq!(edit.cost.input_tokens, 1_000);
        assert_eq!(edit.cost.cost_micros["USD"], 2_500);

        let bash = &explanation.actions[1];
        assert_eq!(bash.action.error.as_deref(), Some("exit 1"));
        assert!(
            bash.decision.is_none(),
            "the push decision was in another step"
        );
        assert!(
            !bash.checked,
            "the denied gate was the ship step's, not this action's"
        );
        assert_eq!(bash.cost.n_calls, 0);

        let denied: Vec<&str> = explanation
            .gates_without_action
            .iter()
            .map(|gate| gate.gate.rule.as_ref().unwrap().id.as_str())
            .collect();
        assert_eq!(denied, vec!["no-push"]);
    }

    #[test]
    fn totals_sum_the_whole_run() {
        let runs = two_steps();
        let totals = explain(&runs.runs[0]).totals;
        assert_eq!(totals.n_events, 9);
        assert_eq!(totals.n_actions, 2);
        assert_eq!(totals.n_failed_actions, 1);
        assert_eq!(totals.n_unchecked_actions, 1);
        assert_eq!(totals.n_decisions, 2);
        assert_eq!(totals.gates["allowed"], 1);
        assert_eq!(totals.gates["denied"], 1);
        assert_eq!(totals.cost.input_tokens, 1_000);
        assert_eq!(totals.context_tokens_served, 200);
        assert_eq!(totals.context_tokens_baseline, 8_000);
        assert_eq!(totals.n_not_canonical_sections, 1);
        assert_eq!(totals.duration_ns, Some(1_800_000_000));
        assert_eq!(totals.error.as_deref(), Some("gave up"));
        assert_eq!(totals.n_unfinished_spans, 0);
    }

    #[test]
    fn the_text_names_rules_gates_and_what_was_unchecked() {
        let runs = two_steps();
        let text = explain(&runs.runs[0]).to_string();
        for expected in [
            "run run-1 (agent coder, task T-1)",
            "1. #5 edit {}: ok",
            "   decision: #3 edit src/lib.rs (because)",
            "   gate:     #4 allowed by rule `edit-src` (policy.toml:3): allowed by rule",
            "   context:  docs/auth.md#tokens v3 (canonical)",
            "   cost:     1 model call, 1000 in / 10 out tokens, 0.002500 USD",
            "2. #9 bash {}: failed: exit 1",
            "   gates:    none recorded: the action was not checked",
            "no action after gate #8 denied by rule `no-push` (policy.toml:3)",
            "totals: 2 actions (1 failed, 1 unchecked), 2 decisions, gates allowed=1 denied=1",
            "took 1.800 s, failed: gave up",
        ] {
            assert!(text.contains(expected), "missing {expected:?} in\n{text}");
        }
    }

    #[test]
    fn an_unfinished_run_says_so() {
        let mut rec = Recorder::default();
        rec.span(1, None, SpanKind::Run, "coder");
        rec.event(Some(1), action("bash", None));
        let cut = Runs::from_records(&rec.records);
        let explanation = explain(&cut.runs[0]);
        assert_eq!(explanation.totals.duration_ns, None);
        assert_eq!(explanation.totals.n_unfinished_spans, 1);
        assert!(explanation.to_string().contains("did not end in the trace"));
    }

    #[test]
    fn an_action_after_a_refusal_is_flagged() {
        let mut rec = Recorder::default();
        rec.span(1, None, SpanKind::Run, "coder");
        rec.span(2, Some(1), SpanKind::Step, "ship");
        rec.event(None, gate(GateEventOutcome::Pending, "review-push"));
        rec.event(Some(2), action("git push", None));
        rec.event(None, gate(GateEventOutcome::Allowed, "read-src"));
        rec.event(Some(2), action("cat", None));
        let runs = Runs::from_records(&rec.records);
        let explanation = explain(&runs.runs[0]);
        let flags: Vec<(bool, bool)> = explanation
            .actions
            .iter()
            .map(|action| (action.checked, action.ran_after_refusal))
            .collect();
        assert_eq!(flags, vec![(true, true), (true, false)]);
        assert!(explanation
            .to_string()
            .contains("warning:  it ran after a gate that did not let it through"));
    }

    #[test]
    fn passing_outcomes() {
        let passing: Vec<GateEventOutcome> = [
            GateEventOutcome::Allowed,
            GateEventOutcome::Denied,
            GateEventOutcome::Pending,
            GateEventOutcome::Approved,
            GateEventOutcome::Rejected,
            GateEventOutcome::Expired,
            GateEventOutcome::Consumed,
        ]
        .into_iter()
        .filter(|outcome| passed(*outcome))
        .collect();
        assert_eq!(
            passing,
            vec![
                GateEventOutcome::Allowed,
                GateEventOutcome::Approved,
                GateEventOutcome::Consumed
            ]
        );
    }
}
