"""Shared fixtures of the Python binding's tests: one policy, and a Fourfold built from it with an in-memory tracer."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import fourfold

POLICY = """
[[rule]]
id = "coder-src"
effect = "allow"
agents = ["coder"]
read = ["**"]
write = ["src/**"]
run = ["cargo test*", "git push*", "cat *"]
tools = [{ name = "search" }, { name = "send_email" }, { name = "llm" }]

[[rule]]
id = "no-secrets"
effect = "deny"
read = [".env", "*.pem"]

[[rule]]
id = "fresh-writes"
effect = "gate"
agents = ["coder"]
gates = ["context-fresh"]
write = ["src/**"]

[[rule]]
id = "push-review"
effect = "gate"
gates = ["human-review"]
run = ["git push*"]

[[rule]]
id = "mail-review"
effect = "gate"
gates = ["human-review"]
tools = [{ name = "send_email" }]

[[rule]]
id = "model-calls"
effect = "gate"
gates = ["budget"]
tools = [{ name = "llm" }]
"""

AUTH_V1 = "# Auth\n\n## Login\n\nCall `login(user, password)` to open a session; it returns a token.\n"
AUTH_V2 = "# Auth\n\n## Login\n\nCall `login(credentials)` with a `Credentials` value; the two-argument form is gone.\n"


@pytest.fixture
def tracer() -> fourfold.Tracer:
    return fourfold.Tracer(memory=True)


@pytest.fixture
def ff(tracer: fourfold.Tracer) -> Iterator[fourfold.Fourfold]:
    built = fourfold.Fourfold(POLICY, root="/repo", tracer=tracer)
    context = built.context
    assert context is not None
    context.put("docs/auth.md", AUTH_V1)
    yield built
    tracer.close()


def events(tracer: fourfold.Tracer, kind: str | None = None) -> list[fourfold.Event]:
    """The events the tracer has written so far, of one kind or all."""
    tracer.flush()
    return [event for event in tracer.events() if kind is None or event.kind == kind]
