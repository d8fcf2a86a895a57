"""fourfold.langchain driving a real LangChain v1 agent loop (`create_agent`) with LangChain's own
fake chat model scripted to call tools: what the trace records, what the middleware enforces, the
review-gate interrupt and its resume, and the retriever. No network."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import pytest
from langchain.agents import create_agent
from langchain_core.language_models import LanguageModelInput
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, BaseMessage, ToolMessage
from langchain_core.runnables import Runnable
from langchain_core.tools import BaseTool, tool
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.types import Command

import fourfold
from conftest import AUTH_V1, POLICY, events
from fourfold.langchain import FourfoldCallbackHandler, FourfoldMiddleware, FourfoldRetriever, finding_tool, guard_tools


class ScriptedChatModel(GenericFakeChatModel):
    """LangChain's fake chat model, answering turn by turn from a script; `bind_tools` returns itself
    so that `create_agent` runs it offline."""

    def bind_tools(self, tools: Sequence[Any], **kwargs: Any) -> Runnable[LanguageModelInput, AIMessage]:
        return self

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> Any:
        params = super()._get_ls_params(stop=stop, **kwargs)
        params["ls_model_name"] = "gpt-4o-mini"
        return params


def turn(*calls: tuple[str, dict[str, Any]], text: str = "", tokens: tuple[int, int] = (120, 30)) -> AIMessage:
    """One scripted model turn: tool calls (name, args) and the usage the provider would report."""
    return AIMessage(
        content=text,
        tool_calls=[{"name": name, "args": args, "id": f"call-{name}-{idx}"} for idx, (name, args) in enumerate(calls)],
        usage_metadata={
            "input_tokens": tokens[0],
            "output_tokens": tokens[1],
            "total_tokens": sum(tokens),
            "input_token_details": {"cache_read": 20},
        },
    )


RAN: list[str] = []


@tool
def search(query: str) -> str:
    """Search the docs."""
    RAN.append(f"search {query}")
    return f"3 results for {query}"


@tool
def delete_branch(name: str) -> str:
    """Delete a git branch."""
    RAN.append(f"delete_branch {name}")
    return f"deleted {name}"


@tool
def send_email(to: str, body: str) -> str:
    """Send an e-mail."""
    RAN.append(f"send_email {to}")
    return f"sent to {to}"


TOOLS: list[BaseTool] = [search, delete_branch, send_email]


@pytest.fixture(autouse=True)
def clear_ran() -> Iterator[None]:
    RAN.clear()
    yield
    RAN.clear()


def test_an_agent_run_is_traced_and_a_denied_tool_call_does_not_stop_it(
    ff: fourfold.Fourfold, tracer: fourfold.Tracer
) -> None:
    model = ScriptedChatModel(
        messages=iter(
            [
                turn(("search", {"query": "login"})),
                turn(("delete_branch", {"name": "main"})),
                turn(text="Searched; deleting main is not allowed.", tokens=(300, 12)),
            ]
        )
    )
    session = ff.session("coder", task="T-1")
    agent = create_agent(model, TOOLS, middleware=[FourfoldMiddleware(session)])
    result = agent.invoke(
        {"messages": [{"role": "user", "content": "find the login docs, then delete main"}]},
        config={"callbacks": [FourfoldCallbackHandler(session)]},
    )
    session.end()

    # The allowed call ran; the denied one did not, and the model was told which rule and why.
    assert RAN == ["search login"]
    tool_messages = [message for message in result["messages"] if isinstance(message, ToolMessage)]
    assert [message.status for message in tool_messages] == ["success", "error"]
    assert "delete_branch" in str(tool_messages[1].content) and "no rule allows it" in str(tool_messages[1].content)
    assert result["messages"][-1].content == "Searched; deleting main is not allowed."

    recorded = events(tracer)
    gates = [event.data for event in recorded if event.kind == "gate"]
    assert [(gate["outcome"], (gate["rule"] or {}).get("id")) for gate in gates] == [
        ("Allowed", "coder-src"),
        ("Denied", None),
    ]
    # Three model calls, each with the provider's usage and a price from the built-in table. The
    # trace event carries the prompt total with the cached part beside it (OpenTelemetry's
    # convention); the meter prices the 20 cached tokens of each call at the cache-read price.
    costs = [event.data for event in recorded if event.kind == "cost"]
    assert [(cost["model"], cost["input_tokens"], cost["cached_tokens"], cost["output_tokens"]) for cost in costs] == [
        ("gpt-4o-mini", 120, 20, 30),
        ("gpt-4o-mini", 120, 20, 30),
        ("gpt-4o-mini", 300, 20, 12),
    ]
    assert all(cost["cost_micros"] > 0 and not cost["estimated"] for cost in costs)
    actions = [event for event in recorded if event.kind == "action"]
    chat_actions = [event.data for event in actions if event.data["tool"] == "chat gpt-4o-mini"]
    assert len(chat_actions) == 3
    assert "find the login docs" in chat_actions[0]["arguments_json"]
    tool_actions = [event.data for event in actions if event.data["tool"] == "search"]
    assert len(tool_actions) == 1 and tool_actions[0]["error"] is None
    assert tool_actions[0]["result_digest"].startswith("sha256:")

    # Spans nest the way LangChain nests its runs: the tool and model spans sit inside graph steps.
    reader_events = {event.span_id for event in actions}
    assert None not in reader_events
    assert ff.cost is not None
    total = ff.cost.report()["total"]
    assert (total["calls"], total["input_tokens"], total["cache_read_tokens"]) == (3, 100 + 100 + 280, 60)


def test_the_trace_file_of_an_agent_run_explains_the_denial(tmp_path: Any) -> None:
    tracer = fourfold.Tracer(tmp_path / "agent.trace")
    ff = fourfold.Fourfold(POLICY, tracer=tracer)
    session = ff.session("coder", task="T-2")
    model = ScriptedChatModel(messages=iter([turn(("delete_branch", {"name": "main"})), turn(text="done")]))
    agent = create_agent(model, TOOLS, middleware=[FourfoldMiddleware(session)])
    agent.invoke({"messages": [{"role": "user", "content": "delete main"}]}, config={"callbacks": [FourfoldCallbackHandler(session)]})
    session.end()
    tracer.close()
    reader = fourfold.TraceReader(tmp_path / "agent.trace")
    assert reader.run_ids() == [session.run_id]
    explained = reader.explain(session.run_id)
    assert "permission" in str(explained)
    assert len(reader.events(kind="cost")) == 2
    assert [event.data["outcome"] for event in reader.events(gate_outcome="denied")] == ["Denied"]


def test_a_gated_tool_call_interrupts_and_runs_once_approved(ff: fourfold.Fourfold, tracer: fourfold.Tracer) -> None:
    model = ScriptedChatModel(
        messages=iter([turn(("send_email", {"to": "ceo@example.com", "body": "hi"})), turn(text="Sent.")])
    )
    session = ff.session("coder", task="T-1")
    agent = create_agent(model, TOOLS, middleware=[FourfoldMiddleware(session)], checkpointer=InMemorySaver())
    config: Any = {"configurable": {"thread_id": "t-1"}, "callbacks": [FourfoldCallbackHandler(session)]}
    first = agent.invoke({"messages": [{"role": "user", "content": "mail the ceo"}]}, config=config)

    interrupts = first["__interrupt__"]
    assert len(interrupts) == 1
    request = interrupts[0].value
    assert request["type"] == "tool_approval" and request["name"] == "send_email"
    assert request["rule_id"] == "mail-review" and request["approval_id"].startswith("ap-")
    assert RAN == []
    assert [approval.id for approval in ff.policy.pending_approvals()] == [request["approval_id"]]

    resumed = agent.invoke(Command(resume={"type": "approve", "approver": "alice"}), config=config)
    assert RAN == ["send_email ceo@example.com"]
    assert resumed["messages"][-1].content == "Sent."
    approval = ff.policy.approval(request["approval_id"])
    assert approval is not None and approval.state == "used"
    assert approval.to_dict()["approver"] == "alice"
    outcomes = [event.data["outcome"] for event in events(tracer, "gate")]
    # Held once (the node re-ran on resume and found the same pending approval), approved, used.
    assert outcomes == ["Pending", "Approved", "Consumed"]


def test_a_rejected_tool_call_tells_the_model(ff: fourfold.Fourfold) -> None:
    model = ScriptedChatModel(
        messages=iter([turn(("send_email", {"to": "all@example.com", "body": "hi"})), turn(text="Not sent.")])
    )
    session = ff.session("coder", task="T-1")
    agent = create_agent(model, TOOLS, middleware=[FourfoldMiddleware(session)], checkpointer=InMemorySaver())
    config: Any = {"configurable": {"thread_id": "t-2"}}
    agent.invoke({"messages": [{"role": "user", "content": "mail everyone"}]}, config=config)
    resumed = agent.invoke(Command(resume={"type": "reject", "message": "too many recipients"}), config=config)
    assert RAN == []
    rejected = [message for message in resumed["messages"] if isinstance(message, ToolMessage)]
    assert rejected[0].status == "error" and "too many recipients" in str(rejected[0].content)
    assert ff.policy.pending_approvals() == []


EDIT_POLICY = POLICY + """
[[rule]]
id = "edit-tool"
effect = "allow"
agents = ["coder"]
tools = [{ name = "edit_file" }]

[[rule]]
id = "fresh-edits"
effect = "gate"
agents = ["coder"]
gates = ["context-fresh"]
tools = [{ name = "edit_file" }]
"""


@tool
def edit_file(path: str, text: str) -> str:
    """Write a file."""
    RAN.append(f"edit_file {path}")
    return f"wrote {path}"


def test_stale_context_is_reread_and_handed_to_the_model(tracer: fourfold.Tracer) -> None:
    ff = fourfold.Fourfold(EDIT_POLICY, tracer=tracer)
    assert ff.context is not None
    ff.context.put("docs/auth.md", AUTH_V1)
    session = ff.session("coder", task="T-1")
    assert FourfoldRetriever(source=session).invoke("how do I call login")[0].metadata["version"] == 1
    ff.context.put("docs/auth.md", AUTH_V1.replace("login(user, password)", "login(credentials)"))
    edit = ("edit_file", {"path": "src/auth.rs", "text": "login(user, password)"})
    model = ScriptedChatModel(messages=iter([turn(edit), turn(edit), turn(text="done")]))
    agent = create_agent(model, [edit_file], middleware=[FourfoldMiddleware(session)])
    result = agent.invoke({"messages": [{"role": "user", "content": "update the login call"}]})
    held, ran = [message for message in result["messages"] if isinstance(message, ToolMessage)]
    # The first attempt was held, and the model got the current section to act on.
    assert held.status == "error" and "have changed" in str(held.content)
    assert "login(credentials)" in str(held.content)
    assert ran.status == "success" and RAN == ["edit_file src/auth.rs"]
    outcomes = [(event.data["outcome"], (event.data["rule"] or {}).get("id")) for event in events(tracer, "gate")]
    assert outcomes == [("Denied", "fresh-edits"), ("Allowed", "fresh-edits")]
    assert [event.data["query"] for event in events(tracer, "context")][-1].startswith("re-read")


def test_the_retriever_serves_canonical_sections_with_their_markers() -> None:
    ff = fourfold.Fourfold(POLICY, archive=["archive/"])
    assert ff.context is not None
    ff.context.put("docs/auth.md", AUTH_V1)
    ff.context.put("archive/old-auth.md", AUTH_V1)
    session = ff.session("coder", task="T-1")
    retriever = FourfoldRetriever(source=session, budget_tokens=500)
    documents = retriever.invoke("how do I call login to open a session")
    assert documents, "the retriever served nothing"
    first = documents[0]
    assert first.metadata["freshness"] == "canonical"
    assert first.metadata["key"] == "docs/auth.md"
    assert first.metadata["pointer"].startswith("docs/auth.md:")
    assert "login(user, password)" in first.page_content
    assert all(document.metadata["key"] != "archive/old-auth.md" for document in documents)
    # Asked again, the session already holds the section: a pointer, not the text again.
    again = retriever.invoke("how do I call login to open a session")
    assert again[0].metadata["already_served"] and "already served" in again[0].page_content
    # A store works as a source too, without a session.
    assert FourfoldRetriever(source=ff.context).invoke("login")[0].metadata["freshness"] == "canonical"


def test_an_agent_is_served_a_canonical_section_through_the_retriever(
    ff: fourfold.Fourfold, tracer: fourfold.Tracer
) -> None:
    session = ff.session("coder", task="T-1")
    retriever = FourfoldRetriever(source=session, budget_tokens=500)
    docs_tool = retriever.as_tool(name="search", description="Search the team's docs.")
    model = ScriptedChatModel(messages=iter([turn(("search", {"query": "login session token"})), turn(text="Use login(user, password).")]))
    agent = create_agent(model, [docs_tool], middleware=[FourfoldMiddleware(session)])
    result = agent.invoke({"messages": [{"role": "user", "content": "how do I log in?"}]})
    served = [message for message in result["messages"] if isinstance(message, ToolMessage)][0]
    assert "login(user, password)" in str(served.content)
    context_events = events(tracer, "context")
    assert context_events and context_events[0].data["sections"][0]["freshness"] == "canonical"
    assert context_events[0].data["sections"][0]["key"] == "docs/auth.md"


def test_guard_tools_checks_tools_used_without_an_agent(ff: fourfold.Fourfold) -> None:
    session = ff.session("coder", task="T-1")
    guarded = {tool.name: tool for tool in guard_tools(TOOLS, session)}
    assert guarded["search"].invoke({"query": "login"}) == "3 results for login"
    denied = guarded["delete_branch"].invoke(
        {"type": "tool_call", "name": "delete_branch", "args": {"name": "main"}, "id": "c-1"}
    )
    assert isinstance(denied, ToolMessage) and denied.status == "error" and "denied" in str(denied.content)
    with pytest.raises(fourfold.GatePending):
        guarded["send_email"].invoke({"to": "a@example.com", "body": "x"})
    assert RAN == ["search login"]


def test_an_agent_writes_a_finding_back_where_the_policy_allows(tracer: fourfold.Tracer) -> None:
    policy = POLICY + """
[[rule]]
id = "findings"
effect = "allow"
agents = ["coder"]
tools = [{ name = "context_record", glob = { topic = "findings/**" } }, { name = "context_record", glob = { topic = "decisions/**" } }]

[[rule]]
id = "decisions-reviewed"
effect = "gate"
gates = ["human-review"]
tools = [{ name = "context_record", glob = { topic = "decisions/**" } }]
"""
    ff = fourfold.Fourfold(policy, tracer=tracer)
    session = ff.session("coder", task="T-1")
    record = finding_tool(session)
    model = ScriptedChatModel(
        messages=iter(
            [
                turn(("context_record", {"topic": "notes", "text": "Builds are slow on Mondays."})),
                turn(("context_record", {"topic": "findings/flaky", "text": "Auth tests fail in parallel."})),
                turn(text="Recorded."),
            ]
        )
    )
    agent = create_agent(model, [record], middleware=[FourfoldMiddleware(session)])
    result = agent.invoke({"messages": [{"role": "user", "content": "write down what you found"}]})
    refused, recorded = [message for message in result["messages"] if isinstance(message, ToolMessage)]
    assert refused.status == "error" and "fourfold refused to record `notes`" in str(refused.content)
    assert "records/findings-flaky.md v1" in str(recorded.content)
    assert ff.context is not None and ff.context.keys() == ["records/findings-flaky.md"]
    assert [event.data["tool"] for event in events(tracer, "action")] == ["context_record"]
    # The middleware let the tool ask the policy itself: one decision per call, not two.
    assert len(events(tracer, "gate")) == 2
    # A topic under review is held with its approval id, and goes through once approved.
    held = record.invoke({"topic": "decisions/db", "text": "We keep PostgreSQL 15."})
    assert "for review (approval `" in held
    approval_id = held.split("approval `")[1].split("`")[0]
    session.policy.approve(approval_id, "lead", "fine")
    assert "records/decisions-db.md v1" in record.invoke({"topic": "decisions/db", "text": "We keep PostgreSQL 15."})
