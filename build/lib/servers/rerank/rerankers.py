"""Rerankers behind one interface: ``score(query, texts) -> list[float]``, higher = more relevant.

Base methods: ``none`` (keep the input order), ``embedding`` (cosine with the embedder),
``late-interaction`` (MaxSim over the embedder's token embeddings), ``cross-encoder`` (a
sentence-transformers CrossEncoder from config) and ``llm`` (pointwise P("yes") from a causal
LM's next-token logits). A fusion of base methods is named ``rrf:a+b``, ``minmax:a=0.3+b=0.7``
or ``zscore:a+b`` (see :mod:`servers.rerank.fusion`). Every model load goes through
:mod:`servers.core.models`; nothing is loaded until a method first scores.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, ClassVar

import numpy as np

from servers.core.errors import ConfigError, InvalidInput
from servers.core.models import causal_lm, cross_encoder, embed, embedder
from servers.rerank.fusion import normalize, rrf_scores

if TYPE_CHECKING:
    from servers.core.settings import Settings

LLM_MAX_DOC_TOKENS = 384
LLM_BATCH = 8
LLM_SYSTEM = (
    "You judge search results. Given a query and a document, answer 'yes' if the document "
    "is relevant to the query (it answers, supports or refutes it) and 'no' otherwise. "
    "Answer with one word: yes or no."
)
FUSION_PREFIXES = ("rrf", "minmax", "zscore")


def _check_texts(query: str, texts: list[str]) -> None:
    if not isinstance(query, str) or not query.strip():
        raise InvalidInput("query is empty: pass the search query text to rank documents against")
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise InvalidInput(f"texts[{i}] is {type(text).__name__}, not a string: pass each document's text")


class Reranker(ABC):
    """One scoring method. Subclasses set ``name`` and ``description`` and implement ``_score``."""

    name: ClassVar[str]
    description: ClassVar[str]

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def score(self, query: str, texts: list[str]) -> list[float]:
        """Scores for ``texts`` in input order; higher = more relevant."""
        _check_texts(query, texts)
        if not texts:
            return []
        return [float(s) for s in self._score(query, texts)]

    @abstractmethod
    def _score(self, query: str, texts: list[str]) -> list[float] | np.ndarray: ...

    def model_name(self) -> str | None:
        return None

    def unavailable_reason(self) -> str | None:
        """Why this method cannot run here, or None when it can."""
        return None


class NoRerank(Reranker):
    name = "none"
    description = "Keep the input (first-stage) order; scores are n, n-1, ..., 1."

    def _score(self, query: str, texts: list[str]) -> list[float]:
        return [float(len(texts) - i) for i in range(len(texts))]


class EmbeddingReranker(Reranker):
    name = "embedding"
    description = "Cosine similarity between query and document embeddings (cheap baseline)."

    def model_name(self) -> str | None:
        return self.settings.models.embedder

    def _vectors(self, texts: list[str]) -> np.ndarray:
        return embed(texts, self.settings)

    def _score(self, query: str, texts: list[str]) -> np.ndarray:
        q = self._vectors([query])[0]
        return (self._vectors(texts) @ q).astype(np.float64)


class LateInteractionReranker(Reranker):
    name = "late-interaction"
    description = (
        "MaxSim over the embedder's L2-normalized token embeddings (ColBERT-style): each query token "
        "takes its best-matching document token; the score is the mean over query tokens."
    )

    def model_name(self) -> str | None:
        return self.settings.models.embedder

    def _tokens(self, texts: list[str]) -> list[np.ndarray]:
        model = embedder(None, self.settings)
        out = model.encode(
            texts,
            output_value="token_embeddings",
            convert_to_numpy=False,
            batch_size=self.settings.models.batch_size,
        )
        mats = []
        for tokens in out:
            mat = tokens.float().cpu().numpy()
            mat /= np.maximum(np.linalg.norm(mat, axis=1, keepdims=True), 1e-12)
            mats.append(mat)
        return mats

    def _score(self, query: str, texts: list[str]) -> list[float]:
        q = self._tokens([query])[0]
        return [float((q @ d.T).max(axis=1).mean()) for d in self._tokens(texts)]


class CrossEncoderReranker(Reranker):
    name = "cross-encoder"
    description = (
        "A sentence-transformers CrossEncoder (e.g. a bge-reranker or ms-marco model) reads query and "
        "document together; needs [models] cross_encoder in the config. Best on a GPU."
    )

    def model_name(self) -> str | None:
        return self.settings.models.cross_encoder

    def unavailable_reason(self) -> str | None:
        if not self.settings.models.cross_encoder:
            return (
                "no cross-encoder is configured: set [models] cross_encoder = '<local folder or hub id>' "
                "in quiver.toml (or QUIVER_MODELS__CROSS_ENCODER), e.g. a bge-reranker or ms-marco model"
            )
        return None

    def _score(self, query: str, texts: list[str]) -> np.ndarray:
        reason = self.unavailable_reason()
        if reason:
            raise ConfigError(reason)
        model = cross_encoder(self.settings.models.cross_encoder or "", self.settings)
        # sentence-transformers truncates each pair to the model's max_seq_length (capped at its positions)
        scores = model.predict(
            [(query, t) for t in texts],
            batch_size=self.settings.models.batch_size,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        scores = np.asarray(scores, dtype=np.float64)
        if scores.ndim == 2:  # several labels: the last one is "relevant"
            scores = scores[:, -1]
        return scores


class LLMReranker(Reranker):
    name = "llm"
    description = (
        "Pointwise relevance from a causal LM: the probability of 'yes' vs 'no' to 'is this document "
        "relevant to the query?', read from the next-token logits. Slow on CPU; meant for an instruct LLM on a GPU."
    )

    def model_name(self) -> str | None:
        return self.settings.models.causal_lm

    def _score(self, query: str, texts: list[str]) -> list[float]:
        import torch

        lm = causal_lm(None, self.settings)
        tok = lm.tokenizer
        yes_ids, no_ids = _answer_ids(tok, ("yes", "Yes")), _answer_ids(tok, ("no", "No"))
        prompts = [_llm_prompt_ids(tok, query, t) for t in texts]
        pad_id = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id or 0
        scores = [0.0] * len(texts)
        order = sorted(range(len(texts)), key=lambda i: len(prompts[i]))  # less padding per batch
        for start in range(0, len(order), LLM_BATCH):
            idx = order[start : start + LLM_BATCH]
            width = max(len(prompts[i]) for i in idx)
            ids = torch.full((len(idx), width), pad_id, dtype=torch.long)
            mask = torch.zeros((len(idx), width), dtype=torch.long)
            for row, i in enumerate(idx):  # left padding: the last position is the next-token slot
                ids[row, width - len(prompts[i]) :] = torch.tensor(prompts[i])
                mask[row, width - len(prompts[i]) :] = 1
            positions = (mask.cumsum(-1) - 1).clamp(min=0)
            with torch.inference_mode():
                out = lm.model(
                    input_ids=ids.to(lm.device),
                    attention_mask=mask.to(lm.device),
                    position_ids=positions.to(lm.device),
                    logits_to_keep=1,
                )
            logits = out.logits[:, -1, :].float()
            yes = torch.logsumexp(logits[:, yes_ids], dim=-1)
            no = torch.logsumexp(logits[:, no_ids], dim=-1)
            for row, i in enumerate(idx):
                scores[i] = float(torch.sigmoid(yes[row] - no[row]))
        return scores


def _answer_ids(tokenizer, words: tuple[str, ...]) -> list[int]:
    """First token ids of each spelling (with and without a leading space)."""
    ids: set[int] = set()
    for word in words:
        for variant in (word, " " + word):
            encoded = tokenizer.encode(variant, add_special_tokens=False)
            if encoded:
                ids.add(encoded[0])
    return sorted(ids)


def _llm_prompt_ids(tokenizer, query: str, text: str) -> list[int]:
    doc_ids = tokenizer.encode(text, add_special_tokens=False)[:LLM_MAX_DOC_TOKENS]
    doc = tokenizer.decode(doc_ids)
    user = f"Query: {query}\n\nDocument: {doc}\n\nIs the document relevant to the query? Answer yes or no."
    if getattr(tokenizer, "chat_template", None):
        messages = [{"role": "system", "content": LLM_SYSTEM}, {"role": "user", "content": user}]
        ids = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True)
        if isinstance(ids, dict) or hasattr(ids, "keys"):
            ids = ids["input_ids"]
        return list(ids)
    return tokenizer.encode(f"{LLM_SYSTEM}\n\n{user}\nAnswer:", add_special_tokens=True)


BASE_RERANKERS: dict[str, type[Reranker]] = {
    cls.name: cls
    for cls in (NoRerank, EmbeddingReranker, LateInteractionReranker, CrossEncoderReranker, LLMReranker)
}


class FusionReranker(Reranker):
    """Fusion of base methods' scores over the same candidates: ``rrf:a+b``, ``minmax:a=0.3+b=0.7``, ``zscore:a+b``."""

    name = "fusion"
    description = (
        "Fuse several methods over the same candidates: 'rrf:none+late-interaction' (reciprocal rank "
        "fusion), 'minmax:none=0.3+late-interaction=0.7' or 'zscore:a+b' (weighted sum of normalized scores)."
    )

    def __init__(self, settings: Settings, how: str, parts: list[tuple[Reranker, float]]) -> None:
        super().__init__(settings)
        self.how = how
        self.parts = parts

    def model_name(self) -> str | None:
        names = [p.model_name() for p, _ in self.parts if p.model_name()]
        return ", ".join(dict.fromkeys(n for n in names if n)) or None

    def unavailable_reason(self) -> str | None:
        return next((r for p, _ in self.parts if (r := p.unavailable_reason())), None)

    def _score(self, query: str, texts: list[str]) -> np.ndarray:
        lists = [np.asarray(p.score(query, texts), dtype=np.float64) for p, _ in self.parts]
        weights = [w for _, w in self.parts]
        if self.how == "rrf":
            return rrf_scores([np.argsort(-s, kind="stable") for s in lists], len(texts), weights=weights)
        return sum(w * normalize(s, self.how) for s, w in zip(lists, weights, strict=True))


def method_names() -> list[str]:
    return list(BASE_RERANKERS)


def get_reranker(method: str, settings: Settings) -> Reranker:
    """The reranker named ``method`` (a base name or a fusion spec); InvalidInput when unknown."""
    if not isinstance(method, str) or not method.strip():
        raise InvalidInput(f"method must be a non-empty string: one of {', '.join(BASE_RERANKERS)}")
    method = method.strip()
    if method in BASE_RERANKERS:
        return BASE_RERANKERS[method](settings)
    how, sep, rest = method.partition(":")
    if sep and how in FUSION_PREFIXES:
        return FusionReranker(settings, how, _parse_parts(method, rest, settings))
    raise InvalidInput(
        f"unknown rerank method '{method}': use one of {', '.join(BASE_RERANKERS)}, or a fusion such as "
        "'rrf:none+late-interaction' or 'minmax:none=0.3+late-interaction=0.7' (see list_rerankers)"
    )


def _parse_parts(method: str, rest: str, settings: Settings) -> list[tuple[Reranker, float]]:
    parts: list[tuple[Reranker, float]] = []
    for piece in rest.split("+"):
        name, _, weight = piece.strip().partition("=")
        name = name.strip()
        if name not in BASE_RERANKERS:
            raise InvalidInput(
                f"fusion '{method}' names '{name}', which is not a base method ({', '.join(BASE_RERANKERS)})"
            )
        try:
            w = float(weight) if weight.strip() else 1.0
        except ValueError:
            raise InvalidInput(f"fusion '{method}': weight '{weight}' of '{name}' is not a number") from None
        if not math.isfinite(w) or w < 0:
            raise InvalidInput(f"fusion '{method}': weight of '{name}' must be a finite number >= 0")
        parts.append((BASE_RERANKERS[name](settings), w))
    if len(parts) < 2:
        raise InvalidInput(f"fusion '{method}' needs at least two methods joined by '+'")
    if sum(w for _, w in parts) <= 0:
        raise InvalidInput(f"fusion '{method}': at least one weight must be > 0")
    return parts
