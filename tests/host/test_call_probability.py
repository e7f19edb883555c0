"""bench/host.py's call-probability figures: the AUC arithmetic, and P(call) read from the real model:
the shipped tool-calling adapter opens a call for a request its tool answers, the plain base model does not."""

from __future__ import annotations

import importlib.util

import pytest

from host.backends.base import ToolInfo
from servers.core.models import SHIPPED_ADAPTERS
from tests.host.helpers import REPO


def _bench():
    spec = importlib.util.spec_from_file_location("bench_host", REPO / "bench" / "host.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def test_calibrated_threshold_maximises_balanced_accuracy_ties_nearest_half():
    from agent_model.calibrate import balanced_accuracy, best_threshold

    assert balanced_accuracy([0.9, 0.6], [0.5, 0.2], 0.55) == 1.0
    assert balanced_accuracy([0.9, 0.6], [0.5, 0.2], 0.7) == 0.75
    # anything in (0.5, 0.6] separates these: the one nearest 0.5 that does is chosen
    assert best_threshold([0.9, 0.6], [0.5, 0.2]) == 0.51
    # requests that need no call score high: the threshold rises above them
    assert best_threshold([0.95, 0.9, 0.85], [0.7, 0.6, 0.3]) == 0.71
    with pytest.raises(ValueError):
        best_threshold([], [0.3])


def test_an_adapters_calibration_file_sets_the_threshold_and_a_bad_one_is_ignored(tmp_path, caplog):
    from host.backends.local import CALIBRATION_FILE, CALL_THRESHOLD, calibrated_threshold

    assert calibrated_threshold(None) == calibrated_threshold(tmp_path) == CALL_THRESHOLD
    (tmp_path / CALIBRATION_FILE).write_text('{"call_threshold": 0.62}')
    assert calibrated_threshold(tmp_path) == 0.62
    (tmp_path / CALIBRATION_FILE).write_text('{"call_threshold": 1.5}')
    assert calibrated_threshold(tmp_path) == CALL_THRESHOLD and CALIBRATION_FILE in caplog.text


def test_auc_counts_pairs_ordered_right_and_ties_as_half():
    auc = _bench().auc
    assert auc([0.9, 0.8], [0.1, 0.2]) == 1.0
    assert auc([0.1], [0.9]) == 0.0
    assert auc([0.5, 0.9], [0.5]) == 0.75
    assert auc([], [0.3]) is None


def test_answer_turns_are_the_answers_that_follow_a_tool_result():
    """bench/host.py's answer-turn figure reads P(call) where the model should answer from a result:
    a plain answer after a tool message, not a corrected call after an error, nor an answer without a call."""
    bench = _bench()
    call = {"role": "assistant", "content": "", "tool_calls": [{"name": "kb_context", "arguments": {}}]}
    trace = {"messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "q"}, call,
                          {"role": "tool", "content": "error: no knowledge base 'x'"}, call,
                          {"role": "tool", "content": "[1] passage"}, {"role": "assistant", "content": "It is [1]."}]}
    assert bench.answer_turns(trace) == [6]
    plain = {"messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "hi"},
                          {"role": "assistant", "content": "Hello."}]}
    assert bench.answer_turns(plain) == []


@pytest.mark.skipif(not (SHIPPED_ADAPTERS["agent"][0] / "adapter_config.json").is_file(),
                    reason="needs the trained adapter servers/core/adapters/agent-smollm2 (make agent-model)")
def test_p_call_reads_the_models_own_decision(settings):
    from host.backends.local import LocalBackend
    from servers.core.models import causal_lm

    bench = _bench()
    weather = ToolInfo("get_weather", "t", "get_weather", "Current weather for a city.", {
        "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]})
    messages = [{"role": "system", "content": bench.SYSTEM}, {"role": "user", "content": "What is the weather in Paris?"}]
    tuned = bench.p_call(LocalBackend(causal_lm(None, settings, adapter="agent")), messages, [weather])
    plain = bench.p_call(LocalBackend(causal_lm(None, settings, adapter="none")), messages, [weather])
    assert 0.0 <= plain < 0.05 < 0.5 < tuned <= 1.0, (plain, tuned)


@pytest.mark.skipif(not (SHIPPED_ADAPTERS["agent"][0] / "adapter_config.json").is_file(),
                    reason="needs the trained adapter servers/core/adapters/agent-smollm2 (make agent-model)")
def test_auto_calls_when_the_model_more_likely_calls_than_answers(settings):
    """The local backend's default decision in ``auto``: a call when P(call) reaches the adapter's calibrated
    threshold (then a schema-valid call the model writes), else a plain answer with no call tag; ``greedy``
    leaves it to the first token."""
    from host.backends.local import LocalBackend
    from servers.core.models import causal_lm

    bench = _bench()
    weather = ToolInfo("get_weather", "t", "get_weather", "Current weather for a city.", {
        "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]})
    messages = [{"role": "system", "content": bench.SYSTEM}, {"role": "user", "content": "What is the weather in Paris?"}]
    tuned = causal_lm(None, settings, adapter="agent")
    backend = LocalBackend(tuned)
    fed: list[int] = []  # tokens each forward pass reads: the prompt must run once, not once to decide and again to decode
    hook = tuned.model.register_forward_pre_hook(lambda _m, args, kwargs: fed.append(kwargs["input_ids"].shape[1]),
                                                 with_kwargs=True)
    try:
        turn = backend.complete(messages, [weather], max_new_tokens=40)
    finally:
        hook.remove()
    assert turn.prompt_tokens in fed and sum(fed) < turn.prompt_tokens + turn.completion_tokens + 8, fed
    assert turn.p_call is not None and turn.p_call >= backend.call_threshold
    assert [c.name for c in turn.tool_calls] == ["get_weather"] and "paris" in str(turn.tool_calls[0].arguments).lower()
    plain = LocalBackend(causal_lm(None, settings, adapter="none")).complete(messages, [weather], max_new_tokens=24)
    assert plain.p_call is not None and plain.p_call < 0.5
    assert not plain.tool_calls and plain.text and "<tool_call>" not in plain.text
    greedy = LocalBackend(tuned, call_decision="greedy").complete(messages, [weather], max_new_tokens=40)
    assert greedy.p_call is None
    # a request the tool cannot serve: the adapter leans to the call tag as its likeliest first token
    # (P 0.36 for the shipped run 4) but the answer branch is likelier; the answer may not open with the tag
    haiku = [messages[0], {"role": "user", "content": "Write a haiku about autumn."}]
    answer = backend.complete(haiku, [weather], max_new_tokens=24)
    assert answer.p_call is not None and answer.p_call < backend.call_threshold
    assert not answer.tool_calls and answer.text.strip() and "<tool_call>" not in answer.raw


@pytest.mark.skipif(not (SHIPPED_ADAPTERS["agent"][0] / "adapter_config.json").is_file(),
                    reason="needs the trained adapter servers/core/adapters/agent-smollm2 (make agent-model)")
def test_the_backend_decides_on_the_adapters_calibrated_threshold(settings, tmp_path):
    """The threshold comes from the merged adapter's calibration.json (host.call_threshold overrides it):
    the same request, the same P(call), answered in text once the threshold is above it."""
    import dataclasses

    from host.backends.local import CALIBRATION_FILE, LocalBackend
    from servers.core.models import causal_lm

    bench = _bench()
    weather = ToolInfo("get_weather", "t", "get_weather", "Current weather for a city.", {
        "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]})
    messages = [{"role": "system", "content": bench.SYSTEM}, {"role": "user", "content": "What is the weather in Paris?"}]
    tuned = causal_lm(None, settings, adapter="agent")
    assert tuned.adapter is not None and tuned.adapter.name == "agent-smollm2"
    called = LocalBackend(tuned).complete(messages, [weather], max_new_tokens=40)
    assert called.tool_calls and called.p_call is not None and called.p_call < 0.999
    (tmp_path / CALIBRATION_FILE).write_text('{"call_threshold": 0.999}')
    strict = LocalBackend(dataclasses.replace(tuned, adapter=tmp_path))
    assert strict.call_threshold == 0.999
    answered = strict.complete(messages, [weather], max_new_tokens=16)
    assert not answered.tool_calls and answered.p_call == pytest.approx(called.p_call)
    assert LocalBackend(tuned, call_threshold=0.999).call_threshold == 0.999
    assert LocalBackend(dataclasses.replace(tuned, adapter=tmp_path), call_threshold=0.3).call_threshold == 0.3
