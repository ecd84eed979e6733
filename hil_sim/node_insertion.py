"""The fast path of :mod:`hil_sim.address_space`: nodes put straight into the server's
address space as the ``NodeData`` asyncua's AddNodes service would have made (why, and what
this relies on in asyncua, is in that module's docstring), after the batch is checked the way
AddNodes checks an item."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any, NamedTuple

from asyncua import Server, ua
from asyncua.server.address_space import AddressSpace, AttributeValue, NodeData

from hil_sim.node_specs import (
    HAS_PROPERTY,
    HAS_TYPE_DEFINITION,
    OBJECT_DEFAULTS,
    VARIABLE_DEFAULTS,
    NodeSpec,
    VariableSpec,
)

__all__ = ["insert_nodes"]


async def insert_nodes(server: Server, specs: Sequence[NodeSpec]) -> None:
    """Insert ``specs`` into the server's address space as the NodeData AddNodes would make.

    Async only to match :func:`hil_sim.address_space._add_nodes_via_service`. Nothing in it
    awaits, so no other coroutine (a client session) can see a half-built address space."""
    aspace = server.iserver.aspace
    _check_batch(aspace, specs)
    shared = _SharedValues()
    targets = _Targets(aspace)
    # AddNodes stamps each Value with the clock as it goes; one stamp for the batch is enough
    stamp = dt.datetime.now(dt.UTC)
    server_stamp = stamp if aspace.force_server_timestamp else None
    for spec in specs:
        data = NodeData(spec.node)
        display_name = shared.text(spec.display_name)
        if spec.variable is None:
            data.attributes = _object_attributes(spec, display_name, shared)
        else:
            # AddNodes copies the value into a new Variant with is_array=False (arrays too)
            value = ua.DataValue(ua.Variant(spec.variable.value, is_array=False),
                                 StatusCode=shared.good, SourceTimestamp=stamp,
                                 ServerTimestamp=server_stamp)
            data.attributes = _variable_attributes(spec, spec.variable, display_name, value,
                                                   shared)
        aspace[spec.node] = data
        aspace[spec.parent].references.append(ua.ReferenceDescription(
            ReferenceTypeId=spec.reference, IsForward=True, NodeId=spec.node,
            BrowseName=spec.browse_name, DisplayName=display_name.Value.Value,
            NodeClass=spec.node_class, TypeDefinition=spec.type_definition))
        data.references.append(targets.reference(spec.reference, False, spec.parent))
        data.references.append(targets.reference(HAS_TYPE_DEFINITION, True,
                                                 spec.type_definition))


def _check_batch(aspace: AddressSpace, specs: Sequence[NodeSpec]) -> None:
    """Refuse the batch, before anything is added, if AddNodes would refuse any of its items."""
    added: set[ua.NodeId] = set()
    property_names: dict[ua.NodeId, set[str]] = {}  # parent → browse names of its properties
    bad: list[tuple[str, str]] = []
    for spec in specs:
        name = spec.browse_name.Name
        names = property_names.get(spec.parent)
        if names is None:
            names = property_names[spec.parent] = _property_names(aspace, spec.parent)
        if spec.node in added or spec.node in aspace:
            bad.append((name, "BadNodeIdExists"))
        elif spec.parent not in added and spec.parent not in aspace:
            bad.append((name, "BadParentNodeIdInvalid"))
        elif name in names:
            bad.append((name, "BadBrowseNameDuplicated"))
        elif spec.type_definition not in aspace:
            bad.append((name, "BadTypeDefinitionInvalid"))
        added.add(spec.node)
        if spec.reference == HAS_PROPERTY:
            names.add(name)
    if bad:
        raise RuntimeError(f"could not build the address space: {bad[:3]}")


def _property_names(aspace: AddressSpace, node: ua.NodeId) -> set[str]:
    data = aspace.get(node)
    if data is None:
        return set()
    return {r.BrowseName.Name for r in data.references if r.ReferenceTypeId == HAS_PROPERTY}


class _VariableKind(NamedTuple):
    """The shared DataValues of the attributes that depend on a variable's kind."""

    access_level: ua.DataValue
    data_type: ua.DataValue
    value_rank: ua.DataValue


class _SharedValues:
    """One DataValue for each distinct attribute value without a timestamp (AddNodes makes one
    for every attribute of every node). Sharing is safe: asyncua never changes a DataValue (or
    its StatusCode) in place; a write puts a new DataValue on the node's AttributeValue."""

    def __init__(self) -> None:
        vt = ua.VariantType
        self.good = ua.StatusCode()
        self.object_class = self._new(ua.NodeClass.Object, vt.Int32)
        self.variable_class = self._new(ua.NodeClass.Variable, vt.Int32)
        self.event_notifier = self._new(OBJECT_DEFAULTS.EventNotifier, vt.Byte)
        self.object_write_mask = self._new(OBJECT_DEFAULTS.WriteMask, vt.UInt32)
        self.object_user_write_mask = self._new(OBJECT_DEFAULTS.UserWriteMask, vt.UInt32)
        self.write_mask = self._new(VARIABLE_DEFAULTS.WriteMask, vt.UInt32)
        self.user_write_mask = self._new(VARIABLE_DEFAULTS.UserWriteMask, vt.UInt32)
        self.historizing = self._new(VARIABLE_DEFAULTS.Historizing, vt.Boolean)
        self.minimum_sampling_interval = self._new(
            VARIABLE_DEFAULTS.MinimumSamplingInterval, vt.Double)
        # ArrayDimensions None is stored as a null UInt32 array variant
        self.array_dimensions = ua.DataValue(ua.Variant(
            VARIABLE_DEFAULTS.ArrayDimensions, vt.UInt32, is_array=True))
        self._texts: dict[str | None, ua.DataValue] = {}
        self._kinds: dict[tuple[int, ua.NodeId, int], _VariableKind] = {}

    @staticmethod
    def _new(value: Any, vtype: ua.VariantType) -> ua.DataValue:
        return ua.DataValue(ua.Variant(value, vtype))

    def text(self, text: str | None) -> ua.DataValue:
        """A LocalizedText value (a DisplayName or Description)."""
        shared = self._texts.get(text)
        if shared is None:
            shared = self._texts[text] = self._new(ua.LocalizedText(text),
                                                   ua.VariantType.LocalizedText)
        return shared

    def kind(self, var: VariableSpec) -> _VariableKind:
        key = (var.access, var.data_type, var.value_rank)
        shared = self._kinds.get(key)
        if shared is None:
            vt = ua.VariantType
            shared = self._kinds[key] = _VariableKind(
                self._new(var.access, vt.Byte), self._new(var.data_type, vt.NodeId),
                self._new(var.value_rank, vt.Int32))
        return shared


def _object_attributes(spec: NodeSpec, display_name: ua.DataValue, shared: _SharedValues,
                       ) -> dict[ua.AttributeIds, AttributeValue]:
    """The attributes AddNodes gives an Object (in asyncua's order)."""
    ids, vt = ua.AttributeIds, ua.VariantType
    return {
        ids.NodeId: AttributeValue(ua.DataValue(ua.Variant(spec.node, vt.NodeId),
                                                StatusCode=shared.good)),
        ids.BrowseName: AttributeValue(ua.DataValue(
            ua.Variant(spec.browse_name, vt.QualifiedName), StatusCode=shared.good)),
        ids.NodeClass: AttributeValue(shared.object_class),
        ids.Description: AttributeValue(shared.text(spec.description)),
        ids.DisplayName: AttributeValue(display_name),
        ids.EventNotifier: AttributeValue(shared.event_notifier),
        ids.UserWriteMask: AttributeValue(shared.object_user_write_mask),
        ids.WriteMask: AttributeValue(shared.object_write_mask),
    }


def _variable_attributes(spec: NodeSpec, var: VariableSpec, display_name: ua.DataValue,
                         value: ua.DataValue, shared: _SharedValues,
                         ) -> dict[ua.AttributeIds, AttributeValue]:
    """The attributes AddNodes gives a Variable (in asyncua's order; it sets UserWriteMask
    twice, as Byte then as UInt32, and the UInt32 stays)."""
    ids, vt = ua.AttributeIds, ua.VariantType
    kind = shared.kind(var)
    return {
        ids.NodeId: AttributeValue(ua.DataValue(ua.Variant(spec.node, vt.NodeId),
                                                StatusCode=shared.good)),
        ids.BrowseName: AttributeValue(ua.DataValue(
            ua.Variant(spec.browse_name, vt.QualifiedName), StatusCode=shared.good)),
        ids.NodeClass: AttributeValue(shared.variable_class),
        ids.AccessLevel: AttributeValue(kind.access_level),
        ids.ArrayDimensions: AttributeValue(shared.array_dimensions),
        ids.DataType: AttributeValue(kind.data_type),
        ids.Description: AttributeValue(shared.text(spec.description)),
        ids.DisplayName: AttributeValue(display_name),
        ids.Historizing: AttributeValue(shared.historizing),
        ids.MinimumSamplingInterval: AttributeValue(shared.minimum_sampling_interval),
        ids.UserAccessLevel: AttributeValue(kind.access_level),
        ids.UserWriteMask: AttributeValue(shared.user_write_mask),
        ids.ValueRank: AttributeValue(kind.value_rank),
        ids.WriteMask: AttributeValue(shared.write_mask),
        ids.Value: AttributeValue(value),
    }


class _Target(NamedTuple):
    """What a reference shows of the node it points to."""

    node_class: Any
    browse_name: ua.QualifiedName
    display_name: ua.LocalizedText
    type_definition: ua.NodeId


class _Targets:
    """References from a new node to its parent and its type definition. The target's class,
    names and type definition are read the way asyncua's ``_add_reference_no_check`` reads
    them, once for each target: a batch does not change any of them."""

    def __init__(self, aspace: AddressSpace) -> None:
        self._aspace = aspace
        self._known: dict[ua.NodeId, _Target] = {}
        self._no_type_definition = ua.ExpandedNodeId()  # ReferenceDescription's default

    def reference(self, reference_type: ua.NodeId, forward: bool, target: ua.NodeId,
                  ) -> ua.ReferenceDescription:
        seen = self._known.get(target)
        if seen is None:
            seen = self._known[target] = self._read(target)
        return ua.ReferenceDescription(
            ReferenceTypeId=reference_type, IsForward=forward, NodeId=target,
            BrowseName=seen.browse_name, DisplayName=seen.display_name,
            NodeClass=seen.node_class, TypeDefinition=seen.type_definition)

    def _read(self, target: ua.NodeId) -> _Target:
        node_class = self._value(target, ua.AttributeIds.NodeClass)
        type_definition = self._no_type_definition
        if node_class in (ua.NodeClass.Object, ua.NodeClass.Variable):
            type_definition = next(
                (r.NodeId for r in self._aspace[target].references
                 if r.IsForward and r.ReferenceTypeId == HAS_TYPE_DEFINITION),
                type_definition)
        # asyncua keeps the reference's default name when the target's is empty
        return _Target(node_class,
                       self._value(target, ua.AttributeIds.BrowseName) or ua.QualifiedName(),
                       self._value(target, ua.AttributeIds.DisplayName) or ua.LocalizedText(),
                       type_definition)

    def _value(self, node: ua.NodeId, attribute: ua.AttributeIds) -> Any:
        value = self._aspace.read_attribute_value(node, attribute).Value
        return value.Value if value is not None else None
