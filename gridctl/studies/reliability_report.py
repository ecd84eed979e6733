"""The report of a reliability study: one JSON-ready summary and a convergence plot (PNG)."""

from __future__ import annotations

from pathlib import Path

from gridctl.studies.reliability import ReliabilityStudy
from gridctl.studies.reliability_assumptions import ReliabilityAssumptions

__all__ = ["SHANGHAI_CORE_ASAI_PCT", "study_summary", "write_convergence_plot"]

# State Grid Shanghai, core urban grid, 2020 (chinapower.com.cn, 2020-12-22; GRID.md)
SHANGHAI_CORE_ASAI_PCT = 99.9991


def study_summary(study: ReliabilityStudy, table: ReliabilityAssumptions, *, model: str,
                  scenario: str | None, automations: tuple[str, ...]) -> dict:
    """What the command prints with --json and writes as reliability.json."""
    variants = {v: f for v, f in study.figures.items() if v.split("/")[1] in automations}
    overall = {}
    for v, f in variants.items():
        a = f["all"]
        overall[v] = {k: a[k] for k in ("saifi_per_year", "saidi_min_per_year", "caidi_min",
                                        "asai_pct", "maifi_per_year", "ens_kwh_per_year")}
        overall[v]["by_element_kind"] = a.get("by_element_kind", {})
        overall[v]["asai_pct_shanghai_core_2020"] = SHANGHAI_CORE_ASAI_PCT
        overall[v]["meets_shanghai_core"] = a["asai_pct"][0] >= SHANGHAI_CORE_ASAI_PCT
    return {
        "model": model,
        "scenario": scenario,
        "years": study.years,
        "study_key": study.study_key,
        "designs": study.designs,
        "single_ring_opened": list(study.opened_for_single_ring),
        "single_ring_rule": "at each switching-station section only the shortest backbone cable "
                            "stays closed; the others are opened at the station end (stand-by)",
        "intervals": "[mean, low, high]: 95 % over the simulated years (normal approximation)",
        "overall": overall,
        "by_class": {v: {c: {k: x for k, x in fig.items()
                             if k not in ("convergence", "by_element_kind")}
                         for c, fig in f.items()} for v, f in variants.items()},
        "elements": {"count": len(study.elements),
                     "failures_per_year": sum(e.rate_per_year for e in study.elements),
                     "by_kind": _by_kind(study)},
        "plans_made": study.plans_made,
        "plans_wall_s": round(study.plans_wall_s, 2),
        "years_wall_s": round(study.years_wall_s, 2),
        "years_resumed": study.years_resumed,
        "assumptions": table.to_dict(),
        "notes": list(study.notes),
    }


def _by_kind(study: ReliabilityStudy) -> dict:
    out: dict[str, dict] = {}
    for e in study.elements:
        row = out.setdefault(e.kind, {"count": 0, "failures_per_year": 0.0})
        row["count"] += 1
        row["failures_per_year"] += e.rate_per_year
    return out


def write_convergence_plot(study: ReliabilityStudy, path: Path,
                           automations: tuple[str, ...]) -> Path:
    """Running means of SAIFI and SAIDI over the simulated years, one line per variant."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for variant, f in study.figures.items():
        if variant.split("/")[1] not in automations:
            continue
        conv = f["all"]["convergence"]
        years = np.arange(1, len(conv["saifi"]) + 1)
        # the derivative dashed: where the two designs agree its line lies on the other
        style = "--" if variant.startswith("single_ring") else "-"
        axes[0].plot(years, conv["saifi"], style, label=variant)
        axes[1].plot(years, conv["saidi_min"], style, label=variant)
    limit_min = (1 - SHANGHAI_CORE_ASAI_PCT / 100) * 525_600
    axes[1].axhline(limit_min, color="grey", linestyle="--",
                    label=f"Shanghai core 2020 ({SHANGHAI_CORE_ASAI_PCT} %)")
    axes[0].set_ylabel("SAIFI per customer-year, running mean")
    axes[1].set_ylabel("SAIDI, min per customer-year, running mean")
    for ax in axes:
        ax.set_xlabel("simulated years")
        ax.legend(fontsize=7)
    fig.suptitle("Monte Carlo reliability: convergence")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
