#![doc = include_str!("../../README.md")]
#![deny(missing_docs)]
#![deny(rustdoc::broken_intra_doc_links)]
#![deny(rustdoc::private_intra_doc_links)]
#![forbid(unsafe_code)]

pub mod context;
pub mod cost;
mod decode;
mod error;
mod event;
mod plugin;
pub mod policy;
pub mod session;
pub mod store;
pub mod tokens;
pub mod trace;

pub use error::{
    DatabaseError, EventDecodeError, InvalidKeyError, PluginError, StoreCorruptError, StoreError,
    StoreIoError,
};
pub use event::{
    ActionEvent, ActionRef, Clock, ContextEvent, CostEvent, DecisionEvent, Event, EventKind,
    FastClock, GateEvent, GateEventOutcome, ManualClock, RuleOrigin, Sequencer, ServedSection,
    SystemClock,
};
pub use plugin::{GateOutcome, Plugin, PluginRegistry};
pub use policy::{
    Access, Action, Approval, ApprovalState, Decision, DecisionError, Effect, GateDef, GateKind,
    Policy, PolicyBuilder, PolicyError, PolicyLoadError, Request, Rule, ToolRule, Verdict,
};
pub use session::{
    AgentSession, CommandGate, ConfigError, Fourfold, FourfoldBuilder, SessionError, RECORD_TOOL,
};
pub use store::{FileStore, MemoryStore, Store, ValueReader, ValueWriter};
pub use trace::{TraceError, TraceRecord, TraceWriter};

/// The version of this crate.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The tracing guide's examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../../docs/tracing.md")]
pub struct TracingGuide;

/// The session guide's example, compiled and run as a doctest.
#[cfg(doctest)]
#[doc = include_str!("../../docs/guide.md")]
pub struct SessionGuide;

/// The context guide's examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../../docs/context.md")]
pub struct ContextGuide;

/// The cost guide's examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../../docs/cost.md")]
pub struct CostGuide;
