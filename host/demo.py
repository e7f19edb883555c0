"""`quiver demo`: Quiver answering questions about itself with its own servers, and checking the answers.

1. Starts the retrieval and text2sql servers (stdio subprocesses) and, if missing, builds the
   demo knowledge base ``quiver_docs`` from the project's sample documents (``samples/``); the
   text2sql server builds its demo ``shop`` database on first use.
2. Asks each question through the ordinary agent loop: ``tool_choice=auto``, the model chooses
   among the offered tools and writes the arguments itself (the search question, the SQL
   question), reads the results and writes the answer. Nothing is pinned or routed by the demo:
   no argument is filled in by the host, no answer is picked for the model, no tool is chosen by
   embeddings for a question. The agent is offered the same four tools for every question
   (``DEMO_TOOLS``: two for the knowledge base, two for the database); one question needs two.
   What the host itself still does for a small local model (its defaults, the same in ``quiver
   ask``/``chat``): it merges the shipped tool-calling adapter (``models.adapter = "agent"``);
   ``host.tool_view = "auto"`` shows a model under 1B parameters the small tool view (required
   arguments only, at most ``host.small_model_tools`` = 4 tools, the view the adapter was trained
   on); with more connected tools than that (or than ``host.preselect_tools`` for a larger model)
   its ToolSelector pre-selects the ones closest to the question by MiniLM similarity (here the
   four fit, so none is dropped); and it names the knowledge bases and databases it reaches
   (``kb_list``, ``sql_list_databases``) in the system prompt (``host.describe_resources``).
3. Checks every answer for its expected facts (text read from the sample documents, or a value
   the shop database returns) and reports how many answers contain them.
"""

from __future__ import annotations

import argparse
import re
from dataclasses import dataclass, field
from typing import Any

import anyio

from host.backends import ChatBackend
from host.commands import open_session, run_question
from host.config import quiver_servers
from host.connections import Hub
from host.events import AnyEvent, ErrorEvent
from host.loop import Agent, default_tool_view
from host.render import JsonRenderer, RichRenderer
from servers.core.registry import server_names
from servers.core.settings import Settings
from servers.core.shipped import shipped

KB = "quiver_docs"
KB_DESCRIPTION = "Quiver's documentation"
SAMPLES = shipped("samples")
DEMO_SERVERS = ("retrieval", "text2sql")
# Tools that change stored data: the demo's agent is not offered them (the demo builds its data itself).
WRITE_TOOLS = ["kb_create", "kb_drop", "kb_ingest", "kb_delete", "sql_add_example", "sql_remove_example"]
# The tools the demo's agent is offered for every question: it chooses among them and writes the arguments.
DEMO_TOOLS = {"kb_context", "kb_search", "text_to_sql", "sql_execute"}
COUNT_SQL = {"customers": "SELECT COUNT(*) FROM customers"}


@dataclass(frozen=True)
class DemoQuestion:
    """A question and the facts a right answer contains: each fact is a tuple of alternatives
    (any one must appear, case-insensitive; ``{customers}`` is read from the shop database)."""

    text: str
    facts: tuple[tuple[str, ...], ...]
    needs: tuple[str, ...] = field(default=())  # the kinds of tool a right answer needs (reported)


DEMO_QUESTIONS = (
    DemoQuestion("Which database does the retrieval server use to store knowledge bases?", (("Milvus",),),
                 ("knowledge base",)),
    DemoQuestion("How do I make Quiver generate with a vLLM server?", (("endpoint",),), ("knowledge base",)),
    DemoQuestion("What does the host do when a tool fails?",
                 (("error result", "observation", "retried", "retries", "what went wrong", "correct itself"),),
                 ("knowledge base",)),
    DemoQuestion("How many customers are there in the shop database?", (("{customers}",),), ("sql",)),
    DemoQuestion("Where does the retrieval server store knowledge bases, and how many customers does the shop have?",
                 (("Milvus",), ("{customers}",)), ("knowledge base", "sql")),
)
QUESTIONS = [q.text for q in DEMO_QUESTIONS]  # kept out of the agent model's training data (agent_model/)


@dataclass
class DemoResult:
    question: str
    answer: str
    facts: list[str]  # the facts checked, placeholders filled
    found: list[bool]
    tools: list[dict[str, Any]] = field(default_factory=list)  # the calls the model made: name, arguments
    steps: int = 0

    @property
    def ok(self) -> bool:
        return bool(self.found) and all(self.found)


def fact_found(answer: str, alternatives: tuple[str, ...]) -> bool:
    """Whether ``answer`` contains one of ``alternatives``: numbers as whole numbers (``60`` is
    not found in ``160`` or ``60.5``), text case-insensitively."""
    for alt in alternatives:
        if re.fullmatch(r"\d+", alt):
            if re.search(rf"(?<![\d.,]){alt}(?![\d]|[.,]\d)", answer):
                return True
        elif alt.lower() in answer.lower():
            return True
    return False


def check_answer(answer: str, facts: tuple[tuple[str, ...], ...], values: dict[str, str]) -> tuple[list[str], list[bool]]:
    """The facts with their values filled in, and for each whether ``answer`` contains it."""
    filled = [tuple(alt.format(**values) for alt in fact) for fact in facts]
    return [" | ".join(f) for f in filled], [fact_found(answer, f) for f in filled]


def _say(renderer: JsonRenderer | RichRenderer, text: str, style: str = "bold") -> None:
    if isinstance(renderer, RichRenderer):
        renderer.console.print(text, style=style)


async def ensure_knowledge_base(hub: Hub, renderer: JsonRenderer | RichRenderer, rebuild: bool) -> dict[str, Any]:
    """Create (with its description) and ingest ``samples/`` into the demo knowledge base when it is
    missing (or on --rebuild)."""
    retrieval = hub.connections["retrieval"]
    listing = await retrieval.call("kb_list", {})
    kbs = (listing.result.structured_content or {}).get("knowledge_bases", []) if listing.result else []
    present = any(kb.get("name") == KB and (kb.get("documents") or kb.get("chunks")) for kb in kbs)
    if present and not rebuild:
        _say(renderer, f"knowledge base '{KB}' is ready", "dim")
        return {"built": False}
    if any(kb.get("name") == KB for kb in kbs):
        await retrieval.call("kb_drop", {"name": KB})
    _say(renderer, f"building knowledge base '{KB}' from {SAMPLES} ...", "dim")
    await retrieval.call("kb_create", {"name": KB, "description": KB_DESCRIPTION, "exist_ok": True})
    out = await retrieval.call("kb_ingest", {"kb": KB, "paths": [str(SAMPLES)], "create": True}, timeout_s=600)
    if out.is_error:
        message = out.error or str(out.result.content[0].text if out.result and out.result.content else "")
        raise RuntimeError(f"could not build the demo knowledge base: {message}")
    report = out.result.structured_content or {}
    _say(renderer, f"ingested {report.get('documents')} documents, {report.get('chunks_added')} chunks "
                   f"in {report.get('timings', {}).get('total', 0):.1f} s", "dim")
    return {"built": True, **report}


async def fact_values(hub: Hub) -> dict[str, str]:
    """Values the answers are checked against, read from the shop database (not written down)."""
    values: dict[str, str] = {}
    conn = hub.connections.get("text2sql")
    if conn is None:
        return values
    for key, sql in COUNT_SQL.items():
        out = await conn.call("sql_execute", {"sql": sql})
        rows = (out.result.structured_content or {}).get("rows") if out.result and not out.is_error else None
        if rows:
            values[key] = str(rows[0][0])
    return values


def demo_settings(settings: Settings) -> Settings:
    """The demo's run settings: the host's defaults, with room for a first model load in a server."""
    host = settings.host
    if str(SAMPLES) not in settings.roots:
        settings.roots = [*settings.roots, str(SAMPLES)]
    host.max_steps = min(host.max_steps, 4)
    host.tool_timeout_s = max(host.tool_timeout_s, 600.0)  # the first text_to_sql loads a model in its server
    return settings


class _Collect:
    """Forwards events to the renderer and keeps the calls made."""

    def __init__(self, renderer: JsonRenderer | RichRenderer) -> None:
        self.renderer = renderer
        self.streaming = renderer.streaming
        self.calls: list[dict[str, Any]] = []
        self.steps = 0

    def token(self, piece: str) -> None:
        self.renderer.token(piece)

    def event(self, event: AnyEvent) -> None:
        if event.type == "tool_call":
            self.calls.append({"name": event.name, "arguments": event.arguments})  # type: ignore[union-attr]
        if event.type == "answer":
            self.steps = event.step  # type: ignore[union-attr]
        self.renderer.event(event)


async def ask_questions(hub: Hub, backend: ChatBackend, settings: Settings, questions: list[DemoQuestion],
                        renderer: JsonRenderer | RichRenderer) -> list[DemoResult]:
    """Ask each question with a fresh agent (the host's defaults) and check its answer's facts."""
    values = await fact_values(hub)
    results = []
    for q in questions:
        _say(renderer, f"\nQ: {q.text}", "bold magenta")
        collect = _Collect(renderer)
        agent = Agent(hub, backend, settings, tool_view=default_tool_view(settings, backend, only=DEMO_TOOLS),
                      on_token=renderer.token if renderer.streaming else None)
        answer = await run_question(agent, q.text, collect)  # type: ignore[arg-type]
        facts, found = check_answer(answer, q.facts, values)
        results.append(DemoResult(q.text, answer, facts, found, collect.calls, collect.steps))
        verdict = "all expected facts found" if all(found) else "missing: " + "; ".join(
            f for f, ok in zip(facts, found, strict=True) if not ok)
        _say(renderer, f"facts: {verdict}", "green" if all(found) else "red")
    return results


async def _demo(args: argparse.Namespace, settings: Settings, renderer: JsonRenderer | RichRenderer) -> int:
    available = [n for n in DEMO_SERVERS if n in server_names()]
    if "retrieval" not in available:
        renderer.event(ErrorEvent(message="the retrieval server is not installed; the demo needs it"))
        return 1
    specs = quiver_servers(settings, available)
    for spec in specs:
        spec.deny_tools = [*spec.deny_tools, *WRITE_TOOLS]
    questions = [q for q in DEMO_QUESTIONS if "sql" not in q.needs or "text2sql" in available]
    if args.limit:
        questions = questions[: args.limit]
    _say(renderer, "starting the retrieval and text2sql servers and loading the model ...", "dim")
    async with open_session(settings, verbose=getattr(args, "verbose", False), specs=specs) as (hub, backend):
        for message in hub.errors.values():
            renderer.event(ErrorEvent(message=message))
        if "retrieval" in hub.errors:
            return 1
        await ensure_knowledge_base(hub, renderer, getattr(args, "rebuild", False))
        _say(renderer, f"model: {backend.name}; {len(hub.tools)} tools connected", "dim")
        results = await ask_questions(hub, backend, settings, questions, renderer)
        found = sum(r.ok for r in results)
        _say(renderer, f"\n{found}/{len(results)} answers contain their expected facts; transcripts in "
                       f"{settings.data_path / 'transcripts'}", "bold")
    return 0 if found == len(results) else 1


def run_demo(args: argparse.Namespace, settings: Settings, renderer: JsonRenderer | RichRenderer) -> int:
    return anyio.run(_demo, args, demo_settings(settings), renderer)
