"""The host checks a model's arguments against the tool's (compacted) input schema before calling."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from host.backends.base import ToolInfo
from host.tools import validate_arguments
from servers.core.compact_schema import compact_input_schema


class SearchArgs(BaseModel):
    kb: str
    query: str
    top_k: int | None = Field(None, ge=1)
    mode: Literal["dense", "bm25"] | None = None


TOOL = ToolInfo(name="kb_search", server="retrieval", remote_name="kb_search", description="search",
                input_schema=compact_input_schema(SearchArgs.model_json_schema()))


def test_a_null_optional_argument_counts_as_left_out() -> None:
    assert validate_arguments(TOOL, {"kb": "docs", "query": "tides", "top_k": None, "mode": None}) is None
    assert validate_arguments(TOOL, {"kb": "docs", "query": "tides", "top_k": 3, "mode": "bm25"}) is None


def test_wrong_values_and_a_null_required_argument_are_still_refused() -> None:
    wrong = validate_arguments(TOOL, {"kb": "docs", "query": "tides", "top_k": 0, "mode": "fuzzy"})
    assert wrong and "top_k" in wrong and "mode" in wrong
    missing = validate_arguments(TOOL, {"kb": "docs", "query": None})
    assert missing and "query" in missing and "required: kb, query" in missing
