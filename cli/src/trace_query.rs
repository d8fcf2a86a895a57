//! `fourfold trace explain` and `fourfold trace query`: read a trace back and answer questions.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use clap::Args;
use fourfold::trace::{self, EventKindName, Query, TornTail, TraceReader};
use fourfold::GateEventOutcome;

use crate::CliResult;

/// Which events `fourfold trace query` prints: every condition given must hold.
#[derive(Args)]
pub(crate) struct QueryArgs {
    /// Only events of this run.
    #[arg(long)]
    run: Option<String>,
    /// Only events of this agent.
    #[arg(long)]
    agent: Option<String>,
    /// Only events of this task.
    #[arg(long)]
    task: Option<String>,
    /// Only events of these kinds: decision, action, gate, cost, context (repeatable).
    #[arg(long = "kind", value_name = "KIND")]
    kinds: Vec<EventKindName>,
    /// Only gate events with these outcomes: allowed, denied, pending, approved, rejected, expired,
    /// consumed (repeatable).
    #[arg(long = "outcome", value_name = "OUTCOME")]
    outcomes: Vec<GateEventOutcome>,
    /// Only events at or after this time, in nanoseconds since the Unix epoch.
    #[arg(long, value_name = "NS")]
    since: Option<u64>,
    /// Only events before this time, in nanoseconds since the Unix epoch.
    #[arg(long, value_name = "NS")]
    until: Option<u64>,
}

impl QueryArgs {
    fn query(&self) -> Query {
        let mut query = Query::all();
        if let Some(run) = &self.run {
            query = query.run(run);
        }
        if let Some(agent) = &self.agent {
            query = query.agent(agent);
        }
        if let Some(task) = &self.task {
            query = query.task(task);
        }
        for kind in &self.kinds {
            query = query.kind(*kind);
        }
        for outcome in &self.outcomes {
            query = query.gate_outcome(*outcome);
        }
        if let Some(since) = self.since {
            query = query.since(since);
        }
        if let Some(until) = self.until {
            query = query.until(until);
        }
        query
    }
}

/// Prints the events `args` selects from `file`, one JSON object a line.
pub(crate) fn query(file: &Path, args: &QueryArgs) -> CliResult {
    let mut reader = TraceReader::open(file)?;
    let query = args.query();
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    for item in reader.by_ref() {
        let (_, record) = item?;
        if let trace::TraceRecord::Event(event) = record {
            if query.matches(&event) {
                serde_json::to_writer(&mut out, &event)?;
                writeln!(out)?;
            }
        }
    }
    out.flush()?;
    note_torn_tail(reader.torn_tail());
    Ok(ExitCode::SUCCESS)
}

/// Explains each run of `file` (or one run) as text, or as JSON Lines with `json`.
pub(crate) fn explain(file: &Path, only_run: Option<&str>, json: bool) -> CliResult {
    let runs = TraceReader::open(file)?.runs()?;
    let selected: Vec<&trace::RunTree> = match only_run {
        Some(run_id) => {
            let run = runs
                .get(run_id)
                .ok_or_else(|| format!("no run `{run_id}` in `{}`", file.display()))?;
            vec![run]
        }
        None => runs.runs.iter().collect(),
    };
    for (idx, run) in selected.into_iter().enumerate() {
        let explanation = trace::explain(run);
        if json {
            println!("{}", serde_json::to_string(&explanation)?);
        } else {
            if idx > 0 {
                println!();
            }
            print!("{explanation}");
        }
    }
    if runs.n_dropped_events > 0 {
        eprintln!(
            "note: the tracer dropped {} events of this trace (its queue was full), so runs may miss some",
            runs.n_dropped_events
        );
    }
    note_torn_tail(runs.torn_tail);
    Ok(ExitCode::SUCCESS)
}

fn note_torn_tail(torn_tail: Option<TornTail>) {
    if let Some(torn) = torn_tail {
        eprintln!(
            "note: the file ends in {} bytes of a partial frame at byte {}: a write cut short",
            torn.n_bytes, torn.offset
        );
    }
}
