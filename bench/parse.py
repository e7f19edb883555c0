"""Parse quality and speed: Quiver's parser vs markitdown on the same files, same run.

Suites (``--suites``, default all):

- ``docparse``: ``DIR/<fmt>/input/<file>`` with references ``DIR/<fmt>/expected_md/<file>.md``
  (or ``<stem>.md``). Quality is token-level F1 (lower-cased word tokens, multiset overlap)
  against the reference. One JSON line per format and system:
  ``{"format", "system", "n", "f1", "precision", "recall", "files_per_s", "pages_per_s"}``.
- ``ocr``: ``--ocr-images`` images rendered from known English and Chinese sentences
  (several fonts and sizes, noise, blur, skew); character error rate and pages/s of
  RapidOCR (Quiver's default) and of Tesseract when its binary is installed, same images,
  same run: ``{"suite": "ocr", "engine", "lang", "n", "cer", "pages_per_s"}``.
- ``scanned``: a ``--scanned-pages`` page scanned PDF (no text layer) parsed at 200 dpi in a
  fresh process: ``{"suite": "scanned", "pages", "pages_per_s", "peak_rss_mb", "cer"}``.
- ``formats``: EPUB, notebook, RSS, Atom, ZIP, EML, MSG, XLS, RTF, ODT, ODS, ODP files built
  from known text; recall of the reference words and seconds per file for Quiver and
  markitdown: ``{"suite": "formats", "format", "system", "recall", "s_per_file", "failures"}``.

    python -m bench.parse --data ../shared/data/docparse [--limit 5] [--formats pdf,docx]
    python -m bench.parse --suites ocr,scanned,formats --ocr-images 6 --scanned-pages 2   # a quick proof
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

from bench.common import REPO, SHARED_DATA

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
    parser.add_argument("--suites", default="docparse,ocr,scanned,formats")
    parser.add_argument("--ocr-images", type=int, default=120, help="rendered images for the OCR suite (>= 100 for figures)")
    parser.add_argument("--scanned-pages", type=int, default=20, help="pages of the scanned-PDF suite")
    parser.add_argument("--scanned-child", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.scanned_child:
        return scanned_child(args.scanned_child)
    suites = set(args.suites.split(","))
    if "ocr" in suites:
        for row in bench_ocr(args.ocr_images):
            print(json.dumps(row), flush=True)
    if "scanned" in suites:
        print(json.dumps(bench_scanned(args.scanned_pages)), flush=True)
    if "formats" in suites:
        for row in bench_new_formats(args.repeat):
            print(json.dumps(row), flush=True)
    if "docparse" not in suites:
        return
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


# ---------------------------------------------------------------- OCR accuracy and speed

EN_SENTENCES = [
    "The committee approved the budget for the new library.",
    "Invoice 2024-117 is due on the fifteenth of March.",
    "Ducks migrate south when the lakes begin to freeze.",
    "Please return the signed contract before Friday noon.",
    "Revenue grew by 12.5 percent compared with last year.",
    "The quick brown fox jumps over the lazy dog.",
    "Store the samples at four degrees Celsius overnight.",
    "Our office moves to 221 Baker Street in June.",
]
ZH_SENTENCES = [
    "今天的会议讨论了新的预算方案。", "请在星期五之前交回签好的合同。", "鸭子在湖面上慢慢地游泳。",
    "公司收入比去年增长了百分之十二。", "图书馆明天早上九点开门。", "这份报告总结了第三季度的结果。",
]


def ocr_samples(n: int) -> list[tuple[str, str, object]]:
    """(lang, reference text, image) for n rendered images: fonts, sizes, noise, blur and skew vary."""
    import random

    from tests.parse import samples as S

    rng = random.Random(7)
    cjk = S.cjk_font_file()
    out = []
    for i in range(n):
        lang = "zh" if cjk and i % 3 == 2 else "en"
        size = rng.choice([16, 20, 24, 32, 40])
        if lang == "zh":
            from PIL import ImageFont

            font = ImageFont.truetype(cjk[0], size, index=cjk[1])
            lines = rng.sample(ZH_SENTENCES, 2)
        else:
            font = S.latin_font(size, rng.choice(S.LATIN_FONTS))
            lines = rng.sample(EN_SENTENCES, 2)
        image = S.render_text(
            [lines], font, noise=rng.choice([0, 0, 0.01, 0.03]), blur=rng.choice([0, 0, 0.7]),
            angle=rng.choice([0, 0, -4, 3, 8]), seed=i,
        )
        out.append((lang, " ".join(lines), image))
    return out


def bench_ocr(n: int) -> list[dict]:
    from servers.core.ocr import get_ocr_engine, tesseract_available
    from servers.parse.ocr_layout import layout, markdown
    from tests.parse import samples as S

    images = ocr_samples(n)
    rapid = get_ocr_engine("rapidocr")  # one model for Chinese and English
    engines = {"rapidocr": {"en": rapid, "zh": rapid}}
    if tesseract_available():
        try:  # Tesseract is given each image's language (its usual setup); RapidOCR is not
            engines["tesseract"] = {"en": get_ocr_engine("tesseract", "eng"), "zh": get_ocr_engine("tesseract", "chi_sim")}
        except Exception as exc:  # noqa: BLE001 - a missing language pack is reported, not fatal
            print(f"tesseract skipped: {exc}", file=sys.stderr)
    rows = []
    for name, by_lang in engines.items():
        for engine in set(by_lang.values()):
            engine.read(images[0][2])  # warm-up: model load
        errors: dict[str, list[float]] = {"en": [], "zh": []}
        started = time.perf_counter()
        for lang, reference, image in images:
            text, _ = markdown(layout(by_lang[lang].read(image)))
            errors[lang].append(S.cer(text, reference))
        seconds = time.perf_counter() - started
        for lang in ("en", "zh", "all"):
            values = errors["en"] + errors["zh"] if lang == "all" else errors[lang]
            if values:
                rows.append({"suite": "ocr", "engine": name, "lang": lang, "n": len(values),
                             "cer": round(sum(values) / len(values), 4),
                             "pages_per_s": round(len(images) / seconds, 3) if lang == "all" else None})
    return rows


def scanned_pdf_file(pages: int, folder: Path) -> tuple[Path, str]:
    """A scanned A4 PDF at 200 dpi with two paragraphs per page, and its reference text."""
    from PIL import Image, ImageDraw

    from tests.parse import samples as S

    font = S.latin_font(34)
    images, reference = [], []
    for number in range(pages):
        page = Image.new("L", (1654, 2339), 255)
        draw = ImageDraw.Draw(page)
        y = 200
        for k in range(8):
            line = EN_SENTENCES[(number + k) % len(EN_SENTENCES)]
            draw.text((160, y), line, font=font, fill=0)
            reference.append(line)
            y += 60 if k != 3 else 140
        images.append(page)
    path = folder / "scanned.pdf"
    path.write_bytes(S.scanned_pdf(images, dpi=200))
    return path, " ".join(reference)


def scanned_child(path: Path) -> None:
    import resource

    from servers.core.settings import ParseSettings
    from servers.parse import parse_path

    started = time.perf_counter()
    doc = parse_path(path, ParseSettings(ocr_dpi=200))
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    body = " ".join(line for line in doc.markdown.splitlines() if not line.startswith("<!--"))
    print(json.dumps({"pages": doc.pages, "seconds": seconds, "peak_rss_mb": round(peak, 1), "text": body}))


def bench_scanned(pages: int) -> dict:
    import subprocess
    import tempfile

    from tests.parse import samples as S

    with tempfile.TemporaryDirectory() as tmp:
        path, reference = scanned_pdf_file(pages, Path(tmp))
        out = subprocess.run([sys.executable, "-m", "bench.parse", "--scanned-child", str(path)], capture_output=True,
                             text=True, check=True, cwd=REPO).stdout
    result = json.loads(out.strip().splitlines()[-1])
    return {"suite": "scanned", "dpi": 200, "pages": result["pages"],
            "pages_per_s": round(result["pages"] / result["seconds"], 3),
            "peak_rss_mb": result["peak_rss_mb"], "cer": round(S.cer(result["text"], reference), 4),
            "note": "one process: imports, model load and OCR of every page"}


# ---------------------------------------------------------------- new formats vs markitdown

def format_samples() -> dict[str, tuple[bytes, str]]:
    """file name → (bytes, reference text: what a reader should get out of the file)."""
    from tests.parse import samples as S

    fixture = REPO / "tests/parse/fixtures/pond.xls"
    return {
        "book.epub": (S.epub(), "The Pond Book Chapter One: Arrival The ducks arrived at dawn and were very hungry. "
                      "Mallards Teals Quack, said the eldest duck. Winter came and the pond froze over completely. "
                      "Fly south Return in spring"),
        "analysis.ipynb": (S.notebook(), "Duck Analysis We count ducks. ducks = 3 print(ducks * 2) 6 ducks / 0 "
                           "ZeroDivisionError: division by zero plot()"),
        "news.rss": (S.rss(), "Pond News All about ducks Ducklings hatched https://pond.example/ducklings Seven "
                     "ducklings hatched today. Names Pip Pond cleaned Volunteers removed plastic from the water."),
        "blog.atom": (S.atom(), "Duck Blog Migration notes Ducks fly south in autumn. Plain entry Feathers keep ducks dry."),
        "bundle.zip": (S.zip_archive({"notes.md": b"# Notes\n\nDucks need water.", "table.csv": b"species,count\nmallard,80\n"}),
                       "Notes Ducks need water. species count mallard 80"),
        "census.eml": (S.eml({"census.csv": ("text/csv", b"species,count\nmallard,80\n")}),
                       "Duck census results Jane Duck jane@pond.example Bob Goose bob@pond.example team@pond.example "
                       "Hello Bob, We counted 120 ducks this spring. Jane census.csv species count mallard 80"),
        "budget.msg": (S.outlook_msg(("budget.csv", b"item,euros\nfood,300\n")),
                       "Pond budget 2024 Jane Duck Bob Goose Carl Swan Hi Bob, The pond budget for 2024 is 500 euros. "
                       "budget.csv item euros food 300"),
        "pond.xls": (fixture.read_bytes(), "Counts Year Ducks Counted on Verified 2022 95 2022-05-01 2023 110 2023-05-02 "
                     "2024 120.5 2024-05-07 Notes Remark All good at the pond 鸭子 means duck"),
        "minutes.rtf": (S.rtf(), "Pond Minutes The committee met on Tuesday and approved the café budget. "
                        "Chinese: 鸭子 means duck."),
        "handbook.odt": (S.odt(), "Pond Handbook Ducks need clean water and shade. Feeding Grain Peas Food Grams Grain 50"),
        "counts.ods": (S.ods(), "Counts Year Ducks 2023 110 2024 120"),
        "deck.odp": (S.odp(), "Duck Strategy Grow the flock by ten percent"),
    }


def bench_new_formats(repeat: int) -> list[dict]:
    import tempfile

    systems = {"quiver": quiver_system(), "markitdown": markitdown_system()}
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, (data, reference) in format_samples().items():
            path = Path(tmp) / name
            path.write_bytes(data)
            for system, run in systems.items():
                best, text, failed = float("inf"), "", 0
                for attempt in range(repeat + 1):  # the first run warms imports up and is not timed
                    start = time.perf_counter()
                    try:
                        text = run(path)[0]
                    except Exception as exc:  # noqa: BLE001 - a failure scores 0 and is reported
                        if attempt == 0:
                            print(f"[{system}] {name}: {type(exc).__name__}: {str(exc)[:200]}", file=sys.stderr)
                        failed, text = 1, ""
                    if attempt:
                        best = min(best, time.perf_counter() - start)
                rows.append({"suite": "formats", "format": Path(name).suffix[1:], "system": system,
                             "recall": round(f1(text, reference)[2], 4), "s_per_file": round(best, 4),
                             "failures": failed})
    return rows


if __name__ == "__main__":
    main()
