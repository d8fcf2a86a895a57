//! `fourfold context`: ingest a folder of documents into a saved store, and ask it.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Subcommand};
use fourfold::context::{
    AskOptions, CommandReranker, ContextError, ContextStore, IngestReport, ReadScope, Reranker,
};
use fourfold::session::document_read;
use fourfold::{FileStore, Policy};
use indicatif::{ProgressBar, ProgressStyle};

use crate::CliResult;

#[derive(Args)]
pub(crate) struct ContextArgs {
    #[command(subcommand)]
    command: ContextCommand,
}

#[derive(Subcommand)]
enum ContextCommand {
    /// Ingest the text files under DIR (hidden and git-ignored files left out, binaries skipped):
    /// new and changed files become new versions, files gone are deleted, and the store is saved.
    Ingest {
        /// The folder to ingest.
        dir: PathBuf,
        /// Only files matching these globs (relative to DIR), e.g. --glob '**/*.md'.
        #[arg(long = "glob")]
        globs: Vec<String>,
        /// Key the files under this folder path instead of relative to DIR: `--prefix docs`
        /// keys DIR's `auth.md` `docs/auth.md`, the path a policy's `read` rules name when DIR is
        /// the workspace's `docs/`.
        #[arg(long, default_value = "")]
        prefix: String,
        /// Where the store is saved.
        #[arg(long, default_value = ".fourfold/context")]
        store: PathBuf,
        /// Folders whose copies are never canonical, e.g. --archive legacy/.
        #[arg(long = "archive")]
        archive: Vec<String>,
        /// Publish to the fleet instead: the shared documents of this `fourfold.toml` (its
        /// `[context]` has `shared = true` and its `[store]` is PostgreSQL). Documents an ingest
        /// of DIR put before whose files are gone are retired for every process.
        #[arg(long, conflicts_with_all = ["store", "archive"])]
        config: Option<PathBuf>,
    },
    /// Ask the saved store: the current canonical sections that answer QUERY within the budget.
    Ask {
        /// The question.
        query: String,
        /// Tokens the answer may take (o200k_base).
        #[arg(long, default_value_t = 800)]
        budget: u64,
        /// Where the store is saved.
        #[arg(long, default_value = ".fourfold/context")]
        store: PathBuf,
        /// Also list the stale and duplicate copies that match, as pointers.
        #[arg(long)]
        copies: bool,
        /// Print the answer as JSON.
        #[arg(long)]
        json: bool,
        /// Ask as this agent would through a session: served only the documents the policy
        /// (--policy) lets it read, each judged at its key as a path under the policy's root.
        #[arg(long = "as", value_name = "AGENT", requires = "policy")]
        agent: Option<String>,
        /// The task the agent asks for (with --as).
        #[arg(long, requires = "agent")]
        task: Option<String>,
        /// The policy file that scopes what --as may read.
        #[arg(long, requires = "agent")]
        policy: Option<PathBuf>,
        /// Order the search's best candidates with this reranking program (run with `sh -c`),
        /// as `[context.rerank]` would: e.g. 'python3 -m fourfold.rerank --scorer my:score'.
        #[arg(long, value_name = "COMMAND")]
        rerank_command: Option<String>,
        /// How many of the search's best candidates the reranker orders.
        #[arg(long, default_value_t = 20, requires = "rerank_command")]
        rerank_depth: usize,
    },
}

pub(crate) fn run(args: ContextArgs) -> CliResult {
    match args.command {
        ContextCommand::Ingest {
            dir,
            globs,
            prefix,
            store,
            archive,
            config,
        } => match config {
            Some(config) => ingest_fleet(&dir, &globs, &prefix, &config),
            None => ingest(dir, &globs, &prefix, store, &archive),
        },
        ContextCommand::Ask {
            query,
            budget,
            store,
            copies,
            json,
            agent,
            task,
            policy,
            rerank_command,
            rerank_depth,
        } => {
            let reranker = rerank_command.map(|command| {
                let reranker: Arc<dyn Reranker> =
                    Arc::new(CommandReranker::new("sh", ["-c".to_string(), command]));
                (reranker, rerank_depth)
            });
            let asker = match (agent, policy) {
                (Some(agent), Some(policy)) => Some(Asker {
                    policy: Policy::from_file(policy)?,
                    agent,
                    task,
                }),
                _ => None,
            };
            ask(&query, budget, store, copies, json, asker, reranker)
        }
    }
}

fn open(store: PathBuf, archive: &[String]) -> Result<ContextStore, Box<dyn std::error::Error>> {
    let file_store = Arc::new(FileStore::open(store)?);
    let mut builder = ContextStore::builder();
    for prefix in archive {
        builder = builder.archive(prefix);
    }
    Ok(builder.open(file_store)?)
}

/// Runs `ingest` with DIR's globs and a spinner on stderr that shows the report so far.
fn with_progress(
    globs: &[String],
    ingest: impl FnOnce(&[&str], &mut dyn FnMut(&IngestReport)) -> Result<IngestReport, ContextError>,
) -> Result<IngestReport, Box<dyn std::error::Error>> {
    let progress = ProgressBar::new_spinner();
    progress.set_style(ProgressStyle::with_template("{spinner} {elapsed} {msg}")?);
    progress.enable_steady_tick(Duration::from_millis(100));
    let globs: Vec<&str> = globs.iter().map(String::as_str).collect();
    let report = ingest(&globs, &mut |report| {
        progress.set_message(format!(
            "{} files, {} changed, {:.1} MB",
            report.n_files,
            report.n_changed,
            report.bytes as f64 / 1e6
        ));
    })?;
    progress.finish_and_clear();
    Ok(report)
}

/// Prints what an ingest did, after `done` (`gone`: what became of the documents whose files are
/// gone; `after`: the end of the line), and the files it skipped below.
fn print_report(done: &str, report: &IngestReport, gone: &str, after: &str) {
    println!(
        "{done}: {} files ({} new or changed, {} unchanged), {} {gone}, {} skipped, {:.2} MB; {after}",
        report.n_files,
        report.n_changed,
        report.n_unchanged,
        report.deleted.len(),
        report.skipped.len(),
        report.bytes as f64 / 1e6,
    );
    for (path, why) in &report.skipped {
        println!("  skipped {path}: {why}");
    }
}

/// `context ingest DIR --config CONFIG`: publish DIR to the fleet's shared documents.
fn ingest_fleet(
    dir: &std::path::Path,
    globs: &[String],
    prefix: &str,
    config: &std::path::Path,
) -> CliResult {
    let fourfold = fourfold::Fourfold::from_config(config)?;
    let Some(shared) = fourfold.shared_documents() else {
        return Err(format!(
            "`{}` has no shared documents: its `[context]` needs `shared = true` and a PostgreSQL `[store]` (without --config, the store is the --store folder)",
            config.display()
        )
        .into());
    };
    let report = with_progress(globs, |globs, progress| {
        shared.ingest_dir_as(dir, prefix, globs, progress)
    })?;
    print_report(
        &format!("published {} to the fleet", dir.display()),
        &report,
        "retired",
        &format!("{} documents shared", shared.context().keys().len()),
    );
    Ok(ExitCode::SUCCESS)
}

fn ingest(
    dir: PathBuf,
    globs: &[String],
    prefix: &str,
    store: PathBuf,
    archive: &[String],
) -> CliResult {
    let context = open(store, archive)?;
    let report = with_progress(globs, |globs, progress| {
        context.ingest_dir_as(&dir, prefix, globs, progress)
    })?;
    // The ingest saved a snapshot if it changed anything.
    let changed = report.changed_anything();
    print_report(
        &format!("ingested {}", dir.display()),
        &report,
        "deleted",
        &format!(
            "{} documents, {}",
            context.keys().len(),
            if changed {
                "snapshot saved"
            } else {
                "nothing changed to save"
            }
        ),
    );
    Ok(ExitCode::SUCCESS)
}

/// Who `fourfold context ask --as` asks as.
struct Asker {
    policy: Policy,
    agent: String,
    task: Option<String>,
}

fn ask(
    query: &str,
    budget: u64,
    store: PathBuf,
    copies: bool,
    json: bool,
    asker: Option<Asker>,
    reranker: Option<(Arc<dyn Reranker>, usize)>,
) -> CliResult {
    let context = open(store, &[])?;
    if let Some((reranker, depth)) = reranker {
        context.set_reranker(Some(reranker), depth);
    }
    let mut options = AskOptions::budget(budget);
    options.with_copies = copies;
    let answer = match asker {
        // A session scoped as a `Fourfold` scopes its agents' (without its trace or meter).
        Some(Asker {
            policy,
            agent,
            task,
        }) => {
            let policy = Arc::new(policy);
            let scope_agent = agent.clone();
            let scope_task = task.clone();
            let scope: ReadScope = Arc::new(move |key: &str| {
                policy.permits(&document_read(&scope_agent, scope_task.as_deref(), key))
            });
            context
                .session(&agent, None, task.as_deref())
                .scoped(scope)
                .ask_with(query, &options)
        }
        None => context.ask_with(query, &options),
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&answer)?);
        return Ok(ExitCode::SUCCESS);
    }
    if answer.withheld > 0 {
        println!(
            "withheld: {} matching document(s) the policy does not let this agent read",
            answer.withheld
        );
    }
    if let Some(error) = &answer.rerank_error {
        println!("not reranked, in the search's order: {error}");
    } else if answer.reranked {
        println!("reranked");
    }
    if answer.hits.is_empty() {
        println!("nothing in the store answers {query:?}");
        return Ok(ExitCode::from(1));
    }
    for rename in &answer.renames {
        println!(
            "renamed: {} is now {} ({}); searched for both",
            rename.old, rename.new, rename.pointer
        );
    }
    for hit in &answer.hits {
        println!(
            "== {} [{}] v{}, {}, {} tokens{}",
            hit.pointer,
            hit.heading_path.join(" > "),
            hit.version,
            hit.freshness.name(),
            hit.tokens,
            if hit.truncated { ", truncated" } else { "" }
        );
        if let Some(text) = &hit.text {
            println!("{}", text.trim_end());
        }
        println!();
    }
    for copy in &answer.copies {
        println!(
            "copy: {} [{}] {}{}",
            copy.pointer,
            copy.heading_path.join(" > "),
            copy.freshness.name(),
            copy.reason
                .as_deref()
                .map_or_else(String::new, |reason| format!(": {reason}"))
        );
    }
    println!(
        "served {} of {} tokens (o200k_base); reading the documents whole: {}",
        answer.tokens_served, answer.budget_tokens, answer.tokens_baseline
    );
    Ok(ExitCode::SUCCESS)
}
