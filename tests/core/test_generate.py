"""Generation: the local causal LM (tiny random Llama, the shipped SmolLM2) and an OpenAI-compatible endpoint."""

from __future__ import annotations

import json
import os
import shutil
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import torch

from servers.core import generate, models
from servers.core.errors import InvalidInput
from servers.core.generate import (
    EndpointClient,
    EndpointError,
    EndpointGenerator,
    Generator,
    LocalGenerator,
    get_generator,
)
from servers.core.settings import Settings
from tests.core.helpers import make_settings as core_settings

MINILM = models.resolve("minilm", "embedder").path
QUESTION = [{"role": "user", "content": "What is the capital of France? Answer in one sentence."}]


def make_settings(tmp_path: Path, **model_keys: Any) -> Settings:
    model_keys.setdefault("cache_dir", os.environ.get("QUIVER_MODELS__CACHE_DIR"))  # shared dequantized SmolLM2
    return core_settings(tmp_path, **model_keys)



pytestmark = pytest.mark.usefixtures("one_torch_thread")

# ------------------------------------------------------------------ local: tiny random Llama

@pytest.fixture(scope="module")
def tiny_llama(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    folder = tmp_path_factory.mktemp("tiny-llama")
    for name in ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json"):
        shutil.copy(MINILM / name, folder / name)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    tokenizer.eos_token = "[SEP]"
    tokenizer.save_pretrained(folder)
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
    )
    LlamaForCausalLM(config).save_pretrained(folder)
    return folder


def test_tiny_llama_loads_through_the_registry(tiny_llama: Path, tmp_path: Path) -> None:
    models.clear_cache()
    lm = models.causal_lm(str(tiny_llama), make_settings(tmp_path))
    assert lm.source == tiny_llama and lm.device == "cpu" and lm.dtype is torch.float32
    assert not lm.model.training
    assert "<|im_start|>" in lm.tokenizer.chat_template  # a template was supplied where the folder had none
    gen = LocalGenerator(lm)
    [text] = gen.chat(QUESTION, max_new_tokens=5)
    assert 0 < len(text.split()) <= 5  # only the new tokens (one word piece each at most), no prompt echo
    assert "capital of france" not in text.lower()
    samples = gen.chat(QUESTION, max_new_tokens=6, temperature=1.0, n=3, seed=7)
    assert len(samples) == 3
    assert samples == gen.chat(QUESTION, max_new_tokens=6, temperature=1.0, n=3, seed=7)  # seeded


def test_bad_generation_arguments(tiny_llama: Path, tmp_path: Path) -> None:
    gen = LocalGenerator(models.causal_lm(str(tiny_llama), make_settings(tmp_path)))
    with pytest.raises(InvalidInput, match="messages"):
        gen.chat([])
    with pytest.raises(InvalidInput, match="n must be"):
        gen.chat(QUESTION, n=0)
    with pytest.raises(InvalidInput, match="temperature"):
        gen.chat(QUESTION, temperature=-1)


def test_prompt_past_the_context_and_unexpressible_grammar(tiny_llama: Path, tmp_path: Path) -> None:
    """Hardening: a prompt longer than the model's context is refused before any forward pass (a huge
    question used to reach the model whole), and a grammar that allows no token of the vocabulary ends
    the sample instead of crashing the sampler (found by the fuzzer: NaN probabilities)."""
    from servers.core.decoding import decoder_for
    from servers.core.errors import TooLarge

    models.clear_cache()
    decoder = decoder_for(models.causal_lm(str(tiny_llama), make_settings(tmp_path)))
    with pytest.raises(TooLarge, match="context of 256 tokens"):
        decoder.decode("word " * 300, max_new_tokens=4)
    with pytest.raises(TooLarge, match="context"):
        decoder.decode("x" * 10_000_000, max_new_tokens=4)  # refused before tokenizing 10 MB
    grammar = decoder.compile_json_schema({"type": "object", "properties": {"v": {"const": "ÄÖ 🎉"}}, "required": ["v"]})
    for temperature in (0.0, 0.7):
        out = decoder.decode("hi", grammar=grammar, max_new_tokens=20, temperature=temperature, seed=1)
        assert len(out.texts) == 1


def test_banned_first_token_and_continuation_probability(tiny_llama: Path, tmp_path: Path) -> None:
    """``ban_first`` keeps the first token off the banned ids (and only the first); the probability of a
    continuation is the product of its teacher-forced token probabilities, and agrees with greedy decoding."""
    from servers.core.decoding import decoder_for

    models.clear_cache()
    decoder = decoder_for(models.causal_lm(str(tiny_llama), make_settings(tmp_path)))
    tok = decoder.tokenizer
    greedy = decoder.decode("the cat", max_new_tokens=3)
    first = tok(greedy.texts[0], add_special_tokens=False)["input_ids"][0]
    banned = decoder.decode("the cat", max_new_tokens=3, ban_first=[first])
    assert tok(banned.texts[0], add_special_tokens=False)["input_ids"][0] != first
    p_greedy = decoder.continuation_probability("the cat", tok.decode([first]))
    second = tok(banned.texts[0], add_special_tokens=False)["input_ids"][0]
    p_other = decoder.continuation_probability("the cat", tok.decode([second]))
    assert 0.0 < p_other <= p_greedy <= 1.0
    with pytest.raises(InvalidInput, match="non-empty continuation"):
        decoder.continuation_probability("the cat", "")


def test_a_prefilled_prompt_scores_a_continuation_and_decodes_on_from_its_cache(tiny_llama: Path, tmp_path: Path) -> None:
    """The host's decision pass: the prompt runs once (``prefill``), a continuation is scored on its cache
    (the same probability as the stateless pass; the cache is cut back to the prompt), and decoding
    continues from it with the same output as a fresh decode, free or grammar-constrained; it serves once."""
    from servers.core.decoding import decoder_for

    models.clear_cache()
    decoder = decoder_for(models.causal_lm(str(tiny_llama), make_settings(tmp_path)))
    prompt, tail = "the cat sat on", " the mat and the"
    pre = decoder.prefill(prompt)
    assert decoder.continuation_probability(pre, tail) == pytest.approx(
        decoder.continuation_probability(prompt, tail), rel=1e-4)
    assert pre.cache.get_seq_length() == len(pre.ids) and not pre.used
    assert decoder.decode(prompt, max_new_tokens=6, prefilled=pre).texts == decoder.decode(prompt, max_new_tokens=6).texts
    assert pre.used
    with pytest.raises(InvalidInput, match="once"):
        decoder.decode(prompt, max_new_tokens=2, prefilled=pre)
    with pytest.raises(InvalidInput, match="once"):
        decoder.decode("another prompt", max_new_tokens=2, prefilled=decoder.prefill(prompt))
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}
    fresh = decoder.decode(prompt, grammar=decoder.compile_json_schema(schema), max_new_tokens=12, stop_when_complete=True)
    pre = decoder.prefill(prompt)
    decoder.continuation_probability(pre, tail)
    cached = decoder.decode(prompt, grammar=decoder.compile_json_schema(schema), max_new_tokens=12,
                            stop_when_complete=True, prefilled=pre)
    assert cached.texts == fresh.texts and cached.texts[0].startswith("{")


def test_truncate_at_stop() -> None:
    assert generate.truncate_at_stop("a. b\nc", [".", "\n"]) == "a"
    assert generate.truncate_at_stop("abc", ["x", ""]) == "abc"
    assert generate.truncate_at_stop("abc", None) == "abc"


# ------------------------------------------------------------------ local: the shipped SmolLM2

@pytest.fixture(scope="module")
def smol(tmp_path_factory: pytest.TempPathFactory) -> Generator:
    settings = make_settings(tmp_path_factory.mktemp("smol"))
    gen = get_generator(settings)
    assert get_generator(settings) is gen
    return gen


def test_default_generator_is_local_smollm2(smol: Generator) -> None:
    assert isinstance(smol, LocalGenerator) and smol.name == "smollm2"


def test_smollm2_greedy_is_deterministic_and_answers(smol: Generator) -> None:
    first = smol.chat(QUESTION, max_new_tokens=24)
    assert first == smol.chat(QUESTION, max_new_tokens=24)
    assert "Paris" in first[0]
    assert "<|im_end|>" not in first[0] and "assistant" not in first[0]
    assert smol.chat(QUESTION, max_new_tokens=24, n=2) == first * 2


def test_smollm2_stop_strings_truncate(smol: Generator) -> None:
    [full] = smol.chat(QUESTION, max_new_tokens=24)
    stop = "Paris"
    [cut] = smol.chat(QUESTION, max_new_tokens=24, stop=[stop, "zzzz-never"])
    assert cut == full[: full.index(stop)]
    assert stop not in cut


def test_smollm2_sampling_n_and_seed(smol: Generator) -> None:
    samples = smol.chat(QUESTION, max_new_tokens=12, temperature=1.0, n=3, seed=123)
    assert len(samples) == 3 and all(isinstance(s, str) for s in samples)
    assert samples == smol.chat(QUESTION, max_new_tokens=12, temperature=1.0, n=3, seed=123)


# ------------------------------------------------------------------ endpoint (a local test double of a remote server)

class FakeOpenAI(BaseHTTPRequestHandler):
    requests: list[dict[str, Any]] = []
    fail_with: int | None = None
    max_choices: int | None = None

    def log_message(self, *args: Any) -> None:  # keep test output clean
        pass

    def _send(self, status: int, body: Any) -> None:
        data = json.dumps(body).encode() if not isinstance(body, bytes) else body
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        if self.path == "/v1/models":
            self._send(200, {"object": "list", "data": [{"id": "served-model", "object": "model"}]})
        else:
            self._send(404, {"error": "not found"})

    def do_POST(self) -> None:
        payload = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        FakeOpenAI.requests.append({"path": self.path, "auth": self.headers.get("Authorization"), "json": payload})
        if FakeOpenAI.fail_with:
            self._send(FakeOpenAI.fail_with, b'{"error": {"message": "model exploded"}}')
            return
        n = payload.get("n", 1)
        if FakeOpenAI.max_choices:
            n = min(n, FakeOpenAI.max_choices)
        # returned out of order on purpose: the client sorts by index
        choices = [
            {"index": i, "message": {"role": "assistant", "content": f"answer {i} STOP tail"}, "finish_reason": "stop"}
            for i in reversed(range(n))
        ]
        self._send(200, {"id": "x", "object": "chat.completion", "model": payload["model"], "choices": choices})


@pytest.fixture
def endpoint() -> Iterator[str]:
    FakeOpenAI.requests = []
    FakeOpenAI.fail_with = None
    FakeOpenAI.max_choices = None
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeOpenAI)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_endpoint_payload_and_parsing(endpoint: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QUIVER_TEST_KEY", "sk-test")
    settings = make_settings(tmp_path, endpoint=endpoint, endpoint_model="my-model", endpoint_api_key_env="QUIVER_TEST_KEY")
    gen = get_generator(settings)
    assert isinstance(gen, EndpointGenerator) and gen.name == "my-model"
    assert get_generator(settings) is gen
    out = gen.chat(QUESTION, max_new_tokens=17, temperature=0.7, n=3, stop=["STOP"], seed=5)
    assert out == ["answer 0 ", "answer 1 ", "answer 2 "]
    [req] = FakeOpenAI.requests
    assert req["path"] == "/v1/chat/completions" and req["auth"] == "Bearer sk-test"
    assert req["json"] == {
        "model": "my-model", "messages": QUESTION, "max_tokens": 17, "temperature": 0.7,
        "n": 3, "stop": ["STOP"], "seed": 5,
    }


def test_endpoint_discovers_model_and_tops_up_choices(endpoint: str) -> None:
    FakeOpenAI.max_choices = 1  # like Ollama, which ignores n
    gen = EndpointGenerator(EndpointClient(endpoint + "/v1/"))  # a base URL with /v1 works too
    out = gen.chat(QUESTION, n=2)
    assert len(out) == 2 and gen.name == "served-model"
    assert [r["json"]["n"] for r in FakeOpenAI.requests] == [2, 1]
    assert all(r["auth"] is None and "seed" not in r["json"] and "stop" not in r["json"] for r in FakeOpenAI.requests)


def test_endpoint_http_error_is_clear(endpoint: str) -> None:
    FakeOpenAI.fail_with = 500
    gen = EndpointGenerator(EndpointClient(endpoint, model="m"))
    with pytest.raises(EndpointError) as info:
        gen.chat(QUESTION)
    message = str(info.value)
    assert f"{endpoint}/v1/chat/completions" in message and "HTTP 500" in message and "model exploded" in message


def test_endpoint_unreachable_is_clear() -> None:
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    gen = EndpointGenerator(EndpointClient(f"http://127.0.0.1:{port}", model="m", timeout_s=5))
    with pytest.raises(EndpointError, match=rf"cannot reach .*127\.0\.0\.1:{port}.*models\.endpoint"):
        gen.chat(QUESTION)
