//! How programs write their options, and which of their operands are paths.
//!
//! Option values are skipped only for the options listed here: an unknown option is taken as a
//! flag, so a value it may take is judged as an operand. Taking too much for a path only ever
//! denies more, while skipping a path would let it through. Option names are listed in strings,
//! separated by spaces.

use super::atom::{Access, Word};
use super::command::Sink;
use super::network;
use super::shell::is_variable_name;

/// How a program writes its options.
#[derive(Clone, Copy)]
pub(crate) struct OptionSpec {
    /// Short options that take a value, attached (`-n5`) or as the next word (`-n 5`).
    pub(crate) short_with_value: &'static str,
    /// Short options whose optional value can only be attached (`sed -i.bak`).
    pub(crate) short_optional_value: &'static str,
    /// Long options that take a value, as `--name=value` or `--name value`.
    pub(crate) long_with_value: &'static str,
    /// Long options that take two values (`jq --arg NAME VALUE`); the second is kept.
    pub(crate) long_with_two_values: &'static str,
    /// Other long options, listed so that their abbreviations (`--recur`) are recognised.
    pub(crate) long_flags: &'static str,
}

/// The spec of a program whose options take no values.
pub(crate) const NO_OPTIONS: OptionSpec = OptionSpec {
    short_with_value: "",
    short_optional_value: "",
    long_with_value: "",
    long_with_two_values: "",
    long_flags: "",
};

/// Builds a spec from the short and long options that take a value.
pub(crate) const fn spec(
    short_with_value: &'static str,
    long_with_value: &'static str,
) -> OptionSpec {
    OptionSpec {
        short_with_value,
        long_with_value,
        ..NO_OPTIONS
    }
}

/// True when `name` is one of the space-separated names of `list`.
pub(crate) fn listed(list: &str, name: &str) -> bool {
    list.split_ascii_whitespace()
        .any(|listed_name| listed_name == name)
}

/// The options and operands of a command line.
pub(crate) struct ParsedArgs<'words> {
    /// The options, as `-x` or `--name`, with their values.
    pub(crate) options: Vec<(String, Option<Word>)>,
    /// The operands, in order.
    pub(crate) operands: Vec<&'words Word>,
}

impl ParsedArgs<'_> {
    /// True when any of the space-separated options is given.
    pub(crate) fn has(&self, names: &str) -> bool {
        self.options.iter().any(|(name, _)| listed(names, name))
    }

    /// The values given to any of the space-separated options.
    pub(crate) fn values<'a>(&'a self, names: &'a str) -> impl Iterator<Item = &'a Word> {
        self.options
            .iter()
            .filter(|(name, _)| listed(names, name))
            .filter_map(|(_, value)| value.as_ref())
    }
}

/// Splits arguments into options and operands; options may follow operands, and `--` ends them.
pub(crate) fn scan<'words>(words: &'words [Word], spec: &OptionSpec) -> ParsedArgs<'words> {
    let mut parsed = ParsedArgs {
        options: Vec::new(),
        operands: Vec::new(),
    };
    let mut index = 0;
    while let Some(word) = words.get(index) {
        if word.literal() == Some("--") {
            parsed
                .operands
                .extend(words.get(index + 1..).unwrap_or_default());
            break;
        }
        if is_option(word) {
            index = read_option(words, index, spec, &mut parsed.options);
        } else {
            parsed.operands.push(word);
            index += 1;
        }
    }
    parsed
}

/// Reads options up to the first operand (POSIX style, as wrappers such as `xargs` do).
/// Returns the options and the index of the first operand, after a `--` if there is one.
pub(crate) fn scan_until_operand(
    words: &[Word],
    spec: &OptionSpec,
) -> (Vec<(String, Option<Word>)>, usize) {
    let mut options = Vec::new();
    let mut index = 0;
    while let Some(word) = words.get(index) {
        if word.literal() == Some("--") {
            return (options, index + 1);
        }
        if !is_option(word) {
            break;
        }
        index = read_option(words, index, spec, &mut options);
    }
    (options, index.min(words.len()))
}

/// True for a literal word written as an option (`-x`, `--name`), not `-` or `--`.
pub(crate) fn is_option(word: &Word) -> bool {
    matches!(word.literal(), Some(text) if text.len() > 1 && text.starts_with('-') && text != "--")
}

/// Reads the option at `index` (with its value) and returns the index of the next word.
pub(crate) fn read_option(
    words: &[Word],
    index: usize,
    spec: &OptionSpec,
    options: &mut Vec<(String, Option<Word>)>,
) -> usize {
    let text = words.get(index).and_then(Word::literal).unwrap_or_default();
    let next_word = |offset: usize| words.get(index + offset).cloned();
    if let Some(long) = text.strip_prefix("--") {
        let (written_name, inline_value) = match long.split_once('=') {
            Some((name, value)) => (name, Some(value)),
            None => (long, None),
        };
        let name = canonical_long_name(&format!("--{written_name}"), spec);
        let (value, next_index) = if let Some(value) = inline_value {
            (Some(Word::Literal(value.to_string())), index + 1)
        } else if listed(spec.long_with_two_values, &name) {
            (next_word(2), index + 3)
        } else if listed(spec.long_with_value, &name) {
            (next_word(1), index + 2)
        } else {
            (None, index + 1)
        };
        options.push((name, value));
        return next_index;
    }
    let cluster = text.get(1..).unwrap_or_default();
    for (position, character) in cluster.char_indices() {
        let rest = cluster
            .get(position + character.len_utf8()..)
            .unwrap_or_default();
        let name = format!("-{character}");
        if spec.short_with_value.contains(character) {
            if rest.is_empty() {
                options.push((name, next_word(1)));
                return index + 2;
            }
            options.push((name, Some(Word::Literal(rest.to_string()))));
            return index + 1;
        }
        if spec.short_optional_value.contains(character) {
            let value = (!rest.is_empty()).then(|| Word::Literal(rest.to_string()));
            options.push((name, value));
            return index + 1;
        }
        options.push((name, None));
    }
    index + 1
}

/// The full name of a long option, expanding an unambiguous abbreviation (`--recur`).
fn canonical_long_name(written: &str, spec: &OptionSpec) -> String {
    let known = [
        spec.long_with_value,
        spec.long_with_two_values,
        spec.long_flags,
    ];
    let mut candidates = known
        .iter()
        .flat_map(|list| list.split_ascii_whitespace())
        .filter(|name| name.starts_with(written));
    match (candidates.next(), candidates.next()) {
        (Some(only), None) => only.to_string(),
        _ => written.to_string(),
    }
}

/// The options of a program whose values are paths, or which are refused.
#[derive(Clone, Copy)]
pub(crate) struct Roles {
    /// Options whose value is a file read.
    pub(crate) reads: &'static str,
    /// Options whose value is a file written.
    pub(crate) writes: &'static str,
    /// Options whose value is a directory written below.
    pub(crate) write_trees: &'static str,
    /// Options refused, with the reason (written after the program and option names).
    pub(crate) refused: &'static [(&'static str, &'static str)],
}

/// A program whose options name no paths.
pub(crate) const NO_ROLES: Roles = Roles {
    reads: "",
    writes: "",
    write_trees: "",
    refused: &[],
};

/// Judges the options that name paths or are refused.
pub(crate) fn judge_option_roles(
    program: &str,
    options: &[(String, Option<Word>)],
    roles: &Roles,
    sink: &mut Sink,
) {
    for (name, value) in options {
        if let Some((_, reason)) = roles.refused.iter().find(|(names, _)| listed(names, name)) {
            sink.uncertain(format!("`{program} {name}` {reason}"));
            continue;
        }
        let Some(value) = value.as_ref().filter(|value| value.literal() != Some("-")) else {
            continue;
        };
        if listed(roles.reads, name) {
            sink.path(Access::Read, value, false);
        } else if listed(roles.writes, name) {
            sink.path(Access::Write, value, false);
        } else if listed(roles.write_trees, name) {
            sink.path(Access::Write, value, true);
        }
    }
}

/// Judges a path operand, skipping `-` (standard input or output).
fn operand(sink: &mut Sink, access: Access, word: &Word, recursive: bool) {
    if word.literal() != Some("-") {
        sink.path(access, word, recursive);
    }
}

/// The reason a program given run-time operands (by `xargs` or `find -exec`) cannot be judged.
pub(crate) fn run_time_operands_reason(
    program: &str,
    args: &[Word],
    operands_from: &str,
) -> Option<String> {
    if READERS.iter().any(|reader| listed(reader.names, program)) || listed(FILE_COMMANDS, program)
    {
        return Some(format!(
            "`{operands_from} {program}` acts on paths known only at run time"
        ));
    }
    if network::contacts_hosts(program, args) {
        return Some(format!(
            "`{operands_from} {program}` contacts hosts known only at run time"
        ));
    }
    None
}

/// Judges the operands of a program that is not a wrapper.
pub(crate) fn judge(program: &str, args: &[Word], sink: &mut Sink) {
    if let Some(reader) = READERS.iter().find(|reader| listed(reader.names, program)) {
        return read_operands(program, reader, args, sink);
    }
    match program {
        "grep" | "egrep" | "fgrep" | "rg" => search(program, args, sink),
        "sed" => sed(args, sink),
        "jq" => jq(args, sink),
        "awk" | "gawk" | "mawk" | "nawk" => awk(program, args, sink),
        "cp" => copy(args, sink),
        "mv" => move_(args, sink),
        "ln" => link(args, sink),
        "rm" | "rmdir" | "tee" | "touch" | "mkdir" | "truncate" => {
            write_operands(program, args, sink)
        }
        "chmod" | "chown" | "chgrp" => change_mode(program, args, sink),
        "dd" => dd(args, sink),
        _ => network::judge(program, args, sink),
    }
}

/// Programs with file operands that are not readers.
const FILE_COMMANDS: &str = concat!(
    "grep egrep fgrep rg sed jq awk gawk mawk nawk cp mv ln rm rmdir tee touch mkdir truncate ",
    "chmod chown chgrp dd"
);

/// A program that reads its operands.
struct Reader {
    /// The program's names.
    names: &'static str,
    /// How it writes its options.
    spec: OptionSpec,
    /// Its options that name paths or are refused.
    roles: Roles,
    /// Its options that make it read whole trees.
    recursive: &'static str,
    /// True when a second operand is written (`uniq IN OUT`, `xxd IN OUT`).
    writes_second_operand: bool,
}

/// Builds a reader of all its operands.
const fn reader(names: &'static str, spec: OptionSpec) -> Reader {
    Reader {
        names,
        spec,
        roles: NO_ROLES,
        recursive: "",
        writes_second_operand: false,
    }
}

/// The reason to refuse options that read file names from a file.
const NAMES_FROM_FILE: &str = "reads file names from a file";

/// The programs that read their operands.
const READERS: &[Reader] = &[
    reader("cat more", NO_OPTIONS),
    reader("tac", spec("s", "--separator")),
    reader(
        "nl",
        spec(
            "bdfhilnsvw",
            concat!(
                "--body-numbering --section-delimiter --footer-numbering --header-numbering ",
                "--line-increment --join-blank-lines --number-format --number-separator ",
                "--starting-line-number --number-width"
            ),
        ),
    ),
    reader(
        "cut",
        spec(
            "bcdf",
            "--bytes --characters --delimiter --fields --output-delimiter",
        ),
    ),
    reader("paste", spec("d", "--delimiters")),
    reader("base64 base32 basenc", spec("w", "--wrap")),
    reader(
        "strings",
        spec(
            "ntTe",
            "--bytes --radix --encoding --target --output-separator",
        ),
    ),
    reader("stat", spec("c", "--format --printf")),
    reader(
        "head tail",
        spec(
            "ncs",
            "--lines --bytes --pid --sleep-interval --max-unchanged-stats",
        ),
    ),
    reader("cmp", spec("in", "--ignore-initial --bytes")),
    Reader {
        roles: Roles {
            refused: &[("--files0-from", NAMES_FROM_FILE)],
            ..NO_ROLES
        },
        ..reader("wc cksum", spec("", "--files0-from"))
    },
    Reader {
        roles: Roles {
            refused: &[("-c --check", NAMES_FROM_FILE)],
            ..NO_ROLES
        },
        ..reader(
            "md5sum sha1sum sha224sum sha256sum sha384sum sha512sum b2sum",
            NO_OPTIONS,
        )
    },
    Reader {
        roles: Roles {
            reads: "-k --lesskey-file -T --tag-file",
            writes: "-o -O --log-file --LOG-FILE",
            ..NO_ROLES
        },
        ..reader(
            "less",
            spec(
                "bhjkoOpPtTxyz#",
                "--log-file --LOG-FILE --lesskey-file --tag-file --pattern --prompt --tag --tabs",
            ),
        )
    },
    Reader {
        roles: Roles {
            reads: "--random-source",
            writes: "-o --output",
            write_trees: "-T --temporary-directory",
            refused: &[
                ("--files0-from", NAMES_FROM_FILE),
                ("--compress-program", "runs another program"),
            ],
        },
        ..reader(
            "sort",
            spec(
                "okStT",
                concat!(
            "--output --key --field-separator --buffer-size --temporary-directory --parallel ",
            "--batch-size --files0-from --compress-program --random-source --sort"
        ),
            ),
        )
    },
    Reader {
        writes_second_operand: true,
        ..reader(
            "uniq",
            spec("fsw", "--skip-fields --skip-chars --check-chars"),
        )
    },
    Reader {
        writes_second_operand: true,
        ..reader("xxd", spec("cglosnR", ""))
    },
    Reader {
        roles: Roles {
            reads: "-X --exclude-from --from-file --to-file",
            ..NO_ROLES
        },
        recursive: "-r --recursive",
        ..reader(
            "diff",
            OptionSpec {
                long_flags: "--recursive",
                ..spec(
                    "CUIxXFLSDW",
                    concat!(
                "--ignore-matching-lines --exclude --exclude-from --show-function-line --label ",
                "--starting-file --ifdef --width --from-file --to-file --tabsize --horizon-lines ",
                "--line-format"
            ),
                )
            },
        )
    },
    reader(
        "od",
        OptionSpec {
            short_optional_value: "w",
            ..spec(
                "AjNSt",
                "--address-radix --skip-bytes --read-bytes --format",
            )
        },
    ),
    Reader {
        roles: Roles {
            reads: "-f",
            ..NO_ROLES
        },
        ..reader("hexdump", spec("efns", ""))
    },
    Reader {
        roles: Roles {
            reads: "-m --magic-file",
            refused: &[("-f --files-from", NAMES_FROM_FILE)],
            ..NO_ROLES
        },
        ..reader(
            "file",
            spec(
                "mfFPe",
                "--magic-file --files-from --separator --parameter --exclude --exclude-quiet",
            ),
        )
    },
];

/// Judges a program that reads its operands.
fn read_operands(program: &str, reader: &Reader, args: &[Word], sink: &mut Sink) {
    let parsed = scan(args, &reader.spec);
    judge_option_roles(program, &parsed.options, &reader.roles, sink);
    let recursive = parsed.has(reader.recursive);
    for (index, word) in parsed.operands.iter().enumerate() {
        let access = if index == 1 && reader.writes_second_operand {
            Access::Write
        } else {
            Access::Read
        };
        operand(sink, access, word, recursive);
    }
}

/// How `grep` writes its options.
const GREP_OPTIONS: OptionSpec = OptionSpec {
    long_flags: "--recursive --dereference-recursive",
    ..spec(
        "efmABCdD",
        concat!(
        "--regexp --file --max-count --after-context --before-context --context --include ",
        "--exclude --exclude-dir --exclude-from --label --binary-files --devices --directories ",
        "--group-separator"
    ),
    )
};

/// How `rg` writes its options.
const RIPGREP_OPTIONS: OptionSpec = spec(
    "efgtTmABCjMrEd",
    concat!(
        "--regexp --file --glob --iglob --type --type-not --type-add --type-clear --max-count ",
        "--after-context --before-context --context --threads --max-columns --replace --encoding ",
        "--max-depth --maxdepth --ignore-file --pre --pre-glob --path-separator --sort --sortr ",
        "--color --colors --context-separator --field-context-separator --field-match-separator ",
        "--max-filesize --dfa-size-limit --regex-size-limit --engine --hostname-bin ",
        "--hyperlink-format --generate"
    ),
);

/// Judges `grep` and `rg`: a pattern (unless `-e` or `-f` gives it), then files read,
/// recursively with `-r` (always for `rg`), and `.` when a recursive search names none.
fn search(program: &str, args: &[Word], sink: &mut Sink) {
    let is_ripgrep = program == "rg";
    let options = if is_ripgrep {
        RIPGREP_OPTIONS
    } else {
        GREP_OPTIONS
    };
    let parsed = scan(args, &options);
    let roles = Roles {
        reads: "-f --file --exclude-from --ignore-file",
        refused: if is_ripgrep {
            &[("--pre --hostname-bin", "runs another program")]
        } else {
            &[]
        },
        ..NO_ROLES
    };
    judge_option_roles(program, &parsed.options, &roles, sink);
    let searches_directories = parsed
        .values("-d --directories")
        .any(|value| value.literal() == Some("recurse"));
    let recursive = is_ripgrep
        || searches_directories
        || parsed.has("-r -R --recursive --dereference-recursive");
    let pattern_given = parsed.has("-e --regexp -f --file");
    let files = parsed
        .operands
        .get(usize::from(!pattern_given)..)
        .unwrap_or_default();
    for file in files {
        operand(sink, Access::Read, file, recursive);
    }
    if files.is_empty() && recursive {
        sink.path_text(Access::Read, ".", true);
    }
}

/// Judges `sed`: a script (unless `-e` or `-f` gives it), then files read, or written with `-i`.
fn sed(args: &[Word], sink: &mut Sink) {
    let options = OptionSpec {
        short_optional_value: "i",
        long_flags: concat!(
            "--in-place --quiet --silent --separate --null-data --zero-terminated ",
            "--regexp-extended --unbuffered --follow-symlinks --posix --sandbox --debug"
        ),
        ..spec("efl", "--expression --file --line-length")
    };
    let parsed = scan(args, &options);
    let roles = Roles {
        reads: "-f --file",
        ..NO_ROLES
    };
    judge_option_roles("sed", &parsed.options, &roles, sink);
    let script_given = parsed.has("-e --expression -f --file");
    let access = if parsed.has("-i --in-place") {
        Access::Write
    } else {
        Access::Read
    };
    for file in parsed
        .operands
        .get(usize::from(!script_given)..)
        .unwrap_or_default()
    {
        operand(sink, access, file, false);
    }
}

/// Judges `jq`: a filter (unless `-f` gives it), then files read.
fn jq(args: &[Word], sink: &mut Sink) {
    let options = OptionSpec {
        long_with_two_values: "--arg --argjson --slurpfile --rawfile",
        ..spec("fL", "--from-file --indent --tab-width")
    };
    let parsed = scan(args, &options);
    let roles = Roles {
        reads: "-f --from-file --slurpfile --rawfile",
        ..NO_ROLES
    };
    judge_option_roles("jq", &parsed.options, &roles, sink);
    let filter_given = parsed.has("-f --from-file");
    for file in parsed
        .operands
        .get(usize::from(!filter_given)..)
        .unwrap_or_default()
    {
        operand(sink, Access::Read, file, false);
    }
}

/// Judges `awk`: a program (unless `-f` gives it), then files read; `NAME=value` operands are
/// assignments, not files.
fn awk(program: &str, args: &[Word], sink: &mut Sink) {
    let options = OptionSpec {
        short_optional_value: "opdD",
        ..spec(
            "fvFEil",
            "--file --assign --field-separator --exec --include --load",
        )
    };
    let parsed = scan(args, &options);
    let roles = Roles {
        reads: "-f --file -E --exec -i --include",
        writes: "-o -p -d",
        refused: &[("-l --load", "loads a shared library")],
        ..NO_ROLES
    };
    judge_option_roles(program, &parsed.options, &roles, sink);
    let program_given = parsed.has("-f --file -E --exec");
    for file in parsed
        .operands
        .get(usize::from(!program_given)..)
        .unwrap_or_default()
    {
        let is_assignment = file
            .literal()
            .and_then(|text| text.split_once('='))
            .is_some_and(|(name, _)| is_variable_name(name));
        if !is_assignment {
            operand(sink, Access::Read, file, false);
        }
    }
}

/// How `cp`, `mv` and `ln` write their options.
const COPY_OPTIONS: OptionSpec = OptionSpec {
    long_flags: "--recursive --archive --no-target-directory",
    ..spec("tS", "--target-directory --suffix --no-preserve --sparse")
};

/// Splits `cp`, `mv` and `ln` operands into sources and a destination.
fn sources_and_destination<'a>(parsed: &'a ParsedArgs<'a>) -> (Vec<&'a Word>, Option<&'a Word>) {
    if let Some(directory) = parsed.values("-t --target-directory").last() {
        return (parsed.operands.clone(), Some(directory));
    }
    match parsed.operands.split_last() {
        Some((last, sources)) if !sources.is_empty() => (sources.to_vec(), Some(*last)),
        _ => (parsed.operands.clone(), None),
    }
}

/// Judges `cp`: sources read, destination written.
fn copy(args: &[Word], sink: &mut Sink) {
    let parsed = scan(args, &COPY_OPTIONS);
    let recursive = parsed.has("-r -R -a --recursive --archive");
    let (sources, destination) = sources_and_destination(&parsed);
    for source in sources {
        operand(sink, Access::Read, source, recursive);
    }
    if let Some(destination) = destination {
        operand(sink, Access::Write, destination, recursive);
    }
}

/// Judges `mv`: sources deleted and destination written, both as whole trees, since a moved
/// directory takes everything below it.
fn move_(args: &[Word], sink: &mut Sink) {
    let parsed = scan(args, &COPY_OPTIONS);
    let (sources, destination) = sources_and_destination(&parsed);
    for source in sources {
        operand(sink, Access::Delete, source, true);
    }
    if let Some(destination) = destination {
        operand(sink, Access::Write, destination, true);
    }
}

/// Judges `ln`: targets read, the link written (in `.` when only a target is named).
fn link(args: &[Word], sink: &mut Sink) {
    let parsed = scan(args, &COPY_OPTIONS);
    let (sources, destination) = sources_and_destination(&parsed);
    for source in &sources {
        operand(sink, Access::Read, source, false);
    }
    match (destination, sources.as_slice()) {
        (Some(destination), _) => operand(sink, Access::Write, destination, false),
        (None, [Word::Literal(target)]) => {
            let trimmed = target.trim_end_matches('/');
            let name = trimmed.rsplit('/').next().unwrap_or(trimmed);
            sink.path_text(Access::Write, name, false);
        }
        _ => {}
    }
}

/// Judges `rm`, `rmdir`, `tee`, `touch`, `mkdir` and `truncate`.
fn write_operands(program: &str, args: &[Word], sink: &mut Sink) {
    let options = match program {
        "touch" => spec("drt", "--date --reference --time"),
        "mkdir" => spec("m", "--mode"),
        "truncate" => spec("sr", "--size --reference"),
        _ => OptionSpec {
            long_flags: "--recursive --parents",
            ..NO_OPTIONS
        },
    };
    let parsed = scan(args, &options);
    if matches!(program, "touch" | "truncate") {
        let roles = Roles {
            reads: "-r --reference",
            ..NO_ROLES
        };
        judge_option_roles(program, &parsed.options, &roles, sink);
    }
    let access = if matches!(program, "rm" | "rmdir") {
        Access::Delete
    } else {
        Access::Write
    };
    let recursive = program == "rm" && parsed.has("-r -R --recursive");
    let removes_parents = program == "rmdir" && parsed.has("-p --parents");
    for word in &parsed.operands {
        operand(sink, access, word, recursive);
        if let (true, Word::Literal(path)) = (removes_parents, word) {
            let mut parent = path.trim_end_matches('/');
            while let Some((rest, _)) = parent.rsplit_once('/') {
                if !rest.is_empty() {
                    sink.path_text(Access::Delete, rest, false);
                }
                parent = rest;
            }
        }
    }
}

/// Judges `chmod`, `chown` and `chgrp`: a mode or owner (unless `--reference` gives it), then
/// files written. A `chmod` mode may look like an option (`-x`), so only known flags are
/// taken as options.
fn change_mode(program: &str, args: &[Word], sink: &mut Sink) {
    let mut operands: Vec<&Word> = Vec::new();
    let mut recursive = false;
    let mut reference_given = false;
    let mut index = 0;
    while let Some(word) = args.get(index) {
        index += 1;
        let text = word.literal().unwrap_or_default();
        if text == "--" {
            operands.extend(args.get(index..).unwrap_or_default());
            break;
        }
        if let Some(long) = text.strip_prefix("--") {
            recursive |= long == "recursive";
            if let Some(file) = long.strip_prefix("reference=") {
                reference_given = true;
                sink.path_text(Access::Read, file, false);
            } else if long == "reference" {
                reference_given = true;
                if let Some(file) = args.get(index) {
                    sink.path(Access::Read, file, false);
                }
                index += 1;
            }
            continue;
        }
        let flags = text.strip_prefix('-').unwrap_or_default();
        let known_flags = !flags.is_empty() && flags.chars().all(|c| "cfvRhHLP".contains(c));
        if known_flags || (program != "chmod" && is_option(word)) {
            recursive |= flags.contains('R');
            continue;
        }
        operands.push(word);
    }
    let files = operands
        .get(usize::from(!reference_given)..)
        .unwrap_or_default();
    for file in files {
        operand(sink, Access::Write, file, recursive);
    }
}

/// Judges `dd`: `if=FILE` is read and `of=FILE` written.
fn dd(args: &[Word], sink: &mut Sink) {
    for word in args {
        match word {
            Word::Literal(text) => {
                if let Some(file) = text.strip_prefix("if=") {
                    sink.path_text(Access::Read, file, false);
                } else if let Some(file) = text.strip_prefix("of=") {
                    sink.path_text(Access::Write, file, false);
                }
            }
            Word::Dynamic(source) => {
                sink.uncertain(format!("`dd` operand `{source}` is known only at run time"))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    //! Tests of file operands, through the whole analysis (see `command.rs`).

    use super::super::command::tests::check;

    #[test]
    fn readers() {
        check("cat a b", "exec cat a b | read a | read b");
        check("cat -n .env", "exec cat -n .env | read .env");
        check("cat -", "exec cat -");
        check(
            "cat *.env",
            "exec cat «*.env» | uncertain: `*.env` is expanded by the shell at run time",
        );
        check(
            "cat $F",
            "exec cat «$F» | uncertain: `$F` is expanded by the shell at run time",
        );
        check("head -n 5 a", "exec head -n 5 a | read a");
        check("tail -f -n5 log", "exec tail -f -n5 log | read log");
        check(
            "sort -o out in",
            "exec sort -o out in | write out | read in",
        );
        check(
            "sort --compress-program=gzip x",
            "exec sort --compress-program=gzip x | uncertain: `sort --compress-program` runs another program | read x",
        );
        check("uniq in out", "exec uniq in out | read in | write out");
        check("diff -r a b", "exec diff -r a b | read a -r | read b -r");
        check(
            "sha256sum -c sums",
            "exec sha256sum -c sums | uncertain: `sha256sum -c` reads file names from a file | read sums",
        );
        check("wc -c f", "exec wc -c f | read f");
        check("less -o log f", "exec less -o log f | write log | read f");
        check(
            "jq .a f.json g.json",
            "exec jq .a f.json g.json | read f.json | read g.json",
        );
        check(
            "jq --arg k v -f prog.jq in",
            "exec jq --arg k v -f prog.jq in | read prog.jq | read in",
        );
        check("awk '{print}' f", "exec awk {print} f | read f");
        check(
            "awk -f p.awk -v x=1 f y=2",
            "exec awk -f p.awk -v x=1 f y=2 | read p.awk | read f",
        );
    }

    #[test]
    fn searchers() {
        check("grep x .env", "exec grep x .env | read .env");
        check("grep -r x", "exec grep -r x | read . -r");
        check("grep -rn x src", "exec grep -rn x src | read src -r");
        check(
            "grep -e x -f pats a",
            "exec grep -e x -f pats a | read pats | read a",
        );
        check("grep --recur x d", "exec grep --recur x d | read d -r");
        check("grep x", "exec grep x");
        check("rg TODO", "exec rg TODO | read . -r");
        check("rg -t rust x src", "exec rg -t rust x src | read src -r");
        check(
            "rg --pre cat x",
            "exec rg --pre cat x | uncertain: `rg --pre` runs another program | read . -r",
        );
        check("sed 's/a/b/' f", "exec sed s/a/b/ f | read f");
        check("sed -i 's/a/b/' f", "exec sed -i s/a/b/ f | write f");
        check("sed -i.bak -e x f", "exec sed -i.bak -e x f | write f");
        check(
            "sed --in-place=.b x f",
            "exec sed --in-place=.b x f | write f",
        );
        check(
            "sed -n -f s.sed f",
            "exec sed -n -f s.sed f | read s.sed | read f",
        );
    }

    #[test]
    fn writers() {
        check("cp a b", "exec cp a b | read a | write b");
        check(
            "cp -r a b c",
            "exec cp -r a b c | read a -r | read b -r | write c -r",
        );
        check(
            "cp -t dir a b",
            "exec cp -t dir a b | read a | read b | write dir",
        );
        check(
            "cp -a src dst",
            "exec cp -a src dst | read src -r | write dst -r",
        );
        check("mv a b", "exec mv a b | delete a -r | write b -r");
        check("rm -rf x y", "exec rm -rf x y | delete x -r | delete y -r");
        check("rm -- -f", "exec rm -- -f | delete -f");
        check(
            "rmdir -p a/b/c",
            "exec rmdir -p a/b/c | delete a/b/c | delete a/b | delete a",
        );
        check("tee -a log", "exec tee -a log | write log");
        check("touch -r ref f", "exec touch -r ref f | read ref | write f");
        check("mkdir -p -m 755 d", "exec mkdir -p -m 755 d | write d");
        check("truncate -s 0 f", "exec truncate -s 0 f | write f");
        check(
            "ln -s target link",
            "exec ln -s target link | read target | write link",
        );
        check("ln -s ../x/y", "exec ln -s ../x/y | read ../x/y | write y");
        check("chmod +x f", "exec chmod +x f | write f");
        check("chmod -x f", "exec chmod -x f | write f");
        check("chmod -R 755 d", "exec chmod -R 755 d | write d -r");
        check("chown -R me:me d", "exec chown -R me:me d | write d -r");
        check(
            "chmod --reference=r f",
            "exec chmod --reference=r f | read r | write f",
        );
        check(
            "dd if=/dev/zero of=disk bs=1M",
            "exec dd if=/dev/zero of=disk bs=1M | read /dev/zero | write disk",
        );
        check(
            "dd of=$F",
            "exec dd «of=$F» | uncertain: `dd` operand `of=$F` is known only at run time",
        );
    }
}
