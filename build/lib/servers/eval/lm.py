"""Language-model evaluation on local data: perplexity, multiple choice, closed questions.

- **Perplexity**: each text is tokenized without special tokens and scored with a sliding
  window (``window`` tokens, advancing ``stride``; every token after the first is predicted
  once, with up to ``window - stride`` tokens of earlier context). Perplexity is
  ``exp(total NLL / predicted tokens)``; bits per byte is ``total NLL / ln 2 / UTF-8 bytes``
  (comparable across tokenizers).
- **Multiple choice**: the log-likelihood of each option as the continuation of the
  question in a prompt format. ``acc`` picks the highest sum, ``acc_norm`` the highest sum
  per character of the continuation (its leading space included), ``acc_letter`` lists the
  options as ``A. ...`` and compares the next-token logits of `` A``, `` B``, ... Several
  prompt formats are scored and their spread reported: a newline can change results.
- **Closed questions**: the generator answers, an answer is extracted (``answer is X``,
  the last number, a letter, or the first line) and compared after normalisation.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import torch

from servers.core.errors import InvalidInput
from servers.core.generate import Generator
from servers.core.models import LoadedLM
from servers.eval.schemas import AnswerItem, ChoiceItem, ItemRow

Progress = Callable[[int, int, str], None]
FORMATS = ("Question: {question}\nAnswer:", "{question}", "Q: {question}\nA:")
LETTER_FORMAT = "Question: {question}\n{options}\nAnswer:"
LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
MAX_DEFAULT_WINDOW = 1024
Extract = Literal["auto", "number", "letter", "first_line", "full"]


def model_window(lm: LoadedLM) -> int:
    return int(getattr(lm.model.config, "max_position_embeddings", None) or MAX_DEFAULT_WINDOW)


def resolve_window(lm: LoadedLM, window: int | None, stride: int) -> tuple[int, int]:
    limit = model_window(lm)
    window = window or min(limit, MAX_DEFAULT_WINDOW)
    if window > limit:
        raise InvalidInput(f"window {window} is longer than the model's context ({limit} tokens); use at most {limit}")
    if window < 2:
        raise InvalidInput(f"window must be at least 2 tokens (got {window})")
    if not 1 <= stride <= window:
        raise InvalidInput(f"stride must be between 1 and the window ({window}); got {stride}")
    return window, stride


# ---------------------------------------------------------------- perplexity


@dataclass
class TextScore:
    nll: float  # natural-log NLL summed over predicted tokens
    tokens: int  # predicted tokens
    bytes: int

    @property
    def perplexity(self) -> float:
        return math.exp(self.nll / self.tokens)

    @property
    def bits_per_byte(self) -> float:
        return self.nll / math.log(2) / self.bytes


def _token_nll(lm: LoadedLM, ids: list[int]) -> torch.Tensor:
    """NLL of ids[1:] given the prefix, one forward pass (per token in float32, returned as float64)."""
    x = torch.tensor([ids], device=lm.device)
    logits = lm.model(input_ids=x).logits[0, :-1].float()
    return torch.nn.functional.cross_entropy(logits, x[0, 1:], reduction="none").double()  # fused, as HF's loss


def score_text(lm: LoadedLM, text: str, window: int, stride: int) -> TextScore | None:
    """Sliding-window NLL of one text (None when it has fewer than 2 tokens)."""
    ids = lm.tokenizer(text, add_special_tokens=False)["input_ids"]
    if len(ids) < 2:
        return None
    total = 0.0
    scored_until = 1  # index of the first token not yet predicted
    with torch.inference_mode():
        begin = 0
        while scored_until < len(ids):
            end = min(begin + window, len(ids))
            nll = _token_nll(lm, ids[begin:end])  # predicts ids[begin+1 : end]
            first_new = scored_until - (begin + 1)
            total += float(nll[first_new:].sum())
            scored_until = end
            begin = min(begin + stride, scored_until - 1)  # the next window predicts the next unscored token
    return TextScore(total, len(ids) - 1, len(text.encode("utf-8")))


def perplexity(lm: LoadedLM, texts: list[str], *, window: int, stride: int,
               progress: Progress | None = None) -> list[ItemRow]:
    rows = []
    for i, text in enumerate(texts, 1):
        row = ItemRow(id=str(i), detail={"chars": len(text)})
        score = score_text(lm, text, window, stride)
        if score is None:
            row.unscorable["*"] = "unscorable: the text has fewer than 2 tokens (nothing to predict)"
        else:
            row.scores.update(perplexity=score.perplexity, bits_per_byte=score.bits_per_byte, nll=score.nll / score.tokens)
            row.detail.update(tokens=score.tokens, bytes=score.bytes, nll_sum=score.nll)
        rows.append(row)
        if progress is not None:
            progress(i, len(texts), f"text {i}/{len(texts)}")
    return rows


def corpus_perplexity(rows: list[ItemRow]) -> dict[str, float]:
    """Token-weighted perplexity and bits per byte over all scored texts."""
    scored = [r for r in rows if "nll_sum" in r.detail]
    if not scored:
        return {}
    nll = sum(r.detail["nll_sum"] for r in scored)
    tokens = sum(r.detail["tokens"] for r in scored)
    n_bytes = sum(r.detail["bytes"] for r in scored)
    return {"corpus_perplexity": math.exp(nll / tokens), "corpus_bits_per_byte": nll / math.log(2) / n_bytes,
            "tokens": float(tokens)}


# ---------------------------------------------------------------- multiple choice


def continuation_logprob(lm: LoadedLM, context: str, continuation: str, window: int) -> float | None:
    """Sum of log P(continuation tokens | context); None when context + continuation exceed ``window``."""
    tok = lm.tokenizer
    ctx = tok(context, add_special_tokens=False)["input_ids"]
    cont = tok(continuation, add_special_tokens=False)["input_ids"]
    if not ctx:
        ctx = [tok.bos_token_id if tok.bos_token_id is not None else tok.eos_token_id]
    ids = ctx + cont
    if len(ids) > window:
        return None
    with torch.inference_mode():
        nll = _token_nll(lm, ids)
    return -float(nll[len(ctx) - 1 :].sum())


def letter_choice(lm: LoadedLM, prompt: str, n: int, window: int) -> int | None:
    """Index of the option whose letter (`` A``, `` B``, ...) has the highest next-token logit."""
    tok = lm.tokenizer
    ids = tok(prompt, add_special_tokens=False)["input_ids"]
    if len(ids) >= window:
        return None
    letter_ids = [tok(f" {LETTERS[i]}", add_special_tokens=False)["input_ids"][0] for i in range(n)]
    with torch.inference_mode():
        logits = lm.model(input_ids=torch.tensor([ids], device=lm.device)).logits[0, -1]
    return int(torch.argmax(logits[letter_ids]).item())


def answer_index(item: ChoiceItem) -> int:
    answer = item.answer
    if isinstance(answer, int) and not isinstance(answer, bool):
        if 0 <= answer < len(item.choices):
            return answer
        raise InvalidInput(f"answer index {answer} is outside the {len(item.choices)} choices (0-based)")
    text = str(answer).strip()
    if len(text) == 1 and text.upper() in LETTERS[: len(item.choices)]:
        return LETTERS.index(text.upper())
    if text in item.choices:
        return item.choices.index(text)
    raise InvalidInput(f"answer {answer!r} is not a choice: give its 0-based index, its letter or its exact text")


def multiple_choice(lm: LoadedLM, items: list[ChoiceItem], *, formats: list[str], window: int,
                    progress: Progress | None = None) -> list[ItemRow]:
    rows = []
    for i, item in enumerate(items, 1):
        row = ItemRow(id=item.id or str(i))
        try:
            gold = answer_index(item)
        except InvalidInput as exc:
            row.unscorable["*"] = f"unscorable: {exc}"
            rows.append(row)
            continue
        row.detail["answer"] = gold
        for f, fmt in enumerate(formats, 1):
            context = fmt.replace("{question}", item.question)
            conts = [f" {c}" for c in item.choices]
            lls = [continuation_logprob(lm, context, c, window) for c in conts]
            if any(ll is None for ll in lls):
                row.unscorable[f"acc|f{f}"] = f"unscorable: prompt and option exceed the model window ({window} tokens)"
                continue
            pick = max(range(len(lls)), key=lambda j: lls[j])
            pick_norm = max(range(len(lls)), key=lambda j: lls[j] / len(conts[j]))
            row.scores[f"acc|f{f}"] = float(pick == gold)
            row.scores[f"acc_norm|f{f}"] = float(pick_norm == gold)
            if f == 1:
                row.detail.update(loglik=[round(x, 4) for x in lls], pick=pick, pick_norm=pick_norm)
        if "acc|f1" in row.scores:
            row.scores["acc"] = row.scores["acc|f1"]
            row.scores["acc_norm"] = row.scores["acc_norm|f1"]
        options = "\n".join(f"{LETTERS[j]}. {c}" for j, c in enumerate(item.choices))
        letter = letter_choice(lm, LETTER_FORMAT.format(question=item.question, options=options), len(item.choices), window)
        if letter is None:
            row.unscorable["acc_letter"] = f"unscorable: the lettered prompt exceeds the model window ({window} tokens)"
        else:
            row.scores["acc_letter"] = float(letter == gold)
            row.detail["pick_letter"] = letter
        rows.append(row)
        if progress is not None:
            progress(i, len(items), f"item {i}/{len(items)}")
    return rows


def format_spread(metrics: dict[str, float], n_formats: int) -> dict[str, float]:
    out = {}
    for name in ("acc", "acc_norm"):
        values = [metrics[f"{name}|f{f}"] for f in range(1, n_formats + 1) if f"{name}|f{f}" in metrics]
        if len(values) > 1:
            out[f"{name}_spread"] = max(values) - min(values)
    return out


# ---------------------------------------------------------------- closed questions

_ANSWER_IS = re.compile(r"(?:final answer|answer)\s*(?:is|:)\s*[:\-]?\s*(.+)", re.IGNORECASE)
_NUMBER = re.compile(r"-?\d+(?:[.,]\d+)*")
_LETTER = re.compile(r"\b([A-E])\b")
_ARTICLES = re.compile(r"\b(a|an|the)\b")


def normalize_answer(text: str) -> str:
    text = unicodedata.normalize("NFKC", text or "").lower().strip()
    text = re.sub(r"(?<=\d),(?=\d{3}\b)", "", text)
    text = re.sub(r"\b(\d+)\.0+\b", r"\1", text)
    text = "".join(" " if unicodedata.category(ch).startswith("P") and ch != "." else ch for ch in text)
    text = re.sub(r"\.(?!\d)", " ", text)
    return " ".join(_ARTICLES.sub(" ", text).split())


def extract_answer(text: str, mode: Extract = "auto") -> str:
    text = (text or "").strip()
    if mode == "full":
        return text
    if mode == "number":
        numbers = _NUMBER.findall(text)
        return numbers[-1] if numbers else ""
    if mode == "letter":
        match = _LETTER.search(text)
        return match.group(1) if match else ""
    if mode == "auto":
        match = _ANSWER_IS.search(text)
        if match:
            return re.split(r"\n|\.(?:\s|$)", match.group(1).strip())[0].strip().rstrip(".;:!?")
    return text.splitlines()[0].strip() if text else ""


def token_f1(a: str, b: str) -> float:
    x, y = a.split(), b.split()
    common = sum(min(x.count(t), y.count(t)) for t in set(x))
    if not x or not y or common == 0:
        return 0.0
    p, r = common / len(x), common / len(y)
    return 2 * p * r / (p + r)


ANSWER_SYSTEM = "Answer the question. Put the final answer on the first line, as briefly as possible."


def closed_answers(generator: Generator, items: list[AnswerItem], *, extract: Extract, max_new_tokens: int,
                   progress: Progress | None = None) -> list[ItemRow]:
    rows = []
    for i, item in enumerate(items, 1):
        messages: list[dict[str, Any]] = [{"role": "system", "content": ANSWER_SYSTEM},
                                          {"role": "user", "content": item.question}]
        text = generator.chat(messages, max_new_tokens=max_new_tokens)[0]
        mode: Extract = extract
        if extract == "auto" and all(_NUMBER.fullmatch(a.strip()) for a in item.answers) and not _ANSWER_IS.search(text):
            mode = "number"
        got = normalize_answer(extract_answer(text, mode))
        golds = [normalize_answer(a) for a in item.answers]
        row = ItemRow(id=item.id or str(i), detail={"output": text[:1000], "extracted": got})
        row.scores["exact_match"] = float(any(got == g for g in golds))
        row.scores["f1"] = max(token_f1(got, g) for g in golds)
        row.scores["contains"] = float(any(g and g in normalize_answer(text) for g in golds))
        rows.append(row)
        if progress is not None:
            progress(i, len(items), f"question {i}/{len(items)}")
    return rows
