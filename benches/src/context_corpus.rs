//! The pydantic documentation corpus (`shared/corpus/pydantic/`, described by its `README.md`):
//! the drifted repository built from its three releases, and its questions.
//!
//! The drifted repository is a list of steps, each a put or a delete of one key, in the order a
//! store sees them:
//!
//! 1. History: every text file under `v1.10.26/docs/` is put under the key `docs/<path>`, then
//!    every file of `v2.0/docs/`, then of `v2.13.4/docs/`; after each later release, the keys it no
//!    longer has are deleted.
//! 2. Copies beside the current docs: every `v1.10.26/docs/usage/*.md` under `legacy/usage/...`
//!    (stale copies), and the current `docs/concepts/{models,serialization,validators}.md` under
//!    `wiki/concepts/...` (duplicates).
//!
//! A file is text when it is valid UTF-8 without a NUL byte; that takes every file of the three
//! releases' `docs/` folders, the Markdown pages and the Python examples (v1 keeps 149 of them under
//! `docs/examples/`) alike, and would skip images or other binaries if a release had any.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// The corpus's releases, oldest first: the history steps ingest them in this order.
pub const RELEASES: [&str; 3] = ["v1.10.26", "v2.0", "v2.13.4"];

/// The release whose `docs/usage/*.md` pages become the stale `legacy/usage/...` copies.
pub const LEGACY_RELEASE: &str = "v1.10.26";

/// The folder of [`LEGACY_RELEASE`] copied under [`LEGACY_PREFIX`], and the extension its copied
/// files have.
pub const LEGACY_SOURCE_DIR: &str = "usage";
const LEGACY_EXTENSION: &str = "md";

/// The key prefix of the stale copies.
pub const LEGACY_PREFIX: &str = "legacy/";

/// The current pages copied under [`WIKI_PREFIX`] (their keys below `docs/`).
pub const WIKI_PAGES: [&str; 3] = [
    "concepts/models.md",
    "concepts/serialization.md",
    "concepts/validators.md",
];

/// The key prefix of the duplicate copies.
pub const WIKI_PREFIX: &str = "wiki/";

/// The key prefix of the history's documents.
pub const DOCS_PREFIX: &str = "docs/";

/// A corpus that could not be read.
#[derive(Debug, thiserror::Error)]
pub enum CorpusError {
    /// A file or folder could not be read.
    #[error("cannot read `{path}`: {source}")]
    Read {
        /// The path that failed.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// A line of the questions file is not a question.
    #[error("`{path}` line {line_number}: {message}")]
    Question {
        /// The questions file.
        path: PathBuf,
        /// The line, counted from 1.
        line_number: usize,
        /// Why the line is not a question.
        message: String,
    },
    /// A folder the corpus's README promises is missing or empty.
    #[error("`{path}` holds no text files; is `{corpus}` the pydantic corpus?")]
    Missing {
        /// The missing folder.
        path: PathBuf,
        /// The corpus folder.
        corpus: PathBuf,
    },
}

/// One change to the repository.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// A new version of the document at `key`.
    Put {
        /// The document's key, such as `docs/concepts/models.md`.
        key: String,
        /// Its whole text.
        text: String,
    },
    /// The document at `key` is removed.
    Delete {
        /// The document's key.
        key: String,
    },
}

/// The drifted repository: the steps that build it and the tree they leave.
#[derive(Clone, Debug, Default)]
pub struct DriftedRepository {
    /// Every put and delete, in order.
    pub steps: Vec<Step>,
    /// The current tree after all steps: key to text.
    pub current: BTreeMap<String, String>,
    /// Files skipped as not text, relative to the corpus folder.
    pub skipped: Vec<PathBuf>,
}

impl DriftedRepository {
    /// Builds the drifted repository from the corpus folder, as its README describes.
    pub fn build(corpus_dir: &Path) -> Result<Self, CorpusError> {
        let mut repository = DriftedRepository::default();
        for release in RELEASES {
            let release_docs = corpus_dir.join(release).join("docs");
            let files = read_text_tree(&release_docs, corpus_dir, &mut repository.skipped)?;
            if files.is_empty() {
                return Err(CorpusError::Missing {
                    path: release_docs,
                    corpus: corpus_dir.to_path_buf(),
                });
            }
            let release_tree: BTreeMap<String, String> = files
                .into_iter()
                .map(|(relative, text)| (format!("{DOCS_PREFIX}{relative}"), text))
                .collect();
            let retired: Vec<String> = repository
                .current
                .keys()
                .filter(|key| key.starts_with(DOCS_PREFIX) && !release_tree.contains_key(*key))
                .cloned()
                .collect();
            for (key, text) in release_tree {
                repository.put(key, text);
            }
            for key in retired {
                repository.delete(key);
            }
        }

        let legacy_dir = corpus_dir
            .join(LEGACY_RELEASE)
            .join("docs")
            .join(LEGACY_SOURCE_DIR);
        let legacy = read_text_tree(&legacy_dir, corpus_dir, &mut repository.skipped)?;
        let mut n_legacy = 0;
        for (relative, text) in legacy {
            let is_page = !relative.contains('/')
                && Path::new(&relative)
                    .extension()
                    .and_then(|ext| ext.to_str())
                    == Some(LEGACY_EXTENSION);
            if is_page {
                repository.put(
                    format!("{LEGACY_PREFIX}{LEGACY_SOURCE_DIR}/{relative}"),
                    text,
                );
                n_legacy += 1;
            }
        }
        if n_legacy == 0 {
            return Err(CorpusError::Missing {
                path: legacy_dir,
                corpus: corpus_dir.to_path_buf(),
            });
        }

        for page in WIKI_PAGES {
            let source_key = format!("{DOCS_PREFIX}{page}");
            let Some(text) = repository.current.get(&source_key).cloned() else {
                return Err(CorpusError::Missing {
                    path: corpus_dir
                        .join(RELEASES[RELEASES.len() - 1])
                        .join(&source_key),
                    corpus: corpus_dir.to_path_buf(),
                });
            };
            repository.put(format!("{WIKI_PREFIX}{page}"), text);
        }
        Ok(repository)
    }

    fn put(&mut self, key: String, text: String) {
        self.current.insert(key.clone(), text.clone());
        self.steps.push(Step::Put { key, text });
    }

    fn delete(&mut self, key: String) {
        self.current.remove(&key);
        self.steps.push(Step::Delete { key });
    }

    /// Writes the current tree under `root`, one file per key, as a checkout of the repository.
    pub fn write_current_tree(&self, root: &Path) -> Result<(), CorpusError> {
        for (key, text) in &self.current {
            let path = root.join(key);
            if let Some(parent) = path.parent() {
                fs::create_dir_all(parent).map_err(|source| CorpusError::Read {
                    path: parent.to_path_buf(),
                    source,
                })?;
            }
            fs::write(&path, text).map_err(|source| CorpusError::Read { path, source })?;
        }
        Ok(())
    }

    /// The number of bytes of text the steps put.
    pub fn n_bytes_put(&self) -> usize {
        self.steps
            .iter()
            .map(|step| match step {
                Step::Put { text, .. } => text.len(),
                Step::Delete { .. } => 0,
            })
            .sum()
    }
}

/// The text files under `root`, as (path relative to `root` with `/` separators, text), sorted by
/// path. Files that are not text are added to `skipped`, relative to `corpus_dir`.
pub fn read_text_tree(
    root: &Path,
    corpus_dir: &Path,
    skipped: &mut Vec<PathBuf>,
) -> Result<Vec<(String, String)>, CorpusError> {
    let mut files = Vec::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let entries = fs::read_dir(&dir).map_err(|source| CorpusError::Read {
            path: dir.clone(),
            source,
        })?;
        for entry in entries {
            let entry = entry.map_err(|source| CorpusError::Read {
                path: dir.clone(),
                source,
            })?;
            let path = entry.path();
            let file_type = entry.file_type().map_err(|source| CorpusError::Read {
                path: path.clone(),
                source,
            })?;
            if file_type.is_dir() {
                pending.push(path);
                continue;
            }
            let bytes = fs::read(&path).map_err(|source| CorpusError::Read {
                path: path.clone(),
                source,
            })?;
            let relative = path
                .strip_prefix(root)
                .unwrap_or(&path)
                .components()
                .map(|component| component.as_os_str().to_string_lossy())
                .collect::<Vec<_>>()
                .join("/");
            match text_of(bytes) {
                Some(text) => files.push((relative, text)),
                None => skipped.push(path.strip_prefix(corpus_dir).unwrap_or(&path).into()),
            }
        }
    }
    files.sort();
    Ok(files)
}

/// The bytes as text, when they are valid UTF-8 without a NUL byte.
fn text_of(bytes: Vec<u8>) -> Option<String> {
    if bytes.contains(&0) {
        return None;
    }
    String::from_utf8(bytes).ok()
}

/// One question of a questions file (`questions-dev.jsonl` or one in the same format).
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
pub struct Question {
    /// The question's id, such as `dev-01`.
    pub id: String,
    /// What the agent asks.
    pub question: String,
    /// The current document that answers it.
    pub answer_key: String,
    /// The heading of the section of `answer_key` that answers it.
    pub answer_heading: String,
    /// Copies that answer it the old way.
    #[serde(default)]
    pub stale_keys: Vec<String>,
    /// Other current sections that answer it equally well.
    #[serde(default)]
    pub also: Vec<AnswerSection>,
}

/// A section named by its document and heading.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
pub struct AnswerSection {
    /// The document's key.
    pub key: String,
    /// The section's heading.
    pub heading: String,
}

impl Question {
    /// Whether a section of `key` whose heading path (outermost first) is `heading_path` answers the
    /// question canonically: it is in `answer_key` under `answer_heading` (that heading or one of its
    /// sub-headings), or under one of `also`. Headings compare by [`normalize_heading`].
    ///
    /// It does not know whether the section is the current version; the caller checks that.
    pub fn is_answered_by<S: AsRef<str>>(&self, key: &str, heading_path: &[S]) -> bool {
        let under = |answer_key: &str, answer_heading: &str| {
            let wanted = normalize_heading(answer_heading);
            key == answer_key
                && heading_path
                    .iter()
                    .any(|heading| normalize_heading(heading.as_ref()) == wanted)
        };
        under(&self.answer_key, &self.answer_heading)
            || self
                .also
                .iter()
                .any(|section| under(&section.key, &section.heading))
    }

    /// Whether `key` is a stale copy for this question: one of its `stale_keys`, or any key under
    /// [`LEGACY_PREFIX`].
    pub fn is_stale_key(&self, key: &str) -> bool {
        key.starts_with(LEGACY_PREFIX) || self.stale_keys.iter().any(|stale| stale == key)
    }
}

/// A heading's text as the questions name it: without leading `#` marks, without a trailing
/// attribute block such as `{#anchor}`, and with runs of whitespace made one space.
pub fn normalize_heading(heading: &str) -> String {
    let mut text = heading.trim().trim_start_matches('#').trim();
    if text.ends_with('}') {
        if let Some(open) = text.rfind('{') {
            let attributes = &text[open + 1..text.len() - 1];
            if attributes.trim_start().starts_with(['#', '.', ':']) {
                text = text[..open].trim_end();
            }
        }
    }
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Reads a questions file: one JSON question a line; blank lines are skipped.
pub fn load_questions(path: &Path) -> Result<Vec<Question>, CorpusError> {
    let text = fs::read_to_string(path).map_err(|source| CorpusError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse_questions(&text).map_err(|(line_number, message)| CorpusError::Question {
        path: path.to_path_buf(),
        line_number,
        message,
    })
}

/// Parses questions, one JSON object a line; an error names the line (from 1) and why.
pub fn parse_questions(text: &str) -> Result<Vec<Question>, (usize, String)> {
    let mut questions = Vec::new();
    for (line_idx, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let question: Question =
            serde_json::from_str(line).map_err(|error| (line_idx + 1, error.to_string()))?;
        questions.push(question);
    }
    if questions.is_empty() {
        return Err((1, "no questions".to_string()));
    }
    Ok(questions)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_heading(input: &str, expected: &str) {
        assert_eq!(normalize_heading(input), expected, "{input:?}");
    }

    #[test]
    fn headings_normalize() {
        check_heading("Field validators", "Field validators");
        check_heading(
            "`Config` and `model_config` both defined {#config-both}",
            "`Config` and `model_config` both defined",
        );
        check_heading("## Model  copy ", "Model copy");
        check_heading("Set {a, b}", "Set {a, b}");
        check_heading("Attrs { .class }", "Attrs");
    }

    fn question(also: Vec<AnswerSection>) -> Question {
        Question {
            id: "q".into(),
            question: "how?".into(),
            answer_key: "docs/a.md".into(),
            answer_heading: "Answer {#answer}".into(),
            stale_keys: vec!["old/a.md".into()],
            also,
        }
    }

    fn check_answered(key: &str, heading_path: &[&str], expected: bool) {
        let also = vec![AnswerSection {
            key: "docs/b.md".into(),
            heading: "Other".into(),
        }];
        assert_eq!(
            question(also).is_answered_by(key, heading_path),
            expected,
            "{key} {heading_path:?}"
        );
    }

    #[test]
    fn answered_by_the_heading_its_subheadings_or_also() {
        check_answered("docs/a.md", &["Title", "Answer"], true);
        check_answered("docs/a.md", &["Title", "Answer", "Detail"], true);
        check_answered("docs/a.md", &["Title", "Answers"], false);
        check_answered("wiki/a.md", &["Title", "Answer"], false);
        check_answered("docs/b.md", &["Other"], true);
        check_answered("docs/b.md", &["Answer"], false);
    }

    #[test]
    fn stale_keys() {
        let question = question(Vec::new());
        assert!(question.is_stale_key("old/a.md"));
        assert!(question.is_stale_key("legacy/usage/models.md"));
        assert!(!question.is_stale_key("docs/a.md"));
    }

    #[test]
    fn questions_parse_and_bad_lines_are_named() {
        let line = r#"{"id": "d", "question": "q", "answer_key": "k", "answer_heading": "h", "stale_keys": [], "also": [{"key": "k2", "heading": "h2"}]}"#;
        let questions = parse_questions(&format!("{line}\n\n{line}\n")).unwrap();
        assert_eq!(questions.len(), 2);
        assert_eq!(questions[0].also[0].heading, "h2");
        assert_eq!(
            parse_questions(&format!("{line}\nnot json")).unwrap_err().0,
            2
        );
        assert!(parse_questions("\n").is_err());
    }

    #[test]
    fn history_puts_then_deletes_and_copies() {
        let corpus = tempfile::tempdir().unwrap();
        let write = |path: &str, text: &str| {
            let path = corpus.path().join(path);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, text).unwrap();
        };
        write("v1.10.26/docs/usage/models.md", "# v1 models");
        write("v1.10.26/docs/examples/a.py", "print(1)");
        write("v1.10.26/docs/logo.png", "\u{0}binary");
        write("v2.0/docs/concepts/models.md", "# v2.0 models");
        write("v2.13.4/docs/concepts/models.md", "# models");
        write("v2.13.4/docs/concepts/serialization.md", "# serialization");
        write("v2.13.4/docs/concepts/validators.md", "# validators");
        let repository = DriftedRepository::build(corpus.path()).unwrap();
        let keys: Vec<&str> = repository.current.keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            [
                "docs/concepts/models.md",
                "docs/concepts/serialization.md",
                "docs/concepts/validators.md",
                "legacy/usage/models.md",
                "wiki/concepts/models.md",
                "wiki/concepts/serialization.md",
                "wiki/concepts/validators.md",
            ]
        );
        assert_eq!(repository.current["wiki/concepts/models.md"], "# models");
        assert_eq!(
            repository.skipped,
            [PathBuf::from("v1.10.26/docs/logo.png")]
        );
        let deletes: Vec<&str> = repository
            .steps
            .iter()
            .filter_map(|step| match step {
                Step::Delete { key } => Some(key.as_str()),
                Step::Put { .. } => None,
            })
            .collect();
        assert_eq!(deletes, ["docs/examples/a.py", "docs/usage/models.md"]);
    }
}
