//! Tokens per lookup on real documentation: fourfold's `ContextStore::ask` against the
//! grep-and-read baseline, on the pydantic corpus (`shared/corpus/pydantic/`, see its README).
//!
//! It builds the drifted repository twice: into a `ContextStore`, step by step (`put` and
//! `delete`, in history order), and as the current tree in a temporary directory, which the
//! baseline greps. Then it asks every question of the questions file and prints, per question and
//! in total, the tokens the baseline reads and the tokens fourfold serves, whether the first
//! section served is the canonical answer, and whether a stale copy was served. The last line is
//! the totals.
//!
//! ```sh
//! cargo run --release -p fourfold-benches --bin context_lookup -- \
//!     --corpus ../shared/corpus/pydantic --questions ../shared/corpus/pydantic/questions-dev.jsonl
//! ```

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Parser;
use fourfold::context::{Answer, AskOptions, CommandReranker, ContextStore, Freshness, Hit};
use fourfold_benches::context_corpus::{load_questions, DriftedRepository, Question, Step};
use fourfold_benches::grep_baseline::{BaselineRead, GrepBaseline};
use serde_json::json;

/// The budget an agent asks for by default: a couple of sections' worth.
const DEFAULT_BUDGET_TOKENS: u64 = 800;

/// How many served hits the misses list shows per question.
const N_HITS_SHOWN: usize = 3;

/// How deep the second, unbudgeted ask looks for the canonical answer: its rank there shows how
/// near a miss came, which the first-served count alone does not.
const DEEP_HITS: usize = 20;

/// Measures tokens per lookup: fourfold's ContextStore against grep-and-read, on the pydantic
/// documentation corpus.
#[derive(Debug, Parser)]
#[command(name = "context_lookup")]
struct Args {
    /// The corpus folder [default: ../shared/corpus/pydantic from the workspace root].
    #[arg(long)]
    corpus: Option<PathBuf>,
    /// The questions file, one JSON question a line [default: the corpus's questions-dev.jsonl].
    #[arg(long)]
    questions: Option<PathBuf>,
    /// The token budget of every ask.
    #[arg(long, default_value_t = DEFAULT_BUDGET_TOKENS)]
    budget: u64,
    /// Also write every result as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Rerank every ask's candidates with this program (run with `sh -c`), through the store's
    /// reranker: JSON Lines on its standard input and output, as `fourfold::context::CommandReranker`
    /// describes (`benches/python/rerank/serve.py` is one).
    #[arg(long, value_name = "COMMAND")]
    rerank_command: Option<String>,
    /// How many of the search's best candidates the reranker is given.
    #[arg(long, default_value_t = 20, requires = "rerank_command")]
    rerank_depth: usize,
}

/// What happened to one question.
#[derive(Debug)]
struct QuestionResult {
    id: String,
    baseline: BaselineRead,
    baseline_answered: bool,
    baseline_misled: bool,
    answer: Answer,
    /// The 1-based rank of the first hit that answers canonically.
    canonical_rank: Option<usize>,
    /// The same rank in an ask without a budget for up to `DEEP_HITS` sections.
    deep_rank: Option<usize>,
    /// The hits that are stale copies, as pointers.
    stale_hits: Vec<String>,
    ask_time: Duration,
}

impl QuestionResult {
    fn canonical_first(&self) -> bool {
        self.canonical_rank == Some(1)
    }
}

/// The store built from the drifted repository, and what building it cost.
struct BuiltStore {
    store: ContextStore,
    /// The current version of each live key.
    current_versions: HashMap<String, u64>,
    n_bytes: usize,
    n_sections: u64,
    n_puts: usize,
    /// Puts of the text a key already held, which the store answers without a new version.
    n_unchanged_puts: usize,
    n_deletes: usize,
    elapsed: Duration,
}

fn build_store(repository: &DriftedRepository) -> Result<BuiltStore, String> {
    let store = ContextStore::new();
    let mut current_versions = HashMap::new();
    let mut n_sections = 0;
    let (mut n_puts, mut n_unchanged_puts, mut n_deletes) = (0, 0, 0);
    let started = Instant::now();
    for step in &repository.steps {
        match step {
            Step::Put { key, text } => {
                let version = store
                    .put(key, text)
                    .map_err(|error| format!("put `{key}` failed: {error}"))?;
                n_sections += u64::from(version.n_sections);
                let previous = current_versions.insert(key.clone(), version.version);
                if previous == Some(version.version) {
                    n_unchanged_puts += 1;
                }
                n_puts += 1;
            }
            Step::Delete { key } => {
                store
                    .delete(key)
                    .map_err(|error| format!("delete `{key}` failed: {error}"))?;
                current_versions.remove(key);
                n_deletes += 1;
            }
        }
    }
    Ok(BuiltStore {
        store,
        current_versions,
        n_bytes: repository.n_bytes_put(),
        n_sections,
        n_puts,
        n_unchanged_puts,
        n_deletes,
        elapsed: started.elapsed(),
    })
}

/// Whether a served hit is a stale copy: marked stale, one of the question's stale copies or under
/// `legacy/`, or not the current version of its document.
fn is_stale_hit(hit: &Hit, question: &Question, current_versions: &HashMap<String, u64>) -> bool {
    hit.freshness == Freshness::Stale
        || question.is_stale_key(&hit.key)
        || current_versions.get(&hit.key) != Some(&hit.version)
}

fn ask_question(
    question: &Question,
    built: &BuiltStore,
    baseline: &GrepBaseline,
    budget: u64,
) -> QuestionResult {
    let baseline_read = baseline.read(&question.question);
    let baseline_answered = baseline_read.files.iter().any(|file| {
        *file == question.answer_key || question.also.iter().any(|also| also.key == *file)
    });
    let baseline_misled = baseline_read
        .files
        .iter()
        .any(|file| question.is_stale_key(file));

    let started = Instant::now();
    let answer = built.store.ask(&question.question, budget);
    let ask_time = started.elapsed();
    let rank_in = |answer: &Answer| {
        answer
            .hits
            .iter()
            .position(|hit| {
                hit.freshness == Freshness::Canonical
                    && !is_stale_hit(hit, question, &built.current_versions)
                    && question.is_answered_by(&hit.key, &hit.heading_path)
            })
            .map(|idx| idx + 1)
    };
    let canonical_rank = rank_in(&answer);
    let deep_options = AskOptions {
        max_hits: DEEP_HITS,
        ..AskOptions::budget(u64::MAX)
    };
    let deep_rank = rank_in(&built.store.ask_with(&question.question, &deep_options));
    let stale_hits = answer
        .hits
        .iter()
        .filter(|hit| is_stale_hit(hit, question, &built.current_versions))
        .map(|hit| format!("{} (v{}, {})", hit.pointer, hit.version, hit.freshness))
        .collect();
    QuestionResult {
        id: question.id.clone(),
        baseline: baseline_read,
        baseline_answered,
        baseline_misled,
        answer,
        canonical_rank,
        deep_rank,
        stale_hits,
        ask_time,
    }
}

fn describe_hit(hit: &Hit) -> String {
    format!(
        "{} [{}] {} tokens, {}",
        hit.pointer,
        hit.heading_path.join(" > "),
        hit.tokens,
        hit.freshness
    )
}

fn yes_no(value: bool) -> &'static str {
    if value {
        "yes"
    } else {
        "no"
    }
}

fn percent(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        100.0 * part as f64 / whole as f64
    }
}

fn print_table(results: &[QuestionResult]) {
    println!(
        "{:<8} {:>9} {:>5} {:>6} {:>9} {:>4} {:>6} {:>5} {:>5} {:>5}  first served",
        "id", "baseline", "ans", "misled", "fourfold", "hits", "first", "rank", "deep", "stale"
    );
    for result in results {
        let first = result
            .answer
            .hits
            .first()
            .map(describe_hit)
            .unwrap_or_else(|| "-".to_string());
        println!(
            "{:<8} {:>9} {:>5} {:>6} {:>9} {:>4} {:>6} {:>5} {:>5} {:>5}  {}",
            result.id,
            result.baseline.tokens,
            yes_no(result.baseline_answered),
            yes_no(result.baseline_misled),
            result.answer.tokens_served,
            result.answer.hits.len(),
            yes_no(result.canonical_first()),
            result
                .canonical_rank
                .map_or_else(|| "-".to_string(), |rank| rank.to_string()),
            result
                .deep_rank
                .map_or_else(|| "-".to_string(), |rank| rank.to_string()),
            result.stale_hits.len(),
            first
        );
    }
}

fn print_misses(results: &[QuestionResult], questions: &[Question]) {
    let misses: Vec<(&QuestionResult, &Question)> = results
        .iter()
        .zip(questions)
        .filter(|(result, _)| !result.canonical_first() || !result.stale_hits.is_empty())
        .collect();
    if misses.is_empty() {
        return;
    }
    println!();
    println!("questions not answered canonically first, or served a stale copy:");
    for (result, question) in misses {
        println!(
            "{}: {:?} wants {} [{}]",
            result.id, question.question, question.answer_key, question.answer_heading
        );
        for (hit_idx, hit) in result.answer.hits.iter().take(N_HITS_SHOWN).enumerate() {
            println!("    {}. {}", hit_idx + 1, describe_hit(hit));
        }
        for stale in &result.stale_hits {
            println!("    stale: {stale}");
        }
    }
}

/// The renames the store read out of the corpus and applied to a question's query.
fn print_renames(results: &[QuestionResult]) {
    let renamed: Vec<&QuestionResult> = results
        .iter()
        .filter(|result| !result.answer.renames.is_empty())
        .collect();
    if renamed.is_empty() {
        return;
    }
    println!();
    println!("old names the store also searched as their new ones:");
    for result in renamed {
        let renames: Vec<String> = result
            .answer
            .renames
            .iter()
            .map(|rename| format!("{} -> {} ({})", rename.old, rename.new, rename.pointer))
            .collect();
        println!("{}: {}", result.id, renames.join(", "));
    }
}

fn result_json(result: &QuestionResult) -> serde_json::Value {
    json!({
        "id": result.id,
        "baseline_tokens": result.baseline.tokens,
        "baseline_files": result.baseline.files,
        "baseline_answered": result.baseline_answered,
        "baseline_misled": result.baseline_misled,
        "fourfold_tokens": result.answer.tokens_served,
        "canonical_first": result.canonical_first(),
        "canonical_rank": result.canonical_rank,
        "deep_rank": result.deep_rank,
        "stale_hits": result.stale_hits,
        "renames": result.answer.renames,
        "ask_us": result.ask_time.as_secs_f64() * 1e6,
        "reranked": result.answer.reranked,
        "rerank_error": result.answer.rerank_error,
        "hits": result.answer.hits.iter().map(|hit| json!({
            "pointer": hit.pointer,
            "heading_path": hit.heading_path,
            "version": hit.version,
            "freshness": hit.freshness.to_string(),
            "tokens": hit.tokens,
            "with_text": hit.text.is_some(),
        })).collect::<Vec<_>>(),
    })
}

fn run(args: Args) -> Result<(), String> {
    let workspace_root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let corpus = args
        .corpus
        .unwrap_or_else(|| workspace_root.join("../shared/corpus/pydantic"));
    let questions_path = args
        .questions
        .unwrap_or_else(|| corpus.join("questions-dev.jsonl"));
    let questions = load_questions(&questions_path).map_err(|error| error.to_string())?;
    let repository = DriftedRepository::build(&corpus).map_err(|error| error.to_string())?;

    let checkout =
        tempfile::tempdir().map_err(|error| format!("no temporary directory: {error}"))?;
    repository
        .write_current_tree(checkout.path())
        .map_err(|error| error.to_string())?;
    let baseline = GrepBaseline::from_dir(checkout.path(), fourfold::tokens::count_tokens)
        .map_err(|error| error.to_string())?;

    let built = build_store(&repository)?;
    if let Some(command) = &args.rerank_command {
        // A model may take minutes to load and seconds an ask on this machine's CPU.
        let reranker = CommandReranker::new("sh", ["-c", command.as_str()])
            .timeout(Duration::from_secs(600))
            .start()
            .map_err(|error| format!("cannot start the reranking command `{command}`: {error}"))?;
        built
            .store
            .set_reranker(Some(std::sync::Arc::new(reranker)), args.rerank_depth);
    }
    let seconds = built.elapsed.as_secs_f64();
    println!(
        "corpus: {} steps ({} puts, {} of them unchanged, {} deletes), {} current documents, \
         {} files in the checkout, {} skipped as not text",
        repository.steps.len(),
        built.n_puts,
        built.n_unchanged_puts,
        built.n_deletes,
        repository.current.len(),
        baseline.n_files(),
        repository.skipped.len()
    );
    println!(
        "ingest: {:.2} MB in {:.3} s = {:.2} MB/s, {} sections = {:.0} sections/s",
        built.n_bytes as f64 / 1e6,
        seconds,
        built.n_bytes as f64 / 1e6 / seconds,
        built.n_sections,
        built.n_sections as f64 / seconds
    );
    println!(
        "questions: {} from {}, budget {} tokens",
        questions.len(),
        questions_path.display(),
        args.budget
    );
    if let Some(command) = &args.rerank_command {
        println!(
            "reranker: the search's best {} candidates, ordered by `{command}`",
            args.rerank_depth
        );
    }
    println!();

    let results: Vec<QuestionResult> = questions
        .iter()
        .map(|question| ask_question(question, &built, &baseline, args.budget))
        .collect();
    print_table(&results);
    print_misses(&results, &questions);
    print_renames(&results);

    let n_questions = results.len() as u64;
    let baseline_tokens: u64 = results.iter().map(|result| result.baseline.tokens).sum();
    let fourfold_tokens: u64 = results
        .iter()
        .map(|result| result.answer.tokens_served)
        .sum();
    let count = |keep: &dyn Fn(&QuestionResult) -> bool| -> u64 {
        results.iter().filter(|result| keep(result)).count() as u64
    };
    let n_canonical_first = count(&QuestionResult::canonical_first);
    let n_canonical_served = count(&|result| result.canonical_rank.is_some());
    let n_stale_served = count(&|result| !result.stale_hits.is_empty());
    let n_baseline_answered = count(&|result| result.baseline_answered);
    let n_baseline_misled = count(&|result| result.baseline_misled);
    let reduction = 100.0 - percent(fourfold_tokens, baseline_tokens);
    let n_deep_top5 = count(&|result| result.deep_rank.is_some_and(|rank| rank <= 5));
    let mrr = results
        .iter()
        .filter_map(|result| result.deep_rank)
        .map(|rank| 1.0 / rank as f64)
        .sum::<f64>()
        / n_questions.max(1) as f64;
    let n_reranked = count(&|result| result.answer.reranked);
    let rerank_errors: Vec<String> = results
        .iter()
        .filter_map(|result| {
            let error = result.answer.rerank_error.as_ref()?;
            Some(format!("{}: {error}", result.id))
        })
        .collect();
    let ask_total: Duration = results.iter().map(|result| result.ask_time).sum();
    let ask_mean_us = ask_total.as_secs_f64() * 1e6 / n_questions.max(1) as f64;
    println!();
    for error in &rerank_errors {
        println!("rerank error, search order served: {error}");
    }
    println!("mean ask on the corpus: {ask_mean_us:.1} µs");

    if let Some(json_path) = &args.json {
        let report = json!({
            "corpus": corpus.display().to_string(),
            "questions": questions_path.display().to_string(),
            "budget_tokens": args.budget,
            "ingest": {
                "bytes": built.n_bytes,
                "seconds": seconds,
                "sections": built.n_sections,
                "puts": built.n_puts,
                "unchanged_puts": built.n_unchanged_puts,
                "deletes": built.n_deletes,
            },
            "totals": {
                "questions": n_questions,
                "baseline_tokens": baseline_tokens,
                "fourfold_tokens": fourfold_tokens,
                "reduction_percent": reduction,
                "canonical_first": n_canonical_first,
                "canonical_served": n_canonical_served,
                "stale_served": n_stale_served,
                "deep_top5": n_deep_top5,
                "deep_mrr": mrr,
                "baseline_answered": n_baseline_answered,
                "baseline_misled": n_baseline_misled,
                "ask_mean_us": ask_mean_us,
                "reranked": n_reranked,
                "rerank_errors": rerank_errors.len(),
            },
            "rerank_command": args.rerank_command,
            "rerank_depth": args.rerank_command.as_ref().map(|_| args.rerank_depth),
            "results": results.iter().map(result_json).collect::<Vec<_>>(),
        });
        let text = serde_json::to_string_pretty(&report)
            .map_err(|error| format!("cannot write the report as JSON: {error}"))?;
        fs::write(json_path, text + "\n")
            .map_err(|error| format!("cannot write `{}`: {error}", json_path.display()))?;
    }

    // Only with a reranker, so that the line is the same as before without one.
    let reranked = if args.rerank_command.is_some() {
        format!(
            " reranked={n_reranked}/{n_questions} rerank_errors={}",
            rerank_errors.len()
        )
    } else {
        String::new()
    };
    println!(
        "totals: questions={n_questions} budget={} baseline_tokens={baseline_tokens} \
         fourfold_tokens={fourfold_tokens} reduction={reduction:.1}% \
         canonical_first={n_canonical_first}/{n_questions} ({:.1}%) \
         canonical_served={n_canonical_served}/{n_questions} stale_served={n_stale_served} \
         deep_top5={n_deep_top5}/{n_questions} deep_mrr={mrr:.3} \
         baseline_answered={n_baseline_answered}/{n_questions} \
         baseline_misled={n_baseline_misled}/{n_questions}{reranked}",
        args.budget,
        percent(n_canonical_first, n_questions),
    );
    Ok(())
}

fn main() -> ExitCode {
    match run(Args::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("context_lookup: {message}");
            ExitCode::FAILURE
        }
    }
}
