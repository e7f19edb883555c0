"""Cancelling long work over MCP: a cancelled kb_ingest stops within one batch, what it stored is
complete, and the same ingest run again finishes it. Progress arrives from the start."""

from __future__ import annotations

import asyncio
from pathlib import Path

import anyio

from protocol_tests.harness import stdio_client

DOCS = 40
BATCH = 4  # chunks embedded and stored together (each text below is one chunk)
TEXTS = [{"text": f"Note {i}: the {['red', 'green', 'blue', 'amber'][i % 4]} lamp number {i} is on shelf {i % 7}.",
          "source": f"note:{i}"} for i in range(DOCS)]


async def _chunks(client) -> int:
    return (await client.call_tool("kb_describe", {"name": "cancel_kb"})).structured_content["chunks"]


def test_cancelled_ingest_stops_within_a_batch_and_a_rerun_completes_it(tmp_path: Path) -> None:
    async def run() -> None:
        env = {"QUIVER_RETRIEVAL__INGEST_BATCH": str(BATCH)}
        async with stdio_client("retrieval", tmp_path, env=env) as client:
            messages: list[tuple[float, str]] = []
            stored_when_cancelled = -1
            with anyio.CancelScope() as scope:
                async def on_progress(done: float, total: float | None, message: str | None) -> None:
                    nonlocal stored_when_cancelled
                    messages.append((done, message or ""))
                    if done >= 2 * BATCH and stored_when_cancelled < 0:
                        stored_when_cancelled = int(done)
                        scope.cancel()

                await client.call_tool("kb_ingest", {"kb": "cancel_kb", "texts": TEXTS}, progress_callback=on_progress)
            assert scope.cancelled_caught, "the ingest finished before it could be cancelled"
            assert messages[0][1] == "started" and any("loading the embedding model" in m for _, m in messages)
            await anyio.sleep(1.0)
            stored = await _chunks(client)
            await anyio.sleep(1.0)
            assert await _chunks(client) == stored, "the cancelled ingest kept running"
            assert stored % BATCH == 0, f"{stored} chunks stored: a batch was left half done"
            assert stored_when_cancelled <= stored <= stored_when_cancelled + BATCH < DOCS
            result = await client.call_tool("kb_ingest", {"kb": "cancel_kb", "texts": TEXTS})
            report = result.structured_content
            assert not result.is_error and report["unchanged"] == stored and report["added"] == DOCS - stored
            assert await _chunks(client) == DOCS

    asyncio.run(run())
