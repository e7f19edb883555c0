"""Every user-given file an eval tool reads goes through the roots check, links included: a path (or a
link inside a root, or a database URL) that leads outside the roots is refused with AccessDenied."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from servers.core.errors import AccessDenied
from servers.eval import api
from servers.eval.schemas import SqlItem


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A folder that is not under eval_env's roots (pytest's per-test folder, beside the module's root)."""
    return tmp_path


def test_a_link_inside_a_root_to_a_file_outside_is_refused(eval_env, outside: Path) -> None:
    secret = outside / "qrels.tsv"
    secret.write_text("q1\td1\t1\n")
    inside = Path(eval_env.roots[0]) / "linked-qrels.tsv"
    inside.symlink_to(secret)
    with pytest.raises(AccessDenied, match="outside the allowed roots"):
        api.eval_retrieval(qrels_path=str(inside), run={"q1": {"d1": 1.0}}, settings=eval_env)
    folder = Path(eval_env.roots[0]) / "transcripts-with-a-link"
    folder.mkdir()
    (outside / "t.jsonl").write_text(json.dumps({"id": "r", "events": []}) + "\n")
    (folder / "t.jsonl").symlink_to(outside / "t.jsonl")
    with pytest.raises(AccessDenied, match="outside the allowed roots"):
        api.eval_latency(transcripts_path=str(folder), settings=eval_env)


def test_a_database_outside_the_roots_is_refused_not_scored(eval_env, outside: Path) -> None:
    db = outside / "other.sqlite"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE t (x INTEGER)")
    items = [SqlItem(database="other", gold="SELECT x FROM t", predicted="SELECT x FROM t")]
    for target in (str(db), f"sqlite:///{db}"):
        with pytest.raises(AccessDenied, match="outside the allowed roots"):
            api.eval_text2sql(items=items, databases={"other": target}, settings=eval_env)
