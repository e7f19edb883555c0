"""Outlook ``.msg`` messages → Markdown, read with olefile (an OLE compound file holding
MAPI properties as ``__substg1.0_TTTTYYYY`` streams). Subject, sender, recipients, date,
plain or HTML body, and attachments (parsed as sections when their type is supported)
are rendered like an ``.eml`` message (``mail.py``)."""

from __future__ import annotations

import datetime as dt
import email.parser
import email.policy
import struct
from typing import TYPE_CHECKING

from servers.core.errors import InvalidInput
from servers.parse.formats import Converted
from servers.parse.formats.mail import Attachment, Mail, render
from servers.parse.guards import OLE_MAGIC

if TYPE_CHECKING:
    import olefile

    from servers.core.settings import ParseSettings

PT_LONG, PT_SYSTIME = 0x0003, 0x0040
CODEPAGE, INTERNET_CPID = 0x3FFD, 0x3FDE
CLIENT_SUBMIT_TIME, DELIVERY_TIME = 0x0039, 0x0E06
MAX_ATTACHMENTS = 200


class _Props:
    """Reads MAPI properties of the message (or of one attachment storage)."""

    def __init__(self, ole: olefile.OleFileIO, storage: str = "", header: int = 32) -> None:
        self.ole = ole
        self.prefix = storage + "/" if storage else ""
        self.fixed: dict[int, tuple[int, bytes]] = {}
        path = self.prefix + "__properties_version1.0"
        if ole.exists(path):
            raw = ole.openstream(path).read()
            for offset in range(header, len(raw) - 15, 16):
                kind, pid, _flags, value = struct.unpack_from("<HHI8s", raw, offset)
                self.fixed[pid] = (kind, value)
        codepage = self.long(CODEPAGE) or self.long(INTERNET_CPID)
        self.codepage = f"cp{codepage}" if codepage and codepage not in (1200, 65001) else "utf-8" if codepage == 65001 else "cp1252"

    def long(self, pid: int) -> int | None:
        found = self.fixed.get(pid)
        return struct.unpack("<i", found[1][:4])[0] if found and found[0] == PT_LONG else None

    def time(self, pid: int) -> str | None:
        found = self.fixed.get(pid)
        if not found or found[0] != PT_SYSTIME:
            return None
        ticks = struct.unpack("<q", found[1])[0]
        if ticks <= 0:
            return None
        return (dt.datetime(1601, 1, 1, tzinfo=dt.UTC) + dt.timedelta(microseconds=ticks // 10)).isoformat()

    def raw(self, tag: str, kind: str) -> bytes | None:
        path = f"{self.prefix}__substg1.0_{tag}{kind}"
        return self.ole.openstream(path).read() if self.ole.exists(path) else None

    def text(self, tag: str) -> str:
        unicode = self.raw(tag, "001F")
        if unicode is not None:
            return unicode.decode("utf-16-le", "replace").rstrip("\x00")
        eight = self.raw(tag, "001E")
        if eight is not None:
            try:
                return eight.decode(self.codepage, "replace").rstrip("\x00")
            except LookupError:
                return eight.decode("cp1252", "replace").rstrip("\x00")
        return ""


def _clean(value: str) -> str:
    return " ".join(value.split())


def convert_msg(data: bytes, name: str, settings: ParseSettings) -> Converted:
    import olefile

    if not data:
        raise InvalidInput(f"{name} is empty (0 bytes); nothing to parse")
    if not data.startswith(OLE_MAGIC):
        hint = " (it looks like a MIME message: rename it to .eml)" if b"Subject:" in data[:8192] or data.startswith(b"From") else ""
        raise InvalidInput(
            f"{name} is not an Outlook message: .msg files are OLE compound files and this one is not{hint}; "
            "save the message from Outlook again, or export it as .eml"
        )
    try:
        ole = olefile.OleFileIO(data)
    except (OSError, ValueError, struct.error) as exc:
        raise InvalidInput(f"{name} is a damaged OLE file ({exc}); save the message from Outlook again") from exc
    try:
        top = {"/".join(entry) for entry in ole.listdir(streams=True, storages=True)}
        if not any(e.startswith("__substg1.0_") for e in top) and "__properties_version1.0" not in top:
            raise InvalidInput(f"{name} is an OLE file but not an Outlook message (no MAPI properties); is it a .doc or .xls?")
        props = _Props(ole)
        headers_text = props.text("007D")
        headers = email.parser.HeaderParser(policy=email.policy.default).parsestr(headers_text) if headers_text else None
        sender_name = _clean(props.text("0C1A"))
        address = _clean(props.text("5D01") or props.text("0C1F") or props.text("0065"))
        sender = f"{sender_name} <{address}>" if sender_name and address and "@" in address else (sender_name or address)
        if not sender and headers is not None:
            sender = _clean(str(headers.get("From") or ""))
        date = props.time(CLIENT_SUBMIT_TIME) or props.time(DELIVERY_TIME)
        if date is None and headers is not None and headers.get("Date"):
            from servers.parse.formats.mail import _iso

            date = _iso(_clean(str(headers.get("Date"))))
        html = props.raw("1013", "0102")
        mail = Mail(
            subject=_clean(props.text("0037")),
            sender=sender,
            to=_clean(props.text("0E04")),
            cc=_clean(props.text("0E03")),
            date=date,
            text=props.text("1000"),
            html=props.text("1013") or (html.decode(props.codepage if props.codepage != "cp1252" else "utf-8", "replace") if html else ""),
        )
        storages = sorted({e.split("/")[0] for e in top if e.startswith("__attach_version1.0_")})
        for storage in storages[:MAX_ATTACHMENTS]:
            att = _Props(ole, storage, header=8)
            filename = _clean(att.text("3707") or att.text("3704")) or "attachment"
            payload = att.raw("3701", "0102")
            if payload is None:
                mail.extra.setdefault("notes", "")
                mail.extra["notes"] = (mail.extra["notes"] + f" {filename}: embedded object not read;").strip()
                continue
            mail.attachments.append(Attachment(filename, _clean(att.text("370E")) or "application/octet-stream", payload))
        if len(storages) > MAX_ATTACHMENTS:
            mail.extra["notes"] = f"only the first {MAX_ATTACHMENTS} of {len(storages)} attachments were read"
    finally:
        ole.close()
    return render(mail, name, settings)
