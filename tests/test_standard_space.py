"""The standard address space copied from the process's first fill: the same nodes as asyncua's
own fill, and no state shared between servers."""

from __future__ import annotations

import datetime as dt

import pytest
from asyncua import Client, Server, ua

from hil_sim import standard_space
from hil_sim.standard_space import init_server

pytestmark = pytest.mark.asyncio


def _nodes(server: Server):
    return server.iserver.aspace._nodes


def _value(held):
    """The value, but not the clock: times and the structures that hold them."""
    dv = held.value
    if dv is None or dv.Value is None:
        return None
    value = dv.Value.Value
    if isinstance(value, dt.datetime | ua.ServerStatusDataType | ua.BuildInfo):
        return None
    return dv.Value.VariantType, value


async def _copied() -> Server:
    await init_server(Server())  # the process's first fill, if no server has filled one yet
    assert standard_space._template is not None
    server = Server()
    await init_server(server)
    return server


async def test_a_copied_standard_address_space_is_the_one_asyncua_fills():
    filled = Server()
    await filled.init()
    copied = await _copied()
    a, b = _nodes(filled), _nodes(copied)
    assert len(a) > 6000 and a.keys() == b.keys()
    for nodeid, node in a.items():
        other = b[nodeid]
        assert node.attributes.keys() == other.attributes.keys(), nodeid
        for attribute, held in node.attributes.items():
            assert _value(held) == _value(other.attributes[attribute]), (nodeid, attribute)
        assert node.references == other.references, nodeid
        assert (node.call is None) == (other.call is None), nodeid


async def test_servers_with_copied_address_spaces_share_no_state():
    one, two = await _copied(), await _copied()
    for nodeid, node in _nodes(one).items():
        other = _nodes(two)[nodeid]
        assert node is not other and node.references is not other.references
        for attribute, held in node.attributes.items():
            assert held is not other.attributes[attribute]  # callbacks, subscriptions: own
    # a namespace registered in one server (its namespace array changed in place) is its own
    await one.register_namespace("urn:gridctl:test:one")
    names_one = await one.get_namespace_array()
    names_two = await two.get_namespace_array()
    assert "urn:gridctl:test:one" in names_one and "urn:gridctl:test:one" not in names_two
    three = await _copied()
    assert "urn:gridctl:test:one" not in await three.get_namespace_array()
    # a node renamed in one (asyncua renames the references to it in place) keeps its name
    # in the other
    objects = ua.NodeId(ua.ObjectIds.ObjectsFolder)
    renamed = ua.LocalizedText("Renamed in one")
    await one.get_node(objects).write_attribute(
        ua.AttributeIds.DisplayName, ua.DataValue(ua.Variant(renamed)))
    root = ua.NodeId(ua.ObjectIds.RootFolder)

    def name_seen_from_root(server):
        return next(r.DisplayName for r in _nodes(server)[root].references if r.NodeId == objects)

    assert name_seen_from_root(one) == renamed
    assert name_seen_from_root(two).Text == "Objects"
    assert name_seen_from_root(await _copied()).Text == "Objects"
    # and a value written in one is not seen in the other
    name = ua.NodeId(ua.ObjectIds.Server_ServerCapabilities_MaxBrowseContinuationPoints)
    await one.get_node(name).write_value(ua.Variant(7, ua.VariantType.UInt16))
    assert await two.get_node(name).read_value() != 7


async def test_a_server_on_a_copied_address_space_serves_clients():
    server = await _copied()
    server.set_endpoint("opc.tcp://127.0.0.1:0/gridctl-test")
    await server.start()
    try:
        port = server.bserver.port
        async with Client(f"opc.tcp://127.0.0.1:{port}/gridctl-test", timeout=10) as client:
            names = await client.get_namespace_array()
            assert names[0] == "http://opcfoundation.org/UA/"
            state = client.get_node(ua.NodeId(ua.ObjectIds.Server_ServerStatus_State))
            assert await state.read_value() == ua.ServerState.Running
            objects = await client.nodes.objects.get_children()
            assert client.get_node(ua.NodeId(ua.ObjectIds.Server)) in objects
    finally:
        await server.stop()
