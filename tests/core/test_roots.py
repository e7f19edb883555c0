from __future__ import annotations

import os
from pathlib import Path

import pytest

from servers.core.errors import AccessDenied, InvalidInput, NotFound
from servers.core.roots import resolve_under_roots


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.txt").write_text("hello")
    return tmp_path


def test_relative_absolute_and_uri_inside(root: Path) -> None:
    target = root / "docs" / "a.txt"
    assert resolve_under_roots("docs/a.txt", [root]) == target
    assert resolve_under_roots(str(target), [root]) == target
    assert resolve_under_roots(target.as_uri(), [root]) == target


@pytest.mark.parametrize("bad", ["../../etc/passwd", "/etc/passwd", "file:///etc/passwd", "docs/../../x"])
def test_outside_roots_refused(root: Path, bad: str) -> None:
    with pytest.raises(AccessDenied, match="outside the allowed roots"):
        resolve_under_roots(bad, [root])


def test_symlink_escaping_root_refused(root: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    outside = tmp_path_factory.mktemp("outside") / "secret.txt"
    outside.write_text("secret")
    os.symlink(outside, root / "docs" / "link.txt")
    with pytest.raises(AccessDenied):
        resolve_under_roots("docs/link.txt", [root])


def test_other_schemes_missing_and_empty(root: Path) -> None:
    with pytest.raises(InvalidInput, match="scheme"):
        resolve_under_roots("http://example.com/x.pdf", [root])
    with pytest.raises(InvalidInput, match="not local"):
        resolve_under_roots("file://evil.host/etc/passwd", [root])
    with pytest.raises(NotFound, match="no file"):
        resolve_under_roots("docs/missing.txt", [root])
    with pytest.raises(InvalidInput):
        resolve_under_roots("  ", [root])
