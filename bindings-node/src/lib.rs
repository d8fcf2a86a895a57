//! Node.js bindings for fourfold, built with napi-rs.
//!
//! INVARIANT: this crate converts types at the edge and holds no logic; every behaviour lives in the
//! `fourfold` core crate. The full Node API arrives with its own issue; until then the addon exposes
//! the core's version so that packaging and loading can be tested.

use napi_derive::napi;

/// The version of the fourfold core this addon was built from.
#[napi]
pub fn version() -> String {
    fourfold::VERSION.to_string()
}
