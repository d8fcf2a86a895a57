//! Shared documents: one document history for a whole fleet, kept in PostgreSQL.
//!
//! Every put and delete is appended to `fourfold_document_log`, in one order for everybody (the
//! append holds an advisory lock, so the order of the sequence numbers is the order of the
//! commits). Each process keeps its own [`ContextStore`] (its index, its sessions) and applies
//! the log to it in that order: on joining, then whenever the server notifies a new entry
//! (`LISTEN fourfold_documents`), and at least every half second in case a notification was
//! missed. Since every process applies the same puts in the same order, a document has the same
//! version numbers everywhere, and an agent is served the current version within moments of
//! the put, whichever machine it runs on.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use parking_lot::Mutex;
use postgres::fallible_iterator::FallibleIterator;

use super::ahead::in_order;
use super::err::ContextError;
use super::ingest::{ingest_into, IngestTarget};
use super::model::{DocVersion, IngestReport};
use super::store::{validate_key, validate_keys, ContextStore, Journaled, PUTS_AHEAD};
use crate::store::postgres::Connection;
use crate::store::PostgresStore;

const CHANNEL: &str = "fourfold_documents";

/// The notification an append sends on [`CHANNEL`].
const NOTIFY: &str = "NOTIFY fourfold_documents";
/// A key for `pg_advisory_xact_lock` while appending ("fdoc").
const APPEND_LOCK: i64 = 0x6664_6f63;
/// How often the follower looks for entries even without a notification.
const POLL: Duration = Duration::from_millis(500);

/// How many entries of the log a process reads, and holds in memory, at a time when it applies
/// them.
const LOG_PAGE: i64 = 512;

/// A process's [`ContextStore`] joined to the fleet's shared document history.
pub struct SharedDocuments {
    inner: Arc<Inner>,
    follower: Option<JoinHandle<()>>,
}

struct Inner {
    store: Arc<PostgresStore>,
    context: ContextStore,
    // INVARIANT: the last log entry applied to `context`; entries are applied in order, one
    // applier at a time (this lock), so `context` is always a prefix of the log.
    applied: Mutex<i64>,
    stop: AtomicBool,
}

impl std::fmt::Debug for SharedDocuments {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedDocuments")
            .field("store", &self.inner.store)
            .field("applied", &*self.inner.applied.lock())
            .finish()
    }
}

impl SharedDocuments {
    /// Applies the whole shared history to `context` and compacts its index
    /// ([`ContextStore::compact`]), then keeps it current on a thread of its own until this value
    /// is dropped.
    pub fn join(
        store: Arc<PostgresStore>,
        context: ContextStore,
    ) -> Result<SharedDocuments, ContextError> {
        // The follower's puts are not journaled: a store kept in a folder would apply the log
        // again over its snapshot at the next join, and drop those puts at a reload.
        if context.shared.persist.is_some() {
            return Err(ContextError::SharedStoreBacked);
        }
        let inner = Arc::new(Inner {
            store,
            context,
            applied: Mutex::new(0),
            stop: AtomicBool::new(false),
        });
        inner.refresh()?;
        // The history came in as puts, into the index's delta segment: fold it in before the
        // first ask, as an ingest does.
        inner.context.compact();
        let follower_inner = Arc::clone(&inner);
        let follower = std::thread::Builder::new()
            .name("fourfold-documents".into())
            .spawn(move || follow(&follower_inner))
            .map_err(|error| ContextError::Io {
                path: "fourfold-documents thread".into(),
                source: error,
            })?;
        Ok(SharedDocuments {
            inner,
            follower: Some(follower),
        })
    }

    /// The process's store, kept current.
    pub fn context(&self) -> &ContextStore {
        &self.inner.context
    }

    /// Puts `text` as the next version of `key` for the whole fleet; returns the version as this
    /// process applied it (every process applies the same).
    pub fn put(&self, key: &str, text: &str) -> Result<DocVersion, ContextError> {
        self.put_from(key, text, None)
    }

    /// Puts several documents, `(key, text)` each, for the whole fleet, in their order: the log
    /// gets them in one transaction, next to each other (every process applies them together,
    /// with no other process's entry between them) or not at all. Returns each document's
    /// version as this process applied it, as [`ContextStore::put_many`] does; the puts are
    /// prepared on every core. Every key is checked before anything is appended: an invalid key
    /// appends nothing.
    pub fn put_many<K, T>(&self, documents: &[(K, T)]) -> Result<Vec<DocVersion>, ContextError>
    where
        K: AsRef<str> + Sync,
        T: AsRef<str> + Sync,
    {
        validate_keys(documents)?;
        let puts: Vec<(&str, &str)> = documents
            .iter()
            .map(|(key, text)| (key.as_ref(), text.as_ref()))
            .collect();
        self.put_all(&puts, None)
    }

    /// Appends `puts` (key and text, from `source`) to the log in one transaction and applies
    /// the log through them; the version each made. The keys are the caller's to check.
    fn put_all(
        &self,
        puts: &[(&str, &str)],
        source: Option<&str>,
    ) -> Result<Vec<DocVersion>, ContextError> {
        if puts.is_empty() {
            return Ok(Vec::new());
        }
        // The lock is held from the append to the apply, so that the follower does not apply
        // these entries first and this call knows the version each made. The lock is taken
        // before a connection, as `refresh_to` takes it.
        let mut applied = self.inner.applied.lock();
        let mut client = self.inner.store.client()?;
        let seqs = self.inner.append_many(
            &mut client,
            puts.iter().map(|&(key, text)| (key, Some(text), source)),
        )?;
        let mut versions: Vec<Option<DocVersion>> = vec![None; puts.len()];
        self.inner
            .apply_log(&mut client, &mut applied, |seq, version| {
                if let Ok(idx) = seqs.binary_search(&seq) {
                    versions[idx] = Some(version);
                }
            })?;
        versions
            .into_iter()
            .zip(puts)
            .map(|(version, (key, _))| {
                version.ok_or_else(|| ContextError::InvalidKey {
                    key: key.to_string(),
                    reason: "the shared put was not applied",
                })
            })
            .collect()
    }

    fn put_from(
        &self,
        key: &str,
        text: &str,
        source: Option<&str>,
    ) -> Result<DocVersion, ContextError> {
        let seq = self.inner.append(key, Some(text), source)?;
        self.inner.refresh_to(seq)?;
        self.inner
            .context
            .history(key)
            .pop()
            .ok_or_else(|| ContextError::InvalidKey {
                key: key.to_string(),
                reason: "the shared put was not applied",
            })
    }

    /// [`ContextStore::record`] for the whole fleet: appends `text` to the record of `topic`
    /// (`records/<topic>.md`) as it stands after the entries other processes appended, and puts
    /// the result for every process. Threads of one process take turns; two processes recording
    /// the same topic at the same moment each append to the same version, and the later put wins.
    pub fn record(&self, topic: &str, text: &str) -> Result<DocVersion, ContextError> {
        let _recording = self.inner.context.shared.recording.lock();
        self.refresh()?;
        let (key, body) = self.inner.context.record_body(topic, text);
        self.put(&key, &body)
    }

    /// Retires `key` for the whole fleet.
    pub fn delete(&self, key: &str) -> Result<bool, ContextError> {
        let live = self.inner.context.is_live(key);
        let seq = self.inner.append(key, None, None)?;
        self.inner.refresh_to(seq)?;
        Ok(live)
    }

    /// Applies the entries other processes appended since the last refresh; returns how many.
    pub fn refresh(&self) -> Result<u64, ContextError> {
        self.inner.refresh()
    }

    /// [`ContextStore::ingest_dir`] for the whole fleet: puts the text files under `root` that
    /// changed, and retires the documents an ingest of `root` put before whose files are gone
    /// (documents put otherwise, or from another folder, are left alone). A file whose text is
    /// the document's current text appends nothing to the fleet's log.
    pub fn ingest_dir(
        &self,
        root: &Path,
        globs: &[&str],
        progress: impl FnMut(&IngestReport),
    ) -> Result<IngestReport, ContextError> {
        self.ingest_dir_as(root, "", globs, progress)
    }

    /// [`SharedDocuments::ingest_dir`], keying each file by `prefix` and its path relative to
    /// `root`, as [`ContextStore::ingest_dir_as`] does.
    pub fn ingest_dir_as(
        &self,
        root: &Path,
        prefix: &str,
        globs: &[&str],
        progress: impl FnMut(&IngestReport),
    ) -> Result<IngestReport, ContextError> {
        self.refresh()?;
        ingest_into(self, root, prefix, globs, progress)
    }
}

impl IngestTarget for SharedDocuments {
    fn view(&self) -> &ContextStore {
        &self.inner.context
    }

    /// Appends the files that differ from what the fleet has (their text, or where they were
    /// ingested from) in one transaction, so that their puts are prepared on every core as the
    /// log is applied; the others make no entry.
    fn put_batch(
        &self,
        files: &[(&str, &str)],
        source: &str,
    ) -> Result<Vec<DocVersion>, ContextError> {
        let mut versions: Vec<Option<DocVersion>> = Vec::with_capacity(files.len());
        let mut puts = Vec::new();
        for &(key, text) in files {
            validate_key(key)?;
            match self.inner.context.unchanged(key, text) {
                Some(version) if self.inner.context.source_of(key).as_deref() == Some(source) => {
                    versions.push(Some(version));
                }
                _ => {
                    versions.push(None);
                    puts.push((key, text));
                }
            }
        }
        let mut applied = self.put_all(&puts, Some(source))?.into_iter();
        versions
            .into_iter()
            .zip(files)
            .map(|(version, (key, _))| {
                version
                    .or_else(|| applied.next())
                    .ok_or_else(|| ContextError::InvalidKey {
                        key: key.to_string(),
                        reason: "the shared put was not applied",
                    })
            })
            .collect()
    }

    fn delete(&self, key: &str) -> Result<bool, ContextError> {
        SharedDocuments::delete(self, key)
    }
}

impl Drop for SharedDocuments {
    fn drop(&mut self) {
        self.inner.stop.store(true, Ordering::Release);
        if let Some(follower) = self.follower.take() {
            let _ = follower.join();
        }
    }
}

impl Inner {
    fn append(
        &self,
        key: &str,
        text: Option<&str>,
        source: Option<&str>,
    ) -> Result<i64, ContextError> {
        validate_key(key)?;
        let mut client = self.store.client()?;
        let seqs = self.append_many(&mut client, [(key, text, source)])?;
        Ok(seqs[0])
    }

    /// Appends `entries` (key, text or none for a delete, source) to the log in one transaction,
    /// so that they land together and next to each other, or not at all; their sequence
    /// numbers, in order. The keys are the caller's to check.
    fn append_many<'a>(
        &self,
        client: &mut Connection,
        entries: impl IntoIterator<Item = (&'a str, Option<&'a str>, Option<&'a str>)>,
    ) -> Result<Vec<i64>, ContextError> {
        // Prepared on the connection (once per connection), then run in the transaction.
        let (lock, insert, notify) = (|| {
            Ok((
                client.prepared("SELECT pg_advisory_xact_lock($1)")?,
                client.prepared(
                    "INSERT INTO fourfold_document_log (key, text, source) VALUES ($1, $2, $3) \
                     RETURNING seq",
                )?,
                client.prepared(NOTIFY)?,
            ))
        })()
        .map_err(|error| self.store.failed(error))?;
        let mut transaction = client
            .transaction()
            .map_err(|error| self.store.failed(error))?;
        transaction
            .execute(&lock, &[&APPEND_LOCK])
            .map_err(|error| self.store.failed(error))?;
        let mut seqs = Vec::new();
        for (key, text, source) in entries {
            let seq: i64 = transaction
                .query_one(&insert, &[&key, &text, &source])
                .map_err(|error| self.store.failed(error))?
                .get(0);
            seqs.push(seq);
        }
        transaction
            .execute(&notify, &[])
            .map_err(|error| self.store.failed(error))?;
        transaction
            .commit()
            .map_err(|error| self.store.failed(error))?;
        Ok(seqs)
    }

    fn refresh(&self) -> Result<u64, ContextError> {
        self.refresh_to(i64::MAX)
    }

    /// Applies the log in order, up to `seq` at least (or everything there is).
    fn refresh_to(&self, seq: i64) -> Result<u64, ContextError> {
        let mut applied = self.applied.lock();
        if *applied >= seq {
            return Ok(0);
        }
        let mut client = self.store.client()?;
        self.apply_log(&mut client, &mut applied, |_, _| {})
    }

    /// Applies the log's entries after `*applied` in order, as the holder of the `applied` lock,
    /// and calls `each_put` with each put's sequence number and version. The entries are read
    /// [`LOG_PAGE`] at a time, so that a process joining a long history holds one page of it in
    /// memory, not all of it; each page's puts are prepared on every core a few entries ahead of
    /// the one applied (as a journal's are when a store opens), so a process joining a long
    /// history does not split and count it on one thread.
    fn apply_log(
        &self,
        client: &mut Connection,
        applied: &mut i64,
        mut each_put: impl FnMut(i64, DocVersion),
    ) -> Result<u64, ContextError> {
        let mut n_applied = 0;
        let applied_all = loop {
            let entries: Vec<Entry> = client
                .query_cached(
                    "SELECT seq, key, text, source FROM fourfold_document_log WHERE seq > $1 \
                     ORDER BY seq LIMIT $2",
                    &[&*applied, &LOG_PAGE],
                )
                .map_err(|error| self.store.failed(error))?
                .into_iter()
                .map(|row| Entry {
                    seq: row.get(0),
                    key: row.get(1),
                    text: row.get(2),
                    source: row.get(3),
                })
                .collect();
            let page = in_order(
                &entries,
                PUTS_AHEAD,
                |entry| {
                    let text = entry.text.as_deref()?;
                    self.context.prepare_ahead(&entry.key, text)
                },
                |entry, prepared| {
                    match &entry.text {
                        Some(text) => {
                            let version = self.context.put_prepared(
                                &entry.key,
                                text,
                                entry.source.as_deref(),
                                prepared,
                                Journaled::Yes,
                            )?;
                            each_put(entry.seq, version);
                        }
                        None => {
                            self.context.delete(&entry.key)?;
                        }
                    }
                    *applied = entry.seq;
                    n_applied += 1;
                    Ok::<(), ContextError>(())
                },
            );
            if page.is_err() || (entries.len() as i64) < LOG_PAGE {
                break page;
            }
        };
        self.context.merge_if_due();
        applied_all.map(|()| n_applied)
    }
}

/// An entry of the shared log: a put of `text`, or a delete when it has none.
struct Entry {
    seq: i64,
    key: String,
    text: Option<String>,
    source: Option<String>,
}

/// The follower: waits for notifications (or the poll interval) and applies new entries. A lost
/// connection is retried; the poll keeps the store current meanwhile if the pool still works.
fn follow(inner: &Inner) {
    while !inner.stop.load(Ordering::Acquire) {
        let listener = inner.store.client().ok().and_then(|mut client| {
            client
                .batch_execute(&format!("LISTEN {CHANNEL}"))
                .ok()
                .map(|()| client)
        });
        let Some(mut listener) = listener else {
            std::thread::sleep(POLL);
            let _ = inner.refresh();
            continue;
        };
        while !inner.stop.load(Ordering::Acquire) {
            let waited = listener.notifications().timeout_iter(POLL).next();
            if waited.is_err() {
                break; // the listening connection failed: make a new one
            }
            let _ = inner.refresh();
        }
        // INVARIANT: a pooled connection that listened must not be handed to other work while it
        // still listens.
        let _ = listener.batch_execute(&format!("UNLISTEN {CHANNEL}"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appends_notify_the_channel_followers_listen_on() {
        assert_eq!(NOTIFY, format!("NOTIFY {CHANNEL}"));
    }
}
