"""Radiality of a switching graph: the test, the count, the enumeration, loops and chains.

A configuration (a closed flag per switchable branch) is radial when the closed branches form a
spanning tree of the areas (see :mod:`~controllers.reconfiguration.graph`): every area fed, by
exactly one path. Counted by the matrix-tree theorem, enumerated block by block.
"""

from __future__ import annotations

import itertools
import math

import networkx as nx
import numpy as np

from controllers.reconfiguration.records import SUPPLY_AREA, SwitchingGraph

__all__ = [
    "TooManyConfigurations",
    "branch_chains",
    "bridge_branches",
    "enumerate_radial_configurations",
    "fundamental_loops",
    "is_radial_configuration",
    "radial_configuration_count",
    "tree_path",
]

# subsets × XOR passes of the block enumeration: about a second of numpy work
_MAX_SUBSET_WORK = 200_000_000


class TooManyConfigurations(RuntimeError):
    """Exhaustive enumeration would exceed the limit the caller set."""


def is_radial_configuration(graph: SwitchingGraph, closed: np.ndarray) -> bool:
    """True if the closed branches form a spanning tree of the areas (every area fed once)."""
    closed = np.asarray(closed, dtype=bool)
    if int(closed.sum()) != graph.n_areas - 1:
        return False
    parent = list(range(graph.n_areas))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for branch, on in zip(graph.branches, closed, strict=True):
        if not on:
            continue
        ra, rb = root(branch.area_a), root(branch.area_b)
        if ra == rb:
            return False
        parent[ra] = rb
    return True


def radial_configuration_count(graph: SwitchingGraph) -> float:
    """The number of radial configurations (spanning trees), by Kirchhoff's matrix-tree theorem.

    Exact as an integer while below 2**53; a float estimate above.
    """
    n = graph.n_areas
    if n <= 1:
        return 1.0
    laplacian = np.zeros((n, n))
    for b in graph.branches:
        laplacian[b.area_a, b.area_a] += 1
        laplacian[b.area_b, b.area_b] += 1
        laplacian[b.area_a, b.area_b] -= 1
        laplacian[b.area_b, b.area_a] -= 1
    sign, logdet = np.linalg.slogdet(laplacian[1:, 1:])
    if sign <= 0:
        return 0.0
    count = math.exp(logdet)
    return float(round(count)) if count < 2.0**53 else count


def enumerate_radial_configurations(graph: SwitchingGraph, *, limit: int) -> np.ndarray:
    """Every radial configuration, as a (configurations, branches) array of closed flags.

    The graph is split into blocks (biconnected parts): a spanning tree is a spanning tree of
    every block, so the configurations are the product of each block's. In a block with ``k``
    loops, the ``k`` open branches leave a tree exactly when their columns of the fundamental
    loop matrix are independent over GF(2) (they then form a basis of the bond matroid), which
    is tested for all k-subsets at once. Raises ``TooManyConfigurations`` above ``limit``.
    """
    count = radial_configuration_count(graph)
    if count > limit:
        raise TooManyConfigurations(f"{count:.3g} radial configurations, limit {limit}")
    per_block = [(members, _block_open_sets(graph, members)) for members in _blocks(graph)]
    total = math.prod(len(open_sets) for _, open_sets in per_block)
    closed = np.ones((total, len(graph.branches)), dtype=bool)
    repeat = total
    for members, open_sets in per_block:
        # Cartesian product: each block's choices vary at its own stride
        repeat //= len(open_sets)
        tile = total // (repeat * len(open_sets))
        chosen = np.tile(np.repeat(open_sets, repeat, axis=0), (tile, 1))
        for j, branch in enumerate(members):
            closed[:, branch] &= ~chosen[:, j]
    return closed


def _blocks(graph: SwitchingGraph) -> list[list[int]]:
    """Branch indices of every biconnected block with at least one loop."""
    simple = nx.Graph()
    pairs: dict[tuple[int, int], list[int]] = {}
    for i, b in enumerate(graph.branches):
        key = (min(b.area_a, b.area_b), max(b.area_a, b.area_b))
        pairs.setdefault(key, []).append(i)
        simple.add_edge(*key)
    blocks: list[list[int]] = []
    for edges in nx.biconnected_component_edges(simple):
        members = sorted(i for u, v in edges for i in pairs[(min(u, v), max(u, v))])
        nodes = {a for u, v in edges for a in (u, v)}
        if len(members) > len(nodes) - 1:
            blocks.append(members)
    return blocks


def _block_open_sets(graph: SwitchingGraph, members: list[int]) -> np.ndarray:
    """(choices, len(members)) bool: which members are open, for each spanning tree of a block.

    Branches in series (a chain through areas that join nothing else) lie in the same loops, so
    their loop-matrix columns are equal, and two of them are never open together. The test runs
    on the distinct columns, each chosen subset then stands for every way of taking one branch
    of each of its columns; rows come in the lexicographic order of the open members.
    """
    columns, loops = _loop_columns(graph, members)
    m = len(members)
    distinct, class_of = np.unique(columns, return_inverse=True)
    n_subsets = math.comb(len(distinct), loops)
    if n_subsets * (2**loops) > _MAX_SUBSET_WORK:
        raise TooManyConfigurations(
            f"a block of {m} branches and {loops} loops has {n_subsets:.3g} subsets to test"
        )
    subsets = np.fromiter(
        itertools.chain.from_iterable(itertools.combinations(range(len(distinct)), loops)),
        dtype=np.int32,
        count=n_subsets * loops,
    ).reshape(n_subsets, loops)
    picked = distinct[subsets]
    independent = np.ones(n_subsets, dtype=bool)
    xor = np.zeros(n_subsets, dtype=np.int64)
    # every non-empty subset of the chosen columns must XOR to non-zero; visit them in Gray order
    for t in range(1, 2**loops):
        xor ^= picked[:, (t & -t).bit_length() - 1]
        independent &= xor != 0
    members_of = [np.flatnonzero(class_of == c) for c in range(len(distinct))]
    expanded = [
        np.stack([g.ravel() for g in np.meshgrid(*(members_of[c] for c in chosen),
                                                  indexing="ij")], axis=1)
        for chosen in subsets[independent]
    ]
    chosen_members = (
        np.concatenate(expanded) if expanded else np.zeros((0, loops), dtype=np.int64)
    )
    chosen_members.sort(axis=1)
    chosen_members = chosen_members[np.lexsort(chosen_members.T[::-1])]
    open_sets = np.zeros((len(chosen_members), m), dtype=bool)
    np.put_along_axis(open_sets, chosen_members, True, axis=1)
    return open_sets


def _loop_columns(graph: SwitchingGraph, members: list[int]) -> tuple[np.ndarray, int]:
    """Fundamental loop matrix columns of a block as bit masks, and the number of loops."""
    multi = nx.MultiGraph()
    for j, i in enumerate(members):
        b = graph.branches[i]
        multi.add_edge(b.area_a, b.area_b, key=j)
    tree = nx.MultiGraph()
    start = next(iter(multi.nodes))
    tree.add_node(start)
    for u, v, key in nx.edge_bfs(multi, start):
        if v not in tree:
            tree.add_edge(u, v, key=key)
    in_tree = {key for _, _, key in tree.edges(keys=True)}
    columns = np.zeros(len(members), dtype=np.int64)
    chords = [j for j in range(len(members)) if j not in in_tree]
    for bit, chord in enumerate(chords):
        b = graph.branches[members[chord]]
        columns[chord] |= 1 << bit
        for key in _path_keys(tree, b.area_a, b.area_b):
            columns[key] |= 1 << bit
    return columns, len(chords)


def _path_keys(tree: nx.MultiGraph, a: int, b: int) -> list[int]:
    nodes = nx.shortest_path(tree, a, b)
    return [next(iter(tree[u][v])) for u, v in itertools.pairwise(nodes)]


def tree_path(graph: SwitchingGraph, closed: np.ndarray, branch: int) -> list[int]:
    """The closed branches joining the two ends of ``branch`` in a radial configuration.

    With ``branch`` closed in its place, they and it form the loop a branch exchange opens.
    """
    tree = nx.MultiGraph()
    tree.add_nodes_from(range(graph.n_areas))
    for i, (b, on) in enumerate(zip(graph.branches, closed, strict=True)):
        if on:
            tree.add_edge(b.area_a, b.area_b, key=i)
    b = graph.branches[branch]
    return _path_keys(tree, b.area_a, b.area_b)


def bridge_branches(graph: SwitchingGraph) -> list[int]:
    """Branches in no loop: every radial configuration closes them."""
    in_blocks = {i for block in _blocks(graph) for i in block}
    return [i for i in range(len(graph.branches)) if i not in in_blocks]


def fundamental_loops(graph: SwitchingGraph) -> list[list[int]]:
    """One loop per independent loop, as branch indices (a cycle basis of the area graph)."""
    loops = []
    for members in _blocks(graph):
        columns, k = _loop_columns(graph, members)
        for bit in range(k):
            loops.append([members[j] for j in range(len(members)) if columns[j] >> bit & 1])
    return loops


def branch_chains(graph: SwitchingGraph) -> list[list[int]]:
    """Maximal runs of branches through areas that touch exactly two branches (not the supply).

    Opening two branches of one run would leave the areas between them unfed.
    """
    touching: dict[int, list[int]] = {}
    for i, b in enumerate(graph.branches):
        touching.setdefault(b.area_a, []).append(i)
        touching.setdefault(b.area_b, []).append(i)
    through = {a for a, bs in touching.items() if len(bs) == 2 and a != SUPPLY_AREA}
    parent = list(range(len(graph.branches)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for area in through:
        first, second = touching[area]
        parent[root(first)] = root(second)
    runs: dict[int, list[int]] = {}
    for i in range(len(graph.branches)):
        runs.setdefault(root(i), []).append(i)
    return list(runs.values())
