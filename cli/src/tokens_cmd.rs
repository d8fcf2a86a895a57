//! `fourfold tokens count`: exact token counts of files, for scripts and for checking against
//! other counters.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Subcommand};
use fourfold::cost;

use crate::CliResult;

#[derive(Args)]
pub(crate) struct TokensArgs {
    #[command(subcommand)]
    command: TokensCommand,
}

#[derive(Subcommand)]
enum TokensCommand {
    /// Print each file's token count and the total (`-` reads standard input).
    Count {
        /// Count for this model (`gpt-4o`, `gpt-4`, ...); models without a public tokenizer get
        /// an `o200k_base` estimate.
        #[arg(long, conflicts_with = "encoding")]
        model: Option<String>,
        /// Count with this encoding: `o200k_base` (the default) or `cl100k_base`.
        #[arg(long)]
        encoding: Option<String>,
        /// The files to count; `-` is standard input.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
}

pub(crate) fn run(args: TokensArgs) -> CliResult {
    match args.command {
        TokensCommand::Count {
            model,
            encoding,
            files,
        } => count(
            model.or(encoding).as_deref().unwrap_or("o200k_base"),
            &files,
        ),
    }
}

fn count(model_or_encoding: &str, files: &[PathBuf]) -> CliResult {
    let (encoding, estimated) = cost::resolve(model_or_encoding)?;
    let mut total: u64 = 0;
    let mut out = String::new();
    for file in files {
        let text = read(file)?;
        let tokens = encoding.count(&text);
        total = total.saturating_add(tokens);
        out.push_str(&format!("{tokens}\t{}\n", file.display()));
    }
    out.push_str(&format!("{total}\ttotal\n"));
    print!("{out}");
    if estimated {
        eprintln!(
            "note: `{model_or_encoding}` has no public tokenizer; these are {} estimates",
            encoding.name()
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn read(file: &Path) -> Result<String, Box<dyn std::error::Error>> {
    let mut bytes = Vec::new();
    if file.as_os_str() == "-" {
        std::io::stdin().read_to_end(&mut bytes)?;
    } else {
        bytes = std::fs::read(file)
            .map_err(|error| format!("cannot read `{}`: {error}", file.display()))?;
    }
    String::from_utf8(bytes)
        .map_err(|error| format!("`{}` is not UTF-8 text: {error}", file.display()).into())
}
