"""A typed program against fourfold's public API; `mypy --strict` must accept it (see test_types.py).
It also runs, as a smoke test of the same calls."""

from __future__ import annotations

import fourfold
from fourfold.langchain import FourfoldCallbackHandler, FourfoldMiddleware, FourfoldRetriever

POLICY = """
[[rule]]
id = "coder"
effect = "allow"
agents = ["coder"]
read = ["**"]
tools = [{ name = "search" }]

[[rule]]
id = "deploys"
effect = "gate"
gates = ["human-review"]
run = ["deploy*"]
"""


class AuditGate:
    """A plugin gate: passes requests of the `coder` agent only."""

    name = "audit"

    def check(self, request: fourfold.Request) -> tuple[bool, str]:
        return request.agent == "coder", f"audited {request.action} {request.target}"

    def on_event(self, event: fourfold.Event) -> None:
        assert event.kind in ("decision", "action", "gate", "cost", "context")


def run() -> list[str]:
    tracer = fourfold.Tracer(memory=True)
    ff = fourfold.Fourfold(
        POLICY,
        root="/repo",
        tracer=tracer,
        budgets=[fourfold.Budget("agent:coder", hard=50_000)],
        plugins=[AuditGate()],
    )
    context: fourfold.ContextStore | None = ff.context
    assert context is not None
    context.put("docs/deploy.md", "# Deploy\n\nRun `deploy --prod` after review.\n")
    notes: list[str] = []
    with ff.session("coder", task="T-1") as session:
        decision: fourfold.Decision = session.guard(read="README.md")
        notes.append(f"{decision.verdict} by {decision.rule_id}")
        try:
            session.guard(run="deploy --prod")
        except fourfold.GatePending as pending:
            approval_id = pending.approval_id
            assert approval_id is not None
            session.policy.approve(approval_id, "alice", "ok")
        answer: fourfold.Answer = session.ask("how do I deploy", 300)
        for hit in answer.hits:
            notes.append(f"{hit.pointer} {hit.freshness} v{hit.version}")
        record: fourfold.CostRecord = session.record_usage("gpt-4o", input_tokens=100, output_tokens=20)
        notes.append(f"{record.cost_micros} micro-{record.currency}")
        span = session.span("review", "step")
        if span is not None:
            with span:
                span.decide("ship it", "tests pass", ["wait"])
        _handler = FourfoldCallbackHandler(session)
        _middleware = FourfoldMiddleware(session)
        _retriever = FourfoldRetriever(source=session, budget_tokens=500)
    tracer.flush()
    events: list[fourfold.Event] = tracer.events()
    notes.extend(event.kind for event in events)
    tokens: int = fourfold.count_tokens("gpt-4o", "hello world")
    notes.append(str(tokens))
    return notes


if __name__ == "__main__":
    print("\n".join(run()))
