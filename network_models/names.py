"""Names every part of the grid room shares: the built-in models, the site's time zone, the
SimBench prefix.

A leaf module (it imports nothing), so the modules of ``network_models`` take these from here
and not from the package itself, whose ``load_model`` imports them: no import circle.
"""

__all__ = ["BUILTIN_MODELS", "SIMBENCH_PREFIX", "TIMEZONE"]

BUILTIN_MODELS: tuple[str, ...] = ("jiuke_oasis", "case33bw", "cigre_mv", "mv_oberrhein")
TIMEZONE = "Asia/Shanghai"  # the site's, unless a model says otherwise (light to import)
SIMBENCH_PREFIX = "simbench:"
