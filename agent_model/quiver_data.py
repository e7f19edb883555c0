"""Single-turn conversations over Quiver's own tools: a user request, the offered tools (the
relevant ones plus distractors, in random order, as the host's pre-selection offers a few), and
the correct call — or a plain answer when no tool is needed."""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from agent_model import bank
from agent_model.conversation import Builder, Example, tool_dict
from agent_model.split import held_out
from host.connections import ToolInfo
from host.loop import SYSTEM_PROMPT
from host.resources import resources_prompt, with_resources
from host.tools import ToolSelector


@dataclass
class Context:
    """What every generator needs: the tool views, the selector, real slot values, the split."""

    views: dict[str, ToolInfo]  # small-model views of every discovered tool, by name
    selector: ToolSelector | None
    shop: bank.ShopValues
    seed: int
    test_fraction: float
    per_group: int  # records per split unit and variant (a cap; smaller = quicker builds)

    def rng(self, key: str) -> random.Random:
        return random.Random(f"{self.seed}:{key}")

    def split(self, group: str) -> str:
        return "test" if held_out(group, self.test_fraction) else "train"


def system_prompt(kbs: list[str] = (), databases: bool = False, descriptions: dict[str, str] | None = None) -> str:
    """The host's system prompt plus the resources the model may name in its calls, written by the
    host's own function (``host.resources``: what it reads from kb_list / sql_list_databases).
    ``descriptions`` gives the description of a knowledge base listed under another name."""
    described = {**bank.KB_DESCRIPTIONS, **(descriptions or {})}
    block = resources_prompt([(kb, described.get(kb, "")) for kb in kbs],
                             [("shop", bank.SHOP_TABLES)] if databases else [])
    return with_resources(SYSTEM_PROMPT, block)


def ambient_prompt(rng: random.Random, kbs: list[str] = (), *, databases: bool | None = None) -> str:
    """The system prompt as the host writes it where it reaches more than the request needs: the
    knowledge bases ``kbs`` (the ones the call names) plus, half the time, one or two others, and
    the shop database when ``databases`` (None: half the time). What is listed then says nothing
    about which tool is right: the model must read the request (a knowledge base listed does not
    mean "search it"; the database listed does not mean "query it")."""
    listed = list(kbs)
    if rng.random() < 0.5:
        pool = [k for k in bank.KB_DESCRIPTIONS if k not in listed]
        listed += rng.sample(pool, rng.choice((1, 2)))
        rng.shuffle(listed)
    shop = rng.random() < 0.5 if databases is None else databases
    return system_prompt(listed, databases=shop)


def kb_alias(rng: random.Random, kb: str, taken: list[str]) -> str:
    """Half the time another name for knowledge base ``kb`` (listed with ``kb``'s description):
    the name in the call must then be read from the prompt, not recalled from the topic."""
    if rng.random() < 0.5:
        return kb
    return rng.choice([n for n in bank.KB_ALIASES if n not in taken])


OFFERED = (2, 3, 4, 4)  # tools per request; the host's small view offers up to host.small_model_tools (4)


def offer(ctx: Context, rng: random.Random, question: str, targets: list[str], exclude: tuple[str, ...] = (),
          k: int | None = None, also: tuple[str, ...] = ()) -> list[ToolInfo]:
    """The target tools (and the tools in ``also``) plus distractors (half the time the most
    similar ones, as the host's embedding pre-selection picks them; otherwise random), shuffled."""
    targets = [*targets, *(a for a in also if a not in targets)]
    for name in targets:
        if name not in ctx.views:
            raise KeyError(f"tool '{name}' is not offered by any registered server; update agent_model/bank.py")
    want = max(k or rng.choice(OFFERED), len(set(targets)) + 1)
    pool = [t for n, t in ctx.views.items() if n not in targets and n not in exclude]
    n = min(want - len(set(targets)), len(pool))
    if ctx.selector is not None and rng.random() < 0.5:
        distractors = [t for t, _ in ctx.selector.rank(question, pool)[:n]]
    else:
        distractors = rng.sample(pool, n)
    offered = [ctx.views[name] for name in dict.fromkeys(targets)] + distractors
    rng.shuffle(offered)
    return offered


def wrap(rng: random.Random, question: str) -> str:
    """The question with a greeting or thanks around it (or not); tool arguments never carry these."""
    opener = rng.choice(bank.OPENERS)
    if opener.endswith(", ") and question[:1].isupper() and not question[1:2].isupper():
        question = question[0].lower() + question[1:]
    return f"{opener}{question}{rng.choice(bank.CLOSERS)}".strip()


def single(ctx: Context, *, key: str, category: str, group: str, question: str, user: str,
           calls: list[dict[str, Any]] | None, answer: str | None, offered: list[ToolInfo],
           system: str = SYSTEM_PROMPT, split: str | None = None) -> Example:
    b = Builder(system).user(user)
    if calls:
        b.call(calls)
    else:
        b.answer(answer or "")
    return Example(id=f"quiver/{key}", source="quiver", category=category, split=split or ctx.split(group), group=group,
                   question=user, tools=[tool_dict(t) for t in offered], messages=b.messages)


# ---------------------------------------------------------------- knowledge bases

SEARCH_REQUESTS = ("Find passages about {query}.", "Search for documents on {query}.", "Show me what we have on {query}.",
                   "Look up {query}.")


# The knowledge-base and database tools a host connected to both offers together (the demo's set):
# a question about documents goes to kb_context, a search request to kb_search, a question about
# the data to text_to_sql, with the others offered beside them.
MIXED = ("kb_context", "kb_search", "text_to_sql")


def kb_questions(ctx: Context) -> Iterator[Example]:
    """Questions about a knowledge base's topic: kb_context (a question) or kb_search (a search
    request, or a question when kb_context is not offered); the KB named in the system prompt
    (under its own name or another one, beside other KBs and the database) or by the user;
    kb_list when nothing names one."""
    others = [kb for kb in bank.KB_DESCRIPTIONS if kb not in bank.LIVE_KBS]
    for topic in bank.TOPICS:
        group = f"topic:{topic.id}"
        for qi, q in enumerate(topic.questions):
            for variant in range(min(ctx.per_group, 4)):
                key = f"kb/{topic.id}/{qi}/{variant}"
                rng = ctx.rng(key)
                mode = rng.choice(("system", "system", "mention", "search"))
                listed = [topic.kb, *rng.sample([k for k in others if k != topic.kb], rng.choice((0, 1, 2)))]
                kb = kb_alias(rng, topic.kb, listed)
                listed = [kb if name == topic.kb else name for name in listed]
                rng.shuffle(listed)
                descriptions = {kb: bank.KB_DESCRIPTIONS[topic.kb]}
                mixed = rng.random() < 0.35
                if mode == "search":
                    user = rng.choice(SEARCH_REQUESTS).format(query=topic.query)
                    if rng.random() < 0.5:
                        user = f"{user[:-1]} in {kb}."
                        listed = listed if rng.random() < 0.5 else []
                    offered = offer(ctx, rng, user, ["kb_search"], also=MIXED if mixed else ())
                    calls = [{"name": "kb_search", "arguments": {"kb": kb, "query": topic.query}}]
                else:
                    if mode == "mention":
                        user = rng.choice(bank.KB_MENTIONS).format(kb=kb, q=q)
                        listed = []
                    else:
                        user = wrap(rng, q)
                    if mixed:  # both offered: a question goes to kb_context
                        tool = "kb_context"
                        offered = offer(ctx, rng, user, [tool], also=MIXED)
                    else:
                        tool = rng.choice(("kb_context", "kb_context", "kb_search"))
                        offered = offer(ctx, rng, user, [tool], exclude=("kb_context", "kb_search"))
                    args = {"kb": kb, "question": q} if tool == "kb_context" else {"kb": kb, "query": topic.query}
                    calls = [{"name": tool, "arguments": args}]
                system = system_prompt(listed, databases=rng.random() < 0.5, descriptions=descriptions)
                yield single(ctx, key=key, category=f"{calls[0]['name']}", group=group, question=q, user=user,
                             calls=calls, answer=None, offered=offered, system=system)
        # nothing names a knowledge base: find out which exist first
        key = f"kb/{topic.id}/unnamed"
        rng = ctx.rng(key)
        user = wrap(rng, rng.choice(topic.questions))
        offered = offer(ctx, rng, user, ["kb_list", "kb_context"])
        yield single(ctx, key=key, category="kb_list", group=group, question=user, user=user,
                     calls=[{"name": "kb_list", "arguments": {}}], answer=None, offered=offered,
                     system=system_prompt(databases=rng.random() < 0.5))


KB_ADMIN = {
    "kb_list": (("What knowledge bases do I have?", "List my knowledge bases.", "Which knowledge bases exist?",
                 "Show all knowledge bases and their sizes."), lambda rng: {}),
    "kb_create": (("Create a knowledge base called {name}.", "Make a new knowledge base named {name}.",
                   "Set up an empty knowledge base {name} for me."), lambda rng: {"name": "{name}"}),
    "kb_describe": (("How many documents are in the {kb} knowledge base?", "Describe the {kb} knowledge base.",
                     "Which embedding model does {kb} use?"), lambda rng: {"name": "{kb}"}),
    "kb_drop": (("Delete the {kb} knowledge base.", "Drop the knowledge base {kb}, I don't need it anymore.",
                 "Remove {kb} entirely."), lambda rng: {"name": "{kb}"}),
    "list_rerankers": (("Which rerankers are available?", "What reranking methods can I use here?",
                        "Is a cross-encoder reranker available?"), lambda rng: {}),
    "sql_list_databases": (("Which databases can you query?", "List the SQL databases you are connected to.",
                            "What databases are available?"), lambda rng: {}),
}


def _fill(value: Any, slots: dict[str, str]) -> Any:
    if isinstance(value, str):
        return value.format(**slots)
    if isinstance(value, dict):
        return {k: _fill(v, slots) for k, v in value.items()}
    return value


def admin_requests(ctx: Context) -> Iterator[Example]:
    """Management requests whose arguments are names (knowledge bases) or nothing."""
    for tool, (phrasings, args) in KB_ADMIN.items():
        for pi, phrasing in enumerate(phrasings):
            group = f"admin:{tool}:{pi}"
            for variant in range(min(ctx.per_group, 5)):
                key = f"admin/{tool}/{pi}/{variant}"
                rng = ctx.rng(key)
                slots = {"name": rng.choice(bank.NEW_KB_NAMES), "kb": rng.choice(list(bank.KB_DESCRIPTIONS))}
                user = wrap(rng, phrasing.format(**slots))
                offered = offer(ctx, rng, user, [tool])
                listed = [slots["kb"]] if tool in ("kb_describe", "kb_drop") and rng.random() < 0.5 else []
                yield single(ctx, key=key, category=tool, group=group, question=user, user=user,
                             calls=[{"name": tool, "arguments": _fill(args(rng), slots)}], answer=None, offered=offered,
                             system=ambient_prompt(rng, listed))


# ---------------------------------------------------------------- SQL

def shop_slots(ctx: Context, rng: random.Random, slot: str | None) -> dict[str, str]:
    slots: dict[str, str] = {}
    if slot:
        slots[slot] = rng.choice(getattr(ctx.shop, slot))
    if slot == "year":
        slots["next_year"] = str(int(slots["year"]) + 1)
    return slots


def phrasing_splits(ctx: Context, template: bank.ShopTemplate) -> list[str]:
    """The split of each phrasing (by hash); a template keeps its first phrasing in training when
    all would be held out, so every question type is learned and tested with unseen wording."""
    splits = [ctx.split(f"shop:{template.id}:{pi}") for pi in range(len(template.phrasings))]
    if all(s == "test" for s in splits):
        splits[0] = "train"
    return splits


def sql_questions(ctx: Context) -> Iterator[Example]:
    """Shop questions → text_to_sql with the question itself (without greetings or thanks)."""
    for t in bank.SHOP_TEMPLATES:
        splits = phrasing_splits(ctx, t)
        for pi, phrasing in enumerate(t.phrasings):
            group = f"shop:{t.id}:{pi}"
            for variant in range(min(ctx.per_group, 6)):
                key = f"sql/{t.id}/{pi}/{variant}"
                rng = ctx.rng(key)
                q = phrasing.format(**shop_slots(ctx, rng, t.slot))
                user = wrap(rng, q) if rng.random() < 0.7 else f"{q[:-1]} in the shop database{q[-1]}"
                offered = offer(ctx, rng, user, ["text_to_sql"], also=MIXED if rng.random() < 0.35 else ())
                yield single(ctx, key=key, category="text_to_sql", group=group, question=q, user=user,
                             calls=[{"name": "text_to_sql", "arguments": {"question": q}}], answer=None,
                             offered=offered, system=ambient_prompt(rng, databases=rng.random() < 0.7), split=splits[pi])
    # two questions at once: two calls in one turn (the host runs them concurrently)
    for variant in range(min(ctx.per_group, 4) * 4):
        key = f"sql/parallel/{variant}"
        rng = ctx.rng(key)
        a, b = rng.sample(ctx.shop.city, 2)
        q1, q2 = f"How many customers live in {a}?", f"How many customers live in {b}?"
        user = rng.choice(("How many customers live in {a}, and how many in {b}?",
                           "Compare the number of customers in {a} and {b}.")).format(a=a, b=b)
        offered = offer(ctx, rng, user, ["text_to_sql"])
        yield single(ctx, key=key, category="text_to_sql_parallel", group=f"sqlpar:{a}:{b}", question=user, user=user,
                     calls=[{"name": "text_to_sql", "arguments": {"question": q1}},
                            {"name": "text_to_sql", "arguments": {"question": q2}}],
                     answer=None, offered=offered, system=ambient_prompt(rng))


TABLES = ("customers", "products", "orders", "order_items", "order_totals")
SCHEMA_WORDS = ("price", "email", "date", "city", "status", "quantity", "stock", "category")


def sql_tools(ctx: Context) -> Iterator[Example]:
    """The explorer tools: run given SQL, describe a table, search the schema."""
    runs = ("Run this query: {sql}", "Execute on the shop database: {sql}", "What does this SQL return? {sql}")
    for pi, phrasing in enumerate(runs):
        for variant in range(min(ctx.per_group, 6)):
            key = f"sqlexec/{pi}/{variant}"
            rng = ctx.rng(key)
            t = rng.choice(bank.SHOP_TEMPLATES)
            sql = t.sql.format(**shop_slots(ctx, rng, t.slot))
            user = phrasing.format(sql=sql)
            offered = offer(ctx, rng, user, ["sql_execute"])
            yield single(ctx, key=key, category="sql_execute", group=f"sqlexec:{pi}", question=user, user=user,
                         calls=[{"name": "sql_execute", "arguments": {"sql": sql}}], answer=None, offered=offered, system=ambient_prompt(rng))
    rows = ("Show me the first {n} rows of the {table} table.", "Give me {n} example rows from {table}.")
    for pi, phrasing in enumerate(rows):
        for variant in range(min(ctx.per_group, 5)):
            key = f"sqlrows/{pi}/{variant}"
            rng = ctx.rng(key)
            table, n = rng.choice(TABLES), rng.choice((3, 5, 10))
            user = phrasing.format(n=n, table=table)
            offered = offer(ctx, rng, user, ["sql_execute"])
            yield single(ctx, key=key, category="sql_execute", group=f"sqlrows:{pi}", question=user, user=user,
                         calls=[{"name": "sql_execute", "arguments": {"sql": f"SELECT * FROM {table} LIMIT {n}"}}],
                         answer=None, offered=offered, system=ambient_prompt(rng, databases=True))
    describe = ("What columns does the {table} table have?", "Describe the {table} table.",
                "Show me the schema of {table}.", "What is stored in the {table} table?")
    for pi, phrasing in enumerate(describe):
        for variant in range(min(ctx.per_group, 4)):
            key = f"describe/{pi}/{variant}"
            rng = ctx.rng(key)
            table = rng.choice(TABLES)
            user = wrap(rng, phrasing.format(table=table))
            offered = offer(ctx, rng, user, ["sql_describe_table"])
            yield single(ctx, key=key, category="sql_describe_table", group=f"describe:{pi}", question=user, user=user,
                         calls=[{"name": "sql_describe_table", "arguments": {"table": table}}], answer=None,
                         offered=offered, system=ambient_prompt(rng))
    search = ("Which tables have a column about {word}?", "Where in the schema is {word} stored?",
              "Find the columns related to {word}.")
    for pi, phrasing in enumerate(search):
        for variant in range(min(ctx.per_group, 4)):
            key = f"schema/{pi}/{variant}"
            rng = ctx.rng(key)
            word = rng.choice(SCHEMA_WORDS)
            user = phrasing.format(word=word)
            offered = offer(ctx, rng, user, ["sql_search_schema"])
            yield single(ctx, key=key, category="sql_search_schema", group=f"schema:{pi}", question=user, user=user,
                         calls=[{"name": "sql_search_schema", "arguments": {"pattern": word}}], answer=None,
                         offered=offered, system=ambient_prompt(rng))


# ---------------------------------------------------------------- files

def file_requests(ctx: Context) -> Iterator[Example]:
    """Parse a file, a folder, or chunk a file: the path comes from the user's words."""
    parse = ("Summarize {file}.", "What's in {file}?", "Convert {file} to Markdown.", "Read {file} for me.",
             "Extract the text from {file}.", "Open {file} and tell me the main points.")
    for pi, phrasing in enumerate(parse):
        for variant in range(min(ctx.per_group, 5)):
            key = f"parse/{pi}/{variant}"
            rng = ctx.rng(key)
            file = rng.choice(bank.FILES)
            user = wrap(rng, phrasing.format(file=file))
            offered = offer(ctx, rng, user, ["parse_document"])
            yield single(ctx, key=key, category="parse_document", group=f"parse:{pi}", question=user, user=user,
                         calls=[{"name": "parse_document", "arguments": {"path": file}}], answer=None, offered=offered, system=ambient_prompt(rng))
    chunk = (("Split {file} into chunks.", False), ("Chunk {file} for retrieval.", False),
             ("Split {file} into chunks of {n} tokens.", True), ("Cut {file} into {n}-token pieces.", True))
    for pi, (phrasing, sized) in enumerate(chunk):
        for variant in range(min(ctx.per_group, 4)):
            key = f"chunk/{pi}/{variant}"
            rng = ctx.rng(key)
            file, n = rng.choice(bank.FILES), rng.choice((128, 200, 256, 512))
            args: dict[str, Any] = {"path": file, "size": n} if sized else {"path": file}
            user = phrasing.format(file=file, n=n)
            offered = offer(ctx, rng, user, ["chunk"])
            yield single(ctx, key=key, category="chunk", group=f"chunk:{pi}", question=user, user=user,
                         calls=[{"name": "chunk", "arguments": args}], answer=None, offered=offered, system=ambient_prompt(rng))
    folders = (("Parse all the files in the {folder} folder.", {}), ("Read every document under {folder}.", {}),
               ("Parse everything in {folder}, including subfolders.", {"recursive": True}),
               ("Parse all {kind} files in {folder}.", {"pattern": None}))
    for pi, (phrasing, extra) in enumerate(folders):
        for variant in range(min(ctx.per_group, 4)):
            key = f"folder/{pi}/{variant}"
            rng = ctx.rng(key)
            folder = rng.choice(bank.FOLDERS)
            kind, pattern = rng.choice(bank.PATTERNS)
            args = {"folder": folder, **{k: (pattern if v is None else v) for k, v in extra.items()}}
            user = phrasing.format(folder=folder, kind=kind)
            offered = offer(ctx, rng, user, ["parse_files"])
            yield single(ctx, key=key, category="parse_files", group=f"folder:{pi}", question=user, user=user,
                         calls=[{"name": "parse_files", "arguments": args}], answer=None, offered=offered, system=ambient_prompt(rng))


def rerank_requests(ctx: Context) -> Iterator[Example]:
    """Rank passages the user gives for a query (texts from the sample documents' facts)."""
    phrasings = ("Which of these passages best answers '{q}'? {docs}", "Rank these texts by relevance to: {q}\n{docs}")
    facts = [f for f in bank.KB_FACTS]
    for pi, phrasing in enumerate(phrasings):
        for variant in range(min(ctx.per_group, 6)):
            key = f"rerank/{pi}/{variant}"
            rng = ctx.rng(key)
            picked = rng.sample(facts, 3)
            q = picked[0].questions[0]
            texts = [f.answer.replace(" {cite}", "") for f in picked]
            rng.shuffle(texts)
            docs = "\n".join(f"{i}. {t}" for i, t in enumerate(texts, 1))
            user = phrasing.format(q=q, docs=docs)
            offered = offer(ctx, rng, user, ["rerank"], k=rng.choice((2, 3)))
            args = {"query": q, "documents": [{"id": str(i), "text": t} for i, t in enumerate(texts, 1)]}
            yield single(ctx, key=key, category="rerank", group=f"rerank:{pi}", question=user, user=user,
                         calls=[{"name": "rerank", "arguments": args}], answer=None, offered=offered, system=ambient_prompt(rng))


# ---------------------------------------------------------------- no tool

def _arithmetic(rng: random.Random) -> tuple[str, str]:
    a, b = rng.randrange(2, 99), rng.randrange(2, 99)
    op = rng.choice(("plus", "times", "minus"))
    value = a + b if op == "plus" else a * b if op == "times" else a - b
    return rng.choice((f"What is {a} {op} {b}?", f"Quick math: {a} {op} {b}?")), f"{a} {op} {b} is {value}."


def no_tool(ctx: Context) -> Iterator[Example]:
    """Requests that need no tool (general knowledge, small talk, arithmetic, what the assistant
    can do) or that no offered tool can serve: a plain answer, no call."""
    items: list[tuple[str, str, str, str]] = []  # (key, group, question, answer)
    for i, (q, a) in enumerate(bank.GENERAL_QA):
        items.append((f"general/{i}", f"general:{i}", q, a))
    for i, (q, a) in enumerate(bank.SMALL_TALK):
        items.append((f"talk/{i}", f"talk:{i}", q, a))
    for i in range(min(ctx.per_group, 4) * 6):
        q, a = _arithmetic(ctx.rng(f"math/{i}"))
        items.append((f"math/{i}", f"math:{i}", q, a))
    for key, group, q, a in items:
        for variant in range(min(ctx.per_group, 2)):
            rng = ctx.rng(f"{key}/{variant}")
            offered = offer(ctx, rng, q, [])
            yield single(ctx, key=f"notool/{key}/{variant}", category="no_tool", group=group, question=q, user=q,
                         calls=None, answer=a, offered=offered, system=ambient_prompt(rng))
    for i, q in enumerate(bank.UNSUPPORTED):
        for variant in range(min(ctx.per_group, 2)):
            key = f"unsupported/{i}/{variant}"
            rng = ctx.rng(key)
            what = q[0].lower() + q[1:].rstrip(".?!")
            offered = offer(ctx, rng, q, [])
            yield single(ctx, key=key, category="no_tool_unsupported", group=f"unsupported:{i}", question=q, user=q,
                         calls=None, answer=rng.choice(bank.UNSUPPORTED_ANSWERS).format(what=what), offered=offered, system=ambient_prompt(rng))
    capability = ("What can you do?", "What tools do you have?", "How can you help me?")
    for i, q in enumerate(capability):
        for variant in range(min(ctx.per_group, 4)):
            key = f"capability/{i}/{variant}"
            rng = ctx.rng(key)
            offered = offer(ctx, rng, q, [])
            names = [t.name for t in offered]
            answer = ("I can use these tools: " + ", ".join(names[:-1]) + f" and {names[-1]}. "
                      "Ask me a question and I will call the one that fits.")
            yield single(ctx, key=key, category="no_tool_capability", group=f"capability:{i}", question=q, user=q,
                         calls=None, answer=answer, offered=offered, system=ambient_prompt(rng))


GENERATORS = (kb_questions, admin_requests, sql_questions, sql_tools, file_requests, rerank_requests, no_tool)
