"""A bundle on disk: CSV files, a JSON header and optionally a PNG, written all or nothing.

Files in the output directory:

- ``pv_p_mw.csv``, ``load_p_mw.csv``, ``load_q_mvar.csv``: ``time`` + one column per device id;
- ``series.csv``: ``time``, ``price_cny_per_kwh``, ``export_price_cny_per_kwh`` (if any),
  ``carbon_kg_per_kwh``, ``temperature_c``;
- ``ev_sessions.csv``: ACN-Data-like columns (see :mod:`forecasts.ev_csv`);
- ``bundle.json``: step, start, end, issue time, demand charge and provenance;
- ``forecast.png`` when asked for.

Times are ISO 8601 with the +08:00 offset and label step starts.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from types import MappingProxyType

import pandas as pd

from forecasts.bundle import ForecastBundle
from forecasts.csv_io import read_table, read_timeseries_csv
from forecasts.errors import ForecastInputError
from forecasts.ev_csv import read_ev_sessions_csv, sessions_frame
from forecasts.timegrid import to_local
from network_models.model import GridModel

FORMAT = "gridctl-forecast-1"
PV_FILE = "pv_p_mw.csv"
LOAD_P_FILE = "load_p_mw.csv"
LOAD_Q_FILE = "load_q_mvar.csv"
SERIES_FILE = "series.csv"
SESSIONS_FILE = "ev_sessions.csv"
HEADER_FILE = "bundle.json"
PLOT_FILE = "forecast.png"
BUNDLE_FILES = (PV_FILE, LOAD_P_FILE, LOAD_Q_FILE, SERIES_FILE, SESSIONS_FILE, HEADER_FILE,
                PLOT_FILE)


def write_bundle(
    bundle: ForecastBundle, out_dir: str | Path, *, plot: bool = True, title: str = ""
) -> tuple[Path, ...]:
    """Write the bundle into ``out_dir`` (created if needed); on any failure nothing is left."""
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ForecastInputError("expected a directory, found a file", source=str(out))
    created = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".forecast-", dir=out))
    try:
        names = _write_files(bundle, staging, plot=plot, title=title)
        for name in names:
            os.replace(staging / name, out / name)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        if created:
            shutil.rmtree(out, ignore_errors=True)
        raise
    shutil.rmtree(staging, ignore_errors=True)
    return tuple(out / n for n in names)


def read_bundle(in_dir: str | Path, model: GridModel) -> ForecastBundle:
    """A bundle written by :func:`write_bundle`, validated against ``model``'s registry."""
    src = Path(in_dir)
    header_path = src / HEADER_FILE
    try:
        header = json.loads(header_path.read_text())
    except FileNotFoundError:
        raise ForecastInputError("no such file: expected a forecast bundle header",
                                 source=str(header_path)) from None
    except json.JSONDecodeError as exc:
        raise ForecastInputError(f"not valid JSON ({exc})", source=str(header_path)) from exc
    if header.get("format") != FORMAT:
        raise ForecastInputError(f"expected format {FORMAT!r}", source=str(header_path),
                                 field="format")
    tz = model.site.timezone
    series = read_timeseries_csv(src / SERIES_FILE, min_value=None, tz=tz)
    index = pd.DatetimeIndex(series.index, freq=pd.Timedelta(hours=float(header["step_h"])),
                             name="time")
    pv_ids = [d.id for d in model.registry.pv]
    load_ids = [d.id for d in model.registry.loads]
    pv = _device_frame(src / PV_FILE, index, pv_ids, min_value=0.0, tz=tz)
    load_p = _device_frame(src / LOAD_P_FILE, index, load_ids, min_value=None, tz=tz)
    load_q = _device_frame(src / LOAD_Q_FILE, index, load_ids, min_value=None, tz=tz)
    sessions = read_ev_sessions_csv(src / SESSIONS_FILE, model.registry.ev_sites, tz=tz) \
        if header.get("ev_sessions", 0) else ()

    def on_index(frame: pd.Series) -> pd.Series:
        return frame.set_axis(index)

    export = series.get("export_price_cny_per_kwh")
    issued = header.get("issued_at")
    return ForecastBundle(
        index=index,
        step_h=float(header["step_h"]),
        pv_p_mw=pv,
        load_p_mw=load_p,
        load_q_mvar=load_q,
        price_cny_per_kwh=on_index(series["price_cny_per_kwh"]),
        export_price_cny_per_kwh=None if export is None else on_index(export),
        demand_charge_cny_per_kw_month=header.get("demand_charge_cny_per_kw_month"),
        carbon_kg_per_kwh=on_index(series["carbon_kg_per_kwh"]),
        temperature_c=on_index(series["temperature_c"]),
        ev_sessions=sessions,
        issued_at=None if issued is None else to_local(issued, what="issued_at", tz=tz),
        provenance=MappingProxyType(dict(header.get("provenance", {}))),
    )


def _device_frame(
    path: Path, index: pd.DatetimeIndex, ids: list[str], *, min_value: float | None, tz: str
) -> pd.DataFrame:
    """One column per device of the model, in the registry's order: a bundle of another grid
    (a device missing, or one the model does not have) is refused naming the column."""
    header = [c for c in read_table(path, required=["time"]).columns if c != "time"]
    expected = f"one column per device of the model ({', '.join(ids[:5]) or 'it has none'}" \
        f"{', ...' if len(ids) > 5 else ''})"
    for column in header:
        if column not in ids:
            raise ForecastInputError(f"column {column!r} is no device of the model: expected "
                                     f"{expected}", source=str(path), field=column)
    for column in ids:
        if column not in header:
            raise ForecastInputError(f"missing column: expected {expected}", source=str(path),
                                     field=column)
    if not ids:
        return pd.DataFrame(index=index, dtype=float)
    frame = read_timeseries_csv(path, columns=ids, min_value=min_value, tz=tz)
    if not frame.index.equals(index):
        raise ForecastInputError(f"times differ from those of {SERIES_FILE}", source=str(path),
                                 field="time")
    return frame[ids].set_axis(index)


def _write_files(bundle: ForecastBundle, d: Path, *, plot: bool, title: str) -> list[str]:
    def frame_csv(frame: pd.DataFrame, name: str) -> str:
        out = frame.copy()
        out.index = pd.Index([t.isoformat() for t in frame.index], name="time")
        out.to_csv(d / name)  # every digit: a bundle read back plans as the one written
        return name

    series = {
        "price_cny_per_kwh": bundle.price_cny_per_kwh,
        "carbon_kg_per_kwh": bundle.carbon_kg_per_kwh,
        "temperature_c": bundle.temperature_c,
    }
    if bundle.export_price_cny_per_kwh is not None:
        series["export_price_cny_per_kwh"] = bundle.export_price_cny_per_kwh
    names = [
        frame_csv(bundle.pv_p_mw, PV_FILE),
        frame_csv(bundle.load_p_mw, LOAD_P_FILE),
        frame_csv(bundle.load_q_mvar, LOAD_Q_FILE),
        frame_csv(pd.DataFrame(series, index=bundle.index), SERIES_FILE),
    ]
    sessions_frame(bundle.ev_sessions).to_csv(d / SESSIONS_FILE, index=False)
    names.append(SESSIONS_FILE)
    header = {
        "format": FORMAT,
        "start": bundle.start.isoformat(),
        "end": bundle.end.isoformat(),
        "step_h": bundle.step_h,
        "steps": len(bundle.index),
        "issued_at": None if bundle.issued_at is None else bundle.issued_at.isoformat(),
        "demand_charge_cny_per_kw_month": bundle.demand_charge_cny_per_kw_month,
        "ev_sessions": len(bundle.ev_sessions),
        "provenance": dict(bundle.provenance),
    }
    (d / HEADER_FILE).write_text(json.dumps(header, indent=2, ensure_ascii=False) + "\n")
    names.append(HEADER_FILE)
    if plot:
        from forecasts.plot import plot_bundle

        plot_bundle(bundle, d / PLOT_FILE, title=title)
        names.append(PLOT_FILE)
    return names
