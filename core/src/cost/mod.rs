//! CostMeter: exact token counts, prices, budgets that stop work, and tokens saved.
//!
//! - Counting ([`count()`], [`count_chat`], [`Encoding`]): `o200k_base` and `cl100k_base`, equal to
//!   OpenAI's `tiktoken` on every text of the exactness test; other models' counts are labelled
//!   estimates.
//! - Prices ([`PriceTable`]): LiteLLM's `model_prices_and_context_window.json` format, a built-in
//!   copy, money in integer femto-units (10^-15) and shown in micro-units (10^-6).
//! - Metering ([`CostMeter`]): [`CostMeter::record`] a call's [`Usage`] (read from OpenAI,
//!   Anthropic or Gemini usage objects with [`TokenCounts::from_usage_json`]), or
//!   [`CostMeter::reserve`] its worst case first and [`Reservation::commit`] the actual; budgets
//!   on an agent, task, run or the fleet, in tokens or money, lifetime or rolling, soft and hard.
//! - Savings ([`CostMeter::record_saved`]) and reports ([`Report`]) with spent and saved side by
//!   side; a JSON Lines ledger ([`read_ledger`]) for `fourfold cost report`.
//! - Installed as a plugin, the meter answers the policy gate named [`BUDGET_GATE`].
//!
//! The guide is `docs/cost.md`.

mod budget;
mod count;
mod err;
#[cfg(feature = "postgres")]
mod fleet;
mod gate;
mod ledger;
mod merge;
mod meter;
mod price;
mod record;
mod report;
mod shared;
mod split;
mod usage;

pub use budget::{Budget, BudgetUnit, Scope, Window};
pub use count::{
    bare_model_name, count, count_chat, encoding_for_model, resolve, ChatMessage, Encoding,
    TokenCount,
};
pub use err::{BudgetError, BudgetExceeded, CostError, CountError, PriceError, UsageError};
#[cfg(feature = "postgres")]
pub use fleet::{FleetBudgets, FleetReservation};
pub use gate::BUDGET_GATE;
pub use ledger::read_ledger;
pub use meter::{BudgetStanding, CostMeter, CostMeterBuilder, Reservation, UnknownModel};
pub use price::{currency, femtos_to_micros, ModelPrice, PriceTable, FEMTOS_PER_MICRO};
pub use record::{CostRecord, RecordKind};
pub use report::{Report, Totals};
pub use shared::{FleetStanding, SharedBudgets};
pub use usage::{Provider, TokenCounts, Usage};
