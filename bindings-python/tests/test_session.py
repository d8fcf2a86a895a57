"""The governed session from Python: guards and the exceptions they raise, approvals, stale context,
budgets, plugins written in Python, panics, and one session shared by many threads."""

from __future__ import annotations

import sys
import threading
from typing import Any

import pytest

import fourfold
from conftest import AUTH_V2, POLICY, events


def test_an_allowed_action_returns_the_deciding_rule(ff: fourfold.Fourfold) -> None:
    with ff.session("coder", task="T-1") as session:
        decision = session.guard(write="src/auth.rs")
        assert decision.allowed and decision.verdict == "allow"
        # A gate rule that passes grants the request (here the context-fresh gate on writes).
        assert decision.rule_id == "fresh-writes"
        assert session.guard(fourfold.Request.run("ignored", "cargo test --lib")).rule_id == "coder-src"


@pytest.mark.parametrize(
    "kwargs, rule_id",
    [
        ({"read": ".env"}, "no-secrets"),
        ({"run": "cat .env"}, "no-secrets"),
        ({"run": "cargo test && cat server.pem"}, "no-secrets"),
        ({"write": "deploy/prod.yaml"}, None),
        ({"tool": "drop_database", "args": {"name": "prod"}}, None),
        ({"net": "https://example.com"}, None),
    ],
)
def test_a_denied_action_raises_policy_denied_naming_the_rule(
    ff: fourfold.Fourfold, kwargs: dict[str, Any], rule_id: str | None
) -> None:
    session = ff.session("coder", task="T-1")
    with pytest.raises(fourfold.PolicyDenied) as denied:
        session.guard(**kwargs)
    assert denied.value.rule_id == rule_id
    assert denied.value.decision.verdict == "deny"
    assert denied.value.reason == denied.value.decision.reason
    assert isinstance(denied.value, fourfold.FourfoldError)


def test_another_agent_gets_nothing_the_rules_do_not_give_it(ff: fourfold.Fourfold) -> None:
    with pytest.raises(fourfold.PolicyDenied):
        ff.session("reviewer").guard(write="src/auth.rs")


def test_a_review_gate_holds_until_approved_once(ff: fourfold.Fourfold, tracer: fourfold.Tracer) -> None:
    session = ff.session("coder", task="T-1")
    with pytest.raises(fourfold.GatePending) as pending:
        session.guard(run="git push origin main")
    approval_id = pending.value.approval_id
    assert approval_id and approval_id in str(pending.value)
    assert pending.value.rule_id == "push-review"
    assert [approval.id for approval in session.policy.pending_approvals()] == [approval_id]
    approval = ff.policy.approve(approval_id, "alice", "reviewed the diff")
    assert approval.state == "approved" and approval.request.target == "git push origin main"
    assert session.guard(run="git push origin main").approval_id == approval_id
    with pytest.raises(fourfold.GatePending):
        session.guard(run="git push origin main")
    outcomes = [event.data["outcome"] for event in events(tracer, "gate")]
    assert outcomes == ["Pending", "Approved", "Consumed", "Pending"]


def test_a_rejected_request_stays_denied(ff: fourfold.Fourfold) -> None:
    session = ff.session("coder", task="T-1")
    with pytest.raises(fourfold.GatePending) as pending:
        session.guard(tool="send_email", args={"to": "ceo@example.com"})
    assert pending.value.approval_id is not None
    ff.policy.reject(pending.value.approval_id, "bob", "not now")
    with pytest.raises(fourfold.PolicyDenied):
        session.guard(tool="send_email", args={"to": "ceo@example.com"})
    with pytest.raises(fourfold.ApprovalError):
        ff.policy.approve(pending.value.approval_id, "bob")
    with pytest.raises(fourfold.ApprovalError):
        ff.policy.approve("ap-does-not-exist", "bob")


def test_stale_context_holds_a_write_until_the_agent_rereads(ff: fourfold.Fourfold) -> None:
    session = ff.session("coder", task="T-1")
    answer = session.ask("how do I call login", 500)
    assert answer.hits and answer.hits[0].freshness == "canonical"
    assert ff.context is not None
    ff.context.put("docs/auth.md", AUTH_V2)
    with pytest.raises(fourfold.StaleContext) as stale:
        session.guard(write="src/auth.rs")
    assert [change.key for change in stale.value.changes] == ["docs/auth.md"]
    assert stale.value.changes[0].current_version == 2
    sections = session.reread()
    assert any("Credentials" in section.text for section in sections)
    assert session.guard(write="src/auth.rs").allowed


def test_a_budget_stops_model_calls(tracer: fourfold.Tracer) -> None:
    ff = fourfold.Fourfold(
        POLICY, tracer=tracer, budgets=[fourfold.Budget("agent:coder", hard=1000)], context=False
    )
    session = ff.session("coder", task="T-1")
    session.guard(tool="llm")
    reservation = session.reserve("gpt-4o", input_tokens=600, output_tokens=200)
    record = reservation.commit(input_tokens=500, output_tokens=100)
    assert (record.input_tokens, record.output_tokens, record.kind) == (500, 100, "spent")
    assert record.cost_micros == ff.cost.price("gpt-4o", input_tokens=500, output_tokens=100)  # type: ignore[union-attr]
    assert not reservation.held
    with pytest.raises(fourfold.InvalidRequest):
        reservation.commit(input_tokens=1)
    with pytest.raises(fourfold.BudgetExceeded) as exceeded:
        session.reserve("gpt-4o", input_tokens=400, output_tokens=100)
    assert (exceeded.value.budget, exceeded.value.limit, exceeded.value.spent) == ("agent:coder/tokens", 1000, 600)
    session.record_usage("gpt-4o", input_tokens=300, output_tokens=100)
    with pytest.raises(fourfold.BudgetExceeded):
        session.guard(tool="llm")


def test_usage_without_provider_numbers_is_labelled_an_estimate(ff: fourfold.Fourfold, tracer: fourfold.Tracer) -> None:
    session = ff.session("coder")
    assert not session.record_usage("gpt-4o", input_tokens=10).estimated
    assert session.record_usage("gpt-4o", input_tokens=10, estimated=True).estimated
    assert [event.data["estimated"] for event in events(tracer, "cost")] == [False, True]


def test_a_session_records_decisions_actions_and_spans_under_its_run(
    ff: fourfold.Fourfold, tracer: fourfold.Tracer
) -> None:
    with ff.session("coder", task="T-1") as session:
        session.decide("edit login", "the doc says so", ["ask a human"])
        step = session.span("fix the bug")
        assert step is not None
        with step, step.child("cargo test", "tool_call") as tool:
            tool.act("run", {"command": "cargo test"}, result_digest="ok", duration_ms=12.5)
        session.act("edit", {"path": "src/auth.rs"}, error="disk full")
    assert session.ended
    with pytest.raises(fourfold.FourfoldError, match="has ended"):
        session.guard(read="src/lib.rs")
    recorded = events(tracer)
    assert [event.kind for event in recorded] == ["decision", "action", "action"]
    assert {event.run_id for event in recorded} == {session.run_id}
    assert recorded[0].data == {"choice": "edit login", "rationale": "the doc says so", "alternatives": ["ask a human"]}
    assert recorded[1].span_id == tool.id and recorded[1].data["duration_ns"] == 12_500_000
    assert recorded[2].data["error"] == "disk full"
    as_dict = recorded[0].to_dict()
    assert as_dict["kind"] == "decision" and as_dict["agent"] == "coder" and as_dict["task"] == "T-1"
    assert repr(recorded[0]).startswith("Event(kind='decision'")


def test_guard_takes_exactly_one_action(ff: fourfold.Fourfold) -> None:
    session = ff.session("coder")
    with pytest.raises(fourfold.InvalidRequest):
        session.guard()
    with pytest.raises(ValueError):
        session.guard(read="a", write="b")
    with pytest.raises(fourfold.InvalidRequest):
        session.guard(read="a", args={"x": 1})
    with pytest.raises(fourfold.InvalidRequest):
        session.guard(tool="search", args={"query": object()})


def test_controls_the_fourfold_lacks_are_typed_errors() -> None:
    session = fourfold.Fourfold(POLICY, context=False, cost=False).session("coder")
    with pytest.raises(fourfold.MissingControl):
        session.ask("login")
    with pytest.raises(fourfold.MissingControl):
        session.record_usage("gpt-4o", input_tokens=1)
    assert session.span("step") is None


def test_a_finding_is_written_back_only_where_a_rule_allows_it() -> None:
    policy = POLICY + """
[[rule]]
id = "findings"
effect = "allow"
agents = ["coder"]
tools = [{ name = "context_record", glob = { topic = "findings/**" } }]
"""
    session = fourfold.Fourfold(policy).session("coder")
    with pytest.raises(fourfold.PolicyDenied):
        session.record_finding("notes", "Builds are slow on Mondays.")
    version = session.record_finding("findings/flaky", "The auth tests fail when run in parallel.")
    assert version["key"] == "records/findings-flaky.md" and version["version"] == 1
    answer = session.ask("auth tests parallel", 300)
    assert answer.hits[0].key == "records/findings-flaky.md"
    with pytest.raises(fourfold.MissingControl):
        fourfold.Fourfold(policy, context=False).session("coder").record_finding("findings/x", "text")


def test_bad_input_is_a_typed_error() -> None:
    with pytest.raises(fourfold.InvalidPolicy, match="line 2"):
        fourfold.Fourfold("[[rule]]\nid = 1\n")
    with pytest.raises(fourfold.ConfigError, match="`unknown_model` is `error` or `zero`, not `guess`"):
        fourfold.Fourfold(POLICY, unknown_model="guess")  # type: ignore[arg-type]
    with pytest.raises(fourfold.ConfigError):
        fourfold.Budget("team:a", hard=1)
    with pytest.raises(fourfold.ConfigError):
        fourfold.Budget("agent:a")
    with pytest.raises(fourfold.ConfigError):
        fourfold.Fourfold.from_config("/nonexistent/fourfold.toml")
    with pytest.raises(fourfold.InvalidRequest):
        fourfold.Fourfold(POLICY).session("coder").span("x", "meeting")  # type: ignore[arg-type]


def test_a_panic_becomes_fourfold_error() -> None:
    with pytest.raises(fourfold.FourfoldPanic, match="internal error .*boom") as panicked:
        fourfold._fourfold._panic_for_tests("boom")
    assert isinstance(panicked.value, fourfold.FourfoldError)


class Gate:
    """A Python gate plugin: passes what `verdict` says, and records what it saw."""

    def __init__(self, name: str, verdict: Any) -> None:
        self.name = name
        self.verdict = verdict
        self.seen: list[fourfold.Request] = []

    def check(self, request: fourfold.Request) -> Any:
        self.seen.append(request)
        if isinstance(self.verdict, BaseException):
            raise self.verdict
        return self.verdict


GATED = POLICY + """
[gates.ci]
kind = "plugin"

[[rule]]
id = "merge"
effect = "gate"
gates = ["ci"]
run = ["git merge*"]
"""


@pytest.mark.parametrize(
    "verdict, outcome",
    [
        (True, "allow"),
        ((True, "tests green"), "allow"),
        ("pass", "allow"),
        (False, "deny"),
        (("fail", "tests red"), "deny"),
        ("pending", "pending"),
        (RuntimeError("ci is down"), "deny"),
        (None, "deny"),
        (42, "deny"),
        (("maybe", "?"), "deny"),
    ],
)
def test_a_python_gate_decides_and_fails_closed(verdict: Any, outcome: str) -> None:
    gate = Gate("ci", verdict)
    ff = fourfold.Fourfold(GATED, plugins=[gate])
    session = ff.session("coder", task="T-1")
    try:
        decision = session.guard(run="git merge feature")
        got = decision.verdict
    except fourfold.PolicyDenied as denied:
        got = "deny"
        if isinstance(verdict, BaseException):
            assert "RuntimeError: ci is down" in denied.reason
        elif verdict in (None, 42) or verdict == ("maybe", "?"):
            assert "expected True, False" in denied.reason
    except fourfold.GatePending:
        got = "pending"
    assert got == outcome
    assert [request.target for request in gate.seen] == ["git merge feature"]
    assert gate.seen[0].agent == "coder" and gate.seen[0].task == "T-1"


def test_a_gate_that_ends_its_own_session_gets_an_error_not_a_hang() -> None:
    class Ending:
        name = "ci"
        session: fourfold.AgentSession | None = None

        def check(self, request: fourfold.Request) -> bool:
            assert self.session is not None
            self.session.end()
            return True

    gate = Ending()
    session = fourfold.Fourfold(GATED, plugins=[gate]).session("coder")
    gate.session = session
    with pytest.raises(fourfold.PolicyDenied) as denied:
        session.guard(run="git merge feature")
    # The check raised the session's error, so its gate failed, closed.
    assert "inside a call that has not returned" in denied.value.reason
    assert not session.ended
    session.end()
    assert session.ended


class Listener:
    name = "listener"

    def __init__(self, fail: bool = False) -> None:
        self.fail = fail
        self.kinds: list[str] = []

    def on_event(self, event: fourfold.Event) -> None:
        self.kinds.append(event.kind)
        if self.fail:
            raise KeyError("listener bug")


def test_a_python_listener_sees_every_event() -> None:
    listener = Listener()
    ff = fourfold.Fourfold(POLICY)
    ff.install(listener)
    assert "listener" in ff.plugin_names
    session = ff.session("coder")
    session.guard(read="src/lib.rs")
    with pytest.raises(fourfold.PolicyDenied):
        session.guard(read=".env")
    session.record_usage("gpt-4o", input_tokens=5)
    assert listener.kinds == ["gate", "gate", "cost"]
    assert ff.uninstall("listener") and not ff.uninstall("listener")


def test_a_listener_that_raises_is_reported_not_fatal(monkeypatch: pytest.MonkeyPatch) -> None:
    reported: list[Any] = []
    monkeypatch.setattr(sys, "unraisablehook", reported.append)
    listener = Listener(fail=True)
    session = fourfold.Fourfold(POLICY, plugins=[listener]).session("coder")
    assert session.guard(read="src/lib.rs").allowed
    assert len(reported) == 1
    error = reported[0].exc_value
    assert isinstance(error, fourfold.PluginError) and "listener bug" in str(error)
    assert isinstance(error.__cause__, KeyError)


def test_a_malformed_plugin_is_refused() -> None:
    class Nameless:
        def check(self, request: fourfold.Request) -> bool:
            return True

    class Idle:
        name = "idle"

    ff = fourfold.Fourfold(POLICY)
    with pytest.raises(fourfold.PluginError, match="name"):
        ff.install(Nameless())
    with pytest.raises(fourfold.PluginError, match="neither"):
        ff.install(Idle())
    with pytest.raises(fourfold.PluginError):
        ff.install(Gate("budget", True))  # the built-in budget gate's name is taken


def test_one_session_shared_by_eight_threads(ff: fourfold.Fourfold, tracer: fourfold.Tracer) -> None:
    session = ff.session("coder", task="T-1")
    n_threads, n_calls = 8, 200
    errors: list[BaseException] = []
    barrier = threading.Barrier(n_threads)

    def hammer(thread_idx: int) -> None:
        barrier.wait()
        try:
            for call_idx in range(n_calls):
                assert session.guard(read=f"src/{thread_idx}/{call_idx}.rs").allowed
                with pytest.raises(fourfold.PolicyDenied):
                    session.guard(read=".env")
                session.record_usage("gpt-4o", input_tokens=1, output_tokens=1)
                session.ask("login", 200)
        except BaseException as error:  # noqa: BLE001 - handed to the main thread
            errors.append(error)

    threads = [threading.Thread(target=hammer, args=(idx,)) for idx in range(n_threads)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert ff.cost is not None
    total = ff.cost.report()["total"]
    assert total["calls"] == n_threads * n_calls
    gates = events(tracer, "gate")
    assert len(gates) == 2 * n_threads * n_calls + 0 * tracer.n_dropped
    assert len(events(tracer, "cost")) == n_threads * n_calls


SCOPED_POLICY = """
[[rule]]
id = "public-docs"
effect = "allow"
agents = ["coder"]
read = ["docs/public/**"]
"""

TOKENS = "# Tokens\n\n## Rotation\n\nLogin tokens rotate every hour; call `refresh_token()` before the hour is up.\n"


def test_a_session_is_served_only_what_the_policy_lets_its_agent_read(tracer: fourfold.Tracer) -> None:
    ff = fourfold.Fourfold(SCOPED_POLICY, cost=False, tracer=tracer)
    assert ff.context is not None
    ff.context.put("docs/public/tokens.md", TOKENS)
    ff.context.put("docs/internal/tokens.md", TOKENS.replace("every hour", "on every deploy of the vault"))
    answer = ff.session("coder").ask("login tokens rotate", 2000)
    assert [hit.key for hit in answer.hits] == ["docs/public/tokens.md"]
    assert answer.withheld == 1 and answer.to_dict()["withheld"] == 1
    # An agent no rule lets read anything is served nothing, and told how much was kept out.
    nothing = ff.session("visitor").ask("login tokens rotate", 2000)
    assert nothing.hits == [] and nothing.withheld == 2
    # The trace's context events say how much each ask was kept from.
    assert [event.data["withheld"] for event in events(tracer, "context")] == [1, 2]
    # `context_scope="all"` serves every document, whatever the policy says about reading.
    open_ff = fourfold.Fourfold(SCOPED_POLICY, cost=False, context_scope="all")
    assert open_ff.context is not None
    open_ff.context.put("docs/internal/tokens.md", TOKENS)
    assert [hit.key for hit in open_ff.session("visitor").ask("login tokens", 500).hits] == ["docs/internal/tokens.md"]
    with pytest.raises(fourfold.InvalidRequest, match="context_scope"):
        fourfold.Fourfold(SCOPED_POLICY, context_scope="everyone")  # type: ignore[arg-type]


def test_permits_says_allowed_outright_and_decides_nothing() -> None:
    policy = SCOPED_POLICY + """
[[rule]]
id = "task-scope"
effect = "allow"
agents = ["coder"]
tasks = ["T-7"]
write = ["src/**"]

[[rule]]
id = "push-review"
effect = "gate"
gates = ["human-review"]
run = ["git push*"]
"""
    tracer = fourfold.Tracer(memory=True)
    ff = fourfold.Fourfold(policy, tracer=tracer, cost=False)
    generation = ff.policy.generation
    assert ff.policy.permits(fourfold.Request.read("coder", "docs/public/a.md"))
    assert not ff.policy.permits(fourfold.Request.read("coder", "docs/internal/a.md"))
    assert ff.policy.permits(fourfold.Request.write("coder", "src/a.rs", task="T-7"))
    assert not ff.policy.permits(fourfold.Request.write("coder", "src/a.rs", task="T-8"))
    # A gate would hold it: not allowed outright, and no approval is opened.
    assert not ff.policy.permits(fourfold.Request.run("coder", "git push origin main"))
    assert ff.policy.pending_approvals() == []
    tracer.flush()
    assert tracer.events() == []
    assert ff.policy.generation == generation
