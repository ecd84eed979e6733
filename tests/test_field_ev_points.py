"""The EV codec of the field floor: one connector's report and its points, both ways."""

from __future__ import annotations

import math

import pandas as pd

from gridctl.field.ev_points import (
    ENDED_POINTS,
    REPORTED_POINTS,
    SESSION_POINTS,
    ConnectorReport,
    decode_connector,
    encode_connector,
)
from hil_sim.simulator import Simulator
from network_models.registry import Access

DEPARTS = pd.Timestamp("2026-07-15 17:30", tz="Asia/Shanghai")


def test_the_codec_names_exactly_the_points_the_registry_gives_a_connector(jiuke):
    site = jiuke.registry.ev_sites[0]
    read = [p.name.split(".", 1)[1] for p in site.points
            if p.name.startswith("c1.") and p.access == Access.READ]
    assert list(REPORTED_POINTS) == read
    assert set(SESSION_POINTS) | set(ENDED_POINTS) <= set(REPORTED_POINTS)


def test_a_report_encoded_and_decoded_is_the_same_report():
    report = ConnectorReport(
        site="EV_L1_1", connector="c3", connected=True, session_id="S-7", p_charge_kw=6.5,
        energy_requested_kwh=30.0, energy_delivered_kwh=12.25, departure=DEPARTS,
        vehicle_max_kw=7.0, last_session_id="S-6", last_session_energy_kwh=18.5)
    values = encode_connector(report)
    assert values[("EV_L1_1", "c3.departure_s")] == DEPARTS.timestamp()
    back = decode_connector("EV_L1_1", "c3", values)
    assert back == report._replace(departure=DEPARTS.tz_convert("UTC"))
    assert back.departure == DEPARTS


def test_an_empty_connector_is_sent_as_empty_strings_zeros_and_no_departure():
    values = encode_connector(ConnectorReport(site="EV", connector="c1"))
    assert values[("EV", "c1.session_id")] == "" and values[("EV", "c1.last_session_id")] == ""
    assert values[("EV", "c1.connected")] is False
    assert math.isnan(values[("EV", "c1.departure_s")])
    assert values[("EV", "c1.last_session_energy_kwh")] == 0.0
    assert decode_connector("EV", "c1", values) == ConnectorReport(
        site="EV", connector="c1", last_session_energy_kwh=0.0)


def test_points_not_reported_read_as_no_vehicle_and_an_unknown_ended_energy():
    # missing or Bad (None): nothing plugged in, nothing delivered, no departure announced
    values = {("EV", "c2.session_id"): None, ("EV", "c2.departure_s"): 0.0}
    assert decode_connector("EV", "c2", values) == ConnectorReport(site="EV", connector="c2")
    assert decode_connector("EV", "c2", {}).last_session_energy_kwh is None


def test_the_simulator_publishes_each_plugged_in_session_through_the_codec(jiuke):
    sim = Simulator(jiuke, start="2026-07-15 18:00")
    sim.step(2)
    plugged = [(unit.spec, c, s) for unit in sim.ev.values()
               for c, s in zip(unit.spec.connector_ids(), unit.sessions, strict=True) if s]
    assert plugged
    for site, c, session in plugged:
        report = decode_connector(site.id, c, sim.readings)
        assert report.connected and report.session_id == session.id
        assert report.energy_requested_kwh == session.energy_kwh
        assert report.departure == session.departure
        assert report.vehicle_max_kw == min(session.max_kw, site.p_connector_kw)
