//! Every core error becomes one class of the `fourfold.exceptions` hierarchy, here and nowhere else.
//!
//! The classes are declared in Python (`python/fourfold/exceptions.py`) because some of them also
//! subclass a built-in (`ConfigError` is a `ValueError`, `TraceError` an `OSError`), which a class
//! made with pyo3's `create_exception!` cannot do. This file looks them up once and raises them with
//! the fields a caller needs (the decision, the approval id, the changed sections) as attributes.

use std::any::Any;
use std::panic::{catch_unwind, AssertUnwindSafe};

use fourfold::context::ContextError;
use fourfold::cost::{BudgetExceeded, CostError};
use fourfold::policy::{ApprovalError, PolicyError, PolicyLoadError};
use fourfold::trace::TraceError;
use fourfold::{ConfigError, PluginError, SessionError, StoreError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyList, PyModule, PyType};
use pyo3::IntoPyObjectExt;

use crate::context::Change;
use crate::policy::Decision;

static EXCEPTIONS: PyOnceLock<Py<PyModule>> = PyOnceLock::new();

/// The exception class `name` of `fourfold.exceptions`.
fn class<'py>(py: Python<'py>, name: &str) -> PyResult<Bound<'py, PyType>> {
    let module = EXCEPTIONS.get_or_try_init(py, || {
        PyModule::import(py, "fourfold.exceptions").map(Bound::unbind)
    })?;
    Ok(module.bind(py).getattr(name)?.cast_into::<PyType>()?)
}

/// A `fourfold.exceptions.<name>` with `message`, and `attributes` set on the instance.
pub(crate) fn raise(name: &str, message: String, attributes: Vec<(&str, Py<PyAny>)>) -> PyErr {
    Python::attach(|py| {
        let built = class(py, name).and_then(|class| {
            let instance = class.call1((message.clone(),))?;
            for (attribute, value) in attributes {
                instance.setattr(attribute, value)?;
            }
            Ok(PyErr::from_value(instance))
        });
        // INVARIANT: the lookup fails only when the `fourfold` package is broken or missing; the
        // error that says so is then the more useful one to raise.
        built.unwrap_or_else(|error| error)
    })
}

/// Converts a core error into the matching Python exception.
pub(crate) trait IntoPyError {
    /// The Python exception.
    fn into_py_error(self) -> PyErr;
}

/// `?` for core results: `result.or_raise()?`.
pub(crate) trait OrRaise<T> {
    /// The value, or the core error as its Python exception.
    fn or_raise(self) -> PyResult<T>;
}

impl<T, E: IntoPyError> OrRaise<T> for Result<T, E> {
    fn or_raise(self) -> PyResult<T> {
        self.map_err(IntoPyError::into_py_error)
    }
}

/// The `decision` attribute of the errors that carry one; `rule_id`, `reason` and `approval_id`
/// read through to it (see `exceptions.py`).
fn decision_attributes(decision: fourfold::Decision) -> Vec<(&'static str, Py<PyAny>)> {
    Python::attach(|py| match Py::new(py, Decision::from(decision)) {
        Ok(value) => vec![("decision", value.into_any())],
        Err(_) => Vec::new(),
    })
}

impl IntoPyError for SessionError {
    fn into_py_error(self) -> PyErr {
        let message = self.to_string();
        match self {
            SessionError::Denied(decision) => {
                raise("PolicyDenied", message, decision_attributes(*decision))
            }
            SessionError::Pending(decision) => {
                raise("GatePending", message, decision_attributes(*decision))
            }
            SessionError::StaleContext { decision, changes } => {
                let mut attributes = decision_attributes(*decision);
                let changes = Python::attach(|py| {
                    let changes: Vec<Change> = changes.into_iter().map(Change::from).collect();
                    PyList::new(py, changes).map(|list| list.into_any().unbind())
                });
                if let Ok(changes) = changes {
                    attributes.push(("changes", changes));
                }
                raise("StaleContext", message, attributes)
            }
            SessionError::BudgetExceeded(exceeded) => exceeded.into_py_error(),
            SessionError::Policy(error) => error.into_py_error(),
            SessionError::Cost(error) => error.into_py_error(),
            SessionError::Context(error) => error.into_py_error(),
            SessionError::Missing(_) => raise("MissingControl", message, Vec::new()),
        }
    }
}

impl IntoPyError for BudgetExceeded {
    fn into_py_error(self) -> PyErr {
        let attributes = Python::attach(|py| {
            let mut attributes: Vec<(&str, Py<PyAny>)> = Vec::new();
            if let Ok(value) = self.budget().into_py_any(py) {
                attributes.push(("budget", value));
            }
            if let Ok(value) = self.unit().into_py_any(py) {
                attributes.push(("unit", value));
            }
            for (name, amount) in [
                ("limit", self.limit()),
                ("spent", self.spent()),
                ("reserved", self.reserved()),
                ("requested", self.requested()),
            ] {
                if let Ok(value) = amount.into_py_any(py) {
                    attributes.push((name, value));
                }
            }
            attributes
        });
        raise("BudgetExceeded", self.to_string(), attributes)
    }
}

impl IntoPyError for PolicyError {
    fn into_py_error(self) -> PyErr {
        let message = self.to_string();
        match self {
            PolicyError::Store(error) => error.into_py_error(),
            PolicyError::InvalidRequest(_) => raise("InvalidRequest", message, Vec::new()),
            PolicyError::Approval(error) => error.into_py_error(),
            PolicyError::InvalidGrant(_) => raise("InvalidPolicy", message, Vec::new()),
            _ => raise("FourfoldError", message, Vec::new()),
        }
    }
}

impl IntoPyError for ApprovalError {
    fn into_py_error(self) -> PyErr {
        raise("ApprovalError", self.to_string(), Vec::new())
    }
}

impl IntoPyError for PolicyLoadError {
    fn into_py_error(self) -> PyErr {
        raise("InvalidPolicy", self.to_string(), Vec::new())
    }
}

impl IntoPyError for StoreError {
    fn into_py_error(self) -> PyErr {
        raise("StoreError", self.to_string(), Vec::new())
    }
}

impl IntoPyError for TraceError {
    fn into_py_error(self) -> PyErr {
        let message = self.to_string();
        match self {
            TraceError::Frame(_)
            | TraceError::NotATrace { .. }
            | TraceError::UnsupportedVersion { .. } => raise("TraceCorrupt", message, Vec::new()),
            _ => raise("TraceError", message, Vec::new()),
        }
    }
}

impl IntoPyError for ContextError {
    fn into_py_error(self) -> PyErr {
        let message = self.to_string();
        match self {
            ContextError::Store(error) => error.into_py_error(),
            ContextError::InvalidKey { .. }
            | ContextError::InvalidPrefix { .. }
            | ContextError::InvalidGlob { .. } => raise("InvalidRequest", message, Vec::new()),
            _ => raise("ContextError", message, Vec::new()),
        }
    }
}

impl IntoPyError for CostError {
    fn into_py_error(self) -> PyErr {
        let message = self.to_string();
        match self {
            CostError::Exceeded(exceeded) => exceeded.into_py_error(),
            CostError::UnknownModel(_) | CostError::Count(_) => {
                raise("UnknownModel", message, Vec::new())
            }
            CostError::Usage(_) => raise("InvalidRequest", message, Vec::new()),
            CostError::Budget(_) | CostError::Price(_) => raise("ConfigError", message, Vec::new()),
            CostError::Store(error) => error.into_py_error(),
            _ => raise("CostError", message, Vec::new()),
        }
    }
}

impl IntoPyError for fourfold::cost::CountError {
    fn into_py_error(self) -> PyErr {
        raise("UnknownModel", self.to_string(), Vec::new())
    }
}

impl IntoPyError for fourfold::cost::BudgetError {
    fn into_py_error(self) -> PyErr {
        raise("ConfigError", self.to_string(), Vec::new())
    }
}

impl IntoPyError for fourfold::cost::PriceError {
    fn into_py_error(self) -> PyErr {
        raise("ConfigError", self.to_string(), Vec::new())
    }
}

impl IntoPyError for ConfigError {
    fn into_py_error(self) -> PyErr {
        let message = self.to_string();
        match self {
            ConfigError::Policy(error) => error.into_py_error(),
            _ => raise("ConfigError", message, Vec::new()),
        }
    }
}

impl IntoPyError for PluginError {
    fn into_py_error(self) -> PyErr {
        raise("PluginError", self.to_string(), Vec::new())
    }
}

impl IntoPyError for fourfold::trace::RedactError {
    fn into_py_error(self) -> PyErr {
        raise("ConfigError", self.to_string(), Vec::new())
    }
}

/// A `ValueError`-like `InvalidRequest` for bad arguments the binding itself finds.
pub(crate) fn invalid_request(message: impl Into<String>) -> PyErr {
    raise("InvalidRequest", message.into(), Vec::new())
}

/// Runs `body`, turning a Rust panic into `fourfold.FourfoldPanic` (a `FourfoldError`) with the
/// panic's message, so no
/// panic reaches Python as pyo3's `PanicException` (a `BaseException` that `except Exception`
/// would not catch).
pub(crate) fn no_panic<T>(body: impl FnOnce() -> PyResult<T>) -> PyResult<T> {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(result) => result,
        Err(payload) => Err(raise(
            "FourfoldPanic",
            format!(
                "internal error (a bug in fourfold): {}",
                panic_message(&*payload)
            ),
            Vec::new(),
        )),
    }
}

fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(message) = payload.downcast_ref::<&str>() {
        message.to_string()
    } else if let Some(message) = payload.downcast_ref::<String>() {
        message.clone()
    } else {
        "panic without a message".to_string()
    }
}
