"""LLM-as-judge: pairwise with both orders, scores with a pass threshold, ranking of N systems,
and a report on how far the judge can be trusted.

Every judge reply is JSON constrained to a schema whose first field is the reasoning, then
the verdict (or score), so the model reasons before it decides. Pairwise items are judged
twice, answers swapped: when the two orders disagree the item is a tie and counts against
swap consistency. Several votes per order (sampled at a temperature, seeded) give a
majority and its agreement. A reply that cannot be used (cut off, or free text from a
generator that cannot be constrained) is counted as invalid, never guessed.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from servers.core.generate import Generator
from servers.core.structured import JsonReply, chat_json
from servers.eval.schemas import ItemRow, JudgeReliability, PairItem, RankItem, ScoreItem

Progress = Callable[[int, int, str], None]
Verdict = Literal["A", "B", "tie"]

PAIR_SYSTEM = (
    "You are an impartial judge. Compare two answers to the user's request for correctness, helpfulness and, when "
    "a reference answer is given, agreement with it. Ignore the order in which the answers are shown and their "
    "length. Give your reasoning first, then the verdict: A, B, or tie."
)
SCORE_SYSTEM = (
    "You are a strict judge. Rate the answer to the user's request for correctness and helpfulness and, when a "
    "reference answer is given, agreement with it. Give your reasoning first, then a score from 1 (useless) to "
    "10 (perfect)."
)
CONSISTENCY_FLOOR = 0.6
POSITION_BIAS = 0.8


def pair_schema(reasoning_chars: int) -> dict[str, Any]:
    return {"type": "object", "properties": {
        "reasoning": {"type": "string", "maxLength": reasoning_chars},
        "verdict": {"type": "string", "enum": ["A", "B", "tie"]},
    }, "required": ["reasoning", "verdict"], "additionalProperties": False}


def score_schema(reasoning_chars: int) -> dict[str, Any]:
    return {"type": "object", "properties": {
        "reasoning": {"type": "string", "maxLength": reasoning_chars},
        "score": {"type": "integer", "minimum": 1, "maximum": 10},
    }, "required": ["reasoning", "score"], "additionalProperties": False}


@dataclass
class JudgeModel:
    """A generator used as a judge: schema-constrained replies, ``votes`` per question."""

    generator: Generator
    reasoning_chars: int = 300
    max_new_tokens: int = 200
    votes: int = 1
    temperature: float = 0.7
    seed: int = 0
    calls: int = 0
    invalid: int = 0
    errors: list[str] = field(default_factory=list)

    def ask(self, messages: list[dict[str, Any]], schema: dict[str, Any], votes: int | None = None) -> list[JsonReply]:
        n = votes or self.votes
        self.calls += 1
        replies = chat_json(self.generator, messages, schema, max_new_tokens=self.max_new_tokens,
                            temperature=self.temperature if n > 1 else 0.0, n=n, seed=self.seed + self.calls)
        for reply in replies:
            if not reply.ok:
                self.invalid += 1
                if len(self.errors) < 5:
                    self.errors.append(str(reply.error))
        return replies


# ---------------------------------------------------------------- pairwise


def pair_messages(prompt: str, first: str, second: str, reference: str | None) -> list[dict[str, str]]:
    ref = f"\n\n[Reference answer]\n{reference}" if reference else ""
    return [{"role": "system", "content": PAIR_SYSTEM},
            {"role": "user", "content": f"[Request]\n{prompt}{ref}\n\n[Answer A]\n{first}\n\n[Answer B]\n{second}"}]


def _majority(verdicts: list[str]) -> tuple[str | None, float]:
    if not verdicts:
        return None, 0.0
    counts = Counter(verdicts).most_common()
    top = counts[0][1]
    leaders = [v for v, c in counts if c == top]
    return (leaders[0] if len(leaders) == 1 else "tie"), top / len(verdicts)


@dataclass
class PairOutcome:
    verdict: str | None  # A, B, tie (None: unusable)
    consistent: bool | None
    forward: list[str]  # votes with A shown first, as A/B/tie of the original labels
    swapped: list[str]  # votes with B shown first, mapped back to the original labels
    first_votes: int  # decisive votes for whichever answer was shown first
    decisive_votes: int
    agreement: list[float]
    reasoning: str
    reasons: list[str]


def judge_pair(judge: JudgeModel, prompt: str, a: str, b: str, reference: str | None) -> PairOutcome:
    schema = pair_schema(judge.reasoning_chars)
    swap = {"A": "B", "B": "A", "tie": "tie"}
    forward_replies = judge.ask(pair_messages(prompt, a, b, reference), schema)
    swapped_replies = judge.ask(pair_messages(prompt, b, a, reference), schema)
    shown_forward = [r.value["verdict"] for r in forward_replies if r.ok]
    shown_swapped = [r.value["verdict"] for r in swapped_replies if r.ok]
    forward, swapped = shown_forward, [swap[v] for v in shown_swapped]
    first_votes = sum(v == "A" for v in shown_forward + shown_swapped)
    decisive = sum(v != "tie" for v in shown_forward + shown_swapped)
    f_major, f_agree = _majority(forward)
    s_major, s_agree = _majority(swapped)
    reasons = [str(r.error) for r in forward_replies + swapped_replies if not r.ok]
    reasoning = next((r.value["reasoning"] for r in forward_replies if r.ok), "")
    if f_major is None or s_major is None:
        return PairOutcome(None, None, forward, swapped, first_votes, decisive, [], reasoning, reasons)
    consistent = f_major == s_major
    return PairOutcome(f_major if consistent else "tie", consistent, forward, swapped, first_votes, decisive,
                       [f_agree, s_agree], reasoning, reasons)


def pairwise(judge: JudgeModel, items: list[PairItem], progress: Progress | None = None) -> list[ItemRow]:
    rows = []
    for i, item in enumerate(items, 1):
        out = judge_pair(judge, item.prompt, item.a, item.b, item.reference)
        row = ItemRow(id=item.id or str(i), detail={
            "verdict": out.verdict, "forward_votes": out.forward, "swapped_votes": out.swapped,
            "first_votes": out.first_votes, "decisive_votes": out.decisive_votes, "reasoning": out.reasoning[:500],
        })
        if out.verdict is None:
            row.unscorable["*"] = f"unscorable: the judge's reply was unusable ({'; '.join(out.reasons)[:300]})"
        else:
            row.scores["b_win"] = {"A": 0.0, "tie": 0.5, "B": 1.0}[out.verdict]
            row.scores["consistent"] = float(bool(out.consistent))
            row.scores["vote_agreement"] = float(np.mean(out.agreement))
            if item.label is not None:
                row.scores["label_agreement"] = float(out.verdict == item.label)
                row.detail["label"] = item.label
        rows.append(row)
        if progress is not None:
            progress(i, len(items), f"pair {i}/{len(items)}")
    return rows


# ---------------------------------------------------------------- scores


def score_messages(prompt: str, answer: str, reference: str | None) -> list[dict[str, str]]:
    ref = f"\n\n[Reference answer]\n{reference}" if reference else ""
    return [{"role": "system", "content": SCORE_SYSTEM},
            {"role": "user", "content": f"[Request]\n{prompt}{ref}\n\n[Answer]\n{answer}"}]


def scored(judge: JudgeModel, items: list[ScoreItem], pass_score: int, progress: Progress | None = None) -> list[ItemRow]:
    rows = []
    schema = score_schema(judge.reasoning_chars)
    for i, item in enumerate(items, 1):
        replies = judge.ask(score_messages(item.prompt, item.answer, item.reference), schema)
        values = [int(r.value["score"]) for r in replies if r.ok]
        row = ItemRow(id=item.id or str(i), detail={"votes": values,
                                                     "reasoning": next((r.value["reasoning"][:500] for r in replies if r.ok), "")})
        if not values:
            row.unscorable["*"] = "unscorable: the judge's reply was unusable (" + \
                "; ".join(str(r.error) for r in replies)[:300] + ")"
        else:
            mean = float(np.mean(values))
            row.scores.update(score=mean, passed=float(mean >= pass_score), score_std=float(np.std(values)))
            if item.label is not None:
                row.scores["label_agreement"] = float((mean >= pass_score) == item.label)
        rows.append(row)
        if progress is not None:
            progress(i, len(items), f"answer {i}/{len(items)}")
    return rows


# ---------------------------------------------------------------- ranking


def bradley_terry(systems: list[str], wins: dict[tuple[str, str], float], iterations: int = 500,
                  prior: float = 0.1) -> dict[str, float]:
    """Bradley–Terry strengths (geometric mean 1) by the MM algorithm; ``wins[(i, j)]`` = wins of
    i over j (ties count half to each); ``prior`` adds that many ties to every pair so that an
    unbeaten system gets a finite strength."""
    n = len(systems)
    w = np.zeros((n, n))
    for (x, y), value in wins.items():
        w[systems.index(x), systems.index(y)] += value
    w += prior / 2 * (1 - np.eye(n))
    games = w + w.T
    p = np.ones(n)
    for _ in range(iterations):
        denom = np.array([sum(games[i, j] / (p[i] + p[j]) for j in range(n) if j != i) for i in range(n)])
        new = w.sum(axis=1) / denom
        new /= np.exp(np.mean(np.log(new)))
        if np.max(np.abs(new - p)) < 1e-10:
            p = new
            break
        p = new
    return {s: float(p[i]) for i, s in enumerate(systems)}


def rank(judge: JudgeModel, items: list[RankItem], progress: Progress | None = None
         ) -> tuple[list[ItemRow], list[dict[str, Any]]]:
    systems = list(dict.fromkeys(s for item in items for s in item.outputs))
    wins: dict[tuple[str, str], float] = {}
    record: dict[str, Counter[str]] = {s: Counter() for s in systems}
    rows = []
    for i, item in enumerate(items, 1):
        row = ItemRow(id=item.id or str(i), detail={"pairs": []})
        if len(item.outputs) < 2:
            row.unscorable["*"] = "unscorable: an item needs the outputs of at least two systems"
            rows.append(row)
            continue
        consistent = []
        for x, y in itertools.combinations(list(item.outputs), 2):
            out = judge_pair(judge, item.prompt, item.outputs[x], item.outputs[y], item.reference)
            row.detail["pairs"].append({"a": x, "b": y, "verdict": out.verdict, "consistent": out.consistent})
            if out.verdict is None:
                continue
            consistent.append(float(bool(out.consistent)))
            share = {"A": 1.0, "tie": 0.5, "B": 0.0}[out.verdict]
            wins[(x, y)] = wins.get((x, y), 0.0) + share
            wins[(y, x)] = wins.get((y, x), 0.0) + 1 - share
            record[x]["wins" if share == 1 else "ties" if share == 0.5 else "losses"] += 1
            record[y]["wins" if share == 0 else "ties" if share == 0.5 else "losses"] += 1
        if consistent:
            row.scores["consistent"] = float(np.mean(consistent))
        else:
            row.unscorable["*"] = "unscorable: every judge reply for this item was unusable"
        rows.append(row)
        if progress is not None:
            progress(i, len(items), f"item {i}/{len(items)}")
    strengths = bradley_terry(systems, wins) if len(systems) > 1 else {s: 1.0 for s in systems}
    ranking = []
    for s in sorted(systems, key=lambda s: -strengths[s]):
        games = sum(record[s].values())
        ranking.append({"system": s, "strength": round(strengths[s], 6), "wins": record[s]["wins"],
                        "ties": record[s]["ties"], "losses": record[s]["losses"],
                        "win_rate": round((record[s]["wins"] + 0.5 * record[s]["ties"]) / games, 4) if games else None})
    return rows, ranking


# ---------------------------------------------------------------- reliability


def cohen_kappa(a: list[str], b: list[str]) -> float | None:
    if not a:
        return None
    labels = sorted(set(a) | set(b))
    po = float(np.mean([x == y for x, y in zip(a, b, strict=True)]))
    ca, cb = Counter(a), Counter(b)
    pe = sum(ca[label] * cb[label] for label in labels) / len(a) ** 2
    return 1.0 if pe == 1 else (po - pe) / (1 - pe)


def reliability(rows: list[ItemRow], judge: JudgeModel, *, labels: list[tuple[str, str]] | None = None
                ) -> JudgeReliability:
    """Swap consistency, position bias, vote agreement, agreement with labels; flags when it is poor."""
    judged = [r for r in rows if "*" not in r.unscorable]
    rel = JudgeReliability(judged=len(judged), invalid=judge.invalid)
    consistent = [r.scores["consistent"] for r in judged if "consistent" in r.scores]
    if consistent:
        rel.swap_consistency = float(np.mean(consistent))
    decisive = sum(r.detail.get("decisive_votes", 0) for r in judged)
    if decisive:
        rel.first_position_rate = sum(r.detail.get("first_votes", 0) for r in judged) / decisive
    agreement = [r.scores["vote_agreement"] for r in judged if "vote_agreement" in r.scores]
    if agreement:
        rel.vote_agreement = float(np.mean(agreement))
    if labels:
        rel.label_agreement = float(np.mean([x == y for x, y in labels]))
        rel.label_kappa = cohen_kappa([x for x, _ in labels], [y for _, y in labels])
    if rel.swap_consistency is not None and rel.swap_consistency < CONSISTENCY_FLOOR:
        rel.flags.append(f"swap consistency {rel.swap_consistency:.2f} < {CONSISTENCY_FLOOR}: the verdicts depend on "
                         "the order the answers are shown in; do not trust this judge's preferences")
    if rel.first_position_rate is not None and not 1 - POSITION_BIAS <= rel.first_position_rate <= POSITION_BIAS:
        rel.flags.append(f"position bias: {rel.first_position_rate:.0%} of decisive votes went to the answer shown "
                         "first")
    if judge.invalid:
        rel.flags.append(f"{judge.invalid} judge repl{'y was' if judge.invalid == 1 else 'ies were'} unusable "
                         f"(e.g. {judge.errors[0] if judge.errors else '?'})")
    if rel.label_kappa is not None and rel.label_kappa < 0.2:
        rel.flags.append(f"agreement with the labels is poor (Cohen's kappa {rel.label_kappa:.2f})")
    return rel
