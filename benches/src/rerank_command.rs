//! A [`Reranker`] that is another program: the context benches hand a store's candidates to it,
//! so that a reranking model in any language (a Python cross-encoder, say) is measured through
//! the store's own reranking path ([`ContextStore::set_reranker`]), as an agent would use it.
//!
//! The program is started once, with `sh -c COMMAND`, and speaks JSON Lines on its standard
//! input and output: for each ask one request line,
//! `{"query": "...", "candidates": [{"key": "...", "heading_path": ["..."], "text": "...", "score": 1.5}]}`,
//! and one reply line, `{"scores": [2.0, ...]}` (one number per candidate, in their order, higher
//! for a better answer) or `{"error": "..."}`. What it writes to standard error goes to the
//! bench's.
//!
//! [`ContextStore::set_reranker`]: fourfold::context::ContextStore::set_reranker

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

use fourfold::context::{RerankCandidate, Reranker};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

/// Why the reranking program could not be started.
#[derive(Debug, thiserror::Error)]
#[error("cannot start the reranking command `{command}`: {source}")]
pub struct SpawnError {
    command: String,
    #[source]
    source: std::io::Error,
}

/// A running reranking program; stopped (its input closed, then waited for) when dropped.
pub struct CommandReranker {
    command: String,
    pipes: Mutex<Pipes>,
    child: Mutex<Child>,
}

struct Pipes {
    /// `None` once closed, at drop.
    input: Option<ChildStdin>,
    output: BufReader<ChildStdout>,
}

#[derive(Serialize)]
struct Request<'a> {
    query: &'a str,
    candidates: Vec<Candidate<'a>>,
}

#[derive(Serialize)]
struct Candidate<'a> {
    key: &'a str,
    heading_path: &'a [String],
    text: &'a str,
    score: f32,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Reply {
    scores: Option<Vec<f32>>,
    error: Option<String>,
}

impl CommandReranker {
    /// Starts `command` under `sh -c`.
    pub fn spawn(command: &str) -> Result<CommandReranker, SpawnError> {
        let spawn_error = |source| SpawnError {
            command: command.to_string(),
            source,
        };
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(command)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(spawn_error)?;
        let (Some(input), Some(output)) = (child.stdin.take(), child.stdout.take()) else {
            // INVARIANT: both were asked for as pipes, so `spawn` gave both.
            let _ = child.kill();
            let _ = child.wait();
            return Err(spawn_error(std::io::Error::other(
                "no pipes to the command",
            )));
        };
        Ok(CommandReranker {
            command: command.to_string(),
            pipes: Mutex::new(Pipes {
                input: Some(input),
                output: BufReader::new(output),
            }),
            child: Mutex::new(child),
        })
    }

    /// What the program says of `query` and `candidates`: its scores, or why there are none.
    fn exchange(&self, query: &str, candidates: &[RerankCandidate]) -> Result<Vec<f32>, String> {
        let request = Request {
            query,
            candidates: candidates
                .iter()
                .map(|candidate| Candidate {
                    key: &candidate.key,
                    heading_path: &candidate.heading_path,
                    text: &candidate.text,
                    score: candidate.score,
                })
                .collect(),
        };
        let mut line = serde_json::to_string(&request)
            .map_err(|error| format!("cannot write the request: {error}"))?;
        line.push('\n');
        let mut pipes = self.pipes.lock();
        let input = pipes
            .input
            .as_mut()
            .ok_or_else(|| "the command's input is closed".to_string())?;
        input
            .write_all(line.as_bytes())
            .and_then(|()| input.flush())
            .map_err(|error| format!("cannot write to `{}`: {error}", self.command))?;
        let mut reply = String::new();
        let n_read = pipes
            .output
            .read_line(&mut reply)
            .map_err(|error| format!("cannot read from `{}`: {error}", self.command))?;
        if n_read == 0 {
            return Err(format!("`{}` ended without a reply", self.command));
        }
        let reply: Reply = serde_json::from_str(&reply)
            .map_err(|error| format!("`{}` replied with no JSON reply: {error}", self.command))?;
        match reply {
            Reply {
                error: Some(error), ..
            } => Err(format!("`{}`: {error}", self.command)),
            Reply {
                scores: Some(scores),
                ..
            } => Ok(scores),
            Reply { .. } => Err(format!(
                "`{}` replied neither scores nor an error",
                self.command
            )),
        }
    }
}

impl Reranker for CommandReranker {
    fn rerank(&self, query: &str, candidates: &[RerankCandidate]) -> Result<Vec<f32>, String> {
        self.exchange(query, candidates)
    }
}

impl Drop for CommandReranker {
    fn drop(&mut self) {
        // Closing its input tells the program there is nothing more; it ends, and is reaped.
        self.pipes.get_mut().input = None;
        let _ = self.child.get_mut().wait();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn candidate(key: &str, text: &str) -> RerankCandidate {
        RerankCandidate {
            key: key.to_string(),
            heading_path: vec![key.to_string()],
            text: text.to_string(),
            score: 1.0,
        }
    }

    /// A program that speaks the protocol: scores each candidate by its text's length, and
    /// answers an empty query with an error.
    const BY_LENGTH: &str = r#"python3 -c '
import json, sys
for line in sys.stdin:
    request = json.loads(line)
    if not request["query"]:
        print(json.dumps({"error": "empty query"}), flush=True)
    else:
        print(json.dumps({"scores": [len(c["text"]) for c in request["candidates"]]}), flush=True)
'"#;

    #[test]
    fn a_program_scores_candidates_over_json_lines() {
        let reranker = CommandReranker::spawn(BY_LENGTH).unwrap();
        let candidates = [
            candidate("a.md", "short"),
            candidate("b.md", "much longer text"),
        ];
        assert_eq!(
            reranker.rerank("which", &candidates).unwrap(),
            vec![5.0, 16.0]
        );
        // The same process answers again, and says why it cannot.
        assert_eq!(
            reranker.rerank("again", &candidates[..1]).unwrap(),
            vec![5.0]
        );
        let error = reranker.rerank("", &candidates).unwrap_err();
        assert!(error.contains("empty query"), "{error}");
    }

    #[test]
    fn a_program_that_ends_or_talks_nonsense_is_an_error() {
        let ended = CommandReranker::spawn("exit 0").unwrap();
        let candidates = [candidate("a.md", "text")];
        let error = ended.rerank("query", &candidates).unwrap_err();
        assert!(
            error.contains("ended without a reply") || error.contains("cannot write"),
            "{error}"
        );
        let nonsense = CommandReranker::spawn("while read line; do echo not-json; done").unwrap();
        let error = nonsense.rerank("query", &candidates).unwrap_err();
        assert!(error.contains("no JSON reply"), "{error}");
        let neither = CommandReranker::spawn("while read line; do echo '{}'; done").unwrap();
        let error = neither.rerank("query", &candidates).unwrap_err();
        assert!(error.contains("neither scores nor an error"), "{error}");
    }

    /// Through the store: the program's order is the order served.
    #[test]
    fn the_store_serves_in_the_programs_order() {
        let store = fourfold::context::ContextStore::new();
        store
            .put("a.md", "# Alpha\n\nserde serde serde serde.\n")
            .unwrap();
        store
            .put(
                "b.md",
                "# Beta\n\nserde, with a much longer text than the other page has.\n",
            )
            .unwrap();
        let plain = store.ask("serde", 10_000);
        assert_eq!(plain.hits[0].key, "a.md");
        let reranker = CommandReranker::spawn(BY_LENGTH).unwrap();
        store.set_reranker(Some(std::sync::Arc::new(reranker)), 20);
        let reranked = store.ask("serde", 10_000);
        assert!(reranked.reranked, "{:?}", reranked.rerank_error);
        assert_eq!(reranked.hits[0].key, "b.md");
    }
}
