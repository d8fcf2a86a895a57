//! A gate that runs a command and passes when it exits with status 0 (a test suite, a linter).

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::plugin::{GateOutcome, Plugin};
use crate::policy::Request;

/// A plugin gate that runs a program and passes on exit status 0: `tests-pass` running
/// `cargo test`, say. The program runs without a shell (no word splitting, no expansions), with
/// its output discarded; install it under the gate's name and name that gate in `gate` rules.
///
/// A program that cannot be started, exits non-zero, is killed or outlives its timeout (ten
/// minutes unless set; it is then killed) fails the gate: it fails closed. The check blocks the
/// guarding thread until the program exits.
#[derive(Clone, Debug)]
pub struct CommandGate {
    name: String,
    program: String,
    args: Vec<String>,
    dir: Option<PathBuf>,
    timeout: Duration,
}

/// How long a gate's program may run unless told otherwise.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(600);

/// How often a running program is looked at.
const POLL: Duration = Duration::from_millis(20);

impl CommandGate {
    /// A gate named `name` that runs `program` with `args`.
    pub fn new<I, S>(name: impl Into<String>, program: impl Into<String>, args: I) -> CommandGate
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        CommandGate {
            name: name.into(),
            program: program.into(),
            args: args.into_iter().map(Into::into).collect(),
            dir: None,
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// Kills the program and fails the gate if it runs longer than `timeout`.
    pub fn timeout(mut self, timeout: Duration) -> CommandGate {
        self.timeout = timeout;
        self
    }

    /// Runs the program in `dir` instead of the current directory.
    pub fn dir(mut self, dir: impl Into<PathBuf>) -> CommandGate {
        self.dir = Some(dir.into());
        self
    }

    fn command_line(&self) -> String {
        command_line(&self.program, &self.args)
    }
}

/// A program and its arguments joined by spaces, as errors show them (a command gate's, a
/// reranking program's).
pub(crate) fn command_line(program: &str, args: &[String]) -> String {
    std::iter::once(program)
        .chain(args.iter().map(String::as_str))
        .collect::<Vec<_>>()
        .join(" ")
}

impl Plugin for CommandGate {
    fn name(&self) -> &str {
        &self.name
    }

    fn check(&self, _request: &Request) -> GateOutcome {
        let mut command = Command::new(&self.program);
        command
            .args(&self.args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if let Some(dir) = &self.dir {
            command.current_dir(dir);
        }
        let mut child = match command.spawn() {
            Ok(child) => child,
            Err(error) => {
                return GateOutcome::Fail {
                    reason: format!("`{}` could not be started: {error}", self.command_line()),
                }
            }
        };
        let started = Instant::now();
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) if started.elapsed() < self.timeout => std::thread::sleep(POLL),
                Ok(None) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return GateOutcome::Fail {
                        reason: format!(
                            "`{}` ran longer than {} s and was stopped",
                            self.command_line(),
                            self.timeout.as_secs_f64()
                        ),
                    };
                }
                Err(error) => {
                    let _ = child.kill();
                    return GateOutcome::Fail {
                        reason: format!(
                            "`{}` could not be waited for: {error}",
                            self.command_line()
                        ),
                    };
                }
            }
        };
        if status.success() {
            GateOutcome::Pass {
                reason: format!("`{}` exited with status 0", self.command_line()),
            }
        } else {
            GateOutcome::Fail {
                reason: match status.code() {
                    Some(code) => format!("`{}` exited with status {code}", self.command_line()),
                    None => format!("`{}` was killed by a signal", self.command_line()),
                },
            }
        }
    }
}
