//! Rules as a user writes them, in a policy file or in code, before they are compiled.

use serde::{Deserialize, Serialize};

/// What a rule does to the requests it matches. Deny beats gate beats allow; a request no rule
/// matches is denied.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Effect {
    /// Allow the request.
    Allow,
    /// Hold the request until its review gates pass.
    Gate,
    /// Deny the request.
    Deny,
}

impl Effect {
    /// The effect's name in policy files: `allow`, `gate`, `deny`.
    pub fn name(self) -> &'static str {
        match self {
            Effect::Allow => "allow",
            Effect::Gate => "gate",
            Effect::Deny => "deny",
        }
    }
}

/// A value with the line it was written on, when it came from a file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Located<T> {
    pub(crate) value: T,
    pub(crate) line: Option<u32>,
}

impl<T> Located<T> {
    pub(crate) fn unlocated(value: T) -> Located<T> {
        Located { value, line: None }
    }
}

/// A generic tool (an MCP tool, a function of the agent framework) and the arguments it must have.
#[derive(Clone, Debug, PartialEq)]
pub struct ToolRule {
    pub(crate) name: String,
    pub(crate) arg_equals: Vec<(String, serde_json::Value)>,
    pub(crate) arg_globs: Vec<(String, String)>,
    pub(crate) line: Option<u32>,
}

impl ToolRule {
    /// Matches tools whose name matches the glob `name` (`github.create_issue`, `mcp__github__*`).
    pub fn new(name: impl Into<String>) -> ToolRule {
        ToolRule {
            name: name.into(),
            arg_equals: vec![],
            arg_globs: vec![],
            line: None,
        }
    }

    /// Also requires the argument at `field` (dotted: `options.force`) to equal `value`.
    pub fn arg_equals(mut self, field: impl Into<String>, value: serde_json::Value) -> ToolRule {
        self.arg_equals.push((field.into(), value));
        self
    }

    /// Also requires the argument at `field` to be a string matching the glob `pattern`.
    pub fn arg_glob(mut self, field: impl Into<String>, pattern: impl Into<String>) -> ToolRule {
        self.arg_globs.push((field.into(), pattern.into()));
        self
    }
}

/// One rule: who it applies to, what it matches, and its effect.
///
/// A rule with neither `agents` nor `roles` applies to every agent; with both, to an agent named in
/// `agents` or holding one of `roles`. A rule with `tasks` applies only to requests for those tasks.
#[derive(Clone, Debug, PartialEq)]
pub struct Rule {
    pub(crate) id: String,
    pub(crate) effect: Effect,
    pub(crate) agents: Option<Vec<String>>,
    pub(crate) roles: Option<Vec<String>>,
    pub(crate) tasks: Option<Vec<String>>,
    pub(crate) read: Vec<Located<String>>,
    pub(crate) write: Vec<Located<String>>,
    pub(crate) delete: Vec<Located<String>>,
    pub(crate) run: Vec<Located<String>>,
    pub(crate) net: Vec<Located<String>>,
    pub(crate) tools: Vec<ToolRule>,
    pub(crate) gates: Vec<String>,
    pub(crate) reason: Option<String>,
    pub(crate) line: Option<u32>,
}

macro_rules! pattern_setter {
    ($name:ident, $doc:literal) => {
        #[doc = $doc]
        pub fn $name(mut self, pattern: impl Into<String>) -> Rule {
            self.$name.push(Located::unlocated(pattern.into()));
            self
        }
    };
}

impl Rule {
    /// A rule with id `id` and effect `effect` that matches nothing yet.
    pub fn new(id: impl Into<String>, effect: Effect) -> Rule {
        Rule {
            id: id.into(),
            effect,
            agents: None,
            roles: None,
            tasks: None,
            read: vec![],
            write: vec![],
            delete: vec![],
            run: vec![],
            net: vec![],
            tools: vec![],
            gates: vec![],
            reason: None,
            line: None,
        }
    }

    /// An `allow` rule.
    pub fn allow(id: impl Into<String>) -> Rule {
        Rule::new(id, Effect::Allow)
    }

    /// A `deny` rule.
    pub fn deny(id: impl Into<String>) -> Rule {
        Rule::new(id, Effect::Deny)
    }

    /// A `gate` rule held by the gates named in `gates`.
    pub fn gate<I, S>(id: impl Into<String>, gates: I) -> Rule
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let mut rule = Rule::new(id, Effect::Gate);
        rule.gates = gates.into_iter().map(Into::into).collect();
        rule
    }

    /// The rule's id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The rule's effect.
    pub fn effect(&self) -> Effect {
        self.effect
    }

    /// Applies the rule to these agent ids (globs such as `coder-*` allowed).
    pub fn agents<I, S>(mut self, agents: I) -> Rule
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.agents = Some(agents.into_iter().map(Into::into).collect());
        self
    }

    /// Applies the rule to agents holding these roles.
    pub fn roles<I, S>(mut self, roles: I) -> Rule
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.roles = Some(roles.into_iter().map(Into::into).collect());
        self
    }

    /// Applies the rule only to requests made for these tasks.
    pub fn tasks<I, S>(mut self, tasks: I) -> Rule
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.tasks = Some(tasks.into_iter().map(Into::into).collect());
        self
    }

    pattern_setter!(read, "Matches reading paths that match this glob.");
    pattern_setter!(write, "Matches writing paths that match this glob.");
    pattern_setter!(delete, "Matches deleting paths that match this glob.");
    pattern_setter!(
        run,
        "Matches running this command (`cargo test*`: `cargo test` with any arguments)."
    );
    pattern_setter!(
        net,
        "Matches connecting to this destination (`[scheme://]host[:port]`, host may be `*.suffix`)."
    );

    /// Matches calling this tool.
    pub fn tool(mut self, tool: ToolRule) -> Rule {
        self.tools.push(tool);
        self
    }

    /// Says why the rule exists; shown in decisions it makes.
    pub fn reason(mut self, reason: impl Into<String>) -> Rule {
        self.reason = Some(reason.into());
        self
    }
}

/// Who resolves a gate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GateKind {
    /// A person approves or rejects the pending approval.
    Human,
    /// The installed plugin of the gate's name checks the request.
    Plugin,
}

/// A review gate a `gate` rule can name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GateDef {
    pub(crate) name: String,
    pub(crate) kind: GateKind,
    pub(crate) expires_after_ns: Option<u64>,
    pub(crate) line: Option<u32>,
}

impl GateDef {
    /// A gate named `name`, resolved by `kind`, whose pending approvals never expire.
    pub fn new(name: impl Into<String>, kind: GateKind) -> GateDef {
        GateDef {
            name: name.into(),
            kind,
            expires_after_ns: None,
            line: None,
        }
    }

    /// Pending approvals of this gate expire after `seconds`.
    pub fn expires_after_secs(mut self, seconds: u64) -> GateDef {
        self.expires_after_ns = Some(seconds.saturating_mul(1_000_000_000));
        self
    }

    /// The gate's name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

/// The name of the built-in human review gate, always defined.
pub const HUMAN_REVIEW: &str = "human-review";
