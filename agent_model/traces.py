"""Multi-turn traces with real observations: call → tool response (the real tool, run in-process
on the demo knowledge bases and the shop database) → a grounded answer that cites; a tool error →
the corrected call; two tools in one turn."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

from agent_model import bank
from agent_model.conversation import Builder, Example, tool_dict
from agent_model.quiver_data import (
    MIXED,
    Context,
    ambient_prompt,
    offer,
    phrasing_splits,
    shop_slots,
    system_prompt,
    wrap,
)
from agent_model.quiver_tools import Observation, World
from host.connections import ToolInfo


def squash(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


@dataclass
class TraceStats:
    """What the traces kept and dropped, and why (written into the dataset statistics)."""

    not_found_answers: int = 0
    sql_runs: int = 0
    sql_matched: int = 0
    sql_mismatched: list[str] = field(default_factory=list)


def _example(ctx: Context, key: str, category: str, group: str, question: str, offered: list[ToolInfo],
             b: Builder, split: str | None = None) -> Example:
    return Example(id=f"trace/{key}", source="trace", category=category, split=split or ctx.split(group), group=group,
                   question=question, tools=[tool_dict(t) for t in offered], messages=b.messages)


def cite_kb(tool: str, obs: Observation, evidence: str) -> str | None:
    """The citation of the passage holding ``evidence``: ``[n]`` for kb_context's numbered
    passages, ``[file name]`` for a kb_search hit; None when the tool did not return it."""
    if obs.is_error or not isinstance(obs.structured, dict):
        return None
    want = squash(evidence)
    if tool == "kb_context":
        # the numbered block is what the model reads; the passage must also have survived truncation
        for n, passage in enumerate(obs.structured.get("passages") or [], 1):
            if want in squash(str(passage.get("text", ""))) and f"[{n}]" in obs.text and want in squash(obs.text):
                return f"[{n}]"
        return None
    for hit in obs.structured.get("hits") or []:
        if want in squash(str(hit.get("text", ""))) and want in squash(obs.text):
            return f"[{PurePosixPath(str((hit.get('citation') or {}).get('source', ''))).name}]"
    return None


async def kb_traces(ctx: Context, world: World, stats: TraceStats) -> AsyncIterator[Example]:
    """A question about the demo documents → kb_context / kb_search → the answer, cited; or an
    honest "not found" when the passages do not hold it."""
    for fact in bank.KB_FACTS:
        group = f"fact:{fact.id}"
        for qi, q in enumerate(fact.questions):
            for variant in range(min(ctx.per_group, 3)):
                key = f"kb/{fact.id}/{qi}/{variant}"
                rng = ctx.rng(key)
                kb = rng.choice(bank.LIVE_KBS)
                named_by_user = rng.random() < 0.3
                user = rng.choice(bank.KB_MENTIONS).format(kb=kb, q=q) if named_by_user else wrap(rng, q)
                if rng.random() < 0.35:  # both KB tools offered (and text_to_sql): a question goes to kb_context
                    tool = "kb_context"
                    offered = offer(ctx, rng, user, [tool], also=MIXED)
                else:
                    tool = "kb_context" if rng.random() < 0.7 else "kb_search"
                    offered = offer(ctx, rng, user, [tool], exclude=("kb_context", "kb_search"))
                args = {"kb": kb, "question": q} if tool == "kb_context" else {"kb": kb, "query": fact.query}
                b = Builder(ambient_prompt(rng, [] if named_by_user else [kb])).user(user)
                (call_id,) = b.call([{"name": tool, "arguments": args}])
                obs = await world.call(tool, args, seed=key)
                b.result(call_id, tool, obs.text)
                cite = cite_kb(tool, obs, fact.evidence)
                if cite is None:
                    stats.not_found_answers += 1
                    b.answer(f"I could not find this in the {kb} knowledge base.")
                else:
                    b.answer(fact.answer.format(cite=cite))
                yield _example(ctx, key, f"{tool}_answer", group, q, offered, b)


async def kb_chain_traces(ctx: Context, world: World, stats: TraceStats) -> AsyncIterator[Example]:
    """No knowledge base named anywhere: kb_list first, then kb_context on the one that fits."""
    for fact in bank.KB_FACTS[:: max(1, 4 - min(ctx.per_group, 3))]:
        key = f"chain/{fact.id}"
        rng = ctx.rng(key)
        q = rng.choice(fact.questions)
        user = wrap(rng, q)
        offered = offer(ctx, rng, user, ["kb_list", "kb_context"], exclude=("kb_search",))
        b = Builder(system_prompt()).user(user)
        (first,) = b.call([{"name": "kb_list", "arguments": {}}])
        b.result(first, "kb_list", (await world.call("kb_list", {}, seed=key)).text)
        args = {"kb": "quiver_docs", "question": q}
        (second,) = b.call([{"name": "kb_context", "arguments": args}])
        obs = await world.call("kb_context", args, seed=key)
        b.result(second, "kb_context", obs.text)
        cite = cite_kb("kb_context", obs, fact.evidence)
        if cite is None:
            stats.not_found_answers += 1
        b.answer(fact.answer.format(cite=cite) if cite else "I could not find this in the quiver_docs knowledge base.")
        yield _example(ctx, key, "kb_list_then_context", f"fact:{fact.id}", q, offered, b)


async def kb_error_traces(ctx: Context, world: World, stats: TraceStats) -> AsyncIterator[Example]:
    """The user names a knowledge base that does not exist: the error lists the real ones and
    the model calls again with the right name."""
    wrong = ("docs", "documentation", "quiver", "manual", "wiki")
    for fact in bank.KB_FACTS[:: max(1, 4 - min(ctx.per_group, 3))]:
        key = f"kberror/{fact.id}"
        rng = ctx.rng(key)
        bad = rng.choice(wrong)
        q = rng.choice(fact.questions)
        user = f"Check the {bad} knowledge base: {q}"
        offered = offer(ctx, rng, user, ["kb_context"], exclude=("kb_search",))
        b = Builder(system_prompt()).user(user)
        (first,) = b.call([{"name": "kb_context", "arguments": {"kb": bad, "question": q}}])
        err = await world.call("kb_context", {"kb": bad, "question": q}, seed=key)
        if not err.is_error:
            raise RuntimeError(f"expected an error for the unknown knowledge base '{bad}', got: {err.text[:200]}")
        b.result(first, "kb_context", err.text)
        kb = "quiver_docs" if bad in ("docs", "documentation", "quiver", "manual") else "team_wiki"
        args = {"kb": kb, "question": q}
        (second,) = b.call([{"name": "kb_context", "arguments": args}])
        obs = await world.call("kb_context", args, seed=key)
        b.result(second, "kb_context", obs.text)
        cite = cite_kb("kb_context", obs, fact.evidence)
        if cite is None:
            stats.not_found_answers += 1
        b.answer(fact.answer.format(cite=cite) if cite else f"I could not find this in the {kb} knowledge base.")
        yield _example(ctx, key, "kb_error_corrected", f"fact:{fact.id}", q, offered, b)


# ---------------------------------------------------------------- SQL

def _value(v: Any) -> str:
    if isinstance(v, float):
        return str(int(v)) if v.is_integer() else f"{v:.2f}".rstrip("0").rstrip(".")
    return str(v)


def _row(row: list[Any]) -> str:
    if len(row) == 1:
        return _value(row[0])
    return f"{_value(row[0])} ({', '.join(_value(v) for v in row[1:])})"


def sql_answer(template: bank.ShopTemplate, slots: dict[str, str], rows: list[list[Any]]) -> str:
    """The answer sentence from the template and the rows the tool returned."""
    if template.kind == "scalar":
        value = rows[0][0] if rows and rows[0] else None
        return template.answer.format(v=_value(value) if value is not None else "no", **slots)
    items = [_row(r) for r in rows]
    listed = items[0] if len(items) == 1 else ", ".join(items[:-1]) + f" and {items[-1]}" if items else "none"
    return template.answer.format(rows=listed, **slots)


def _same_rows(a: list[list[Any]], b: list[list[Any]]) -> bool:
    def norm(rows: list[list[Any]]) -> list[tuple[str, ...]]:
        return sorted(tuple(_value(v) for v in r) for r in rows)

    return norm(a) == norm(b)


@dataclass
class SqlRun:
    template: bank.ShopTemplate
    slots: dict[str, str]
    question: str
    split: str
    group: str
    observation: Observation


async def text_to_sql_runs(ctx: Context, world: World, stats: TraceStats, budget: int) -> list[SqlRun]:
    """Run the real text_to_sql tool (the shipped model writes the SQL) on shop questions and keep
    the runs whose rows equal the gold SQL's rows (both run by the real tools)."""
    kept: list[SqlRun] = []
    jobs = []
    for t in bank.SHOP_TEMPLATES:
        splits = phrasing_splits(ctx, t)
        for pi, phrasing in enumerate(t.phrasings):
            jobs.append((t, pi, phrasing, splits[pi]))
    order = ctx.rng("sqlruns")
    order.shuffle(jobs)
    for t, pi, phrasing, split in jobs[:budget]:
        rng = ctx.rng(f"sqlrun/{t.id}/{pi}")
        slots = shop_slots(ctx, rng, t.slot)
        q = phrasing.format(**slots)
        stats.sql_runs += 1
        obs = await world.call("text_to_sql", {"question": q}, seed=f"sqlrun/{t.id}/{pi}")
        gold = await world.call("sql_execute", {"sql": t.sql.format(**slots)}, seed="gold")
        got = (obs.structured or {}).get("result") or {} if isinstance(obs.structured, dict) else {}
        if not obs.is_error and not gold.is_error and _same_rows(got.get("rows") or [], gold.structured["rows"]):
            stats.sql_matched += 1
            kept.append(SqlRun(t, slots, q, split, f"shop:{t.id}:{pi}", obs))
        else:
            stats.sql_mismatched.append(q)
    return kept


async def sql_traces(ctx: Context, world: World, runs: list[SqlRun]) -> AsyncIterator[Example]:
    """text_to_sql → its real result → the answer sentence with the values it returned."""
    for run in runs:
        key = f"sql/{run.template.id}/{run.group.rsplit(':', 1)[1]}"
        rng = ctx.rng(key)
        user = wrap(rng, run.question)
        offered = offer(ctx, rng, user, ["text_to_sql"], also=MIXED if rng.random() < 0.35 else ())
        b = Builder(ambient_prompt(rng, databases=rng.random() < 0.7)).user(user)
        (call_id,) = b.call([{"name": "text_to_sql", "arguments": {"question": run.question}}])
        b.result(call_id, "text_to_sql", run.observation.text)
        b.answer(sql_answer(run.template, run.slots, run.observation.structured["result"]["rows"]))
        yield _example(ctx, key, "text_to_sql_answer", run.group, run.question, offered, b, split=run.split)


TYPOS = (("FROM customers", "FROM customer"), ("FROM products", "FROM product"), ("JOIN products", "JOIN product"),
         ("FROM order_items", "FROM order_item"), ("FROM orders", "FROM order_list"))


async def sql_error_traces(ctx: Context, world: World) -> AsyncIterator[Example]:
    """The user's SQL names a table that does not exist: the error says which ones do, the model
    runs the corrected query and answers from its rows."""
    templates = [t for t in bank.SHOP_TEMPLATES if any(a in t.sql for a, _ in TYPOS)]
    for i in range(min(ctx.per_group, 4) * 5):
        key = f"sqlerror/{i}"
        rng = ctx.rng(key)
        t = rng.choice(templates)
        slots = shop_slots(ctx, rng, t.slot)
        good = t.sql.format(**slots)
        right, typo = next((a, b) for a, b in TYPOS if a in good)
        bad = good.replace(right, typo, 1)
        user = rng.choice(("Run this on the shop database: {sql}", "Can you execute this query? {sql}")).format(sql=bad)
        offered = offer(ctx, rng, user, ["sql_execute"])
        b = Builder(ambient_prompt(rng, databases=True)).user(user)
        (first,) = b.call([{"name": "sql_execute", "arguments": {"sql": bad}}])
        err = await world.call("sql_execute", {"sql": bad}, seed=key)
        if not err.is_error:
            raise RuntimeError(f"expected an error for {bad!r}, got: {err.text[:200]}")
        b.result(first, "sql_execute", err.text)
        (second,) = b.call([{"name": "sql_execute", "arguments": {"sql": good}}])
        obs = await world.call("sql_execute", {"sql": good}, seed=key)
        b.result(second, "sql_execute", obs.text)
        b.answer(sql_answer(t, slots, obs.structured["rows"]))
        yield _example(ctx, key, "sql_error_corrected", f"sqlerror:{t.id}", user, offered, b)


async def describe_traces(ctx: Context, world: World) -> AsyncIterator[Example]:
    """sql_describe_table → the column list, read from the result."""
    phrasings = ("Which columns does the {table} table have?", "List the columns of {table}.")
    for pi, phrasing in enumerate(phrasings):
        for table in ("customers", "products", "orders", "order_items"):
            key = f"describe/{pi}/{table}"
            rng = ctx.rng(key)
            user = phrasing.format(table=table)
            offered = offer(ctx, rng, user, ["sql_describe_table"])
            b = Builder(ambient_prompt(rng, databases=True)).user(user)
            (call_id,) = b.call([{"name": "sql_describe_table", "arguments": {"table": table}}])
            obs = await world.call("sql_describe_table", {"table": table}, seed=key)
            b.result(call_id, "sql_describe_table", obs.text)
            names = [c["name"] for c in obs.structured["columns"]]
            b.answer(f"The {table} table has the columns {', '.join(names[:-1])} and {names[-1]}.")
            yield _example(ctx, key, "sql_describe_answer", f"describeanswer:{pi}", user, offered, b)


async def parse_traces(ctx: Context, world: World) -> AsyncIterator[Example]:
    """parse_document on a real file → its title, read from the result."""
    phrasings = ("What is the title of {path}?", "Which title does the document {path} have?")
    files = ("docs/configuration.md", "docs/host.md", "docs/safety.md", "docs/scaling.html", "docs/servers.md")
    for pi, phrasing in enumerate(phrasings):
        for path in files:
            key = f"parse/{pi}/{path}"
            rng = ctx.rng(key)
            user = phrasing.format(path=path)
            offered = offer(ctx, rng, user, ["parse_document"])
            b = Builder(ambient_prompt(rng)).user(user)
            (call_id,) = b.call([{"name": "parse_document", "arguments": {"path": path}}])
            obs = await world.call("parse_document", {"path": path}, seed=key)
            b.result(call_id, "parse_document", obs.text)
            b.answer(f"The title of {path} is \"{obs.structured['title']}\".")
            yield _example(ctx, key, "parse_answer", f"parseanswer:{pi}", user, offered, b)


async def parallel_traces(ctx: Context, world: World, runs: list[SqlRun]) -> AsyncIterator[Example]:
    """Two questions for two tools in one request: both calls in one turn, both results, one answer."""
    facts = [f for f in bank.KB_FACTS]
    for i, run in enumerate(runs[: min(ctx.per_group, 3) * 4]):
        key = f"parallel/{i}"
        rng = ctx.rng(key)
        fact = rng.choice(facts)
        q = rng.choice(fact.questions)
        user = f"Two questions. {q} And {run.question[0].lower()}{run.question[1:]}"
        offered = offer(ctx, rng, user, ["kb_context", "text_to_sql"])
        b = Builder(ambient_prompt(rng, ["quiver_docs"], databases=True)).user(user)
        kb_args = {"kb": "quiver_docs", "question": q}
        ids = b.call([{"name": "kb_context", "arguments": kb_args},
                      {"name": "text_to_sql", "arguments": {"question": run.question}}])
        obs = await world.call("kb_context", kb_args, seed=key)
        b.result(ids[0], "kb_context", obs.text)
        b.result(ids[1], "text_to_sql", run.observation.text)
        cite = cite_kb("kb_context", obs, fact.evidence)
        first = fact.answer.format(cite=cite) if cite else "The documentation does not say."
        b.answer(f"{first} {sql_answer(run.template, run.slots, run.observation.structured['result']['rows'])}")
        split = "test" if "test" in (run.split, ctx.split(f"fact:{fact.id}")) else "train"
        yield _example(ctx, key, "kb_and_sql_parallel", f"fact:{fact.id}+{run.group}", user, offered, b, split=split)
