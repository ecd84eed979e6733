"""Worker processes for a hosting study: the checks of one round run side by side.

Each worker builds the same study (model, days, settings) and runs the day checks it is sent,
keeping its own day dispatchers. A check goes to a fixed worker by its place in the round and
every round is waited for, so the same study sends the same checks to the same workers in the
same order: its answer does not depend on timing. A dispatcher keeps what it learnt (limits its
screen had left out and an AC check found violated), so a study run on two workers may differ
from one run in one process where a plan is on the edge; each is reproducible.

Workers are forked from a fork server that has imported the study's libraries once (seconds of
imports, not paid again by each worker nor by the next study in the same process); where there
is none (Windows) they are spawned. The fork server starts with the numeric libraries set to
one thread (two workers on two cores, no oversubscription), and it imports the main module as
multiprocessing does: a script that runs a study keeps its top level under
``if __name__ == "__main__":``. Only the standard library is imported here.
"""

from __future__ import annotations

import contextlib
import copyreg
import io
import multiprocessing as mp
import os
import pickle
import resource
import threading
import traceback
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from types import MappingProxyType
from typing import Any

_ONE_THREAD = {name: "1" for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                                      "MKL_NUM_THREADS", "NUMBA_NUM_THREADS")}

Task = tuple[int, int, str, Any, bool]  # location index, value, control, date, complete
# what the fork server imports once for every worker (see gridctl.planner, which shares it)
_PRELOAD = ["__main__", "gridctl.studies.hosting"]


def _context() -> mp.context.BaseContext:
    if "forkserver" in mp.get_all_start_methods():
        ctx = mp.get_context("forkserver")
        ctx.set_forkserver_preload(_PRELOAD)  # takes effect when the server first starts
        return ctx
    return mp.get_context("spawn")


class CheckPool:
    """``n`` worker processes, each with its own copy of the study."""

    def __init__(self, study, n: int) -> None:
        """Start ``n`` workers in the background (the caller goes on, e.g. with the
        uncontrolled search; :meth:`run` waits for them): each builds its days' dispatchers,
        day ``k`` on worker ``k % n``, before its first check."""
        from dataclasses import replace

        # the worker builds the same kind of study (a class pickles by its name)
        payload = _dumps((type(study), study.source_model, study.what, study.scopes,
                          study.day_dates, replace(study.settings, workers=1), study.config))
        self._conns: list = []
        self._procs: list = []
        self._sent: list[set] = [set() for _ in range(n)]  # sessions each worker has
        self.cpu_s = 0.0  # CPU seconds the workers spent, once closed
        days = list(study.day_dates)
        self._starting = threading.Thread(target=self._start, args=(payload, n, days),
                                          name="hosting-workers", daemon=True)
        self._starting.start()

    def _start(self, payload: bytes, n: int, days: list) -> None:
        ctx = _context()
        with _environment(_ONE_THREAD):
            for _ in range(n):
                parent, child = ctx.Pipe()
                proc = ctx.Process(target=_serve, args=(child, payload), daemon=True)
                proc.start()
                child.close()
                self._conns.append(parent)
                self._procs.append(proc)
        for k, day in enumerate(days):
            self._conns[k % n].send(("prepare", day))

    def run(self, tasks: Sequence[Task], sessions: Sequence[dict] | None = None,
            slots: Sequence[int] | None = None) -> list[Any]:
        """The checks of ``tasks``, in order: task ``k`` on worker ``slots[k] % n`` (default
        ``k % n``). ``sessions[k]``: the added connectors' sessions task ``k`` needs, by (day,
        site, number); each is sent to a worker once."""
        self._starting.join()
        n = len(self._conns)
        where = [(slots[k] if slots is not None else k) % n for k in range(len(tasks))]
        for k, task in enumerate(tasks):
            w = where[k]
            need = sessions[k] if sessions is not None else {}
            new = {key: ss for key, ss in need.items() if key not in self._sent[w]}
            self._sent[w].update(new)
            self._conns[w].send((task, new))
        out = []
        for k in range(len(tasks)):  # a worker answers its tasks in the order they were sent
            status, value = self._conns[where[k]].recv()
            if status != "ok":
                self.close()
                raise RuntimeError(f"a hosting worker failed:\n{value}")
            out.append(value)
        return out

    def close(self) -> None:
        """Stop the workers; :attr:`cpu_s` gets the CPU seconds they spent."""
        self._starting.join()
        for conn in self._conns:
            try:
                conn.send(None)
                status, value = conn.recv()
                if status == "cpu":
                    self.cpu_s += value
                conn.close()
            except (OSError, EOFError):
                pass
        for proc in self._procs:
            proc.join(timeout=10)
            if proc.is_alive():
                proc.terminate()
        self._conns, self._procs = [], []


def _serve(conn, payload: bytes) -> None:
    os.environ.update(_ONE_THREAD)
    from gridctl.studies.hosting_locations import Control

    study_class, model, what, scopes, days, settings, config = pickle.loads(payload)
    study = study_class(model, what, scopes=scopes, days=days, settings=settings, config=config)
    while True:
        try:
            task = conn.recv()
        except EOFError:
            return
        if task is None:
            usage = resource.getrusage(resource.RUSAGE_SELF)
            conn.send(("cpu", usage.ru_utime + usage.ru_stime))
            return
        if task[0] == "prepare":  # no answer: build the day's dispatcher while nothing waits
            with contextlib.suppress(Exception):  # the first check builds it again, says why
                _ = study.day(task[1]).dispatcher
            continue
        try:
            (index, value, control, date, complete), sessions = task
            by_day: dict = {}
            for (day, site, j), ss in sessions.items():
                by_day.setdefault(day, {})[(site, j)] = ss
            for day, ss in by_day.items():
                study.day(day).preload(ss)
            check = study.check(study.locations[index], value, Control(control), date,
                                complete=complete)
            conn.send(("ok", check))
        except Exception:  # reported to the parent, which stops the study
            conn.send(("error", traceback.format_exc()))


def _dumps(obj: Any) -> bytes:
    # a model keeps read-only mappings (MappingProxyType), which pickle does not take as such
    buffer = io.BytesIO()
    pickler = pickle.Pickler(buffer, protocol=pickle.HIGHEST_PROTOCOL)
    pickler.dispatch_table = {**copyreg.dispatch_table, MappingProxyType: _reduce_read_only}
    pickler.dump(obj)
    return buffer.getvalue()


def _read_only(mapping: dict) -> MappingProxyType:
    return MappingProxyType(mapping)


def _reduce_read_only(proxy: MappingProxyType) -> tuple:
    return _read_only, (dict(proxy),)


@contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    """``values`` set in this process's environment while the workers start (they inherit it)."""
    old = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
