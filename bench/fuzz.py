"""The long fuzz run: every registered server (or those named) gets ``--calls`` calls generated from
its tools' input schemas over stdio with the real MCP client (``protocol_tests/fuzz.py``), plus the
raw JSON-RPC lines a client cannot send. Prints one JSON line per server: calls tried, results,
clean errors, generic errors, results that break their own output schema, hangs, crashes, tracebacks
in the server's log, peak RSS, whether it still answered ``tools/list``. Goal: 0 generic errors,
0 hangs, 0 crashes over >= 1,000 calls per server.

A correctness measurement, not a timing one (timings depend on the machine's load).

    python -m bench.fuzz --calls 1000 [--seed 1] [--servers parse rerank] [--out bench/results/fuzz.jsonl]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

from protocol_tests import fuzz
from protocol_tests.harness import REPO
from servers.core.registry import server_names


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=1000, help="calls per server")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--max-seconds", type=float, default=None,
                        help="stop a server's calls after this long (the line then says how many were made)")
    parser.add_argument("--servers", nargs="*", default=None, help="default: every registered server")
    parser.add_argument("--calls-for", nargs="*", default=[], metavar="SERVER=N",
                        help="fewer (or more) calls for a named server, e.g. finetune=300; the line says so")
    parser.add_argument("--call-timeout", type=float, default=120.0, help="seconds before a call counts as a hang")
    parser.add_argument("--huge-chars", type=int, default=1_000_000, help="largest huge string")
    parser.add_argument("--huge-items", type=int, default=10_000, help="largest huge array")
    parser.add_argument("--out", type=Path, default=None, help="also append the JSON lines to this file")
    parser.add_argument("--keep", action="store_true", help="keep the work folders (logs) and print where")
    args = parser.parse_args(argv)

    names = args.servers or server_names()
    calls_for = {k: int(v) for k, v in (item.split("=", 1) for item in args.calls_for)}
    env = fuzz.fuzz_env(REPO / ".cache")
    base = Path(tempfile.mkdtemp(prefix="quiver-fuzz-"))
    failed = False
    try:
        for name in names:
            workdir = base / name
            workdir.mkdir(parents=True)
            started = time.time()

            calls = calls_for.get(name, args.calls)

            def progress(report: fuzz.ServerReport, tool: str, mutation: str, outcome: str, name: str = name) -> None:
                if outcome not in ("result", "clean"):
                    print(f"  {name} call {report.calls}: {tool} ({mutation}) -> {outcome}", file=sys.stderr, flush=True)
                elif report.calls % 100 == 0:
                    print(f"  {name}: {report.calls} calls", file=sys.stderr, flush=True)

            report = fuzz.run(name, workdir, calls=calls, seed=args.seed, call_timeout_s=args.call_timeout, env=env,
                              huge_chars=args.huge_chars, huge_items=args.huge_items, on_call=progress,
                              max_seconds=args.max_seconds)
            raw = fuzz.raw_lines(name, workdir / "raw")
            answered = sum(1 for a in raw["answers"] if "error" in a)
            line = {"bench": "fuzz", "when": time.strftime("%Y-%m-%d", time.localtime(started)), "seed": args.seed,
                    "calls_asked": calls, "call_timeout_s": args.call_timeout, "huge_chars": args.huge_chars,
                    "huge_items": args.huge_items, **report.as_json(), "raw_lines": len(fuzz.RAW_LINES), "raw_errors_answered": answered,
                    "raw_alive_after": raw["tools"] > 0}
            line.pop("findings")
            notes = []
            if calls < args.calls:
                notes.append(f"asked for {calls} instead of {args.calls} calls: slow on a shared 2-core machine")
            if report.calls < calls and args.max_seconds and report.seconds >= args.max_seconds:
                notes.append(f"stopped by the {args.max_seconds:.0f} s time budget after {report.calls} calls")
            if notes:
                line["note"] = "; ".join(notes)
            line["findings"] = report.findings[:5]
            text = json.dumps(line, ensure_ascii=False)
            print(text, flush=True)
            if args.out:
                args.out.parent.mkdir(parents=True, exist_ok=True)
                with args.out.open("a", encoding="utf-8") as sink:
                    sink.write(text + "\n")
            failed |= not report.clean or answered < len(fuzz.RAW_LINES)
    finally:
        if args.keep:
            print(f"work folders kept in {base}", file=sys.stderr)
        else:
            shutil.rmtree(base, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
