"""Knowledge bases as Milvus collections, one per knowledge base, through ``pymilvus.MilvusClient``.

Milvus Lite (a folder ``DATA_DIR/milvus.db``) by default; any Milvus server or cluster when
``retrieval.milvus_uri`` (+ ``milvus_token``) is set — the same code path. A Lite file belongs to one
process, so the client is a per-process singleton per URI, its calls serialized by a lock.

Each collection records, in its properties, the embedding model name and dimension it was built
with; :meth:`Store.check_model` refuses a different model. Fields: ``id`` (chunk content hash,
primary key), ``doc_id`` (hash of the document's source), ``version`` (hash of the document's content
and ingest options), ``chunk_index`` / ``chunk_count``, ``text`` (analyzed; a BM25 function fills the
``sparse`` field), ``dense``, ``source``, ``title``, ``heading_path``, ``page``, ``tags``,
``created`` / ``updated`` (epoch seconds) and ``metadata`` (JSON).
"""

from __future__ import annotations

import hashlib
import logging
import re
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, Field

from servers.core.errors import ConfigError, InvalidInput, NotFound, QuiverError
from servers.core.settings import Settings
from servers.core.text import one_line

log = logging.getLogger(__name__)
# pymilvus logs every failed RPC with a traceback at ERROR; we translate those errors ourselves.
logging.getLogger("pymilvus").setLevel(logging.CRITICAL)

PREFIX = "quiver_"
SCHEMA_VERSION = "1"
NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,62}$")
TEXT_MAX_BYTES = 60_000
OUTPUT_FIELDS = [
    "id", "doc_id", "version", "chunk_index", "chunk_count", "text", "source", "title",
    "heading_path", "page", "tags", "created", "updated", "metadata",
]
QUERY_LIMIT = 16_384  # Milvus caps offset + limit of one query
MAX_TAGS = 32
MAX_HEADINGS = 16

T = TypeVar("T")


class KnowledgeBaseInfo(BaseModel):
    """What a knowledge base holds and how it was built."""

    name: str
    chunks: int = Field(description="chunks stored")
    documents: int = Field(description="documents stored")
    embedder: str = Field(description="embedding model the knowledge base was built with")
    dim: int = Field(description="embedding dimension")
    index_type: str
    metric: str
    vector_bytes: int = Field(description="approximate size of the dense vectors (chunks × dim × 4)")
    description: str = ""
    created: int = Field(description="creation time, epoch seconds")


def validate_kb_name(name: str) -> str:
    """A knowledge-base name: a letter, then letters, digits or underscores, at most 63 characters."""
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise InvalidInput(
            f"invalid knowledge base name {name!r}: start with a letter, then use only letters, digits and "
            "underscores (at most 63 characters), e.g. 'product_docs'"
        )
    return name


def milvus_uri(settings: Settings) -> str:
    """The configured Milvus URI, else the Milvus Lite file in the data dir."""
    return settings.retrieval.milvus_uri or str(settings.data_path / "milvus.db")


def _is_local(uri: str) -> bool:
    return "://" not in uri


def utf8_truncate(text: str, limit: int = TEXT_MAX_BYTES) -> str:
    data = text.encode("utf-8")
    return text if len(data) <= limit else data[:limit].decode("utf-8", errors="ignore")


# Milvus's expression lexer knows these escapes only (no \u or \x): everything else goes in raw,
# which it reads back exactly (tested: quotes, backslashes, control characters, NUL, non-BMP).
_MILVUS_ESCAPES = str.maketrans({"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t"})
ID_RE = re.compile(r"[0-9a-f]{32}")


def quote(value: str) -> str:
    """A Milvus string literal for ``value``: every value in an expression goes through here."""
    if not isinstance(value, str):
        raise InvalidInput(f"expected a string, got {type(value).__name__}")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidInput("a string contains an unpaired surrogate (invalid Unicode); send valid UTF-8 text") from exc
    return '"' + value.translate(_MILVUS_ESCAPES) + '"'


def validate_id(value: object, what: str = "chunk_id") -> str:
    """A chunk, document or version id as Quiver makes them: exactly 32 lowercase hex characters."""
    if not isinstance(value, str) or not ID_RE.fullmatch(value):
        shown = repr(value)[:80] if isinstance(value, str) else type(value).__name__
        raise InvalidInput(
            f"invalid {what} {shown}: ids are 32 lowercase hexadecimal characters, as returned in search hits "
            "(citation.chunk_id / citation.doc_id)"
        )
    return value


def doc_id_for(source: str) -> str:
    """The document id of a source (resolved file path, URL or name)."""
    return hashlib.sha256(f"source\x00{source}".encode()).hexdigest()[:32]


def chunk_id_for(doc_id: str, version: str, index: int, text: str) -> str:
    """A chunk's id: a hash of its document, version, position and text (re-ingesting upserts the same ids)."""
    return hashlib.sha256(f"{doc_id}\x00{version}\x00{index}\x00{text}".encode()).hexdigest()[:32]


def _strings(values: list[str]) -> str:
    return "[" + ", ".join(quote(v) for v in values) + "]"


def documents_expr(doc_ids: list[str] | None = None, sources: list[str] | None = None, where: str = "") -> str:
    """The chunks of the documents named by ids or sources (ORed), ANDed with ``where`` (a filter's
    expression); raises InvalidInput when nothing is named."""
    ors = []
    if doc_ids:
        ors.append(f"doc_id in {_strings([validate_id(d, 'doc_id') for d in doc_ids])}")
    if sources:
        # a source's doc id covers rows whatever source string they carry (stored sources are truncated)
        ors.append(f"doc_id in {_strings([doc_id_for(s) for s in sources])}")
        ors.append(f"source in {_strings(sources)}")
    if not ors and not where:
        raise InvalidInput("say what to delete: doc_ids, sources and/or a filter (to remove everything, use kb_drop)")
    parts = (["(" + " or ".join(ors) + ")"] if ors else []) + ([f"({where})"] if where else [])
    return " and ".join(parts)


class Store:
    """One Milvus connection; every call goes through :meth:`call` (locking, error translation)."""

    def __init__(self, uri: str, token: str | None = None) -> None:
        from pymilvus import MilvusClient

        self.uri = uri
        self.local = _is_local(uri)
        if self.local:
            Path(uri).expanduser().parent.mkdir(parents=True, exist_ok=True)
        self.lock = threading.RLock()
        self._loaded: set[str] = set()
        self._props: dict[str, dict[str, str]] = {}  # collection → properties (written once, at creation)
        try:
            # Lite serves the file from a gRPC thread of this process that rejects frequent keepalive
            # pings (GOAWAY "too_many_pings" during long ingests): no pings on that loopback channel.
            options = {"grpc_options": {"grpc.keepalive_time_ms": 2**31 - 1, "grpc.keepalive_permit_without_calls": 0}}
            self.client = MilvusClient(uri=uri, token=token or "", **(options if self.local else {}))
        except Exception as exc:  # Lite raises DataDirLockedError inside a ConnectionConfigException
            if self.local and _lite_locked(uri):
                raise ConfigError(
                    f"the Milvus Lite file {uri} is in use by another process (a Lite file belongs to one "
                    "process): for several clients run one `quiver serve all --transport http` and point them "
                    "at it (`quiver config CLIENT --transport http`); else stop the other Quiver retrieval "
                    "server, use another data_dir, or set retrieval.milvus_uri to a Milvus server"
                ) from exc
            raise ConfigError(
                f"cannot open Milvus at {uri!r}: {one_line(exc, 400)}; check retrieval.milvus_uri / milvus_token"
            ) from exc

    # ------------------------------------------------------------ plumbing

    def call(self, what: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run one pymilvus call (serialized for a Lite file); Milvus errors become QuiverErrors."""
        from pymilvus.exceptions import MilvusException

        try:
            if self.local:
                with self.lock:
                    return fn(*args, **kwargs)
            return fn(*args, **kwargs)
        except QuiverError:
            raise
        except MilvusException as exc:
            raise QuiverError(f"Milvus refused {what}: {one_line(getattr(exc, 'message', None) or exc, 400)}") from exc

    def collection(self, kb: str) -> str:
        return PREFIX + validate_kb_name(kb)

    def exists(self, kb: str) -> bool:
        return self.call("has_collection", self.client.has_collection, self.collection(kb))

    def require(self, kb: str) -> str:
        """The collection name of an existing knowledge base, loaded for search; else NotFound."""
        name = self.collection(kb)
        if name in self._loaded:
            return name
        if not self.call("has_collection", self.client.has_collection, name) or not self._is_ours(name):
            known = ", ".join(self.list_names()) or "none yet"
            raise NotFound(f"no knowledge base named '{kb}' (existing: {known}); create it with kb_create first")
        if name not in self._loaded:
            self.call("load_collection", self.client.load_collection, name)
            self._loaded.add(name)
        return name

    def _properties(self, name: str) -> dict[str, str]:
        if name not in self._props:
            desc = self.call("describe_collection", self.client.describe_collection, name)
            self._props[name] = dict(desc.get("properties") or {})
        return self._props[name]

    def _is_ours(self, name: str) -> bool:
        return self._properties(name).get("quiver.schema") is not None

    # ------------------------------------------------------------ knowledge bases

    def list_names(self) -> list[str]:
        names = self.call("list_collections", self.client.list_collections)
        return sorted(n[len(PREFIX):] for n in names if n.startswith(PREFIX))

    def create(
        self, kb: str, *, embedder: str, dim: int, settings: Settings, description: str = "", exist_ok: bool = False
    ) -> KnowledgeBaseInfo:
        from pymilvus import DataType, Function, FunctionType

        name = self.collection(kb)
        if self.exists(kb):
            if exist_ok:
                self.check_model(kb, embedder, dim)
                return self.info(kb)
            raise InvalidInput(f"knowledge base '{kb}' already exists; use it, or kb_drop it first to rebuild")
        cfg = settings.retrieval
        schema = self.client.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field("id", DataType.VARCHAR, is_primary=True, max_length=64)
        schema.add_field("doc_id", DataType.VARCHAR, max_length=64)
        schema.add_field("version", DataType.VARCHAR, max_length=64)
        schema.add_field("chunk_index", DataType.INT64)
        schema.add_field("chunk_count", DataType.INT64)
        analyzer = {"analyzer_params": cfg.analyzer_params} if cfg.analyzer_params else {}
        schema.add_field("text", DataType.VARCHAR, max_length=65_535, enable_analyzer=True, **analyzer)
        schema.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
        schema.add_field("dense", DataType.FLOAT_VECTOR, dim=dim)
        schema.add_field("source", DataType.VARCHAR, max_length=4096)
        schema.add_field("title", DataType.VARCHAR, max_length=2048)
        schema.add_field(
            "heading_path", DataType.ARRAY, element_type=DataType.VARCHAR, max_capacity=MAX_HEADINGS, max_length=512
        )
        schema.add_field("page", DataType.INT64)
        schema.add_field("tags", DataType.ARRAY, element_type=DataType.VARCHAR, max_capacity=MAX_TAGS, max_length=128)
        schema.add_field("created", DataType.INT64)
        schema.add_field("updated", DataType.INT64)
        schema.add_field("metadata", DataType.JSON)
        schema.add_function(
            Function(name="bm25", function_type=FunctionType.BM25, input_field_names=["text"], output_field_names=["sparse"])
        )
        index = self.client.prepare_index_params()
        index.add_index("dense", index_type=cfg.index_type, metric_type=cfg.metric, params=dict(cfg.index_params))
        index.add_index("sparse", index_type="SPARSE_INVERTED_INDEX", metric_type="BM25")
        index.add_index("doc_id", index_type="INVERTED")
        properties = {
            "quiver.schema": SCHEMA_VERSION,
            "quiver.embedder": embedder,
            "quiver.dim": str(dim),
            "quiver.metric": cfg.metric,
            "quiver.index_type": cfg.index_type,
            "quiver.description": description[:1000],
            "quiver.created": str(int(time.time())),
        }
        self.call(
            "create_collection", self.client.create_collection, name, schema=schema, index_params=index,
            properties=properties,
        )
        self.call("load_collection", self.client.load_collection, name)
        self._loaded.add(name)
        return self.info(kb)

    def drop(self, kb: str) -> None:
        name = self.require(kb)
        self.call("drop_collection", self.client.drop_collection, name)
        self._loaded.discard(name)
        self._props.pop(name, None)

    def model_of(self, kb: str) -> tuple[str, int]:
        props = self._properties(self.require(kb))
        return props.get("quiver.embedder", "?"), int(props.get("quiver.dim", "0"))

    def check_model(self, kb: str, embedder: str, dim: int) -> None:
        """Refuse to ingest or search ``kb`` with another embedding model than the one it was built with."""
        built, built_dim = self.model_of(kb)
        if built != embedder or built_dim != dim:
            raise ConfigError(
                f"knowledge base '{kb}' was built with embedding model '{built}' ({built_dim}-d), but this server "
                f"embeds with '{embedder}' ({dim}-d): set models.embedder = '{built}' in the config to use it, or "
                "kb_drop it and re-ingest with the new model"
            )

    def count(self, kb: str, expr: str = "") -> int:
        name = self.require(kb)
        rows = self.call("query", self.client.query, name, filter=expr, output_fields=["count(*)"])
        return int(rows[0]["count(*)"]) if rows else 0

    def info(self, kb: str) -> KnowledgeBaseInfo:
        name = self.require(kb)
        props = self._properties(name)
        chunks = self.count(kb)
        documents = self.count(kb, "chunk_index == 0")
        dim = int(props.get("quiver.dim", "0"))
        return KnowledgeBaseInfo(
            name=kb, chunks=chunks, documents=documents, embedder=props.get("quiver.embedder", "?"), dim=dim,
            index_type=props.get("quiver.index_type", "?"), metric=props.get("quiver.metric", "COSINE"),
            vector_bytes=chunks * dim * 4, description=props.get("quiver.description", ""),
            created=int(props.get("quiver.created", "0")),
        )

    def metric(self, kb: str) -> str:
        return self._properties(self.require(kb)).get("quiver.metric", "COSINE")

    # ------------------------------------------------------------ rows

    def upsert(self, kb: str, rows: list[dict[str, Any]]) -> None:
        if rows:
            self.call("upsert", self.client.upsert, self.require(kb), rows)

    def delete(self, kb: str, expr: str) -> int:
        """Delete the rows matching ``expr``; returns how many there were."""
        n = self.count(kb, expr)
        if n:
            self.call("delete", self.client.delete, self.require(kb), filter=expr)
        return n

    def flush(self, kb: str) -> None:
        """Seal what was written (searches over unsealed segments are much slower)."""
        self.call("flush", self.client.flush, self.require(kb))

    def query(
        self, kb: str, expr: str, *, fields: list[str] | None = None, limit: int = QUERY_LIMIT
    ) -> list[dict[str, Any]]:
        return self.call(
            "query", self.client.query, self.require(kb), filter=expr, output_fields=fields or OUTPUT_FIELDS,
            limit=min(limit, QUERY_LIMIT),
        )

    def iter_query(self, kb: str, expr: str, *, fields: list[str], batch: int = 4096) -> Iterator[dict[str, Any]]:
        """Every row matching ``expr``: one query, or an iterator past one query's limit."""
        rows = self.query(kb, expr, fields=fields)
        if len(rows) < QUERY_LIMIT:
            yield from rows
            return
        name = self.require(kb)
        it = self.call("query_iterator", self.client.query_iterator, name, batch_size=batch, filter=expr,
                       output_fields=fields)
        try:
            while True:
                page = self.call("query_iterator", it.next)
                if not page:
                    return
                yield from page
        finally:
            it.close()

    def get(self, kb: str, ids: list[str]) -> list[dict[str, Any]]:
        """Rows by chunk id (validated; never pymilvus's ``get(ids=...)``, which splices ids into an
        expression unescaped)."""
        if not ids:
            return []
        checked = [validate_id(i, "chunk_id") for i in ids]
        return self.query(kb, f"id in [{', '.join(quote(i) for i in checked)}]", limit=len(checked))

    # ------------------------------------------------------------ documents

    def document_rows(self, kb: str, *, doc_id: str | None = None, source: str | None = None) -> list[dict[str, Any]]:
        """Every chunk of one document (by id or by source), in chunk order."""
        if bool(doc_id) == bool(source):
            raise InvalidInput("give exactly one of doc_id or source")
        expr = f"doc_id == {quote(validate_id(doc_id, 'doc_id'))}" if doc_id else f"source == {quote(source or '')}"
        rows = list(self.iter_query(kb, expr, fields=OUTPUT_FIELDS))
        rows.sort(key=lambda r: int(r["chunk_index"]))
        return rows

    def chunk_id_at(self, kb: str, doc_id: str, index: int) -> str | None:
        """The id of chunk ``index`` of document ``doc_id``, or None."""
        expr = f"doc_id == {quote(validate_id(doc_id, 'doc_id'))} and chunk_index == {int(index)}"
        rows = self.query(kb, expr, fields=["id"], limit=1)
        return rows[0]["id"] if rows else None

    def versions(self, kb: str, doc_ids: list[str]) -> Iterator[dict[str, Any]]:
        """``doc_id``, ``version`` and ``chunk_count`` of every stored chunk of these documents."""
        return self.iter_query(kb, f"doc_id in {_strings(doc_ids)}", fields=["doc_id", "version", "chunk_count"])

    def delete_other_versions(self, kb: str, doc_id: str, version: str) -> int:
        """Delete a document's chunks of every version but ``version``; returns how many."""
        return self.delete(kb, f"doc_id == {quote(doc_id)} and version != {quote(version)}")

    def search_dense(
        self, kb: str, vectors: list[list[float]], *, limit: int, expr: str = "", search_params: dict | None = None
    ) -> list[list[tuple[str, float, dict[str, Any]]]]:
        """Nearest chunks per query vector: (id, similarity — higher is better, row)."""
        name = self.require(kb)
        metric = self.metric(kb)
        params = {"metric_type": metric, "params": dict(search_params or {})}
        res = self.call(
            "search", self.client.search, name, data=vectors, anns_field="dense", limit=limit, filter=expr,
            output_fields=OUTPUT_FIELDS, search_params=params,
        )
        sign = -1.0 if metric == "L2" else 1.0
        return [[(h["id"], sign * float(h["distance"]), h["entity"]) for h in hits] for hits in res]

    def search_bm25(
        self, kb: str, texts: list[str], *, limit: int, expr: str = ""
    ) -> list[list[tuple[str, float, dict[str, Any]]]]:
        """Best BM25 chunks per query text: (id, BM25 score ≥ 0, row)."""
        name = self.require(kb)
        res = self.call(
            "search", self.client.search, name, data=texts, anns_field="sparse", limit=limit, filter=expr,
            output_fields=OUTPUT_FIELDS, search_params={"metric_type": "BM25"},
        )
        # BM25 scores are non-negative; some Milvus builds report them negated (as distances).
        return [[(h["id"], abs(float(h["distance"])), h["entity"]) for h in hits] for hits in res]


_stores: dict[tuple[str, str], Store] = {}
_stores_lock = threading.Lock()


def get_store(settings: Settings) -> Store:
    """The process-wide :class:`Store` for the configured URI (opened on first use)."""
    uri = milvus_uri(settings)
    token = settings.retrieval.milvus_token or ""
    key = (str(Path(uri).expanduser().resolve()) if _is_local(uri) else uri, token)
    with _stores_lock:
        store = _stores.get(key)
        if store is None:
            store = _stores[key] = Store(key[0], token)
        return store


def close_stores() -> None:
    """Close every open connection (tests; a Lite file is released for other processes)."""
    with _stores_lock:
        for store in _stores.values():
            try:
                store.client.close()
                if store.local:  # Milvus Lite serves the file from a thread of this process until released
                    from milvus_lite.server_manager import server_manager_instance

                    server_manager_instance.release_server(store.uri)
            except Exception:  # pragma: no cover - closing a broken connection
                log.debug("error closing %s", store.uri, exc_info=True)
        _stores.clear()


def _lite_locked(uri: str) -> bool:
    """Whether another process holds the Milvus Lite folder's lock."""
    import fcntl

    lock = Path(uri) / "LOCK"
    if not lock.exists():
        return False
    with lock.open("a") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return True
        fcntl.flock(fh, fcntl.LOCK_UN)
    return False
