//! Cross-crate integration tests of fourfold, one module per area.
//!
//! `store` checks every storage backend against the `Store` contract (the PostgreSQL one from
//! `fleet`, which runs the PostgreSQL backend on a real server: store, fleet budgets across
//! processes, approvals across processes, dropped connections);
//! `cost` covers the CostMeter (exact counts against `tiktoken`, prices, budgets, savings);
//! `context` covers the ContextStore (versions, copies, sessions, ingest, snapshots);
//! `bypass` runs the table of bypass attempts in `bypass.toml`; `policy` tells the policy's stories
//! end to end (gates, approvals across restarts, grants, reload, plugins, threads); `session` runs governed agent sessions through all four controls; `props` checks
//! the policy's properties against simple models with proptest; `trace` kills a process
//! mid-write and reads its trace; `tracer` records runs, spans and policy decisions; `reader`
//! reads a governed agent's trace file back, queries it and explains its runs.

mod bypass;
mod context;
mod cost;
mod fleet;
mod policy;
mod props;
mod reader;
mod session;
mod store;
mod trace;
mod tracer;
mod util;
