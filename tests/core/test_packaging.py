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


# The MCP registry's rules for server.json (schema 2025-10-17, written out here: the tests run offline).
SERVER_NAME = r"[a-zA-Z0-9.-]+/[a-zA-Z0-9._-]+"
VERSION_RANGE = re.compile(r"^[\^~<>=]|\.x$|\*|^latest$")
INPUT_FORMATS = {"string", "number", "boolean", "filepath"}


def _input_problems(where: str, item: dict) -> list[str]:
    problems = []
    if item.get("format", "string") not in INPUT_FORMATS:
        problems.append(f"{where}: format {item['format']!r} is not one of {sorted(INPUT_FORMATS)}")
    for key in ("isRequired", "isSecret", "isRepeated"):
        if key in item and not isinstance(item[key], bool):
            problems.append(f"{where}: {key} must be a boolean")
    for key in ("default", "value", "description", "placeholder", "valueHint"):
        if key in item and not isinstance(item[key], str):
            problems.append(f"{where}: {key} must be a string")
    if "choices" in item and not all(isinstance(c, str) for c in item["choices"]):
        problems.append(f"{where}: choices must be strings")
    if "default" in item and "choices" in item and item["default"] not in item["choices"]:
        problems.append(f"{where}: default is not among the choices")
    return problems


def registry_problems(entry: dict) -> list[str]:
    """What the MCP registry would refuse in a server.json (an empty list: it accepts it)."""
    problems = []
    if not re.fullmatch(SERVER_NAME, entry.get("name", "")) or not 3 <= len(entry["name"]) <= 200:
        problems.append("name must be reverse-DNS with exactly one '/' (3-200 characters)")
    if not 1 <= len(entry.get("description", "")) <= 100:
        problems.append("description must be 1-100 characters")
    if "title" in entry and not 1 <= len(entry["title"]) <= 100:
        problems.append("title must be 1-100 characters")
    if not entry.get("version") or VERSION_RANGE.search(entry["version"]):
        problems.append("version must be one exact version")
    for key in ("websiteUrl", "$schema"):
        if key in entry and not entry[key].startswith("https://"):
            problems.append(f"{key} must be an https URI")
    repo = entry.get("repository")
    if repo is not None and not (repo.get("url", "").startswith("https://") and repo.get("source")):
        problems.append("repository needs url and source")
    for i, package in enumerate(entry.get("packages", [])):
        where = f"packages[{i}]"
        if package.get("registryType") not in {"npm", "pypi", "nuget", "oci", "mcpb"}:
            problems.append(f"{where}: unknown registryType")
        if package.get("transport", {}).get("type") not in {"stdio", "streamable-http", "sse"}:
            problems.append(f"{where}: transport.type must be stdio, streamable-http or sse")
        if package.get("registryType") in {"npm", "pypi", "nuget"}:
            if not package.get("identifier"):
                problems.append(f"{where}: identifier is required")
            if not package.get("version") or VERSION_RANGE.search(package["version"]):
                problems.append(f"{where}: version must be one exact version")
        for kind in ("packageArguments", "runtimeArguments"):
            for j, arg in enumerate(package.get(kind, [])):
                at = f"{where}.{kind}[{j}]"
                problems += _input_problems(at, arg)
                if arg.get("type") == "positional" and "value" not in arg and "valueHint" not in arg:
                    problems.append(f"{at}: a positional argument needs value or valueHint")
                elif arg.get("type") == "named" and not arg.get("name"):
                    problems.append(f"{at}: a named argument needs name")
                elif arg.get("type") not in {"positional", "named"}:
                    problems.append(f"{at}: type must be positional or named")
        if package.get("runtimeArguments") and not package.get("runtimeHint"):
            problems.append(f"{where}: runtimeArguments need a runtimeHint")
        for j, env in enumerate(package.get("environmentVariables", [])):
            problems += _input_problems(f"{where}.environmentVariables[{j}]", env)
            if not env.get("name"):
                problems.append(f"{where}.environmentVariables[{j}]: name is required")
    return problems


def test_server_json_follows_the_registry_rules() -> None:
    entry = json.loads((REPO / "server.json").read_text())
    assert registry_problems(entry) == []


def test_the_registry_rules_refuse_what_the_registry_refuses() -> None:
    good = json.loads((REPO / "server.json").read_text())
    bad_cases = [
        {**good, "name": "quiver"},
        {**good, "description": "x" * 101},
        {**good, "version": "^0.1.0"},
        {**good, "packages": [{**good["packages"][0], "version": "latest"}]},
        {**good, "packages": [{**good["packages"][0], "packageArguments": [{"type": "positional"}]}]},
        {**good, "packages": [{**good["packages"][0], "transport": {"type": "websocket"}}]},
    ]
    for case in bad_cases:
        assert registry_problems(case), case
