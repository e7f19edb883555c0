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


def test_no_configured_root_means_data_dir_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from servers.core.settings import Settings

    monkeypatch.chdir("/")
    settings = Settings.model_validate({"data_dir": str(tmp_path / "data")})
    assert settings.roots == [] and settings.root_paths() == [tmp_path / "data"]
    with pytest.raises(AccessDenied, match="--root FOLDER"):
        resolve_under_roots("/etc/passwd", settings.root_paths())


@pytest.mark.parametrize("where", ["/", "home"])
def test_relative_root_landing_on_slash_or_home_is_refused(where: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from servers.core.errors import ConfigError
    from servers.core.roots import allowed_roots

    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.chdir("/" if where == "/" else tmp_path)
    with pytest.raises(ConfigError, match="absolute path"):
        allowed_roots(["."], tmp_path / "data")


def test_explicit_slash_root_is_allowed_with_a_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    from servers.core import roots

    roots._warned.discard(Path("/"))
    with caplog.at_level("WARNING", logger="quiver.roots"):
        assert roots.allowed_roots(["/"], tmp_path) == [Path("/"), tmp_path]
    assert "file-system root" in caplog.text
