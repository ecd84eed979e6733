"""Drill scenario files: timed events, the drill's settings and what it is expected to show.

A drill file (YAML) names its model, start, duration, the timed events to inject and, under
``expect``, the figures the drill must meet, so that a file carries its own acceptance: e.g.
``customers_interrupted: {max: 0}`` for a backbone fault, ``restoration_s: {max: 10}`` for a
feeder fault, ``microgrids.CAMPUS.reconnected: {equals: true}`` for an upstream outage.
Everything is checked on load: an unknown line or device, events out of order, a figure that
does not exist or an empty bound are refused with an error naming the file, the event or
expectation, and the field.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

import hil_sim
from forecasts.errors import ForecastInputError
from forecasts.timegrid import to_local
from network_models.errors import InputError
from network_models.model import GridModel
from network_models.yaml_file import read_yaml

__all__ = [
    "FIGURES",
    "MICROGRID_FIGURES",
    "DrillEvent",
    "DrillInputError",
    "DrillScenario",
    "Expectation",
    "check_expectations",
    "drill_scenario_path",
    "load_drill_scenario",
    "shipped_drill_scenarios",
]

# shipped as package data (hil_sim/scenarios/*.yaml)
DRILL_SCENARIO_DIR = Path(hil_sim.__file__).resolve().parent / "scenarios"
EventKind = Literal[
    "cable_fault",
    "transformer_loss",
    "substation_loss",
    "comm_loss",
    "device_trip",
    "supply_restored",
    "clear",
    "open_switch",  # the dispatcher's own switching (a crew's return to normal after a repair)
    "close_switch",
]

# figures of the report a drill file may expect; list figures are counted
FIGURES: Mapping[str, str] = {
    "customers_interrupted": "customers that lost supply at any time",
    "customer_minutes_interrupted": "customer-minutes of interruption",
    "energy_not_supplied_kwh": "energy not supplied, kWh",
    "status": "restored | partially_restored | not_restored | no_interruption, from what is "
              "supplied at the end",
    "restoration_s": "simulated seconds from the first fault to the last restoration (none "
                     "when loads that lost supply are still off at the end)",
    "reclosed_onto_fault": "closes by FLISR that met a fault (protection tripped again)",
    "faults_mislocated": "cable faults whose first location missed the faulted cable",
    "switch_operations": "switching operations of the restoration plans",
    "violations_after_restoration": "limit violations after restoration (count)",
    "unsupplied_at_end": "loads without supply at the end (count)",
    "runtime_errors": "errors the controller runtime raised (count)",
    "write_errors": "writes the field refused",
}
MICROGRID_FIGURES: Mapping[str, str] = {
    "islanded": "the microgrid ran islanded at some time",
    "islanded_at_end": "still islanded at the end",
    "reconnected": "reconnected to the grid after an island",
    "loads_supplied_at_end": "its loads supplied at the end (count)",
    "hold_time_h_at_end": "hours the BESS could hold the island at the end",
}


# the manual baseline: a week is longer than any restoration by hand a drill compares against
MAX_MANUAL_RESTORATION_MIN = 7 * 24 * 60.0
# a drill's name names its report files, so it is a plain file name
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_\-.]*$"
_STRICT = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class DrillInputError(InputError):
    """A drill scenario that cannot be run; names the file, the event and the field."""


class DrillEvent(BaseModel):
    """One timed event; ``at_min`` is simulated minutes after the drill's start."""

    model_config = _STRICT

    at_min: float = Field(ge=0)
    kind: EventKind
    target: str = Field(min_length=1)


class DrillScenario(BaseModel):
    """A drill file (YAML). Times are simulated; ``start`` naive means the model's time zone."""

    model_config = _STRICT

    name: str = Field(min_length=1, max_length=100)
    description: str = ""
    model: str = Field(default="jiuke_oasis", min_length=1)
    start: str = "2026-07-15T19:00"
    duration_min: float = Field(default=20.0, gt=0, le=24 * 60)
    manual_restoration_min: float = Field(default=60.0, gt=0, le=MAX_MANUAL_RESTORATION_MIN)
    fine_tick_s: float = Field(default=5.0, gt=0, le=60)
    coarse_tick_s: float = Field(default=60.0, gt=0, le=900)
    fine_window_min: float = Field(default=2.0, ge=0)
    mpc_step_minutes: int = Field(default=15, ge=1, le=60)
    events: tuple[DrillEvent, ...] = Field(min_length=1)
    expect: dict[str, Expectation] = Field(default_factory=dict)

    @field_validator("name")
    @classmethod
    def _a_file_name(cls, name: str) -> str:
        if not re.fullmatch(NAME_PATTERN, name):
            raise ValueError(f"{name!r}: expected a plain name of letters, digits, _, - and . "
                             "(it names the drill's report files)")
        return name

    @field_validator("mpc_step_minutes")
    @classmethod
    def _divides_a_day(cls, minutes: int) -> int:
        if 1440 % minutes:
            raise ValueError(f"{minutes} min: expected a step that divides a day evenly "
                             "(5, 10, 15, 20, 30, 60, ...)")
        return minutes


class Expectation(BaseModel):
    """A bound on one figure of the drill's report: ``min``/``max`` (numbers, or counts of
    list figures) or ``equals``."""

    model_config = _STRICT

    min: float | None = None
    max: float | None = None
    equals: bool | float | str | None = None

    @model_validator(mode="after")
    def _one_bound(self) -> Expectation:
        if self.min is None and self.max is None and self.equals is None:
            raise ValueError("expected at least one of min, max, equals")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min {self.min} is above max {self.max}")
        return self

    def describe(self) -> str:
        parts = []
        if self.equals is not None:
            parts.append(f"= {self.equals}")
        if self.min is not None:
            parts.append(f">= {self.min:g}")
        if self.max is not None:
            parts.append(f"<= {self.max:g}")
        return ", ".join(parts)

    def met_by(self, actual: Any) -> bool:
        if isinstance(actual, float) and not math.isfinite(actual):
            return False  # a figure the drill could not find meets nothing
        if self.equals is not None:
            if isinstance(self.equals, bool) or isinstance(actual, bool):
                return actual is self.equals
            if isinstance(self.equals, str) or isinstance(actual, str):
                return str(actual) == str(self.equals)
            if actual is None or not math.isclose(float(actual), self.equals, abs_tol=1e-9):
                return False
        if self.min is not None and (actual is None or float(actual) < self.min):
            return False
        return not (self.max is not None and (actual is None or float(actual) > self.max))


def shipped_drill_scenarios() -> tuple[str, ...]:
    """Names of the drills shipped with gridctl (files in ``hil_sim/scenarios``)."""
    return tuple(sorted(p.stem for p in DRILL_SCENARIO_DIR.glob("*.yaml")))


def drill_scenario_path(name_or_path: str | Path) -> Path:
    """A scenario file: a path, or the name of a shipped drill."""
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") or path.exists():
        return path
    shipped = DRILL_SCENARIO_DIR / f"{name_or_path}.yaml"
    if shipped.exists():
        return shipped
    raise DrillInputError(
        f"no scenario file or shipped drill {str(name_or_path)!r}: expected a "
        f"YAML file or one of {', '.join(shipped_drill_scenarios())}",
        source="argument",
        field="SCENARIO",
    )


def load_drill_scenario(path: str | Path, model: GridModel | None = None) -> DrillScenario:
    """Read and check a drill file; with ``model``, every target must exist in it."""
    path = Path(path)
    raw = read_yaml(path, expected="a drill YAML file", error=DrillInputError)
    if not isinstance(raw, dict):
        raise DrillInputError("expected a mapping with name, events, ...", source=str(path))
    try:
        scenario = DrillScenario.model_validate(raw)
    except ValidationError as exc:
        error = exc.errors()[0]
        loc = list(error["loc"])
        element = None
        if len(loc) >= 2 and loc[0] == "events" and isinstance(loc[1], int):
            element = f"event {loc[1]}"
            loc = loc[2:]
        elif len(loc) >= 2 and loc[0] == "expect":
            element = f"expect {loc[1]}"
            loc = ["expect", *loc[2:]]
        raise DrillInputError(
            error["msg"],
            source=str(path),
            element=element,
            field=".".join(str(x) for x in loc) or None,
        ) from None
    _check_times(scenario, path)
    try:
        to_local(scenario.start)
    except ForecastInputError as exc:
        raise DrillInputError(f"start {scenario.start!r}: {exc.detail}", source=str(path),
                              field="start") from None
    if model is not None:
        _check_targets(scenario, model, path)
    _check_expectations(scenario, model, path)
    return scenario


def _check_times(scenario: DrillScenario, path: Path) -> None:
    previous = 0.0
    for i, event in enumerate(scenario.events):
        if event.at_min < previous:
            raise DrillInputError(
                f"at {event.at_min} min comes before the previous event ({previous} min): "
                "expected events in time order",
                source=str(path),
                element=f"event {i}",
                field="at_min",
            )
        if event.at_min >= scenario.duration_min:
            raise DrillInputError(
                f"at {event.at_min} min is not within the drill's {scenario.duration_min} min",
                source=str(path),
                element=f"event {i}",
                field="at_min",
            )
        previous = event.at_min


def _check_targets(scenario: DrillScenario, model: GridModel, path: Path) -> None:
    lines = set(model.net.line["name"])
    trafos = set(model.net.trafo["name"])
    substations = {s.name for s in model.substations}
    injected: set[str] = set()
    for i, event in enumerate(scenario.events):
        target, kind = event.target, event.kind
        if kind == "cable_fault":
            ok, what = target in lines, "a cable (line) of the model"
        elif kind == "transformer_loss":
            ok, what = target in trafos, "a transformer of the model"
        elif kind == "substation_loss":
            ok, what = target in substations, f"a substation ({', '.join(sorted(substations))})"
        elif kind in ("comm_loss", "device_trip"):
            ok, what = target in model.registry, "a device id of the registry"
        elif kind in ("open_switch", "close_switch"):
            ok = target in {d.id for d in model.registry.switches if d.remote_controlled}
            what = "a remote-controlled switch of the registry"
        else:
            ok, what = target in injected, "the target of an earlier event"
        if not ok:
            raise DrillInputError(
                f"unknown {kind} target {target!r}: expected {what}",
                source=str(path),
                element=f"event {i}",
                field="target",
            )
        injected.add(target)


def _check_expectations(scenario: DrillScenario, model: GridModel | None, path: Path) -> None:
    grids = {m.name for m in model.microgrids} if model is not None else None
    for figure in scenario.expect:
        parts = figure.split(".")
        if len(parts) == 1 and figure in FIGURES:
            continue
        if len(parts) == 3 and parts[0] == "microgrids" and parts[2] in MICROGRID_FIGURES:
            if grids is None or parts[1] in grids:
                continue
            known = ", ".join(sorted(grids)) or "none"
            reason = f"the model has no microgrid {parts[1]!r} (it has: {known})"
        else:
            reason = (f"expected one of {', '.join(FIGURES)} or microgrids.NAME."
                      f"{{{', '.join(MICROGRID_FIGURES)}}}")
        raise DrillInputError(f"unknown figure {figure!r}: {reason}", source=str(path),
                              element=f"expect {figure}", field="expect")


def figure_of(report: Mapping[str, Any], figure: str) -> Any:
    """The value of ``figure`` in a drill report (``DrillReport.to_dict()``); lists counted."""
    parts = figure.split(".")
    if parts[0] == "microgrids":
        grid = next((g for g in report["microgrids"] if g["name"] == parts[1]), None)
        value = None if grid is None else grid.get(parts[2])
    else:
        value = report[figure]
    return len(value) if isinstance(value, list | tuple) else value


def check_expectations(scenario: DrillScenario, report: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Each expectation of the scenario with the report's figure and whether it is met."""
    out = []
    for figure, expectation in scenario.expect.items():
        actual = figure_of(report, figure)
        out.append({"figure": figure, "expected": expectation.describe(), "actual": actual,
                    "met": expectation.met_by(actual)})
    return out
