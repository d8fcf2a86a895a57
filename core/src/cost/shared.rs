//! Budgets kept outside the process, which every process of a fleet spends against together.
//!
//! The meter holds them behind [`SharedBudgets`], so it does not depend on where they live; the
//! PostgreSQL backend ([`super::FleetBudgets`], feature `postgres`) is the one fourfold ships.
//! A shared budget has a hard limit over its lifetime; soft limits and rolling windows stay with
//! the meter's own budgets.

use std::sync::Arc;

use super::budget::{Budget, BudgetState, Scope, Window};
use super::err::{BudgetError, CostError};
use super::price::FEMTOS_PER_MICRO;

/// A shared budget's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FleetStanding {
    /// The hard limit.
    pub hard: u64,
    /// What was committed.
    pub spent: u64,
    /// What live reservations hold.
    pub reserved: u64,
}

/// Where shared budgets live. Amounts are tokens, or millionths of the currency for money budgets.
pub trait SharedBudgets: Send + Sync + std::fmt::Debug {
    /// Creates budget `name` with limit `hard`, or changes its limit (keeping what was spent).
    fn define(&self, name: &str, hard: u64) -> Result<(), CostError>;
    /// Holds `amount` against `name`, or fails with [`CostError::Exceeded`] holding nothing.
    /// Returns the hold's id.
    fn hold(&self, name: &str, amount: u64) -> Result<u64, CostError>;
    /// Releases hold `hold` of `name` and adds `actual` to what was spent.
    fn settle(&self, name: &str, hold: u64, actual: u64) -> Result<(), CostError>;
    /// Releases hold `hold` without spending (the call did not happen).
    fn release(&self, hold: u64) -> Result<(), CostError>;
    /// Adds `amount` to what `name` spent, without a hold.
    fn spend(&self, name: &str, amount: u64) -> Result<(), CostError>;
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
}

impl SharedLimit {
    /// Checks `budget` as the meter checks its own, then defines it in `backend`.
    pub(crate) fn define(
        backend: Arc<dyn SharedBudgets>,
        budget: Budget,
        price_currency: &str,
    ) -> Result<SharedLimit, CostError> {
        let name = budget.name();
        if budget.soft.is_some() || budget.window != Window::Lifetime {
            return Err(BudgetError::InvalidLimit {
                budget: name,
                which: "shared",
                reason: "a shared budget has a hard limit over its lifetime only (no soft limit, no window)".into(),
            }
            .into());
        }
        let scope = budget.scope.clone();
        let state = BudgetState::new(budget, price_currency)?;
        let hard = state.hard.unwrap_or(0);
        let hard = if state.is_money {
            hard / FEMTOS_PER_MICRO
        } else {
            hard
        };
        let hard = u64::try_from(hard).map_err(|_| BudgetError::InvalidLimit {
            budget: name.clone(),
            which: "hard",
            reason: "it is too large for a shared budget".into(),
        })?;
        backend.define(&name, hard)?;
        Ok(SharedLimit {
            backend,
            name,
            scope,
            is_money: state.is_money,
        })
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
