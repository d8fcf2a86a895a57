"""fourfold for LangChain (``langchain-core`` and ``langchain`` v1).

- :class:`FourfoldCallbackHandler` records every chat model call (model, messages, token usage,
  cost), every tool call and every chain and agent step as spans and events of the session's run,
  nested the way LangChain nests them (``run_id`` / ``parent_run_id``).
- :class:`FourfoldMiddleware` enforces: each tool call of a ``create_agent`` agent goes through
  ``session.guard`` first. An allowed call runs; a denied call becomes an error ``ToolMessage``
  naming the rule, and the agent carries on; a call a review gate holds interrupts the graph the
  way LangChain's ``HumanInTheLoopMiddleware`` does, and the reviewer's answer is recorded as the
  approval.
- :func:`guard_tools` puts the same check in front of tools used without an agent.
- :class:`FourfoldRetriever` serves canonical sections of the ContextStore as ``Document`` objects,
  with their pointers and freshness markers in the metadata.
- :func:`finding_tool` lets the agent write what it learned back for the other agents, under the
  policy (``session.record_finding``).

A callback handler cannot stop a tool call (LangChain swallows callback errors unless
``raise_error`` is set, and then the whole run aborts), which is why enforcement is middleware and
recording is the handler; use both.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Awaitable, Sequence
from typing import Any, Callable, Optional, Union
from uuid import UUID

from langchain.agents.middleware import AgentMiddleware, ToolCallRequest
from langchain_core.callbacks import BaseCallbackHandler, CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.messages import BaseMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, LLMResult
from langchain_core.retrievers import BaseRetriever
from langchain_core.tools import BaseTool, StructuredTool, ToolException
from langgraph.types import Command, interrupt
from pydantic import ConfigDict

from fourfold._fourfold import AgentSession, ContextStore, Hit, Span, count_chat_tokens, count_tokens
from fourfold.exceptions import (
    BudgetExceeded,
    FourfoldError,
    GatePending,
    PolicyDenied,
    StaleContext,
    UnknownModel,
)

__all__ = [
    "FourfoldCallbackHandler",
    "FourfoldMiddleware",
    "FourfoldRetriever",
    "finding_tool",
    "guard_tools",
]

_FALLBACK_ENCODING = "o200k_base"

# Marks a tool whose call asks the policy itself (see :func:`finding_tool`), which the middleware
# lets through rather than asking a second time.
_GUARDS_ITSELF = "fourfold_guards_itself"


def _digest(value: Any) -> str:
    """A short digest of a tool result, so the trace can tell results apart without storing them."""
    text = value if isinstance(value, str) else repr(value)
    return "sha256:" + hashlib.sha256(text.encode("utf-8", "replace")).hexdigest()[:16]


def _message_dict(message: BaseMessage) -> dict[str, str]:
    content = message.content if isinstance(message.content, str) else json.dumps(message.content, default=str)
    return {"role": message.type, "content": content}


def _model_name(serialized: Optional[dict[str, Any]], metadata: Optional[dict[str, Any]], kwargs: dict[str, Any]) -> str:
    """The model a chat call used, from what LangChain passes to the callback."""
    if metadata and isinstance(metadata.get("ls_model_name"), str):
        return str(metadata["ls_model_name"])
    params = kwargs.get("invocation_params") or {}
    for key in ("model", "model_name", "model_id"):
        if isinstance(params.get(key), str):
            return str(params[key])
    if serialized:
        name = serialized.get("name")
        if isinstance(name, str):
            return name
    return "unknown-model"


def _tokens(model: str, text: str) -> int:
    try:
        return count_tokens(model, text)
    except UnknownModel:
        return count_tokens(_FALLBACK_ENCODING, text)


def _chat_tokens(model: str, messages: list[dict[str, str]]) -> int:
    try:
        return count_chat_tokens(model, messages)
    except UnknownModel:
        return count_chat_tokens(_FALLBACK_ENCODING, messages)


class FourfoldCallbackHandler(BaseCallbackHandler):
    """Records a LangChain run into a fourfold session's trace and cost meter.

    Chat model calls become ``llm_call`` spans with the messages, the token usage LangChain reports
    (``usage_metadata``; counted locally and labelled an estimate when the provider gave none) and
    the cost; tool calls become ``tool_call`` spans with arguments, a result digest, duration and
    error; chains and agent steps become ``step`` spans. A recording failure never breaks the agent:
    it is recorded as an action error instead.
    """

    raise_error = False

    def __init__(self, session: AgentSession) -> None:
        self.session = session
        self._spans: dict[UUID, Span] = {}
        self._started: dict[UUID, float] = {}
        self._calls: dict[UUID, tuple[str, list[dict[str, str]], Any]] = {}
        self._lock = threading.Lock()

    # Spans, keyed by LangChain's run ids.

    def _open(self, run_id: UUID, parent_run_id: Optional[UUID], name: str, kind: str) -> Optional[Span]:
        with self._lock:
            parent = self._spans.get(parent_run_id) if parent_run_id is not None else None
        try:
            span = parent.child(name, kind) if parent is not None else self.session.span(name, kind)  # type: ignore[arg-type]
        except FourfoldError:
            return None
        if span is not None:
            with self._lock:
                self._spans[run_id] = span
                self._started[run_id] = time.perf_counter()
        return span

    def _close(
        self, run_id: UUID
    ) -> tuple[Optional[tuple[str, list[dict[str, str]], Any]], Optional[Span], Optional[float]]:
        """Forgets LangChain run `run_id`: its call record (model or tool call), its span, and how long it took."""
        with self._lock:
            call = self._calls.pop(run_id, None)
            span = self._spans.pop(run_id, None)
            started = self._started.pop(run_id, None)
        duration_ms = (time.perf_counter() - started) * 1e3 if started is not None else None
        return call, span, duration_ms

    @staticmethod
    def _end(span: Optional[Span], error: Optional[BaseException] = None) -> None:
        if span is not None:
            span.end(f"{type(error).__name__}: {error}" if error is not None else None)

    # Chat models.

    def on_chat_model_start(
        self,
        serialized: dict[str, Any],
        messages: list[list[BaseMessage]],
        *,
        run_id: UUID,
        parent_run_id: Optional[UUID] = None,
        tags: Optional[list[str]] = None,
        metadata: Optional[dict[str, Any]] = None,
        **kwargs: Any,
    ) -> None:
        model = _model_name(serialized, metadata, kwargs)
        prompt = [_message_dict(message) for batch in messages for message in batch]
        with self._lock:
            self._calls[run_id] = (model, prompt, kwargs.get("invocation_params"))
        self._open(run_id, parent_run_id, f"chat {model}", "llm_call")

    def on_llm_end(
        self,
        response: LLMResult,
        *,
        run_id: UUID,
        parent_run_id: Optional[UUID] = None,
        **kwargs: Any,
    ) -> None:
        call, span, duration_ms = self._close(run_id)
        model, prompt, _ = call or ("unknown-model", [], None)
        texts: list[str] = []
        usage: Optional[dict[str, Any]] = None
        for generations in response.generations:
            for generation in generations:
                texts.append(generation.text)
                if isinstance(generation, ChatGeneration):
                    metadata = getattr(generation.message, "usage_metadata", None)
                    if metadata:
                        usage = dict(metadata)
        output_text = "".join(texts)
        if span is not None:
            span.act(
                f"chat {model}",
                {"messages": prompt},
                result_digest=_digest(output_text),
                duration_ms=duration_ms,
            )
        try:
            if usage is not None:
                details_in = usage.get("input_token_details") or {}
                details_out = usage.get("output_token_details") or {}
                cache_read = int(details_in.get("cache_read") or 0)
                cache_write = int(details_in.get("cache_creation") or 0)
                # LangChain's input_tokens include cached ones; fourfold counts them apart.
                input_tokens = max(int(usage.get("input_tokens") or 0) - cache_read - cache_write, 0)
                self.session.record_usage(
                    model,
                    input_tokens=input_tokens,
                    output_tokens=int(usage.get("output_tokens") or 0),
                    cache_read_tokens=cache_read,
                    cache_write_tokens=cache_write,
                    reasoning_tokens=int(details_out.get("reasoning") or 0),
                )
            else:
                self.session.record_usage(
                    model,
                    input_tokens=_chat_tokens(model, prompt),
                    output_tokens=_tokens(model, output_text),
                    estimated=True,
                )
        except FourfoldError as error:
            self.session.act(f"chat {model}", None, error=f"cost not recorded: {type(error).__name__}: {error}")
        self._end(span)

    def on_llm_error(
        self,
        error: BaseException,
        *,
        run_id: UUID,
        parent_run_id: Optional[UUID] = None,
        **kwargs: Any,
    ) -> None:
        call, span, duration_ms = self._close(run_id)
        model, prompt, _ = call or ("unknown-model", [], None)
        if span is not None:
            span.act(
                f"chat {model}",
                {"messages": prompt},
                duration_ms=duration_ms,
                error=f"{type(error).__name__}: {error}",
            )
        self._end(span, error)

    # Tools.

    def on_tool_start(
        self,
        serialized: dict[str, Any],
        input_str: str,
        *,
        run_id: UUID,
        parent_run_id: Optional[UUID] = None,
        tags: Optional[list[str]] = None,
        metadata: Optional[dict[str, Any]] = None,
        inputs: Optional[dict[str, Any]] = None,
        **kwargs: Any,
    ) -> None:
        name = str((serialized or {}).get("name") or kwargs.get("name") or "tool")
        with self._lock:
            self._calls[run_id] = (name, [], inputs if inputs is not None else input_str)
        self._open(run_id, parent_run_id, f"execute_tool {name}", "tool_call")

    def on_tool_end(
        self,
        output: Any,
        *,
        run_id: UUID,
        parent_run_id: Optional[UUID] = None,
        **kwargs: Any,
    ) -> None:
        call, span, duration_ms = self._close(run_id)
        name, _, arguments = call or ("tool", [], None)
        content = getattr(output, "content", output)
        failed = getattr(output, "status", None) == "error"
        if span is not None:
            span.act(
                name,
                arguments,
                result_digest=_digest(content),
                duration_ms=duration_ms,
                error=str(content) if failed else None,
            )
        self._end(span)

    def on_tool_error(
        self,
        error: BaseException,
        *,
        run_id: UUID,
        parent_run_id: Optional[UUID] = None,
        **kwargs: Any,
    ) -> None:
        call, span, duration_ms = self._close(run_id)
        name, _, arguments = call or ("tool", [], None)
        if span is not None:
            span.act(name, arguments, duration_ms=duration_ms, error=f"{type(error).__name__}: {error}")
        self._end(span, error)

    # Chains, graph nodes and agent steps.

    def on_chain_start(
        self,
        serialized: dict[str, Any],
        inputs: dict[str, Any],
        *,
        run_id: UUID,
        parent_run_id: Optional[UUID] = None,
        tags: Optional[list[str]] = None,
        metadata: Optional[dict[str, Any]] = None,
        **kwargs: Any,
    ) -> None:
        name = kwargs.get("name") or (serialized or {}).get("name") or "chain"
        self._open(run_id, parent_run_id, str(name), "step")

    def on_chain_end(
        self,
        outputs: dict[str, Any],
        *,
        run_id: UUID,
        parent_run_id: Optional[UUID] = None,
        **kwargs: Any,
    ) -> None:
        _, span, _ = self._close(run_id)
        self._end(span)

    def on_chain_error(
        self,
        error: BaseException,
        *,
        run_id: UUID,
        parent_run_id: Optional[UUID] = None,
        **kwargs: Any,
    ) -> None:
        _, span, _ = self._close(run_id)
        self._end(span, error)

    def on_agent_action(
        self,
        action: Any,
        *,
        run_id: UUID,
        parent_run_id: Optional[UUID] = None,
        **kwargs: Any,
    ) -> None:
        tool = str(getattr(action, "tool", "tool"))
        rationale = str(getattr(action, "log", ""))
        with self._lock:
            span = self._spans.get(run_id)
        if span is not None:
            span.decide(f"call {tool}", rationale)
        else:
            self.session.decide(f"call {tool}", rationale)


def _stale_message(name: str, error: StaleContext, session: AgentSession) -> str:
    """The tool result for a call the ``context-fresh`` gate held: what changed, and the current text."""
    lines = [f"fourfold held `{name}`: documents this agent read have changed since ({error.reason})."]
    try:
        sections = session.reread()
    except FourfoldError as reread_error:
        lines.append(f"Re-reading them failed: {reread_error}")
        return "\n".join(lines)
    lines.append("Their current versions follow; act on these, then call the tool again.")
    for section in sections:
        lines.append(f"--- {section.pointer} (version {section.version}) ---")
        lines.append(section.text)
    return "\n".join(lines)


class FourfoldMiddleware(AgentMiddleware):
    """Puts every tool call of a ``create_agent`` agent through ``session.guard``.

    - Allowed: the tool runs.
    - Denied by a rule, or by a budget: the tool does not run; the model gets an error
      ``ToolMessage`` that names the rule and the reason, and the agent carries on.
    - Held by the ``context-fresh`` gate: the session re-reads what changed and the model gets the
      current sections in the error ``ToolMessage``, so its next attempt acts on what is true now.
    - Held by a review gate: the graph is interrupted (it needs a checkpointer) with a
      ``tool_approval`` request, as ``HumanInTheLoopMiddleware`` does in ``per_call`` mode, plus the
      ``approval_id`` and ``rule_id``. Resume with ``Command(resume={"type": "approve"})`` or
      ``{"type": "reject", "message": "..."}``; ``approver`` may name the reviewer. The answer is
      recorded in the policy's approval store and trace, so when the graph re-runs the node the
      approved request goes ahead without asking again.
    """

    def __init__(self, session: AgentSession, *, reviewer: str = "reviewer") -> None:
        super().__init__()
        self.session = session
        self.reviewer = reviewer

    def _check(self, request: ToolCallRequest) -> Optional[ToolMessage]:
        """``None`` when the call may run, else the message to return instead of running it."""
        if request.tool is not None and (request.tool.metadata or {}).get(_GUARDS_ITSELF):
            # Its own call asks the policy; asking twice would spend an approval on the first.
            return None
        tool_call = request.tool_call
        name = tool_call["name"]
        args = dict(tool_call.get("args") or {})
        call_id = tool_call.get("id") or ""

        def refuse(text: str) -> ToolMessage:
            return ToolMessage(content=text, tool_call_id=call_id, name=name, status="error")

        for _ in range(2):
            try:
                self.session.guard(tool=name, args=args)
                return None
            except PolicyDenied as denied:
                rule = f"rule `{denied.rule_id}`" if denied.rule_id else "no rule allows it"
                return refuse(f"fourfold denied `{name}` ({rule}): {denied.reason}")
            except BudgetExceeded as exceeded:
                return refuse(f"fourfold denied `{name}` (budget `{exceeded.budget}`): {exceeded}")
            except StaleContext as stale:
                return refuse(_stale_message(name, stale, self.session))
            except GatePending as pending:
                approval_id = pending.approval_id or ""
                answer = interrupt(
                    {
                        "type": "tool_approval",
                        "tool_call_id": call_id,
                        "name": name,
                        "args": args,
                        "description": pending.reason,
                        "approval_id": approval_id,
                        "rule_id": pending.rule_id,
                    }
                )
                kind = answer.get("type") if isinstance(answer, dict) else answer
                reviewer = str(answer.get("approver") or self.reviewer) if isinstance(answer, dict) else self.reviewer
                message = str(answer.get("message") or "") if isinstance(answer, dict) else ""
                if kind == "approve":
                    self._settle(approval_id, approve=True, reviewer=reviewer, message=message)
                    continue
                self._settle(approval_id, approve=False, reviewer=reviewer, message=message)
                reason = f": {message}" if message else ""
                return refuse(f"a reviewer rejected `{name}` (approval `{approval_id}`){reason}")
        return refuse(f"fourfold could not get `{name}` approved")

    def _settle(self, approval_id: str, *, approve: bool, reviewer: str, message: str) -> None:
        """Records the reviewer's answer, unless it was already recorded (the node re-ran)."""
        approval = self.session.policy.approval(approval_id)
        if approval is None or approval.state != "pending":
            return
        if approve:
            self.session.policy.approve(approval_id, reviewer, message)
        else:
            self.session.policy.reject(approval_id, reviewer, message)

    def wrap_tool_call(
        self,
        request: ToolCallRequest,
        handler: Callable[[ToolCallRequest], Union[ToolMessage, Command[Any]]],
    ) -> Union[ToolMessage, Command[Any]]:
        refused = self._check(request)
        return refused if refused is not None else handler(request)

    async def awrap_tool_call(
        self,
        request: ToolCallRequest,
        handler: Callable[[ToolCallRequest], Awaitable[Union[ToolMessage, Command[Any]]]],
    ) -> Union[ToolMessage, Command[Any]]:
        refused = self._check(request)
        return refused if refused is not None else await handler(request)


class _GuardedTool(BaseTool):
    """A tool that asks the session before each call (see :func:`guard_tools`)."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    inner: BaseTool
    session: Any

    def _guard(self, arguments: dict[str, Any]) -> None:
        try:
            self.session.guard(tool=self.name, args=arguments)
        except PolicyDenied as denied:
            rule = f"rule `{denied.rule_id}`" if denied.rule_id else "no rule allows it"
            raise ToolException(f"fourfold denied `{self.name}` ({rule}): {denied.reason}") from denied
        except BudgetExceeded as exceeded:
            raise ToolException(f"fourfold denied `{self.name}` (budget `{exceeded.budget}`): {exceeded}") from exceeded

    def _run(self, *args: Any, **kwargs: Any) -> Any:
        kwargs.pop("run_manager", None)
        arguments = kwargs if kwargs else ({"input": args[0]} if args else {})
        self._guard(arguments)
        return self.inner.invoke(kwargs if kwargs else (args[0] if args else ""))

    async def _arun(self, *args: Any, **kwargs: Any) -> Any:
        kwargs.pop("run_manager", None)
        arguments = kwargs if kwargs else ({"input": args[0]} if args else {})
        self._guard(arguments)
        return await self.inner.ainvoke(kwargs if kwargs else (args[0] if args else ""))


def guard_tools(tools: Sequence[BaseTool], session: AgentSession) -> list[BaseTool]:
    """The same tools, each checked by ``session.guard(tool=name, args=...)`` before it runs.

    A denied call does not run and returns an error naming the rule (as a ``ToolMessage`` with
    ``status="error"`` when invoked with a tool call). A call a review gate holds raises
    :class:`fourfold.GatePending` with the approval id, for the caller to get it approved.
    """
    return [
        _GuardedTool(
            name=tool.name,
            description=tool.description,
            args_schema=tool.args_schema,
            return_direct=tool.return_direct,
            handle_tool_error=True,
            inner=tool,
            session=session,
        )
        for tool in tools
    ]


class FourfoldRetriever(BaseRetriever):
    """Serves the canonical current sections that answer a query, within a token budget.

    ``source`` is an :class:`~fourfold.AgentSession` (its reads are recorded in the trace, feed the
    ``context-fresh`` gate, and a section it already holds comes back as a pointer without text) or
    a :class:`~fourfold.ContextStore`. Each ``Document``'s metadata carries ``pointer`` (``key:line``),
    ``key``, ``section_id``, ``heading_path``, ``version``, ``freshness``, ``reason``, ``tokens`` and
    ``already_served``. A reranker set on the store (:meth:`~fourfold.ContextStore.set_reranker`)
    orders what it serves.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    source: Union[AgentSession, ContextStore]
    budget_tokens: int = 2000

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun
    ) -> list[Document]:
        answer = self.source.ask(query, self.budget_tokens)
        return [_document(hit) for hit in answer.hits]


def _document(hit: Hit) -> Document:
    text = hit.text if hit.text is not None else f"(already served, unchanged: {hit.pointer})"
    return Document(
        page_content=text,
        metadata={
            "pointer": hit.pointer,
            "key": hit.key,
            "section_id": hit.section_id,
            "heading_path": list(hit.heading_path),
            "version": hit.version,
            "freshness": hit.freshness,
            "reason": hit.reason,
            "tokens": hit.tokens,
            "already_served": hit.already_served,
        },
    )


def finding_tool(session: AgentSession, *, name: str = "context_record") -> BaseTool:
    """A tool through which the agent writes back what it learned (a decision, an incident, what
    worked) as the next section of ``records/<topic>.md``, served to the other agents.

    Each call is ``session.record_finding(topic, text)``: the policy judges it as the tool call
    ``context_record`` with ``{"topic": topic}`` (a rule such as ``tools = [{ name =
    "context_record", glob = { topic = "findings/**" } }]`` scopes the topics), and a refusal
    comes back to the model as a tool error naming the reason; a review gate's hold does too, with
    the approval id, and once a reviewer approves it the same call goes through.
    :class:`FourfoldMiddleware` lets this tool's calls through without asking the policy a second
    time.
    """

    def record(topic: str, text: str) -> str:
        try:
            version = session.record_finding(topic, text)
        except GatePending as pending:
            raise ToolException(
                f"fourfold holds recording `{topic}` for review (approval `{pending.approval_id}`): {pending.reason}"
            ) from pending
        except (PolicyDenied, BudgetExceeded, StaleContext) as refused:
            raise ToolException(f"fourfold refused to record `{topic}`: {refused}") from refused
        return f"recorded as {version['key']} v{version['version']}; other agents are served it"

    return StructuredTool.from_function(
        func=record,
        name=name,
        description=(
            "Write a finding back to the team's documentation for other agents: `topic` names the "
            "record (such as findings/flaky-tests), `text` is what you learned, first line a heading."
        ),
        handle_tool_error=True,
        metadata={_GUARDS_ITSELF: True},
    )
