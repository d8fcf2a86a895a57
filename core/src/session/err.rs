//! Errors of the governed agent session.

use thiserror::Error;

use crate::context::{Change, ContextError};
use crate::cost::{BudgetExceeded, CostError};
use crate::policy::{Decision, PolicyError, PolicyLoadError};
use crate::trace::TraceError;

/// Why a session call did not go ahead. Each refusal says which control refused it, so that a
/// caller (and a trace) can tell a permission from a gate, stale context or a budget.
#[derive(Debug, Error)]
pub enum SessionError {
    /// The policy denies the request (no rule allows it, a deny rule matched, or a gate failed).
    #[error("denied: {}", .0.reason)]
    Denied(Box<Decision>),
    /// A review gate holds the request; the decision's `approval_id` names the approval.
    #[error("pending approval `{}`: {}", .0.approval_id.as_deref().unwrap_or(""), .0.reason)]
    Pending(Box<Decision>),
    /// The `context-fresh` gate holds the request: sections the agent was served have changed
    /// since, and it must re-read them ([`crate::AgentSession::reread`]) before it acts.
    #[error("stale context: {}", describe_changes(.changes))]
    StaleContext {
        /// The policy's decision.
        decision: Box<Decision>,
        /// What changed since the agent read it.
        changes: Vec<Change>,
    },
    /// A budget's hard limit stops the call or the action.
    #[error(transparent)]
    BudgetExceeded(#[from] BudgetExceeded),
    /// The policy could not judge the request (its store failed, say).
    #[error(transparent)]
    Policy(#[from] PolicyError),
    /// The cost meter refused a record (an unknown model, a malformed count).
    #[error(transparent)]
    Cost(CostError),
    /// The context store failed.
    #[error(transparent)]
    Context(#[from] ContextError),
    /// The session needs a control this instance was built without.
    #[error("this fourfold instance has no {0}")]
    Missing(&'static str),
}

impl From<CostError> for SessionError {
    fn from(error: CostError) -> SessionError {
        match error {
            CostError::Exceeded(exceeded) => SessionError::BudgetExceeded(exceeded),
            other => SessionError::Cost(other),
        }
    }
}

/// Why a `Fourfold` instance could not be built or configured.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The configuration file could not be read.
    #[error("cannot read `{path}`: {source}")]
    Read {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The configuration file is not valid.
    #[error("invalid configuration `{path}`: {reason}")]
    Invalid {
        /// The file, or `<memory>`.
        path: String,
        /// What is wrong, in one line.
        reason: String,
    },
    /// The policy could not be loaded.
    #[error(transparent)]
    Policy(#[from] PolicyLoadError),
    /// The trace sink could not be opened.
    #[error(transparent)]
    Trace(#[from] TraceError),
    /// The cost meter could not be built (a malformed price map or budget).
    #[error(transparent)]
    Cost(#[from] CostError),
    /// The context store could not be opened.
    #[error(transparent)]
    Context(#[from] ContextError),
    /// A plugin could not be installed (its name is taken).
    #[error(transparent)]
    Plugin(#[from] crate::PluginError),
}

/// One line naming each changed section and its current version.
pub(crate) fn describe_changes(changes: &[Change]) -> String {
    let parts: Vec<String> = changes
        .iter()
        .map(|change| match &change.current_pointer {
            Some(pointer) => format!(
                "`{}` {} (now at `{pointer}`)",
                change.read.key, change.reason
            ),
            None => format!("`{}`: {}", change.read.key, change.reason),
        })
        .collect();
    parts.join("; ")
}
