"""Show loop events as they happen: rich text for people, JSON lines for programs."""

from __future__ import annotations

import json
import sys
import threading
from typing import Any

from rich.console import Console
from rich.markdown import Markdown
from rich.panel import Panel
from rich.text import Text

from host.events import AnyEvent
from servers.core.text import one_line


def _short(value: Any, limit: int = 300) -> str:
    return one_line(value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str), limit)


class JsonRenderer:
    """One JSON object per line on stdout, each with a ``type`` key."""

    streaming = False

    def __init__(self, stream: Any = None) -> None:
        self.stream = stream or sys.stdout

    def token(self, piece: str) -> None:  # tokens are not events
        pass

    def event(self, event: AnyEvent) -> None:
        self.stream.write(event.json_line() + "\n")
        self.stream.flush()


class RichRenderer:
    """The trace for a terminal: streamed model text, tool calls and results, the answer."""

    streaming = True

    def __init__(self, console: Console | None = None, show_usage: bool = True) -> None:
        self.console = console or Console(highlight=False)
        self.show_usage = show_usage
        self._open_line = False
        self._lock = threading.Lock()

    def token(self, piece: str) -> None:
        with self._lock:
            if not self._open_line:
                self.console.print(Text("  … ", style="dim"), end="")
                self._open_line = True
            self.console.print(Text(piece, style="dim"), end="")

    def _close_line(self) -> None:
        with self._lock:
            if self._open_line:
                self.console.print()
                self._open_line = False

    def event(self, event: AnyEvent) -> None:
        self._close_line()
        c = self.console
        kind = event.type
        if kind == "thought":
            c.print(Text(f"💭 {event.text}", style="italic"))  # type: ignore[union-attr]
        elif kind == "tool_call":
            where = f" [{event.server}]" if event.server else ""  # type: ignore[union-attr]
            c.print(Text.assemble(("→ ", "bold cyan"), (event.name, "bold cyan"), (where, "cyan"),  # type: ignore[union-attr]
                                  (" " + _short(event.arguments, 200), "cyan")))  # type: ignore[union-attr]
        elif kind == "tool_result":
            style = "red" if event.is_error else "green"  # type: ignore[union-attr]
            for note in event.notes:  # type: ignore[union-attr]
                c.print(Text(f"  ! {note}", style="yellow"))
            c.print(Text.assemble(("← ", f"bold {style}"), (event.name, f"bold {style}"),  # type: ignore[union-attr]
                                  (f" ({event.seconds:.2f} s) ", "dim"), (_short(event.content), style)))  # type: ignore[union-attr]
        elif kind == "answer":
            body: Any = Markdown(event.text or "_(no answer)_")  # type: ignore[union-attr]
            title = "Answer" if event.reason in ("final", "no_tools") else f"Answer ({event.reason.replace('_', ' ')})"  # type: ignore[union-attr]
            c.print(Panel(body, title=title, border_style="bold green", expand=False))
            if event.citations:  # type: ignore[union-attr]
                c.print(Text("Sources:", style="bold"))
                for i, cite in enumerate(event.citations, 1):  # type: ignore[union-attr]
                    label = cite.get("source") or cite.get("title") or cite.get("id") or "?"
                    c.print(Text(f"  [{i}] {label}  {_short(cite.get('text', ''), 120)}", style="dim"))
        elif kind == "error":
            c.print(Text(f"⚠ {event.message}", style="bold red"))  # type: ignore[union-attr]
        elif kind == "usage" and self.show_usage:
            e = event
            if e.total:  # type: ignore[union-attr]
                c.print(Text(
                    f"total: {e.prompt_tokens} prompt + {e.completion_tokens} generated tokens, "  # type: ignore[union-attr]
                    f"model {e.model_seconds:.1f} s, tools {e.tool_seconds:.2f} s, "  # type: ignore[union-attr]
                    f"loop overhead {e.overhead_seconds or 0:.2f} s", style="dim"))  # type: ignore[union-attr]
            else:
                rate = f", {e.tokens_per_s:.1f} tok/s" if e.tokens_per_s else ""  # type: ignore[union-attr]
                con = " constrained" if e.constrained else ""  # type: ignore[union-attr]
                c.print(Text(f"  step {e.step}: {e.prompt_tokens}+{e.completion_tokens} tokens, "  # type: ignore[union-attr]
                             f"{e.model_seconds:.1f} s{rate}{con}", style="dim"))  # type: ignore[union-attr]
