"""Tool results as the model reads them (observations), and the hook that knows particular result shapes.

:func:`observe` turns a finished call into the text fed back to the model: structured content
as compact JSON, text blocks as they are, placeholders for binary content, errors prefixed
``ERROR:``, cut to a character budget with a note. What it knows about *particular* tools
lives in an :class:`ObservationFormatter`: the default, :class:`CitedPassages`, reads results
that carry a prompt-ready ``context`` block (Quiver's ``kb_context``) and passages or hits with
citations (``kb_context``, ``kb_search``). Another host can pass its own.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import mcp_types as types

from host.backends.base import ToolInfo
from host.connections import CallOutcome
from host.tools import compact_json


class ObservationFormatter(Protocol):
    """Knows the structured results of some tools."""

    def text(self, tool: ToolInfo | None, structured: Any) -> str | None:
        """The observation text for a successful structured result, or None for compact JSON."""
        ...

    def citations(self, tool: ToolInfo | None, structured: Any) -> list[dict[str, Any]]:
        """Sources the answer can cite, found in a successful structured result."""
        ...


class CitedPassages:
    """Results with a prompt-ready ``context`` block read as that block; ``passages`` / ``hits``
    whose items carry a ``citation`` become the answer's citations."""

    def text(self, tool: ToolInfo | None, structured: Any) -> str | None:
        if isinstance(structured, dict) and isinstance(structured.get("context"), str):
            return structured["context"]
        return None

    def citations(self, tool: ToolInfo | None, structured: Any) -> list[dict[str, Any]]:
        if not isinstance(structured, dict):
            return []
        out = []
        for key in ("passages", "hits"):
            for item in structured.get(key) or []:
                if isinstance(item, dict) and isinstance(item.get("citation"), dict):
                    c = item["citation"]
                    out.append({"source": c.get("source"), "title": c.get("title"), "page": c.get("page"),
                                "text": str(item.get("text", ""))[:500]})
            if out:
                break
        return out


@dataclass
class Observed:
    """A call's result as fed back to the model."""

    text: str
    structured: Any = None
    citations: list[dict[str, Any]] = field(default_factory=list)


def _content_text(result: types.CallToolResult) -> str:
    parts = []
    for block in result.content:
        if isinstance(block, types.TextContent):
            parts.append(block.text)
        elif isinstance(block, types.ImageContent):
            parts.append(f"[image {block.mime_type}, {len(block.data) * 3 // 4} bytes, not shown]")
        elif isinstance(block, types.AudioContent):
            parts.append(f"[audio {block.mime_type}, not shown]")
        elif isinstance(block, types.ResourceLink):
            parts.append(f"[resource {block.uri}]")
        elif isinstance(block, types.EmbeddedResource):
            res = block.resource
            parts.append(getattr(res, "text", None) or f"[resource {res.uri}, binary, not shown]")
    return "\n".join(parts)


def observe(outcome: CallOutcome, tool: ToolInfo | None, budget: int, formatter: ObservationFormatter) -> Observed:
    """The observation of one finished call (see the module doc)."""
    notes = "".join(f"[note: {n}]\n" for n in outcome.notes)
    result = outcome.result
    if result is None:
        return Observed(notes + f"ERROR: {outcome.error}")
    structured = result.structured_content
    citations: list[dict[str, Any]] = []
    if structured is not None and not result.is_error:
        body = formatter.text(tool, structured) or compact_json(structured)
        citations = formatter.citations(tool, structured)
    else:
        body = _content_text(result)
        if result.is_error:
            body = "ERROR: " + body.removeprefix("Error executing tool ").strip()
    if len(body) > budget:
        body = body[:budget] + f"\n[truncated: showed {budget} of {len(body)} characters]"
    return Observed(notes + body, structured, citations)
