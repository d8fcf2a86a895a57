//! What the CLI's test files share.

use std::io::{ErrorKind, Write};
use std::process::{Command, Output, Stdio};

/// Runs `command` with `stdin` as its standard input and its output captured.
///
/// A command that fails before it reads its input (an unknown option), or that reads none, may
/// exit before the input is written: the broken pipe that gives is not the test's failure, the
/// command's exit status and output are.
pub fn run_with_stdin(command: &mut Command, stdin: &str) -> Output {
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("fourfold starts");
    let written = child
        .stdin
        .take()
        .expect("the input is piped")
        .write_all(stdin.as_bytes());
    if let Err(error) = written {
        assert_eq!(
            error.kind(),
            ErrorKind::BrokenPipe,
            "writing the input: {error}"
        );
    }
    child.wait_with_output().expect("fourfold runs")
}
