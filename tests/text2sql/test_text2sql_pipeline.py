"""text_to_sql pieces: SQL extraction, schema linking (real embedder), example store, prompt, voting,
and the whole pipeline with the shipped SmolLM2 (asserting behaviour, not the small model's accuracy)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from servers.core.errors import NotFound
from servers.core.settings import Settings, load_settings
from servers.text2sql.database import Database, QueryResult
from servers.text2sql.demo_db import ensure_demo_database
from servers.text2sql.examples import ExampleRetriever, store_for
from servers.text2sql.linking import join_hints
from servers.text2sql.operations import value_hints
from servers.text2sql.pipeline import Candidate, PipelineOptions, TextToSql
from servers.text2sql.prompting import build_messages, extract_sql, render_schema
from servers.text2sql.sqlcheck import check_sql


@pytest.mark.parametrize(("text", "expected"), [
    ("SELECT name FROM customers;", "SELECT name FROM customers"),
    ("```sql\nSELECT a\nFROM t\n```\nThis returns a.", "SELECT a\nFROM t"),
    ("Here is the query:\n```\nSELECT 1\n```", "SELECT 1"),
    ("Sure! SELECT name FROM t WHERE x = 'a;b'; SELECT 2;", "SELECT name FROM t WHERE x = 'a;b'"),
    ("SELECT count(*) FROM t\n\nExplanation: counts rows", "SELECT count(*) FROM t"),
    ("WITH x AS (SELECT 1 AS a) SELECT a FROM x<|im_end|>", "WITH x AS (SELECT 1 AS a) SELECT a FROM x"),
    ("select id from t\nThis query selects ids.", "select id from t"),
    ("I cannot answer that.", ""),
    ("", ""),
])
def test_extract_sql(text: str, expected: str) -> None:
    assert extract_sql(text) == expected


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def model_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    root = tmp_path_factory.mktemp("t2s")
    return load_settings(overrides={"data_dir": str(root / "data"), "roots": [str(root)]})


@pytest.fixture(scope="module")
def pipeline(model_settings: Settings) -> TextToSql:
    return TextToSql(model_settings)


@pytest.fixture(scope="module")
def shop(model_settings: Settings) -> Database:
    return Database("shop", str(ensure_demo_database(model_settings.data_path)))


@pytest.fixture(scope="module")
def wide(tmp_path_factory: pytest.TempPathFactory) -> Database:
    """A 16-table schema (no declared foreign keys in half of it) to exercise linking."""
    path = tmp_path_factory.mktemp("wide") / "wide.sqlite"
    conn = sqlite3.connect(path)
    conn.executescript("""
        CREATE TABLE department (dept_id INTEGER PRIMARY KEY, dept_name TEXT, budget REAL);
        CREATE TABLE employee (emp_id INTEGER PRIMARY KEY, full_name TEXT, salary REAL, dept_id INTEGER);
        CREATE TABLE student (student_id INTEGER PRIMARY KEY, student_name TEXT, enrolled_year INTEGER);
        CREATE TABLE course (course_id INTEGER PRIMARY KEY, title TEXT, credits INTEGER);
        CREATE TABLE enrollment (student_id INTEGER REFERENCES student(student_id),
                                 course_id INTEGER REFERENCES course(course_id), grade TEXT);
        CREATE TABLE airport (airport_code TEXT PRIMARY KEY, airport_name TEXT, city TEXT);
        CREATE TABLE flight (flight_id INTEGER PRIMARY KEY, from_airport TEXT, to_airport TEXT, airline TEXT);
        CREATE TABLE river (river_name TEXT, length REAL, country TEXT);
        CREATE TABLE mountain (mountain_name TEXT, height REAL, country TEXT);
        CREATE TABLE recipe (recipe_id INTEGER PRIMARY KEY, recipe_title TEXT, cuisine TEXT);
        CREATE TABLE ingredient (ingredient_id INTEGER PRIMARY KEY, ingredient_name TEXT);
        CREATE TABLE movie (movie_id INTEGER PRIMARY KEY, movie_title TEXT, release_year INTEGER);
        CREATE TABLE actor (actor_id INTEGER PRIMARY KEY, actor_name TEXT);
        CREATE TABLE weather (station TEXT, day TEXT, temperature REAL);
        CREATE TABLE invoice (invoice_id INTEGER PRIMARY KEY, amount REAL, due_date TEXT);
        CREATE TABLE planet (planet_name TEXT, mass REAL);
        INSERT INTO department VALUES (1, 'Research', 1e6), (2, 'Sales', 5e5);
        INSERT INTO employee VALUES (1, 'Ann Lee', 5000, 1), (2, 'Bo Chen', 4000, 2);
    """)
    conn.close()
    return Database("wide", str(path))


def test_linking_picks_relevant_tables_and_bridges(pipeline: TextToSql, wide: Database) -> None:
    linker = pipeline.linker
    schema = wide.schema()
    linked = linker.link("What is the average salary of employees in each department?", schema, value_hints(wide))
    assert {"employee", "department"} <= set(linked.table_names)
    assert len(linked.table_names) <= linker.max_tables + 2 and "planet" not in linked.table_names
    # undeclared join key inferred from the shared id-like column name
    assert any({h.left, h.right} == {"department.dept_id", "employee.dept_id"} for h in linked.joins)
    grades = linker.link("Which grades did students get in each course title?", schema)
    assert {"student", "course", "enrollment"} <= set(grades.table_names)  # enrollment bridges the two
    assert "Join keys:" in render_schema(linked)


def test_small_schema_is_kept_whole_with_values(pipeline: TextToSql, shop: Database) -> None:
    linked = pipeline.linker.link("How many orders were cancelled?", shop.schema(), pipeline.values_for(shop))
    assert linked.whole and {"orders", "customers", "order_items", "products"} <= set(linked.table_names)
    assert linked.table_names[0] == "orders"
    text = render_schema(linked)
    assert "customer_id INTEGER REFERENCES customers(customer_id)" in text and "'cancelled'" in text
    assert {j.sql() for j in join_hints(shop.schema())} >= {"orders.customer_id = customers.customer_id"}


def test_example_store_roundtrip_and_retrieval(pipeline: TextToSql, tmp_path: Path) -> None:
    shop_store = store_for(tmp_path, "shop")
    seeds = shop_store.list()
    assert len(seeds) >= 10 and all(e.source == "seed" for e in seeds)
    for example in seeds:  # every shipped example is valid and runs on the demo database
        db = Database("shop", str(ensure_demo_database(tmp_path)))
        assert check_sql(example.sql, db.schema()).ok, example.sql
        db.execute(example.sql, max_rows=5, timeout_s=5)
    added = shop_store.add("What is the cheapest product?", "SELECT name FROM products ORDER BY price LIMIT 1;")
    again = store_for(tmp_path, "shop")  # persisted
    assert any(e.id == added.id for e in again.list())
    updated = again.add("what is the cheapest product?", "SELECT name, price FROM products ORDER BY price LIMIT 1;")
    assert updated.id == added.id and len(again.list()) == len(seeds) + 1
    again.remove("seed-1")
    assert all(e.id != "seed-1" for e in store_for(tmp_path, "shop").list())
    with pytest.raises(NotFound):
        again.remove("nope")
    assert store_for(tmp_path, "other").list() == []
    near = ExampleRetriever(pipeline.linker.vectors).nearest("Which customers spent the most money?", seeds, k=2)
    assert near[0][0].question == "Who are the 5 customers who spent the most money?"


def test_prompt_is_strict(pipeline: TextToSql, shop: Database) -> None:
    store = store_for(shop.path.parent.parent, "shop")
    messages, linked, examples = pipeline.prepare("Which 3 customers spent the most?", shop, store, PipelineOptions())
    system = messages[0]["content"]
    assert "SQLite" in system and "SQL query only" in system and "never invent" in system
    assert "CREATE TABLE customers" in system
    assert len(examples) == 3 and messages[-2]["content"] == examples[-1].sql.strip()
    assert examples[-1].question == "Who are the 5 customers who spent the most money?"  # closest example last
    assert messages[-1] == {"role": "user", "content": "Question: Which 3 customers spent the most?"}
    assert build_messages("q", "duckdb", linked, [], "use LIKE")[0]["content"].count("Instructions: use LIKE") == 1


def test_vote_prefers_majority_then_nonempty_then_first() -> None:
    def res(rows: list[list]) -> QueryResult:
        return QueryResult(columns=["a"], rows=rows, row_count=len(rows), truncated=False, elapsed_ms=1)

    cands = [Candidate(index=i, sql=f"q{i}", status="ok", row_count=n) for i, n in ((1, 1), (2, 2), (3, 2), (4, 0))]
    results = {1: res([[1]]), 2: res([[2], [3]]), 3: res([[3], [2]]), 4: res([])}  # 2 and 3 agree (order-insensitive)
    chosen = TextToSql._vote(cands, results, "sqlite")
    assert chosen.index == 2 and chosen.votes == 2 and cands[2].votes == 2 and chosen.chosen
    tie = [Candidate(index=1, sql="a", status="ok", row_count=0), Candidate(index=2, sql="b", status="ok", row_count=1),
           Candidate(index=3, sql="c", status="error", error="x")]
    assert TextToSql._vote(tie, {1: res([]), 2: res([[5]])}, "sqlite").index == 2
    assert TextToSql._vote([Candidate(index=1, sql="", status="no_sql")], {}, "sqlite") is None


# ---------------------------------------------------------------- with the shipped SmolLM2

FAST = {"max_new_tokens": 48, "timeout_s": 5.0}


def _consistent(cand: Candidate, db: Database) -> None:
    """A candidate's status must agree with what the check and the database say about its SQL."""
    report = check_sql(cand.sql, db.schema()) if cand.sql else None
    if cand.status in ("ok", "checked"):
        assert report is not None and report.ok
        if cand.status == "ok":
            assert db.execute(cand.sql, max_rows=200, timeout_s=5).row_count == cand.row_count
    elif cand.status == "invalid":
        assert report is not None and not report.ok and cand.error
    elif cand.status == "no_sql":
        assert cand.sql == ""
    else:
        assert cand.status == "error" and cand.error


def test_pipeline_end_to_end_with_the_shipped_model(pipeline: TextToSql, shop: Database, model_settings: Settings) -> None:
    store = store_for(model_settings.data_path, "shop")
    options = PipelineOptions(candidates=2, repair_rounds=1, **FAST)
    events: list[tuple[float, float, str]] = []
    out = pipeline.answer("How many customers are there?", shop, store, options, lambda *a: events.append(a))
    assert out.model and out.linked_tables and len(out.examples_used) == 3
    assert [c.index for c in out.candidates] == [1, 2]
    for cand in out.candidates:
        _consistent(cand, shop)
        assert cand.repairs <= 1 and len(cand.history) == cand.repairs
    assert events[0][0] == 0 and events[-1][0] == events[-1][1]
    if out.ok:  # the chosen SQL was checked and executed, and its rows are what the database returns
        chosen = [c for c in out.candidates if c.chosen]
        assert len(chosen) == 1 and chosen[0].sql == out.sql and chosen[0].status == "ok"
        assert out.result is not None and out.result.rows == shop.execute(out.sql, max_rows=200, timeout_s=5).rows
    else:
        assert out.sql is None and "no candidate" in out.message


def test_repair_feeds_the_error_back(pipeline: TextToSql, shop: Database, model_settings: Settings) -> None:
    options = PipelineOptions(**FAST)
    messages, _, _ = pipeline.prepare("How many orders are there?", shop, store_for(model_settings.data_path, "shop"),
                                      options)
    bad = "SELECT COUNT(*) FROM order"
    failed = pipeline.evaluate(shop, bad, options)
    assert failed.status == "invalid" and "unknown table 'order'" in failed.error
    fixed = pipeline.repair(shop, messages, failed, options, rounds=1)
    assert fixed.rounds == 1 and fixed.history == [f"{bad} -- {check_sql(bad, shop.schema()).problems[0]}"]
    last = fixed.last
    assert last.sql != bad or last.status != "ok"
    _consistent(Candidate(index=1, sql=last.sql, status=last.status, error=last.error,
                          row_count=last.result.row_count if last.result else None), shop)


def test_no_execution_mode_only_checks(pipeline: TextToSql, shop: Database) -> None:
    out = pipeline.answer("List the 5 most expensive products.", shop, None,
                          PipelineOptions(candidates=1, repair_rounds=0, execute=False, **FAST))
    assert out.result is None and len(out.candidates) == 1
    assert out.candidates[0].status in ("checked", "invalid", "no_sql")
    _consistent(out.candidates[0], shop)
    assert out.examples_used and out.examples_used[0].startswith("How many rows")  # synthetic: no store given
