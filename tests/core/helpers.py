"""Shared pieces of the core tests."""

from __future__ import annotations

from pathlib import Path

from servers.core.settings import Settings


def make_settings(tmp_path: Path, **model_keys: object) -> Settings:
    """Settings built directly (not from configs/quiver.toml) with only a models section given."""
    return Settings.model_validate({"data_dir": str(tmp_path / "data"), "roots": [str(tmp_path)], "models": model_keys})
