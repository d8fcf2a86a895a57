//! Errors shared by every control: events, storage and plugins.
//!
//! Each control has its own error enums beside it (`policy/err.rs`, ...); this file holds the ones
//! that belong to the shared pieces. Variants wrap structs with private fields and accessors, so that
//! their details can grow without a breaking release.

use std::path::{Path, PathBuf};

use thiserror::Error;

/// Bytes that are not a valid encoded [`Event`](crate::Event).
#[derive(Clone, Debug, Error, PartialEq, Eq)]
#[error("malformed event: {reason}")]
pub struct EventDecodeError {
    reason: String,
}

impl EventDecodeError {
    pub(crate) fn new(reason: impl Into<String>) -> EventDecodeError {
        EventDecodeError {
            reason: reason.into(),
        }
    }

    /// Why the bytes could not be decoded.
    pub fn reason(&self) -> &str {
        &self.reason
    }
}

/// A failure of the durable store behind the controls.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum StoreError {
    /// Reading or writing the backing storage failed.
    #[error(transparent)]
    Io(#[from] StoreIoError),
    /// A stored record could not be decoded; it is left in place, untouched.
    #[error(transparent)]
    Corrupt(#[from] StoreCorruptError),
    /// A namespace or key that the store cannot hold (empty, or with characters it does not allow).
    #[error(transparent)]
    InvalidKey(#[from] InvalidKeyError),
    /// The database server failed, or could not be reached.
    #[error(transparent)]
    Database(#[from] DatabaseError),
}

impl StoreError {
    /// An I/O error of reading or writing `namespace/key` as a stream
    /// ([`Store::get_reader`](crate::Store::get_reader), [`Store::put_with`](crate::Store::put_with)):
    /// the [`StoreIoError`] in it (a [`FileStore`](crate::FileStore)'s, naming the file), or one
    /// naming the record.
    pub fn from_io(error: std::io::Error, namespace: &str, key: &str) -> StoreError {
        StoreError::io_at(error, Path::new(&format!("{namespace}/{key}")))
    }

    /// The [`StoreIoError`] in `error`, or one naming `path`.
    pub(crate) fn io_at(error: std::io::Error, path: &Path) -> StoreError {
        if !error
            .get_ref()
            .is_some_and(|inner| inner.is::<StoreIoError>())
        {
            return StoreError::Io(StoreIoError::new(path, error));
        }
        let kind = error.kind();
        match error
            .into_inner()
            .map(|inner| inner.downcast::<StoreIoError>())
        {
            Some(Ok(io)) => StoreError::Io(*io),
            // Not reached: the check above saw a `StoreIoError` inside.
            _ => StoreError::Io(StoreIoError::new(path, kind.into())),
        }
    }
}

/// The database server behind a store failed, or could not be reached. Nothing was written by the
/// failed operation; a store reconnects on its next call.
#[derive(Debug, Error)]
#[error("database `{target}` failed: {reason}")]
pub struct DatabaseError {
    target: String,
    reason: String,
    connection: bool,
}

impl DatabaseError {
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    pub(crate) fn new(target: &str, reason: impl Into<String>, connection: bool) -> DatabaseError {
        DatabaseError {
            target: target.to_string(),
            reason: reason.into(),
            connection,
        }
    }

    /// The server, as the connection URL names it (without its password).
    pub fn target(&self) -> &str {
        &self.target
    }

    /// What went wrong.
    pub fn reason(&self) -> &str {
        &self.reason
    }

    /// Whether the connection was lost or could not be made (a retry may succeed), rather than the
    /// server refusing the statement.
    pub fn is_connection(&self) -> bool {
        self.connection
    }
}

/// Reading or writing the backing storage failed.
#[derive(Debug, Error)]
#[error("store i/o failed on `{}`: {source}", path.display())]
pub struct StoreIoError {
    path: PathBuf,
    #[source]
    source: std::io::Error,
}

impl StoreIoError {
    pub(crate) fn new(path: &Path, source: std::io::Error) -> StoreIoError {
        StoreIoError {
            path: path.to_path_buf(),
            source,
        }
    }

    /// The file or directory the operation was on.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// A stored record could not be decoded.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
#[error("stored record `{namespace}/{key}` is corrupt: {reason}")]
pub struct StoreCorruptError {
    namespace: String,
    key: String,
    reason: String,
}

impl StoreCorruptError {
    /// A record `namespace/key` that could not be decoded, and why.
    pub fn new(namespace: &str, key: &str, reason: impl Into<String>) -> StoreCorruptError {
        StoreCorruptError {
            namespace: namespace.to_string(),
            key: key.to_string(),
            reason: reason.into(),
        }
    }

    /// The namespace of the corrupt record.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// The key of the corrupt record.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// Why it could not be decoded.
    pub fn reason(&self) -> &str {
        &self.reason
    }
}

/// A namespace or key the store cannot hold.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
#[error("invalid store key `{key}`: {reason}")]
pub struct InvalidKeyError {
    key: String,
    reason: &'static str,
}

impl InvalidKeyError {
    pub(crate) fn new(key: &str, reason: &'static str) -> InvalidKeyError {
        InvalidKeyError {
            key: key.to_string(),
            reason,
        }
    }

    /// The rejected namespace or key.
    pub fn key(&self) -> &str {
        &self.key
    }
}

/// Installing a plugin failed.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum PluginError {
    /// A plugin with the same name is already installed.
    #[error("a plugin named `{0}` is already installed")]
    DuplicateName(String),
    /// The plugin's name is empty or has characters other than letters, digits, `-`, `_`, `.`.
    #[error("invalid plugin name `{0}`: use letters, digits, `-`, `_` and `.`")]
    InvalidName(String),
}
