//! Errors of the ContextStore.

use std::path::PathBuf;

use thiserror::Error;

use crate::error::StoreError;

/// What went wrong in the ContextStore. Nothing already stored is lost on any of these.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ContextError {
    /// A key that cannot name a document.
    #[error("invalid document key `{key}`: {reason}")]
    InvalidKey {
        /// The key given (lossy, if it was not text).
        key: String,
        /// Why.
        reason: &'static str,
    },
    /// An ingest's key prefix is not a relative folder path.
    #[error("invalid key prefix `{prefix}`: {reason}")]
    InvalidPrefix {
        /// The prefix given.
        prefix: String,
        /// Why.
        reason: &'static str,
    },
    /// Reading a file or directory failed.
    #[error("cannot read `{}`: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// An ingest pattern is not a valid glob.
    #[error("invalid glob `{pattern}`: {reason}")]
    InvalidGlob {
        /// The pattern.
        pattern: String,
        /// Why.
        reason: String,
    },
    /// The snapshot is damaged, truncated or of another format; the store was not changed.
    #[error("the context snapshot `{key}` is unusable: {reason}")]
    CorruptSnapshot {
        /// The snapshot's key in the store.
        key: String,
        /// What is wrong.
        reason: String,
    },
    /// Each journal entry tried was already there: an entry's key names its writer's random
    /// id, so another store drew the same id, or records were put in the folder by hand. The
    /// change was not applied.
    #[error("the journal entry `{key}` was already there each of {attempts} times")]
    JournalContended {
        /// The last entry tried.
        key: String,
        /// How many entries were tried.
        attempts: u32,
    },
    /// A save found other processes' writes each time it had taken in the ones before (it
    /// reloads the folder before saving so as to hold every entry it names); nothing was
    /// written, and the journal still holds every change. Try again when the writing calms.
    #[error("other writers changed the snapshot folder during each of {reloads} attempts to save")]
    SaveContended {
        /// How many times the save reloaded the folder.
        reloads: u32,
    },
    /// `SharedDocuments::join` (feature `postgres`) was given a store opened from a backing
    /// store: the fleet's log is where shared documents are kept, and applying it on top of a
    /// snapshot would put every older version again as a newer one (the config refuses the pair
    /// too).
    #[error(
        "shared documents take a store kept in memory, not one opened from a backing store: the fleet's log holds their history"
    )]
    SharedStoreBacked,
    /// `save` on a store that was not opened from a backing store.
    #[error("this context store was not opened from a backing store, so it has nowhere to save")]
    NoBackingStore,
    /// The backing store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}
