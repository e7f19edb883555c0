"""Round-trip latency and calls/s of a trivial tool over stdio and HTTP: Quiver's serving
layer against a plain MCPServer with the same tool, in the same run.

Prints one JSON line per (transport, system): transport, system, p50_ms, p99_ms, calls_per_s, n,
and a ratio line per transport (quiver p50 / plain p50). Then what each server's ``tools/list``
costs a client's context: one line per server (and a total) with tools, bytes of the compact JSON
answer, bytes without output schemas, and approx_tokens (bytes / 4, the usual rule for JSON).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

from mcp import Client
from mcp.client.stdio import StdioServerParameters

from protocol_tests.harness import REPO, free_port, serve_http

ECHO = ["-m", "bench.echo_server"]


async def _measure(client: Client, calls: int, warmup: int) -> list[float]:
    for _ in range(warmup):
        await client.call_tool("echo", {"text": "warm"})
    times = []
    for i in range(calls):
        start = time.perf_counter()
        result = await client.call_tool("echo", {"text": f"hello {i}"})
        times.append(time.perf_counter() - start)
        assert not result.is_error
    return times


def _figures(transport: str, system: str, times: list[float]) -> dict:
    ordered = sorted(times)
    return {
        "transport": transport,
        "system": system,
        "p50_ms": round(statistics.median(ordered) * 1000, 3),
        "p99_ms": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000, 3),
        "calls_per_s": round(len(times) / sum(times), 1),
        "n": len(times),
    }


async def bench_stdio(system: str, calls: int, warmup: int) -> dict:
    params = StdioServerParameters(command=sys.executable, args=[*ECHO, system, "stdio"], cwd=str(REPO))
    async with Client(params, mode="legacy") as client:
        return _figures("stdio", system, await _measure(client, calls, warmup))


async def bench_http(system: str, calls: int, warmup: int) -> dict:
    port = free_port()
    log = Path(tempfile.mkdtemp(prefix="quiver-bench-echo-")) / "server.log"
    with serve_http([sys.executable, *ECHO, system, "http", str(port)], port, log, name=f"echo ({system})") as server:
        async with Client(server.url(), mode="legacy") as client:
            return _figures("http", system, await _measure(client, calls, warmup))


async def tools_list_cost() -> list[dict]:
    """The size of every server's ``tools/list`` answer as sent (compact JSON), built in-process."""
    from servers.core.registry import build_server, server_names
    from servers.core.settings import Settings

    lines = []
    with tempfile.TemporaryDirectory(prefix="quiver-bench-tools-") as data:
        for name in server_names():
            tools = await build_server(name, Settings(data_dir=data)).list_tools()
            wire = [t.model_dump(mode="json", by_alias=True, exclude_none=True) for t in tools]
            full = len(json.dumps(wire, separators=(",", ":")))
            bare = len(json.dumps([{k: v for k, v in t.items() if k != "outputSchema"} for t in wire], separators=(",", ":")))
            lines.append({"metric": "tools_list_cost", "server": name, "tools": len(wire), "bytes": full,
                          "bytes_without_output_schemas": bare, "approx_tokens": round(full / 4)})
    lines.append({"metric": "tools_list_cost", "server": "all", "tools": sum(x["tools"] for x in lines),
                  "bytes": sum(x["bytes"] for x in lines),
                  "bytes_without_output_schemas": sum(x["bytes_without_output_schemas"] for x in lines),
                  "approx_tokens": sum(x["approx_tokens"] for x in lines)})
    return lines


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--warmup", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=2, help="alternate systems this many times; best round kept")
    parser.add_argument("--tools-list-only", action="store_true", help="only the tools/list cost lines")
    args = parser.parse_args()
    if args.tools_list_only:
        for line in await tools_list_cost():
            print(json.dumps(line), flush=True)
        return
    for transport, bench in (("stdio", bench_stdio), ("http", bench_http)):
        best: dict[str, dict] = {}
        for _ in range(args.rounds):
            for system in ("plain", "quiver"):
                figures = await bench(system, args.calls, args.warmup)
                if system not in best or figures["p50_ms"] < best[system]["p50_ms"]:
                    best[system] = figures
        for system in ("quiver", "plain"):
            print(json.dumps(best[system]), flush=True)
        ratio = best["quiver"]["p50_ms"] / best["plain"]["p50_ms"]
        print(json.dumps({"transport": transport, "metric": "p50_ratio_quiver_over_plain", "value": round(ratio, 3)}), flush=True)
    for line in await tools_list_cost():
        print(json.dumps(line), flush=True)


if __name__ == "__main__":
    asyncio.run(main())
