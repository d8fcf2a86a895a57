"""The fleet from Python: two Fourfolds built from one fourfold.toml with a PostgreSQL [store]
share approvals and a budget. The server comes from scripts/with-postgres.sh (FOURFOLD_TEST_POSTGRES);
without one the test says why it is skipped, except under CI=true, where it must run."""

from __future__ import annotations

import os
import subprocess
import uuid
from pathlib import Path

import pytest

import fourfold

SERVER = os.environ.get("FOURFOLD_TEST_POSTGRES", "")


def fresh_database() -> str:
    if not SERVER:
        if os.environ.get("CI") == "true":
            pytest.fail("CI must run the PostgreSQL tests: run them under scripts/with-postgres.sh")
        pytest.skip("no PostgreSQL server (run the tests under scripts/with-postgres.sh)")
    name = f"ff_py_{uuid.uuid4().hex[:12]}"
    subprocess.run(["psql", f"{SERVER} dbname=postgres", "-q", "-c", f"CREATE DATABASE {name}"], check=True)
    return f"{SERVER} dbname={name}"


POLICY = """
[[rule]]
id = "push-review"
effect = "gate"
gates = ["human-review"]
run = ["git push*"]

[[rule]]
id = "llm"
effect = "gate"
gates = ["budget"]
tools = [{ name = "llm" }]
"""


def test_two_processes_share_approvals_and_a_budget(tmp_path: Path) -> None:
    settings = fresh_database()
    (tmp_path / "policy.toml").write_text(POLICY)
    config = tmp_path / "fourfold.toml"
    config.write_text(
        f'[policy]\nfile = "policy.toml"\n[store]\nurl = "{settings}"\n'
        '[[budget]]\nscope = "fleet"\nunit = "tokens"\nhard = 1000\nshared = true\n'
    )
    agents, reviewers = fourfold.Fourfold.from_config(config), fourfold.Fourfold.from_config(config)
    session = agents.session("coder", task="T-1")
    with pytest.raises(fourfold.GatePending) as pending:
        session.guard(run="git push origin main")
    assert [approval.id for approval in reviewers.policy.pending_approvals()] == [pending.value.approval_id]
    reviewers.policy.approve(pending.value.approval_id, "alice")  # type: ignore[arg-type]
    assert session.guard(run="git push origin main").allowed
    session.record_usage("gpt-4o", input_tokens=900)
    other = reviewers.session("reviewer")
    with pytest.raises(fourfold.BudgetExceeded):
        other.reserve("gpt-4o", input_tokens=200)
    assert other.guard(tool="llm").allowed  # 900 of 1,000 spent: room left
    other.record_usage("gpt-4o", input_tokens=100)
    with pytest.raises(fourfold.BudgetExceeded):
        session.guard(tool="llm")  # the fleet's 1,000 are spent, by both processes together


def test_a_store_that_cannot_be_reached_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "policy.toml").write_text(POLICY)
    config = tmp_path / "fourfold.toml"
    config.write_text('[policy]\nfile = "policy.toml"\n[store]\nurl = "host=/nonexistent/dir user=x connect_timeout=1"\n')
    with pytest.raises(fourfold.ConfigError, match="store"):
        fourfold.Fourfold.from_config(config)


def test_a_document_put_by_one_process_is_served_by_the_other(tmp_path: Path) -> None:
    settings = fresh_database()
    (tmp_path / "policy.toml").write_text(POLICY)
    config = tmp_path / "fourfold.toml"
    config.write_text(f'[policy]\nfile = "policy.toml"\n[store]\nurl = "{settings}"\n[context]\nshared = true\n')
    writer, reader = fourfold.Fourfold.from_config(config), fourfold.Fourfold.from_config(config)
    assert writer.shared_documents is not None and reader.shared_documents is not None
    version = writer.shared_documents.put("docs/widgets.md", "# Widgets\n\nA widget is configured with widget.toml.\n")
    assert version["key"] == "docs/widgets.md" and version["version"] == 1
    # The reader applies the fleet's log within a second; refresh applies it now.
    reader.shared_documents.refresh()
    assert reader.context is not None
    answer = reader.context.ask("how is a widget configured", budget_tokens=300)
    assert answer.hits and answer.hits[0].key == "docs/widgets.md"
    # Both processes number the versions alike.
    assert reader.shared_documents.put("docs/widgets.md", "# Widgets\n\nWidgets read widgets.yaml now.\n")["version"] == 2
    writer.shared_documents.refresh()
    assert writer.shared_documents.context.get("docs/widgets.md") == "# Widgets\n\nWidgets read widgets.yaml now.\n"
    assert writer.shared_documents.delete("docs/widgets.md")
    reader.shared_documents.refresh()
    assert reader.context.get("docs/widgets.md") is None
    with pytest.raises(fourfold.InvalidRequest):
        writer.shared_documents.put("", "an empty key is refused before anything is written")
    # A finding recorded by one process is appended to by the other, for both.
    assert writer.shared_documents.record("widgets", "Widgets need a restart after a config change.")["version"] == 1
    assert reader.shared_documents.record("widgets", "A restart takes about a minute.")["version"] == 2
    writer.shared_documents.refresh()
    recorded = writer.context.get("records/widgets.md") if writer.context else None
    assert recorded is not None and "restart after" in recorded and "about a minute" in recorded
    # A folder published by one process is served by the other, and a removed file is retired.
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "deploy.md").write_text("# Deploy\n\nRun `make deploy` from main.\n")
    (docs / "old.md").write_text("# Old\n\nSoon gone.\n")
    report = writer.shared_documents.ingest_dir(docs)
    assert report["n_changed"] == 2
    reader.shared_documents.refresh()
    assert reader.context.ask("how do I deploy", budget_tokens=300).hits[0].key == "deploy.md"
    (docs / "old.md").unlink()
    assert writer.shared_documents.ingest_dir(docs)["deleted"] == ["old.md"]
    reader.shared_documents.refresh()
    assert reader.context.get("old.md") is None
    # A batch lands for both processes in one append, numbered as that many puts.
    pages = {"docs/a.md": "# A\n\nAlpha pages.\n", "docs/b.md": "# B\n\nBeta pages.\n"}
    versions = writer.shared_documents.put_many([*pages.items(), ("docs/a.md", "# A\n\nAlpha, again.\n")])
    assert [(v["key"], v["version"]) for v in versions] == [("docs/a.md", 1), ("docs/b.md", 1), ("docs/a.md", 2)]
    reader.shared_documents.refresh()
    assert reader.context.get("docs/a.md") == "# A\n\nAlpha, again.\n"
    with pytest.raises(fourfold.InvalidRequest):
        writer.shared_documents.put_many([("docs/c.md", "# C\n"), ("", "refused")])
    assert reader.shared_documents.refresh() == 0 and writer.shared_documents.context.get("docs/c.md") is None
    # A Fourfold whose context is its own has no shared documents.
    (tmp_path / "local.toml").write_text('[policy]\nfile = "policy.toml"\n[context]\n')
    assert fourfold.Fourfold.from_config(tmp_path / "local.toml").shared_documents is None


def test_otlp_tls_settings_come_from_the_opentelemetry_variables(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "policy.toml").write_text(POLICY)
    config = tmp_path / "fourfold.toml"
    config.write_text('[policy]\nfile = "policy.toml"\n[trace]\notlp_endpoint = "https://127.0.0.1:9/v1/traces"\n')
    for var in ("OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE", "OTEL_EXPORTER_OTLP_CERTIFICATE"):
        monkeypatch.delenv(var, raising=False)
    fourfold.Fourfold.from_config(config)  # an https:// collector, verified with Mozilla's roots
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_CERTIFICATE", str(tmp_path / "missing.pem"))
    with pytest.raises(fourfold.ConfigError, match="OTEL_EXPORTER_OTLP_CERTIFICATE"):
        fourfold.Fourfold.from_config(config)
    (tmp_path / "not.pem").write_text("not a certificate")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE", str(tmp_path / "not.pem"))
    with pytest.raises(fourfold.ConfigError, match="no PEM certificate"):
        fourfold.Fourfold.from_config(config)
    # The traces variable wins over the general one (still naming a missing file).
    ca = Path(__file__).resolve().parents[2] / "core" / "src" / "trace" / "otlp" / "testdata" / "ca.pem"
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE", str(ca))
    fourfold.Fourfold.from_config(config)
