"""Fixtures for the eval tests: settings in a temp folder, one torch thread, the shipped models."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch

from servers.core.settings import Settings, load_settings

REPO = Path(__file__).resolve().parents[2]
# ../shared/data beside the clone (CI, main checkout), or two levels up from a worktree; QUIVER_SHARED_DATA wins.
SHARED = next((p for p in (Path(os.environ.get("QUIVER_SHARED_DATA", "/nonexistent")), REPO.parent / "shared" / "data",
                           REPO.parent.parent / "shared" / "data") if p.is_dir()), REPO.parent / "shared" / "data")


def eval_settings(root: Path, **eval_keys: Any) -> Settings:
    return load_settings(overrides={"data_dir": str(root / "data"), "roots": [str(root), str(SHARED)],
                                    "eval": {"bootstrap_samples": 1000, "permutation_samples": 2000, **eval_keys}})


@pytest.fixture(scope="module")
def eval_env(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """Settings shared by a module's tests (runs accumulate in one data dir)."""
    return eval_settings(tmp_path_factory.mktemp("eval"))


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread() -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


class Scripted:
    """A generator that answers from a script: a function of the messages (a real Generator, no model)."""

    def __init__(self, reply: Any, name: str = "scripted") -> None:
        self.reply = reply
        self.name = name
        self.calls: list[list[dict[str, Any]]] = []

    def chat(self, messages: list[dict[str, Any]], *, max_new_tokens: int = 256, temperature: float = 0.0, n: int = 1,
             stop: list[str] | None = None, seed: int | None = None) -> list[str]:
        self.calls.append(messages)
        return [self.reply(messages) for _ in range(n)]
