"""What the model may name in its calls: the knowledge bases and SQL databases behind the connected
tools, as a short block for the system prompt (``Knowledge bases: quiver_docs (Quiver's
documentation).`` / ``SQL databases: shop (tables: customers, orders, products).``).

The host reads them once per conversation through the tools themselves (``kb_list``,
``sql_list_databases``) when those are connected; the shipped adapter was trained on prompts
written by :func:`resources_prompt`, so training data and the host use this one function.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from host.connections import Hub

MAX_LISTED = 8  # knowledge bases / databases named; more would crowd a small model's prompt
MAX_TABLES = 8


def resources_prompt(knowledge_bases: Sequence[tuple[str, str]] = (),
                     databases: Sequence[tuple[str, Sequence[str]]] = ()) -> str:
    """The block naming knowledge bases ``(name, description)`` and databases ``(name, tables)``;
    empty when there are none."""
    lines = []
    if knowledge_bases:
        items = [f"{name} ({desc.strip().rstrip('.')})" if desc.strip() else name
                 for name, desc in list(knowledge_bases)[:MAX_LISTED]]
        lines.append("Knowledge bases: " + "; ".join(items) + ".")
    if databases:
        items = []
        for name, tables in list(databases)[:MAX_LISTED]:
            shown = list(tables)[:MAX_TABLES]
            more = ", ..." if len(tables) > MAX_TABLES else ""
            items.append(f"{name} (tables: {', '.join(shown)}{more})" if shown else name)
        lines.append("SQL databases: " + "; ".join(items) + ".")
    return "\n".join(lines)


def with_resources(system_prompt: str, block: str) -> str:
    return f"{system_prompt}\n\n{block}" if block else system_prompt


def _tool_name(hub: Hub, remote: str) -> str | None:
    for name, tool in hub.tools.items():
        if tool.remote_name == remote:
            return name
    return None


async def _structured(hub: Hub, remote: str) -> dict[str, Any] | None:
    name = _tool_name(hub, remote)
    if name is None:
        return None
    outcome = await hub.call(name, {})
    if outcome.is_error or outcome.result is None:
        return None
    data = outcome.result.structured_content
    return data if isinstance(data, dict) else None


async def discover_resources(hub: Hub) -> str:
    """The resources block for the connected tools (reads ``kb_list`` and ``sql_list_databases``)."""
    kbs: list[tuple[str, str]] = []
    listing = await _structured(hub, "kb_list")
    for kb in (listing or {}).get("knowledge_bases") or []:
        if isinstance(kb, dict) and kb.get("name"):
            kbs.append((str(kb["name"]), str(kb.get("description") or "")))
    dbs: list[tuple[str, list[str]]] = []
    catalog = await _structured(hub, "sql_list_databases")
    for db in (catalog or {}).get("databases") or []:
        if isinstance(db, dict) and db.get("name") and not db.get("error"):
            dbs.append((str(db["name"]), [str(t) for t in db.get("table_names") or []]))
    return resources_prompt(kbs, dbs)
