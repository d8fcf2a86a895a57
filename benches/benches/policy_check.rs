//! Policy check latency: fourfold against Cedar on the same policy and the same requests.
//!
//! For 10, 1,000 and 100,000 rules (see `common/mod.rs` for the policy), one group per rule count
//! times `Policy::check` on five cases (`allow_hit`, `deny_hit`, `no_match`, `compound_command`,
//! `shell_command`) and Cedar's `Authorizer::is_authorized` on the three cases it can express (file reads). Policies,
//! requests and Cedar entities are built before timing, and before timing each case is checked once:
//! both engines must reach the expected verdict, or the bench stops.

mod common;

use std::hint::black_box;
use std::time::Duration;

use cedar_policy::{Authorizer, Decision};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use fourfold::Verdict;

use common::Case;

fn policy_check(criterion: &mut Criterion) {
    for n_rules in common::RULE_COUNTS {
        let specs = common::rule_specs(n_rules);
        let policy = common::fourfold_policy(&specs);
        let cedar_policies = common::cedar_policy_set(&specs);
        let cases = common::cases(n_rules);
        let cedar_entities = common::cedar_entities(&cases);
        let authorizer = Authorizer::new();

        let mut group = criterion.benchmark_group(format!("policy_check_{n_rules}"));
        if n_rules >= 100_000 {
            // Cedar evaluates every policy on every request, which takes milliseconds here.
            group.sample_size(10);
            group.warm_up_time(Duration::from_millis(500));
            group.measurement_time(Duration::from_secs(2));
        } else {
            group.warm_up_time(Duration::from_secs(1));
            group.measurement_time(Duration::from_secs(3));
        }

        for case in &cases {
            check_fourfold(&policy, case, n_rules);
            group.bench_function(BenchmarkId::new("fourfold", case.name), |bencher| {
                bencher.iter(|| {
                    policy
                        .check(black_box(&case.request))
                        .expect("the check completes")
                })
            });
        }
        for case in &cases {
            let Some(cedar_request) = common::cedar_request(&case.request) else {
                continue;
            };
            let response =
                authorizer.is_authorized(&cedar_request, &cedar_policies, &cedar_entities);
            let errors: Vec<String> = response
                .diagnostics()
                .errors()
                .map(ToString::to_string)
                .collect();
            assert!(
                errors.is_empty(),
                "cedar errors on `{}` at {n_rules} rules: {errors:?}",
                case.name
            );
            let cedar_verdict = match response.decision() {
                Decision::Allow => Verdict::Allow,
                Decision::Deny => Verdict::Deny,
            };
            assert_eq!(
                cedar_verdict, case.expected,
                "cedar disagrees with fourfold on `{}` at {n_rules} rules",
                case.name
            );
            group.bench_function(BenchmarkId::new("cedar", case.name), |bencher| {
                bencher.iter(|| {
                    authorizer.is_authorized(
                        black_box(&cedar_request),
                        &cedar_policies,
                        &cedar_entities,
                    )
                })
            });
        }
        group.finish();
    }
}

/// Checks, once and untimed, that fourfold reaches the case's expected verdict; the bench stops if
/// not, so it never times a wrong answer.
fn check_fourfold(policy: &fourfold::Policy, case: &Case, n_rules: usize) {
    let decision = policy.check(&case.request).expect("the check completes");
    assert_eq!(
        decision.verdict, case.expected,
        "fourfold decided `{}` at {n_rules} rules wrongly: {}",
        case.name, decision.reason
    );
}

criterion_group!(benches, policy_check);
criterion_main!(benches);
