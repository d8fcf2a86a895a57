//! `Policy`: requests and decisions as JS objects, and the policy on its own.

use std::fmt::Write as _;
use std::sync::Arc;

use fourfold::policy::{Action, Decision as CoreDecision, Request, Verdict};
use fourfold::Policy as CorePolicy;
use napi::bindgen_prelude::{Env, Unknown};
use napi_derive::napi;
use serde_json::Value;

use crate::call::{bound_function, ActionArg, Args, BoundCall};
use crate::error::{shield, Fallible, FourfoldError};
use crate::json::to_json;

/// Every action a request can take, in the order of its index (what `lib/index.js` passes
/// instead of the name), with the request field that holds its target.
pub const ACTIONS: [(&str, &str); 6] = [
    ("read", "path"),
    ("write", "path"),
    ("delete", "path"),
    ("run", "command"),
    ("net", "url"),
    ("tool", "name"),
];

/// Every action, as `[name, target field]` in the order of [`ACTIONS`], for `lib/index.js` to
/// pass an action by its index. Not part of the API (left out of the types).
#[napi(js_name = "__actions", skip_typescript)]
pub fn actions() -> Vec<Vec<&'static str>> {
    ACTIONS
        .iter()
        .map(|(name, field)| vec![*name, *field])
        .collect()
}

/// The core request for a request's parts, as `lib/index.js` reads them from the JS object (a
/// JS property read costs a nanosecond, an N-API one hundreds): the action, its target (the
/// `path`, `command`, `url` or tool `name`, by action), the tool's arguments as JSON text, the
/// working directory and whether to resolve symbolic links. `agent` is the agent asking.
pub fn request_from_parts(
    agent: impl Into<String>,
    action: &ActionArg,
    target: Option<String>,
    args_json: Option<&str>,
    cwd: Option<String>,
    resolve_symlinks: Option<bool>,
) -> Fallible<Request> {
    let action = match action {
        ActionArg::Code(code) => ACTIONS
            .get(*code as usize)
            .map(|(name, _)| *name)
            .ok_or_else(|| FourfoldError::invalid(format!("unknown action number {code}")))?,
        ActionArg::Name(name) => name.as_str(),
    };
    let target = |field: &str| {
        target.ok_or_else(|| {
            FourfoldError::invalid(format!("a `{action}` request needs a `{field}`"))
        })
    };
    let action = match action {
        "read" => Action::Read {
            path: target("path")?,
        },
        "write" => Action::Write {
            path: target("path")?,
        },
        "delete" => Action::Delete {
            path: target("path")?,
        },
        "run" => Action::Run {
            command: target("command")?,
        },
        "net" => Action::Net {
            url: target("url")?,
        },
        "tool" => Action::Tool {
            name: target("name")?,
            args: match args_json {
                Some(json) => serde_json::from_str(json).map_err(|error| {
                    FourfoldError::invalid(format!("the tool's `args` are not JSON: {error}"))
                })?,
                None => Value::Object(Default::default()),
            },
        },
        other => {
            return Err(FourfoldError::invalid(format!(
            "unknown action `{other}`; expected `read`, `write`, `delete`, `run`, `net` or `tool`"
        )))
        }
    };
    let mut request = Request::new(agent, action);
    request.cwd = cwd;
    request.resolve_symlinks = resolve_symlinks.unwrap_or(false);
    Ok(request)
}

/// The core request for the arguments of a bound guard or check, from `first`: the action, the
/// target, then, when more were passed, the tool's arguments as JSON text, the working directory,
/// whether to resolve symbolic links and the task (`lib/index.js` leaves those off when absent).
pub fn request_from_args(agent: impl Into<String>, args: &Args, first: usize) -> Fallible<Request> {
    let action = args.action(first)?;
    let target = args.optional_string(first + 1, "a request's target")?;
    if args.len() <= first + 2 {
        return request_from_parts(agent, &action, target, None, None, None);
    }
    let args_json = args.optional_string(first + 2, "a tool's `args`")?;
    let mut request = request_from_parts(
        agent,
        &action,
        target,
        args_json.as_deref(),
        args.optional_string(first + 3, "a request's `cwd`")?,
        args.optional_bool(first + 4, "a request's `resolveSymlinks`")?,
    )?;
    if args.len() > first + 5 {
        request.task = args.optional_string(first + 5, "a request's `task`")?;
    }
    Ok(request)
}

/// Appends `field` to `out`, a NUL inside it shown as U+FFFD.
pub(crate) fn push_field(out: &mut String, field: &str) {
    if field.as_bytes().contains(&0) {
        out.push_str(&field.replace('\0', "\u{FFFD}"));
    } else {
        out.push_str(field);
    }
}

/// A decision as one string for `lib/index.js` to read back into an object: a string is the one
/// value N-API hands to JS cheaply (an object costs microseconds). The fields are joined by NUL:
/// the verdict, the rule's line, the rule id, the rule file, the approval id, the reason, then
/// each gate; an absent value is empty (no rule id, file or approval id is empty), and a NUL
/// inside a field is shown as U+FFFD.
pub fn decision_line(decision: &CoreDecision) -> String {
    let rule = decision.rule.as_ref();
    let verdict = match decision.verdict {
        Verdict::Allow => "allow",
        Verdict::Deny => "deny",
        Verdict::Pending => "pending",
    };
    let rule_id = rule.map_or("", |rule| rule.id.as_str());
    let rule_file = rule.and_then(|rule| rule.file.as_deref()).unwrap_or("");
    let approval_id = decision.approval_id.as_deref().unwrap_or("");
    let n_bytes = verdict.len()
        + 10
        + rule_id.len()
        + rule_file.len()
        + approval_id.len()
        + decision.reason.len()
        + decision
            .gates
            .iter()
            .map(|gate| gate.len() + 1)
            .sum::<usize>()
        + 5;
    let mut out = String::with_capacity(n_bytes);
    out.push_str(verdict);
    out.push('\0');
    if let Some(line) = rule.and_then(|rule| rule.line) {
        // Writing to a String cannot fail.
        let _ = write!(out, "{line}");
    }
    for field in [rule_id, rule_file, approval_id, decision.reason.as_str()] {
        out.push('\0');
        push_field(&mut out, field);
    }
    for gate in &decision.gates {
        out.push('\0');
        push_field(&mut out, gate);
    }
    out
}

/// Where a JS `Policy` finds its core policy: its own, or the one of a `Fourfold`.
#[derive(Clone)]
pub enum PolicySource {
    /// A policy loaded on its own.
    Own(Arc<CorePolicy>),
    /// The policy of a `Fourfold` instance.
    Of(fourfold::Fourfold),
}

impl PolicySource {
    fn policy(&self) -> &CorePolicy {
        match self {
            PolicySource::Own(policy) => policy,
            PolicySource::Of(fourfold) => fourfold.policy(),
        }
    }
}

/// Scoped permissions and review gates. Deny beats gate beats allow; no match is deny.
#[napi]
pub struct Policy {
    source: PolicySource,
}

impl Policy {
    /// A JS policy over `source`.
    pub fn new(source: PolicySource) -> Policy {
        Policy { source }
    }

    fn policy(&self) -> &CorePolicy {
        self.source.policy()
    }
}

#[napi]
impl Policy {
    /// Loads a policy file (format in `docs/policy.md`); approvals are kept beside it.
    #[napi(factory)]
    pub fn from_file(env: Env, path: String) -> napi::Result<Policy> {
        shield(&env, || {
            let policy = CorePolicy::from_file(&path)?;
            Ok(Policy::new(PolicySource::Own(Arc::new(policy))))
        })
    }

    /// Parses a policy from TOML text; approvals are kept in memory.
    #[napi(factory)]
    pub fn from_toml(env: Env, text: String) -> napi::Result<Policy> {
        shield(&env, || {
            let policy = CorePolicy::builder_from_toml(&text)?.build()?;
            Ok(Policy::new(PolicySource::Own(Arc::new(policy))))
        })
    }

    /// A function deciding a request of an agent (`(agent, action, target, argsJson?, cwd?,
    /// resolveSymlinks?)`, the parts `lib/index.js` reads from the request; its `check(request)`
    /// returns the decision as an object) with this policy. A denial is a decision, not an error;
    /// an error means no decision could be made, and the request must not go ahead.
    /// Not part of the API (left out of the types).
    #[napi(js_name = "__checkFunction", skip_typescript)]
    pub fn check_function<'env>(&self, env: &'env Env) -> napi::Result<Unknown<'env>> {
        bound_function(env, "check", BoundCheck(self.source.clone()))
    }

    /// Like `__checkFunction`, but the function says only whether the request is allowed
    /// outright (`"1"` or `""`), deciding nothing: no event, no gate, no approval (`permits`).
    /// Not part of the API (left out of the types).
    #[napi(js_name = "__permitsFunction", skip_typescript)]
    pub fn permits_function<'env>(&self, env: &'env Env) -> napi::Result<Unknown<'env>> {
        bound_function(env, "permits", BoundPermits(self.source.clone()))
    }

    /// Approves the pending approval `id`: the identical request is allowed once.
    #[napi(ts_return_type = "import('./lib/types').Approval")]
    pub fn approve(
        &self,
        env: Env,
        id: String,
        approver: String,
        reason: String,
    ) -> napi::Result<Value> {
        shield(&env, || {
            to_json(&self.policy().approve(&id, &approver, &reason)?)
        })
    }

    /// Rejects the pending approval `id`.
    #[napi(ts_return_type = "import('./lib/types').Approval")]
    pub fn reject(
        &self,
        env: Env,
        id: String,
        approver: String,
        reason: String,
    ) -> napi::Result<Value> {
        shield(&env, || {
            to_json(&self.policy().reject(&id, &approver, &reason)?)
        })
    }

    /// The approval `id`, or `null`.
    #[napi(ts_return_type = "import('./lib/types').Approval | null")]
    pub fn approval(&self, env: Env, id: String) -> napi::Result<Value> {
        shield(&env, || match self.policy().approval(&id)? {
            Some(approval) => to_json(&approval),
            None => Ok(Value::Null),
        })
    }

    /// The approvals still pending.
    #[napi(ts_return_type = "import('./lib/types').Approval[]")]
    pub fn pending_approvals(&self, env: Env) -> napi::Result<Value> {
        shield(&env, || to_json(&self.policy().pending_approvals()?))
    }

    /// Re-reads the policy file; a policy that fails to load leaves the one in force.
    #[napi]
    pub fn reload(&self, env: Env) -> napi::Result<()> {
        shield(&env, || Ok(self.policy().reload()?))
    }

    /// The workspace root, absolute.
    #[napi(getter)]
    pub fn root(&self, env: Env) -> napi::Result<String> {
        shield(&env, || Ok(self.policy().root()))
    }
}

/// What a policy's bound permits function calls.
struct BoundPermits(PolicySource);

impl BoundCall for BoundPermits {
    fn call(&self, args: &Args) -> Fallible<String> {
        let agent = args.string(0, "a request's `agent`")?;
        let request = request_from_args(agent, args, 1)?;
        let allowed = self.0.policy().permits(&request);
        Ok(if allowed { "1" } else { "" }.to_string())
    }
}

/// What a policy's bound check function calls.
struct BoundCheck(PolicySource);

impl BoundCall for BoundCheck {
    fn call(&self, args: &Args) -> Fallible<String> {
        let agent = args.string(0, "a request's `agent`")?;
        let request = request_from_args(agent, args, 1)?;
        Ok(decision_line(&self.0.policy().check(&request)?))
    }
}
