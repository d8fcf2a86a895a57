//! Fleet budgets on PostgreSQL: reserve + commit throughput with 1, 4 and 16 processes, beside the
//! read-then-write check that LiteLLM-style budget enforcement does (read the spend, compare, call,
//! then add the spend), to show what atomic reservation buys: no overspend. `atomic-window` is
//! the same reservation on a budget with a rolling window (an hour, so nothing leaves it during a
//! run), whose spend the budget's row keeps in buckets.
//!
//! Each process is this binary again (`--worker`), one connection each, calling in a loop for
//! `--seconds`. Two phases per mode and process count:
//! - throughput: a budget too large to run out; the figure is calls settled per second.
//! - overspend: a budget of 20,000 tokens that the processes exhaust together (calls of 1 to 100
//!   tokens, each using all it asked for); the figure is how far the spend ended above the limit.
//!
//! Usage: scripts/with-postgres.sh fleet_budget --processes 1,4,16 --seconds 3 [--csv OUT]
//! (the database comes from `FOURFOLD_TEST_POSTGRES`, as in the tests).

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use fourfold::cost::{CostError, FleetBudgets};
use fourfold::store::PostgresStore;

#[derive(Parser)]
struct Args {
    /// Process counts to run, comma-separated.
    #[arg(long, default_value = "1,4,16", value_delimiter = ',')]
    processes: Vec<usize>,
    /// Seconds per throughput phase.
    #[arg(long, default_value_t = 3.0)]
    seconds: f64,
    /// Write the results as CSV here too.
    #[arg(long)]
    csv: Option<String>,
    /// Internal: run as one worker process (`mode|phase|seconds|seed|settings`).
    #[arg(long, hide = true)]
    worker: Option<String>,
}

const LIMIT_TOKENS: i64 = 20_000;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    if let Some(job) = &args.worker {
        return worker(job);
    }
    let server = std::env::var("FOURFOLD_TEST_POSTGRES")
        .map_err(|_| "no server: run under scripts/with-postgres.sh")?;
    let settings = format!("{server} dbname=fourfold_bench");
    let mut admin =
        postgres::Client::connect(&format!("{server} dbname=postgres"), postgres::NoTls)?;
    admin.batch_execute("DROP DATABASE IF EXISTS fourfold_bench")?;
    admin.batch_execute("CREATE DATABASE fourfold_bench")?;
    let store = Arc::new(PostgresStore::connect(&settings)?);
    let mut client = postgres::Client::connect(&settings, postgres::NoTls)?;
    client.batch_execute(
        "CREATE TABLE naive_budget (name text PRIMARY KEY, hard bigint NOT NULL, spent bigint NOT NULL)",
    )?;
    let budgets = FleetBudgets::new(Arc::clone(&store));
    let mut csv =
        String::from("mode,processes,phase,calls,seconds,calls_per_s,limit,spent,overspent\n");
    println!("mode             processes  calls/s   overspend (limit {LIMIT_TOKENS} tokens)");
    for &n_processes in &args.processes {
        for mode in ["atomic", "atomic-window", "read-then-write"] {
            // Throughput: a limit that never runs out.
            reset(&mut client, &budgets, mode, i64::MAX / 4)?;
            let (calls, seconds) = run(mode, "throughput", n_processes, args.seconds, &settings)?;
            // Overspend: a limit the fleet exhausts together.
            reset(&mut client, &budgets, mode, LIMIT_TOKENS)?;
            run(mode, "overspend", n_processes, 60.0, &settings)?;
            let spent = spent(&mut client, &budgets, mode)?;
            let over = (spent - LIMIT_TOKENS).max(0);
            println!(
                "{mode:16} {n_processes:9} {:8.0}   {over} ({:.1}%)",
                calls as f64 / seconds,
                over as f64 * 100.0 / LIMIT_TOKENS as f64
            );
            csv.push_str(&format!(
                "{mode},{n_processes},throughput,{calls},{seconds:.3},{:.1},,,\n{mode},{n_processes},overspend,,,,{LIMIT_TOKENS},{spent},{over}\n",
                calls as f64 / seconds
            ));
        }
    }
    if let Some(path) = &args.csv {
        std::fs::write(path, csv)?;
    }
    Ok(())
}

fn reset(
    client: &mut postgres::Client,
    budgets: &FleetBudgets,
    mode: &str,
    hard: i64,
) -> Result<(), Box<dyn std::error::Error>> {
    client.batch_execute(
        "DELETE FROM fourfold_reservation; DELETE FROM fourfold_budget; DELETE FROM naive_budget",
    )?;
    let window = (mode == "atomic-window").then(|| Duration::from_secs(3_600));
    budgets.define_window("bench", u64::try_from(hard)?, window)?;
    client.execute(
        "INSERT INTO naive_budget (name, hard, spent) VALUES ('bench', $1, 0)",
        &[&hard],
    )?;
    Ok(())
}

fn spent(
    client: &mut postgres::Client,
    budgets: &FleetBudgets,
    mode: &str,
) -> Result<i64, Box<dyn std::error::Error>> {
    Ok(match mode {
        "atomic" | "atomic-window" => i64::try_from(
            budgets
                .standing("bench")?
                .map_or(0, |standing| standing.spent),
        )?,
        _ => client
            .query_one("SELECT spent FROM naive_budget WHERE name = 'bench'", &[])?
            .get(0),
    })
}

/// Runs `n_processes` workers at once; returns the calls they settled and the wall time.
fn run(
    mode: &str,
    phase: &str,
    n_processes: usize,
    seconds: f64,
    settings: &str,
) -> Result<(u64, f64), Box<dyn std::error::Error>> {
    let started = Instant::now();
    let children = (0..n_processes)
        .map(|idx| {
            Command::new(std::env::current_exe()?)
                .arg("--worker")
                .arg(format!("{mode}|{phase}|{seconds}|{}|{settings}", idx + 1))
                .stdout(Stdio::piped())
                .spawn()
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut calls = 0;
    for child in children {
        let output = child.wait_with_output()?;
        if !output.status.success() {
            return Err(format!("a {mode} worker failed").into());
        }
        calls += String::from_utf8(output.stdout)?.trim().parse::<u64>()?;
    }
    Ok((calls, started.elapsed().as_secs_f64()))
}

fn worker(job: &str) -> Result<(), Box<dyn std::error::Error>> {
    let parts: Vec<&str> = job.splitn(5, '|').collect();
    let [mode, phase, seconds, seed, settings] = parts.as_slice() else {
        return Err(format!("bad worker job `{job}`").into());
    };
    let deadline = Instant::now() + Duration::from_secs_f64(seconds.parse()?);
    let mut state: u64 = seed.parse::<u64>()? * 0x9E37_79B9;
    let mut next_amount = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        1 + state % 100
    };
    let mut calls = 0u64;
    match *mode {
        "atomic" | "atomic-window" => {
            let budgets = FleetBudgets::new(Arc::new(PostgresStore::connect(settings)?));
            while Instant::now() < deadline {
                let amount = next_amount();
                match budgets.reserve("bench", amount) {
                    Ok(reservation) => {
                        budgets.commit(reservation, amount)?;
                        calls += 1;
                    }
                    Err(CostError::Exceeded(_)) if *phase == "overspend" => break,
                    Err(error) => return Err(error.into()),
                }
            }
        }
        _ => {
            let mut client = postgres::Client::connect(settings, postgres::NoTls)?;
            // Prepared once, as FleetBudgets prepares its statements once per connection, so
            // that both sides pay one round trip per statement.
            let check =
                client.prepare("SELECT spent, hard FROM naive_budget WHERE name = 'bench'")?;
            let spend = client
                .prepare("UPDATE naive_budget SET spent = spent + $1 WHERE name = 'bench'")?;
            while Instant::now() < deadline {
                let amount = i64::try_from(next_amount())?;
                // Check, then spend: what a proxy does when it reads the spend before a call and
                // logs the call's cost after it.
                let row = client.query_one(&check, &[])?;
                let (spent, hard): (i64, i64) = (row.get(0), row.get(1));
                if spent + amount > hard {
                    if *phase == "overspend" {
                        break;
                    }
                    continue;
                }
                client.execute(&spend, &[&amount])?;
                calls += 1;
            }
        }
    }
    println!("{calls}");
    Ok(())
}
