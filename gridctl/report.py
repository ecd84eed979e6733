"""HTML reports: one self-contained page with the figures an operator checks a plan by."""

from __future__ import annotations

import base64
import html
import io
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd


@dataclass(frozen=True, kw_only=True)
class Series:
    label: str
    values: np.ndarray
    style: str = "-"


@dataclass(frozen=True, kw_only=True)
class Panel:
    title: str
    ylabel: str
    series: Sequence[Series]
    hlines: Sequence[tuple[float, str]] = ()


def _figure(index: pd.DatetimeIndex, panel: Panel) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 3.2), dpi=100)
    x = index.tz_localize(None) if index.tz is not None else index
    for s in panel.series:
        ax.plot(x, s.values, s.style, label=s.label, lw=1.4)
    for y, label in panel.hlines:
        ax.axhline(y, color="#b2182b", lw=0.8, ls="--", label=label)
    ax.set_title(panel.title, fontsize=11)
    ax.set_ylabel(panel.ylabel)
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%H:%M"))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight")
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _kpi_table(kpis: Mapping[str, Any], baseline: Mapping[str, Any] | None) -> str:
    rows = []
    for k, v in kpis.items():
        b = baseline.get(k, "") if baseline else ""
        rows.append(
            f"<tr><td>{html.escape(k)}</td><td>{html.escape(str(v))}</td>"
            f"<td>{html.escape(str(b))}</td></tr>"
        )
    head = "<tr><th>figure</th><th>plan</th><th>baseline (no control)</th></tr>"
    return f"<table>{head}{''.join(rows)}</table>"


def write_html_report(
    path: Path,
    *,
    title: str,
    index: pd.DatetimeIndex,
    panels: Sequence[Panel],
    kpis: Mapping[str, Any],
    baseline_kpis: Mapping[str, Any] | None = None,
    record: Mapping[str, Any] | None = None,
    notes: Sequence[str] = (),
) -> Path:
    """Write a self-contained HTML page (figures embedded) atomically."""
    figures = "".join(
        f'<figure><img alt="{html.escape(p.title)}" src="data:image/png;base64,'
        f'{_figure(index, p)}"/></figure>'
        for p in panels
    )
    note_html = "".join(f"<li>{html.escape(n)}</li>" for n in notes)
    rec = (
        (
            f"<h2>Decision record</h2><pre>{html.escape(json.dumps(record, indent=1, default=str))}"
            "</pre>"
        )
        if record
        else ""
    )
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body{{font-family:sans-serif;max-width:1000px;margin:auto}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:3px 8px;text-align:right}}pre{{font-size:11px;
background:#f6f6f6;padding:8px;overflow:auto;max-height:400px}}</style></head><body>
<h1>{html.escape(title)}</h1>{_kpi_table(kpis, baseline_kpis)}<ul>{note_html}</ul>
{figures}{rec}</body></html>"""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(page, encoding="utf-8")
    tmp.replace(path)
    return path
