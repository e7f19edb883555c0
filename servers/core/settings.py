"""Settings for every server and the host.

Precedence, lowest first: the defaults in these models, the TOML file
(``--config FILE``, else ``$QUIVER_CONFIG``, else ``./quiver.toml``, else the
project's ``configs/quiver.toml``), environment variables ``QUIVER_SECTION__KEY``
(plus the shortcuts ``QUIVER_DATA_DIR`` and ``QUIVER_HTTP_TOKEN``), then explicit
overrides from CLI flags. Unknown or invalid keys raise :class:`ConfigError`
naming the key.

A process that starts Quiver servers (the host) hands them its effective settings in
``$QUIVER_SETTINGS_JSON`` (:func:`child_environment`): a whole settings document that
takes the place of the TOML file unless ``--config`` names one.
"""

from __future__ import annotations

import json
import os
import tomllib
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from servers.core.errors import ConfigError, validation_message
from servers.core.shipped import shipped

if TYPE_CHECKING:
    from servers.core.roots import Roots

PROJECT_CONFIG = shipped("configs/quiver.toml")
SETTINGS_ENV = "QUIVER_SETTINGS_JSON"


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class HttpSettings(Section):
    host: str = "127.0.0.1"
    port: int = Field(default=8765, ge=0, le=65535)
    token: str | None = Field(default=None, description="bearer token required on every request when set")
    allowed_hosts: list[str] = Field(
        default_factory=lambda: ["127.0.0.1:*", "localhost:*", "[::1]:*"],
        description="Host header values accepted (DNS-rebinding protection); 'name:*' allows any port",
    )
    allowed_origins: list[str] = Field(
        default_factory=lambda: ["http://127.0.0.1:*", "http://localhost:*", "http://[::1]:*"]
    )
    max_body_bytes: int = Field(default=4 * 1024 * 1024, ge=1024)
    stateless: bool = False
    header_timeout_s: float = Field(default=10.0, gt=0, description="a request's headers must arrive within this (408 and closed otherwise)")
    body_timeout_s: float = Field(default=30.0, gt=0, description="a request's body must arrive within this after its headers")
    max_connections_per_client: int = Field(default=64, ge=1, description="open connections one client address may hold (503 beyond)")


class StdioSettings(Section):
    max_message_mb: float = Field(
        default=100.0, gt=0, description="longest JSON-RPC line accepted over stdio (invalid-request error beyond)"
    )


class ModelSettings(Section):
    embedder: str = Field(default="minilm", description="short name, local folder or hub id")
    causal_lm: str = Field(default="smollm2", description="short name, local folder or hub id")
    adapter: str = Field(
        default="agent",
        description="LoRA adapter the host's local model runs with, merged at load: 'agent' = the shipped "
        "tool-calling adapter (applies only on top of its base, smollm2), a folder = another adapter, "
        "'' or 'none' = the plain model",
    )
    cross_encoder: str | None = Field(default=None, description="local folder or hub id of a cross-encoder")
    named: dict[str, str] = Field(
        default_factory=dict,
        description="more models tool calls may name: short name -> local folder, .gguf file or hub id "
        "(a call names a model only by a name configured here, by a shipped name, or as the value of "
        "embedder / causal_lm / cross_encoder; never by a path or hub id of its own)",
    )
    device: Literal["auto", "cuda", "mps", "cpu"] = "auto"
    dtype: Literal["auto", "bfloat16", "float16", "float32"] = "auto"
    batch_size: int = Field(default=64, ge=1)
    cache_dir: str | None = Field(default=None, description="where dequantized GGUF models are saved; default DATA_DIR/models")
    endpoint: str | None = Field(default=None, description="OpenAI-compatible base URL (vLLM, SGLang, Ollama); used for generation when set")
    endpoint_model: str | None = None
    endpoint_api_key_env: str = "OPENAI_API_KEY"


class ParseSettings(Section):
    max_file_mb: float = Field(default=50.0, gt=0)
    max_uncompressed_mb: float = Field(
        default=200.0, gt=0, description="cap on the unzipped size of DOCX/PPTX/XLSX and on a PDF's inflated streams"
    )
    max_stream_mb: float = Field(default=100.0, gt=0, description="cap on the inflated size of one PDF stream")
    max_rows: int = Field(default=1000, ge=1, description="rows kept per sheet / CSV")
    max_pages: int = Field(default=2000, ge=1)
    pdf_tables: bool = Field(default=True, description="detect PDF tables with pdfplumber (slower, ~60 ms/page)")
    max_files: int = Field(default=500, ge=1, description="files parse_files handles per call")
    timeout_s: float = Field(default=120.0, gt=0, description="wall-clock limit for parsing one file (in a worker process)")
    max_memory_mb: float = Field(default=2048.0, ge=64, description="memory cap of a parse worker process")
    workers: int = Field(default=2, ge=1, le=64, description="parse worker processes (files parsed at once)")
    ocr: Literal["auto", "always", "never"] = Field(
        default="auto", description="OCR of images and PDF pages: auto = only pages without a usable text layer"
    )
    ocr_images: Literal["never", "auto", "always"] = Field(
        default="never", description="OCR pictures inside DOCX/PPTX/XLSX/PDF/ODF: auto = only large ones (slow: ~1-3 s each)"
    )
    ocr_engine: Literal["rapidocr", "tesseract"] = Field(default="rapidocr", description="tesseract needs the binary installed")
    tesseract_languages: str = Field(default="eng+chi_sim", description="Tesseract language packs, joined with '+'")
    ocr_dpi: int = Field(default=200, ge=72, le=400, description="resolution PDF pages are rendered at for OCR")
    ocr_max_pages: int = Field(default=100, ge=1, description="pages (or images) OCR'd per document; the rest get a warning")
    ocr_min_confidence: float = Field(default=0.8, ge=0.0, le=1.0, description="OCR'd blocks below this are flagged in warnings")
    ocr_image_min_side: int = Field(default=300, ge=1, description="ocr_images=auto: pictures smaller than this (px, both sides) are skipped")
    max_image_pixels: int = Field(default=60_000_000, ge=1, description="decompression-bomb cap on an image's width x height")
    archive_max_members: int = Field(default=1000, ge=1, description="files read from one ZIP archive")
    archive_max_depth: int = Field(default=2, ge=0, le=5, description="archives inside archives (and e-mail attachments) opened this deep")
    notebook_outputs: bool = Field(default=True, description="include Jupyter cells' text outputs")


class FetchSettings(Section):
    enabled: bool = Field(default=True, description="parse_document and kb_ingest accept http(s):// URLs")
    allow_loopback: bool = Field(default=False, description="let URLs reach 127.0.0.0/8 and ::1 (this machine)")
    allow_private_networks: bool = Field(default=False, description="let URLs reach private ranges (10/8, 172.16/12, 192.168/16, fc00::/7, 100.64/10); link-local never")
    max_mb: float = Field(default=50.0, gt=0, description="largest document fetched")
    timeout_s: float = Field(default=30.0, gt=0, description="time limit of one fetch, redirects included")
    max_redirects: int = Field(default=5, ge=0, le=20)


class RetrievalSettings(Section):
    milvus_uri: str | None = Field(default=None, description="Milvus server URI; default DATA_DIR/milvus.db (Milvus Lite)")
    milvus_token: str | None = None
    index_type: Literal["AUTOINDEX", "HNSW", "IVF_FLAT", "FLAT"] = "AUTOINDEX"
    metric: Literal["COSINE", "IP", "L2"] = "COSINE"
    index_params: dict[str, Any] = Field(default_factory=dict)
    chunk_strategy: Literal["fixed", "recursive", "structure", "semantic"] = "structure"
    chunk_size: int = Field(default=256, ge=16)
    chunk_overlap: int = Field(default=32, ge=0)
    max_top_k: int = Field(default=100, ge=1)
    analyzer_params: dict[str, Any] = Field(default_factory=dict, description="Milvus analyzer for BM25 text; {} = standard (Milvus Lite supports only the standard tokenizer)")
    search_params: dict[str, Any] = Field(default_factory=dict, description="dense search params, e.g. {ef = 64} for HNSW, {nprobe = 16} for IVF_FLAT")
    candidates: int = Field(default=100, ge=1, le=1000, description="candidates per list fused by hybrid search and query rewriting")
    fusion: Literal["rrf", "weighted"] = Field(default="weighted", description="hybrid fusion; weighted 0.5 measured best on SciFact (bench/retrieval.py)")
    rrf_k: int = Field(default=60, ge=1)
    dense_weight: float = Field(default=0.5, ge=0.0, le=1.0, description="weight of the dense scores in weighted fusion (BM25 gets 1 - this)")
    rerank_depth: int = Field(default=30, ge=1, le=1000, description="candidates rescored when a search asks for rerank")
    ingest_batch: int = Field(default=512, ge=1, description="chunks embedded and upserted together")
    ingest_timeout_s: float = Field(
        default=900.0, gt=0,
        description="longest one kb_ingest call may run; past it the call stops with a Timeout error, every batch "
                    "stored so far stays complete and the same call again continues where it stopped",
    )
    embed_title: bool = Field(default=True, description="embed each chunk with its document title and heading path in front")
    rewrite_max_tokens: int = Field(default=64, ge=8, le=1024, description="tokens the generator may write per query rewrite (multi_query, hyde)")
    max_metadata_bytes: int = Field(
        default=8192, ge=256, le=60_000,
        description="largest metadata object (as JSON) per document; it is stored on every chunk",
    )


class RerankSettings(Section):
    default_method: str = Field(
        default="late-interaction",
        description="rerank method used when a call names none (SciFact train, dense top-50: +0.046 nDCG@10)",
    )
    max_documents: int = Field(default=1000, ge=1)
    max_query_chars: int = Field(default=4000, ge=16, description="longest query a rerank call accepts")


class Text2SqlSettings(Section):
    databases: dict[str, str] = Field(default_factory=dict, description="name -> SQLite path or SQLAlchemy URL")
    max_rows: int = Field(default=200, ge=1)
    timeout_s: float = Field(default=10.0, gt=0, description="per-query time limit; a file database's worker is killed past it")
    max_memory_mb: float = Field(default=1024.0, ge=64, description="memory cap of a SQLite/DuckDB worker process")
    max_value_bytes: int = Field(default=1_000_000, ge=1000, description="largest string/blob a SQLite query may build")
    max_like_pattern: int = Field(default=500, ge=10, description="longest LIKE/GLOB pattern SQLite accepts")
    candidates: int = Field(default=1, ge=1, le=16)
    repair_rounds: int = Field(default=2, ge=0, le=8)
    max_new_tokens: int = Field(default=160, ge=16, le=2048, description="token cap per generated SQL candidate")
    sample_temperature: float = Field(default=0.7, gt=0, le=2.0, description="temperature of candidates 2..N")
    examples_k: int = Field(default=3, ge=0, le=20, description="few-shot examples retrieved per question")


class FinetuneSettings(Section):
    max_running_jobs: int | None = Field(default=None, ge=1, description="training jobs run at once; default 1 on CPU, one per GPU")
    default_model: str | None = Field(default=None, description="model trained when a call names none; default models.causal_lm")
    max_length: int = Field(default=1024, ge=16, description="token cap per training sequence unless a preset or call sets one")
    logging_steps: int = Field(default=1, ge=1, description="steps between logged metrics (and progress notifications)")
    save_steps: int = Field(default=50, ge=1, description="steps between checkpoints (resume starts from the last one)")
    save_total_limit: int = Field(default=3, ge=1, description="checkpoints kept per job")
    kill_after_s: float = Field(default=120.0, gt=0, description="a cancelled job that has not stopped by then is killed")
    wait_timeout_s: float = Field(default=300.0, gt=0, description="longest a `wait` call blocks before returning the state")
    eval_fraction: float = Field(default=0.1, ge=0.0, lt=0.9, description="share of prepared data held out for evaluation")
    near_dup_threshold: float = Field(default=0.85, gt=0.0, le=1.0, description="MinHash Jaccard above which two rows are near-duplicates")
    ppl_low_percentile: float = Field(default=2.0, ge=0.0, lt=50.0, description="perplexity filter: drop rows below this percentile (too easy / boilerplate)")
    ppl_high_percentile: float = Field(default=98.0, gt=50.0, le=100.0, description="perplexity filter: drop rows above this percentile (noise)")
    max_prepare_rows: int = Field(default=200_000, ge=1, description="rows one prepare call reads")
class EvalSettings(Section):
    ks: list[int] = Field(default_factory=lambda: [1, 5, 10, 100], description="retrieval cutoffs k scored by default")
    primary_metric: str = Field(default="ndcg@10", description="retrieval metric compared and gated by default")
    bootstrap_samples: int = Field(default=10000, ge=100, le=1_000_000, description="paired bootstrap resamples")
    permutation_samples: int = Field(default=10000, ge=100, le=1_000_000, description="paired permutation draws (exact up to 16 items)")
    confidence: float = Field(default=0.95, ge=0.5, lt=1.0, description="confidence level of intervals")
    alpha: float = Field(default=0.05, gt=0.0, lt=1.0, description="significance level of tests and the regression gate")
    seed: int = Field(default=0, description="seed of every resampling and sampled judge vote")
    support_threshold: float = Field(default=0.6, ge=0.0, le=1.0, description="deterministic RAG tier: support score from which a claim counts as supported")
    judge_votes: int = Field(default=1, ge=1, le=16, description="judge votes per order (more than 1 samples at judge_temperature)")
    judge_temperature: float = Field(default=0.7, gt=0.0, le=2.0, description="temperature of the extra judge votes")
    judge_reasoning_chars: int = Field(default=300, ge=0, le=4000, description="cap on the judge's reasoning before its verdict")
    judge_max_new_tokens: int = Field(default=200, ge=16, le=4096, description="token cap per judge reply")
    judge_pass_score: int = Field(default=7, ge=1, le=10, description="score (1-10) from which a judged answer passes")
    lm_window: int | None = Field(default=None, ge=8, description="perplexity window in tokens; default: the model's context, at most 1024")
    lm_stride: int = Field(default=512, ge=1, description="perplexity sliding-window stride in tokens")
    answer_max_new_tokens: int = Field(default=64, ge=1, le=4096, description="tokens generated per closed question")
    kb_top_k: int = Field(default=100, ge=1, le=1000, description="hits retrieved per query when evaluating a knowledge base")
    kb_modes: list[str] = Field(default_factory=lambda: ["dense", "bm25", "hybrid"], description="search modes compared by eval_kb (add 'rerank')")
    inline_items: int = Field(default=50, ge=1, description="evaluations with more model-scored items (KB queries x modes, judged items, ...) than this run as jobs")
    max_jobs: int = Field(default=1, ge=1, le=64, description="evaluation jobs running at once (DATA_DIR/eval/jobs); the rest queue")
    wait_cap_s: float = Field(default=600.0, gt=0, description="longest eval_job_status wait per call")
    result_rows: int = Field(default=20, ge=0, le=100_000, description="per-item rows a tool returns unless asked for more")
    report_rows: int = Field(default=200, ge=0, le=100_000, description="per-item rows shown in an HTML report")


class HostSettings(Section):
    max_steps: int = Field(default=6, ge=1)
    tool_choice: Literal["auto", "required", "none"] = "auto"
    constrained: bool = True
    max_new_tokens: int = Field(default=256, ge=1)
    observation_chars: int = Field(default=2000, ge=100)
    tool_timeout_s: float = Field(default=120.0, gt=0)
    preselect_tools: int = Field(default=8, ge=1, description="tools offered to the model per question when more are connected")
    tool_view: Literal["auto", "full", "small"] = Field(
        default="auto",
        description="how tools are shown to the model: full schemas, or the small-model view (required arguments "
        "only, at most small_model_tools tools; what the shipped adapter was trained on); auto = small for a "
        "local model under 1B parameters",
    )
    small_model_tools: int = Field(default=4, ge=1, description="tools offered per question in the small view")
    describe_resources: bool = Field(
        default=True, description="name the knowledge bases and databases (kb_list, sql_list_databases) in the system prompt"
    )
    servers: str | None = Field(default=None, description="mcpServers JSON or TOML file; default: Quiver's own servers")
    dialect: Literal["smol", "hermes", "json"] | None = Field(default=None, description="local tool-call format; default: from the chat template")
    call_decision: Literal["probability", "greedy"] = Field(
        default="probability",
        description="local model, auto, constrained: call a tool when the model's probability of opening a call "
        "is at least the call threshold (probability), or when the call tag is its single most likely first "
        "token (greedy)",
    )
    call_threshold: float | None = Field(
        default=None, gt=0, lt=1,
        description="the P(call) threshold of the probability decision; default: the adapter's calibrated one "
        "(calibration.json beside its weights, chosen on validation records), else 0.5",
    )
    temperature: float = Field(default=0.0, ge=0)
    auto_approve: list[str] = Field(default_factory=lambda: ["*"], description="tool-name globs run without asking")
    transcripts: bool = Field(default=True, description="save each run as JSONL under DATA_DIR/transcripts")
    startup_timeout_s: float = Field(default=90.0, gt=0)


class Settings(Section):
    data_dir: str = Field(default="~/.quiver", description="knowledge bases, job store, model cache, transcripts")
    roots: list[str] = Field(
        default_factory=list,
        description="folders whose files servers may read (the data dir is always added); none = the data dir only, "
        "never the working directory",
    )
    follow_hardlinks: bool = Field(
        default=True,
        description="read files that have more than one hard link; false refuses them (a hard link inside a root "
        "can be the same file as one outside it)",
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "WARNING"
    http: HttpSettings = Field(default_factory=HttpSettings)
    stdio: StdioSettings = Field(default_factory=StdioSettings)
    models: ModelSettings = Field(default_factory=ModelSettings)
    parse: ParseSettings = Field(default_factory=ParseSettings)
    fetch: FetchSettings = Field(default_factory=FetchSettings)
    retrieval: RetrievalSettings = Field(default_factory=RetrievalSettings)
    rerank: RerankSettings = Field(default_factory=RerankSettings)
    text2sql: Text2SqlSettings = Field(default_factory=Text2SqlSettings)
    finetune: FinetuneSettings = Field(default_factory=FinetuneSettings)
    eval: EvalSettings = Field(default_factory=EvalSettings)
    host: HostSettings = Field(default_factory=HostSettings)

    @property
    def data_path(self) -> Path:
        return Path(self.data_dir).expanduser().resolve()

    def root_paths(self) -> Roots:
        """The configured roots, resolved, then the data dir, with the read policy (Quiver's own files
        refused, hard links per ``follow_hardlinks``; see :class:`servers.core.roots.Roots`)."""
        from servers.core.roots import allowed_roots

        return allowed_roots(self.roots, self.data_path, internal=self.internal_paths(),
                             follow_hardlinks=self.follow_hardlinks)

    def internal_paths(self) -> list[Path]:
        """What Quiver keeps for itself in the data dir (and elsewhere): the Milvus Lite store, the job
        stores, the model cache, the few-shot example stores, host logs. No tool reads these as files."""
        data = self.data_path
        paths = [data / "milvus.db", data / "models", data / "jobs", data / "eval" / "jobs",
                 data / "text2sql" / "examples", data / "host" / "logs"]
        uri = self.retrieval.milvus_uri
        if uri and "://" not in uri:
            paths.append(Path(uri).expanduser().resolve())
        if self.models.cache_dir:
            paths.append(Path(self.models.cache_dir).expanduser().resolve())
        return paths


SHORTCUTS = {"QUIVER_DATA_DIR": ("data_dir",), "QUIVER_HTTP_TOKEN": ("http", "token")}


def _set(tree: dict[str, Any], keys: tuple[str, ...], value: Any) -> None:
    for key in keys[:-1]:
        node = tree.setdefault(key, {})
        if not isinstance(node, dict):
            raise ConfigError(f"config key '{key}' is a value, not a section")
        tree = node
    tree[keys[-1]] = value


def _env_value(raw: str) -> Any:
    try:
        return json.loads(raw)
    except json.JSONDecodeError:
        return raw


def _env_overrides(environ: dict[str, str]) -> dict[str, Any]:
    tree: dict[str, Any] = {}
    for name, raw in sorted(environ.items()):
        if name in SHORTCUTS:
            _set(tree, SHORTCUTS[name], raw)
        elif name.startswith("QUIVER_") and "__" in name:
            keys = tuple(part.lower() for part in name[len("QUIVER_") :].split("__"))
            _set(tree, keys, _env_value(raw))
    return tree


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def config_file(explicit: str | Path | None = None, environ: dict[str, str] | None = None) -> Path | None:
    """The TOML file that applies: explicit, $QUIVER_CONFIG, ./quiver.toml, or the project's."""
    if explicit:
        path = Path(explicit).expanduser()
        if not path.is_file():
            raise ConfigError(f"config file {path} does not exist; pass an existing TOML file to --config")
        return path
    env = (os.environ if environ is None else environ).get("QUIVER_CONFIG")
    if env:
        return config_file(env, environ)
    for candidate in (Path("quiver.toml"), PROJECT_CONFIG):
        if candidate.is_file():
            return candidate
    return None


def read_toml(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from exc


def _base_tree(config: str | Path | None, environ: dict[str, str]) -> tuple[dict[str, Any], str]:
    """The lowest layer above the defaults and where it came from: a TOML file or $QUIVER_SETTINGS_JSON."""
    if not config and environ.get(SETTINGS_ENV):
        try:
            tree = json.loads(environ[SETTINGS_ENV])
        except json.JSONDecodeError as exc:
            raise ConfigError(f"${SETTINGS_ENV} is not valid JSON: {exc}") from exc
        if not isinstance(tree, dict):
            raise ConfigError(f"${SETTINGS_ENV} must hold a JSON object of settings")
        return tree, f" (from ${SETTINGS_ENV})"
    path = config_file(config, environ)
    return (read_toml(path), f" (config file {path})") if path else ({}, "")


def load_settings(
    config: str | Path | None = None,
    overrides: dict[str, Any] | None = None,
    environ: dict[str, str] | None = None,
) -> Settings:
    """Build the effective settings; raises ConfigError naming the offending key."""
    environ = dict(os.environ if environ is None else environ)
    tree, origin = _base_tree(config, environ)
    tree = _merge(tree, _env_overrides(environ))
    tree = _merge(tree, overrides or {})
    try:
        return Settings.model_validate(tree)
    except ValidationError as exc:
        raise ConfigError(f"invalid config key {validation_message(exc)}{origin}") from exc


def child_environment(settings: Settings) -> dict[str, str]:
    """Environment that makes a child Quiver server load exactly ``settings`` (paths made absolute)."""
    data = settings.model_dump(mode="json")
    data["data_dir"] = str(settings.data_path)
    data["roots"] = [str(p) for p in settings.root_paths()]  # checked here: '.' from / or ~ is refused
    return {SETTINGS_ENV: json.dumps(data)}
