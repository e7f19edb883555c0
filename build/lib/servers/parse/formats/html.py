"""HTML → Markdown with BeautifulSoup + lxml: the main content (``<main>``/``<article>``
or the body) with headings, paragraphs, lists, tables, links, code blocks and quotes;
scripts, styles, navigation, footers and forms' chrome are dropped."""

from __future__ import annotations

import re

from bs4 import BeautifulSoup, Comment, NavigableString, Tag

from servers.parse.formats import Converted
from servers.parse.markdown import cell_text, table_markdown

DROP = ["script", "style", "noscript", "template", "nav", "footer", "svg", "canvas", "iframe", "button", "head"]
BLOCKS = {
    "p", "div", "section", "article", "main", "header", "aside", "figure", "figcaption", "form", "fieldset",
    "address", "details", "summary", "dl", "dt", "dd", "center", "body", "html", "label", "legend",
}
HEADINGS = {f"h{i}": i for i in range(1, 7)}
SKIP_LINK = re.compile(r"^(javascript:|#$)")


def _inline(node: Tag | NavigableString) -> str:
    if isinstance(node, Comment):
        return ""
    if isinstance(node, NavigableString):
        return str(node)
    name = node.name
    if name == "br":
        return "\n"
    if name == "img":
        alt = (node.get("alt") or "").strip()
        return f" {alt} " if alt else ""
    inner = "".join(_inline(c) for c in node.children)
    if name == "a":
        text = " ".join(inner.split())
        href = (node.get("href") or "").strip()
        if text and href and not SKIP_LINK.match(href):
            return f"[{text}]({href.replace(' ', '%20')})"
        return inner
    if name in ("code", "kbd", "samp") and inner.strip() and "\n" not in inner:
        return f"`{inner.strip()}`"
    if name in ("strong", "b") and inner.strip():
        return f" **{inner.strip()}** "
    if name in ("em", "i") and inner.strip():
        return f" *{inner.strip()}* "
    if name in BLOCKS or name in HEADINGS or name in ("li", "tr", "td", "th"):
        return f" {inner} "
    return inner


def _clean(text: str) -> str:
    return " ".join(text.split())


class _Writer:
    def __init__(self) -> None:
        self.blocks: list[str] = []
        self.inline: list[str] = []

    def flush(self) -> None:
        text = "".join(self.inline)
        self.inline = []
        lines = [_clean(line) for line in text.split("\n")]
        text = "\n".join(line for line in lines if line)
        if text:
            self.blocks.append(text)

    def walk(self, node: Tag, depth: int = 0) -> None:
        for child in node.children:
            if isinstance(child, Comment):
                continue
            if isinstance(child, NavigableString):
                self.inline.append(str(child))
                continue
            self.element(child, depth)

    def element(self, el: Tag, depth: int) -> None:
        name = el.name
        if name in HEADINGS:
            self.flush()
            text = _clean(_inline(el))
            if text:
                self.blocks.append("#" * HEADINGS[name] + " " + text)
        elif name in ("ul", "ol"):
            self.flush()
            lines = self.list_lines(el, 0)
            if lines:
                self.blocks.append("\n".join(lines))
        elif name == "table":
            self.flush()
            self.table(el)
        elif name == "pre":
            self.flush()
            code = el.get_text()
            lang = next((c[9:] for c in (el.find("code") or el).get("class", []) if c.startswith("language-")), "")
            self.blocks.append(f"```{lang}\n{code.strip(chr(10))}\n```")
        elif name == "blockquote":
            self.flush()
            inner = _Writer()
            inner.walk(el, depth)
            inner.flush()
            if inner.blocks:
                self.blocks.append("\n".join("> " + line for b in inner.blocks for line in b.split("\n")))
        elif name == "hr":
            self.flush()
        elif name in BLOCKS or name == "li":
            self.flush()
            self.walk(el, depth + 1)
            self.flush()
        else:
            self.inline.append(_inline(el))

    def list_lines(self, el: Tag, level: int) -> list[str]:
        lines: list[str] = []
        ordered = el.name == "ol"
        number = int(el.get("start", 1)) if str(el.get("start", "1")).isdigit() else 1
        for li in el.find_all("li", recursive=False):
            nested = [c for c in li.children if isinstance(c, Tag) and c.name in ("ul", "ol")]
            text = _clean("".join(_inline(c) for c in li.children if c not in nested))
            marker = f"{number}." if ordered else "-"
            number += 1
            if text:
                lines.append("    " * level + f"{marker} {text}")
            for sub in nested:
                lines.extend(self.list_lines(sub, level + 1))
        return lines

    def table(self, el: Tag) -> None:
        rows: list[list[str]] = []
        spans: dict[int, tuple[int, str]] = {}  # column -> (rows left, text) for rowspan
        for tr in el.find_all("tr"):
            if tr.find_parent("table") is not el:
                continue
            row: list[str] = []
            cells = [c for c in tr.find_all(["td", "th"], recursive=False)]
            col = 0
            for cell in cells:
                col = _carry_rowspans(row, spans, col)
                text = cell_text(_clean(_inline(cell)))
                colspan = int(cell.get("colspan", 1)) if str(cell.get("colspan", 1)).isdigit() else 1
                rowspan = int(cell.get("rowspan", 1)) if str(cell.get("rowspan", 1)).isdigit() else 1
                for _ in range(max(1, min(colspan, 100))):
                    if rowspan > 1:
                        spans[col] = (rowspan - 1, text)
                    row.append(text)
                    col += 1
            _carry_rowspans(row, spans, col)
            if row:
                rows.append(row)
        caption = el.find("caption")
        if caption is not None and _clean(caption.get_text()):
            self.blocks.append(_clean(caption.get_text()))
        if rows:
            self.blocks.append(table_markdown(rows))


def convert_html(text: str, name: str) -> Converted:
    soup = BeautifulSoup(text, "lxml")
    title_tag = soup.find("title")
    title = _clean(title_tag.get_text()) if title_tag else None
    meta = {
        m.get("name", "").lower(): m.get("content", "")
        for m in soup.find_all("meta")
        if m.get("name") and m.get("content")
    }
    for tag in soup(DROP):
        tag.decompose()
    for tag in soup.find_all(attrs={"role": ["navigation", "contentinfo", "banner", "search"]}):
        tag.decompose()
    for tag in soup.find_all(attrs={"aria-hidden": "true"}):
        tag.decompose()
    root = soup.find("main") or soup.find(attrs={"role": "main"}) or soup.find("article") or soup.body or soup
    writer = _Writer()
    writer.walk(root)
    writer.flush()
    markdown = "\n\n".join(writer.blocks) + "\n" if writer.blocks else ""
    if not title:
        first = re.search(r"^# (.+)$", markdown, re.MULTILINE)
        title = first.group(1) if first else None
    return Converted(
        markdown=markdown,
        title=title or None,
        author=meta.get("author") or None,
        extra={k: v for k, v in meta.items() if k in ("description", "keywords", "generator")},
    )


def _carry_rowspans(row: list[str], spans: dict[int, tuple[int, str]], col: int) -> int:
    """Repeat into ``row`` the cells that earlier rows span down into, from column ``col``; the next free column."""
    while col in spans:
        left, text = spans[col]
        row.append(text)
        spans[col] = (left - 1, text)
        if left - 1 <= 0:
            del spans[col]
        col += 1
    return col
