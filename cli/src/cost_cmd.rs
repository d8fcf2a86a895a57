//! `fourfold cost report`: totals by agent, task, model and day, spent and saved side by side,
//! from cost ledgers and trace files.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use fourfold::cost::{read_ledger, CostRecord, Report};
use fourfold::trace::{self, TraceRecord, HEADER};

use crate::CliResult;

#[derive(Args)]
pub(crate) struct CostArgs {
    #[command(subcommand)]
    command: CostCommand,
}

#[derive(Subcommand)]
enum CostCommand {
    /// Print the totals of cost ledgers (JSON Lines written by a meter's `ledger`) and trace
    /// files (their cost events) as one JSON report.
    Report {
        /// Ledger or trace files; a trace file is recognised by its header.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
}

pub(crate) fn run(args: CostArgs) -> CliResult {
    match args.command {
        CostCommand::Report { files } => report(&files),
    }
}

fn report(files: &[PathBuf]) -> CliResult {
    let mut report = Report::new();
    for file in files {
        let mut head = [0u8; 8];
        let is_trace = std::fs::File::open(file)
            .and_then(|mut opened| std::io::Read::read_exact(&mut opened, &mut head))
            .is_ok()
            && head == HEADER;
        if is_trace {
            for (_, record) in trace::read(file)?.records {
                if let TraceRecord::Event(event) = record {
                    if let Some(record) = CostRecord::from_event(&event) {
                        report.add(&record);
                    }
                }
            }
        } else {
            for record in read_ledger(file)? {
                report.add(&record);
            }
        }
    }
    println!("{}", serde_json::to_string_pretty(&report.to_json())?);
    if report.skipped_other_currency > 0 {
        eprintln!(
            "warning: {} records in another currency than {} were left out",
            report.skipped_other_currency, report.currency
        );
    }
    Ok(ExitCode::SUCCESS)
}
