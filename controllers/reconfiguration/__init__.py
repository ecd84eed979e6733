"""Loss-minimising reconfiguration of the open-loop feeders: which switches to open, within limits.

Two methods, both ending with an AC power flow of the chosen configuration:

- **exhaustive** (small systems): every radial configuration of the candidate switches is
  enumerated (``radiality``, on the switching graph of ``graph``). Where the grid allows it
  (one source, constant-power loads, no generation, transformers or line charging), a lower
  bound on each configuration's AC losses (``loss_bound``, DistFlow) orders them; they are
  solved by AC power flow in power-grid-model batches (``ac``), least bound first, until every
  one left is bounded above the best loss within limits. Elsewhere every one is solved. The
  least-loss one within limits is the optimum of the AC model, proven by enumeration and the
  bound. IEEE 33-bus has 50,751 radial configurations, of which 64 are solved by AC.
- **milp** (larger systems): a MILP with linearised DistFlow and single-commodity radiality
  (``milp``) gives a configuration, which branch exchange then improves on the AC model: every
  neighbour (close one open branch, open another branch of the loop it makes) is solved in one
  batch and the best improving one taken, until none improves. The answer is a local optimum of
  the AC model, not a proven global one.

``auto`` enumerates when there are at most ``max_exhaustive`` radial configurations
(``search``). Radiality is asked of the open-loop part only (see ``graph``): a meshed backbone
stays as it is. Losses are line and transformer losses in MW; a configuration is *within
limits* when the AC power flow converges and respects ``AcLimits`` everywhere. The answer
becomes switching operations and AC figures in ``outcome``.

The modules, each importing only those above it in this list: ``records`` (the switching graph
and the decision record, no import of the package), ``graph``, ``radiality``, ``ac``, ``milp``,
``loss_bound``, ``outcome``, ``search`` (:func:`reconfigure`). Other rooms import from this
package only.
"""

from controllers.reconfiguration.records import (
    AcFigures,
    ReconfigurationMethod,
    ReconfigurationResult,
    SwitchOperation,
)
from controllers.reconfiguration.search import reconfigure

__all__ = [
    "AcFigures",
    "ReconfigurationMethod",
    "ReconfigurationResult",
    "SwitchOperation",
    "reconfigure",
]
