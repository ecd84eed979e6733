"""Plan a dispatch schedule for a horizon: optimise, check in full AC, re-linearise until it passes.

``Dispatcher`` owns one ``DispatchProblem`` (built once for the model, its switch state and the
horizon length) and plans from a forecast bundle and a grid snapshot:

1. the first base point is the forecast with PV uncurtailed, batteries idle and EVs charging
   unmanaged (or the caller's previous schedule);
2. an AC power flow of every step of the base point gives the linearisation offsets;
3. the optimiser decides; EV site power is split among sessions (``ev_charging``);
4. the schedule is checked with a full AC power flow of every step; if a limit is violated, the
   schedule becomes the new base point and the problem is solved again (parameters only).

The package, by concern:

- ``planner``: the ``Dispatcher`` and its planning loop, one named step per method;
- ``plan_run``: what the loop carries from one solve to the next, what a plan returns and the
  decision record of a run;
- ``window``: the problem's inputs from a forecast window, a snapshot and a base point;
- ``sessions``: which EV sessions a plan serves, what is left owed and what may be chased;
- ``assembly``: schedules from decisions (planned, uncontrolled, rule-based) and the power-flow
  injections of a schedule; ``positions``: where devices sit in the net and in results;
- ``ac_check``: the AC check record of a schedule and the binding limits of a solve.
"""

from controllers.dispatch.ac_check import ac_check_of, binding_records
from controllers.dispatch.plan_run import PlanResult
from controllers.dispatch.planner import LINEARISATION_POINT, Dispatcher, net_with_switches

__all__ = [
    "LINEARISATION_POINT",
    "Dispatcher",
    "PlanResult",
    "ac_check_of",
    "binding_records",
    "net_with_switches",
]
