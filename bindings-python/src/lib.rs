//! Python bindings for fourfold: the `fourfold._fourfold` extension module.
//!
//! INVARIANT: this crate converts types at the edge and holds no logic; every behaviour lives in the
//! `fourfold` core crate. Each file mirrors a face of the core (`policy.rs`, `trace.rs`,
//! `context.rs`, `cost.rs`, `session.rs`), errors map in `error.rs` alone, and every method runs
//! inside `error::no_panic`, so a Rust panic reaches Python as `fourfold.FourfoldError`. Methods
//! that call into the core release the GIL while they run, so that a Python plugin called from the
//! core on another thread can take it, and long operations do not stall other Python threads.

// Python methods take their options as keyword arguments, so many of them have more than clippy's
// seven; and the core's session results carry the whole decision in their error, by design.
#![allow(clippy::too_many_arguments, clippy::result_large_err)]

use pyo3::prelude::*;

mod context;
mod convert;
mod cost;
mod error;
mod plugin;
mod policy;
mod session;
mod trace;

/// Panics inside the binding, to test that a panic becomes `fourfold.FourfoldError`.
#[pyfunction]
fn _panic_for_tests(message: &str) -> PyResult<()> {
    error::no_panic(|| panic!("{message}"))
}

/// The `fourfold._fourfold` extension module.
#[pymodule]
fn _fourfold(module: &Bound<'_, PyModule>) -> PyResult<()> {
    module.add("__version__", fourfold::VERSION)?;
    module.add_class::<policy::Policy>()?;
    module.add_class::<policy::Request>()?;
    module.add_class::<policy::Decision>()?;
    module.add_class::<policy::Approval>()?;
    module.add_class::<trace::Tracer>()?;
    module.add_class::<trace::Run>()?;
    module.add_class::<trace::Span>()?;
    module.add_class::<trace::Event>()?;
    module.add_class::<trace::TraceReader>()?;
    module.add_class::<context::ContextStore>()?;
    module.add_class::<context::Answer>()?;
    module.add_class::<context::Hit>()?;
    module.add_class::<context::Rename>()?;
    module.add_class::<context::Section>()?;
    module.add_class::<context::Change>()?;
    module.add_class::<context::ChangeFeed>()?;
    module.add_class::<context::SharedDocuments>()?;
    module.add_class::<cost::CostMeter>()?;
    module.add_class::<cost::Budget>()?;
    module.add_class::<cost::CostRecord>()?;
    module.add_class::<cost::Reservation>()?;
    module.add_class::<session::Fourfold>()?;
    module.add_class::<session::AgentSession>()?;
    module.add_function(wrap_pyfunction!(cost::count_tokens, module)?)?;
    module.add_function(wrap_pyfunction!(cost::count_chat_tokens, module)?)?;
    module.add_function(wrap_pyfunction!(cost::is_estimate, module)?)?;
    module.add_function(wrap_pyfunction!(_panic_for_tests, module)?)?;
    Ok(())
}
