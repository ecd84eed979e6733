"""Loss-minimising reconfiguration of the open-loop feeders."""

from controllers.reconfiguration.search import (
    AcFigures,
    ReconfigurationMethod,
    ReconfigurationResult,
    SwitchOperation,
    reconfigure,
)

__all__ = [
    "AcFigures",
    "ReconfigurationMethod",
    "ReconfigurationResult",
    "SwitchOperation",
    "reconfigure",
]
