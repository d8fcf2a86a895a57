//! An in-memory [`Store`], for tests and for processes that keep nothing on disk.

use std::collections::BTreeMap;

use parking_lot::Mutex;

use super::{validate_key, Store};
use crate::error::StoreError;

/// A [`Store`] that lives in memory and is lost with the process.
#[derive(Debug, Default)]
pub struct MemoryStore {
    records: Mutex<BTreeMap<(String, String), Vec<u8>>>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> MemoryStore {
        MemoryStore::default()
    }
}

fn record_key(namespace: &str, key: &str) -> Result<(String, String), StoreError> {
    validate_key(namespace)?;
    validate_key(key)?;
    Ok((namespace.to_string(), key.to_string()))
}

impl Store for MemoryStore {
    fn get(&self, namespace: &str, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let record_key = record_key(namespace, key)?;
        Ok(self.records.lock().get(&record_key).cloned())
    }

    fn put(&self, namespace: &str, key: &str, value: &[u8]) -> Result<(), StoreError> {
        let record_key = record_key(namespace, key)?;
        self.records.lock().insert(record_key, value.to_vec());
        Ok(())
    }

    fn delete(&self, namespace: &str, key: &str) -> Result<bool, StoreError> {
        let record_key = record_key(namespace, key)?;
        Ok(self.records.lock().remove(&record_key).is_some())
    }

    fn list(&self, namespace: &str) -> Result<Vec<String>, StoreError> {
        validate_key(namespace)?;
        Ok(self
            .records
            .lock()
            .keys()
            .filter(|(record_namespace, _)| record_namespace == namespace)
            .map(|(_, key)| key.clone())
            .collect())
    }

    fn compare_and_swap(
        &self,
        namespace: &str,
        key: &str,
        expected: Option<&[u8]>,
        new: Option<&[u8]>,
    ) -> Result<bool, StoreError> {
        let record_key = record_key(namespace, key)?;
        let mut records = self.records.lock();
        if records.get(&record_key).map(Vec::as_slice) != expected {
            return Ok(false);
        }
        match new {
            Some(value) => records.insert(record_key, value.to_vec()),
            None => records.remove(&record_key),
        };
        Ok(true)
    }
}
