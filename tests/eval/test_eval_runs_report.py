"""Runs are saved, listed and shown; reports are self-contained HTML whose PNGs decode."""

from __future__ import annotations

import base64
import io
from html.parser import HTMLParser

import pytest
from matplotlib import image

from servers.core.errors import InvalidInput, NotFound
from servers.eval import api
from servers.eval.report import plot
from servers.eval.runs import RunStore


class Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.images: list[str] = []
        self.scripts = 0
        self.links: list[str] = []
        self.tables = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "img":
            self.images.append(values.get("src") or "")
        if tag == "script":
            self.scripts += 1
        if tag in ("link", "a") and (values.get("href") or "").startswith("http"):
            self.links.append(values["href"] or "")
        if tag == "table":
            self.tables += 1


def test_report_parses_and_its_pngs_decode(eval_env) -> None:
    result = api.eval_retrieval(qrels={"q1": {"a": 1}, "q2": {"b": 1}, "q3": {"c": 1}},
                                run={"q1": {"a": 0.9, "x": 0.4}, "q2": {"x": 0.8, "b": 0.5}, "q3": {"y": 0.7, "c": 0.2}},
                                ks=[1, 3, 10], name="<b>escaped</b>", settings=eval_env)
    html = api.report_html(result.run_id, settings=eval_env)
    page = Page()
    page.feed(html)
    assert page.scripts == 0 and not page.links and page.tables >= 3  # no script, no CDN
    assert len(page.images) >= 3  # metric bars, per-query distribution, curves, score histograms
    for src in page.images:
        assert src.startswith("data:image/png;base64,")
        pixels = image.imread(io.BytesIO(base64.b64decode(src.split(",", 1)[1])), format="png")
        assert pixels.shape[0] > 100 and pixels.shape[1] > 100
    assert "<b>escaped</b>" not in html and "&lt;b&gt;escaped&lt;/b&gt;" in html
    info = api.eval_report(result.run_id, settings=eval_env)
    assert info.report_uri == f"eval://reports/{result.run_id}" and info.bytes == len(html.encode())


def test_runs_are_listed_shown_and_latest_resolves(eval_env) -> None:
    first = api.eval_compare(scores_a={"1": 0.1, "2": 0.2}, scores_b={"1": 0.3, "2": 0.1}, settings=eval_env)
    listing = api.eval_list_runs(settings=eval_env)
    assert listing.runs[0].id == first.run_id and listing.total >= 1
    assert api.eval_list_runs(kind="compare", settings=eval_env).runs[0].kind == "compare"
    detail = api.eval_get_run("latest", rows=1, settings=eval_env)
    assert detail.run.id == first.run_id and detail.rows_total == 2 and len(detail.rows) == 1
    assert detail.run.config["a"] == "A" and set(detail.run.inputs) == {"a", "b"}
    assert len(detail.run.inputs["a"]) == 64  # sha256 of the input
    assert api.eval_report("latest", settings=eval_env).run_id == first.run_id
    with pytest.raises(NotFound, match="no evaluation run"):
        api.eval_get_run("retrieval-20000101-000000-aaaaaa", settings=eval_env)
    with pytest.raises(InvalidInput, match="not a run id"):
        api.eval_get_run("../../etc/passwd", settings=eval_env)


def test_a_damaged_folder_is_not_listed_and_saves_are_atomic(tmp_path) -> None:
    store = RunStore(tmp_path / "runs")
    (tmp_path / "runs" / "junk-run").mkdir(parents=True)
    (tmp_path / "runs" / "junk-run" / "run.json").write_text("{not json")
    assert store.list() == []
    with pytest.raises(NotFound, match="no evaluation run has been saved"):
        store.get("latest")


def test_plot_kinds() -> None:
    for spec in ({"type": "bars", "labels": ["a"], "values": [0.5], "lo": [0.4], "hi": [0.6]},
                 {"type": "hist", "series": {"x": [1, 2, 2, 3]}, "vline": 2},
                 {"type": "lines", "x": [1, 10], "series": {"r": [0.1, 0.5]}, "logx": True},
                 {"type": "grouped", "groups": ["m"], "series": {"a": [0.5], "b": [0.6]}}):
        assert base64.b64decode(plot(spec))[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError, match="unknown plot type"):
        plot({"type": "pie"})
