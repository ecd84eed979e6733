"""The house rules of ARCHITECTURE.md, read from the imports of every module of the five rooms.

Every ``import`` and ``from ... import`` counts: at module level, inside functions (imported
late, to start fast) and under ``if TYPE_CHECKING:`` (a dependency all the same). Rooms, from
the ground up: ``network_models`` and ``forecasts`` (ground floor; ``forecasts`` may read the
device registry of ``network_models``), ``controllers``, ``gridctl``, ``hil_sim``; the command
line (``gridctl.cli``, ``gridctl.commands``) is the roof.

An import ``from a.b import c`` is an edge to the module ``a.b.c`` when there is one, else to
``a.b``. A package's ``__init__`` runs before its modules, but that is not counted as an edge:
a package whose ``__init__`` re-exports its modules (its public surface) is no circle. Only the
rooms' own modules are looked at; tests, benchmarks and examples may import anything.
"""

from __future__ import annotations

import ast
import functools
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import networkx as nx

ROOT = Path(__file__).resolve().parents[1]
ROOMS = ("network_models", "forecasts", "controllers", "gridctl", "hil_sim")
MAY_IMPORT = {
    "network_models": {"network_models"},
    "forecasts": {"forecasts", "network_models"},
    "controllers": {"controllers", "forecasts", "network_models"},
    "gridctl": {"gridctl", "controllers", "forecasts", "network_models", "hil_sim"},
    "hil_sim": {"hil_sim", "forecasts", "network_models", "gridctl"},
}
FIELD_FLOOR = "gridctl.field"
FIELD_CLIENT = "gridctl.field_client"  # the controller's OPC UA client, beside the runtime


@dataclass(frozen=True)
class Import:
    """One imported module of one module: where the import statement is, and how it runs."""

    importer: str
    imported: str
    path: Path
    line: int
    at_import: bool  # runs when the importer is imported (not in a function, not type-only)

    def where(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"


def room(module: str) -> str:
    return module.split(".")[0]


def within(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def is_command_line(module: str) -> bool:
    return within(module, "gridctl.cli") or within(module, "gridctl.commands")


@functools.cache
def modules() -> dict[str, tuple[Path, bool]]:
    """Every module of the rooms by dotted name: its file and whether it is a package."""
    found: dict[str, tuple[Path, bool]] = {}
    for name in ROOMS:
        for path in sorted((ROOT / name).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            package = parts[-1] == "__init__"
            if package:
                parts.pop()
            found[".".join(parts)] = (path, package)
    return found


def _resolve(name: str) -> str | None:
    """The module of ``name`` (a module, or a name inside one), if it is one of the rooms'."""
    known = modules()
    while name and name not in known:
        name = name.rpartition(".")[0]
    return name or None


def _type_only_nodes(tree: ast.Module) -> set[int]:
    """Ids of the nodes under ``if TYPE_CHECKING:`` (or ``if typing.TYPE_CHECKING:``)."""
    inside: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            inside.update(id(n) for child in node.body for n in ast.walk(child))
    return inside


def _late_nodes(tree: ast.Module) -> set[int]:
    """Ids of the nodes inside a function (they run when it is called)."""
    inside: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            inside.update(id(n) for n in ast.walk(node) if n is not node)
    return inside


def imports_of(module: str, source: str, *, package: bool, path: Path) -> list[Import]:
    """The imports of the rooms' modules in ``source``, the text of ``module``."""
    known = modules()
    tree = ast.parse(source, filename=str(path))
    not_at_import = _type_only_nodes(tree) | _late_nodes(tree)
    here = module if package else module.rpartition(".")[0]
    found: list[Import] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the importer's package, up level - 1
                up = here.split(".")[: len(here.split(".")) - node.level + 1]
                base = ".".join([*up, *([node.module] if node.module else [])])
            names = [
                f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base
                for alias in node.names
            ]
        else:
            continue
        for name in names:
            target = _resolve(name)
            if target is not None and target != module:
                at_import = id(node) not in not_at_import
                found.append(Import(module, target, path, node.lineno, at_import))
    return found


@functools.cache
def imports() -> tuple[Import, ...]:
    """Every import of a room's module by a room's module, sorted by importer and line."""
    found = [
        i
        for module, (path, package) in modules().items()
        for i in imports_of(module, path.read_text(encoding="utf-8"), package=package, path=path)
    ]
    return tuple(sorted(found, key=lambda i: (i.importer, i.line, i.imported)))


def _listed(found: list[Import]) -> str:
    return "\n".join(f"  {i.where()}: {i.importer} imports {i.imported}" for i in found)


# ---------------------------------------------------------------------------------------------
# the reader itself


def test_the_reader_sees_every_room_and_every_kind_of_import():
    assert {room(m) for m in modules()} == set(ROOMS)
    edges = {(i.importer, i.imported): i for i in imports()}
    assert edges[("controllers.flisr.planning", "controllers.flisr.restoration")].at_import
    # imported late by the command line, to start fast
    assert not edges[("gridctl.commands.grid", "controllers.reconfiguration")].at_import
    assert not edges[("gridctl.planner", "controllers.mpc")].at_import  # under TYPE_CHECKING


def test_the_reader_finds_late_type_only_and_relative_imports():
    source = """
from typing import TYPE_CHECKING
from . import records
from .context import FlisrContext
from ..mpc import RecedingHorizonController
import pandas, gridctl.field.contract
if TYPE_CHECKING:
    from gridctl.runtime import ControllerRuntime
def later():
    from hil_sim import simulator
"""
    found = imports_of(
        "controllers.flisr.example", source, package=False, path=ROOT / "controllers" / "x.py"
    )
    assert [(i.imported, i.at_import) for i in found] == [
        ("controllers.flisr.records", True),
        ("controllers.flisr.context", True),
        ("controllers.mpc", True),
        ("gridctl.field.contract", True),
        ("gridctl.runtime", False),
        ("hil_sim.simulator", False),
    ]


# ---------------------------------------------------------------------------------------------
# floors


def test_no_room_imports_a_room_above_it():
    upward = [i for i in imports() if room(i.imported) not in MAY_IMPORT[room(i.importer)]]
    assert not upward, "imports of a room above the importer's:\n" + _listed(upward)


def test_only_the_command_line_imports_the_simulator():
    found = [
        i
        for i in imports()
        if room(i.imported) == "hil_sim" and room(i.importer) != "hil_sim"
        and not is_command_line(i.importer)
    ]
    assert not found, "hil_sim imported outside gridctl.cli and gridctl.commands:\n" + _listed(
        found
    )


def test_nothing_imports_the_command_line_but_the_command_line():
    found = [
        i for i in imports() if is_command_line(i.imported) and not is_command_line(i.importer)
    ]
    assert not found, "the command line is the roof; nothing imports it:\n" + _listed(found)


def test_the_simulator_takes_from_gridctl_only_the_field_floor():
    found = [
        i
        for i in imports()
        if room(i.importer) == "hil_sim"
        and room(i.imported) == "gridctl"
        and not within(i.imported, FIELD_FLOOR)
    ]
    assert not found, f"hil_sim imports gridctl outside {FIELD_FLOOR}:\n" + _listed(found)


def test_the_field_floor_imports_nothing_else_of_gridctl():
    found = [
        i
        for i in imports()
        if within(i.importer, FIELD_FLOOR)
        and room(i.imported) == "gridctl"
        and not within(i.imported, FIELD_FLOOR)
    ]
    assert not found, f"{FIELD_FLOOR} imports the rest of gridctl:\n" + _listed(found)


def test_importing_the_field_floor_loads_no_client():
    at_import = [i for i in imports() if i.at_import]
    graph = nx.DiGraph()
    graph.add_edges_from((i.importer, i.imported) for i in at_import)
    for module in modules():  # importing a module runs its packages' __init__ first
        parent = module.rpartition(".")[0]
        if parent:
            graph.add_edge(module, parent)
    simulator_uses = {
        i.imported
        for i in imports()
        if room(i.importer) == "hil_sim" and within(i.imported, "gridctl")
    }
    loading = sorted(
        start
        for start in {FIELD_FLOOR, *simulator_uses}
        if start in graph and nx.has_path(graph, start, FIELD_CLIENT)
    )
    paths = [" -> ".join(nx.shortest_path(graph, start, FIELD_CLIENT)) for start in loading]
    assert not loading, "importing these loads the field client:\n  " + "\n  ".join(paths)


# ---------------------------------------------------------------------------------------------
# circles


def test_no_import_cycle_between_modules():
    graph = nx.DiGraph()
    graph.add_nodes_from(modules())
    where: dict[tuple[str, str], list[str]] = defaultdict(list)
    for i in imports():
        graph.add_edge(i.importer, i.imported)
        if i.where() not in where[(i.importer, i.imported)]:
            where[(i.importer, i.imported)].append(i.where())
    cycles = sorted(sorted(c) for c in nx.strongly_connected_components(graph) if len(c) > 1)
    lines = []
    for members in cycles:
        lines.append("cycle of " + ", ".join(members) + ":")
        inside = set(members)
        for a, b in sorted(graph.subgraph(inside).edges()):
            lines.append(f"  {a} -> {b} ({', '.join(where[(a, b)])})")
    assert not cycles, "modules that import each other in a circle:\n" + "\n".join(lines)
