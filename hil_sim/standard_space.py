"""The OPC UA standard address space, filled once per process and copied for each further server.

asyncua fills the standard namespace (about 6,200 nodes) node by node through its node
management service at every ``Server.init``: a second or more on these machines, the largest
part of a simulator's start-up. The content is the same for every server, so the simulator
fills it once per process, keeps that fill, and gives every further server a copy of its own
before asyncua goes on with its init (address space fixes, server nodes, history): new node
records, new attribute holders (value callbacks and subscriptions are per server), new
references (asyncua renames back-references in place when a node's name is written), and new
list values (a list value is the only kind the server changes in place, the namespace array
for one); node ids and scalar values are immutable in use and shared. A tenth of the fill's
time.

Uses asyncua internals (``NodeData``, ``AttributeValue``, ``AddressSpace._nodes`` and
``InternalServer.load_standard_address_space``), so asyncua is pinned in ``pyproject.toml``;
``tests/test_sim_server.py`` checks that a copied server serves the standard nodes as a
filled one does and that servers do not share state.
"""

from __future__ import annotations

import copy
import dataclasses
import threading
from pathlib import Path

from asyncua import Server, ua
from asyncua.server.address_space import AttributeValue, NodeData

__all__ = ["init_server"]

_template: dict[ua.NodeId, NodeData] | None = None  # the process's first fill, never served
_lock = threading.Lock()


async def init_server(server: Server) -> None:
    """``await server.init()`` with the standard address space copied when this process has
    filled one before."""
    iserver = server.iserver
    fill = iserver.load_standard_address_space

    async def load_standard_address_space(shelf_file: Path | None = None) -> None:
        global _template
        with _lock:
            template = _template
        if template is not None:
            iserver.aspace._nodes = _copy(template)
            return
        await fill(shelf_file)
        copied = _copy(iserver.aspace._nodes)  # before anything is bound to or changes them
        with _lock:
            _template = _template or copied

    iserver.load_standard_address_space = load_standard_address_space  # type: ignore[method-assign]
    await server.init()


def _copy(nodes: dict[ua.NodeId, NodeData]) -> dict[ua.NodeId, NodeData]:
    out: dict[ua.NodeId, NodeData] = {}
    for nodeid, data in nodes.items():
        node = NodeData(nodeid)
        node.attributes = {
            attribute: AttributeValue(_own_list(held.value))
            for attribute, held in data.attributes.items()
        }
        # asyncua renames a node's back-references in place when its name is written
        node.references = [copy.copy(ref) for ref in data.references]
        node.call = data.call
        out[nodeid] = node
    return out


def _own_list(value: ua.DataValue | None) -> ua.DataValue | None:
    variant = value.Value if value is not None else None
    if variant is None or not isinstance(variant.Value, list):
        return value
    return dataclasses.replace(value, Value=dataclasses.replace(variant, Value=list(variant.Value)))
