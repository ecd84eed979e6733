"""The receding-horizon controller in a worker process of its own.

The runtime's event loop answers the field: protection trips, plug-ins, heartbeats. Planning
a step (cvxpy canonicalisation, the AC check of the plan) is seconds of Python that would hold
the interpreter's lock for most of that time; in a thread it delays every answer to the field,
and a solver that crashes or hangs in native code takes the whole runtime with it. In a
process of its own the plan is made on another core, the loop stays responsive, and a plan
that runs past ``timeout_s`` of wall time is stopped by ending the process: the step fails
(recorded by the runtime, the devices keep their last setpoints through the heartbeat) and the
next step starts a fresh worker, handed the last schedule planned without a fallback so that
its own fallback chain (that schedule shifted) still holds. A worker that had ended before it
took a request is replaced and asked again, once; one that ends while planning fails the step.

The worker builds its :class:`~controllers.mpc.RecedingHorizonController` once (the problem is
built once and re-solved, as in a thread) and keeps it, with its last good schedule, between
steps. Each request carries the snapshot, the forecast and the day plan the MPC follows;
the answer is the :class:`~controllers.mpc.MpcDecision`. Workers come from a fork server
that has imported the controller's libraries already, so a (re)start costs the model's
transfer and the problem's build, not the imports; where there is no fork server (Windows),
they are spawned. Either way the workers import the main module as multiprocessing does: a
script that starts a runtime or a drill keeps its top level under
``if __name__ == "__main__":``.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import signal
import threading
from multiprocessing.connection import Connection
from multiprocessing.reduction import ForkingPickler
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # light to import: a command line warms the fork server up before its imports
    from controllers.config import DispatchConfig
    from controllers.ev_setpoints import Occupancy
    from controllers.mpc import MpcDecision
    from controllers.schedule import DispatchSchedule
    from controllers.snapshot import GridSnapshot
    from forecasts.bundle import ForecastBundle
    from network_models.model import GridModel

__all__ = ["PlannerError", "PlannerProcess", "end_process", "warm_up", "worker_context"]

# what the fork server imports once for every worker: the main module too (a worker would
# otherwise import the main script again, as spawned processes do), and the controller
_PRELOAD = ["__main__", "controllers.mpc", "controllers.dayahead"]
_context_lock = threading.Lock()
_log = logging.getLogger("gridctl.planner")


def _read_only(mapping: dict[Any, Any]) -> MappingProxyType[Any, Any]:
    return MappingProxyType(mapping)


def _reduce_read_only(proxy: MappingProxyType[Any, Any]) -> tuple[Any, tuple[Any, ...]]:
    return _read_only, (dict(proxy),)


# the model, snapshots and forecasts keep read-only mappings: they travel to the worker (and
# back) as such; registered with multiprocessing's pickler only, pickle elsewhere is untouched
ForkingPickler.register(MappingProxyType, _reduce_read_only)


class PlannerError(RuntimeError):
    """The planner process could not plan the step: it failed, ended or ran out of time."""


def worker_context() -> multiprocessing.context.BaseContext:
    """Where workers start from: a fork server that has imported the controller, else spawn."""
    with _context_lock:
        if "forkserver" in multiprocessing.get_all_start_methods():
            ctx = multiprocessing.get_context("forkserver")
            ctx.set_forkserver_preload(_PRELOAD)  # takes effect when the server first starts
            return ctx
        return multiprocessing.get_context("spawn")


def warm_up() -> None:
    """Start the fork server now, in the background: its imports take seconds, which a command
    line spends loading its model anyway; a planner started later then forks at once."""
    if worker_context().get_start_method() != "forkserver":
        return
    from multiprocessing import forkserver

    threading.Thread(target=forkserver.ensure_running, name="gridctl-planner-warm-up",
                     daemon=True).start()


class PlannerProcess:
    """One worker process holding the MPC; one step at a time."""

    def __init__(
        self,
        model: GridModel,
        *,
        horizon_steps: int,
        step_h: float = 0.25,
        timeout_s: float = 120.0,
        config: DispatchConfig | None = None,
    ) -> None:
        if not timeout_s > 0:
            raise ValueError(f"timeout_s {timeout_s}: expected a positive number of seconds")
        self.model = model
        self._model_bytes: bytes | None = None
        self.horizon_steps = horizon_steps
        self.step_h = step_h
        self.timeout_s = timeout_s
        self.config = config  # the study's weights, limits and solver (None: the defaults)
        self.starts = 0  # workers started (a restart after a failure counts)
        self._process: multiprocessing.process.BaseProcess | None = None
        self._conn: Connection | None = None
        self._lock = asyncio.Lock()
        self._starting = threading.RLock()  # a start in a thread, a close in the loop
        self._closes = 0  # a background start asked for before a close does not happen
        self._shut = False  # closed for good: the runtime has stopped
        self._planning = threading.Event()  # the worker has taken a request and not answered

    @property
    def planning(self) -> bool:
        """Whether a worker is planning now: it has taken a step's request, not yet answered."""
        return self._planning.is_set()

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.is_alive()

    def start(self) -> None:
        """Start the worker now (it builds the problem while the caller goes on); a no-op when
        it runs already. Blocks until the worker has its start-up data (a fraction of a second,
        seconds for the first worker of a process, which starts the fork server): from a
        coroutine, call it in a thread."""
        with self._starting:
            if self.running or self._shut:
                return
            self._start()

    def start_soon(self) -> None:
        """Start the worker in the background; the next step waits for it. A start that fails
        is tried again, and reported, by that step."""
        self._model_pickled()  # here: pickling while another thread imports can fail
        threading.Thread(target=self._start_quietly, args=(self._closes,),
                         name="gridctl-planner-start", daemon=True).start()

    def _model_pickled(self) -> bytes:
        """The model as the worker receives it, pickled once in the caller's thread: pickled
        in the background start while the command line imported in its main thread, it failed
        once with "dictionary changed size during iteration"; the background start now
        carries bytes only."""
        if self._model_bytes is None:
            self._model_bytes = bytes(ForkingPickler.dumps(self.model))
        return self._model_bytes

    def _start_quietly(self, closes: int) -> None:
        with self._starting:
            if closes != self._closes:
                return  # closed before this thread got going: stay closed
            try:
                self.start()
            except Exception as exc:  # the next step starts it again and raises
                _log.warning("the planner process did not start: %s: %s",
                             type(exc).__name__, exc)

    def _start(self) -> None:
        self.close()
        ctx = worker_context()
        parent, child = ctx.Pipe(duplex=True)
        process = ctx.Process(
            target=_serve,
            args=(child, self._model_pickled(), self.horizon_steps, self.step_h, self.config),
            name="gridctl-planner",
            daemon=True,  # never outlives the runtime
        )
        process.start()
        child.close()
        self._process, self._conn = process, parent
        self.starts += 1

    async def step(
        self,
        snapshot: GridSnapshot,
        forecast: ForecastBundle,
        day_plan: DispatchSchedule | None,
        last_good: DispatchSchedule | None = None,
        *,
        plugged_in: Occupancy | None = None,
    ) -> MpcDecision:
        """Plan the step in the worker; raises :class:`PlannerError` when it cannot.

        ``last_good`` is the last schedule planned without a fallback: a fresh worker (after
        a failure) starts from it, so its own fallback can still be that schedule shifted.
        ``plugged_in``: who is at which EV connector, for the decision's EV setpoints
        (:meth:`~controllers.mpc.RecedingHorizonController.step`)."""
        if self._shut:
            raise PlannerError("the planner is shut down: the runtime has stopped")
        request = (snapshot, forecast, day_plan, last_good, plugged_in)
        async with self._lock:
            for attempt in (1, 2):
                await asyncio.to_thread(self.start)
                conn, process = self._conn, self._process
                assert conn is not None
                try:
                    # sent and answered in a thread, the whole exchange under the deadline: a
                    # large request waits for a worker still building its problem
                    kind, payload = await asyncio.wait_for(
                        asyncio.to_thread(_exchange, conn, request, self._planning),
                        self.timeout_s)
                except asyncio.CancelledError:
                    self.close()  # a plan cannot be called back: end it with the worker
                    raise
                except TimeoutError:
                    await asyncio.to_thread(self.close)
                    raise PlannerError(f"no plan within {self.timeout_s:g} s of wall time: the "
                                       "planner process was stopped") from None
                except _NotDelivered as exc:  # the worker ended before it took the request
                    await asyncio.to_thread(self.close)
                    if attempt == 1:
                        continue  # start a fresh one and ask again, once
                    raise PlannerError(f"the planner process could not take the request: "
                                       f"{exc}") from exc
                except (EOFError, OSError) as exc:
                    await asyncio.to_thread(self.close)  # joined: its exit code is known
                    code = process.exitcode if process is not None else None
                    raise PlannerError(f"the planner process ended (exit code {code}): "
                                       f"{type(exc).__name__}: {exc}") from exc
                break
        if kind == "error":
            raise PlannerError(f"the planner failed: {payload}")
        return payload

    def close(self, *, final: bool = False) -> None:
        """End the worker (at once: a plan in progress is abandoned); a start in progress in the
        background is waited for first, so no worker outlives the close. The next step starts
        a fresh worker, unless ``final``: then steps are refused from now on."""
        with self._starting:
            self._shut = self._shut or final
            self._closes += 1
            process, conn = self._process, self._conn
            self._process = self._conn = None
        if process is not None:  # first: a thread waiting on the pipe then sees it close
            end_process(process)
        if conn is not None:
            conn.close()


def end_process(process: multiprocessing.process.BaseProcess) -> None:
    """End a worker now (terminate, then kill if it has not ended within 5 s) and join it."""
    if process.is_alive():
        process.terminate()
    process.join(timeout=5.0)
    if process.is_alive():
        process.kill()
        process.join(timeout=5.0)


class _NotDelivered(Exception):
    """The request never reached the worker: it had ended (its pipe is closed)."""


def _exchange(conn: Connection, request: tuple[Any, ...],
              planning: threading.Event) -> tuple[str, Any]:
    # an idle worker never writes: anything to read now is the end of a worker that died
    # between steps (it may still look alive to the fork server for a while)
    if conn.poll():
        raise _NotDelivered("the worker's pipe closed while it was idle")
    try:
        conn.send(request)
        taken, _ = conn.recv()  # the worker says it has the request before it plans
    except (OSError, EOFError) as exc:
        raise _NotDelivered(f"{type(exc).__name__}: {exc}") from exc
    assert taken == "taken"
    planning.set()
    try:
        return conn.recv()  # EOF when the worker ends mid-plan (or is ended at the deadline)
    finally:
        planning.clear()


def _serve(conn: Connection, model_bytes: bytes, horizon_steps: int, step_h: float,
           config: DispatchConfig | None = None) -> None:
    """The worker: build the controller, then answer step requests until the pipe closes."""
    import pickle

    from controllers.mpc import RecedingHorizonController

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the runtime's to handle
    try:
        model: GridModel = pickle.loads(model_bytes)
        controller: RecedingHorizonController | None = RecedingHorizonController(
            model, horizon_steps=horizon_steps, step_h=step_h, config=config
        )
        broken = ""
    except Exception as exc:  # answered to every request: the runtime records it
        controller, broken = None, f"building the controller: {type(exc).__name__}: {exc}"
    while True:
        try:
            request = conn.recv()
            conn.send(("taken", None))
        except (EOFError, OSError):
            return  # the runtime ended (or ended this worker): nothing to answer
        snapshot, forecast, day_plan, last_good, plugged_in = request
        answer: tuple[str, Any] = ("error", broken)
        if controller is not None:
            try:
                controller.day_plan = day_plan
                if controller.last_good is None:  # a fresh worker after a failed one
                    controller.last_good = last_good
                answer = ("ok", controller.step(snapshot, forecast, plugged_in=plugged_in))
            except Exception as exc:  # the controller's own fallbacks failed too
                answer = ("error", f"{type(exc).__name__}: {exc}")
        try:
            conn.send(answer)
        except (BrokenPipeError, EOFError, OSError):
            return  # the runtime stopped while this plan was made: a traceback helps nobody
