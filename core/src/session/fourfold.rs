//! `Fourfold`: the four controls built around one plugin registry.

use std::sync::Arc;

use crate::context::{ContextStore, ContextStoreBuilder};
use crate::cost::{CostMeter, CostMeterBuilder, BUDGET_GATE};
use crate::plugin::{Plugin, PluginRegistry};
use crate::policy::{GateDef, GateKind, Policy, PolicyBuilder};
use crate::store::Store;
use crate::trace::Tracer;

use super::agent::AgentSession;
use super::err::ConfigError;
use super::fresh::{ContextFresh, RunSessions, CONTEXT_FRESH_GATE};

/// The four controls of one agent fleet, wired together: the Policy, and optionally a Tracer, a
/// ContextStore and a CostMeter, sharing one plugin registry so that each sees the others'
/// events. Hands out an [`AgentSession`] per run. Cheap to clone; clones share everything.
///
/// The built-in gates `context-fresh` (an action waits while a section its run was served has
/// changed since) and `budget` (answered by the CostMeter) can be named by `gate` rules without
/// being declared in the policy file.
#[derive(Clone)]
pub struct Fourfold {
    pub(crate) shared: Arc<Shared>,
}

pub(crate) struct Shared {
    pub(crate) policy: Policy,
    pub(crate) context_scope: ContextScope,
    pub(crate) tracer: Option<Tracer>,
    pub(crate) context: Option<ContextStore>,
    pub(crate) cost: Option<CostMeter>,
    pub(crate) plugins: Arc<PluginRegistry>,
    pub(crate) runs: Arc<RunSessions>,
    #[cfg(feature = "postgres")]
    pub(crate) shared_documents: Option<crate::context::SharedDocuments>,
}

impl std::fmt::Debug for Fourfold {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fourfold")
            .field("tracer", &self.shared.tracer.is_some())
            .field("context", &self.shared.context.is_some())
            .field("cost", &self.shared.cost.is_some())
            .field("plugins", &self.shared.plugins)
            .finish()
    }
}

/// Which documents a session's asks may serve its agent.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ContextScope {
    /// Only those the policy lets the agent read: a `read` request of the document's key, as a
    /// path under the policy's root, allowed outright; a document a gate would hold is not
    /// served. An ingest's keys are paths relative to the folder it read, so ingesting the
    /// workspace's root gives keys the policy's path rules already name.
    #[default]
    Policy,
    /// Every document, whatever the policy says about reading it.
    All,
}

impl ContextScope {
    /// The scope named `name` in a `fourfold.toml` (`policy` or `all`).
    pub fn from_name(name: &str) -> Option<ContextScope> {
        match name {
            "policy" => Some(ContextScope::Policy),
            "all" => Some(ContextScope::All),
            _ => None,
        }
    }

    /// The scope named `name`, or the message saying what `field` (the config key or option the
    /// name was given as) may be, for the caller's own error type.
    pub fn parse(name: &str, field: &str) -> Result<ContextScope, String> {
        ContextScope::from_name(name).ok_or_else(|| {
            format!(
                "`{field}` is \"policy\" (serve an agent only the documents the policy lets it \
                 read) or \"all\", not {name:?}"
            )
        })
    }
}

/// Configures a [`Fourfold`]. Only the policy is required.
#[derive(Default)]
pub struct FourfoldBuilder {
    policy: Option<PolicyBuilder>,
    context_scope: ContextScope,
    tracer: Option<Tracer>,
    context: Option<(ContextStoreBuilder, Option<Arc<dyn Store>>)>,
    cost: Option<CostMeterBuilder>,
    plugins: Vec<Arc<dyn Plugin>>,
    #[cfg(feature = "postgres")]
    share_documents: Option<Arc<crate::store::PostgresStore>>,
}

impl FourfoldBuilder {
    /// The policy that judges every guarded request.
    pub fn policy(mut self, policy: PolicyBuilder) -> FourfoldBuilder {
        self.policy = Some(policy);
        self
    }

    /// Records every run, decision, action, context and cost event in this tracer.
    pub fn tracer(mut self, tracer: Tracer) -> FourfoldBuilder {
        self.tracer = Some(tracer);
        self
    }

    /// Serves context from a store built from `context`, in memory.
    pub fn context(mut self, context: ContextStoreBuilder) -> FourfoldBuilder {
        self.context = Some((context, None));
        self
    }

    /// Serves context from the store saved in `store` (empty if nothing was saved yet).
    pub fn context_saved_in(
        mut self,
        context: ContextStoreBuilder,
        store: Arc<dyn Store>,
    ) -> FourfoldBuilder {
        self.context = Some((context, Some(store)));
        self
    }

    /// Which documents sessions' asks may serve their agents: by default only those the policy
    /// lets the agent read ([`ContextScope::Policy`]).
    pub fn context_scope(mut self, scope: ContextScope) -> FourfoldBuilder {
        self.context_scope = scope;
        self
    }

    /// Meters and budgets model calls with a meter built from `cost`.
    pub fn cost(mut self, cost: CostMeterBuilder) -> FourfoldBuilder {
        self.cost = Some(cost);
        self
    }

    /// Joins the context store to the fleet's shared documents in `store`: it applies every
    /// document put through [`Fourfold::shared_documents`] by any process, in one order.
    #[cfg(feature = "postgres")]
    pub fn share_documents(mut self, store: Arc<crate::store::PostgresStore>) -> FourfoldBuilder {
        self.share_documents = Some(store);
        self
    }

    /// Installs a plugin: a listener, a gate check, or both.
    pub fn plugin(mut self, plugin: Arc<dyn Plugin>) -> FourfoldBuilder {
        self.plugins.push(plugin);
        self
    }

    /// Builds the controls around one plugin registry.
    pub fn build(self) -> Result<Fourfold, ConfigError> {
        let plugins = Arc::new(PluginRegistry::new());
        let runs = Arc::new(RunSessions::default());
        if let Some(tracer) = &self.tracer {
            plugins.install(Arc::new(tracer.clone()))?;
        }
        plugins.install(Arc::new(ContextFresh {
            runs: Arc::clone(&runs),
        }))?;
        let cost = match self.cost {
            Some(cost) => {
                let meter = cost.plugins(Arc::clone(&plugins)).build()?;
                // The meter emits to the registry, so the registry holds it weakly.
                plugins.install(Arc::new(meter.weak_plugin()))?;
                Some(meter)
            }
            None => None,
        };
        let context = match self.context {
            Some((context, None)) => Some(context.plugins(Arc::clone(&plugins)).build()),
            Some((context, Some(store))) => {
                Some(context.plugins(Arc::clone(&plugins)).open(store)?)
            }
            None => None,
        };
        for plugin in self.plugins {
            plugins.install(plugin)?;
        }
        let mut policy = self.policy.ok_or_else(|| ConfigError::Invalid {
            path: "<memory>".into(),
            reason: "a policy is required".into(),
        })?;
        // Built-in gates come first, so that a policy file's own declaration of either wins.
        policy
            .gates
            .insert(0, GateDef::new(CONTEXT_FRESH_GATE, GateKind::Plugin));
        policy
            .gates
            .insert(0, GateDef::new(BUDGET_GATE, GateKind::Plugin));
        let policy = policy.plugins(Arc::clone(&plugins)).build()?;
        #[cfg(feature = "postgres")]
        let shared_documents = match (self.share_documents, &context) {
            (Some(store), Some(context)) => Some(crate::context::SharedDocuments::join(
                store,
                context.clone(),
            )?),
            (Some(_), None) => {
                return Err(ConfigError::Invalid {
                    path: "<memory>".into(),
                    reason: "shared documents need a context store".into(),
                })
            }
            (None, _) => None,
        };
        Ok(Fourfold {
            shared: Arc::new(Shared {
                policy,
                context_scope: self.context_scope,
                tracer: self.tracer,
                context,
                cost,
                plugins,
                runs,
                #[cfg(feature = "postgres")]
                shared_documents,
            }),
        })
    }
}

impl Fourfold {
    /// A builder; only the policy is required.
    pub fn builder() -> FourfoldBuilder {
        FourfoldBuilder::default()
    }

    /// Starts a run of `agent` on `task`: a governed session whose every guard, ask, model call,
    /// decision and action is checked and recorded under one run id.
    pub fn session(&self, agent: &str, task: Option<&str>) -> AgentSession {
        AgentSession::start(self.clone(), agent, task)
    }

    /// The policy.
    pub fn policy(&self) -> &Policy {
        &self.shared.policy
    }

    /// The tracer, if there is one.
    pub fn tracer(&self) -> Option<&Tracer> {
        self.shared.tracer.as_ref()
    }

    /// The context store, if there is one.
    pub fn context(&self) -> Option<&ContextStore> {
        self.shared.context.as_ref()
    }

    /// The cost meter, if there is one.
    pub fn cost(&self) -> Option<&CostMeter> {
        self.shared.cost.as_ref()
    }

    /// The fleet's shared documents, when the context store was joined to them: put and delete
    /// documents here to change them for every process.
    #[cfg(feature = "postgres")]
    pub fn shared_documents(&self) -> Option<&crate::context::SharedDocuments> {
        self.shared.shared_documents.as_ref()
    }

    /// The plugins every control shares.
    pub fn plugins(&self) -> &Arc<PluginRegistry> {
        &self.shared.plugins
    }
}
