"""Fetching ``http(s)://`` URLs for parse and ingest, behind an SSRF guard.

A URL a model hands a server must not reach what the server can reach but the model's user
should not: the loopback interface, the private network, link-local addresses (cloud metadata at
169.254.169.254), carrier-grade NAT, multicast, reserved ranges. So:

* the host name is resolved once and EVERY address it resolves to must be public (unless
  ``fetch.allow_private_networks`` / ``fetch.allow_loopback`` say otherwise); the connection then
  goes to that checked address (the ``Host`` header and TLS server name stay the original host's),
  so a second DNS answer cannot swap in an internal address;
* redirects are followed by hand, each target checked the same way, at most ``fetch.max_redirects``;
* the body is read in pieces up to ``fetch.max_mb`` and the whole fetch stops at ``fetch.timeout_s``;
* URLs carrying credentials, other schemes and other ports than the URL names are refused.
"""

from __future__ import annotations

import ipaddress
import mimetypes
import re
import socket
import time
from dataclasses import dataclass
from pathlib import PurePosixPath
from urllib.parse import unquote, urljoin, urlsplit, urlunsplit

import httpx

from servers.core.errors import AccessDenied, InvalidInput, NotFound, Timeout, TooLarge
from servers.core.roots import MB
from servers.core.settings import FetchSettings

REDIRECTS = (301, 302, 303, 307, 308)
CGNAT = ipaddress.ip_network("100.64.0.0/10")
EXTENSIONS = {  # content type -> extension when the URL path has none the parsers know
    "text/html": ".html", "application/xhtml+xml": ".html", "application/pdf": ".pdf", "text/markdown": ".md",
    "text/plain": ".txt", "text/csv": ".csv", "application/json": ".json", "application/xml": ".xml",
    "text/xml": ".xml", "application/rss+xml": ".xml", "application/atom+xml": ".xml",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": ".docx",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation": ".pptx",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": ".xlsx",
    "image/png": ".png", "image/jpeg": ".jpg", "application/epub+zip": ".epub", "application/zip": ".zip",
}


def is_url(text: str) -> bool:
    return bool(re.match(r"(?i)^https?://", text.strip()))


@dataclass
class Fetched:
    """A fetched document: the URL asked for, where it ended, a file name for the parsers, its bytes."""

    url: str
    final_url: str
    filename: str
    content_type: str
    data: bytes


def address_problem(address: str, cfg: FetchSettings) -> str | None:
    """Why ``address`` may not be fetched from (None when it may)."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip.is_loopback:
        return None if cfg.allow_loopback else "a loopback address (fetch.allow_loopback)"
    if ip.is_link_local:
        return "a link-local address (cloud metadata lives there; never fetched)"
    if ip.is_multicast or ip.is_unspecified or ip.is_reserved:
        return "a multicast, unspecified or reserved address"
    if ip.is_private or (isinstance(ip, ipaddress.IPv4Address) and ip in CGNAT) or not ip.is_global:
        return None if cfg.allow_private_networks else "a private-network address (fetch.allow_private_networks)"
    return None


def _resolve(host: str, port: int, cfg: FetchSettings) -> str:
    """The one checked address to connect to for ``host`` (every address it resolves to must pass)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise NotFound(f"cannot resolve host '{host}': {exc.strerror or exc}") from exc
    addresses = list(dict.fromkeys(info[4][0] for info in infos))
    for address in addresses:
        problem = address_problem(address, cfg)
        if problem:
            raise AccessDenied(
                f"refusing to fetch from {host} ({address}): it is {problem}. URLs may only reach public "
                "addresses; allow local ones in the config's [fetch] section if you mean it"
            )
    if not addresses:
        raise NotFound(f"host '{host}' resolves to no address")
    return addresses[0]


def _target(url: str, cfg: FetchSettings) -> tuple[str, str, str]:
    """(URL to connect to with the checked IP, Host header value, TLS server name) for ``url``."""
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https"):
        raise InvalidInput(f"only http(s) URLs are fetched, not '{parts.scheme}://'")
    if parts.username or parts.password:
        raise InvalidInput("URLs with credentials (user:password@) are refused: fetch public documents only")
    host = parts.hostname
    if not host:
        raise InvalidInput(f"URL '{url}' has no host")
    try:
        port = parts.port or (443 if parts.scheme.lower() == "https" else 80)
    except ValueError as exc:
        raise InvalidInput(f"URL '{url}' has a bad port: {exc}") from exc
    address = _resolve(host, port, cfg)
    shown = f"[{address}]" if ":" in address else address
    netloc = f"{shown}:{port}"
    host_header = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit((parts.scheme, netloc, parts.path or "/", parts.query, "")), host_header, host


def _filename(url: str, content_type: str, disposition: str) -> str:
    match = re.search(r'filename\*?=(?:UTF-8\'\')?"?([^";]+)"?', disposition or "")
    name = unquote(match.group(1)) if match else PurePosixPath(unquote(urlsplit(url).path)).name
    name = re.sub(r"[^\w.\- ]", "_", name)[:120] or "download"
    mime = content_type.split(";", 1)[0].strip().lower()
    if not PurePosixPath(name).suffix or mimetypes.guess_type(name)[0] is None:
        extension = EXTENSIONS.get(mime) or mimetypes.guess_extension(mime or "") or ""
        if extension and not name.endswith(extension):
            name += extension
    return name


def fetch_url(url: str, cfg: FetchSettings, *, max_mb: float | None = None) -> Fetched:
    """GET ``url`` under the guard (see the module doc): the final document's bytes, at most ``max_mb``."""
    if not cfg.enabled:
        raise AccessDenied("fetching URLs is disabled on this server (fetch.enabled = false); pass a file instead")
    limit = int((max_mb if max_mb is not None else cfg.max_mb) * MB)
    deadline = time.monotonic() + cfg.timeout_s
    current = url.strip()
    with httpx.Client(timeout=httpx.Timeout(cfg.timeout_s), follow_redirects=False, trust_env=False) as client:
        for _ in range(cfg.max_redirects + 1):
            target, host_header, server_name = _target(current, cfg)
            headers = {"Host": host_header, "User-Agent": "quiver-fetch", "Accept": "*/*"}
            try:
                with client.stream("GET", target, headers=headers, extensions={"sni_hostname": server_name}) as response:
                    if response.status_code in REDIRECTS and response.headers.get("location"):
                        current = urljoin(current, response.headers["location"])
                        continue
                    if response.status_code >= 400:
                        raise NotFound(f"{current} answered HTTP {response.status_code}: check the URL")
                    declared = int(response.headers.get("content-length") or 0)
                    if declared > limit:
                        raise TooLarge(f"{current} is {declared / MB:.1f} MB, over the {limit / MB:g} MB limit (fetch.max_mb)")
                    chunks, size = [], 0
                    for chunk in response.iter_bytes():
                        size += len(chunk)
                        if size > limit:
                            raise TooLarge(f"{current} is larger than the {limit / MB:g} MB limit (fetch.max_mb)")
                        if time.monotonic() > deadline:
                            raise Timeout(f"fetching {current} took longer than {cfg.timeout_s:g} s (fetch.timeout_s)")
                        chunks.append(chunk)
                    content_type = response.headers.get("content-type", "")
                    name = _filename(current, content_type, response.headers.get("content-disposition", ""))
                    return Fetched(url=url, final_url=current, filename=name, content_type=content_type,
                                   data=b"".join(chunks))
            except httpx.TimeoutException as exc:
                raise Timeout(f"fetching {current} took longer than {cfg.timeout_s:g} s (fetch.timeout_s)") from exc
            except httpx.HTTPError as exc:
                raise NotFound(f"cannot fetch {current}: {type(exc).__name__}: {exc}") from exc
    raise InvalidInput(f"{url} redirected more than {cfg.max_redirects} times (fetch.max_redirects)")
