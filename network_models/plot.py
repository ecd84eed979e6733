"""One-line diagram of a grid model with switch states, drawn with matplotlib."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from network_models.model import GridModel

_ROLE_STYLE = {  # line role -> (colour, width)
    "backbone": ("#b2182b", 2.4),
    "feeder": ("#2166ac", 1.4),
    "service": ("#4d9221", 1.2),
}


def bus_positions(model: GridModel) -> dict[int, tuple[float, float]]:
    """Bus index -> (x, y) from the net's geodata, or a spring layout where there is none."""
    net = model.net
    pos: dict[int, tuple[float, float]] = {}
    if "geo" in net.bus:
        for i, g in net.bus.geo.items():
            if isinstance(g, str) and g:
                x, y = json.loads(g)["coordinates"][:2]
                pos[int(i)] = (float(x), float(y))
    if len(pos) < len(net.bus):
        import networkx as nx
        import pandapower.topology as top

        graph = top.create_nxgraph(net, respect_switches=False)
        fixed = [b for b in pos if b in graph]
        layout = nx.spring_layout(graph, pos=pos or None, fixed=fixed or None, seed=1)
        for b in net.bus.index:
            if int(b) not in pos:
                x, y = layout[b]
                pos[int(b)] = (float(x), float(y))
    return pos


def plot_one_line(model: GridModel, out: str | Path, *, title: str | None = None) -> Path:
    """Draw buses, lines (by role), transformers and switches (open = hollow) to a PNG file."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    net = model.net
    pos = bus_positions(model)
    fig, ax = plt.subplots(figsize=(13, 9), dpi=110)
    for i, row in net.line.iterrows():
        role = net.line.at[i, "role"] if "role" in net.line else "feeder"
        colour, width = _ROLE_STYLE.get(str(role), ("#555555", 1.0))
        (x0, y0), (x1, y1) = pos[int(row.from_bus)], pos[int(row.to_bus)]
        style = "-" if row.in_service else ":"
        ax.plot([x0, x1], [y0, y1], style, color=colour, lw=width, zorder=1)
    for _, row in net.trafo.iterrows():
        (x0, y0), (x1, y1) = pos[int(row.hv_bus)], pos[int(row.lv_bus)]
        ax.plot([x0, x1], [y0, y1], "-", color="#762a83", lw=1.0, zorder=1)
    for _, sw in net.switch.iterrows():
        bx, by = pos[int(sw.bus)]
        if sw.et == "l":
            line = net.line.loc[sw.element]
            other = int(line.to_bus) if int(line.from_bus) == int(sw.bus) else int(line.from_bus)
            ox, oy = pos[other]
            x, y = bx + 0.18 * (ox - bx), by + 0.18 * (oy - by)
        elif sw.et == "b":
            ox, oy = pos[int(sw.element)]
            x, y = (bx + ox) / 2, (by + oy) / 2
            ax.plot([bx, ox], [by, oy], "-" if sw.closed else ":", color="#333333", lw=1.0)
        else:
            x, y = bx, by
        ax.scatter(
            [x],
            [y],
            s=22,
            marker="s",
            zorder=3,
            facecolors="#1a1a1a" if sw.closed else "white",
            edgecolors="#1a1a1a",
        )
    vn = net.bus.vn_kv.to_numpy()
    xy = np.array([pos[int(b)] for b in net.bus.index])
    sizes = np.where(vn >= 35, 90, np.where(vn >= 1, 22, 8))
    ax.scatter(xy[:, 0], xy[:, 1], s=sizes, c=np.where(vn >= 1, "#222222", "#999999"), zorder=2)
    labelled = [(s.name, s.sections) for s in model.substations]
    labelled += [(s.name, s.sections) for s in model.switching_stations]
    labelled += [(m.name, m.buses) for m in model.microgrids]
    for name, buses in labelled:
        pts = np.array([pos[model.bus_index(b)] for b in buses])
        cx, cy = pts.mean(axis=0)
        ax.annotate(
            name,
            (cx, cy),
            textcoords="offset points",
            xytext=(0, 10),
            ha="center",
            fontsize=10,
            fontweight="bold",
        )
    handles = [plt.Line2D([], [], color=c, lw=w, label=r) for r, (c, w) in _ROLE_STYLE.items()]
    handles += [
        plt.Line2D([], [], color="#762a83", lw=1.0, label="transformer"),
        plt.Line2D([], [], ls="", marker="s", color="#1a1a1a", label="switch closed"),
        plt.Line2D(
            [], [], ls="", marker="s", markerfacecolor="white", color="#1a1a1a", label="switch open"
        ),
    ]
    ax.legend(handles=handles, loc="lower right", fontsize=8)
    ax.set_title(title or f"{model.name}: one-line diagram ({len(net.bus)} buses)")
    ax.set_aspect("equal", adjustable="datalim")
    ax.set_xlabel("x (km, schematic)")
    ax.set_ylabel("y (km, schematic)")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp.png")
    fig.savefig(tmp, bbox_inches="tight")
    plt.close(fig)
    tmp.replace(out)
    return out
