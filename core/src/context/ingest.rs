//! `ingest_dir`: put a directory's text files, re-index only what changed, retire what is gone.

use std::path::Path;

use globset::{Glob, GlobSet, GlobSetBuilder};

use super::err::ContextError;
use super::model::{DocVersion, IngestReport};
use super::section::is_probably_binary;
use super::store::ContextStore;

fn glob_set(globs: &[&str]) -> Result<Option<GlobSet>, ContextError> {
    if globs.is_empty() {
        return Ok(None);
    }
    let mut builder = GlobSetBuilder::new();
    for pattern in globs {
        let glob = Glob::new(pattern).map_err(|error| ContextError::InvalidGlob {
            pattern: pattern.to_string(),
            reason: error.kind().to_string(),
        })?;
        builder.add(glob);
    }
    builder
        .build()
        .map(Some)
        .map_err(|error| ContextError::InvalidGlob {
            pattern: globs.join(", "),
            reason: error.to_string(),
        })
}

/// Where an ingest puts and deletes documents: a store of its own, or the fleet's shared
/// documents, each with the store that shows what is there now.
pub(super) trait IngestTarget {
    /// The store as it is now: what the ingest compares files with.
    fn view(&self) -> &ContextStore;
    /// Puts `text` as the next version of `key`, noting that it came from `source`.
    fn put_from(&self, key: &str, text: &str, source: &str) -> Result<DocVersion, ContextError>;
    /// Retires `key`; whether it was there.
    fn delete(&self, key: &str) -> Result<bool, ContextError>;
}

impl IngestTarget for ContextStore {
    fn view(&self) -> &ContextStore {
        self
    }

    fn put_from(&self, key: &str, text: &str, source: &str) -> Result<DocVersion, ContextError> {
        ContextStore::put_from(self, key, text, Some(source))
    }

    fn delete(&self, key: &str) -> Result<bool, ContextError> {
        ContextStore::delete(self, key)
    }
}

impl ContextStore {
    /// Puts every text file under `root` whose path relative to `root` matches one of `globs`
    /// (every file if `globs` is empty), keyed by that relative path with `/` separators. Files
    /// named by `.gitignore` and hidden files are left out, as are binaries and files that are not
    /// UTF-8 (listed in the report with why). A file whose content is unchanged is not re-indexed.
    /// Keys ingested from `root` before whose files are gone are deleted. `progress` is called
    /// after each file with the report so far.
    pub fn ingest_dir(
        &self,
        root: &Path,
        globs: &[&str],
        progress: impl FnMut(&IngestReport),
    ) -> Result<IngestReport, ContextError> {
        ingest_into(self, root, globs, progress)
    }
}

/// [`ContextStore::ingest_dir`] into `target`.
pub(super) fn ingest_into(
    target: &impl IngestTarget,
    root: &Path,
    globs: &[&str],
    mut progress: impl FnMut(&IngestReport),
) -> Result<IngestReport, ContextError> {
    let include = glob_set(globs)?;
    let metadata = std::fs::metadata(root).map_err(|source| ContextError::Io {
        path: root.to_path_buf(),
        source,
    })?;
    if !metadata.is_dir() {
        return Err(ContextError::Io {
            path: root.to_path_buf(),
            source: std::io::Error::new(std::io::ErrorKind::NotADirectory, "not a directory"),
        });
    }
    let source = root.to_string_lossy().into_owned();
    let mut report = IngestReport::default();
    let mut seen: std::collections::HashSet<String> = std::collections::HashSet::new();
    let walker = ignore::WalkBuilder::new(root)
        .require_git(false)
        .sort_by_file_name(|a, b| a.cmp(b))
        .build();
    for entry in walker {
        let entry = match entry {
            Ok(entry) => entry,
            Err(error) => {
                report.skipped.push((String::new(), error.to_string()));
                continue;
            }
        };
        if !entry.file_type().is_some_and(|kind| kind.is_file()) {
            continue;
        }
        let relative = entry.path().strip_prefix(root).unwrap_or(entry.path());
        let Some(key) = relative.to_str().map(|key| key.replace('\\', "/")) else {
            let lossy = relative.to_string_lossy().into_owned();
            report.n_files += 1;
            report
                .skipped
                .push((lossy, "the path is not valid UTF-8".to_string()));
            progress(&report);
            continue;
        };
        if include.as_ref().is_some_and(|set| !set.is_match(&key)) {
            continue;
        }
        report.n_files += 1;
        // A file that is there is never deleted from the store, even if it cannot be read now.
        seen.insert(key.clone());
        match std::fs::read(entry.path()) {
            Err(error) => report.skipped.push((key.clone(), error.to_string())),
            Ok(bytes) if is_probably_binary(&bytes) => {
                report
                    .skipped
                    .push((key.clone(), "binary or not UTF-8".to_string()));
            }
            Ok(bytes) => {
                let text = String::from_utf8_lossy(&bytes);
                let before = target.view().get(&key).map(|doc| doc.version.version);
                let version = target.put_from(&key, &text, &source)?;
                if before == Some(version.version) {
                    report.n_unchanged += 1;
                } else {
                    report.n_changed += 1;
                    report.bytes += bytes.len() as u64;
                }
            }
        }
        progress(&report);
    }
    for key in target.view().keys_from(&source) {
        if !seen.contains(&key) && target.delete(&key)? {
            report.deleted.push(key);
        }
    }
    target.view().shared.state.write().merge_index();
    Ok(report)
}
