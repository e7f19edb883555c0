"""Hardening of the eval tools: work a call may ask for is bounded before any model loads, and calls
name configured models and file databases only."""

from __future__ import annotations

import pytest

from servers.core.errors import AccessDenied, InvalidInput
from servers.eval import api, lm


def test_model_argument_takes_configured_names_only(eval_env) -> None:
    """Defect 8, eval side: `model` was put into models.causal_lm as given (any folder or hub id)."""
    for tool in (api.eval_perplexity, api.eval_answers):
        arguments = {"texts": ["The cat sat."]} if tool is api.eval_perplexity else {
            "items": [{"question": "2+2?", "answers": ["4"]}]}
        with pytest.raises(InvalidInput, match="not a configured causal lm"):
            tool(**arguments, model="/etc", settings=eval_env)


def test_inline_work_is_bounded(eval_env) -> None:
    items = [{"prompt": "2+2?", "answer": str(i)} for i in range(eval_env.eval.inline_items + 1)]
    with pytest.raises(InvalidInput, match="eval.inline_items"):
        api.eval_judge_score(items=items, background=False, settings=eval_env)
    with pytest.raises(InvalidInput, match="probe_requests x max_new_tokens"):
        api.eval_latency(probe_requests=100, max_new_tokens=4096, settings=eval_env)
    with pytest.raises(InvalidInput, match="stride 1 would score every token"):
        lm.check_stride(1024, 1)
    lm.check_stride(1024, 64)


def test_text2sql_evaluation_reads_files_not_servers(eval_env) -> None:
    item = [{"database": "x", "gold": "SELECT 1", "predicted": "SELECT 1"}]
    with pytest.raises(AccessDenied, match="server URLs come from the config"):
        api.eval_text2sql(items=item, databases={"x": "postgresql://reader@10.0.0.1/db"}, settings=eval_env)
    with pytest.raises(InvalidInput, match="text2sql.timeout_s"):
        api.eval_text2sql(items=item, timeout_s=1e9, settings=eval_env)
