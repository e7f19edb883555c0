"""Fixtures for the retrieval tests: real Milvus Lite in temp folders, the real shipped MiniLM."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from servers.core.settings import Settings, load_settings
from servers.retrieval import manage
from servers.retrieval.ingest import ingest

DOCS = {
    "install.md": "# Setup guide\n\n## Installation\n\nRun `make setup` to create the virtual environment and "
    "install the shipped models.\n\n## Upgrading\n\nPull the new release and run the migration script.\n",
    "fruit.txt": "Bananas are yellow tropical fruits rich in potassium. Monkeys like to eat bananas.",
    "space.md": "# The solar system\n\nJupiter is the largest planet of the solar system; Saturn has bright rings.\n",
    "sub_dir/cooking.md": "# Pasta\n\nBoil salted water, cook the spaghetti for nine minutes, then drain it.\n",
}


def make_settings(root: Path, **retrieval: object) -> Settings:
    overrides: dict = {"data_dir": str(root / "data"), "roots": [str(root)]}
    if retrieval:
        overrides["retrieval"] = retrieval
    return load_settings(overrides=overrides)


def write_docs(folder: Path, docs: dict[str, str] = DOCS) -> Path:
    for name, text in docs.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def filled(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Settings, Path]]:
    """A knowledge base 'docs' holding DOCS plus two raw texts with tags and metadata (shared by a module)."""
    root = tmp_path_factory.mktemp("kb")
    settings = make_settings(root)
    folder = write_docs(root / "docs")
    manage.create_kb(settings, "docs")
    report = ingest(
        settings, "docs", paths=[str(folder)],
        texts=[
            {"text": "Quarterly revenue grew by 12 percent thanks to the new pricing.", "source": "memo:q3",
             "tags": ["finance", "2024"], "metadata": {"year": 2024, "team": "sales", "path": "a_b%c"},
             "created": "2024-10-01"},
            {"text": "The old pricing model was retired after the board meeting.", "source": "memo:old",
             "tags": ["finance"], "metadata": {"year": 2019, "team": "board"}, "created": "2019-05-01"},
        ],
    )
    assert report.failed == 0, report.errors
    yield settings, folder
