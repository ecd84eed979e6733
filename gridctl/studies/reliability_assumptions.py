"""The assumption table of the reliability study: failure rates, repair and switching times.

The shipped table (``reliability_assumptions.yaml`` beside this module) gives each value with its
unit and source; a user's table of the same shape replaces it. Values are read by key; a missing
key, a non-number or a negative value is an ``InputError`` naming the file and the field.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml

from network_models.errors import InputError

__all__ = ["SHIPPED_ASSUMPTIONS", "ReliabilityAssumptions", "read_assumptions"]

SHIPPED_ASSUMPTIONS = Path(__file__).with_name("reliability_assumptions.yaml")

_REQUIRED = {
    "failures": (
        "cable_per_km_year", "cable_repair_h", "joint_per_unit_year", "joint_repair_h",
        "joint_spacing_km", "rmu_per_unit_year", "rmu_repair_h",
        "distribution_transformer_per_unit_year", "distribution_transformer_replacement_h",
        "substation_transformer_per_unit_year", "substation_transformer_repair_h",
        "bus_section_per_unit_year", "bus_section_repair_h",
    ),
    "switching": ("flisr_restoration_s", "manual_travel_min", "manual_switching_min",
                  "momentary_threshold_min"),
    "loads": ("ev_site_frac", "temperature_c"),
}
_MAY_BE_NEGATIVE = {"temperature_c"}


@dataclass(frozen=True)
class ReliabilityAssumptions:
    """Values by key (units in the key's name), each with its source, from ``path``."""

    name: str
    path: str
    values: Mapping[str, float]
    sources: Mapping[str, str]

    def __getitem__(self, key: str) -> float:
        return self.values[key]

    @property
    def manual_restoration_h(self) -> float:
        """Crew travel plus switching: how long a healthy part waits without automation."""
        return (self.values["manual_travel_min"] + self.values["manual_switching_min"]) / 60.0

    @property
    def flisr_restoration_h(self) -> float:
        return self.values["flisr_restoration_s"] / 3600.0

    @property
    def momentary_threshold_h(self) -> float:
        return self.values["momentary_threshold_min"] / 60.0

    def fingerprint(self) -> str:
        """A hash of the values (not the wording): part of a stored study's key."""
        text = json.dumps(dict(sorted(self.values.items())))
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "path": self.path,
                "values": {k: {"value": v, "source": self.sources[k]}
                           for k, v in self.values.items()}}


def read_assumptions(path: str | Path | None = None) -> ReliabilityAssumptions:
    """The table at ``path`` (default: the shipped literature-class table)."""
    file = Path(path) if path is not None else SHIPPED_ASSUMPTIONS
    try:
        data = yaml.safe_load(file.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InputError(f"cannot read {file}: {exc.strerror}", source=str(file),
                         field="assumptions") from None
    except yaml.YAMLError as exc:
        raise InputError(f"{file} is not YAML: {exc}", source=str(file),
                         field="assumptions") from None
    if not isinstance(data, Mapping):
        raise InputError(f"{file}: expected a mapping with failures, switching and loads",
                         source=str(file), field="assumptions")
    values: dict[str, float] = {}
    sources: dict[str, str] = {}
    for group, keys in _REQUIRED.items():
        table = data.get(group)
        if not isinstance(table, Mapping):
            raise InputError(f"{file}: expected a mapping {group!r}", source=str(file),
                             field=group)
        for key in keys:
            values[key], sources[key] = _value(file, group, key, table.get(key))
    return ReliabilityAssumptions(name=str(data.get("name", file.stem)), path=str(file),
                                  values=MappingProxyType(values),
                                  sources=MappingProxyType(sources))


def _value(file: Path, group: str, key: str, entry: Any) -> tuple[float, str]:
    field = f"{group}.{key}"
    if not isinstance(entry, Mapping) or "value" not in entry:
        raise InputError(f"{file}: {field}: expected {{value: number, unit: ..., source: ...}}",
                         source=str(file), field=field)
    value = entry["value"]
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InputError(f"{file}: {field}: {value!r}: expected a finite number",
                         source=str(file), field=field)
    if value < 0 and key not in _MAY_BE_NEGATIVE:
        raise InputError(f"{file}: {field}: {value}: expected a number of at least 0",
                         source=str(file), field=field)
    source = str(entry.get("source", "")).strip()
    if not source:
        raise InputError(f"{file}: {field}: expected a source for the value", source=str(file),
                         field=field)
    return float(value), source
