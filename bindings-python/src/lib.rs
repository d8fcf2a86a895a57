//! Python bindings for fourfold: the `fourfold._fourfold` extension module.
//!
//! INVARIANT: this crate converts types at the edge and holds no logic; every behaviour lives in the
//! `fourfold` core crate. The full Python API arrives with its own issue; until then the module
//! exposes the core's version so that packaging and import can be tested.

use pyo3::prelude::*;

/// The `fourfold._fourfold` extension module.
#[pymodule]
fn _fourfold(module: &Bound<'_, PyModule>) -> PyResult<()> {
    module.add("__version__", fourfold::VERSION)?;
    Ok(())
}
