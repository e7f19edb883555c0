"""ZIP archives: every member parsed by its own type, as a section named by its path.

Guarded before anything is read: member count (``parse.archive_max_members``), total
unzipped size (``parse.max_uncompressed_mb``, checked by the caller), nesting depth
(``parse.archive_max_depth``), member paths that climb out of the archive
(``../../x``, absolute paths), archives that contain themselves, and encryption. A
member that fails to parse is reported in its section and in the warnings; the
others still parse."""

from __future__ import annotations

import io
import posixpath
import zipfile
from pathlib import PurePosixPath
from typing import TYPE_CHECKING

from servers.core.errors import InvalidInput, TooLarge
from servers.parse.formats import Converted
from servers.parse.formats.embedded import member_section, nesting_depth

if TYPE_CHECKING:
    from servers.core.settings import ParseSettings

JUNK = ("__MACOSX/", ".DS_Store", "Thumbs.db", "desktop.ini")


def _unsafe(name: str) -> bool:
    path = name.replace("\\", "/")
    return path.startswith("/") or (len(path) > 1 and path[1] == ":") or ".." in PurePosixPath(path).parts


def convert_zip(data: bytes, name: str, settings: ParseSettings) -> Converted:
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        infos = archive.infolist()
    except (zipfile.BadZipFile, ValueError, OSError) as exc:
        raise InvalidInput(f"{name} is a corrupted zip archive ({exc}); re-create the archive") from exc
    files = [i for i in infos if not i.is_dir()]
    if len(files) > settings.archive_max_members:
        raise TooLarge(
            f"{name} holds {len(files)} files, over parse.archive_max_members ({settings.archive_max_members}); "
            "split the archive or extract it and use parse_files on the folder"
        )
    bad = [i.filename for i in files if _unsafe(i.filename)]
    if bad:
        raise InvalidInput(
            f"{name} has members whose paths climb out of the archive ({', '.join(repr(b) for b in bad[:3])}): "
            "refusing a path-traversal archive; re-create it with relative paths"
        )
    encrypted = [i for i in files if i.flag_bits & 0x1]
    if files and len(encrypted) == len(files):
        raise InvalidInput(
            f"{name} is a password-protected (encrypted) zip archive; extract it with its password and parse the files"
        )
    sections: list[str] = []
    warnings: list[str] = []
    members: list[dict[str, object]] = []
    skipped: list[str] = []
    for info in files:
        path = info.filename
        base = posixpath.basename(path)
        if path.startswith(JUNK[0]) or base in JUNK[1:] or base.startswith("._"):
            continue
        if info.flag_bits & 0x1:
            warnings.append(f"{path}: encrypted member skipped (needs the archive's password)")
            members.append({"path": path, "ok": False, "error": "encrypted"})
            continue
        try:
            with archive.open(info) as handle:
                blob = handle.read(info.file_size + 1)
        except (zipfile.BadZipFile, RuntimeError, NotImplementedError, OSError, EOFError, ValueError) as exc:
            warnings.append(f"{path} could not be unzipped ({type(exc).__name__}: {str(exc)[:120]})")
            members.append({"path": path, "ok": False, "error": str(exc)[:200]})
            continue
        if blob == data or (len(blob) == len(data) and blob[:4096] == data[:4096]):
            raise InvalidInput(
                f"{name} contains itself (member {path!r} is the archive again): a recursive zip (zip quine); refusing it"
            )
        member = member_section(path, blob, base, settings)
        if member.error and "unsupported file type" in member.error:
            skipped.append(path)
            continue
        sections.append(member.section)
        warnings.extend(f"{path}: {w.split(': ', 1)[-1]}" for w in member.warnings)
        if member.error:
            warnings.append(f"{path} could not be parsed: {member.error}")
        members.append({"path": path, "ok": member.error is None, "format": member.format, "error": member.error})
    if skipped:
        shown = ", ".join(skipped[:10]) + (" ..." if len(skipped) > 10 else "")
        warnings.append(f"{len(skipped)} members of unsupported types skipped: {shown}")
    return Converted(
        markdown="\n\n".join(sections) + ("\n" if sections else ""),
        extra={"members": members, "depth": nesting_depth()},
        warnings=warnings,
    )
