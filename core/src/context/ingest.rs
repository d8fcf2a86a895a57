//! `ingest_dir`: put a directory's text files, re-index only what changed, retire what is gone.

use std::path::Path;

use globset::{Glob, GlobSet, GlobSetBuilder};

use super::ahead::in_order;
use super::err::ContextError;
use super::model::{DocVersion, IngestReport};
use super::section::is_probably_binary;
use super::store::{validate_key, ContextStore, Journaled, Load, PutPlan};

/// An ingest prepares at most this many files ahead of the one it is putting.
const FILES_AHEAD: usize = 32;

/// A target that prepares nothing ahead (the fleet's shared documents) is given the files in
/// batches of at most this many, or [`BATCH_BYTES`], whichever comes first.
const BATCH_FILES: usize = 32;
const BATCH_BYTES: u64 = 8 << 20;

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

/// The start of the keys of an ingest keyed under `prefix`: the folder path with `/` separators
/// and a `/` after it (`docs` and `docs/` give `docs/`), or nothing for an empty prefix. A prefix
/// is a relative folder path: an absolute one, or one with an empty, `.` or `..` part, is an error.
fn key_prefix(prefix: &str) -> Result<String, ContextError> {
    let invalid = |reason| ContextError::InvalidPrefix {
        prefix: prefix.to_string(),
        reason,
    };
    let normalized = prefix.replace('\\', "/");
    if normalized.is_empty() {
        return Ok(String::new());
    }
    let trimmed = normalized.strip_suffix('/').unwrap_or(&normalized);
    if trimmed.is_empty() {
        return Err(invalid("it is a relative folder path, not `/`"));
    }
    if trimmed.starts_with('/') || trimmed.contains('\0') {
        return Err(invalid("it is a relative folder path"));
    }
    if trimmed
        .split('/')
        .any(|part| part.is_empty() || part == "." || part == "..")
    {
        return Err(invalid(
            "it is a folder path without empty, `.` or `..` parts",
        ));
    }
    Ok(format!("{trimmed}/"))
}

/// Where an ingest puts and deletes documents: a store of its own, or the fleet's shared
/// documents, each with the store that shows what is there now.
pub(super) trait IngestTarget {
    /// The store as it is now: what the ingest compares files with.
    fn view(&self) -> &ContextStore;
    /// Puts each of `files` (key and text) as the next version of its key, in order, noting
    /// that it came from `source`; the version each is at after it (a text that is the current
    /// one makes no version).
    fn put_batch(
        &self,
        files: &[(&str, &str)],
        source: &str,
    ) -> Result<Vec<DocVersion>, ContextError>;
    /// Retires `key`; whether it was there.
    fn delete(&self, key: &str) -> Result<bool, ContextError>;
    /// The store to prepare puts in on other threads ([`ContextStore::plan_put`]) and apply
    /// in order, if this target's puts can be split so.
    fn local(&self) -> Option<&ContextStore> {
        None
    }
    /// Whether the puts applied to [`IngestTarget::local`] are journaled.
    fn journaled(&self) -> Journaled {
        Journaled::No
    }
}

/// A store of this process as an ingest's target. Its ingest does not journal its changes
/// (it saves a snapshot at its end), unless it is done again because the first one's changes
/// were dropped when the store took in the folder's state: then each change is journaled, as a
/// put is.
struct Local<'a> {
    store: &'a ContextStore,
    journaled: Journaled,
}

impl IngestTarget for Local<'_> {
    fn view(&self) -> &ContextStore {
        self.store
    }

    fn put_batch(
        &self,
        files: &[(&str, &str)],
        source: &str,
    ) -> Result<Vec<DocVersion>, ContextError> {
        files
            .iter()
            .map(|&(key, text)| {
                ContextStore::put_from(self.store, key, text, Some(source), self.journaled)
            })
            .collect()
    }

    fn delete(&self, key: &str) -> Result<bool, ContextError> {
        self.store.delete_from(key, self.journaled)
    }

    fn local(&self) -> Option<&ContextStore> {
        Some(self.store)
    }

    fn journaled(&self) -> Journaled {
        self.journaled
    }
}

impl ContextStore {
    /// Puts every text file under `root` whose path relative to `root` matches one of `globs`
    /// (every file if `globs` is empty), keyed by that relative path with `/` separators. Files
    /// named by `.gitignore` and hidden files are left out, as are binaries, files that are not
    /// UTF-8 and paths too long for a key (over 1,024 bytes), listed in the report with why. A
    /// file whose content is unchanged is not re-indexed.
    /// Keys ingested from `root` before whose files are gone are deleted. `progress` is called
    /// after each file with the report so far.
    ///
    /// A store opened from a backing store does not journal an ingest's puts and deletes file by
    /// file: it saves a snapshot when an ingest that changed something ends (an ingest cut short
    /// is done again by the next one, from the files). If another process wrote to the folder
    /// meanwhile, taking that in drops the ingest's changes: the ingest is then done again,
    /// journaling each change, and the report is the second one's.
    pub fn ingest_dir(
        &self,
        root: &Path,
        globs: &[&str],
        progress: impl FnMut(&IngestReport),
    ) -> Result<IngestReport, ContextError> {
        self.ingest_dir_as(root, "", globs, progress)
    }

    /// [`ContextStore::ingest_dir`], keying each file by `prefix`, a relative folder path, and its
    /// path relative to `root`: `root` ingested as `docs` keys its `auth.md` `docs/auth.md`, the
    /// path a policy's rules name when `root` is the workspace's `docs/` folder (a session scoped
    /// by the policy judges each document at its key as a path under the policy's root). The
    /// globs still match paths relative to `root`. An absolute prefix, or one with an empty, `.`
    /// or `..` part, is [`ContextError::InvalidPrefix`], before anything is read.
    pub fn ingest_dir_as(
        &self,
        root: &Path,
        prefix: &str,
        globs: &[&str],
        mut progress: impl FnMut(&IngestReport),
    ) -> Result<IngestReport, ContextError> {
        let reloads = self.reloads();
        let unjournaled = Local {
            store: self,
            journaled: Journaled::No,
        };
        let report = ingest_into(&unjournaled, root, prefix, globs, &mut progress)?;
        if !report.changed_anything() {
            return Ok(report);
        }
        self.save_if_backed()?;
        if self.reloads() == reloads {
            return Ok(report);
        }
        // Another process wrote to the folder during the ingest, and the store took the
        // folder's state in (in this save, or in a refresh or another save meanwhile), without
        // the ingest's changes.
        let journaling = Local {
            store: self,
            journaled: Journaled::Yes,
        };
        let report = ingest_into(&journaling, root, prefix, globs, progress)?;
        self.save_if_backed()?;
        Ok(report)
    }
}

/// [`ContextStore::ingest_dir`] into `target`.
pub(super) fn ingest_into(
    target: &impl IngestTarget,
    root: &Path,
    prefix: &str,
    globs: &[&str],
    mut progress: impl FnMut(&IngestReport),
) -> Result<IngestReport, ContextError> {
    let prefix = key_prefix(prefix)?;
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
    // The walk is cheap; reading and preparing the files is not, so it is done first and the
    // files then go through `put_files` in walk order.
    let mut files: Vec<(String, std::path::PathBuf)> = Vec::new();
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
        let key = format!("{prefix}{key}");
        // A path that cannot be a key (longer than a key may be) is skipped with why, as an
        // unreadable file is, instead of failing the ingest of every other file.
        if let Err(ContextError::InvalidKey { reason, .. }) = validate_key(&key) {
            report.n_files += 1;
            report
                .skipped
                .push((key, format!("its path cannot be a key: {reason}")));
            progress(&report);
            continue;
        }
        // A file that is there is never deleted from the store, even if it cannot be read now.
        seen.insert(key.clone());
        files.push((key, entry.into_path()));
    }
    let ingested = put_files(target, &files, &source, &mut report, &mut progress).and_then(|()| {
        for key in target.view().keys_from(&source) {
            if !seen.contains(&key) && target.delete(&key)? {
                report.deleted.push(key);
            }
        }
        Ok(())
    });
    match ingested {
        Ok(()) => {
            target.view().compact();
            Ok(report)
        }
        Err(error) => {
            // Its puts merged as a bulk load's do: what a put would have merged by now is.
            target.view().merge_if_due();
            Err(error)
        }
    }
}

/// What reading one file gave, before it is put.
enum Loaded<'a> {
    Failed(String),
    Binary,
    /// The text and its size in bytes, for a target that prepares nothing ahead.
    Text(String, u64),
    /// The local store that prepared it, what it made of it, and its size in bytes.
    Planned(&'a ContextStore, Result<PutPlan, ContextError>, u64),
}

/// Reads one file and, when `local` is given, prepares its put there.
fn load<'a>(path: &Path, key: &str, local: Option<&'a ContextStore>) -> Loaded<'a> {
    match std::fs::read(path) {
        Err(error) => Loaded::Failed(error.to_string()),
        Ok(bytes) if is_probably_binary(&bytes) => Loaded::Binary,
        Ok(bytes) => {
            let n_bytes = bytes.len() as u64;
            let text = match String::from_utf8(bytes) {
                Ok(text) => text,
                Err(error) => String::from_utf8_lossy(error.as_bytes()).into_owned(),
            };
            match local {
                Some(store) => Loaded::Planned(store, store.plan_put(key, &text), n_bytes),
                None => Loaded::Text(text, n_bytes),
            }
        }
    }
}

/// Puts `files` (key and path) into `target` in order, counting them in `report` and calling
/// `progress` after each. For a local store, other threads read and prepare up to
/// [`FILES_AHEAD`] files ahead of the one being put (splitting, counting tokens, signing and
/// analysing are most of an ingest's work, and need no lock); the puts themselves, and so the
/// versions and markers, come in the same order as with one thread. Another target is given the
/// files in batches ([`IngestTarget::put_batch`]), read on other threads meanwhile.
fn put_files(
    target: &impl IngestTarget,
    files: &[(String, std::path::PathBuf)],
    source: &str,
    report: &mut IngestReport,
    progress: &mut impl FnMut(&IngestReport),
) -> Result<(), ContextError> {
    let mut batch = Batch {
        target,
        source,
        files: Vec::new(),
    };
    let local = target.local();
    in_order(
        files,
        FILES_AHEAD,
        |(key, path)| load(path, key, local),
        |(key, _), loaded| {
            if let Loaded::Text(text, n_bytes) = loaded {
                return batch.push(key, text, n_bytes, report, progress);
            }
            // What comes after a batch is counted after it, in walk order.
            batch.put(report, progress)?;
            report.n_files += 1;
            match loaded {
                Loaded::Text(..) => {}
                Loaded::Failed(reason) => report.skipped.push((key.to_string(), reason)),
                Loaded::Binary => report
                    .skipped
                    .push((key.to_string(), "binary or not UTF-8".to_string())),
                Loaded::Planned(store, plan, n_bytes) => match plan? {
                    PutPlan::Unchanged(_) => report.n_unchanged += 1,
                    PutPlan::Prepared(prepared) => {
                        store.apply_put(*prepared, Some(source), target.journaled(), Load::Bulk)?;
                        report.n_changed += 1;
                        report.bytes += n_bytes;
                    }
                },
            }
            progress(report);
            Ok(())
        },
    )?;
    batch.put(report, progress)
}

/// Texts read for a target that takes them in batches ([`IngestTarget::put_batch`]): key,
/// text and size in bytes, in walk order.
struct Batch<'a, T> {
    target: &'a T,
    source: &'a str,
    files: Vec<(String, String, u64)>,
}

impl<T: IngestTarget> Batch<'_, T> {
    /// Adds a file, and puts the batch once it holds [`BATCH_FILES`] or [`BATCH_BYTES`].
    fn push(
        &mut self,
        key: &str,
        text: String,
        n_bytes: u64,
        report: &mut IngestReport,
        progress: &mut impl FnMut(&IngestReport),
    ) -> Result<(), ContextError> {
        self.files.push((key.to_string(), text, n_bytes));
        let bytes: u64 = self.files.iter().map(|(_, _, n_bytes)| n_bytes).sum();
        if self.files.len() >= BATCH_FILES || bytes >= BATCH_BYTES {
            self.put(report, progress)?;
        }
        Ok(())
    }

    /// Puts the files waiting, if any, and counts each in `report`, calling `progress` after it.
    fn put(
        &mut self,
        report: &mut IngestReport,
        progress: &mut impl FnMut(&IngestReport),
    ) -> Result<(), ContextError> {
        if self.files.is_empty() {
            return Ok(());
        }
        let files = std::mem::take(&mut self.files);
        let view = self.target.view();
        let before: Vec<Option<u64>> = files
            .iter()
            .map(|(key, _, _)| view.current_version(key))
            .collect();
        let texts: Vec<(&str, &str)> = files
            .iter()
            .map(|(key, text, _)| (key.as_str(), text.as_str()))
            .collect();
        let versions = self.target.put_batch(&texts, self.source)?;
        for (((_, _, n_bytes), before), version) in files.iter().zip(before).zip(versions) {
            report.n_files += 1;
            if before == Some(version.version) {
                report.n_unchanged += 1;
            } else {
                report.n_changed += 1;
                report.bytes += n_bytes;
            }
            progress(report);
        }
        Ok(())
    }
}
