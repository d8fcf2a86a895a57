//! `fourfold trace`: show a trace as timelines, and verify its integrity.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use fourfold::trace;

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
}

type CliResult = Result<ExitCode, Box<dyn std::error::Error>>;

pub(crate) fn run(args: TraceArgs) -> CliResult {
    match args.command {
        TraceCommand::Show { file, run } => show(&file, run.as_deref()),
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

fn show(file: &std::path::Path, only_run: Option<&str>) -> CliResult {
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
    if let Some(torn) = contents.torn_tail {
        println!(
            "(the file ends in {} bytes of a partial frame at byte {}: a write cut short)",
            torn.n_bytes, torn.offset
        );
    }
    Ok(ExitCode::SUCCESS)
}
