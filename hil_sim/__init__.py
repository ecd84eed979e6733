"""The field, simulated: an OPC UA server over pandapower/power-grid-model physics with device
dynamics, device-side safety, protection and fault injection (gridctl's top floor).

``Simulator`` is the field without network I/O (for tests and drills); ``SimServer`` serves it
over the field contract of :mod:`gridctl.field`; :mod:`hil_sim.drill_client` holds its handles
(clock, stepping, fault injection) for drills and benchmarks. hil_sim imports only
``network_models``, ``forecasts`` and the field floor ``gridctl.field``: the controller sees it
only through OPC UA.
"""

from __future__ import annotations

from hil_sim.config import Ramps, SimConfig
from hil_sim.errors import SimulatorInputError
from hil_sim.server import SimServer
from hil_sim.setpoints import WriteCheck
from hil_sim.simulator import SimStatus, Simulator

__all__ = [
    "Ramps",
    "SimConfig",
    "SimServer",
    "SimStatus",
    "Simulator",
    "SimulatorInputError",
    "WriteCheck",
]
