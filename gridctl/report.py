"""HTML reports: one self-contained page with the figures an operator checks a plan by."""

from __future__ import annotations

import base64
import contextlib
import html
import io
import json
import os
import tempfile
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from gridctl.errors import UserInputError


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
    verdict: str | None = None,
) -> Path:
    """Write a self-contained HTML page (figures embedded) atomically; ``verdict``, the first
    line under the title, says what the page shows (e.g. "optimal, AC validated"), marked
    when it is not ``ok`` (a string beginning with "optimal")."""
    check_output_path(path)  # before the figures are drawn
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
<h1>{html.escape(title)}</h1>{_verdict(verdict)}{_kpi_table(kpis, baseline_kpis)}
<ul>{note_html}</ul>
{figures}{rec}</body></html>"""
    write_atomically(path, page)
    return path


def _verdict(verdict: str | None) -> str:
    if not verdict:
        return ""
    ok = verdict.startswith("optimal")
    style = "color:#1a7f37" if ok else "color:#b00020;font-weight:bold"
    return f'<p style="font-size:1.2em;{style}">{html.escape(verdict)}</p>'


def check_output_path(path: Path, *, what: str = "an HTML report") -> None:
    """Refuse a path a file cannot be written at (a folder, a path under a file, a folder that
    cannot be written) before any work is done; nothing is created."""
    source = str(path)
    if path.is_dir():
        raise UserInputError(f"is a folder; expected the path of {what} to write", source=source)
    if path.exists() and not path.is_file():
        raise UserInputError(f"is not a regular file; expected the path of {what} to write",
                             source=source)
    folder = next(p for p in path.parents if p.exists())
    if not folder.is_dir():
        raise UserInputError(f"{folder} is a file, not a folder; expected the path of {what} "
                             "in a folder", source=source)
    try:  # permissions alone do not say (root, a read-only mount): a probe file says
        fd, probe = tempfile.mkstemp(dir=folder, prefix=".gridctl-probe-")
    except OSError as exc:
        raise UserInputError(f"its folder {folder} cannot be written ({exc.strerror or exc}); "
                             f"expected a folder {what} can be written in",
                             source=source) from None
    os.close(fd)
    os.unlink(probe)


def write_atomically(path: Path, text: str) -> None:
    """Write ``text`` to a temporary file beside ``path`` and rename it into place: a reader
    (or a crash) sees the old file or the new one, never half of one."""
    check_output_path(path, what="a file")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:  # made like any new file (the umask applies), not private as mkstemp's are
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise UserInputError(f"cannot be written ({exc.strerror or exc})",
                             source=str(path)) from None
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
