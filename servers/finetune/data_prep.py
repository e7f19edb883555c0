"""Data preparation: files in → a validated, deduplicated, split dataset folder out, with statistics
and every dropped row counted by reason.

Steps, in this order (each counted in ``dropped``): per-line validation (``invalid``), PII
(``pii``, or redaction), length (``too_short`` / ``too_long``), exact duplicates by md5 of the
normalized row and its offered tools (``duplicate``), near-duplicates by MinHash/LSH
(``near_duplicate``), same prompt and offered tools with a different target (``conflict``, first kept), perplexity tails (``ppl_low`` / ``ppl_high``),
diversity selection to N (``not_selected``); then the split (random or by a time field), the leak
check (eval rows that duplicate or near-duplicate train rows: ``leak``), general-data mixing and the
chat-template check. Output: ``train.jsonl``, ``eval.jsonl``, ``dropped.jsonl`` (row, reason,
source line) and ``manifest.json`` with the content hash recorded by jobs trained on it.
"""

from __future__ import annotations

import hashlib
import json
import random
import statistics
import time
from collections import Counter
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from servers.core.errors import InvalidInput
from servers.finetune import data_filters as filters
from servers.finetune.chat_format import MaskCheck
from servers.finetune.data_formats import FORMATS, detect_format, read_rows, row_text, validate_row

MANIFEST = "manifest.json"


class PrepareOptions(BaseModel):
    format: str | None = Field(default=None, description="expected format; default: detected from the first valid row")
    dedup: bool = True
    near_dup: float | None = Field(default=None, description="MinHash Jaccard threshold; None = no near-dup pass")
    conflicts: bool = True
    pii: str = Field(default="drop", description="drop, redact or keep rows with emails, phone numbers, API keys")
    min_chars: int = 1
    max_chars: int | None = None
    ppl_filter: bool = False
    ppl_low_percentile: float = 2.0
    ppl_high_percentile: float = 98.0
    select: int | None = Field(default=None, description="keep N diverse rows (k-center over embeddings)")
    eval_fraction: float = 0.1
    split_by: str | None = Field(default=None, description="a time field: the latest rows go to eval; None = random")
    seed: int = 42
    mix_fraction: float | None = Field(default=None, description="share of the train split drawn from mix files")
    max_rows: int = 200_000


class Stats(BaseModel):
    rows: int
    chars_min: int = 0
    chars_mean: float = 0.0
    chars_p50: float = 0.0
    chars_p95: float = 0.0
    chars_max: int = 0
    tokens_total: int | None = None
    tokens_max: int | None = None
    with_tools: int = 0
    mean_turns: float | None = None


class PrepareResult(BaseModel):
    path: str
    format: str
    kept: int
    dropped: dict[str, int] = Field(description="rows removed, by reason")
    splits: dict[str, int]
    stats: dict[str, Stats]
    content_hash: str
    invalid_lines: list[str] = Field(default_factory=list, description="file:line: problem (first 50)")
    conflicts: list[str] = Field(default_factory=list, description="prompts that had different targets (first 20)")
    ppl_thresholds: dict[str, float] | None = None
    template_check: MaskCheck | None = None
    mixed_rows: int = 0
    sources: list[str]
    seconds: float


class Row(BaseModel):
    data: dict[str, Any]
    source: str
    line: int
    prompt: str = ""
    target: str = ""
    split: str | None = None

    @property
    def text(self) -> str:
        return f"{self.prompt}\n{self.target}"


def _offered(row: Row) -> str:
    """The tools a row offers, as a key: the same question with other tools is another prompt (a call
    there, "no tool fits" here), neither a duplicate nor a conflict."""
    tools = row.data.get("tools")
    return json.dumps(tools, sort_keys=True, ensure_ascii=False) if tools else ""


def transcript_rows(path: Path) -> tuple[list[tuple[int, Any]], list[tuple[int, str]]]:
    """Host transcripts (DATA_DIR/transcripts/*.jsonl) as tool-calling `messages` rows: runs that ended with an
    answer (not the step limit), without tool errors, whose messages include at least one tool call."""
    raw, errors = read_rows(path, 10**7)
    rows: list[tuple[int, Any]] = []
    for line, record in raw:
        if not isinstance(record, dict) or "messages" not in record:
            errors.append((line, "not a host transcript (no 'messages')"))
            continue
        events = record.get("events") or []
        failed = any(e.get("type") == "error" or (e.get("type") == "tool_result" and e.get("is_error")) for e in events)
        limited = any(e.get("type") == "answer" and e.get("reason") == "step_limit" for e in events)
        messages = [m for m in record["messages"] if m.get("role") in ("system", "user", "assistant", "tool")]
        used_tools = any(m.get("tool_calls") for m in messages)
        if failed or limited or not used_tools or not messages or messages[-1].get("role") != "assistant":
            errors.append((line, "transcript skipped: " + ("a tool or model error" if failed else
                          "stopped at the step limit" if limited else "no tool call or no final answer")))
            continue
        clean = []
        for m in messages:
            keep = {k: m[k] for k in ("role", "content", "tool_calls", "name", "tool_call_id") if m.get(k) is not None}
            if keep.get("role") == "assistant" and keep.get("tool_calls"):
                keep["tool_calls"] = [{"type": "function", "function": {"name": c["function"]["name"],
                                      "arguments": c["function"].get("arguments", {})}} for c in keep["tool_calls"]]
            clean.append(keep)
        rows.append((line, {"messages": clean, "tools": record.get("tools") or [], "created": record.get("created")}))
    return rows, errors


def _load(paths: list[Path], fmt: str | None, max_rows: int, transcripts: bool,
          invalid: list[str]) -> tuple[list[Row], str]:
    rows: list[Row] = []
    for path in paths:
        raw, errors = transcript_rows(path) if transcripts else read_rows(path, max_rows - len(rows))
        invalid.extend(f"{path.name}:{line}: {msg}" for line, msg in errors)
        for line, record in raw:
            detected = detect_format(record) if isinstance(record, dict) else None
            if fmt is None and detected is not None:
                fmt = detected
            want = fmt or "?"
            try:
                if detected is None:
                    raise ValueError(f"no known fields (got {', '.join(list(record)[:6]) if isinstance(record, dict) else type(record).__name__}); "
                                     "expected messages, prompt/completion, prompt/chosen/rejected, prompt/completion/label, prompt or text")
                if detected != want:
                    raise ValueError(f"row is in '{detected}' format but the dataset is '{want}'")
                validate_row(record, want)  # type: ignore[arg-type]
            except ValueError as exc:
                invalid.append(f"{path.name}:{line}: {exc}")
                continue
            prompt, target = row_text(record, want)
            rows.append(Row(data=record, source=path.name, line=line, prompt=prompt, target=target))
    if fmt is None:
        raise InvalidInput("no valid row in the input files: " + ("; ".join(invalid[:3]) or "they are empty"))
    return rows, fmt


def _stats(rows: list[Row], fmt: str, tokenizer: Any | None) -> Stats:
    if not rows:
        return Stats(rows=0)
    lengths = sorted(len(r.text) for r in rows)
    stats = Stats(
        rows=len(rows), chars_min=lengths[0], chars_mean=round(statistics.mean(lengths), 1),
        chars_p50=filters.percentile(lengths, 50), chars_p95=round(filters.percentile(lengths, 95), 1),
        chars_max=lengths[-1],
    )
    if fmt == "messages":
        stats.with_tools = sum(1 for r in rows if r.data.get("tools"))
        stats.mean_turns = round(statistics.mean(len(r.data["messages"]) for r in rows), 2)
    if tokenizer is not None:
        counts = [len(tokenizer(r.text, add_special_tokens=False)["input_ids"]) for r in rows]
        stats.tokens_total, stats.tokens_max = sum(counts), max(counts)
    return stats


def _write_jsonl(path: Path, records: list[dict[str, Any]]) -> None:
    with path.open("w", encoding="utf-8") as sink:
        for record in records:
            sink.write(json.dumps(record, ensure_ascii=False) + "\n")


def content_hash(folder: Path) -> str:
    digest = hashlib.sha256()
    for name in ("train.jsonl", "eval.jsonl"):
        path = folder / name
        if path.is_file():
            digest.update(name.encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:32]


def prepare(
    paths: list[Path],
    out: Path,
    options: PrepareOptions,
    *,
    eval_paths: list[Path] | None = None,
    mix_paths: list[Path] | None = None,
    transcripts: bool = False,
    tokenizer: Any | None = None,
    reference: tuple[Any, Any] | None = None,
    embed: Any | None = None,
    template_checker: Any | None = None,
) -> PrepareResult:
    """Run the pipeline; ``reference`` = (model, tokenizer) for the perplexity filter, ``embed(texts)`` →
    normalized vectors for diversity selection, ``template_checker(rows)`` → MaskCheck for `messages` data."""
    start = time.perf_counter()
    if options.format is not None and options.format not in FORMATS:
        raise InvalidInput(f"unknown format '{options.format}': use one of {', '.join(FORMATS)}")
    if options.pii not in ("drop", "redact", "keep"):
        raise InvalidInput("pii must be drop, redact or keep")
    if options.ppl_filter and reference is None:
        raise InvalidInput("the perplexity filter needs a reference model")
    invalid: list[str] = []
    dropped: Counter[str] = Counter()
    removed: list[dict[str, Any]] = []

    def drop(row: Row, reason: str) -> None:
        dropped[reason] += 1
        removed.append({"reason": reason, "source": row.source, "line": row.line, "row": row.data})

    rows, fmt = _load(paths, options.format, options.max_rows, transcripts, invalid)
    for row in rows:
        row.split = "train"
    if eval_paths:
        eval_rows, _ = _load(eval_paths, fmt, options.max_rows, transcripts, invalid)
        for row in eval_rows:
            row.split = "eval"
        rows += eval_rows
    dropped["invalid"] = len(invalid)

    kept: list[Row] = []
    for row in rows:  # PII
        kinds = filters.find_pii(row.text)
        if kinds and options.pii == "drop":
            drop(row, "pii")
            continue
        if kinds and options.pii == "redact":
            row.data = json.loads(filters.redact_pii(json.dumps(row.data, ensure_ascii=False)))
            row.prompt, row.target = row_text(row.data, fmt)
        kept.append(row)
    rows, kept = kept, []
    for row in rows:  # length
        n = len(row.text.strip())
        if n < options.min_chars:
            drop(row, "too_short")
        elif options.max_chars is not None and n > options.max_chars:
            drop(row, "too_long")
        else:
            kept.append(row)
    rows = kept
    if options.dedup:  # exact duplicates (train rows first, so an eval copy of a train row is a leak)
        seen: dict[str, Row] = {}
        kept = []
        for row in sorted(rows, key=lambda r: r.split != "train"):
            key = filters.md5(json.dumps([_offered(row), row.data.get("messages") or [row.prompt, row.target]],
                                         ensure_ascii=False))
            if key in seen:
                drop(row, "leak" if row.split != seen[key].split else "duplicate")
                continue
            seen[key] = row
            kept.append(row)
        rows = kept
    if options.near_dup is not None:
        if not 0 < options.near_dup <= 1:
            raise InvalidInput("near_dup must be a Jaccard threshold in (0, 1], e.g. 0.85")
        rows = sorted(rows, key=lambda r: r.split != "train")
        dups = filters.near_duplicates([r.text for r in rows], options.near_dup, seed=options.seed)
        kept = []
        for index, row in enumerate(rows):
            if index in dups:
                original = rows[dups[index]]
                drop(row, "leak" if original.split != row.split else "near_duplicate")
            else:
                kept.append(row)
        rows = kept
    conflicts: list[str] = []
    if options.conflicts and fmt in ("messages", "prompt_completion"):
        first: dict[str, Row] = {}
        kept = []
        for row in rows:
            key = filters.md5(f"{_offered(row)}\n{row.prompt}")  # other tools offered: another prompt
            if key in first and filters.normalize(first[key].target) != filters.normalize(row.target):
                drop(row, "conflict")
                if len(conflicts) < 20:
                    conflicts.append(f"{row.source}:{row.line} vs {first[key].source}:{first[key].line}: "
                                     f"{row.prompt[:80]!r}")
                continue
            first.setdefault(key, row)
            kept.append(row)
        rows = kept
    thresholds = None
    if options.ppl_filter and rows:
        model, ref_tok = reference  # type: ignore[misc]
        ppl = filters.perplexities([r.prompt for r in rows], [r.target or r.prompt for r in rows], model, ref_tok)
        finite = [p for p in ppl if p == p]
        low = filters.percentile(finite, options.ppl_low_percentile)
        high = filters.percentile(finite, options.ppl_high_percentile)
        thresholds = {"low": round(low, 3), "high": round(high, 3), "median": round(filters.percentile(finite, 50), 3)}
        kept = []
        for row, p in zip(rows, ppl, strict=True):
            if p == p and p < low:
                drop(row, "ppl_low")
            elif p != p or p > high:
                drop(row, "ppl_high")
            else:
                kept.append(row)
        rows = kept
    if options.select is not None and len(rows) > options.select:
        if embed is None:
            raise InvalidInput("diversity selection needs an embedder")
        vectors = embed([r.text for r in rows])
        chosen = set(filters.k_center(vectors, options.select, seed=options.seed))
        kept = []
        for index, row in enumerate(rows):
            (kept.append(row) if index in chosen else drop(row, "not_selected"))
        rows = kept

    # split
    train = [r for r in rows if r.split == "train"]
    evals = [r for r in rows if r.split == "eval"]
    if not eval_paths and options.eval_fraction > 0 and len(train) > 1:
        n_eval = max(1, round(len(train) * options.eval_fraction))
        if options.split_by:
            missing = [r for r in train if options.split_by not in r.data]
            if missing:
                raise InvalidInput(f"split_by '{options.split_by}': {len(missing)} row(s) lack that field "
                                   f"(first: {missing[0].source}:{missing[0].line})")
            ordered = sorted(train, key=lambda r: str(r.data[options.split_by]))
            train, evals = ordered[:-n_eval], ordered[-n_eval:]
        else:
            shuffled = list(train)
            random.Random(options.seed).shuffle(shuffled)
            evals, train = shuffled[:n_eval], shuffled[n_eval:]
            order = {id(r): i for i, r in enumerate(rows)}
            train.sort(key=lambda r: order[id(r)])
            evals.sort(key=lambda r: order[id(r)])
    mixed = 0
    if mix_paths:
        if not options.mix_fraction or not 0 < options.mix_fraction < 1:
            raise InvalidInput("mix_fraction must be in (0, 1) when mix files are given (0.3–0.5 limits forgetting)")
        general, _ = _load(mix_paths, fmt, options.max_rows, False, [])
        want = round(len(train) * options.mix_fraction / (1 - options.mix_fraction))
        rng = random.Random(options.seed)
        picked = rng.sample(general, min(want, len(general)))
        mixed = len(picked)
        train = train + picked
        rng.shuffle(train)

    check = None
    if template_checker is not None and fmt == "messages" and train:
        check = template_checker([r.data for r in train])

    out.mkdir(parents=True, exist_ok=True)
    _write_jsonl(out / "train.jsonl", [r.data for r in train])
    _write_jsonl(out / "eval.jsonl", [r.data for r in evals])
    _write_jsonl(out / "dropped.jsonl", removed)
    digest = content_hash(out)
    dropped_counts = {k: v for k, v in sorted(dropped.items()) if v}
    result = PrepareResult(
        path=str(out), format=fmt, kept=len(train) + len(evals), dropped=dropped_counts,
        splits={"train": len(train), "eval": len(evals)},
        stats={"train": _stats(train, fmt, tokenizer), "eval": _stats(evals, fmt, tokenizer)},
        content_hash=digest, invalid_lines=invalid[:50], conflicts=conflicts, ppl_thresholds=thresholds,
        template_check=check, mixed_rows=mixed, sources=[str(p) for p in paths + (eval_paths or [])],
        seconds=round(time.perf_counter() - start, 3),
    )
    manifest = {**result.model_dump(exclude={"template_check"}), "options": options.model_dump(),
                "created": time.strftime("%Y-%m-%dT%H:%M:%S")}
    (out / MANIFEST).write_text(json.dumps(manifest, indent=1, ensure_ascii=False), encoding="utf-8")
    return result


def read_manifest(folder: Path) -> dict[str, Any] | None:
    try:
        return json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError):
        return None
