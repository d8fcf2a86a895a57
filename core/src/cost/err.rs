//! Errors of the cost meter: counting, loading prices, reading usage, setting and enforcing budgets.
//!
//! Loading and parsing errors are `#[non_exhaustive]`; [`BudgetExceeded`], which a caller handles
//! before a model call, is a plain struct.

use thiserror::Error;

/// A model or encoding name that cannot be counted with.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum CountError {
    /// The name is empty.
    #[error("empty model or encoding name")]
    EmptyName,
    /// An encoding fourfold does not have (it has `o200k_base` and `cl100k_base`).
    #[error("unknown encoding `{0}`; expected `o200k_base` or `cl100k_base`")]
    UnknownEncoding(String),
}

/// A price table that could not be loaded, or a price that cannot be used.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum PriceError {
    /// The price map is not LiteLLM's format.
    #[error("malformed price map: {0}")]
    Malformed(String),
    /// A price is not a finite, non-negative number that fits.
    #[error("invalid price `{field}` of model `{model}`: {reason}")]
    InvalidPrice {
        /// The model whose price it is (empty for a price given in code).
        model: String,
        /// The field, such as `input_cost_per_token`.
        field: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A currency code fourfold does not know.
    #[error("unknown currency `{0}`; use an ISO 4217 code such as `USD`")]
    UnknownCurrency(String),
}

impl PriceError {
    pub(crate) fn invalid(model: &str, field: &str, reason: impl Into<String>) -> PriceError {
        PriceError::InvalidPrice {
            model: model.to_string(),
            field: field.to_string(),
            reason: reason.into(),
        }
    }
}

/// A provider usage object or token counts that cannot be recorded.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum UsageError {
    /// Not a usage object of the provider named.
    #[error("malformed usage: {0}")]
    Malformed(String),
    /// A required count is absent.
    #[error("usage has no `{0}`")]
    Missing(String),
    /// A count is negative.
    #[error("usage count `{0}` is negative")]
    Negative(String),
    /// A count, or a sum of counts, does not fit in 64 bits.
    #[error("usage count `{0}` overflows")]
    Overflow(String),
    /// Counts that contradict each other (more cached tokens than prompt tokens).
    #[error("inconsistent usage: {0}")]
    Inconsistent(String),
}

/// A budget that cannot be set.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum BudgetError {
    /// A limit that is NaN, infinite, negative or too large.
    #[error("invalid {which} limit of budget `{budget}`: {reason}")]
    InvalidLimit {
        /// The budget, as `scope/unit`.
        budget: String,
        /// `soft` or `hard`.
        which: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// A soft limit above the hard limit.
    #[error("budget `{0}` has a soft limit above its hard limit")]
    SoftAboveHard(String),
    /// A budget without any limit.
    #[error("budget `{0}` has neither a soft nor a hard limit")]
    NoLimit(String),
    /// A rolling window of zero length.
    #[error("budget `{0}` has a rolling window of zero seconds")]
    EmptyWindow(String),
    /// A money budget in another currency than the meter's prices.
    #[error("budget `{budget}` is in `{budget_currency}` but prices are in `{price_currency}`")]
    CurrencyMismatch {
        /// The budget.
        budget: String,
        /// Its currency.
        budget_currency: String,
        /// The price table's currency.
        price_currency: String,
    },
    /// An empty scope name, such as an agent budget for agent ``.
    #[error("budget scope `{0}` names nobody")]
    EmptyScope(String),
    /// A scope that is not `fleet`, `agent:NAME`, `task:ID` or `run:ID`.
    #[error("budget scope `{0}` is not `fleet`, `agent:NAME`, `task:ID` or `run:ID`")]
    UnknownScope(String),
}

/// A reservation refused because it would cross a hard limit. Nothing was reserved.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
#[error(
    "budget `{budget}` would be exceeded: {spent} spent and {reserved} reserved of {limit} {unit}, {requested} more asked"
)]
pub struct BudgetExceeded {
    budget: String,
    unit: String,
    limit: u128,
    spent: u128,
    reserved: u128,
    requested: u128,
}

impl BudgetExceeded {
    pub(crate) fn new(
        budget: String,
        unit: String,
        limit: u128,
        spent: u128,
        reserved: u128,
        requested: u128,
    ) -> BudgetExceeded {
        BudgetExceeded {
            budget,
            unit,
            limit,
            spent,
            reserved,
            requested,
        }
    }

    /// The budget, as `scope/unit` (`agent:coder/tokens`, `fleet/USD`).
    pub fn budget(&self) -> &str {
        &self.budget
    }

    /// The budget's unit: `tokens`, or a currency's micro-units such as `USD micros`.
    pub fn unit(&self) -> &str {
        &self.unit
    }

    /// The hard limit.
    pub fn limit(&self) -> u128 {
        self.limit
    }

    /// What was spent in the budget's window.
    pub fn spent(&self) -> u128 {
        self.spent
    }

    /// What other reservations hold.
    pub fn reserved(&self) -> u128 {
        self.reserved
    }

    /// What the refused reservation asked for.
    pub fn requested(&self) -> u128 {
        self.requested
    }
}

/// Any failure of the cost meter. Nothing recorded before it is lost.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum CostError {
    /// A model or encoding name that cannot be counted with.
    #[error(transparent)]
    Count(#[from] CountError),
    /// A bad price table or price.
    #[error(transparent)]
    Price(#[from] PriceError),
    /// A bad usage object or counts.
    #[error(transparent)]
    Usage(#[from] UsageError),
    /// A budget that cannot be set.
    #[error(transparent)]
    Budget(#[from] BudgetError),
    /// A hard limit would be crossed.
    #[error(transparent)]
    Exceeded(#[from] BudgetExceeded),
    /// A model the price table does not know, with the meter set to refuse unknown models.
    #[error("no price for model `{0}`; add it to the price table or allow unknown models at zero")]
    UnknownModel(String),
    /// The store that holds fleet budgets failed; nothing was reserved or recorded by the call.
    #[error(transparent)]
    Store(#[from] crate::StoreError),
    /// Writing or reading the ledger file failed.
    #[error("cost ledger `{path}`: {source}")]
    Ledger {
        /// The ledger file.
        path: std::path::PathBuf,
        /// What failed.
        #[source]
        source: std::io::Error,
    },
    /// A ledger line that is not a cost record.
    #[error("cost ledger `{path}` line {line}: {reason}")]
    LedgerCorrupt {
        /// The ledger file.
        path: std::path::PathBuf,
        /// The 1-based line.
        line: u64,
        /// What is wrong with it.
        reason: String,
    },
}
