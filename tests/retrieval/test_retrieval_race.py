"""The folder-ingest race (defect 3): a sub-folder swapped for a symlink to a folder outside the roots
after the walk (or between the check and the open) stores nothing from outside."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from servers.core import roots as roots_module
from servers.core.errors import AccessDenied
from servers.core.roots import read_under_roots
from servers.retrieval import ingest as ingest_module
from servers.retrieval import manage
from servers.retrieval.store import get_store
from tests.retrieval.conftest import make_settings

SECRET = "TOP SECRET payroll figures kept outside the roots"


def _layout(tmp_path: Path) -> tuple[Path, Path, Path]:
    root = tmp_path / "root"
    sub = root / "docs" / "sub"
    sub.mkdir(parents=True)
    (sub / "notes.md").write_text("# Owls\n\nOwls hunt at night.\n")
    (root / "docs" / "keep.md").write_text("# Bats\n\nBats sleep by day.\n")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "notes.md").write_text(f"# Payroll\n\n{SECRET}\n")
    return root, sub, outside


def _swap(sub: Path, outside: Path) -> None:
    """Replace the sub-folder by a symlink to the outside folder (same file names inside)."""
    sub.rename(sub.with_name("sub_before"))
    os.symlink(outside, sub)


def test_subfolder_swapped_for_a_symlink_after_the_walk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root, sub, outside = _layout(tmp_path)
    settings = make_settings(root)
    manage.create_kb(settings, "race")
    walked: list[str] = []
    real_collect = ingest_module.collect_items

    def collect_then_swap(*args, **kwargs):
        items = real_collect(*args, **kwargs)
        walked.extend(i.source for i in items)
        _swap(sub, outside)  # the attacker's move, between the walk and the reads
        return items

    monkeypatch.setattr(ingest_module, "collect_items", collect_then_swap)
    report = ingest_module.ingest(settings, "race", paths=[str(root / "docs")])
    assert str(sub / "notes.md") in walked  # the walk did see the file that later pointed outside
    rows = get_store(settings).query("race", "", fields=["text", "source"])
    assert rows and not any(SECRET in r["text"] for r in rows)
    assert {r["source"] for r in rows} == {str(root / "docs" / "keep.md")}
    assert report.added == 1 and report.failed == 1
    assert "outside the allowed roots" in report.errors[0].error


def test_swap_between_the_check_and_the_open(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root, sub, outside = _layout(tmp_path)
    real_resolve = roots_module.resolve_under_roots

    def resolve_then_swap(*args, **kwargs):
        resolved = real_resolve(*args, **kwargs)  # checked: inside the root
        _swap(sub, outside)  # ... and swapped before the open
        return resolved

    monkeypatch.setattr(roots_module, "resolve_under_roots", resolve_then_swap)
    with pytest.raises(AccessDenied, match="outside the allowed roots"):
        read_under_roots(sub / "notes.md", [root])
    monkeypatch.undo()
    assert read_under_roots(root / "docs" / "keep.md", [root]).data.startswith(b"# Bats")


def test_final_component_swapped_for_a_symlink(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root, sub, outside = _layout(tmp_path)
    real_resolve = roots_module.resolve_under_roots

    def resolve_then_link(*args, **kwargs):
        resolved = real_resolve(*args, **kwargs)
        (sub / "notes.md").unlink()
        os.symlink(outside / "notes.md", sub / "notes.md")
        return resolved

    monkeypatch.setattr(roots_module, "resolve_under_roots", resolve_then_link)
    with pytest.raises(AccessDenied, match="symbolic link"):
        read_under_roots(sub / "notes.md", [root])
