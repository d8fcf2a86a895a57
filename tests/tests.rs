//! Cross-crate integration tests of fourfold, one module per area.
//!
//! `bypass` runs the table of bypass attempts in `bypass.toml`; `policy` tells the policy's stories
//! end to end (gates, approvals across restarts, grants, reload, plugins, threads); `props` checks
//! the policy's properties against simple models with proptest; `trace` kills a process
//! mid-write and reads its trace.

mod bypass;
mod policy;
mod props;
mod trace;
mod util;
