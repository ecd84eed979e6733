"""The day-ahead plan in a process of its own, apart from the MPC's worker (:mod:`gridctl.planner`).

Forked from the same fork server (which has the controller imported), with the same pickling of
the model's read-only mappings.
"""

from __future__ import annotations

import multiprocessing
import signal
import threading
from multiprocessing.connection import Connection
from multiprocessing.reduction import ForkingPickler
from typing import TYPE_CHECKING, Any

from gridctl.planner import PlannerError, end_process, worker_context

if TYPE_CHECKING:
    import datetime as dt

    from controllers.config import DispatchConfig
    from controllers.dayahead import DayAheadResult
    from forecasts.bundle import ForecastBundle
    from network_models.model import GridModel

__all__ = ["DayAheadProcess"]


class DayAheadProcess:
    """The day-ahead plan in a process of its own, one process per plan.

    For the reasons the MPC plans in a worker (a day's plan is seconds of Python and solver that
    would hold the interpreter's lock the event loop answers the field with, and a solver that
    hangs would take the runtime with it), and apart from it: a day's plan takes several times
    a step's, and the control steps must not wait behind it. A day is planned once or twice a
    day, so the process lives for one plan only (forked from the same fork server, which has
    the controller imported) and holds no memory between plans. A plan past ``timeout_s`` of
    wall time ends the process and raises :class:`PlannerError`; so does a plan that fails.
    """

    def __init__(self, model: GridModel, *, timeout_s: float = 600.0,
                 config: DispatchConfig | None = None) -> None:
        if not timeout_s > 0:
            raise ValueError(f"timeout_s {timeout_s}: expected a positive number of seconds")
        self.model = model
        self.timeout_s = timeout_s
        self.config = config
        self._model_bytes: bytes | None = None
        self._lock = threading.Lock()
        self._process: multiprocessing.process.BaseProcess | None = None
        self._shut = False

    def plan(self, day: dt.date, bundle: ForecastBundle) -> DayAheadResult:
        """The plan of ``day`` on the forecast ``bundle`` (:func:`controllers.dayahead.
        run_dayahead`), made in a fresh process; blocks until it answers: from a coroutine,
        call it in a thread."""
        if self._model_bytes is None:
            self._model_bytes = bytes(ForkingPickler.dumps(self.model))
        ctx = worker_context()
        parent, child = ctx.Pipe(duplex=False)
        process = ctx.Process(target=_serve_day,
                              args=(child, self._model_bytes, day, bundle, self.config),
                              name="gridctl-dayahead", daemon=True)
        with self._lock:
            if self._shut:
                raise PlannerError("the day-ahead planner is shut down: the runtime has stopped")
            process.start()
            self._process = process
        child.close()
        try:
            if not parent.poll(self.timeout_s):
                raise PlannerError(f"no day-ahead plan within {self.timeout_s:g} s of wall "
                                   "time: its process was stopped")
            kind, payload = parent.recv()
        except (EOFError, OSError) as exc:
            end_process(process)
            raise PlannerError(f"the day-ahead process ended (exit code {process.exitcode}): "
                               f"{type(exc).__name__}: {exc}") from exc
        finally:
            end_process(process)
            parent.close()
            with self._lock:
                if self._process is process:
                    self._process = None
        if kind == "error":
            raise PlannerError(f"the day-ahead plan failed: {payload}")
        return payload

    def close(self) -> None:
        """End a plan in progress (the runtime has stopped); later plans are refused."""
        with self._lock:
            self._shut = True
            process, self._process = self._process, None
        if process is not None:
            end_process(process)


def _serve_day(conn: Connection, model_bytes: bytes, day: dt.date, bundle: ForecastBundle,
               config: DispatchConfig | None) -> None:
    """The day-ahead worker: plan the day, answer once, end."""
    import pickle

    from controllers.dayahead import run_dayahead

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the runtime's to handle
    try:
        model: GridModel = pickle.loads(model_bytes)
        answer: tuple[str, Any] = ("ok", run_dayahead(model, day, bundle=bundle, config=config))
    except Exception as exc:  # the plan's own fallback failed too, or the input was bad
        answer = ("error", f"{type(exc).__name__}: {exc}")
    try:
        conn.send(answer)
    except (BrokenPipeError, EOFError, OSError):
        pass  # the runtime stopped while this plan was made
    finally:
        conn.close()
