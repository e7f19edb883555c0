"""The demo: sample documents, the answer check, the host's default view for the shipped small model,
and (with the trained adapter) one demo question answered through ``tool_choice=auto`` with a tool
call whose arguments the model wrote."""

from __future__ import annotations

import argparse
import io
import json
import os

import pytest

from host.demo import DEMO_QUESTIONS, DEMO_TOOLS, QUESTIONS, SAMPLES, check_answer, demo_settings, fact_found
from servers.core.models import SHIPPED_ADAPTERS


def test_samples_exist_and_hold_every_expected_fact():
    files = sorted(p.name for p in SAMPLES.iterdir())
    assert {"servers.md", "configuration.md", "scaling.html", "safety.md", "host.md"} <= set(files)
    text = " ".join(p.read_text() for p in SAMPLES.iterdir())
    for q in DEMO_QUESTIONS:
        for fact in q.facts:
            if not any("{" in alt for alt in fact):  # database values are read from the shop at run time
                assert any(alt.lower() in text.lower() for alt in fact), (q.text, fact)
    assert [q.text for q in DEMO_QUESTIONS] == QUESTIONS and len(QUESTIONS) >= 4


def test_facts_are_checked_as_whole_numbers_and_case_insensitive_text():
    assert fact_found("There are 60 customers.", ("60",))
    assert not fact_found("There are 160 customers.", ("60",))
    assert not fact_found("The average is 60.5.", ("60",))
    assert fact_found("It keeps them in milvus lite [1].", ("Milvus",))
    assert not fact_found("It keeps them in PostgreSQL.", ("Milvus",))
    facts, found = check_answer("Milvus [1]; the shop has 60 customers.", (("Milvus",), ("{customers}",)),
                                {"customers": "60"})
    assert facts == ["Milvus", "60"] and found == [True, True]
    assert check_answer("Milvus [1].", (("Milvus",), ("{customers}",)), {"customers": "60"})[1] == [True, False]


def test_the_demo_keeps_the_hosts_defaults_and_the_small_model_gets_the_small_view(settings):
    """No pinning, no forced tool step: auto, and for the shipped 135M model the small tool view."""
    from host.backends.local import LocalBackend
    from host.loop import default_tool_view
    from servers.core.models import causal_lm

    run = demo_settings(settings)
    assert run.host.tool_choice == "auto" and run.host.max_steps >= 2 and str(SAMPLES) in run.roots
    backend = LocalBackend(causal_lm(None, settings, adapter="none"))
    view = default_tool_view(run, backend, only=DEMO_TOOLS)
    assert backend.small_model and view.small and not view.pinned and view.preselect == run.host.small_model_tools
    run.host.tool_view = "full"
    assert not default_tool_view(run, backend).small


@pytest.mark.skipif(not (SHIPPED_ADAPTERS["agent"][0] / "adapter_config.json").is_file(),
                    reason="needs the trained adapter servers/core/adapters/agent-smollm2 (make agent-model); "
                           "the plain SmolLM2-135M never opens a tool call in auto mode")
@pytest.mark.skipif(os.environ.get("QUIVER_GOAL_TESTS") != "1",
                    reason="a goal not reached yet (issue 14); 100 s of a known failure: run it with make test-goals")
@pytest.mark.xfail(strict=False, reason=(
    "issue 14 goal not reached yet: the run-4 adapter (42 CPU minutes, 260k tokens, 401 records) writes the "
    "question as the argument but picks the wrong tool or knowledge base for most demo questions; it needs a "
    "longer (GPU) run on the whole training split. An XPASS here means a retrained adapter meets it: drop this mark."))
def test_the_demo_answers_through_auto_with_arguments_the_model_wrote(settings):
    from host.demo import run_demo
    from host.render import JsonRenderer

    settings.host.max_steps = 2  # a call, then the answer: enough for a model that meets the goal, and cheap
    settings.host.max_new_tokens = 160
    out = io.StringIO()
    code = run_demo(argparse.Namespace(limit=1, rebuild=False, verbose=False), settings, JsonRenderer(out))
    events = [json.loads(line) for line in out.getvalue().splitlines() if line.strip()]
    calls = [e for e in events if e["type"] == "tool_call"]
    assert calls and calls[0]["name"] in {"kb_context", "kb_search"}
    args = calls[0]["arguments"]
    written = str(args.get("question") or args.get("query") or "").lower()
    assert written and any(w in written for w in ("database", "store", "knowledge", "retrieval"))
    assert args.get("kb", "quiver_docs") == "quiver_docs"  # the name from the system prompt, not pinned
    answer = next(e for e in events if e["type"] == "answer")
    assert "milvus" in answer["text"].lower() and code == 0
