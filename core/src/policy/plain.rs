//! A fast path for plain command lines: words joined by `&&`, `||`, `;` or `|`, nothing else.
//!
//! Most command lines an agent runs are plain (`cargo test -p core && cargo fmt --check`). When a
//! line has only letters, digits, spaces, `_-./=:,@%+` and those four operators, bash's grammar for
//! it is regular: no quoting, expansion, globbing, redirection or comment can occur. Such a line,
//! whose programs start with a letter, digit, `.`, `/` or `_` and are neither keywords, declarations
//! nor assignments, is split here, and everything else goes to the full tree-sitter-bash parse. A property test checks
//! that both give the same simple commands on every plain line. (They differ on one flag where the
//! grammar misparses `a | b | c && d` as `a | (b | c && d)`: there this split, like bash, knows that
//! `d` does not read the pipe.)

use super::atom::Word;
use super::shell::SimpleCommand;

/// Words that bash reads as syntax in command position; a line using one takes the full parse.
const RESERVED: &[&str] = &[
    "if", "then", "else", "elif", "fi", "case", "esac", "for", "select", "while", "until", "do",
    "done", "in", "function", "time", "coproc", "export", "declare", "local", "readonly",
    "typeset", "unset",
];

fn is_plain_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || b" _-./=:,@%+&|;".contains(&byte)
}

/// The simple commands of a plain line, or `None` when the line needs the full parse.
pub(crate) fn split(script: &str) -> Option<Vec<SimpleCommand>> {
    let bytes = script.as_bytes();
    if !bytes.iter().copied().all(is_plain_byte) {
        return None;
    }
    let mut commands = Vec::new();
    let mut words: Vec<Word> = Vec::new();
    let mut stdin_is_pipe = false;
    let mut word_start: Option<usize> = None;
    let mut byte_idx = 0;
    while byte_idx <= bytes.len() {
        let byte = bytes.get(byte_idx).copied();
        let is_word_byte = byte.is_some_and(|byte| !b" &|;".contains(&byte));
        if is_word_byte {
            word_start.get_or_insert(byte_idx);
            byte_idx += 1;
            continue;
        }
        if let Some(start) = word_start.take() {
            words.push(Word::Literal(script.get(start..byte_idx)?.to_string()));
        }
        let operator_len = match (byte, bytes.get(byte_idx + 1).copied()) {
            (Some(b' '), _) => {
                byte_idx += 1;
                continue;
            }
            (None, _) | (Some(b';'), _) => 1,
            (Some(b'&'), Some(b'&')) | (Some(b'|'), Some(b'|')) => 2,
            (Some(b'|'), _) => 1,
            // A lone `&` (background) and anything else take the full parse.
            _ => return None,
        };
        let first_word = words.first().and_then(Word::literal)?;
        let program_start_is_plain = first_word
            .bytes()
            .next()
            .is_some_and(|byte| byte.is_ascii_alphanumeric() || b"./_".contains(&byte));
        if !program_start_is_plain
            || first_word.contains('=')
            || RESERVED.contains(&first_word)
            || super::shell::refused_program(&words).is_some()
        {
            return None;
        }
        commands.push(SimpleCommand {
            assignments: Vec::new(),
            argv: std::mem::take(&mut words),
            redirects: Vec::new(),
            stdin_is_script_data: false,
            stdin_is_pipe,
        });
        stdin_is_pipe = byte == Some(b'|') && operator_len == 1;
        byte_idx += operator_len;
    }
    Some(commands)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn argvs(script: &str) -> Option<Vec<(Vec<String>, bool)>> {
        split(script).map(|commands| {
            commands
                .into_iter()
                .map(|command| {
                    let argv = command
                        .argv
                        .iter()
                        .map(|word| word.display().to_string())
                        .collect();
                    (argv, command.stdin_is_pipe)
                })
                .collect()
        })
    }

    fn owned(argv: &[&str], stdin_is_pipe: bool) -> (Vec<String>, bool) {
        (
            argv.iter().map(|word| word.to_string()).collect(),
            stdin_is_pipe,
        )
    }

    #[test]
    fn splits_plain_lines() {
        assert_eq!(
            argvs("cargo test"),
            Some(vec![owned(&["cargo", "test"], false)])
        );
        assert_eq!(
            argvs("  cargo test -p core&&cargo fmt --check || git status;ls | wc -l"),
            Some(vec![
                owned(&["cargo", "test", "-p", "core"], false),
                owned(&["cargo", "fmt", "--check"], false),
                owned(&["git", "status"], false),
                owned(&["ls"], false),
                owned(&["wc", "-l"], true),
            ])
        );
        assert_eq!(
            argvs("cargo build --features=a,b"),
            Some(vec![owned(&["cargo", "build", "--features=a,b"], false)])
        );
    }

    #[test]
    fn leaves_everything_else_to_the_full_parse() {
        for script in [
            "",
            "   ",
            "a &",
            "a & b",
            "a |& b",
            "a ;; b",
            "a && && b",
            "; a",
            "a;",
            "a &&",
            "X=1 a",
            "time a",
            "if a",
            "a 'b'",
            "a \"b\"",
            "a $b",
            "a `b`",
            "a > b",
            "a < b",
            "a # b",
            "a *",
            "a ~",
            "a\nb",
            "a\tb",
            "a {b,c}",
            "a [b]",
            "a !b",
            "a \\b",
            "r\u{e9}sum\u{e9}",
            "a (b)",
        ] {
            assert_eq!(argvs(script), None, "{script:?}");
        }
    }

    /// Words (programs, options, keywords, builtins) joined by operators and spaces, ending in a word.
    fn plain_line() -> impl Strategy<Value = String> {
        let word = || {
            prop::sample::select(vec![
                "cargo", "test", "git", "status", "-p", "--k=v", "a=b", "%1", "@x", "x:y", "a,b",
                "+x", "a.b/c", "../x", "./run", "_x", "-", "--", "0", "2", "time", "if", "done",
                "in", "fi", "export", "declare", "local", "readonly", "typeset", "unset", "alias",
                "eval", "trap", "let", "exec", "command", "builtin", "source", "cd",
            ])
        };
        let separator = prop::sample::select(vec![
            " && ", "&&", " || ", "; ", ";", " | ", "|", " ", " ", " ", "  ", " & ",
        ]);
        (word(), prop::collection::vec((separator, word()), 0..8)).prop_map(|(first, rest)| {
            let mut line = format!(" {first}");
            for (separator, word) in rest {
                line.push_str(separator);
                line.push_str(word);
            }
            line
        })
    }

    #[test]
    fn the_property_mostly_compares_fast_lines() {
        use proptest::strategy::ValueTree;
        let mut runner = proptest::test_runner::TestRunner::deterministic();
        let strategy = plain_line();
        let n_fast = (0..1000)
            .filter(|_| split(&strategy.new_tree(&mut runner).unwrap().current()).is_some())
            .count();
        assert!(
            n_fast > 100,
            "only {n_fast} of 1000 generated lines take the fast path"
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4096))]

        #[test]
        fn agrees_with_the_full_parse(script in plain_line()) {
            if let Some(fast) = split(&script) {
                let mut full = super::super::shell::parse_full(&script)
                    .unwrap_or_else(|reason| panic!("{script:?}: fast path accepted what bash refuses: {reason}"));
                prop_assert_eq!(fast.len(), full.len(), "{:?}", script);
                // tree-sitter-bash 0.25 parses `a | b | c && d` as `a | (b | c && d)`, so after a `|`
                // followed by `&&` or `||` it may see a pipe where bash has none (which only ever
                // denies more). Everywhere else both must agree exactly.
                let quirk_possible = script
                    .find('|')
                    .is_some_and(|pipe_idx| script[pipe_idx..].contains("&&") || script[pipe_idx + 1..].contains("||"));
                if quirk_possible {
                    for (fast_command, full_command) in fast.iter().zip(full.iter_mut()) {
                        prop_assert!(full_command.stdin_is_pipe || !fast_command.stdin_is_pipe, "{:?}", script);
                        full_command.stdin_is_pipe = fast_command.stdin_is_pipe;
                    }
                }
                prop_assert_eq!(fast, full, "{:?}", script);
            }
        }
    }
}
