//! Run patterns: which programs, with which arguments, a rule matches.
//!
//! A pattern is a program and its arguments, matched word by word on the parsed argv, never as a
//! string prefix: `cargo test*` matches `cargo test` followed by any arguments, but not `cargo testx`
//! and not `cargo test; rm -rf /` (which is two commands, each judged on its own). A whole `*` word
//! matches exactly one argument. Programs in the standard system directories are known by their
//! name (`/bin/rm` is `rm`); any other path is its own program (`./cat` is not `cat`).

use super::atom::Word;

/// One word of a run pattern after the program.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum WordPattern {
    /// This exact argument.
    Literal(String),
    /// Any one argument.
    Any,
}

/// A compiled run pattern.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct RunPattern {
    /// The program key (see [`program_key`]), or `*` for any program.
    pub(crate) program: String,
    pub(crate) words: Vec<WordPattern>,
    /// True when any further arguments may follow.
    pub(crate) open_tail: bool,
}

const SYSTEM_DIRS: &[&str] = &[
    "/bin",
    "/sbin",
    "/usr/bin",
    "/usr/sbin",
    "/usr/local/bin",
    "/usr/local/sbin",
];

/// The key a program is known by: its name when it lives in a system directory (or has no `/`), and
/// its lexically normalised path otherwise.
pub(crate) fn program_key(program: &str) -> String {
    if !program.contains('/') {
        return program.to_string();
    }
    let absolute = program.starts_with('/');
    let mut components: Vec<&str> = Vec::new();
    for component in program.split('/') {
        match component {
            "" | "." => {}
            ".." => {
                components.pop();
            }
            _ => components.push(component),
        }
    }
    let Some((name, dirs)) = components.split_last() else {
        return program.to_string();
    };
    let dir = format!("/{}", dirs.join("/"));
    if absolute && SYSTEM_DIRS.contains(&dir.as_str()) {
        return (*name).to_string();
    }
    let joined = components.join("/");
    if absolute {
        format!("/{joined}")
    } else {
        format!("./{joined}")
    }
}

/// The last component of a program path, by which deny and gate rules also match (`/tmp/x/rm` is
/// held by a deny on `rm`).
pub(crate) fn program_basename(program: &str) -> &str {
    program.rsplit('/').next().unwrap_or(program)
}

const SHELL_OPERATORS: &[char] = &[
    ';', '|', '&', '$', '<', '>', '(', ')', '`', '"', '\'', '\n', '\\',
];

/// Compiles a run pattern such as `cargo test*`, `git log *` or `./scripts/check.sh`.
pub(crate) fn compile_pattern(pattern: &str) -> Result<RunPattern, String> {
    if let Some(operator) = pattern.chars().find(|c| SHELL_OPERATORS.contains(c)) {
        return Err(format!(
            "run pattern `{pattern}` has `{operator}`: write a program and its arguments, one rule per command"
        ));
    }
    let mut words: Vec<&str> = pattern.split_whitespace().collect();
    let mut open_tail = false;
    let n_words = words.len();
    if let Some(last) = words.last_mut() {
        if *last == "*" && n_words > 1 {
            words.pop();
            open_tail = true;
        } else if let Some(stem) = last.strip_suffix('*').filter(|stem| !stem.is_empty()) {
            *last = stem;
            open_tail = true;
        }
    }
    let Some((program, arguments)) = words.split_first() else {
        return Err("empty run pattern".to_string());
    };
    if program.contains('*') && *program != "*" {
        return Err(format!(
            "run pattern `{pattern}`: a program is matched whole; use `*` alone for any program"
        ));
    }
    let words = arguments
        .iter()
        .map(|word| match *word {
            "*" => Ok(WordPattern::Any),
            _ if word.contains('*') => Err(format!(
                "run pattern `{pattern}`: `*` may only be a whole word or end the pattern"
            )),
            _ => Ok(WordPattern::Literal((*word).to_string())),
        })
        .collect::<Result<Vec<_>, _>>()?;
    let any_program_alone = *program == "*" && words.is_empty();
    Ok(RunPattern {
        program: program_key(program),
        words,
        open_tail: open_tail || any_program_alone,
    })
}

impl RunPattern {
    /// Whether the arguments after the program match; `request_open_tail` says unknown arguments
    /// follow `arguments`.
    pub(crate) fn matches_arguments(&self, arguments: &[Word], request_open_tail: bool) -> bool {
        if arguments.len() < self.words.len() {
            return false;
        }
        let fixed_match =
            self.words
                .iter()
                .zip(arguments)
                .all(|(pattern, argument)| match pattern {
                    WordPattern::Any => true,
                    WordPattern::Literal(expected) => argument.literal() == Some(expected.as_str()),
                });
        fixed_match
            && (self.open_tail || (arguments.len() == self.words.len() && !request_open_tail))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(line: &str) -> Vec<Word> {
        line.split_whitespace()
            .map(|word| match word.strip_prefix('$') {
                Some(_) => Word::Dynamic(word.to_string()),
                None => Word::Literal(word.to_string()),
            })
            .collect()
    }

    fn check(pattern: &str, argv: &str, open_tail: bool, expected: bool) {
        let compiled = compile_pattern(pattern).unwrap();
        let argv = words(argv);
        let program_matches = compiled.program == "*"
            || argv[0].literal().map(program_key) == Some(compiled.program.clone());
        let actual = program_matches && compiled.matches_arguments(&argv[1..], open_tail);
        assert_eq!(
            actual, expected,
            "{pattern:?} vs {argv:?} (open tail {open_tail})"
        );
    }

    #[test]
    fn matches_on_word_boundaries() {
        check("cargo test*", "cargo test", false, true);
        check("cargo test*", "cargo test --release", false, true);
        check("cargo test*", "cargo testx", false, false);
        check("cargo test *", "cargo test -p core", false, true);
        check("cargo test", "cargo test", false, true);
        check("cargo test", "cargo test --all", false, false);
        check("cargo test", "cargo test", true, false);
        check("cargo test*", "cargo test", true, true);
        check("git log * --oneline", "git log main --oneline", false, true);
        check("git log * --oneline", "git log $REF --oneline", false, true);
        check("echo hi", "echo $X", false, false);
        check("cat*", "cat .env", false, true);
        check("cat*", "/bin/cat x", false, true);
        check("cat*", "/usr/bin/../bin/cat x", false, true);
        check("cat*", "./cat x", false, false);
        check("cat*", "/tmp/x/cat x", false, false);
        check("./scripts/ci.sh", "scripts/ci.sh", false, true);
        check("*", "anything at all", false, true);
    }

    #[test]
    fn program_keys() {
        assert_eq!(program_key("rm"), "rm");
        assert_eq!(program_key("/bin/rm"), "rm");
        assert_eq!(program_key("//usr//bin/rm"), "rm");
        assert_eq!(program_key("/usr/bin/./rm"), "rm");
        assert_eq!(program_key("/tmp/x/rm"), "/tmp/x/rm");
        assert_eq!(program_key("./rm"), "./rm");
        assert_eq!(program_key("bin/../rm"), "./rm");
        assert_eq!(program_basename("/tmp/x/rm"), "rm");
    }

    #[test]
    fn bad_patterns_are_errors() {
        for bad in [
            "",
            "   ",
            "cargo test; rm",
            "a && b",
            "echo $X",
            "ca*t",
            "git *log",
            "a | b",
            "x`y`",
        ] {
            assert!(compile_pattern(bad).is_err(), "{bad:?}");
        }
    }
}
