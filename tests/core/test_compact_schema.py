"""tools/list schemas are compacted without changing what they accept."""

from __future__ import annotations

import asyncio
import json
from typing import Literal

import jsonschema
import pytest
from pydantic import BaseModel, Field

from servers.core.compact_schema import compact_input_schema, compact_output_schema
from servers.core.registry import build_server, server_names
from servers.core.settings import Settings


class Inner(BaseModel):
    score: float | None = None
    label: Literal["a", "b"] | None = None


class Result(BaseModel):
    name: str = Field(description="a name")
    count: int | None = None
    inner: Inner | None = None
    items: list[Inner] = []


class Args(BaseModel):
    kb: str = Field(description="which knowledge base")
    top_k: int | None = Field(None, description="how many")
    mode: Literal["x", "y"] | None = None
    keep: int | None = Field(3, description="null means keep all")


def _keys(node: object) -> list[str]:
    if isinstance(node, dict):
        return [k for k in node] + [k for v in node.values() for k in _keys(v)]
    if isinstance(node, list):
        return [k for v in node for k in _keys(v)]
    return []


def _string_titles(node: object) -> list[str]:
    """``title`` keywords (a string value; a property called ``title`` maps to a schema object)."""
    if isinstance(node, dict):
        own = [node["title"]] if isinstance(node.get("title"), str) else []
        return own + [t for v in node.values() for t in _string_titles(v)]
    if isinstance(node, list):
        return [t for v in node for t in _string_titles(v)]
    return []


def test_an_output_schema_loses_titles_and_descriptions_but_still_accepts_every_result() -> None:
    full = Result.model_json_schema()
    small = compact_output_schema(full)
    assert len(json.dumps(small)) < len(json.dumps(full))
    assert "description" not in _keys(small) and "default" not in _keys(small)
    assert small["properties"]["count"] == {"type": ["integer", "null"]}
    # a nullable enum keeps its anyOf: ``type: [string, null]`` with the enum would refuse null
    assert "anyOf" in small["$defs"]["Inner"]["properties"]["label"]
    for value in (Result(name="n"), Result(name="n", count=2, inner=Inner(score=1.5, label="a"), items=[Inner()])):
        jsonschema.validate(value.model_dump(mode="json"), small)
    with pytest.raises(jsonschema.ValidationError):  # a wrong type is still refused
        jsonschema.validate({"name": "n", "count": "two"}, small)


def test_an_optional_argument_is_its_plain_type_and_keeps_its_description() -> None:
    small = compact_input_schema(Args.model_json_schema())
    props = small["properties"]
    assert "title" not in small and all("title" not in p for p in props.values())
    assert props["top_k"] == {"type": "integer", "description": "how many"}
    assert props["mode"] == {"enum": ["x", "y"], "type": "string"}
    # null with a non-null default means something: kept
    assert "anyOf" in props["keep"] and props["keep"]["default"] == 3
    assert small["required"] == ["kb"]


def test_every_servers_tools_list_has_no_titles_or_null_defaults_in_its_schemas(tmp_path) -> None:
    async def listing() -> list[dict]:
        out = []
        for name in server_names():
            tools = await build_server(name, Settings(data_dir=str(tmp_path / name))).list_tools()
            out += [t.model_dump(mode="json", by_alias=True, exclude_none=True) for t in tools]
        return out

    for tool in asyncio.run(listing()):
        for schema in (tool["inputSchema"], tool.get("outputSchema") or {}):
            assert not _string_titles(schema), tool["name"]
        for arg, spec in tool["inputSchema"].get("properties", {}).items():
            assert not ("anyOf" in spec and spec.get("default", 0) is None), (tool["name"], arg)
