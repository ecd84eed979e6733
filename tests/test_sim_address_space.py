"""The simulator's address space: the bulk insertion is node for node what AddNodes makes.

``hil_sim.address_space`` puts its ~8,200 nodes straight into asyncua's address space rather
than through the AddNodes service (its module docstring says why). This is the spec: the Jiuke
Oasis model is built both ways, each in a server of its own, and every attribute value and every
reference (type, target, direction, names, order) of every node added must be identical,
including the nodes the new ones point to (Objects, the type definitions). A real client then
browses, reads and subscribes to a simulator over 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

import pytest
import pytest_asyncio
from asyncua import Client, Server, ua
from asyncua.common.node import Node
from asyncua.server.address_space import NodeData
from asyncua.ua.uaerrors import BadUserAccessDenied

from gridctl.field.contract import (
    GRID_FOLDER,
    UNITS_NAMESPACE_URI,
    FieldContract,
    FieldPoint,
    SimulatorNodes,
)
from hil_sim.address_space import (
    FieldAddressSpace,
    _add_nodes_via_service,
    _build,
    _insert_nodes,
    build_address_space,
)
from hil_sim.server import SimServer
from hil_sim.simulator import Simulator
from network_models import load_model

pytestmark = pytest.mark.asyncio(loop_scope="module")

START = "2026-07-15 12:00"


async def _no_call(parent: ua.NodeId, *args: ua.Variant) -> list[ua.Variant]:
    return []  # the methods are not called here


def _handlers() -> dict[str, Any]:
    return {m.name: _no_call for m in SimulatorNodes.METHODS}


def _initial(model) -> tuple[FieldContract, dict]:
    """The contract and the first values as the simulator serves them, minus every seventh
    point: those start at the empty value of their type, the other path of the builder."""
    sim = Simulator(model, start=START)
    values = {**sim.readings, **{p.key: sim.setpoint(*p.key) for p in sim.contract.setpoints()}}
    return sim.contract, {k: v for i, (k, v) in enumerate(values.items()) if i % 7}


@dataclasses.dataclass
class Built:
    server: Server
    space: FieldAddressSpace
    contract: FieldContract
    initial: dict

    @property
    def aspace(self):
        return self.server.iserver.aspace

    def node_ids(self, namespace: int | None = None) -> list[ua.NodeId]:
        # asyncua's AddressSpace has keys() but no __iter__
        ids = list(self.aspace.keys())
        return ids if namespace is None else [n for n in ids if n.NamespaceIndex == namespace]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def both(jiuke) -> dict[str, Built]:
    """Jiuke's address space built by the bulk insertion and by asyncua's AddNodes, on the same
    node specifications (servers initialised, never started: nothing to stop)."""
    contract, initial = _initial(jiuke)
    built = {}
    for name, add_nodes in (("bulk", _insert_nodes), ("add_nodes", _add_nodes_via_service)):
        server = Server()
        await server.init()
        space = await _build(server, contract, initial, _handlers(), add_nodes)
        built[name] = Built(server, space, contract, initial)
    return built


def _compared_nodes(built: Built) -> list[ua.NodeId]:
    """The nodes of the contract's namespace and every node one of their references points to."""
    ours = built.node_ids(built.space.namespace_index)
    targets = {r.NodeId for n in ours for r in built.aspace[n].references}
    return sorted({*ours, *targets}, key=lambda n: n.to_string())


def _value_without_stamps(dv: ua.DataValue) -> ua.DataValue:
    """A Value without its timestamps: AddNodes reads the clock for each node, the bulk insertion
    once for all. Stamps on one side only still differ: only present stamps are removed."""
    if dv.SourceTimestamp is None and dv.ServerTimestamp is None:
        return dv  # the standard nodes (type definitions) have none
    assert dv.SourceTimestamp is not None and dv.SourceTimestamp.tzinfo is not None
    assert dv.ServerTimestamp is not None and dv.ServerTimestamp.tzinfo is not None
    return dataclasses.replace(dv, SourceTimestamp=None, ServerTimestamp=None)


def _fingerprint(data: NodeData) -> tuple[list[tuple[Any, str]], list[str], bool]:
    """Everything of a node a client can see, by repr: it shows every field, Python types and
    NodeIdType included (``==`` would not: Variant ignores is_array, NodeId its type)."""
    attributes = []
    for attribute, wrapper in data.attributes.items():
        assert wrapper.value_callback is None and wrapper.value_setter is None
        assert not wrapper.datachange_callbacks
        dv = wrapper.value
        if attribute == ua.AttributeIds.Value:
            dv = _value_without_stamps(dv)
        attributes.append((attribute, repr(dv)))
    return attributes, [repr(r) for r in data.references], data.call is None


async def test_both_ways_give_the_same_field_address_space(both):
    bulk, reference = both["bulk"].space, both["add_nodes"].space
    assert bulk == reference
    assert len(bulk.point_nodes) == len(bulk.point_of_node) > 3900


async def test_every_attribute_and_reference_is_what_add_nodes_makes(both):
    bulk, reference = both["bulk"], both["add_nodes"]
    nodes = _compared_nodes(bulk)
    assert nodes == _compared_nodes(reference)
    assert len(nodes) > 8000
    differing = [n for n in nodes
                 if _fingerprint(bulk.aspace[n]) != _fingerprint(reference.aspace[n])]
    first = differing[0] if differing else None
    assert not differing, (
        f"{len(differing)} nodes differ, e.g. {first}:\n"
        f"bulk      {_fingerprint(bulk.aspace[first])}\n"
        f"add_nodes {_fingerprint(reference.aspace[first])}")


async def test_the_value_variant_types_are_those_of_the_contract(both):
    built = both["bulk"]
    for node, point in built.space.point_of_node.items():
        expected = ua.VariantType[{"float": "Double", "bool": "Boolean", "int": "Int64",
                                   "str": "String"}[point.dtype]]
        value = built.aspace.read_attribute_value(node, ua.AttributeIds.Value)
        assert value.Value.VariantType == expected, point.key


async def test_every_node_has_its_own_wrappers_and_references(both):
    # asyncua replaces a written value on the node's AttributeValue, keeps datachange callbacks
    # there and renames references in place: none of them may be shared between nodes
    built = both["bulk"]
    nodes = [built.aspace[n] for n in built.node_ids(built.space.namespace_index)]
    nodes.append(built.aspace[ua.NodeId(ua.ObjectIds.ObjectsFolder)])
    wrappers = [id(w) for data in nodes for w in data.attributes.values()]
    references = [id(r) for data in nodes for r in data.references]
    assert len(set(wrappers)) == len(wrappers)
    assert len(set(references)) == len(references)


# --- one node written, renamed, watched: the others do not notice ----------------------------


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def small() -> Built:
    """A small model's address space of its own: the tests below write and rename in it."""
    contract, initial = _initial(load_model("case33bw"))
    server = Server()
    await server.init()
    space = await build_address_space(server, contract, initial, _handlers())
    return Built(server, space, contract, initial)


def _two_points_of_one_name(space: FieldAddressSpace) -> tuple[FieldPoint, FieldPoint]:
    by_name: dict[str, FieldPoint] = {}
    for point in space.point_of_node.values():
        if point.name in by_name and point.dtype == "float" and not point.writable:
            return by_name[point.name], point
        by_name.setdefault(point.name, point)
    raise AssertionError("no two read-only float points share a name")


async def test_a_write_or_rename_changes_only_its_own_node(small):
    first, second = _two_points_of_one_name(small.space)
    node_1, node_2 = (small.space.point_nodes[p.key] for p in (first, second))
    notified: list[Any] = []

    async def watch(handle: int, value: ua.DataValue) -> None:
        notified.append(value)

    status, _ = small.aspace.add_datachange_callback(node_2, ua.AttributeIds.Value, watch)
    assert status.is_good()
    before = small.aspace.read_attribute_value(node_2, ua.AttributeIds.Value)

    await small.server.write_attribute_value(node_1, ua.DataValue(ua.Variant(1.5,
                                                                            ua.VariantType.Double)))
    await small.server.write_attribute_value(
        node_1, ua.DataValue(ua.Variant(ua.LocalizedText("renamed"), ua.VariantType.LocalizedText)),
        ua.AttributeIds.DisplayName)

    read = small.aspace.read_attribute_value
    assert read(node_1, ua.AttributeIds.Value).Value.Value == 1.5
    assert read(node_2, ua.AttributeIds.Value) is before and not notified
    assert read(node_2, ua.AttributeIds.DisplayName).Value.Value.Text == second.name

    def name_seen_from_parent(point: FieldPoint, node: ua.NodeId) -> str | None:
        parent = small.aspace[ua.NodeId(point.device_id, small.space.namespace_index)]
        return next(r.DisplayName.Text for r in parent.references if r.NodeId == node)

    assert name_seen_from_parent(first, node_1) == "renamed"
    assert name_seen_from_parent(second, node_2) == second.name

    await small.server.write_attribute_value(node_2, ua.DataValue(ua.Variant(2.5,
                                                                            ua.VariantType.Double)))
    assert [v.Value.Value for v in notified] == [2.5]


async def test_a_second_build_is_refused_before_anything_is_added(small):
    count = len(small.node_ids())
    grid = small.aspace[ua.NodeId(GRID_FOLDER, small.space.namespace_index)]
    grid_references = list(grid.references)
    with pytest.raises(RuntimeError, match="BadNodeIdExists"):
        await build_address_space(small.server, small.contract, small.initial, _handlers())
    assert len(small.node_ids()) == count
    assert grid.references == grid_references


# --- a real client over 127.0.0.1 ---------------------------------------------------------------


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def field(jiuke):
    server = SimServer(jiuke, host="127.0.0.1", port=0, step_mode=True, start=START)
    await server.start()
    yield server
    await server.stop()


async def _child(node: Node, name: str) -> Node:
    """The child named ``name``, found by a Browse request (hierarchical references)."""
    for ref in await node.get_children_descriptions():
        if ref.BrowseName.Name == name:
            return Node(node.session, ref.NodeId)
    raise AssertionError(f"{name} is not a child of {node}")


async def _properties(node: Node) -> dict[str, Any]:
    return {(await p.read_browse_name()).Name: await p.read_value()
            for p in await node.get_properties()}


class _Notifications:
    """asyncua's subscription handler: every data change into a queue."""

    def __init__(self) -> None:
        self.values: asyncio.Queue[ua.DataValue] = asyncio.Queue()

    def datachange_notification(self, node: Node, value: Any, data: Any) -> None:
        self.values.put_nowait(data.monitored_item.Value)


def _ranged_setpoint(contract: FieldContract) -> FieldPoint:
    return next(p for p in contract.setpoints() if p.dtype == "float"
                and p.point.min_value is not None and p.point.max_value is not None)


async def test_a_client_browses_to_a_point_and_reads_its_unit_and_range(field):
    contract = field.simulator.contract
    point = _ranged_setpoint(contract)
    async with Client(field.endpoint, timeout=30) as client:
        ns = await client.get_namespace_index(contract.namespace_uri)
        grid = await _child(client.nodes.objects, GRID_FOLDER)
        variable = await _child(await _child(grid, point.device_id), point.name)
        assert variable.nodeid == ua.NodeId(point.node_identifier, ns)
        properties = await _properties(variable)
        value = await variable.read_data_value()
        access = await variable.read_attribute(ua.AttributeIds.AccessLevel)
    unit = point.unit
    assert properties["EngineeringUnits"] == ua.EUInformation(
        NamespaceUri=UNITS_NAMESPACE_URI, UnitId=unit.unit_id,
        DisplayName=ua.LocalizedText(unit.display_name),
        Description=ua.LocalizedText(unit.description))
    assert properties["EURange"] == ua.Range(Low=point.point.min_value,
                                             High=point.point.max_value)
    assert value.StatusCode.is_good() and value.Value.VariantType == ua.VariantType.Double
    assert value.Value.Value == pytest.approx(field.simulator.setpoint(*point.key))
    assert access.Value.Value == (ua.AccessLevel.CurrentRead.mask
                                  | ua.AccessLevel.CurrentWrite.mask)


async def test_a_client_is_notified_of_a_new_measurement_after_a_step(field):
    contract = field.simulator.contract
    device, name = "A_T1", "p_mw"  # a transformer's flow changes every tick
    notifications = _Notifications()
    async with Client(field.endpoint, timeout=30) as client:
        grid = await _child(client.nodes.objects, GRID_FOLDER)
        variable = await _child(await _child(grid, device), name)
        assert set(await _properties(variable)) == {"EngineeringUnits"}  # read-only: no range
        first_read = await variable.read_value()
        subscription = await client.create_subscription(20, notifications)
        await subscription.subscribe_data_change(variable)
        first = await asyncio.wait_for(notifications.values.get(), 10)
        await field.step(1)
        second = await asyncio.wait_for(notifications.values.get(), 10)
        await subscription.delete()
    assert first.Value.Value == first_read
    assert second.Value.Value != first.Value.Value
    assert second.Value.Value == pytest.approx(field.simulator.reading(device, name))
    assert second.SourceTimestamp == field.simulator.time.to_pydatetime()
    assert contract.point(device, name).unit.display_name == "MW"


async def test_an_anonymous_write_is_refused_by_the_guard(field):
    point = _ranged_setpoint(field.simulator.contract)
    before = field.simulator.setpoint(*point.key)
    async with Client(field.endpoint, timeout=30) as client:
        ns = await client.get_namespace_index(field.simulator.contract.namespace_uri)
        variable = client.get_node(ua.NodeId(point.node_identifier, ns))
        with pytest.raises(BadUserAccessDenied):
            await variable.write_value(ua.Variant(float(point.point.min_value),
                                                  ua.VariantType.Double))
    assert field.simulator.setpoint(*point.key) == before
