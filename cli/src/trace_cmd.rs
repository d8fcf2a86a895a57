//! `fourfold trace`: show a trace as timelines, verify its integrity, explain and query its runs,
//! and export it to OpenTelemetry.

use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Subcommand};
use fourfold::trace;

use crate::trace_query;
use crate::CliResult;

#[derive(Args)]
pub(crate) struct TraceArgs {
    #[command(subcommand)]
    command: TraceCommand,
}

#[derive(Subcommand)]
enum TraceCommand {
    /// Print each run (or one run) as an indented timeline of spans and events.
    Show {
        /// The trace file.
        file: PathBuf,
        /// Only this run.
        #[arg(long)]
        run: Option<String>,
    },
    /// Check every frame's checksum, the hash chain and the head file. Exits 1 on any damage.
    Verify {
        /// The trace file.
        file: PathBuf,
    },
    /// Explain each run (or one run): every action with the decision that led to it, the context
    /// it relied on, the gates it passed and what it cost; then the run's totals.
    Explain {
        /// The trace file.
        file: PathBuf,
        /// Only this run.
        #[arg(long)]
        run: Option<String>,
        /// Print each explanation as one JSON object a line.
        #[arg(long)]
        json: bool,
    },
    /// Print the events a query selects, as JSON Lines.
    Query {
        /// The trace file.
        file: PathBuf,
        #[command(flatten)]
        query: trace_query::QueryArgs,
    },
    /// Convert a trace to OpenTelemetry spans with the GenAI conventions.
    Export {
        /// The trace file.
        file: PathBuf,
        /// Write OTLP/JSON Lines, as the Collector's `otlpjsonfile` receiver reads, to this file
        /// (replacing it).
        #[arg(long, value_name = "OUT")]
        otlp: PathBuf,
        /// The `service.name` of the exported resource.
        #[arg(long, default_value = "fourfold")]
        service_name: String,
    },
}

pub(crate) fn run(args: TraceArgs) -> CliResult {
    match args.command {
        TraceCommand::Show { file, run } => show(&file, run.as_deref()),
        TraceCommand::Explain { file, run, json } => {
            trace_query::explain(&file, run.as_deref(), json)
        }
        TraceCommand::Query { file, query } => trace_query::query(&file, &query),
        TraceCommand::Export {
            file,
            otlp,
            service_name,
        } => export(&file, &otlp, &service_name),
        TraceCommand::Verify { file } => match trace::verify(&file) {
            Ok(verified) => {
                let head_note = if verified.head_file_checked {
                    "head file matches"
                } else {
                    "no head file to check the end against"
                };
                println!(
                    "ok: {} frames, last hash {} ({head_note})",
                    verified.head.n_frames,
                    verified.head.hash_hex()
                );
                Ok(ExitCode::SUCCESS)
            }
            Err(error) => {
                println!("damaged: {error}");
                Ok(ExitCode::from(1))
            }
        },
    }
}

fn show(file: &Path, only_run: Option<&str>) -> CliResult {
    let contents = trace::read(file)?;
    let records: Vec<trace::TraceRecord> = contents
        .records
        .into_iter()
        .map(|(_, record)| record)
        .collect();
    let run_ids = match only_run {
        Some(run_id) => vec![run_id.to_string()],
        None => trace::run_ids(&records),
    };
    for run_id in &run_ids {
        let lines = trace::timeline(&records, run_id);
        if lines.is_empty() {
            return Err(format!("no run `{run_id}` in `{}`", file.display()).into());
        }
        println!("run {run_id}");
        for line in lines {
            println!("  {}{}", "  ".repeat(line.depth), line.text);
        }
    }
    print_torn_tail(contents.torn_tail);
    Ok(ExitCode::SUCCESS)
}

fn export(file: &Path, out_path: &Path, service_name: &str) -> CliResult {
    let contents = trace::read(file)?;
    let records = contents.records.into_iter().map(|(_, record)| record);
    let write_error =
        |error: std::io::Error| format!("cannot write `{}`: {error}", out_path.display());
    let mut out = BufWriter::new(File::create(out_path).map_err(write_error)?);
    let stats = trace::export_otlp(records, &mut out, service_name).map_err(write_error)?;
    let mut notes = Vec::new();
    if stats.n_unfinished_spans > 0 {
        notes.push(format!("{} unfinished", stats.n_unfinished_spans));
    }
    if stats.n_dropped_events > 0 {
        notes.push(format!(
            "{} events dropped by the tracer",
            stats.n_dropped_events
        ));
    }
    if stats.n_unmatched_records > 0 {
        notes.push(format!(
            "{} records matching no span left out",
            stats.n_unmatched_records
        ));
    }
    let notes = if notes.is_empty() {
        String::new()
    } else {
        format!(" ({})", notes.join(", "))
    };
    println!(
        "exported {} of {} to {}{notes}",
        counted(stats.n_spans, "span"),
        counted(stats.n_runs, "run"),
        out_path.display()
    );
    print_torn_tail(contents.torn_tail);
    Ok(ExitCode::SUCCESS)
}

/// `1 span`, `2 spans`.
fn counted(n: u64, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

fn print_torn_tail(torn_tail: Option<trace::TornTail>) {
    if let Some(torn) = torn_tail {
        println!(
            "(the file ends in {} bytes of a partial frame at byte {}: a write cut short)",
            torn.n_bytes, torn.offset
        );
    }
}
