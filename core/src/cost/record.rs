//! One line of the cost ledger: a call's spending, or tokens saved.

use serde::{Deserialize, Serialize};

use super::price::{femtos_to_micros, FEMTOS_PER_MICRO};
use super::usage::TokenCounts;
use crate::event::{CostEvent, Event, EventKind};

/// Whether a record is spending or saving.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RecordKind {
    /// A model call's tokens and price.
    Spent,
    /// Tokens not spent thanks to fourfold, and what they would have cost.
    Saved,
}

/// A recorded model call or saving, as the meter keeps it and the ledger writes it (one JSON
/// object per line).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CostRecord {
    /// Spent or saved.
    pub kind: RecordKind,
    /// When it was recorded, in nanoseconds since the Unix epoch.
    pub at_ns: u64,
    /// The agent.
    pub agent: String,
    /// The task, if any.
    pub task: Option<String>,
    /// The run, if any.
    pub run: Option<String>,
    /// The model.
    pub model: String,
    /// Who serves the model, if known.
    pub provider: Option<String>,
    /// The tokens used (zero on a saving).
    pub counts: TokenCounts,
    /// The tokens saved (zero on spending).
    pub saved_tokens: u64,
    /// The exact price, in femto-units (10^-15) of `currency`: spent, or saved on a saving.
    pub femtos: u128,
    /// The currency.
    pub currency: String,
    /// True when the counts are an estimate.
    pub estimated: bool,
    /// Why the record needs a look, if it does (a model priced at zero because it is unknown).
    pub warning: Option<String>,
}

impl CostRecord {
    /// The price in micro-units, rounded half up.
    pub fn micros(&self) -> u64 {
        u64::try_from(femtos_to_micros(self.femtos)).unwrap_or(u64::MAX)
    }

    /// The record as the event the meter emits.
    pub(crate) fn to_event_kind(&self) -> EventKind {
        let (cost_micros, saved_micros) = match self.kind {
            RecordKind::Spent => (self.micros(), 0),
            RecordKind::Saved => (0, self.micros()),
        };
        EventKind::Cost(CostEvent {
            model: self.model.clone(),
            provider: self.provider.clone(),
            input_tokens: self
                .counts
                .input
                .saturating_add(self.counts.cache_read)
                .saturating_add(self.counts.cache_write),
            output_tokens: self.counts.output,
            cached_tokens: self.counts.cache_read,
            reasoning_tokens: self.counts.reasoning,
            cost_micros,
            currency: self.currency.clone(),
            estimated: self.estimated,
            cache_write_tokens: self.counts.cache_write,
            saved_tokens: self.saved_tokens,
            saved_micros,
            warning: self.warning.clone(),
        })
    }

    /// The record a cost event of a trace stands for (its money known to the micro-unit).
    pub fn from_event(event: &Event) -> Option<CostRecord> {
        let EventKind::Cost(cost) = &event.kind else {
            return None;
        };
        let saving = cost.saved_tokens > 0 || cost.saved_micros > 0;
        let prompt = cost
            .input_tokens
            .saturating_sub(cost.cached_tokens)
            .saturating_sub(cost.cache_write_tokens);
        Some(CostRecord {
            kind: if saving {
                RecordKind::Saved
            } else {
                RecordKind::Spent
            },
            at_ns: event.timestamp_ns,
            agent: event.agent_id.clone(),
            task: event.task_id.clone(),
            run: (!event.run_id.is_empty()).then(|| event.run_id.clone()),
            model: cost.model.clone(),
            provider: cost.provider.clone(),
            counts: TokenCounts {
                input: prompt,
                output: cost.output_tokens,
                cache_read: cost.cached_tokens,
                cache_write: cost.cache_write_tokens,
                reasoning: cost.reasoning_tokens,
            },
            saved_tokens: cost.saved_tokens,
            femtos: u128::from(if saving {
                cost.saved_micros
            } else {
                cost.cost_micros
            }) * FEMTOS_PER_MICRO,
            currency: cost.currency.clone(),
            estimated: cost.estimated,
            warning: cost.warning.clone(),
        })
    }
}
