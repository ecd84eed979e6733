"""Where the linearisation's monitored elements sit in a time-series power-flow result
(positions, not pandapower labels)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from controllers.network_linearisation import NetworkLinearisation


def rows_of(index: pd.Index, labels: Sequence[int]) -> np.ndarray:
    """Positions of ``labels`` in ``index``."""
    return np.asarray(index.get_indexer(list(labels)), dtype=int)


@dataclass(frozen=True, kw_only=True, eq=False)
class MonitoredColumns:
    """Columns of a time-series result for the linearisation's monitored elements."""

    buses: np.ndarray  # of vm_pu, for lin.monitored_buses
    lines: np.ndarray  # of the line results, for lin.monitored_lines
    trafos: np.ndarray  # of the trafo results, for lin.monitored_trafos
    from_buses: np.ndarray  # of vm_pu: each monitored branch's from (hv) bus, lines then trafos

    @classmethod
    def of(cls, net, lin: NetworkLinearisation) -> MonitoredColumns:
        lines = rows_of(net.line.index, list(lin.monitored_lines))
        trafos = rows_of(net.trafo.index, list(lin.monitored_trafos))
        from_bus = np.r_[
            net.line.from_bus.to_numpy()[lines],
            net.trafo.hv_bus.to_numpy()[trafos],
        ].astype(int)
        return cls(
            buses=rows_of(net.bus.index, list(lin.monitored_buses)),
            lines=lines,
            trafos=trafos,
            from_buses=rows_of(net.bus.index, list(from_bus)),
        )
