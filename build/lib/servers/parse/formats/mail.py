"""E-mail (``.eml``, RFC 5322 / MIME, read with the standard library) → Markdown: the
subject as the title, a header block (From, To, Cc, Date), the body (plain text when
the message has it, else its HTML converted), then the attachments: listed, and those
of a supported type parsed as sections (nested one level per ``parse.archive_max_depth``).

The rendering is shared with Outlook ``.msg`` files (``outlook.py``)."""

from __future__ import annotations

import email
import email.policy
import email.utils
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from servers.core.errors import InvalidInput
from servers.parse.formats import Converted
from servers.parse.formats.embedded import member_section, nest

if TYPE_CHECKING:
    from email.message import EmailMessage

    from servers.core.settings import ParseSettings


@dataclass
class Attachment:
    name: str
    content_type: str
    data: bytes


@dataclass
class Mail:
    """A message reduced to what the Markdown shows."""

    subject: str = ""
    sender: str = ""
    to: str = ""
    cc: str = ""
    date: str | None = None
    text: str = ""
    html: str = ""
    attachments: list[Attachment] = field(default_factory=list)
    extra: dict[str, str] = field(default_factory=dict)


def _clean(value: object) -> str:
    return " ".join(str(value or "").split())


def _iso(value: str) -> str | None:
    if not value:
        return None
    try:
        return email.utils.parsedate_to_datetime(value).isoformat()
    except (TypeError, ValueError, IndexError):
        return value


def render(mail: Mail, name: str, settings: ParseSettings) -> Converted:
    """The Markdown of a message and its attachments."""
    from servers.parse.formats.html import convert_html

    parts = [f"# {mail.subject or '(no subject)'}"]
    header = [f"- **{label}:** {value}" for label, value in
              (("From", mail.sender), ("To", mail.to), ("Cc", mail.cc), ("Date", mail.date)) if value]
    if header:
        parts.append("\n".join(header))
    body = mail.text.replace("\r\n", "\n").strip()
    if not body and mail.html.strip():
        body = nest(convert_html(mail.html, name).markdown, 1)
    if body:
        parts.append(body)
    warnings: list[str] = []
    attached: list[dict[str, object]] = []
    if mail.attachments:
        parts.append("## Attachments\n\n" + "\n".join(
            f"- {a.name} ({a.content_type}, {len(a.data):,} bytes)" for a in mail.attachments))
        for att in mail.attachments:
            member = member_section(f"Attachment: {att.name}", att.data, att.name, settings)
            if member.error and "unsupported file type" in member.error:
                attached.append({"name": att.name, "parsed": False})
                continue
            parts.append(member.section)
            warnings.extend(member.warnings)
            if member.error:
                warnings.append(f"attachment {att.name} could not be parsed: {member.error}")
            attached.append({"name": att.name, "parsed": member.error is None, "format": member.format})
    extra: dict[str, object] = {k: v for k, v in (("from", mail.sender), ("to", mail.to), ("cc", mail.cc)) if v}
    extra.update(mail.extra)
    if attached:
        extra["attachments"] = attached
    return Converted(
        markdown="\n\n".join(parts) + "\n",
        title=mail.subject or None,
        author=mail.sender or None,
        created=mail.date,
        extra=extra,
        warnings=warnings,
    )


def _decoded(part: EmailMessage) -> str:
    try:
        return str(part.get_content())
    except (LookupError, ValueError, AssertionError):
        payload = part.get_payload(decode=True) or b""
        return payload.decode("utf-8", "replace") if isinstance(payload, bytes) else str(payload)


def convert_eml(data: bytes, name: str, settings: ParseSettings) -> Converted:
    if not data.strip():
        raise InvalidInput(f"{name} is empty (0 bytes); nothing to parse")
    message = email.message_from_bytes(data, policy=email.policy.default)
    if not any(message.get(h) for h in ("From", "To", "Subject", "Date", "Message-ID")):
        raise InvalidInput(f"{name} has no e-mail headers (From, To, Subject, Date); is it really an .eml message?")
    mail = Mail(
        subject=_clean(message.get("Subject")),
        sender=_clean(message.get("From")),
        to=_clean(message.get("To")),
        cc=_clean(message.get("Cc")),
        date=_iso(_clean(message.get("Date"))),
    )
    body = message.get_body(preferencelist=("plain",))
    html = message.get_body(preferencelist=("html",))
    mail.text = _decoded(body) if body is not None else ""
    mail.html = _decoded(html) if html is not None else ""
    for part in message.iter_attachments():
        if part.get_content_maintype() == "multipart":
            continue
        filename = part.get_filename() or ("message.eml" if part.get_content_type() == "message/rfc822" else "attachment")
        if part.get_content_type() == "message/rfc822":
            inner = part.get_payload()
            payload = (inner[0] if isinstance(inner, list) else inner).as_bytes() if inner else b""
        else:
            payload = part.get_payload(decode=True) or b""
        mail.attachments.append(Attachment(filename, part.get_content_type(), payload))
    if message.get("Message-ID"):
        mail.extra["message_id"] = _clean(message.get("Message-ID"))
    return render(mail, name, settings)
