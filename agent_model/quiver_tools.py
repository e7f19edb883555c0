"""Quiver's own tools, discovered from the registered servers built in-process (their real
schemas), the view of them offered to the small model (the host's ``small_model_view``), and a live world (demo knowledge bases,
the shop database, sample files) whose real tool responses become the traces' observations.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import random
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mcp_types as types
from mcp import Client

from host.connections import CallOutcome, ToolInfo
from host.observations import CitedPassages, observe
from servers.core.registry import build_server, server_names
from servers.core.settings import Settings

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO / "samples"
# Where the world's files appear to live in observations (the build folder is temporary).
DISPLAY_ROOT = "/home/user/quiver"
# Timing fields of tool results: replaced by seeded plausible values so that a rebuild is byte-identical.
VOLATILE = {"elapsed_ms": (0.1, 3.0), "took_ms": (5.0, 60.0), "chunks_per_s": (5.0, 40.0)}
VOLATILE_TIMES = ("created", "updated")


@contextlib.contextmanager
def world_folder() -> Iterator[Path]:
    """The world's folder: always the same path (document and chunk ids hash the file paths, so a
    rebuild must see the same ones), emptied first, held under a lock (one build at a time)."""
    root = Path(tempfile.gettempdir()) / "quiver-agent-world"
    root.parent.mkdir(parents=True, exist_ok=True)
    with open(root.parent / "quiver-agent-world.lock", "w") as lock:  # noqa: SIM117
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            raise RuntimeError(f"another dataset build is using {root}; wait for it to finish") from exc
        shutil.rmtree(root, ignore_errors=True)
        root.mkdir()
        try:
            yield root
        finally:
            shutil.rmtree(root, ignore_errors=True)
            fcntl.flock(lock, fcntl.LOCK_UN)


def world_settings(root: Path, model_cache: Path | None) -> Settings:
    """Default settings (no user config: the dataset must not depend on it) rooted in ``root``."""
    models: dict[str, Any] = {"device": "cpu"}
    if model_cache is not None:
        models["cache_dir"] = str(model_cache)
    return Settings.model_validate({"data_dir": str(root / "data"), "roots": [str(root)], "models": models})


async def discover_tools(settings: Settings) -> list[ToolInfo]:
    """Every tool of every registered server, listed through a real MCP client (in-process)."""
    tools: list[ToolInfo] = []
    for name in server_names():
        async with Client(build_server(name, settings)) as client:
            cursor = None
            while True:
                page = await client.list_tools(cursor=cursor) if cursor else await client.list_tools()
                for t in page.tools:
                    tools.append(ToolInfo(name=t.name, server=name, remote_name=t.name,
                                          description=t.description or "", input_schema=t.input_schema,
                                          output_schema=t.output_schema))
                cursor = page.next_cursor
                if not cursor:
                    break
    return tools


@dataclass
class Observation:
    text: str  # what the host feeds back to the model
    is_error: bool
    structured: Any


def _stabilize(value: Any, rng: random.Random) -> Any:
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if k in VOLATILE and isinstance(v, int | float):
                lo, hi = VOLATILE[k]
                out[k] = round(rng.uniform(lo, hi), 2)
            elif k in VOLATILE_TIMES and isinstance(v, int | float) and v > 1e9:
                out[k] = 1735689600 + rng.randrange(0, 86400 * 300)
            elif k == "timings" and isinstance(v, dict):
                out[k] = {tk: round(rng.uniform(0.01, 2.0), 3) for tk in v}
            else:
                out[k] = _stabilize(v, rng)
        return out
    if isinstance(value, list):
        return [_stabilize(v, rng) for v in value]
    return value


class World:
    """The real servers, in-process, over real MCP clients, on a folder of demo data:
    ``docs/`` (the project's ``samples/``), knowledge bases built from it, the shop database."""

    def __init__(self, root: Path, settings: Settings, tools: list[ToolInfo], observation_chars: int) -> None:
        self.root = root
        self.settings = settings
        self.server_of = {t.name: t.server for t in tools}
        self.tools = {t.name: t for t in tools}
        self.observation_chars = observation_chars
        self.clients: dict[str, Client] = {}

    @classmethod
    @contextlib.asynccontextmanager
    async def open(cls, root: Path, settings: Settings, tools: list[ToolInfo], knowledge_bases: list[str],
                   observation_chars: int) -> AsyncIterator[World]:
        docs = root / "docs"
        if docs.exists():
            shutil.rmtree(docs)
        shutil.copytree(SAMPLES, docs)
        world = cls(root, settings, tools, observation_chars)
        async with contextlib.AsyncExitStack() as stack:
            for name in sorted(set(world.server_of.values())):
                world.clients[name] = await stack.enter_async_context(Client(build_server(name, settings)))
            for kb in knowledge_bases:
                out = await world.call("kb_ingest", {"kb": kb, "paths": ["docs"], "create": True}, seed="ingest")
                if out.is_error:
                    raise RuntimeError(f"could not build the knowledge base {kb}: {out.text}")
            yield world

    async def call(self, tool: str, arguments: dict[str, Any], seed: str) -> Observation:
        """Run one real tool call; the observation is formatted by the host's own formatter, with
        timings replaced by values drawn from ``seed`` and the temporary folder shown as
        ``DISPLAY_ROOT``."""
        client = self.clients[self.server_of[tool]]
        result = await client.call_tool(tool, arguments)
        rng = random.Random(f"obs:{seed}:{tool}:{json.dumps(arguments, sort_keys=True)}")
        if result.structured_content is not None:
            stable = _stabilize(json.loads(json.dumps(result.structured_content)), rng)
            result = types.CallToolResult(content=result.content, structured_content=stable, is_error=result.is_error)
        tool_info = self.tools.get(tool)
        seen = observe(CallOutcome(result), tool_info, self.observation_chars, CitedPassages())
        text, structured = seen.text, seen.structured
        text = text.replace(str(self.root), DISPLAY_ROOT)
        if structured is not None:
            structured = json.loads(json.dumps(structured).replace(str(self.root), DISPLAY_ROOT))
        return Observation(text=text, is_error=bool(result.is_error), structured=structured)
