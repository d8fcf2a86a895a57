//! Durable state behind the controls: one small storage trait and its embedded backends.
//!
//! Pending approvals (and, with later controls, budgets and documents) are stored through [`Store`],
//! so that a shared backend for a fleet of machines can be added without touching the controls.
//! [`FileStore`] is the embedded, file-backed default; [`MemoryStore`] keeps state in memory, for
//! tests and for processes that want nothing on disk.
//!
//! Values are opaque bytes; each control chooses its own encoding. Namespaces and keys are short
//! names of letters, digits, `-`, `_` and `.`, not starting with `.`.

mod file;
mod memory;
#[cfg(feature = "postgres")]
pub(crate) mod postgres;

pub use file::FileStore;
pub use memory::MemoryStore;
#[cfg(feature = "postgres")]
pub use postgres::PostgresStore;

use std::io::{Read, Seek, Write};
use std::time::{Duration, Instant};

use crate::error::{InvalidKeyError, StoreError};

/// A small key-value store with atomic single-key updates.
pub trait Store: Send + Sync {
    /// The value of `key` in `namespace`, if any.
    fn get(&self, namespace: &str, key: &str) -> Result<Option<Vec<u8>>, StoreError>;

    /// Sets `key` to `value`, atomically: a reader sees the old value or the new one, never a mix,
    /// and a crash leaves one of the two.
    fn put(&self, namespace: &str, key: &str, value: &[u8]) -> Result<(), StoreError>;

    /// Removes `key`; returns whether it existed.
    fn delete(&self, namespace: &str, key: &str) -> Result<bool, StoreError>;

    /// The keys of `namespace`, sorted.
    fn list(&self, namespace: &str) -> Result<Vec<String>, StoreError>;

    /// Sets `key` to `new` (or removes it when `new` is `None`) only if its current value is
    /// `expected` (`None`: absent). Returns whether the swap happened. This is what makes an approval
    /// usable once even when several processes race for it.
    fn compare_and_swap(
        &self,
        namespace: &str,
        key: &str,
        expected: Option<&[u8]>,
        new: Option<&[u8]>,
    ) -> Result<bool, StoreError>;

    /// The first `len` bytes of the value of `key` (all of it, if shorter) and the value's whole
    /// length, if it exists: what a reader of a large value's header needs. The default reads the
    /// whole value; a store that can read part of one reads only those bytes.
    fn get_prefix(
        &self,
        namespace: &str,
        key: &str,
        len: usize,
    ) -> Result<Option<(Vec<u8>, u64)>, StoreError> {
        Ok(self.get(namespace, key)?.map(|mut value| {
            let whole = value.len() as u64;
            value.truncate(len);
            (value, whole)
        }))
    }

    /// A reader of the value of `key` and the value's whole length, if it exists: what a decoder
    /// of a large value needs so as not to hold its bytes beside what it decodes them into. The
    /// reader gives the bytes of one value, even if a put replaces it meanwhile. The default
    /// reads the whole value first; a store that can read one as it goes (a file) does.
    ///
    /// An error while reading is an [`std::io::Error`]; one from a [`FileStore`] carries a
    /// [`StoreIoError`](crate::error::StoreIoError) naming the file, which
    /// [`StoreError::from_io`] takes back out.
    fn get_reader(&self, namespace: &str, key: &str) -> Result<Option<ValueReader>, StoreError> {
        Ok(self.get(namespace, key)?.map(|value| ValueReader {
            len: value.len() as u64,
            reader: Box::new(std::io::Cursor::new(value)),
        }))
    }

    /// Sets `key` to the bytes `write` writes, atomically as [`Store::put`] does: for a value
    /// too large to build in memory first. `write` may seek back over what it wrote, to read it
    /// (to hash it) or write it again (to fill in a header once what follows it is known); if
    /// it fails, nothing is set, and its error is returned as [`StoreError::from_io`] makes it.
    /// The default collects the value in memory and puts it; a [`FileStore`] writes it to the
    /// temporary file it renames into place.
    fn put_with(
        &self,
        namespace: &str,
        key: &str,
        write: &mut dyn FnMut(&mut dyn ValueWriter) -> std::io::Result<()>,
    ) -> Result<(), StoreError> {
        validate_key(namespace)?;
        validate_key(key)?;
        let mut value = std::io::Cursor::new(Vec::new());
        write(&mut value).map_err(|error| StoreError::from_io(error, namespace, key))?;
        self.put(namespace, key, &value.into_inner())
    }

    /// Sets `to` to the value of `from`, atomically as [`Store::put`] does, and returns `true`;
    /// if `from` does not exist, leaves `to` as it was and returns `false`. The default reads the
    /// value and puts it; a store that can copy in place (a file system's hard link) does not
    /// move the bytes.
    fn copy(&self, namespace: &str, from: &str, to: &str) -> Result<bool, StoreError> {
        validate_key(to)?;
        match self.get(namespace, from)? {
            Some(value) => {
                self.put(namespace, to, &value)?;
                Ok(true)
            }
            None => Ok(false),
        }
    }

    /// Returns when record `namespace/key` differs from `seen`, or when `timeout` has passed (the
    /// caller reads the record again either way). The default polls every 50 ms; a store that can
    /// be told of changes (PostgreSQL's `LISTEN`) returns as soon as one happens.
    fn wait_for_change(
        &self,
        namespace: &str,
        key: &str,
        seen: Option<&[u8]>,
        timeout: Duration,
    ) -> Result<(), StoreError> {
        let deadline = Instant::now() + timeout;
        loop {
            if self.get(namespace, key)?.as_deref() != seen {
                return Ok(());
            }
            let now = Instant::now();
            if now >= deadline {
                return Ok(());
            }
            std::thread::sleep((deadline - now).min(Duration::from_millis(50)));
        }
    }
}

/// What [`Store::put_with`] writes a value to: a writer that can go back over what it wrote, to
/// read it or write it again.
pub trait ValueWriter: Read + Write + Seek {}

impl<T: Read + Write + Seek> ValueWriter for T {}

/// A stored value being read, from [`Store::get_reader`].
pub struct ValueReader {
    /// The value's bytes.
    pub reader: Box<dyn Read + Send>,
    /// How many bytes the value has.
    pub len: u64,
}

impl std::fmt::Debug for ValueReader {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("ValueReader")
            .field("len", &self.len)
            .finish_non_exhaustive()
    }
}

/// Checks that `name` can be used as a namespace or key by every backend.
pub fn validate_key(name: &str) -> Result<(), InvalidKeyError> {
    if name.is_empty() {
        return Err(InvalidKeyError::new(name, "it is empty"));
    }
    if name.len() > 200 {
        return Err(InvalidKeyError::new(name, "it is longer than 200 bytes"));
    }
    if name.starts_with('.') {
        return Err(InvalidKeyError::new(name, "it starts with `.`"));
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    {
        return Err(InvalidKeyError::new(
            name,
            "use only letters, digits, `-`, `_` and `.`",
        ));
    }
    Ok(())
}
