"""Memory estimates for training and inference, read from the model's ``config.json``.

Parameters are counted exactly by building the model on PyTorch's *meta* device (no
weights are read or allocated). Each component comes with its formula:

* weights: bytes per parameter of the stored dtype (4-bit NF4 for QLoRA's quantized linears,
  with their block scales); under bf16/fp16 mixed precision full training the fp32 master
  copy is the stored weight and a half-precision working copy lives through backward;
* gradients and optimizer states for the *trainable* parameters only (AdamW: two fp32 moments,
  8-bit AdamW: two bytes, SGD: none);
* activations saved for backward, per token and decoder layer, for this architecture
  (hidden h, MLP width I, key/value width h_kv, heads a); the per-layer coefficients were
  measured on Llama-family decoders with SDPA attention by counting the tensors autograd
  saves; bench/finetune.py checks the total against the measured peak). The textbook GPT formula s·b·h·(34 + 5·a·s/h)·L bytes (16-bit,
  4h MLP, attention scores materialized) is reported alongside for reference;
* the language-model head: fp32 logits for every token (b·s·V·4 bytes) saved, plus their
  gradient and one softmax temporary at the peak;
* the KV cache for inference: 2 (k and v) · b · L · h_kv · (s + n) · bytes (fp16: the familiar
  4·b·L·h·(s+n) when h_kv = h);
* the runtime: what the Python process with torch/transformers/TRL holds before any model
  (CPU), or the CUDA context (GPU).
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, Field

from servers.core.errors import ConfigError, InvalidInput, NotFound
from servers.core.settings import Settings

GIB = 1024**3
# Resident memory of a Python process that imported torch, transformers, peft and TRL and holds a
# tokenizer, before any model (measured on Linux x86-64, CPU build of torch; bench/finetune.py).
CPU_RUNTIME_BYTES = int(0.67 * GIB)
CUDA_CONTEXT_BYTES = int(0.5 * GIB)  # not counted by torch.cuda.max_memory_allocated
# glibc keeps part of the memory freed after the first backward (activations, logits) in its heap instead of
# returning it; what later allocations (optimizer states) do not reuse stays resident. Measured on CPU with
# SmolLM2-135M LoRA (bench/finetune.py): peak RSS − live tensors ≈ 0.46 × (activations + logits).
CPU_ALLOCATOR_RETENTION = 0.46
NF4_BYTES_PER_PARAM = 0.5 + 4 / 64  # 4-bit codes + one fp32 absmax per 64-value block
NF4_DOUBLE_QUANT_BYTES_PER_PARAM = 0.5 + 1 / 64 + 4 / (64 * 256)  # 8-bit absmax, fp32 per 256 blocks

Optimizer = Literal["adamw", "adamw_8bit", "sgd"]


class ModelShape(BaseModel):
    """What the estimate needs to know about a model, all read from its config."""

    name: str
    architecture: str
    parameters: int = Field(description="unique parameters (tied embeddings counted once)")
    hidden: int
    intermediate: int
    layers: int
    heads: int
    kv_width: int = Field(description="num_key_value_heads × head_dim")
    vocab: int
    linear_shapes: dict[str, list[int]] = Field(
        description="per decoder-layer projection name: [in_features, out_features] (layer 0)"
    )
    quantizable: int = Field(description="parameters in decoder-layer Linear weights (what QLoRA stores in 4 bits)")
    embedding_params: int
    tied_embeddings: bool
    checkpoint_bytes: int = Field(default=4, description="bytes per parameter in the stored weight files (torch_dtype)")


class Component(BaseModel):
    name: str
    gib: float
    formula: str


class Remedy(BaseModel):
    change: str
    total_gib: float
    saves_gib: float


class MemoryEstimate(BaseModel):
    model: str
    parameters: int
    trainable_parameters: int
    method: str
    precision: str
    optimizer: str
    device: str
    seq_len: int
    batch: int
    grad_ckpt: bool
    lora_r: int | None = None
    target_modules: list[str] | None = None
    components: dict[str, float] = Field(description="GiB per component")
    details: list[Component]
    total_gib: float
    budget_gib: float | None = None
    fits: bool | None = Field(default=None, description="whether total_gib ≤ budget_gib (null without a budget)")
    remedies: list[Remedy] = Field(default_factory=list, description="changes ranked by how much they save")
    reference_activation_formula_gib: float = Field(
        description="textbook s·b·h·(34 + 5·a·s/h)·L bytes (GPT, 16-bit, attention scores kept), for comparison"
    )
    notes: list[str] = Field(default_factory=list)


# ---------------------------------------------------------------- model shape


def model_config_source(name: str, settings: Settings) -> tuple[str, dict[str, Any]]:
    """Resolve a model name and return (folder or hub id, extra from_pretrained kwargs) for reading its config."""
    from servers.core import models

    source = models.resolve(name, "causal_lm")
    if source.kind == "gguf":
        cached = models.gguf_cache_dir(source.path, settings)
        if (cached / "config.json").is_file():
            return str(cached), {}
        return str(source.path.parent), {"gguf_file": source.path.name}
    return source.location, {}


@functools.lru_cache(maxsize=32)
def _shape_cached(location: str, kwargs_json: str, name: str) -> ModelShape:
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    kwargs = json.loads(kwargs_json)
    try:
        config = AutoConfig.from_pretrained(location, local_files_only=True, **kwargs)
    except Exception as exc:
        raise NotFound(
            f"cannot read the config of model '{name}' ({location}): {type(exc).__name__}: {str(exc)[:200]}; "
            "give a shipped short name (smollm2), a local model folder with config.json, or a hub id in the local cache"
        ) from exc
    with torch.device("meta"):
        try:
            model = AutoModelForCausalLM.from_config(config)
        except Exception as exc:
            raise ConfigError(f"model '{name}' is not a causal LM transformers can build: {exc}") from exc
    text = config.get_text_config() if hasattr(config, "get_text_config") else config
    parameters = sum(p.numel() for p in model.parameters())
    layers_module = _decoder_layers(model)
    linear_shapes: dict[str, list[int]] = {}
    quantizable = 0
    if layers_module is not None:
        for index, layer in enumerate(layers_module):
            for sub_name, sub in layer.named_modules():
                if isinstance(sub, torch.nn.Linear):
                    quantizable += sub.weight.numel()
                    if index == 0:
                        linear_shapes[sub_name.rsplit(".", 1)[-1]] = [sub.in_features, sub.out_features]
    embedding = model.get_input_embeddings()
    heads = int(getattr(text, "num_attention_heads", 1))
    hidden = int(getattr(text, "hidden_size", 0))
    head_dim = int(getattr(text, "head_dim", None) or hidden // max(heads, 1))
    kv_heads = int(getattr(text, "num_key_value_heads", None) or heads)
    return ModelShape(
        name=name, architecture=(getattr(config, "architectures", None) or [type(model).__name__])[0],
        parameters=parameters, hidden=hidden,
        intermediate=int(getattr(text, "intermediate_size", None) or 4 * hidden),
        layers=int(getattr(text, "num_hidden_layers", 0) or (len(layers_module) if layers_module is not None else 0)),
        heads=heads, kv_width=kv_heads * head_dim, vocab=int(getattr(text, "vocab_size", 0)),
        linear_shapes=linear_shapes, quantizable=quantizable,
        embedding_params=embedding.weight.numel() if embedding is not None else 0,
        tied_embeddings=bool(getattr(config, "tie_word_embeddings", False)),
        checkpoint_bytes=2 if str(getattr(config, "dtype", None) or getattr(config, "torch_dtype", "float32")).endswith(
            ("float16", "bfloat16")) else 4,
    )


def _decoder_layers(model: Any) -> Any:
    for path in ("model.layers", "model.decoder.layers", "transformer.h", "gpt_neox.layers", "model.language_model.layers"):
        node = model
        for part in path.split("."):
            node = getattr(node, part, None)
            if node is None:
                break
        if node is not None:
            return node
    return None


def model_shape(name: str, settings: Settings) -> ModelShape:
    location, kwargs = model_config_source(name, settings)
    return _shape_cached(location, json.dumps(kwargs, sort_keys=True), name)


# ---------------------------------------------------------------- the estimate


@dataclass
class _Plan:
    method: str  # full | lora | qlora | freeze
    precision: str  # fp32 | bf16 | fp16
    optimizer: Optimizer
    seq_len: int
    batch: int
    grad_ckpt: bool
    lora_r: int
    targets: list[str]
    lora_dropout: float
    freeze_layers: int
    device: str


def _opt_bytes(optimizer: Optimizer) -> int:
    return {"adamw": 8, "adamw_8bit": 2, "sgd": 0}[optimizer]


def _lora_params(shape: ModelShape, r: int, targets: list[str]) -> int:
    per_layer = sum(r * (shape.linear_shapes[t][0] + shape.linear_shapes[t][1]) for t in targets if t in shape.linear_shapes)
    return per_layer * shape.layers


def _layer_activation_elems(shape: ModelShape, plan: _Plan, trainable_weights: bool) -> float:
    """Elements autograd saves per token in one decoder layer (measured coefficients, see module doc)."""
    h, inter, kv, a = shape.hidden, shape.intermediate, shape.kv_width, shape.heads
    if trainable_weights:
        return 8 * h + 4 * inter + 2 * kv + a + 34
    elems = 4 * h + 3 * inter + 2 * kv + a + 34  # frozen weights, gradient flowing through
    if plan.method in ("lora", "qlora"):
        mask = 0.25 if plan.precision == "fp32" else 0.5  # one byte per element, in units of the activation dtype
        for t in plan.targets:
            d_in = shape.linear_shapes.get(t, [h, h])[0]
            elems += (d_in * (1 + mask) if plan.lora_dropout > 0 else 0) + plan.lora_r
        if any(t in ("gate_proj", "up_proj", "down_proj") for t in plan.targets):
            elems += 2.5 * h + 0.75 * inter
    return elems


def estimate(
    shape: ModelShape,
    *,
    method: str = "lora",
    precision: str = "auto",
    optimizer: str = "adamw",
    seq_len: int = 512,
    batch: int = 1,
    grad_ckpt: bool = False,
    lora_r: int = 8,
    target_modules: list[str] | None = None,
    lora_dropout: float = 0.1,
    freeze_layers: int = 2,
    device: str = "cpu",
    budget_gib: float | None = None,
    inference_new_tokens: int | None = None,
    with_remedies: bool = True,
) -> MemoryEstimate:
    """Estimate peak training memory (or inference memory when ``method`` is 'inference')."""
    if method not in ("full", "lora", "qlora", "freeze", "inference"):
        raise InvalidInput(f"unknown method '{method}' for the estimate: use full, lora, qlora, freeze or inference")
    if seq_len < 1 or batch < 1:
        raise InvalidInput("seq_len and batch must be at least 1")
    if lora_r <= 0:
        raise InvalidInput(f"lora_r must be a positive rank (got {lora_r})")
    opt = {"adamw": "adamw", "adamw_torch": "adamw", "adam": "adamw", "adamw_8bit": "adamw_8bit",
           "paged_adamw_8bit": "adamw_8bit", "sgd": "sgd"}.get(optimizer)
    if opt is None:
        raise InvalidInput(f"unknown optimizer '{optimizer}': use adamw, adamw_8bit or sgd")
    if precision == "auto":
        precision = "bf16" if device == "cuda" else "fp32"
    if precision not in ("fp32", "bf16", "fp16"):
        raise InvalidInput(f"precision must be auto, fp32, bf16 or fp16 (got {precision})")
    targets = list(target_modules or ["q_proj", "v_proj"])
    missing = [t for t in targets if t not in shape.linear_shapes]
    if method in ("lora", "qlora") and missing:
        raise InvalidInput(
            f"target module(s) {', '.join(missing)} not in {shape.name}; its projections are "
            f"{', '.join(shape.linear_shapes) or 'unknown'}"
        )
    plan = _Plan(method, precision, opt, seq_len, batch, grad_ckpt, lora_r, targets, lora_dropout,  # type: ignore[arg-type]
                 min(freeze_layers, shape.layers), device)
    half = precision in ("bf16", "fp16")
    act_bytes = 2 if half else 4
    P, L, tokens = shape.parameters, shape.layers, seq_len * batch
    details: list[Component] = []
    notes: list[str] = []

    def add(name: str, value: float, formula: str) -> None:
        details.append(Component(name=name, gib=round(value / GIB, 4), formula=formula))

    runtime = CUDA_CONTEXT_BYTES if device == "cuda" else CPU_RUNTIME_BYTES
    if method == "inference":
        weight_bytes = 2 if half else 4
        add("weights", P * weight_bytes, f"P × {weight_bytes} B = {P:,} × {weight_bytes}")
        n = inference_new_tokens or 0
        kv = 2 * batch * L * shape.kv_width * (seq_len + n) * act_bytes
        add("kv_cache", kv, f"2 · b · L · h_kv · (s + n) · {act_bytes} B = 2·{batch}·{L}·{shape.kv_width}·({seq_len}+{n})·{act_bytes}")
        add("logits", batch * shape.vocab * 4 * 2, "b · V · 4 B × 2 (last-position logits and sampling buffer)")
        add("runtime", runtime, "CUDA context" if device == "cuda" else "Python + torch + transformers, measured")
        trainable = 0
    else:
        if method in ("lora", "qlora"):
            trainable = _lora_params(shape, lora_r, targets)
        elif method == "freeze":
            top = shape.quantizable // max(L, 1) * plan.freeze_layers
            trainable = top + shape.hidden * 2 * plan.freeze_layers  # + the layers' norm weights
        else:
            trainable = P
        # stored weights
        if method == "qlora":
            nf4 = NF4_DOUBLE_QUANT_BYTES_PER_PARAM
            rest = P - shape.quantizable
            rest_bytes = 2 if half else 4
            add("weights", shape.quantizable * nf4 + rest * rest_bytes,
                f"4-bit NF4 linears {shape.quantizable:,} × {nf4:.4f} B + other {rest:,} × {rest_bytes} B")
        elif method == "full" and half:
            add("weights", P * 2, f"half-precision working copy P × 2 B = {P:,} × 2 (autocast, alive through backward)")
            add("master_weights", P * 4, f"fp32 master copy P × 4 B = {P:,} × 4 (mixed precision)")
        else:
            wb = 2 if half else 4
            add("weights", P * wb, f"P × {wb} B = {P:,} × {wb}")
        if method in ("lora", "qlora"):
            add("adapter_weights", trainable * 4, f"LoRA A,B in fp32: L · Σ_targets r·(in+out) × 4 B = {trainable:,} × 4")
        grad_bytes = 4
        add("gradients", trainable * grad_bytes, f"trainable T × {grad_bytes} B = {trainable:,} × {grad_bytes}")
        ob = _opt_bytes(opt)  # type: ignore[arg-type]
        add("optimizer", trainable * ob, f"{opt}: T × {ob} B = {trainable:,} × {ob}")
        # activations
        if method == "freeze":
            per_token = _layer_activation_elems(shape, plan, True) * plan.freeze_layers
            layers_txt = f"top {plan.freeze_layers} trainable layers"
            flowing = plan.freeze_layers
        else:
            per_token = _layer_activation_elems(shape, plan, method == "full") * L
            layers_txt = f"{L} layers"
            flowing = L
        if grad_ckpt:
            acts = tokens * (shape.hidden * flowing + per_token / max(flowing, 1)) * act_bytes
            add("activations", acts, f"checkpointing: s·b·h·{act_bytes} B per layer input × {flowing} + one layer recomputed")
        else:
            acts = tokens * per_token * act_bytes
            add("activations", acts,
                f"s·b × per-token saved elements over {layers_txt} × {act_bytes} B "
                f"(full: 8h+4I+2h_kv+a+34; frozen+LoRA: 4h+3I+2h_kv+a+34 + per target 1.25·d_in + r)")
        head = tokens * (shape.vocab * 4 * 3 + 3 * shape.hidden * act_bytes)
        add("logits", head, "b·s·V·4 B × 3 (fp32 logits saved, their gradient, one softmax temporary) + final norm")
        step_peak = trainable * 4 if opt != "sgd" else 0  # foreach AdamW temporaries during the step
        if step_peak:
            add("optimizer_step", step_peak, "T × 4 B temporaries of the fused AdamW update (at the step, not in backward)")
        if device == "cpu":
            later = trainable * (ob + (4 if opt != "sgd" else 0))  # allocated after the first backward
            kept = max(0.0, CPU_ALLOCATOR_RETENTION * (acts + head) - later)
            add("allocator", kept, f"CPU only: glibc keeps ≈{CPU_ALLOCATOR_RETENTION} × (activations + logits) freed "
                "after backward resident, minus what the optimizer states reuse (measured)")
            if method == "qlora":
                add("checkpoint_pages", shape.quantizable * shape.checkpoint_bytes,
                    f"CPU only: the {shape.checkpoint_bytes}-byte checkpoint pages read to quantize the linears stay "
                    "mapped while the unquantized embeddings still reference the file")
        add("runtime", runtime, "CUDA context (not in torch's counters)" if device == "cuda"
            else "Python + torch + transformers + TRL resident set, measured")
    total = _peak(details)
    reference = tokens * shape.hidden * (34 + 5 * shape.heads * seq_len / max(shape.hidden, 1)) * L
    if method == "qlora" and device == "cpu":
        notes.append("bitsandbytes runs 4-bit matmuls on the CPU too, but slowly (dequantize per step)")
    if precision == "fp16" and method != "inference":
        notes.append("fp16 can overflow (loss scale skips, NaN); prefer bf16 where the GPU has it")
    result = MemoryEstimate(
        model=shape.name, parameters=P, trainable_parameters=trainable, method=method, precision=precision,
        optimizer=opt, device=device, seq_len=seq_len, batch=batch, grad_ckpt=grad_ckpt,
        lora_r=lora_r if method in ("lora", "qlora") else None,
        target_modules=targets if method in ("lora", "qlora") else None,
        components={c.name: c.gib for c in details}, details=details, total_gib=round(total / GIB, 3),
        budget_gib=budget_gib, fits=None if budget_gib is None else total / GIB <= budget_gib,
        reference_activation_formula_gib=round(reference / GIB, 4), notes=notes,
    )
    if with_remedies and method != "inference":
        result.remedies = _remedies(shape, result, plan, inference_new_tokens)
    return result


def _peak(details: list[Component]) -> float:
    """Peak = everything alive in backward, or everything alive at the optimizer step (activations freed)."""
    gib = {c.name: c.gib * GIB for c in details}
    always = sum(v for k, v in gib.items() if k not in ("activations", "logits", "optimizer_step"))
    # the allocator's retained heap is counted in `always` (it stays after the first step)
    backward = always + gib.get("activations", 0) + gib.get("logits", 0)
    step = always + gib.get("optimizer_step", 0)
    return max(backward, step)


def _remedies(shape: ModelShape, base: MemoryEstimate, plan: _Plan, new_tokens: int | None) -> list[Remedy]:
    options: list[tuple[str, dict[str, Any]]] = []
    if base.batch > 1:
        options.append((f"batch 1 with gradient accumulation {base.batch} (same effective batch)", {"batch": 1}))
    if not base.grad_ckpt:
        options.append(("gradient checkpointing (recompute activations in backward, ~30% slower)", {"grad_ckpt": True}))
    if base.precision == "fp32" and base.device == "cuda":
        options.append(("bf16 mixed precision", {"precision": "bf16"}))
    if base.seq_len > 256:
        options.append((f"shorter sequences ({base.seq_len // 2} tokens)", {"seq_len": base.seq_len // 2}))
    if base.method in ("full", "freeze"):
        options.append(("LoRA r 8 on q,v instead of full weights", {"method": "lora", "lora_r": 8,
                                                                       "target_modules": ["q_proj", "v_proj"]}))
    if base.method in ("full", "freeze", "lora"):
        options.append(("QLoRA (4-bit NF4 base; needs bitsandbytes)", {"method": "qlora"}))
    if base.optimizer == "adamw" and base.trainable_parameters > 10_000_000:
        options.append(("8-bit AdamW (bitsandbytes)", {"optimizer": "adamw_8bit"}))
    kwargs = dict(method=plan.method, precision=plan.precision, optimizer=plan.optimizer, seq_len=plan.seq_len,
                  batch=plan.batch, grad_ckpt=plan.grad_ckpt, lora_r=plan.lora_r, target_modules=plan.targets,
                  lora_dropout=plan.lora_dropout, freeze_layers=plan.freeze_layers, device=plan.device)
    out: list[Remedy] = []
    for text, change in options:
        est = estimate(shape, **{**kwargs, **change}, budget_gib=None, inference_new_tokens=new_tokens,
                       with_remedies=False)
        saved = base.total_gib - est.total_gib
        if saved > 0.0005:
            out.append(Remedy(change=text, total_gib=est.total_gib, saves_gib=round(saved, 3)))
    if base.method == "full" and base.device == "cuda":
        per_gpu = (base.components.get("gradients", 0) + base.components.get("optimizer", 0)
                   + base.components.get("master_weights", 0))
        out.append(Remedy(change="ZeRO-3 across 2 GPUs (shards weights, gradients and optimizer states)",
                          total_gib=round(base.total_gib - per_gpu / 2 - base.components.get("weights", 0) / 2, 3),
                          saves_gib=round(per_gpu / 2 + base.components.get("weights", 0) / 2, 3)))
    out.sort(key=lambda r: -r.saves_gib)
    return out


def gpu_budget_gib() -> float | None:
    """Free memory of the first GPU, when there is one."""
    import torch

    if not torch.cuda.is_available():
        return None
    free, _total = torch.cuda.mem_get_info(0)
    return round(free / GIB, 2)
