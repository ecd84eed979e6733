"""The shared field floor: what the controller and the field (``hil_sim``, or real devices
behind a gateway) both build on, and nothing else.

- :mod:`gridctl.field.contract`: the point list and its OPC UA address layout, derived from the
  device registry (re-exported here);
- :mod:`gridctl.field.ev_points`: the EV codec, one connector's session and its points;
- :mod:`gridctl.field.security`, the public surface of field security, done by concern in
  :mod:`~gridctl.field.security_modes` (modes), :mod:`~gridctl.field.users` (passwords, users
  and roles), :mod:`~gridctl.field.certificates` and :mod:`~gridctl.field.trust_list`
  (own certificate, trusted peers), :mod:`~gridctl.field.server_security` (with
  :mod:`~gridctl.field.session_gate`, :mod:`~gridctl.field.asyncua_gate`,
  :mod:`~gridctl.field.session_audit` and :mod:`~gridctl.field.login_guard`) and
  :mod:`~gridctl.field.client_security`;
  :mod:`gridctl.field.asyncua_logs`: asyncua's log noise.

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
