//! `Policy`: requests and decisions as JS objects, and the policy on its own.

use std::sync::Arc;

use fourfold::policy::{Action, Decision as CoreDecision, Request, Verdict};
use fourfold::Policy as CorePolicy;
use napi::bindgen_prelude::Env;
use napi_derive::napi;
use serde_json::Value;

use crate::error::{shield, Fallible, FourfoldError};
use crate::json::to_json;

/// What an agent asks to do, as JS passes it:
/// `{ action: 'read', path: 'src/lib.rs' }`, `{ action: 'run', command: 'cargo test' }`,
/// `{ action: 'net', url: 'https://crates.io' }`, `{ action: 'tool', name: 'search', args: {...} }`.
#[napi(object)]
pub struct RequestInput {
    /// `read`, `write`, `delete`, `run`, `net` or `tool`.
    pub action: String,
    /// The path of a `read`, `write` or `delete`.
    pub path: Option<String>,
    /// The command line of a `run`.
    pub command: Option<String>,
    /// The URL, `host` or `host:port` of a `net`.
    pub url: Option<String>,
    /// The tool name of a `tool`.
    pub name: Option<String>,
    /// The arguments of a `tool`, a JSON object.
    #[napi(ts_type = "Record<string, unknown>")]
    pub args: Option<Value>,
    /// The agent asking; a session sets its own.
    pub agent: Option<String>,
    /// The task; a session sets its own.
    pub task: Option<String>,
    /// The run; a session sets its own.
    pub run_id: Option<String>,
    /// The working directory of the request.
    pub cwd: Option<String>,
    /// Resolve symbolic links in the request's paths before matching.
    pub resolve_symlinks: Option<bool>,
}

/// The rule that made a decision, and where it was written.
#[napi(object)]
pub struct RuleOrigin {
    /// The rule's id.
    pub id: String,
    /// The policy file, for a rule loaded from one.
    pub file: Option<String>,
    /// The 1-based line of the rule in that file.
    pub line: Option<u32>,
}

/// What the policy decided about a request, and why.
#[napi(object)]
pub struct Decision {
    /// `allow`, `deny` or `pending`.
    #[napi(ts_type = "'allow' | 'deny' | 'pending'")]
    pub verdict: String,
    /// The rule that decided, if one did.
    pub rule: Option<RuleOrigin>,
    /// Why, in one line.
    pub reason: String,
    /// The gates involved.
    pub gates: Vec<String>,
    /// The approval that holds the request (pending) or that allowed it.
    pub approval_id: Option<String>,
}

impl From<CoreDecision> for Decision {
    fn from(decision: CoreDecision) -> Decision {
        Decision {
            verdict: match decision.verdict {
                Verdict::Allow => "allow",
                Verdict::Deny => "deny",
                Verdict::Pending => "pending",
            }
            .to_string(),
            rule: decision.rule.map(|rule| RuleOrigin {
                id: rule.id,
                file: rule.file,
                line: rule.line,
            }),
            reason: decision.reason,
            gates: decision.gates,
            approval_id: decision.approval_id,
        }
    }
}

fn required(value: Option<String>, field: &str, action: &str) -> Fallible<String> {
    value.ok_or_else(|| FourfoldError::invalid(format!("a `{action}` request needs a `{field}`")))
}

/// The core request for `input`; `default_agent` when the input names none.
pub fn to_request(input: RequestInput, default_agent: &str) -> Fallible<Request> {
    let action_name = input.action.as_str();
    let action = match action_name {
        "read" => Action::Read {
            path: required(input.path, "path", action_name)?,
        },
        "write" => Action::Write {
            path: required(input.path, "path", action_name)?,
        },
        "delete" => Action::Delete {
            path: required(input.path, "path", action_name)?,
        },
        "run" => Action::Run {
            command: required(input.command, "command", action_name)?,
        },
        "net" => Action::Net {
            url: required(input.url, "url", action_name)?,
        },
        "tool" => Action::Tool {
            name: required(input.name, "name", action_name)?,
            args: input.args.unwrap_or(Value::Object(Default::default())),
        },
        other => {
            return Err(FourfoldError::invalid(format!(
            "unknown action `{other}`; expected `read`, `write`, `delete`, `run`, `net` or `tool`"
        )))
        }
    };
    let mut request = Request::new(
        input.agent.unwrap_or_else(|| default_agent.to_string()),
        action,
    );
    request.task = input.task;
    request.run_id = input.run_id;
    request.cwd = input.cwd;
    request.resolve_symlinks = input.resolve_symlinks.unwrap_or(false);
    Ok(request)
}

/// Where a JS `Policy` finds its core policy: its own, or the one of a `Fourfold`.
#[derive(Clone)]
pub enum PolicySource {
    /// A policy loaded on its own.
    Own(Arc<CorePolicy>),
    /// The policy of a `Fourfold` instance.
    Of(fourfold::Fourfold),
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
        match &self.source {
            PolicySource::Own(policy) => policy,
            PolicySource::Of(fourfold) => fourfold.policy(),
        }
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

    /// Decides `request`. A denial is a decision, not an error; an error means no decision could
    /// be made, and the request must not go ahead.
    #[napi]
    pub fn check(&self, env: Env, request: RequestInput) -> napi::Result<Decision> {
        shield(&env, || {
            let agent = request.agent.clone().ok_or_else(|| {
                FourfoldError::invalid("a request checked by a policy needs an `agent`")
            })?;
            let request = to_request(request, &agent)?;
            Ok(self.policy().check(&request)?.into())
        })
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
