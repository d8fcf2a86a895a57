//! Plugins: listeners that observe every event, and named gate checks.
//!
//! A [`Plugin`] is installed in a [`PluginRegistry`], which every control shares. The registry hands
//! each [`Event`] to every plugin's [`Plugin::on_event`], and a policy rule whose effect is `gate`
//! with a gate backed by a plugin calls that plugin's [`Plugin::check`].
//!
//! A plugin that panics never takes the agent down: the panic is caught, a gate check that panicked
//! fails (fail closed), and the registry counts listener panics in [`PluginRegistry::n_panics`].

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;

use parking_lot::RwLock;

use crate::error::PluginError;
use crate::event::Event;
use crate::policy::Request;
use crate::trace::EventKindName;

/// An extension of fourfold: an event listener, a gate check, or both.
pub trait Plugin: Send + Sync {
    /// The plugin's name, unique in a registry. A gate backed by this plugin uses the same name.
    fn name(&self) -> &str;

    /// Called with every event the controls emit, on the thread that emitted it. Keep it short;
    /// hand slow work to a thread of your own.
    fn on_event(&self, event: &Event) {
        let _ = event;
    }

    /// Whether `on_event` wants events of `kind`. The controls do not build an event that no
    /// installed plugin wants, so a plugin that ignores some kinds should say so: a gate check
    /// that never listens then costs the checks nothing.
    fn listens_to(&self, kind: EventKindName) -> bool {
        let _ = kind;
        true
    }

    /// Judges a request held by a gate of this plugin's name. The default fails, so that a gate
    /// named after a plugin without a check can never pass by accident.
    fn check(&self, request: &Request) -> GateOutcome {
        let _ = request;
        GateOutcome::Fail {
            reason: format!("plugin `{}` has no gate check", self.name()),
        }
    }
}

/// What a gate check says about a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GateOutcome {
    /// The gate passes.
    Pass {
        /// Why, in one line.
        reason: String,
    },
    /// The gate fails: the request is denied.
    Fail {
        /// Why, in one line.
        reason: String,
    },
    /// The gate cannot decide yet (a human must look, a check is still running): the request waits
    /// as a pending approval.
    Pending {
        /// Why, in one line.
        reason: String,
    },
}

/// The plugins installed in one fourfold instance.
#[derive(Default)]
pub struct PluginRegistry {
    // INVARIANT: the vector is replaced, never mutated in place, so that `emit` can call plugins on a
    // snapshot without holding the lock (a plugin may install another plugin from its callback).
    plugins: RwLock<Arc<Vec<Arc<dyn Plugin>>>>,
    n_panics: AtomicU64,
    // INVARIANT: bit `kind as u8` is set when an installed plugin listens to `kind`; recomputed
    // under the write lock whenever the plugin list changes.
    listening: AtomicU8,
}

impl std::fmt::Debug for PluginRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginRegistry")
            .field("plugins", &self.names())
            .field("n_panics", &self.n_panics())
            .finish()
    }
}

impl PluginRegistry {
    /// An empty registry.
    pub fn new() -> PluginRegistry {
        PluginRegistry::default()
    }

    /// Installs `plugin`. Fails if its name is invalid or already taken.
    pub fn install(&self, plugin: Arc<dyn Plugin>) -> Result<(), PluginError> {
        let name = plugin.name().to_string();
        if !is_valid_name(&name) {
            return Err(PluginError::InvalidName(name));
        }
        let mut plugins = self.plugins.write();
        if plugins.iter().any(|installed| installed.name() == name) {
            return Err(PluginError::DuplicateName(name));
        }
        let mut next: Vec<Arc<dyn Plugin>> = plugins.as_ref().clone();
        next.push(plugin);
        self.listening.store(listening(&next), Ordering::Release);
        *plugins = Arc::new(next);
        Ok(())
    }

    /// Removes the plugin named `name`; returns whether one was installed.
    pub fn remove(&self, name: &str) -> bool {
        let mut plugins = self.plugins.write();
        let next: Vec<Arc<dyn Plugin>> = plugins
            .iter()
            .filter(|installed| installed.name() != name)
            .cloned()
            .collect();
        let removed = next.len() != plugins.len();
        self.listening.store(listening(&next), Ordering::Release);
        *plugins = Arc::new(next);
        removed
    }

    /// The plugin named `name`, if installed.
    pub fn get(&self, name: &str) -> Option<Arc<dyn Plugin>> {
        self.snapshot()
            .iter()
            .find(|installed| installed.name() == name)
            .cloned()
    }

    /// The names of the installed plugins, in installation order.
    pub fn names(&self) -> Vec<String> {
        self.snapshot()
            .iter()
            .map(|installed| installed.name().to_string())
            .collect()
    }

    /// Whether no plugin is installed.
    pub fn is_empty(&self) -> bool {
        self.plugins.read().is_empty()
    }

    /// Whether an installed plugin listens to events of `kind` (the controls skip building
    /// events nobody listens to).
    pub fn listens(&self, kind: EventKindName) -> bool {
        self.listening.load(Ordering::Acquire) & (1 << kind as u8) != 0
    }

    /// Hands `event` to every installed plugin. A plugin that panics is skipped and counted.
    pub fn emit(&self, event: &Event) {
        for plugin in self.snapshot().iter() {
            if catch_unwind(AssertUnwindSafe(|| plugin.on_event(event))).is_err() {
                self.n_panics.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Runs the gate check of the plugin named `gate` on `request`. A missing plugin leaves the
    /// request pending (a human can still resolve it); a panicking check fails.
    pub fn check_gate(&self, gate: &str, request: &Request) -> GateOutcome {
        let Some(plugin) = self.get(gate) else {
            return GateOutcome::Pending {
                reason: format!("no plugin named `{gate}` is installed to check this gate"),
            };
        };
        match catch_unwind(AssertUnwindSafe(|| plugin.check(request))) {
            Ok(outcome) => outcome,
            Err(_) => {
                self.n_panics.fetch_add(1, Ordering::Relaxed);
                GateOutcome::Fail {
                    reason: format!("gate check of plugin `{gate}` panicked"),
                }
            }
        }
    }

    /// How many plugin calls have panicked since the registry was made.
    pub fn n_panics(&self) -> u64 {
        self.n_panics.load(Ordering::Relaxed)
    }

    fn snapshot(&self) -> Arc<Vec<Arc<dyn Plugin>>> {
        self.plugins.read().clone()
    }
}

/// The bitmask of the event kinds some plugin of `plugins` listens to.
fn listening(plugins: &[Arc<dyn Plugin>]) -> u8 {
    let mut mask = 0;
    for kind in EventKindName::ALL {
        if plugins.iter().any(|plugin| plugin.listens_to(kind)) {
            mask |= 1 << kind as u8;
        }
    }
    mask
}

fn is_valid_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::Request;
    use parking_lot::Mutex;

    struct Recorder {
        name: String,
        seen: Mutex<Vec<u64>>,
    }

    impl Plugin for Recorder {
        fn name(&self) -> &str {
            &self.name
        }
        fn on_event(&self, event: &Event) {
            self.seen.lock().push(event.seq);
        }
    }

    struct Panicker;

    impl Plugin for Panicker {
        fn name(&self) -> &str {
            "panicker"
        }
        fn on_event(&self, _event: &Event) {
            panic!("listener bug");
        }
        fn check(&self, _request: &Request) -> GateOutcome {
            panic!("gate bug");
        }
    }

    struct CostOnly;

    impl Plugin for CostOnly {
        fn name(&self) -> &str {
            "cost-only"
        }
        fn listens_to(&self, kind: EventKindName) -> bool {
            kind == EventKindName::Cost
        }
    }

    #[test]
    fn the_registry_knows_which_kinds_anyone_listens_to() {
        let registry = PluginRegistry::new();
        let listened = |registry: &PluginRegistry| -> Vec<&'static str> {
            EventKindName::ALL
                .into_iter()
                .filter(|kind| registry.listens(*kind))
                .map(EventKindName::name)
                .collect()
        };
        assert!(listened(&registry).is_empty());
        registry.install(Arc::new(CostOnly)).unwrap();
        assert_eq!(listened(&registry), ["cost"]);
        let recorder = Arc::new(Recorder {
            name: "recorder".into(),
            seen: Mutex::new(Vec::new()),
        });
        registry.install(recorder).unwrap();
        assert_eq!(listened(&registry).len(), 5);
        assert!(registry.remove("recorder"));
        assert_eq!(listened(&registry), ["cost"]);
        assert!(registry.remove("cost-only"));
        assert!(listened(&registry).is_empty());
    }

    fn event(seq: u64) -> Event {
        Event {
            run_id: "r".into(),
            agent_id: "a".into(),
            task_id: None,
            seq,
            timestamp_ns: 0,
            span_id: None,
            parent_span_id: None,
            kind: crate::event::EventKind::Decision(crate::event::DecisionEvent {
                choice: "c".into(),
                rationale: String::new(),
                alternatives: vec![],
            }),
        }
    }

    fn recorder(name: &str) -> Arc<Recorder> {
        Arc::new(Recorder {
            name: name.into(),
            seen: Mutex::new(vec![]),
        })
    }

    #[test]
    fn emit_reaches_every_plugin_and_survives_a_panic() {
        let registry = PluginRegistry::new();
        let first = recorder("first");
        let second = recorder("second");
        registry.install(first.clone()).unwrap();
        registry.install(Arc::new(Panicker)).unwrap();
        registry.install(second.clone()).unwrap();
        registry.emit(&event(1));
        registry.emit(&event(2));
        assert_eq!(*first.seen.lock(), vec![1, 2]);
        assert_eq!(*second.seen.lock(), vec![1, 2]);
        assert_eq!(registry.n_panics(), 2);
    }

    #[test]
    fn names_are_unique_and_valid() {
        let registry = PluginRegistry::new();
        registry.install(recorder("a")).unwrap();
        assert_eq!(
            registry.install(recorder("a")),
            Err(PluginError::DuplicateName("a".into()))
        );
        assert_eq!(
            registry.install(recorder("has space")),
            Err(PluginError::InvalidName("has space".into()))
        );
        assert!(registry.remove("a"));
        assert!(!registry.remove("a"));
        registry.install(recorder("a")).unwrap();
    }

    #[test]
    fn gate_checks_fail_closed() {
        let registry = PluginRegistry::new();
        let request = Request::read("coder", "src/lib.rs");
        assert!(matches!(
            registry.check_gate("missing", &request),
            GateOutcome::Pending { .. }
        ));
        registry.install(Arc::new(Panicker)).unwrap();
        assert!(matches!(
            registry.check_gate("panicker", &request),
            GateOutcome::Fail { .. }
        ));
        registry.install(recorder("listener-only")).unwrap();
        assert!(matches!(
            registry.check_gate("listener-only", &request),
            GateOutcome::Fail { .. }
        ));
    }
}
