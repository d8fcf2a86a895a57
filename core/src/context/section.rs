//! Splitting a document into sections.
//!
//! The splitter is a set of small, documented heuristics, not a parser, and it never fails:
//! any text gives sections whose texts, after the front matter, add up to the whole document.
//!
//! - **Markdown** (`.md`, `.markdown`, `.mdx`): a section starts at each ATX heading
//!   (`#` to `######`, at most 3 spaces in) and runs up to the next heading of any level.
//!   Headings nest into heading paths by level. Lines inside fenced code blocks (```` ``` ````
//!   or `~~~`, at any indentation so that fences inside admonitions count) are never headings.
//!   A trailing `{#anchor}` attribute and a closing run of `#`s are not part of a heading's
//!   text. Setext headings (underlined with `===` or `---`) are not recognised.
//!   Front matter between two leading `---` lines is parsed into `key: value` pairs and belongs
//!   to no section.
//! - **Code** (`.py`, `.rs`, `.js`, `.ts`, `.go`, `.java`, `.c`, `.h`, `.cpp`, `.rb`, `.sh`
//!   and the like): a section starts at each line that is not indented and begins a definition
//!   (`def`, `class`, `fn`, `pub`, `impl`, `function`, `export`, `func`, ...), together with the
//!   decorators, attributes and comment lines right above it. Its heading path is the key and
//!   the definition line. An item of one non-blank line (a `const`, say) joins the section
//!   before it, so that runs of one-liners do not become sections of their own.
//! - **Plain text** (`.txt` and anything else): one section.
//!
//! Text before the first heading or item is a preamble section (level 0) whose heading path is
//! the document's title, or its key when it has none; a preamble of blank lines only joins the
//! section after it, which then starts before its heading line.
//! A section over [`MAX_SECTION_TOKENS`] tokens (or, for code, over 120 lines) is cut into
//! windows of about [`WINDOW_TOKENS`] tokens (and at most 80 lines for code; a code file
//! without items is windowed the same way), preferably at blank lines outside
//! code fences. Every window keeps the section's heading path and level unchanged, so that
//! matching a section by its heading keeps working, and the windows are told apart by their
//! occurrence index (which goes into their ids).

use std::collections::{BTreeMap, HashMap};

use crate::tokens::count_tokens;

/// Sections with more tokens than this are cut into windows.
pub const MAX_SECTION_TOKENS: u32 = 1_500;

/// The number of tokens a window aims at when a long section is cut.
pub const WINDOW_TOKENS: u32 = 1_000;

/// The most lines a window of code holds.
const CODE_WINDOW_LINES: usize = 80;

/// Code sections with more lines than this are cut into windows, however few tokens they have.
const MAX_CODE_SECTION_LINES: usize = 120;

/// The longest heading path element kept from a code item's definition line, in bytes.
const MAX_SIGNATURE_BYTES: usize = 200;

/// How far into a document [`is_probably_binary`] looks for a NUL byte.
const BINARY_SNIFF_BYTES: usize = 8 * 1024;

/// One section of a document, as the splitter found it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SectionDraft {
    /// The headings from the outermost to this section's own, such as
    /// `["Serialization", "Excluding and including specific fields"]`; `[title]` or `[key]` for
    /// a preamble, and `[key, definition line]` for a code item.
    pub heading_path: Vec<String>,
    /// The heading level, 1 to 6, or 0 for a preamble, plain text or code.
    pub level: u8,
    /// The first line, counting from 1, inclusive: the heading line, unless blank lines before
    /// the first heading were joined to the section, or the section is a later window of a long
    /// section.
    pub line_start: u32,
    /// The last line, counting from 1, inclusive.
    pub line_end: u32,
    /// The section's own text, from its first line up to the next section, line endings
    /// included.
    pub text: String,
    /// Where `text` lies in the document's text, in bytes.
    pub bytes: std::ops::Range<usize>,
    /// The number of `o200k_base` tokens in `text`.
    pub tokens: u32,
    /// A stable id: 16 hex digits of a blake3 hash of the key, the heading path and the
    /// section's occurrence index among the document's sections with the same heading path
    /// (a preamble counts apart from headings, so adding one does not shift their ids).
    pub id: String,
}

/// A document split into front matter, title and sections.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ParsedDocument {
    /// The `key: value` pairs of the front matter, with quotes around values removed.
    pub front_matter: BTreeMap<String, String>,
    /// The front matter's `title`, or else the text of the first level-1 heading.
    pub title: Option<String>,
    /// The sections in document order; none for an empty document.
    pub sections: Vec<SectionDraft>,
}

/// Returns whether `bytes` look like a binary file rather than text: a NUL byte in the first
/// 8 KiB, or bytes that are not valid UTF-8.
pub fn is_probably_binary(bytes: &[u8]) -> bool {
    let head = &bytes[..bytes.len().min(BINARY_SNIFF_BYTES)];
    head.contains(&0) || std::str::from_utf8(bytes).is_err()
}

/// Splits the document `text`, stored under `key`, into sections.
///
/// The key's extension chooses between markdown, code and plain text (see the module docs).
/// Lines end at `\n`; a `\r` before it is kept in the text and ignored by the heuristics.
/// The front matter's raw text followed by all sections' texts, in order, is exactly `text`.
pub fn split(key: &str, text: &str) -> ParsedDocument {
    let lines = split_lines(text);
    let kind = Kind::of(key);
    let (front_matter, body_start) = match kind {
        Kind::Markdown => parse_front_matter(&lines),
        Kind::Code | Kind::Plain => (BTreeMap::new(), 0),
    };
    let mut title = front_matter
        .get("title")
        .filter(|title| !title.trim().is_empty())
        .map(|title| title.trim().to_string());
    let scan = match kind {
        Kind::Markdown => scan_markdown(&lines, body_start),
        Kind::Code => scan_code(key, &lines),
        Kind::Plain => Scan::plain(lines.len()),
    };
    if title.is_none() {
        title = scan
            .sections
            .iter()
            .find(|raw| raw.level == 1)
            .and_then(|raw| raw.heading_path.last().cloned());
    }
    let preamble_path = vec![title.clone().unwrap_or_else(|| key.to_string())];
    let mut raws = scan.sections;
    let first_start = raws.first().map_or(lines.len(), |raw| raw.start);
    if first_start > body_start {
        let preamble_blank = lines[body_start..first_start]
            .iter()
            .all(|line| line.trim().is_empty());
        match raws.first_mut() {
            Some(first) if preamble_blank => first.start = body_start,
            _ => raws.insert(
                0,
                RawSection {
                    heading_path: preamble_path,
                    level: 0,
                    start: body_start,
                    is_preamble: true,
                },
            ),
        }
    }
    let (max_section_lines, max_window_lines) = match kind {
        Kind::Code => (MAX_CODE_SECTION_LINES, CODE_WINDOW_LINES),
        Kind::Markdown | Kind::Plain => (usize::MAX, usize::MAX),
    };
    let offsets = line_offsets(&lines);
    let mut sections = Vec::with_capacity(raws.len());
    let mut occurrences: HashMap<String, u32> = HashMap::new();
    for (raw_idx, raw) in raws.iter().enumerate() {
        let end = raws.get(raw_idx + 1).map_or(lines.len(), |next| next.start);
        let whole = &text[offsets[raw.start]..offsets[end]];
        let whole_tokens = count_tokens(whole);
        let ranges =
            if whole_tokens > MAX_SECTION_TOKENS as usize || end - raw.start > max_section_lines {
                windows(&lines, &scan.in_fence, raw.start, end, max_window_lines)
            } else {
                vec![(raw.start, end)]
            };
        for (start, end) in ranges {
            let section_text = &text[offsets[start]..offsets[end]];
            // A section that is not cut into windows is the text just counted.
            let tokens = if section_text.len() == whole.len() {
                whole_tokens
            } else {
                count_tokens(section_text)
            };
            // A preamble counts its occurrences apart from headings with the same text, so that
            // adding or dropping a preamble leaves the headings' ids alone.
            let mut joined = if raw.is_preamble {
                String::from("\0")
            } else {
                String::new()
            };
            joined.push_str(&raw.heading_path.join("\u{1f}"));
            let occurrence = occurrences.entry(joined.clone()).or_insert(0);
            let id = section_id(key, &joined, *occurrence);
            *occurrence += 1;
            sections.push(SectionDraft {
                heading_path: raw.heading_path.clone(),
                level: raw.level,
                line_start: line_number(start + 1),
                line_end: line_number(end),
                tokens: u32::try_from(tokens).unwrap_or(u32::MAX),
                text: section_text.to_string(),
                bytes: offsets[start]..offsets[end],
                id,
            });
        }
    }
    ParsedDocument {
        front_matter,
        title,
        sections,
    }
}

/// The `o200k_base` tokens of `text`, given its `sections` as [`split`] made them: the count
/// of the text before the first section plus the sections' own counts, where that is exact, or
/// else a count of the whole text.
///
/// It is exact when every section starts a line with a printable ASCII character other than `/`:
/// then no piece of the tokenizer's pre-split runs across a section's start. A piece holds a line
/// break only as blank space (`\s*[\r\n]+`, `\s+`), which stops at a character that is not
/// blank, or as the line breaks and slashes after punctuation (` ?[^\s\p{L}\p{N}]+[\r\n/]*`),
/// which stop at one that is neither; and no piece looks behind. The pieces on each side are
/// then those of the section alone.
pub(crate) fn document_tokens(text: &str, sections: &[SectionDraft]) -> usize {
    let bytes = text.as_bytes();
    let starts_cleanly = |at: usize| {
        at == 0
            || (bytes.get(at - 1) == Some(&b'\n')
                && bytes
                    .get(at)
                    .is_some_and(|&byte| byte.is_ascii_graphic() && byte != b'/'))
    };
    let tiled = sections
        .first()
        .is_some_and(|first| starts_cleanly(first.bytes.start))
        && sections
            .last()
            .is_some_and(|last| last.bytes.end == text.len())
        && sections.windows(2).all(|pair| {
            pair[0].bytes.end == pair[1].bytes.start && starts_cleanly(pair[1].bytes.start)
        });
    match sections.first() {
        Some(first) if tiled => {
            let before = text.get(..first.bytes.start).map_or(0, count_tokens);
            sections.iter().fold(before, |sum, section| {
                sum.saturating_add(section.tokens as usize)
            })
        }
        _ => count_tokens(text),
    }
}

/// How a document is split, chosen by its key's extension.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Markdown,
    Code,
    Plain,
}

impl Kind {
    fn of(key: &str) -> Kind {
        let file_name = key.rsplit(['/', '\\']).next().unwrap_or(key);
        let extension = match file_name.rsplit_once('.') {
            Some((stem, extension)) if !stem.is_empty() => extension.to_ascii_lowercase(),
            _ => return Kind::Plain,
        };
        match extension.as_str() {
            "md" | "markdown" | "mdx" => Kind::Markdown,
            "py" | "pyi" | "rs" | "js" | "mjs" | "cjs" | "jsx" | "ts" | "tsx" | "go" | "java"
            | "kt" | "kts" | "scala" | "swift" | "c" | "h" | "cc" | "cpp" | "cxx" | "hpp"
            | "hh" | "cs" | "rb" | "php" | "sh" | "bash" | "zsh" | "lua" | "ex" | "exs" => {
                Kind::Code
            }
            _ => Kind::Plain,
        }
    }
}

/// A section before windowing: where it starts (a line index) and what it is called.
#[derive(Clone, Debug)]
struct RawSection {
    heading_path: Vec<String>,
    level: u8,
    start: usize,
    is_preamble: bool,
}

/// What a scan of the body found: the sections that start at headings or items, and which
/// lines are inside a code fence (never a good place to cut a window).
struct Scan {
    sections: Vec<RawSection>,
    in_fence: Vec<bool>,
}

impl Scan {
    fn plain(n_lines: usize) -> Scan {
        Scan {
            sections: Vec::new(),
            in_fence: vec![false; n_lines],
        }
    }
}

/// Splits `text` into lines that keep their `\n`; the last line may lack one.
fn split_lines(text: &str) -> Vec<&str> {
    text.split_inclusive('\n').collect()
}

/// The byte offset at which each line starts, plus the text's length at the end.
fn line_offsets(lines: &[&str]) -> Vec<usize> {
    let mut offsets = Vec::with_capacity(lines.len() + 1);
    let mut offset = 0;
    offsets.push(0);
    for line in lines {
        offset += line.len();
        offsets.push(offset);
    }
    offsets
}

/// A line's text without its line ending.
fn content(line: &str) -> &str {
    line.trim_end_matches('\n').trim_end_matches('\r')
}

fn line_number(number: usize) -> u32 {
    u32::try_from(number).unwrap_or(u32::MAX)
}

/// Hashes the key, the joined heading path and the occurrence index into 16 hex digits.
fn section_id(key: &str, joined_path: &str, occurrence: u32) -> String {
    let mut hasher = blake3::Hasher::new();
    hasher.update(key.as_bytes());
    hasher.update(b"\x1e");
    hasher.update(joined_path.as_bytes());
    hasher.update(b"\x1e");
    hasher.update(&occurrence.to_le_bytes());
    let hash = hasher.finalize();
    hash.as_bytes()[..8]
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// Parses leading front matter; returns its pairs and the index of the first body line.
fn parse_front_matter(lines: &[&str]) -> (BTreeMap<String, String>, usize) {
    let mut pairs = BTreeMap::new();
    let is_open = lines
        .first()
        .is_some_and(|line| content(line).trim_start_matches('\u{feff}').trim_end() == "---");
    if !is_open {
        return (pairs, 0);
    }
    let Some(close) = lines
        .iter()
        .skip(1)
        .position(|line| matches!(content(line).trim_end(), "---" | "..."))
        .map(|position| position + 1)
    else {
        return (pairs, 0);
    };
    for line in &lines[1..close] {
        let line = content(line);
        if line.starts_with(char::is_whitespace) || line.starts_with(['#', '-']) {
            continue;
        }
        if let Some((key, value)) = line.split_once(':') {
            let key = key.trim();
            if !key.is_empty() {
                pairs.insert(key.to_string(), unquote(value.trim()).to_string());
            }
        }
    }
    (pairs, close + 1)
}

fn unquote(value: &str) -> &str {
    for quote in ['"', '\''] {
        if let Some(inner) = value
            .strip_prefix(quote)
            .and_then(|rest| rest.strip_suffix(quote))
        {
            return inner;
        }
    }
    value
}

/// Finds the headings of a markdown body.
fn scan_markdown(lines: &[&str], body_start: usize) -> Scan {
    let mut in_fence = vec![false; lines.len()];
    let mut sections = Vec::new();
    let mut fence: Option<(char, usize)> = None;
    let mut stack: Vec<(u8, String)> = Vec::new();
    for (line_idx, line) in lines.iter().enumerate().skip(body_start) {
        let line = content(line);
        if let Some((fence_char, fence_len)) = fence {
            in_fence[line_idx] = true;
            if is_fence_close(line, fence_char, fence_len) {
                fence = None;
            }
            continue;
        }
        if let Some(open) = fence_open(line) {
            in_fence[line_idx] = true;
            fence = Some(open);
            continue;
        }
        if let Some((level, heading)) = atx_heading(line) {
            while stack.last().is_some_and(|(top, _)| *top >= level) {
                stack.pop();
            }
            stack.push((level, heading));
            sections.push(RawSection {
                heading_path: stack.iter().map(|(_, text)| text.clone()).collect(),
                level,
                start: line_idx,
                is_preamble: false,
            });
        }
    }
    Scan { sections, in_fence }
}

/// The fence character and length if `line` opens a fenced code block.
fn fence_open(line: &str) -> Option<(char, usize)> {
    let trimmed = line.trim_start();
    let fence_char = trimmed.chars().next().filter(|c| matches!(c, '`' | '~'))?;
    let fence_len = trimmed.chars().take_while(|c| *c == fence_char).count();
    if fence_len < 3 {
        return None;
    }
    // A backtick fence's info string has no backticks: "```code```" is inline code.
    let info = &trimmed[fence_len..];
    if fence_char == '`' && info.contains('`') {
        return None;
    }
    Some((fence_char, fence_len))
}

fn is_fence_close(line: &str, fence_char: char, fence_len: usize) -> bool {
    let trimmed = line.trim();
    !trimmed.is_empty()
        && trimmed.chars().all(|c| c == fence_char)
        && trimmed.chars().count() >= fence_len
}

/// The level and cleaned-up text if `line` is an ATX heading.
fn atx_heading(line: &str) -> Option<(u8, String)> {
    let indent = line.len() - line.trim_start_matches(' ').len();
    if indent > 3 {
        return None;
    }
    let rest = &line[indent..];
    let level = rest.chars().take_while(|c| *c == '#').count();
    if !(1..=6).contains(&level) {
        return None;
    }
    let after = &rest[level..];
    if !(after.is_empty() || after.starts_with([' ', '\t'])) {
        return None;
    }
    let mut heading = strip_attribute(after.trim());
    let without_hashes = heading.trim_end_matches('#');
    if without_hashes.is_empty() {
        heading = "";
    } else if without_hashes.ends_with([' ', '\t']) {
        heading = strip_attribute(without_hashes.trim_end());
    }
    // INVARIANT: `level` is between 1 and 6.
    Some((level as u8, heading.to_string()))
}

/// Removes a trailing attribute list such as `{#anchor}` or `{: .class }`.
fn strip_attribute(heading: &str) -> &str {
    if !heading.ends_with('}') {
        return heading;
    }
    match heading.rfind('{') {
        Some(open)
            if heading[open + 1..]
                .trim_start()
                .starts_with(['#', '.', ':']) =>
        {
            heading[..open].trim_end()
        }
        _ => heading,
    }
}

/// The first words that make a non-indented line of code start an item.
const ITEM_KEYWORDS: &[&str] = &[
    "abstract",
    "async",
    "class",
    "const",
    "def",
    "enum",
    "export",
    "extern",
    "final",
    "fn",
    "fun",
    "func",
    "function",
    "impl",
    "interface",
    "macro_rules!",
    "mod",
    "module",
    "object",
    "private",
    "protected",
    "pub",
    "public",
    "static",
    "struct",
    "trait",
    "type",
    "union",
    "unsafe",
];

/// Whether `line` (not indented) begins a top-level definition.
fn is_item_head(line: &str) -> bool {
    if line.starts_with(char::is_whitespace) {
        return false;
    }
    let first_word = line
        .split(|c: char| c.is_whitespace() || matches!(c, '(' | '<' | '{' | ':'))
        .next()
        .unwrap_or("");
    ITEM_KEYWORDS.contains(&first_word) || is_shell_function(line)
}

/// `name() {`, a shell function.
fn is_shell_function(line: &str) -> bool {
    let Some((name, rest)) = line.split_once("()") else {
        return false;
    };
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-'))
        && rest.trim_start().starts_with('{')
}

/// Whether `line` is a decorator, attribute or comment line that belongs to the item below it.
fn is_attachable(line: &str) -> bool {
    let trimmed = line.trim_start();
    let indent = line.len() - trimmed.len();
    (indent == 0 && trimmed.starts_with(['@', '#']))
        || (indent <= 1 && trimmed.starts_with(['*', '/']))
        || trimmed.starts_with("--")
}

/// Finds the top-level items of a code file.
fn scan_code(key: &str, lines: &[&str]) -> Scan {
    let mut sections: Vec<RawSection> = Vec::new();
    let mut item_ends: Vec<usize> = Vec::new();
    for (line_idx, line) in lines.iter().enumerate() {
        let line = content(line);
        if !is_item_head(line) {
            continue;
        }
        let floor = item_ends.last().copied().unwrap_or(0);
        let mut start = line_idx;
        while start > floor && is_attachable(content(lines[start - 1])) {
            start -= 1;
        }
        let signature = truncate(line.trim(), MAX_SIGNATURE_BYTES);
        sections.push(RawSection {
            heading_path: vec![key.to_string(), signature.to_string()],
            level: 0,
            start,
            is_preamble: false,
        });
        item_ends.push(line_idx + 1);
    }
    // An item of one non-blank line joins the section before it.
    let mut kept: Vec<RawSection> = Vec::with_capacity(sections.len());
    for (item_idx, section) in sections.iter().enumerate() {
        let end = sections
            .get(item_idx + 1)
            .map_or(lines.len(), |next| next.start);
        let non_blank = lines[section.start..end]
            .iter()
            .filter(|line| !line.trim().is_empty())
            .count();
        if non_blank <= 1 && (item_idx > 0 || section.start > 0) {
            continue;
        }
        kept.push(section.clone());
    }
    Scan {
        sections: kept,
        in_fence: vec![false; lines.len()],
    }
}

fn truncate(text: &str, max_bytes: usize) -> &str {
    if text.len() <= max_bytes {
        return text;
    }
    let mut end = max_bytes;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// Cuts the lines `start..end` into windows of about [`WINDOW_TOKENS`] tokens and at most
/// `max_lines` lines, preferring to start a window after a blank line outside a code fence.
fn windows(
    lines: &[&str],
    in_fence: &[bool],
    start: usize,
    end: usize,
    max_lines: usize,
) -> Vec<(usize, usize)> {
    let line_tokens: Vec<usize> = lines[start..end]
        .iter()
        .map(|line| count_tokens(line))
        .collect();
    let can_start_at = |line_idx: usize| {
        line_idx > 0
            && lines[line_idx - 1].trim().is_empty()
            && !in_fence.get(line_idx - 1).copied().unwrap_or(false)
    };
    let budget = WINDOW_TOKENS as usize;
    let mut ranges = Vec::new();
    let mut window_start = start;
    while window_start < end {
        let mut window_end = window_start;
        let mut n_tokens = 0;
        while window_end < end
            && (window_end == window_start
                || (n_tokens + line_tokens[window_end - start] <= budget
                    && window_end - window_start < max_lines))
        {
            n_tokens += line_tokens[window_end - start];
            window_end += 1;
        }
        if window_end < end {
            let earliest = window_start + (window_end - window_start) / 2 + 1;
            if let Some(better) = (earliest..=window_end).rev().find(|idx| can_start_at(*idx)) {
                window_end = better;
            }
        }
        ranges.push((window_start, window_end));
        window_start = window_end;
    }
    // A small last window joins the one before it while the two stay under the section limit.
    if let [.., (_, previous_end), (last_start, last_end)] = ranges[..] {
        let tokens_of =
            |from: usize, to: usize| line_tokens[from - start..to - start].iter().sum::<usize>();
        let last_tokens = tokens_of(last_start, last_end);
        let previous_start = ranges[ranges.len() - 2].0;
        if last_tokens < budget / 4
            && tokens_of(previous_start, previous_end) + last_tokens <= MAX_SECTION_TOKENS as usize
            && last_end - previous_start <= max_lines
        {
            ranges.pop();
            if let Some(previous) = ranges.last_mut() {
                previous.1 = last_end;
            }
        }
    }
    ranges
}

#[cfg(test)]
mod tests {
    // Covers markdown, code and plain splitting, line numbers, ids, windows and the
    // reassembly property on arbitrary text.
    use super::*;
    use proptest::prelude::*;

    /// `(heading path joined with " > ", level, line_start, line_end)` per section.
    fn outline(key: &str, text: &str) -> Vec<(String, u8, u32, u32)> {
        split(key, text)
            .sections
            .iter()
            .map(|section| {
                (
                    section.heading_path.join(" > "),
                    section.level,
                    section.line_start,
                    section.line_end,
                )
            })
            .collect()
    }

    /// `(heading path joined with " > ", level, line_start, line_end)` per expected section.
    type Outline<'a> = &'a [(&'a str, u8, u32, u32)];

    fn check(key: &str, text: &str, expected: Outline<'_>) {
        let expected: Vec<(String, u8, u32, u32)> = expected
            .iter()
            .map(|(path, level, start, end)| (path.to_string(), *level, *start, *end))
            .collect();
        assert_eq!(outline(key, text), expected, "text: {text:?}");
        check_reassembles(key, text);
    }

    /// The front matter's lines plus every section's text give back the document, and the line
    /// ranges are contiguous.
    fn check_reassembles(key: &str, text: &str) {
        let parsed = split(key, text);
        let joined: String = parsed.sections.iter().map(|s| s.text.as_str()).collect();
        assert!(text.ends_with(&joined), "{text:?}");
        let front = &text[..text.len() - joined.len()];
        let front_lines = front.split_inclusive('\n').count() as u32;
        let mut next_line = front_lines + 1;
        for section in &parsed.sections {
            assert_eq!(text.get(section.bytes.clone()), Some(section.text.as_str()));
            assert_eq!(section.tokens as usize, count_tokens(&section.text));
            assert_eq!(section.line_start, next_line, "{text:?}");
            assert!(section.line_end >= section.line_start);
            assert_eq!(
                section.text.split_inclusive('\n').count() as u32,
                section.line_end - section.line_start + 1
            );
            next_line = section.line_end + 1;
        }
        assert_eq!(next_line - 1, text.split_inclusive('\n').count() as u32);
        assert_eq!(
            document_tokens(text, &parsed.sections),
            count_tokens(text),
            "{text:?}"
        );
    }

    #[test]
    fn markdown_headings() {
        let cases: &[(&str, Outline<'_>)] = &[
            ("", &[]),
            ("\n\n", &[("doc.md", 0, 1, 2)]),
            ("just text\nmore\n", &[("doc.md", 0, 1, 2)]),
            (
                "# A\ntext\n## B\n### C\n## D\n# E",
                &[
                    ("A", 1, 1, 2),
                    ("A > B", 2, 3, 3),
                    ("A > B > C", 3, 4, 4),
                    ("A > D", 2, 5, 5),
                    ("E", 1, 6, 6),
                ],
            ),
            (
                "intro\n\n# Title\nx\n",
                &[("Title", 0, 1, 2), ("Title", 1, 3, 4)],
            ),
            ("intro\n## Two\n", &[("doc.md", 0, 1, 1), ("Two", 2, 2, 2)]),
            ("\n\n## Two\nx\n", &[("Two", 2, 1, 4)]),
            (
                "## Skip\n#### Deep\n### Mid\n",
                &[
                    ("Skip", 2, 1, 1),
                    ("Skip > Deep", 4, 2, 2),
                    ("Skip > Mid", 3, 3, 3),
                ],
            ),
            (
                "## Heading {#anchor}\n## Closed ##\n## C#\n## {#only}\n#\n",
                &[
                    ("Heading", 2, 1, 1),
                    ("Closed", 2, 2, 2),
                    ("C#", 2, 3, 3),
                    ("", 2, 4, 4),
                    ("", 1, 5, 5),
                ],
            ),
            (
                "# A\n```python\n# not a heading\n```\n# B\n",
                &[("A", 1, 1, 4), ("B", 1, 5, 5)],
            ),
            (
                "# A\n~~~~\n# no\n~~~\n# still no\n~~~~\n# B\n",
                &[("A", 1, 1, 6), ("B", 1, 7, 7)],
            ),
            (
                "# A\n!!! note\n    ```py\n# no\n    ```\n# B\n",
                &[("A", 1, 1, 5), ("B", 1, 6, 6)],
            ),
            ("# A\n```\n# never closed\n", &[("A", 1, 1, 3)]),
            (
                "# A\n```inline``` text\n# B\n",
                &[("A", 1, 1, 2), ("B", 1, 3, 3)],
            ),
            (
                "#hashtag\n    # indented code\n   # three spaces\n",
                &[("three spaces", 0, 1, 2), ("three spaces", 1, 3, 3)],
            ),
            (
                "# A\r\ntext\r\n## B {#b}\r\n",
                &[("A", 1, 1, 2), ("A > B", 2, 3, 3)],
            ),
            ("####### seven\n", &[("doc.md", 0, 1, 1)]),
        ];
        for (text, expected) in cases {
            check("doc.md", text, expected);
        }
    }

    #[test]
    fn front_matter() {
        let text =
            "---\ndescription: Migrating.\ntitle: \"Guide\"\n  nested: x\n---\n\nIntro.\n## Part\n";
        let parsed = split("docs/migration.md", text);
        assert_eq!(
            parsed.front_matter.get("description").map(String::as_str),
            Some("Migrating.")
        );
        assert_eq!(
            parsed.front_matter.get("title").map(String::as_str),
            Some("Guide")
        );
        assert_eq!(parsed.front_matter.len(), 2);
        assert_eq!(parsed.title.as_deref(), Some("Guide"));
        check(
            "docs/migration.md",
            text,
            &[("Guide", 0, 6, 7), ("Part", 2, 8, 8)],
        );
        // Not closed: no front matter at all.
        check("a.md", "---\ntitle: x\n", &[("a.md", 0, 1, 2)]);
        // Not markdown: no front matter either.
        check("a.txt", "---\ntitle: x\n---\n", &[("a.txt", 0, 1, 3)]);
        let parsed = split("a.md", "# First\n# Second\n");
        assert_eq!(parsed.title.as_deref(), Some("First"));
    }

    #[test]
    fn pydantic_style_document() {
        let text = concat!(
            "Models can be dumped.\n",
            "\n",
            "!!! tip\n",
            "    Want to jump?\n",
            "\n",
            "## Serializing data\n",
            "\n",
            "### Python mode\n",
            "\n",
            "```python {group=\"python-dump\"}\n",
            "# returns a dictionary:\n",
            "#> {'banana': 3.14}\n",
            "```\n",
            "\n",
            "#### Excluding and including specific fields {#subset}\n",
            "Use `exclude`.\n",
            "## Pickling support\n",
        );
        check(
            "docs/concepts/serialization.md",
            text,
            &[
                ("docs/concepts/serialization.md", 0, 1, 5),
                ("Serializing data", 2, 6, 7),
                ("Serializing data > Python mode", 3, 8, 14),
                (
                    "Serializing data > Python mode > Excluding and including specific fields",
                    4,
                    15,
                    16,
                ),
                ("Pickling support", 2, 17, 17),
            ],
        );
    }

    #[test]
    fn code_items() {
        let python = concat!(
            "from pydantic import BaseModel\n",
            "LIMIT = 3\n",
            "\n",
            "# A user.\n",
            "@dataclass\n",
            "class User(BaseModel):\n",
            "    id: int\n",
            "\n",
            "def helper():\n",
            "    return 1\n",
            "const_like = 1\n",
            "async def fetch():\n",
            "    pass\n",
        );
        check(
            "m.py",
            python,
            &[
                ("m.py", 0, 1, 3),
                ("m.py > class User(BaseModel):", 0, 4, 8),
                ("m.py > def helper():", 0, 9, 11),
                ("m.py > async def fetch():", 0, 12, 13),
            ],
        );
        let rust = concat!(
            "use std::fmt;\n",
            "\n",
            "/// Docs.\n",
            "#[derive(Debug)]\n",
            "pub struct A {\n",
            "    x: u32,\n",
            "}\n",
            "const B: u32 = 1;\n",
            "const C: u32 = 2;\n",
            "impl A {\n",
            "    fn f(&self) {}\n",
            "}\n",
        );
        check(
            "src/a.rs",
            rust,
            &[
                ("src/a.rs", 0, 1, 2),
                ("src/a.rs > pub struct A {", 0, 3, 9),
                ("src/a.rs > impl A {", 0, 10, 12),
            ],
        );
        check(
            "s.sh",
            "set -e\nbuild() {\n  make\n}\n",
            &[("s.sh", 0, 1, 1), ("s.sh > build() {", 0, 2, 4)],
        );
        check("x.go", "fn one() {}\n", &[("x.go > fn one() {}", 0, 1, 1)]);
        check("x.py", "print(1)\n", &[("x.py", 0, 1, 1)]);
        check("Makefile", "all:\n\tmake\n", &[("Makefile", 0, 1, 2)]);
    }

    #[test]
    fn long_sections_become_windows() {
        let mut text = String::from("## Long {#long}\n");
        for paragraph in 0..40 {
            for line in 0..5 {
                text.push_str(&format!(
                    "Paragraph {paragraph} line {line} says something quite long about models.\n"
                ));
            }
            text.push('\n');
        }
        text.push_str("## Next\n");
        let parsed = split("long.md", &text);
        let long: Vec<&SectionDraft> = parsed
            .sections
            .iter()
            .filter(|section| section.heading_path == ["Long"])
            .collect();
        assert!(long.len() >= 3, "{}", long.len());
        for window in &long {
            assert!(window.tokens <= WINDOW_TOKENS + 50, "{}", window.tokens);
            assert_eq!(window.level, 2);
            // Windows start after blank lines.
            assert!(
                window.line_start == 1
                    || text.lines().nth(window.line_start as usize - 2) == Some("")
            );
        }
        check_reassembles("long.md", &text);
        let mut code = String::new();
        for line in 0..200 {
            code.push_str(&format!("    x{line} = {line}\n"));
        }
        let code = format!("def big():\n{code}");
        let parsed = split("big.py", &code);
        assert!(parsed
            .sections
            .iter()
            .all(|s| s.line_end - s.line_start < 80));
        check_reassembles("big.py", &code);
    }

    #[test]
    fn ids_are_stable_and_distinct() {
        let v1 = "# Guide\nold text\n## Install\npip install\n## Install\nagain\n";
        let v2 =
            "intro\n\n# Guide\nnew text, longer\nand more\n## Install\nuv add\n## Install\nagain\n";
        let first = split("docs/guide.md", v1);
        let second = split("docs/guide.md", v2);
        let ids = |parsed: &ParsedDocument| -> Vec<(Vec<String>, String)> {
            parsed
                .sections
                .iter()
                .filter(|s| s.level > 0)
                .map(|s| (s.heading_path.clone(), s.id.clone()))
                .collect()
        };
        assert_eq!(ids(&first), ids(&second));
        let all: Vec<&str> = second.sections.iter().map(|s| s.id.as_str()).collect();
        let mut unique = all.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), all.len());
        assert!(all
            .iter()
            .all(|id| id.len() == 16 && id.bytes().all(|b| b.is_ascii_hexdigit())));
        let other = split("docs/other.md", v1);
        assert_ne!(other.sections[0].id, first.sections[0].id);
    }

    #[test]
    fn token_counts() {
        let parsed = split("a.md", "# hello world\n");
        assert_eq!(
            parsed.sections[0].tokens as usize,
            count_tokens("# hello world\n")
        );
    }

    #[test]
    fn binary_sniffing() {
        let cases: &[(&[u8], bool)] = &[
            (b"", false),
            (b"plain text\n", false),
            ("ünïcödé".as_bytes(), false),
            (b"a\0b", true),
            (b"\xff\xfe", true),
            (b"ok\xc3", true),
        ];
        for (bytes, expected) in cases {
            assert_eq!(is_probably_binary(bytes), *expected, "{bytes:?}");
        }
    }

    fn markdownish() -> impl Strategy<Value = String> {
        let line = prop_oneof![
            Just("# A".to_string()),
            Just("## B {#b}".to_string()),
            Just("```".to_string()),
            Just("~~~".to_string()),
            Just("---".to_string()),
            Just("title: x".to_string()),
            Just(String::new()),
            Just("def f():".to_string()),
            Just("@decorator".to_string()),
            Just("/// A doc comment.".to_string()),
            Just("fn g() {".to_string()),
            Just("}".to_string()),
            Just("end.".to_string()),
            Just("  indented".to_string()),
            Just("\u{a0}spaced".to_string()),
            "[ #`~a-z\u{e9}\r/.\t]{0,12}",
            any::<String>(),
        ];
        proptest::collection::vec(line, 0..30).prop_map(|lines| lines.join("\n"))
    }

    /// Documents made of lines that start with what can join a piece of the tokenizer's across
    /// a line break (blank space, `/`, `\r`, a non-ASCII space) or cannot (`#`, letters), with
    /// headings, code items and front matter between them, so that sections start with either.
    fn line_starts() -> impl Strategy<Value = String> {
        let line = prop_oneof![
            Just("# Title"),
            Just("## Sub"),
            Just(""),
            Just(" "),
            Just("\t"),
            Just("end."),
            Just("a: b"),
            Just("/// doc"),
            Just("// c"),
            Just("/path/to"),
            Just("  code"),
            Just("\r"),
            Just("}"),
            Just("def f():"),
            Just("@decorator"),
            Just("fn g() {"),
            Just("x = 1"),
            Just("\u{a0}nb"),
            Just("---"),
            Just("title: t"),
            Just("```"),
            Just("...//"),
            Just("!!\r"),
            Just("\u{e9}t\u{e9}"),
        ];
        (proptest::collection::vec(line, 0..40), any::<bool>()).prop_map(|(lines, end)| {
            let mut text = lines.join("\n");
            if end {
                text.push('\n');
            }
            text
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]

        #[test]
        fn a_document_counts_as_its_whole_text(
            text in line_starts(),
            ext in prop_oneof![Just("md"), Just("py"), Just("rs"), Just("txt")],
        ) {
            let parsed = split(&format!("k.{ext}"), &text);
            prop_assert_eq!(document_tokens(&text, &parsed.sections), count_tokens(&text));
        }

        #[test]
        fn any_text_reassembles(text in markdownish(), ext in prop_oneof![Just("md"), Just("py"), Just("txt")]) {
            check_reassembles(&format!("k.{ext}"), &text);
        }
    }
}
