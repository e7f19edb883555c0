"""Shared fixtures: an isolated data dir and roots per test, a model cache shared by the run."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from servers.core.settings import Settings, load_settings

REPO = Path(__file__).resolve().parent
# Under test workers (make test runs two), each process (worker, server, training job) gets an equal
# share of the cores as OpenMP threads: two workers with two torch threads each on 2 cores spent much of
# the suite's CPU spinning in OpenMP barriers. Set before torch is imported; subprocesses inherit it.
if workers := int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "0")):
    threads = str(max(1, (os.cpu_count() or 1) // workers))
    os.environ.setdefault("OMP_NUM_THREADS", threads)
    os.environ.setdefault("MKL_NUM_THREADS", threads)
SHARED_DATA = REPO.parent / "shared" / "data"
# Dequantized GGUF and other model caches survive between test runs (and subprocess servers).
MODEL_CACHE = Path(os.environ.setdefault("QUIVER_MODELS__CACHE_DIR", str(REPO / ".cache" / "models")))


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Settings rooted in a temp folder: data in tmp/data, files readable under tmp."""
    return load_settings(overrides={"data_dir": str(tmp_path / "data"), "roots": [str(tmp_path)]})


@pytest.fixture(scope="module")
def one_torch_thread() -> Iterator[None]:
    """One torch intra-op thread for a module's tests (``pytestmark = pytest.mark.usefixtures(...)``):
    on a busy 2-core machine two OpenMP threads ran many times slower than one. Restored afterwards."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Files with a test marked slow run first (each file's tests keep their order): the test
    workers (``make test`` runs two) then take the long files early and finish together."""
    slow_files = {item.path for item in items if item.get_closest_marker("slow")}
    items.sort(key=lambda item: item.path not in slow_files)
