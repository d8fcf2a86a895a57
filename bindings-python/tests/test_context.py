"""ContextStore from Python: versions, sections, canonical marking, asking within a budget,
changes since a read, and ingesting a folder of real documentation (the shared corpus when present)."""

from __future__ import annotations

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


def test_bad_keys_are_typed_errors() -> None:
    store = fourfold.ContextStore()
    with pytest.raises(fourfold.InvalidRequest):
        store.put("", "text")
    with pytest.raises(ValueError):
        store.put("docs/a\0b.md", "text")


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


CORPUS = Path(__file__).resolve().parents[3] / "shared" / "corpus" / "pydantic"


@pytest.mark.skipif(not CORPUS.is_dir(), reason="the shared documentation corpus is not on this machine")
def test_ingest_the_shared_corpus_and_ask_it() -> None:
    store = fourfold.ContextStore()
    report = store.ingest_dir(CORPUS, ["**/*.md"])
    assert report["n_files"] > 10
    answer = store.ask("how do I validate an email address field", 1500)
    assert answer.hits and all(hit.freshness == "canonical" for hit in answer.hits)
    assert answer.tokens_served <= 1500
