"""Install check (``make test-install``): build the wheel, install it into a clean virtual environment
(pip's cache and this machine's pip configuration are reused; torch comes as the CPU build), then the
installed ``quiver`` serves parse over stdio and a real MCP client parses one of the bundled samples.

Run as ``python -m protocol_tests.install_check [--keep]``; prints one JSON line with the timings.
It installs every dependency into a fresh venv, so it takes minutes (mostly unpacking torch): it is a
separate make target, run by .ci/run after ``make test``, not part of the pytest suite.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from mcp import Client
from mcp.client.stdio import StdioServerParameters

REPO = Path(__file__).resolve().parents[1]
TORCH = os.environ.get("TORCH_VERSION", "2.13.0")


def run(*cmd: str, **kwargs: object) -> None:
    print("+", " ".join(cmd), file=sys.stderr, flush=True)
    subprocess.run(cmd, check=True, **kwargs)  # type: ignore[call-overload]


async def parse_over_stdio(quiver: Path, root: Path, sample: str) -> dict:
    params = StdioServerParameters(command=str(quiver), args=["serve", "parse", "--root", str(root)],
                                   env={**os.environ, "QUIVER_DATA_DIR": str(root / "data")}, cwd="/")
    async with Client(params, read_timeout_seconds=120) as client:
        info = client.server_info
        result = await client.call_tool("parse_document", {"path": sample})
        assert not result.is_error, result.content
        return {"server": info.name if info else None, "version": info.version if info else None,
                "title": (result.structured_content or {}).get("title")}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--keep", action="store_true", help="keep the temporary venv (its path is printed)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="quiver-install-"))
    timings: dict[str, float] = {}
    try:
        start = time.perf_counter()
        run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(work / "dist"), str(REPO))
        wheel = next((work / "dist").glob("quiver_mcp-*.whl"))
        timings["build_s"] = time.perf_counter() - start

        start = time.perf_counter()
        venv = work / "venv"
        run(sys.executable, "-m", "venv", str(venv))
        pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q"]
        run(*pip, f"torch=={TORCH}")  # the CPU build (this machine's wheel; elsewhere add the CPU index)
        run(*pip, str(wheel))
        timings["install_s"] = time.perf_counter() - start

        quiver = venv / "bin" / "quiver"
        listed = subprocess.run([str(quiver), "servers"], capture_output=True, text=True, check=True, cwd="/")
        assert "parse" in listed.stdout.split(), listed.stdout
        site = subprocess.run([str(venv / "bin" / "python"), "-c",
                               "from servers.core.shipped import shipped; print(shipped('samples')); "
                               "print(shipped('configs/quiver.toml'))"],
                              capture_output=True, text=True, check=True, cwd="/").stdout.split()
        samples, config = Path(site[0]), Path(site[1])
        assert str(venv) in str(samples) and (samples / "servers.md").is_file(), samples
        assert str(venv) in str(config) and config.is_file(), config

        start = time.perf_counter()
        root = work / "docs"
        root.mkdir()
        shutil.copy(samples / "servers.md", root / "servers.md")
        answer = asyncio.run(parse_over_stdio(quiver, root, str(root / "servers.md")))
        timings["serve_s"] = time.perf_counter() - start
        assert answer["server"] == "quiver-parse" and answer["version"], answer
        print(json.dumps({"install_check": "ok", **answer, **{k: round(v, 1) for k, v in timings.items()}}))
        return 0
    finally:
        if args.keep:
            print(f"kept {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
