//! A gate that runs a command and passes when it exits with status 0 (a test suite, a linter).

use std::path::PathBuf;
use std::process::{Command, Stdio};

use crate::plugin::{GateOutcome, Plugin};
use crate::policy::Request;

/// A plugin gate that runs a program and passes on exit status 0: `tests-pass` running
/// `cargo test`, say. The program runs without a shell (no word splitting, no expansions), with
/// its output discarded; install it under the gate's name and name that gate in `gate` rules.
///
/// A program that cannot be started, exits non-zero or is killed fails the gate: it fails
/// closed. The check blocks the guarding thread until the program exits.
#[derive(Clone, Debug)]
pub struct CommandGate {
    name: String,
    program: String,
    args: Vec<String>,
    dir: Option<PathBuf>,
}

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
        }
    }

    /// Runs the program in `dir` instead of the current directory.
    pub fn dir(mut self, dir: impl Into<PathBuf>) -> CommandGate {
        self.dir = Some(dir.into());
        self
    }

    fn command_line(&self) -> String {
        std::iter::once(self.program.as_str())
            .chain(self.args.iter().map(String::as_str))
            .collect::<Vec<_>>()
            .join(" ")
    }
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
        match command.status() {
            Ok(status) if status.success() => GateOutcome::Pass {
                reason: format!("`{}` exited with status 0", self.command_line()),
            },
            Ok(status) => GateOutcome::Fail {
                reason: match status.code() {
                    Some(code) => format!("`{}` exited with status {code}", self.command_line()),
                    None => format!("`{}` was killed by a signal", self.command_line()),
                },
            },
            Err(error) => GateOutcome::Fail {
                reason: format!("`{}` could not be started: {error}", self.command_line()),
            },
        }
    }
}
