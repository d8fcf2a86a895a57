//! The ContextStore end to end: versions, stale and duplicate copies with their reasons, sessions,
//! `changed_since`, budgets, re-ingest of a changed tree, snapshots and their corruption,
//! readers during puts, and properties of any sequence of puts and deletes.

use std::sync::Arc;
use std::time::Duration;

use fourfold::context::{
    AskOptions, ContextError, ContextStore, Freshness, Rename, SectionRead, FEED_CAPACITY,
};
use fourfold::trace::{MemorySink, TraceRecord, Tracer};
use fourfold::{EventKind, MemoryStore, PluginRegistry, Store};
use proptest::prelude::*;

/// v1 of a page: the old API.
const EXPORT_V1: &str = "# Exporting models

## model.dict()

This is the primary way of converting a model to a dictionary. Sub-models will be recursively \
converted to dictionaries. Use the include and exclude arguments to choose which fields are \
exported, and by_alias to use the aliases of the fields as the keys of the dictionary.

## model.json()

The json method serialises a model to JSON by calling dict and then encoding the result with the \
standard library's json module, and it accepts the same include and exclude arguments as dict.
";

/// v2 of the same page: the new API.
const EXPORT_V2: &str = "# Serialization

## model.model_dump()

This is the primary way of converting a model to a dictionary in pydantic 2. Sub-models are \
recursively converted to dictionaries. Pass include and exclude to choose the fields that are \
dumped, mode='json' to get only JSON types, and by_alias to key the result by the aliases.

## model.model_dump_json()

The model_dump_json method serialises a model straight to a JSON string in Rust, without going \
through a dictionary first, and takes the same include and exclude arguments as model_dump.
";

const VALIDATORS: &str = "# Validators

## Field validators

A field validator is a class method decorated with field_validator that receives the value of one \
field and returns it, possibly changed, or raises a ValueError when the value is not acceptable. \
Use mode='before' to run it before pydantic's own parsing and coercion of the value.
";

fn served_keys(store: &ContextStore, query: &str) -> Vec<(String, Freshness)> {
    store
        .ask(query, 2_000)
        .hits
        .into_iter()
        .map(|hit| (hit.key, hit.freshness))
        .collect()
}

fn markers(store: &ContextStore, key: &str) -> Vec<(Freshness, String)> {
    store
        .get(key)
        .unwrap()
        .sections
        .into_iter()
        .filter(|section| section.tokens > 30)
        .map(|section| {
            (
                section.marker.freshness,
                section.marker.reason.unwrap_or_default(),
            )
        })
        .collect()
}

#[test]
fn every_put_makes_a_version_and_old_versions_stay_readable() {
    let store = ContextStore::new();
    let v1 = store.put("docs/export.md", EXPORT_V1).unwrap();
    let v2 = store.put("docs/export.md", EXPORT_V2).unwrap();
    assert_eq!((v1.version, v2.version), (1, 2));
    assert_ne!(v1.hash, v2.hash);
    let again = store.put("docs/export.md", EXPORT_V2).unwrap();
    assert_eq!(
        again, v2,
        "putting the current text again is not a new version"
    );
    assert_eq!(store.get("docs/export.md").unwrap().version, v2);
    let old = store.get_version("docs/export.md", 1).unwrap();
    assert!(!old.current);
    assert_eq!(old.text, EXPORT_V1);
    assert_eq!(store.history("docs/export.md").len(), 2);

    assert!(store.delete("docs/export.md").unwrap());
    assert!(!store.delete("docs/export.md").unwrap());
    assert!(store.get("docs/export.md").is_none());
    assert!(store.ask("model_dump dictionary", 1_000).hits.is_empty());
    assert_eq!(
        store.get_version("docs/export.md", 2).unwrap().text,
        EXPORT_V2
    );
    let v3 = store.put("docs/export.md", EXPORT_V1).unwrap();
    assert_eq!(v3.version, 3, "versions are never reused");
}

#[test]
fn sections_have_ids_stable_across_versions_lines_and_tokens() {
    let store = ContextStore::new();
    store.put("docs/validators.md", VALIDATORS).unwrap();
    let first = store.get("docs/validators.md").unwrap();
    let edited = VALIDATORS.replace("ValueError", "ValueError or an AssertionError");
    store.put("docs/validators.md", &edited).unwrap();
    let second = store.get("docs/validators.md").unwrap();
    let ids = |doc: &fourfold::context::Document| -> Vec<String> {
        doc.sections
            .iter()
            .map(|section| section.id.clone())
            .collect()
    };
    assert_eq!(ids(&first), ids(&second));
    let field = second
        .sections
        .iter()
        .find(|section| section.heading_path.last().map(String::as_str) == Some("Field validators"))
        .unwrap();
    assert_eq!(field.heading_path, vec!["Validators", "Field validators"]);
    assert_eq!(field.line_start, 3);
    assert_eq!(field.changed_in, 2);
    assert_eq!(
        field.tokens as usize,
        fourfold::tokens::count_tokens(&field.text)
    );
    let title = &second.sections[0];
    assert_eq!(
        title.changed_in, 1,
        "the unchanged title section keeps its version"
    );
    assert_eq!(store.get_section(&field.id).unwrap().version, 2);
}

#[test]
fn a_copy_of_replaced_text_is_stale_with_its_reason_and_never_served() {
    let store = ContextStore::new();
    store.put("docs/export.md", EXPORT_V1).unwrap();
    store.put("docs/export.md", EXPORT_V2).unwrap();
    store.put("legacy/export.md", EXPORT_V1).unwrap();
    for (freshness, reason) in markers(&store, "legacy/export.md") {
        assert_eq!(freshness, Freshness::Stale);
        assert!(reason.contains("`docs/export.md` v1"), "{reason}");
        assert!(reason.contains("replaced by v2"), "{reason}");
    }
    let served = served_keys(&store, "convert a model to a dictionary with dict exclude");
    assert!(!served.is_empty());
    assert!(served
        .iter()
        .all(|(key, freshness)| key == "docs/export.md" && *freshness == Freshness::Canonical));

    let mut options = AskOptions::budget(2_000);
    options.with_copies = true;
    let answer = store.ask_with(
        "convert a model to a dictionary with dict exclude",
        &options,
    );
    assert!(answer
        .copies
        .iter()
        .any(|copy| copy.key == "legacy/export.md" && copy.text.is_none()));
}

#[test]
fn a_copy_of_deleted_text_is_stale_but_a_move_is_not() {
    let store = ContextStore::new();
    store.put("docs/usage/export.md", EXPORT_V1).unwrap();
    // A move: the new key is put while the old one still exists, then the old one is deleted.
    store.put("docs/concepts/export.md", EXPORT_V1).unwrap();
    store.delete("docs/usage/export.md").unwrap();
    assert!(markers(&store, "docs/concepts/export.md")
        .iter()
        .all(|(freshness, _)| *freshness == Freshness::Canonical));
    // A later version of the moved page still carries the text on: it is no copy of it.
    let edited = format!("{EXPORT_V1}\n## Questions\n\nAsk on the forum about exporting models.\n");
    store.put("docs/concepts/export.md", &edited).unwrap();
    assert!(markers(&store, "docs/concepts/export.md")
        .iter()
        .all(|(freshness, _)| *freshness == Freshness::Canonical));
    // A copy made after the move is a duplicate of the text's new home.
    store
        .put("vendor/older-manual/export.md", EXPORT_V1)
        .unwrap();
    for (freshness, reason) in markers(&store, "vendor/older-manual/export.md") {
        assert_eq!(freshness, Freshness::Duplicate);
        assert!(reason.contains("`docs/concepts/export.md`"), "{reason}");
    }
    store.delete("vendor/older-manual/export.md").unwrap();
    // A copy made after the text was deleted and replaced elsewhere is stale.
    store.put("docs/concepts/export.md", EXPORT_V2).unwrap();
    store.put("vendor/old-manual/export.md", EXPORT_V1).unwrap();
    let stale = markers(&store, "vendor/old-manual/export.md");
    assert!(stale
        .iter()
        .all(|(freshness, _)| *freshness == Freshness::Stale));
    assert!(stale
        .iter()
        .any(|(_, reason)| reason.contains("since deleted") || reason.contains("replaced by v2")));
}

#[test]
fn duplicates_point_at_the_canonical_copy_and_a_pin_moves_it() {
    let store = ContextStore::new();
    store.put("docs/validators.md", VALIDATORS).unwrap();
    store.put("wiki/validators.md", VALIDATORS).unwrap();
    let wiki = markers(&store, "wiki/validators.md");
    assert!(!wiki.is_empty());
    for (freshness, reason) in wiki {
        assert_eq!(freshness, Freshness::Duplicate);
        assert!(reason.contains("`docs/validators.md`"), "{reason}");
    }
    assert_eq!(
        served_keys(&store, "field validator before coercion"),
        vec![("docs/validators.md".to_string(), Freshness::Canonical)]
    );

    let pinned = ContextStore::builder().pin("wiki/validators.md").build();
    pinned.put("docs/validators.md", VALIDATORS).unwrap();
    pinned.put("wiki/validators.md", VALIDATORS).unwrap();
    assert_eq!(
        served_keys(&pinned, "field validator before coercion"),
        vec![("wiki/validators.md".to_string(), Freshness::Canonical)]
    );
}

#[test]
fn front_matter_and_archive_folders_mark_whole_documents_stale() {
    let store = ContextStore::builder().archive("archive/").build();
    let superseded = format!("---\nsuperseded_by: docs/serialization.md\n---\n{EXPORT_V1}");
    store.put("docs/exporting.md", &superseded).unwrap();
    store.put("archive/2023/validators.md", VALIDATORS).unwrap();
    let exporting = store.get("docs/exporting.md").unwrap();
    assert!(exporting.sections.iter().all(|section| {
        section.marker.freshness == Freshness::Stale
            && section
                .marker
                .reason
                .as_deref()
                .is_some_and(|reason| reason.contains("superseded by `docs/serialization.md`"))
    }));
    let archived = store.get("archive/2023/validators.md").unwrap();
    assert!(archived.sections.iter().all(|section| section
        .marker
        .reason
        .as_deref()
        .is_some_and(|reason| reason.contains("archive folder `archive/`"))));
    assert!(store.ask("field validator", 1_000).hits.is_empty());
}

#[test]
fn a_session_gets_pointers_for_what_it_holds_and_text_again_when_it_changes() {
    let store = ContextStore::new();
    store.put("docs/validators.md", VALIDATORS).unwrap();
    let session = store.session("coder", Some("run-1"), None);
    let first = session.ask("field validator before coercion", 1_000);
    assert!(first.hits[0].text.is_some());
    let second = session.ask("field validator before coercion", 1_000);
    assert!(second.hits[0].already_served);
    assert!(second.hits[0].text.is_none());
    assert!(second.tokens_served < first.tokens_served / 4);

    assert!(session.changed().is_empty());
    let edited = VALIDATORS.replace("mode='before'", "mode='before' or mode='plain'");
    store.put("docs/validators.md", &edited).unwrap();
    let changes = session.changed();
    assert_eq!(changes.len(), 1, "{changes:?}");
    assert!(changes[0].reason.contains("changed in v2"), "{changes:?}");
    assert_eq!(
        changes[0].current_pointer.as_deref(),
        Some("docs/validators.md:3")
    );
    let third = session.ask("field validator before coercion", 1_000);
    assert!(third.hits[0]
        .text
        .as_deref()
        .unwrap()
        .contains("mode='plain'"));
}

#[test]
fn changed_since_reports_changed_removed_and_deleted_sections_only() {
    let store = ContextStore::new();
    store.put("docs/export.md", EXPORT_V1).unwrap();
    let reads: Vec<SectionRead> = store
        .get("docs/export.md")
        .unwrap()
        .sections
        .iter()
        .map(|section| SectionRead {
            key: section.key.clone(),
            section_id: section.id.clone(),
            version: 1,
        })
        .collect();
    assert!(store.changed_since(&reads).is_empty());
    let retitled = EXPORT_V1.replace("## model.json()", "## model.to_json()");
    store.put("docs/export.md", &retitled).unwrap();
    let changes = store.changed_since(&reads);
    assert_eq!(changes.len(), 1, "only the renamed section: {changes:?}");
    assert!(changes[0].reason.contains("gone"), "{changes:?}");
    store.delete("docs/export.md").unwrap();
    let changes = store.changed_since(&reads);
    assert_eq!(changes.len(), reads.len());
    assert!(changes
        .iter()
        .all(|change| change.reason.contains("deleted")));
}

#[test]
fn subscribers_hear_of_every_change() {
    let store = ContextStore::new();
    let changes = store.subscribe();
    store.put("docs/export.md", EXPORT_V1).unwrap();
    store.put("docs/export.md", EXPORT_V2).unwrap();
    store.delete("docs/export.md").unwrap();
    let received: Vec<(String, Option<u64>)> = changes
        .drain()
        .into_iter()
        .map(|change| (change.key, change.version))
        .collect();
    assert_eq!(
        received,
        vec![
            ("docs/export.md".to_string(), Some(1)),
            ("docs/export.md".to_string(), Some(2)),
            ("docs/export.md".to_string(), None),
        ]
    );
}

#[test]
fn a_feed_that_falls_behind_counts_what_it_missed() {
    let store = ContextStore::new();
    let feed = store.subscribe();
    let extra = 6;
    for version in 0..FEED_CAPACITY + extra {
        store
            .put("docs/count.md", &format!("# Count\n\n{version}\n"))
            .unwrap();
    }
    assert_eq!(feed.len(), FEED_CAPACITY);
    assert_eq!(feed.missed(), extra as u64);
    let versions: Vec<Option<u64>> = feed.drain().into_iter().map(|c| c.version).collect();
    let expected: Vec<Option<u64>> = (1..=FEED_CAPACITY as u64).map(Some).collect();
    assert_eq!(versions, expected, "the oldest are kept, in order");
    store.put("docs/count.md", "# Count\n\nagain\n").unwrap();
    let next = feed.try_next().expect("a read feed hears again");
    assert_eq!(next.version, Some((FEED_CAPACITY + extra + 1) as u64));
    assert_eq!(feed.missed(), extra as u64);
}

#[test]
fn closing_a_feed_wakes_a_wait_in_another_thread() {
    let store = ContextStore::new();
    let feed = store.subscribe();
    let (done, finished) = std::sync::mpsc::channel();
    let waiter = {
        let feed = feed.clone();
        std::thread::spawn(move || done.send(feed.next()).unwrap())
    };
    // The wait has no deadline: only the close can end it.
    std::thread::sleep(Duration::from_millis(20));
    feed.close();
    let got = finished
        .recv_timeout(Duration::from_secs(30))
        .expect("the close ended the wait");
    assert_eq!(got, None);
    waiter.join().unwrap();
    assert!(feed.is_closed());
    store.put("docs/export.md", EXPORT_V1).unwrap();
    assert_eq!(feed.try_next(), None, "a closed feed gives nothing");
    assert_eq!(feed.len(), 0);
    assert!(feed.drain().is_empty());
}

#[test]
fn a_feed_ends_when_its_store_is_dropped_after_its_changes_are_read() {
    let store = ContextStore::new();
    let feed = store.subscribe();
    store.put("docs/export.md", EXPORT_V1).unwrap();
    drop(store);
    let keys: Vec<String> = feed.iter().map(|change| change.key).collect();
    assert_eq!(keys, vec!["docs/export.md".to_string()]);
    assert_eq!(feed.next_timeout(Duration::from_secs(30)), None);
}

#[test]
fn a_feed_wait_times_out_and_its_check_can_end_it() {
    let store = ContextStore::new();
    let feed = store.subscribe();
    assert_eq!(feed.next_timeout(Duration::from_millis(5)), None);
    let mut checks = 0;
    let ended = feed.next_checking(None, Duration::from_millis(1), || {
        checks += 1;
        if checks == 3 {
            Err("interrupted")
        } else {
            Ok(())
        }
    });
    assert_eq!(ended, Err("interrupted"));
    assert_eq!(checks, 3);
    store.put("docs/export.md", EXPORT_V1).unwrap();
    let change = feed
        .next_checking(None, Duration::from_millis(1), || Err("not reached"))
        .unwrap();
    assert_eq!(
        change.map(|change| change.key).as_deref(),
        Some("docs/export.md")
    );
    let deadline = Some(std::time::Instant::now() + Duration::from_millis(5));
    assert_eq!(
        feed.next_checking(deadline, Duration::from_millis(1), || Ok::<(), ()>(())),
        Ok(None)
    );
}

#[test]
fn findings_recorded_at_once_by_many_threads_are_all_kept() {
    let store = ContextStore::new();
    std::thread::scope(|scope| {
        for thread in 0..8 {
            let store = &store;
            scope.spawn(move || {
                for finding in 0..20 {
                    store
                        .record(
                            "flaky tests",
                            &format!("Finding {thread}-{finding}: retried."),
                        )
                        .unwrap();
                }
            });
        }
    });
    let record = store.get("records/flaky-tests.md").unwrap();
    assert_eq!(record.version.version, 160);
    for thread in 0..8 {
        for finding in 0..20 {
            assert!(record
                .text
                .contains(&format!("Finding {thread}-{finding}:")));
        }
    }
}

/// A migration guide that states two renames, in a table and in a sentence.
const MIGRATION: &str = "# Migration guide

## Changes to models

Method names changed; the old ones still work but emit a warning.

| Pydantic V1 | Pydantic V2 |
| --- | --- |
| `copy()` | `model_copy()` |
| `dict()` | `model_dump()` |

## Changes to config

* `orm_mode` has been renamed to `from_attributes`.
";

/// The concept page that explains the new name, and never mentions the old one.
const ATTRIBUTES: &str = "# Models

## Arbitrary class instances

To build a model from an object's attributes, such as an ORM row, set from_attributes in the \
model config and call model_validate with the object: each field is read with getattr from it.
";

/// A page with the old name's words, which a query for the old name alone prefers.
const ORM: &str = "# ORM

## Using an orm with models

An orm maps rows to objects; this page lists which orm libraries people use with models and \
where their mode of loading rows differs. Mode and orm settings live in the orm's own config.
";

#[test]
fn an_old_name_in_a_query_is_searched_as_the_new_name_the_docs_state() {
    let backing: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let store = ContextStore::open(Arc::clone(&backing)).unwrap();
    store.put("docs/models.md", ATTRIBUTES).unwrap();
    store.put("docs/orm.md", ORM).unwrap();
    let query = "build a model from an object, orm_mode does not work";
    // Without the guide, the old name's words lead to the wrong page.
    let before = store.ask(query, 2_000);
    assert_eq!(before.hits[0].key, "docs/orm.md");
    assert!(before.renames.is_empty());

    store.put("docs/migration.md", MIGRATION).unwrap();
    let answer = store.ask(query, 2_000);
    assert_eq!(answer.hits[0].key, "docs/models.md");
    assert_eq!(
        answer.renames,
        [Rename {
            old: "orm_mode".into(),
            new: "from_attributes".into(),
            pointer: "docs/migration.md:12".into(),
        }]
    );
    // Table rows count; a plain word that is also a name does not.
    let renamed = |query: &str| -> Vec<(String, String)> {
        store
            .ask(query, 2_000)
            .renames
            .into_iter()
            .map(|rename| (rename.old, rename.new))
            .collect()
    };
    assert_eq!(
        renamed("is `.copy()` gone, and what about Model.dict()?"),
        [
            ("copy".to_string(), "model_copy".to_string()),
            ("dict".to_string(), "model_dump".to_string())
        ]
    );
    assert!(renamed("copy a model into a dict").is_empty());

    // The renames are derived from the text: a reopened store has the same.
    store.save().unwrap();
    let reopened = ContextStore::open(Arc::clone(&backing)).unwrap();
    assert_eq!(reopened.ask(query, 2_000), answer);

    // A guide that is no longer canonical states nothing: stale by front matter, then gone.
    let superseded = format!("---\nsuperseded_by: docs/upgrading.md\n---\n{MIGRATION}");
    store.put("docs/migration.md", &superseded).unwrap();
    assert!(store.ask(query, 2_000).renames.is_empty());
    store.put("docs/migration.md", MIGRATION).unwrap();
    assert_eq!(store.ask(query, 2_000).renames.len(), 1);
    store.delete("docs/migration.md").unwrap();
    let after = store.ask(query, 2_000);
    assert!(after.renames.is_empty());
    assert_eq!(after.hits[0].key, "docs/orm.md");
}

#[test]
fn a_recorded_finding_is_served_to_other_agents() {
    let store = ContextStore::new();
    store.put("docs/validators.md", VALIDATORS).unwrap();
    store
        .record(
            "staging deploys",
            "Deploying to staging needs the VPN profile ops-staging.",
        )
        .unwrap();
    store
        .record(
            "staging deploys",
            "The staging database is reset every night at 02:00 UTC.",
        )
        .unwrap();
    let answer = store.ask("staging database reset", 500);
    assert_eq!(answer.hits[0].key, "records/staging-deploys.md");
    assert!(answer.hits[0]
        .text
        .as_deref()
        .unwrap()
        .contains("02:00 UTC"));
    assert_eq!(store.history("records/staging-deploys.md").len(), 2);
}

#[test]
fn every_ask_emits_a_context_event() {
    let sink = MemorySink::new();
    let tracer = Tracer::builder().sink(sink.clone()).build().unwrap();
    let plugins = Arc::new(PluginRegistry::new());
    plugins.install(Arc::new(tracer.clone())).unwrap();
    let store = ContextStore::builder().plugins(plugins).build();
    store.put("docs/validators.md", VALIDATORS).unwrap();
    let session = store.session("coder", Some("run-7"), Some("T-1"));
    let answer = session.ask("field validator", 1_000);
    tracer.flush().unwrap();
    let events: Vec<_> = sink
        .records()
        .into_iter()
        .filter_map(|record| match record {
            TraceRecord::Event(event) => Some(event),
            _ => None,
        })
        .collect();
    let [event] = &events[..] else {
        panic!("expected one event: {events:?}")
    };
    assert_eq!(
        (event.run_id.as_str(), event.agent_id.as_str()),
        ("run-7", "coder")
    );
    let EventKind::Context(context) = &event.kind else {
        panic!("not a context event: {event:?}")
    };
    assert_eq!(context.tokens_served, answer.tokens_served);
    assert_eq!(context.sections.len(), answer.hits.len());
    assert_eq!(context.sections[0].freshness, "canonical");
    let whole = store.get("docs/validators.md").unwrap().version.tokens;
    assert_eq!(whole as usize, fourfold::tokens::count_tokens(VALIDATORS));
    assert_eq!(context.tokens_baseline, whole);
}

#[test]
fn re_ingest_indexes_only_changed_files_and_deletes_gone_ones() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::create_dir_all(root.join("docs/concepts")).unwrap();
    std::fs::write(root.join("docs/concepts/export.md"), EXPORT_V2).unwrap();
    std::fs::write(root.join("docs/validators.md"), VALIDATORS).unwrap();
    std::fs::write(root.join("docs/old.md"), EXPORT_V1).unwrap();
    std::fs::write(root.join("logo.png"), [0x89, b'P', b'N', b'G', 0, 0, 1]).unwrap();
    std::fs::write(root.join("notes.txt"), "not matched by the globs").unwrap();
    let store = ContextStore::new();
    let mut n_progress = 0;
    let first = store
        .ingest_dir(root, &["**/*.md", "*.png"], |_| n_progress += 1)
        .unwrap();
    assert_eq!((first.n_files, first.n_changed), (4, 3));
    assert_eq!(n_progress, 4);
    assert_eq!(first.skipped.len(), 1);
    assert_eq!(first.skipped[0].0, "logo.png");
    assert_eq!(
        store.keys(),
        vec![
            "docs/concepts/export.md",
            "docs/old.md",
            "docs/validators.md"
        ]
    );

    std::fs::write(
        root.join("docs/validators.md"),
        VALIDATORS.replace("class", "static"),
    )
    .unwrap();
    std::fs::remove_file(root.join("docs/old.md")).unwrap();
    let second = store.ingest_dir(root, &["**/*.md"], |_| {}).unwrap();
    assert_eq!((second.n_changed, second.n_unchanged), (1, 1));
    assert_eq!(second.deleted, vec!["docs/old.md"]);
    assert_eq!(store.get("docs/validators.md").unwrap().version.version, 2);
    assert_eq!(
        store
            .get("docs/concepts/export.md")
            .unwrap()
            .version
            .version,
        1
    );

    let missing = store.ingest_dir(&root.join("nope"), &[], |_| {});
    assert!(matches!(missing, Err(ContextError::Io { .. })));
    let bad_glob = store.ingest_dir(root, &["docs/[.md"], |_| {});
    assert!(matches!(bad_glob, Err(ContextError::InvalidGlob { .. })));
}

#[test]
fn an_ingest_as_a_folder_keys_its_files_under_it() {
    let dir = tempfile::tempdir().unwrap();
    let docs = dir.path().join("docs");
    std::fs::create_dir_all(docs.join("concepts")).unwrap();
    std::fs::write(docs.join("concepts/export.md"), EXPORT_V2).unwrap();
    std::fs::write(docs.join("validators.md"), VALIDATORS).unwrap();
    let store = ContextStore::new();
    // The globs match paths relative to the folder; the keys are under the prefix.
    let first = store
        .ingest_dir_as(&docs, "handbook/docs", &["concepts/**"], |_| {})
        .unwrap();
    assert_eq!(first.n_changed, 1);
    assert_eq!(store.keys(), vec!["handbook/docs/concepts/export.md"]);
    let hit = &store.ask("export", 500).hits[0];
    assert!(hit.pointer.starts_with("handbook/docs/concepts/export.md:"));

    // Again, unchanged: nothing re-indexed; a file gone is retired at its prefixed key.
    let again = store
        .ingest_dir_as(&docs, "handbook/docs/", &[], |_| {})
        .unwrap();
    assert_eq!((again.n_changed, again.n_unchanged), (1, 1));
    std::fs::remove_file(docs.join("validators.md")).unwrap();
    let gone = store
        .ingest_dir_as(&docs, "handbook/docs", &[], |_| {})
        .unwrap();
    assert_eq!(gone.deleted, vec!["handbook/docs/validators.md"]);

    // The same folder under another prefix: its documents move, the old keys are retired.
    let moved = store.ingest_dir_as(&docs, "docs", &[], |_| {}).unwrap();
    assert_eq!(moved.deleted, vec!["handbook/docs/concepts/export.md"]);
    assert_eq!(store.keys(), vec!["docs/concepts/export.md"]);

    // A prefix is a relative folder path; a bad one is refused before anything is read.
    for bad in ["/abs", "/", "../up", "a/../b", "a//b", "./a", "a/."] {
        let refused = store.ingest_dir_as(&docs, bad, &[], |_| {});
        assert!(
            matches!(refused, Err(ContextError::InvalidPrefix { .. })),
            "{bad}: {refused:?}"
        );
    }
    assert_eq!(store.keys(), vec!["docs/concepts/export.md"]);
}

#[test]
fn an_ingest_puts_files_in_walk_order_like_one_put_after_another() {
    // The ingest prepares files on several threads; versions, markers and answers must be
    // those of putting the files one after another in the walk's order (here, key order).
    let dir = tempfile::tempdir().unwrap();
    let texts = [EXPORT_V1, EXPORT_V2, VALIDATORS];
    let mut files = Vec::new();
    for n in 0..60 {
        let key = format!("d{n:02}/page.md");
        let text = match n % 4 {
            3 => format!("# Page {n}\n\nNotes on topic {n}: retries, backoff and limits.\n"),
            other => texts[other].to_string(),
        };
        std::fs::create_dir_all(dir.path().join(format!("d{n:02}"))).unwrap();
        std::fs::write(dir.path().join(&key), &text).unwrap();
        files.push((key, text));
    }
    let ingested = ContextStore::new();
    let mut progress = Vec::new();
    let report = ingested
        .ingest_dir(dir.path(), &[], |report| progress.push(report.n_files))
        .unwrap();
    assert_eq!((report.n_files, report.n_changed), (60, 60));
    assert_eq!(progress, (1..=60).collect::<Vec<_>>());
    let one_by_one = ContextStore::new();
    for (key, text) in &files {
        one_by_one.put(key, text).unwrap();
    }
    for (key, _) in &files {
        let (a, b) = (ingested.get(key).unwrap(), one_by_one.get(key).unwrap());
        assert_eq!(a.version.version, b.version.version, "{key}");
        let markers = |doc: &fourfold::context::Document| -> Vec<_> {
            doc.sections
                .iter()
                .map(|section| section.marker.clone())
                .collect()
        };
        assert_eq!(markers(&a), markers(&b), "{key}");
    }
    for query in [
        "export a model to a dict",
        "validators",
        "retries and backoff",
    ] {
        let pointers = |store: &ContextStore| -> Vec<String> {
            store
                .ask(query, 2_000)
                .hits
                .into_iter()
                .map(|hit| hit.pointer)
                .collect()
        };
        assert_eq!(pointers(&ingested), pointers(&one_by_one), "{query}");
    }
    // Nothing changed: a second ingest finds every file unchanged.
    let again = ingested.ingest_dir(dir.path(), &[], |_| {}).unwrap();
    assert_eq!((again.n_changed, again.n_unchanged), (0, 60));
}

#[cfg(unix)]
#[test]
fn a_path_that_is_not_utf8_is_skipped_with_a_reason() {
    use std::os::unix::ffi::OsStrExt;
    let dir = tempfile::tempdir().unwrap();
    let name = std::ffi::OsStr::from_bytes(b"caf\xe9.md");
    std::fs::write(dir.path().join(name), VALIDATORS).unwrap();
    let store = ContextStore::new();
    let report = store.ingest_dir(dir.path(), &[], |_| {}).unwrap();
    assert_eq!(report.skipped.len(), 1);
    assert!(report.skipped[0].1.contains("not valid UTF-8"));
}

/// A file whose path is longer than a key may be (1,024 bytes, as deep in a `node_modules`) is
/// skipped with why; the other files are ingested, and so on every later ingest.
#[test]
fn a_path_too_long_for_a_key_is_skipped_and_the_rest_ingested() {
    let dir = tempfile::tempdir().unwrap();
    let deep = (0..5).fold(dir.path().to_path_buf(), |path, level| {
        path.join(format!("{level}{}", "d".repeat(240)))
    });
    std::fs::create_dir_all(&deep).unwrap();
    std::fs::write(deep.join("deep.md"), VALIDATORS).unwrap();
    std::fs::write(dir.path().join("top.md"), VALIDATORS).unwrap();
    let store = ContextStore::new();
    for _ in 0..2 {
        let report = store.ingest_dir(dir.path(), &[], |_| {}).unwrap();
        assert_eq!(report.n_files, 2, "{report:?}");
        assert_eq!(report.skipped.len(), 1, "{report:?}");
        assert!(report.skipped[0].0.ends_with("/deep.md"));
        assert!(report.skipped[0].1.contains("longer than 1,024 bytes"));
        assert_eq!(store.keys(), vec!["top.md"]);
    }
}

#[test]
fn a_snapshot_round_trips_and_a_damaged_one_leaves_the_previous_usable() {
    let backing: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let store = ContextStore::open(Arc::clone(&backing)).unwrap();
    store.put("docs/export.md", EXPORT_V1).unwrap();
    store.put("docs/export.md", EXPORT_V2).unwrap();
    store.put("legacy/export.md", EXPORT_V1).unwrap();
    store.save().unwrap();
    store.put("docs/validators.md", VALIDATORS).unwrap();
    let info = store.save().unwrap();
    assert_eq!(info.n_documents, 3);
    let query = "convert a model to a dictionary";
    let expected = store.ask(query, 1_000);

    let reopened = ContextStore::open(Arc::clone(&backing)).unwrap();
    assert_eq!(reopened.ask(query, 1_000), expected);
    assert_eq!(reopened.history("docs/export.md").len(), 2);
    assert_eq!(
        reopened.get("legacy/export.md").unwrap().sections[1]
            .marker
            .freshness,
        Freshness::Stale
    );

    let good = backing.get("context", "snapshot").unwrap().unwrap();
    for damaged in [
        good[..good.len() / 2].to_vec(),
        {
            let mut flipped = good.clone();
            let last = flipped.len() - 1;
            flipped[last] ^= 0x40;
            flipped
        },
        b"not a snapshot".to_vec(),
    ] {
        backing.put("context", "snapshot", &damaged).unwrap();
        let error = ContextStore::open(Arc::clone(&backing)).unwrap_err();
        assert!(
            matches!(error, ContextError::CorruptSnapshot { .. }),
            "{error}"
        );
        assert_eq!(
            backing.get("context", "snapshot").unwrap().unwrap(),
            damaged
        );
    }
    // The previous snapshot, with the journal of the puts since it, is the latest state.
    let previous = ContextStore::builder()
        .open_previous(Arc::clone(&backing))
        .unwrap();
    assert_eq!(
        previous.keys(),
        vec!["docs/export.md", "docs/validators.md", "legacy/export.md"]
    );
    assert_eq!(previous.ask(query, 1_000), expected);
    assert!(matches!(
        ContextStore::new().save(),
        Err(ContextError::NoBackingStore)
    ));
    // The damaged snapshot is taken as known: nothing to refresh, and a save replaces it.
    assert!(!previous.refresh().unwrap());
    // Saving only where there is somewhere to save: nothing for a store in memory.
    assert_eq!(ContextStore::new().save_if_backed().unwrap(), None);
    let saved = previous.save_if_backed().unwrap().unwrap();
    assert_eq!(saved.n_documents, 3);
}

/// `payload` behind a valid header of `format` (4 or 5: the same fields) that holds no journal
/// entries: the marking version, the last entry number seen, no writers, the payload's length
/// and the hash of the fields after the magic with the payload.
fn framed_snapshot(format: u8, marking: u32, through: u64, payload: &[u8]) -> Vec<u8> {
    let mut snapshot = b"FFCTXS".to_vec();
    snapshot.push(format);
    snapshot.extend_from_slice(&marking.to_le_bytes());
    snapshot.extend_from_slice(&through.to_le_bytes());
    snapshot.extend_from_slice(&0u32.to_le_bytes());
    let mut hasher = blake3::Hasher::new();
    hasher.update(&snapshot[7..]);
    hasher.update(payload);
    snapshot.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    snapshot.extend_from_slice(hasher.finalize().as_bytes());
    snapshot.extend_from_slice(payload);
    snapshot
}

/// The header [`framed_snapshot`] makes is the one a save writes, so the property test that
/// frames arbitrary bytes with it reaches the decoder.
#[test]
fn a_saved_payload_framed_again_opens_as_the_store_it_saved() {
    let backing: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let store = ContextStore::open(Arc::clone(&backing)).unwrap();
    format3_fixture_puts(&store);
    store.save().unwrap();
    let saved = backing.get("context", "snapshot").unwrap().unwrap();
    // The payload starts after the writers whose entries the snapshot holds.
    let n_writers = u32::from_le_bytes(saved[19..23].try_into().unwrap()) as usize;
    let payload = &saved[23 + 16 * n_writers + 8 + 32..];
    let marking = u32::from_le_bytes(saved[7..11].try_into().unwrap());
    let framed = framed_snapshot(5, marking, 0, payload);
    let again: Arc<dyn Store> = Arc::new(MemoryStore::new());
    again.put("context", "snapshot", &framed).unwrap();
    assert_same_documents(&ContextStore::open(again).unwrap(), &store);
}

/// A snapshot of format 3 (each section with a copy of its text, written by 40777ca) opens as
/// the store it saved, its sections' texts found in their versions' texts, and saves again as
/// format 5, which keeps them once.
#[test]
fn a_format_3_snapshot_opens_as_the_store_it_saved_and_saves_as_format_5() {
    let fixture = include_bytes!("fixtures/context/format3.snapshot");
    assert_eq!(&fixture[..7], b"FFCTXS\x03");
    let backing: Arc<dyn Store> = Arc::new(MemoryStore::new());
    backing.put("context", "snapshot", fixture).unwrap();
    let opened = ContextStore::open(Arc::clone(&backing)).unwrap();
    let fresh = ContextStore::new();
    format3_fixture_puts(&fresh);
    assert_same_documents(&opened, &fresh);
    opened.save().unwrap();
    let saved = backing.get("context", "snapshot").unwrap().unwrap();
    assert_eq!(&saved[..7], b"FFCTXS\x05");
    assert!(saved.len() < fixture.len(), "{} bytes", saved.len());
    assert_same_documents(&ContextStore::open(backing).unwrap(), &fresh);
}

/// A snapshot of format 4 (64-bit signatures and the similarity table saved, written by
/// 5bd5c1a after [`format4_fixture_puts`]) opens as the store it saved, with the same markers,
/// judges a new copy as the store that made it does, and saves again as format 5, smaller.
#[test]
fn a_format_4_snapshot_opens_as_the_store_it_saved_and_saves_as_format_5() {
    let fixture = include_bytes!("fixtures/context/format4.snapshot");
    assert_eq!(&fixture[..7], b"FFCTXS\x04");
    let backing: Arc<dyn Store> = Arc::new(MemoryStore::new());
    backing.put("context", "snapshot", fixture).unwrap();
    let opened = ContextStore::open(Arc::clone(&backing)).unwrap();
    let fresh = ContextStore::new();
    format4_fixture_puts(&fresh);
    let freshness = |store: &ContextStore, key: &str| {
        store
            .get(key)
            .unwrap()
            .sections
            .into_iter()
            .map(|section| section.marker.freshness)
            .collect::<Vec<_>>()
    };
    // The fixture's copies are found as copies, which needs signatures.
    assert!(freshness(&opened, "legacy/export.md").contains(&Freshness::Stale));
    assert!(freshness(&opened, "wiki/export.md").contains(&Freshness::Duplicate));
    assert_same_versions(&opened, &fresh, 13);
    // A put after opening is judged against the table made from the narrowed signatures.
    let copy = fresh.get("docs/export.md").unwrap().text;
    for store in [&opened, &fresh] {
        store.put("mirror/export.md", &copy).unwrap();
    }
    let markers = |store: &ContextStore| {
        store
            .get("mirror/export.md")
            .unwrap()
            .sections
            .into_iter()
            .map(|section| section.marker)
            .collect::<Vec<_>>()
    };
    assert!(markers(&opened)
        .iter()
        .all(|marker| marker.freshness == Freshness::Duplicate));
    assert_eq!(markers(&opened), markers(&fresh));
    opened.save().unwrap();
    let saved = backing.get("context", "snapshot").unwrap().unwrap();
    assert_eq!(&saved[..7], b"FFCTXS\x05");
    assert!(saved.len() < fixture.len(), "{} bytes", saved.len());
    let reopened = ContextStore::open(backing).unwrap();
    assert_eq!(markers(&reopened), markers(&fresh));
    assert_same_versions(&reopened, &opened, 14);
}

/// Asserts that two stores hold the same versions of the same documents, with the same sections
/// and markers (put at other times), and answer alike.
fn assert_same_documents(store: &ContextStore, expected: &ContextStore) {
    assert_same_versions(store, expected, 9);
}

/// Asserts that two stores hold the same `n_versions` versions of the same documents, with the
/// same sections and markers (put at other times), and answer alike.
fn assert_same_versions(store: &ContextStore, expected: &ContextStore, n_versions: usize) {
    let versions = |store: &ContextStore| {
        let mut keys = store.keys();
        keys.push("notes.txt".to_string());
        keys.iter()
            .flat_map(|key| store.history(key))
            .map(|version| {
                let mut document = store.get_version(&version.key, version.version).unwrap();
                document.version.at_ns = 0;
                document
            })
            .collect::<Vec<_>>()
    };
    let documents = versions(store);
    assert_eq!(documents.len(), n_versions);
    assert!(documents.iter().any(|document| !document.current));
    assert_eq!(documents, versions(expected));
    let served = |store: &ContextStore, query: &str| {
        store
            .ask(query, 400)
            .hits
            .into_iter()
            .map(|hit| (hit.section_id, hit.text, hit.tokens, hit.freshness))
            .collect::<Vec<_>>()
    };
    for query in [
        "install the guide",
        "orm_mode configure",
        "Point debug",
        "日本語",
    ] {
        let hits = served(store, query);
        assert!(!hits.is_empty(), "{query}");
        assert_eq!(hits, served(expected, query), "{query}");
    }
}

/// The puts and deletes after which `tests/fixtures/context/format3.snapshot` was saved, by
/// commit 40777ca (the last to write format 3): versions, a stale and a duplicate copy, front
/// matter, a code file in items, a deleted key, a stated rename and text beyond ASCII.
fn format3_fixture_puts(store: &ContextStore) {
    let guide_v1 = "---\ntitle: The guide\n---\n# Guide\n\nIntro to the guide, café and 日本語.\n\n## Install\n\nRun `pip install thing` and wait.\n\n## Configure\n\nSet `orm_mode = True` in `class Config`.\n```python\nclass Config:\n    orm_mode = True\n```\n";
    let guide_v2 = "---\ntitle: The guide\n---\n# Guide\n\nIntro to the guide, café and 日本語.\n\n## Install\n\nRun `pip install thing` and wait a moment.\n\n## Configure\n\nSet `from_attributes=True` in `model_config`.\n";
    store.put("docs/guide.md", guide_v1).unwrap();
    store.put("legacy/guide.md", guide_v1).unwrap();
    store.put("docs/guide.md", guide_v2).unwrap();
    store
        .put("wiki/guide.md", &guide_v2.replace("a moment", "a moment."))
        .unwrap();
    store
        .put(
            "docs/migration.md",
            "# Migration\n\n## Config\n\n`orm_mode` has been renamed to `from_attributes`.\n",
        )
        .unwrap();
    store
        .put(
            "docs/old.md",
            "---\nsuperseded_by: docs/guide.md\n---\n# Old guide\n\nWhat we did before.\n",
        )
        .unwrap();
    store
        .put(
            "src/lib.rs",
            "//! The crate.\n\nuse std::fmt;\n\n/// Adds.\npub fn add(a: u32, b: u32) -> u32 {\n    a + b\n}\n\npub struct Point {\n    x: i32,\n}\n\nimpl fmt::Debug for Point {\n    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {\n        write!(f, \"({})\", self.x)\n    }\n}\n",
        )
        .unwrap();
    store.put("notes.txt", "plain notes, soon gone\n").unwrap();
    store.delete("notes.txt").unwrap();
    store.put("empty.md", "").unwrap();
}

/// The puts after which `tests/fixtures/context/format4.snapshot` was saved, by commit 5bd5c1a
/// (the last to write format 4): those of the format 3 fixture, then a page whose sections are
/// long enough to be signed, its next version, a copy of the first made after it (stale), and
/// a near copy of the next (a duplicate).
fn format4_fixture_puts(store: &ContextStore) {
    format3_fixture_puts(store);
    let page = |intro: &str| {
        format!(
            "# Exporting models\n\n{intro}\n\n## Serialising to JSON\n\nThe JSON form of a \
             model comes from a method that encodes every field with its serializer, dates as ISO \
             8601 strings and decimals as strings, so that the output can be read back by the \
             same model without loss.\n"
        )
    };
    let first = "A model is turned into a dictionary with its dict method, which accepts include \
        and exclude arguments to choose the fields that are exported, and by_alias to use the \
        aliases of the fields as keys of the resulting dictionary.";
    let next = "Call model_dump on an instance: it returns the data of the fields as plain \
        Python values, leaving out those named in exclude, and keyed by their aliases if \
        by_alias is set, with a mode for JSON-compatible output.";
    store.put("docs/export.md", &page(first)).unwrap();
    store.put("docs/export.md", &page(next)).unwrap();
    store.put("legacy/export.md", &page(first)).unwrap();
    store
        .put(
            "wiki/export.md",
            &page(next).replace("without loss.", "without any loss."),
        )
        .unwrap();
}

/// The journal entries in a backing store's context namespace.
fn journal_entries(backing: &Arc<dyn Store>) -> Vec<String> {
    backing
        .list("context")
        .unwrap()
        .into_iter()
        .filter(|key| key.starts_with("journal-"))
        .collect()
}

/// Everything a reader can see of `store`'s documents: keys, every version's record, texts.
fn contents(store: &ContextStore) -> Vec<(String, Vec<fourfold::context::DocVersion>, String)> {
    let mut keys: Vec<String> = store.keys();
    keys.push("docs/gone.md".to_string());
    keys.into_iter()
        .map(|key| {
            let text = store.get(&key).map(|doc| doc.text).unwrap_or_default();
            (key.clone(), store.history(&key), text)
        })
        .collect()
}

/// Two stores on one folder, one putting while the other puts and saves over and over: a
/// save must never name as held an entry the other store wrote that its state lacks.
#[test]
fn saves_racing_puts_from_another_store_lose_nothing() {
    saves_race_puts(Arc::new(MemoryStore::new()));
    let dir = tempfile::tempdir().unwrap();
    saves_race_puts(Arc::new(fourfold::FileStore::open(dir.path()).unwrap()));
}

/// A put, tried again while other writers keep taking the journal's next entries (a put that
/// fails so applies nothing, so trying again is what a caller does).
fn put_retrying(store: &ContextStore, key: &str, text: &str) -> Result<(), ContextError> {
    for _ in 0..20 {
        match store.put(key, text) {
            Err(ContextError::JournalContended { .. }) => continue,
            other => return other.map(drop),
        }
    }
    Err(ContextError::JournalContended {
        key: key.to_string(),
        attempts: 20,
    })
}

fn saves_race_puts(backing: Arc<dyn Store>) {
    let saver = ContextStore::open(Arc::clone(&backing)).unwrap();
    let other = ContextStore::open(Arc::clone(&backing)).unwrap();
    let page = |who: &str, n: usize| format!("# {who} {n}\n\nPage {n} written by {who}.\n");
    const N: usize = 150;
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    std::thread::scope(|scope| {
        let saving = {
            let (saver, done) = (saver.clone(), Arc::clone(&done));
            scope.spawn(move || {
                while !done.load(std::sync::atomic::Ordering::Relaxed) {
                    match saver.save() {
                        Ok(_) => {}
                        // Other writers may keep a save reloading; it applies nothing then.
                        Err(ContextError::SaveContended { .. }) => {}
                        Err(error) => panic!("{error}"),
                    }
                }
            })
        };
        let putting = {
            let saver = saver.clone();
            scope.spawn(move || {
                for n in 0..N {
                    put_retrying(&saver, &format!("saver/{n}.md"), &page("saver", n)).unwrap();
                }
            })
        };
        let puts: Result<Vec<_>, ContextError> = (0..N)
            .map(|n| put_retrying(&other, &format!("other/{n}.md"), &page("other", n)))
            .collect();
        let putting = putting.join();
        // Stop the saves before any assertion, so that a failure does not hang the scope.
        done.store(true, std::sync::atomic::Ordering::Relaxed);
        puts.unwrap();
        putting.unwrap();
        saving.join().unwrap();
    });
    saver.save().unwrap();
    for reopened in [
        ContextStore::open(Arc::clone(&backing)).unwrap(),
        ContextStore::builder()
            .open_previous(Arc::clone(&backing))
            .unwrap(),
    ] {
        for who in ["saver", "other"] {
            for n in 0..N {
                let key = format!("{who}/{n}.md");
                let doc = reopened.get(&key);
                assert_eq!(doc.map(|doc| doc.text), Some(page(who, n)), "{key}");
            }
        }
    }
}

#[test]
fn changes_outlive_the_process_through_the_journal_without_a_save() {
    let backing: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let store = ContextStore::open(Arc::clone(&backing)).unwrap();
    store.put("docs/export.md", EXPORT_V1).unwrap();
    store.put("docs/export.md", EXPORT_V2).unwrap();
    store.put("docs/export.md", EXPORT_V2).unwrap(); // unchanged: nothing to journal
    store.put("docs/gone.md", VALIDATORS).unwrap();
    assert!(store.delete("docs/gone.md").unwrap());
    assert!(!store.delete("docs/gone.md").unwrap()); // not live: nothing to journal
    store
        .record("flaky tests", "Retry once, then page.")
        .unwrap();
    assert_eq!(journal_entries(&backing).len(), 5);
    assert_eq!(backing.get("context", "snapshot").unwrap(), None);
    let query = "convert a model to a dictionary";
    let expected = (contents(&store), store.ask(query, 1_000));
    drop(store);

    let reopened = ContextStore::open(Arc::clone(&backing)).unwrap();
    assert_eq!((contents(&reopened), reopened.ask(query, 1_000)), expected);
    // Opening applies the journal without writing it again; the next write follows it.
    assert_eq!(journal_entries(&backing).len(), 5);
    reopened.put("docs/gone.md", VALIDATORS).unwrap();
    assert_eq!(reopened.history("docs/gone.md").len(), 2);
    assert_eq!(journal_entries(&backing).len(), 6);
}

#[test]
fn a_save_folds_the_journal_in_and_keeps_what_the_previous_snapshot_lacks() {
    let backing: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let store = ContextStore::open(Arc::clone(&backing)).unwrap();
    store.put("docs/export.md", EXPORT_V1).unwrap();
    store.save().unwrap();
    let first = journal_entries(&backing);
    assert_eq!(first.len(), 1, "no previous snapshot holds it");
    store.put("docs/validators.md", VALIDATORS).unwrap();
    store.save().unwrap();
    // The first entry is in both snapshots now; the second only in the latest.
    let entries = journal_entries(&backing);
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert_ne!(entries, first);
    store.put("docs/export.md", EXPORT_V2).unwrap();
    let expected = contents(&store);
    drop(store);
    assert_eq!(
        contents(&ContextStore::open(Arc::clone(&backing)).unwrap()),
        expected
    );
    let previous = ContextStore::builder()
        .open_previous(Arc::clone(&backing))
        .unwrap();
    assert_eq!(contents(&previous), expected);
}

#[test]
fn a_damaged_journal_entry_is_a_typed_error_and_changes_nothing() {
    let backing: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let store = ContextStore::open(Arc::clone(&backing)).unwrap();
    store.put("docs/export.md", EXPORT_V1).unwrap();
    store.put("docs/export.md", EXPORT_V2).unwrap();
    drop(store);
    let [_, second] = &journal_entries(&backing)[..] else {
        panic!("two entries");
    };
    let good = backing.get("context", second).unwrap().unwrap();
    for damaged in [good[..good.len() - 1].to_vec(), b"FFCTXJ".to_vec(), {
        let mut flipped = good.clone();
        flipped[good.len() / 2] ^= 1;
        flipped
    }] {
        backing.put("context", second, &damaged).unwrap();
        let error = ContextStore::open(Arc::clone(&backing)).unwrap_err();
        match &error {
            ContextError::CorruptSnapshot { key, reason } => {
                assert_eq!(key, second);
                assert!(reason.contains("journal entry"), "{reason}");
            }
            other => panic!("{other}"),
        }
        assert_eq!(backing.get("context", second).unwrap().unwrap(), damaged);
    }
    backing.put("context", second, &good).unwrap();
    let reopened = ContextStore::open(Arc::clone(&backing)).unwrap();
    assert_eq!(reopened.get("docs/export.md").unwrap().version.version, 2);
}

#[test]
fn an_ingest_saves_a_snapshot_instead_of_journaling_each_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("export.md"), EXPORT_V1).unwrap();
    std::fs::write(dir.path().join("validators.md"), VALIDATORS).unwrap();
    let backing: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let store = ContextStore::open(Arc::clone(&backing)).unwrap();
    store.ingest_dir(dir.path(), &[], |_| {}).unwrap();
    assert!(journal_entries(&backing).is_empty());
    let saved = backing.get("context", "snapshot").unwrap().unwrap();
    // Nothing changed: nothing saved again.
    store.ingest_dir(dir.path(), &[], |_| {}).unwrap();
    assert_eq!(backing.get("context", "snapshot").unwrap().unwrap(), saved);
    assert_eq!(backing.get("context", "snapshot-previous").unwrap(), None);
    std::fs::remove_file(dir.path().join("validators.md")).unwrap();
    store.ingest_dir(dir.path(), &[], |_| {}).unwrap();
    assert!(journal_entries(&backing).is_empty());
    let expected = contents(&store);
    drop(store);
    let reopened = ContextStore::open(Arc::clone(&backing)).unwrap();
    assert_eq!(contents(&reopened), expected);
    assert_eq!(reopened.keys(), vec!["export.md"]);
}

#[test]
fn two_stores_on_one_folder_lose_nothing_when_either_saves() {
    let backing: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let first = ContextStore::open(Arc::clone(&backing)).unwrap();
    let second = ContextStore::open(Arc::clone(&backing)).unwrap();
    let heard = first.subscribe();
    first.put("docs/export.md", EXPORT_V1).unwrap();
    // The same journal entry is free for both: the second store takes the next one.
    second.put("docs/validators.md", VALIDATORS).unwrap();
    assert_eq!(journal_entries(&backing).len(), 2);
    assert_eq!(heard.drain().len(), 1);
    // The first store's save takes in what the second wrote before it writes its snapshot.
    first.save().unwrap();
    assert_eq!(first.keys(), vec!["docs/export.md", "docs/validators.md"]);
    let reloaded = heard.drain();
    assert_eq!(reloaded.len(), 1, "{reloaded:?}");
    assert_eq!(reloaded[0].key, "docs/validators.md");
    assert_eq!(reloaded[0].version, Some(1));
    let validators = first.get("docs/validators.md").unwrap();
    let ids: Vec<String> = validators.sections.iter().map(|s| s.id.clone()).collect();
    assert_eq!(reloaded[0].changed_sections, ids);
    assert!(reloaded[0].removed_sections.is_empty());
    second.put("docs/export.md", EXPORT_V2).unwrap();
    second.save().unwrap();
    let expected = contents(&second);
    assert_eq!(second.get("docs/export.md").unwrap().version.version, 2);
    drop((first, second));
    let reopened = ContextStore::open(Arc::clone(&backing)).unwrap();
    assert_eq!(contents(&reopened), expected);
    assert_eq!(
        reopened.keys(),
        vec!["docs/export.md", "docs/validators.md"]
    );
}

#[test]
fn refresh_takes_in_what_another_process_wrote_and_is_a_no_op_otherwise() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("export.md"), EXPORT_V1).unwrap();
    let backing: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let server = ContextStore::open(Arc::clone(&backing)).unwrap();
    let heard = server.subscribe();
    assert!(!server.refresh().unwrap());
    assert!(
        !ContextStore::new().refresh().unwrap(),
        "nothing to take in"
    );
    let cli = ContextStore::open(Arc::clone(&backing)).unwrap();
    cli.ingest_dir(dir.path(), &[], |_| {}).unwrap();
    assert!(server.keys().is_empty(), "not seen before a refresh");
    assert!(server.refresh().unwrap());
    assert_eq!(server.keys(), vec!["export.md"]);
    assert_eq!(heard.drain().len(), 1);
    assert!(!server.refresh().unwrap(), "nothing new since");
    cli.put("docs/validators.md", VALIDATORS).unwrap();
    assert!(server.refresh().unwrap(), "a journal entry past its own");
    assert_eq!(server.keys(), vec!["docs/validators.md", "export.md"]);
    server
        .record("deploys", "Deploys run from the release branch.")
        .unwrap();
    assert!(!server.refresh().unwrap(), "its own entry");
    assert_eq!(contents(&server), {
        cli.save().unwrap();
        contents(&cli)
    });
}

#[test]
fn a_save_takes_in_an_ingest_another_process_saved_meanwhile() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("export.md"), EXPORT_V1).unwrap();
    let backing: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let server = ContextStore::open(Arc::clone(&backing)).unwrap();
    let cli = ContextStore::open(Arc::clone(&backing)).unwrap();
    cli.ingest_dir(dir.path(), &[], |_| {}).unwrap();
    server
        .record("deploys", "Deploys run from the release branch.")
        .unwrap();
    server.save().unwrap();
    assert_eq!(server.keys(), vec!["export.md", "records/deploys.md"]);
    let reopened = ContextStore::open(Arc::clone(&backing)).unwrap();
    assert_eq!(reopened.keys(), vec!["export.md", "records/deploys.md"]);
    assert_eq!(contents(&reopened), contents(&server));
}

/// A document of four sections whose words come from a small vocabulary, so that documents
/// share terms in varied proportions.
fn vocabulary_document(seed: u64) -> String {
    const WORDS: [&str; 24] = [
        "schema",
        "validator",
        "serializer",
        "alias",
        "config",
        "strict",
        "union",
        "field",
        "model",
        "default",
        "factory",
        "json",
        "dump",
        "parse",
        "generic",
        "enum",
        "dataclass",
        "frozen",
        "private",
        "computed",
        "discriminator",
        "decimal",
        "datetime",
        "url",
    ];
    let mut state = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
    let mut next = || {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        WORDS[(state >> 33) as usize % WORDS.len()]
    };
    let mut text = format!("# Guide {seed}\n\n");
    for section in 0..4 {
        text.push_str(&format!("## {} {}\n\n", next(), next()));
        for _ in 0..(12 + section * 5) {
            text.push_str(next());
            text.push(' ');
        }
        text.push_str("\n\n");
    }
    text
}

/// The key of guide `n` of [`guides`].
fn guide_key(n: u64) -> String {
    format!("docs/guide-{n}.md")
}

/// A store of `n` guides, each a [`vocabulary_document`] of its own seed.
fn guides(n: u64) -> ContextStore {
    let store = ContextStore::new();
    for seed in 0..n {
        store
            .put(&guide_key(seed), &vocabulary_document(seed))
            .unwrap();
    }
    store
}

#[test]
fn compact_folds_puts_and_deletes_in_without_changing_an_answer() {
    let store = guides(120);
    // Replaced and deleted documents leave dead sections behind in the index.
    for seed in (0..120).step_by(7) {
        store
            .put(&guide_key(seed), &vocabulary_document(seed + 1_000))
            .unwrap();
    }
    for seed in (3..120).step_by(11) {
        assert!(store.delete(&guide_key(seed)).unwrap());
    }
    let queries = [
        "strict union validator",
        "json schema alias",
        "frozen dataclass default factory",
        "how do I parse a datetime field",
        "computed field serializer",
        "nothing matches this",
    ];
    let options = AskOptions {
        max_hits: 8,
        with_copies: true,
        ..AskOptions::budget(5_000)
    };
    let ask_all = || -> Vec<fourfold::context::Answer> {
        queries
            .iter()
            .map(|query| store.ask_with(query, &options))
            .collect()
    };
    let before = ask_all();
    assert!(before.iter().filter(|answer| answer.hits.len() > 1).count() >= 4);

    assert!(store.compact(), "the puts and deletes were not folded in");
    let mut after = ask_all();
    // The scores are summed in another order once the segments are one: the same to rounding.
    for (before, after) in before.iter().zip(&mut after) {
        for (old, new) in before.hits.iter().zip(&mut after.hits) {
            assert!((old.score - new.score).abs() <= old.score.abs() * 1e-5);
            new.score = old.score;
        }
    }
    assert_eq!(before, after);
    assert!(!store.compact(), "a second compact found more to do");

    // A put after a compact is served at once, and the next compact folds it in.
    store
        .put("docs/late.md", "# Late\n\nquasar nebula pulsar\n")
        .unwrap();
    assert_eq!(served_keys(&store, "pulsar nebula")[0].0, "docs/late.md");
    assert!(store.compact());
    assert_eq!(served_keys(&store, "pulsar nebula")[0].0, "docs/late.md");
    assert!(!ContextStore::new().compact());
}

#[test]
fn asks_during_compactions_and_puts_see_whole_versions() {
    let store = guides(60);
    let done = std::sync::atomic::AtomicBool::new(false);
    let options = AskOptions {
        max_hits: 6,
        ..AskOptions::budget(3_000)
    };
    std::thread::scope(|scope| {
        scope.spawn(|| {
            for round in 0..40u64 {
                let seed = round % 60;
                store
                    .put(
                        &guide_key(seed),
                        &vocabulary_document(seed + 1_000 * (round + 1)),
                    )
                    .unwrap();
                if round % 3 == 0 {
                    store.compact();
                }
            }
            done.store(true, std::sync::atomic::Ordering::SeqCst);
        });
        for _ in 0..2 {
            scope.spawn(|| {
                let mut n_asks = 0;
                while !done.load(std::sync::atomic::Ordering::SeqCst) || n_asks < 20 {
                    let answer = store.ask_with("strict union validator json", &options);
                    assert!(answer.tokens_served <= 3_000);
                    assert!(!answer.hits.is_empty());
                    for hit in &answer.hits {
                        // Every hit is a section of a version the document had, with its text.
                        let document = store.get_version(&hit.key, hit.version).unwrap();
                        let text = hit.text.as_deref().unwrap();
                        assert!(document.text.contains(text.trim_end()), "{}", hit.pointer);
                    }
                    n_asks += 1;
                }
            });
        }
    });
    // Once quiet, the store answers as one built from the final documents does.
    store.compact();
    let rebuilt = ContextStore::new();
    for key in store.keys() {
        rebuilt.put(&key, &store.get(&key).unwrap().text).unwrap();
    }
    let sections = |store: &ContextStore| -> Vec<(String, String)> {
        store
            .ask_with("strict union validator json", &options)
            .hits
            .into_iter()
            .map(|hit| (hit.key, hit.section_id))
            .collect()
    };
    assert_eq!(sections(&store), sections(&rebuilt));
}

#[test]
fn readers_see_a_whole_version_while_a_writer_puts() {
    let store = ContextStore::new();
    store.put("docs/export.md", EXPORT_V1).unwrap();
    let done = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|scope| {
        scope.spawn(|| {
            for round in 0..200 {
                let text = if round % 2 == 0 { EXPORT_V2 } else { EXPORT_V1 };
                store.put("docs/export.md", text).unwrap();
            }
            done.store(true, std::sync::atomic::Ordering::SeqCst);
        });
        for _ in 0..2 {
            scope.spawn(|| {
                while !done.load(std::sync::atomic::Ordering::SeqCst) {
                    let answer = store.ask("model dictionary include exclude", 1_000);
                    let versions: Vec<u64> = answer.hits.iter().map(|hit| hit.version).collect();
                    assert!(
                        versions.windows(2).all(|pair| pair[0] == pair[1]),
                        "{versions:?}"
                    );
                    let doc = store.get("docs/export.md").unwrap();
                    assert!(doc.text == EXPORT_V1 || doc.text == EXPORT_V2);
                    assert!(doc
                        .sections
                        .iter()
                        .all(|section| section.version == doc.version.version));
                }
            });
        }
    });
    assert_eq!(store.history("docs/export.md").len(), 201);
}

const TEXTS: [&str; 3] = [EXPORT_V1, EXPORT_V2, VALIDATORS];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn a_backed_store_reopens_as_it_was_whatever_was_saved_when(
        ops in proptest::collection::vec(
            (0usize..3, proptest::option::of(0usize..3), 0usize..6),
            1..24,
        ),
    ) {
        let backing: Arc<dyn Store> = Arc::new(MemoryStore::new());
        let mut store = ContextStore::open(Arc::clone(&backing)).unwrap();
        for (key_idx, text, then) in ops {
            let key = format!("docs/page-{key_idx}.md");
            match text {
                Some(text_idx) => drop(store.put(&key, TEXTS[text_idx]).unwrap()),
                None => drop(store.delete(&key).unwrap()),
            }
            match then {
                0 => drop(store.save().unwrap()),
                1 => {
                    let expected = contents(&store);
                    store = ContextStore::open(Arc::clone(&backing)).unwrap();
                    prop_assert_eq!(contents(&store), expected);
                }
                _ => {}
            }
        }
        let expected = contents(&store);
        prop_assert_eq!(contents(&ContextStore::open(Arc::clone(&backing)).unwrap()), expected.clone());
        if backing.get("context", "snapshot-previous").unwrap().is_some() {
            let previous = ContextStore::builder().open_previous(Arc::clone(&backing)).unwrap();
            prop_assert_eq!(contents(&previous), expected);
        }
    }

    #[test]
    fn any_puts_and_deletes_leave_one_current_version_per_live_key(
        ops in proptest::collection::vec((0usize..4, proptest::option::of(0usize..3)), 1..30),
    ) {
        let store = ContextStore::new();
        let mut model: std::collections::BTreeMap<String, &str> = Default::default();
        for (key_idx, text) in ops {
            let key = format!("docs/page-{key_idx}.md");
            match text {
                Some(text_idx) => {
                    store.put(&key, TEXTS[text_idx]).unwrap();
                    model.insert(key, TEXTS[text_idx]);
                }
                None => {
                    let was_live = store.delete(&key).unwrap();
                    prop_assert_eq!(was_live, model.remove(&key).is_some());
                }
            }
        }
        prop_assert_eq!(store.keys(), model.keys().cloned().collect::<Vec<_>>());
        for key in (0..4).map(|idx| format!("docs/page-{idx}.md")) {
            let history = store.history(&key);
            let numbers: Vec<u64> = history.iter().map(|version| version.version).collect();
            prop_assert_eq!(numbers, (1..=history.len() as u64).collect::<Vec<_>>());
            let current: Vec<u64> = history
                .iter()
                .filter_map(|version| store.get_version(&key, version.version))
                .filter(|doc| doc.current)
                .map(|doc| doc.version.version)
                .collect();
            match model.get(&key) {
                Some(text) => {
                    prop_assert_eq!(current.len(), 1);
                    prop_assert_eq!(store.get(&key).unwrap().text, *text);
                }
                None => prop_assert!(current.is_empty()),
            }
        }
    }

    #[test]
    fn an_answer_never_exceeds_its_budget(budget in 0u64..1_500, query_idx in 0usize..4) {
        let store = ContextStore::new();
        store.put("docs/export.md", EXPORT_V2).unwrap();
        store.put("docs/validators.md", VALIDATORS).unwrap();
        store.put("docs/long.md", &format!("# Long\n\n{}", EXPORT_V1.repeat(30))).unwrap();
        let queries = ["model dictionary", "validator before", "json include exclude", "long dict"];
        let answer = store.ask(queries[query_idx], budget);
        prop_assert!(answer.tokens_served <= budget);
        let sum: u64 = answer.hits.iter().map(|hit| u64::from(hit.tokens)).sum();
        prop_assert_eq!(sum, answer.tokens_served);
    }

    #[test]
    fn arbitrary_bytes_as_a_snapshot_never_panic(
        payload in proptest::collection::vec(any::<u8>(), 0..512),
        framed in 0u8..5,
        marking in any::<u32>(),
        through in any::<u64>(),
    ) {
        // Framed: a valid header and checksum of format 1, 2, 4 or 5 around arbitrary bytes (the
        // payload of format 3 for the first two, each section with its text; of format 4, with
        // wide signatures and a similarity table; of format 5), so the decoder and the
        // consistency check see them; raw: the bytes as they are.
        let snapshot = match framed {
            1 => {
                let mut snapshot = b"FFCTXS\x01".to_vec();
                snapshot.extend_from_slice(&(payload.len() as u64).to_le_bytes());
                snapshot.extend_from_slice(blake3::hash(&payload).as_bytes());
                snapshot.extend_from_slice(&payload);
                snapshot
            }
            2 => {
                let mut hasher = blake3::Hasher::new();
                hasher.update(&marking.to_le_bytes());
                hasher.update(&through.to_le_bytes());
                hasher.update(&payload);
                let mut snapshot = b"FFCTXS\x02".to_vec();
                snapshot.extend_from_slice(&marking.to_le_bytes());
                snapshot.extend_from_slice(&through.to_le_bytes());
                snapshot.extend_from_slice(&(payload.len() as u64).to_le_bytes());
                snapshot.extend_from_slice(hasher.finalize().as_bytes());
                snapshot.extend_from_slice(&payload);
                snapshot
            }
            3 => framed_snapshot(4, marking, through, &payload),
            4 => framed_snapshot(5, marking, through, &payload),
            _ => payload,
        };
        let backing: Arc<dyn Store> = Arc::new(MemoryStore::new());
        backing.put("context", "snapshot", &snapshot).unwrap();
        match ContextStore::open(backing) {
            Ok(store) => {
                // A payload that happens to decode must give a store that works.
                let _ = store.ask("model dictionary", 100);
                let _ = store.keys();
            }
            Err(error) => {
                let corrupt = matches!(error, ContextError::CorruptSnapshot { .. });
                prop_assert!(corrupt, "{}", error);
            }
        }
    }

    #[test]
    fn arbitrary_bytes_as_a_journal_entry_never_panic(
        payload in proptest::collection::vec(any::<u8>(), 0..256),
        framed in any::<bool>(),
    ) {
        let entry = if framed {
            let mut entry = b"FFCTXJ\x01".to_vec();
            entry.extend_from_slice(&(payload.len() as u64).to_le_bytes());
            entry.extend_from_slice(blake3::hash(&payload).as_bytes());
            entry.extend_from_slice(&payload);
            entry
        } else {
            payload
        };
        let backing: Arc<dyn Store> = Arc::new(MemoryStore::new());
        backing.put("context", "journal-00000000000000000001", &entry).unwrap();
        match ContextStore::open(backing) {
            Ok(store) => {
                let _ = store.ask("model dictionary", 100);
                let _ = store.keys();
            }
            Err(error) => {
                let typed = matches!(
                    error,
                    ContextError::CorruptSnapshot { .. } | ContextError::InvalidKey { .. }
                );
                prop_assert!(typed, "{}", error);
            }
        }
    }
}

const SCOPE_TEXTS: [&str; 6] = [EXPORT_V1, EXPORT_V2, VALIDATORS, MIGRATION, ATTRIBUTES, ORM];
const SCOPE_QUERIES: [&str; 4] = [
    "how do I export a model to a dict",
    "orm_mode from_orm",
    "validate a field",
    "copy() a model",
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Whatever the documents, a session scoped to `open/` is never served, pointed to or
    /// renamed by a document outside it, and fetching a section by id keeps to it too.
    #[test]
    fn a_scoped_session_never_shows_a_document_outside_its_scope(
        ops in proptest::collection::vec(
            (0usize..6, proptest::option::of(0usize..6)),
            1..16,
        ),
    ) {
        const KEYS: [&str; 6] = [
            "open/a.md", "open/b.md", "secret/a.md", "secret/b.md", "legacy/a.md", "open/legacy/c.md",
        ];
        let store = ContextStore::builder().archive("legacy/").build();
        for (key_idx, text) in ops {
            match text {
                Some(text_idx) => drop(store.put(KEYS[key_idx], SCOPE_TEXTS[text_idx]).unwrap()),
                None => drop(store.delete(KEYS[key_idx]).unwrap()),
            }
        }
        let allowed = |key: &str| key.starts_with("open/");
        let options = AskOptions { with_copies: true, ..AskOptions::budget(2_000) };
        for query in SCOPE_QUERIES {
            // A new session for each query, holding nothing, so that it serves what the store
            // would where the scope allows everything.
            let session = store
                .session("agent", None, None)
                .scoped(Arc::new(move |key: &str| allowed(key)));
            let answer = session.ask_with(query, &options);
            for hit in answer.hits.iter().chain(&answer.copies) {
                prop_assert!(allowed(&hit.key), "{query:?} showed {}", hit.pointer);
            }
            for rename in &answer.renames {
                prop_assert!(allowed(&rename.pointer), "{query:?} renamed by {}", rename.pointer);
            }
            // What the store serves unscoped from outside the scope is what was withheld.
            let unscoped = store.ask_with(query, &options);
            if unscoped.hits.iter().all(|hit| allowed(&hit.key)) {
                prop_assert_eq!(&answer.hits, &unscoped.hits);
            } else {
                prop_assert!(answer.withheld > 0, "{query:?}: {unscoped:?}");
            }
            for hit in &unscoped.hits {
                prop_assert_eq!(session.get_section(&hit.section_id).is_some(), allowed(&hit.key));
            }
        }
    }
}

/// The markers of every section of every live document, as `key > heading: freshness`.
fn markers_of(store: &ContextStore) -> Vec<String> {
    let mut markers = Vec::new();
    for key in store.keys() {
        for section in store.get(&key).unwrap().sections {
            markers.push(format!(
                "{key} > {}: {:?}",
                section.heading_path.join(" > "),
                section.marker.freshness
            ));
        }
    }
    markers
}

#[test]
fn a_moved_page_stays_canonical_when_its_old_path_is_used_again() {
    let backing: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let store = ContextStore::open(Arc::clone(&backing)).unwrap();
    // The page moves: put at its new path, then deleted at the old one; then edited there.
    store.put("docs/old.md", VALIDATORS).unwrap();
    store.put("docs/new.md", VALIDATORS).unwrap();
    store.delete("docs/old.md").unwrap();
    let edited =
        format!("{VALIDATORS}\n## Notes\n\nValidators run in the order they are defined.\n");
    store.put("docs/new.md", &edited).unwrap();
    assert!(markers_of(&store)
        .iter()
        .all(|marker| marker.ends_with("Canonical")));
    // The old path is used again for something else: the moved text is still where it went.
    store.put("docs/old.md", EXPORT_V2).unwrap();
    let markers = markers_of(&store);
    assert!(
        markers
            .iter()
            .filter(|marker| marker.starts_with("docs/new.md"))
            .all(|marker| marker.ends_with("Canonical")),
        "{markers:#?}"
    );
    // Marked again from scratch (an archive folder added at open re-marks everything), the
    // same markers: marking put by put and marking the history at once agree.
    store.save().unwrap();
    let remarked = ContextStore::builder()
        .archive("attic/")
        .open(backing)
        .unwrap();
    assert_eq!(markers_of(&remarked), markers);
}

/// A reranker scoring each candidate by how often its text names `word`, recording what it was
/// given; with `put_during`, it first puts a new version of that document, as another thread
/// could while it runs.
struct WordReranker {
    word: &'static str,
    seen: parking_lot::Mutex<Vec<(String, Vec<String>, f32)>>,
    put_during: Option<(ContextStore, &'static str, &'static str)>,
}

impl WordReranker {
    fn new(word: &'static str) -> WordReranker {
        WordReranker {
            word,
            seen: parking_lot::Mutex::new(Vec::new()),
            put_during: None,
        }
    }
}

impl fourfold::context::Reranker for WordReranker {
    fn rerank(
        &self,
        _query: &str,
        candidates: &[fourfold::context::RerankCandidate],
    ) -> Result<Vec<f32>, String> {
        if let Some((store, key, text)) = &self.put_during {
            store.put(key, text).map_err(|error| error.to_string())?;
        }
        let mut seen = self.seen.lock();
        seen.clear();
        Ok(candidates
            .iter()
            .map(|candidate| {
                seen.push((
                    candidate.key.clone(),
                    candidate.heading_path.clone(),
                    candidate.score,
                ));
                candidate.text.matches(self.word).count() as f32
            })
            .collect())
    }
}

/// A reranker answering with what its function makes of the number of candidates.
struct FailingReranker(fn(usize) -> Result<Vec<f32>, String>);

impl fourfold::context::Reranker for FailingReranker {
    fn rerank(
        &self,
        _query: &str,
        candidates: &[fourfold::context::RerankCandidate],
    ) -> Result<Vec<f32>, String> {
        (self.0)(candidates.len())
    }
}

const TOKENS_DOC: &str = "# Tokens\n\n## Token rotation\n\nTokens rotate every hour; a token older than that is refused.\n";
const SESSIONS_DOC: &str = "# Sessions\n\n## Session tokens\n\nA session token is signed with the vault key and checked on every request to the vault.\n";

#[test]
fn a_reranker_orders_the_candidates_before_the_budget_is_filled() {
    let store = ContextStore::new();
    store.put("docs/tokens.md", TOKENS_DOC).unwrap();
    store.put("docs/sessions.md", SESSIONS_DOC).unwrap();
    store.put("legacy/sessions.md", SESSIONS_DOC).unwrap();
    let plain = store.ask("token rotation", 2_000);
    assert_eq!(plain.hits[0].key, "docs/tokens.md");
    assert!(!plain.reranked && plain.rerank_error.is_none());

    let reranker = Arc::new(WordReranker::new("vault"));
    store.set_reranker(Some(reranker.clone()), 20);
    let answer = store.ask("token rotation", 2_000);
    assert!(answer.reranked, "{answer:?}");
    assert_eq!(answer.hits[0].key, "docs/sessions.md");
    assert_eq!(answer.hits[0].score, 2.0);
    assert!(answer.tokens_served <= 2_000);
    // It was given the search's canonical candidates, with their BM25 scores, and no copy.
    let seen = reranker.seen.lock().clone();
    assert!(seen.len() >= 2, "{seen:?}");
    assert!(seen
        .iter()
        .all(|(key, _, score)| key.starts_with("docs/") && *score > 0.0));
    assert!(seen.contains(&(
        "docs/sessions.md".to_string(),
        vec!["Sessions".to_string(), "Session tokens".to_string()],
        seen.iter()
            .find(|(key, _, _)| key == "docs/sessions.md")
            .unwrap()
            .2
    )));
    // The budget still holds: only what fits is served, in the reranker's order.
    let tight = store.ask("token rotation", 40);
    assert!(tight.tokens_served <= 40, "{tight:?}");
    // A depth of 1 gives it the search's first candidate only.
    store.set_reranker(Some(reranker.clone()), 1);
    let one = store.ask("token rotation", 2_000);
    assert_eq!(reranker.seen.lock().len(), 1);
    assert_eq!(one.hits.len(), 1);
    // Without it, the search's order again.
    store.set_reranker(None, 0);
    assert_eq!(store.ask("token rotation", 2_000), plain);
}

#[test]
fn a_failed_reranker_leaves_the_search_order_and_says_why() {
    let store = ContextStore::new();
    store.put("docs/tokens.md", TOKENS_DOC).unwrap();
    store.put("docs/sessions.md", SESSIONS_DOC).unwrap();
    let plain = store.ask("token rotation", 2_000);
    for (reranker, why) in [
        (
            FailingReranker(|_| Err("the rerank API timed out".into())),
            "timed out",
        ),
        (
            FailingReranker(|n| Ok(vec![1.0; n + 1])),
            "scores for 3 candidates",
        ),
        (
            FailingReranker(|n| Ok(vec![f32::NAN; n])),
            "not a finite number",
        ),
    ] {
        store.set_reranker(Some(Arc::new(reranker)), 20);
        let answer = store.ask("token rotation", 2_000);
        assert!(!answer.reranked);
        assert!(
            answer
                .rerank_error
                .as_deref()
                .is_some_and(|error| error.contains(why)),
            "{answer:?}"
        );
        assert_eq!(answer.hits, plain.hits);
    }
}

#[test]
fn a_section_that_changes_while_the_reranker_runs_is_not_served() {
    let store = ContextStore::new();
    store.put("docs/tokens.md", TOKENS_DOC).unwrap();
    store.put("docs/sessions.md", SESSIONS_DOC).unwrap();
    // The reranker runs without the store locked: it can even put, and the ask does not
    // serve the section version it was given once a newer one replaced it.
    let reranker = WordReranker {
        put_during: Some((
            store.clone(),
            "docs/sessions.md",
            "# Sessions\n\n## Session tokens\n\nSession tokens are opaque ids now; the vault is gone.\n",
        )),
        ..WordReranker::new("vault")
    };
    store.set_reranker(Some(Arc::new(reranker)), 20);
    let answer = store.ask("token rotation session", 2_000);
    assert!(answer.reranked);
    // Its old version, which the reranker scored first, is not served; the new one was not a
    // candidate.
    assert!(
        answer.hits.iter().all(|hit| hit.key != "docs/sessions.md"),
        "{answer:?}"
    );
    assert_eq!(answer.hits[0].key, "docs/tokens.md");
    assert_eq!(store.get("docs/sessions.md").unwrap().version.version, 2);
}

/// A reranker giving the candidates the scores it was made with, in turn (0 past the end).
struct GivenScores(Vec<f32>);

impl fourfold::context::Reranker for GivenScores {
    fn rerank(
        &self,
        _query: &str,
        candidates: &[fourfold::context::RerankCandidate],
    ) -> Result<Vec<f32>, String> {
        Ok((0..candidates.len())
            .map(|idx| self.0.get(idx).copied().unwrap_or(0.0))
            .collect())
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Whatever order a reranker gives, an ask serves only canonical current sections, each
    /// once, within its budget, in the reranker's order.
    #[test]
    fn a_reranked_ask_keeps_to_canonical_sections_and_the_budget(
        ops in proptest::collection::vec((0usize..4, 0usize..TEXTS.len()), 1..10),
        scores in proptest::collection::vec(-100.0f32..100.0, 0..24),
        budget in 0u64..400,
        depth in 1usize..24,
    ) {
        const KEYS: [&str; 4] = ["docs/a.md", "docs/b.md", "legacy/a.md", "docs/c.md"];
        let store = ContextStore::builder().archive("legacy/").build();
        for (key_idx, text_idx) in ops {
            store.put(KEYS[key_idx], TEXTS[text_idx]).unwrap();
        }
        store.set_reranker(Some(Arc::new(GivenScores(scores))), depth);
        for query in ["export model data", "validators", "fields json"] {
            let answer = store.ask(query, budget);
            prop_assert!(answer.tokens_served <= budget, "{:?}", answer);
            prop_assert_eq!(answer.hits.iter().map(|hit| u64::from(hit.tokens)).sum::<u64>(), answer.tokens_served);
            let mut ids: Vec<&str> = answer.hits.iter().map(|hit| hit.section_id.as_str()).collect();
            ids.sort_unstable();
            ids.dedup();
            prop_assert_eq!(ids.len(), answer.hits.len());
            for hit in &answer.hits {
                prop_assert_eq!(hit.freshness, Freshness::Canonical);
                prop_assert!(!hit.key.starts_with("legacy/"));
            }
            prop_assert!(answer.hits.windows(2).all(|pair| pair[0].score >= pair[1].score));
            prop_assert!(answer.hits.is_empty() || answer.reranked);
        }
    }
}

#[test]
fn an_ask_fills_the_budget_only_from_as_many_candidates_as_it_may_serve() {
    let store = ContextStore::new();
    let filler =
        "lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor ".repeat(12);
    store
        .put(
            "docs/rotation.md",
            &format!("# Rotation\n\n## Token rotation schedule\n\nToken rotation happens hourly. {filler}\n"),
        )
        .unwrap();
    store
        .put(
            "docs/vault.md",
            &format!("# Vault\n\n## Token rotation in the vault\n\nThe vault rotates each token; token rotation there is daily. {filler}\n"),
        )
        .unwrap();
    store
        .put(
            "docs/notes.md",
            "# Notes\n\n## Misc\n\nA note on the rotation of a token, kept short: lorem ipsum dolor sit amet consectetur.\n",
        )
        .unwrap();
    for n in 0..6 {
        store
            .put(
                &format!("docs/other-{n}.md"),
                &format!("# Other {n}\n\n## Part\n\n{filler}\n"),
            )
            .unwrap();
    }
    let ranked: Vec<(String, u32)> = store
        .ask_with(
            "token rotation",
            &AskOptions {
                max_hits: 20,
                ..AskOptions::budget(100_000)
            },
        )
        .hits
        .into_iter()
        .map(|hit| (hit.key, hit.tokens))
        .collect();
    // The search's order: a long section, a second long one, then a short one.
    assert_eq!(ranked[0].0, "docs/rotation.md");
    assert_eq!(ranked[1].0, "docs/vault.md");
    assert_eq!(ranked[2].0, "docs/notes.md");
    let budget = u64::from(ranked[0].1 + ranked[2].1) + 10;
    assert!(u64::from(ranked[0].1 + ranked[1].1) > budget);
    // Two hits at most: the second best does not fit what the first leaves, and the third,
    // which would, is not among the two candidates the ask considers.
    let served = |max_hits: usize| -> Vec<String> {
        store
            .ask_with(
                "token rotation",
                &AskOptions {
                    max_hits,
                    ..AskOptions::budget(budget)
                },
            )
            .hits
            .into_iter()
            .map(|hit| hit.key)
            .collect()
    };
    assert_eq!(served(2), ["docs/rotation.md"]);
    assert_eq!(served(3), ["docs/rotation.md", "docs/notes.md"]);
}

/// A backing store that runs `before` once, just before the first compare-and-swap of a record
/// whose key starts with `prefix`: what another process does between this one's reading of the
/// folder and its claim.
struct BeforeClaim {
    inner: Arc<dyn Store>,
    prefix: &'static str,
    before: parking_lot::Mutex<Option<Box<dyn FnOnce() + Send>>>,
}

impl Store for BeforeClaim {
    fn get(&self, namespace: &str, key: &str) -> Result<Option<Vec<u8>>, fourfold::StoreError> {
        self.inner.get(namespace, key)
    }

    fn put(&self, namespace: &str, key: &str, value: &[u8]) -> Result<(), fourfold::StoreError> {
        self.inner.put(namespace, key, value)
    }

    fn delete(&self, namespace: &str, key: &str) -> Result<bool, fourfold::StoreError> {
        self.inner.delete(namespace, key)
    }

    fn list(&self, namespace: &str) -> Result<Vec<String>, fourfold::StoreError> {
        self.inner.list(namespace)
    }

    fn compare_and_swap(
        &self,
        namespace: &str,
        key: &str,
        expected: Option<&[u8]>,
        new: Option<&[u8]>,
    ) -> Result<bool, fourfold::StoreError> {
        if key.starts_with(self.prefix) {
            if let Some(before) = self.before.lock().take() {
                before();
            }
        }
        self.inner.compare_and_swap(namespace, key, expected, new)
    }
}

/// A put whose claim of a journal entry comes after two saves of another process: the first
/// save's previous snapshot held that entry's number and the second deleted it, so the number
/// is free again, but the latest snapshot's range covers it.
#[test]
fn a_put_claiming_a_number_two_saves_freed_is_not_lost() {
    let backing: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let other = ContextStore::open(Arc::clone(&backing)).unwrap();
    other.put("docs/export.md", EXPORT_V1).unwrap();
    other.save().unwrap();
    let hooked = Arc::new(BeforeClaim {
        inner: Arc::clone(&backing),
        prefix: "journal-",
        before: parking_lot::Mutex::new(None),
    });
    let store = ContextStore::open(Arc::clone(&hooked) as Arc<dyn Store>).unwrap();
    *hooked.before.lock() = Some(Box::new(move || {
        other.put("docs/validators.md", VALIDATORS).unwrap();
        other.save().unwrap();
        other.put("docs/export.md", EXPORT_V2).unwrap();
        other.save().unwrap();
    }));
    store.put("docs/gone.md", VALIDATORS).unwrap();
    assert!(hooked.before.lock().is_none(), "the other process ran");
    let expected_keys = vec![
        "docs/export.md".to_string(),
        "docs/gone.md".to_string(),
        "docs/validators.md".to_string(),
    ];
    let reopened = ContextStore::open(Arc::clone(&backing)).unwrap();
    assert_eq!(reopened.keys(), expected_keys);
    assert_eq!(reopened.get("docs/export.md").unwrap().text, EXPORT_V2);
    // The writer's own save takes in the other's writes and keeps its own.
    store.save().unwrap();
    assert_eq!(store.keys(), expected_keys);
    let reopened = ContextStore::open(Arc::clone(&backing)).unwrap();
    assert_eq!(reopened.keys(), expected_keys);
    let previous = ContextStore::builder()
        .open_previous(Arc::clone(&backing))
        .unwrap();
    assert_eq!(previous.keys(), expected_keys);
}

/// Two stores on one folder, each unaware of the other's latest writes: the later put of one
/// key wins on every open, whichever store made it, as it would have with one store.
#[test]
fn the_later_put_wins_though_its_store_had_not_seen_the_earlier() {
    let backing: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let first = ContextStore::open(Arc::clone(&backing)).unwrap();
    let second = ContextStore::open(Arc::clone(&backing)).unwrap();
    for round in 0..3 {
        first.put("docs/export.md", EXPORT_V1).unwrap();
        first.put("docs/validators.md", VALIDATORS).unwrap();
        if round == 1 {
            first.save().unwrap();
        }
        // The second store has not seen the first's puts: it writes the later version.
        let later = format!("{EXPORT_V2}\nRound {round}.\n");
        second.put("docs/export.md", &later).unwrap();
        let reopened = ContextStore::open(Arc::clone(&backing)).unwrap();
        assert_eq!(
            reopened.get("docs/export.md").unwrap().text,
            later,
            "round {round}"
        );
        assert_eq!(reopened.history("docs/export.md").len(), 2 * round + 2);
        assert!(second.refresh().unwrap());
        assert_eq!(
            second.get("docs/export.md").unwrap().text,
            later,
            "round {round}"
        );
        assert!(first.refresh().unwrap());
        assert_eq!(
            first.get("docs/export.md").unwrap().text,
            later,
            "round {round}"
        );
    }
}

/// What one of three stores on a folder does in
/// `stores_on_one_folder_lose_no_put_and_the_last_put_wins`.
#[derive(Clone, Debug)]
enum Step {
    /// Store `who` puts a new text under key `key`.
    Put {
        who: usize,
        key: usize,
    },
    Save {
        who: usize,
    },
    Refresh {
        who: usize,
    },
    /// Store `who` is dropped and opened again, as a new writer.
    Reopen {
        who: usize,
    },
    /// Store `who` ingests the folder `tree` (keys `tree/...`) after changing file `file` of
    /// it, and `steps` run (each by one of the other two stores) once it has put its first file.
    Ingest {
        who: usize,
        file: usize,
        steps: Vec<Step>,
    },
    /// Store `who` puts a new text under `key`, and just before it writes its journal entry,
    /// `steps` run (each by one of the other two stores).
    Meanwhile {
        who: usize,
        key: usize,
        steps: Vec<Step>,
    },
}

/// A put a step made: its key and text, and when it started and ended, in steps.
#[derive(Debug)]
struct PutMade {
    key: usize,
    text: String,
    started: u64,
    ended: u64,
}

/// The three stores, and what their puts made.
struct Writers {
    hooks: Vec<Arc<BeforeClaim>>,
    stores: parking_lot::Mutex<Vec<ContextStore>>,
    made: parking_lot::Mutex<Vec<PutMade>>,
    tick: std::sync::atomic::AtomicU64,
    /// The folder `Step::Ingest` ingests: three files, each changed in turn.
    tree: tempfile::TempDir,
}

impl Writers {
    fn store(&self, who: usize) -> ContextStore {
        self.stores.lock()[who].clone()
    }

    fn tick(&self) -> u64 {
        self.tick.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
    }

    fn put(&self, who: usize, key: usize) {
        let started = self.tick();
        let text = format!("# Page {key}\n\nWritten by store {who} at tick {started}.\n");
        self.store(who)
            .put(&format!("docs/{key}.md"), &text)
            .unwrap();
        let ended = self.tick();
        self.made.lock().push(PutMade {
            key,
            text,
            started,
            ended,
        });
    }

    fn run(self: &Arc<Writers>, step: &Step) {
        match step {
            Step::Put { who, key } => self.put(*who, *key),
            Step::Save { who } => {
                self.store(*who).save().unwrap();
            }
            Step::Refresh { who } => {
                self.store(*who).refresh().unwrap();
            }
            Step::Reopen { who } => {
                let reopened = ContextStore::open(Arc::clone(&self.hooks[*who]) as Arc<dyn Store>);
                self.stores.lock()[*who] = reopened.unwrap();
            }
            Step::Ingest { who, file, steps } => {
                let text = format!("# File {file}\n\nChanged at tick {}.\n", self.tick());
                std::fs::write(self.tree.path().join(format!("{file}.md")), text).unwrap();
                let mut steps = Some(steps);
                self.store(*who)
                    .ingest_dir_as(self.tree.path(), "tree", &[], |_| {
                        for step in steps.take().into_iter().flatten() {
                            self.run(step);
                        }
                    })
                    .unwrap();
            }
            Step::Meanwhile { who, key, steps } => {
                let (writers, steps) = (Arc::clone(self), steps.clone());
                *self.hooks[*who].before.lock() = Some(Box::new(move || {
                    for step in &steps {
                        writers.run(step);
                    }
                }));
                self.put(*who, *key);
                assert!(self.hooks[*who].before.lock().is_none());
            }
        }
    }

    /// Every put made is a version of its key in `store`, and the current text is that of a
    /// put no other put of the key began after.
    fn check(&self, store: &ContextStore, what: &str) {
        // The last ingest's files, as they are now.
        for entry in std::fs::read_dir(self.tree.path()).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_str().unwrap();
            let text = std::fs::read_to_string(&path).unwrap();
            assert_eq!(
                store.get(&format!("tree/{name}")).map(|doc| doc.text),
                Some(text),
                "{what}: tree/{name}"
            );
        }
        let made = self.made.lock();
        for key in 0..3 {
            let name = format!("docs/{key}.md");
            let puts: Vec<&PutMade> = made.iter().filter(|put| put.key == key).collect();
            let mut versions: Vec<String> = store
                .history(&name)
                .iter()
                .map(|version| store.get_version(&name, version.version).unwrap().text)
                .collect();
            versions.sort();
            let mut texts: Vec<String> = puts.iter().map(|put| put.text.clone()).collect();
            texts.sort();
            assert_eq!(versions, texts, "{what}: the versions of {name}");
            let Some(current) = store.get(&name) else {
                assert!(puts.is_empty(), "{what}: {name} is gone");
                continue;
            };
            let last = puts
                .iter()
                .find(|put| put.text == current.text)
                .expect("the current text was put");
            assert!(
                !puts.iter().any(|other| last.ended < other.started),
                "{what}: {name} is {last:?}, put before another"
            );
        }
    }
}

fn leaf_step(n_stores: usize) -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => (0..n_stores, 0usize..3).prop_map(|(who, key)| Step::Put { who, key }),
        2 => (0..n_stores).prop_map(|who| Step::Save { who }),
        1 => (0..n_stores).prop_map(|who| Step::Refresh { who }),
    ]
}

/// `steps` of stores 0 and 1 made steps of the two stores other than `who`.
fn others(who: usize, steps: Vec<Step>) -> Vec<Step> {
    let other = |n: usize| (who + 1 + n) % 3;
    steps
        .into_iter()
        .map(|step| match step {
            Step::Put { who: n, key } => Step::Put { who: other(n), key },
            Step::Save { who: n } => Step::Save { who: other(n) },
            Step::Refresh { who: n } => Step::Refresh { who: other(n) },
            other_step => other_step,
        })
        .collect()
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        6 => leaf_step(3),
        1 => (0usize..3).prop_map(|who| Step::Reopen { who }),
        2 => (0usize..3, 0usize..3, proptest::collection::vec(leaf_step(2), 0..4)).prop_map(
            |(who, file, steps)| Step::Ingest {
                who,
                file,
                steps: others(who, steps),
            }
        ),
        3 => (0usize..3, 0usize..3, proptest::collection::vec(leaf_step(2), 1..6)).prop_map(
            |(who, key, steps)| Step::Meanwhile {
                who,
                key,
                // The other two stores: the one claiming holds its journal meanwhile.
                steps: others(who, steps),
            }
        ),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    /// Three stores on one folder put, ingest, save, refresh and reopen in any order, some while
    /// another's journal write waits to be written or its ingest runs: no put is ever lost, the
    /// text each key ends with is from a put no other put of it began after, and the ingested
    /// files are as the last ingest found them, in every store once it has refreshed, and in a
    /// store opened from the latest snapshot or the one before.
    #[test]
    fn stores_on_one_folder_lose_no_put_and_the_last_put_wins(
        steps in proptest::collection::vec(step(), 1..12),
    ) {
        let backing: Arc<dyn Store> = Arc::new(MemoryStore::new());
        let hooks: Vec<Arc<BeforeClaim>> = (0..3)
            .map(|_| {
                Arc::new(BeforeClaim {
                    inner: Arc::clone(&backing),
                    prefix: "journal-",
                    before: parking_lot::Mutex::new(None),
                })
            })
            .collect();
        let stores = hooks
            .iter()
            .map(|hook| ContextStore::open(Arc::clone(hook) as Arc<dyn Store>).unwrap())
            .collect();
        let writers = Arc::new(Writers {
            hooks,
            stores: parking_lot::Mutex::new(stores),
            made: parking_lot::Mutex::new(Vec::new()),
            tick: std::sync::atomic::AtomicU64::new(0),
            tree: tempfile::tempdir().unwrap(),
        });
        for step in &steps {
            writers.run(step);
        }
        writers.check(&ContextStore::open(Arc::clone(&backing)).unwrap(), "a new store");
        for who in 0..3 {
            let store = writers.store(who);
            store.refresh().unwrap();
            writers.check(&store, &format!("store {who} refreshed"));
        }
        writers.store(0).save().unwrap();
        writers.check(&ContextStore::open(Arc::clone(&backing)).unwrap(), "after a save");
        let previous = ContextStore::builder().open_previous(Arc::clone(&backing)).unwrap();
        writers.check(&previous, "the previous snapshot");
    }
}

/// Another process writes while an ingest runs: the ingest's save takes that write in, and
/// keeps the ingest's own changes, which the journal does not hold.
#[test]
fn an_ingest_keeps_its_changes_when_another_process_writes_meanwhile() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("export.md"), EXPORT_V1).unwrap();
    std::fs::write(dir.path().join("validators.md"), VALIDATORS).unwrap();
    let backing: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let server = ContextStore::open(Arc::clone(&backing)).unwrap();
    let cli = ContextStore::open(Arc::clone(&backing)).unwrap();
    let mut recorded = false;
    let report = cli
        .ingest_dir(dir.path(), &[], |_| {
            if !recorded {
                recorded = true;
                server
                    .record("deploys", "Deploys run from the release branch.")
                    .unwrap();
            }
        })
        .unwrap();
    assert_eq!(report.n_changed, 2);
    let expected = vec!["export.md", "records/deploys.md", "validators.md"];
    assert_eq!(cli.keys(), expected);
    let reopened = ContextStore::open(Arc::clone(&backing)).unwrap();
    assert_eq!(reopened.keys(), expected);
}
