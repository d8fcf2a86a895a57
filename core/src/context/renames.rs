//! Renames: what the store's own documents say an old name became.
//!
//! A library's migration guide and changelog say, in so many words, that `orm_mode` is now
//! `from_attributes` or that `@root_validator` is deprecated in favour of `@model_validator`.
//! An agent that learnt the library from older code asks with the old name, which the current
//! concept pages no longer mention, so a lexical ranker sends it to the migration guide or to
//! nothing. The store reads those statements out of its current canonical sections and, when a
//! query names an old name as code, searches for the new name as well, and says so in the
//! answer ([`super::Answer::renames`]).
//!
//! Two forms are read, both generic to documentation rather than to one library:
//!
//! - a Markdown table whose header's first two cells say old and new (`Pydantic V1 | Pydantic
//!   V2`, `Old | New`, `Deprecated | Replacement`), each row of two code spans a pair;
//! - a sentence that says a code name was deprecated, removed, renamed or replaced (or uses an
//!   arrow) and names its successor as a code span within a few words of `use`, `renamed to`,
//!   `replaced with`, `in favour of`, `switch to`, `equivalent` or the arrow, or says that
//!   something replaced `old` with `new`.
//!
//! Names are compared by their last dotted component, without call parentheses or a leading
//! `@`, case-insensitively: `pydantic.class_validators.root_validator` and `@root_validator()`
//! are both `root_validator`.

use std::sync::LazyLock;

use compact_str::CompactString;
use regex::Regex;
use rustc_hash::FxHashMap;

/// The most renames one section may state; the rest are ignored, so a forged document cannot
/// grow the table without bound.
const MAX_PER_SECTION: usize = 64;

/// How many words may stand between `use` (or another successor cue) and the new name.
const MAX_CUE_GAP_WORDS: usize = 3;

static CODE_SPAN: LazyLock<Regex> = LazyLock::new(|| {
    // INVARIANT: a constant pattern that compiles (the unit tests run it).
    Regex::new(r"`([^`\n]+)`").expect("a valid pattern")
});

/// A sentence says something is gone or replaced.
static RETIRED: LazyLock<Regex> = LazyLock::new(|| {
    // INVARIANT: a constant pattern that compiles (the unit tests run it).
    Regex::new(r"(?i)\b(deprecated|removed|renamed|replaced|superseded|no longer)\b|→")
        .expect("a valid pattern")
});

/// Where a sentence names the successor: the cue, then up to three words, then a code span
/// (perhaps inside a link).
static SUCCESSOR: LazyLock<Regex> = LazyLock::new(|| {
    let pattern = format!(
        r"(?i)(→|->|\brenamed to|\breplaced (?:with|by)|\bin favou?r of|\buse|\bswitch to|\bequivalent)[\s,:]+(?:[\w'’]+[\s,]+){{0,{MAX_CUE_GAP_WORDS}}}?\[?`"
    );
    // INVARIANT: a constant pattern that compiles (the unit tests run it).
    Regex::new(&pattern).expect("a valid pattern")
});

/// "replaced `old` ... with `new`": the other order of a replacement, the old name first.
static REPLACED_WITH: LazyLock<Regex> = LazyLock::new(|| {
    let pattern = format!(
        r"(?i)\breplaced\b[^`]{{0,40}}`([^`]+)`[^`]{{0,80}}?\bwith\b[\s,]+(?:[\w'’]+[\s,]+){{0,{}}}?\[?`([^`]+)`",
        MAX_CUE_GAP_WORDS + 1
    );
    // INVARIANT: a constant pattern that compiles (the unit tests run it).
    Regex::new(&pattern).expect("a valid pattern")
});

/// A table header cell naming the old side, and one naming the new side.
static OLD_HEADER: LazyLock<Regex> = LazyLock::new(|| {
    // INVARIANT: a constant pattern that compiles (the unit tests run it).
    Regex::new(r"(?i)\b(v\d+|old|before|deprecated|removed|previous|legacy)\b")
        .expect("a valid pattern")
});
static NEW_HEADER: LazyLock<Regex> = LazyLock::new(|| {
    // INVARIANT: a constant pattern that compiles (the unit tests run it).
    Regex::new(r"(?i)\b(v\d+|new|after|replacement|instead|current|now)\b")
        .expect("a valid pattern")
});

/// A table cell that is one code span, perhaps linked: `` `x` ``, `` [`x`](url) ``, `` [`x`][ref] ``.
static CODE_CELL: LazyLock<Regex> = LazyLock::new(|| {
    // INVARIANT: a constant pattern that compiles (the unit tests run it).
    Regex::new(r"^\[?`([^`]+)`\]?(?:\[[^\]]*\]|\([^)]*\))?$").expect("a valid pattern")
});

/// The renames `text` states, as `(old, new)` names in the form [`normalize`] gives, in the
/// order they appear, without repeats.
pub(super) fn extract(text: &str) -> Vec<(String, String)> {
    let mut found: Vec<(String, String)> = Vec::new();
    if !text.contains('`') {
        return found;
    }
    let mut push = |old: &str, new: &str| {
        let (Some(old), Some(new)) = (normalize(old), normalize(new)) else {
            return;
        };
        if found.len() < MAX_PER_SECTION
            && !old.eq_ignore_ascii_case(&new)
            && !found.iter().any(|(o, n)| *o == old && *n == new)
        {
            found.push((old, new));
        }
    };
    if text.contains('|') {
        for (old, new) in table_pairs(text) {
            push(old, new);
        }
    }
    // Most sections retire nothing: one scan for the cue words spares them the sentences.
    if !RETIRED.is_match(text) {
        return found;
    }
    for sentence in sentences(text) {
        if !RETIRED.is_match(&sentence) {
            continue;
        }
        if let Some(replaced) = REPLACED_WITH.captures(&sentence) {
            if let (Some(old), Some(new)) = (replaced.get(1), replaced.get(2)) {
                push(old.as_str(), new.as_str());
            }
        }
        let Some(cue) = SUCCESSOR.find(&sentence) else {
            continue;
        };
        let before: Vec<&str> = CODE_SPAN
            .captures_iter(&sentence[..cue.start()])
            .filter_map(|c| c.get(1).map(|m| m.as_str()))
            .collect();
        // The match ends just past the successor's opening backtick.
        let after = CODE_SPAN
            .captures(&sentence[cue.end() - 1..])
            .and_then(|c| c.get(1).map(|m| m.as_str()));
        let arrow = cue.as_str().starts_with('→') || cue.as_str().starts_with("->");
        let old = if arrow { before.last() } else { before.first() };
        if let (Some(old), Some(new)) = (old, after) {
            push(old, new);
        }
    }
    found
}

/// The code name of a table cell that is one code span.
fn code_cell(cell: &str) -> Option<&str> {
    CODE_CELL
        .captures(cell)
        .and_then(|c| c.get(1))
        .map(|m| m.as_str())
}

/// The pairs of a Markdown table whose header names an old and a new side.
fn table_pairs(text: &str) -> Vec<(&str, &str)> {
    let mut pairs = Vec::new();
    let mut in_table = false;
    let mut mapping = false;
    for line in text.lines() {
        let line = line.trim();
        if !line.starts_with('|') {
            in_table = false;
            continue;
        }
        let cells: Vec<&str> = line.trim_matches('|').split('|').map(str::trim).collect();
        if !in_table {
            in_table = true;
            mapping = cells.len() >= 2
                && OLD_HEADER.is_match(cells[0])
                && NEW_HEADER.is_match(cells[1])
                && cells[0] != cells[1];
            continue;
        }
        if !mapping || cells.len() < 2 {
            continue;
        }
        // The separator row (`| --- | --- |`) has no code and is skipped like any other.
        if let (Some(old), Some(new)) = (code_cell(cells[0]), code_cell(cells[1])) {
            pairs.push((old, new));
        }
    }
    pairs
}

/// The sentences of `text`'s prose: paragraphs and list items with their wrapped lines joined,
/// outside fenced code blocks, cut after `.`, `;` or `:` followed by a space.
fn sentences(text: &str) -> Vec<String> {
    let mut blocks: Vec<String> = Vec::new();
    let mut block = String::new();
    let mut fenced = false;
    let mut flush = |block: &mut String| {
        if !block.is_empty() {
            blocks.push(std::mem::take(block));
        }
    };
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with("```") || trimmed.starts_with("~~~") {
            fenced = !fenced;
            flush(&mut block);
            continue;
        }
        if fenced || trimmed.is_empty() || trimmed.starts_with('|') || trimmed.starts_with('#') {
            flush(&mut block);
            continue;
        }
        let item = trimmed.starts_with("* ")
            || trimmed.starts_with("- ")
            || trimmed.starts_with("+ ")
            || trimmed
                .split_once(". ")
                .is_some_and(|(n, _)| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
        if item {
            flush(&mut block);
        }
        if !block.is_empty() {
            block.push(' ');
        }
        block.push_str(trimmed);
    }
    flush(&mut block);
    let mut sentences = Vec::new();
    for block in blocks {
        let mut start = 0;
        let bytes = block.as_bytes();
        for i in 0..bytes.len().saturating_sub(1) {
            if matches!(bytes[i], b'.' | b';' | b':') && bytes[i + 1].is_ascii_whitespace() {
                sentences.push(block[start..=i].to_string());
                start = i + 1;
            }
        }
        sentences.push(block[start..].to_string());
    }
    sentences
}

/// A code name as renames compare it: without a leading `@` or `.`, cut at the first `(`,
/// `[`, `=` or space, its last dotted component; `None` unless that is an ASCII identifier of
/// at least three characters.
pub(super) fn normalize(name: &str) -> Option<String> {
    let name = name.trim().trim_start_matches(['@', '.']);
    let name = name
        .split(['(', '[', '=', ' ', ','])
        .next()
        .unwrap_or_default()
        .trim_end_matches('.');
    let last = name.rsplit('.').next().unwrap_or_default();
    let mut chars = last.chars();
    let first = chars.next()?;
    let valid = (first.is_ascii_alphabetic() || first == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && last.len() >= 3;
    valid.then(|| last.to_string())
}

/// The words of `query` written as code: holding `_` or a camelCase hump, after `.`, `@` or a
/// backtick, or before `(` or a backtick. Plain words (`copy`, `schema`) are English as often
/// as they are names, so they are not looked up.
pub(super) fn code_words(query: &str) -> Vec<&str> {
    let mut words = Vec::new();
    let is_word = |c: char| c.is_alphanumeric() || c == '_';
    let mut rest = query;
    let mut offset = 0;
    while let Some(start) = rest.find(is_word) {
        let len = rest[start..]
            .find(|c: char| !is_word(c))
            .unwrap_or(rest.len() - start);
        let (at, end) = (offset + start, offset + start + len);
        let word = &query[at..end];
        let before = query[..at].chars().next_back();
        let after = query[end..].chars().next();
        let hump = word
            .as_bytes()
            .windows(2)
            .any(|pair| pair[0].is_ascii_lowercase() && pair[1].is_ascii_uppercase());
        if word.contains('_')
            || hump
            || matches!(before, Some('.' | '@' | '`'))
            || matches!(after, Some('(' | '`'))
        {
            words.push(word);
        }
        offset = end;
        rest = &query[end..];
    }
    words
}

/// One stated rename, held by the index slot of the section that states it.
#[derive(Clone, Debug)]
struct Entry {
    new: CompactString,
    slot: u32,
}

/// The renames the current sections state, by lower-case old name.
#[derive(Clone, Debug, Default)]
pub(super) struct Renames {
    by_old: FxHashMap<CompactString, Vec<Entry>>,
    /// The lower-case old names each slot states, so retiring a section removes its renames.
    by_slot: FxHashMap<u32, Vec<CompactString>>,
}

impl Renames {
    /// Records the renames the section in `slot` states.
    pub(super) fn add(&mut self, slot: u32, pairs: Vec<(String, String)>) {
        if pairs.is_empty() {
            return;
        }
        let mut olds = Vec::with_capacity(pairs.len());
        for (old, new) in pairs {
            let old = CompactString::from(old.to_ascii_lowercase());
            self.by_old.entry(old.clone()).or_default().push(Entry {
                new: new.into(),
                slot,
            });
            olds.push(old);
        }
        self.by_slot.insert(slot, olds);
    }

    /// Forgets the renames of the section in `slot`.
    pub(super) fn remove(&mut self, slot: u32) {
        let Some(olds) = self.by_slot.remove(&slot) else {
            return;
        };
        for old in olds {
            if let Some(entries) = self.by_old.get_mut(&old) {
                entries.retain(|entry| entry.slot != slot);
                if entries.is_empty() {
                    self.by_old.remove(&old);
                }
            }
        }
    }

    /// The renames of the code words of `query` that a section passing `stated_by` states, as
    /// `(old as the query wrote it, new, slot)`, in the query's order and then by slot, one
    /// per old and new name.
    pub(super) fn of_query<'q>(
        &self,
        query: &'q str,
        stated_by: impl Fn(u32) -> bool,
    ) -> Vec<(&'q str, &str, u32)> {
        let mut found: Vec<(&'q str, &str, u32)> = Vec::new();
        if self.by_old.is_empty() {
            return found;
        }
        let mut lower = String::new();
        for word in code_words(query) {
            lower.clear();
            lower.push_str(word);
            lower.make_ascii_lowercase();
            let Some(entries) = self.by_old.get(lower.as_str()) else {
                continue;
            };
            let mut stated: Vec<&Entry> = entries.iter().filter(|e| stated_by(e.slot)).collect();
            stated.sort_by_key(|entry| entry.slot);
            for entry in stated {
                let seen = found.iter().any(|(old, new, _)| {
                    old.eq_ignore_ascii_case(word) && new.eq_ignore_ascii_case(&entry.new)
                });
                if !seen {
                    found.push((word, entry.new.as_str(), entry.slot));
                }
            }
        }
        found
    }

    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.by_old.values().map(Vec::len).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(text: &str) -> Vec<(String, String)> {
        extract(text)
    }

    fn pair(old: &str, new: &str) -> (String, String) {
        (old.to_string(), new.to_string())
    }

    #[test]
    fn a_mapping_table_gives_its_rows() {
        let text = "Method names changed.\n\n\
            | Pydantic V1 | Pydantic V2  |\n\
            | ----------- | ------------ |\n\
            | `copy()` | `model_copy()` |\n\
            | `pydantic.utils.to_camel` | [`pydantic.alias_generators.to_pascal`][ref] |\n\
            | `dict()` | [`model_dump()`](#dump) |\n\
            | `same` | `pydantic.same` |\n";
        assert_eq!(
            pairs(text),
            [
                pair("copy", "model_copy"),
                pair("to_camel", "to_pascal"),
                pair("dict", "model_dump")
            ]
        );
    }

    #[test]
    fn a_table_whose_header_does_not_say_old_and_new_gives_nothing() {
        let text = "| Python type | JSON type |\n| --- | --- |\n| `str` | `string` |\n";
        assert_eq!(pairs(text), []);
        let text = "| Field | Default |\n|---|---|\n| `f1` | `int` |\n";
        assert_eq!(pairs(text), []);
    }

    #[test]
    fn sentences_that_retire_a_name_give_its_successor() {
        let text = "* `allow_population_by_field_name` → `populate_by_name`\n\
            * `@validator` has been deprecated, and should be replaced with\n  \
              [`@field_validator`](validators.md), which provides new features.\n\
            * The `@validate_arguments` decorator has been renamed to `@validate_call`.\n\
            * `Config.schema_extra` was removed in favour of `json_schema_extra`.\n\
            * We have replaced the use of the `__root__` field to specify a \"custom root model\" \n  \
              with a new type called [`RootModel`](models.md#rootmodel).\n";
        assert_eq!(
            pairs(text),
            [
                pair("allow_population_by_field_name", "populate_by_name"),
                pair("validator", "field_validator"),
                pair("validate_arguments", "validate_call"),
                pair("schema_extra", "json_schema_extra"),
                pair("__root__", "RootModel"),
            ]
        );
    }

    #[test]
    fn a_sentence_without_a_retiring_word_or_a_near_successor_gives_nothing() {
        // Says nothing is gone.
        assert_eq!(
            pairs("You can use `model_dump` to get a dict from `Model`."),
            []
        );
        // The code span after `use` is too far from it to be what replaces the old name.
        let text = "The `.json()` method is deprecated, and attempting to use this deprecated \
            method with arguments such as `indent` may lead to confusing errors.";
        assert_eq!(pairs(text), []);
        // Inside a fenced block, a comment is code, not a statement.
        let text = "```py\n# `old_name` was renamed to `new_name`\n```\n";
        assert_eq!(pairs(text), []);
        assert_eq!(pairs("no code at all was removed; use the other"), []);
    }

    #[test]
    fn names_are_compared_by_their_last_component_without_calls() {
        assert_eq!(
            normalize("@root_validator(pre=True)").as_deref(),
            Some("root_validator")
        );
        assert_eq!(
            normalize("pydantic.json.pydantic_encoder").as_deref(),
            Some("pydantic_encoder")
        );
        assert_eq!(normalize(".json()").as_deref(), Some("json"));
        assert_eq!(
            normalize("from_attributes=True").as_deref(),
            Some("from_attributes")
        );
        assert_eq!(normalize("f1"), None);
        assert_eq!(normalize("'UnknownType'"), None);
        assert_eq!(
            normalize("Annotated[<type>, Field(...)]").as_deref(),
            Some("Annotated")
        );
        assert_eq!(normalize(""), None);
        assert_eq!(normalize("é_name"), None);
    }

    #[test]
    fn only_words_written_as_code_are_looked_up() {
        assert_eq!(
            code_words("orm_mode and from_orm don't work; Model.schema() and @validator, `copy`"),
            ["orm_mode", "from_orm", "schema", "validator", "copy"]
        );
        assert_eq!(
            code_words("How do I copy a model to JSON schema?"),
            Vec::<&str>::new()
        );
        assert_eq!(
            code_words("camelCase json(indent=2)"),
            ["camelCase", "json"]
        );
        assert_eq!(code_words(""), Vec::<&str>::new());
        assert_eq!(code_words("ünïcode_wörd («x»)"), ["ünïcode_wörd"]);
    }

    #[test]
    fn a_query_gets_the_renames_its_stating_sections_still_make() {
        let mut renames = Renames::default();
        renames.add(
            3,
            vec![
                pair("orm_mode", "from_attributes"),
                pair("copy", "model_copy"),
            ],
        );
        renames.add(7, vec![pair("ORM_MODE", "from_attributes")]);
        renames.add(9, vec![pair("orm_mode", "model_validate")]);
        assert_eq!(renames.len(), 4);
        let all = |_| true;
        assert_eq!(
            renames.of_query("is Orm_Mode gone? and .copy()", all),
            [
                ("Orm_Mode", "from_attributes", 3),
                ("Orm_Mode", "model_validate", 9),
                ("copy", "model_copy", 3)
            ]
        );
        // Only sections that still state it count (the caller passes the canonical ones).
        assert_eq!(
            renames.of_query("orm_mode", |slot| slot == 7),
            [("orm_mode", "from_attributes", 7)]
        );
        assert_eq!(renames.of_query("copy the model", all), []);
        renames.remove(3);
        renames.remove(3);
        assert_eq!(renames.len(), 2);
        assert_eq!(renames.of_query(".copy()", all), []);
        renames.remove(7);
        renames.remove(9);
        assert_eq!(renames.len(), 0);
        assert!(renames.by_old.is_empty() && renames.by_slot.is_empty());
    }

    proptest::proptest! {
        #[test]
        fn any_text_extracts_without_panicking(text in "(?s).{0,400}") {
            for (old, new) in extract(&text) {
                proptest::prop_assert!(normalize(&old).as_deref() == Some(old.as_str()));
                proptest::prop_assert!(!old.eq_ignore_ascii_case(&new));
            }
            let _ = code_words(&text);
        }

        #[test]
        fn markdownish_text_extracts_without_panicking(
            parts in proptest::collection::vec(
                proptest::prop_oneof![
                    proptest::strategy::Just("`".to_string()),
                    proptest::strategy::Just("| V1 | V2 |\n".to_string()),
                    proptest::strategy::Just(" deprecated ".to_string()),
                    proptest::strategy::Just(" use ".to_string()),
                    proptest::strategy::Just("→".to_string()),
                    proptest::strategy::Just("\n```\n".to_string()),
                    proptest::strategy::Just(". ".to_string()),
                    "[a-z_.()@]{0,12}",
                ],
                0..40,
            )
        ) {
            let text: String = parts.concat();
            let _ = extract(&text);
            let _ = code_words(&text);
        }
    }
}
