//! The atoms a request is judged by.
//!
//! A request becomes one or more atoms before any rule is consulted: a file request is one path atom,
//! a tool call one tool atom, and a shell command line as many exec, path and network atoms as its
//! simple commands, operands and redirections call for (see `shell.rs` and `command.rs`). Every atom
//! must be allowed for the request to be allowed.

/// How a path is touched.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Access {
    /// Read a file, or list a directory.
    Read,
    /// Create or change a file.
    Write,
    /// Remove a file or directory.
    Delete,
}

impl Access {
    /// The access's name in policy files and requests: `read`, `write`, `delete`.
    pub fn name(self) -> &'static str {
        match self {
            Access::Read => "read",
            Access::Write => "write",
            Access::Delete => "delete",
        }
    }
}

/// One word of a parsed command line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Word {
    /// A word whose value is known before the command runs: quotes and escapes removed.
    Literal(String),
    /// A word the shell computes at run time (`$X`, `$(...)`, globs, `~`); holds its source text.
    Dynamic(String),
}

impl Word {
    /// The literal value, if known.
    pub(crate) fn literal(&self) -> Option<&str> {
        match self {
            Word::Literal(text) => Some(text),
            Word::Dynamic(_) => None,
        }
    }

    /// The word as the user wrote it (the value for literals, the source for dynamic words).
    pub(crate) fn display(&self) -> &str {
        match self {
            Word::Literal(text) | Word::Dynamic(text) => text,
        }
    }
}

/// What a command line asks for, one piece at a time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum ShellAtom {
    /// A program is run with this argv (wrappers such as `env`, `xargs` or `bash -c` already
    /// unwrapped). `argv[0]` is the program as written, escapes removed (`\rm` is `rm`).
    Exec {
        argv: Vec<Word>,
        /// True when arguments unknown before run time follow `argv` (`xargs cmd`, `find -exec`):
        /// only a pattern with a trailing `*` can match.
        open_tail: bool,
    },
    /// A path the command line touches: an operand of a known command or a redirection target.
    Path {
        access: Access,
        /// The path as written (relative paths are relative to the working directory).
        path: String,
        /// The directories a `cd` earlier on the line may have moved to, as written; empty when
        /// none. A relative path must be allowed against the request's directory and each of these.
        cd_dirs: Vec<String>,
        /// True when the command acts on everything below the path (`rm -r`, `grep -r`, `cp -r`).
        recursive: bool,
    },
    /// A network destination: a URL, `host`, `host:port`, `user@host` or an scp-style `host:path`.
    Net {
        target: String,
        /// The scheme to assume when `target` has none (`ssh` for ssh and scp, `https` for curl).
        default_scheme: &'static str,
        /// A port given apart from the target (`ssh -p 2222`).
        port: Option<u16>,
    },
    /// Something that cannot be judged with certainty: the command line is denied, for this reason.
    Uncertain { reason: String },
}
