"""The flags ``quiver`` commands share (argparse parent parsers and argument types): one definition for the serving CLI
(:mod:`servers.core.cli`) and the capabilities' own commands (``quiver eval``, ``quiver finetune``), which it
imports (so they cannot import it back)."""

from __future__ import annotations

import argparse


def common_flags() -> argparse.ArgumentParser:
    """``--config``, ``--data-dir``, ``--log-level`` (a parent parser; unset flags leave the settings alone)."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", default=argparse.SUPPRESS, help="TOML config file (default: configs/quiver.toml)")
    common.add_argument("--data-dir", default=argparse.SUPPRESS, help="override data_dir")
    common.add_argument("--log-level", default=argparse.SUPPRESS, choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    return common


def database_pair(text: str) -> tuple[str, str]:
    """``NAME=URL_OR_PATH`` (``--database``, repeatable) as (name, target)."""
    name, sep, target = text.partition("=")
    if not sep or not name or not target:
        raise argparse.ArgumentTypeError(f"expected NAME=URL_OR_PATH, got {text!r}")
    return name, target
