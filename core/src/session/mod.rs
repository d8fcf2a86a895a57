//! The governed agent session: the four controls as one system.
//!
//! [`Fourfold`] builds the Policy, Tracer, ContextStore and CostMeter around one plugin registry,
//! so that each sees the others' events, and adds the gates that join them: `context-fresh` (an
//! action waits while a section its run read has changed) and `budget` (the CostMeter's). Each
//! run of an agent is an [`AgentSession`], through which a framework guards tool calls, asks for
//! context, meters model calls and records decisions and actions, all under one run id, so a
//! trace can say why an action failed.

mod agent;
mod command;
mod config;
mod err;
mod fourfold;
mod fresh;

pub use agent::{document_read, AgentSession, RECORD_TOOL};
pub(crate) use command::command_line;
pub use command::CommandGate;
pub use config::policy_from_config;
pub use err::{ConfigError, SessionError};
pub use fourfold::{ContextScope, Fourfold, FourfoldBuilder};
pub use fresh::CONTEXT_FRESH_GATE;
