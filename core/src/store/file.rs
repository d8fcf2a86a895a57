//! The embedded, file-backed [`Store`]: one directory per namespace, one file per key.
//!
//! Writes go to a temporary file that is synced and then renamed over the old one, and the directory
//! is synced after, so a crash leaves the old value or the new one. Every write and every
//! compare-and-swap holds an exclusive lock on the namespace's `.lock` file, so several processes on
//! one machine can share a store directory safely.

use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use super::{validate_key, Store};
use crate::error::{StoreError, StoreIoError};

/// A [`Store`] in a directory on the local file system.
#[derive(Debug)]
pub struct FileStore {
    root: PathBuf,
    n_temp_files: AtomicU64,
}

const LOCK_FILE: &str = ".lock";
const TEMP_PREFIX: &str = ".tmp-";

impl FileStore {
    /// Opens (creating if needed) a store in the directory `root`.
    pub fn open(root: impl Into<PathBuf>) -> Result<FileStore, StoreError> {
        let root = root.into();
        fs::create_dir_all(&root).map_err(|error| StoreIoError::new(&root, error))?;
        Ok(FileStore {
            root,
            n_temp_files: AtomicU64::new(0),
        })
    }

    /// The directory the store lives in.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn namespace_dir(&self, namespace: &str) -> Result<PathBuf, StoreError> {
        validate_key(namespace)?;
        Ok(self.root.join(namespace))
    }

    fn record_path(&self, namespace: &str, key: &str) -> Result<PathBuf, StoreError> {
        validate_key(key)?;
        Ok(self.namespace_dir(namespace)?.join(key))
    }

    /// Locks `namespace` against writers in this and other processes until the guard drops.
    fn lock_namespace(&self, namespace: &str) -> Result<File, StoreError> {
        let dir = self.namespace_dir(namespace)?;
        fs::create_dir_all(&dir).map_err(|error| StoreIoError::new(&dir, error))?;
        let lock_path = dir.join(LOCK_FILE);
        let lock_file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|error| StoreIoError::new(&lock_path, error))?;
        lock_file
            .lock()
            .map_err(|error| StoreIoError::new(&lock_path, error))?;
        // INVARIANT: the returned file holds the lock; dropping it closes the file and releases it.
        Ok(lock_file)
    }

    fn read_record(path: &Path) -> Result<Option<Vec<u8>>, StoreError> {
        match fs::read(path) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(error) if error.kind() == ErrorKind::NotFound => Ok(None),
            Err(error) => Err(StoreIoError::new(path, error).into()),
        }
    }

    fn write_record(&self, namespace: &str, key: &str, value: &[u8]) -> Result<(), StoreError> {
        let path = self.record_path(namespace, key)?;
        let dir = self.namespace_dir(namespace)?;
        let n_temp = self.n_temp_files.fetch_add(1, Ordering::Relaxed);
        let temp_path = dir.join(format!("{TEMP_PREFIX}{}-{n_temp}", std::process::id()));
        let write = || -> std::io::Result<()> {
            let mut temp_file = File::create(&temp_path)?;
            temp_file.write_all(value)?;
            temp_file.sync_all()?;
            fs::rename(&temp_path, &path)?;
            sync_dir(&dir)
        };
        write().map_err(|error| {
            let _ = fs::remove_file(&temp_path);
            StoreIoError::new(&path, error).into()
        })
    }

    fn remove_record(&self, namespace: &str, key: &str) -> Result<bool, StoreError> {
        let path = self.record_path(namespace, key)?;
        match fs::remove_file(&path) {
            Ok(()) => {
                let dir = self.namespace_dir(namespace)?;
                sync_dir(&dir).map_err(|error| StoreIoError::new(&dir, error))?;
                Ok(true)
            }
            Err(error) if error.kind() == ErrorKind::NotFound => Ok(false),
            Err(error) => Err(StoreIoError::new(&path, error).into()),
        }
    }
}

fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

impl Store for FileStore {
    fn get(&self, namespace: &str, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        FileStore::read_record(&self.record_path(namespace, key)?)
    }

    fn put(&self, namespace: &str, key: &str, value: &[u8]) -> Result<(), StoreError> {
        self.record_path(namespace, key)?;
        let _lock = self.lock_namespace(namespace)?;
        self.write_record(namespace, key, value)
    }

    fn delete(&self, namespace: &str, key: &str) -> Result<bool, StoreError> {
        self.record_path(namespace, key)?;
        let _lock = self.lock_namespace(namespace)?;
        self.remove_record(namespace, key)
    }

    fn list(&self, namespace: &str) -> Result<Vec<String>, StoreError> {
        let dir = self.namespace_dir(namespace)?;
        let entries = match fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(error) if error.kind() == ErrorKind::NotFound => return Ok(vec![]),
            Err(error) => return Err(StoreIoError::new(&dir, error).into()),
        };
        let mut keys = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|error| StoreIoError::new(&dir, error))?;
            // Names that are not valid keys (the lock, temporary files, anything a person put
            // there) are not records.
            if let Some(name) = entry.file_name().to_str() {
                if validate_key(name).is_ok() {
                    keys.push(name.to_string());
                }
            }
        }
        keys.sort();
        Ok(keys)
    }

    fn compare_and_swap(
        &self,
        namespace: &str,
        key: &str,
        expected: Option<&[u8]>,
        new: Option<&[u8]>,
    ) -> Result<bool, StoreError> {
        let path = self.record_path(namespace, key)?;
        let _lock = self.lock_namespace(namespace)?;
        if FileStore::read_record(&path)?.as_deref() != expected {
            return Ok(false);
        }
        match new {
            Some(value) => self.write_record(namespace, key, value)?,
            None => {
                self.remove_record(namespace, key)?;
            }
        }
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn behaves_as_a_store() {
        let dir = tempfile::tempdir().unwrap();
        super::super::conformance::check_store(&FileStore::open(dir.path()).unwrap());
    }

    #[test]
    fn values_survive_reopening_and_leave_no_temp_files() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = FileStore::open(dir.path()).unwrap();
            store.put("approvals", "ap-1", b"pending").unwrap();
        }
        let store = FileStore::open(dir.path()).unwrap();
        assert_eq!(
            store.get("approvals", "ap-1").unwrap().as_deref(),
            Some(&b"pending"[..])
        );
        let names: Vec<String> = fs::read_dir(dir.path().join("approvals"))
            .unwrap()
            .map(|entry| entry.unwrap().file_name().into_string().unwrap())
            .collect();
        assert!(names.iter().all(|name| !name.starts_with(TEMP_PREFIX)));
    }

    #[test]
    fn stray_files_are_not_listed() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileStore::open(dir.path()).unwrap();
        store.put("ns", "real", b"1").unwrap();
        fs::write(dir.path().join("ns").join(".tmp-999-0"), b"half").unwrap();
        fs::write(dir.path().join("ns").join("has space"), b"x").unwrap();
        assert_eq!(store.list("ns").unwrap(), vec!["real"]);
    }

    #[test]
    fn compare_and_swap_lets_exactly_one_racer_win() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(FileStore::open(dir.path()).unwrap());
        store.put("ns", "token", b"unused").unwrap();
        let winners: usize = (0..8)
            .map(|thread_idx| {
                let store = Arc::clone(&store);
                std::thread::spawn(move || {
                    let new = format!("used-by-{thread_idx}");
                    store
                        .compare_and_swap("ns", "token", Some(b"unused"), Some(new.as_bytes()))
                        .unwrap()
                })
            })
            .collect::<Vec<_>>()
            .into_iter()
            .map(|handle| usize::from(handle.join().unwrap()))
            .sum();
        assert_eq!(winners, 1);
    }
}
