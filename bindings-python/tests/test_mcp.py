"""`fourfold mcp serve` driven by the official MCP Python SDK (`mcp` on PyPI) as the client, over
stdio, on the shipped sample docs (examples/fleet/): the tools it lists, canonical sections with
pointers and markers, a pointer instead of the text the second time, changes since a read, a
write-back the policy refuses and one it allows, and every call in the trace."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import socket
import ssl
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Iterator

import pytest
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client

import fourfold

REPO = Path(__file__).resolve().parents[2]
BINARY = Path(os.environ.get("FOURFOLD_BIN", REPO / "target" / "debug" / "fourfold"))
SAMPLE_DOCS = REPO / "examples" / "fleet"
# A test CA and a certificate for 127.0.0.1 it signed (valid to 2126), from the OTLP sink's tests.
TLS_TESTDATA = REPO / "core" / "src" / "trace" / "otlp" / "testdata"

POLICY = """
[[rule]]
id = "findings"
effect = "allow"
agents = ["mcp-client"]
tools = [{ name = "context_record", glob = { topic = "findings/**" } }]

[[rule]]
id = "docs"
effect = "allow"
agents = ["mcp-client"]
read = ["docs/**", "records/**"]
"""


def setup(tmp_path: Path, snapshot: bool = False) -> Path:
    if not BINARY.exists():
        pytest.fail(f"build the CLI first (cargo build -p fourfold-cli): {BINARY} is missing")
    (tmp_path / "policy.toml").write_text(POLICY)
    config = tmp_path / "fourfold.toml"
    config.write_text(
        '[policy]\nfile = "policy.toml"\n[trace]\nfile = "mcp.trace"\n[context]\narchive = ["legacy/"]\n'
        + ('snapshot = "context"\n' if snapshot else "")
        + '[cost]\nsavings_model = "gpt-4o"\n'
    )
    return config


def text_of(result: Any) -> Any:
    assert not result.is_error, result
    return json.loads(result.content[0].text)


async def conversation(config: Path) -> dict[str, Any]:
    params = StdioServerParameters(
        command=str(BINARY), args=["mcp", "serve", "--config", str(config), "--docs", str(SAMPLE_DOCS)]
    )
    seen: dict[str, Any] = {}
    async with stdio_client(params) as (read, write):
        async with ClientSession(read, write) as session:
            await session.initialize()
            seen["tools"] = sorted(tool.name for tool in (await session.list_tools()).tools)
            first = text_of(await session.call_tool("context_ask", {"query": "how do I create an order", "budget_tokens": 800}))
            seen["first"] = first
            seen["again"] = text_of(await session.call_tool("context_ask", {"query": "how do I create an order", "budget_tokens": 800}))
            top = first["sections"][0]
            seen["section"] = text_of(await session.call_tool("context_get_section", {"section_id": top["section_id"]}))
            reads = [{"key": top["key"], "section_id": top["section_id"], "version": top["version"]}]
            seen["unchanged"] = text_of(await session.call_tool("context_changed_since", {"reads": reads}))
            seen["refused"] = await session.call_tool("context_record", {"topic": "docs/orders-api.md", "text": "# Orders\n\nnothing"})
            seen["recorded"] = text_of(await session.call_tool("context_record", {"topic": "findings/orders.md", "text": "# Orders\n\nPOST /v2/orders needs an idempotency key."}))
            seen["missing"] = await session.call_tool("context_get_section", {"section_id": "no-such-section"})
    return seen


async def ask_after_another_process_writes(config: Path, folder: Path) -> tuple[Any, Any]:
    params = StdioServerParameters(
        command=str(BINARY), args=["mcp", "serve", "--config", str(config), "--docs", str(SAMPLE_DOCS)]
    )
    async with stdio_client(params) as (read, write):
        async with ClientSession(read, write) as session:
            await session.initialize()
            # Another process (here, this one) writes to the server's snapshot folder.
            other = fourfold.ContextStore.open(folder)
            other.put("docs/refunds.md", "# Refunds\n\nA refund over 500 EUR needs a second approver in the billing console.\n")
            other.put("docs/upgrading.md", "# Upgrading\n\n## Renamed\n\n* `approve_refund()` has been renamed to `approve()`.\n")
            refund = text_of(await session.call_tool("context_ask", {"query": "refund second approver", "budget_tokens": 400}))
            renamed = text_of(await session.call_tool("context_ask", {"query": "approve_refund() fails", "budget_tokens": 400}))
            return refund, renamed


async def list_tools(config: Path) -> list[str]:
    params = StdioServerParameters(
        command=str(BINARY), args=["mcp", "serve", "--config", str(config), "--docs", str(SAMPLE_DOCS)]
    )
    async with stdio_client(params) as (read, write):
        async with ClientSession(read, write) as session:
            await session.initialize()
            return sorted(tool.name for tool in (await session.list_tools()).tools)


async def ask_once(config: Path, docs: Path, *extra: str) -> Any:
    params = StdioServerParameters(
        command=str(BINARY), args=["mcp", "serve", "--config", str(config), "--docs", str(docs), *extra]
    )
    async with stdio_client(params) as (read, write):
        async with ClientSession(read, write) as session:
            await session.initialize()
            return text_of(await session.call_tool("context_ask", {"query": "logging in credentials", "budget_tokens": 400}))


def test_docs_under_the_policy_root_are_keyed_by_their_workspace_paths(tmp_path: Path) -> None:
    # The workspace's own `docs/` folder, which the policy's `read = ["docs/**"]` names.
    config = setup(tmp_path)
    shutil.copytree(SAMPLE_DOCS / "docs", tmp_path / "docs")
    answer = asyncio.run(ask_once(config, tmp_path / "docs"))
    assert answer["sections"][0]["pointer"].startswith("docs/auth.md:"), answer
    assert answer["withheld"] == 0
    # Keyed under a folder no rule names, the same documents are withheld.
    hidden = asyncio.run(ask_once(config, tmp_path / "docs", "--docs-prefix", "handbook"))
    assert hidden["sections"] == [] and hidden["withheld"] > 0, hidden


def test_a_reranker_in_the_config_orders_what_the_server_serves(tmp_path: Path) -> None:
    config = setup(tmp_path)
    plain = asyncio.run(ask_once(config, SAMPLE_DOCS))
    assert plain["reranked"] is False and plain["rerank_error"] is None
    # A program that reverses the search's order, started by the server from its config.
    (tmp_path / "reverse.py").write_text(
        "import json, sys\n"
        "for line in sys.stdin:\n"
        "    candidates = json.loads(line)['candidates']\n"
        "    print(json.dumps({'scores': [-c['score'] for c in candidates]}), flush=True)\n"
    )
    with config.open("a") as file:
        file.write(f'[context.rerank]\ncommand = [{json.dumps(sys.executable)}, "reverse.py"]\ndir = "."\n')
    reversed_ = asyncio.run(ask_once(config, SAMPLE_DOCS))
    assert reversed_["reranked"] is True and reversed_["rerank_error"] is None, reversed_
    assert reversed_["sections"] and reversed_["sections"][0]["pointer"] != plain["sections"][0]["pointer"]
    # A reranker that fails leaves the search's order, and the answer says why.
    (tmp_path / "reverse.py").write_text("import sys\nsys.exit(0)\n")
    failed = asyncio.run(ask_once(config, SAMPLE_DOCS))
    # (It ends before or after the request reaches it: either way the answer names the program.)
    assert failed["reranked"] is False and "reverse.py" in failed["rerank_error"], failed
    assert "ended without a reply" in failed["rerank_error"] or "cannot write" in failed["rerank_error"]
    assert [section["pointer"] for section in failed["sections"]] == [section["pointer"] for section in plain["sections"]]


def test_the_docs_a_server_ingests_are_saved_to_the_snapshot(tmp_path: Path) -> None:
    config = setup(tmp_path, snapshot=True)
    assert "context_ask" in asyncio.run(list_tools(config))
    kept = fourfold.ContextStore.open(tmp_path / "context")
    expected = sorted(str(path.relative_to(SAMPLE_DOCS)) for path in SAMPLE_DOCS.rglob("*.md"))
    assert expected and sorted(kept.keys()) == expected


def test_a_server_serves_what_another_process_wrote_to_its_folder(tmp_path: Path) -> None:
    config = setup(tmp_path, snapshot=True)
    answer, renamed = asyncio.run(ask_after_another_process_writes(config, tmp_path / "context"))
    assert answer["sections"][0]["key"] == "docs/refunds.md", answer
    assert answer["renames"] == [] and answer["withheld"] == 0
    # An old name that a document says was renamed is searched as the new one, and said so.
    assert renamed["renames"] == [{"old": "approve_refund", "new": "approve", "pointer": "docs/upgrading.md:3"}]


def test_an_mcp_client_is_served_canonical_sections(tmp_path: Path) -> None:
    config = setup(tmp_path, snapshot=True)
    seen = asyncio.run(conversation(config))
    assert seen["tools"] == ["context_ask", "context_changed_since", "context_get_section", "context_record"]
    sections = seen["first"]["sections"]
    assert sections, seen["first"]
    assert all(section["freshness"] == "canonical" for section in sections)
    assert all(not section["key"].startswith("legacy/") for section in sections)
    assert sections[0]["pointer"].startswith(sections[0]["key"] + ":")
    assert sections[0]["text"]
    assert seen["first"]["tokens_served"] <= 800
    # Asked again, the session holds those sections: pointers, not the text again.
    assert all(section["already_served"] and section["text"] is None for section in seen["again"]["sections"])
    assert seen["section"]["section_id"] == sections[0]["section_id"]
    assert seen["unchanged"] == {"changes": []}
    # The policy allows write-backs under findings/ only.
    assert seen["refused"].is_error and "refused" in seen["refused"].content[0].text
    assert seen["recorded"]["key"] == "records/findings-orders-md.md" and seen["recorded"]["version"] == 1
    assert seen["missing"].is_error
    # The finding outlives the server: it was saved to the config's snapshot.
    kept = fourfold.ContextStore.open(tmp_path / "context")
    assert "idempotency key" in (kept.get("records/findings-orders-md.md") or "")

    reader = fourfold.TraceReader(tmp_path / "mcp.trace")
    (run_id,) = reader.run_ids()
    kinds = [event.kind for event in reader.events(run=run_id)]
    assert kinds.count("context") == 2, kinds
    tools = [event.data["tool"] for event in reader.events(kind="action")]
    assert tools == ["context_get_section", "context_changed_since", "context_record", "context_get_section"]
    gates = [event.data["outcome"] for event in reader.events(kind="gate")]
    assert gates == ["Denied", "Allowed"]
    # The tokens served instead of whole documents are metered as savings for the client.
    saved = [event.data for event in reader.events(kind="cost")]
    assert saved and all(cost["saved_tokens"] > 0 and cost["model"] == "gpt-4o" for cost in saved)
    assert {event.agent for event in reader.events(kind="cost")} == {"mcp-client"}


@contextlib.contextmanager
def serving_http(
    config: Path, *extra: str, env: dict[str, str] | None = None, ready: str = "streamable HTTP"
) -> Iterator[tuple[subprocess.Popen[str], str, int]]:
    """`fourfold mcp serve --http` on a free loopback port with the sample docs, once it logs `ready`:
    the process, its URL and its port. Stopped with SIGTERM on leaving (its `returncode` is then set)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [str(BINARY), "mcp", "serve", "--config", str(config), "--docs", str(SAMPLE_DOCS), "--http", f"127.0.0.1:{port}", *extra],
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert server.stderr is not None
        deadline = time.monotonic() + 60
        while ready not in server.stderr.readline():
            assert time.monotonic() < deadline and server.poll() is None, "the server did not start"
        yield server, f"http://127.0.0.1:{port}/mcp", port
    finally:
        server.terminate()
        server.wait(timeout=30)


async def over_http(url: str, token: str | None = None) -> dict[str, Any]:
    import httpx2
    from mcp.client.streamable_http import streamable_http_client

    # The SDK's documented way to send headers: a client of one's own.
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with streamable_http_client(url, http_client=httpx2.AsyncClient(headers=headers, timeout=30)) as streams:
        read, write = streams[0], streams[1]
        async with ClientSession(read, write) as session:
            await session.initialize()
            answer = text_of(await session.call_tool("context_ask", {"query": "how do I release", "budget_tokens": 500}))
            return {"answer": answer, "tools": sorted(tool.name for tool in (await session.list_tools()).tools)}


def test_an_mcp_client_over_streamable_http_on_loopback(tmp_path: Path) -> None:
    config = setup(tmp_path)
    with serving_http(config) as (server, url, _):
        seen = asyncio.run(over_http(url))
    assert server.returncode == 0, "the server stops cleanly on SIGTERM"
    # It closed its trace: the ask is there, the file whole.
    assert fourfold.TraceReader.verify(tmp_path / "mcp.trace") > 0
    assert fourfold.TraceReader(tmp_path / "mcp.trace").events(kind="context")
    assert "context_ask" in seen["tools"]
    sections = seen["answer"]["sections"]
    assert sections and sections[0]["key"] == "docs/releasing.md" and sections[0]["freshness"] == "canonical"
    refused = subprocess.run(
        [str(BINARY), "mcp", "serve", "--config", str(config), "--http", "0.0.0.0:0"], capture_output=True, text=True
    )
    assert refused.returncode == 2 and "loopback" in refused.stderr


async def slow_ask_beside_quick_calls(url: str) -> tuple[float, float, Any]:
    """One client asks a question the reranker takes 3 s over; another, half a second later,
    connects and calls a tool. When each finished, and the second's answer."""
    import httpx2
    from mcp.client.streamable_http import streamable_http_client

    async def client(tool: str, arguments: dict[str, Any], delay: float) -> tuple[float, Any]:
        await asyncio.sleep(delay)
        async with streamable_http_client(url, http_client=httpx2.AsyncClient(timeout=60)) as streams:
            async with ClientSession(streams[0], streams[1]) as session:
                await session.initialize()
                answer = text_of(await session.call_tool(tool, arguments))
                return time.monotonic(), answer

    (slow_done, slow), (quick_done, quick) = await asyncio.gather(
        client("context_ask", {"query": "slow release", "budget_tokens": 500}, 0.0),
        client("context_changed_since", {"reads": []}, 0.5),
    )
    assert slow["reranked"] is True, slow
    return slow_done, quick_done, quick


def test_a_slow_reranker_holds_up_only_its_own_ask(tmp_path: Path) -> None:
    """The server's runtime is one thread that all `--http` clients share: a tool that waits (a
    reranking model, a gate's command, the snapshot folder) waits off it."""
    config = setup(tmp_path)
    (tmp_path / "slow.py").write_text(
        "import json, sys, time\n"
        "for line in sys.stdin:\n"
        "    request = json.loads(line)\n"
        "    if 'slow' in request['query']:\n"
        "        time.sleep(3)\n"
        "    print(json.dumps({'scores': [c['score'] for c in request['candidates']]}), flush=True)\n"
    )
    with config.open("a") as file:
        file.write(f'[context.rerank]\ncommand = [{json.dumps(sys.executable)}, "slow.py"]\ndir = "."\n')
    with serving_http(config) as (_, url, _):
        slow_done, quick_done, quick = asyncio.run(slow_ask_beside_quick_calls(url))
    assert quick == {"changes": []}
    assert quick_done < slow_done - 1.0, (quick_done, slow_done)


def post_initialize(url: str, headers: dict[str, str]) -> int:
    """The HTTP status of an `initialize` request posted with `headers`."""
    import urllib.error
    import urllib.request

    body = json.dumps(
        {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "initialize",
            "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}},
        }
    ).encode()
    request = urllib.request.Request(
        url,
        data=body,
        method="POST",
        headers={"Content-Type": "application/json", "Accept": "application/json, text/event-stream", **headers},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)


def test_the_http_server_wants_its_token_and_refuses_other_origins(tmp_path: Path) -> None:
    config = setup(tmp_path)
    token = "t0ken-for-the-test"
    with serving_http(
        config,
        *["--auth-token-env", "FOURFOLD_TEST_MCP_TOKEN", "--allow-origin", "http://localhost:6274"],
        env={**os.environ, "FOURFOLD_TEST_MCP_TOKEN": token},
        ready="bearer token required",
    ) as (server, url, port):
        assert post_initialize(url, {}) == 401
        assert post_initialize(url, {"Authorization": "Bearer wrong"}) == 401
        assert post_initialize(url, {"Authorization": token}) == 401
        bearer = {"Authorization": f"Bearer {token}"}
        assert post_initialize(url, bearer) == 200
        # A web page of another origin cannot call it through the browser; its own origin and
        # the one allowed can.
        assert post_initialize(url, {**bearer, "Origin": "http://evil.example"}) == 403
        assert post_initialize(url, {**bearer, "Origin": f"http://localhost:{port}"}) == 200
        assert post_initialize(url, {**bearer, "Origin": "http://localhost:6274"}) == 200
        seen = asyncio.run(over_http(url, token))
    assert server.returncode == 0, "the server stops cleanly on SIGTERM"
    assert seen["answer"]["sections"][0]["key"] == "docs/releasing.md"
    # Without the variable it names, the server does not start.
    refused = subprocess.run(
        [str(BINARY), "mcp", "serve", "--config", str(config), "--http", "127.0.0.1:0"]
        + ["--auth-token-env", "FOURFOLD_TEST_MCP_TOKEN_UNSET"],
        capture_output=True,
        text=True,
        env={k: v for k, v in os.environ.items() if k != "FOURFOLD_TEST_MCP_TOKEN_UNSET"},
    )
    assert refused.returncode == 2 and "is not set" in refused.stderr


GATEWAY_POLICY = """
[[rule]]
id = "asks"
effect = "allow"
agents = ["mcp-client"]
tools = [{ name = "context_ask" }]
"""


async def through_gateway(params: StdioServerParameters) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    async with stdio_client(params) as (read, write):
        async with ClientSession(read, write) as session:
            await session.initialize()
            seen["tools"] = sorted(tool.name for tool in (await session.list_tools()).tools)
            seen["ask"] = text_of(await session.call_tool("context_ask", {"query": "how do I release", "budget_tokens": 500}))
            seen["record"] = await session.call_tool("context_record", {"topic": "findings/x.md", "text": "# X\n\nnothing"})
    return seen


def gateway_setup(tmp_path: Path) -> tuple[Path, Path]:
    """A gateway's own config (GATEWAY_POLICY, a trace file) beside the upstream's: its directory and
    its `fourfold.toml`."""
    gateway_dir = tmp_path / "gateway"
    gateway_dir.mkdir()
    (gateway_dir / "policy.toml").write_text(GATEWAY_POLICY)
    gateway_config = gateway_dir / "fourfold.toml"
    gateway_config.write_text('[policy]\nfile = "policy.toml"\n[trace]\nfile = "gateway.trace"\n')
    return gateway_dir, gateway_config


def test_the_gateway_governs_a_remote_upstream_over_streamable_http(tmp_path: Path) -> None:
    upstream_config = setup(tmp_path)
    gateway_dir, gateway_config = gateway_setup(tmp_path)
    token = "upstream-t0ken"
    with serving_http(
        upstream_config,
        *["--auth-token-env", "FOURFOLD_TEST_UPSTREAM_TOKEN"],
        env={**os.environ, "FOURFOLD_TEST_UPSTREAM_TOKEN": token},
        ready="bearer token required",
    ) as (_, url, _):
        gateway = StdioServerParameters(
            command=str(BINARY),
            args=["mcp", "gateway", "--config", str(gateway_config), "--upstream-url", url]
            + ["--upstream-token-env", "FOURFOLD_TEST_GATEWAY_TOKEN"],
            env={**os.environ, "FOURFOLD_TEST_GATEWAY_TOKEN": token},
        )
        seen = asyncio.run(through_gateway(gateway))
        # With the wrong token the upstream refuses the gateway, which then does not start.
        refused = subprocess.run(
            [str(BINARY), "mcp", "gateway", "--config", str(gateway_config), "--upstream-url", url]
            + ["--upstream-token-env", "FOURFOLD_TEST_GATEWAY_TOKEN"],
            input="",
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, "FOURFOLD_TEST_GATEWAY_TOKEN": "wrong"},
        )
    # The upstream's tools, unchanged; the allowed call answered by the upstream; the call the
    # gateway's policy does not allow refused before it reaches the upstream.
    assert seen["tools"] == ["context_ask", "context_changed_since", "context_get_section", "context_record"]
    assert seen["ask"]["sections"][0]["key"] == "docs/releasing.md"
    assert seen["record"].is_error and "fourfold denied this call" in seen["record"].content[0].text
    assert refused.returncode != 0 and url in refused.stderr
    reader = fourfold.TraceReader(gateway_dir / "gateway.trace")
    actions = [(event.data["tool"], event.data.get("error")) for event in reader.events(kind="action")]
    assert [tool for tool, _ in actions] == ["context_ask", "context_record"]
    denied = actions[1][1]
    assert actions[0][1] is None and isinstance(denied, str) and "denied" in denied
    upstream_records = [event.data["tool"] for event in fourfold.TraceReader(tmp_path / "mcp.trace").events(kind="action")]
    assert "context_record" not in upstream_records
    # Flags that cannot work are refused up front.
    for args, message in [
        (["--upstream-url", "ftp://x/mcp"], "http:// or https://"),
        (["--upstream-url", url, "--upstream-token-env", "FOURFOLD_TEST_UNSET_TOKEN"], "is not set"),
    ]:
        bad = subprocess.run(
            [str(BINARY), "mcp", "gateway", "--config", str(gateway_config), *args], capture_output=True, text=True, timeout=60
        )
        assert bad.returncode != 0 and message in bad.stderr, bad.stderr


@contextlib.contextmanager
def tls_in_front(port: int) -> Iterator[int]:
    """A TLS endpoint on a free loopback port, with the test certificate for 127.0.0.1, that forwards
    each connection it accepts to the plain HTTP server on `port`: its port."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(TLS_TESTDATA / "server.pem", TLS_TESTDATA / "server.key")
    listener = socket.create_server(("127.0.0.1", 0))

    def pipe(source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
        source.close()
        sink.close()

    def accept() -> None:
        while True:
            try:
                raw, _ = listener.accept()
            except OSError:
                return  # the listener was closed
            try:
                client = context.wrap_socket(raw, server_side=True)
            except OSError:
                raw.close()  # a client that does not trust the certificate ends the handshake
                continue
            upstream = socket.create_connection(("127.0.0.1", port))
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=pipe, args=(source, sink), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    try:
        yield listener.getsockname()[1]
    finally:
        listener.close()


def test_the_gateway_trusts_a_private_ca_for_a_remote_upstream(tmp_path: Path) -> None:
    upstream_config = setup(tmp_path)
    _, gateway_config = gateway_setup(tmp_path)
    ca = str(TLS_TESTDATA / "ca.pem")
    gateway_args = [str(BINARY), "mcp", "gateway", "--config", str(gateway_config), "--upstream-url"]
    with serving_http(upstream_config) as (_, plain_url, port), tls_in_front(port) as tls_port:
        url = f"https://127.0.0.1:{tls_port}/mcp"
        gateway = StdioServerParameters(command=gateway_args[0], args=[*gateway_args[1:], url, "--upstream-ca-file", ca])
        seen = asyncio.run(through_gateway(gateway))
        # Without the CA, the system's roots do not trust the upstream: the gateway does not start.
        untrusted = subprocess.run([*gateway_args, url], input="", capture_output=True, text=True, timeout=60)
        bad_files = [
            ([plain_url, "--upstream-ca-file", ca], "is not an https:// URL"),
            ([url, "--upstream-ca-file", str(tmp_path / "missing.pem")], "missing.pem"),
            ([url, "--upstream-ca-file", str(gateway_config)], "no PEM certificate"),
        ]
        refused = [
            (subprocess.run([*gateway_args, *args], input="", capture_output=True, text=True, timeout=60), message)
            for args, message in bad_files
        ]
    assert seen["tools"] == ["context_ask", "context_changed_since", "context_get_section", "context_record"]
    assert seen["ask"]["sections"][0]["key"] == "docs/releasing.md"
    assert seen["record"].is_error and "fourfold denied this call" in seen["record"].content[0].text
    assert untrusted.returncode != 0 and url in untrusted.stderr, untrusted.stderr
    for result, message in refused:
        assert result.returncode != 0 and message in result.stderr, result.stderr
