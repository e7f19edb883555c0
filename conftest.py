"""Shared fixtures: an isolated data dir and roots per test, a model cache shared by the run."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from servers.core.settings import Settings, load_settings

REPO = Path(__file__).resolve().parent
SHARED_DATA = REPO.parent / "shared" / "data"
# Dequantized GGUF and other model caches survive between test runs (and subprocess servers).
MODEL_CACHE = Path(os.environ.setdefault("QUIVER_MODELS__CACHE_DIR", str(REPO / ".cache" / "models")))


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Settings rooted in a temp folder: data in tmp/data, files readable under tmp."""
    return load_settings(overrides={"data_dir": str(tmp_path / "data"), "roots": [str(tmp_path)]})
