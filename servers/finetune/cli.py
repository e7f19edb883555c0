"""`quiver finetune ...`: the finetune tools on the command line (same library, `--json` for one JSON object)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from pydantic import BaseModel

from servers.core.settings import Settings


def _json_arg(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise argparse.ArgumentTypeError(f"not valid JSON: {exc.msg}") from exc


def register(subparsers: Any, parents: list[argparse.ArgumentParser] | None = None) -> None:
    """Add `finetune` and its subcommands to the `quiver` parser."""
    if parents is None:
        from servers.core.cli import common_flags  # imported here: servers.core.cli imports this module

        parents = [common_flags()]
    ft = subparsers.add_parser("finetune", parents=parents, help="fine-tuning: estimate, prepare, start, watch, export")
    sub = ft.add_subparsers(dest="ft_command", required=True)
    out = argparse.ArgumentParser(add_help=False)
    out.add_argument("--json", action="store_true", help="print one JSON object")
    out.add_argument("--root", action="append", default=argparse.SUPPRESS,
                     help="folder whose files may be read and written (repeatable; replaces the configured roots)")
    common = [*parents, out]

    p = sub.add_parser("methods", parents=common, help="methods, adapters, presets and what this machine can run")
    p.set_defaults(func=_methods)

    p = sub.add_parser("recommend", parents=common, help="a full config for a task, model, data size and budget")
    p.add_argument("--task", required=True,
                   choices=["classification", "instruction", "chat", "code", "math", "domain", "tool_calling"])
    p.add_argument("--samples", type=int, required=True)
    p.add_argument("--model", default=None)
    p.add_argument("--memory-gib", type=float, default=None)
    p.set_defaults(func=_recommend)

    p = sub.add_parser("estimate", parents=common, help="peak memory of training or inference, per component")
    p.add_argument("--model", default=None)
    p.add_argument("--method", default="lora", choices=["full", "lora", "qlora", "freeze", "inference"])
    p.add_argument("--precision", default="auto", choices=["auto", "bf16", "fp16", "fp32"])
    p.add_argument("--seq-len", type=int, default=None)
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--grad-ckpt", action="store_true")
    p.add_argument("--lora-r", type=int, default=8)
    p.add_argument("--target", action="append", default=None, dest="target_modules", help="LoRA target (repeatable)")
    p.add_argument("--optimizer", default="adamw", choices=["adamw", "adamw_8bit", "sgd"])
    p.add_argument("--budget-gib", type=float, default=None)
    p.add_argument("--new-tokens", type=int, default=None)
    p.add_argument("--device", choices=["cpu", "cuda"], default=None)
    p.set_defaults(func=_estimate)

    p = sub.add_parser("prepare", parents=common, help="validate, clean and split training data")
    p.add_argument("files", nargs="*", help="JSONL/JSON/CSV/Parquet files (none with --transcripts: DATA_DIR/transcripts)")
    p.add_argument("--out", required=True)
    p.add_argument("--format", default=None,
                   choices=["messages", "prompt_completion", "preference", "kto", "prompt_only", "text"])
    p.add_argument("--dedup", action=argparse.BooleanOptionalAction, default=True)
    p.add_argument("--near-dup", type=float, default=None, metavar="T", help="MinHash Jaccard threshold, e.g. 0.85")
    p.add_argument("--ppl-filter", action="store_true")
    p.add_argument("--pii", default="drop", choices=["drop", "redact", "keep"])
    p.add_argument("--min-chars", type=int, default=1)
    p.add_argument("--max-chars", type=int, default=None)
    p.add_argument("--select", type=int, default=None, help="keep N diverse rows")
    p.add_argument("--eval-fraction", type=float, default=None)
    p.add_argument("--split-by", default=None, help="time field for a time-based split")
    p.add_argument("--eval-file", action="append", default=None, dest="eval_files")
    p.add_argument("--mix-file", action="append", default=None, dest="mix_files")
    p.add_argument("--mix-fraction", type=float, default=None)
    p.add_argument("--transcripts", action="store_true")
    p.add_argument("--model", default=None)
    p.add_argument("--check-template", action=argparse.BooleanOptionalAction, default=True)
    p.add_argument("--seed", type=int, default=42)
    p.set_defaults(func=_prepare)

    p = sub.add_parser("start", parents=common, help="launch a training job (or --dry-run)")
    p.add_argument("--method", default="sft", choices=["sft", "pretrain", "dpo", "kto", "grpo", "rloo", "reward"])
    p.add_argument("--adapter", default="lora", choices=["lora", "qlora", "full", "freeze"])
    p.add_argument("--model", default=None)
    p.add_argument("--data", required=True)
    p.add_argument("--eval-data", default=None)
    p.add_argument("--preset", default=None)
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="option override (repeatable; JSON values)")
    p.add_argument("--options", type=_json_arg, default=None, help="option overrides as one JSON object")
    p.add_argument("--max-steps", type=int, default=None)
    p.add_argument("--epochs", type=float, default=None)
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--reward", type=_json_arg, default=None, help="GRPO/RLOO reward rules as a JSON list")
    p.add_argument("--dry-run", action="store_true")
    p.add_argument("--job-id", default=None)
    p.add_argument("--label", default="")
    p.add_argument("--wait", action="store_true", help="then wait with a progress bar")
    p.set_defaults(func=_start)

    for name, helptext in (("status", "state, metrics, plots and diagnostics"), ("wait", "wait with a progress bar"),
                           ("cancel", "stop a job (checkpoint saved)"), ("resume", "continue from the last checkpoint"),
                           ("logs", "the trainer's output"), ("export", "write the adapter or merged model")):
        p = sub.add_parser(name, parents=common, help=helptext)
        p.add_argument("job_id")
        if name == "wait":
            p.add_argument("--timeout", type=float, default=None)
        if name == "logs":
            p.add_argument("--lines", type=int, default=60)
        if name == "status":
            p.add_argument("--metrics", type=int, default=20, dest="metrics_limit")
        if name == "export":
            p.add_argument("--merge", action="store_true")
            p.add_argument("--out", default=None)
            p.add_argument("--checkpoint", type=int, default=None)
            p.add_argument("--verify", action=argparse.BooleanOptionalAction, default=True)
        p.set_defaults(func=globals()[f"_{name}"])

    p = sub.add_parser("list", parents=common, help="fine-tuning jobs")
    p.add_argument("--state", default=None)
    p.add_argument("--limit", type=int, default=50)
    p.set_defaults(func=_list)


def _emit(args: argparse.Namespace, result: BaseModel, human: str | None = None) -> int:
    if args.json or human is None:
        print(result.model_dump_json(indent=None if args.json else 2))
    else:
        print(human)
    return 0


def _methods(args: argparse.Namespace, settings: Settings) -> int:
    from servers.finetune import api

    r = api.list_methods(settings)
    lines = [f"device {r.device} (gpus {r.gpus}, bf16 {r.bf16}); jobs at once: {r.max_running_jobs}"]
    lines += [f"  {m.name:9} {'yes' if m.available else 'no '} {m.reason or m.description}" for m in r.methods]
    lines += [f"  preset {p.name}: {p.values}" for p in r.presets]
    return _emit(args, r, "\n".join(lines))


def _recommend(args: argparse.Namespace, settings: Settings) -> int:
    from servers.finetune import api

    r = api.recommend_config(settings, task=args.task, model=args.model, samples=args.samples, memory_gib=args.memory_gib)
    lines = [f"{r.method}/{r.config.adapter} on {r.model} ({r.parameters:,} parameters), ~{r.memory.total_gib} GiB"]
    lines += [f"  {rule.key} = {rule.value}: {rule.rule}" for rule in r.rules]
    return _emit(args, r, "\n".join(lines + [f"  note: {n}" for n in r.notes]))


def _estimate(args: argparse.Namespace, settings: Settings) -> int:
    from servers.finetune import api

    r = api.estimate_memory(settings, model=args.model, method=args.method, precision=args.precision,
                            seq_len=args.seq_len, batch=args.batch, grad_ckpt=args.grad_ckpt, lora_r=args.lora_r,
                            target_modules=args.target_modules, optimizer=args.optimizer, budget_gib=args.budget_gib,
                            new_tokens=args.new_tokens, device=args.device)
    lines = [f"{r.model}: {r.parameters:,} parameters, {r.method} {r.precision} on {r.device}: {r.total_gib} GiB"
             + ("" if r.fits is None else f" ({'fits' if r.fits else 'does NOT fit'} in {r.budget_gib} GiB)")]
    lines += [f"  {c.name:15} {c.gib:8.3f} GiB  {c.formula}" for c in r.details]
    lines += [f"  remedy: {m.change}: {m.total_gib} GiB (−{m.saves_gib})" for m in r.remedies]
    return _emit(args, r, "\n".join(lines))


def _prepare(args: argparse.Namespace, settings: Settings) -> int:
    from servers.finetune import api

    r = api.prepare_data(settings, files=args.files, out=args.out, format=args.format, dedup=args.dedup,
                         near_dup=args.near_dup, ppl_filter=args.ppl_filter, pii=args.pii, min_chars=args.min_chars,
                         max_chars=args.max_chars, select=args.select, eval_fraction=args.eval_fraction,
                         split_by=args.split_by, eval_files=args.eval_files, mix_files=args.mix_files,
                         mix_fraction=args.mix_fraction, transcripts=args.transcripts, model=args.model,
                         check_template=args.check_template, seed=args.seed)
    lines = [f"{r.format}: kept {r.kept} ({r.splits}) → {r.path}", f"  dropped: {r.dropped or 'nothing'}"]
    lines += [f"  {line}" for line in r.invalid_lines[:10]]
    if r.template_check:
        lines.append(f"  template: {r.template_check.template_source}, end-of-turn learned "
                     f"{r.template_check.end_of_turn_learned}, prompts masked {r.template_check.prompt_tokens_masked}")
    return _emit(args, r, "\n".join(lines))


def _options(args: argparse.Namespace) -> dict[str, Any]:
    from servers.core.errors import InvalidInput

    options = dict(args.options or {})
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep:
            raise InvalidInput(f"--set expects KEY=VALUE, got '{item}'")
        try:
            options[key] = json.loads(value)
        except json.JSONDecodeError:
            options[key] = value
    return options


def _start(args: argparse.Namespace, settings: Settings) -> int:
    from servers.finetune import api

    r = api.start_job(settings, method=args.method, adapter=args.adapter, model=args.model, data=args.data,
                      eval_data=args.eval_data, preset=args.preset, options=_options(args), max_steps=args.max_steps,
                      epochs=args.epochs, seed=args.seed, reward=args.reward, dry_run=args.dry_run,
                      job_id=args.job_id, label=args.label)
    if args.wait and not args.dry_run:
        return _wait_with_bar(args, settings, r.job_id, None)
    human = f"job {r.job_id}: {r.state} ({r.method}/{r.adapter} on {r.model}, ~{(r.memory or {}).get('total_gib')} GiB)\n  {' '.join(r.command)}"
    return _emit(args, r, human)


def _status_text(r: Any) -> str:
    lines = [f"job {r.job_id}: {r.state}  step {r.step}/{r.total_steps or '?'}"
             + (f"  eta {r.eta_s:.0f}s" if r.eta_s else "")]
    if r.latest:
        lines.append("  latest: " + ", ".join(f"{k} {v:.4g}" for k, v in list(r.latest.items())[:8]))
    lines += [f"  {d}" for d in r.diagnostics]
    lines += [f"  plot: {p}" for p in r.plots]
    if r.output:
        lines.append(f"  output: {r.output}")
    if r.error:
        lines.append(f"  error: {r.error}")
    return "\n".join(lines)


def _status(args: argparse.Namespace, settings: Settings) -> int:
    from servers.finetune import api

    r = api.job_status(settings, job_id=args.job_id, metrics_limit=args.metrics_limit)
    return _emit(args, r, _status_text(r))


def _wait_with_bar(args: argparse.Namespace, settings: Settings, job_id: str, timeout: float | None) -> int:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from servers.finetune import api

    if args.json:
        r = api.wait_job(settings, job_id=job_id, timeout_s=timeout)
        print(r.model_dump_json())
        return 0 if r.state == "completed" else 1
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                  console=Console(stderr=True)) as bar:
        task = bar.add_task(f"train {job_id}", total=None)

        def progress(step: int, total: int | None, message: str) -> None:
            bar.update(task, completed=step, total=total, description=f"train {job_id} {message}"[:70])

        r = api.wait_job(settings, job_id=job_id, timeout_s=timeout, progress=progress)
    print(_status_text(r))
    return 0 if r.state == "completed" else 1


def _wait(args: argparse.Namespace, settings: Settings) -> int:
    return _wait_with_bar(args, settings, args.job_id, args.timeout)


def _cancel(args: argparse.Namespace, settings: Settings) -> int:
    from servers.finetune import api

    r = api.cancel_job(settings, job_id=args.job_id)
    return _emit(args, r, _status_text(r))


def _resume(args: argparse.Namespace, settings: Settings) -> int:
    from servers.finetune import api

    r = api.resume_job(settings, job_id=args.job_id)
    return _emit(args, r, _status_text(r))


def _logs(args: argparse.Namespace, settings: Settings) -> int:
    from servers.finetune import api

    r = api.job_logs(settings, job_id=args.job_id, lines=args.lines)
    return _emit(args, r, r.text)


def _export(args: argparse.Namespace, settings: Settings) -> int:
    from servers.finetune import api

    r = api.export_model(settings, job_id=args.job_id, merge=args.merge, out=args.out, checkpoint=args.checkpoint,
                         verify=args.verify)
    human = (f"{r.kind} → {r.path} ({r.size_mb} MB), verified {r.verified}; ppl base {r.perplexity_base} → tuned "
             f"{r.perplexity_tuned}\n  sample: {r.sample_output!r}\n  use: {r.use}")
    return _emit(args, r, human)


def _list(args: argparse.Namespace, settings: Settings) -> int:
    from servers.finetune import api

    r = api.list_jobs(settings, state=args.state, limit=args.limit)
    lines = [f"{r.running} running, {r.queued} queued (limit {r.max_running_jobs})"]
    lines += [f"  {j.job_id}  {j.state:9} {j.method}/{j.adapter} {j.model}  step {j.step}/{j.total_steps}  {j.label}"
              for j in r.jobs]
    return _emit(args, r, "\n".join(lines))


if __name__ == "__main__":  # pragma: no cover
    sys.exit("use `quiver finetune ...`")
