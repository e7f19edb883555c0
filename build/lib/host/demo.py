"""`quiver demo`: Quiver answering questions about itself with its own servers.

1. Starts the retrieval and text2sql servers (stdio subprocesses) and, if missing, builds the
   demo knowledge base from the project's sample documents (``samples/``); the text2sql
   server builds its demo ``shop`` database on first use.
2. Answers a few questions that need retrieval and one that needs SQL. The model is small
   (the shipped SmolLM2-135M on a CPU), so the demo plays to what it does reliably: the
   offered tools are pre-selected by embedding similarity, the knowledge base and database
   names are pinned by the host, the tool step is ``tool_choice=required`` with
   grammar-constrained decoding, and the answer step reads the retrieved passages and cites
   them. With a GPU or an endpoint configured, the same flow uses that model.
"""

from __future__ import annotations

import argparse
import re
from typing import Any

import anyio

from host.commands import open_session, run_question
from host.config import quiver_servers
from host.connections import Hub
from host.events import ErrorEvent
from host.loop import Agent, AnswerPrompt
from host.render import JsonRenderer, RichRenderer
from host.steps import Observation
from host.tools import ToolView
from servers.core.models import embed
from servers.core.registry import server_names
from servers.core.settings import Settings
from servers.core.shipped import shipped

KB = "quiver_docs"
DATABASE = "shop"
SAMPLES = shipped("samples")
DEMO_TOOLS = {"retrieval": ["kb_context"], "text2sql": ["text_to_sql"]}

QUESTIONS = [
    "Which database does the retrieval server use to store knowledge bases?",
    "How do I make Quiver generate with a vLLM server?",
    "What does the host do when a tool fails?",
    "How many customers are there in the shop database?",
]

TOOL_NOTES = {  # what each tool knows about: shown to the model, and what pre-selection ranks by
    "kb_context": "Quiver documentation: servers, retrieval, Milvus, configuration, models, vLLM, scaling, "
                  "safety, errors, host, tools.",
    "text_to_sql": "Shop sales data: customers, products, orders, prices, counts.",
}
ANSWER_SYSTEM = (
    "Answer the question by copying the one sentence from the passages that answers it, "
    "then the number of its passage in brackets, like [1]."
)
SQL_SYSTEM = "Answer the question in one short sentence from the SQL query and its result."

SYSTEM = (
    "You are Quiver's assistant. Tools: kb_context searches Quiver's documentation and returns numbered "
    "passages; text_to_sql answers questions about the shop database (customers, products, orders). "
    "Answer from the tool results only, in one or two sentences, and cite passages like [1]."
)


def _say(renderer: JsonRenderer | RichRenderer, text: str, style: str = "bold") -> None:
    if isinstance(renderer, RichRenderer):
        renderer.console.print(text, style=style)


async def ensure_knowledge_base(hub: Hub, renderer: JsonRenderer | RichRenderer, rebuild: bool) -> dict[str, Any]:
    """Ingest ``samples/`` into the demo knowledge base when it is missing (or on --rebuild)."""
    listing = await hub.connections["retrieval"].call("kb_list", {})
    kbs = (listing.result.structured_content or {}).get("knowledge_bases", []) if listing.result else []
    present = any(kb.get("name") == KB and (kb.get("documents") or kb.get("chunks")) for kb in kbs)
    if present and not rebuild:
        _say(renderer, f"knowledge base '{KB}' is ready", "dim")
        return {"built": False}
    if rebuild and present:
        await hub.connections["retrieval"].call("kb_drop", {"name": KB})
    _say(renderer, f"building knowledge base '{KB}' from {SAMPLES} ...", "dim")
    out = await hub.connections["retrieval"].call(
        "kb_ingest", {"kb": KB, "paths": [str(SAMPLES)], "create": True}, timeout_s=600
    )
    if out.is_error:
        message = out.error or str(out.result.content[0].text if out.result and out.result.content else "")
        raise RuntimeError(f"could not build the demo knowledge base: {message}")
    report = out.result.structured_content or {}
    _say(renderer, f"ingested {report.get('documents')} documents, {report.get('chunks_added')} chunks "
                   f"in {report.get('timings', {}).get('total', 0):.1f} s", "dim")
    return {"built": True, **report}


def passage_sentences(passages: list[dict[str, Any]], limit: int = 40) -> list[str]:
    """Candidate answers: the sentences of the passages, each ending with its citation ``[n]``."""
    options: list[str] = []
    for n, passage in enumerate(passages, 1):
        for line in str(passage.get("text", "")).splitlines():
            line = line.strip().lstrip("-*> ").strip()
            if not line or line.startswith(("#", "|", "<", "```")):
                continue
            for sentence in re.split(r"(?<=[.!?])\s+", line):
                sentence = sentence.strip()
                if 20 <= len(sentence) <= 300 and sentence[-1:] in ".!?":
                    options.append(f"{sentence} [{n}]")
    return list(dict.fromkeys(options))[:limit]


def demo_answer(question: str, observations: list[Observation]) -> AnswerPrompt | None:
    """The answer step: for retrieval, the model picks the passage sentence that answers the
    question (decoding constrained to those sentences, each with its citation: grounded by
    construction); for SQL, it phrases the query result."""
    for seen in observations:
        name, structured = seen.name, seen.structured
        if name == "kb_context" and isinstance(structured, dict) and structured.get("passages"):
            passages = structured["passages"]
            block = "\n\n".join(f"[{i}] {p.get('text', '').strip()}" for i, p in enumerate(passages, 1))
            messages = [{"role": "system", "content": ANSWER_SYSTEM},
                        {"role": "user", "content": f"Passages:\n{block}\n\nQuestion: {question}"}]
            options = passage_sentences(passages)
            fmt = ({"type": "structural_tag", "format": {"type": "or", "elements": [
                {"type": "const_string", "value": o} for o in options]}} if options else None)
            return AnswerPrompt(messages, fmt)
        if name == "text_to_sql" and isinstance(structured, dict) and not structured.get("sql"):
            why = structured.get("message") or "no valid SQL was found"
            return AnswerPrompt([
                {"role": "system", "content": "Tell the user in one sentence that the database could not answer."},
                {"role": "user", "content": f"Question: {question}\nThe SQL tool failed: {why}"}])
        if name == "text_to_sql" and isinstance(structured, dict) and structured.get("sql"):
            result = structured.get("result") or {}
            rows = (result.get("rows") or [])[:10]
            return AnswerPrompt([
                {"role": "system", "content": SQL_SYSTEM},
                {"role": "user", "content": f"Question: {question}\nSQL: {structured['sql']}\n"
                                            f"Columns: {result.get('columns')}\nRows: {rows}"}])
    return None


def demo_settings(settings: Settings) -> Settings:
    """The demo's run settings: required + constrained tool step, one step, a few tools."""
    host = settings.host
    if str(SAMPLES) not in settings.roots:
        settings.roots = [*settings.roots, str(SAMPLES)]
    host.tool_choice = "required"
    host.max_steps = 1
    host.preselect_tools = 1
    host.max_new_tokens = min(host.max_new_tokens, 96)
    host.observation_chars = min(host.observation_chars, 1500)
    host.tool_timeout_s = max(host.tool_timeout_s, 600.0)  # first text_to_sql loads a model in its server
    return settings


async def _demo(args: argparse.Namespace, settings: Settings, renderer: JsonRenderer | RichRenderer) -> int:
    available = [n for n in DEMO_TOOLS if n in server_names()]
    if "retrieval" not in available:
        renderer.event(ErrorEvent(message="the retrieval server is not installed; the demo needs it"))
        return 1
    specs = quiver_servers(settings, available)
    for spec in specs:
        spec.allow_tools = [*DEMO_TOOLS[spec.name], "kb_list", "kb_drop", "kb_ingest", "sql_list_databases"]
    questions = [q for q in QUESTIONS if "shop" not in q or "text2sql" in available]
    if args.limit:
        questions = questions[: args.limit]
    only = {t for names in DEMO_TOOLS.values() for t in names}
    _say(renderer, "starting the retrieval and text2sql servers and loading the model ...", "dim")
    async with open_session(settings, verbose=getattr(args, "verbose", False), specs=specs) as (hub, backend):
        for message in hub.errors.values():
            renderer.event(ErrorEvent(message=message))
        if "retrieval" in hub.errors:
            return 1
        await ensure_knowledge_base(hub, renderer, getattr(args, "rebuild", False))
        if "text2sql" in hub.connections and "text2sql" not in hub.errors:
            await hub.connections["text2sql"].call("sql_list_databases", {})  # builds the shop database if missing
        if hasattr(backend, "parallel_calls"):
            backend.parallel_calls = False  # one call per turn: a 135M model may not stop listing calls
        _say(renderer, f"model: {backend.name}; tools offered: {', '.join(sorted(only & set(hub.tools)))}", "dim")
        answered = 0
        for question in questions:
            _say(renderer, f"\nQ: {question}", "bold magenta")
            # the host passes the user's question to the retrieval/SQL tools verbatim: the model only picks the tool
            view = ToolView(settings.host.preselect_tools, embed=lambda texts: embed(texts, settings), only=only,
                            notes=TOOL_NOTES, pinned={"kb": KB, "database": DATABASE, "top_k": 3, "question": question},
                            slim=True)
            agent = Agent(hub, backend, settings, system_prompt=SYSTEM, tool_view=view, answer_step=demo_answer,
                          on_token=renderer.token if renderer.streaming else None)
            answer = await run_question(agent, question, renderer)
            answered += bool(answer.strip())
        _say(renderer, f"\n{answered}/{len(questions)} questions answered; transcripts in "
                       f"{settings.data_path / 'transcripts'}", "bold")
    return 0 if answered == len(questions) else 1


def run_demo(args: argparse.Namespace, settings: Settings, renderer: JsonRenderer | RichRenderer) -> int:
    return anyio.run(_demo, args, demo_settings(settings), renderer)
