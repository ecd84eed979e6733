"""Fault location, isolation and service restoration (FLISR) for the open-loop feeders."""

from controllers.flisr.context import FlisrContext
from controllers.flisr.guard import LivePart, close_refusal, energised_by_closing, live_part
from controllers.flisr.location import expected_protection_response
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
    plan_reconnection,
    plan_restoration,
    report_from_points,
)

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
