"""The one TOML writer: the few value types Quiver writes (client configs), as TOML text."""

from __future__ import annotations

import json
from typing import Any


def toml_value(value: Any) -> str:
    """One TOML value: booleans, numbers, strings, arrays and inline tables (``None`` entries left out)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # a JSON string is a valid TOML basic string
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_value(v) for v in value if v is not None) + "]"
    if isinstance(value, dict):
        items = (f"{json.dumps(str(k))} = {toml_value(v)}" for k, v in value.items() if v is not None)
        return "{ " + ", ".join(items) + " }"
    raise TypeError(f"cannot write {type(value).__name__} as TOML")


def toml_tables(tables: dict[str, dict[str, Any]], header: str | None = None) -> str:
    """``[name]`` tables of ``key = value`` lines, with an optional ``# header`` comment first."""
    lines = [f"# {header}"] if header else []
    for name, entries in tables.items():
        lines += ["", f"[{name}]"] if lines else [f"[{name}]"]
        lines += [f"{key} = {toml_value(value)}" for key, value in entries.items() if value is not None]
    return "\n".join(lines) + "\n"
