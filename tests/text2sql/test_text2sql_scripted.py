"""Repair and voting with a scripted generator (the ``TextToSql(generator=...)`` seam): the real
database, checker and embedder, and model answers chosen by the test, so every branch is
reached deterministically (the shipped 135M model cannot be steered into them)."""

from __future__ import annotations

from typing import Any

import pytest

from servers.core.settings import Settings
from servers.text2sql import api
from servers.text2sql.database import Database
from servers.text2sql.demo_db import ensure_demo_database
from servers.text2sql.pipeline import PipelineOptions, TextToSql
from servers.text2sql.sqlcheck import check_sql


class ScriptedGenerator:
    """Answers each ``chat`` call with the next scripted list of texts; records the calls."""

    name = "scripted"

    def __init__(self, *answers: list[str]) -> None:
        self.answers = list(answers)
        self.calls: list[dict[str, Any]] = []

    def chat(self, messages, *, max_new_tokens=256, temperature=0.0, n=1, stop=None, seed=None) -> list[str]:
        self.calls.append({"messages": messages, "temperature": temperature, "n": n, "seed": seed, "stop": stop})
        assert self.answers, f"unscripted call #{len(self.calls)}: {messages[-1]['content'][:200]}"
        texts = self.answers.pop(0)
        assert len(texts) == n, f"call #{len(self.calls)} asked for {n} texts, the script has {len(texts)}"
        return texts


@pytest.fixture(scope="module")
def t2s_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    root = tmp_path_factory.mktemp("scripted")
    return Settings.model_validate({"data_dir": str(root / "data"), "roots": [str(root)]})


@pytest.fixture(scope="module")
def shop(t2s_settings: Settings) -> Database:
    return Database("shop", str(ensure_demo_database(t2s_settings.data_path)))


def _count(db: Database, table: str) -> int:
    return db.execute(f"SELECT COUNT(*) FROM {table}", max_rows=1, timeout_s=5).rows[0][0]


def test_repair_feeds_the_error_back_and_fixes_the_candidate(t2s_settings: Settings, shop: Database) -> None:
    gen = ScriptedGenerator(["SELECT COUNT(*) FROM order"], ["```sql\nSELECT COUNT(*) FROM orders\n```"])
    out = TextToSql(t2s_settings, generator=gen).answer(
        "How many orders are there?", shop, None, PipelineOptions(candidates=1, repair_rounds=2))
    (cand,) = out.candidates
    assert out.ok and cand.status == "ok" and cand.repairs == 1 and cand.chosen
    problems = "; ".join(check_sql("SELECT COUNT(*) FROM order", shop.schema()).problems)
    assert "unknown table 'order'" in problems and cand.history == [f"SELECT COUNT(*) FROM order -- {problems}"]
    assert out.sql == "SELECT COUNT(*) FROM orders" and out.result.rows == [[_count(shop, "orders")]]
    repair_prompt = " ".join(m["content"] for m in gen.calls[1]["messages"])
    assert "SELECT COUNT(*) FROM order" in repair_prompt and "unknown table 'order'" in repair_prompt
    assert gen.calls[1]["temperature"] == 0.0 and len(gen.calls) == 2


def test_repair_stops_after_the_configured_rounds(t2s_settings: Settings, shop: Database) -> None:
    gen = ScriptedGenerator(["SELECT nope FROM orders"], ["SELECT nope2 FROM orders"], ["SELECT nope3 FROM orders"])
    out = TextToSql(t2s_settings, generator=gen).answer(
        "How many orders?", shop, None, PipelineOptions(candidates=1, repair_rounds=2))
    (cand,) = out.candidates
    assert not out.ok and out.sql is None and out.result is None
    assert cand.status == "invalid" and cand.repairs == 2 and cand.sql == "SELECT nope3 FROM orders"
    assert [h.split(" -- ")[0] for h in cand.history] == ["SELECT nope FROM orders", "SELECT nope2 FROM orders"]
    assert "no candidate" in out.message and "2 repair round(s)" in out.message and "nope3" in out.message


def test_identical_failures_are_repaired_once(t2s_settings: Settings, shop: Database) -> None:
    gen = ScriptedGenerator(["SELECT x FROM orders"], ["SELECT x FROM orders"], ["SELECT COUNT(*) FROM orders"])
    out = TextToSql(t2s_settings, generator=gen).answer(
        "How many orders?", shop, None, PipelineOptions(candidates=2, repair_rounds=1))
    assert len(gen.calls) == 3  # greedy, one sample, one repair shared by both candidates
    assert [(c.status, c.repairs, c.votes) for c in out.candidates] == [("ok", 1, 2), ("ok", 1, 2)]
    assert out.candidates[0].chosen and not out.candidates[1].chosen


def test_vote_by_result_greedy_first_then_seeded_samples(t2s_settings: Settings, shop: Database) -> None:
    gen = ScriptedGenerator(
        ["SELECT COUNT(*) FROM customers"],
        ["SELECT COUNT(*) AS n FROM products;", "SELECT count(product_id) FROM products"],
    )
    options = PipelineOptions(candidates=3, repair_rounds=0, temperature=0.7, seed=4)
    out = TextToSql(t2s_settings, generator=gen).answer("How many products?", shop, None, options)
    assert [(c.index, c.votes, c.chosen) for c in out.candidates] == [(1, 1, False), (2, 2, True), (3, 2, False)]
    assert out.sql == "SELECT COUNT(*) AS n FROM products" and out.result.rows == [[_count(shop, "products")]]
    assert "candidate 2 chosen with 2 of 3 vote(s)" in out.message
    greedy, sampled = gen.calls
    assert greedy["temperature"] == 0.0 and greedy["n"] == 1
    assert (sampled["temperature"], sampled["n"], sampled["seed"]) == (0.7, 2, 4)
    assert greedy["messages"] == sampled["messages"] and greedy["stop"] == sampled["stop"]


def test_without_execution_identical_sql_votes_together(t2s_settings: Settings, shop: Database) -> None:
    gen = ScriptedGenerator(["select name from products"], ["SELECT name FROM customers", "SELECT  NAME FROM products"])
    out = TextToSql(t2s_settings, generator=gen).answer(
        "Product names?", shop, None, PipelineOptions(candidates=3, repair_rounds=0, execute=False))
    assert [c.status for c in out.candidates] == ["checked"] * 3
    assert [(c.votes, c.chosen) for c in out.candidates] == [(2, True), (1, False), (2, False)]
    assert out.ok and out.result is None and all(c.row_count is None for c in out.candidates)


def test_api_resolves_options_from_settings(t2s_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    """text_to_sql takes candidates/repair rounds from [text2sql] unless given, and the default database."""
    settings = t2s_settings.model_copy(deep=True)
    settings.text2sql.candidates, settings.text2sql.repair_rounds = 2, 0
    gen = ScriptedGenerator(["SELECT COUNT(*) FROM orders"], ["SELECT COUNT(*) FROM orders"], ["SELECT 1"])
    scripted = TextToSql(settings, generator=gen)
    monkeypatch.setattr(api, "pipeline", lambda _settings: scripted)
    events: list[tuple] = []
    out = api.text_to_sql(settings, "How many orders?", progress=lambda *e: events.append(e))
    assert out.database == "shop" and len(out.candidates) == 2 and out.candidates[0].votes == 2
    assert events[0][0] == 0 and events[-1][0] == events[-1][1] == 4
    one = api.text_to_sql(settings, "How many orders?", candidates=1)
    assert len(one.candidates) == 1 and one.sql == "SELECT 1"


def test_a_cancelled_question_stops_before_the_next_candidate_is_checked(t2s_settings: Settings, shop: Database) -> None:
    from servers.core.progress import Cancelled

    gen = ScriptedGenerator(["SELECT COUNT(*) FROM orders"], ["SELECT 1", "SELECT 2"])
    seen: list[str] = []

    def progress(done: float, total: float | None, message: str) -> None:
        seen.append(message)
        if message == "checking candidate 1":
            raise Cancelled(message)

    with pytest.raises(Cancelled):
        TextToSql(t2s_settings, generator=gen).answer(
            "How many orders are there?", shop, None, PipelineOptions(candidates=3, repair_rounds=0), progress)
    assert seen[-1] == "checking candidate 1" and "done" not in seen
    assert len(gen.calls) == 2  # the candidates were generated; none was checked or executed after the cancel
