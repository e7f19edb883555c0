"""`quiver eval ...` end to end, and the reports as MCP resources over a real stdio connection."""

from __future__ import annotations

import asyncio
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from protocol_tests.harness import REPO, stdio_client
from servers.eval import api
from tests.eval.conftest import eval_settings


def quiver(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "host.cli", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=300, env={**__import__("os").environ, "PYTHONPATH": str(REPO)})


def test_cli_retrieval_compare_gate_and_report(tmp_path: Path) -> None:
    (tmp_path / "qrels.tsv").write_text("query-id\tcorpus-id\tscore\n" + "".join(f"q{i}\td{i}\t1\n" for i in range(25)))
    (tmp_path / "bad.trec").write_text("".join(f"q{i} Q0 x 1 2.0 bad\nq{i} Q0 d{i} 2 1.0 bad\n" for i in range(25)))
    data = ["--data-dir", str(tmp_path / "data")]
    settings = eval_settings(tmp_path)  # the same data dir: a baseline saved in-process
    baseline = api.eval_retrieval(qrels={f"q{i}": {f"d{i}": 1} for i in range(25)},
                                  run={f"q{i}": {f"d{i}": 2.0, "x": 1.0} for i in range(25)}, ks=[1, 10], settings=settings)
    bad = quiver("eval", "retrieval", "--qrels", "qrels.tsv", "--run", "bad.trec", "--k", "1,10", "--json", *data,
                 cwd=tmp_path)
    assert bad.returncode == 0, bad.stderr
    candidate = json.loads(bad.stdout)
    assert candidate["metrics"]["ndcg@10"] == pytest.approx(1 / math.log2(3)) and len(candidate["per_query"]) == 25
    gate = quiver("eval", "compare", baseline.run_id, candidate["run_id"], "--gate", "--json", *data, cwd=tmp_path)
    assert gate.returncode == 1, gate.stderr  # significantly worse: CI fails
    verdict = json.loads(gate.stdout)
    assert verdict["gate"] == "fail" and verdict["delta"] < 0 and verdict["p_value"] < 0.01
    report = quiver("eval", "report", "latest", *data, cwd=tmp_path)
    assert report.returncode == 0 and Path(report.stdout.strip()).name == "report.html"
    assert verdict["run_id"] in report.stdout


def test_reports_are_mcp_resources(tmp_path: Path) -> None:
    async def run() -> None:
        async with stdio_client("eval", tmp_path) as client:
            result = await client.call_tool("eval_compare", {"scores_a": {"1": 0.2, "2": 0.4},
                                                             "scores_b": {"1": 0.3, "2": 0.6}})
            run_id = result.structured_content["run_id"]
            templates = await client.list_resource_templates()
            assert any(t.uri_template == "eval://reports/{run_id}" for t in templates.resource_templates)
            page = await client.read_resource(f"eval://reports/{run_id}")
            html = page.contents[0].text
            assert html.startswith("<!doctype html>") and run_id in html and "data:image/png;base64," in html
            index = await client.read_resource("eval://reports")
            assert f"eval://reports/{run_id}" in index.contents[0].text

    asyncio.run(run())
