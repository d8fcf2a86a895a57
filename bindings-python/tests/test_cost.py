"""Token counts and the CostMeter from Python: counts equal to OpenAI's tiktoken (the checked-in
fixtures, and hypothesis-generated text against tiktoken itself), chat overhead, estimates,
prices, budgets, reports and the typed errors for unknown models."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fourfold

REPO = Path(__file__).resolve().parents[2]
FIXTURES = json.loads((REPO / "tests" / "fixtures" / "tokens" / "cases.json").read_text())


def expand(spec: dict[str, Any]) -> str:
    """The text a generated case stands for (the spec and generator of scripts/regen-token-counts.py)."""
    if "repeat" in spec:
        return str(spec["repeat"]) * int(spec["times"])
    random = spec["random"]
    state = random["seed"] & 0xFFFFFFFFFFFFFFFF or 1
    pieces: list[str] = random["pieces"]
    out: list[str] = []
    n_bytes = 0
    while n_bytes < random["min_bytes"]:
        state ^= (state << 13) & 0xFFFFFFFFFFFFFFFF
        state ^= state >> 7
        state ^= (state << 17) & 0xFFFFFFFFFFFFFFFF
        piece = pieces[state % len(pieces)]
        out.append(piece)
        n_bytes += len(piece.encode())
    return "".join(out)


@pytest.mark.parametrize("case", FIXTURES["cases"], ids=[case["name"] for case in FIXTURES["cases"]])
def test_counts_equal_tiktoken_on_the_checked_in_texts(case: dict[str, Any]) -> None:
    text = case["text"] if "text" in case else expand(case["generate"])
    for encoding, expected in case["counts"].items():
        assert fourfold.count_tokens(encoding, text) == expected, (case["name"], encoding)


def test_chat_counts_and_model_names_match_tiktoken() -> None:
    for chat in FIXTURES["chats"]:
        assert fourfold.count_chat_tokens(chat["model"], chat["messages"]) == chat["expected"]
    for model, encoding in FIXTURES["models"].items():
        assert fourfold.count_tokens(model, "hello world, 世界 🙂") == fourfold.count_tokens(encoding, "hello world, 世界 🙂")
        assert not fourfold.is_estimate(model)


@pytest.fixture(scope="module")
def tiktoken_module() -> Any:
    """OpenAI's tiktoken, pointed at the encoding files of the cargo registry (no network)."""
    tiktoken = pytest.importorskip("tiktoken")
    sys.path.insert(0, str(REPO / "scripts"))
    import tiktoken_cache  # type: ignore[import-not-found]

    cache = REPO / "target" / "tiktoken-cache"
    try:
        tiktoken_cache.prepare(str(cache))
    except SystemExit as missing:
        pytest.skip(str(missing))
    return tiktoken


PIECES = ["the", " quick", "  ", "\n", "\t", "'s", "'LL", "123", "4567", " über", "世界", "🙂", "👨\u200d👩\u200d👧", "<|endoftext|>", "{", "}", "->", "x" * 40, " " * 17]


@settings(max_examples=300, deadline=None)
@given(text=st.one_of(st.text(max_size=200), st.lists(st.sampled_from(PIECES), max_size=60).map("".join)))
def test_counts_equal_tiktoken_on_generated_text(tiktoken_module: Any, text: str) -> None:
    for name in ("o200k_base", "cl100k_base"):
        expected = len(tiktoken_module.get_encoding(name).encode_ordinary(text))
        assert fourfold.count_tokens(name, text) == expected, (name, text)


def test_models_without_a_public_tokenizer_are_estimates() -> None:
    assert fourfold.is_estimate("claude-sonnet-4-5") and fourfold.is_estimate("gemini-2.5-pro")
    assert fourfold.count_tokens("claude-sonnet-4-5", "hello") == fourfold.count_tokens("o200k_base", "hello")
    # Any model name fourfold does not know is counted as an estimate, never refused.
    assert fourfold.is_estimate("house-model-7b") and not fourfold.is_estimate("o200k_base")
    with pytest.raises(fourfold.UnknownModel):
        fourfold.count_tokens("", "hello")
    with pytest.raises(ValueError):
        fourfold.count_chat_tokens("gpt-4o", [{"role": "user"}])


def test_the_meter_prices_records_and_reports() -> None:
    meter = fourfold.CostMeter(budgets=[fourfold.Budget("fleet", unit="USD", soft=0.001, hard=1.0)])
    assert meter.currency == "USD"
    price = meter.price("gpt-4o", input_tokens=1_000_000)
    assert price == 2_500_000  # $2.50 per million input tokens (LiteLLM's table)
    record = meter.record("coder", "gpt-4o", input_tokens=1000, output_tokens=100, task="T-1")
    assert record.cost_micros == meter.price("gpt-4o", input_tokens=1000, output_tokens=100)
    assert record.cost == pytest.approx(record.cost_micros / 1e6)
    assert record.warning is None and not record.estimated
    report = meter.report()
    assert report["currency"] == "USD"
    assert report["by_agent"]["coder"]["calls"] == 1
    assert report["by_task"]["T-1"]["spent_micros"] == record.cost_micros
    assert record.to_dict()["counts"]["input"] == 1000


def test_unknown_models_are_refused_or_priced_at_zero() -> None:
    with pytest.raises(fourfold.UnknownModel):
        fourfold.CostMeter().record("coder", "my-finetune", input_tokens=10)
    zero = fourfold.CostMeter(unknown_model="zero").record("coder", "my-finetune", input_tokens=10)
    assert zero.cost_micros == 0 and zero.warning is not None


def test_a_reservation_holds_and_releases() -> None:
    meter = fourfold.CostMeter(budgets=[fourfold.Budget("agent:coder", hard=1000)])
    held = meter.reserve("coder", "gpt-4o", input_tokens=800)
    with pytest.raises(fourfold.BudgetExceeded) as exceeded:
        meter.reserve("coder", "gpt-4o", input_tokens=300)
    assert (exceeded.value.reserved, exceeded.value.requested) == (800, 300)
    held.release()
    assert not held.held
    meter.reserve("coder", "gpt-4o", input_tokens=300).commit(input_tokens=250)
    assert meter.report()["total"]["input_tokens"] == 250


def test_prices_load_from_a_litellm_file(tmp_path: Path) -> None:
    prices = tmp_path / "prices.json"
    prices.write_text(json.dumps({"house-model": {"input_cost_per_token": 1e-6, "output_cost_per_token": 2e-6, "litellm_provider": "openai", "mode": "chat"}}))
    meter = fourfold.CostMeter(prices=prices)
    assert meter.price("house-model", input_tokens=1000, output_tokens=1000) == 3000
    with pytest.raises(fourfold.UnknownModel):
        meter.price("gpt-4o", input_tokens=1)
    prices.write_text("{not json")
    with pytest.raises(fourfold.ConfigError):
        fourfold.CostMeter(prices=prices)
    with pytest.raises(fourfold.ConfigError):
        fourfold.CostMeter(prices=tmp_path / "missing.json")
