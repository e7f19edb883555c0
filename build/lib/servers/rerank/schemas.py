"""Typed inputs and results of the rerank library (also the MCP tools' schemas)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Scalar = str | int | float | bool


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Document(Strict):
    id: str | None = Field(default=None, description="caller's id; default: the position in the list (0-based) as a string")
    text: str = Field(description="the passage to score against the query")
    metadata: dict[str, Any] = Field(default_factory=dict, description="fields boosts can read (dates, tags, ...)")


class RecencyBoost(Strict):
    """Multiply the score by a decay 0.5 ** (age / half-life) read from a date in metadata."""

    type: Literal["recency"] = "recency"
    field: str = Field(description="metadata key (dots for nested keys) holding an ISO date/datetime or Unix seconds")
    half_life_days: float = Field(gt=0, description="age at which the decaying part of the score halves")
    weight: float = Field(
        default=1.0, ge=0, le=1, description="share of the score that decays: factor = 1 - weight + weight * decay"
    )
    now: str | None = Field(default=None, description="reference date (ISO); default: the current UTC time")


class MatchBoost(Strict):
    """Multiply or add to the score when a metadata field equals (or, for a list field, contains) a value."""

    type: Literal["match"] = "match"
    field: str = Field(description="metadata key (dots for nested keys), e.g. 'tags' or 'author.team'")
    value: Scalar | list[Scalar] = Field(description="value to match; a list matches any of its values")
    multiply: float | None = Field(default=None, gt=0, description="factor on a match, e.g. 1.5 (boost) or 0.5 (demote)")
    add: float | None = Field(default=None, description="amount added on a match (in the method's score units)")

    @model_validator(mode="after")
    def _one_effect(self) -> MatchBoost:
        if (self.multiply is None) == (self.add is None):
            raise ValueError("a match boost needs exactly one of 'multiply' or 'add'")
        return self


Boost = Annotated[RecencyBoost | MatchBoost, Field(discriminator="type")]


class RerankResult(BaseModel):
    id: str
    rank: int = Field(description="1-based position after reranking (and boosts)")
    original_rank: int = Field(description="1-based position in the input list")
    score: float = Field(description="final score: higher is more relevant")
    score_before_boosts: float | None = Field(default=None, description="the model's score, when boosts were applied")
    explanation: list[str] = Field(default_factory=list, description="how the score came about")
    text: str | None = Field(default=None, description="the document text, when return_text was set")
    metadata: dict[str, Any] | None = Field(default=None, description="the document metadata, when return_text was set")


class RerankResponse(BaseModel):
    method: str
    model: str | None
    candidates: int = Field(description="number of documents scored")
    results: list[RerankResult]


class RankedItem(Strict):
    id: str
    score: float | None = Field(default=None, description="the system's score (needed for weighted fusion)")


class FusedItem(BaseModel):
    id: str
    rank: int
    score: float
    ranks: list[int | None] = Field(description="1-based rank in each input ranking (null: absent from it)")


class FuseResponse(BaseModel):
    method: str
    normalization: str | None
    weights: list[float]
    results: list[FusedItem]


class RerankerInfo(BaseModel):
    name: str
    description: str
    model: str | None
    device: str
    available: bool
    reason: str | None = Field(default=None, description="why it is unavailable")
    default: bool


class RerankersResponse(BaseModel):
    default_method: str
    rerankers: list[RerankerInfo]
    fusion_syntax: str
