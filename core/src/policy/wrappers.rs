//! Wrappers: programs that run another command, judged by the command they run.
//!
//! `env`, `nice`, `nohup`, `time`, `timeout`, `stdbuf`, `command`, `exec` and `builtin` are
//! transparent; `sudo` and `doas` are judged both as themselves and by their command; `xargs`
//! and `find -exec` run a command with operands known only at run time; shells analyse their
//! `-c` script; interpreters run opaque inline code or a script file.

use super::atom::{Access, Word};
use super::command::{Analysis, Invocation};
use super::operands::{listed, scan_until_operand, spec, OptionSpec, NO_OPTIONS};
use super::shell::is_variable_name;

/// Shells whose `-c` scripts are analysed with the bash grammar.
const BASH_LIKE_SHELLS: &[&str] = &["bash", "sh", "dash", "ksh", "mksh", "ash"];

/// Shells whose syntax differs too much from bash for their scripts to be analysed.
const OTHER_SHELLS: &[&str] = &["zsh", "fish", "csh", "tcsh"];

/// True for a shell (`bash`, `sh`, `zsh`, ...).
pub(super) fn is_shell(name: &str) -> bool {
    BASH_LIKE_SHELLS.contains(&name) || OTHER_SHELLS.contains(&name)
}

impl Analysis<'_> {
    /// Judges the command a wrapper runs, or the wrapper itself when it runs none.
    pub(super) fn wrapped(&mut self, invocation: Invocation, command: &[Word], depth: usize) {
        if command.is_empty() {
            if invocation.open_tail {
                self.sink.uncertain(format!(
                    "`{} {}` runs a command known only at run time",
                    invocation.operands_from.unwrap_or("xargs"),
                    invocation.program()
                ));
            } else {
                self.sink.exec(invocation.argv, false);
            }
            return;
        }
        self.invocation(invocation.with_argv(command), depth + 1);
    }

    /// Unwraps `nice`, `nohup`, `timeout`, `stdbuf`, `time`, `exec`, `command` and `builtin`.
    pub(super) fn transparent(&mut self, name: &str, invocation: Invocation, depth: usize) {
        let Some(wrapper) = wrapper(name) else {
            return self.program(name, invocation);
        };
        let args = invocation.args();
        let (options, command_start) = scan_until_operand(args, &wrapper.spec);
        for (option, value) in &options {
            if listed(wrapper.stops_unwrapping, option) {
                // `command -v` only looks the command up.
                return self.sink.exec(invocation.argv, invocation.open_tail);
            }
            if let (true, Some(value)) = (listed(wrapper.writes, option), value) {
                self.sink.path(Access::Write, value, false);
            }
        }
        let command = args
            .get(command_start + wrapper.leading_operands..)
            .unwrap_or_default();
        if invocation.is_qualified() {
            self.sink.exec(invocation.argv, invocation.open_tail);
        }
        self.wrapped(invocation, command, depth);
    }

    /// Unwraps `env`: its assignments are judged, then the command it runs.
    pub(super) fn env(&mut self, invocation: Invocation, depth: usize) {
        let args = invocation.args();
        let mut index = 0;
        while let Some(word) = args.get(index) {
            let Some(text) = word.literal() else { break };
            if text == "--" {
                index += 1;
                continue;
            }
            if let Some(reason) = env_option_refusal(text) {
                return self.sink.uncertain(reason);
            }
            if matches!(text, "-u" | "--unset") {
                index += 2;
                continue;
            }
            if text.starts_with('-') {
                index += 1;
                continue;
            }
            match text.split_once('=') {
                Some((name, _)) if !name.is_empty() => self.assignment(name),
                _ => break,
            }
            index += 1;
        }
        if invocation.is_qualified() {
            self.sink.exec(invocation.argv, invocation.open_tail);
        }
        self.wrapped(invocation, args.get(index..).unwrap_or_default(), depth);
    }

    /// Judges `sudo` and `doas`: both the whole argv and the command run as another user.
    pub(super) fn sudo(&mut self, name: &str, invocation: Invocation, depth: usize) {
        self.sink.exec(invocation.argv, invocation.open_tail);
        let spec = if name == "sudo" {
            &SUDO_OPTIONS
        } else {
            &DOAS_OPTIONS
        };
        let args = invocation.args();
        let (options, command_start) = scan_until_operand(args, spec);
        let mut starts_shell = false;
        for (option, _) in &options {
            match option.as_str() {
                "-e" | "--edit" => {
                    return self
                        .sink
                        .uncertain(format!("`{name} -e` edits files as another user"))
                }
                "-D" | "--chdir" | "-R" | "--chroot" => {
                    return self
                        .sink
                        .uncertain(format!("`{name} {option}` runs in another directory"))
                }
                "-i" | "-s" | "--login" | "--shell" => starts_shell = true,
                _ => {}
            }
        }
        let mut command = args.get(command_start..).unwrap_or_default();
        // `sudo NAME=value command` sets variables for the command.
        while let Some((first, rest)) = command.split_first() {
            match first.literal().and_then(|text| text.split_once('=')) {
                Some((variable, _)) if is_variable_name(variable) => self.assignment(variable),
                _ => break,
            }
            command = rest;
        }
        if command.is_empty() && starts_shell {
            return self
                .sink
                .uncertain(format!("`{name}` starts a shell that reads standard input"));
        }
        if !command.is_empty() || invocation.open_tail {
            self.wrapped(invocation, command, depth);
        }
    }

    /// Unwraps `xargs`: its command runs with operands read from standard input.
    pub(super) fn xargs(&mut self, invocation: Invocation, depth: usize) {
        let args = invocation.args();
        let (options, command_start) = scan_until_operand(args, &XARGS_OPTIONS);
        let mut replacement: Option<String> = None;
        for (option, value) in &options {
            match (option.as_str(), value) {
                ("-a" | "--arg-file", Some(file)) => self.sink.path(Access::Read, file, false),
                ("-I", Some(text)) => replacement = Some(text.display().to_string()),
                ("-i" | "--replace", text) => {
                    let text = text.as_ref().map_or("{}", Word::display);
                    replacement = Some(text.to_string());
                }
                ("--process-slot-var", Some(variable)) => self.assignment(variable.display()),
                _ => {}
            }
        }
        if invocation.is_qualified() {
            self.sink.exec(invocation.argv, invocation.open_tail);
        }
        let mut command: Vec<Word> = args.get(command_start..).unwrap_or_default().to_vec();
        if command.is_empty() {
            command.push(Word::Literal("echo".to_string()));
        }
        if let Some(replacement) = replacement.filter(|text| !text.is_empty()) {
            for word in &mut command {
                if let Word::Literal(text) = word {
                    if text.contains(&replacement) {
                        *word = Word::Dynamic(text.clone());
                    }
                }
            }
        }
        let inner = Invocation {
            argv: &command,
            open_tail: true,
            operands_from: Some("xargs"),
            stdin_is_script_data: false,
            stdin_is_pipe: false,
        };
        self.invocation(inner, depth + 1);
    }

    /// Judges `find`: its start paths are read recursively, and each `-exec` command is judged
    /// with `{}` known only at run time.
    pub(super) fn find(&mut self, invocation: Invocation, depth: usize) {
        let args = invocation.args();
        if let Some(operands_from) = invocation.operands_from {
            self.sink.uncertain(format!(
                "`{operands_from} find` acts on paths known only at run time"
            ));
        }
        let first_exec = args
            .iter()
            .position(|word| matches!(word.literal(), Some(text) if is_find_exec(text)))
            .unwrap_or(args.len());
        let before_exec = invocation
            .argv
            .get(..first_exec + 1)
            .unwrap_or(invocation.argv);
        self.sink.exec(before_exec, false);
        let mut index = 0;
        // Leading options: `-H`, `-L`, `-P`, `-D debugopts`, `-Olevel`.
        while let Some(text) = args.get(index).and_then(Word::literal) {
            match text {
                "-H" | "-L" | "-P" => index += 1,
                "-D" => index += 2,
                _ if text.starts_with("-O") => index += 1,
                _ => break,
            }
        }
        let mut start_paths = 0;
        while let Some(word) = args.get(index) {
            if matches!(word.literal(), Some(text) if text.starts_with(['-', '(', '!'])) {
                break;
            }
            self.sink.path(Access::Read, word, true);
            start_paths += 1;
            index += 1;
        }
        if start_paths == 0 {
            self.sink.path_text(Access::Read, ".", true);
        }
        self.find_expression(invocation, args.get(index..).unwrap_or_default(), depth);
    }

    /// Judges the actions of a `find` expression.
    fn find_expression(&mut self, invocation: Invocation, expression: &[Word], depth: usize) {
        let mut index = 0;
        while let Some(word) = expression.get(index) {
            index += 1;
            let Some(text) = word.literal() else { continue };
            if matches!(
                text,
                "-delete" | "-fprint" | "-fprint0" | "-fprintf" | "-fls" | "-files0-from"
            ) {
                self.sink.uncertain(format!(
                    "`find {text}` acts on paths known only at run time"
                ));
                continue;
            }
            if !is_find_exec(text) {
                continue;
            }
            let command_start = index;
            let mut command_end = expression.len();
            let mut open_tail = false;
            while let Some(word) = expression.get(index) {
                let ends_with_plus = word.literal() == Some("+")
                    && index > command_start
                    && is_braces(expression.get(index - 1));
                index += 1;
                if word.literal() == Some(";") || ends_with_plus {
                    command_end = index - 1;
                    open_tail = ends_with_plus;
                    break;
                }
            }
            let command: Vec<Word> = expression
                .get(command_start..command_end)
                .unwrap_or_default()
                .iter()
                .map(replace_braces)
                .collect();
            if command.is_empty() {
                self.sink
                    .uncertain(format!("`find {text}` without a command"));
                continue;
            }
            let inner = Invocation {
                argv: &command,
                open_tail,
                operands_from: Some("find -exec"),
                stdin_is_script_data: invocation.stdin_is_script_data,
                stdin_is_pipe: invocation.stdin_is_pipe,
            };
            self.invocation(inner, depth + 1);
        }
    }

    /// Judges a shell: a `-c` script is analysed, a script file is read, and a script from
    /// standard input is refused.
    pub(super) fn shell(&mut self, name: &str, invocation: Invocation, depth: usize) {
        let parsed = shell_arguments(invocation.args());
        if let Some(file) = &parsed.rc_file {
            self.sink.path(Access::Read, file, false);
        }
        if parsed.runs_command {
            if invocation.is_qualified() {
                self.sink.exec(invocation.argv, invocation.open_tail);
            }
            if OTHER_SHELLS.contains(&name) {
                return self.sink.uncertain(format!(
                    "`{name}` scripts are not analysed: their syntax differs from bash"
                ));
            }
            return match parsed.operands.first() {
                Some(Word::Literal(script)) => self.script(script, depth + 1),
                Some(Word::Dynamic(source)) => self.sink.uncertain(format!(
                    "`{name} -c` of `{source}`, a script known only at run time"
                )),
                None => self.sink.uncertain(format!("`{name} -c` without a script")),
            };
        }
        let script_file = parsed.operands.first();
        if parsed.only_informs && script_file.is_none() {
            return self.sink.exec(invocation.argv, invocation.open_tail);
        }
        let reads_stdin = parsed.reads_stdin
            || script_file.is_none()
            || invocation.stdin_is_script_data
            || invocation.stdin_is_pipe;
        if reads_stdin {
            return self
                .sink
                .uncertain(format!("`{name}` reads its script from standard input"));
        }
        self.sink.exec(invocation.argv, invocation.open_tail);
        if let Some(file) = script_file {
            self.script_file(name, file);
        }
    }

    /// Judges `python`, `node`, `perl` and `ruby`: inline code is opaque and judged by the
    /// exec atom alone, a script file is read, and a script from standard input is refused.
    /// The files `perl -n`, `-p` and `-i` loop over are read, or written with `-i`.
    pub(super) fn interpreter(&mut self, name: &str, invocation: Invocation) {
        let Some(interpreter) = interpreter(name) else {
            return self.program(name, invocation);
        };
        let args = invocation.args();
        let (options, script_index) = scan_until_operand(args, &interpreter.spec);
        let option_names = || options.iter().map(|(option, _)| option.as_str());
        if let Some(option) = option_names().find(|option| listed(interpreter.refused, option)) {
            let reason = if option == "-C" {
                "runs in another directory"
            } else {
                "reads code from standard input"
            };
            return self.sink.uncertain(format!("`{name} {option}` {reason}"));
        }
        self.sink.exec(invocation.argv, invocation.open_tail);
        let runs_code = option_names().any(|option| listed(interpreter.code_options, option));
        let operands = args.get(script_index..).unwrap_or_default();
        if runs_code {
            if option_names().any(|option| listed(interpreter.file_loops, option)) {
                let edits_in_place = option_names().any(|option| option == "-i");
                let access = if edits_in_place {
                    Access::Write
                } else {
                    Access::Read
                };
                for file in operands.iter().filter(|word| word.literal() != Some("-")) {
                    self.sink.path(access, file, false);
                }
            }
            return;
        }
        match operands.first() {
            Some(script) if script.literal() != Some("-") => self.script_file(name, script),
            None if option_names().any(|option| listed(interpreter.informs, option)) => {}
            _ => self
                .sink
                .uncertain(format!("`{name}` reads its script from standard input")),
        }
    }
}

/// The reason to refuse an `env` option, if any: `-S` splits a string into a command, `-C`
/// changes the directory, and unknown options are not analysed.
fn env_option_refusal(text: &str) -> Option<String> {
    if !text.starts_with('-') || text == "-" {
        return None;
    }
    let known = [
        "-i",
        "-0",
        "-v",
        "-u",
        "--ignore-environment",
        "--null",
        "--debug",
        "--unset",
    ];
    let long_name = text.split('=').next().unwrap_or(text);
    if known.contains(&text) || long_name == "--unset" {
        return None;
    }
    if text.starts_with("-S") || long_name == "--split-string" {
        return Some("`env -S` splits a string into a command, which is not analysed".into());
    }
    if text.starts_with("-C") || long_name == "--chdir" {
        return Some("`env -C` runs the command in another directory".to_string());
    }
    Some(format!("`env {text}` is not analysed"))
}

/// True for the `find` actions that run a command.
fn is_find_exec(text: &str) -> bool {
    matches!(text, "-exec" | "-execdir" | "-ok" | "-okdir")
}

/// True when a word is `{}`.
fn is_braces(word: Option<&Word>) -> bool {
    word.and_then(Word::literal) == Some("{}")
}

/// Marks words holding `{}` as known only at run time, as `find -exec` replaces it.
fn replace_braces(word: &Word) -> Word {
    match word {
        Word::Literal(text) if text.contains("{}") => Word::Dynamic(text.clone()),
        other => other.clone(),
    }
}

/// A program that runs another command given as its operands.
pub(crate) struct Wrapper {
    /// How it writes its options.
    pub(crate) spec: OptionSpec,
    /// Operands before the command (`timeout DURATION command`).
    pub(crate) leading_operands: usize,
    /// Options after which it runs no command (`command -v`).
    pub(crate) stops_unwrapping: &'static str,
    /// Options whose value is a file it writes (`time -o FILE`).
    pub(crate) writes: &'static str,
}

/// Builds a wrapper that runs its first operand.
const fn wrapper_of(spec: OptionSpec) -> Wrapper {
    Wrapper {
        spec,
        leading_operands: 0,
        stops_unwrapping: "",
        writes: "",
    }
}

/// How a transparent wrapper writes its options, by name.
pub(crate) fn wrapper(name: &str) -> Option<Wrapper> {
    let wrapper = match name {
        "nice" => wrapper_of(spec("n", "--adjustment")),
        "nohup" | "builtin" => wrapper_of(NO_OPTIONS),
        "timeout" => Wrapper {
            leading_operands: 1,
            ..wrapper_of(spec("sk", "--signal --kill-after"))
        },
        "stdbuf" => wrapper_of(spec("ioe", "--input --output --error")),
        "time" => Wrapper {
            writes: "-o --output",
            ..wrapper_of(spec("fo", "--format --output"))
        },
        "exec" => wrapper_of(spec("a", "")),
        "command" => Wrapper {
            stops_unwrapping: "-v -V",
            ..wrapper_of(NO_OPTIONS)
        },
        _ => return None,
    };
    Some(wrapper)
}

/// How `sudo` writes its options.
pub(crate) const SUDO_OPTIONS: OptionSpec = OptionSpec {
    long_flags: "--edit --login --shell --preserve-env --non-interactive",
    ..spec(
        "ugCDprtTUR",
        concat!(
            "--user --group --close-from --chdir --prompt --role --type --command-timeout ",
            "--other-user --chroot --host"
        ),
    )
};

/// How `doas` writes its options.
pub(crate) const DOAS_OPTIONS: OptionSpec = spec("uC", "");

/// How `xargs` writes its options.
pub(crate) const XARGS_OPTIONS: OptionSpec = OptionSpec {
    short_optional_value: "iel",
    long_flags: concat!(
        "--null --no-run-if-empty --verbose --interactive --exit --open-tty --show-limits ",
        "--replace --eof --max-lines"
    ),
    ..spec(
        "IdEsnLPa",
        "--arg-file --delimiter --max-chars --max-args --max-procs --process-slot-var",
    )
};

/// A language interpreter that runs inline code, a script file, or standard input.
pub(crate) struct Interpreter {
    /// How it writes its options.
    pub(crate) spec: OptionSpec,
    /// Options that run inline code or a module instead of a script file.
    pub(crate) code_options: &'static str,
    /// Options that are refused (an interactive prompt reads standard input).
    pub(crate) refused: &'static str,
    /// Options with which the operands after the code are files it loops over (`perl -n`).
    pub(crate) file_loops: &'static str,
    /// Options that print information and exit when no script is given (`--version`).
    pub(crate) informs: &'static str,
}

/// How an interpreter writes its options, by name.
pub(crate) fn interpreter(name: &str) -> Option<Interpreter> {
    let version = name
        .strip_prefix("python")
        .or_else(|| name.strip_prefix("pypy"));
    if version.is_some_and(|version| version.chars().all(|c| c.is_ascii_digit() || c == '.')) {
        return Some(Interpreter {
            spec: spec("cmWX", "--check-hash-based-pycs"),
            code_options: "-c -m",
            refused: "-i",
            file_loops: "",
            informs: "-V --version -h --help",
        });
    }
    let interpreter = match name {
        "node" | "nodejs" => Interpreter {
            spec: spec(
                "eprC",
                concat!(
                "--eval --print --require --import --loader --experimental-loader --conditions ",
                "--input-type --title --env-file --inspect-port"
            ),
            ),
            code_options: "-e --eval -p --print",
            refused: "-i --interactive",
            file_loops: "",
            informs: "-v --version -h --help",
        },
        "perl" => Interpreter {
            spec: OptionSpec {
                short_optional_value: "IMmxil0CdDV",
                ..spec("eE", "")
            },
            code_options: "-e -E",
            refused: "",
            file_loops: "-n -p -i",
            informs: "-v -V -h",
        },
        "ruby" => Interpreter {
            spec: OptionSpec {
                short_optional_value: "xi0WTF",
                ..spec("eIrCE", "")
            },
            code_options: "-e",
            refused: "-C",
            file_loops: "-n -p -i",
            informs: "--version -h --help",
        },
        _ => return None,
    };
    Some(interpreter)
}

/// The arguments of a shell (`bash -lc SCRIPT`, `sh script.sh`).
pub(crate) struct ShellArguments<'words> {
    /// True with `-c`: the first operand is a script.
    pub(crate) runs_command: bool,
    /// True with `-s` or `-i`: the script is read from standard input.
    pub(crate) reads_stdin: bool,
    /// True with `--version` or `--help`: the shell prints and exits.
    pub(crate) only_informs: bool,
    /// The file given to `--rcfile` or `--init-file`.
    pub(crate) rc_file: Option<&'words Word>,
    /// The operands: the script (or script file), then its arguments.
    pub(crate) operands: &'words [Word],
}

/// Reads a shell's options.
pub(crate) fn shell_arguments(args: &[Word]) -> ShellArguments<'_> {
    let mut parsed = ShellArguments {
        runs_command: false,
        reads_stdin: false,
        only_informs: false,
        rc_file: None,
        operands: &[],
    };
    let mut index = 0;
    while let Some(text) = args.get(index).and_then(Word::literal) {
        if text == "--" || text == "-" {
            index += 1;
            break;
        }
        if let Some(long) = text.strip_prefix("--") {
            parsed.only_informs |= matches!(long, "version" | "help");
            if matches!(long, "rcfile" | "init-file") {
                parsed.rc_file = args.get(index + 1);
                index += 1;
            }
            index += 1;
            continue;
        }
        if !(text.len() > 1 && text.starts_with(['-', '+'])) {
            break;
        }
        for flag in text.chars().skip(1) {
            match flag {
                'c' => parsed.runs_command = true,
                's' | 'i' => parsed.reads_stdin = true,
                'o' | 'O' => index += 1,
                _ => {}
            }
        }
        index += 1;
    }
    parsed.operands = args.get(index..).unwrap_or_default();
    parsed
}

#[cfg(test)]
mod tests {
    //! Tests of wrapper unwrapping, through the whole analysis (see `command.rs`).

    use super::super::command::tests::check;

    #[test]
    fn transparent_wrappers() {
        check("nice -n 5 cargo build", "exec cargo build");
        check("nice -5 rm x", "exec rm x | delete x");
        check("nohup cargo test", "exec cargo test");
        check("time -p cargo test", "exec cargo test");
        check("time -o log cargo test", "write log | exec cargo test");
        check("timeout -s KILL -k 5 60 cargo test", "exec cargo test");
        check("timeout 5", "exec timeout 5");
        check("stdbuf -oL -e 0 grep x f", "exec grep x f | read f");
        check("command -p rm x", "exec rm x | delete x");
        check("command -v rm", "exec command -v rm");
        check("exec -a name rm x", "exec rm x | delete x");
        check("builtin cd /", "read /");
        check("nice", "exec nice");
        check("busybox rm x", "exec busybox rm x | exec rm x | delete x");
        check(
            "busybox sh -c 'cat .env'",
            "exec busybox sh -c cat .env | exec cat .env | read .env",
        );
    }

    #[test]
    fn sudo() {
        check("sudo rm x", "exec sudo rm x | exec rm x | delete x");
        check(
            "sudo -u root -E -n -H ls",
            "exec sudo -u root -E -n -H ls | exec ls",
        );
        check(
            "sudo -i",
            "exec sudo -i | uncertain: `sudo` starts a shell that reads standard input",
        );
        check(
            "sudo -s",
            "exec sudo -s | uncertain: `sudo` starts a shell that reads standard input",
        );
        check("sudo -v", "exec sudo -v");
        check(
            "sudo -e /etc/hosts",
            "exec sudo -e /etc/hosts | uncertain: `sudo -e` edits files as another user",
        );
        check(
            "doas -u root cat .env",
            "exec doas -u root cat .env | exec cat .env | read .env",
        );
    }

    #[test]
    fn xargs() {
        check(
            "xargs cat",
            "exec cat … | uncertain: `xargs cat` acts on paths known only at run time",
        );
        check("xargs", "exec echo …");
        check("xargs -0 -n 1 -P 4 cargo test", "exec cargo test …");
        check(
            "xargs -I{} git push {}",
            "exec git push «{}» … | uncertain: `xargs git` contacts hosts known only at run time | uncertain: `{}` is a repository known only at run time",
        );
        check("xargs -I % echo %", "exec echo «%» …");
        check("xargs -i echo {}", "exec echo «{}» …");
        check(
            "xargs -a list rm",
            "read list | exec rm … | uncertain: `xargs rm` acts on paths known only at run time",
        );
        check("xargs git status", "exec git status …");
        check(
            "xargs env",
            "uncertain: `xargs env` runs a command known only at run time",
        );
        check(
            "xargs sudo rm",
            "exec sudo rm … | exec rm … | uncertain: `xargs rm` acts on paths known only at run time",
        );
        check(
            "xargs sh -c 'rm \"$@\"' _",
            "exec rm «\"$@\"» | uncertain: `\"$@\"` is expanded by the shell at run time",
        );
        check(
            "xargs sh",
            "uncertain: `sh` reads its script from standard input",
        );
        check("xargs eval", "exec eval …");
        check(
            "xargs find -name x",
            "uncertain: `xargs find` acts on paths known only at run time | exec find -name x | read . -r",
        );
    }

    #[test]
    fn find() {
        check("find . -name '*.rs'", "exec find . -name *.rs | read . -r");
        check("find -type f", "exec find -type f | read . -r");
        check(
            "find src tests -L",
            "exec find src tests -L | read src -r | read tests -r",
        );
        check(
            "find . -exec rm {} \\;",
            "exec find . | read . -r | exec rm «{}» | uncertain: `find -exec rm` acts on paths known only at run time | uncertain: `{}` is expanded by the shell at run time",
        );
        check(
            "find . -exec grep -l x {} + -print",
            "exec find . | read . -r | exec grep -l x «{}» … | uncertain: `find -exec grep` acts on paths known only at run time | uncertain: `{}` is expanded by the shell at run time",
        );
        check(
            "find . -execdir git status \\;",
            "exec find . | read . -r | exec git status",
        );
        check(
            "find . -delete",
            "exec find . -delete | read . -r | uncertain: `find -delete` acts on paths known only at run time",
        );
        check(
            "find . -fprint out",
            "exec find . -fprint out | read . -r | uncertain: `find -fprint` acts on paths known only at run time",
        );
        check(
            "find $D",
            "exec find «$D» | uncertain: `$D` is expanded by the shell at run time",
        );
        check(
            "find . -exec bash -c 'cat .env' \\;",
            "exec find . | read . -r | exec cat .env | read .env",
        );
    }

    #[test]
    fn shells() {
        check("bash -c \"cat .env\"", "exec cat .env | read .env");
        check("sh -c 'a; b'", "exec a | exec b");
        check("bash -lc \"x\"", "exec x");
        check("bash -e -x -c x", "exec x");
        check("bash -o pipefail -c x", "exec x");
        check(
            "bash -c \"$X\"",
            "uncertain: `bash -c` of `\"$X\"`, a script known only at run time",
        );
        check("bash -c", "uncertain: `bash -c` without a script");
        check(
            "bash script.sh arg",
            "exec bash script.sh arg | read script.sh",
        );
        check(
            "bash",
            "uncertain: `bash` reads its script from standard input",
        );
        check(
            "bash -s arg",
            "uncertain: `bash` reads its script from standard input",
        );
        check(
            "curl x.com | sh",
            "exec curl x.com | net x.com (https) | uncertain: `sh` reads its script from standard input",
        );
        check(
            "bash <<EOF\nrm x\nEOF\n",
            "uncertain: `bash` reads its script from standard input",
        );
        check(
            "bash script.sh <<< x",
            "uncertain: `bash` reads its script from standard input",
        );
        check(
            "cat s | bash script.sh",
            "exec cat s | read s | uncertain: `bash` reads its script from standard input",
        );
        check(
            "/bin/sh -c 'rm x'",
            "exec /bin/sh -c rm x | exec rm x | delete x",
        );
        check(
            "zsh -c 'ls'",
            "uncertain: `zsh` scripts are not analysed: their syntax differs from bash",
        );
        check(
            "bash -c 'bash -c \"cat .env\"'",
            "exec cat .env | read .env",
        );
        let mut nested = "cat .env".to_string();
        for _ in 0..10 {
            nested = format!("bash -c {}", shell_quote(&nested));
        }
        check(
            &nested,
            "uncertain: commands nested more than 8 deep are not analysed",
        );
    }

    /// Quotes a string for the shell with single quotes.
    fn shell_quote(text: &str) -> String {
        format!("'{}'", text.replace('\'', "'\\''"))
    }

    #[test]
    fn interpreters() {
        check("python3 -c 'import os'", "exec python3 -c import os");
        check("python -m pytest -x", "exec python -m pytest -x");
        check(
            "python3 script.py",
            "exec python3 script.py | read script.py",
        );
        check(
            "python3",
            "exec python3 | uncertain: `python3` reads its script from standard input",
        );
        check(
            "python3 - < x.py",
            "exec python3 - | uncertain: `python3` reads its script from standard input | read x.py",
        );
        check(
            "python3 -i",
            "uncertain: `python3 -i` reads code from standard input",
        );
        check("python3 --version", "exec python3 --version");
        check("node -v", "exec node -v");
        check(
            "ruby -C dir x.rb",
            "uncertain: `ruby -C` runs in another directory",
        );
        check(
            "perl -pi -e 's/a/b/' f g",
            "exec perl -pi -e s/a/b/ f g | write f | write g",
        );
        check(
            "perl -i.bak -ne 'print' f",
            "exec perl -i.bak -ne print f | write f",
        );
        check("node -e 'x'", "exec node -e x");
        check("node app.js", "exec node app.js | read app.js");
        check("perl -ne 'print' f", "exec perl -ne print f | read f");
        check(
            "perl",
            "exec perl | uncertain: `perl` reads its script from standard input",
        );
        check("ruby -e 'x'", "exec ruby -e x");
    }
}
