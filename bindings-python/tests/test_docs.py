"""The Python examples of the docs run as written: every ```python block of docs/python.md, of the
package README and of the repository README."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DOCS = [REPO / "docs" / "python.md", REPO / "bindings-python" / "README.md", REPO / "README.md"]


def python_blocks() -> list[tuple[str, str]]:
    blocks = []
    for doc in DOCS:
        for idx, block in enumerate(re.findall(r"```python\n(.*?)```", doc.read_text(), flags=re.S)):
            blocks.append((f"{doc.relative_to(REPO)}#{idx}", block))
    return blocks


BLOCKS = python_blocks()


def test_the_docs_have_python_examples() -> None:
    assert {name.split("#")[0] for name, _ in BLOCKS} == {str(doc.relative_to(REPO)) for doc in DOCS}


@pytest.mark.parametrize("name, code", BLOCKS, ids=[name for name, _ in BLOCKS])
def test_a_docs_example_runs(name: str, code: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    exec(compile(code, name, "exec"), {"__name__": "__docs__"})
