from __future__ import annotations

from pathlib import Path

import pytest

from servers.core.errors import ConfigError
from servers.core.settings import PROJECT_CONFIG, Settings, load_settings, read_toml


def _flatten(tree: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in tree.items():
        if isinstance(value, dict) and key not in ("index_params", "databases"):
            out.update(_flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def test_project_config_matches_model_defaults() -> None:
    file_values = _flatten(read_toml(PROJECT_CONFIG))
    defaults = _flatten(Settings().model_dump())
    for key, value in file_values.items():
        assert key in defaults, f"configs/quiver.toml has unknown key {key}"
        assert defaults[key] == value, f"{key}: file {value!r} != default {defaults[key]!r}"
    # every non-optional default is written down in the file
    missing = [k for k, v in defaults.items() if v is not None and k not in file_values]
    assert not missing, f"configs/quiver.toml lacks {missing}"


def test_precedence_file_env_overrides(tmp_path: Path) -> None:
    cfg = tmp_path / "q.toml"
    cfg.write_text('data_dir = "/tmp/a"\n[http]\nport = 9001\n[models]\nbatch_size = 8\n')
    env = {"QUIVER_HTTP__PORT": "9002", "QUIVER_HTTP_TOKEN": "s3cret", "QUIVER_MODELS__DEVICE": "cpu"}
    s = load_settings(cfg, overrides={"models": {"batch_size": 4}}, environ=env)
    assert s.data_dir == "/tmp/a"
    assert s.http.port == 9002
    assert s.http.token == "s3cret"
    assert s.models.device == "cpu"
    assert s.models.batch_size == 4


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("[http]\nport = 'abc'\n", "http.port"),
        ("[http]\nprot = 1\n", "http.prot"),
        ("[models]\ndevice = 'tpu'\n", "models.device"),
        ("bogus = 1\n", "bogus"),
    ],
)
def test_invalid_config_names_the_key(tmp_path: Path, text: str, key: str) -> None:
    cfg = tmp_path / "bad.toml"
    cfg.write_text(text)
    with pytest.raises(ConfigError, match=f"'{key}'"):
        load_settings(cfg, environ={})


def test_broken_toml_and_missing_file(tmp_path: Path) -> None:
    cfg = tmp_path / "broken.toml"
    cfg.write_text("[http\nport=1")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(cfg, environ={})
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "nope.toml", environ={})


def test_env_config_file_and_roots(tmp_path: Path) -> None:
    cfg = tmp_path / "env.toml"
    cfg.write_text(f'roots = ["{tmp_path}"]\ndata_dir = "{tmp_path / "d"}"\n')
    s = load_settings(environ={"QUIVER_CONFIG": str(cfg)})
    assert s.root_paths() == [tmp_path.resolve(), (tmp_path / "d").resolve()]
