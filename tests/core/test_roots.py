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


def test_over_long_and_odd_paths_get_clear_errors(root: Path) -> None:
    """Defect 10: a 10 MB path returned an unexplained 'Error executing tool' (an OSError) and was logged whole."""
    with pytest.raises(InvalidInput, match="characters long") as long_path:
        resolve_under_roots("a/" * 5_000_000, [root])
    assert len(str(long_path.value)) < 1000
    with pytest.raises(InvalidInput, match="longer than the file system allows"):
        resolve_under_roots("docs/" + "n" * 300 + ".txt", [root])
    with pytest.raises(InvalidInput, match="NUL"):
        resolve_under_roots("file:///etc/passwd%00.txt", [root])
    os.symlink(root / "loop", root / "loop")
    with pytest.raises(InvalidInput, match="loop"):
        resolve_under_roots("loop/x", [root])


def test_data_dir_internals_are_not_readable(tmp_path: Path) -> None:
    """Defect 10: the data dir is a root, so kb_ingest could store Milvus's own files; Quiver's internals
    (the Milvus Lite folder, job stores, model cache, example stores) are refused even there."""
    from servers.core.roots import read_under_roots
    from servers.core.settings import Settings

    settings = Settings.model_validate({"data_dir": str(tmp_path / "data"), "roots": [str(tmp_path)]})
    data = settings.data_path
    for inner in ("milvus.db/collections/kb/schema.json", "jobs/j1/config.json", "eval/jobs/x/job.log",
                  "models/m/config.json", "text2sql/examples/shop.json"):
        (data / inner).parent.mkdir(parents=True, exist_ok=True)
        (data / inner).write_text("{}")
        with pytest.raises(AccessDenied, match="keeps for itself"):
            read_under_roots(data / inner, settings.root_paths())
    (data / "mine.txt").write_text("mine")  # the user's own files in the data dir stay readable
    assert read_under_roots(data / "mine.txt", settings.root_paths()).data == b"mine"
    os.symlink(data / "milvus.db" / "collections" / "kb" / "schema.json", tmp_path / "innocent.json")
    with pytest.raises(AccessDenied, match="keeps for itself"):
        read_under_roots(tmp_path / "innocent.json", settings.root_paths())


def test_follow_hardlinks_false_refuses_linked_files(tmp_path: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    """Defect 10: a hard link inside a root to a file outside it is the same file; follow_hardlinks = false
    refuses files with more than one link (the default keeps reading them)."""
    from servers.core.roots import read_under_roots
    from servers.core.settings import Settings

    outside = tmp_path_factory.mktemp("outside") / "secret.txt"
    outside.write_text("secret")
    root = tmp_path / "root"
    root.mkdir()
    try:
        os.link(outside, root / "linked.txt")
    except OSError:
        pytest.skip("hard links across these folders are not possible here")
    (root / "plain.txt").write_text("plain")
    strict = Settings.model_validate({"data_dir": str(tmp_path / "data"), "roots": [str(root)], "follow_hardlinks": False})
    with pytest.raises(AccessDenied, match="hard links"):
        read_under_roots(root / "linked.txt", strict.root_paths())
    assert read_under_roots(root / "plain.txt", strict.root_paths()).data == b"plain"
    relaxed = strict.model_copy(update={"follow_hardlinks": True})
    assert read_under_roots(root / "linked.txt", relaxed.root_paths()).data == b"secret"
