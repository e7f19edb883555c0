"""The parse server's tools through the real in-process MCP client."""

from __future__ import annotations

import asyncio
import base64
from pathlib import Path

from mcp import Client

from protocol_tests.examples.parse import calls as protocol_examples
from servers.core.settings import Settings
from servers.parse.server import build_server


def run(coro):
    return asyncio.run(coro)


def test_tools_listed_with_schemas(settings: Settings) -> None:
    async def go():
        async with Client(build_server(settings)) as client:
            return (await client.list_tools()).tools

    tools = {t.name: t for t in run(go())}
    assert set(tools) == {"parse_document", "parse_files", "chunk", "supported_formats"}
    for tool in tools.values():
        assert tool.description and len(tool.description) > 80
        assert tool.output_schema and tool.input_schema["type"] == "object"


def test_parse_document_by_path_uri_and_base64(settings: Settings, sample_docx: Path) -> None:
    async def go():
        async with Client(build_server(settings)) as client:
            by_path = await client.call_tool("parse_document", {"path": sample_docx.name})
            by_uri = await client.call_tool(
                "parse_document", {"path": sample_docx.as_uri(), "include_markdown": False}
            )
            data = base64.b64encode(b"# Hello\n\n" + b"word " * 100).decode()
            by_b64 = await client.call_tool(
                "parse_document", {"content_base64": data, "filename": "hello.md", "max_chars": 20}
            )
            return by_path, by_uri, by_b64

    by_path, by_uri, by_b64 = run(go())
    assert not by_path.is_error
    doc = by_path.structured_content
    assert doc["format"] == "docx" and doc["title"] == "Pond Guide" and "## Food" in doc["markdown"]
    assert doc["metadata"]["author"] == "Jane Duck" and len(doc["sections"]) == 2
    assert not by_uri.is_error and by_uri.structured_content["markdown"] == ""
    assert by_uri.structured_content["markdown_chars"] == len(doc["markdown"])
    small = by_b64.structured_content
    assert small["format"] == "markdown" and small["truncated"] and len(small["markdown"]) == 20


def test_errors_are_tool_errors_and_server_keeps_serving(settings: Settings, tmp_path: Path) -> None:
    (tmp_path / "bad.pdf").write_bytes(b"%PDF-1.4 truncated")

    async def go():
        async with Client(build_server(settings)) as client:
            outside = await client.call_tool("parse_document", {"path": "/etc/passwd"})
            broken = await client.call_tool("parse_document", {"path": "bad.pdf"})
            neither = await client.call_tool("parse_document", {})
            bad_b64 = await client.call_tool("parse_document", {"content_base64": "!!!", "filename": "a.txt"})
            ok = await client.call_tool("chunk", {"text": "# A\n\nfine", "unit": "chars", "size": 32, "overlap": 0})
            return outside, broken, neither, bad_b64, ok

    outside, broken, neither, bad_b64, ok = run(go())
    assert outside.is_error and "outside the allowed roots" in outside.content[0].text
    assert broken.is_error and "corrupted" in broken.content[0].text
    assert neither.is_error and "exactly one of" in neither.content[0].text
    assert bad_b64.is_error and "base64" in bad_b64.content[0].text
    assert not ok.is_error and ok.structured_content["count"] == 1


def test_parse_files_reports_progress_and_per_file_errors(
    settings: Settings, tmp_path: Path, sample_pdf: Path, sample_xlsx: Path
) -> None:
    (tmp_path / "broken.docx").write_bytes(b"PK\x03\x04 not really")
    (tmp_path / "notes.md").write_text("# Notes\n\ntext\n")
    (tmp_path / "program.exe").write_bytes(b"MZ\x90\x00")
    progress: list[tuple[float, float | None, str | None]] = []

    async def on_progress(done: float, total: float | None, message: str | None) -> None:
        progress.append((done, total, message))

    async def go():
        async with Client(build_server(settings)) as client:
            folder = await client.call_tool("parse_files", {"folder": str(tmp_path)}, progress_callback=on_progress)
            listed = await client.call_tool(
                "parse_files", {"paths": [sample_pdf.name, "missing.txt", "../elsewhere.txt"], "include_markdown": True}
            )
            return folder, listed

    folder, listed = run(go())
    assert not folder.is_error
    result = folder.structured_content
    by_name = {Path(f["path"]).name: f for f in result["files"]}
    assert set(by_name) == {"broken.docx", "notes.md", "report.pdf", "counts.xlsx"}
    assert not by_name["broken.docx"]["ok"] and "DOCX" in by_name["broken.docx"]["error"]
    assert by_name["report.pdf"]["ok"] and by_name["report.pdf"]["pages"] == 2
    assert result["parsed"] == 3 and result["failed"] == 1
    assert any("program.exe" in s for s in result["skipped"])
    assert len(progress) >= 5 and progress[-1][0] == progress[-1][1] == 4
    assert [p[0] for p in progress] == sorted(p[0] for p in progress)
    files = listed.structured_content["files"]
    assert files[0]["ok"] and "Annual Duck Report" in files[0]["markdown"]
    assert not files[1]["ok"] and "no file" in files[1]["error"]
    assert not files[2]["ok"] and "outside the allowed roots" in files[2]["error"]


def test_chunk_tool_on_file_in_tokens(settings: Settings, sample_pdf: Path) -> None:
    async def go():
        async with Client(build_server(settings)) as client:
            return await client.call_tool(
                "chunk", {"path": str(sample_pdf), "strategy": "recursive", "size": 16, "overlap": 0, "max_chunks": 2}
            )

    result = run(go())
    assert not result.is_error, result.content
    out = result.structured_content
    assert out["count"] > 2 and len(out["chunks"]) == 2 and out["truncated"]
    assert out["chunks"][0]["pages"] == [1] and out["chunks"][0]["doc_id"] == out["doc_id"]


def test_protocol_examples_all_succeed(tmp_path: Path) -> None:
    from servers.core.settings import load_settings

    settings = load_settings(overrides={"data_dir": str(tmp_path / "data"), "roots": [str(tmp_path)]})
    calls = protocol_examples(tmp_path)
    assert {name for name, _ in calls} == {"parse_document", "parse_files", "chunk", "supported_formats"}

    async def go():
        async with Client(build_server(settings)) as client:
            return [await client.call_tool(name, args) for name, args in calls]

    results = run(go())
    for (name, _), result in zip(calls, results, strict=True):
        assert not result.is_error, (name, result.content)
    by_args = {str(args.get("path", "")).rsplit("/", 1)[-1]: r.structured_content for (_, args), r in zip(calls, results, strict=True)}
    assert "Quiver reads pictures" in by_args["sign.png"]["markdown"]  # ocr="always" on an image
    assert "> [Image text: image1.png]" in by_args["memo.docx"]["markdown"]  # ocr_images=true
    assert "reads pictures" in by_args["memo.docx"]["markdown"]
