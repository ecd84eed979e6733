"""The dispatch optimisation problem: built once, DPP, re-solved with new parameters each step.

Decision variables per step: PV active power (curtailment) and reactive power, BESS charge,
discharge and reactive power, EV site charging power, and the linearised network state
(see ``network_linearisation``). Constraints: linearised AC power flow of the meshed network,
voltage band and thermal limits (soft, with penalised slacks that are reported), inverter ratings,
BESS SoC dynamics with efficiencies, reserve and end-of-horizon target, EV site envelopes with a
penalised shortfall. Objective: the weighted cost terms of ``ObjectiveWeights``.

A battery measured outside its band (whose floor is the islanding reserve where one is kept) is
planned from where it is: its hard energy bounds are the band widened to the measured value, so
the start is never infeasible and the plan never takes it further out; each MWh outside the band
is penalised in every step it stays out, which brings it back as fast as the rest of the
objective allows. A battery that may not be dispatched (its SoC unknown) gets a power cap of 0
(see ``bess_soc``).

Sign conventions: PV and BESS powers are injections (BESS discharge positive), EV site power is
consumption, import is power drawn from the upstream grid. Units MW, Mvar, MWh, pu, CNY.

The package, by concern:

- ``inputs``: what changes between solves (``WindowInputs``, ``BasePoint``, ``DispatchInputs``);
- ``parameters``: the cvxpy Parameters and Variables as typed records, and how inputs are copied
  into them;
- ``constraints``: one small builder per concern (network, PV, BESS, EV sites);
- ``objective``: the cost terms, one pure function each;
- ``solve``: the solver chain; ``solution``: what a solve gives, binding limits with their
  shadow prices; ``problem``: ``DispatchProblem``, which puts them together once.
"""

from controllers.dispatch_problem.inputs import BasePoint, DispatchInputs, WindowInputs
from controllers.dispatch_problem.parameters import (
    Z_SCALE,
    DispatchParameters,
    DispatchVariables,
)
from controllers.dispatch_problem.problem import DispatchProblem
from controllers.dispatch_problem.solution import (
    BINDING_DUAL_CNY,
    BINDING_ROOM,
    BindingLimit,
    DispatchSolution,
)
from controllers.dispatch_problem.solve import _RETRIES, _SOLVER_OPTIONS, solver_attempts

__all__ = [
    "BINDING_DUAL_CNY",
    "BINDING_ROOM",
    "Z_SCALE",
    "_RETRIES",
    "_SOLVER_OPTIONS",
    "BasePoint",
    "BindingLimit",
    "DispatchInputs",
    "DispatchParameters",
    "DispatchProblem",
    "DispatchSolution",
    "DispatchVariables",
    "WindowInputs",
    "solver_attempts",
]
