//! The `context-fresh` gate: an action waits while a section its run was served has changed.

use std::sync::{Arc, Weak};

use parking_lot::Mutex;
use rustc_hash::FxHashMap;

use crate::context::Session;
use crate::plugin::{GateOutcome, Plugin};
use crate::policy::Request;
use crate::trace::EventKindName;

use super::err::describe_changes;

/// The name of the gate, and of the plugin that answers it.
pub const CONTEXT_FRESH_GATE: &str = "context-fresh";

/// The context sessions of live runs, by run id, so the gate can see what each run read.
#[derive(Default)]
pub(crate) struct RunSessions {
    sessions: Mutex<FxHashMap<String, Weak<Session>>>,
}

impl RunSessions {
    pub(crate) fn insert(&self, run_id: &str, session: &Arc<Session>) {
        let mut sessions = self.sessions.lock();
        // Runs that ended left dead entries; drop them as new runs come.
        sessions.retain(|_, session| session.strong_count() > 0);
        sessions.insert(run_id.to_string(), Arc::downgrade(session));
    }

    pub(crate) fn get(&self, run_id: &str) -> Option<Arc<Session>> {
        self.sessions.lock().get(run_id).and_then(Weak::upgrade)
    }
}

/// Answers the `context-fresh` gate: a request passes when every section its run was served is
/// still current, and fails (naming each changed section and where its current version is)
/// otherwise. A request without a run, or of a run that read nothing, passes: it acted on no
/// served context.
pub(crate) struct ContextFresh {
    pub(crate) runs: Arc<RunSessions>,
}

impl Plugin for ContextFresh {
    fn name(&self) -> &str {
        CONTEXT_FRESH_GATE
    }

    fn listens_to(&self, _kind: EventKindName) -> bool {
        false
    }

    fn check(&self, request: &Request) -> GateOutcome {
        let Some(session) = request
            .run_id
            .as_deref()
            .and_then(|run_id| self.runs.get(run_id))
        else {
            return GateOutcome::Pass {
                reason: "the run was served no context".into(),
            };
        };
        let changes = session.changed();
        if changes.is_empty() {
            GateOutcome::Pass {
                reason: "every section the run was served is current".into(),
            }
        } else {
            GateOutcome::Fail {
                reason: format!("stale context: {}; re-read it", describe_changes(&changes)),
            }
        }
    }
}
