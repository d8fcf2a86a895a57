//! A [`Reranker`] that is another program: a cross-encoder served by a Python script, say, so
//! that a store reached through the CLI, the MCP server or a config file can use a model that
//! runs in another language.
//!
//! The program is started once and speaks JSON Lines on its standard input and output: for each
//! ask one request line,
//! `{"query": "...", "candidates": [{"key": "...", "heading_path": ["..."], "text": "...", "score": 1.5}]}`,
//! and one reply line, `{"scores": [2.0, ...]}` (one number per candidate, in their order, higher
//! for a better answer) or `{"error": "..."}`. Its standard error is the process's.

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use parking_lot::{Mutex, MutexGuard};
use serde::{Deserialize, Serialize};

use super::model::{RerankCandidate, Reranker};

/// How long a reply may take unless told otherwise.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long after the program failed (it could not start, ended, or outlived a timeout) it is
/// started again; asks meanwhile keep the search's order at once instead of waiting on it.
const RESTART_AFTER: Duration = Duration::from_secs(30);

/// How long a dropped reranker waits for its program to end once its input is closed, before
/// killing it.
const GRACE: Duration = Duration::from_secs(1);

/// A reranker that asks a program, over JSON Lines, for its scores.
///
/// The program runs without a shell (no word splitting, no expansions) and answers one request
/// at a time; [`CommandReranker::processes`] runs several copies, so that as many asks (a
/// server's clients, an agent's threads) are reranked at once. Lines it writes that do not
/// start with `{` (a banner, a log line) are skipped, and so are lines written before a request
/// is sent, so that they never pass for a reply.
///
/// A reply that does not come within the timeout (ten seconds unless set), or a program that
/// ends, fails that ask's reranking (the ask keeps the search's order and says why in
/// [`Answer::rerank_error`](super::Answer::rerank_error)); the program is then stopped and
/// started again at the first ask 30 seconds later. Requests are written and replies read by
/// two threads of the reranker's own, so a program that stops reading cannot hold an ask past
/// the timeout either. Dropping the reranker closes the program's input, and kills it if it has
/// not ended a second later.
///
/// ```no_run
/// use std::sync::Arc;
/// use fourfold::context::{CommandReranker, ContextStore};
///
/// let store = ContextStore::new();
/// let reranker = CommandReranker::new("python3", ["rerank.py"]).start()?;
/// store.set_reranker(Some(Arc::new(reranker)), 20);
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct CommandReranker {
    program: String,
    args: Vec<String>,
    dir: Option<PathBuf>,
    timeout: Duration,
    /// One per copy of the program; an ask takes a free one, or waits for one.
    states: Vec<Mutex<State>>,
    /// Where the next ask starts looking for a free copy.
    next: AtomicUsize,
}

#[derive(Default)]
struct State {
    running: Option<Running>,
    /// While the program is not running: when it may be started again.
    restart_at: Option<Instant>,
    /// Why it is not running, for the asks until then.
    failure: Option<String>,
}

/// A started program, the requests a thread writes to its input, and what a thread reads from
/// its output. Both threads end with the program: neither a program that stops reading nor one
/// that stops writing can hold an ask past its timeout.
struct Running {
    child: Child,
    requests: Sender<String>,
    replies: Receiver<Heard>,
}

/// What the reading and writing threads report.
enum Heard {
    Line(String),
    /// The program's output ended (it exited, most likely).
    Ended,
    WriteFailed(std::io::Error),
    ReadFailed(std::io::Error),
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
    /// A reranker that runs `program` with `args`; nothing runs until [`CommandReranker::start`]
    /// or the first ask.
    pub fn new<I, S>(program: impl Into<String>, args: I) -> CommandReranker
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        CommandReranker {
            program: program.into(),
            args: args.into_iter().map(Into::into).collect(),
            dir: None,
            timeout: DEFAULT_TIMEOUT,
            states: vec![Mutex::new(State::default())],
            next: AtomicUsize::new(0),
        }
    }

    /// Runs `n` copies of the program (1 unless set; 0 is taken as 1), each answering one ask
    /// at a time, and each started, failed and restarted on its own.
    pub fn processes(mut self, n: usize) -> CommandReranker {
        self.states = (0..n.max(1)).map(|_| Mutex::default()).collect();
        self
    }

    /// Fails an ask's reranking, and restarts the program, when a reply takes longer.
    pub fn timeout(mut self, timeout: Duration) -> CommandReranker {
        self.timeout = timeout;
        self
    }

    /// Runs the program in `dir` instead of the current directory.
    pub fn dir(mut self, dir: impl Into<PathBuf>) -> CommandReranker {
        self.dir = Some(dir.into());
        self
    }

    /// Starts the program now, so that one that cannot be started is an error here rather than
    /// at every ask.
    pub fn start(self) -> Result<CommandReranker, std::io::Error> {
        for state in &self.states {
            let running = self.spawn()?;
            state.lock().running = Some(running);
        }
        Ok(self)
    }

    /// The program and its arguments, as shown in errors.
    pub fn command_line(&self) -> String {
        crate::session::command_line(&self.program, &self.args)
    }

    fn spawn(&self) -> Result<Running, std::io::Error> {
        let mut command = Command::new(&self.program);
        command
            .args(&self.args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        if let Some(dir) = &self.dir {
            command.current_dir(dir);
        }
        let mut child = command.spawn()?;
        let (Some(input), Some(output)) = (child.stdin.take(), child.stdout.take()) else {
            // INVARIANT: both were asked for as pipes, so `spawn` gave both.
            let _ = child.kill();
            let _ = child.wait();
            return Err(std::io::Error::other(
                "the program was started without pipes",
            ));
        };
        let (heard, replies) = crossbeam_channel::unbounded();
        let (requests, to_write) = crossbeam_channel::unbounded();
        let threads = std::thread::Builder::new()
            .name("fourfold-reranker-out".into())
            .spawn({
                let heard = heard.clone();
                move || read_replies(output, &heard)
            })
            .and_then(|_| {
                std::thread::Builder::new()
                    .name("fourfold-reranker-in".into())
                    .spawn(move || write_requests(input, &to_write, &heard))
            });
        if let Err(error) = threads {
            let _ = child.kill();
            let _ = child.wait();
            return Err(error);
        }
        Ok(Running {
            child,
            requests,
            replies,
        })
    }

    /// The program's scores for `candidates`, starting it first if it is not running.
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
        let mut state = self.free_state();
        if state.running.is_none() {
            if let Some(restart_at) = state.restart_at {
                if Instant::now() < restart_at {
                    let failure = state.failure.clone().unwrap_or_default();
                    return Err(format!(
                        "`{}` is not running ({failure}); it is started again {}s after it failed",
                        self.command_line(),
                        RESTART_AFTER.as_secs()
                    ));
                }
            }
            match self.spawn() {
                Ok(running) => {
                    state.running = Some(running);
                    state.restart_at = None;
                    state.failure = None;
                }
                Err(error) => {
                    let failure = format!("cannot start `{}`: {error}", self.command_line());
                    return Err(fail(&mut state, failure));
                }
            }
        }
        let Some(running) = state.running.as_mut() else {
            return Err(format!("`{}` is not running", self.command_line()));
        };
        // Whatever came before this request (a banner) cannot be its reply; a program that
        // ended since the last ask is not waited on.
        while let Ok(heard) = running.replies.try_recv() {
            if let Err(failure) = self.line_of(heard, "has ended") {
                return Err(fail(&mut state, failure));
            }
        }
        let deadline = Instant::now() + self.timeout;
        let heard = match running.requests.send(line) {
            Ok(()) => recv_reply(&running.replies, deadline),
            Err(_) => Err(RecvTimeoutError::Disconnected),
        };
        let reply = match heard {
            Ok(heard) => self.line_of(heard, "ended without a reply"),
            Err(RecvTimeoutError::Disconnected) => {
                Err(format!("`{}` ended without a reply", self.command_line()))
            }
            // Its reply may still come, and would answer the next request: it is stopped.
            Err(RecvTimeoutError::Timeout) => Err(format!(
                "`{}` did not reply within {:.1}s",
                self.command_line(),
                self.timeout.as_secs_f64()
            )),
        };
        let reply = match reply {
            Ok(reply) => reply,
            Err(failure) => return Err(fail(&mut state, failure)),
        };
        // One line a reply, so a bad one leaves the program in step for the next ask.
        match serde_json::from_str::<Reply>(&reply) {
            Ok(Reply {
                error: Some(error), ..
            }) => Err(format!("`{}`: {error}", self.command_line())),
            Ok(Reply {
                scores: Some(scores),
                ..
            }) => Ok(scores),
            Ok(Reply { .. }) => Err(format!(
                "`{}` replied neither scores nor an error",
                self.command_line()
            )),
            Err(error) => Err(format!(
                "`{}` replied with a line that is not a reply: {error}",
                self.command_line()
            )),
        }
    }

    /// A copy of the program no other ask is using, looked for from where the last ask started
    /// looking: a running one first, then one that may be started, then one that failed; if
    /// all are busy, the first looked at, once it is free. So asks one at a time keep using one
    /// program, and more are started only when asks come at once.
    fn free_state(&self) -> MutexGuard<'_, State> {
        let first = self.next.fetch_add(1, Ordering::Relaxed) % self.states.len().max(1);
        let order = self.states[first..].iter().chain(&self.states[..first]);
        let now = Instant::now();
        let rank = |state: &State| match (&state.running, state.restart_at) {
            (Some(_), _) => 0,
            (None, Some(restart_at)) if now < restart_at => 2,
            (None, _) => 1,
        };
        let mut best: Option<(u8, MutexGuard<'_, State>)> = None;
        for state in order {
            let Some(free) = state.try_lock() else {
                continue;
            };
            let free_rank = rank(&free);
            if best
                .as_ref()
                .is_none_or(|(best_rank, _)| free_rank < *best_rank)
            {
                best = Some((free_rank, free));
                if free_rank == 0 {
                    break;
                }
            }
        }
        match best {
            Some((_, free)) => free,
            // INVARIANT: `states` is never empty (`new` makes one, `processes` at least one).
            None => self.states[first].lock(),
        }
    }

    /// The line `heard` holds, or what failed, with `ended` saying how the program's end reads.
    fn line_of(&self, heard: Heard, ended: &str) -> Result<String, String> {
        // The command line is joined only for a failure, not for every reply.
        match heard {
            Heard::Line(line) => Ok(line),
            Heard::Ended => Err(format!("`{}` {ended}", self.command_line())),
            Heard::WriteFailed(error) => Err(format!(
                "cannot write to `{}`: {error}",
                self.command_line()
            )),
            Heard::ReadFailed(error) => Err(format!(
                "cannot read from `{}`: {error}",
                self.command_line()
            )),
        }
    }
}

/// The next line from the program that can be a reply (it starts with `{`), or a failure,
/// waiting until `deadline` at most.
fn recv_reply(replies: &Receiver<Heard>, deadline: Instant) -> Result<Heard, RecvTimeoutError> {
    loop {
        match replies.recv_deadline(deadline)? {
            Heard::Line(line) if !line.trim_start().starts_with('{') => continue,
            heard => return Ok(heard),
        }
    }
}

/// Sends each line of the program's output to `heard`, until it ends or fails.
fn read_replies(output: ChildStdout, heard: &Sender<Heard>) {
    let mut output = BufReader::new(output);
    loop {
        let mut line = String::new();
        match output.read_line(&mut line) {
            Ok(0) => {
                // Said outright: the writing thread's sender keeps the channel open.
                let _ = heard.send(Heard::Ended);
                return;
            }
            Ok(_) => {
                if heard.send(Heard::Line(line)).is_err() {
                    return;
                }
            }
            Err(error) => {
                let _ = heard.send(Heard::ReadFailed(error));
                return;
            }
        }
    }
}

/// Writes each request to the program's input, until the reranker stops it (dropping the
/// sender closes the input) or a write fails.
fn write_requests(mut input: ChildStdin, to_write: &Receiver<String>, heard: &Sender<Heard>) {
    for line in to_write {
        if let Err(error) = input
            .write_all(line.as_bytes())
            .and_then(|()| input.flush())
        {
            let _ = heard.send(Heard::WriteFailed(error));
            return;
        }
    }
}

/// Stops the program after `failure`, notes when it may be started again, and returns
/// `failure`.
fn fail(state: &mut State, failure: String) -> String {
    if let Some(running) = state.running.take() {
        stop(running, Duration::ZERO);
    }
    state.restart_at = Some(Instant::now() + RESTART_AFTER);
    state.failure = Some(failure.clone());
    failure
}

/// Closes the program's input, gives it `grace` to end, then kills it, and reaps it.
fn stop(running: Running, grace: Duration) {
    stop_all(vec![running], grace);
}

/// [`stop`] for several programs at once: all their inputs are closed first, so that they
/// share one `grace`.
fn stop_all(running: Vec<Running>, grace: Duration) {
    // The writing threads then end and drop the inputs; one blocked on a program that stopped
    // reading ends when the program is killed.
    let mut children: Vec<Child> = running
        .into_iter()
        .map(|Running { child, .. }| child)
        .collect();
    let deadline = Instant::now() + grace;
    for child in &mut children {
        loop {
            match child.try_wait() {
                Ok(Some(_)) => break,
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(10));
                }
                _ => {
                    let _ = child.kill();
                    let _ = child.wait();
                    break;
                }
            }
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
        let running = self
            .states
            .iter_mut()
            .filter_map(|state| state.get_mut().running.take())
            .collect();
        stop_all(running, GRACE);
    }
}

impl std::fmt::Debug for CommandReranker {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("CommandReranker")
            .field("command", &self.command_line())
            .field("dir", &self.dir)
            .field("timeout", &self.timeout)
            .field("processes", &self.states.len())
            .finish_non_exhaustive()
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

    /// Scores each candidate by its text's length; an empty query gets an error, a query
    /// `sleep` no reply for two seconds, a query `exit` no reply at all.
    const BY_LENGTH: &str = r#"
import json, sys, time
for line in sys.stdin:
    request = json.loads(line)
    if request["query"] == "exit":
        sys.exit(0)
    if request["query"] == "bye":
        print(json.dumps({"scores": [0.0 for c in request["candidates"]]}), flush=True)
        sys.exit(0)
    if request["query"] == "sleep":
        time.sleep(2)
    if not request["query"]:
        print(json.dumps({"error": "empty query"}), flush=True)
    else:
        print(json.dumps({"scores": [len(c["text"]) for c in request["candidates"]]}), flush=True)
"#;

    fn by_length() -> CommandReranker {
        CommandReranker::new("python3", ["-c", BY_LENGTH])
    }

    #[test]
    fn a_program_scores_candidates_over_json_lines() {
        let reranker = by_length().start().unwrap();
        let candidates = [
            candidate("a.md", "short"),
            candidate("b.md", "much longer text"),
        ];
        assert_eq!(
            reranker.rerank("which", &candidates).unwrap(),
            vec![5.0, 16.0]
        );
        assert_eq!(
            reranker.rerank("again", &candidates[..1]).unwrap(),
            vec![5.0]
        );
        let error = reranker.rerank("", &candidates).unwrap_err();
        assert!(error.contains("empty query"), "{error}");
        // An error reply leaves the program running, in step.
        assert_eq!(
            reranker.rerank("more", &candidates).unwrap(),
            vec![5.0, 16.0]
        );
    }

    #[test]
    fn a_program_that_cannot_start_is_an_error_at_start_and_at_ask() {
        let missing = || CommandReranker::new("/nonexistent/fourfold-reranker", ["--x"]);
        assert!(missing().start().is_err());
        let lazy = missing();
        let error = lazy.rerank("query", &[candidate("a.md", "a")]).unwrap_err();
        assert!(error.contains("cannot start"), "{error}");
        // Not tried again at once: the next ask says why, without waiting.
        let error = lazy.rerank("query", &[candidate("a.md", "a")]).unwrap_err();
        assert!(error.contains("not running"), "{error}");
        assert!(error.contains("cannot start"), "{error}");
    }

    #[test]
    fn a_slow_or_ended_program_fails_the_ask_and_is_stopped() {
        let candidates = [candidate("a.md", "text")];
        let slow = by_length()
            .timeout(Duration::from_millis(300))
            .start()
            .unwrap();
        let started = Instant::now();
        let error = slow.rerank("sleep", &candidates).unwrap_err();
        assert!(error.contains("did not reply within"), "{error}");
        assert!(started.elapsed() < Duration::from_secs(2), "waited it out");
        let error = slow.rerank("which", &candidates).unwrap_err();
        assert!(error.contains("not running"), "{error}");
        let ended = by_length().start().unwrap();
        let error = ended.rerank("exit", &candidates).unwrap_err();
        assert!(
            error.contains("ended without a reply") || error.contains("cannot write"),
            "{error}"
        );
        // A program that ended after its last reply is not waited on at the next ask.
        let leaving = by_length().start().unwrap();
        assert_eq!(leaving.rerank("bye", &candidates).unwrap(), vec![0.0]);
        std::thread::sleep(Duration::from_millis(300));
        let started = Instant::now();
        let error = leaving.rerank("which", &candidates).unwrap_err();
        assert!(error.contains("has ended"), "{error}");
        assert!(started.elapsed() < Duration::from_secs(2), "waited for it");
    }

    /// A program that never reads its input cannot hold an ask past the timeout, even with a
    /// request larger than the pipe holds.
    #[test]
    fn a_program_that_stops_reading_cannot_hold_an_ask() {
        let deaf = CommandReranker::new("sh", ["-c", "sleep 30"])
            .timeout(Duration::from_millis(300))
            .start()
            .unwrap();
        let candidates = [candidate("a.md", &"x".repeat(1 << 20))];
        let started = Instant::now();
        let error = deaf.rerank("query", &candidates).unwrap_err();
        assert!(error.contains("did not reply within"), "{error}");
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "blocked on the write"
        );
        drop(deaf);
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "blocked on the drop"
        );
    }

    #[test]
    fn a_program_that_talks_nonsense_is_an_error() {
        let candidates = [candidate("a.md", "text")];
        let nonsense =
            CommandReranker::new("sh", ["-c", "while read line; do echo '{not json'; done"]);
        let error = nonsense.rerank("query", &candidates).unwrap_err();
        assert!(error.contains("not a reply"), "{error}");
        // Lines that cannot be replies are skipped: only silence, then the timeout.
        let chatty = CommandReranker::new("sh", ["-c", "while read line; do echo thinking; done"])
            .timeout(Duration::from_millis(300));
        let error = chatty.rerank("query", &candidates).unwrap_err();
        assert!(error.contains("did not reply within"), "{error}");
        let neither = CommandReranker::new("sh", ["-c", "while read line; do echo '{}'; done"]);
        let error = neither.rerank("query", &candidates).unwrap_err();
        assert!(error.contains("neither scores nor an error"), "{error}");
    }

    /// A program that greets on its output before and while it works stays in step.
    #[test]
    fn banners_and_log_lines_never_pass_for_replies() {
        let script = r#"
import json, sys
print("loading the model...", flush=True)
for line in sys.stdin:
    request = json.loads(line)
    print("scoring", len(request["candidates"]), "candidates", flush=True)
    print(json.dumps({"scores": [len(c["text"]) for c in request["candidates"]]}), flush=True)
"#;
        let reranker = CommandReranker::new("python3", ["-c", script])
            .start()
            .unwrap();
        // Let the banner arrive before the first request, as a slow model's would not.
        std::thread::sleep(Duration::from_millis(300));
        for text in ["one", "three", "seven"] {
            let candidates = [candidate("a.md", text)];
            assert_eq!(
                reranker.rerank("query", &candidates).unwrap(),
                vec![text.len() as f32]
            );
        }
    }

    /// With two copies of the program, two asks are answered at once: each copy notes the
    /// request it holds, and replies (its process id) only once both have one.
    #[test]
    fn copies_of_the_program_answer_asks_at_once() {
        let script = r#"
import json, os, sys, time
for line in sys.stdin:
    request = json.loads(line)
    open(f"arrived-{os.getpid()}", "w").close()
    deadline = time.monotonic() + 30
    while not os.path.exists("go") and time.monotonic() < deadline:
        time.sleep(0.01)
    print(json.dumps({"scores": [os.getpid() for c in request["candidates"]]}), flush=True)
"#;
        let dir = tempfile::tempdir().unwrap();
        let reranker = CommandReranker::new("python3", ["-c", script])
            .dir(dir.path())
            .processes(2)
            .timeout(Duration::from_secs(60))
            .start()
            .unwrap();
        let arrived = || {
            std::fs::read_dir(dir.path())
                .unwrap()
                .filter(|entry| {
                    entry
                        .as_ref()
                        .unwrap()
                        .file_name()
                        .to_string_lossy()
                        .starts_with("arrived-")
                })
                .count()
        };
        let scores = std::thread::scope(|scope| {
            let asks: Vec<_> = (0..2)
                .map(|_| scope.spawn(|| reranker.rerank("q", &[candidate("a.md", "a")])))
                .collect();
            // Both requests are held at once, by two programs; with one, the second request
            // would not be read before the first is answered.
            let deadline = Instant::now() + Duration::from_secs(30);
            while arrived() < 2 && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
            let n_arrived = arrived();
            std::fs::write(dir.path().join("go"), "").unwrap();
            assert_eq!(n_arrived, 2, "the second ask waited for the first");
            asks.into_iter()
                .map(|ask| ask.join().unwrap().unwrap())
                .collect::<Vec<_>>()
        });
        assert_ne!(scores[0], scores[1], "one program answered both");
        assert!(format!("{reranker:?}").contains("processes: 2"));
    }

    /// Asks one at a time keep using the program that is running: copies are started only when
    /// asks come at once.
    #[test]
    fn asks_one_at_a_time_use_one_copy() {
        let script = r#"
import json, os, sys
for line in sys.stdin:
    request = json.loads(line)
    print(json.dumps({"scores": [os.getpid() for c in request["candidates"]]}), flush=True)
"#;
        let reranker = CommandReranker::new("python3", ["-c", script]).processes(3);
        let pids: Vec<Vec<f32>> = (0..5)
            .map(|_| reranker.rerank("q", &[candidate("a.md", "a")]).unwrap())
            .collect();
        assert!(pids.windows(2).all(|pair| pair[0] == pair[1]), "{pids:?}");
        let n_running = reranker
            .states
            .iter()
            .filter(|state| state.lock().running.is_some())
            .count();
        assert_eq!(n_running, 1);
    }

    /// Asks from several threads share the program one request at a time: no reply answers
    /// another thread's request.
    #[test]
    fn concurrent_asks_each_get_their_own_reply() {
        let reranker = std::sync::Arc::new(by_length().start().unwrap());
        let threads: Vec<_> = (0..4)
            .map(|thread_idx| {
                let reranker = std::sync::Arc::clone(&reranker);
                std::thread::spawn(move || {
                    for ask_idx in 0..20 {
                        let text = "x".repeat(1 + thread_idx * 100 + ask_idx);
                        let candidates = [candidate("a.md", &text), candidate("b.md", "yy")];
                        let scores = reranker.rerank("which", &candidates).unwrap();
                        assert_eq!(scores, vec![text.len() as f32, 2.0]);
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
    }

    /// Through the store: the program's order is the order served.
    #[test]
    fn the_store_serves_in_the_programs_order() {
        let store = super::super::ContextStore::new();
        store
            .put("a.md", "# Alpha\n\nserde serde serde serde.\n")
            .unwrap();
        store
            .put(
                "b.md",
                "# Beta\n\nserde, with a much longer text than the other page has.\n",
            )
            .unwrap();
        assert_eq!(store.ask("serde", 10_000).hits[0].key, "a.md");
        store.set_reranker(Some(std::sync::Arc::new(by_length())), 20);
        let reranked = store.ask("serde", 10_000);
        assert!(reranked.reranked, "{:?}", reranked.rerank_error);
        assert_eq!(reranked.hits[0].key, "b.md");
    }
}
