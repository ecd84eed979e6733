"""The grid: pandapower models, the device registry and topology (gridctl's ground floor)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from network_models.constants import BUILTIN_MODELS, SIMBENCH_PREFIX, TIMEZONE
from network_models.errors import ModelError

if TYPE_CHECKING:
    from network_models.model import GridModel, Site

__all__ = [
    "BUILTIN_MODELS", "SIMBENCH_PREFIX", "TIMEZONE", "GridModel", "ModelError", "Site",
    "load_model",
]


def __getattr__(name: str) -> Any:
    # pandapower takes seconds to import: only when a model is wanted, not for an error class
    # (the command line starts, and answers --help, without it)
    if name in ("GridModel", "Site"):
        from network_models import model

        return getattr(model, name)
    raise AttributeError(f"module 'network_models' has no attribute {name!r}")


def load_model(
    name_or_path: str | Path,
    *,
    devices: str | Path | None = None,
    growth_scenario: str | Path | None = None,
) -> GridModel:
    """A model by built-in name, ``simbench:CODE``, or from a gridctl YAML grid file or a
    pandapower JSON file; with the devices of the devices file ``devices`` added, then the growth
    scenario ``growth_scenario`` applied (a shipped scenario of the model by name, e.g.
    ``jiuke_2030``, or a scenario file; see :mod:`network_models.growth_scenario_file`).

    Without ``devices``, a JSON model ``NAME.json`` takes ``NAME.devices.yaml`` beside it if there
    is one. The devices and scenario files are read on every call (only the grid is cached): an
    edited file is never served from the model cache. Any model may take one.
    """
    from network_models.devices_file import apply_devices, sibling_devices

    model, path = _grid(name_or_path)
    if devices is None and path is not None and path.suffix.lower() == ".json":
        devices = sibling_devices(path)
    if devices is not None:
        model = apply_devices(model, devices)
    if growth_scenario is not None:
        from network_models.growth_scenario_file import apply_growth_scenario, growth_scenario_path

        model = apply_growth_scenario(model, growth_scenario_path(growth_scenario, model.name))
    return model


def _grid(name_or_path: str | Path) -> tuple[GridModel, Path | None]:
    from network_models.builder import DATA_DIR, load_grid_file
    from network_models.model_cache import cached_model

    key = str(name_or_path)
    if key == "jiuke_oasis":
        path = DATA_DIR / "jiuke_oasis.yaml"
        return cached_model(path, lambda: load_grid_file(path)), None
    if key in BUILTIN_MODELS:
        from network_models import standard

        return getattr(standard, key)(), None
    if key.startswith(SIMBENCH_PREFIX):
        from network_models.simbench_grid import load_simbench

        return load_simbench(key), None
    path = Path(key)
    if not path.exists():
        raise ModelError(
            f"no such model: expected one of {', '.join(BUILTIN_MODELS)}, simbench:CODE (e.g. "
            "simbench:1-MV-urban--0-sw) or a path to a model file (.yaml/.yml gridctl model, "
            ".json pandapower net)",
            source=key,
        )
    if path.suffix.lower() in (".yaml", ".yml"):
        return cached_model(path, lambda: load_grid_file(path)), path
    if path.suffix.lower() == ".json":
        from network_models import standard

        return standard.from_pandapower_json(path), path
    raise ModelError(
        f"unknown model file type {path.suffix!r}: expected .yaml, .yml or .json", source=key
    )
