"""Light constants of the ground floor, importable without pandapower (re-exported by the package).

They live in a leaf module so that the modules of ``network_models`` can use them without
importing the package's ``__init__``, which in turn imports those modules to load a model.
"""

from __future__ import annotations

BUILTIN_MODELS: tuple[str, ...] = ("jiuke_oasis", "case33bw", "cigre_mv", "mv_oberrhein")
TIMEZONE = "Asia/Shanghai"  # the site's, unless a model says otherwise
SIMBENCH_PREFIX = "simbench:"
