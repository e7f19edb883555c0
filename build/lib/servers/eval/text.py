"""Text overlap metrics that work for every script: ROUGE-L, BLEU, keyword overlap, distinct-n,
repetition rate.

The tokenizer normalises with NFKC and lower-cases, keeps numbers such as ``3.5`` whole,
splits other scripts on word boundaries (any Unicode letter, not ``[a-z0-9]`` only), and
cuts CJK text into words with jieba (Chinese) or into characters (Japanese kana and
kanji, or Chinese when ``cjk="chars"``). A ROUGE whose tokenizer drops Chinese scores
identical Chinese strings 0; this one scores them 1.
"""

from __future__ import annotations

import logging
import math
import re
import threading
import unicodedata
from collections import Counter
from collections.abc import Sequence
from typing import Literal

CJKMode = Literal["auto", "jieba", "chars"]

_HAN = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_KANA = "\u3040-\u309f\u30a0-\u30ff\u31f0-\u31ff\uff66-\uff9f"
_CJK_RUN = re.compile(f"([{_HAN}{_KANA}\u3005\u30fc]+)")
_KANA_CHAR = re.compile(f"[{_KANA}]")
_WORD = re.compile(r"\d+(?:[.,]\d+)*%?|[^\W_]+(?:['’][^\W_]+)*")

_STOP_TEXT = (
    "a an and are as at be by for from has have in is it its of on or that the this to was were will with "
    "which who what when where how do does did not no but if than then so such can could may might "
    "yes ok okay sure thanks well also "
    "的 了 和 是 在 也 有 就 都 而 及 与 或 之"
)
STOPWORDS = frozenset(_STOP_TEXT.split())

_jieba = None
_jieba_lock = threading.Lock()


def _jieba_cut(text: str) -> list[str]:
    global _jieba
    with _jieba_lock:
        if _jieba is None:
            import jieba

            jieba.setLogLevel(logging.WARNING)  # its dictionary banner would otherwise go to stderr on every start
            jieba.initialize()
            _jieba = jieba
    return [w for w in _jieba.lcut(text) if w.strip()]


def tokenize(text: str, cjk: CJKMode = "auto") -> list[str]:
    """Words of ``text`` in order (see the module docstring for the rules)."""
    text = unicodedata.normalize("NFKC", text or "").lower()
    japanese = bool(_KANA_CHAR.search(text))
    tokens: list[str] = []
    for i, piece in enumerate(_CJK_RUN.split(text)):
        if not piece:
            continue
        if i % 2:  # a CJK run
            if cjk == "jieba" or (cjk == "auto" and not japanese):
                tokens += _jieba_cut(piece)
            else:
                tokens += list(piece)
        else:
            tokens += _WORD.findall(piece)
    return tokens


def ngrams(tokens: Sequence[str], n: int) -> list[tuple[str, ...]]:
    return [tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]


# ---------------------------------------------------------------- ROUGE-L


def lcs_length(a: Sequence[str], b: Sequence[str]) -> int:
    if not a or not b:
        return 0
    if len(a) < len(b):
        a, b = b, a
    prev = [0] * (len(b) + 1)
    for x in a:
        cur = [0]
        for j, y in enumerate(b, 1):
            cur.append(prev[j - 1] + 1 if x == y else max(prev[j], cur[j - 1]))
        prev = cur
    return prev[-1]


def rouge_l(prediction: Sequence[str], reference: Sequence[str]) -> float:
    """ROUGE-L F1 from the longest common subsequence of two token lists."""
    lcs = lcs_length(prediction, reference)
    if lcs == 0:
        return 0.0
    p, r = lcs / len(prediction), lcs / len(reference)
    return 2 * p * r / (p + r)


# ---------------------------------------------------------------- BLEU


def _clipped(prediction: Sequence[str], references: Sequence[Sequence[str]], n: int) -> tuple[int, int]:
    counts = Counter(ngrams(prediction, n))
    best: Counter[tuple[str, ...]] = Counter()
    for ref in references:
        for gram, c in Counter(ngrams(ref, n)).items():
            best[gram] = max(best[gram], c)
    return sum(min(c, best[g]) for g, c in counts.items()), max(0, len(prediction) - n + 1)


def _closest_ref_len(hyp_len: int, references: Sequence[Sequence[str]]) -> int:
    return min((abs(len(r) - hyp_len), len(r)) for r in references)[1]


def bleu(predictions: Sequence[Sequence[str]], references: Sequence[Sequence[Sequence[str]]], max_n: int = 4,
         smooth: bool = False) -> float:
    """Corpus BLEU (Papineni et al.): clipped n-gram precisions up to ``max_n``, geometric mean,
    brevity penalty against the closest reference length. ``smooth`` adds one to the counts of
    n > 1 (Lin and Och), for sentence-level scores."""
    matches = [0] * max_n
    totals = [0] * max_n
    hyp_len = ref_len = 0
    for pred, refs in zip(predictions, references, strict=True):
        hyp_len += len(pred)
        ref_len += _closest_ref_len(len(pred), refs)
        for n in range(1, max_n + 1):
            m, t = _clipped(pred, refs, n)
            matches[n - 1] += m
            totals[n - 1] += t
    if hyp_len == 0:
        return 0.0
    logs = []
    for n in range(max_n):
        m, t = matches[n], totals[n]
        if smooth and n > 0:
            m, t = m + 1, t + 1
        if m == 0 or t == 0:
            return 0.0
        logs.append(math.log(m / t))
    bp = 1.0 if hyp_len > ref_len else math.exp(1 - ref_len / hyp_len)
    return bp * math.exp(sum(logs) / max_n)


# ---------------------------------------------------------------- diversity and keywords


def distinct_n(texts: Sequence[Sequence[str]], n: int = 2) -> float:
    """Unique n-grams over all n-grams of the texts (0 when there is no n-gram)."""
    grams = [g for t in texts for g in ngrams(t, n)]
    return len(set(grams)) / len(grams) if grams else 0.0


def repetition_rate(tokens: Sequence[str], n: int = 3) -> float:
    """Share of a text's n-grams that repeat an earlier one (0 = no repetition)."""
    grams = ngrams(tokens, n)
    return 1 - len(set(grams)) / len(grams) if grams else 0.0


def keywords(tokens: Sequence[str]) -> set[str]:
    """Content words: tokens that are not stop words or single Latin letters."""
    return {t for t in tokens if t not in STOPWORDS and not (len(t) == 1 and t.isascii() and t.isalpha())}


def keyword_overlap(prediction: Sequence[str], expected: set[str]) -> float | None:
    """Share of the expected keywords found in the prediction (None when there are none to find)."""
    if not expected:
        return None
    found = set(prediction)
    return len(expected & found) / len(expected)


# ---------------------------------------------------------------- items


def phrase_found(tokens: Sequence[str], phrase: Sequence[str]) -> bool:
    n = len(phrase)
    return n > 0 and any(tuple(tokens[i : i + n]) == tuple(phrase) for i in range(len(tokens) - n + 1))


def evaluate_texts(items: Sequence, cjk: CJKMode = "auto") -> tuple[list, dict[str, float]]:
    """Per-item ROUGE-L, sentence BLEU, keyword overlap, distinct-2, repetition; corpus BLEU and distinct-n.

    ``items`` are :class:`~servers.eval.schemas.TextItem`; returns (rows, corpus metrics)."""
    from servers.eval.schemas import ItemRow

    rows = []
    preds: list[list[str]] = []
    refs: list[list[list[str]]] = []
    for i, item in enumerate(items, 1):
        row = ItemRow(id=item.id or str(i))
        pred = tokenize(item.prediction, cjk)
        references = [tokenize(r, cjk) for r in item.references if r and r.strip()]
        row.detail["tokens"] = len(pred)
        if not pred:
            row.unscorable["*"] = "unscorable: the prediction is empty"
            rows.append(row)
            continue
        row.scores["repetition_rate"] = repetition_rate(pred)
        row.scores["distinct_2"] = distinct_n([pred], 2) if len(pred) > 1 else 1.0
        if references:
            row.scores["rouge_l"] = max(rouge_l(pred, r) for r in references)
            row.scores["bleu"] = bleu([pred], [references], smooth=True)
            preds.append(pred)
            refs.append(references)
        else:
            row.unscorable["rouge_l"] = "unscorable: no reference was given"
            row.unscorable["bleu"] = "unscorable: no reference was given"
        if item.keywords is not None:
            phrases = [tokenize(k, cjk) for k in item.keywords if k.strip()]
            if phrases:
                row.scores["keyword_overlap"] = sum(phrase_found(pred, p) for p in phrases) / len(phrases)
            else:
                row.unscorable["keyword_overlap"] = "unscorable: the keyword list is empty"
        elif references:
            overlap = keyword_overlap(pred, set().union(*(keywords(r) for r in references)))
            if overlap is not None:
                row.scores["keyword_overlap"] = overlap
        rows.append(row)
    corpus: dict[str, float] = {}
    if preds:
        corpus["corpus_bleu"] = bleu(preds, refs)
    all_preds = [tokenize(it.prediction, cjk) for it in items]
    for n in (1, 2):
        if any(len(p) >= n for p in all_preds):
            corpus[f"corpus_distinct_{n}"] = distinct_n(all_preds, n)
    return rows, corpus
