"""The declarative grid file: its schema, validated on load with errors that name what is wrong.

A grid file (YAML) lists buses, cable and transformer types, lines, transformers, switches, fault
indicators, meters, loads, PV, BESS, EV charging sites and the named structure (substations,
switching stations, microgrids). Elements refer to each other by name. ``load_grid_spec`` returns
the validated spec; ``network_models.builder`` turns it into a pandapower net and device registry.

Reading lives here; the schema (one pydantic model per section) is in
``network_models._grid_schema`` and the cross-reference checks in
``network_models._grid_references``. Import every public name from this module.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel, ValidationError

from network_models._grid_references import check_references
from network_models._grid_schema import (
    AssumptionSpec,
    BessSpec,
    BusKind,
    BusSpec,
    EvSiteSpec,
    FaultIndicatorSpec,
    Fraction,
    GridConnectionSpec,
    GridSpec,
    Kilometres,
    Kilovolts,
    LineRole,
    LineSpec,
    LineTypeSpec,
    LoadSpec,
    MeterSpec,
    MicrogridSpec,
    Name,
    NonNegative,
    OhmPerKm,
    Positive,
    PvSpec,
    SiteSpec,
    SubstationSpec,
    SwitchingStationSpec,
    SwitchSpec,
    TransformerSpec,
    TransformerTypeSpec,
)
from network_models.errors import ModelError
from network_models.yaml_file import read_yaml

__all__ = [
    "AssumptionSpec",
    "BessSpec",
    "BusKind",
    "BusSpec",
    "EvSiteSpec",
    "FaultIndicatorSpec",
    "Fraction",
    "GridConnectionSpec",
    "GridSpec",
    "Kilometres",
    "Kilovolts",
    "LineRole",
    "LineSpec",
    "LineTypeSpec",
    "LoadSpec",
    "MeterSpec",
    "MicrogridSpec",
    "Name",
    "NonNegative",
    "OhmPerKm",
    "Positive",
    "PvSpec",
    "SiteSpec",
    "SubstationSpec",
    "SwitchSpec",
    "SwitchingStationSpec",
    "TransformerSpec",
    "TransformerTypeSpec",
    "check_references",
    "load_grid_spec",
    "read_spec",
]


def load_grid_spec(path: str | Path) -> GridSpec:
    """Read and validate a grid file; a problem raises ``ModelError`` naming where it is."""
    spec = read_spec(path, GridSpec, expected="a gridctl grid file (YAML)")
    check_references(spec, str(path))
    return spec


S = TypeVar("S", bound=BaseModel)


def read_spec(
    path: str | Path,
    spec_type: type[S],
    *,
    expected: str,
    sections: str | None = None,
    error_of: Callable[[ValidationError, dict, str], ModelError] | None = None,
) -> S:
    """A YAML file of gridctl's (grid, devices or scenario file) read and validated as
    ``spec_type``; a problem raises ``ModelError`` naming the file, the element and the field
    (``error_of`` places an error where a file's sections need it, ``sections`` lists them in
    the message for a file that is not a mapping)."""
    source = str(path)
    raw = read_yaml(path, expected=expected, error=ModelError)
    if not isinstance(raw, dict):
        listed = f" ({sections})" if sections else ""
        raise ModelError(f"expected a mapping of sections at the top level{listed}",
                         source=source)
    try:
        return spec_type.model_validate(raw)
    except ValidationError as exc:
        raise (error_of or _model_error_from_validation)(exc, raw, source) from None


def _model_error_from_validation(exc: ValidationError, raw: dict, source: str) -> ModelError:
    err = exc.errors()[0]
    loc = list(err["loc"])
    element, field = None, None
    # loc: ("lines", 12, "length_km"), ("site", "latitude_deg") or ("line_types", name, field)
    if loc:
        section = loc[0]
        if len(loc) >= 2 and isinstance(loc[1], int):
            item = raw.get(section, [])[loc[1]] if isinstance(raw.get(section), list) else None
            name = item.get("name") if isinstance(item, dict) else None
            element = f"{section}[{loc[1]}]" + (f" {name}" if name else "")
            field = ".".join(str(p) for p in loc[2:]) or None
        elif len(loc) >= 2 and section in ("line_types", "transformer_types", "assumptions"):
            element = f"{section} {loc[1]}"
            field = ".".join(str(p) for p in loc[2:]) or None
        else:
            field = ".".join(str(p) for p in loc)
    msg = err["msg"].removeprefix("Value error, ")
    if err["type"] == "missing":
        msg = "missing: this field is required"
    elif err["type"] == "extra_forbidden":
        msg = "unknown field (check the spelling)"
    elif "input" in err and err["type"] not in ("value_error",):
        msg = f"{msg} (got {err['input']!r})"
    more = len(exc.errors()) - 1
    if more:
        msg += f" (and {more} more problem{'s' if more > 1 else ''} after this one)"
    return ModelError(msg, source=source, element=element, field=field)
