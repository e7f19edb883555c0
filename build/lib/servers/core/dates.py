"""The one date parser: ISO 8601 dates and datetimes, or Unix seconds."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

_EPOCH = re.compile(r"-?\d+(\.\d+)?")


def parse_datetime(value: Any) -> datetime:
    """An aware datetime from an ISO 8601 date or datetime (naive = UTC, ``Z`` accepted) or Unix
    seconds (a number or a string of digits). Raises ValueError for anything else."""
    if isinstance(value, bool):
        raise ValueError("a boolean is not a date")
    try:
        if isinstance(value, int | float):
            return datetime.fromtimestamp(float(value), tz=UTC)
        if isinstance(value, str):
            text = value.strip()
            if _EPOCH.fullmatch(text):
                return datetime.fromtimestamp(float(text), tz=UTC)
            parsed = datetime.fromisoformat(text)
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    except (OverflowError, OSError) as exc:
        raise ValueError(f"{value!r} is out of the range of dates") from exc
    raise ValueError(f"{type(value).__name__} is not a date")


def to_epoch(value: Any) -> int:
    """:func:`parse_datetime` as whole Unix seconds (ValueError for anything that is not a date)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    return int(parse_datetime(value).timestamp())
