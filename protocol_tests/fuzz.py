"""A seeded fuzzer for every registered server: arguments generated from each tool's ``inputSchema``,
sent over stdio with the SDK's real client, every answer classified.

:class:`ArgumentFuzzer` makes arguments from a JSON Schema (``$ref``/``$defs``, ``anyOf``/``oneOf``,
enums, bounds, arrays, objects): a valid-looking value, then one mutation — a wrong type, a missing
required field, an extra field, boundary and huge numbers, a huge string or array, deep nesting,
unicode edge cases (NUL, bidi overrides, combining marks, escape codes), every field wrong, or
nothing at all. Names of properties steer the values a little (``path`` gets paths under the root
and outside it, ``sql`` gets SQL, ``kb`` a knowledge-base name, ``..._base64`` base64): that is a
naming convention, not a list of tools, so a new server is fuzzed without changes here.

:func:`fuzz_server` runs one server: ``calls`` calls spread over its tools, each answered within
``call_timeout_s`` or counted as a hang; a result is checked against the tool's ``outputSchema``; an
error is *clean* (says what to fix) or *generic* (the boundary's internal-error text, or the SDK's
bare ``Error executing tool NAME``); a dead connection is a crash (the server is restarted). At the
end the server must still answer ``tools/list``; its peak resident memory is sampled around every
call and its stderr log is searched for tracebacks. Lone surrogates and malformed JSON-RPC cannot
go through a client (it refuses to encode them), so :func:`raw_lines` sends those as raw lines.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import copy
import json
import os
import random
import shutil
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import jsonschema
import psutil
from mcp import Client
from mcp.client.stdio import stdio_client
from mcp.shared.exceptions import MCPError

from protocol_tests.harness import REPO, all_tools, serve_args, stdio_params

GENERIC_MARKERS = ("internal error (the server logged the details)",)
TRACEBACK_MARKERS = ("Traceback (most recent call last)", '\n  File "', 'File "/')
MISSING = object()

# ---------------------------------------------------------------- values

UNICODE = [
    "", " ", "\x00", "nul\x00inside", "\u202eevil\u202c.txt", "\u2066isolate\u2069", "שלום עולם", "مرحبا بالعالم",
    "日本語のテキスト", "中文文本", "한국어", "e\u0301\u0301\u0301", "Z\u0335\u0321\u031b\u0327", "\ufeffbom", "\u200b\u200d",
    "🎉" * 20, "\x1b[31mred\x1b[0m\x1b]0;title\x07", "\r\n\t\x0b\x0c", "\x7f\x80\x9f", "\uffff\ufffe", "𝕏𝕐ℤ",
    "%s%n%x%d", "{{7*7}}${jndi:ldap://x}", "' OR '1'='1' --", "\"; DROP TABLE t; --", "<script>alert(1)</script>",
    "NaN", "Infinity", "-0", "null", "true", "[]", "{}", "a" * 300, "0" * 64, "ffffffffffffffffffffffffffffffff",
]
NUMBERS = [0, -1, 1, 2, 7, 2**31 - 1, 2**31, 2**53 + 1, 2**63 - 1, 2**63, -(2**63) - 1, 10**30, -(10**30)]
FLOATS = [0.0, -0.0, 0.5, -1.5, 1e-308, 5e-324, 1e308, -1e308, 1.7976931348623157e308, 3.14159]
JUNK = [12345, -7, 1.5, True, False, None, "text", "", [], {}, [1, "a", None], {"a": 1, "b": [2]}, 1e308]
HUGE_UNITS = ["a", "x y ", "# ", " ", "\n", "é", "日本", "<p>", "((", "[[", "|", "1,", "-- ", "\\"]
PATH_OUTSIDE = ["/etc/passwd", "../../../../etc/passwd", "file:///etc/passwd", "/proc/self/environ", "~root/.ssh/id_rsa",
                "//etc//passwd", "file://evil.host/x", "http://169.254.169.254/", "C:\\Windows\\win.ini", "/dev/zero",
                "docs/" + "../" * 40 + "etc/passwd", "a/" * 3000, "x" * 5000, "%2e%2e/%2e%2e/etc/passwd"]
SQL = ["SELECT 1", "SELECT * FROM customers", "SELECT COUNT(*) FROM orders", "DROP TABLE customers",
       "SELECT 1; DELETE FROM orders", "ATTACH DATABASE '/tmp/x' AS x", "PRAGMA writable_schema=1",
       "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n+1 FROM r) SELECT n FROM r",
       "SELECT * FROM customers a, customers b, customers c, customers d", "SELECT load_extension('x')",
       "SELECT printf('%.*c', 1000000, 'a')", "SELECT", "", "SELECT * FROM no_such_table", "select 'é' || ?"]
CHUNK_ID_LIKE = ["0" * 32, "f" * 32, "zzz'] or text like 'SECRET%' or id in ['zzz", "a\nb", "ABCDEF" * 6]


@dataclass
class Pools:
    """Values for properties whose names say what they hold (paths, SQL, names, ids, base64)."""

    paths: list[str]
    names: list[str] = field(default_factory=lambda: ["fuzz_kb", "shop", "kb1", "A", "a_b", "x" * 63, "1bad", "bad-name",
                                                      "name\n", "latest", "ÄÖ"])
    sql: list[str] = field(default_factory=lambda: list(SQL))
    base64: list[str] = field(default_factory=list)


def _hint(name: str) -> str | None:
    """What a property's name says it holds."""
    low = name.lower()
    if "base64" in low:
        return "base64"
    if low in ("sql", "gold", "predicted", "predicted_sql") or low.endswith("_sql"):
        return "sql"
    if "path" in low or low in ("folder", "paths", "sources", "source"):
        return "path"
    if low in ("kb", "name", "database", "table", "run_id", "job_id", "a", "b", "kind", "state", "example_id"):
        return "name"
    if low.endswith("_id") or low.endswith("_ids"):
        return "id"
    return None


class ArgumentFuzzer:
    """Arguments for a tool from its input schema (see the module doc)."""

    MUTATIONS = ("valid", "valid", "wrong_type", "missing_required", "extra_field", "boundary_number", "huge_string",
                 "huge_array", "deep_nesting", "unicode", "all_wrong", "empty", "null_everywhere")

    def __init__(self, rng: random.Random, pools: Pools, *, huge_chars: int = 200_000, huge_items: int = 5000,
                 depth: int = 120) -> None:
        self.rng = rng
        self.pools = pools
        self.huge_chars = huge_chars
        self.huge_items = huge_items
        self.depth = depth

    # -------------------------------------------------------- schema walking

    def _resolve(self, schema: Any, root: dict[str, Any]) -> dict[str, Any]:
        while isinstance(schema, dict) and "$ref" in schema:
            ref = schema["$ref"]
            target: Any = root
            for part in ref.lstrip("#/").split("/"):
                target = target.get(part, {}) if isinstance(target, dict) else {}
            schema = {**target, **{k: v for k, v in schema.items() if k != "$ref"}}
        if isinstance(schema, dict) and "allOf" in schema and len(schema["allOf"]) == 1:
            schema = {**self._resolve(schema["allOf"][0], root), **{k: v for k, v in schema.items() if k != "allOf"}}
        return schema if isinstance(schema, dict) else {}

    def valid(self, schema: Any, root: dict[str, Any], name: str = "", level: int = 0) -> Any:
        """A value that (mostly) satisfies ``schema``, small."""
        rng = self.rng
        schema = self._resolve(schema, root)
        for key in ("anyOf", "oneOf"):
            if key in schema:
                options = [self._resolve(o, root) for o in schema[key]]
                non_null = [o for o in options if o.get("type") != "null"]
                pick = rng.choice(non_null) if non_null and rng.random() < 0.85 else rng.choice(options)
                return self.valid(pick, root, name, level)
        if "const" in schema:
            return schema["const"]
        if "enum" in schema:
            return rng.choice(schema["enum"])
        kind = schema.get("type")
        if isinstance(kind, list):
            kind = rng.choice(kind)
        if kind is None:
            kind = "object" if "properties" in schema else rng.choice(["string", "integer", "boolean"])
        if kind == "null":
            return None
        if kind == "boolean":
            return rng.random() < 0.5
        if kind == "integer":
            return self._integer(schema)
        if kind == "number":
            return self._number(schema)
        if kind == "string":
            return self._string(schema, name)
        if kind == "array":
            items = schema.get("items", {})
            low = int(schema.get("minItems", 0))
            high = max(low, min(int(schema.get("maxItems", 3)), 3))
            return [self.valid(items, root, name, level + 1) for _ in range(rng.randint(low, high) if level < 4 else low)]
        if kind == "object":
            return self._object(schema, root, level)
        return None

    def _integer(self, schema: dict[str, Any]) -> int:
        rng = self.rng
        low = schema.get("minimum", schema.get("exclusiveMinimum", -1) + (1 if "exclusiveMinimum" in schema else 0))
        high = schema.get("maximum", schema.get("exclusiveMaximum", 10**4) - (1 if "exclusiveMaximum" in schema else 0))
        low, high = int(low if low is not None else 0), int(high)
        if high < low:
            high = low
        candidates = [low, high, min(max(1, low), high), min(max(3, low), high)]
        if "default" in schema and isinstance(schema["default"], int):
            candidates.append(schema["default"])
        return rng.choice(candidates) if rng.random() < 0.6 else rng.randint(low, min(high, low + 50))

    def _number(self, schema: dict[str, Any]) -> float:
        low = float(schema.get("minimum", schema.get("exclusiveMinimum", 0.0)))
        high = float(schema.get("maximum", schema.get("exclusiveMaximum", low + 10.0)))
        value = self.rng.uniform(low, high)
        return value if value != low or "exclusiveMinimum" not in schema else (low + high) / 2

    def _string(self, schema: dict[str, Any], name: str) -> str:
        rng = self.rng
        hint = _hint(name)
        if hint == "path" and self.pools.paths:
            value = rng.choice(self.pools.paths if rng.random() < 0.7 else PATH_OUTSIDE)
        elif hint == "sql":
            value = rng.choice(self.pools.sql)
        elif hint == "name":
            value = rng.choice(self.pools.names)
        elif hint == "id":
            value = rng.choice(CHUNK_ID_LIKE + ["latest"])
        elif hint == "base64" and self.pools.base64:
            value = rng.choice(self.pools.base64)
        else:
            words = ["the", "sea", "tide", "photosynthesis", "order", "customer", "2024-01-01", "total", "moon"]
            value = " ".join(rng.choice(words) for _ in range(rng.randint(1, 8))) if rng.random() < 0.6 \
                else rng.choice(UNICODE)
        low = int(schema.get("minLength", 0))
        high = schema.get("maxLength")
        if len(value) < low:
            value = value + "x" * (low - len(value))
        if high is not None and len(value) > int(high):
            value = value[: int(high)]
        return value

    def _object(self, schema: dict[str, Any], root: dict[str, Any], level: int) -> dict[str, Any]:
        rng = self.rng
        props = schema.get("properties", {})
        required = set(schema.get("required", []))
        out: dict[str, Any] = {}
        for key, sub in props.items():
            if key in required or rng.random() < 0.5:
                out[key] = self.valid(sub, root, key, level + 1)
        extra = schema.get("additionalProperties")
        if not props and extra is not False and level < 4:
            for _ in range(rng.randint(0, 3)):
                out[rng.choice(["date", "tags", "year", "k", "country", "a.b"])] = (
                    self.valid(extra, root, "", level + 1) if isinstance(extra, dict) else rng.choice(JUNK[:11]))
        return out

    # -------------------------------------------------------- mutations

    def _paths(self, value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """Every position inside ``value`` that can be replaced (dict keys, list indices)."""
        out = []
        if isinstance(value, dict):
            for key, sub in value.items():
                out.append((*prefix, key))
                out += self._paths(sub, (*prefix, key))
        elif isinstance(value, list):
            for i, sub in enumerate(value[:5]):
                out.append((*prefix, i))
                out += self._paths(sub, (*prefix, i))
        return out

    @staticmethod
    def _set(value: Any, path: tuple[Any, ...], new: Any) -> None:
        for step in path[:-1]:
            value = value[step]
        if new is MISSING:
            del value[path[-1]]
        else:
            value[path[-1]] = new

    @staticmethod
    def _get(value: Any, path: tuple[Any, ...]) -> Any:
        for step in path:
            value = value[step]
        return value

    def _huge_string(self) -> str:
        unit = self.rng.choice(HUGE_UNITS)
        return unit * (self.rng.randint(self.huge_chars // 4, self.huge_chars) // len(unit))

    def _deep(self) -> Any:
        depth = self.rng.randint(self.depth // 2, self.depth)
        value: Any = "bottom"
        for i in range(depth):
            value = [value] if i % 2 else {"k": value}
        return value

    def _wrong(self, current: Any) -> Any:
        options = [j for j in JUNK if type(j) is not type(current)]
        return copy.deepcopy(self.rng.choice(options))  # JUNK's lists and dicts must never be shared

    def arguments(self, schema: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        """(the mutation applied, the arguments)."""
        rng = self.rng
        root = schema
        # a private copy: values taken from JUNK or the schema (enum, const) are mutated below, and a shared
        # one would grow call after call (a fuzzer that makes multi-gigabyte arguments out of nothing)
        args = copy.deepcopy(self.valid(schema, root))
        if not isinstance(args, dict):
            args = {}
        kind = rng.choice(self.MUTATIONS)
        props = list(schema.get("properties", {}))
        paths = self._paths(args)
        if kind == "valid":
            return kind, args  # a schema-valid call, unchanged
        if kind == "wrong_type" and paths:
            path = rng.choice(paths)
            self._set(args, path, self._wrong(self._get(args, path)))
        elif kind == "missing_required" and schema.get("required"):
            args.pop(rng.choice(schema["required"]), None)
        elif kind == "extra_field":
            args[rng.choice(["zz_unexpected", "__proto__", "", "settings", "progress", "ctx"])] = copy.deepcopy(rng.choice(JUNK))
        elif kind == "boundary_number":
            numeric = [p for p in paths if isinstance(self._get(args, p), int | float)
                       and not isinstance(self._get(args, p), bool)] or ([(rng.choice(props),)] if props else [])
            if numeric:
                self._set(args, rng.choice(numeric), rng.choice(NUMBERS + FLOATS))
        elif kind == "huge_string":
            strings = [p for p in paths if isinstance(self._get(args, p), str)] or ([(rng.choice(props),)] if props else [])
            if strings:
                self._set(args, rng.choice(strings), self._huge_string())
        elif kind == "huge_array":
            arrays = [p for p in paths if isinstance(self._get(args, p), list)] or ([(rng.choice(props),)] if props else [])
            if arrays:
                path = rng.choice(arrays)
                current = self._get(args, path) if path[0] in args else []
                item = current[0] if isinstance(current, list) and current else rng.choice([1, "x", {"id": "1", "text": "t"}])
                self._set(args, path, [item] * rng.randint(self.huge_items // 4, self.huge_items))
        elif kind == "deep_nesting" and (paths or props):
            self._set(args, rng.choice(paths) if paths else (rng.choice(props),), self._deep())
        elif kind == "unicode":
            strings = [p for p in paths if isinstance(self._get(args, p), str)] or ([(rng.choice(props),)] if props else [])
            if strings:
                self._set(args, rng.choice(strings), rng.choice(UNICODE))
        elif kind == "all_wrong":
            args = {key: self._wrong(args.get(key)) for key in props}
        elif kind == "empty":
            args = {}
        elif kind == "null_everywhere":
            args = {key: None for key in props}
        return kind, args


# ---------------------------------------------------------------- running a server


@dataclass
class ServerReport:
    """What fuzzing one server found."""

    server: str
    calls: int = 0
    results: int = 0
    clean_errors: int = 0
    generic_errors: int = 0
    bad_results: int = 0  # a result that does not match the tool's own output schema
    hangs: int = 0
    crashes: int = 0
    tracebacks: int = 0
    alive_after: bool = False
    rss_start_mb: float = 0.0  # after the first tools/list, before any fuzzed call
    rss_end_mb: float = 0.0  # after the last call (the process that answered it)
    peak_rss_mb: float = 0.0
    seconds: float = 0.0
    by_mutation: Counter[str] = field(default_factory=Counter)
    error_kinds: Counter[str] = field(default_factory=Counter)  # tool_error, jsonrpc_<code>, generic
    crash_kinds: Counter[str] = field(default_factory=Counter)  # server_died, protocol_error, traceback_in_message
    findings: list[dict[str, Any]] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {"server": self.server, "calls": self.calls, "results": self.results, "clean_errors": self.clean_errors,
                "generic_errors": self.generic_errors, "bad_results": self.bad_results, "hangs": self.hangs,
                "crashes": self.crashes, "crash_kinds": dict(sorted(self.crash_kinds.items())),
                "tracebacks": self.tracebacks, "error_kinds": dict(sorted(self.error_kinds.items())),
                "alive_after": self.alive_after, "rss_start_mb": round(self.rss_start_mb, 1),
                "rss_end_mb": round(self.rss_end_mb, 1), "peak_rss_mb": round(self.peak_rss_mb, 1),
                "seconds": round(self.seconds, 1), "mutations": dict(sorted(self.by_mutation.items())),
                "findings": self.findings[:20]}

    @property
    def clean(self) -> bool:
        return (self.generic_errors == self.bad_results == self.hangs == self.crashes == self.tracebacks == 0
                and self.alive_after)


def _short(value: Any, limit: int = 300) -> str:
    text = json.dumps(value, ensure_ascii=True, default=str)
    return text if len(text) <= limit else text[:limit] + f"... ({len(text)} chars)"


def _text(result: Any) -> str:
    return " ".join(getattr(c, "text", "") for c in result.content)


def _leaves(exc: BaseException) -> list[BaseException]:
    """The innermost exceptions of an exception group (the client's task groups wrap what went wrong)."""
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for sub in exc.exceptions for leaf in _leaves(sub)]
    return [exc]


def _has_traceback(message: str) -> bool:
    return any(marker in message for marker in TRACEBACK_MARKERS)


def _is_generic(tool: str, message: str) -> bool:
    stripped = message.strip()
    return stripped in (f"Error executing tool {tool}", f"Error executing tool {tool}:") or any(
        marker in message for marker in GENERIC_MARKERS)


def server_process(workdir: Path) -> psutil.Process | None:
    """The server process started for ``workdir`` (a child of this process)."""
    marker = str(workdir / "data")
    for child in psutil.Process().children(recursive=True):
        with contextlib.suppress(psutil.Error):
            cmd = child.cmdline()
            if "serve" in cmd and marker in cmd:
                return child
    return None


def stop_strays(workdir: Path) -> int:
    """Kill processes this run left behind under ``workdir`` (jobs run in their own sessions)."""
    killed = 0
    me = os.getpid()
    for proc in psutil.process_iter(["pid", "cmdline"]):
        with contextlib.suppress(psutil.Error):
            if proc.info["pid"] != me and any(str(workdir) in part for part in proc.info["cmdline"] or []):
                proc.kill()
                killed += 1
    return killed


def prepare_workdir(workdir: Path) -> Pools:
    """A few real files under the root (documents, a table, a SQLite database) for valid-looking calls."""
    from servers.text2sql.demo_db import ensure_demo_database

    docs = workdir / "docs"
    docs.mkdir(parents=True, exist_ok=True)
    (docs / "notes.md").write_text("# Tides\n\nThe moon pulls the oceans.\n\n## Sun\n\nPlants use light.\n", encoding="utf-8")
    (docs / "table.csv").write_text("id,name,total\n1,Ada,10\n2,Bob,20\n", encoding="utf-8")
    (docs / "data.json").write_text('{"items": [{"id": 1, "text": "hello"}]}', encoding="utf-8")
    (docs / "plain.txt").write_text("Just some words about the sea.\n" * 20, encoding="utf-8")
    (docs / "page.html").write_text("<html><body><h1>T</h1><p>x</p></body></html>", encoding="utf-8")
    (docs / "bad.pdf").write_bytes(b"%PDF-1.7\n" + os.urandom(512))
    (workdir / "items.jsonl").write_text('{"question": "2+2?", "answers": ["4"], "text": "a b c"}\n', encoding="utf-8")
    db = ensure_demo_database(workdir / "dbs")
    paths = [str(docs / n) for n in ("notes.md", "table.csv", "data.json", "plain.txt", "page.html", "bad.pdf")]
    paths += [str(docs), "docs/notes.md", (docs / "notes.md").as_uri(), str(workdir / "items.jsonl"), str(db),
              str(workdir / "data" / "milvus.db"), str(workdir / "missing.md")]
    b64 = [base64.b64encode((docs / "notes.md").read_bytes()).decode(), base64.b64encode(os.urandom(300)).decode(),
           "not base64 !!", base64.b64encode(b"PK\x03\x04" + os.urandom(100)).decode()]
    return Pools(paths=paths, base64=b64)


async def _rss(workdir: Path) -> float:
    proc = server_process(workdir)
    if proc is None:
        return 0.0
    with contextlib.suppress(psutil.Error):
        return proc.memory_info().rss / 2**20
    return 0.0




async def fuzz_server(
    name: str, workdir: Path, *, calls: int, seed: int, call_timeout_s: float = 60.0,
    env: dict[str, str] | None = None, huge_chars: int = 200_000, huge_items: int = 5000,
    on_call: Any = None, max_seconds: float | None = None,
) -> ServerReport:
    """Fuzz server ``name`` over stdio (see the module doc); its data and root are under ``workdir``."""
    report = ServerReport(server=name)
    pools = prepare_workdir(workdir)
    rng = random.Random(f"{seed}:{name}")
    fuzzer = ArgumentFuzzer(rng, pools, huge_chars=huge_chars, huge_items=huge_items)
    log_path = workdir / f"{name}-stderr.log"
    started = time.monotonic()
    stop_at = started + max_seconds if max_seconds else float("inf")
    params = stdio_params(name, workdir, env={"OMP_NUM_THREADS": "1", **(env or {})})
    with log_path.open("w", encoding="utf-8", errors="replace") as errlog:
        done = 0
        in_flight: dict[str, Any] = {}
        while done < calls and time.monotonic() < stop_at:
            try:
                async with Client(stdio_client(params, errlog=errlog), read_timeout_seconds=call_timeout_s + 30) as client:
                    in_flight = {}
                    tools = [t for t in await all_tools(client)]
                    if not report.rss_start_mb:
                        report.rss_start_mb = await _rss(workdir)
                    while done < calls and time.monotonic() < stop_at:
                        tool = tools[done % len(tools)] if done < len(tools) else rng.choice(tools)
                        mutation, args = fuzzer.arguments(tool.input_schema)
                        in_flight = {"tool": tool.name, "mutation": mutation, "args": _short(args)}
                        done += 1
                        report.calls += 1
                        report.by_mutation[mutation] += 1
                        outcome = await _one_call(client, tool, args, call_timeout_s, report, mutation)
                        report.rss_end_mb = await _rss(workdir)
                        report.peak_rss_mb = max(report.peak_rss_mb, report.rss_end_mb)
                        if on_call is not None:
                            on_call(report, tool.name, mutation, outcome)
                        if outcome == "crash":
                            break
                    if done >= calls or time.monotonic() >= stop_at:
                        report.alive_after = bool(await all_tools(client))
            except Exception as exc:  # the connection failed (the server died) or an answer broke the protocol
                died = isinstance(exc, anyio.ClosedResourceError | anyio.BrokenResourceError | anyio.EndOfStream
                                  | ConnectionError | OSError) or "Connection closed" in str(exc)
                leaves = _leaves(exc)
                died = died or all(isinstance(e, anyio.ClosedResourceError | anyio.BrokenResourceError | anyio.EndOfStream
                                              | ConnectionError) or "Connection closed" in str(e) for e in leaves)
                kind = "server_died" if died else "protocol_error"
                report.crashes += 1
                report.crash_kinds[kind] += 1
                report.findings.append({"kind": kind, **in_flight,
                                        "error": "; ".join(f"{type(e).__name__}: {e}" for e in leaves)[:600]})
                if report.crashes > 5 or time.monotonic() >= stop_at:
                    break
    report.seconds = time.monotonic() - started
    log = log_path.read_text(encoding="utf-8", errors="replace")
    report.tracebacks = log.count("Traceback (most recent call last)")
    if report.tracebacks:
        first = log.index("Traceback (most recent call last)")
        report.findings.append({"kind": "traceback", "log": log[max(0, first - 300): first + 1500]})
    stop_strays(workdir)
    return report


async def _one_call(client: Client, tool: Any, args: dict[str, Any], timeout_s: float, report: ServerReport,
                    mutation: str) -> str:
    try:
        with anyio.fail_after(timeout_s):
            result = await client.call_tool(tool.name, args)
    except TimeoutError:
        report.hangs += 1
        report.crash_kinds["hang"] += 1
        report.findings.append({"kind": "hang", "tool": tool.name, "mutation": mutation, "args": _short(args)})
        return "hang"
    except MCPError as exc:
        if "Connection closed" in str(exc):
            report.crashes += 1
            report.crash_kinds["server_died"] += 1
            report.findings.append({"kind": "crash", "tool": tool.name, "mutation": mutation, "args": _short(args),
                                    "error": str(exc)[:300]})
            return "crash"
        if _has_traceback(str(exc)):
            return _traceback_in_message(report, tool.name, mutation, args, str(exc))
        if exc.error.code == -32603:
            report.generic_errors += 1
            report.error_kinds["generic"] += 1
            report.findings.append({"kind": "generic", "tool": tool.name, "mutation": mutation, "args": _short(args),
                                    "error": str(exc)[:300]})
            return "generic"
        report.clean_errors += 1
        report.error_kinds[f"jsonrpc_{exc.error.code}"] += 1
        return "clean"
    except (anyio.ClosedResourceError, anyio.BrokenResourceError, anyio.EndOfStream) as exc:
        report.crashes += 1
        report.crash_kinds["server_died"] += 1
        report.findings.append({"kind": "crash", "tool": tool.name, "mutation": mutation, "args": _short(args),
                                "error": type(exc).__name__})
        return "crash"
    if result.is_error:
        message = _text(result)
        if _has_traceback(message):
            return _traceback_in_message(report, tool.name, mutation, args, message)
        if _is_generic(tool.name, message):
            report.generic_errors += 1
            report.error_kinds["generic"] += 1
            report.findings.append({"kind": "generic", "tool": tool.name, "mutation": mutation, "args": _short(args),
                                    "error": message[:300]})
            return "generic"
        report.clean_errors += 1
        report.error_kinds["tool_error"] += 1
        return "clean"
    if tool.output_schema and result.structured_content is not None:
        try:
            jsonschema.validate(result.structured_content, tool.output_schema)
        except jsonschema.ValidationError as exc:
            report.bad_results += 1
            report.findings.append({"kind": "bad_result", "tool": tool.name, "mutation": mutation,
                                    "args": _short(args), "error": exc.message[:300]})
            return "bad_result"
    report.results += 1
    return "result"


def _traceback_in_message(report: ServerReport, tool: str, mutation: str, args: dict[str, Any], message: str) -> str:
    """A traceback reached the client: a crash of the error boundary, whatever else the message says."""
    report.crashes += 1
    report.crash_kinds["traceback_in_message"] += 1
    report.findings.append({"kind": "traceback_in_message", "tool": tool, "mutation": mutation, "args": _short(args),
                            "error": message[:600]})
    return "traceback_in_message"


# ---------------------------------------------------------------- raw lines


RAW_LINES: list[tuple[str, str, int]] = [
    # (what, line, expected JSON-RPC error code); each carries an id the client is waiting for where it can
    ("not JSON", "{this is not json", -32700),
    ("lone surrogate", '{"jsonrpc":"2.0","id":101,"method":"tools/call","params":{"name":"x","arguments":{"a":"\\ud800"}}}',
     -32700),
    ("nested 199 levels", '{"jsonrpc":"2.0","id":102,"method":"tools/call","params":{"name":"x","arguments":{"a":'
     + "[" * 199 + "]" * 199 + "}}}", -32700),
    ("params as an array", '{"jsonrpc":"2.0","id":103,"method":"tools/list","params":[]}', -32600),
    ("object id", '{"jsonrpc":"2.0","id":{"x":1},"method":"ping"}', -32600),
    ("boolean id", '{"jsonrpc":"2.0","id":true,"method":"ping"}', -32600),
    ("batch", '[{"jsonrpc":"2.0","id":104,"method":"ping"},{"jsonrpc":"2.0","id":105,"method":"ping"}]', -32600),
    ("jsonrpc 1.0", '{"jsonrpc":"1.0","id":106,"method":"ping"}', -32600),
    ("a bare number", "42", -32600),
    ("no method", '{"jsonrpc":"2.0","id":107}', -32600),
]


def raw_lines(name: str, workdir: Path, timeout_s: float = 60.0) -> dict[str, Any]:
    """Send :data:`RAW_LINES` to server ``name`` over a raw stdio pipe after initializing: every line must
    be answered with its JSON-RPC error (the ids it carries), then ``tools/list`` must still answer."""
    init = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "raw", "version": "0"}}}
    workdir.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen([sys.executable, *serve_args(name, workdir, "--transport", "stdio")], cwd=REPO,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    assert proc.stdin and proc.stdout
    answers: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout_s

    def send(line: str) -> None:
        assert proc.stdin is not None
        proc.stdin.write(line.encode() + b"\n")
        proc.stdin.flush()

    def read_until(request_id: Any) -> dict[str, Any]:
        assert proc.stdout is not None
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                raise AssertionError(f"server {name} closed stdout")
            message = json.loads(line)
            answers.append(message)
            if message.get("id") == request_id:
                return message
        raise AssertionError(f"server {name} did not answer {request_id}")

    try:
        send(json.dumps(init))
        read_until(1)
        send('{"jsonrpc":"2.0","method":"notifications/initialized"}')
        for _, line, _ in RAW_LINES:
            send(line)
        send('{"jsonrpc":"2.0","id":999,"method":"tools/list"}')
        listed = read_until(999)
    finally:
        proc.kill()
        proc.wait(timeout=10)
    return {"answers": answers[1:-1], "tools": len(listed.get("result", {}).get("tools", []))}


# ---------------------------------------------------------------- the model the fuzzed servers load


def tiny_causal_lm(folder: Path) -> Path:
    """A tiny random Llama (MiniLM's tokenizer, 2 layers) built once under ``folder``: the fuzzed servers
    generate with it, so a valid call to a model-backed tool takes milliseconds, not minutes."""
    target = folder / "tiny-llama"
    if (target / "config.json").is_file():
        return target
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from servers.core.models import resolve

    tmp = folder / f".tiny-llama-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    minilm = resolve("minilm", "embedder").path
    for part in ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json"):
        shutil.copy(minilm / part, tmp / part)
    tokenizer = AutoTokenizer.from_pretrained(tmp)
    tokenizer.eos_token = "[SEP]"
    tokenizer.save_pretrained(tmp)
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=2048,
                         eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    LlamaForCausalLM(config).save_pretrained(tmp)
    try:
        tmp.rename(target)
    except OSError:  # another process built it first
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def fuzz_env(model_folder: Path) -> dict[str, str]:
    """Settings for fuzzed servers: the tiny model, short waits, small resampling, tight time limits."""
    return {
        "QUIVER_MODELS__CAUSAL_LM": str(tiny_causal_lm(model_folder)),
        "QUIVER_EVAL__WAIT_CAP_S": "2", "QUIVER_EVAL__MAX_JOBS": "1", "QUIVER_EVAL__BOOTSTRAP_SAMPLES": "200",
        "QUIVER_EVAL__PERMUTATION_SAMPLES": "200", "QUIVER_PARSE__TIMEOUT_S": "20", "QUIVER_PARSE__WORKERS": "1",
        "QUIVER_TEXT2SQL__TIMEOUT_S": "3", "QUIVER_RETRIEVAL__INGEST_TIMEOUT_S": "45", "QUIVER_LOG_LEVEL": "WARNING",
    }


def run(name: str, workdir: Path, **kwargs: Any) -> ServerReport:
    return asyncio.run(fuzz_server(name, workdir, **kwargs))
