//! Building a policy in code, and compiling what a builder or a policy file describes.

use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use rustc_hash::FxHashMap;

use super::command::ShellOptions;
use super::compiled::{CompileContext, CompiledRules, RoleTable};
use super::err::{InvalidPolicyError, PolicyLoadError};
use super::rule::{GateDef, GateKind, Rule, HUMAN_REVIEW};
use super::Policy;
use crate::event::{Clock, FastClock};
use crate::plugin::PluginRegistry;
use crate::store::{FileStore, MemoryStore, Store};

/// The environment variables a command line may set (`RUST_LOG=debug cargo test`) unless the policy
/// says otherwise. Anything else (`LD_PRELOAD`, `PATH`, ...) can change what a command does, so a
/// command line that sets it is denied.
pub const DEFAULT_ALLOWED_ENV: &[&str] = &[
    "RUST_LOG",
    "RUST_BACKTRACE",
    "NO_COLOR",
    "CI",
    "TERM",
    "LANG",
    "LC_ALL",
    "TZ",
];

/// The id of the built-in rule that keeps agents from writing the policy file and the approval store.
pub const PROTECT_RULE_ID: &str = "fourfold-protect";

/// Describes a policy: rules, agents and their roles, gates, the workspace root, and where pending
/// approvals are kept. [`Policy::from_file`] fills one from a policy file; code can build one directly.
pub struct PolicyBuilder {
    pub(crate) root: Option<PathBuf>,
    pub(crate) resolve_symlinks: bool,
    pub(crate) allowed_env: Vec<String>,
    pub(crate) agents: Vec<(String, Vec<String>)>,
    pub(crate) gates: Vec<GateDef>,
    pub(crate) rules: Vec<Rule>,
    pub(crate) source_file: Option<PathBuf>,
    pub(crate) store_dir: Option<PathBuf>,
    pub(crate) store: Option<Arc<dyn Store>>,
    pub(crate) plugins: Option<Arc<PluginRegistry>>,
    pub(crate) clock: Option<Arc<dyn Clock>>,
}

impl Default for PolicyBuilder {
    fn default() -> PolicyBuilder {
        PolicyBuilder::new()
    }
}

impl PolicyBuilder {
    /// An empty policy: it denies everything.
    pub fn new() -> PolicyBuilder {
        PolicyBuilder {
            root: None,
            resolve_symlinks: false,
            allowed_env: DEFAULT_ALLOWED_ENV
                .iter()
                .map(|name| name.to_string())
                .collect(),
            agents: vec![],
            gates: vec![],
            rules: vec![],
            source_file: None,
            store_dir: None,
            store: None,
            plugins: None,
            clock: None,
        }
    }

    /// The workspace root that paths are relative to (default: the current directory). A path that
    /// escapes it is denied.
    pub fn root(mut self, root: impl Into<PathBuf>) -> PolicyBuilder {
        self.root = Some(root.into());
        self
    }

    /// Resolve symbolic links in requested paths before matching, so a link cannot lead outside the
    /// root or around a rule. Costs a file-system lookup per path.
    pub fn resolve_symlinks(mut self, resolve: bool) -> PolicyBuilder {
        self.resolve_symlinks = resolve;
        self
    }

    /// The environment variables a command line may set (replaces [`DEFAULT_ALLOWED_ENV`]).
    pub fn allowed_env<I, S>(mut self, names: I) -> PolicyBuilder
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.allowed_env = names.into_iter().map(Into::into).collect();
        self
    }

    /// Gives `agent` (an id, or a glob such as `coder-*`) these roles.
    pub fn agent_roles<I, S>(mut self, agent: impl Into<String>, roles: I) -> PolicyBuilder
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.agents
            .push((agent.into(), roles.into_iter().map(Into::into).collect()));
        self
    }

    /// Declares a gate that rules can name.
    pub fn gate(mut self, gate: GateDef) -> PolicyBuilder {
        self.gates.push(gate);
        self
    }

    /// Adds a rule. Order matters only to say which rule a decision names when several match.
    pub fn rule(mut self, rule: Rule) -> PolicyBuilder {
        self.rules.push(rule);
        self
    }

    /// Keeps pending approvals in a [`FileStore`] in `dir`.
    pub fn store_dir(mut self, dir: impl Into<PathBuf>) -> PolicyBuilder {
        self.store_dir = Some(dir.into());
        self
    }

    /// Keeps pending approvals in `store` (default: in memory, unless a store directory is set).
    pub fn store(mut self, store: Arc<dyn Store>) -> PolicyBuilder {
        self.store = Some(store);
        self
    }

    /// Shares `plugins` with the policy: they see its events and back its plugin gates.
    pub fn plugins(mut self, plugins: Arc<PluginRegistry>) -> PolicyBuilder {
        self.plugins = Some(plugins);
        self
    }

    /// The clock for timestamps and expiry (default:
    /// [`FastClock`], the system clock read through the time-stamp counter).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> PolicyBuilder {
        self.clock = Some(clock);
        self
    }

    pub(crate) fn source_file(mut self, file: Option<PathBuf>) -> PolicyBuilder {
        self.source_file = file;
        self
    }

    /// Compiles the policy. Any invalid rule fails the whole policy.
    pub fn build(self) -> Result<Policy, PolicyLoadError> {
        let state = PolicyState::compile(&self)?;
        let store: Arc<dyn Store> = match (self.store, &self.store_dir) {
            (Some(store), _) => store,
            (None, Some(dir)) => Arc::new(FileStore::open(dir).map_err(|error| {
                InvalidPolicyError::new(format!("cannot open the approval store: {error}"))
                    .in_file(state.file_label.as_deref())
            })?),
            (None, None) => Arc::new(MemoryStore::new()),
        };
        Ok(Policy::from_parts(
            state,
            store,
            self.plugins.unwrap_or_default(),
            self.clock.unwrap_or_else(|| Arc::new(FastClock::new())),
        ))
    }

    #[cfg(test)]
    pub(crate) fn compile_for_test(self) -> Result<(), InvalidPolicyError> {
        PolicyState::compile(&self).map(|_| ())
    }
}

/// A compiled policy: what a check reads. Replaced whole on reload.
#[derive(Debug)]
pub(crate) struct PolicyState {
    pub(crate) root: String,
    pub(crate) resolve_symlinks: bool,
    pub(crate) shell: ShellOptions,
    pub(crate) roles: RoleTable,
    pub(crate) gates: FxHashMap<String, GateDef>,
    pub(crate) rules: CompiledRules,
    pub(crate) source_file: Option<PathBuf>,
    pub(crate) file_label: Option<String>,
}

/// Makes `path` absolute and normalised, resolving symbolic links where it exists.
pub(crate) fn absolute_root(path: &Path) -> Result<String, String> {
    let absolute = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()
            .map_err(|error| format!("cannot read the current directory: {error}"))?
            .join(path)
    };
    let resolved = absolute.canonicalize().unwrap_or_else(|_| {
        let mut normalised = PathBuf::new();
        for component in absolute.components() {
            match component {
                Component::ParentDir => {
                    normalised.pop();
                }
                Component::CurDir => {}
                other => normalised.push(other),
            }
        }
        normalised
    });
    resolved
        .to_str()
        .map(|root| root.trim_end_matches('/').to_string())
        .ok_or_else(|| format!("the workspace root `{}` is not UTF-8", resolved.display()))
}

impl PolicyState {
    pub(crate) fn compile(builder: &PolicyBuilder) -> Result<PolicyState, InvalidPolicyError> {
        let file_label = builder
            .source_file
            .as_ref()
            .map(|path| path.display().to_string());
        let in_file = |error: InvalidPolicyError| error.in_file(file_label.as_deref());
        let root = absolute_root(builder.root.as_deref().unwrap_or(Path::new(".")))
            .map_err(|reason| in_file(InvalidPolicyError::new(reason)))?;
        let roles = RoleTable::build(&builder.agents)
            .map_err(|reason| in_file(InvalidPolicyError::new(reason)))?;
        let mut gates = FxHashMap::default();
        gates.insert(
            HUMAN_REVIEW.to_string(),
            GateDef::new(HUMAN_REVIEW, GateKind::Human),
        );
        for gate in &builder.gates {
            if gate.name.is_empty() {
                return Err(in_file(
                    InvalidPolicyError::new("a gate has an empty name").at_line(gate.line),
                ));
            }
            gates.insert(gate.name.clone(), gate.clone());
        }
        let mut rules = protect_rule(&root, builder).into_iter().collect::<Vec<_>>();
        rules.extend(builder.rules.iter().cloned());
        let context = CompileContext {
            root: &root,
            file: file_label.as_deref(),
            gates: &gates,
            roles: &roles,
        };
        let compiled = CompiledRules::compile(&rules, &context).map_err(in_file)?;
        Ok(PolicyState {
            root,
            resolve_symlinks: builder.resolve_symlinks,
            shell: ShellOptions {
                allowed_env: builder.allowed_env.clone(),
            },
            roles,
            gates,
            rules: compiled,
            source_file: builder.source_file.clone(),
            file_label,
        })
    }

    /// Compiles rules granted at run time against this policy's root, gates and roles.
    pub(crate) fn compile_grant(
        &self,
        rules: &[Rule],
    ) -> Result<CompiledRules, InvalidPolicyError> {
        let context = CompileContext {
            root: &self.root,
            file: None,
            gates: &self.gates,
            roles: &self.roles,
        };
        CompiledRules::compile(rules, &context)
    }
}

/// The built-in deny on writing or deleting the policy file and the approval store, when they sit
/// inside the workspace: an agent must not be able to rewrite its own policy or approve itself.
fn protect_rule(root: &str, builder: &PolicyBuilder) -> Option<Rule> {
    let mut rule =
        Rule::deny(PROTECT_RULE_ID).reason("agents may not change their own policy or approvals");
    for protected in builder.source_file.iter().chain(&builder.store_dir) {
        let Ok(absolute) = absolute_root(protected) else {
            continue;
        };
        if absolute == root || absolute.starts_with(&format!("{root}/")) {
            rule = rule.write(absolute.clone()).delete(absolute);
        }
    }
    (!rule.write.is_empty()).then_some(rule)
}
