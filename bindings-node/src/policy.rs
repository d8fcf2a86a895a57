//! `Policy`: requests and decisions as JS objects, and the policy on its own.

use std::sync::Arc;

use fourfold::policy::{Action, Decision as CoreDecision, Request, Verdict};
use fourfold::Policy as CorePolicy;
use napi::bindgen_prelude::Env;
use napi_derive::napi;
use serde_json::Value;

use crate::error::{shield, Fallible, FourfoldError};
use crate::json::to_json;

/// The core request for a request's parts, as `lib/index.js` reads them from the JS object (a
/// JS property read costs a nanosecond, an N-API one hundreds): the action, its target (the
/// `path`, `command`, `url` or tool `name`, by action), the tool's arguments as JSON text, the
/// working directory and whether to resolve symbolic links. `agent` is the agent asking.
pub fn request_from_parts(
    agent: &str,
    action: &str,
    target: Option<String>,
    args_json: Option<&str>,
    cwd: Option<String>,
    resolve_symlinks: Option<bool>,
) -> Fallible<Request> {
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

/// A decision as one string for `lib/index.js` to read back into an object: a string is the one
/// value N-API hands to JS cheaply (an object costs microseconds). The fields are joined by NUL:
/// the verdict, the rule's line, the reason, the rule id, the rule file, the approval id, then
/// each gate; an absent value is empty (no rule id, file or approval id is empty), and a NUL
/// inside a field is shown as U+FFFD.
pub fn decision_line(decision: &CoreDecision) -> String {
    let rule = decision.rule.as_ref();
    let verdict = match decision.verdict {
        Verdict::Allow => "allow",
        Verdict::Deny => "deny",
        Verdict::Pending => "pending",
    };
    let line = rule
        .and_then(|rule| rule.line)
        .map(|line| line.to_string())
        .unwrap_or_default();
    let mut fields: Vec<&str> = vec![
        verdict,
        &line,
        &decision.reason,
        rule.map_or("", |rule| rule.id.as_str()),
        rule.and_then(|rule| rule.file.as_deref()).unwrap_or(""),
        decision.approval_id.as_deref().unwrap_or(""),
    ];
    fields.extend(decision.gates.iter().map(String::as_str));
    let mut out = String::with_capacity(fields.iter().map(|field| field.len() + 1).sum());
    for (field_idx, field) in fields.iter().enumerate() {
        if field_idx > 0 {
            out.push('\0');
        }
        if field.contains('\0') {
            out.push_str(&field.replace('\0', "\u{FFFD}"));
        } else {
            out.push_str(field);
        }
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

    /// Decides a request of `agent` (its parts, read by `lib/index.js`, whose `check(request)`
    /// returns the decision as an object). A denial is a decision, not an error; an error means
    /// no decision could be made, and the request must not go ahead.
    #[napi(js_name = "__check", skip_typescript)]
    // The request's parts travel as separate strings, the cheap way through N-API.
    #[allow(clippy::too_many_arguments)]
    pub fn check_parts(
        &self,
        env: Env,
        agent: String,
        action: String,
        target: Option<String>,
        args_json: Option<String>,
        cwd: Option<String>,
        resolve_symlinks: Option<bool>,
    ) -> napi::Result<String> {
        shield(&env, || {
            let request = request_from_parts(
                &agent,
                &action,
                target,
                args_json.as_deref(),
                cwd,
                resolve_symlinks,
            )?;
            Ok(decision_line(&self.policy().check(&request)?))
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
