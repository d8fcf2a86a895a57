//! Shared helpers live in `util.rs`, used by the integration test binary `tests.rs`.
