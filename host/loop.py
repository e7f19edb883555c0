"""The ReAct loop: Thought → Action (tool calls, run concurrently) → Observation → … → answer.

``Agent.run(question)`` is an async generator of typed events (:mod:`host.events`). It
stops on a final answer, on the step limit (then asks the model for its best answer from
what it has), or when the model repeats an identical call that already failed (or already
succeeded: it has the result and is looping). Tool errors, refused approvals, invalid
arguments and lost servers all come back to the model as observations that say what to fix.

The conversation is the agent's ``transcript``, a list of typed steps (:mod:`host.steps`);
the messages a model reads are derived from it. Two strategies shape a run without changing
the loop: a :class:`~host.tools.ToolView` (which tools are offered and how) and an
:data:`AnswerStep` (how the answer is asked for once tools are done); an
:class:`~host.observations.ObservationFormatter` knows particular tools' results.
"""

from __future__ import annotations

import fnmatch
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import anyio

from host.backends.base import ChatBackend, ModelTurn, TokenCallback, ToolCall, ToolChoice, ToolInfo
from host.connections import CallOutcome, Hub
from host.events import Answer, AnyEvent, ErrorEvent, Thought, ToolCallEvent, ToolResultEvent, Usage
from host.observations import CitedPassages, ObservationFormatter, observe
from host.resources import discover_resources, with_resources
from host.steps import AnswerRequest, Observation, Question, Reply, Step, ToolRequest, Unreadable, messages
from host.tools import ToolView, validate_arguments
from servers.core.boundary import in_thread
from servers.core.models import embed
from servers.core.settings import Settings

Approver = Callable[[ToolInfo, Any], Awaitable[bool]]

SYSTEM_PROMPT = (
    "You are Quiver, a helpful assistant that answers questions using tools. "
    "Call a tool when it can provide facts you need; answer from the tool results, briefly and accurately."
)
FINAL_ANSWER_TOOL = ToolInfo(
    name="final_answer",
    server="host",
    remote_name="final_answer",
    description="Give the final answer to the user's question once the tool results contain what is needed.",
    input_schema={"type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"]},
)


@dataclass
class AnswerPrompt:
    """A custom answer step: the messages to answer from (instead of the conversation) and an
    optional output format (an xgrammar structural tag the backend enforces when it can)."""

    messages: list[dict[str, Any]]
    response_format: dict[str, Any] | None = None


# (question, this run's successful observations) -> a custom answer step, or None for the default
# (the conversation plus a request for the best answer from the tool results).
AnswerStep = Callable[[str, list[Observation]], AnswerPrompt | None]


def default_tool_view(settings: Settings, backend: ChatBackend, only: set[str] | None = None) -> ToolView:
    """The view from ``host.tool_view``: full schemas, or the small-model view (slim schemas, at most
    ``host.small_model_tools`` tools) for a small local model; pre-selection ranks with the embedder.
    ``only``: the tool names this agent may be offered (None = every connected tool)."""
    host = settings.host
    small = host.tool_view == "small" or (host.tool_view == "auto" and bool(getattr(backend, "small_model", False)))
    k = min(host.preselect_tools, host.small_model_tools) if small else host.preselect_tools
    return ToolView(k, embed=lambda texts: embed(texts, settings), only=only, small=small)


def _call_key(call: ToolCall) -> str:
    return call.name + "\x00" + json.dumps(call.arguments, sort_keys=True, default=str)


class _Totals:
    """Token and time sums over one run."""

    def __init__(self) -> None:
        self.prompt = self.completion = 0
        self.model = self.tool = 0.0
        self.start = time.perf_counter()

    def add(self, turn: ModelTurn) -> None:
        self.prompt += turn.prompt_tokens
        self.completion += turn.completion_tokens
        self.model += turn.seconds


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
        system_prompt: str = SYSTEM_PROMPT,
        on_token: TokenCallback | None = None,
        save_transcripts: bool | None = None,
        tool_view: ToolView | None = None,
        answer_step: AnswerStep | None = None,
        formatter: ObservationFormatter | None = None,
        describe_resources: bool | None = None,
    ) -> None:
        self.hub = hub
        self.backend = backend
        self.settings = settings
        self.tool_choice: ToolChoice = tool_choice or settings.host.tool_choice
        self.max_steps = max_steps or settings.host.max_steps
        self.max_new_tokens = max_new_tokens or settings.host.max_new_tokens
        self.approver = approver
        self.system_prompt = system_prompt
        self.on_token = on_token
        self.save_transcripts = settings.host.transcripts if save_transcripts is None else save_transcripts
        self.view = tool_view or default_tool_view(settings, backend)
        self.describe_resources = settings.host.describe_resources if describe_resources is None else describe_resources
        self.answer_step = answer_step
        self.formatter = formatter or CitedPassages()
        self.transcript: list[Step] = []
        self.last_tools: list[ToolInfo] = []

    @property
    def messages(self) -> list[dict[str, Any]]:
        """The conversation as chat messages (derived from the transcript)."""
        return messages(self.system_prompt, self.transcript)

    # -- helpers -------------------------------------------------------------------------
    def _offer(self, question: str) -> list[ToolInfo]:
        self.last_tools = self.view.offer(question, list(self.hub.tools.values()))
        return self.last_tools

    def _auto_approved(self, tool: ToolInfo) -> bool:
        conn = self.hub.connections.get(tool.server)
        patterns = conn.spec.auto_approve if conn and conn.spec.auto_approve is not None else self.settings.host.auto_approve
        return any(fnmatch.fnmatchcase(tool.name, p) or fnmatch.fnmatchcase(tool.remote_name, p) for p in patterns)

    async def _generate(
        self, tools: list[ToolInfo], choice: ToolChoice, chat: list[dict[str, Any]], fmt: dict[str, Any] | None = None
    ) -> ModelTurn:
        return await in_thread(
            self.backend.complete, chat, tools, tool_choice=choice, max_new_tokens=self.max_new_tokens,
            temperature=self.settings.host.temperature, on_token=self.on_token, response_format=fmt,
        )

    def _usage(self, step: int, turn: ModelTurn) -> Usage:
        return Usage(
            step=step, prompt_tokens=turn.prompt_tokens, completion_tokens=turn.completion_tokens,
            model_seconds=round(turn.seconds, 4), ttft_s=round(turn.ttft_s, 4) if turn.ttft_s is not None else None,
            tokens_per_s=round(turn.completion_tokens / turn.seconds, 2) if turn.seconds > 0 and turn.completion_tokens else None,
            constrained=turn.constrained, model=self.backend.name,
        )

    async def _execute(self, call: ToolCall, tool: ToolInfo | None) -> CallOutcome:
        """Validate, approve and run one call."""
        if tool is None:
            names = ", ".join(self.last_tools and [t.name for t in self.last_tools] or self.hub.tools)
            return CallOutcome(None, f"there is no tool named '{call.name}'; use one of: {names}")
        arguments = self.view.arguments(tool, call.arguments)
        problem = validate_arguments(tool, arguments)
        if problem:
            return CallOutcome(None, problem + "; fix the arguments and call again")
        if not self._auto_approved(tool):
            allowed = await self.approver(tool, arguments) if self.approver is not None else False
            if not allowed:
                return CallOutcome(None, f"the user did not approve calling '{tool.name}'; do not call it again, answer without it")
        return await self.hub.call(tool.name, arguments)

    async def _execute_all(self, calls: list[ToolCall], by_name: dict[str, ToolInfo]) -> list[CallOutcome]:
        """Run independent calls of one step concurrently; results in call order."""
        results: list[CallOutcome | None] = [None] * len(calls)

        async def run_one(i: int, call: ToolCall) -> None:
            results[i] = await self._execute(call, by_name.get(call.name))

        async with anyio.create_task_group() as tg:
            for i, call in enumerate(calls):
                tg.start_soon(run_one, i, call)
        return [r for r in results if r is not None]

    # -- the loop ------------------------------------------------------------------------
    async def run(self, question: str) -> AsyncIterator[AnyEvent]:
        events: list[AnyEvent] = []
        totals = _Totals()

        def emit(event: AnyEvent) -> AnyEvent:
            events.append(event)
            return event

        await self.hub.refresh_if_stale()
        if self.describe_resources:  # once per conversation: the knowledge bases and databases it can name
            self.describe_resources = False
            self.system_prompt = with_resources(self.system_prompt, await discover_resources(self.hub))
        tools = self._offer(question)
        first = len(self.transcript)
        self.transcript.append(Question(question))
        choice: ToolChoice = self.tool_choice if tools else "none"
        failed: dict[str, bool] = {}  # call key -> did it fail?
        citations: list[dict[str, Any]] = []
        answer: Answer | None = None
        step = 0
        while answer is None and step < self.max_steps:
            step += 1
            if await self.hub.refresh_if_stale():
                tools = self._offer(question)
            # required: the first step must call a real tool; later steps may finish via final_answer
            offered = [*tools, FINAL_ANSWER_TOOL] if choice == "required" and step > 1 else tools
            try:
                turn = await self._generate(offered, choice, self.messages)
            except Exception as exc:  # noqa: BLE001 - a backend failure ends the run with an error event
                yield emit(ErrorEvent(step=step, message=f"model failed: {type(exc).__name__}: {exc}"))
                break
            totals.add(turn)
            yield emit(self._usage(step, turn))
            finals = [c for c in turn.tool_calls if c.name == FINAL_ANSWER_TOOL.name and choice == "required"]
            calls = [c for c in turn.tool_calls if c not in finals]
            if turn.text and (calls or finals):
                yield emit(Thought(step=step, text=turn.text))
            if finals and not calls:  # the model finished through final_answer
                args = finals[0].arguments
                text = str(args.get("answer", "")) if isinstance(args, dict) else str(args)
                self.transcript.append(Reply(text))
                answer = Answer(step=step, text=text, reason="final")
            elif not calls and turn.parse_error:  # a call that cannot be read: ask again
                yield emit(ErrorEvent(step=step, message=f"unparseable tool call: {turn.parse_error}"))
                self.transcript.append(Unreadable(turn.raw, turn.parse_error))
            elif not calls:  # a plain-text answer
                self.transcript.append(Reply(turn.text))
                answer = Answer(step=step, text=turn.text, reason="final" if tools else "no_tools")
            elif repeats := [c for c in calls if _call_key(c) in failed]:  # looping: stop here
                again = any(failed[_call_key(c)] for c in repeats)
                what = "failed" if again else "was already answered"
                yield emit(ErrorEvent(step=step, message=f"'{repeats[0].name}' was called again with identical "
                                      f"arguments; it {what} before, so the loop stops here"))
                answer, extra = await self._best_answer(question, first, step,
                                                        "repeated_failure" if again else "repeated_call", totals)
                for event in extra:
                    yield emit(event)
            else:  # act, then observe
                self.transcript.append(ToolRequest(turn))
                async for event in self._act(calls, step, totals, failed, citations):
                    yield emit(event)
        if answer is None:
            answer, extra = await self._best_answer(question, first, step, "step_limit", totals)
            for event in extra:
                yield emit(event)
        answer.citations = citations
        yield emit(answer)
        wall = time.perf_counter() - totals.start
        yield emit(Usage(
            step=step, total=True, prompt_tokens=totals.prompt, completion_tokens=totals.completion,
            model_seconds=round(totals.model, 4), tool_seconds=round(totals.tool, 4),
            overhead_seconds=round(max(0.0, wall - totals.model - totals.tool), 4), model=self.backend.name,
        ))
        if self.save_transcripts:
            self._save(question, events)

    async def _act(
        self, calls: list[ToolCall], step: int, totals: _Totals, failed: dict[str, bool], citations: list[dict[str, Any]]
    ) -> AsyncIterator[AnyEvent]:
        """Run one step's calls and record their observations."""
        by_name = dict(self.hub.tools)
        for call in calls:
            tool = by_name.get(call.name)
            yield ToolCallEvent(step=step, id=call.id, name=call.name, server=tool.server if tool else None,
                                arguments=call.arguments)
        start = time.perf_counter()
        outcomes = await self._execute_all(calls, by_name)
        totals.tool += time.perf_counter() - start
        for call, outcome in zip(calls, outcomes, strict=True):
            seen = observe(outcome, by_name.get(call.name), self.settings.host.observation_chars, self.formatter)
            failed[_call_key(call)] = outcome.is_error
            citations.extend(seen.citations)
            self.transcript.append(Observation(call.id, call.name, seen.text, seen.structured, outcome.is_error,
                                               outcome.seconds, outcome.notes))
            yield ToolResultEvent(step=step, id=call.id, name=call.name, is_error=outcome.is_error, content=seen.text,
                                  structured=seen.structured, seconds=round(outcome.seconds, 4), notes=outcome.notes)

    async def _best_answer(
        self, question: str, first: int, step: int, reason: str, totals: _Totals
    ) -> tuple[Answer, list[AnyEvent]]:
        """Ask the model, without tools, for its best answer from what it has: through the answer
        step's prompt when it gives one, else the conversation plus a request for the answer.
        Returns the answer and the events of that model call."""
        observed = [s for s in self.transcript[first:] if isinstance(s, Observation) and not s.is_error]
        custom = self.answer_step(question, observed) if self.answer_step else None
        if custom is None:
            self.transcript.append(AnswerRequest(question))
            chat, fmt = self.messages, None
        else:
            chat, fmt, reason = custom.messages, custom.response_format, "final"
        try:
            turn = await self._generate([], "none", chat, fmt)
        except Exception as exc:  # noqa: BLE001
            return Answer(step=step, text="", reason=reason), [ErrorEvent(step=step, message=f"model failed: {exc}")]  # type: ignore[arg-type]
        totals.add(turn)
        self.transcript.append(Reply(turn.text))
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
            with (folder / f"{now:%Y-%m-%d}.jsonl").open("a", encoding="utf-8") as fh:
                fh.write(json.dumps(record, ensure_ascii=False, default=str) + "\n")
        except OSError as exc:  # a transcript is a by-product: never fail the answer for it
            logging.getLogger("quiver.host").warning("could not save the transcript in %s: %s", folder, exc)
