"""A cancelled parse_files stops before the next file (the MCP boundary turns a client's cancel into
:class:`Cancelled` raised from the progress callback; see protocol_tests/test_cancel.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from servers.core.progress import Cancelled
from servers.core.settings import Settings
from servers.parse import api


def test_parse_files_stops_at_the_progress_call_after_a_cancel(tmp_path: Path) -> None:
    folder = tmp_path / "notes"
    folder.mkdir()
    for i in range(8):
        (folder / f"note{i}.md").write_text(f"# Note {i}\n\nShelf {i} holds lamp {i}.\n")
    settings = Settings.model_validate({"data_dir": str(tmp_path / "data"), "roots": [str(tmp_path)]})
    seen: list[str] = []

    def progress(done: float, total: float | None, message: str) -> None:
        seen.append(message)
        if done == 3:
            raise Cancelled(message)

    with pytest.raises(Cancelled):
        api.parse_files(settings, folder=str(folder), progress=progress)
    assert seen == [f"parsing note{i}.md" for i in range(4)], seen  # files 0-2 parsed, nothing after the cancel

    whole = api.parse_files(settings, folder=str(folder))  # and the same call completes afterwards
    assert whole.parsed == 8 and whole.failed == 0
