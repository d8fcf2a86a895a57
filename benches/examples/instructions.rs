//! Instructions per policy check: a noise-free figure beside criterion's wall-clock medians.
//!
//! Builds the bench policy of `n_rules` rules (the same generator as `benches/policy_check.rs`), then
//! checks each bench case `N_CHECKS` times inside `measure`. Run it under callgrind with
//! `benches/count-instructions.sh`, which collects only inside `measure` and dumps one profile per
//! case, so a case's instruction count divided by `N_CHECKS` is the cost of one check.

#[path = "../benches/common/mod.rs"]
#[allow(dead_code)]
mod common;

use std::hint::black_box;

/// How many times each case is checked inside one `measure` call.
pub const N_CHECKS: usize = 1_000;

#[inline(never)]
fn measure(policy: &fourfold::Policy, request: &fourfold::Request) {
    for _ in 0..N_CHECKS {
        let _ = black_box(policy.check(black_box(request)));
    }
}

fn main() {
    let n_rules: usize = std::env::args()
        .nth(1)
        .and_then(|text| text.parse().ok())
        .unwrap_or(1_000);
    let policy = common::fourfold_policy(&common::rule_specs(n_rules));
    for case in common::cases(n_rules) {
        let decision = policy.check(&case.request).expect("the check completes");
        assert_eq!(
            decision.verdict, case.expected,
            "{}: {}",
            case.name, decision.reason
        );
        println!("{}", case.name);
        measure(&policy, &case.request);
    }
}
