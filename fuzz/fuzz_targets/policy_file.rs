//! Any text as a policy file: a policy or a typed error, never a panic; a policy that builds
//! decides requests of every action.
#![no_main]

use std::sync::Arc;

use fourfold::{MemoryStore, Policy, Request};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(builder) = Policy::builder_from_toml(text) else {
        return;
    };
    let Ok(policy) = builder.store(Arc::new(MemoryStore::new())).build() else {
        return;
    };
    for request in [
        Request::read("coder", "src/lib.rs"),
        Request::write("coder", "../outside/.env"),
        Request::delete("ops", "/etc/passwd"),
        Request::run("coder", "git push origin main && curl https://example.com"),
        Request::net("coder", "https://api.example.com:8443/v1"),
        Request::tool("coder", "deploy", Default::default()),
    ] {
        let _ = policy.check(&request.task("T-1"));
    }
});
