"""Build the field contract's address space in an asyncua server, inserting the nodes directly.

Why not AddNodes: the Jiuke Oasis model has ~8,200 nodes (devices, points, their
``EngineeringUnits``/``EURange`` properties, the simulator's variables). asyncua's AddNodes
service (``NodeManagementService._add_node``) takes ~0.3 ms a node. It makes a new DataValue and
Variant for every attribute (8 for an object, 16 for a variable). It also scans the parent's
references twice for every child it adds, and that grows with the square of the Grid folder's 386
devices. This was 2.4-2.7 s of a ~4.5 s simulator start. So the nodes are put straight into the
server's address space as the ``NodeData`` AddNodes would have made: the same attributes with the
same values and variant types, and the same references in the same order (parent → node, node →
parent, HasTypeDefinition). Attribute values without a timestamp that many nodes share (WriteMask
0, ValueRank -1, a point name as DisplayName, ...) share one DataValue. asyncua never changes a
DataValue in place; a write replaces it on the node's ``AttributeValue``. Every node still gets its
own ``AttributeValue`` wrappers, because asyncua keeps value setters and datachange callbacks on
them. It also gets its own ``ReferenceDescription`` objects, because a rename changes those in
place. Before anything is inserted, the batch is checked the way AddNodes checks an item (node id
unused, parent and type definition present, property names unique).

What this relies on in asyncua (pinned to 2.1.x in pyproject.toml): ``NodeData`` and
``AttributeValue`` of ``asyncua.server.address_space``; the address space's mapping interface
(``server.iserver.aspace``); and the attributes, variant types and references ``_add_node``
gives Object and Variable nodes. ``tests/test_sim_address_space.py`` builds the nodes both ways
(:func:`_add_nodes_via_service` is the AddNodes reference) and compares every attribute and
reference. Run it before you widen the pin. One thing differs on purpose: the initial Value
timestamps are the build's time, one for all nodes, where AddNodes reads the clock for each node.

The simulator's methods (a handful) are added the usual way, with ``add_method``. What a node
is (:mod:`hil_sim.node_specs`) and the fast path itself (:mod:`hil_sim.node_insertion`) are
modules of their own; this one says what to add.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from asyncua import Server, ua

from gridctl.field.contract import (
    GRID_FOLDER,
    UNITS_NAMESPACE_URI,
    EngineeringUnit,
    FieldContract,
    FieldPoint,
    PointKey,
    SimulatorNodes,
)
from hil_sim.node_insertion import insert_nodes as _insert_nodes
from hil_sim.node_specs import HAS_PROPERTY, NodeSpec, VariableSpec

_DATA_TYPE = {
    "float": ua.ObjectIds.Double,
    "bool": ua.ObjectIds.Boolean,
    "int": ua.ObjectIds.Int64,
    "str": ua.ObjectIds.String,
    "datetime": ua.ObjectIds.DateTime,
}
_VARIANT = {
    "float": ua.VariantType.Double,
    "bool": ua.VariantType.Boolean,
    "int": ua.VariantType.Int64,
    "str": ua.VariantType.String,
    "datetime": ua.VariantType.DateTime,
}
_EMPTY = {"float": 0.0, "bool": False, "int": 0, "str": "",
          "datetime": dt.datetime(1970, 1, 1, tzinfo=dt.UTC)}
_READ = ua.AccessLevel.CurrentRead.mask
_READ_WRITE = ua.AccessLevel.CurrentRead.mask | ua.AccessLevel.CurrentWrite.mask

# Node ids used by every node. asyncua never changes a NodeId, so one object serves all.
_OBJECTS_FOLDER = ua.NodeId(ua.ObjectIds.ObjectsFolder)
_ORGANIZES = ua.NodeId(ua.ObjectIds.Organizes)
_HAS_COMPONENT = ua.NodeId(ua.ObjectIds.HasComponent)
_FOLDER_TYPE = ua.NodeId(ua.ObjectIds.FolderType)
_BASE_OBJECT_TYPE = ua.NodeId(ua.ObjectIds.BaseObjectType)
_BASE_DATA_VARIABLE_TYPE = ua.NodeId(ua.ObjectIds.BaseDataVariableType)
_BASE_ANALOG_TYPE = ua.NodeId(ua.ObjectIds.BaseAnalogType)
_PROPERTY_TYPE = ua.NodeId(ua.ObjectIds.PropertyType)
_DATA_TYPE_NODE = {dtype: ua.NodeId(type_id) for dtype, type_id in _DATA_TYPE.items()}
_EU_INFORMATION = ua.NodeId(ua.ObjectIds.EUInformation)
_RANGE = ua.NodeId(ua.ObjectIds.Range)

MethodHandler = Callable[..., Awaitable[Any]]


def variant(dtype: str, value: Any) -> ua.Variant:
    """A value as the variant of a contract data type (``float[]``, ``str[]`` for arrays)."""
    if dtype.endswith("[]"):
        return ua.Variant(list(value), _VARIANT[dtype[:-2]])
    return ua.Variant(value, _VARIANT[dtype])


@dataclass(frozen=True)
class FieldAddressSpace:
    """Node ids of the field points and the simulator's variables, both ways."""

    namespace_index: int
    point_nodes: Mapping[PointKey, ua.NodeId]
    point_of_node: Mapping[ua.NodeId, FieldPoint]
    sim_nodes: Mapping[str, tuple[ua.NodeId, str]]  # identifier → (node id, dtype)


async def build_address_space(
    server: Server,
    contract: FieldContract,
    initial: Mapping[PointKey, Any],
    methods: Mapping[str, MethodHandler],
) -> FieldAddressSpace:
    """Add the ``Grid`` folder, every device and point, and the ``Simulator`` object with its
    clock, status and network variables and ``methods`` (name → async handler)."""
    return await _build(server, contract, initial, methods, _insert_nodes)


# --- what to add -----------------------------------------------------------------------------


_NodeAdder = Callable[[Server, Sequence[NodeSpec]], Awaitable[None]]


async def _build(
    server: Server,
    contract: FieldContract,
    initial: Mapping[PointKey, Any],
    methods: Mapping[str, MethodHandler],
    add_nodes: _NodeAdder,
) -> FieldAddressSpace:
    """:func:`build_address_space` with the nodes added by ``add_nodes`` (the tests compare
    :func:`_insert_nodes` with :func:`_add_nodes_via_service`)."""
    ns = await server.register_namespace(contract.namespace_uri)
    specs: list[NodeSpec] = []
    point_nodes = _grid_specs(contract, initial, ns, specs)
    sim_nodes = _simulator_specs(ns, specs)
    await add_nodes(server, specs)
    await _add_methods(server, ns, methods)
    return FieldAddressSpace(
        namespace_index=ns,
        point_nodes=point_nodes,
        point_of_node={node: contract.point(*key) for key, node in point_nodes.items()},
        sim_nodes=sim_nodes,
    )


def _grid_specs(contract: FieldContract, initial: Mapping[PointKey, Any], ns: int,
                specs: list[NodeSpec]) -> dict[PointKey, ua.NodeId]:
    """Append the Grid folder, its devices and their points to ``specs``; the points' nodes."""
    grid = ua.NodeId(GRID_FOLDER, ns)
    specs.append(_object(grid, GRID_FOLDER, _OBJECTS_FOLDER, _FOLDER_TYPE, _ORGANIZES,
                         "field devices of the model"))
    point_nodes: dict[PointKey, ua.NodeId] = {}
    properties = _PropertyValues()
    for device in contract.devices:
        device_node = ua.NodeId(device.id, ns)
        specs.append(_object(device_node, device.id, grid, _BASE_OBJECT_TYPE, _ORGANIZES,
                             device.description or device.kind.value))
        for point in device.points:
            node = ua.NodeId(point.node_identifier, ns)
            point_nodes[point.key] = node
            _point_specs(point, node, device_node, initial.get(point.key), properties, specs)
    return point_nodes


def _simulator_specs(ns: int, specs: list[NodeSpec]) -> dict[str, tuple[ua.NodeId, str]]:
    """Append the Simulator object, its groups and their variables to ``specs``."""
    sim = ua.NodeId(SimulatorNodes.OBJECT, ns)
    specs.append(_object(sim, SimulatorNodes.OBJECT, _OBJECTS_FOLDER, _BASE_OBJECT_TYPE,
                         _ORGANIZES, "the simulator: clock, status, network and fault injection"))
    sim_nodes: dict[str, tuple[ua.NodeId, str]] = {}
    for group, variables in ((SimulatorNodes.CLOCK, SimulatorNodes.CLOCK_VARIABLES),
                             (SimulatorNodes.STATUS, SimulatorNodes.STATUS_VARIABLES),
                             (SimulatorNodes.NETWORK, SimulatorNodes.NETWORK_VARIABLES)):
        group_node = ua.NodeId(group, ns)
        specs.append(_object(group_node, group.rsplit(".", 1)[1], sim, _BASE_OBJECT_TYPE,
                             _HAS_COMPONENT, ""))
        for name, dtype in variables:
            identifier = f"{group}.{name}"
            node = ua.NodeId(identifier, ns)
            sim_nodes[identifier] = (node, dtype)
            specs.append(_variable(node, name, group_node, dtype, _READ, ""))
    return sim_nodes


def _object(node: ua.NodeId, name: str, parent: ua.NodeId, type_id: ua.NodeId,
            reference: ua.NodeId, description: str) -> NodeSpec:
    return NodeSpec(node, ua.QualifiedName(name, node.NamespaceIndex), parent, reference,
                     type_id, name, description)


def _variable(node: ua.NodeId, name: str, parent: ua.NodeId, dtype: str, access: int,
              description: str, value: Any = None, *,
              type_id: ua.NodeId = _BASE_DATA_VARIABLE_TYPE) -> NodeSpec:
    array = dtype.endswith("[]")
    base = dtype[:-2] if array else dtype
    if value is None:
        value = [] if array else _EMPTY[base]
    return NodeSpec(
        node, ua.QualifiedName(name, node.NamespaceIndex), parent, _HAS_COMPONENT, type_id,
        name, description,
        VariableSpec(_DATA_TYPE_NODE[base], 1 if array else -1, access, variant(dtype, value)))


def _point_specs(point: FieldPoint, node: ua.NodeId, parent: ua.NodeId, value: Any,
                 properties: _PropertyValues, specs: list[NodeSpec]) -> None:
    """Append a point's variable and its EngineeringUnits and EURange properties."""
    access = _READ_WRITE if point.writable else _READ
    is_float = point.dtype == "float"
    specs.append(_variable(node, point.name, parent, point.dtype, access,
                           point.point.description, value,
                           type_id=_BASE_ANALOG_TYPE if is_float else _BASE_DATA_VARIABLE_TYPE))
    unit = point.unit
    if unit is not None:
        specs.append(_property(node, "EngineeringUnits", _EU_INFORMATION,
                               properties.unit(unit)))
    low, high = point.point.min_value, point.point.max_value
    if is_float and point.writable and low is not None and high is not None:
        specs.append(_property(node, "EURange", _RANGE,
                               properties.range(float(low), float(high))))


class _PropertyValues:
    """The EngineeringUnits and EURange values, one Variant for each unit and each range: a
    few dozen serve thousands of points (never changed in place, as every Variant)."""

    def __init__(self) -> None:
        self._units: dict[EngineeringUnit, ua.Variant] = {}
        self._ranges: dict[tuple[float, float], ua.Variant] = {}

    def unit(self, unit: EngineeringUnit) -> ua.Variant:
        value = self._units.get(unit)
        if value is None:
            value = self._units[unit] = ua.Variant(ua.EUInformation(
                NamespaceUri=UNITS_NAMESPACE_URI, UnitId=unit.unit_id,
                DisplayName=ua.LocalizedText(unit.display_name),
                Description=ua.LocalizedText(unit.description)))
        return value

    def range(self, low: float, high: float) -> ua.Variant:
        value = self._ranges.get((low, high))
        if value is None:
            value = self._ranges[(low, high)] = ua.Variant(ua.Range(Low=low, High=high))
        return value


def _property(owner: ua.NodeId, name: str, data_type: ua.NodeId, value: ua.Variant,
              ) -> NodeSpec:
    node = ua.NodeId(f"{owner.Identifier}#{name}", owner.NamespaceIndex)
    return NodeSpec(node, ua.QualifiedName(name, 0), owner, HAS_PROPERTY, _PROPERTY_TYPE,
                     name, None, VariableSpec(data_type, -1, _READ, value))


async def _add_methods(server: Server, ns: int, methods: Mapping[str, MethodHandler]) -> None:
    sim_object = server.get_node(ua.NodeId(SimulatorNodes.OBJECT, ns))
    for spec in SimulatorNodes.METHODS:
        inputs = [ua.Argument(Name=n, DataType=ua.NodeId(_DATA_TYPE[t]), ValueRank=-1)
                  for n, t in spec.inputs]
        outputs = [ua.Argument(Name="result", DataType=ua.NodeId(_DATA_TYPE[spec.output]),
                               ValueRank=-1, Description=ua.LocalizedText(spec.description))]
        await sim_object.add_method(ua.NodeId(SimulatorNodes.method(spec.name), ns),
                                    ua.QualifiedName(spec.name, ns), methods[spec.name],
                                    inputs, outputs)


# --- the reference: asyncua's AddNodes service ------------------------------------------------


async def _add_nodes_via_service(server: Server, specs: Sequence[NodeSpec]) -> None:
    """Add ``specs`` through asyncua's AddNodes service, one batch (the reference the spec test
    compares :func:`_insert_nodes` with; ~0.33 ms a node)."""
    items = [_add_nodes_item(spec) for spec in specs]
    results = await server.iserver.isession.add_nodes(items)
    bad = [(item.BrowseName.Name, r.StatusCode) for item, r in zip(items, results, strict=True)
           if not r.StatusCode.is_good()]
    if bad:
        raise RuntimeError(f"could not build the address space: {bad[:3]}")


def _add_nodes_item(spec: NodeSpec) -> ua.AddNodesItem:
    attrs: ua.ObjectAttributes | ua.VariableAttributes
    if spec.variable is None:
        attrs = ua.ObjectAttributes(DisplayName=ua.LocalizedText(spec.display_name),
                                    Description=ua.LocalizedText(spec.description))
    else:
        var = spec.variable
        attrs = ua.VariableAttributes(
            DisplayName=ua.LocalizedText(spec.display_name),
            Description=ua.LocalizedText(spec.description), DataType=var.data_type,
            ValueRank=var.value_rank, AccessLevel=var.access, UserAccessLevel=var.access,
            Value=var.value)
    return ua.AddNodesItem(
        RequestedNewNodeId=spec.node, BrowseName=spec.browse_name, NodeClass=spec.node_class,
        ParentNodeId=spec.parent, ReferenceTypeId=spec.reference,
        TypeDefinition=spec.type_definition, NodeAttributes=attrs)
