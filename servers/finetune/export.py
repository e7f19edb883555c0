"""Export a finished job: the LoRA adapter, or a merged model in safetensors; verified by reloading it
and generating, with a perplexity check against the base model on the eval set.

A merged folder is an ordinary transformers model folder (config.json + model.safetensors +
tokenizer): set ``models.causal_lm`` to it and every server and the host use it. An adapter
folder (adapter_config.json + adapter_model.safetensors) loads the same way: the model layer
reads its base from ``base_model_name_or_path`` and merges it on load.
"""

from __future__ import annotations

import json
import math
import shutil
import time
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from servers.core.errors import InvalidInput, NotFound


class ExportResult(BaseModel):
    job_id: str
    kind: str = Field(description="adapter or merged")
    path: str
    source: str = Field(description="the final model or checkpoint exported")
    files: list[str]
    size_mb: float
    verified: bool
    sample_prompt: str | None = None
    sample_output: str | None = None
    perplexity_base: float | None = None
    perplexity_tuned: float | None = None
    eval_rows: int = 0
    use: str = Field(description="how to use it")
    seconds: float


def _load_tuned(folder: Path, base_location: str, kind: str) -> tuple[Any, Any]:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
    if kind == "merged":
        model = AutoModelForCausalLM.from_pretrained(str(folder), dtype=torch.float32, local_files_only=True)
    else:
        from peft import PeftModel

        base = AutoModelForCausalLM.from_pretrained(base_location, dtype=torch.float32, local_files_only=True)
        model = PeftModel.from_pretrained(base, str(folder))
    return model.eval(), tokenizer


def _generate(model: Any, tokenizer: Any, prompt_messages: list[dict[str, str]], max_new_tokens: int = 16) -> str:
    import torch

    text = tokenizer.apply_chat_template(prompt_messages, tokenize=False, add_generation_prompt=True)
    ids = tokenizer(text, return_tensors="pt", add_special_tokens=False)
    with torch.no_grad():
        out = model.generate(**ids, max_new_tokens=max_new_tokens, do_sample=False,
                             pad_token_id=tokenizer.pad_token_id or tokenizer.eos_token_id)
    return tokenizer.decode(out[0, ids["input_ids"].shape[1]:], skip_special_tokens=True)


def _perplexity(model: Any, tokenizer: Any, rows: list[dict[str, Any]], max_length: int = 256) -> float | None:
    """Perplexity of the eval rows' answer tokens (conversations rendered with the chat template)."""
    import torch

    total, count = 0.0, 0
    for row in rows:
        messages = _conversation(row)
        if not messages:
            continue
        prompt = tokenizer.apply_chat_template(messages[:-1], tokenize=False, add_generation_prompt=True)
        full = tokenizer.apply_chat_template(messages, tokenize=False)
        p_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
        ids = tokenizer(full, add_special_tokens=False)["input_ids"][:max_length]
        if len(ids) <= len(p_ids):
            continue
        tensor = torch.tensor([ids])
        labels = tensor.clone()
        labels[:, : len(p_ids)] = -100
        with torch.no_grad():
            loss = model(input_ids=tensor, labels=labels).loss
        n = len(ids) - len(p_ids)
        total += float(loss) * n
        count += n
    return round(math.exp(total / count), 4) if count else None


def _conversation(row: dict[str, Any]) -> list[dict[str, str]]:
    from servers.core.tool_prompt import smol_messages

    if "messages" in row:
        msgs = smol_messages(row["messages"], row.get("tools") or None)
        return msgs if msgs and msgs[-1]["role"] == "assistant" else []
    prompt, completion = row.get("prompt"), row.get("completion") or row.get("chosen")
    if isinstance(prompt, str) and isinstance(completion, str):
        return [{"role": "user", "content": prompt}, {"role": "assistant", "content": completion}]
    if isinstance(prompt, list) and isinstance(completion, list):
        return [*prompt, *completion]
    return []


def _folder_size_mb(folder: Path) -> float:
    return round(sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 1024**2, 2)


def export(
    job_id: str,
    job_config: dict[str, Any],
    source: Path,
    out: Path,
    *,
    merge: bool,
    verify: bool = True,
    eval_rows: list[dict[str, Any]] | None = None,
) -> ExportResult:
    """Write the adapter (or the merged model) of ``source`` (final folder or a checkpoint) to ``out``."""
    import torch

    start = time.perf_counter()
    train = job_config["train"]
    base_location = job_config["model"]["location"]
    is_adapter = (source / "adapter_config.json").is_file()
    if not is_adapter and not (source / "config.json").is_file():
        raise NotFound(f"{source} holds neither an adapter nor a model: the job has no saved weights to export")
    if train["method"] == "reward" and merge:
        raise InvalidInput("a reward model is a sequence classifier: export it without merge")
    if out.exists() and any(out.iterdir()):
        raise InvalidInput(f"export folder {out} is not empty: choose another `out` or delete it")
    tmp = out.parent / f".tmp-{out.name}-{int(time.time() * 1000)}"
    tmp.mkdir(parents=True)
    try:
        if is_adapter and merge:
            from peft import PeftModel
            from transformers import AutoModelForCausalLM, AutoTokenizer

            base = AutoModelForCausalLM.from_pretrained(base_location, dtype=torch.float32, local_files_only=True)
            merged = PeftModel.from_pretrained(base, str(source)).merge_and_unload()
            merged.save_pretrained(str(tmp), safe_serialization=True)
            AutoTokenizer.from_pretrained(str(source), local_files_only=True).save_pretrained(str(tmp))
            kind = "merged"
        else:
            keep = {".json", ".safetensors", ".jinja", ".model", ".txt"}
            for item in source.iterdir():
                if item.is_file() and item.suffix in keep and not item.name.startswith(("trainer_state", "rng_state")):
                    shutil.copy2(item, tmp / item.name)
            if is_adapter:
                _point_adapter_at_base(tmp, base_location)
            kind = "adapter" if is_adapter else "merged"
        (tmp / "quiver_export.json").write_text(json.dumps({
            "job_id": job_id, "kind": kind, "base_model": job_config["model"]["name"], "base_location": base_location,
            "method": train["method"], "adapter": train["adapter"], "source": str(source),
        }, indent=1))
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    result = ExportResult(
        job_id=job_id, kind=kind, path=str(out), source=str(source), files=sorted(p.name for p in out.iterdir()),
        size_mb=_folder_size_mb(out), verified=False,
        use=(f"set models.causal_lm = \"{out}\" (or QUIVER_MODELS__CAUSAL_LM={out}); "
             + ("the base is merged on load" if kind == "adapter" else "an ordinary transformers model folder")),
        seconds=0.0,
    )
    if verify and train["method"] != "reward":
        model, tokenizer = _load_tuned(out, base_location, kind)
        rows = (eval_rows or [])[:16]
        prompt = _conversation(rows[0])[:-1] if rows and _conversation(rows[0]) else [{"role": "user", "content": "Hello!"}]
        result.sample_prompt = prompt[-1]["content"][:300]
        result.sample_output = _generate(model, tokenizer, prompt)
        result.verified = isinstance(result.sample_output, str)
        if rows:
            from transformers import AutoModelForCausalLM

            result.perplexity_tuned = _perplexity(model, tokenizer, rows)
            del model
            base = AutoModelForCausalLM.from_pretrained(base_location, dtype=torch.float32, local_files_only=True).eval()
            result.perplexity_base = _perplexity(base, tokenizer, rows)
            result.eval_rows = len(rows)
    result.seconds = round(time.perf_counter() - start, 2)
    return result


def _point_adapter_at_base(folder: Path, base_location: str) -> None:
    """Record where the base weights are, so the adapter loads anywhere on this machine."""
    path = folder / "adapter_config.json"
    config = json.loads(path.read_text())
    config["base_model_name_or_path"] = base_location
    path.write_text(json.dumps(config, indent=2))
