"""The ReAct loop: Thought → Action (tool calls, run concurrently) → Observation → … → answer.

``Agent.run(question)`` is an async generator of typed events (:mod:`host.events`). It
stops on a final answer, on the step limit (then asks the model for its best answer from
what it has), or when the model repeats an identical call that already failed (or already
succeeded: it has the result and is looping). Tool errors, refused approvals, invalid
arguments and lost servers all come back to the model as observations that say what to fix.
"""

from __future__ import annotations

import fnmatch
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
import mcp_types as types

from host.backends.base import ChatBackend, ModelTurn, TokenCallback, ToolCall, ToolChoice
from host.connections import CallOutcome, Hub, ToolInfo
from host.events import Answer, AnyEvent, ErrorEvent, Thought, ToolCallEvent, ToolResultEvent, Usage
from host.tools import ToolSelector, compact_json, validate_arguments
from servers.core.settings import Settings

Approver = Callable[[ToolInfo, Any], Awaitable[bool]]
# (question, [(tool name, structured result, observation text)]) -> the answer step's messages and an
# optional output format (an xgrammar structural tag, local models only), or None for the default step
AnswerBuilder = Callable[[str, list[tuple[str, Any, str]]], tuple[list[dict[str, Any]], dict[str, Any] | None] | None]

SYSTEM_PROMPT = (
    "You are Quiver, a helpful assistant that answers questions using tools. "
    "Call a tool when it can provide facts you need; answer from the tool results, briefly and accurately."
)
BEST_ANSWER_PROMPT = (
    "Stop calling tools now. Using only the tool results above, give your best final answer to the "
    "question: {question}"
)
FINAL_ANSWER_TOOL = ToolInfo(
    name="final_answer",
    server="host",
    remote_name="final_answer",
    description="Give the final answer to the user's question once the tool results contain what is needed.",
    input_schema={"type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"]},
)


def format_observation(outcome: CallOutcome, budget: int) -> tuple[str, Any]:
    """The text fed back to the model (structured content as compact JSON, text, placeholders
    for binary content), cut to ``budget`` characters with a note; plus the structured value."""
    notes = "".join(f"[note: {n}]\n" for n in outcome.notes)
    result = outcome.result
    if result is None:
        return notes + f"ERROR: {outcome.error}", None
    structured = result.structured_content
    if isinstance(structured, dict) and isinstance(structured.get("context"), str) and not result.is_error:
        body = structured["context"]  # a prompt-ready block (e.g. kb_context): the text itself reads best
    elif structured is not None and not result.is_error:
        body = compact_json(structured)
    else:
        parts = []
        for block in result.content:
            if isinstance(block, types.TextContent):
                parts.append(block.text)
            elif isinstance(block, types.ImageContent):
                parts.append(f"[image {block.mime_type}, {len(block.data) * 3 // 4} bytes, not shown]")
            elif isinstance(block, types.AudioContent):
                parts.append(f"[audio {block.mime_type}, not shown]")
            elif isinstance(block, types.ResourceLink):
                parts.append(f"[resource {block.uri}]")
            elif isinstance(block, types.EmbeddedResource):
                res = block.resource
                parts.append(getattr(res, "text", None) or f"[resource {res.uri}, binary, not shown]")
        body = "\n".join(parts)
        if result.is_error:
            body = "ERROR: " + body.removeprefix("Error executing tool ").strip()
    if len(body) > budget:
        body = body[:budget] + f"\n[truncated: showed {budget} of {len(body)} characters]"
    return notes + body, structured


def _properties(tool: ToolInfo | None) -> dict[str, Any]:
    return (tool.input_schema.get("properties") or {}) if tool else {}


def pin_arguments(tool: ToolInfo, pinned: dict[str, Any], slim: bool = False) -> ToolInfo:
    """The tool as offered to the model when some arguments are fixed by the host (e.g. the
    knowledge base name): those leave the schema and are added back at call time. ``slim``
    also drops optional arguments (they keep their defaults): small models fill fewer wrong."""
    props = _properties(tool)
    fixed = [k for k in pinned if k in props]
    required = [r for r in tool.input_schema.get("required") or [] if r not in fixed]
    if not fixed and not (slim and len(required) < len(props)):
        return tool
    schema = dict(tool.input_schema)
    schema["properties"] = {k: v for k, v in props.items() if k not in fixed and (not slim or k in required)}
    schema["required"] = required
    return replace(tool, input_schema=schema)


def extract_citations(structured: Any) -> list[dict[str, Any]]:
    """Passages with citations in a structured result (``passages`` or ``hits`` lists)."""
    if not isinstance(structured, dict):
        return []
    out = []
    for key in ("passages", "hits"):
        for item in structured.get(key) or []:
            if isinstance(item, dict) and isinstance(item.get("citation"), dict):
                c = item["citation"]
                out.append({"source": c.get("source"), "title": c.get("title"), "page": c.get("page"),
                            "text": str(item.get("text", ""))[:500]})
        if out:
            break
    return out


def _call_key(name: str, arguments: Any) -> str:
    return name + "\x00" + json.dumps(arguments, sort_keys=True, default=str)


class Agent:
    """One conversation with the connected tools; ``run`` may be called again (chat keeps history)."""

    def __init__(
        self,
        hub: Hub,
        backend: ChatBackend,
        settings: Settings,
        *,
        tool_choice: ToolChoice | None = None,
        max_steps: int | None = None,
        max_new_tokens: int | None = None,
        approver: Approver | None = None,
        selector: ToolSelector | None = None,
        system_prompt: str = SYSTEM_PROMPT,
        on_token: TokenCallback | None = None,
        save_transcripts: bool | None = None,
        pinned: dict[str, Any] | None = None,
        only_tools: set[str] | None = None,
        slim_schemas: bool = False,
        tool_notes: dict[str, str] | None = None,
        answer_builder: AnswerBuilder | None = None,
    ) -> None:
        self.hub = hub
        self.backend = backend
        self.settings = settings
        self.tool_choice: ToolChoice = tool_choice or settings.host.tool_choice
        self.max_steps = max_steps or settings.host.max_steps
        self.max_new_tokens = max_new_tokens or settings.host.max_new_tokens
        self.approver = approver
        self.selector = selector
        self.on_token = on_token
        self.save_transcripts = settings.host.transcripts if save_transcripts is None else save_transcripts
        self.messages: list[dict[str, Any]] = [{"role": "system", "content": system_prompt}]
        self.last_tools: list[ToolInfo] = []
        self.pinned = dict(pinned or {})
        self.only_tools = only_tools
        self.slim_schemas = slim_schemas
        self.tool_notes = dict(tool_notes or {})
        self.answer_builder = answer_builder
        self.observations: list[tuple[str, Any, str]] = []  # (tool, structured, text) of this run

    # -- helpers -------------------------------------------------------------------------
    def select_tools(self, question: str) -> list[ToolInfo]:
        tools = [t for t in self.hub.tools.values() if self.only_tools is None or t.name in self.only_tools]
        tools = [replace(t, description=f"{t.description} {self.tool_notes[t.name]}") if t.name in self.tool_notes
                 else t for t in tools]
        k = self.settings.host.preselect_tools
        if len(tools) > k:
            if self.selector is None:
                from servers.core.models import embedder

                self.selector = ToolSelector(embedder(None, self.settings))
            tools = self.selector.select(question, tools, k, texts=self.tool_notes)
        return [pin_arguments(t, self.pinned, self.slim_schemas) for t in tools]

    def _auto_approved(self, tool: ToolInfo) -> bool:
        conn = self.hub.connections.get(tool.server)
        patterns = conn.spec.auto_approve if conn and conn.spec.auto_approve is not None else self.settings.host.auto_approve
        return any(fnmatch.fnmatchcase(tool.name, p) or fnmatch.fnmatchcase(tool.remote_name, p) for p in patterns)

    async def _generate(
        self,
        tools: list[ToolInfo],
        choice: ToolChoice,
        messages: list[dict[str, Any]] | None = None,
        response_format: dict[str, Any] | None = None,
    ) -> ModelTurn:
        extra = {"response_format": response_format} if response_format is not None else {}
        return await anyio.to_thread.run_sync(
            lambda: self.backend.complete(
                messages or self.messages, tools, tool_choice=choice, max_new_tokens=self.max_new_tokens,
                temperature=self.settings.host.temperature, on_token=self.on_token, **extra,
            )
        )

    def _usage(self, step: int, turn: ModelTurn) -> Usage:
        return Usage(
            step=step, prompt_tokens=turn.prompt_tokens, completion_tokens=turn.completion_tokens,
            model_seconds=round(turn.seconds, 4), ttft_s=round(turn.ttft_s, 4) if turn.ttft_s is not None else None,
            tokens_per_s=round(turn.completion_tokens / turn.seconds, 2) if turn.seconds > 0 and turn.completion_tokens else None,
            constrained=turn.constrained, model=self.backend.name,
        )

    async def _execute(self, call: ToolCall, tool: ToolInfo | None) -> tuple[CallOutcome, bool]:
        """Validate, approve and run one call; returns the outcome and whether it was sent."""
        if tool is None:
            names = ", ".join(self.last_tools and [t.name for t in self.last_tools] or self.hub.tools)
            return CallOutcome(None, f"there is no tool named '{call.name}'; use one of: {names}"), False
        arguments = call.arguments
        if isinstance(arguments, dict):
            arguments = {**arguments, **{k: v for k, v in self.pinned.items() if k in _properties(tool)}}
        problem = validate_arguments(tool, arguments)
        if problem:
            return CallOutcome(None, problem + "; fix the arguments and call again"), False
        if not self._auto_approved(tool):
            allowed = await self.approver(tool, arguments) if self.approver is not None else False
            if not allowed:
                return CallOutcome(
                    None, f"the user did not approve calling '{tool.name}'; do not call it again, answer without it"
                ), False
        return await self.hub.call(tool.name, arguments), True

    async def _execute_all(
        self, calls: list[ToolCall], by_name: dict[str, ToolInfo]
    ) -> list[tuple[CallOutcome, bool] | None]:
        """Run independent calls of one step concurrently; results in call order."""
        results: list[tuple[CallOutcome, bool] | None] = [None] * len(calls)

        async def run_one(i: int, call: ToolCall) -> None:
            results[i] = await self._execute(call, by_name.get(call.name))

        async with anyio.create_task_group() as tg:
            for i, call in enumerate(calls):
                tg.start_soon(run_one, i, call)
        return results

    # -- the loop ------------------------------------------------------------------------
    async def run(self, question: str) -> AsyncIterator[AnyEvent]:
        run_start = time.perf_counter()
        events: list[AnyEvent] = []
        totals = {"prompt": 0, "completion": 0, "model": 0.0, "tool": 0.0, "wait": 0.0}

        def emit(event: AnyEvent) -> AnyEvent:
            events.append(event)
            return event

        await self.hub.refresh_if_stale()
        self.observations = []
        tools = self.select_tools(question)
        self.last_tools = tools
        self.messages.append({"role": "user", "content": question})
        choice: ToolChoice = self.tool_choice if tools else "none"
        outcomes: dict[str, bool] = {}  # call key -> failed?
        citations: list[dict[str, Any]] = []
        answer: Answer | None = None
        step = 0
        while answer is None and step < self.max_steps:
            step += 1
            if await self.hub.refresh_if_stale():
                tools = self.select_tools(question)
                self.last_tools = tools
            # required: the first step must call a real tool; later steps may finish via final_answer
            offered = [*tools, FINAL_ANSWER_TOOL] if choice == "required" and step > 1 else tools
            try:
                turn = await self._generate(offered, choice)
            except Exception as exc:  # noqa: BLE001 - a backend failure ends the run with an error event
                yield emit(ErrorEvent(step=step, message=f"model failed: {type(exc).__name__}: {exc}"))
                break
            totals["prompt"] += turn.prompt_tokens
            totals["completion"] += turn.completion_tokens
            totals["model"] += turn.seconds
            yield emit(self._usage(step, turn))
            finals = [c for c in turn.tool_calls if c.name == FINAL_ANSWER_TOOL.name and choice == "required"]
            calls = [c for c in turn.tool_calls if c not in finals]
            if turn.text and (calls or finals):
                yield emit(Thought(step=step, text=turn.text))
            if finals and not calls:
                args = finals[0].arguments
                text = str(args.get("answer", "")) if isinstance(args, dict) else str(args)
                self.messages.append({"role": "assistant", "content": text})
                answer = Answer(step=step, text=text, reason="final")
                break
            if not calls:
                if turn.parse_error:
                    yield emit(ErrorEvent(step=step, message=f"unparseable tool call: {turn.parse_error}"))
                    self.messages.append({"role": "assistant", "content": turn.raw})
                    self.messages.append({"role": "user", "content": f"Your tool call could not be read: {turn.parse_error}. "
                                          "Write it again as valid JSON, or answer in plain text."})
                    continue
                self.messages.append({"role": "assistant", "content": turn.text})
                answer = Answer(step=step, text=turn.text, reason="final" if tools else "no_tools")
                break
            # Repeats: an identical call that failed (or succeeded) before ends the loop.
            repeats = [c for c in calls if _call_key(c.name, c.arguments) in outcomes]
            if repeats:
                failed = any(outcomes[_call_key(c.name, c.arguments)] for c in repeats)
                reason = "repeated_failure" if failed else "repeated_call"
                what = "failed" if failed else "was already answered"
                yield emit(ErrorEvent(step=step, message=f"'{repeats[0].name}' was called again with identical arguments; "
                                      f"it {what} before, so the loop stops here"))
                answer, extra = await self._best_answer(question, step, reason, totals)
                for event in extra:
                    yield emit(event)
                break
            self.messages.append(turn.message())
            by_name = {t.name: t for t in self.hub.tools.values()}
            for call in calls:
                tool = by_name.get(call.name)
                yield emit(ToolCallEvent(step=step, id=call.id, name=call.name, server=tool.server if tool else None,
                                         arguments=call.arguments))
            tool_start = time.perf_counter()
            results = await self._execute_all(calls, by_name)
            totals["tool"] += time.perf_counter() - tool_start
            for call, res in zip(calls, results, strict=True):
                assert res is not None
                outcome, _sent = res
                text, structured = format_observation(outcome, self.settings.host.observation_chars)
                outcomes[_call_key(call.name, call.arguments)] = outcome.is_error
                if not outcome.is_error:
                    citations.extend(extract_citations(structured))
                    self.observations.append((call.name, structured, text))
                self.messages.append({"role": "tool", "tool_call_id": call.id, "name": call.name, "content": text})
                yield emit(ToolResultEvent(step=step, id=call.id, name=call.name, is_error=outcome.is_error, content=text,
                                           structured=structured, seconds=round(outcome.seconds, 4), notes=outcome.notes))
        if answer is None:
            answer, extra = await self._best_answer(question, step, "step_limit", totals)
            for event in extra:
                yield emit(event)
        answer.citations = citations
        yield emit(answer)
        wall = time.perf_counter() - run_start
        total = Usage(
            step=step, total=True, prompt_tokens=totals["prompt"], completion_tokens=totals["completion"],
            model_seconds=round(totals["model"], 4), tool_seconds=round(totals["tool"], 4),
            overhead_seconds=round(max(0.0, wall - totals["model"] - totals["tool"]), 4), model=self.backend.name,
        )
        yield emit(total)
        if self.save_transcripts:
            self._save(question, events)

    async def _best_answer(
        self, question: str, step: int, reason: str, totals: dict[str, float]
    ) -> tuple[Answer, list[AnyEvent]]:
        """Ask the model, without tools, for its best answer from what it has (through the
        ``answer_builder``'s prompt when one is set and returns messages)."""
        custom = self.answer_builder(question, self.observations) if self.answer_builder else None
        messages, fmt = custom if custom is not None else (None, None)
        if custom is None:
            self.messages.append({"role": "user", "content": BEST_ANSWER_PROMPT.format(question=question)})
        else:
            reason = "final"
        if fmt is not None and not hasattr(self.backend, "decode"):
            fmt = None  # output formats are for local models
        try:
            turn = await self._generate([], "none", messages=messages, response_format=fmt)
        except Exception as exc:  # noqa: BLE001
            return Answer(step=step, text="", reason=reason), [ErrorEvent(step=step, message=f"model failed: {exc}")]  # type: ignore[arg-type]
        totals["prompt"] += turn.prompt_tokens
        totals["completion"] += turn.completion_tokens
        totals["model"] += turn.seconds
        self.messages.append({"role": "assistant", "content": turn.text})
        return Answer(step=step, text=turn.text, reason=reason), [self._usage(step, turn)]  # type: ignore[arg-type]

    def _save(self, question: str, events: list[AnyEvent]) -> None:
        folder = self.settings.data_path / "transcripts"
        try:
            folder.mkdir(parents=True, exist_ok=True)
            now = datetime.now(UTC)
            record = {
                "id": uuid.uuid4().hex,
                "created": now.isoformat(timespec="seconds"),
                "model": self.backend.name,
                "question": question,
                "tools": [t.openai_tool() for t in self.last_tools],
                "messages": self.messages,
                "events": [e.model_dump(exclude_none=True) for e in events],
            }
            path: Path = folder / f"{now:%Y-%m-%d}.jsonl"
            with path.open("a", encoding="utf-8") as fh:
                fh.write(json.dumps(record, ensure_ascii=False, default=str) + "\n")
        except OSError as exc:  # a transcript is a by-product: never fail the answer for it
            logging.getLogger("quiver.host").warning("could not save the transcript in %s: %s", folder, exc)
