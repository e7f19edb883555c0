"""Row filters for data preparation: PII, near-duplicates (MinHash/LSH), perplexity tails, diversity."""

from __future__ import annotations

import hashlib
import math
import re
import unicodedata
from typing import Any

PII_PATTERNS: dict[str, re.Pattern[str]] = {
    "email": re.compile(r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}\b"),
    "phone": re.compile(r"(?<![\w.])(?:\+\d{1,3}[\s.-]?)?(?:\(\d{2,4}\)[\s.-]?)?\d{3,4}[\s.-]\d{3,4}(?:[\s.-]\d{2,4})?(?![\w.])"),
    "api_key": re.compile(
        r"\b(?:sk-[A-Za-z0-9_-]{16,}|AKIA[0-9A-Z]{16}|ghp_[A-Za-z0-9]{30,}|xox[bap]-[A-Za-z0-9-]{10,}"
        r"|AIza[0-9A-Za-z_-]{30,})\b|(?i:(?:api[_-]?key|secret|token|password)\s*[:=]\s*['\"]?[A-Za-z0-9/+_-]{12,})"
    ),
}
CJK_RE = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af]")
WORD_RE = re.compile(r"\w+", re.UNICODE)


def find_pii(text: str) -> list[str]:
    """The kinds of personal data / secrets found in ``text`` (email, phone, api_key)."""
    return [kind for kind, pattern in PII_PATTERNS.items() if pattern.search(text)]


def redact_pii(text: str) -> str:
    for kind, pattern in PII_PATTERNS.items():
        text = pattern.sub(f"[{kind.upper()}]", text)
    return text


def normalize(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).lower()
    return " ".join(text.split())


def md5(text: str) -> str:
    return hashlib.md5(normalize(text).encode("utf-8")).hexdigest()  # noqa: S324 - a content fingerprint


def is_cjk(text: str) -> bool:
    letters = sum(1 for ch in text if ch.isalpha())
    return letters > 0 and len(CJK_RE.findall(text)) / letters > 0.3


def shingles(text: str, size: int = 3) -> set[str]:
    """Character n-grams for Chinese/Japanese/Korean text (no spaces between words), word n-grams otherwise."""
    norm = normalize(text)
    if is_cjk(norm):
        chars = [ch for ch in norm if not ch.isspace()]
        n = 2 if len(chars) < 20 else size
        return {"".join(chars[i : i + n]) for i in range(max(1, len(chars) - n + 1))}
    words = WORD_RE.findall(norm)
    n = size if len(words) >= size * 2 else 1
    return {" ".join(words[i : i + n]) for i in range(max(1, len(words) - n + 1))}


def near_duplicates(texts: list[str], threshold: float, num_perm: int = 128, seed: int = 1) -> dict[int, int]:
    """Index → the earlier index it near-duplicates (MinHash LSH candidates confirmed by estimated Jaccard)."""
    from datasketch import MinHash, MinHashLSH

    lsh = MinHashLSH(threshold=threshold, num_perm=num_perm)
    hashes: list[Any] = []
    found: dict[int, int] = {}
    for index, text in enumerate(texts):
        mh = MinHash(num_perm=num_perm, seed=seed)
        mh.update_batch([s.encode("utf-8") for s in shingles(text)])
        hashes.append(mh)
        matches = [int(key) for key in lsh.query(mh)]
        best = [m for m in matches if hashes[m].jaccard(mh) >= threshold]
        if best:
            found[index] = min(best)
            continue  # a duplicate is not indexed: later rows match the original
        lsh.insert(str(index), mh)
    return found


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return math.nan
    k = (len(ordered) - 1) * pct / 100
    lo, hi = math.floor(k), math.ceil(k)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def perplexities(prompts: list[str], targets: list[str], model: Any, tokenizer: Any, max_length: int = 256) -> list[float]:
    """Per-row perplexity of the target given the prompt under a reference causal LM."""
    import torch

    out: list[float] = []
    device = next(model.parameters()).device
    for prompt, target in zip(prompts, targets, strict=True):
        p_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"] if prompt else []
        t_ids = tokenizer(target, add_special_tokens=False)["input_ids"]
        ids = (p_ids + t_ids)[-max_length:]
        n_target = min(len(t_ids), len(ids))
        if n_target < 1 or len(ids) < 2:
            out.append(math.nan)
            continue
        tensor = torch.tensor([ids], device=device)
        labels = tensor.clone()
        labels[:, : len(ids) - n_target] = -100
        with torch.no_grad():
            loss = model(input_ids=tensor, labels=labels).loss
        out.append(float(torch.exp(loss)))
    return out


def k_center(vectors: Any, k: int, seed: int = 0) -> list[int]:
    """Greedy k-center selection (farthest-first traversal) over normalized embeddings: k diverse indices."""
    import numpy as np

    n = len(vectors)
    if k >= n:
        return list(range(n))
    rng = np.random.default_rng(seed)
    chosen = [int(rng.integers(n))]
    dist = 1.0 - vectors @ vectors[chosen[0]]
    while len(chosen) < k:
        nxt = int(np.argmax(dist))
        chosen.append(nxt)
        dist = np.minimum(dist, 1.0 - vectors @ vectors[nxt])
    return sorted(chosen)
