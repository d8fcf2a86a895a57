//! Any text as a shell command, a path and a URL against the demo's policy: a decision or a typed
//! error, never a panic.
#![no_main]

use std::sync::{Arc, OnceLock};

use fourfold::{MemoryStore, Policy, Request};
use libfuzzer_sys::fuzz_target;

fn policy() -> &'static Policy {
    static POLICY: OnceLock<Policy> = OnceLock::new();
    POLICY.get_or_init(|| {
        let file = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/demo/policy.toml");
        Policy::builder_from_file(file.as_ref())
            .expect("the demo policy parses")
            .store(Arc::new(MemoryStore::new()))
            .build()
            .expect("the demo policy builds")
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let policy = policy();
    let _ = policy.check(&Request::run("coder", text));
    let _ = policy.check(&Request::read("coder", text));
    let _ = policy.check(&Request::net("coder", text));
});
