"""The grid file's cross-references: every name an element refers to exists, names are unique.

Run after the schema has validated each section on its own. One check per table, in the order
the file is usually read (unique names, then branches, switches, indicators, meters, devices,
and the named structure); the first problem raises ``ModelError`` naming the file, the element
(``<table> <name>``) and the field. Import ``check_references`` from
:mod:`network_models.grid_file`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from network_models._grid_schema import GridSpec, LineSpec, TransformerSpec
from network_models.errors import ModelError

# tables whose names must be unique among themselves, and the device tables whose names must be
# unique across all of them (a device id names one device)
_NAMED_TABLES = ("grid_connections", "fault_indicators", "meters", "loads", "pv", "ev_sites")
_DEVICE_TABLES = ("switches", "fault_indicators", "meters", "loads", "pv", "bess", "ev_sites")


def check_references(spec: GridSpec, source: str) -> None:
    """Every name an element refers to exists, and names are unique within their table."""
    known = _KnownNames.of(spec, source)
    _check_device_names(spec, source)
    if not spec.lines and not spec.transformers:
        raise ModelError("no line or transformer: expected a grid with at least one branch",
                         source=source, field="lines")
    checks: tuple[Callable[[GridSpec, _KnownNames], None], ...] = (
        _check_grid_connections,
        _check_lines,
        _check_transformers,
        _check_switches,
        _check_fault_indicators,
        _check_meters,
        _check_device_buses,
        _check_substations,
        _check_switching_stations,
        _check_microgrids,
    )
    for check in checks:
        check(spec, known)


@dataclass(frozen=True)
class _KnownNames:
    """The names elements may refer to, and the one way a missing reference is reported."""

    source: str
    buses: set[str]
    lines: set[str]
    trafos: set[str]
    switches: set[str]
    bess: set[str]

    @classmethod
    def of(cls, spec: GridSpec, source: str) -> _KnownNames:
        known = cls(
            source=source,
            buses=_unique(spec.buses, "buses", source),
            lines=_unique(spec.lines, "lines", source),
            trafos=_unique(spec.transformers, "transformers", source),
            switches=_unique(spec.switches, "switches", source),
            bess=_unique(spec.bess, "bess", source),
        )
        for table in _NAMED_TABLES:
            _unique(getattr(spec, table), table, source)
        return known

    def need(self, ok: bool, table: str, name: str, field: str, what: str) -> None:
        if not ok:
            raise ModelError(what, source=self.source, element=f"{table} {name}", field=field)

    def bus(self, table: str, name: str, field: str, bus: str) -> None:
        self.need(bus in self.buses, table, name, field, f"unknown bus {bus!r}")

    def switch(self, table: str, name: str, field: str, switch: str) -> None:
        self.need(switch in self.switches, table, name, field, f"unknown switch {switch!r}")


def _unique(items: Iterable[Any], table: str, source: str) -> set[str]:
    seen: set[str] = set()
    for it in items:
        if it.name in seen:
            raise ModelError(
                "duplicate name", source=source, element=f"{table} {it.name}", field="name"
            )
        seen.add(it.name)
    return seen


def _check_device_names(spec: GridSpec, source: str) -> None:
    device_names: dict[str, str] = {}
    for table in _DEVICE_TABLES:
        for it in getattr(spec, table):
            if it.name in device_names:
                raise ModelError(
                    f"name already used by {device_names[it.name]}: device names must be unique",
                    source=source,
                    element=f"{table} {it.name}",
                    field="name",
                )
            device_names[it.name] = table


def _check_grid_connections(spec: GridSpec, known: _KnownNames) -> None:
    for g in spec.grid_connections:
        known.bus("grid_connections", g.name, "bus", g.bus)


def _check_lines(spec: GridSpec, known: _KnownNames) -> None:
    vn = {b.name: b.vn_kv for b in spec.buses}
    for ln in spec.lines:
        known.need(ln.type in spec.line_types, "lines", ln.name, "type",
                   f"unknown line type {ln.type!r}")
        known.bus("lines", ln.name, "from_bus", ln.from_bus)
        known.bus("lines", ln.name, "to_bus", ln.to_bus)
        known.need(ln.from_bus != ln.to_bus, "lines", ln.name, "to_bus",
                   "a line must join two buses")
        known.need(
            vn[ln.from_bus] == vn[ln.to_bus],
            "lines",
            ln.name,
            "to_bus",
            "both ends of a line must have the same nominal voltage",
        )


def _check_transformers(spec: GridSpec, known: _KnownNames) -> None:
    vn = {b.name: b.vn_kv for b in spec.buses}
    for t in spec.transformers:
        known.need(
            t.type in spec.transformer_types,
            "transformers",
            t.name,
            "type",
            f"unknown transformer type {t.type!r}",
        )
        known.bus("transformers", t.name, "hv_bus", t.hv_bus)
        known.bus("transformers", t.name, "lv_bus", t.lv_bus)
        tt = spec.transformer_types[t.type]
        for field, bus, v in (("hv_bus", t.hv_bus, tt.vn_hv_kv), ("lv_bus", t.lv_bus, tt.vn_lv_kv)):
            known.need(
                abs(vn[bus] - v) <= 0.15 * v,
                "transformers",
                t.name,
                field,
                f"bus {bus!r} is {vn[bus]} kV but the type's winding is {v} kV",
            )
        if t.tap_pos is not None:
            known.need(
                tt.tap_min <= t.tap_pos <= tt.tap_max,
                "transformers",
                t.name,
                "tap_pos",
                f"expected a tap between {tt.tap_min} and {tt.tap_max}",
            )


def _check_switches(spec: GridSpec, known: _KnownNames) -> None:
    line_by_name: dict[str, LineSpec] = {ln.name: ln for ln in spec.lines}
    trafo_by_name: dict[str, TransformerSpec] = {t.name: t for t in spec.transformers}
    for s in spec.switches:
        known.bus("switches", s.name, "bus", s.bus)
        if s.element_type == "line":
            known.need(s.element in known.lines, "switches", s.name, "element",
                       f"unknown line {s.element!r}")
            ln = line_by_name[s.element]
            known.need(
                s.bus in (ln.from_bus, ln.to_bus),
                "switches",
                s.name,
                "bus",
                f"bus {s.bus!r} is not an end of line {s.element!r}",
            )
        elif s.element_type == "trafo":
            known.need(
                s.element in known.trafos,
                "switches",
                s.name,
                "element",
                f"unknown transformer {s.element!r}",
            )
            t = trafo_by_name[s.element]
            known.need(
                s.bus in (t.hv_bus, t.lv_bus),
                "switches",
                s.name,
                "bus",
                f"bus {s.bus!r} is not a side of transformer {s.element!r}",
            )
        else:
            known.need(s.element in known.buses, "switches", s.name, "element",
                       f"unknown bus {s.element!r}")
            known.need(s.element != s.bus, "switches", s.name, "element",
                       "a bus switch joins two buses")


def _check_fault_indicators(spec: GridSpec, known: _KnownNames) -> None:
    line_by_name = {ln.name: ln for ln in spec.lines}
    for fi in spec.fault_indicators:
        known.need(fi.line in known.lines, "fault_indicators", fi.name, "line",
                   f"unknown line {fi.line!r}")
        ln = line_by_name[fi.line]
        known.need(
            fi.bus in (ln.from_bus, ln.to_bus),
            "fault_indicators",
            fi.name,
            "bus",
            f"bus {fi.bus!r} is not an end of line {fi.line!r}",
        )


def _check_meters(spec: GridSpec, known: _KnownNames) -> None:
    for m in spec.meters:
        known.bus("meters", m.name, "bus", m.bus)
        names = known.lines if m.element_type == "line" else known.trafos
        known.need(
            m.element in names,
            "meters",
            m.name,
            "element",
            f"unknown {m.element_type} {m.element!r}",
        )


def _check_device_buses(spec: GridSpec, known: _KnownNames) -> None:
    for table in ("loads", "pv", "bess", "ev_sites"):
        for it in getattr(spec, table):
            known.bus(table, it.name, "bus", it.bus)


def _check_substations(spec: GridSpec, known: _KnownNames) -> None:
    for sub in spec.substations:
        known.bus("substations", sub.name, "hv_bus", sub.hv_bus)
        for b in sub.sections:
            known.bus("substations", sub.name, "sections", b)
        for t in sub.transformers:
            known.need(t in known.trafos, "substations", sub.name, "transformers",
                       f"unknown transformer {t!r}")
        if sub.bus_coupler is not None:
            known.switch("substations", sub.name, "bus_coupler", sub.bus_coupler)


def _check_switching_stations(spec: GridSpec, known: _KnownNames) -> None:
    for st in spec.switching_stations:
        for b in st.sections:
            known.bus("switching_stations", st.name, "sections", b)
        known.switch("switching_stations", st.name, "bus_tie", st.bus_tie)


def _check_microgrids(spec: GridSpec, known: _KnownNames) -> None:
    for mg in spec.microgrids:
        known.switch("microgrids", mg.name, "breaker", mg.breaker)
        for b in mg.buses:
            known.bus("microgrids", mg.name, "buses", b)
        known.need(
            mg.grid_forming_bess in known.bess,
            "microgrids",
            mg.name,
            "grid_forming_bess",
            f"unknown BESS {mg.grid_forming_bess!r}",
        )
