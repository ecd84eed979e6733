"""The shared field floor: what the controller and the field (``hil_sim``, or real devices
behind a gateway) both build on, and nothing else.

- :mod:`gridctl.field.contract`: the point list and its OPC UA address layout, derived from the
  device registry (re-exported here);
- :mod:`gridctl.field.ev_points`: the EV codec, one connector's session and its points;
- :mod:`gridctl.field.security` with :mod:`~gridctl.field.trust_list`,
  :mod:`~gridctl.field.session_gate` and :mod:`~gridctl.field.login_guard`: certificates,
  users and roles, both ends; :mod:`gridctl.field.asyncua_logs`: asyncua's log noise.

The floor imports nothing else of ``gridctl``, and importing this package loads no client and
no asyncua at all: the security modules are imported by name where they are used. The
controller's client lives beside the runtime (:mod:`gridctl.field_client`,
:mod:`gridctl.field_watch`); the simulator's drill client in :mod:`hil_sim.drill_client`.
"""

from __future__ import annotations

from gridctl.field.contract import (
    FieldContract,
    FieldDevice,
    FieldInputError,
    FieldPoint,
    PointKey,
    SimulatorNodes,
    namespace_uri,
)

__all__ = [
    "FieldContract",
    "FieldDevice",
    "FieldInputError",
    "FieldPoint",
    "PointKey",
    "SimulatorNodes",
    "namespace_uri",
]
