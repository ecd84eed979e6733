"""SimBench grids as GridModels, with the year of load and generation profiles they ship with.

``from_simbench("1-MV-urban--0-sw")`` reads the grid from the CSV files of the installed
``simbench`` package (offline), names and checks it like a pandapower JSON net, and carries its
profiles (simbench's ``get_absolute_values``: per element, 2016 at 15 min) on
``GridModel.profiles`` by registry device id. Reading the CSVs takes seconds, so the built model
is kept in the model cache, keyed by the code and the simbench version.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from types import MappingProxyType

import numpy as np
import pandapower as pp
import pandas as pd

from network_models._net_checks import check_net_values, check_structure
from network_models.constants import SIMBENCH_PREFIX
from network_models.errors import ModelError
from network_models.model import Assumption, GridModel, GridProfiles
from network_models.registry import (
    CustomerClass,
    Device,
    DeviceRegistry,
    ElementTable,
    Load,
    PvSystem,
)
from network_models.standard import _model, _nominal_site

__all__ = ["PREFIX", "from_simbench", "load_simbench", "simbench_codes"]

PREFIX = SIMBENCH_PREFIX
PROFILE_YEAR = 2016
PROFILE_STEP_MINUTES = 15
# SimBench's aggregated low-voltage generation ("lv_RES", one sgen per MV/LV station) has
# PV-shaped profiles (zero at night, a midday peak): taken as rooftop PV, dispatchable as such
PV_SGEN_TYPES = ("lv_RES",)
# the customer class of a load by the first letters of its SimBench profile (BDEW names):
# households H0, business G0-G6, agriculture L, aggregated LV grids lv_* (mostly households)
_CLASS_OF_PROFILE: tuple[tuple[str, CustomerClass], ...] = (
    ("lv_", CustomerClass.RESIDENTIAL),
    ("H", CustomerClass.RESIDENTIAL),
    ("G1", CustomerClass.OFFICE),
    ("G3", CustomerClass.DATA_CENTRE),  # continuous business
    ("G4", CustomerClass.COMMERCE),
    ("G", CustomerClass.LIGHT_INDUSTRY),
)


def simbench_codes() -> list[str]:
    """Every SimBench code the installed package can build."""
    import simbench

    return list(simbench.collect_all_simbench_codes())


def load_simbench(name: str) -> GridModel:
    """The model of ``simbench:CODE`` (or a bare CODE), from the model cache when it is there."""
    import simbench

    from network_models.model_cache import cached_build

    code = name.removeprefix(PREFIX)
    _check_code(code, name)
    made_of = f"simbench:{code}:{simbench.__version__}".encode()
    return cached_build(f"simbench-{code}", made_of, lambda: from_simbench(code))


def from_simbench(code: str) -> GridModel:
    """SimBench grid ``code`` with its profiles; ModelError for a code simbench does not know."""
    import simbench

    source = PREFIX + code
    _check_code(code, source)
    # simbench reads its shipped CSVs; it raises KeyError/ValueError on odd codes
    try:
        net = simbench.get_simbench_net(code)
    except Exception as exc:
        raise ModelError(f"simbench could not build it ({type(exc).__name__}: {exc})",
                         source=source) from exc
    # per element and time step, computed once here (the relative profiles then leave the net:
    # studies deep-copy nets)
    values = simbench.get_absolute_values(net, profiles_instead_of_study_cases=True)
    del net["profiles"]
    check_net_values(net, source)
    check_structure(net, source)
    model = _model(
        code, net, source=source, site=_nominal_site(f"SimBench {code}"),
        description=f"SimBench grid {code} (simbench {simbench.__version__}) with its 2016 "
        "profiles",
        assumptions=_assumptions(), pv_sgen_types=PV_SGEN_TYPES,
    )
    registry = _with_profile_classes(model, net)
    profiles = _grid_profiles(registry, values, f"SimBench profiles of {code} "
                              f"(simbench {simbench.__version__})")
    return dataclasses.replace(model, registry=registry, profiles=profiles)


def _check_code(code: str, source: str) -> None:
    codes = simbench_codes()
    if code in codes:
        return
    mv = [c for c in codes if "-MV-" in c and c.endswith("-0-sw")][:4]
    raise ModelError(
        f"unknown SimBench code {code!r}: expected a code such as {', '.join(mv)} "
        f"({len(codes)} in all; python -c 'import simbench; "
        "print(simbench.collect_all_simbench_codes())' lists them)", source=source)


def _assumptions() -> Mapping[str, Assumption]:
    return MappingProxyType({
        "simbench_pv": Assumption(
            value=", ".join(PV_SGEN_TYPES), note="SimBench's aggregated LV generation sgens "
            "have PV-shaped profiles: registered as PV systems"),
        "simbench_customer_class": Assumption(
            value="by profile", note="lv_* and H* residential, G1 office, G3 data centre, "
            "G4 commerce, other G* light industry, anything else commerce"),
        "simbench_profile_year": Assumption(
            value=PROFILE_YEAR, note="a planned day takes the 2016 day nearest in day of year "
            "with the same weekday"),
    })


def _class_of_profile(profile: object) -> CustomerClass:
    text = str(profile) if isinstance(profile, str) else ""
    for prefix, cls in _CLASS_OF_PROFILE:
        if text.startswith(prefix):
            return cls
    return CustomerClass.COMMERCE


def _with_profile_classes(model: GridModel, net: pp.pandapowerNet) -> DeviceRegistry:
    """The registry with each load's customer class taken from its SimBench profile."""
    profile = net.load["profile"] if "profile" in net.load else pd.Series(dtype=object)
    devices = [
        dataclasses.replace(d, customer_class=_class_of_profile(profile.get(d.element.index)))
        if isinstance(d, Load) else d
        for d in model.registry
    ]
    return DeviceRegistry(tuple(devices))


def _grid_profiles(
    registry: DeviceRegistry, values: Mapping[tuple[str, str], pd.DataFrame], source: str
) -> GridProfiles:
    def frame(key: tuple[str, str], table: ElementTable, cls: type[Device]) -> pd.DataFrame:
        absolute = values.get(key)
        devices = [d for d in registry.of_type(cls) if d.element.table == table]
        if absolute is None or absolute.empty:
            return pd.DataFrame(index=pd.RangeIndex(0), columns=[], dtype=np.float32)
        have = [d for d in devices if d.element.index in absolute.columns]
        # float32: a year of 15-min steps for a few hundred elements is ~50 MB, not 100
        data = absolute[[d.element.index for d in have]].to_numpy(dtype=np.float32)
        return pd.DataFrame(data, columns=[d.id for d in have])

    return GridProfiles(
        source=source, year=PROFILE_YEAR, step_minutes=PROFILE_STEP_MINUTES,
        load_p_mw=frame(("load", "p_mw"), ElementTable.LOAD, Load),
        load_q_mvar=frame(("load", "q_mvar"), ElementTable.LOAD, Load),
        pv_p_mw=frame(("sgen", "p_mw"), ElementTable.SGEN, PvSystem),
    )
