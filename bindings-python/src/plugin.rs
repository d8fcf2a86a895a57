//! Python objects as fourfold plugins: `on_event(event)` listens, `check(request)` decides a gate.

use fourfold::{GateOutcome, Plugin};
use pyo3::prelude::*;

use crate::error::raise;
use crate::policy::Request;
use crate::trace::Event;

/// A Python object installed as a plugin. Its `name` names the gate it checks (declare the gate in
/// the policy with `kind = "plugin"`).
///
/// INVARIANT: fail closed. A `check` that raises, or returns anything but `True`, `False`,
/// `"pending"` or a `(verdict, reason)` pair of those, fails the gate, naming what went wrong.
pub(crate) struct PyPlugin {
    name: String,
    object: Py<PyAny>,
    listens: bool,
    checks: bool,
}

impl PyPlugin {
    /// Wraps `object`, which must have a `name` and at least one of `on_event` and `check`.
    pub(crate) fn new(object: &Bound<'_, PyAny>) -> PyResult<PyPlugin> {
        let name: String = match object.getattr("name") {
            Ok(name) => name.extract().map_err(|_| {
                raise(
                    "PluginError",
                    "a plugin's `name` must be a string".into(),
                    Vec::new(),
                )
            })?,
            Err(_) => {
                return Err(raise(
                    "PluginError",
                    "a plugin needs a `name` attribute (the gate it checks)".into(),
                    Vec::new(),
                ))
            }
        };
        let callable = |method: &str| {
            object
                .getattr(method)
                .map(|attribute| attribute.is_callable())
                .unwrap_or(false)
        };
        let listens = callable("on_event");
        let checks = callable("check");
        if !listens && !checks {
            return Err(raise(
                "PluginError",
                format!("plugin `{name}` has neither an `on_event` nor a `check` method"),
                Vec::new(),
            ));
        }
        Ok(PyPlugin {
            name,
            object: object.clone().unbind(),
            listens,
            checks,
        })
    }
}

fn describe(py: Python<'_>, error: &PyErr) -> String {
    let kind = error
        .get_type(py)
        .name()
        .map(|name| name.to_string())
        .unwrap_or_else(|_| "exception".into());
    format!("{kind}: {}", error.value(py))
}

/// Reads what `check` returned.
fn outcome(name: &str, returned: &Bound<'_, PyAny>) -> GateOutcome {
    let verdict = |value: &Bound<'_, PyAny>, reason: String| -> Option<GateOutcome> {
        if let Ok(passed) = value.cast::<pyo3::types::PyBool>() {
            return Some(if passed.is_true() {
                GateOutcome::Pass { reason }
            } else {
                GateOutcome::Fail { reason }
            });
        }
        match value.extract::<String>().ok()?.as_str() {
            "pass" => Some(GateOutcome::Pass { reason }),
            "fail" => Some(GateOutcome::Fail { reason }),
            "pending" => Some(GateOutcome::Pending { reason }),
            _ => None,
        }
    };
    let default_reason = format!("plugin `{name}` decided");
    if let Some(decided) = verdict(returned, default_reason) {
        return decided;
    }
    if let Ok((value, reason)) = returned.extract::<(Bound<'_, PyAny>, String)>() {
        if let Some(decided) = verdict(&value, reason) {
            return decided;
        }
    }
    let shown = returned
        .repr()
        .map(|repr| repr.to_string())
        .unwrap_or_else(|_| "an unprintable value".into());
    GateOutcome::Fail {
        reason: format!(
            "plugin `{name}` returned {shown} from check; expected True, False, \"pending\" or (verdict, reason)"
        ),
    }
}

impl Plugin for PyPlugin {
    fn name(&self) -> &str {
        &self.name
    }

    fn listens_to(&self, _kind: fourfold::trace::EventKindName) -> bool {
        self.listens
    }

    fn on_event(&self, event: &fourfold::Event) {
        if !self.listens {
            return;
        }
        Python::attach(|py| {
            let called = Py::new(py, Event::from(event.clone()))
                .and_then(|event| self.object.bind(py).call_method1("on_event", (event,)));
            if let Err(error) = called {
                // An event cannot be refused, so a listener's exception is reported the way Python
                // reports exceptions it cannot raise (sys.unraisablehook), as a PluginError.
                let reported = raise(
                    "PluginError",
                    format!(
                        "plugin `{}` raised in on_event: {}",
                        self.name,
                        describe(py, &error)
                    ),
                    Vec::new(),
                );
                reported.set_cause(py, Some(error));
                reported.write_unraisable(py, Some(self.object.bind(py)));
            }
        });
    }

    fn check(&self, request: &fourfold::Request) -> GateOutcome {
        if !self.checks {
            return GateOutcome::Fail {
                reason: format!("plugin `{}` has no gate check", self.name),
            };
        }
        Python::attach(|py| {
            let request = Request {
                inner: request.clone(),
            };
            match self.object.bind(py).call_method1("check", (request,)) {
                Ok(returned) => outcome(&self.name, &returned),
                Err(error) => GateOutcome::Fail {
                    reason: format!(
                        "plugin `{}` raised in check: {}",
                        self.name,
                        describe(py, &error)
                    ),
                },
            }
        })
    }
}
