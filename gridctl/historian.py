"""The historian: what the controller saw, decided and did, in SQLite (WAL).

One file, each write its own transaction, so a ``kill -9`` loses nothing that was committed and
leaves nothing half-written. A restarted runtime resumes from it: the last schedule, every EV
session and the energy delivered to it so far.

Time: ``t`` of every record is field time (the simulator's clock, or the field's); the historian
stamps the wall time itself on events and decisions (``wall_t``). An event may have no field
time (``t=None``: nothing known yet); events are kept in the order recorded, which is wall time.

Runs: :meth:`Historian.begin_run` starts a segment of the record (a start of the runtime, a field
clock that jumped back); every row written after carries its id, and reading methods take
``run`` (default: every run, in order). A report never merges two runs' series.

Retention (:class:`HistorianSettings`, applied by :meth:`Historian.maintain`): raw measurements
are downsampled to 15-minute statistics after a week, the statistics and commands are deleted
after their time; events, decisions, schedules and sessions are kept. Heartbeats are counted as
one row per write batch, with only their refused points stored one by one.

Times are stored as ISO 8601 with offset (Asia/Shanghai) and as Unix seconds for ordering.
File checks and opening: ``gridctl.historian_open``; the tables: ``gridctl.historian_schema``;
the upgrade of older files: ``gridctl.historian_upgrade``.
"""

from __future__ import annotations

from gridctl.historian_measurements import MeasurementReading
from gridctl.historian_reading import HistorianReading
from gridctl.historian_records import HistorianRun, HistorianSettings, Maintenance, StoredSession
from gridctl.historian_retention import HistorianRetention
from gridctl.historian_schema import HistorianError
from gridctl.historian_writing import HistorianWriting

__all__ = ["Historian", "HistorianError", "HistorianRun", "HistorianSettings", "Maintenance",
           "StoredSession"]


class Historian(HistorianWriting, HistorianRetention, HistorianReading, MeasurementReading):
    """A SQLite historian; safe to open again after a crash.

    ``create=False`` opens only an existing historian (a report). A bad path or file raises
    :class:`HistorianError` before anything is created or changed. Its verbs by concern:
    writing (:mod:`gridctl.historian_writing`), retention (:mod:`gridctl.historian_retention`),
    reading (:mod:`gridctl.historian_reading`, :mod:`gridctl.historian_measurements`), over the
    open file (:mod:`gridctl.historian_store`).
    """
