"""Tracer, TraceReader and Event from Python: recording to a file, reading back by filter,
explaining a run, and the typed errors for damaged files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import fourfold


def record_two_runs(path: Path) -> tuple[str, str]:
    tracer = fourfold.Tracer(path, jsonl=path.with_suffix(".jsonl"))
    with tracer.start_run("coder", "T-1") as run:
        with run.span("plan") as step:
            step.decide("edit login", "the doc says so", ["ask"])
            with step.child("cargo test", "tool_call") as tool:
                tool.act("run", {"command": "cargo test", "token": "Bearer abcdefghijklmnopqrstuvwxyz0123"}, duration_ms=3)
        run.act("edit", {"path": "src/a.rs"}, error="disk full")
        first = run.id
    with tracer.start_run("reviewer") as run:
        run.decide("approve", "looks fine")
        second = run.id
    tracer.close()
    return first, second


def test_a_trace_file_reads_back_by_run_kind_and_agent(tmp_path: Path) -> None:
    path = tmp_path / "run.trace"
    first, second = record_two_runs(path)
    assert fourfold.TraceReader.verify(path) > 0
    reader = fourfold.TraceReader(path)
    assert reader.run_ids() == [first, second]
    assert reader.torn_tail is None and reader.n_frames > 0
    assert [event.kind for event in reader.events(run=first)] == ["decision", "action", "action"]
    assert [event.data["choice"] for event in reader.events(kind="decision")] == ["edit login", "approve"]
    assert [event.run_id for event in reader.events(agent="reviewer")] == [second]
    assert [event.kind for event in reader.events(task="T-1", kind="action")] == ["action", "action"]
    everything = reader.events()
    last = everything[-1].timestamp_ns
    assert [event.seq for event in reader.events(since_ns=last)] == [event.seq for event in everything if event.timestamp_ns >= last]
    assert reader.events(until_ns=0) == []
    # Secrets are masked before they leave the caller's thread.
    arguments = reader.events(kind="action")[0].data["arguments_json"]
    assert "abcdefghijklmnopqrstuvwxyz0123" not in arguments
    # The JSON Lines sink got the same events.
    lines = [json.loads(line) for line in path.with_suffix(".jsonl").read_text().splitlines()]
    assert len(lines) >= 5


def test_explain_says_what_a_run_did(tmp_path: Path) -> None:
    path = tmp_path / "run.trace"
    first, _ = record_two_runs(path)
    explained = fourfold.TraceReader(path).explain(first)
    assert explained["run_id"] == first and explained["agent_id"] == "coder"
    assert [action["action"]["tool"] for action in explained["actions"]] == ["run", "edit"]
    with pytest.raises(fourfold.InvalidRequest):
        fourfold.TraceReader(path).explain("run-nope")


def test_bad_filters_are_typed_errors(tmp_path: Path) -> None:
    path = tmp_path / "run.trace"
    record_two_runs(path)
    reader = fourfold.TraceReader(path)
    with pytest.raises(fourfold.InvalidRequest, match="event kind"):
        reader.events(kind="meeting")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="gate outcome"):
        reader.events(gate_outcome="maybe")  # type: ignore[arg-type]


def test_a_damaged_trace_raises_trace_corrupt_naming_the_frame(tmp_path: Path) -> None:
    path = tmp_path / "run.trace"
    record_two_runs(path)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(fourfold.TraceCorrupt, match="frame"):
        fourfold.TraceReader.verify(path)
    with pytest.raises(fourfold.TraceCorrupt):
        fourfold.TraceReader(path).events()


def test_a_torn_tail_is_reported_not_an_error(tmp_path: Path) -> None:
    path = tmp_path / "run.trace"
    first, second = record_two_runs(path)
    whole = path.read_bytes()
    path.write_bytes(whole[:-3])
    reader = fourfold.TraceReader(path)
    assert reader.torn_tail is not None
    offset, n_bytes = reader.torn_tail
    assert offset + n_bytes == len(whole) - 3
    assert reader.run_ids()[0] == first


def test_not_a_trace_and_a_missing_file_are_typed_errors(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(fourfold.TraceCorrupt, match="not a fourfold trace"):
        fourfold.TraceReader(tmp_path / "notes.txt")
    with pytest.raises(fourfold.TraceError) as missing:
        fourfold.TraceReader(tmp_path / "missing.trace")
    assert isinstance(missing.value, OSError)
    with pytest.raises(fourfold.TraceError):
        fourfold.Tracer(tmp_path / "no" / "such" / "dir" / "x.trace")


def test_events_are_small_classes_with_dicts_and_reprs() -> None:
    tracer = fourfold.Tracer()
    run = tracer.start_run("coder", "T-9")
    span = run.span("call", "llm_call")
    span.act("chat gpt-4o", {"messages": [{"role": "user", "content": "hi"}]}, result_digest="x")
    span.end("rate limited")
    span.end()  # ending twice does nothing
    with pytest.raises(fourfold.TraceError, match="ended"):
        span.act("late")
    run.end()
    tracer.flush()
    (event,) = tracer.events()
    assert (event.agent, event.task, event.kind, event.span_id) == ("coder", "T-9", "action", span.id)
    assert event.to_dict()["data"]["tool"] == "chat gpt-4o"
    assert repr(event).startswith("Event(kind='action', run_id=")
    assert repr(span) == f"Span(id={span.id}, ended)"
    with pytest.raises(fourfold.InvalidRequest):
        fourfold.Tracer(overflow="spill")  # type: ignore[arg-type]
    with pytest.raises(fourfold.InvalidRequest):
        run.span("x", "nap")  # type: ignore[arg-type]


def test_a_tracer_without_a_memory_sink_says_so(tmp_path: Path) -> None:
    tracer = fourfold.Tracer(tmp_path / "x.trace")
    with pytest.raises(fourfold.InvalidRequest, match="in-memory"):
        tracer.events()
    tracer.close()


def test_custom_redaction_patterns_mask_before_recording() -> None:
    tracer = fourfold.Tracer(redact_patterns=[("ticket", r"TICKET-\d+")])
    run = tracer.start_run("coder")
    run.act("note", {"text": "see TICKET-4242 and mail bob@example.com"})
    run.end()
    tracer.flush()
    text = tracer.events()[0].data["arguments_json"]
    assert "TICKET-4242" not in text and "bob@example.com" not in text
    with pytest.raises(fourfold.ConfigError):
        fourfold.Tracer(redact_patterns=[("bad", "(")])
