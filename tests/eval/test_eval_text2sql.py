"""Text-to-SQL execution accuracy: the equality rules on a real SQLite file, the error taxonomy, the gold oracle."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from servers.core.errors import InvalidInput
from servers.eval import api
from servers.eval.schemas import SqlItem
from servers.eval.text2sql import classify, evaluate_item, orders_output, results_match, split_gold
from servers.text2sql.database import Database
from tests.eval.conftest import SHARED


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("t2s") / "tiny.sqlite"
    conn = sqlite3.connect(path)
    conn.executescript("""
        CREATE TABLE people (id INTEGER PRIMARY KEY, name TEXT, city TEXT, score REAL);
        INSERT INTO people VALUES (1, 'Ana', 'Oslo', 1.5), (2, 'Bo', 'Oslo', 2.25), (3, 'Cy', 'Rome', NULL),
                                  (4, 'Di', NULL, 0.1);
    """)
    conn.commit()
    conn.close()
    return path


CASES = [
    # (gold, predicted, right?)
    ("SELECT DISTINCT city FROM people WHERE city IS NOT NULL", "SELECT city FROM people WHERE city IS NOT NULL", False),
    ("SELECT city FROM people WHERE city IS NOT NULL", "SELECT city FROM people WHERE city IS NOT NULL ORDER BY id DESC", True),
    ("SELECT name FROM people ORDER BY score DESC", "SELECT name FROM people ORDER BY score ASC", False),
    ("SELECT name FROM people ORDER BY id", "SELECT name FROM people ORDER BY id", True),
    ("SELECT name, city FROM people", "SELECT city, name FROM people", True),
    ("SELECT name, city FROM people", "SELECT name FROM people", False),
    ("SELECT SUM(score) FROM people", "SELECT 0.1 + 1.5 + 2.25", True),
    ("SELECT 0.1 + 0.2", "SELECT 0.3", True),
    ("SELECT COUNT(*) FROM people", "SELECT 4.0", True),
    ("SELECT city FROM people WHERE id IN (3, 4)", "SELECT NULL UNION ALL SELECT 'Rome'", True),
    ("SELECT score FROM people WHERE id = 3", "SELECT 0", False),
    ("SELECT name FROM people WHERE id = 99", "SELECT name FROM people WHERE 1 = 0", True),
]


@pytest.mark.parametrize(("gold", "predicted", "right"), CASES)
def test_equality_rules(shop: Path, gold: str, predicted: str, right: bool) -> None:
    """Each case through the text2sql server's read-only executor on a real SQLite file."""
    row = evaluate_item(SqlItem(database="tiny", gold=gold), "1", Database("tiny", str(shop)), predicted,
                        max_rows=1000, timeout_s=5.0)
    assert row.scores["execution_accuracy"] == float(right), row.detail


def _roots(settings, path: Path):
    s = settings.model_copy(deep=True)
    s.roots = [*s.roots, str(path.parent)]
    return s


def test_match_rules_directly() -> None:
    assert results_match([[1, "a"], [2, "b"]], [["b", 2], ["a", 1]], ordered=False)
    assert not results_match([[1, "a"], [2, "b"]], [["b", 2], ["a", 1]], ordered=True)
    assert results_match([[None, 1.0000001]], [[None, 1]], ordered=True)
    assert not results_match([[1], [1]], [[1]], ordered=False)  # DISTINCT errors count
    assert results_match([], [], ordered=False)
    assert orders_output("SELECT a FROM t ORDER BY a") and not orders_output("SELECT a FROM (SELECT a FROM t ORDER BY a)")
    assert split_gold("SELECT 'a;b' FROM t;SELECT 2;") == ["SELECT 'a;b' FROM t", "SELECT 2"]


def test_error_taxonomy_and_failing_gold(shop: Path, eval_env) -> None:
    items = [
        SqlItem(id="syntax", database="tiny", gold="SELECT 1", predicted="SELEC name FROM people"),
        SqlItem(id="table", database="tiny", gold="SELECT 1", predicted="SELECT name FROM persons"),
        SqlItem(id="column", database="tiny", gold="SELECT 1", predicted="SELECT nme FROM people"),
        SqlItem(id="write", database="tiny", gold="SELECT 1", predicted="DELETE FROM people"),
        SqlItem(id="slow", database="tiny", gold="SELECT 1", predicted=(
            "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT COUNT(*) FROM c")),
        SqlItem(id="wrong", database="tiny", gold="SELECT 1", predicted="SELECT 2"),
        SqlItem(id="empty", database="tiny", gold="SELECT 1", predicted=""),
        SqlItem(id="badgold", database="tiny", gold="SELECT nope FROM people", predicted="SELECT 1"),
        SqlItem(id="nodb", database="missing", gold="SELECT 1", predicted="SELECT 1"),
    ]
    result = api.eval_text2sql(items=items, databases={"tiny": str(shop)}, timeout_s=0.5, rows=20,
                               settings=_roots(eval_env, shop))
    rows = {r.id: r for r in result.rows}
    kinds = {k: rows[k].detail.get("error_type") for k in ("syntax", "table", "column", "write", "slow", "wrong", "empty")}
    assert kinds == {"syntax": "syntax", "table": "unknown_table", "column": "unknown_column", "write": "refused",
                     "slow": "timeout", "wrong": "wrong_result", "empty": "no_sql"}
    assert rows["badgold"].unscorable["*"].startswith("unscorable: the gold SQL fails")
    assert "unknown database 'missing'" in rows["nodb"].unscorable["*"]
    assert result.metrics["valid_sql"] == pytest.approx(1 / 7) and result.metrics["execution_accuracy"] == 0.0
    assert classify(InvalidInput("SQL invalid: unknown column 'x'")) == "unknown_column"


def test_needs_predictions_unless_gold_or_pipeline(eval_env) -> None:
    with pytest.raises(InvalidInput, match="source='gold'"):
        api.eval_text2sql(items=[SqlItem(database="shop", gold="SELECT 1")], settings=eval_env)


@pytest.mark.skipif(not (SHARED / "text2sql" / "questions.csv").is_file(), reason="../shared/data/text2sql is absent")
def test_gold_oracle_on_the_defog_questions_scores_one(eval_env) -> None:
    data = SHARED / "text2sql"
    dbs = {p.stem: str(p) for p in (data / "databases").glob("*.sqlite")}
    result = api.eval_text2sql(items_path=str(data / "questions.csv"), databases=dbs, source="gold", settings=eval_env)
    assert result.n_items == 110 and result.n_unscorable == 0
    assert result.metrics["execution_accuracy"] == 1.0 and result.metrics["valid_sql"] == 1.0
