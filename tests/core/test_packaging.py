"""What installs Quiver by name stays in step with the code: server.json (MCP registry) and the Dockerfile."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

from servers.core.cli import build_parser
from servers.core.registry import server_names

REPO = Path(__file__).resolve().parents[2]
PROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]


def test_server_json_names_the_package_its_version_and_a_command_the_cli_accepts() -> None:
    entry = json.loads((REPO / "server.json").read_text())
    assert entry["version"] == PROJECT["version"]
    assert f"<!-- mcp-name: {entry['name']} -->" in (REPO / "README.md").read_text()  # PyPI ownership marker
    (package,) = entry["packages"]
    assert (package["registryType"], package["identifier"], package["version"]) == ("pypi", PROJECT["name"], PROJECT["version"])
    args = package["packageArguments"]
    server = next(a for a in args if a.get("valueHint") == "server")
    assert server["choices"] == server_names()
    for name in server_names():
        argv: list[str] = []
        for a in args:
            if a["type"] == "positional":
                argv.append(a.get("value", name))
            else:
                argv += [a["name"], "/srv/docs"]
        parsed = build_parser().parse_args(argv)
        assert (parsed.command, parsed.name, parsed.root) == ("serve", name, ["/srv/docs"])


def test_dockerfile_copies_what_exists_and_its_command_is_a_valid_quiver_command() -> None:
    text = (REPO / "Dockerfile").read_text()
    for line in re.findall(r"^COPY (.+)$", text, flags=re.M):
        for source in line.split()[:-1]:
            assert (REPO / source).exists(), source
    entrypoint = json.loads(re.search(r"^ENTRYPOINT (.+)$", text, flags=re.M).group(1))  # type: ignore[union-attr]
    command = json.loads(re.search(r"^CMD (.+)$", text, flags=re.M).group(1))  # type: ignore[union-attr]
    assert entrypoint == ["quiver"]
    parsed = build_parser().parse_args(command)
    assert (parsed.name, parsed.transport, parsed.root) == ("all", "http", ["/docs"])
