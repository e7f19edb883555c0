"""Schema-constrained JSON replies: the local model (xgrammar), an OpenAI-compatible endpoint, any generator."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from servers.core.errors import InvalidInput
from servers.core.generate import EndpointClient, EndpointGenerator, get_generator
from servers.core.settings import Settings
from servers.core.structured import chat_json, parse_reply

SCHEMA = {"type": "object", "properties": {"reasoning": {"type": "string", "maxLength": 30},
                                           "verdict": {"type": "string", "enum": ["A", "B", "tie"]}},
          "required": ["reasoning", "verdict"], "additionalProperties": False}
ASK = [{"role": "user", "content": "Which is right for 2 + 2: A) 4 or B) 5? Answer in JSON."}]


class Fixed:
    name = "fixed"

    def __init__(self, text: str) -> None:
        self.text = text

    def chat(self, messages: list[dict[str, Any]], **kwargs: Any) -> list[str]:
        return [self.text] * kwargs.get("n", 1)


def test_parse_reply_checks_json_and_schema() -> None:
    ok = parse_reply('Sure: {"reasoning": "4 is right", "verdict": "A"} done', SCHEMA, constrained=False)
    assert ok.ok and ok.value == {"reasoning": "4 is right", "verdict": "A"}
    assert "no JSON object" in parse_reply("A", SCHEMA, constrained=False).error
    assert "not valid JSON" in parse_reply('{"verdict": "A"', SCHEMA, constrained=False).error
    bad = parse_reply('{"reasoning": "x", "verdict": "C"}', SCHEMA, constrained=False)
    assert bad.error.startswith("the reply does not match the schema: verdict:")
    replies = chat_json(Fixed('{"reasoning": "r", "verdict": "tie"}'), ASK, SCHEMA, n=2)
    assert [r.value["verdict"] for r in replies] == ["tie", "tie"] and not replies[0].constrained
    with pytest.raises(InvalidInput, match="JSON schema is invalid"):
        chat_json(Fixed("{}"), ASK, {"type": "nonsense"})


@pytest.fixture(scope="module")
def smol(tmp_path_factory: pytest.TempPathFactory) -> Any:
    root = tmp_path_factory.mktemp("structured")
    settings = Settings.model_validate({"data_dir": str(root), "roots": [str(root)],
                                        "models": {"cache_dir": os.environ.get("QUIVER_MODELS__CACHE_DIR")}})
    return get_generator(settings)


def test_local_model_is_constrained_to_the_schema(smol: Any) -> None:
    import torch

    torch.set_num_threads(1)
    verdict_only = {"type": "object", "properties": {"verdict": SCHEMA["properties"]["verdict"]},
                    "required": ["verdict"], "additionalProperties": False}
    replies = chat_json(smol, ASK, SCHEMA, max_new_tokens=48) + chat_json(smol, ASK, verdict_only, max_new_tokens=16,
                                                                         temperature=1.0, n=2, seed=3)
    assert all(r.ok and r.constrained for r in replies), [r.text for r in replies]
    cut = chat_json(smol, ASK, SCHEMA, max_new_tokens=3)[0]
    assert not cut.ok and "cut off after max_new_tokens=3" in cut.error
    huge = [{"role": "user", "content": "word " * 9000}]
    assert "exceeds the model's context" in chat_json(smol, huge, SCHEMA, max_new_tokens=8)[0].error


class Recorder(BaseHTTPRequestHandler):
    payloads: list[dict[str, Any]] = []

    def log_message(self, *args: Any) -> None:
        pass

    def do_POST(self) -> None:  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        Recorder.payloads.append(body)
        reply = {"choices": [{"index": 0, "message": {"content": '{"reasoning": "ok", "verdict": "B"}'}}]}
        data = json.dumps(reply).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture
def endpoint() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()
    server.server_close()


def test_endpoint_gets_the_schema_as_response_format(endpoint: str, tmp_path: Path) -> None:
    gen = EndpointGenerator(EndpointClient(endpoint, model="judge-7b"))
    replies = chat_json(gen, ASK, SCHEMA, n=2, seed=1)
    assert [r.value["verdict"] for r in replies] == ["B", "B"]  # the server ignored n: asked again
    sent = Recorder.payloads[0]
    assert sent["response_format"]["type"] == "json_schema"
    assert sent["response_format"]["json_schema"]["schema"] == SCHEMA and sent["model"] == "judge-7b"
