//! Budgets: limits on the tokens or money of an agent, a task, a run or the whole fleet.

use std::collections::VecDeque;
use std::fmt;

use serde::{Deserialize, Serialize};

use super::err::BudgetError;
use super::price::{currency, FEMTOS_PER_MICRO};

/// Whose spending a budget limits.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// Every call of every agent.
    Fleet,
    /// The calls of one agent.
    Agent(String),
    /// The calls made for one task.
    Task(String),
    /// The calls of one run.
    Run(String),
}

impl Scope {
    /// Whether a call of `agent`, for `task`, in `run`, counts against this scope.
    pub fn covers(&self, agent: &str, task: Option<&str>, run: Option<&str>) -> bool {
        match self {
            Scope::Fleet => true,
            Scope::Agent(name) => name == agent,
            Scope::Task(name) => task == Some(name.as_str()),
            Scope::Run(name) => run == Some(name.as_str()),
        }
    }
}

impl std::str::FromStr for Scope {
    type Err = BudgetError;

    /// Reads `fleet`, `agent:NAME`, `task:ID` or `run:ID`, the form `fourfold.toml` and the
    /// bindings use.
    fn from_str(text: &str) -> Result<Scope, BudgetError> {
        match text.split_once(':') {
            None if text == "fleet" => Ok(Scope::Fleet),
            Some(("agent", name)) if !name.is_empty() => Ok(Scope::Agent(name.to_string())),
            Some(("task", id)) if !id.is_empty() => Ok(Scope::Task(id.to_string())),
            Some(("run", id)) if !id.is_empty() => Ok(Scope::Run(id.to_string())),
            _ => Err(BudgetError::UnknownScope(text.to_string())),
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scope::Fleet => f.write_str("fleet"),
            Scope::Agent(name) => write!(f, "agent:{name}"),
            Scope::Task(name) => write!(f, "task:{name}"),
            Scope::Run(name) => write!(f, "run:{name}"),
        }
    }
}

/// What a budget counts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BudgetUnit {
    /// All tokens of a call: the whole prompt and the output.
    Tokens,
    /// Money, in a currency (an ISO 4217 code, the same as the price table's).
    Money(String),
}

/// Over what time a budget counts spending.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Window {
    /// Everything since the meter started.
    Lifetime,
    /// The last so many seconds, sliding.
    Rolling {
        /// The window's length, in seconds.
        seconds: u64,
    },
}

/// A budget: a scope, a unit, a window, and a soft limit (a warning event when crossed), a hard
/// limit (reservations that would cross it are refused), or both.
///
/// Limits are given as `f64` (tokens, or currency units such as `12.5` dollars) and checked when
/// the budget is added to a meter: NaN, infinite, negative and oversized limits are errors.
///
/// ```
/// use fourfold::cost::{Budget, Scope};
/// let budget = Budget::money(Scope::Agent("coder".into()), "USD").soft(8.0).hard(10.0);
/// assert_eq!(budget.name(), "agent:coder/USD");
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Budget {
    /// Whose spending it limits.
    pub scope: Scope,
    /// What it counts.
    pub unit: BudgetUnit,
    /// Over what time.
    pub window: Window,
    /// The warning threshold, in tokens or currency units.
    pub soft: Option<f64>,
    /// The limit that is never crossed, in tokens or currency units.
    pub hard: Option<f64>,
}

impl Budget {
    /// A lifetime token budget on `scope`, with no limits yet.
    pub fn tokens(scope: Scope) -> Budget {
        Budget {
            scope,
            unit: BudgetUnit::Tokens,
            window: Window::Lifetime,
            soft: None,
            hard: None,
        }
    }

    /// A lifetime money budget on `scope` in `currency`, with no limits yet.
    pub fn money(scope: Scope, currency: &str) -> Budget {
        Budget {
            scope,
            unit: BudgetUnit::Money(currency.to_string()),
            window: Window::Lifetime,
            soft: None,
            hard: None,
        }
    }

    /// The same budget with a soft limit.
    pub fn soft(mut self, limit: f64) -> Budget {
        self.soft = Some(limit);
        self
    }

    /// The same budget with a hard limit.
    pub fn hard(mut self, limit: f64) -> Budget {
        self.hard = Some(limit);
        self
    }

    /// The same budget over a rolling window of `seconds`.
    pub fn rolling(mut self, seconds: u64) -> Budget {
        self.window = Window::Rolling { seconds };
        self
    }

    /// The budget's name: `scope/unit`, as `agent:coder/tokens` or `fleet/USD`.
    pub fn name(&self) -> String {
        match &self.unit {
            BudgetUnit::Tokens => format!("{}/tokens", self.scope),
            BudgetUnit::Money(currency) => format!("{}/{currency}", self.scope),
        }
    }
}

/// A budget being enforced: its limits in whole units (tokens, or femto-units of money), what was
/// spent in its window and what reservations hold.
#[derive(Debug)]
pub(crate) struct BudgetState {
    pub(crate) budget: Budget,
    pub(crate) name: String,
    pub(crate) is_money: bool,
    pub(crate) soft: Option<u128>,
    pub(crate) hard: Option<u128>,
    window_ns: Option<u64>,
    // INVARIANT: with a rolling window, `spent` is the sum of `history`'s amounts, once
    // `expire` has dropped the entries older than the window.
    spent: u128,
    history: VecDeque<(u64, u128)>,
    pub(crate) reserved: u128,
    pub(crate) soft_warned: bool,
}

impl BudgetState {
    /// Checks `budget` against the price table's currency and converts its limits.
    pub(crate) fn new(budget: Budget, price_currency: &str) -> Result<BudgetState, BudgetError> {
        let name = budget.name();
        match &budget.scope {
            Scope::Agent(scope) | Scope::Task(scope) | Scope::Run(scope) if scope.is_empty() => {
                return Err(BudgetError::EmptyScope(budget.scope.to_string()))
            }
            _ => {}
        }
        let is_money = match &budget.unit {
            BudgetUnit::Tokens => false,
            BudgetUnit::Money(code) => {
                currency(code).map_err(|_| BudgetError::InvalidLimit {
                    budget: name.clone(),
                    which: "currency",
                    reason: format!("unknown currency `{code}`"),
                })?;
                if code != price_currency {
                    return Err(BudgetError::CurrencyMismatch {
                        budget: name,
                        budget_currency: code.clone(),
                        price_currency: price_currency.to_string(),
                    });
                }
                true
            }
        };
        let soft = budget
            .soft
            .map(|limit| whole_units(limit, is_money, &name, "soft"))
            .transpose()?;
        let hard = budget
            .hard
            .map(|limit| whole_units(limit, is_money, &name, "hard"))
            .transpose()?;
        if soft.is_none() && hard.is_none() {
            return Err(BudgetError::NoLimit(name));
        }
        if let (Some(soft), Some(hard)) = (soft, hard) {
            if soft > hard {
                return Err(BudgetError::SoftAboveHard(name));
            }
        }
        let window_ns = match budget.window {
            Window::Lifetime => None,
            Window::Rolling { seconds: 0 } => return Err(BudgetError::EmptyWindow(name)),
            Window::Rolling { seconds } => Some(seconds.saturating_mul(1_000_000_000)),
        };
        Ok(BudgetState {
            budget,
            name,
            is_money,
            soft,
            hard,
            window_ns,
            spent: 0,
            history: VecDeque::new(),
            reserved: 0,
            soft_warned: false,
        })
    }

    /// The budget's unit as error messages and events write it.
    pub(crate) fn unit_name(&self) -> String {
        match &self.budget.unit {
            BudgetUnit::Tokens => "tokens".into(),
            BudgetUnit::Money(currency) => format!("{currency} femto-units"),
        }
    }

    /// Drops spending older than the window, as of `now_ns`.
    pub(crate) fn expire(&mut self, now_ns: u64) {
        let Some(window_ns) = self.window_ns else {
            return;
        };
        let oldest = now_ns.saturating_sub(window_ns);
        while let Some(&(at_ns, amount)) = self.history.front() {
            if at_ns > oldest {
                break;
            }
            self.spent -= amount;
            self.history.pop_front();
        }
    }

    /// What was spent in the window (call [`BudgetState::expire`] first).
    pub(crate) fn spent(&self) -> u128 {
        self.spent
    }

    /// Adds `amount` spent at `now_ns`.
    pub(crate) fn spend(&mut self, amount: u128, now_ns: u64) {
        self.spent = self.spent.saturating_add(amount);
        if self.window_ns.is_some() && amount > 0 {
            self.history.push_back((now_ns, amount));
        }
    }

    /// Whether `amount` more fits under the hard limit beside what is spent and reserved.
    pub(crate) fn fits(&self, amount: u128) -> bool {
        match self.hard {
            None => true,
            Some(hard) => self
                .spent
                .checked_add(self.reserved)
                .and_then(|sum| sum.checked_add(amount))
                .is_some_and(|sum| sum <= hard),
        }
    }
}

/// `limit` (tokens or currency units) in whole tokens or femto-units.
fn whole_units(
    limit: f64,
    is_money: bool,
    budget: &str,
    which: &'static str,
) -> Result<u128, BudgetError> {
    let invalid = |reason: &str| BudgetError::InvalidLimit {
        budget: budget.to_string(),
        which,
        reason: reason.to_string(),
    };
    if limit.is_nan() {
        return Err(invalid("it is not a number"));
    }
    if limit.is_infinite() {
        return Err(invalid("it is infinite"));
    }
    if limit < 0.0 {
        return Err(invalid("it is negative"));
    }
    if is_money {
        // Money limits are read to the micro-unit, then held in femto-units.
        let micros = (limit * 1e6).round();
        if micros >= 1e30 {
            return Err(invalid("it is too large"));
        }
        Ok(micros as u128 * FEMTOS_PER_MICRO)
    } else {
        if limit.fract() != 0.0 {
            return Err(invalid("a token limit must be a whole number"));
        }
        if limit >= u64::MAX as f64 {
            return Err(invalid("it is too large"));
        }
        Ok(limit as u128)
    }
}

#[cfg(test)]
mod tests {
    // Covers limit validation and the rolling window's bookkeeping.
    use super::*;

    fn state(budget: Budget) -> Result<BudgetState, BudgetError> {
        BudgetState::new(budget, "USD")
    }

    #[test]
    fn scopes_parse_from_their_display_form() {
        let check = |text: &str, expected: Option<Scope>| {
            assert_eq!(text.parse::<Scope>().ok(), expected, "{text}");
            if let Some(scope) = expected {
                assert_eq!(scope.to_string(), text);
            }
        };
        check("fleet", Some(Scope::Fleet));
        check("agent:coder", Some(Scope::Agent("coder".into())));
        check("task:T-1", Some(Scope::Task("T-1".into())));
        check("run:r:1", Some(Scope::Run("r:1".into())));
        check("agent:", None);
        check("team:a", None);
        check("Fleet", None);
        check("", None);
    }

    #[test]
    fn bad_limits_are_errors() {
        let agent = || Scope::Agent("a".into());
        let cases = [
            Budget::tokens(agent()).hard(f64::NAN),
            Budget::tokens(agent()).soft(f64::INFINITY),
            Budget::money(agent(), "USD").hard(-1.0),
            Budget::tokens(agent()).hard(1.5),
            Budget::tokens(agent()).hard(1e30),
            Budget::tokens(agent()),
            Budget::tokens(agent()).soft(10.0).hard(5.0),
            Budget::tokens(agent()).hard(5.0).rolling(0),
            Budget::money(agent(), "EUR").hard(5.0),
            Budget::money(agent(), "DOGE").hard(5.0),
            Budget::tokens(Scope::Task(String::new())).hard(5.0),
        ];
        for budget in cases {
            assert!(state(budget.clone()).is_err(), "{budget:?}");
        }
        let money = state(Budget::money(agent(), "USD").hard(0.000_001)).unwrap();
        assert_eq!(money.hard, Some(FEMTOS_PER_MICRO));
    }

    #[test]
    fn rolling_window_forgets_old_spending() {
        let mut budget = state(Budget::tokens(Scope::Fleet).hard(100.0).rolling(10)).unwrap();
        budget.spend(60, 1_000_000_000);
        budget.spend(30, 5_000_000_000);
        budget.expire(10_000_000_000);
        assert_eq!(budget.spent(), 90);
        assert!(!budget.fits(11));
        budget.expire(11_000_000_001);
        assert_eq!(budget.spent(), 30);
        assert!(budget.fits(70));
        assert!(!budget.fits(71));
    }
}
