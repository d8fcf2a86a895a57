//! The CostMeter as a plugin: it answers the Policy's `budget` gate and turns the ContextStore's
//! context events into savings.

use crate::event::{Event, EventKind};
use crate::plugin::{GateOutcome, Plugin};
use crate::policy::Request;
use crate::trace::EventKindName;

use super::meter::{BudgetStanding, CostMeter, WeakMeter};

/// The name the meter has as a plugin, and of the policy gate it answers.
pub const BUDGET_GATE: &str = "budget";

impl Plugin for CostMeter {
    fn name(&self) -> &str {
        BUDGET_GATE
    }

    /// The meter values the tokens a context event saved; it ignores the other kinds.
    fn listens_to(&self, kind: EventKindName) -> bool {
        kind == EventKindName::Context
    }

    /// Records the savings of a context event (tokens served below the baseline), priced at the
    /// savings model, when the meter has one. Other events are ignored.
    fn on_event(&self, event: &Event) {
        let (EventKind::Context(context), Some(model)) = (&event.kind, self.savings_model()) else {
            return;
        };
        let saved = context
            .tokens_baseline
            .saturating_sub(context.tokens_served);
        if saved == 0 {
            return;
        }
        let run = (!event.run_id.is_empty()).then_some(event.run_id.as_str());
        // A listener cannot return an error; an unknown savings model only loses the saving.
        let _ = self.record_saved(&event.agent_id, event.task_id.as_deref(), run, model, saved);
    }

    /// A request held by the `budget` gate passes while every budget covering its agent, task and
    /// run is under its soft limit, waits for a person (pending) past a soft limit, and fails at a
    /// hard limit.
    fn check(&self, request: &Request) -> GateOutcome {
        match self.check(
            &request.agent,
            request.task.as_deref(),
            request.run_id.as_deref(),
        ) {
            Ok(BudgetStanding::Within) => GateOutcome::Pass {
                reason: "within budget".into(),
            },
            Ok(BudgetStanding::OverSoft(budget)) => GateOutcome::Pending {
                reason: format!("budget `{budget}` is past its soft limit"),
            },
            Err(exceeded) => GateOutcome::Fail {
                reason: exceeded.to_string(),
            },
        }
    }
}

impl Plugin for WeakMeter {
    fn name(&self) -> &str {
        BUDGET_GATE
    }

    /// The meter values the tokens a context event saved; it ignores the other kinds.
    fn listens_to(&self, kind: EventKindName) -> bool {
        kind == EventKindName::Context
    }

    fn on_event(&self, event: &Event) {
        if let Some(meter) = self.upgrade() {
            Plugin::on_event(&meter, event);
        }
    }

    fn check(&self, request: &Request) -> GateOutcome {
        match self.upgrade() {
            Some(meter) => Plugin::check(&meter, request),
            None => GateOutcome::Fail {
                reason: "the cost meter behind the `budget` gate is gone".into(),
            },
        }
    }
}
