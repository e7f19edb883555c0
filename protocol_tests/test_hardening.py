"""Regression tests for the hardening defects (issue 15, defects 1-5), against one real
`quiver serve all --transport http` process: no request freezes, exhausts or escapes it."""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from protocol_tests.harness import HttpServer, http_server

LIMITS = {
    "QUIVER_PARSE__TIMEOUT_S": "30",
    "QUIVER_PARSE__MAX_MEMORY_MB": "768",
    "QUIVER_TEXT2SQL__TIMEOUT_S": "2",
}


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[HttpServer, Path]]:
    """`serve all` over HTTP reading ``workdir``, with a SQLite and a DuckDB file database there."""
    import duckdb

    from servers.text2sql.demo_db import ensure_demo_database

    workdir = tmp_path_factory.mktemp("hardening")
    shop = ensure_demo_database(workdir / "dbs")
    duck = workdir / "dbs" / "sales.duckdb"
    with duckdb.connect(str(duck)) as conn:
        conn.execute("CREATE TABLE sales AS SELECT i AS id, i * 1.5 AS amount FROM range(1, 1001) t(i)")
    extra = ("--database", f"shopfile={shop}", "--database", f"sales=duckdb:///{duck}")
    with http_server("all", workdir, env=LIMITS, extra=extra) as server:
        yield server, workdir


def _text(result: Any) -> str:
    return " ".join(getattr(c, "text", "") for c in result.content)


async def _probe_while(server: HttpServer, work: asyncio.Task, latencies: list[float]) -> None:
    """Trivial calls (a tiny `chunk` over MCP and /healthz) every 0.2 s until ``work`` is done."""
    async with server.client(server.url("parse")) as client, httpx.AsyncClient(timeout=120) as http:
        while not work.done():
            start = time.perf_counter()
            small = await client.call_tool("chunk", {"text": "# Hi\n\nOne line.", "unit": "chars", "size": 64,
                                                     "overlap": 0})
            assert not small.is_error, _text(small)
            assert (await http.get(f"{server.base}/healthz")).status_code == 200
            latencies.append(time.perf_counter() - start)
            await asyncio.sleep(0.2)


def test_pathological_text_does_not_freeze_the_server(served: tuple[HttpServer, Path]) -> None:
    """Defect 1: a 60k-space heading line froze every server of `serve all` for minutes."""
    server, workdir = served
    heading = workdir / "heading.md"
    heading.write_text("#" + " " * 60_000 + "\n\nbody\n")
    line = workdir / "line.txt"
    line.write_text("x" * 1_000_000)
    inline = base64.b64encode(("# t" + " " * 60_000 + "x#\n").encode()).decode()
    calls = [
        ("parse_document", {"path": str(heading), "max_chars": 100}),
        ("parse_document", {"path": str(line), "max_chars": 100}),
        ("parse_document", {"content_base64": inline, "filename": "inline.md", "max_chars": 100}),
        ("chunk", {"path": str(heading), "unit": "chars", "size": 256, "overlap": 0}),
    ]
    latencies: list[float] = []

    async def run() -> list[Any]:
        async with server.client(server.url("parse")) as client:
            async def heavy() -> list[Any]:
                return [await client.call_tool(tool, args) for tool, args in calls]

            work = asyncio.create_task(heavy())
            await asyncio.sleep(0.05)
            await _probe_while(server, work, latencies)
            return await work

    results = asyncio.run(run())
    for (tool, _args), result in zip(calls, results, strict=True):
        text = _text(result)
        assert not result.is_error or "time limit" in text, f"{tool}: {text[:300]}"
    assert results[1].structured_content["markdown_chars"] == 1_000_000
    assert latencies, "no probe ran"
    assert max(latencies) < 5.0, f"trivial calls waited up to {max(latencies):.1f} s while parsing"


def _rss(pid: int) -> int:
    import psutil

    return psutil.Process(pid).memory_info().rss


def test_pdf_bomb_is_refused_and_server_memory_stays_bounded(served: tuple[HttpServer, Path]) -> None:
    """Defect 2: a 0.4 MB PDF inflating to 400 MB took `serve all` to gigabytes of RSS."""
    from tests.parse.pdf_bombs import deflate_zeros, pdf_with_stream

    server, workdir = served
    bomb = pdf_with_stream(deflate_zeros(400))
    nested = pdf_with_stream(deflate_zeros(400, layers=2), filters=2)
    (workdir / "bomb.pdf").write_bytes(bomb)
    pid = server.process.pid
    before = _rss(pid)
    peak = [before]

    async def run() -> list[Any]:
        async with server.client(server.url("parse")) as client:
            async def calls() -> list[Any]:
                return [
                    await client.call_tool("parse_document", {"path": str(workdir / "bomb.pdf")}),
                    await client.call_tool("parse_document", {"content_base64": base64.b64encode(nested).decode(),
                                                              "filename": "nested.pdf"}),
                    await client.call_tool("parse_files", {"paths": [str(workdir / "bomb.pdf")]}),
                ]

            work = asyncio.create_task(calls())
            while not work.done():
                peak[0] = max(peak[0], _rss(pid))
                await asyncio.sleep(0.02)
            results = await work
            after = await client.call_tool("parse_document", {"content_base64": base64.b64encode(
                pdf_with_stream(deflate_zeros(1))).decode(), "filename": "fine.pdf"})
            assert not after.is_error and "Hello bomb" in after.structured_content["markdown"]
            return results

    single, nested_result, files = asyncio.run(run())
    for result in (single, nested_result):
        assert result.is_error and "decompression bomb" in _text(result) and "parse.max_stream_mb" in _text(result)
    assert files.structured_content["failed"] == 1 and "decompression bomb" in files.structured_content["files"][0]["error"]
    assert peak[0] - before < 150 * 1024 * 1024, f"server RSS grew by {(peak[0] - before) / 2**20:.0f} MB"


def _digests(folder: Path) -> dict[str, str]:
    import hashlib

    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir()) if p.is_file()}


def test_sql_limits_cannot_be_bypassed(served: tuple[HttpServer, Path]) -> None:
    """Defect 4: one long SQLite function call ran 18 s past a 10 s limit (or for minutes in a worker
    thread); DuckDB's repeat() peaked at 4 GB. Each now ends within the limit plus a margin, the server
    keeps answering meanwhile, and the database files are unchanged."""
    server, workdir = served
    before = _digests(workdir / "dbs")
    limit = float(LIMITS["QUIVER_TEXT2SQL__TIMEOUT_S"])
    attacks = [
        ("shopfile", "SELECT printf('%.*c',1000000,'a') LIKE '%'||printf('%.*c',10000,'a')||'b'", "LIKE or GLOB pattern"),
        ("shopfile", "SELECT instr(printf('%.*c',900000,'a'), printf('%.*c',400000,'a')||'b')", "time limit"),
        ("sales", "SELECT length(repeat('x', 2000000000))", "memory"),
    ]
    latencies: list[float] = []

    async def run() -> list[tuple[Any, float]]:
        async with server.client(server.url("text2sql")) as client:
            for database in ("shopfile", "sales"):  # the databases' workers are warm
                warm = await client.call_tool("sql_execute", {"database": database, "sql": "SELECT 1 AS one"})
                assert not warm.is_error, _text(warm)

            async def attack_all() -> list[tuple[Any, float]]:
                out = []
                for database, sql, _ in attacks:
                    start = time.perf_counter()
                    result = await client.call_tool("sql_execute", {"database": database, "sql": sql})
                    out.append((result, time.perf_counter() - start))
                return out

            work = asyncio.create_task(attack_all())
            async with server.client(server.url("parse")) as other:
                while not work.done():
                    start = time.perf_counter()
                    ok = await other.call_tool("chunk", {"text": "a b c", "unit": "chars", "size": 16, "overlap": 0})
                    assert not ok.is_error
                    latencies.append(time.perf_counter() - start)
                    await asyncio.sleep(0.2)
            results = await work
            after = await client.call_tool("sql_execute", {"database": "shopfile", "sql": "SELECT COUNT(*) AS n FROM orders"})
            assert not after.is_error and after.structured_content["rows"] == [[220]]
            return results

    results = asyncio.run(run())
    for (_database, sql, needle), (result, elapsed) in zip(attacks, results, strict=True):
        text = _text(result)
        assert result.is_error and needle in text, (sql, text)
        assert elapsed < limit + 3.0, (sql, elapsed)
    assert latencies and max(latencies) < 5.0
    assert _digests(workdir / "dbs") == before
