//! Budgets kept outside the process, which every process of a fleet spends against together.
//!
//! The meter holds them behind [`SharedBudgets`], so it does not depend on where they live; the
//! PostgreSQL backend (`FleetBudgets`, feature `postgres`) is the one fourfold ships.
//! A shared budget has a hard limit, and may have a soft one, over its lifetime or over a rolling
//! window.

use std::sync::Arc;
use std::time::Duration;

use super::budget::{Budget, BudgetState, Scope, Window};
use super::err::{BudgetError, CostError};
use super::price::FEMTOS_PER_MICRO;

/// A shared budget's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FleetStanding {
    /// The hard limit.
    pub hard: u64,
    /// What was committed (within the window, for a budget with one).
    pub spent: u64,
    /// What live reservations hold.
    pub reserved: u64,
}

/// Where shared budgets live. Amounts are tokens, or millionths of the currency for money budgets.
pub trait SharedBudgets: Send + Sync + std::fmt::Debug {
    /// Creates budget `name` with limit `hard` over the last `window` (over its lifetime with
    /// `None`), or changes its limit and window (keeping what was spent).
    fn define(&self, name: &str, hard: u64, window: Option<Duration>) -> Result<(), CostError>;
    /// Holds `amount` against `name`, or fails with [`CostError::Exceeded`] holding nothing.
    /// Returns the hold's id.
    fn hold(&self, name: &str, amount: u64) -> Result<u64, CostError>;
    /// Releases hold `hold` of `name` and adds `actual` to what was spent; returns what `name`
    /// has spent now (within its window, if it has one), `actual` included, as of that one
    /// atomic change (0 if it is not defined).
    fn settle(&self, name: &str, hold: u64, actual: u64) -> Result<u64, CostError>;
    /// Releases hold `hold` without spending (the call did not happen).
    fn release(&self, hold: u64) -> Result<(), CostError>;
    /// Adds `amount` to what `name` spent, without a hold; returns what `name` has spent now, as
    /// [`SharedBudgets::settle`] does.
    fn spend(&self, name: &str, amount: u64) -> Result<u64, CostError>;
    /// `name`'s limit, spend and holds, or `None` if it is not defined.
    fn standing(&self, name: &str) -> Result<Option<FleetStanding>, CostError>;
}

/// A shared budget as the meter enforces it.
#[derive(Clone, Debug)]
pub(crate) struct SharedLimit {
    pub(crate) backend: Arc<dyn SharedBudgets>,
    pub(crate) name: String,
    scope: Scope,
    is_money: bool,
    /// The soft limit, in the backend's units; the meter keeps it (every process reads the same
    /// config), the backend keeps only the hard one.
    pub(crate) soft: Option<u64>,
}

impl SharedLimit {
    /// Checks `budget` as the meter checks its own, then defines it in `backend`.
    pub(crate) fn define(
        backend: Arc<dyn SharedBudgets>,
        budget: Budget,
        price_currency: &str,
    ) -> Result<SharedLimit, CostError> {
        let name = budget.name();
        if budget.hard.is_none() {
            return Err(BudgetError::InvalidLimit {
                budget: name,
                which: "shared",
                reason: "a shared budget has a hard limit (and maybe a soft one)".into(),
            }
            .into());
        }
        let window = match budget.window {
            Window::Lifetime => None,
            Window::Rolling { seconds } => Some(Duration::from_secs(seconds)),
        };
        let scope = budget.scope.clone();
        let state = BudgetState::new(budget, price_currency)?;
        let units = |limit: u128, which: &'static str| -> Result<u64, CostError> {
            let limit = if state.is_money {
                limit / FEMTOS_PER_MICRO
            } else {
                limit
            };
            u64::try_from(limit).map_err(|_| {
                BudgetError::InvalidLimit {
                    budget: name.clone(),
                    which,
                    reason: "it is too large for a shared budget".into(),
                }
                .into()
            })
        };
        let hard = units(state.hard.unwrap_or(0), "hard")?;
        let soft = state.soft.map(|soft| units(soft, "soft")).transpose()?;
        backend.define(&name, hard, window)?;
        Ok(SharedLimit {
            backend,
            name,
            scope,
            is_money: state.is_money,
            soft,
        })
    }

    /// The soft limit, if spending that reached `spent` by adding `amount` is what took this
    /// budget past it. The backend adds each amount atomically and returns the total it made, so
    /// of all the processes spending, exactly one sees the crossing.
    pub(crate) fn crossed_soft(&self, spent: u64, amount: u64) -> Option<u64> {
        self.soft
            .filter(|soft| spent > *soft && spent.saturating_sub(amount) <= *soft)
    }

    /// The unit of this budget's amounts.
    pub(crate) fn unit_name(&self) -> &'static str {
        if self.is_money {
            "millionths of the currency"
        } else {
            "tokens"
        }
    }

    /// Whether this budget limits calls of `agent` for `task` in `run`.
    pub(crate) fn covers(&self, agent: &str, task: Option<&str>, run: Option<&str>) -> bool {
        self.scope.covers(agent, task, run)
    }

    /// A call's amount in this budget's unit: tokens, or micros of money (rounded up, so that many
    /// small calls cannot slip under the limit).
    pub(crate) fn amount(&self, tokens: u128, femtos: u128) -> u64 {
        let amount = if self.is_money {
            femtos.div_ceil(FEMTOS_PER_MICRO)
        } else {
            tokens
        };
        u64::try_from(amount).unwrap_or(u64::MAX)
    }
}
