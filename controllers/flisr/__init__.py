"""Fault location, isolation and service restoration (FLISR) for the open-loop feeders.

Input is what the field reports after a fault, as immutable records: the breakers whose
``tripped`` point is set, the fault indicators whose ``fault_detected`` point is set, the
``closed`` point of the switches and the substation transformers whose ``in_service`` point is
False (:class:`ProtectionReport`; :func:`report_from_points` builds one from point values read
over OPC UA). The loads and generation to check the restoration against are an operating point
(``PEAK`` by default) with optional present values per device (:class:`OperatingValues`).

:func:`plan_restoration` returns a :class:`RestorationPlan`, a decision record:

1. **location** (``location``, inverting the rule of ``response``): below each tripped feeder
   breaker, the faulted section lies between the last indicator that saw fault current and the
   first that did not. Every section the breaker supplied is a candidate; the one whose expected
   indicator response (by topology: fault current flows from the source along the supply path)
   matches the report is chosen, a failed indicator showing as a mismatch. A backbone cable is
   located by its differential protection (breakers at both ends), a transformer by its breaker
   or its ``in_service`` point.
2. **isolation** (``restoration``): open the closed switches bounding the faulted section; they,
   and every switch touching it, are never closed by the plan.
3. **restoration** (``restoration``, ``resupply``): re-close the tripped breakers; then each
   healthy de-energised part is re-supplied by closing one open switch to a live part
   (normally-open point, tie, bus-tie, bus coupler, a feeder of another station), each
   candidate checked by AC power flow (``ac``). Where no candidate holds the limits, loads of
   the part are shed by priority (EV charging first, then the highest priority number, fewest
   customers first; critical loads last) until one does. Every restoration closes one switch,
   the fewest possible.

:func:`plan_reconnection` (``reconnection``) says which shed loads the present switch state
takes back; :func:`close_refusal` (``guard``) is the last check before a close goes out.

The modules, each importing only those above it in this list: ``records`` (the records, no
import of the package), ``context`` (a model's maps, worked out once), ``ac`` (the AC study),
``response`` (the forward rule), ``location``, ``resupply``, ``restoration``, ``reconnection``,
``guard``, ``planning`` (the entry points). Other rooms import from this package only.

Sign conventions as in the registry: loads and EV sites consume (MW > 0), PV and BESS inject.
"""

from controllers.flisr.context import FlisrContext
from controllers.flisr.guard import LivePart, close_refusal, energised_by_closing, live_part
from controllers.flisr.planning import plan_reconnection, plan_restoration, report_from_points
from controllers.flisr.records import (
    AcCheck,
    FaultKind,
    FaultLocation,
    LoadRecord,
    OperatingValues,
    ProtectionReport,
    Reconnection,
    RestorationPlan,
    StepAction,
    SwitchingStep,
)
from controllers.flisr.response import expected_protection_response

__all__ = [
    "AcCheck",
    "FaultKind",
    "FaultLocation",
    "FlisrContext",
    "LivePart",
    "LoadRecord",
    "OperatingValues",
    "ProtectionReport",
    "Reconnection",
    "RestorationPlan",
    "StepAction",
    "SwitchingStep",
    "close_refusal",
    "energised_by_closing",
    "expected_protection_response",
    "live_part",
    "plan_reconnection",
    "plan_restoration",
    "report_from_points",
]
