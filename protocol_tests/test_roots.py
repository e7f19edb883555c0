"""Allowed roots wherever a client starts a server: real servers over stdio with the working
directory at ``/`` or ``$HOME`` (as Claude Desktop and other clients start them) and no
``--root``: only the data dir is readable, everything else is refused with an error naming
``--root`` / ``roots``."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from protocol_tests.harness import stdio_client


def _text(result) -> str:
    return " ".join(getattr(c, "text", "") for c in result.content)


def _assert_refused(result) -> None:
    text = _text(result)
    assert result.is_error, f"expected a refusal, got: {text[:300]}"
    assert "outside the allowed roots" in text and "--root" in text and "roots" in text, text
    assert "root:x:0:0" not in text


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """A stand-in home directory (the server's $HOME) holding a private file."""
    folder = tmp_path / "home"
    folder.mkdir()
    (folder / "private.md").write_text("# Private\n\nnot for clients\n")
    return folder


@pytest.mark.parametrize("where", ["/", "home"])
def test_parse_server_started_from_root_or_home_reads_only_its_data_dir(where: str, tmp_path: Path, home: Path) -> None:
    cwd = Path("/") if where == "/" else home
    work = tmp_path / "work"
    (work / "data").mkdir(parents=True)
    (work / "data" / "inside.md").write_text("# Inside\n\nin the data dir\n")

    async def run() -> None:
        async with stdio_client("parse", work, roots=[], cwd=cwd, env={"HOME": str(home)}) as client:
            for path in ("/etc/passwd", "file:///etc/passwd", str(home / "private.md"), "private.md", "etc/passwd",
                         "../../../../etc/passwd"):
                result = await client.call_tool("parse_document", {"path": path})
                assert result.is_error, path
                assert "root:x:0:0" not in _text(result) and "not for clients" not in _text(result)
            _assert_refused(await client.call_tool("parse_document", {"path": "/etc/passwd"}))
            _assert_refused(await client.call_tool("parse_files", {"folder": str(home)}))
            _assert_refused(await client.call_tool("chunk", {"path": "/etc/passwd", "unit": "chars"}))
            inside = await client.call_tool("parse_document", {"path": str(work / "data" / "inside.md")})
            assert not inside.is_error and inside.structured_content["title"] == "Inside"

    asyncio.run(run())


def test_explicit_root_is_read_and_nothing_else(tmp_path: Path, home: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    (project / "notes.md").write_text("# Notes\n\nreadable\n")

    async def run() -> None:
        async with stdio_client("parse", tmp_path / "work", roots=[project], cwd=Path("/"),
                                env={"HOME": str(home)}) as client:
            ok = await client.call_tool("parse_document", {"path": "notes.md"})  # relative to the first root
            assert not ok.is_error and ok.structured_content["title"] == "Notes"
            _assert_refused(await client.call_tool("parse_document", {"path": "/etc/passwd"}))

    asyncio.run(run())


def test_relative_root_that_lands_on_slash_is_refused_at_start(tmp_path: Path) -> None:
    async def run() -> None:
        async with stdio_client("parse", tmp_path, roots=[Path(".")], cwd=Path("/")) as client:
            await client.list_tools()

    with pytest.raises(Exception):  # noqa: B017 - the server exits before answering
        asyncio.run(asyncio.wait_for(run(), 60))


def test_retrieval_server_from_root_refuses_to_ingest_outside(tmp_path: Path) -> None:
    async def run() -> None:
        async with stdio_client("retrieval", tmp_path, roots=[], cwd=Path("/")) as client:
            result = await client.call_tool("kb_ingest", {"kb": "roots", "paths": ["/etc/passwd", "/etc"], "create": True})
            report = result.structured_content
            assert report["added"] == 0 and report["chunks_added"] == 0 and report["failed"] == 2
            assert all("outside the allowed roots" in e["error"] and "--root" in e["error"] for e in report["errors"])

    asyncio.run(run())


def test_text2sql_file_database_outside_roots_is_refused(tmp_path: Path) -> None:
    outside = tmp_path / "outside" / "sales.sqlite"
    outside.parent.mkdir()
    with sqlite3.connect(outside) as conn:
        conn.execute("CREATE TABLE sales (id INTEGER PRIMARY KEY, amount REAL)")
    work = tmp_path / "work"

    async def run() -> None:
        async with stdio_client("text2sql", work, "--database", f"sales={outside}", roots=[], cwd=Path("/")) as client:
            listing = (await client.call_tool("sql_list_databases", {})).structured_content
            sales = next(d for d in listing["databases"] if d["name"] == "sales")
            assert "outside the allowed roots" in sales["error"] and "--root" in sales["error"]
            _assert_refused(await client.call_tool("sql_execute", {"database": "sales", "sql": "SELECT * FROM sales"}))
            shop = await client.call_tool("sql_execute", {"database": "shop", "sql": "SELECT count(*) FROM customers"})
            assert not shop.is_error, _text(shop)  # the demo database lives in the data dir

    asyncio.run(run())
