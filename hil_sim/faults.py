"""What has been injected into the simulated field and not yet cleared."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from gridctl.field.contract import PointKey


@dataclass
class FaultBook:
    """Injected faults by kind; names are line, transformer, substation or device ids."""

    lines: set[str] = field(default_factory=set)  # permanent cable faults, not yet repaired
    transformers: set[str] = field(default_factory=set)  # out of service after a fault
    substations: set[str] = field(default_factory=set)  # 110 kV supply lost
    comm_lost: set[str] = field(default_factory=set)  # devices that do not answer
    tripped_devices: set[str] = field(default_factory=set)  # PV, BESS, chargers at 0
    stuck: dict[str, dict[PointKey, Any]] = field(default_factory=dict)  # frozen readings

    def active(self) -> list[str]:
        """Every active fault as ``kind target``, sorted."""
        items = [f"line {x}" for x in self.lines]
        items += [f"transformer {x}" for x in self.transformers]
        items += [f"substation {x}" for x in self.substations]
        items += [f"comm {x}" for x in self.comm_lost]
        items += [f"trip {x}" for x in self.tripped_devices]
        items += [f"stuck {x}" for x in self.stuck]
        return sorted(items)

    def kinds_of(self, target: str) -> list[str]:
        """The kinds of fault active on ``target``."""
        found = []
        for kind, holder in (("line", self.lines), ("transformer", self.transformers),
                             ("substation", self.substations), ("comm", self.comm_lost),
                             ("trip", self.tripped_devices), ("stuck", self.stuck)):
            if target in holder:
                found.append(kind)
        return found
