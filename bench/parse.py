"""Parse quality and speed: Quiver's parser vs markitdown on the same files, same run.

Data layout: ``DIR/<fmt>/input/<file>`` with references ``DIR/<fmt>/expected_md/<file>.md``
(or ``<stem>.md``). Quality is token-level F1 (lower-cased word tokens, multiset
overlap) against the reference. Prints one JSON line per format and system:
``{"format", "system", "n", "f1", "precision", "recall", "files_per_s", "pages_per_s"}``.

    python -m bench.parse --data ../shared/data/docparse [--limit 5] [--formats pdf,docx]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from bench.common import SHARED_DATA

TOKEN = re.compile(r"\w+", re.UNICODE)


def tokens(text: str) -> Counter[str]:
    return Counter(t.lower() for t in TOKEN.findall(text))


def f1(pred: str, ref: str) -> tuple[float, float, float]:
    p, r = tokens(pred), tokens(ref)
    overlap = sum((p & r).values())
    if not p or not r:
        return (1.0, 1.0, 1.0) if p == r else (0.0, 0.0, 0.0)
    precision, recall = overlap / sum(p.values()), overlap / sum(r.values())
    return (2 * precision * recall / (precision + recall) if overlap else 0.0), precision, recall


def reference(folder: Path, file: Path) -> Path | None:
    for name in (file.name + ".md", file.stem + ".md"):
        if (folder / "expected_md" / name).is_file():
            return folder / "expected_md" / name
    return None


def quiver_system(**options: object) -> Callable[[Path], tuple[str, int | None]]:
    from servers.core.settings import ParseSettings
    from servers.parse import parse_path

    settings = ParseSettings(**options)

    def run(path: Path) -> tuple[str, int | None]:
        doc = parse_path(path, settings)
        return doc.markdown, doc.pages

    return run


def markitdown_system() -> Callable[[Path], tuple[str, int | None]]:
    from markitdown import MarkItDown

    converter = MarkItDown()

    def run(path: Path) -> tuple[str, int | None]:
        return converter.convert(str(path)).text_content, None

    return run


def pdf_pages(path: Path) -> int:
    import pypdfium2

    pdf = pypdfium2.PdfDocument(str(path))
    try:
        return len(pdf)
    finally:
        pdf.close()


def bench_format(folder: Path, systems: dict[str, Callable], limit: int | None, repeat: int) -> list[dict]:
    files = sorted(p for p in (folder / "input").iterdir() if p.is_file() and reference(folder, p))
    files = files[:limit] if limit else files
    if not files:
        return []
    refs = {f: reference(folder, f).read_text(encoding="utf-8") for f in files}
    pages = sum(pdf_pages(f) for f in files) if folder.name == "pdf" else None
    rows = []
    for system, run in systems.items():
        scores, seconds, failures = [], 0.0, 0
        for file in files:
            best, text = float("inf"), ""
            for _ in range(repeat):
                start = time.perf_counter()
                try:
                    text, _ = run(file)
                except Exception as exc:  # noqa: BLE001 - a failure scores 0 and is reported
                    print(f"[{system}] {file.name}: {type(exc).__name__}: {exc}", file=sys.stderr)
                    failures += 1
                    text = ""
                best = min(best, time.perf_counter() - start)
            seconds += best
            score = f1(text, refs[file])
            scores.append(score)
            print(f"[{system}] {folder.name}/{file.name}: f1={score[0]:.3f} {best * 1000:.0f} ms", file=sys.stderr)
        n = len(files)
        row = {
            "format": folder.name,
            "system": system,
            "n": n,
            "f1": round(sum(s[0] for s in scores) / n, 4),
            "precision": round(sum(s[1] for s in scores) / n, 4),
            "recall": round(sum(s[2] for s in scores) / n, 4),
            "files_per_s": round(n / seconds, 2) if seconds else None,
            "failures": failures,
        }
        if pages is not None:
            row["pages_per_s"] = round(pages / seconds, 2) if seconds else None
        rows.append(row)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=SHARED_DATA / "docparse")
    parser.add_argument("--limit", type=int, default=None, help="files per format")
    parser.add_argument("--formats", default=None, help="comma-separated subset, e.g. pdf,docx")
    parser.add_argument("--systems", default="quiver,markitdown", help="also: quiver-no-pdf-tables")
    parser.add_argument("--repeat", type=int, default=1, help="runs per file; the fastest is timed")
    args = parser.parse_args()
    factories = {
        "quiver": quiver_system,
        "quiver-no-pdf-tables": lambda: quiver_system(pdf_tables=False),  # pypdfium2 text layer only
        "markitdown": markitdown_system,
    }
    systems = {name: factories[name]() for name in args.systems.split(",")}
    wanted = set(args.formats.split(",")) if args.formats else None
    for folder in sorted(p for p in args.data.iterdir() if (p / "input").is_dir()):
        if wanted and folder.name not in wanted:
            continue
        # warm each system once (imports, lazy loads) so the timings measure parsing
        first = next((p for p in sorted((folder / "input").iterdir()) if p.is_file()), None)
        for run in systems.values():
            if first is not None:
                with contextlib.suppress(Exception):
                    run(first)
        for row in bench_format(folder, systems, args.limit, args.repeat):
            print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
