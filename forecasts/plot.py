"""A one-page PNG of a bundle: PV and load, EV demand, price and temperature."""

from __future__ import annotations

from pathlib import Path

from forecasts.bundle import ForecastBundle


def plot_bundle(bundle: ForecastBundle, path: str | Path, *, title: str = "") -> Path:
    """Write a PNG of total PV, load, uncontrolled EV demand, price and temperature."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x = bundle.index.tz_localize(None)
    fig, axes = plt.subplots(3, 1, figsize=(11, 8), sharex=True, constrained_layout=True)
    ax = axes[0]
    ax.plot(x, bundle.load_p_mw.sum(axis=1), label="load", color="tab:blue")
    ax.plot(x, bundle.pv_p_mw.sum(axis=1), label="PV available", color="tab:orange")
    ax.set_ylabel("MW")
    ax.legend(loc="upper left")
    ax.set_title(title or f"Forecast from {bundle.start:%Y-%m-%d %H:%M} ({bundle.index.tz})")

    ax = axes[1]
    ax.plot(x, bundle.uncontrolled_ev_kw().sum(axis=1) / 1000.0, color="tab:green",
            label=f"EV uncontrolled ({len(bundle.ev_sessions)} sessions)")
    ax.set_ylabel("MW")
    ax.legend(loc="upper left")

    ax = axes[2]
    ax.step(x, bundle.price_cny_per_kwh, where="post", color="tab:red", label="import price")
    ax.set_ylabel("CNY/kWh")
    ax.legend(loc="upper left")
    twin = ax.twinx()
    twin.plot(x, bundle.temperature_c, color="tab:gray", linestyle="--", label="air temperature")
    twin.set_ylabel("°C")
    twin.legend(loc="upper right")
    ax.set_xlabel("local time")

    target = Path(path)
    fig.savefig(target, dpi=100)
    plt.close(fig)
    return target
