"""A node of the field's address space as much as an ``AddNodesItem`` says of it: what
:mod:`hil_sim.address_space` builds and both ways of adding nodes take (asyncua's AddNodes
service, and the fast path of :mod:`hil_sim.node_insertion`)."""

from __future__ import annotations

from typing import NamedTuple

from asyncua import ua

__all__ = [
    "HAS_PROPERTY",
    "HAS_TYPE_DEFINITION",
    "OBJECT_DEFAULTS",
    "VARIABLE_DEFAULTS",
    "NodeSpec",
    "VariableSpec",
]

HAS_PROPERTY = ua.NodeId(ua.ObjectIds.HasProperty)
HAS_TYPE_DEFINITION = ua.NodeId(ua.ObjectIds.HasTypeDefinition)

# The attribute values AddNodes takes from the defaults of asyncua's attribute structures.
# They are read from those defaults here, so that they follow asyncua.
OBJECT_DEFAULTS = ua.ObjectAttributes()
VARIABLE_DEFAULTS = ua.VariableAttributes()


class VariableSpec(NamedTuple):
    """What a Variable node has beyond an Object's attributes."""

    data_type: ua.NodeId
    value_rank: int
    access: int
    value: ua.Variant


class NodeSpec(NamedTuple):
    """One node to add, as much as an ``AddNodesItem`` of it says (NamedTuple: cheap to make)."""

    node: ua.NodeId
    browse_name: ua.QualifiedName
    parent: ua.NodeId
    reference: ua.NodeId  # the reference type from the parent
    type_definition: ua.NodeId
    display_name: str
    description: str | None  # None: no description given (AddNodes then stores Text=None)
    variable: VariableSpec | None = None  # None: an Object

    @property
    def node_class(self) -> ua.NodeClass:
        return ua.NodeClass.Object if self.variable is None else ua.NodeClass.Variable
