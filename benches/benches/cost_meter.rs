//! CostMeter overhead per model call, with 1, 2 and 8 threads contending for one meter.
//!
//! `cost_record` times `CostMeter::record` of a small usage (priced from the built-in LiteLLM
//! table) and `cost_reserve_commit` times `reserve` of an estimate followed by `commit` of the
//! actual. Each meter enforces three budgets that cover every call (a fleet money budget, an agent
//! token budget and a rolling task budget), with limits no call reaches, so every call does the
//! full check. Threads use 8 agents in turn. One iteration is one call on each thread, all
//! threads started together; criterion's throughput is calls per second across the threads.
//! There is no peer: no other library enforces budgets in-process to compare with, so the
//! figures are the meter's cost beside a model call (hundreds of milliseconds).

use std::hint::black_box;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use fourfold::cost::{Budget, CostMeter, Scope, TokenCounts, Usage};

const THREAD_COUNTS: [usize; 3] = [1, 2, 8];

fn meter() -> CostMeter {
    CostMeter::builder()
        .budget(Budget::money(Scope::Fleet, "USD").hard(1e12))
        .budget(Budget::tokens(Scope::Agent("agent-0".into())).hard(1e18))
        .budget(
            Budget::tokens(Scope::Task("task".into()))
                .soft(1e17)
                .hard(1e18)
                .rolling(3600),
        )
        .build()
        .expect("the bench meter builds")
}

fn usages() -> Vec<Usage> {
    let counts = TokenCounts {
        input: 1200,
        output: 300,
        cache_read: 1024,
        cache_write: 0,
        reasoning: 64,
    };
    (0..8)
        .map(|agent_idx| Usage::new(format!("agent-{agent_idx}"), "gpt-4o", counts).task("task"))
        .collect()
}

/// Runs `call` `iters` times on each of `n_threads` threads at once; returns the wall time.
fn contend(n_threads: usize, iters: u64, call: Arc<dyn Fn(&Usage) + Send + Sync>) -> Duration {
    let barrier = Arc::new(Barrier::new(n_threads + 1));
    let usages = Arc::new(usages());
    let handles: Vec<_> = (0..n_threads)
        .map(|thread_idx| {
            let barrier = Arc::clone(&barrier);
            let usages = Arc::clone(&usages);
            let call = Arc::clone(&call);
            std::thread::spawn(move || {
                let usage = &usages[thread_idx % usages.len()];
                barrier.wait();
                for _ in 0..iters {
                    call(usage);
                }
            })
        })
        .collect();
    barrier.wait();
    let started = Instant::now();
    for handle in handles {
        handle.join().expect("a bench thread finished");
    }
    started.elapsed()
}

fn cost_meter(criterion: &mut Criterion) {
    let mut group = criterion.benchmark_group("cost_record");
    for n_threads in THREAD_COUNTS {
        group.throughput(Throughput::Elements(n_threads as u64));
        group.bench_function(BenchmarkId::new("record", n_threads), |bencher| {
            let meter = meter();
            bencher.iter_custom(|iters| {
                let meter = meter.clone();
                contend(
                    n_threads,
                    iters,
                    Arc::new(move |usage: &Usage| {
                        black_box(meter.record(usage.clone()).expect("recorded"));
                    }),
                )
            });
        });
    }
    group.finish();

    let mut group = criterion.benchmark_group("cost_reserve_commit");
    for n_threads in THREAD_COUNTS {
        group.throughput(Throughput::Elements(n_threads as u64));
        group.bench_function(BenchmarkId::new("reserve_commit", n_threads), |bencher| {
            let meter = meter();
            bencher.iter_custom(|iters| {
                let meter = meter.clone();
                contend(
                    n_threads,
                    iters,
                    Arc::new(move |usage: &Usage| {
                        let reservation = meter.reserve(usage).expect("reserved");
                        black_box(reservation.commit(usage.counts).expect("committed"));
                    }),
                )
            });
        });
    }
    group.finish();
}

criterion_group!(benches, cost_meter);
criterion_main!(benches);
