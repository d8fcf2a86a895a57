"""ContextStore from Python: versions, sections, canonical marking, asking within a budget,
changes since a read, and ingesting a folder of real documentation (the shared corpus when present)."""

from __future__ import annotations

import _thread
import threading
import time
from pathlib import Path

import pytest

import fourfold

GUIDE = """# Models

Models are classes that inherit from `BaseModel` and define fields as annotated attributes.

## Validation

Validation happens when a model is created: each field's value is checked against its annotation,
coerced where a lossless conversion exists, and a `ValidationError` lists every failure at once.

## Serialization

`model_dump()` returns a dict of the fields and `model_dump_json()` a JSON string; both take
`include`, `exclude` and `by_alias` to shape what comes out.
"""


def test_each_put_makes_a_version_and_old_versions_stay_history() -> None:
    store = fourfold.ContextStore()
    first = store.put("docs/models.md", GUIDE)
    assert (first["key"], first["version"], first["n_sections"]) == ("docs/models.md", 1, 3)
    second = store.put("docs/models.md", GUIDE.replace("lists every failure", "lists each failure"))
    assert second["version"] == 2 and second["hash"] != first["hash"]
    assert [version["version"] for version in store.history("docs/models.md")] == [1, 2]
    assert store.get("docs/models.md") is not None and "each failure" in store.get("docs/models.md")  # type: ignore[operator]
    assert store.keys() == ["docs/models.md"] and len(store) == 1
    assert store.delete("docs/models.md") and not store.delete("docs/models.md")
    assert store.get("docs/models.md") is None
    # Old versions stay readable, after later puts and after the delete.
    assert store.get("docs/models.md", version=1) == GUIDE
    assert "each failure" in (store.get("docs/models.md", 2) or "")
    assert store.get("docs/models.md", version=3) is None and store.get("docs/other.md", 1) is None


def test_ask_serves_the_best_canonical_section_within_the_budget() -> None:
    store = fourfold.ContextStore(archive=["legacy/"])
    store.put("docs/models.md", GUIDE)
    store.put("legacy/models-v1.md", GUIDE)
    answer = store.ask("how does validation report errors", 200, with_copies=True)
    best = answer.hits[0]
    assert best.key == "docs/models.md" and best.heading_path == ["Models", "Validation"]
    assert best.freshness == "canonical" and best.text is not None and "ValidationError" in best.text
    assert best.pointer == f"docs/models.md:{best.line_start}"
    assert answer.tokens_served <= 200 and answer.tokens_served < answer.tokens_baseline
    assert all(hit.key != "legacy/models-v1.md" for hit in answer.hits)
    assert [copy.freshness for copy in answer.copies if copy.key == "legacy/models-v1.md"] == ["stale"]
    section = store.get_section(best.section_id)
    assert section is not None and section.pointer == best.pointer and section.freshness == "canonical"
    assert store.get_section("nope") is None
    assert best.to_dict()["section_id"] == best.section_id
    assert repr(answer).startswith("Answer(hits=['docs/models.md:")


def test_compact_folds_puts_in_and_answers_stay_the_same() -> None:
    store = fourfold.ContextStore()
    for n in range(40):
        store.put(f"docs/guide-{n}.md", GUIDE.replace("Models", f"Models {n}").replace("dict", f"dict{n % 7}"))
    store.delete("docs/guide-3.md")
    before = store.ask("model_dump dict3 include exclude", 2000, max_hits=4)
    assert store.compact() and not store.compact()
    after = store.ask("model_dump dict3 include exclude", 2000, max_hits=4)
    assert [hit.section_id for hit in after.hits] == [hit.section_id for hit in before.hits]
    assert len(after.hits) == 4 and after.hits[0].key != "docs/guide-3.md"
    assert after.tokens_served == before.tokens_served


MIGRATION = """# Migration guide

## Changes to config

* `orm_mode` has been renamed to `from_attributes`.
"""


def test_an_old_name_is_searched_as_the_new_name_the_docs_state() -> None:
    store = fourfold.ContextStore()
    store.put("docs/models.md", "# Models\n\n## From objects\n\nSet from_attributes and call model_validate.\n")
    query = "load a model from an object, orm_mode fails"
    assert store.ask(query, 500).renames == []
    store.put("docs/migration.md", MIGRATION)
    answer = store.ask(query, 500)
    [rename] = answer.renames
    assert isinstance(rename, fourfold.Rename)
    assert (rename.old, rename.new, rename.pointer) == ("orm_mode", "from_attributes", "docs/migration.md:3")
    assert repr(rename) == "Rename(old='orm_mode', new='from_attributes', pointer='docs/migration.md:3')"
    assert answer.hits[0].key == "docs/models.md"
    assert answer.to_dict()["renames"] == [
        {"old": "orm_mode", "new": "from_attributes", "pointer": "docs/migration.md:3"}
    ]


def test_changed_since_names_the_reads_that_are_no_longer_current() -> None:
    store = fourfold.ContextStore()
    store.put("docs/models.md", GUIDE)
    hits = store.ask("serialization model_dump", 500).hits
    assert store.changed_since(hits) == []
    store.put("docs/models.md", GUIDE.replace("`model_dump()` returns", "`model_dump()` gives"))
    changes = store.changed_since(hits)
    assert [change.section_id for change in changes] == [hits[0].section_id]
    assert changes[0].current_version == 2 and changes[0].version == 1
    with pytest.raises(fourfold.InvalidRequest, match="Hit or Section"):
        store.changed_since(["docs/models.md"])  # type: ignore[list-item]


def test_a_store_opened_from_a_folder_saves_and_reopens_without_reingesting(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "context"
    store = fourfold.ContextStore.open(folder, archive=["legacy/"])
    assert len(store) == 0
    store.put("docs/models.md", GUIDE)
    store.put("legacy/models.md", GUIDE)
    saved = store.save()
    assert saved["n_documents"] == 2 and saved["n_bytes"] > 0

    reopened = fourfold.ContextStore.open(folder, archive=["legacy/"])
    assert sorted(reopened.keys()) == ["docs/models.md", "legacy/models.md"]
    best = reopened.ask("model_dump include exclude", 500).hits[0]
    assert best.key == "docs/models.md" and best.freshness == "canonical"
    assert reopened.history("docs/models.md")[0]["version"] == 1


def test_save_needs_a_folder_and_a_damaged_snapshot_is_a_typed_error(tmp_path: Path) -> None:
    with pytest.raises(fourfold.ContextError, match="nowhere|backing"):
        fourfold.ContextStore().save()

    folder = tmp_path / "context"
    store = fourfold.ContextStore.open(folder)
    store.put("docs/models.md", GUIDE)
    store.save()
    store.put("docs/models.md", GUIDE + "\n## Copying\n\n`model_copy()` copies a model.\n")
    store.save()
    latest = folder / "context" / "snapshot"
    latest.write_bytes(latest.read_bytes()[:100])
    with pytest.raises(fourfold.ContextError, match="truncated"):
        fourfold.ContextStore.open(folder)
    # The snapshot saved before it is still there to fall back on, and with the journal of the
    # changes since, it gives the latest state.
    previous = fourfold.ContextStore.open(folder, previous=True)
    assert [version["version"] for version in previous.history("docs/models.md")] == [1, 2]


def test_changes_outlive_the_store_without_a_save(tmp_path: Path) -> None:
    folder = tmp_path / "context"
    store = fourfold.ContextStore.open(folder)
    store.put("docs/models.md", GUIDE)
    store.record("deploys", "Deploys run from the release branch only.")
    del store
    journal = sorted(path.name for path in (folder / "context").glob("journal-*"))
    assert len(journal) == 2 and not (folder / "context" / "snapshot").exists()
    again = fourfold.ContextStore.open(folder)
    assert again.keys() == ["docs/models.md", "records/deploys.md"]
    again.save()
    assert (folder / "context" / "snapshot").exists()


def test_refresh_takes_in_what_another_store_wrote_to_the_same_folder(tmp_path: Path) -> None:
    server = fourfold.ContextStore.open(tmp_path)
    other = fourfold.ContextStore.open(tmp_path)
    feed = server.subscribe()
    assert server.refresh() is False
    other.put("docs/models.md", GUIDE)
    assert server.get("docs/models.md") is None
    assert server.refresh() is True and server.get("docs/models.md") == GUIDE
    assert [change["key"] for change in feed.drain()] == ["docs/models.md"]
    assert server.refresh() is False and fourfold.ContextStore().refresh() is False


def test_the_context_of_a_config_with_a_snapshot_saves_there(tmp_path: Path) -> None:
    (tmp_path / "policy.toml").write_text('[[rule]]\nid = "read"\neffect = "allow"\nread = ["docs/**"]\n')
    (tmp_path / "fourfold.toml").write_text(
        '[policy]\nfile = "policy.toml"\n[context]\nsnapshot = "state/context"\n'
    )
    context = fourfold.Fourfold.from_config(tmp_path / "fourfold.toml").context
    assert context is not None
    context.record("deploys", "Deploys run from the release branch only.")
    assert context.save()["n_documents"] == 1
    again = fourfold.Fourfold.from_config(tmp_path / "fourfold.toml").context
    assert again is not None and again.keys() == ["records/deploys.md"]
    assert fourfold.ContextStore.open(tmp_path / "state/context").keys() == ["records/deploys.md"]


def test_a_feed_reports_each_change_after_subscribing() -> None:
    store = fourfold.ContextStore()
    store.put("docs/models.md", GUIDE)
    feed = store.subscribe()
    assert feed.get(timeout=0.01) is None and len(feed) == 0
    store.put("docs/models.md", GUIDE.replace("`model_dump()` returns", "`model_dump()` gives"))
    store.delete("docs/models.md")
    assert len(feed) == 2
    changed = feed.get(timeout=1.0)
    assert changed is not None
    assert changed["key"] == "docs/models.md" and changed["version"] == 2
    assert len(changed["changed_sections"]) == 1 and changed["removed_sections"] == []
    [deleted] = feed.drain()
    assert deleted["version"] is None and len(deleted["removed_sections"]) == 3
    assert feed.drain() == []
    with pytest.raises(fourfold.InvalidRequest, match="timeout"):
        feed.get(timeout=-1.0)


def test_a_feed_that_falls_behind_counts_what_it_missed() -> None:
    store = fourfold.ContextStore()
    feed = store.subscribe()
    for n in range(1030):
        store.put("docs/count.md", f"# Count\n\n{n}\n")
    assert len(feed) == 1024 and feed.missed == 6
    assert [change["version"] for change in feed.drain()] == list(range(1, 1025))
    store.put("docs/count.md", "# Count\n\nagain\n")
    change = feed.get(timeout=1.0)
    assert change is not None and change["version"] == 1031 and feed.missed == 6
    assert "missed=6" in repr(feed)


def test_bad_keys_are_typed_errors() -> None:
    store = fourfold.ContextStore()
    with pytest.raises(fourfold.InvalidRequest):
        store.put("", "text")
    with pytest.raises(ValueError):
        store.put("docs/a\0b.md", "text")


def test_put_many_puts_in_order_as_a_loop_of_puts_would() -> None:
    pages = {f"docs/page-{n}.md": GUIDE.replace("Models", f"Models {n}") for n in range(40)}
    batched, looped = fourfold.ContextStore(), fourfold.ContextStore()
    versions = batched.put_many(pages.items())
    assert [version["key"] for version in versions] == list(pages)
    for key, text in pages.items():
        looped.put(key, text)
    assert batched.keys() == looped.keys() == sorted(pages)
    # A key put twice in one batch, and a text put again unchanged.
    again = batched.put_many([("docs/page-1.md", "# One\n\nnew text\n"), ("docs/page-1.md", GUIDE)])
    assert [version["version"] for version in again] == [2, 3]
    assert batched.put_many([("docs/page-1.md", GUIDE)])[0]["version"] == 3
    first = batched.ask("how does validation report errors", 200).hits[0]
    assert first.key == looped.ask("how does validation report errors", 200).hits[0].key


def test_put_many_checks_every_key_first_and_refuses_what_is_not_pairs() -> None:
    store = fourfold.ContextStore()
    with pytest.raises(fourfold.InvalidRequest):
        store.put_many([("docs/a.md", GUIDE), ("", GUIDE)])
    assert store.keys() == []
    for not_pairs in (["docs/a.md"], [("docs/a.md", 3)], 7):
        with pytest.raises(TypeError, match="pairs"):
            store.put_many(not_pairs)  # type: ignore[arg-type]
    assert store.keys() == []


def test_ingest_dir_reads_a_folder_and_reingests_only_what_changed(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "models.md").write_text(GUIDE)
    (tmp_path / "docs" / "logo.png").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00")
    (tmp_path / "docs" / "old.md").write_text("# Old\n\nGone soon.\n")
    store = fourfold.ContextStore()
    report = store.ingest_dir(tmp_path, ["**/*.md", "**/*.png"])
    assert (report["n_files"], report["n_changed"]) == (3, 2)
    assert [skipped[0] for skipped in report["skipped"]] == ["docs/logo.png"]
    (tmp_path / "docs" / "old.md").unlink()
    again = store.ingest_dir(tmp_path, ["**/*.md"])
    assert (again["n_changed"], again["n_unchanged"], again["deleted"]) == (0, 1, ["docs/old.md"])
    with pytest.raises(fourfold.InvalidRequest, match="glob"):
        store.ingest_dir(tmp_path, ["[unclosed"])
    with pytest.raises(fourfold.ContextError):
        store.ingest_dir(tmp_path / "missing")
    # Under a prefix, the same files are keyed under it, and their old keys retired.
    moved = store.ingest_dir(tmp_path, prefix="handbook")
    assert moved["deleted"] == ["docs/models.md"] and store.keys() == ["handbook/docs/models.md"]
    with pytest.raises(fourfold.InvalidRequest, match="invalid key prefix `../up`"):
        store.ingest_dir(tmp_path / "docs", prefix="../up")


def test_a_feed_waits_across_signal_checks_and_ctrl_c_interrupts_it() -> None:
    store = fourfold.ContextStore()
    feed = store.subscribe()
    later = threading.Timer(0.25, lambda: store.put("docs/models.md", GUIDE))
    later.start()
    change = feed.get(timeout=5.0)
    later.join()
    assert change is not None and change["key"] == "docs/models.md"
    # A wait without a timeout still checks for signals, so Ctrl-C ends it.
    interrupt = threading.Timer(0.25, _thread.interrupt_main)
    interrupt.start()
    with pytest.raises(KeyboardInterrupt):
        feed.get()
    interrupt.join()
    # close() from another thread ends a wait without a timeout; a closed feed gives nothing.
    closing = threading.Timer(0.25, feed.close)
    closing.start()
    assert feed.get() is None and feed.closed
    closing.join()
    store.put("docs/models.md", GUIDE + "\nOne more line.\n")
    assert feed.get(timeout=0.5) is None and feed.drain() == []
    # Iterating a feed yields each change and ends when the feed is closed.
    listening = store.subscribe()
    seen: list[int] = []

    def listen() -> None:
        for change in listening:
            seen.append(change["version"])

    listener = threading.Thread(target=listen)
    listener.start()
    store.put("docs/models.md", GUIDE + "\nTwo more lines.\n")
    store.put("docs/models.md", GUIDE + "\nThree more lines.\n")
    while len(seen) < 2:
        time.sleep(0.01)
    listening.close()
    listener.join(timeout=5)
    assert not listener.is_alive() and seen == [3, 4]


def test_ingest_dir_reports_progress_after_each_file(tmp_path: Path) -> None:
    for name in ("a", "b", "c"):
        (tmp_path / f"{name}.md").write_text(f"# {name}\n\nAbout {name}.\n")
    store = fourfold.ContextStore()
    seen: list[int] = []
    report = store.ingest_dir(tmp_path, progress=lambda so_far: seen.append(so_far["n_files"]))
    assert seen == [1, 2, 3] and report["n_files"] == 3

    (tmp_path / "d.md").write_text("# d\n\nAbout d.\n")
    calls: list[int] = []

    def stop(so_far: dict[str, object]) -> None:
        calls.append(1)
        raise RuntimeError("stop showing progress")

    with pytest.raises(RuntimeError, match="stop showing progress"):
        store.ingest_dir(tmp_path, progress=stop)
    # Called once, and the ingest still went through to the end.
    assert calls == [1] and "d.md" in store.keys()


CORPUS = Path(__file__).resolve().parents[3] / "shared" / "corpus" / "pydantic"


@pytest.mark.skipif(not CORPUS.is_dir(), reason="the shared documentation corpus is not on this machine")
def test_ingest_the_shared_corpus_and_ask_it() -> None:
    store = fourfold.ContextStore()
    report = store.ingest_dir(CORPUS, ["**/*.md"])
    assert report["n_files"] > 10
    answer = store.ask("how do I validate an email address field", 1500)
    assert answer.hits and all(hit.freshness == "canonical" for hit in answer.hits)
    assert answer.tokens_served <= 1500


TOKENS = "# Tokens\n\n## Token rotation\n\nTokens rotate every hour; a token older than that is refused.\n"
SESSIONS = "# Sessions\n\n## Session tokens\n\nA session token is signed with the vault key and checked on every request to the vault.\n"


def test_a_reranker_orders_what_an_ask_serves() -> None:
    store = fourfold.ContextStore()
    store.put("docs/tokens.md", TOKENS)
    store.put("docs/sessions.md", SESSIONS)
    plain = store.ask("token rotation", 2000)
    assert plain.hits[0].key == "docs/tokens.md" and not plain.reranked and plain.rerank_error is None
    given: list[list[dict[str, object]]] = []

    def vault_first(query: str, candidates: list[dict[str, object]]) -> tuple[float, ...]:
        given.append(candidates)
        assert query == "token rotation"
        # Any iterable of numbers will do (a NumPy array, say): here a tuple.
        return tuple(float(str(candidate["text"]).count("vault")) for candidate in candidates)

    store.set_reranker(vault_first, depth=10)
    answer = store.ask("token rotation", 2000)
    assert answer.reranked and answer.hits[0].key == "docs/sessions.md" and answer.hits[0].score == 2.0
    assert answer.to_dict()["reranked"] is True
    candidate = next(candidate for candidate in given[-1] if candidate["key"] == "docs/sessions.md")
    assert candidate["heading_path"] == ["Sessions", "Session tokens"] and "vault key" in str(candidate["text"])
    assert isinstance(candidate["score"], float) and candidate["score"] > 0
    # A reranker that raises, or returns something else than numbers: the search's order, and why.
    def broken(query: str, candidates: list[dict[str, object]]) -> list[float]:
        raise RuntimeError("the rerank API is down")

    store.set_reranker(broken)
    failed = store.ask("token rotation", 2000)
    assert not failed.reranked and [hit.key for hit in failed.hits] == [hit.key for hit in plain.hits]
    assert failed.rerank_error is not None and "the rerank API is down" in failed.rerank_error
    store.set_reranker(lambda query, candidates: ["high"] * len(candidates))  # type: ignore[list-item]
    assert "did not return numbers" in (store.ask("token rotation", 2000).rerank_error or "")
    store.set_reranker(None)
    assert [hit.key for hit in store.ask("token rotation", 2000).hits] == [hit.key for hit in plain.hits]
    with pytest.raises(TypeError, match="callable"):
        store.set_reranker("cross-encoder")  # type: ignore[arg-type]
    with pytest.raises(fourfold.InvalidRequest, match="at least 1"):
        store.set_reranker(vault_first, depth=0)


def test_a_reranker_that_does_not_answer_in_time_leaves_the_search_order() -> None:
    store = fourfold.ContextStore()
    store.put("docs/tokens.md", TOKENS)
    store.put("docs/sessions.md", SESSIONS)
    plain = [hit.key for hit in store.ask("token rotation", 2000).hits]
    release = threading.Event()
    calls: list[str] = []

    def hanging(query: str, candidates: list[dict[str, object]]) -> list[float]:
        calls.append(threading.current_thread().name)
        release.wait(60)
        return [float(str(candidate["text"]).count("vault")) for candidate in candidates]

    store.set_reranker(hanging, timeout=0.05)
    late = store.ask("token rotation", 2000)
    assert not late.reranked and [hit.key for hit in late.hits] == plain
    assert late.rerank_error == "the reranker did not answer within 50 ms"
    # Each call that outlives its ask keeps a thread; past 16 of them, asks do not wait at all.
    for _ in range(15):
        assert "within 50 ms" in (store.ask("token rotation", 2000).rerank_error or "")
    assert len(calls) == 16
    assert store.ask("token rotation", 2000).rerank_error == "16 calls of the reranker are still running"
    assert len(calls) == 16
    release.set()
    # Once the calls return, the reranker orders the asks again.
    deadline = time.monotonic() + 30
    while not (answer := store.ask("token rotation", 2000)).reranked and time.monotonic() < deadline:
        time.sleep(0.05)
    assert answer.reranked and answer.hits[0].key == "docs/sessions.md"
    # Without a timeout it runs in the ask's own thread.
    store.set_reranker(hanging, timeout=None)
    assert store.ask("token rotation", 2000).reranked and calls[-1] == threading.current_thread().name
    for bad in (0, -1.0, float("nan"), float("inf")):
        with pytest.raises(fourfold.InvalidRequest, match="timeout"):
            store.set_reranker(hanging, timeout=bad)


def test_a_fourfold_sessions_asks_use_its_stores_reranker() -> None:
    ff = fourfold.Fourfold('[[rule]]\nid = "docs"\neffect = "allow"\nagents = ["coder"]\nread = ["docs/**"]\n', cost=False)
    assert ff.context is not None
    ff.context.put("docs/tokens.md", TOKENS)
    ff.context.put("docs/sessions.md", SESSIONS)
    ff.context.set_reranker(lambda query, candidates: [str(candidate["text"]).count("vault") for candidate in candidates])
    session = ff.session("coder")
    answer = session.ask("token rotation", 2000)
    assert answer.reranked and answer.hits[0].key == "docs/sessions.md"
    # The session still remembers what it served: asked again, a pointer.
    assert session.ask("token rotation", 2000).hits[0].already_served
