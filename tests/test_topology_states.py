"""SwitchStateGraphs: the bus graph of many switch states from tables read once."""

from __future__ import annotations

import copy

import networkx as nx
import numpy as np

from network_models.topology import SwitchStateGraphs, bus_graph, energised_buses, source_buses


def _states(net, count: int) -> np.ndarray:
    rng = np.random.default_rng(3)
    normal = net.switch["closed"].to_numpy(dtype=bool)
    states = np.repeat(normal[None], count, axis=0)
    for s in range(1, count):
        flip = rng.choice(len(normal), 4, replace=False)
        states[s, flip] = ~states[s, flip]
    return states


def test_each_state_gives_the_bus_graph_of_the_net_switched_so_edges_in_order(jiuke):
    net = jiuke.copy_net()
    net.trafo.loc[net.trafo.index[0], "in_service"] = False  # flags read when it is made
    graphs = SwitchStateGraphs(net)
    sources = source_buses(net)
    for state in _states(net, 12):
        switched = copy.deepcopy(net)
        switched.switch["closed"] = state
        reference = bus_graph(switched)
        graph = graphs.graph(state)
        assert list(graph.nodes) == list(reference.nodes)
        assert list(graph.edges(keys=True)) == list(reference.edges(keys=True))
        assert graphs.reached(state, sources) == energised_buses(switched)


def test_components_among_some_buses_follow_networkx_order(jiuke):
    net = jiuke.copy_net()
    graphs = SwitchStateGraphs(net)
    state = _states(net, 5)[4]
    buses = {b for b in net.bus.index if b % 3}  # a set, iterated as networkx would
    reference = nx.Graph()
    reference.add_nodes_from(buses)
    reference.add_edges_from(
        (u, v) for u, v in graphs.graph(state).edges() if u in buses and v in buses
    )
    expected = [frozenset(c) for c in nx.connected_components(reference)]
    assert graphs.components(state, buses) == expected


def test_the_adjacency_is_the_graphs_neighbours_and_edge_keys_in_order(jiuke):
    net = jiuke.copy_net()
    graphs = SwitchStateGraphs(net)
    for state in _states(net, 6):
        graph, adjacency = graphs.graph(state), graphs.adjacency(state)
        assert list(adjacency.adj) == list(graph.adj)
        for bus, neighbours in graph.adj.items():
            assert list(adjacency.adj[bus]) == list(neighbours)
            for other, keys in neighbours.items():
                assert list(adjacency.adj[bus][other]) == list(keys)
