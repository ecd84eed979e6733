"""The field floor holds: read from the imports of the files themselves (ARCHITECTURE.md, "Data
flows one way").

``gridctl.field`` is what the controller and the simulator share (the contract, the point
codecs, security): it imports nothing else of ``gridctl``, and importing it loads no client.
``hil_sim`` takes only that floor from ``gridctl``; only the command line imports ``hil_sim``.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FLOOR = ROOT / "gridctl" / "field"
ROOMS = ("network_models", "forecasts", "controllers", "gridctl", "hil_sim")
ROOF = (ROOT / "gridctl" / "cli.py", ROOT / "gridctl" / "commands")


def _module_of(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@cache
def _imports(path: Path) -> frozenset[str]:
    """Every module ``path`` imports (see :func:`_imports_in`)."""
    module = _module_of(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    return _imports_in(path.read_text(encoding="utf-8"), package)


def _imports_in(source: str, package: str) -> frozenset[str]:
    """Every module ``source`` (a file of ``package``) imports, at any depth (in functions
    too); for ``from P import N`` both ``P`` and ``P.N`` (N may be a module)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the file's own package up
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return frozenset(found)


def _files(*folders: Path) -> list[Path]:
    return sorted(p for folder in folders for p in folder.rglob("*.py"))


def _within(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def _floor_modules() -> set[str]:
    return {_module_of(p) for p in _files(FLOOR)}


def test_the_floor_imports_nothing_else_of_gridctl():
    assert _files(FLOOR), "no gridctl/field package"
    wrong = {
        f"{p.relative_to(ROOT)}: {m}"
        for p in _files(FLOOR)
        for m in _imports(p)
        if _within(m, "gridctl") and not _within(m, "gridctl.field") and m != "gridctl"
    }
    assert not wrong, sorted(wrong)


def test_the_floor_imports_no_room_above_network_models_and_forecasts():
    wrong = {
        f"{p.relative_to(ROOT)}: {m}"
        for p in _files(FLOOR)
        for m in _imports(p)
        if any(_within(m, room) for room in ("controllers", "hil_sim"))
    }
    assert not wrong, sorted(wrong)


def _loaded_after(statement: str) -> list[str]:
    code = f"import sys, json\n{statement}\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                         text=True, check=True, timeout=300)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_importing_the_floor_package_loads_no_client():
    loaded = _loaded_after("import gridctl.field")
    assert [m for m in loaded if "client" in m] == []
    assert "asyncua" not in loaded  # the security modules are imported by name where used


def test_importing_every_floor_module_loads_no_module_of_gridctl_outside_the_floor():
    statement = "\n".join(f"import {m}" for m in sorted(_floor_modules()))
    loaded = _loaded_after(statement)
    outside = [m for m in loaded
               if _within(m, "gridctl") and m != "gridctl" and not _within(m, "gridctl.field")]
    assert outside == []
    assert not [m for m in loaded if _within(m, "hil_sim") or _within(m, "controllers")]


def test_hil_sim_imports_from_gridctl_only_modules_of_the_floor():
    floor = _floor_modules()
    wrong = set()
    for path in _files(ROOT / "hil_sim"):
        for m in _imports(path):
            if not _within(m, "gridctl"):
                continue
            # ``from gridctl.field.contract import PointKey`` also names gridctl.field.contract.
            # PointKey: a name in a floor module is the floor's
            if m in floor or m.rpartition(".")[0] in floor:
                continue
            wrong.add(f"{path.relative_to(ROOT)}: {m}")
    assert not wrong, sorted(wrong)


def test_only_the_command_line_imports_hil_sim():
    wrong = set()
    for room in ROOMS:
        if room == "hil_sim":
            continue
        for path in _files(ROOT / room):
            if any(path == roof or roof in path.parents for roof in ROOF):
                continue
            wrong |= {f"{path.relative_to(ROOT)}: {m}" for m in _imports(path)
                      if _within(m, "hil_sim")}
    assert not wrong, sorted(wrong)


def test_the_import_reader_sees_imports_inside_functions_and_relative_ones():
    # the checks above are only as good as the reader: it must not miss a lazy import
    assert "hil_sim.server" in _imports(ROOT / "gridctl" / "commands" / "sim.py")
    assert "gridctl.field_client" in _imports(ROOT / "gridctl" / "commands" / "sim.py")
    assert "gridctl.field.contract" in _imports(ROOT / "hil_sim" / "simulator.py")
    source = "def f():\n    from ..runtime import X\n    from . import contract\n"
    assert {"gridctl.runtime", "gridctl.runtime.X", "gridctl.field",
            "gridctl.field.contract"} <= _imports_in(source, "gridctl.field")
