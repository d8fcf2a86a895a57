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
