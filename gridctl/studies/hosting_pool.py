"""Worker processes for a hosting study: the checks of one round run side by side.

Each worker builds the same study (model, days, settings) and runs the day checks it is sent,
keeping its own day dispatchers. A check goes to a fixed worker by its place in the round and
every round is waited for, so the same study sends the same checks to the same workers in the
same order: its answer does not depend on timing. A dispatcher keeps what it learnt (limits its
screen had left out and an AC check found violated), so a study run on two workers may differ
from one run in one process where a plan is on the edge; each is reproducible.

Only the standard library is imported here: a worker sets its numeric libraries to one thread
before it imports them (two workers on two cores, no oversubscription).
"""

from __future__ import annotations

import copyreg
import io
import multiprocessing as mp
import os
import pickle
import traceback
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from types import MappingProxyType
from typing import Any

_ONE_THREAD = {name: "1" for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                                      "MKL_NUM_THREADS", "NUMBA_NUM_THREADS")}

Task = tuple[int, int, str, Any, bool]  # location index, value, control, date, complete


class CheckPool:
    """``n`` worker processes, each with its own copy of the study."""

    def __init__(self, study, n: int) -> None:
        from dataclasses import replace

        payload = _dumps((study.source_model, study.what, study.scopes, study.day_dates,
                          replace(study.settings, workers=1), study.config))
        ctx = mp.get_context("spawn")  # a fresh interpreter: no forked solver or BLAS state
        self._conns = []
        self._procs = []
        self._sent: list[set] = [set() for _ in range(n)]  # sessions each worker has
        with _environment(_ONE_THREAD):
            for _ in range(n):
                parent, child = ctx.Pipe()
                proc = ctx.Process(target=_serve, args=(child, payload), daemon=True)
                proc.start()
                child.close()
                self._conns.append(parent)
                self._procs.append(proc)

    def run(self, tasks: Sequence[Task], sessions: Sequence[dict] | None = None) -> list[Any]:
        """The checks of ``tasks``, task ``k`` on worker ``k % n``, in order. ``sessions[k]``:
        the added connectors' sessions task ``k`` needs, by (day, site, number); each is sent
        to a worker once."""
        n = len(self._conns)
        for k, task in enumerate(tasks):
            w = k % n
            need = sessions[k] if sessions is not None else {}
            new = {key: ss for key, ss in need.items() if key not in self._sent[w]}
            self._sent[w].update(new)
            self._conns[w].send((task, new))
        out = []
        for k in range(len(tasks)):
            status, value = self._conns[k % n].recv()
            if status != "ok":
                self.close()
                raise RuntimeError(f"a hosting worker failed:\n{value}")
            out.append(value)
        return out

    def close(self) -> None:
        for conn in self._conns:
            try:
                conn.send(None)
                conn.close()
            except (OSError, BrokenPipeError):
                pass
        for proc in self._procs:
            proc.join(timeout=10)
            if proc.is_alive():
                proc.terminate()
        self._conns, self._procs = [], []


def _serve(conn, payload: bytes) -> None:
    os.environ.update(_ONE_THREAD)
    from gridctl.studies.hosting import HostingStudy
    from gridctl.studies.hosting_locations import Control

    model, what, scopes, days, settings, config = pickle.loads(payload)
    study = HostingStudy(model, what, scopes=scopes, days=days, settings=settings, config=config)
    while True:
        try:
            task = conn.recv()
        except EOFError:
            return
        if task is None:
            return
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
