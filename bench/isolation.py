"""Cost of running work in Quiver's warm worker processes (servers/core/isolation.py).

Prints JSON lines: the start-up of a parse worker, the per-call overhead of a no-op call,
and parsing the same files in-process and through the worker pool (same run, same files):

    {"bench": "isolation", "what": "noop", "calls", "p50_ms", "p95_ms"}
    {"bench": "isolation", "what": "parse", "file", "bytes", "inprocess_p50_ms", "worker_p50_ms", "overhead_ms"}

    python -m bench.isolation [--calls 200] [--data ../shared/data/docparse --limit 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

from bench.common import REPO
from servers.core.isolation import WorkerPool, WorkerSpec, _noop
from servers.core.settings import ParseSettings
from servers.parse.documents import parse_bytes
from servers.parse.isolated import parse_bytes_isolated, parse_pool


def percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered) * 1000, ordered[max(0, int(len(ordered) * 0.95) - 1)] * 1000


def timed(fn, repeat: int) -> list[float]:
    out = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        out.append(time.perf_counter() - start)
    return out


def sample_files(data: Path | None, limit: int) -> list[Path]:
    files = sorted((REPO / "samples").glob("*"))
    if data is not None:
        for fmt in ("pdf", "docx", "pptx", "xlsx", "html"):
            files += sorted((data / fmt / "input").glob("*"))[:limit]
    return [f for f in files if f.is_file()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200, help="no-op calls timed")
    parser.add_argument("--repeat", type=int, default=5, help="parses per file and system")
    parser.add_argument("--data", type=Path, default=None, help="docparse folder (adds real PDF/DOCX/... files)")
    parser.add_argument("--limit", type=int, default=3, help="files per format from --data")
    args = parser.parse_args()

    pool = WorkerPool(WorkerSpec("bench", timeout_s=60, max_memory_mb=1024), size=1)
    start = time.perf_counter()
    pool.run(_noop)
    startup = time.perf_counter() - start
    p50, p95 = percentiles(timed(lambda: pool.run(_noop), args.calls))
    print(json.dumps({"bench": "isolation", "what": "noop", "calls": args.calls, "startup_s": round(startup, 3),
                      "p50_ms": round(p50, 3), "p95_ms": round(p95, 3)}), flush=True)
    pool.close()

    settings = ParseSettings(workers=1)
    start = time.perf_counter()
    parse_pool(settings).run(_noop)
    print(json.dumps({"bench": "isolation", "what": "parse_worker_startup", "seconds": round(time.perf_counter() - start, 3)}),
          flush=True)
    for file in sample_files(args.data, args.limit):
        data = file.read_bytes()
        parse_bytes(data, file.name, settings)  # warm both sides (lazy imports, caches) before timing
        parse_bytes_isolated(data, file.name, settings)
        inproc = timed(lambda data=data, file=file: parse_bytes(data, file.name, settings), args.repeat)
        worker = timed(lambda data=data, file=file: parse_bytes_isolated(data, file.name, settings), args.repeat)
        a, b = statistics.median(inproc) * 1000, statistics.median(worker) * 1000
        print(json.dumps({"bench": "isolation", "what": "parse", "file": file.name, "bytes": len(data),
                          "inprocess_p50_ms": round(a, 2), "worker_p50_ms": round(b, 2),
                          "overhead_ms": round(b - a, 2)}), flush=True)


if __name__ == "__main__":
    main()
