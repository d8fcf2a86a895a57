//! Plugins written in JS: an `onEvent` listener and a gate `check`.
//!
//! `onEvent` is a threadsafe function: every event is queued to the JS thread as JSON, whatever
//! thread emitted it, and the listener runs on a later tick, never inside the call that caused it.
//! A gate `check` must answer while the policy decides, which happens inside `session.guard` on
//! the JS thread, so it is called there directly. The JS layer (`lib/index.js`) wraps both so that
//! a throw never reaches the event loop: a throwing listener is reported to the plugin's `onError`,
//! and a throwing check answers `fail`.
//!
//! INVARIANT: fail closed. A check that throws, returns anything but a valid outcome, or is asked
//! from a thread other than the JS thread it was created on, fails its gate.

use std::sync::Arc;
use std::thread::ThreadId;

use fourfold::policy::Request;
use fourfold::{Event, GateOutcome, Plugin};
use napi::bindgen_prelude::{Env, Function, FunctionRef, JsObjectValue, Object};
use napi::sys;
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use serde_json::Value;

use crate::error::{Fallible, FourfoldError, FOURFOLD_PLUGIN_ERROR};
use crate::json::to_json;

type EventListener = ThreadsafeFunction<String, (), String, napi::Status, false, true>;

/// The JS env a check is called in, and the thread that owns it.
struct Owner {
    env: sys::napi_env,
    thread: ThreadId,
}

// SAFETY: the raw env is only dereferenced on `thread`, the thread that created it (checked in
// `JsPlugin::check` before every use).
unsafe impl Send for Owner {}
// SAFETY: as above; the env is never touched from another thread.
unsafe impl Sync for Owner {}

/// A plugin whose listener and gate check are JS functions.
pub struct JsPlugin {
    name: String,
    on_event: Option<EventListener>,
    check: Option<(FunctionRef<String, String>, Owner)>,
}

impl JsPlugin {
    /// The plugin a JS object `{ name, onEvent?, check? }` describes (as wrapped by the JS layer:
    /// `onEvent(json: string)`, `check(json: string): string`).
    pub fn from_object(env: &Env, object: &Object) -> Fallible<Arc<JsPlugin>> {
        let invalid = |what: &str| {
            FourfoldError::new(FOURFOLD_PLUGIN_ERROR, format!("a plugin needs {what}"))
        };
        let name: String = object
            .get_named_property("name")
            .map_err(|_| invalid("a string `name`"))?;
        let on_event: Option<Function<String, ()>> = object
            .get("onEvent")
            .map_err(|_| invalid("`onEvent` to be a function"))?;
        let check: Option<Function<String, String>> = object
            .get("check")
            .map_err(|_| invalid("`check` to be a function"))?;
        let on_event = match on_event {
            Some(function) => Some(
                function
                    .build_threadsafe_function::<String>()
                    .callee_handled::<false>()
                    .weak::<true>()
                    .build()
                    .map_err(|error| {
                        FourfoldError::new(
                            FOURFOLD_PLUGIN_ERROR,
                            format!("plugin `{name}`: {error}"),
                        )
                    })?,
            ),
            None => None,
        };
        let check = match check {
            Some(function) => Some((
                function.create_ref().map_err(|error| {
                    FourfoldError::new(FOURFOLD_PLUGIN_ERROR, format!("plugin `{name}`: {error}"))
                })?,
                Owner {
                    env: env.raw(),
                    thread: std::thread::current().id(),
                },
            )),
            None => None,
        };
        Ok(Arc::new(JsPlugin {
            name,
            on_event,
            check,
        }))
    }
}

/// An event as JS sees it: camelCase keys, `kind` as its name (`gate`, `cost`, ...) and the
/// kind's fields under a key of that name.
pub fn event_json(event: &Event) -> Fallible<Value> {
    let mut value = to_json(event)?;
    let name = event.kind.name();
    if let Some(object) = value.as_object_mut() {
        let mut payload = object
            .remove("kind")
            .and_then(|kind| {
                kind.as_object()
                    .and_then(|kind| kind.values().next().cloned())
            })
            .unwrap_or(Value::Null);
        if let Some(outcome) = payload.get_mut("outcome") {
            if let Some(text) = outcome.as_str() {
                *outcome = Value::String(text.to_lowercase());
            }
        }
        object.insert("kind".into(), Value::String(name.into()));
        object.insert(name.into(), payload);
    }
    Ok(value)
}

fn outcome_from(answer: &str) -> GateOutcome {
    let fail = |reason: String| GateOutcome::Fail { reason };
    let Ok(Value::Object(object)) = serde_json::from_str::<Value>(answer) else {
        return fail(format!(
            "the gate check returned `{answer}`, not an outcome"
        ));
    };
    let reason = object
        .get("reason")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    match object.get("outcome").and_then(Value::as_str) {
        Some("pass") => GateOutcome::Pass { reason },
        Some("pending") => GateOutcome::Pending { reason },
        Some("fail") => GateOutcome::Fail { reason },
        _ => fail(format!(
            "the gate check returned `{answer}`, not an outcome"
        )),
    }
}

impl Plugin for JsPlugin {
    fn name(&self) -> &str {
        &self.name
    }

    fn on_event(&self, event: &Event) {
        let Some(listener) = &self.on_event else {
            return;
        };
        if let Ok(json) = event_json(event) {
            // A full queue or a closing env drops the event; the agent is never held up by it.
            let _ = listener.call(json.to_string(), ThreadsafeFunctionCallMode::NonBlocking);
        }
    }

    fn check(&self, request: &Request) -> GateOutcome {
        let Some((function, owner)) = &self.check else {
            return GateOutcome::Fail {
                reason: format!("plugin `{}` has no gate check", self.name),
            };
        };
        if std::thread::current().id() != owner.thread {
            return GateOutcome::Fail {
                reason: format!(
                    "plugin `{}`: a JS gate check can only run on its JS thread",
                    self.name
                ),
            };
        }
        let request_json = match to_json(request) {
            Ok(json) => json.to_string(),
            Err(error) => {
                return GateOutcome::Fail {
                    reason: format!("{error:?}"),
                }
            }
        };
        let env = Env::from_raw(owner.env);
        let answer = function
            .borrow_back(&env)
            .and_then(|function| function.call(request_json));
        match answer {
            Ok(answer) => outcome_from(&answer),
            Err(error) => GateOutcome::Fail {
                reason: format!(
                    "plugin `{}`: the gate check failed: {}",
                    self.name, error.reason
                ),
            },
        }
    }
}
