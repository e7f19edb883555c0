"""RAG metrics: faithfulness, answer relevance, answer similarity, context precision and
recall, citation support, with a per-claim evidence table.

Two tiers, both always available:

- **deterministic**: an answer is split into claims (sentences, citation markers removed);
  a claim's support is ``(lexical + embedding) / 2`` against its best evidence unit (a
  context sentence, or two consecutive ones), where *lexical* is the share of the claim's
  content words found in the unit and *embedding* the cosine of the shipped MiniLM
  embeddings. A claim is supported when that score reaches the threshold **and** every
  number it states appears in the contexts (an unsupported number is flagged).
- **judge**: each claim (and each cited passage, each context's relevance) is judged by a
  generator answering JSON constrained to a schema: ``supported`` / ``contradicted`` /
  ``not_enough_info`` with its reasoning first. Answer relevance and similarity stay
  embedding cosines in both tiers.

Context precision is the average precision of the relevant contexts in their given
order (labels 0,0,1,1,0 → (1/3 + 2/4) / 2 = 0.417); the labels are the caller's, or else
derived: a context is relevant when it supports a claim of the reference (or of the
answer, without a reference).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from servers.eval.judge import JudgeModel
from servers.eval.schemas import ItemRow, RagSample
from servers.eval.text import keywords, rouge_l, tokenize

Tier = Literal["deterministic", "judge"]
RAG_METRICS = ("faithfulness", "support", "answer_relevance", "answer_similarity", "answer_rouge_l",
               "context_precision", "context_recall", "citation_support")
Progress = Callable[[int, int, str], None]

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[\"'(\[]?[A-Z0-9\u3040-\u30ff\u3400-\u9fff])|(?<=[。！？；])|\n+")
_CITATION = re.compile(r"\[(\d+)\]")
_NUMBER = re.compile(r"(?<![\w.])\d+(?:[.,]\d+)*")


def split_sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENTENCE_END.split(text or "") if s and s.strip()]


def claims_of(answer: str) -> list[tuple[str, list[int]]]:
    """Answer sentences with their citation markers removed, and the passages each cites."""
    out = []
    for sentence in split_sentences(answer):
        cited = [int(n) for n in _CITATION.findall(sentence)]
        claim = re.sub(r"\s+([.,;:!?。！？])", r"\1", " ".join(_CITATION.sub(" ", sentence).split()))
        if keywords(tokenize(claim)):
            out.append((claim, cited))
    return out


def numbers_of(text: str) -> set[str]:
    return {n.replace(",", "") for n in _NUMBER.findall(text or "")}


def average_precision(labels: list[int]) -> float:
    """Average precision of relevant items in the given order (0 when none is relevant)."""
    hits, total = 0, 0.0
    for k, rel in enumerate(labels, 1):
        if rel:
            hits += 1
            total += hits / k
    return total / hits if hits else 0.0


# ---------------------------------------------------------------- deterministic support


@dataclass
class Support:
    score: float
    lexical: float
    embedding: float
    context: int | None  # 1-based passage number
    evidence: str
    missing_numbers: list[str] = field(default_factory=list)

    def supported(self, threshold: float) -> bool:
        return self.score >= threshold and not self.missing_numbers

    def row(self, claim: str, threshold: float) -> dict[str, Any]:
        flags = [f"number {n} is not in any context" for n in self.missing_numbers]
        return {"claim": claim, "supported": self.supported(threshold), "score": round(self.score, 4),
                "lexical": round(self.lexical, 4), "embedding": round(self.embedding, 4),
                "evidence": {"context": self.context, "text": self.evidence} if self.context else None, "flags": flags}


class Embeddings:
    """Unit-normalised embeddings of many strings, computed in one batch and looked up by text."""

    def __init__(self, encode: Callable[[list[str]], np.ndarray]) -> None:
        self.encode = encode
        self.vectors: dict[str, np.ndarray] = {}

    def add(self, texts: list[str]) -> None:
        missing = list(dict.fromkeys(t for t in texts if t and t not in self.vectors))
        if missing:
            for text, vec in zip(missing, self.encode(missing), strict=True):
                self.vectors[text] = np.asarray(vec, dtype=np.float32)

    def cosine(self, a: str, b: str) -> float:
        return max(0.0, float(np.dot(self.vectors[a], self.vectors[b])))


def evidence_units(context: str) -> list[str]:
    sentences = split_sentences(context) or [context]
    return sentences + [f"{a} {b}" for a, b in zip(sentences, sentences[1:], strict=False)]


def support(claim: str, contexts: list[str], units: list[list[str]], emb: Embeddings,
            only: int | None = None) -> Support:
    """Best support of ``claim`` among the contexts' units (or passage ``only``, 1-based)."""
    words = keywords(tokenize(claim))
    best = Support(0.0, 0.0, 0.0, None, "")
    for i, unit_list in enumerate(units, 1):
        if only is not None and i != only:
            continue
        for unit in unit_list:
            lexical = len(words & set(tokenize(unit))) / len(words) if words else 0.0
            cos = emb.cosine(claim, unit)
            score = (lexical + cos) / 2
            if score > best.score:
                best = Support(score, lexical, cos, i, unit)
    pool = contexts if only is None else contexts[only - 1 : only]
    known = set().union(*(numbers_of(c) for c in pool)) if pool else set()
    best.missing_numbers = sorted(numbers_of(claim) - known)
    return best


# ---------------------------------------------------------------- judge prompts


def claim_schema(reasoning_chars: int) -> dict[str, Any]:
    return {"type": "object", "properties": {
        "reasoning": {"type": "string", "maxLength": reasoning_chars},
        "verdict": {"type": "string", "enum": ["supported", "contradicted", "not_enough_info"]},
    }, "required": ["reasoning", "verdict"], "additionalProperties": False}


def relevance_schema(reasoning_chars: int) -> dict[str, Any]:
    return {"type": "object", "properties": {
        "reasoning": {"type": "string", "maxLength": reasoning_chars},
        "relevant": {"type": "boolean"},
    }, "required": ["reasoning", "relevant"], "additionalProperties": False}


def _numbered(contexts: list[str]) -> str:
    return "\n".join(f"[{i}] {c}" for i, c in enumerate(contexts, 1))


def claim_messages(claim: str, contexts: list[str]) -> list[dict[str, str]]:
    return [
        {"role": "system", "content": "You check whether a claim is supported by the passages. Reason briefly, then "
                                      "give a verdict: supported, contradicted or not_enough_info. Answer in JSON."},
        {"role": "user", "content": f"Passages:\n{_numbered(contexts)}\n\nClaim: {claim}"},
    ]


def relevance_messages(question: str, context: str) -> list[dict[str, str]]:
    return [
        {"role": "system", "content": "You decide whether a passage helps answer a question. Reason briefly, then say "
                                      "relevant true or false. Answer in JSON."},
        {"role": "user", "content": f"Question: {question}\n\nPassage: {context}"},
    ]


@dataclass
class Judge:
    """The judge tier's questions to a :class:`JudgeModel` (one vote each)."""

    model: JudgeModel

    def claim(self, claim: str, contexts: list[str]) -> tuple[str | None, str]:
        """(verdict or None, reasoning or the reason the reply was unusable)."""
        reply = self.model.ask(claim_messages(claim, contexts), claim_schema(self.model.reasoning_chars), votes=1)[0]
        if not reply.ok:
            return None, f"unscorable: {reply.error}"
        return reply.value["verdict"], reply.value["reasoning"]

    def relevant(self, question: str, context: str) -> tuple[bool | None, str]:
        reply = self.model.ask(relevance_messages(question, context), relevance_schema(self.model.reasoning_chars),
                               votes=1)[0]
        if not reply.ok:
            return None, f"unscorable: {reply.error}"
        return bool(reply.value["relevant"]), reply.value["reasoning"]


# ---------------------------------------------------------------- evaluation


def _three_way(verdicts: list[str]) -> str:
    if "contradicted" in verdicts:
        return "CONTRADICT"
    return "SUPPORT" if verdicts and all(v == "supported" for v in verdicts) else "NOT_ENOUGH_INFO"


def evaluate_sample(sample: RagSample, sid: str, emb: Embeddings, *, tier: Tier, threshold: float,
                    metrics: set[str], judge: Judge | None) -> ItemRow:
    row = ItemRow(id=sid)
    contexts = [c for c in sample.contexts]
    units = [evidence_units(c) for c in contexts]
    claims = claims_of(sample.answer)
    if not sample.answer.strip():
        row.unscorable["*"] = "unscorable: the answer is empty"
        return row

    def skip(metric: str, reason: str) -> None:
        if metric in metrics:
            row.unscorable[metric] = f"unscorable: {reason}"

    # faithfulness and the evidence table
    if metrics & {"faithfulness", "support"}:
        if not contexts:
            skip("faithfulness", "no contexts were given")
            skip("support", "no contexts were given")
        elif not claims:
            skip("faithfulness", "the answer states no claim (no sentence with content words)")
            skip("support", "the answer states no claim")
        else:
            table, verdicts = [], []
            for claim, _ in claims:
                s = support(claim, contexts, units, emb)
                entry = s.row(claim, threshold)
                if tier == "judge" and judge is not None:
                    verdict, reasoning = judge.claim(claim, contexts)
                    entry.update({"verdict": verdict, "reasoning": reasoning, "supported": verdict == "supported"})
                    if verdict is not None:
                        verdicts.append(verdict)
                table.append(entry)
            row.detail["claims"] = table
            if tier == "judge":
                if verdicts:
                    row.scores["faithfulness"] = sum(v == "supported" for v in verdicts) / len(verdicts)
                    row.detail["label"] = _three_way(verdicts)
                else:
                    skip("faithfulness", "every judge reply was unusable")
            else:
                row.scores["faithfulness"] = sum(e["supported"] for e in table) / len(table)
                row.detail["label"] = "SUPPORT" if row.scores["faithfulness"] == 1.0 else "NOT_SUPPORTED"
            if "support" in metrics:
                row.scores["support"] = float(np.mean([e["score"] * (0.5 if e["flags"] else 1.0) for e in table]))

    if "answer_relevance" in metrics:
        if sample.question.strip():
            row.scores["answer_relevance"] = emb.cosine(sample.question, sample.answer)
        else:
            skip("answer_relevance", "the question is empty")
    if metrics & {"answer_similarity", "answer_rouge_l"}:
        if sample.reference and sample.reference.strip():
            if "answer_similarity" in metrics:
                row.scores["answer_similarity"] = emb.cosine(sample.answer, sample.reference)
            if "answer_rouge_l" in metrics:
                row.scores["answer_rouge_l"] = rouge_l(tokenize(sample.answer), tokenize(sample.reference))
        else:
            skip("answer_similarity", "no reference answer was given")
            skip("answer_rouge_l", "no reference answer was given")

    reference_claims = [c for c, _ in claims_of(sample.reference or "")]
    if "context_precision" in metrics:
        if not contexts:
            skip("context_precision", "no contexts were given")
        else:
            labels, how = _context_labels(sample, contexts, units, claims, reference_claims, emb, threshold, tier, judge)
            if labels is None:
                skip("context_precision", how)
            else:
                row.scores["context_precision"] = average_precision(labels)
                row.detail["context_labels"] = labels
                row.detail["context_labels_from"] = how
    if "context_recall" in metrics:
        if not reference_claims:
            skip("context_recall", "no reference answer (with a claim) was given")
        elif not contexts:
            skip("context_recall", "no contexts were given")
        else:
            found = []
            for claim in reference_claims:
                if tier == "judge" and judge is not None:
                    verdict, _ = judge.claim(claim, contexts)
                    if verdict is not None:
                        found.append(verdict == "supported")
                else:
                    found.append(support(claim, contexts, units, emb).supported(threshold))
            if found:
                row.scores["context_recall"] = sum(found) / len(found)
            else:
                skip("context_recall", "every judge reply was unusable")
    if "citation_support" in metrics:
        cited = [(claim, n) for claim, ns in claims for n in ns]
        if not cited:
            skip("citation_support", "the answer cites no passage ([n] markers)")
        else:
            checks = []
            for claim, n in cited:
                if not 1 <= n <= len(contexts):
                    checks.append({"claim": claim, "cited": n, "supported": False,
                                   "reason": f"cites [{n}] but only {len(contexts)} passage(s) were given"})
                    continue
                if tier == "judge" and judge is not None:
                    verdict, reasoning = judge.claim(claim, [contexts[n - 1]])
                    checks.append({"claim": claim, "cited": n, "supported": verdict == "supported",
                                   "verdict": verdict, "reasoning": reasoning})
                else:
                    s = support(claim, contexts, units, emb, only=n)
                    checks.append({"claim": claim, "cited": n, "supported": s.supported(threshold),
                                   "score": round(s.score, 4)})
            row.detail["citations"] = checks
            row.scores["citation_support"] = sum(c["supported"] for c in checks) / len(checks)
    return row


def _context_labels(sample: RagSample, contexts: list[str], units: list[list[str]], claims: list[tuple[str, list[int]]],
                    reference_claims: list[str], emb: Embeddings, threshold: float, tier: Tier,
                    judge: Judge | None) -> tuple[list[int] | None, str]:
    if sample.context_relevance is not None:
        if len(sample.context_relevance) != len(contexts):
            return None, (f"context_relevance has {len(sample.context_relevance)} label(s) for {len(contexts)} "
                          "context(s); give one 0/1 label per context")
        return [1 if r else 0 for r in sample.context_relevance], "given labels"
    if tier == "judge" and judge is not None:
        labels = []
        for context in contexts:
            relevant, _ = judge.relevant(sample.question, context)
            if relevant is None:
                return None, "a judge reply was unusable"
            labels.append(int(relevant))
        return labels, "judge"
    targets = reference_claims or [c for c, _ in claims]
    if not targets:
        return None, "no labels, and neither the reference nor the answer states a claim to derive them from"
    labels = [int(any(support(t, contexts, units, emb, only=i).supported(threshold) for t in targets))
              for i in range(1, len(contexts) + 1)]
    return labels, "supports a reference claim" if reference_claims else "supports an answer claim"


def texts_to_embed(samples: list[RagSample]) -> list[str]:
    out: list[str] = []
    for s in samples:
        out += [s.question, s.answer, s.reference or ""]
        out += [c for c, _ in claims_of(s.answer)] + [c for c, _ in claims_of(s.reference or "")]
        for context in s.contexts:
            out += evidence_units(context)
    return [t for t in out if t]


def evaluate(samples: list[RagSample], encode: Callable[[list[str]], np.ndarray], *, tier: Tier = "deterministic",
             threshold: float = 0.6, metrics: list[str] | None = None, judge: Judge | None = None,
             progress: Progress | None = None) -> list[ItemRow]:
    """One row per sample (ids: the sample's, else its 1-based position)."""
    wanted = set(metrics or RAG_METRICS)
    emb = Embeddings(encode)
    emb.add(texts_to_embed(samples))
    rows = []
    for i, sample in enumerate(samples, 1):
        rows.append(evaluate_sample(sample, sample.id or str(i), emb, tier=tier, threshold=threshold,
                                    metrics=wanted, judge=judge))
        if progress is not None:
            progress(i, len(samples), f"sample {i}/{len(samples)}")
    return rows
