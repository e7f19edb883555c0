"""RSS (0.9x/2.0, 1.0/RDF) and Atom feeds → Markdown: the feed's title and description,
then each item as a ``##`` section with its date, link, author and body (HTML converted,
its headings moved below the item's). Any other XML → its text, not its tags (XHTML
goes through the HTML converter). Parsed without DTDs, entities or network access."""

from __future__ import annotations

import email.utils

from lxml import etree

from servers.core.errors import InvalidInput
from servers.parse.formats import Converted
from servers.parse.formats.embedded import nest

ATOM = "http://www.w3.org/2005/Atom"
RSS1 = "http://purl.org/rss/1.0/"
CONTENT = "http://purl.org/rss/1.0/modules/content/"
DC = "http://purl.org/dc/elements/1.1/"
RDF = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
PARSER = etree.XMLParser(
    resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False, remove_comments=True, remove_pis=True
)


def _local(node: etree._Element) -> str:
    return etree.QName(node).localname if isinstance(node.tag, str) else ""


def _child(node: etree._Element, *names: str) -> etree._Element | None:
    for child in node:
        if isinstance(child.tag, str) and (child.tag in names or _local(child) in names):
            return child
    return None


def _text(node: etree._Element | None) -> str:
    return " ".join("".join(node.itertext()).split()) if node is not None else ""


def _date(value: str) -> str:
    value = value.strip()
    try:
        return email.utils.parsedate_to_datetime(value).isoformat()
    except (TypeError, ValueError, IndexError):
        return value


def _html(fragment: str, name: str) -> str:
    from servers.parse.formats.html import convert_html

    if not fragment.strip():
        return ""
    if "<" not in fragment:
        return " ".join(fragment.split())
    return nest(convert_html(f"<html><body>{fragment}</body></html>", name).markdown, 2)


def _atom_content(node: etree._Element | None) -> str:
    if node is None:
        return ""
    if node.get("type") == "xhtml":
        return "".join(etree.tostring(child, encoding="unicode") for child in node)
    return node.text or ""


def _item(title: str, date: str, link: str, author: str, body: str) -> str:
    lines = [f"## {title or 'Untitled'}"]
    facts = [x for x in (date and f"Published: {date}", author and f"By: {author}", link and f"Link: <{link}>") if x]
    if facts:
        lines.append(" · ".join(facts))
    if body:
        lines.append(body)
    return "\n\n".join(lines)


def _own_text(node: etree._Element | None) -> str:
    return node.text or "" if node is not None else ""


def _rss(root: etree._Element, name: str) -> Converted:
    channel = _child(root, "channel")
    if channel is None:
        raise InvalidInput(f"{name} is an RSS feed without a <channel>; the feed is malformed")
    holder = channel if _child(channel, "item") is not None else root  # RSS 1.0 keeps items beside the channel
    title = _text(_child(channel, "title"))
    parts = [f"# {title}"] if title else []
    description = _html(_own_text(_child(channel, "description")), name)
    if description:
        parts.append(description)
    items = [n for n in holder if _local(n) == "item"]
    for item in items:
        body = _own_text(_child(item, f"{{{CONTENT}}}encoded")) or _own_text(_child(item, "description"))
        date = _text(_child(item, "pubDate")) or _text(_child(item, f"{{{DC}}}date"))
        author = _text(_child(item, "author")) or _text(_child(item, f"{{{DC}}}creator"))
        link = _text(_child(item, "link")) or item.get(f"{{{RDF}}}about", "")
        parts.append(_item(_text(_child(item, "title")), _date(date) if date else "", link, author, _html(body, name)))
    updated = next(
        (t for t in (_text(_child(channel, k)) for k in ("lastBuildDate", "pubDate", f"{{{DC}}}date")) if t), ""
    )
    extra = {"feed": "rss", "link": _text(_child(channel, "link")), "language": _text(_child(channel, "language")),
             "items": len(items)}
    return Converted(
        markdown="\n\n".join(parts) + "\n",
        title=title or None,
        author=_text(_child(channel, "managingEditor")) or _text(_child(channel, f"{{{DC}}}creator")) or None,
        modified=_date(updated) if updated else None,
        extra={k: v for k, v in extra.items() if v},
    )


def _atom_link(node: etree._Element) -> str:
    links = [c for c in node if _local(c) == "link"]
    best = next((c for c in links if c.get("rel", "alternate") == "alternate"), links[0] if links else None)
    return best.get("href", "") if best is not None else ""


def _atom(root: etree._Element, name: str) -> Converted:
    title = _text(_child(root, f"{{{ATOM}}}title"))
    parts = [f"# {title}"] if title else []
    subtitle = _text(_child(root, f"{{{ATOM}}}subtitle"))
    if subtitle:
        parts.append(subtitle)
    entries = [n for n in root if n.tag == f"{{{ATOM}}}entry"]
    for entry in entries:
        content = _child(entry, f"{{{ATOM}}}content")
        if content is None or not (content.text or len(content)):
            content = _child(entry, f"{{{ATOM}}}summary")
        by = _child(entry, f"{{{ATOM}}}author")
        author = _text(_child(by, f"{{{ATOM}}}name")) if by is not None else ""
        date = _text(_child(entry, f"{{{ATOM}}}published")) or _text(_child(entry, f"{{{ATOM}}}updated"))
        body = _atom_content(content)
        if content is not None and content.get("type") in (None, "text"):
            body = " ".join(body.split())
        else:
            body = _html(body, name)
        parts.append(_item(_text(_child(entry, f"{{{ATOM}}}title")), date, _atom_link(entry), author, body))
    feed_author = _child(root, f"{{{ATOM}}}author")
    return Converted(
        markdown="\n\n".join(parts) + "\n",
        title=title or None,
        author=(_text(_child(feed_author, f"{{{ATOM}}}name")) or None) if feed_author is not None else None,
        modified=_text(_child(root, f"{{{ATOM}}}updated")) or None,
        extra={k: v for k, v in (("feed", "atom"), ("link", _atom_link(root)), ("items", len(entries))) if v},
    )


def _plain_xml(root: etree._Element) -> Converted:
    paragraphs: list[str] = []
    for node in root.iter():
        if not isinstance(node.tag, str):
            continue
        for piece in (node.text, node.tail if node is not root else None):
            text = " ".join((piece or "").split())
            if text:
                paragraphs.append(text)
    title = _text(_child(root, "title")) or None
    return Converted(markdown="\n\n".join(paragraphs) + ("\n" if paragraphs else ""), title=title,
                     extra={"root": _local(root)})


def convert_xml(data: bytes, name: str) -> tuple[Converted, str | None]:
    """(result, encoding) for a feed or any other XML document."""
    if not data.strip():
        raise InvalidInput(f"{name} is empty; nothing to parse")
    try:
        root = etree.fromstring(data, PARSER)
    except etree.XMLSyntaxError as exc:
        raise InvalidInput(f"{name} is not well-formed XML ({exc}); fix the file or parse it as text (.txt)") from exc
    if root is None:
        raise InvalidInput(f"{name} holds no XML element")
    encoding = root.getroottree().docinfo.encoding
    local = _local(root).lower()
    if local == "rss" or (local == "rdf" and any(n.tag == f"{{{RSS1}}}channel" for n in root)):
        return _rss(root, name), encoding
    if root.tag == f"{{{ATOM}}}feed":
        return _atom(root, name), encoding
    if local == "html":
        from servers.parse.formats.html import convert_html

        return convert_html(data.decode(encoding or "utf-8", "replace"), name), encoding
    return _plain_xml(root), encoding
