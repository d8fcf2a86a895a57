"""Long calls release the GIL: while one thread counts, ingests or reads a trace, another Python
thread keeps running (every call into the core does, `ask` included; these are the ones long enough
to observe). (Not a speed test: it checks when the other thread ran, not how fast.)"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Callable

import pytest

import fourfold

TEXT = "The quick brown fox jumps over the lazy dog; 世界 🙂 snake_case 12345.\n" * 60_000


def other_thread_ran_during(call: Callable[[], object]) -> float:
    """The share of `call`'s duration during which another Python thread was running."""
    window: list[float] = []
    stamps: list[float] = []

    def worker() -> None:
        window.append(time.perf_counter())
        call()
        window.append(time.perf_counter())

    thread = threading.Thread(target=worker)
    thread.start()
    while thread.is_alive():
        stamps.append(time.perf_counter())
    thread.join()
    started, ended = window
    inside = [stamp for stamp in stamps if started < stamp < ended]
    if len(inside) < 2:
        return 0.0
    return (max(inside) - min(inside)) / (ended - started)


def long_enough(call: Callable[[], object]) -> None:
    """Skips a machine so fast that the call is too short to tell (under 50 ms)."""
    started = time.perf_counter()
    call()
    if time.perf_counter() - started < 0.05:
        pytest.skip("the call is too short on this machine to tell")


def test_counting_releases_the_gil() -> None:
    call = lambda: fourfold.count_tokens("o200k_base", TEXT)  # noqa: E731
    long_enough(call)
    assert other_thread_ran_during(call) > 0.5


def test_ingesting_releases_the_gil(tmp_path: Path) -> None:
    for idx in range(12):
        (tmp_path / f"doc-{idx}.md").write_text(f"# Doc {idx}\n\n" + TEXT[: 40_000 + idx])
    store = fourfold.ContextStore()
    started = time.perf_counter()
    share = other_thread_ran_during(lambda: store.ingest_dir(tmp_path, ["*.md"]))
    if time.perf_counter() - started < 0.05:
        pytest.skip("the call is too short on this machine to tell")
    assert share > 0.5


def test_reading_a_trace_releases_the_gil(tmp_path: Path) -> None:
    tracer = fourfold.Tracer(tmp_path / "big.trace", redact=False)
    run = tracer.start_run("coder")
    for idx in range(20_000):
        run.act("tool", {"idx": idx, "text": "x" * 200})
    run.end()
    tracer.close()
    reader = fourfold.TraceReader(tmp_path / "big.trace")
    call = lambda: reader.events(kind="action")  # noqa: E731
    long_enough(call)
    assert other_thread_ran_during(call) > 0.5
