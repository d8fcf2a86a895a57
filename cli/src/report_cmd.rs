//! `fourfold report TRACE -o report.html`: one self-contained HTML page about a trace file.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;
use fourfold::trace::{self, html_report, TraceRecord};

#[derive(Args)]
pub(crate) struct ReportArgs {
    /// The trace file.
    trace: PathBuf,
    /// Where to write the page.
    #[arg(short, long, default_value = "report.html")]
    out: PathBuf,
}

pub(crate) fn run(args: ReportArgs) -> Result<ExitCode, Box<dyn std::error::Error>> {
    let n_runs = write_report(&args.trace, &args.out)?;
    println!("wrote {} ({n_runs} runs)", args.out.display());
    Ok(ExitCode::SUCCESS)
}

/// Writes the report of the trace file at `trace_path` to `out`; returns how many runs it shows.
/// A torn tail (a writer killed mid-frame) is left out, as the reader leaves it out.
pub(crate) fn write_report(
    trace_path: &Path,
    out: &Path,
) -> Result<usize, Box<dyn std::error::Error>> {
    let contents = trace::read(trace_path)?;
    let records: Vec<TraceRecord> = contents
        .records
        .into_iter()
        .map(|(_, record)| record)
        .collect();
    let title = trace_path.file_name().map_or_else(
        || trace_path.display().to_string(),
        |name| name.to_string_lossy().into_owned(),
    );
    std::fs::write(out, html_report(&title, &records))?;
    Ok(trace::Runs::from_records(records.iter()).runs.len())
}
