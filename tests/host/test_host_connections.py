"""Real stdio servers: concurrent start, namespacing, list_changed, timeouts, reconnecting."""

from __future__ import annotations

import os
import signal

import anyio
import pytest

from host.config import ServerSpec, quiver_servers
from host.connections import Hub
from tests.host.helpers import tool_server

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend():
    return "asyncio"


async def test_collisions_are_namespaced_and_unique_names_kept(settings, tmp_path):
    specs = [tool_server("alpha"), tool_server("beta", allow_tools=["add", "echo"]), *quiver_servers(settings, ["parse"])]
    async with Hub(specs, log_dir=tmp_path / "logs") as hub:
        assert hub.errors == {}
        names = set(hub.tools)
        assert {"alpha__add", "beta__add", "alpha__echo", "beta__echo"} <= names
        assert "get_weather" in names and "alpha__get_weather" not in names  # only alpha has it
        assert "beta__get_weather" not in names  # filtered by allow_tools
        assert "parse_document" in names and hub.tools["parse_document"].server == "parse"
        out = await hub.call("beta__add", {"a": 2, "b": 3})
        assert out.result is not None and out.result.structured_content == {"total": 5.0}
        # the real parse server reads a file under the roots
        doc = tmp_path / "note.md"
        doc.write_text("# Title\n\nQuiver parses files.\n")
        parsed = await hub.call("parse_document", {"path": str(doc)})
        assert not parsed.is_error and "Quiver parses files" in parsed.result.structured_content["markdown"]


async def test_unavailable_server_is_reported_and_others_work(tmp_path):
    broken = ServerSpec(name="broken", command="/nonexistent/binary", startup_timeout_s=5)
    async with Hub([broken, tool_server()], log_dir=tmp_path) as hub:
        assert "broken" in hub.errors and "unavailable" in hub.errors["broken"]
        assert "add" in hub.tools
        assert (await hub.call("add", {"a": 1, "b": 1})).result.structured_content == {"total": 2.0}


async def test_tools_list_changed_is_followed(tmp_path):
    async with Hub([tool_server()], log_dir=tmp_path) as hub:
        assert "dynamic_tool" not in hub.tools
        await hub.call("register_tool", {"name": "dynamic_tool"})
        with anyio.fail_after(10):
            while "dynamic_tool" not in hub.tools:
                await anyio.sleep(0.05)
                await hub.refresh_if_stale()
        out = await hub.call("dynamic_tool", {})
        assert out.result.structured_content == {"total": 42.0}


async def test_per_tool_timeout_becomes_an_error_observation(tmp_path):
    async with Hub([tool_server(timeout_s=0.5)], log_dir=tmp_path) as hub:
        out = await hub.call("sleep", {"seconds": 5})
        assert out.is_error and "timed out after 0.5 s" in out.error
        assert (await hub.call("add", {"a": 1, "b": 2})).result.structured_content == {"total": 3.0}


async def test_reconnects_after_the_server_is_killed(tmp_path):
    async with Hub([tool_server()], log_dir=tmp_path) as hub:
        first = (await hub.call("echo", {"text": "a"})).result.structured_content["pid"]
        os.kill(first, signal.SIGKILL)
        await anyio.sleep(0.2)
        out = await hub.call("echo", {"text": "b"})
        assert not out.is_error, out.error
        assert out.result.structured_content["text"] == "b"
        assert out.result.structured_content["pid"] != first
        assert any("connection lost" in n for n in out.notes) and any("retrying" in n for n in out.notes)
        # a tool that kills its own server: reported, reconnected, retried once, then given up
        crash = await hub.call("crash", {})
        assert crash.is_error and "failed twice" in crash.error
        assert (await hub.call("add", {"a": 1, "b": 1})).result.structured_content == {"total": 2.0}
