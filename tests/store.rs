//! The behaviour every [`Store`] backend must have, checked on each: the embedded ones here, the
//! PostgreSQL one in `fleet` (on a real server).

use std::io::Read;

use fourfold::store::{FileStore, MemoryStore};
use fourfold::{Store, StoreError, ValueReader};

/// Checks `store`, empty, against the contract of [`Store`]: values by namespace and key, compare
/// and swap, prefixes, readers that keep the value they were opened on, streamed writes that set
/// nothing when they fail, copies, deletes, and the keys every backend rejects.
pub(crate) fn check_store(store: &dyn Store) {
    assert_eq!(store.get("ns", "a").unwrap(), None);
    assert_eq!(store.list("ns").unwrap(), Vec::<String>::new());
    store.put("ns", "b", b"2").unwrap();
    store.put("ns", "a", b"1").unwrap();
    store.put("other", "a", b"x").unwrap();
    assert_eq!(store.get("ns", "a").unwrap().as_deref(), Some(&b"1"[..]));
    assert_eq!(store.list("ns").unwrap(), vec!["a", "b"]);
    store.put("ns", "a", b"11").unwrap();
    assert_eq!(store.get("ns", "a").unwrap().as_deref(), Some(&b"11"[..]));

    assert!(!store
        .compare_and_swap("ns", "a", Some(b"1"), Some(b"3"))
        .unwrap());
    assert!(store
        .compare_and_swap("ns", "a", Some(b"11"), Some(b"3"))
        .unwrap());
    assert_eq!(store.get("ns", "a").unwrap().as_deref(), Some(&b"3"[..]));
    assert!(!store.compare_and_swap("ns", "c", Some(b"1"), None).unwrap());
    assert!(store
        .compare_and_swap("ns", "c", None, Some(b"new"))
        .unwrap());
    assert!(!store
        .compare_and_swap("ns", "c", None, Some(b"again"))
        .unwrap());
    assert!(store
        .compare_and_swap("ns", "c", Some(b"new"), None)
        .unwrap());
    assert_eq!(store.get("ns", "c").unwrap(), None);
    // Expecting no value where there is none, and leaving none, succeeds and writes nothing.
    assert!(store.compare_and_swap("ns", "c", None, None).unwrap());
    assert_eq!(store.get("ns", "c").unwrap(), None);

    assert_eq!(
        store.get_prefix("ns", "a", 0).unwrap(),
        Some((Vec::new(), 1))
    );
    store.put("ns", "long", b"0123456789").unwrap();
    assert_eq!(
        store.get_prefix("ns", "long", 4).unwrap(),
        Some((b"0123".to_vec(), 10))
    );
    assert_eq!(
        store.get_prefix("ns", "long", 99).unwrap(),
        Some((b"0123456789".to_vec(), 10))
    );
    assert_eq!(store.get_prefix("ns", "none", 4).unwrap(), None);
    // A reader gives the bytes of the value it was opened on, even once a put replaced it.
    let ValueReader { mut reader, len } = store.get_reader("ns", "long").unwrap().unwrap();
    assert_eq!(len, 10);
    let mut start = [0u8; 4];
    reader.read_exact(&mut start).unwrap();
    store.put("ns", "long", b"another value").unwrap();
    let mut rest = Vec::new();
    reader.read_to_end(&mut rest).unwrap();
    assert_eq!([&start[..], &rest].concat(), b"0123456789");
    store.put("ns", "long", b"0123456789").unwrap();
    assert!(store.get_reader("ns", "none").unwrap().is_none());
    // A value written as a stream, going back to fill in its start and reading it back; a
    // write that fails sets nothing.
    store
        .put_with("ns", "streamed", &mut |out| {
            out.write_all(b"....0123456789")?;
            out.seek(std::io::SeekFrom::Start(4))?;
            let mut read = [0u8; 4];
            out.read_exact(&mut read)?;
            out.seek(std::io::SeekFrom::Start(0))?;
            out.write_all(&read)
        })
        .unwrap();
    assert_eq!(
        store.get("ns", "streamed").unwrap().as_deref(),
        Some(&b"01230123456789"[..])
    );
    let failed = store.put_with("ns", "streamed", &mut |out| {
        out.write_all(b"partial")?;
        Err(std::io::Error::other("stopped"))
    });
    assert!(matches!(failed, Err(StoreError::Io(_))), "{failed:?}");
    assert_eq!(
        store.get("ns", "streamed").unwrap().as_deref(),
        Some(&b"01230123456789"[..])
    );
    assert!(matches!(
        store.put_with("ns", "../x", &mut |_| Ok(())),
        Err(StoreError::InvalidKey(_))
    ));
    assert!(store.delete("ns", "streamed").unwrap());
    assert!(matches!(
        store.get_reader("ns", "../x"),
        Err(StoreError::InvalidKey(_))
    ));
    // A copy is a value of its own: replacing the original leaves it, and a missing original
    // leaves the target as it was.
    assert!(store.copy("ns", "long", "copied").unwrap());
    store.put("ns", "long", b"replaced").unwrap();
    assert_eq!(
        store.get("ns", "copied").unwrap().as_deref(),
        Some(&b"0123456789"[..])
    );
    assert!(store.copy("ns", "long", "copied").unwrap());
    assert_eq!(
        store.get("ns", "copied").unwrap().as_deref(),
        Some(&b"replaced"[..])
    );
    assert!(!store.copy("ns", "none", "copied").unwrap());
    assert_eq!(
        store.get("ns", "copied").unwrap().as_deref(),
        Some(&b"replaced"[..])
    );
    assert!(!store.copy("empty-ns", "none", "copied").unwrap());
    assert!(matches!(
        store.copy("ns", "long", "../x"),
        Err(StoreError::InvalidKey(_))
    ));
    for key in ["long", "copied"] {
        assert!(store.delete("ns", key).unwrap());
    }

    assert!(store.delete("ns", "b").unwrap());
    assert!(!store.delete("ns", "b").unwrap());
    assert_eq!(store.list("ns").unwrap(), vec!["a"]);
    assert_eq!(store.get("other", "a").unwrap().as_deref(), Some(&b"x"[..]));

    for bad in ["", "../x", "a/b", ".hidden", "sp ace", "nul\0"] {
        assert!(
            matches!(store.put("ns", bad, b"v"), Err(StoreError::InvalidKey(_))),
            "key {bad:?} must be rejected"
        );
        assert!(
            matches!(store.get(bad, "a"), Err(StoreError::InvalidKey(_))),
            "namespace {bad:?} must be rejected"
        );
    }
}

#[test]
fn the_memory_store_keeps_the_store_contract() {
    check_store(&MemoryStore::new());
}

#[test]
fn the_file_store_keeps_the_store_contract() {
    let dir = tempfile::tempdir().unwrap();
    check_store(&FileStore::open(dir.path()).unwrap());
}
