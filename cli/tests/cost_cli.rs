//! The `fourfold` binary's cost commands: `tokens count` on files and standard input, and
//! `cost report` from a meter's ledger and from a trace the meter's events were recorded in.

mod common;

use std::process::{Command, Output};
use std::sync::Arc;

use common::run_with_stdin;
use fourfold::cost::{CostMeter, ModelPrice, PriceTable, TokenCounts, Usage};
use fourfold::trace::{Durability, TraceFileSink, Tracer};
use fourfold::PluginRegistry;

fn fourfold(args: &[&str], stdin: &str) -> Output {
    run_with_stdin(
        Command::new(env!("CARGO_BIN_EXE_fourfold")).args(args),
        stdin,
    )
}

fn stdout(output: &Output) -> String {
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout.clone()).unwrap()
}

#[test]
fn tokens_count_prints_each_file_and_the_total() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a.txt");
    std::fs::write(&file, "hello world").unwrap();
    let path = file.to_str().unwrap();
    let output = fourfold(&["tokens", "count", path, "-"], "héllo 世界");
    assert_eq!(stdout(&output), format!("2\t{path}\n3\t-\n5\ttotal\n"));
    // cl100k_base splits `héllo 世界` into 7 tokens (tiktoken agrees).
    let output = fourfold(&["tokens", "count", "--model", "gpt-4", "-"], "héllo 世界");
    assert_eq!(stdout(&output), "7\t-\n7\ttotal\n");
    let output = fourfold(
        &["tokens", "count", "--model", "claude-sonnet-4-5", "-"],
        "hi",
    );
    assert_eq!(stdout(&output), "1\t-\n1\ttotal\n");
    assert!(String::from_utf8_lossy(&output.stderr).contains("estimates"));
    let output = fourfold(&["tokens", "count", "--encoding", "p50k_base", "-"], "hi");
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("unknown encoding `p50k_base`"));
}

fn prices() -> PriceTable {
    let mut table = PriceTable::empty("USD").unwrap();
    table.set("m", ModelPrice::per_million(1.0, 2.0).unwrap());
    table
}

fn usage(agent: &str, task: &str, input: u64, output: u64) -> Usage {
    let counts = TokenCounts {
        input,
        output,
        ..TokenCounts::default()
    };
    Usage::new(agent, "m", counts).task(task)
}

#[test]
fn cost_report_reads_ledgers_and_traces() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = dir.path().join("cost.jsonl");
    let trace_file = dir.path().join("run.fftrace");
    let tracer = Tracer::builder()
        .sink(TraceFileSink::open(&trace_file, Durability::default()).unwrap())
        .build()
        .unwrap();
    let plugins = Arc::new(PluginRegistry::new());
    plugins.install(Arc::new(tracer.clone())).unwrap();
    let meter = CostMeter::builder()
        .prices(prices())
        .ledger(&ledger)
        .plugins(plugins)
        .build()
        .unwrap();
    meter.record(usage("coder", "T-1", 1000, 500)).unwrap();
    meter.record(usage("tester", "T-1", 3000, 0)).unwrap();
    meter
        .record_saved("coder", Some("T-1"), None, "m", 20_000)
        .unwrap();
    tracer.close().unwrap();

    for file in [&ledger, &trace_file] {
        let output = fourfold(&["cost", "report", file.to_str().unwrap()], "");
        let report: serde_json::Value = serde_json::from_str(&stdout(&output)).unwrap();
        assert_eq!(report["currency"], "USD");
        assert_eq!(report["total"]["calls"], 2);
        assert_eq!(report["total"]["spent_micros"], 5_000);
        assert_eq!(report["total"]["saved_micros"], 20_000);
        assert_eq!(report["by_agent"]["coder"]["spent_tokens"], 1_500);
        assert_eq!(report["by_agent"]["coder"]["saved_tokens"], 20_000);
        assert_eq!(report["by_task"]["T-1"]["spent_micros"], 5_000);
        assert_eq!(report["by_model"]["m"]["calls"], 2);
        assert_eq!(report["by_day"].as_object().unwrap().len(), 1);
    }
    let output = fourfold(&["cost", "report", "/nonexistent/cost.jsonl"], "");
    assert_eq!(output.status.code(), Some(2));
}
