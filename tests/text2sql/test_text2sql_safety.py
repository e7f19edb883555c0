"""Safety: the attack corpus against SQLite (checked path, raw connection, and the MCP server) and DuckDB."""

from __future__ import annotations

import asyncio
import hashlib
import time
from pathlib import Path

import duckdb
import pytest
from mcp import Client

from servers.core.errors import AccessDenied, InvalidInput, QuiverError, Timeout, TooLarge
from servers.core.settings import load_settings
from servers.text2sql import operations as ops
from servers.text2sql.database import Database
from servers.text2sql.demo_db import ensure_demo_database
from servers.text2sql.server import build_server

TIMEOUT_S = 1.0
EXPECTED = {"refused": (AccessDenied, InvalidInput), "invalid": (InvalidInput,), "timeout": (Timeout,),
            "too_large": (TooLarge,)}


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def folder_state(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): digest(p) for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> tuple[Database, Path]:
    folder = tmp_path_factory.mktemp("attack")
    path = ensure_demo_database(folder)
    return Database("shop", str(path)), folder


def fill(attacks: list[tuple[str, str]], folder: Path) -> list[tuple[str, str]]:
    return [(sql.replace("{tmp}", str(folder)), kind) for sql, kind in attacks]


def test_corpus_is_large_enough(attacks: list[tuple[str, str]]) -> None:
    assert len(attacks) >= 40
    assert {k for _, k in attacks} == set(EXPECTED)


def test_every_attack_fails_clearly_fast_and_changes_nothing(shop: tuple[Database, Path], attacks) -> None:
    db, folder = shop
    before = folder_state(folder)
    for sql, kind in fill(attacks, folder):
        start = time.monotonic()
        with pytest.raises(QuiverError) as info:
            ops.run_query(db, sql, max_rows=10, timeout_s=TIMEOUT_S)
        elapsed = time.monotonic() - start
        assert isinstance(info.value, EXPECTED[kind]), (sql, type(info.value), str(info.value))
        message = str(info.value)
        assert len(message) > 30 and "Traceback" not in message, (sql, message)
        if kind == "timeout":
            assert "time limit" in message
        assert elapsed < TIMEOUT_S + 2.0, (sql, elapsed)
    assert folder_state(folder) == before  # no file changed, none created (VACUUM INTO, ATTACH, writefile)


def test_the_connection_alone_refuses_writes(shop: tuple[Database, Path], attacks) -> None:
    """Without the SQL check: every statement that would write is stopped by the read-only connection."""
    db, folder = shop
    before = folder_state(folder)
    writes = [s for s, kind in fill(attacks, folder) if kind == "refused"]
    for sql in writes:
        try:
            db.execute(sql, max_rows=10, timeout_s=TIMEOUT_S)
        except QuiverError:
            continue
        # the few that run are reads the SQL check refuses for other reasons (e.g. nothing here)
        pytest.fail(f"raw connection ran {sql!r}")
    assert folder_state(folder) == before


def test_timeouts_on_the_raw_connection(shop: tuple[Database, Path]) -> None:
    db, _ = shop
    start = time.monotonic()
    with pytest.raises(Timeout, match="time limit"):
        db.execute("WITH RECURSIVE r(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM r) SELECT max(x) FROM r",
                   max_rows=1, timeout_s=0.3)
    assert time.monotonic() - start < 2.0


def test_server_survives_the_corpus(tmp_path: Path, attacks) -> None:
    settings = load_settings(overrides={"data_dir": str(tmp_path / "data"), "roots": [str(tmp_path)],
                                        "text2sql": {"timeout_s": TIMEOUT_S}})
    path = ensure_demo_database(settings.data_path)
    before = digest(path)

    async def go():
        async with Client(build_server(settings)) as client:
            results = [await client.call_tool("sql_execute", {"database": "shop", "sql": sql})
                       for sql, _ in fill(attacks, tmp_path) if sql]
            after = await client.call_tool("sql_execute", {"database": "shop", "sql": "SELECT COUNT(*) AS n FROM orders"})
            return results, after

    results, after = asyncio.run(go())
    assert all(r.is_error for r in results)
    texts = [r.content[0].text for r in results]
    # a tool error carries our message after the SDK's prefix; a bug would carry only the generic prefix
    assert all(len(t.partition(": ")[2]) > 30 for t in texts), texts
    assert not after.is_error and after.structured_content["rows"] == [[220]]
    assert digest(path) == before


# ---------------------------------------------------------------- DuckDB

@pytest.fixture(scope="module")
def duck(tmp_path_factory: pytest.TempPathFactory) -> tuple[Database, Path]:
    folder = tmp_path_factory.mktemp("duck")
    path = folder / "shop.duckdb"
    conn = duckdb.connect(str(path))
    conn.execute("CREATE TABLE customers (customer_id INTEGER PRIMARY KEY, name VARCHAR, city VARCHAR)")
    conn.execute("CREATE TABLE orders (order_id INTEGER PRIMARY KEY, customer_id INTEGER REFERENCES customers(customer_id), "
                 "amount DOUBLE)")
    conn.execute("INSERT INTO customers SELECT i, 'c' || i, CASE WHEN i % 2 = 0 THEN 'Paris' ELSE 'Rome' END FROM range(1, 301) t(i)")
    conn.execute("INSERT INTO orders SELECT i, 1 + i % 300, i * 1.5 FROM range(1, 1001) t(i)")
    conn.close()
    return Database("duck", f"duckdb:///{path}"), folder


DUCK_ATTACKS = [
    "DELETE FROM orders", "DROP TABLE customers", "INSERT INTO customers VALUES (9999, 'x', 'y')",
    "UPDATE orders SET amount = 0", "CREATE TABLE evil AS SELECT 1", "SELECT 1; DELETE FROM orders",
    "WITH d AS (DELETE FROM orders RETURNING *) SELECT * FROM d", "ATTACH '{tmp}/evil.duckdb' AS evil",
    "COPY orders TO '{tmp}/leak.csv'", "SELECT * FROM read_csv('/etc/passwd')", "INSTALL httpfs", "LOAD httpfs",
    "SET enable_external_access = true", "PRAGMA enable_profiling", "EXPORT DATABASE '{tmp}/dump'",
    "CHECKPOINT", "SELECT * FROM glob('/etc/*')", "CREATE TEMP TABLE t AS SELECT 1",
    "SELECT count(*) FROM orders a, orders b, orders c, orders d",
]


def test_duckdb_attacks(duck: tuple[Database, Path]) -> None:
    db, folder = duck
    before = folder_state(folder)
    for template in DUCK_ATTACKS:
        sql = template.replace("{tmp}", str(folder))
        start = time.monotonic()
        with pytest.raises(QuiverError):
            ops.run_query(db, sql, max_rows=10, timeout_s=TIMEOUT_S)
        assert time.monotonic() - start < TIMEOUT_S + 2.0, sql
    # the connection alone (no SQL check) refuses writes and file access too
    for template in DUCK_ATTACKS[:5] + DUCK_ATTACKS[7:10] + DUCK_ATTACKS[11:13]:
        with pytest.raises(QuiverError):
            db.execute(template.replace("{tmp}", str(folder)), max_rows=10, timeout_s=TIMEOUT_S)
    with pytest.raises(Timeout, match="time limit"):
        db.execute(DUCK_ATTACKS[-1], max_rows=10, timeout_s=0.5)
    assert folder_state(folder) == before
    assert ops.run_query(db, "SELECT COUNT(*) FROM orders", max_rows=1, timeout_s=5).rows == [[1000]]


# ---------------------------------------------------------------- limits that one function call cannot bypass

LIKE_ATTACK = "SELECT printf('%.*c',1000000,'a') LIKE '%'||printf('%.*c',10000,'a')||'b'"
INSTR_ATTACK = "SELECT instr(printf('%.*c',900000,'a'), printf('%.*c',400000,'a')||'b')"  # one O(n*m) call
DUCK_REPEAT = "SELECT length(repeat('x', 2000000000))"


def test_one_long_sqlite_function_call_cannot_outlive_the_limit(shop: tuple[Database, Path]) -> None:
    """Defect 4: SQLite checks its deadline between VM instructions, so one long function call ran on."""
    db, folder = shop
    before = folder_state(folder)
    db.execute("SELECT 1", max_rows=1, timeout_s=5)  # the database's worker is warm
    start = time.monotonic()
    with pytest.raises(TooLarge, match="LIKE or GLOB pattern is longer than"):
        ops.run_query(db, LIKE_ATTACK, max_rows=1, timeout_s=TIMEOUT_S)
    assert time.monotonic() - start < TIMEOUT_S + 2.0
    start = time.monotonic()
    with pytest.raises(Timeout, match=r"1 s time limit \(text2sql\.timeout_s\)"):
        ops.run_query(db, INSTR_ATTACK, max_rows=1, timeout_s=TIMEOUT_S)
    assert time.monotonic() - start < TIMEOUT_S + 3.0  # the worker was killed one second past the limit
    with pytest.raises(TooLarge, match="text2sql.max_value_bytes"):
        db.execute("SELECT length(zeroblob(2000000))", max_rows=1, timeout_s=TIMEOUT_S)
    assert db.execute("SELECT COUNT(*) FROM orders", max_rows=1, timeout_s=5).rows == [[220]]
    assert folder_state(folder) == before


def test_duckdb_repeat_stays_within_the_memory_cap(duck: tuple[Database, Path]) -> None:
    """Defect 4: repeat('x', 2e9) ran 20 s and peaked at 4 GB despite DuckDB's 1 GB limit."""
    db, folder = duck
    before = folder_state(folder)
    db.execute("SELECT 1", max_rows=1, timeout_s=5)
    start = time.monotonic()
    with pytest.raises((TooLarge, Timeout), match="memory|time limit"):
        ops.run_query(db, DUCK_REPEAT, max_rows=1, timeout_s=TIMEOUT_S)
    assert time.monotonic() - start < TIMEOUT_S + 3.0
    assert db.execute("SELECT COUNT(*) FROM orders", max_rows=1, timeout_s=5).rows == [[1000]]
    assert folder_state(folder) == before
