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
