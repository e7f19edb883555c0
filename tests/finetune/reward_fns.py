"""Reward callables for the GRPO tests (imported by the training subprocess by module path)."""

from __future__ import annotations

from typing import Any


def broken(prompts: list[Any], completions: list[Any], **columns: Any) -> list[float]:
    raise RuntimeError("planted reward failure")
