//! `fourfold.Policy`, `Request`, `Decision` and `Approval`: the reliability face.

use std::path::PathBuf;
use std::sync::Arc;

use fourfold::policy::{Action, Verdict};
use pyo3::prelude::*;

use crate::convert::{from_python, repr, repr_opt, to_python, Holder};
use crate::error::{no_panic, OrRaise};

/// What an agent asks to do: read, write or delete a path, run a command line, reach a URL, or
/// call a tool. Build one with the static constructors (`Request.run("coder", "cargo test")`).
#[pyclass(frozen, module = "fourfold._fourfold")]
#[derive(Clone)]
pub struct Request {
    pub(crate) inner: fourfold::Request,
}

fn with_options(
    mut request: fourfold::Request,
    task: Option<String>,
    cwd: Option<String>,
) -> Request {
    request.task = task;
    request.cwd = cwd;
    Request { inner: request }
}

#[pymethods]
impl Request {
    /// A request of `agent` to read `path`.
    #[staticmethod]
    #[pyo3(signature = (agent, path, *, task=None, cwd=None))]
    fn read(agent: String, path: String, task: Option<String>, cwd: Option<String>) -> Request {
        with_options(fourfold::Request::read(agent, path), task, cwd)
    }

    /// A request of `agent` to create or change `path`.
    #[staticmethod]
    #[pyo3(signature = (agent, path, *, task=None, cwd=None))]
    fn write(agent: String, path: String, task: Option<String>, cwd: Option<String>) -> Request {
        with_options(fourfold::Request::write(agent, path), task, cwd)
    }

    /// A request of `agent` to remove `path`.
    #[staticmethod]
    #[pyo3(signature = (agent, path, *, task=None, cwd=None))]
    fn delete(agent: String, path: String, task: Option<String>, cwd: Option<String>) -> Request {
        with_options(fourfold::Request::delete(agent, path), task, cwd)
    }

    /// A request of `agent` to run the shell command line `command`.
    #[staticmethod]
    #[pyo3(signature = (agent, command, *, task=None, cwd=None))]
    fn run(agent: String, command: String, task: Option<String>, cwd: Option<String>) -> Request {
        with_options(fourfold::Request::run(agent, command), task, cwd)
    }

    /// A request of `agent` to connect to `url` (a URL, `host`, `host:port` or `user@host`).
    #[staticmethod]
    #[pyo3(signature = (agent, url, *, task=None, cwd=None))]
    fn net(agent: String, url: String, task: Option<String>, cwd: Option<String>) -> Request {
        with_options(fourfold::Request::net(agent, url), task, cwd)
    }

    /// A request of `agent` to call tool `name` with `args` (a JSON-like dict).
    #[staticmethod]
    #[pyo3(signature = (agent, name, args=None, *, task=None, cwd=None))]
    fn tool(
        agent: String,
        name: String,
        args: Option<&Bound<'_, PyAny>>,
        task: Option<String>,
        cwd: Option<String>,
    ) -> PyResult<Request> {
        let args = match args {
            Some(args) => from_python(args)?,
            None => serde_json::Value::Object(serde_json::Map::new()),
        };
        Ok(with_options(
            fourfold::Request::tool(agent, name, args),
            task,
            cwd,
        ))
    }

    /// A request from its dict form (`{"agent": "coder", "action": "read", "path": "src/lib.rs"}`,
    /// the JSON form of `docs/policy.md`).
    #[staticmethod]
    fn from_dict(data: &Bound<'_, PyAny>) -> PyResult<Request> {
        Ok(Request {
            inner: from_python(data)?,
        })
    }

    /// The agent asking.
    #[getter]
    fn agent(&self) -> &str {
        &self.inner.agent
    }

    /// The task, if any.
    #[getter]
    fn task(&self) -> Option<&str> {
        self.inner.task.as_deref()
    }

    /// `read`, `write`, `delete`, `run`, `net` or `tool`.
    #[getter]
    fn action(&self) -> &'static str {
        match self.inner.action {
            Action::Read { .. } => "read",
            Action::Write { .. } => "write",
            Action::Delete { .. } => "delete",
            Action::Run { .. } => "run",
            Action::Net { .. } => "net",
            Action::Tool { .. } => "tool",
        }
    }

    /// The path, command line, URL or tool name the action names.
    #[getter]
    fn target(&self) -> &str {
        match &self.inner.action {
            Action::Read { path } | Action::Write { path } | Action::Delete { path } => path,
            Action::Run { command } => command,
            Action::Net { url } => url,
            Action::Tool { name, .. } => name,
        }
    }

    /// The request as a dict (its JSON form).
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_python(py, &self.inner)
    }

    fn __repr__(&self) -> String {
        format!(
            "Request(agent={}, action={}, target={}, task={})",
            repr(&self.inner.agent),
            repr(self.action()),
            repr(self.target()),
            repr_opt(self.inner.task.as_deref())
        )
    }

    fn __eq__(&self, other: &Request) -> bool {
        self.inner == other.inner
    }
}

/// What the policy decided about a request, and why.
#[pyclass(frozen, module = "fourfold._fourfold")]
#[derive(Clone)]
pub struct Decision {
    // INVARIANT: the fields are read from the core value on access, so that a check pays for no
    // copies it does not use.
    inner: fourfold::Decision,
}

impl From<fourfold::Decision> for Decision {
    fn from(decision: fourfold::Decision) -> Decision {
        Decision { inner: decision }
    }
}

#[pymethods]
impl Decision {
    /// `allow`, `deny` or `pending`.
    #[getter]
    fn verdict(&self) -> &'static str {
        match self.inner.verdict {
            Verdict::Allow => "allow",
            Verdict::Deny => "deny",
            Verdict::Pending => "pending",
        }
    }

    /// The id of the rule that decided, if a rule did.
    #[getter]
    fn rule_id(&self) -> Option<&str> {
        self.inner.rule.as_ref().map(|rule| rule.id.as_str())
    }

    /// The policy file of that rule.
    #[getter]
    fn rule_file(&self) -> Option<&str> {
        self.inner
            .rule
            .as_ref()
            .and_then(|rule| rule.file.as_deref())
    }

    /// Its line in that file.
    #[getter]
    fn rule_line(&self) -> Option<u32> {
        self.inner.rule.as_ref().and_then(|rule| rule.line)
    }

    /// Why, in one line.
    #[getter]
    fn reason(&self) -> &str {
        &self.inner.reason
    }

    /// The gates involved.
    #[getter]
    fn gates(&self) -> Vec<String> {
        self.inner.gates.clone()
    }

    /// The approval that holds the request (pending) or that allowed it.
    #[getter]
    fn approval_id(&self) -> Option<&str> {
        self.inner.approval_id.as_deref()
    }

    /// Whether the request may go ahead.
    #[getter]
    fn allowed(&self) -> bool {
        self.inner.is_allowed()
    }

    /// The decision as a dict.
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_python(py, &self.inner)
    }

    fn __bool__(&self) -> bool {
        self.inner.is_allowed()
    }

    fn __repr__(&self) -> String {
        format!(
            "Decision(verdict={}, rule_id={}, reason={})",
            repr(self.verdict()),
            repr_opt(self.rule_id()),
            repr(&self.inner.reason)
        )
    }
}

/// A review gate's approval record: the request it holds, and its state.
#[pyclass(frozen, module = "fourfold._fourfold")]
pub struct Approval {
    /// Its id (what `approve` and `reject` take).
    #[pyo3(get)]
    id: String,
    /// `pending`, `approved`, `rejected`, `used` or `expired`.
    #[pyo3(get)]
    state: &'static str,
    /// The gates that must pass.
    #[pyo3(get)]
    gates: Vec<String>,
    /// Why the request was held.
    #[pyo3(get)]
    reason: String,
    inner: fourfold::Approval,
}

impl From<fourfold::Approval> for Approval {
    fn from(approval: fourfold::Approval) -> Approval {
        Approval {
            id: approval.id.clone(),
            state: approval.state.name(),
            gates: approval.gates.clone(),
            reason: approval.reason.clone(),
            inner: approval,
        }
    }
}

#[pymethods]
impl Approval {
    /// The request the approval holds.
    #[getter]
    fn request(&self) -> Request {
        Request {
            inner: self.inner.request.clone(),
        }
    }

    /// The approval as a dict.
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_python(py, &self.inner)
    }

    fn __repr__(&self) -> String {
        format!(
            "Approval(id={}, state={}, request={})",
            repr(&self.id),
            repr(self.state),
            self.request().__repr__()
        )
    }
}

/// Scoped permissions and review gates. Deny beats gate beats allow; no match is deny; every
/// decision names its rule. Safe to share across threads.
#[pyclass(frozen, module = "fourfold._fourfold")]
pub struct Policy {
    pub(crate) holder: Holder<fourfold::Policy>,
}

impl Policy {
    fn policy(&self) -> &fourfold::Policy {
        self.holder.get(|fourfold| fourfold.policy())
    }
}

#[pymethods]
impl Policy {
    /// A policy from its TOML text (`docs/policy.md`). `root` is the workspace the paths are
    /// relative to; approvals are kept in `store_dir` (in memory without it).
    #[new]
    #[pyo3(signature = (toml, *, root=None, store_dir=None))]
    fn new(toml: &str, root: Option<PathBuf>, store_dir: Option<PathBuf>) -> PyResult<Policy> {
        no_panic(|| {
            let mut builder = fourfold::Policy::builder_from_toml(toml).or_raise()?;
            if let Some(root) = root {
                builder = builder.root(root);
            }
            if let Some(dir) = store_dir {
                builder = builder.store_dir(dir);
            }
            Ok(Policy {
                holder: Holder::Own(Arc::new(builder.build().or_raise()?)),
            })
        })
    }

    /// A policy from a TOML file; approvals are kept in `.fourfold/` beside it.
    #[staticmethod]
    fn from_file(path: PathBuf) -> PyResult<Policy> {
        no_panic(|| {
            Ok(Policy {
                holder: Holder::Own(Arc::new(fourfold::Policy::from_file(path).or_raise()?)),
            })
        })
    }

    /// The workspace root the policy's paths are relative to.
    #[getter]
    fn root(&self) -> String {
        self.policy().root()
    }

    /// Decides `request`. Never raises for a denial: look at `Decision.verdict`.
    fn check(&self, py: Python<'_>, request: &Request) -> PyResult<Decision> {
        no_panic(|| {
            let decision = py
                .detach(|| self.policy().check(&request.inner))
                .or_raise()?;
            Ok(Decision::from(decision))
        })
    }

    /// Whether `request` is allowed outright, deciding nothing: no event is recorded, no gate runs,
    /// no approval is opened, and a request a gate would hold is not allowed. For filtering what
    /// an agent is shown, not for letting an action go ahead (that is `check`).
    fn permits(&self, py: Python<'_>, request: &Request) -> PyResult<bool> {
        no_panic(|| Ok(py.detach(|| self.policy().permits(&request.inner))))
    }

    /// A number that changes whenever the rules in force or the grants do: what `permits`
    /// answered stays true while it is the same.
    #[getter]
    fn generation(&self) -> u64 {
        self.policy().generation()
    }

    /// Approves the pending approval `approval_id`: the identical request is then allowed once.
    #[pyo3(signature = (approval_id, approver, reason=""))]
    fn approve(
        &self,
        py: Python<'_>,
        approval_id: &str,
        approver: &str,
        reason: &str,
    ) -> PyResult<Approval> {
        no_panic(|| {
            let approval = py
                .detach(|| self.policy().approve(approval_id, approver, reason))
                .or_raise()?;
            Ok(Approval::from(approval))
        })
    }

    /// Rejects the pending approval `approval_id`: the request stays denied.
    #[pyo3(signature = (approval_id, approver, reason=""))]
    fn reject(
        &self,
        py: Python<'_>,
        approval_id: &str,
        approver: &str,
        reason: &str,
    ) -> PyResult<Approval> {
        no_panic(|| {
            let approval = py
                .detach(|| self.policy().reject(approval_id, approver, reason))
                .or_raise()?;
            Ok(Approval::from(approval))
        })
    }

    /// The approval record `approval_id`, or `None`.
    fn approval(&self, py: Python<'_>, approval_id: &str) -> PyResult<Option<Approval>> {
        no_panic(|| {
            let approval = py
                .detach(|| self.policy().approval(approval_id))
                .or_raise()?;
            Ok(approval.map(Approval::from))
        })
    }

    /// The approvals still waiting for a reviewer, oldest first.
    fn pending_approvals(&self, py: Python<'_>) -> PyResult<Vec<Approval>> {
        no_panic(|| {
            let approvals = py.detach(|| self.policy().pending_approvals()).or_raise()?;
            Ok(approvals.into_iter().map(Approval::from).collect())
        })
    }

    /// Reads the policy file again and swaps the rules in; on error the old rules stay.
    fn reload(&self, py: Python<'_>) -> PyResult<()> {
        no_panic(|| py.detach(|| self.policy().reload()).or_raise())
    }

    fn __repr__(&self) -> String {
        format!("Policy(root={})", repr(&self.policy().root()))
    }
}
