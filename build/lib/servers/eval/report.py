"""Self-contained HTML reports: no script, no CDN, every plot an embedded PNG drawn with
matplotlib's Agg backend (figure objects, no pyplot state, safe in threads).

A report shows what was evaluated (kind, model, config, input hashes), the headline
metrics with their confidence intervals, the plots the evaluation asked for (bars with
CIs, histograms, curves) and the first per-item rows, unscorable ones marked with their
reason.

Plots are described in ``RunRecord.figures["plots"]`` as plain data, one dict each:
``{"type": "bars", "title", "labels", "values", "lo"?, "hi"?, "ylabel"?}``,
``{"type": "hist", "title", "series": {name: values}, "vline"?, "xlabel"?}``,
``{"type": "lines", "title", "x", "series": {name: ys}, "xlabel"?, "ylabel"?}``,
``{"type": "grouped", "title", "groups", "series": {name: values}, "lo"?, "hi"?}``.
"""

from __future__ import annotations

import base64
import html
import io
import json
import warnings
from typing import Any

from servers.eval.schemas import ItemRow, RunRecord

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2em auto;max-width:1100px;color:#222;padding:0 1em}
h1{font-size:1.5em;margin-bottom:.2em}h2{font-size:1.15em;margin-top:1.6em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:.5em 0;font-size:.9em}td,th{border:1px solid #ddd;padding:.25em .6em;text-align:left;vertical-align:top}
th{background:#f4f4f4}.num{text-align:right;font-variant-numeric:tabular-nums}.bad{background:#fff1f0}
.muted{color:#777}img{max-width:100%;margin:.4em 0}code{font-size:.9em}.notes li{margin:.2em 0}
"""

PALETTE = ["#4C72B0", "#DD8452", "#55A868", "#C44E52", "#8172B3", "#937860", "#DA8BC3", "#8C8C8C"]


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4f}" if abs(value) < 1e5 else f"{value:.4g}"
    return str(value)


def _esc(value: Any) -> str:
    return html.escape(value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
                       if isinstance(value, dict | list) else _fmt(value))


# ---------------------------------------------------------------- plots


def _png(fig: Any) -> str:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # missing glyphs (CJK labels) are drawn as boxes, not errors
        fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _figure(width: float = 7.0, height: float = 3.4) -> tuple[Any, Any]:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height))
    return fig, fig.add_subplot(1, 1, 1)


def _errors(values: list[float], lo: list[float] | None, hi: list[float] | None) -> Any:
    if not lo or not hi:
        return None
    return [[max(0.0, v - low) for v, low in zip(values, lo, strict=True)],
            [max(0.0, high - v) for v, high in zip(values, hi, strict=True)]]


def plot(spec: dict[str, Any]) -> str:
    """One plot spec → base64 PNG."""
    kind = spec.get("type")
    fig, ax = _figure(7.0, max(2.6, 0.32 * len(spec.get("labels", [])) + 1.2) if kind == "bars" else 3.4)
    if kind == "bars":
        labels, values = list(spec["labels"]), [float(v) for v in spec["values"]]
        ys = list(range(len(labels)))[::-1]
        ax.barh(ys, values, xerr=_errors(values, spec.get("lo"), spec.get("hi")), color=PALETTE[0], capsize=3)
        ax.set_yticks(ys, labels)
        for y, v in zip(ys, values, strict=True):
            ax.text(v, y, f" {v:.3f}", va="center", fontsize=8)
        ax.set_xlabel(spec.get("ylabel", ""))
    elif kind == "grouped":
        groups, series = list(spec["groups"]), dict(spec["series"])
        width = 0.8 / max(1, len(series))
        for i, (name, values) in enumerate(series.items()):
            xs = [g + i * width for g in range(len(groups))]
            lo, hi = (spec.get("lo") or {}).get(name), (spec.get("hi") or {}).get(name)
            ax.bar(xs, values, width, yerr=_errors(values, lo, hi), label=name, color=PALETTE[i % len(PALETTE)], capsize=2)
        ax.set_xticks([g + 0.4 - width / 2 for g in range(len(groups))], groups, rotation=30, ha="right")
        ax.legend(fontsize=8)
    elif kind == "hist":
        for i, (name, values) in enumerate(spec["series"].items()):
            if values:
                ax.hist(values, bins=spec.get("bins", 20), alpha=0.55, label=f"{name} (n={len(values)})",
                        color=PALETTE[i % len(PALETTE)])
        if spec.get("vline") is not None:
            ax.axvline(float(spec["vline"]), color="#222", linestyle="--", label=f"threshold {float(spec['vline']):.3f}")
        ax.set_xlabel(spec.get("xlabel", ""))
        ax.set_ylabel("items")
        ax.legend(fontsize=8)
    elif kind == "lines":
        for i, (name, ys) in enumerate(spec["series"].items()):
            ax.plot(spec["x"], ys, marker="o", label=name, color=PALETTE[i % len(PALETTE)])
        ax.set_xlabel(spec.get("xlabel", ""))
        ax.set_ylabel(spec.get("ylabel", ""))
        if spec.get("logx"):
            ax.set_xscale("log")
        ax.legend(fontsize=8)
    else:
        raise ValueError(f"unknown plot type {kind!r}")
    ax.set_title(spec.get("title", ""), fontsize=10)
    ax.grid(alpha=0.3)
    return _png(fig)


def default_plots(record: RunRecord, rows: list[ItemRow]) -> list[dict[str, Any]]:
    """Metric bars with CIs (metrics between 0 and 1) and the primary metric's per-item distribution."""
    plots: list[dict[str, Any]] = []
    unit = [m for m, v in record.metrics.items() if 0.0 <= v <= 1.0 and m in record.intervals]
    if unit:
        plots.append({"type": "bars", "title": "metrics (mean, bootstrap CI)", "labels": unit,
                      "values": [record.metrics[m] for m in unit],
                      "lo": [record.intervals[m][0] for m in unit], "hi": [record.intervals[m][1] for m in unit]})
    if record.primary:
        values = [r.scores[record.primary] for r in rows if record.primary in r.scores]
        if len(values) > 1:
            plots.append({"type": "hist", "title": f"per-item {record.primary}", "series": {record.primary: values},
                          "xlabel": record.primary})
    return plots


# ---------------------------------------------------------------- page


def _table(headers: list[str], body: list[list[Any]], bad: list[bool] | None = None) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    lines = []
    for i, row in enumerate(body):
        cls = ' class="bad"' if bad and bad[i] else ""
        cells = "".join(
            f'<td class="num">{_esc(c)}</td>' if isinstance(c, int | float) and not isinstance(c, bool) else f"<td>{_esc(c)}</td>"
            for c in row
        )
        lines.append(f"<tr{cls}>{cells}</tr>")
    return f"<table><tr>{head}</tr>{''.join(lines)}</table>"


def _detail_text(detail: dict[str, Any], limit: int = 400) -> str:
    text = json.dumps(detail, ensure_ascii=False, default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def render(record: RunRecord, rows: list[ItemRow], *, max_rows: int = 200) -> str:
    """The whole report page as one HTML string."""
    parts = [f"<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Quiver eval {html.escape(record.id)}"
             f"</title><style>{CSS}</style></head><body>"]
    parts.append(f"<h1>{html.escape(record.kind)} evaluation{': ' + html.escape(record.name) if record.name else ''}</h1>")
    parts.append(f'<p class="muted">run <code>{html.escape(record.id)}</code> · {html.escape(record.created)}'
                 f"{' · model ' + html.escape(record.model) if record.model else ''} · {record.n_items} items"
                 f" · {record.n_unscorable} with unscorable metrics</p>")
    if record.notes:
        parts.append('<ul class="notes">' + "".join(f"<li>{html.escape(n)}</li>" for n in record.notes) + "</ul>")

    parts.append("<h2>Metrics</h2>")
    body = []
    for name, value in record.metrics.items():
        ci = record.intervals.get(name)
        body.append([name + (" ★" if name == record.primary else ""), value,
                     f"[{ci[0]:.4f}, {ci[1]:.4f}]" if ci else "—", record.counts.get(name, record.n_items)])
    parts.append(_table(["metric", "mean", "CI", "items scored"], body))

    specs = default_plots(record, rows) + list(record.figures.get("plots", []))
    if specs:
        parts.append("<h2>Plots</h2>")
        for spec in specs:
            try:
                png = plot(spec)
            except (ValueError, KeyError, TypeError) as exc:
                parts.append(f'<p class="muted">plot {html.escape(str(spec.get("title")))} not drawn: {html.escape(str(exc))}</p>')
                continue
            parts.append(f'<img alt="{html.escape(str(spec.get("title", "plot")))}" src="data:image/png;base64,{png}">')

    for title, table in record.figures.get("tables", {}).items():
        parts.append(f"<h2>{html.escape(title)}</h2>")
        parts.append(_table(list(table["headers"]), list(table["rows"])))

    parts.append("<h2>Items</h2>")
    shown = rows[:max_rows]
    names = list(dict.fromkeys(k for r in shown for k in r.scores))
    body = [[r.id, *[r.scores.get(n, "—") for n in names], "; ".join(f"{k}: {v}" for k, v in r.unscorable.items()),
             _detail_text(r.detail)] for r in shown]
    parts.append(_table(["id", *names, "unscorable", "detail"], body, bad=[bool(r.unscorable) for r in shown]))
    if len(rows) > len(shown):
        parts.append(f'<p class="muted">{len(rows) - len(shown)} more rows in rows.jsonl next to this report.</p>')

    parts.append("<h2>Configuration and inputs</h2>")
    parts.append(_table(["key", "value"], [[k, v] for k, v in record.config.items()]))
    parts.append(_table(["input", "sha256"], [[k, v] for k, v in record.inputs.items()]))
    parts.append("</body></html>")
    return "\n".join(parts)
