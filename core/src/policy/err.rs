//! Errors of the policy: loading a policy, checking a request, resolving an approval.
//!
//! Loading errors are `#[non_exhaustive]`; [`DecisionError`], which a caller handles variant by
//! variant before a tool call, is not.

use std::path::{Path, PathBuf};

use thiserror::Error;

use crate::error::StoreError;
use crate::event::RuleOrigin;
use crate::policy::{Decision, Verdict};

/// A policy that could not be loaded. The policy is rejected whole; a reload that fails keeps the
/// policy already in force.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum PolicyLoadError {
    /// The policy file could not be read.
    #[error("cannot read policy file `{}`: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The policy is not valid: bad TOML, an unknown field, effect or gate, a glob that does not
    /// parse, a rule that can never match.
    #[error(transparent)]
    Invalid(#[from] InvalidPolicyError),
    /// The policy was loaded from a string or built in code, so there is no file to reload.
    #[error("the policy was not loaded from a file, so it cannot be reloaded")]
    NoSource,
}

/// A policy that is not valid, with where and why.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
#[error("{}{reason}", location(file.as_deref(), *line))]
pub struct InvalidPolicyError {
    file: Option<String>,
    line: Option<u32>,
    rule_id: Option<String>,
    reason: String,
}

fn location(file: Option<&str>, line: Option<u32>) -> String {
    match (file, line) {
        (Some(file), Some(line)) => format!("{file}:{line}: "),
        (Some(file), None) => format!("{file}: "),
        (None, Some(line)) => format!("line {line}: "),
        (None, None) => String::new(),
    }
}

impl InvalidPolicyError {
    pub(crate) fn new(reason: impl Into<String>) -> InvalidPolicyError {
        InvalidPolicyError {
            file: None,
            line: None,
            rule_id: None,
            reason: reason.into(),
        }
    }

    pub(crate) fn at_line(mut self, line: Option<u32>) -> InvalidPolicyError {
        self.line = self.line.or(line);
        self
    }

    pub(crate) fn in_rule(mut self, rule_id: &str) -> InvalidPolicyError {
        if self.rule_id.is_none() {
            self.rule_id = Some(rule_id.to_string());
            self.reason = format!("rule `{rule_id}`: {}", self.reason);
        }
        self
    }

    pub(crate) fn in_file(mut self, file: Option<&str>) -> InvalidPolicyError {
        self.file = self.file.or(file.map(str::to_string));
        self
    }

    /// The policy file, if the policy came from one.
    pub fn file(&self) -> Option<&str> {
        self.file.as_deref()
    }

    /// The 1-based line of the problem, where known.
    pub fn line(&self) -> Option<u32> {
        self.line
    }

    /// The id of the rule at fault, where there is one.
    pub fn rule_id(&self) -> Option<&str> {
        self.rule_id.as_deref()
    }

    /// Why the policy is not valid.
    pub fn reason(&self) -> &str {
        &self.reason
    }
}

impl PolicyLoadError {
    pub(crate) fn read(path: &Path, source: std::io::Error) -> PolicyLoadError {
        PolicyLoadError::Read {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// A check or an approval could not be carried out (the decision itself is never an error of this
/// type: a denial is a [`Decision`]).
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum PolicyError {
    /// The store of pending approvals failed. The request is not allowed.
    #[error("approval store failed: {0}")]
    Store(#[from] StoreError),
    /// A request that cannot be judged: it is malformed (for example, a tool call whose arguments
    /// are not a JSON object).
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// Approving or rejecting failed.
    #[error(transparent)]
    Approval(#[from] ApprovalError),
    /// A scope grant is not valid.
    #[error(transparent)]
    InvalidGrant(#[from] InvalidPolicyError),
}

/// Approving or rejecting a pending approval failed.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum ApprovalError {
    /// No approval has this id.
    #[error("no approval with id `{0}`")]
    Unknown(String),
    /// The approval was already approved, rejected, used or expired.
    #[error("approval `{id}` is already {state}")]
    AlreadyResolved {
        /// The approval id.
        id: String,
        /// Its state: `approved`, `rejected`, `used` or `expired`.
        state: &'static str,
    },
    /// The approval expired before it was resolved.
    #[error("approval `{0}` expired before it was resolved")]
    Expired(String),
    /// Another process resolved the approval at the same moment; read it again.
    #[error("approval `{0}` was changed by someone else; try again")]
    Conflict(String),
}

/// A decision that does not allow the request, as an error: what [`Decision::into_result`] returns,
/// so that `?` stops a tool call that may not run. Handle each variant.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum DecisionError {
    /// The request is denied.
    #[error("denied: {}", .0.reason)]
    Denied(Box<Decision>),
    /// The request waits on a review gate; `approval_id` names the pending approval.
    #[error("pending approval `{}`: {}", .0.approval_id.as_deref().unwrap_or(""), .0.reason)]
    Pending(Box<Decision>),
}

impl DecisionError {
    /// The decision behind the error.
    pub fn decision(&self) -> &Decision {
        match self {
            DecisionError::Denied(decision) | DecisionError::Pending(decision) => decision,
        }
    }

    /// The rule that decided, if any.
    pub fn rule(&self) -> Option<&RuleOrigin> {
        self.decision().rule.as_ref()
    }

    pub(crate) fn from_decision(decision: Decision) -> Result<Decision, DecisionError> {
        match decision.verdict {
            Verdict::Allow => Ok(decision),
            Verdict::Deny => Err(DecisionError::Denied(Box::new(decision))),
            Verdict::Pending => Err(DecisionError::Pending(Box::new(decision))),
        }
    }
}
