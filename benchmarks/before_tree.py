"""Run a piece of benchmark code against gridctl as it was at a git ref, in a process of its own.

The benchmarks that compare "before" with "after" in one run take the lower rooms
(``network_models``, ``forecasts``, ``controllers``) of ``ref`` with ``git archive`` into a
temporary directory and run the same code there and here, each in a fresh process with the
same interpreter, so both pay the same start-up and meet the same machine load. The code
prints one JSON document on its last line of output.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

CHECKOUT = Path(__file__).resolve().parents[1]
ROOMS = ("network_models", "forecasts", "controllers")


def tree_at(ref: str) -> Path:
    """A directory holding the lower rooms of ``ref`` (the caller may delete it)."""
    work = Path(tempfile.mkdtemp(prefix="gridctl_before_"))
    archive = subprocess.run(
        ["git", "archive", ref, *ROOMS], cwd=CHECKOUT, check=True, capture_output=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(work)], input=archive, check=True)
    return work


def run_code(code: str, tree: Path | None = None) -> object:
    """Run ``code`` with ``tree`` (default: this checkout) first on the path; its last JSON line."""
    root = str(tree or CHECKOUT)
    prelude = f"import sys; sys.dont_write_bytecode = True; sys.path.insert(0, {root!r})\n"
    out = subprocess.run(
        [sys.executable, "-c", prelude + code], check=True, capture_output=True, text=True,
        cwd=root,
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


def before_and_after(code: str, ref: str, rounds: int = 2) -> dict[str, list]:
    """``code`` run by ``ref`` and by this checkout, alternating fresh processes ``rounds``
    times each: ``{"before": [...], "after": [...]}``, each entry the run's JSON document."""
    tree = tree_at(ref)
    runs: dict[str, list] = {"before": [], "after": []}
    try:
        for _ in range(rounds):
            runs["before"].append(run_code(code, tree))
            runs["after"].append(run_code(code))
    finally:
        shutil.rmtree(tree, ignore_errors=True)
    return runs
