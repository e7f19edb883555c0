"""Protocol-harness calls for the finetune server: every tool, with a real 1-step job (cancel, resume, export)."""

from __future__ import annotations

import json
from pathlib import Path


def _tiny_dataset(workdir: Path) -> Path:
    workdir.mkdir(parents=True, exist_ok=True)
    path = workdir / "ft-data.jsonl"
    rows = [{"messages": [{"role": "user", "content": f"Add {a} and {a + 1}."},
                          {"role": "assistant", "content": f"{a} + {a + 1} = {2 * a + 1}."}]} for a in range(1, 9)]
    rows.append(rows[0])  # a duplicate for prepare to drop
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def calls(workdir: Path) -> list[tuple[str, dict]]:
    data = _tiny_dataset(workdir)
    prepared = str(workdir / "ft-prepared")
    tiny = {"batch_size": 1, "max_length": 64, "save_steps": 1}
    return [
        ("list_methods", {}),
        ("recommend_config", {"task": "instruction", "samples": 500, "memory_gib": 4}),
        ("estimate_memory", {"model": "smollm2", "method": "lora", "seq_len": 128, "batch": 2, "budget_gib": 4}),
        ("prepare_data", {"files": [str(data)], "out": prepared, "near_dup": 0.9, "check_template": False}),
        ("start_job", {"data": prepared, "max_steps": 1, "options": tiny, "dry_run": True}),
        ("start_job", {"data": prepared, "max_steps": 1, "options": tiny, "job_id": "proto-job"}),
        ("cancel_job", {"job_id": "proto-job"}),
        ("wait_job", {"job_id": "proto-job", "timeout_s": 120}),
        ("resume_job", {"job_id": "proto-job"}),
        ("wait_job", {"job_id": "proto-job", "timeout_s": 240}),
        ("job_status", {"job_id": "proto-job"}),
        ("job_logs", {"job_id": "proto-job", "lines": 20}),
        ("list_jobs", {}),
        ("export_model", {"job_id": "proto-job", "verify": False}),
    ]


def concurrent_call(workdir: Path) -> tuple[str, dict]:
    return ("list_methods", {})
