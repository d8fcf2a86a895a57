//! Work run off the JS thread (on libuv's thread pool, or on a thread of its own for long waits),
//! settled as a Promise of a JSON value.

use std::sync::{Arc, Mutex};

use napi::bindgen_prelude::{Env, Object, Task, ToNapiValue, TypeName, ValueType};
use napi::sys;
use serde_json::Value;

use crate::error::{shield_value, Fallible, FourfoldError, FOURFOLD_ERROR};

type Work = Box<dyn FnOnce() -> Fallible<Value> + Send>;

/// A closure run off the JS thread; its panic or error rejects the Promise with a fourfold error.
pub struct JsonTask {
    work: Option<Work>,
}

impl JsonTask {
    /// A task that runs `work` on the thread pool.
    pub fn new(work: impl FnOnce() -> Fallible<Value> + Send + 'static) -> JsonTask {
        JsonTask {
            work: Some(Box::new(work)),
        }
    }
}

impl Task for JsonTask {
    type Output = Fallible<Value>;
    type JsValue = Json;

    fn compute(&mut self) -> napi::Result<Fallible<Value>> {
        Ok(match self.work.take() {
            Some(work) => shield_value(work),
            None => Err(FourfoldError::new(FOURFOLD_ERROR, "the task already ran")),
        })
    }

    fn resolve(&mut self, env: Env, output: Fallible<Value>) -> napi::Result<Json> {
        output.map(Json).map_err(|error| error.into_js(&env))
    }
}

/// A JSON value settling a Promise (the generated types are given with `ts_return_type`).
pub struct Json(Value);

impl TypeName for Json {
    fn type_name() -> &'static str {
        "unknown"
    }

    fn value_type() -> ValueType {
        ValueType::Unknown
    }
}

impl ToNapiValue for Json {
    unsafe fn to_napi_value(env: sys::napi_env, value: Json) -> napi::Result<sys::napi_value> {
        // SAFETY: called by napi with the env of the JS thread that settles the Promise.
        unsafe { Value::to_napi_value(env, value.0) }
    }
}

/// How a Promise made by [`on_own_thread`] is settled, on the JS thread.
type Settle = Box<dyn FnOnce(Env) -> napi::Result<Json> + Send>;

/// Runs `work` on a thread of its own and returns a Promise settled as a [`JsonTask`]'s is: for
/// waits that may last long, which on libuv's thread pool (four threads by default) would hold
/// up every other task of the process.
pub fn on_own_thread<'env>(
    env: &'env Env,
    name: &str,
    work: impl FnOnce() -> Fallible<Value> + Send + 'static,
) -> napi::Result<Object<'env>> {
    let (deferred, promise) = env.create_deferred::<Json, Settle>()?;
    // Shared with the thread, so that the Promise is rejected if the thread cannot start.
    let slot = Arc::new(Mutex::new(Some(deferred)));
    let in_thread = Arc::clone(&slot);
    let spawned = std::thread::Builder::new()
        .name(name.to_string())
        .spawn(move || {
            let output = shield_value(work);
            let deferred = in_thread.lock().ok().and_then(|mut slot| slot.take());
            if let Some(deferred) = deferred {
                deferred.resolve(Box::new(move |env: Env| {
                    output.map(Json).map_err(|error| error.into_js(&env))
                }));
            }
        });
    if let Err(error) = spawned {
        let deferred = slot.lock().ok().and_then(|mut slot| slot.take());
        if let Some(deferred) = deferred {
            deferred.reject(napi::Error::from_reason(format!(
                "fourfold could not start a thread: {error}"
            )));
        }
    }
    Ok(promise)
}
