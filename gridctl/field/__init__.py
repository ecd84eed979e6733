"""The field link over OPC UA: the contract (address space from the device registry), the
client the controller uses, and the security both ends share.

``hil_sim`` serves the same contract; real devices (or a gateway) serve it in the field.
"""

from __future__ import annotations

from gridctl.field.client import (
    FieldClient,
    FieldConnectionError,
    FieldSubscription,
    PointReading,
    SimulatorCallError,
    SimulatorClock,
    WriteResult,
)
from gridctl.field.contract import (
    FieldContract,
    FieldDevice,
    FieldInputError,
    FieldPoint,
    PointKey,
    SimulatorNodes,
    namespace_uri,
)
from gridctl.field.security import (
    DEFAULT_PKI_DIR,
    AnonymousPolicy,
    ClientSecurity,
    Pki,
    Role,
    SecurityConfigError,
    SecurityMode,
    ServerSecurity,
    UserStore,
    load_users,
)

__all__ = [
    "DEFAULT_PKI_DIR",
    "AnonymousPolicy",
    "ClientSecurity",
    "FieldClient",
    "FieldConnectionError",
    "FieldContract",
    "FieldDevice",
    "FieldInputError",
    "FieldPoint",
    "FieldSubscription",
    "Pki",
    "PointKey",
    "PointReading",
    "Role",
    "SecurityConfigError",
    "SecurityMode",
    "ServerSecurity",
    "SimulatorCallError",
    "SimulatorClock",
    "SimulatorNodes",
    "UserStore",
    "WriteResult",
    "load_users",
    "namespace_uri",
]
