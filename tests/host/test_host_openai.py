"""The OpenAI-compatible backend against a local fake chat-completions server (a test double
of a remote vLLM/Ollama), driving real stdio tools."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from host.backends.openai_compat import OpenAIBackend
from host.connections import Hub
from host.loop import Agent
from servers.core.endpoint import EndpointClient, EndpointError
from tests.host.helpers import tool_server

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend():
    return "asyncio"


def _chunk(delta: dict | None = None, usage: dict | None = None, finish: str | None = None) -> bytes:
    body: dict = {"id": "c1", "object": "chat.completion.chunk", "model": "fake-model",
                  "choices": [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": finish}]}
    if usage:
        body["usage"] = usage
    return b"data: " + json.dumps(body).encode() + b"\n\n"


TOOL_TURN = [
    _chunk({"role": "assistant", "content": None}),
    _chunk({"tool_calls": [{"index": 0, "id": "call_abc", "type": "function",
                            "function": {"name": "get_weather", "arguments": ""}}]}),
    _chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"ci'}}]}),
    _chunk({"tool_calls": [{"index": 1, "id": "call_def", "type": "function",
                            "function": {"name": "add", "arguments": '{"a": 2, '}}]}),
    _chunk({"tool_calls": [{"index": 0, "function": {"arguments": 'ty": "Oslo"}'}}]}),
    _chunk({"tool_calls": [{"index": 1, "function": {"arguments": '"b": 3}'}}]}, finish="tool_calls"),
    _chunk(usage={"prompt_tokens": 120, "completion_tokens": 30, "total_tokens": 150}),
    b"data: [DONE]\n\n",
]
ANSWER_TURN = [
    _chunk({"role": "assistant", "content": "It is "}),
    _chunk({"content": "snowing in Oslo; 2+3=5."}, finish="stop"),
    _chunk(usage={"prompt_tokens": 200, "completion_tokens": 9, "total_tokens": 209}),
    b"data: [DONE]\n\n",
]


@pytest.fixture
def fake_endpoint():
    requests: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):  # quiet
            pass

        def do_GET(self):
            body = json.dumps({"object": "list", "data": [{"id": "fake-model", "object": "model"}]}).encode()
            self.send_response(200 if self.path == "/v1/models" else 404)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self):
            payload = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            requests.append({"path": self.path, "auth": self.headers.get("Authorization"), **payload})
            if payload.get("model") != "fake-model":
                self.send_response(400)
                self.end_headers()
                self.wfile.write(b'{"error": "unknown model"}')
                return
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.end_headers()
            for piece in TOOL_TURN if len(requests) == 1 else ANSWER_TURN:
                self.wfile.write(piece)
                self.wfile.flush()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", requests
    server.shutdown()


async def test_streamed_tool_calls_round_trip(settings, tmp_path, fake_endpoint):
    url, requests = fake_endpoint
    backend = OpenAIBackend(EndpointClient(url, api_key="k-123"))
    streamed: list[str] = []
    async with Hub([tool_server()], log_dir=tmp_path) as hub:
        agent = Agent(hub, backend, settings, on_token=streamed.append)
        events = [e async for e in agent.run("Weather in Oslo, and 2+3?")]
    calls = [e for e in events if e.type == "tool_call"]
    assert [(c.id, c.name, c.arguments) for c in calls] == [
        ("call_abc", "get_weather", {"city": "Oslo"}), ("call_def", "add", {"a": 2, "b": 3})]
    results = [e for e in events if e.type == "tool_result"]
    assert '"conditions":"snow"' in results[0].content and results[1].content == '{"total":5.0}'
    first, second = requests
    assert first["path"] == "/v1/chat/completions" and first["stream"] is True and first["auth"] == "Bearer k-123"
    assert first["tool_choice"] == "auto" and {t["function"]["name"] for t in first["tools"]} >= {"add", "get_weather"}
    assistant = next(m for m in second["messages"] if m["role"] == "assistant")
    assert [tc["function"]["arguments"] for tc in assistant["tool_calls"]] == ['{"city": "Oslo"}', '{"a": 2, "b": 3}']
    tool_msgs = [m for m in second["messages"] if m["role"] == "tool"]
    assert [(m["tool_call_id"], m["name"]) for m in tool_msgs] == [("call_abc", "get_weather"), ("call_def", "add")]
    answer = next(e for e in events if e.type == "answer")
    assert answer.text == "It is snowing in Oslo; 2+3=5." and "".join(streamed) == answer.text
    total = events[-1]
    assert total.total and total.prompt_tokens == 320 and total.completion_tokens == 39


def test_http_errors_are_clear(fake_endpoint):
    url, _ = fake_endpoint
    with pytest.raises(EndpointError, match="HTTP 400"):
        OpenAIBackend(EndpointClient(url, model="other")).complete([{"role": "user", "content": "hi"}], [])
    with pytest.raises(EndpointError, match="cannot reach"):
        OpenAIBackend(EndpointClient("http://127.0.0.1:9", model="m", timeout_s=2)).complete([{"role": "user", "content": "hi"}], [])
