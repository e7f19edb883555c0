"""The fuzz suite's CI slice: every registered server, over stdio with the SDK's real client, gets a
seeded set of calls generated from its tools' input schemas (``protocol_tests/fuzz.py``: wrong types,
missing and extra fields, boundary and huge numbers, huge strings and arrays, deep nesting, unicode
edge cases). Every call must answer within the limit with a result that matches the tool's output
schema or a clear tool error (never the generic internal-error text), the server must log no
traceback, answer ``tools/list`` afterwards and stay under the memory bound.

``QUIVER_FUZZ_CALLS`` / ``QUIVER_FUZZ_SEED`` change the slice; ``make fuzz`` (``bench/fuzz.py``) runs
the long version (>= 1,000 calls per server).
"""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

import pytest

from protocol_tests import fuzz
from protocol_tests.harness import REPO
from servers.core.registry import server_names

CALLS = int(os.environ.get("QUIVER_FUZZ_CALLS", "24"))
SEED = int(os.environ.get("QUIVER_FUZZ_SEED", "15"))
CALL_LIMIT_S = 120.0
RSS_LIMIT_MB = 3000.0


@pytest.fixture(scope="session")
def fuzz_environment() -> dict[str, str]:
    return fuzz.fuzz_env(REPO / ".cache")


@pytest.mark.parametrize("name", server_names())
def test_fuzzed_calls_get_a_result_or_a_clear_error(name: str, tmp_path: Path, fuzz_environment: dict[str, str]) -> None:
    report = fuzz.run(name, tmp_path, calls=CALLS, seed=SEED, call_timeout_s=CALL_LIMIT_S, env=fuzz_environment,
                      huge_chars=100_000, huge_items=2000)
    summary = json.dumps(report.as_json(), indent=1)[:6000]
    assert report.calls == CALLS, summary
    assert report.hangs == 0 and report.crashes == 0, summary
    assert report.generic_errors == 0 and report.bad_results == 0, summary
    assert report.tracebacks == 0, summary
    assert report.alive_after, summary
    assert report.peak_rss_mb < RSS_LIMIT_MB, summary
    assert report.results + report.clean_errors == CALLS


def test_every_line_the_sdk_would_drop_is_answered(tmp_path: Path) -> None:
    """Defect 9: over stdio these lines got no answer at all (the SDK drops them); each now gets the
    JSON-RPC error the HTTP transport gives, with the request's id where the line has one."""
    out = fuzz.raw_lines("rerank", tmp_path)
    by_id = {a.get("id"): a for a in out["answers"]}
    for what, line, code in fuzz.RAW_LINES:
        raw = line
        ids = [int(i) for i in (101, 102, 103, 104, 105, 106, 107) if f'"id":{i}' in raw]
        for request_id in ids or [None]:
            answer = by_id.get(request_id) if ids else next(
                (a for a in out["answers"] if a.get("id") is None and a["error"]["code"] == code), None)
            assert answer is not None, f"{what}: no answer ({out['answers']})"
            assert answer["error"]["code"] == code, (what, answer)
            assert answer["error"]["message"], what
    assert sum(1 for a in out["answers"] if "error" in a) >= len(fuzz.RAW_LINES) + 1  # the batch: one per element
    assert out["tools"] > 0, "tools/list went unanswered after the bad lines"


def test_generated_arguments_stay_private_and_bounded() -> None:
    """The long run's first finding was in the fuzzer: JUNK's lists and dicts were shared between calls, so
    mutations grew them call after call into circular or multi-gigabyte arguments (the client failed to
    encode them: 'Circular reference detected', RecursionError). Every call now gets its own copy."""
    junk_before = json.dumps(fuzz.JUNK)
    schema = {"type": "object", "properties": {"a": {"type": "array", "items": {"type": "string"}},
                                               "b": {"type": "object"}, "c": {"type": "integer"}}}
    empty = {"type": "object", "properties": {}}
    fuzzer = fuzz.ArgumentFuzzer(random.Random(3), fuzz.Pools(paths=["x"]), huge_chars=1000, huge_items=50, depth=20)
    for i in range(3000):
        _, args = fuzzer.arguments(schema if i % 2 else empty)
        assert len(json.dumps(args)) < 200_000, i  # also raises on a circular reference
    assert json.dumps(fuzz.JUNK) == junk_before
