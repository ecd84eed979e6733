"""The field contract: one OPC UA variable per registry point, defined once from the registry."""

from __future__ import annotations

import pytest

from gridctl.field.contract import (
    FieldContract,
    SimulatorNodes,
    engineering_unit,
    namespace_uri,
)
from network_models.registry import Access


@pytest.fixture(scope="module")
def contract(jiuke) -> FieldContract:
    return FieldContract.from_model(jiuke)


def test_every_registry_point_is_one_variable_of_its_device(jiuke, contract):
    assert len(contract) == jiuke.registry.point_count()
    assert [d.id for d in contract.devices] == [d.id for d in jiuke.registry]
    for device in jiuke.registry:
        names = [p.name for p in contract.device(device.id).points]
        assert names == [p.name for p in device.points]


def test_node_identifiers_are_unique_and_name_device_and_point(contract):
    identifiers = [p.node_identifier for p in contract]
    assert len(set(identifiers)) == len(identifiers)
    assert contract.point("BESS_1", "p_set_mw").node_identifier == "BESS_1.p_set_mw"
    assert contract.point("EV_L1_1", "c3.p_set_kw").node_identifier == "EV_L1_1.c3.p_set_kw"
    assert contract.by_identifier("EV_L1_1.c3.p_set_kw") == contract.point("EV_L1_1",
                                                                          "c3.p_set_kw")


def test_measurements_are_read_only_and_setpoints_writable_as_the_registry_says(jiuke,
                                                                              contract):
    access = {(d.id, p.name): p.access for d in jiuke.registry for p in d.points}
    assert {access[p.key] for p in contract.measurements()} == {Access.READ}
    assert {access[p.key] for p in contract.setpoints()} == {Access.WRITE}
    assert len(contract.measurements()) + len(contract.setpoints()) == len(contract)
    assert contract.point("BESS_1", "p_set_mw").writable
    assert not contract.point("BESS_1", "soc_frac").writable


def test_namespace_is_named_after_the_model(contract):
    assert contract.namespace_uri == "urn:gridctl:jiuke_oasis" == namespace_uri("jiuke_oasis")


def test_engineering_units_carry_unece_codes_packed_as_opc_ua_unit_ids():
    # OPC UA Part 8: UnitId = the common code's ASCII bytes, e.g. "MAW" = 0x4D4157
    assert engineering_unit("MW").unit_id == 0x4D4157
    assert engineering_unit("kWh").unit_id == 0x4B5748
    assert engineering_unit("%").unit_id == 0x5031
    assert engineering_unit("pu").unit_id == -1  # no UNECE code for per unit
    assert engineering_unit("") is None


def test_only_float_points_have_engineering_units(contract):
    assert contract.point("BESS_1", "soc_frac").unit.display_name == "1"
    assert contract.point("M_FD_L1_0", "i_ka").unit.display_name == "kA"
    assert contract.point("EV_L1_1", "c1.connected").unit is None
    assert contract.point("FB_FD_L1_0", "close_cmd").unit is None


def test_unknown_device_and_unknown_point_are_named_in_the_error(contract):
    with pytest.raises(KeyError, match="no device 'BESS_9'"):
        contract.point("BESS_9", "p_mw")
    with pytest.raises(KeyError, match="device 'BESS_1' has no point 'p_set_kw'"):
        contract.point("BESS_1", "p_set_kw")


def test_simulator_methods_cover_every_fault_kind_of_the_command_line():
    names = {m.name for m in SimulatorNodes.METHODS}
    assert set(SimulatorNodes.FAULT_KINDS.values()) <= names
    assert {"Step", "ClearFault", "ClearAll"} <= names
    with pytest.raises(KeyError):
        SimulatorNodes.method("Explode")
