"""The MCP façade: tool errors are clear and the server keeps serving; progress notifications; concurrent
searches from several HTTP clients while an ingest runs (a real `quiver serve retrieval --transport http`)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from mcp import Client

from protocol_tests.harness import http_server
from servers.core.models import SHIPPED, _package_dir
from servers.retrieval.server import build_server

from .conftest import make_settings, write_docs


def _text(result) -> str:
    return " ".join(getattr(c, "text", "") for c in result.content)


def test_tools_errors_progress_and_recovery(tmp_path: Path):
    settings = make_settings(tmp_path)
    folder = write_docs(tmp_path / "docs")
    app = build_server(settings)
    progress: list[tuple[float, float | None, str | None]] = []

    async def on_progress(done: float, total: float | None, message: str | None) -> None:
        progress.append((done, total, message))

    async def run() -> None:
        async with Client(app) as client:
            bad = await client.call_tool("kb_search", {"kb": "nope", "query": "x"})
            assert bad.is_error and "no knowledge base named 'nope'" in _text(bad)
            made = await client.call_tool("kb_ingest", {"kb": "docs", "paths": [str(folder), "/etc/passwd"]},
                                          progress_callback=on_progress)
            assert not made.is_error, _text(made)
            report = made.structured_content
            assert report["added"] == 4 and report["failed"] == 1
            assert "outside the allowed roots" in report["errors"][0]["error"]
            assert progress and progress[-1][0] == progress[-1][1] == 4

            cases = [
                ({"kb": "docs", "query": "  "}, "empty query"),
                ({"kb": "docs", "query": "x", "top_k": 0}, "top_k must be between 1 and 100"),
                ({"kb": "docs", "query": "x", "top_k": 1000}, "top_k must be between 1 and 100"),
                ({"kb": "docs", "query": "x", "filter": {"colour": "red"}}, "colour"),
                ({"kb": "docs", "query": "x", "filter": {"created_after": "soon"}}, "'soon' is not a date"),
                ({"kb": "docs", "query": "x", "filter": {"metadata": {"y": {"$regex": "a"}}}}, "unknown operator"),
                ({"kb": "bad name", "query": "x"}, "invalid knowledge base name"),
            ]
            for args, needle in cases:
                result = await client.call_tool("kb_search", args)
                assert result.is_error and needle in _text(result), (args, _text(result))

            missing = await client.call_tool("kb_get_chunk", {"kb": "docs", "chunk_id": "nope"})
            assert missing.is_error and "invalid chunk_id 'nope'" in _text(missing)
            absent = await client.call_tool("kb_get_chunk", {"kb": "docs", "chunk_id": "0" * 32})
            assert absent.is_error and f"no chunk '{'0' * 32}'" in _text(absent)
            for injected in ("zzz'] or text like '%' or id in ['zzz", "abc\nid in ['x"):  # defect 5
                attack = await client.call_tool("kb_get_chunk", {"kb": "docs", "chunk_id": injected})
                assert attack.is_error and "ids are 32 lowercase hexadecimal" in _text(attack)
                assert attack.structured_content is None
            ok = await client.call_tool("kb_search", {"kb": "docs", "query": "largest planet", "top_k": 2})
            assert not ok.is_error and ok.structured_content["hits"][0]["citation"]["title"] == "The solar system"
            ctx = await client.call_tool("kb_context", {"kb": "docs", "question": "largest planet", "top_k": 2})
            assert "[1] (The solar system" in ctx.structured_content["context"]

            # rerank through the rerank library (same distribution, imported directly)
            reranked = await client.call_tool("kb_search", {"kb": "docs", "query": "largest planet", "rerank": True,
                                                            "top_k": 2})
            assert not reranked.is_error and reranked.structured_content["reranked"] is True
            assert reranked.structured_content["hits"][0]["citation"]["title"] == "The solar system"

            listed = await client.call_tool("kb_list", {})
            assert listed.structured_content["knowledge_bases"][0]["documents"] == 4

        # another embedder configured against the same knowledge base
        folder_model = str(_package_dir(SHIPPED["minilm"].package) / SHIPPED["minilm"].member)
        other = settings.model_copy(update={"models": settings.models.model_copy(update={"embedder": folder_model})})
        async with Client(build_server(other)) as client:
            result = await client.call_tool("kb_search", {"kb": "docs", "query": "planet"})
            assert result.is_error and "built with embedding model 'minilm'" in _text(result)
            result = await client.call_tool("kb_ingest", {"kb": "docs", "texts": [{"text": "x"}]})
            assert result.is_error and "built with embedding model 'minilm'" in _text(result)
            assert not (await client.call_tool("kb_describe", {"name": "docs"})).is_error

    asyncio.run(run())


@pytest.mark.slow
def test_concurrent_http_searches_during_ingest(tmp_path: Path):
    folder = write_docs(tmp_path / "docs")
    big = tmp_path / "big"
    big.mkdir()
    for i in range(40):
        (big / f"b{i:02d}.md").write_text(
            f"# Report {i}\n\n" + " ".join(f"Finding {j} of report {i} concerns subject{i % 5}." for j in range(30)),
            encoding="utf-8",
        )
    with http_server("retrieval", tmp_path) as server:
        url, proc = server.url(), server.process

        async def run() -> None:
            async with server.client(url) as client:
                first = await client.call_tool("kb_ingest", {"kb": "docs", "paths": [str(folder)]})
                assert not first.is_error, _text(first)

            done = asyncio.Event()
            updates: list[float] = []

            async def ingester() -> dict:
                async def on_progress(d: float, t: float | None, m: str | None) -> None:
                    updates.append(d)

                try:
                    async with server.client(url) as client:
                        result = await client.call_tool("kb_ingest", {"kb": "docs", "paths": [str(big)]},
                                                        progress_callback=on_progress)
                        assert not result.is_error, _text(result)
                        return result.structured_content
                finally:
                    done.set()

            async def searcher(i: int) -> int:
                n = 0
                async with server.client(url) as client:
                    while not done.is_set() or n < 3:
                        mode = ("hybrid", "dense", "bm25")[n % 3]
                        result = await client.call_tool(
                            "kb_search", {"kb": "docs", "query": "largest planet", "mode": mode, "top_k": 3})
                        assert not result.is_error, _text(result)
                        assert result.structured_content["hits"], "a search returned nothing"
                        n += 1
                return n

            report, *counts = await asyncio.gather(ingester(), *(searcher(i) for i in range(4)))
            assert report["added"] == 40 and report["failed"] == 0 and updates
            assert all(c >= 3 for c in counts)
            async with server.client(url) as client:
                info = await client.call_tool("kb_describe", {"name": "docs"})
                assert info.structured_content["documents"] == 44

        asyncio.run(run())
        assert proc.poll() is None, "the server died"
