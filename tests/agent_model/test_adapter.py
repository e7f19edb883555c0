"""``models.adapter``: a LoRA adapter merged into the shipped SmolLM2 at load by the real loading
code (``servers.core.models.causal_lm``); 'none' turns it off; the shipped 'agent' adapter, while
it is not trained yet, leaves the plain model running with one warning."""

from __future__ import annotations

import copy
import json
import logging
from pathlib import Path

import pytest
import torch

from servers.core import models
from servers.core.errors import NotFound

pytestmark = pytest.mark.usefixtures("one_torch_thread")

PROMPT = "<|im_start|>user\nWhat is Milvus?<|im_end|>\n<|im_start|>assistant\n"


@pytest.fixture(scope="module")
def tiny_adapter(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A rank-2 LoRA on q/v of the shipped SmolLM2, random (non-zero) weights, saved as PEFT saves it,
    naming the base by its short name as the shipped adapter does."""
    from peft import LoraConfig, get_peft_model

    from servers.core.settings import load_settings

    torch.manual_seed(0)
    root = tmp_path_factory.mktemp("base")
    base = models.causal_lm("smollm2", load_settings(overrides={"data_dir": str(root), "roots": [str(root)]}))
    peft = get_peft_model(copy.deepcopy(base.model), LoraConfig(r=2, lora_alpha=4, target_modules=["q_proj", "v_proj"],
                                           init_lora_weights=False, task_type="CAUSAL_LM"))
    folder = tmp_path_factory.mktemp("adapter") / "tiny-lora"
    peft.save_pretrained(str(folder))
    config = json.loads((folder / "adapter_config.json").read_text())
    config["base_model_name_or_path"] = "smollm2"
    (folder / "adapter_config.json").write_text(json.dumps(config))
    return folder


def _logits(lm: models.LoadedLM) -> torch.Tensor:
    ids = lm.tokenizer(PROMPT, return_tensors="pt").input_ids
    with torch.no_grad():
        return lm.model(ids).logits[0, -1]


def test_an_adapter_folder_is_merged_at_load_generates_and_none_turns_it_off(settings, tiny_adapter):
    plain = models.causal_lm(None, settings, adapter="none")
    tuned = models.causal_lm(None, settings, adapter=str(tiny_adapter))
    assert tuned is not plain and tuned.name == "smollm2+tiny-lora"
    # merged: plain modules (no LoRA layers left), so decoding runs at the base model's speed
    assert not any("lora_" in name for name, _ in tuned.model.named_parameters())
    assert type(tuned.model) is type(plain.model)
    assert not torch.allclose(_logits(tuned), _logits(plain), atol=1e-4)  # the adapter changed the weights
    ids = tuned.tokenizer(PROMPT, return_tensors="pt").input_ids
    out = tuned.model.generate(ids, max_new_tokens=4, do_sample=False)
    assert out.shape[1] == ids.shape[1] + 4
    # 'none' (and '') is the plain model, from the same cache entry
    assert models.causal_lm(None, settings, adapter="") is plain
    assert plain.name == "smollm2"
    # the merged adapter's folder is known (the host reads its calibration.json there); none for the plain model
    assert tuned.adapter == tiny_adapter and plain.adapter is None


def test_a_missing_shipped_adapter_runs_the_plain_model_with_one_warning(settings, tmp_path, monkeypatch, caplog):
    monkeypatch.setitem(models.SHIPPED_ADAPTERS, "agent", (tmp_path / "agent-smollm2", "smollm2"))
    models._warn_missing_adapter.cache_clear()
    with caplog.at_level(logging.WARNING, logger="servers.core.models"):
        first = models.resolve_adapter("agent", models.resolve("smollm2", "causal_lm"))
        second = models.resolve_adapter("agent", models.resolve("smollm2", "causal_lm"))
    assert first is None and second is None
    warnings = [r for r in caplog.records if "make agent-model" in r.getMessage()]
    assert len(warnings) == 1 and "models.adapter = 'none'" in warnings[0].getMessage()


def test_a_folder_that_is_not_an_adapter_is_a_clear_error(settings, tmp_path):
    with pytest.raises(NotFound, match="not an adapter folder.*'none'"):
        models.causal_lm(None, settings, adapter=str(tmp_path))


@pytest.mark.skipif(not (models.SHIPPED_ADAPTERS["agent"][0] / "adapter_config.json").is_file(),
                    reason="the shipped adapter servers/core/adapters/agent-smollm2 is not trained yet (make agent-model)")
def test_the_shipped_agent_adapter_loads_by_default(settings):
    assert settings.models.adapter == "agent"
    lm = models.causal_lm(None, settings, adapter=settings.models.adapter)
    assert lm.name == "smollm2+agent"
    assert not any("lora_" in name for name, _ in lm.model.named_parameters())
