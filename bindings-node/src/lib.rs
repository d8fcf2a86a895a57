//! Node.js bindings for fourfold, built with napi-rs.
//!
//! One file per core area, as in the core: `policy.rs`, `trace.rs`, `context.rs`, `cost.rs`,
//! `session.rs` (`Fourfold` and `AgentSession`), `plugin.rs` (JS plugins), `error.rs` (every
//! core error as a JS `Error` with a stable `code`) and `call.rs` (`session.guard` and
//! `policy.check` as N-API functions written by hand, for speed).
//!
//! INVARIANT: this crate converts types at the edge and holds no logic; every behaviour lives in the
//! `fourfold` core crate. Every exported function runs inside `error::shield` (the hand-written ones
//! of `call.rs` inside `error::shield_value`), so that no Rust panic reaches Node. Work that can take long (ingesting, asking a large store, reading a trace) runs on
//! libuv's thread pool as an `AsyncTask` and returns a Promise; cheap checks stay synchronous.

#![deny(missing_docs)]
// In a test build napi-derive does not register exported functions, so they look unused.
#![cfg_attr(test, allow(dead_code))]

mod call;
mod context;
mod cost;
mod error;
mod json;
mod plugin;
mod policy;
mod session;
mod task;
mod trace;

use napi_derive::napi;

/// The version of the fourfold core this addon was built from.
#[napi]
pub fn version() -> String {
    fourfold::VERSION.to_string()
}

/// Every error code a fourfold error can carry.
#[napi]
pub fn error_codes() -> Vec<String> {
    error::CODES.iter().map(|code| code.to_string()).collect()
}

/// Panics inside the shield, so the tests can prove that a Rust panic reaches JS as a
/// `FOURFOLD_PANIC` error and not as a crash. Not part of the API (left out of the types).
#[napi(js_name = "__panicForTests", skip_typescript)]
pub fn panic_for_tests(env: napi::Env) -> napi::Result<()> {
    error::shield(&env, || panic!("a panic the tests asked for"))
}

/// [`panic_for_tests`] on the thread pool: the Promise rejects with `FOURFOLD_PANIC`.
#[napi(js_name = "__panicForTestsAsync", skip_typescript)]
pub fn panic_for_tests_async() -> napi::bindgen_prelude::AsyncTask<task::JsonTask> {
    napi::bindgen_prelude::AsyncTask::new(task::JsonTask::new(|| {
        panic!("a panic the tests asked for, off the JS thread")
    }))
}
