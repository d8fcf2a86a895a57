//! What scoping an agent's asks by the policy costs: the corpus's 40 dev questions asked of
//! the files of pydantic v2.13.4 (keys `docs/...`) by a store alone, by an agent's session that is
//! served every document (`ContextScope::All`), and by one served only what the policy lets it
//! read (`ContextScope::Policy`, each document an ask meets judged by `Policy::permits`), under a
//! policy of 40 rules of which one lets the agent read `docs/**`.
//!
//! `cargo run --release -p fourfold-benches --example scoped_ask [ROUNDS]` (default 30) prints,
//! per way of asking, the median and mean of single asks over the rounds, the three ways taking
//! turns question by question; each round starts new sessions, so no section is held.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use fourfold::context::ContextStore;
use fourfold::session::ContextScope;
use fourfold::{AgentSession, Fourfold, Policy};
use fourfold_benches::context_corpus::{load_questions, read_text_tree};

/// A policy of 40 rules: 38 for other agents and folders, the agent's own, and a deny.
fn policy_text() -> String {
    let mut text = String::new();
    for idx in 0..38 {
        text.push_str(&format!(
            "[[rule]]\nid = \"team-{idx}\"\neffect = \"allow\"\nagents = [\"agent-{idx}\"]\nread = [\"teams/{idx}/**\"]\nwrite = [\"teams/{idx}/src/**\"]\n\n"
        ));
    }
    text.push_str("[[rule]]\nid = \"reader-docs\"\neffect = \"allow\"\nagents = [\"reader\"]\nread = [\"docs/**\"]\n\n");
    text.push_str(
        "[[rule]]\nid = \"no-secrets\"\neffect = \"deny\"\nread = [\"**/.env\", \"secrets/**\"]\n",
    );
    text
}

fn fourfold(scope: ContextScope, pages: &[(String, String)]) -> Fourfold {
    let policy = Policy::builder_from_toml(&policy_text())
        .expect("the policy parses")
        .root("/repo");
    let fourfold = Fourfold::builder()
        .policy(policy)
        .context(ContextStore::builder())
        .context_scope(scope)
        .build()
        .expect("the controls build");
    let store = fourfold.context().expect("a context store");
    for (key, text) in pages {
        store.put(key, text).expect("a page puts");
    }
    fourfold
}

fn summary(name: &str, samples: &mut [Duration]) {
    samples.sort();
    let mean = samples.iter().sum::<Duration>() / samples.len().max(1) as u32;
    println!(
        "{name:<16} asks={} p50={:.1?} mean={:.1?}",
        samples.len(),
        samples[samples.len() / 2],
        mean
    );
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let rounds: usize = std::env::args()
        .nth(1)
        .map_or(Ok(30), |rounds| rounds.parse())?;
    let corpus = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus/pydantic");
    let root = corpus.join("v2.13.4");
    let mut skipped = Vec::new();
    let pages = read_text_tree(&root, &corpus, &mut skipped)?;
    let questions = load_questions(Path::new(&corpus.join("questions-dev.jsonl")))?;
    let everything = fourfold(ContextScope::All, &pages);
    let scoped = fourfold(ContextScope::Policy, &pages);
    let store = everything.context().expect("a context store").clone();
    let mut samples: [Vec<Duration>; 3] = Default::default();
    let mut n_hits = [0usize; 3];
    for round in 0..=rounds {
        let sessions: [AgentSession; 2] = [
            everything.session("reader", Some("T-1")),
            scoped.session("reader", Some("T-1")),
        ];
        for question in &questions {
            for way in 0..3 {
                let started = Instant::now();
                let answer = match way {
                    0 => store.ask(&question.question, 800),
                    way => sessions[way - 1].ask(&question.question, 800)?,
                };
                let elapsed = started.elapsed();
                // The first round warms the caches and is not counted.
                if round > 0 {
                    samples[way].push(elapsed);
                    n_hits[way] += answer.hits.len();
                }
            }
        }
    }
    // A session serves a section it already holds as a pointer, which leaves room for more
    // hits than the store alone serves; the two sessions serve the same.
    assert_eq!(
        n_hits[1], n_hits[2],
        "the sessions served different numbers of hits: {n_hits:?}"
    );
    for (name, way_samples) in ["store", "session, all", "session, policy"]
        .iter()
        .zip(samples.iter_mut())
    {
        summary(name, way_samples);
    }
    Ok(())
}
