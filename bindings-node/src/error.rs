//! Every core error, mapped to a JS `Error` with a stable `code` and the fields a caller needs.
//!
//! The codes match the Python exception classes (`PolicyDenied` is `FOURFOLD_POLICY_DENIED`, ...).
//! The message keeps the core error's `source()` chain, joined with `: `.
//!
//! INVARIANT: no Rust panic crosses into Node. Every exported function runs its body in [`shield`]
//! (or [`shield_value`]), which turns a panic into a `FOURFOLD_PANIC` error.

use std::panic::{catch_unwind, AssertUnwindSafe};

use fourfold::context::ContextError;
use fourfold::cost::{BudgetExceeded, CostError};
use fourfold::policy::{Decision, PolicyError, PolicyLoadError};
use fourfold::trace::TraceError;
use fourfold::{ConfigError, SessionError, StoreError};
use napi::bindgen_prelude::{Env, JsObjectValue, JsValue, Status};
use serde_json::{Map, Value};

use crate::context::change_json;

/// The base code; every fourfold error has a more precise one.
pub const FOURFOLD_ERROR: &str = "FOURFOLD_ERROR";
/// The policy denied the request (Python `PolicyDenied`).
pub const FOURFOLD_POLICY_DENIED: &str = "FOURFOLD_POLICY_DENIED";
/// A review gate holds the request (Python `GatePending`).
pub const FOURFOLD_GATE_PENDING: &str = "FOURFOLD_GATE_PENDING";
/// A budget's hard limit stops the call (Python `BudgetExceeded`).
pub const FOURFOLD_BUDGET_EXCEEDED: &str = "FOURFOLD_BUDGET_EXCEEDED";
/// Sections the run read have changed since (Python `StaleContext`).
pub const FOURFOLD_STALE_CONTEXT: &str = "FOURFOLD_STALE_CONTEXT";
/// A trace file is damaged or not a trace (Python `TraceCorrupt`).
pub const FOURFOLD_TRACE_CORRUPT: &str = "FOURFOLD_TRACE_CORRUPT";
/// A configuration, budget or price table that cannot be used (Python `ConfigError`).
pub const FOURFOLD_CONFIG_ERROR: &str = "FOURFOLD_CONFIG_ERROR";
/// A policy that cannot be loaded: bad TOML, an unknown field, a bad pattern (Python
/// `InvalidPolicy`).
pub const FOURFOLD_INVALID_POLICY: &str = "FOURFOLD_INVALID_POLICY";
/// An unknown, expired or already settled approval (Python `ApprovalError`).
pub const FOURFOLD_APPROVAL_ERROR: &str = "FOURFOLD_APPROVAL_ERROR";
/// A trace could not be read or written (Python `TraceError`).
pub const FOURFOLD_TRACE_ERROR: &str = "FOURFOLD_TRACE_ERROR";
/// The context store failed (Python `ContextError`).
pub const FOURFOLD_CONTEXT_ERROR: &str = "FOURFOLD_CONTEXT_ERROR";
/// The cost meter could not record a call (Python `CostError`).
pub const FOURFOLD_COST_ERROR: &str = "FOURFOLD_COST_ERROR";
/// A model or encoding that cannot be counted or priced (Python `UnknownModel`).
pub const FOURFOLD_UNKNOWN_MODEL: &str = "FOURFOLD_UNKNOWN_MODEL";
/// The session's `Fourfold` lacks the control a call needs (Python `MissingControl`).
pub const FOURFOLD_MISSING_CONTROL: &str = "FOURFOLD_MISSING_CONTROL";
/// The durable store failed (Python `StoreError`).
pub const FOURFOLD_STORE_ERROR: &str = "FOURFOLD_STORE_ERROR";
/// A plugin could not be installed, or a JS plugin misbehaved (Python `PluginError`).
pub const FOURFOLD_PLUGIN_ERROR: &str = "FOURFOLD_PLUGIN_ERROR";
/// A malformed request or argument (Python `InvalidRequest`).
pub const FOURFOLD_INVALID_REQUEST: &str = "FOURFOLD_INVALID_REQUEST";
/// A Rust panic, caught at the edge (Python `FourfoldPanic`).
pub const FOURFOLD_PANIC: &str = "FOURFOLD_PANIC";

/// A fourfold error on its way to JS: a code, a one-line message and named fields.
#[derive(Debug)]
pub struct FourfoldError {
    code: &'static str,
    message: String,
    fields: Map<String, Value>,
}

impl FourfoldError {
    /// An error with `code` and `message` and no fields.
    pub fn new(code: &'static str, message: impl Into<String>) -> FourfoldError {
        FourfoldError {
            code,
            message: message.into(),
            fields: Map::new(),
        }
    }

    /// A bad argument from JS.
    pub fn invalid(message: impl Into<String>) -> FourfoldError {
        FourfoldError::new(FOURFOLD_INVALID_REQUEST, message)
    }

    /// Adds the field `name` (camelCase) to the JS error.
    pub fn field(mut self, name: &str, value: impl Into<Value>) -> FourfoldError {
        self.fields.insert(name.to_string(), value.into());
        self
    }

    /// The code.
    pub fn code(&self) -> &'static str {
        self.code
    }

    /// Builds the JS `Error`: `name` `FourfoldError`, the code, the message and every field.
    pub fn into_js(self, env: &Env) -> napi::Error {
        let build = || -> napi::Result<napi::Error> {
            let mut object =
                env.create_error(napi::Error::new(Status::GenericFailure, &self.message))?;
            object.set_named_property("code", self.code)?;
            object.set_named_property("name", "FourfoldError")?;
            for (name, value) in &self.fields {
                object.set_named_property(name, env.to_js_value(value)?)?;
            }
            Ok(napi::Error::from(object.to_unknown()))
        };
        build().unwrap_or_else(|_| {
            napi::Error::new(
                Status::GenericFailure,
                format!("{}: {}", self.code, self.message),
            )
        })
    }
}

/// The result of a binding body before it meets JS.
pub type Fallible<T> = Result<T, FourfoldError>;

/// Runs `body`, turning an error or a panic into a JS error.
pub fn shield<T>(env: &Env, body: impl FnOnce() -> Fallible<T>) -> napi::Result<T> {
    shield_value(body).map_err(|error| error.into_js(env))
}

/// Runs `body`, turning a panic into a `FOURFOLD_PANIC` error; for threads without a JS env.
pub fn shield_value<T>(body: impl FnOnce() -> Fallible<T>) -> Fallible<T> {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(result) => result,
        Err(payload) => {
            let detail = payload
                .downcast_ref::<&str>()
                .map(|text| text.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".to_string());
            Err(FourfoldError::new(
                FOURFOLD_PANIC,
                format!("fourfold panicked (a bug; please report it): {detail}"),
            ))
        }
    }
}

/// The message of `error` followed by each of its sources, as `a: b: c`, without repeating a
/// source that the message already spells out.
fn chain(error: &dyn std::error::Error) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        source = cause.source();
    }
    message
}

fn decision_fields(error: FourfoldError, decision: &Decision) -> FourfoldError {
    let rule = decision.rule.as_ref();
    error
        .field("reason", decision.reason.clone())
        .field("ruleId", rule.map(|rule| rule.id.clone()))
        .field("ruleFile", rule.and_then(|rule| rule.file.clone()))
        .field("ruleLine", rule.and_then(|rule| rule.line))
        .field("gates", decision.gates.clone())
        .field("approvalId", decision.approval_id.clone())
}

fn budget_fields(error: FourfoldError, exceeded: &BudgetExceeded) -> FourfoldError {
    // Counts beyond 2^53 lose precision as JS numbers; a budget that large is not a real one.
    error
        .field("budget", exceeded.budget())
        .field("unit", exceeded.unit())
        .field("limit", exceeded.limit() as f64)
        .field("spent", exceeded.spent() as f64)
        .field("reserved", exceeded.reserved() as f64)
        .field("requested", exceeded.requested() as f64)
}

/// A guard's refusal by the policy (denied, or held by a review gate) as one string, for
/// `lib/index.js` to throw as the error [`FourfoldError::into_js`] would build: U+0001, the code,
/// the message, then the decision's [`decision_line`](crate::policy::decision_line), joined by
/// NUL (a NUL in the message shown as U+FFFD). Building the error in JS costs a fraction of
/// setting its eight fields one N-API call at a time. Any other error is the addon's error.
pub fn refusal_line(error: SessionError) -> Fallible<String> {
    let (code, decision) = match &error {
        SessionError::Denied(decision) => (FOURFOLD_POLICY_DENIED, decision),
        SessionError::Pending(decision) => (FOURFOLD_GATE_PENDING, decision),
        _ => return Err(error.into()),
    };
    let decision = crate::policy::decision_line(decision);
    let message = chain(&error);
    let mut line = String::with_capacity(code.len() + message.len() + decision.len() + 3);
    line.push('\u{1}');
    line.push_str(code);
    line.push('\0');
    crate::policy::push_field(&mut line, &message);
    line.push('\0');
    line.push_str(&decision);
    Ok(line)
}

impl From<SessionError> for FourfoldError {
    fn from(error: SessionError) -> FourfoldError {
        let message = chain(&error);
        match error {
            SessionError::Denied(decision) => decision_fields(
                FourfoldError::new(FOURFOLD_POLICY_DENIED, message),
                &decision,
            ),
            SessionError::Pending(decision) => decision_fields(
                FourfoldError::new(FOURFOLD_GATE_PENDING, message),
                &decision,
            ),
            SessionError::StaleContext { decision, changes } => {
                let changes: Vec<Value> = changes.iter().map(change_json).collect();
                decision_fields(
                    FourfoldError::new(FOURFOLD_STALE_CONTEXT, message),
                    &decision,
                )
                .field("changes", changes)
            }
            SessionError::BudgetExceeded(exceeded) => budget_fields(
                FourfoldError::new(FOURFOLD_BUDGET_EXCEEDED, message),
                &exceeded,
            ),
            SessionError::Policy(error) => error.into(),
            SessionError::Cost(error) => error.into(),
            SessionError::Context(error) => error.into(),
            SessionError::Missing(control) => {
                FourfoldError::new(FOURFOLD_MISSING_CONTROL, message).field("missing", control)
            }
        }
    }
}

impl From<PolicyLoadError> for FourfoldError {
    fn from(error: PolicyLoadError) -> FourfoldError {
        let message = chain(&error);
        let mut mapped = FourfoldError::new(FOURFOLD_INVALID_POLICY, message);
        if let PolicyLoadError::Invalid(invalid) = &error {
            mapped = mapped
                .field("file", invalid.file())
                .field("line", invalid.line())
                .field("ruleId", invalid.rule_id())
                .field("reason", invalid.reason());
        }
        mapped
    }
}

impl From<PolicyError> for FourfoldError {
    fn from(error: PolicyError) -> FourfoldError {
        match error {
            PolicyError::Store(error) => error.into(),
            PolicyError::Approval(error) => {
                FourfoldError::new(FOURFOLD_APPROVAL_ERROR, chain(&error))
            }
            PolicyError::InvalidRequest(_) => {
                FourfoldError::new(FOURFOLD_INVALID_REQUEST, chain(&error))
            }
            PolicyError::InvalidGrant(_) => {
                FourfoldError::new(FOURFOLD_INVALID_POLICY, chain(&error))
            }
            other => FourfoldError::new(FOURFOLD_ERROR, chain(&other)),
        }
    }
}

impl From<StoreError> for FourfoldError {
    fn from(error: StoreError) -> FourfoldError {
        FourfoldError::new(FOURFOLD_STORE_ERROR, chain(&error))
    }
}

impl From<TraceError> for FourfoldError {
    fn from(error: TraceError) -> FourfoldError {
        let message = chain(&error);
        match &error {
            TraceError::Frame(frame) => FourfoldError::new(FOURFOLD_TRACE_CORRUPT, message)
                .field("offset", frame.offset() as f64)
                .field("frameIdx", frame.frame_idx() as f64),
            TraceError::NotATrace { .. } | TraceError::UnsupportedVersion { .. } => {
                FourfoldError::new(FOURFOLD_TRACE_CORRUPT, message).field("offset", 0)
            }
            _ => FourfoldError::new(FOURFOLD_TRACE_ERROR, message),
        }
    }
}

impl From<ContextError> for FourfoldError {
    fn from(error: ContextError) -> FourfoldError {
        match error {
            ContextError::Store(error) => error.into(),
            ContextError::InvalidKey { .. }
            | ContextError::InvalidPrefix { .. }
            | ContextError::InvalidGlob { .. } => {
                FourfoldError::new(FOURFOLD_INVALID_REQUEST, chain(&error))
            }
            other => FourfoldError::new(FOURFOLD_CONTEXT_ERROR, chain(&other)),
        }
    }
}

impl From<CostError> for FourfoldError {
    fn from(error: CostError) -> FourfoldError {
        match error {
            CostError::Exceeded(exceeded) => budget_fields(
                FourfoldError::new(FOURFOLD_BUDGET_EXCEEDED, exceeded.to_string()),
                &exceeded,
            ),
            CostError::UnknownModel(model) => {
                let message = CostError::UnknownModel(model.clone()).to_string();
                FourfoldError::new(FOURFOLD_UNKNOWN_MODEL, message).field("model", model)
            }
            CostError::Count(error) => error.into(),
            CostError::Usage(error) => error.into(),
            CostError::Budget(_) | CostError::Price(_) => {
                FourfoldError::new(FOURFOLD_CONFIG_ERROR, chain(&error))
            }
            CostError::Store(error) => error.into(),
            other => FourfoldError::new(FOURFOLD_COST_ERROR, chain(&other)),
        }
    }
}

impl From<fourfold::cost::CountError> for FourfoldError {
    fn from(error: fourfold::cost::CountError) -> FourfoldError {
        FourfoldError::new(FOURFOLD_UNKNOWN_MODEL, chain(&error))
    }
}

impl From<fourfold::cost::UsageError> for FourfoldError {
    fn from(error: fourfold::cost::UsageError) -> FourfoldError {
        FourfoldError::new(FOURFOLD_INVALID_REQUEST, chain(&error))
    }
}

impl From<ConfigError> for FourfoldError {
    fn from(error: ConfigError) -> FourfoldError {
        match error {
            ConfigError::Policy(error) => error.into(),
            ConfigError::Plugin(error) => FourfoldError::new(FOURFOLD_PLUGIN_ERROR, chain(&error)),
            other => FourfoldError::new(FOURFOLD_CONFIG_ERROR, chain(&other)),
        }
    }
}

impl From<fourfold::PluginError> for FourfoldError {
    fn from(error: fourfold::PluginError) -> FourfoldError {
        FourfoldError::new(FOURFOLD_PLUGIN_ERROR, chain(&error))
    }
}

/// Every code, for `require('fourfold').codes`.
pub const CODES: [&str; 18] = [
    FOURFOLD_ERROR,
    FOURFOLD_POLICY_DENIED,
    FOURFOLD_GATE_PENDING,
    FOURFOLD_BUDGET_EXCEEDED,
    FOURFOLD_STALE_CONTEXT,
    FOURFOLD_TRACE_CORRUPT,
    FOURFOLD_CONFIG_ERROR,
    FOURFOLD_INVALID_POLICY,
    FOURFOLD_APPROVAL_ERROR,
    FOURFOLD_TRACE_ERROR,
    FOURFOLD_CONTEXT_ERROR,
    FOURFOLD_COST_ERROR,
    FOURFOLD_UNKNOWN_MODEL,
    FOURFOLD_MISSING_CONTROL,
    FOURFOLD_STORE_ERROR,
    FOURFOLD_PLUGIN_ERROR,
    FOURFOLD_INVALID_REQUEST,
    FOURFOLD_PANIC,
];
