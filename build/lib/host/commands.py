"""`quiver ask`, `quiver chat` and `quiver demo`: added to the servers' CLI by ``host.cli``."""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import anyio

from host.backends import ChatBackend, make_backend
from host.backends.base import ToolInfo
from host.config import ServerSpec, resolve_servers
from host.connections import Hub
from host.events import ErrorEvent
from host.loop import Agent
from host.render import JsonRenderer, RichRenderer
from servers.core.boundary import in_thread
from servers.core.settings import Settings

Renderer = JsonRenderer | RichRenderer


def _add_run_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--servers", metavar="FILE", help="mcpServers JSON or TOML file (default: Quiver's own servers)")
    p.add_argument("--server", action="append", metavar="NAME", help="connect only this server (repeatable)")
    p.add_argument("--root", action="append", default=argparse.SUPPRESS, metavar="FOLDER",
                   help="folder Quiver's servers may read (repeatable; default: `roots` from the config)")
    p.add_argument("--model", help="local model: short name, folder or hub id (default: models.causal_lm)")
    p.add_argument("--endpoint", help="OpenAI-compatible base URL (vLLM, SGLang, Ollama); overrides models.endpoint")
    p.add_argument("--endpoint-model", help="model id at the endpoint (default: the first it lists)")
    p.add_argument("--json", action="store_true", help="print events as JSON lines (type: thought, tool_call, ...)")
    p.add_argument("--max-steps", type=int, help="step limit (host.max_steps)")
    p.add_argument("--tool-choice", choices=["auto", "required", "none"], help="host.tool_choice")
    p.add_argument("--no-constrained", action="store_true", help="local model: no grammar-constrained tool calls")
    p.add_argument("--max-new-tokens", type=int, help="tokens per model turn (host.max_new_tokens)")
    p.add_argument("--preselect", type=int, metavar="K", help="offer the K tools most similar to the question")
    p.add_argument("--no-transcript", action="store_true", help="do not save the run under DATA_DIR/transcripts")
    p.add_argument("--verbose", action="store_true", help="server logs on stderr instead of DATA_DIR/host/logs")


def register(subparsers: argparse._SubParsersAction) -> None:
    ask = subparsers.add_parser("ask", help="answer one question with the connected MCP tools")
    ask.add_argument("question", nargs="+")
    _add_run_flags(ask)
    ask.set_defaults(func=ask_command)

    chat = subparsers.add_parser("chat", help="an interactive session with the connected MCP tools")
    _add_run_flags(chat)
    chat.set_defaults(func=chat_command)

    demo = subparsers.add_parser("demo", help="build the demo knowledge base and database, answer sample questions")
    _add_run_flags(demo)
    demo.add_argument("--rebuild", action="store_true", help="rebuild the demo knowledge base and database")
    demo.add_argument("--limit", type=int, help="answer only the first N demo questions")
    demo.set_defaults(func=demo_command)


def apply_flags(args: argparse.Namespace, settings: Settings) -> None:
    """Fold run flags into ``settings`` (validated by the settings model)."""
    host, models = settings.host, settings.models
    for flag, key in (("max_steps", "max_steps"), ("tool_choice", "tool_choice"),
                      ("max_new_tokens", "max_new_tokens"), ("preselect", "preselect_tools")):
        value = getattr(args, flag, None)
        if value is not None:
            setattr(host, key, value)
    if getattr(args, "no_constrained", False):
        host.constrained = False
    if getattr(args, "no_transcript", False):
        host.transcripts = False
    if getattr(args, "servers", None):
        host.servers = args.servers
    if getattr(args, "endpoint", None):
        models.endpoint = args.endpoint
    if getattr(args, "endpoint_model", None):
        models.endpoint_model = args.endpoint_model
    if getattr(args, "model", None):
        if models.endpoint:
            models.endpoint_model = args.model
        else:
            models.causal_lm = args.model


@contextlib.asynccontextmanager
async def open_session(
    settings: Settings,
    names: list[str] | None = None,
    *,
    verbose: bool = False,
    backend: ChatBackend | None = None,
    specs: list[ServerSpec] | None = None,
) -> AsyncIterator[tuple[Hub, ChatBackend]]:
    """Start the servers and load the model at the same time."""
    specs = specs if specs is not None else resolve_servers(settings, settings.host.servers, names)
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        loading = pool.submit(make_backend, settings) if backend is None else None
        log_dir = None if verbose else settings.data_path / "host" / "logs"
        async with Hub(specs, log_dir=log_dir) as hub:
            chosen = backend if loading is None else await in_thread(loading.result)
            yield hub, chosen


def _renderer(args: argparse.Namespace) -> Renderer:
    return JsonRenderer() if getattr(args, "json", False) else RichRenderer()


def _report_errors(hub: Hub, renderer: Renderer) -> None:
    for message in hub.errors.values():
        renderer.event(ErrorEvent(message=message))


def console_approver(renderer: Renderer):  # noqa: ANN201 - returns an async callable
    from rich.prompt import Confirm

    async def approve(tool: ToolInfo, arguments: Any) -> bool:
        if isinstance(renderer, JsonRenderer) or not sys.stdin.isatty():
            return False
        question = f"Allow [bold]{tool.name}[/bold] ({tool.server}) with {arguments}?"
        return await in_thread(Confirm.ask, question, default=False)

    return approve


async def run_question(agent: Agent, question: str, renderer: Renderer) -> str:
    answer = ""
    async for event in agent.run(question):
        renderer.event(event)
        if event.type == "answer":
            answer = event.text  # type: ignore[union-attr]
    return answer


def _interactive(args: argparse.Namespace, settings: Settings, converse: Callable[[Agent, Renderer], Awaitable[int]]) -> int:
    """Start the servers and the model, then ``converse`` with an agent that asks the console for approvals."""
    apply_flags(args, settings)
    renderer = _renderer(args)

    async def main() -> int:
        async with open_session(settings, args.server, verbose=args.verbose) as (hub, backend):
            _report_errors(hub, renderer)
            agent = Agent(hub, backend, settings, approver=console_approver(renderer),
                          on_token=renderer.token if renderer.streaming else None)
            return await converse(agent, renderer)

    return anyio.run(main)


def ask_command(args: argparse.Namespace, settings: Settings) -> int:
    async def ask(agent: Agent, renderer: Renderer) -> int:
        answer = await run_question(agent, " ".join(args.question), renderer)
        return 0 if answer.strip() else 1

    return _interactive(args, settings, ask)


def chat_command(args: argparse.Namespace, settings: Settings) -> int:
    async def chat(agent: Agent, renderer: Renderer) -> int:
        if isinstance(renderer, RichRenderer):
            renderer.console.print(f"[bold]quiver chat[/bold] — {len(agent.hub.tools)} tools from "
                                   f"{len(agent.hub.connections)} servers, model {agent.backend.name}. "
                                   "Empty line or Ctrl-D quits.")
        while True:
            try:
                line = await in_thread(input, "you> ")
            except EOFError:
                break
            if not line.strip():
                break
            await run_question(agent, line.strip(), renderer)
        return 0

    return _interactive(args, settings, chat)


def demo_command(args: argparse.Namespace, settings: Settings) -> int:
    from host.demo import run_demo

    apply_flags(args, settings)
    return run_demo(args, settings, _renderer(args))
