//! The embedded, file-backed [`Store`]: one directory per namespace, one file per key.
//!
//! Writes go to a temporary file that is synced and then renamed over the old one, and the directory
//! is synced after, so a crash leaves the old value or the new one. Renames and deletes hold an
//! exclusive lock on the namespace's `.lock` file, and a compare-and-swap holds it from its read to
//! its write, so several processes on one machine can share a store directory safely. A put writes
//! and syncs its temporary file (a name of its own: the process id and a counter) before it takes
//! the lock, so that a large put (a context store's snapshot) does not hold up the small writes
//! beside it (the journal's entries) for the time it takes to reach the disk.

use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use super::{validate_key, Store, ValueReader, ValueWriter};
use crate::error::{StoreError, StoreIoError};

/// A [`Store`] in a directory on the local file system.
#[derive(Debug)]
pub struct FileStore {
    root: PathBuf,
}

/// Numbers the temporary files this process writes, in every store.
static TEMP_FILES: AtomicU64 = AtomicU64::new(0);

const LOCK_FILE: &str = ".lock";
const TEMP_PREFIX: &str = ".tmp-";

impl FileStore {
    /// Opens (creating if needed) a store in the directory `root`.
    pub fn open(root: impl Into<PathBuf>) -> Result<FileStore, StoreError> {
        let root = root.into();
        fs::create_dir_all(&root).map_err(|error| StoreIoError::new(&root, error))?;
        Ok(FileStore { root })
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

    /// Writes a new temporary file in `namespace`'s directory with `write` and syncs it;
    /// returns its path. Needs no lock: no other write, in this process or another, uses its
    /// name. If `write` fails, the file is removed and its error returned (naming the
    /// temporary file, unless the error names another).
    fn write_temp_with(
        &self,
        namespace: &str,
        write: &mut dyn FnMut(&mut File) -> std::io::Result<()>,
    ) -> Result<PathBuf, StoreError> {
        let temp_path = self.temp_path(namespace)?;
        let mut write = || -> std::io::Result<()> {
            let mut temp_file = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(true)
                .open(&temp_path)?;
            write(&mut temp_file)?;
            temp_file.sync_all()
        };
        match write() {
            Ok(()) => Ok(temp_path),
            Err(error) => {
                let _ = fs::remove_file(&temp_path);
                Err(StoreError::io_at(error, &temp_path))
            }
        }
    }

    /// Writes `value` to a new temporary file ([`FileStore::write_temp_with`]).
    fn write_temp(&self, namespace: &str, value: &[u8]) -> Result<PathBuf, StoreError> {
        self.write_temp_with(namespace, &mut |file| file.write_all(value))
    }

    /// A name for a new temporary file in `namespace`'s directory (created if need be): the
    /// process id and a counter, so no other write, in this process or another, uses it.
    fn temp_path(&self, namespace: &str) -> Result<PathBuf, StoreError> {
        let dir = self.namespace_dir(namespace)?;
        fs::create_dir_all(&dir).map_err(|error| StoreIoError::new(&dir, error))?;
        let n_temp = TEMP_FILES.fetch_add(1, Ordering::Relaxed);
        Ok(dir.join(format!("{TEMP_PREFIX}{}-{n_temp}", std::process::id())))
    }

    /// Renames the temporary file `temp_path` ([`FileStore::write_temp`]) over `key`'s record and
    /// syncs the directory; the caller holds the namespace's lock.
    fn install_temp(&self, namespace: &str, key: &str, temp_path: &Path) -> Result<(), StoreError> {
        let path = self.record_path(namespace, key)?;
        let dir = self.namespace_dir(namespace)?;
        let install = || -> std::io::Result<()> {
            fs::rename(temp_path, &path)?;
            sync_dir(&dir)
        };
        install().map_err(|error| {
            let _ = fs::remove_file(temp_path);
            StoreIoError::new(&path, error).into()
        })
    }

    /// Takes the namespace's lock and renames the temporary file `temp_path` over `key`'s record
    /// ([`FileStore::install_temp`]); the file is removed if that fails.
    fn put_temp(&self, namespace: &str, key: &str, temp_path: PathBuf) -> Result<(), StoreError> {
        let _lock = match self.lock_namespace(namespace) {
            Ok(lock) => lock,
            Err(error) => {
                let _ = fs::remove_file(&temp_path);
                return Err(error);
            }
        };
        self.install_temp(namespace, key, &temp_path)
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

/// A record's open file, whose read errors name it.
struct RecordReader {
    file: File,
    path: PathBuf,
}

impl Read for RecordReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.file.read(buf).map_err(|error| {
            std::io::Error::new(error.kind(), StoreIoError::new(&self.path, error))
        })
    }
}

impl Store for FileStore {
    fn get(&self, namespace: &str, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        FileStore::read_record(&self.record_path(namespace, key)?)
    }

    fn put(&self, namespace: &str, key: &str, value: &[u8]) -> Result<(), StoreError> {
        self.record_path(namespace, key)?;
        let temp_path = self.write_temp(namespace, value)?;
        self.put_temp(namespace, key, temp_path)
    }

    fn get_prefix(
        &self,
        namespace: &str,
        key: &str,
        len: usize,
    ) -> Result<Option<(Vec<u8>, u64)>, StoreError> {
        let path = self.record_path(namespace, key)?;
        let read = || -> std::io::Result<(Vec<u8>, u64)> {
            // One open file: its length and its bytes are of the same value, even if a put
            // renames another over it meanwhile.
            let file = File::open(&path)?;
            let whole = file.metadata()?.len();
            let mut prefix = Vec::with_capacity(len.min(usize::try_from(whole).unwrap_or(len)));
            file.take(len as u64).read_to_end(&mut prefix)?;
            Ok((prefix, whole))
        };
        match read() {
            Ok(value) => Ok(Some(value)),
            Err(error) if error.kind() == ErrorKind::NotFound => Ok(None),
            Err(error) => Err(StoreIoError::new(&path, error).into()),
        }
    }

    /// Written to a temporary file, synced and renamed into place as [`Store::put`] is: the
    /// value is never held in memory.
    fn put_with(
        &self,
        namespace: &str,
        key: &str,
        write: &mut dyn FnMut(&mut dyn ValueWriter) -> std::io::Result<()>,
    ) -> Result<(), StoreError> {
        self.record_path(namespace, key)?;
        let temp_path = self.write_temp_with(namespace, &mut |file| write(file))?;
        self.put_temp(namespace, key, temp_path)
    }

    /// The record's file, read as the caller goes: one open file, so its bytes are of one value
    /// even if a put renames another over it meanwhile.
    fn get_reader(&self, namespace: &str, key: &str) -> Result<Option<ValueReader>, StoreError> {
        let path = self.record_path(namespace, key)?;
        let open = || -> std::io::Result<(File, u64)> {
            let file = File::open(&path)?;
            let len = file.metadata()?.len();
            Ok((file, len))
        };
        match open() {
            Ok((file, len)) => Ok(Some(ValueReader {
                reader: Box::new(RecordReader { file, path }),
                len,
            })),
            Err(error) if error.kind() == ErrorKind::NotFound => Ok(None),
            Err(error) => Err(StoreIoError::new(&path, error).into()),
        }
    }

    /// A hard link to `from`'s file, renamed over `to`'s: the bytes are not read or written
    /// again (a file is never changed in place, only replaced, so the two stay apart). Where
    /// the file system has no hard links, the bytes are copied as a put writes them.
    fn copy(&self, namespace: &str, from: &str, to: &str) -> Result<bool, StoreError> {
        let from_path = self.record_path(namespace, from)?;
        self.record_path(namespace, to)?;
        let temp_path = self.temp_path(namespace)?;
        match fs::hard_link(&from_path, &temp_path) {
            Ok(()) => {}
            Err(error) if error.kind() == ErrorKind::NotFound => return Ok(false),
            Err(_) => {
                let Some(value) = FileStore::read_record(&from_path)? else {
                    return Ok(false);
                };
                return self.put(namespace, to, &value).map(|()| true);
            }
        }
        self.put_temp(namespace, to, temp_path.clone())?;
        // Renaming a link over another link to the same file (`to` copied from `from` before,
        // neither replaced since) does nothing and leaves the temporary name, which would keep
        // the file alive after both records moved on: remove it. After a rename that happened,
        // there is nothing there.
        match fs::remove_file(&temp_path) {
            Ok(()) => Ok(true),
            Err(error) if error.kind() == ErrorKind::NotFound => Ok(true),
            Err(error) => Err(StoreIoError::new(&temp_path, error).into()),
        }
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
            Some(value) => {
                let temp_path = self.write_temp(namespace, value)?;
                self.install_temp(namespace, key, &temp_path)?;
            }
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
    fn an_error_reading_a_value_names_its_file() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileStore::open(dir.path()).unwrap();
        // A directory where the record's file should be: it opens, and reading it fails.
        let path = store.record_path("ns", "key").unwrap();
        fs::create_dir_all(&path).unwrap();
        let ValueReader { mut reader, .. } = store.get_reader("ns", "key").unwrap().unwrap();
        let error = reader.read_to_end(&mut Vec::new()).unwrap_err();
        match StoreError::from_io(error, "ns", "key") {
            StoreError::Io(error) => assert_eq!(error.path(), path),
            other => panic!("{other}"),
        }
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

    #[cfg(unix)]
    #[test]
    fn a_copy_links_the_file_and_outlives_its_replacement() {
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().unwrap();
        let store = FileStore::open(dir.path()).unwrap();
        store.put("ns", "snapshot", &[7; 4096]).unwrap();
        assert!(store.copy("ns", "snapshot", "previous").unwrap());
        let inode = |key: &str| fs::metadata(dir.path().join("ns").join(key)).unwrap().ino();
        assert_eq!(inode("snapshot"), inode("previous"));
        // Copied again while both are the same file: no temporary name is left behind.
        assert!(store.copy("ns", "snapshot", "previous").unwrap());
        let names: Vec<String> = fs::read_dir(dir.path().join("ns"))
            .unwrap()
            .map(|entry| entry.unwrap().file_name().into_string().unwrap())
            .filter(|name| name.starts_with(TEMP_PREFIX))
            .collect();
        assert_eq!(names, Vec::<String>::new());
        store.put("ns", "snapshot", b"new").unwrap();
        assert_ne!(inode("snapshot"), inode("previous"));
        assert_eq!(store.get("ns", "previous").unwrap().unwrap(), vec![7; 4096]);
        assert_eq!(store.list("ns").unwrap(), vec!["previous", "snapshot"]);
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
    fn puts_of_one_key_from_two_stores_at_once_leave_one_whole_value() {
        // Two stores on one directory in one process, their temporary files written outside
        // the lock: each must have a name of its own, or one put could rename the other's
        // half-written file.
        let dir = tempfile::tempdir().unwrap();
        let stores = [
            Arc::new(FileStore::open(dir.path()).unwrap()),
            Arc::new(FileStore::open(dir.path()).unwrap()),
        ];
        let threads: Vec<_> = (0..4u8)
            .map(|n| {
                let store = Arc::clone(&stores[usize::from(n % 2)]);
                std::thread::spawn(move || {
                    let value = vec![n; 256 * 1024 + usize::from(n)];
                    for _ in 0..20 {
                        store.put("context", "snapshot", &value).unwrap();
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        let value = stores[0].get("context", "snapshot").unwrap().unwrap();
        let n = value[0];
        assert_eq!(value, vec![n; 256 * 1024 + usize::from(n)]);
        let names: Vec<_> = fs::read_dir(dir.path().join("context"))
            .unwrap()
            .map(|entry| entry.unwrap().file_name())
            .collect();
        assert!(
            names
                .iter()
                .all(|name| !name.to_string_lossy().starts_with(TEMP_PREFIX)),
            "{names:?}"
        );
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
