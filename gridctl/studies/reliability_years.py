"""Simulated years of failures and the IEEE 1366 indices they add up to.

A year is drawn from its own seed, ``numpy.random.default_rng([seed, year])``: the number of
failures of each element is Poisson with its rate, each failure falls on a day type (weekday
5/7, weekend 2/7) and an hour, uniformly, and its repair time is exponential with the element's
mean. Every design and automation mode sees the same draws (common random numbers), and a
year's figures do not depend on which worker or task drew it. Failures are taken one at a time
on the intact grid (a second failure during a repair is not modelled: the usual first-order
approximation of Billinton & Allan, fine while repair times are far shorter than the time
between failures).

A consumer off for less than the momentary threshold counts in MAIFI, otherwise in SAIFI and
SAIDI; ENS counts both, at the consumer's load in the hour of the failure.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from gridctl.studies.reliability_elements import Consumer, LoadLevels, OutageEffect

__all__ = ["AUTOMATIONS", "FIGURES", "YearInputs", "indices", "simulate_year"]

AUTOMATIONS = ("flisr", "manual")
FIGURES = ("customer_interruptions", "customer_minutes", "momentary_customer_interruptions",
           "ens_kwh")
MINUTES_PER_YEAR = 525_600.0  # 365 days; ASAI = 1 - SAIDI / this
Z_95 = 1.959964

EffectOf = Callable[[str, int, int], OutageEffect]  # (design, element position, level)


@dataclass(frozen=True)
class YearInputs:
    """What a year needs, the same for every year of a study (plain data: it goes to workers)."""

    seed: int
    designs: tuple[str, ...]
    rates_per_year: np.ndarray
    repair_h: np.ndarray
    levels: LoadLevels
    consumer_class: tuple[str, ...]
    customers: np.ndarray
    restoration_h: Mapping[str, float]  # by automation mode
    momentary_h: float
    element_kind: tuple[str, ...] = ()  # per element, for the contributions by kind

    @property
    def classes(self) -> tuple[str, ...]:
        return tuple(sorted(set(self.consumer_class)))


def simulate_year(year: int, inputs: YearInputs, effect_of: EffectOf) -> dict:
    """``{design/automation: {class: [customer interruptions, customer minutes, momentary
    customer interruptions, ENS kWh]}}`` of one year; classes include ``all``; the same four
    by the kind of element that failed under ``by_element_kind``."""
    rng = np.random.default_rng([inputs.seed, year])
    counts = rng.poisson(inputs.rates_per_year)
    classes = inputs.classes
    class_of = np.array([classes.index(c) for c in inputs.consumer_class])
    totals = {f"{d}/{a}": np.zeros((len(classes), 4)) for d in inputs.designs
              for a in AUTOMATIONS}
    kinds = tuple(sorted(set(inputs.element_kind)))
    by_kind = {v: np.zeros((len(kinds), 4)) for v in totals}
    for element in np.repeat(np.arange(len(counts)), counts):
        weekend = int(rng.random() < 2 / 7)
        hour = int(rng.integers(24))
        repair = float(rng.exponential(inputs.repair_h[element]))
        level = int(inputs.levels.level[weekend, hour])
        p_mw = inputs.levels.p_mw[weekend, hour]
        for design in inputs.designs:
            effect = effect_of(design, int(element), level)
            kind_row = np.full(len(class_of), kinds.index(inputs.element_kind[element])
                               if kinds else 0)
            for auto in AUTOMATIONS:
                back = min(inputs.restoration_h[auto], repair)
                for table, rows in ((totals, class_of), (by_kind, kind_row)):
                    if table is by_kind and not kinds:
                        continue
                    _add(table[f"{design}/{auto}"], effect.restored, back, inputs, rows, p_mw)
                    _add(table[f"{design}/{auto}"], effect.until_repair, repair, inputs, rows,
                         p_mw)
    out = {}
    for variant, table in totals.items():
        rows = {c: table[k].tolist() for k, c in enumerate(classes)}
        rows["all"] = table.sum(axis=0).tolist()
        if kinds:
            rows["by_element_kind"] = {k: by_kind[variant][n].tolist()
                                       for n, k in enumerate(kinds)}
        out[variant] = rows
    return out


def _add(table: np.ndarray, consumers: Sequence[int], hours: float, inputs: YearInputs,
         class_of: np.ndarray, p_mw: np.ndarray) -> None:
    if not consumers:
        return
    js = np.asarray(consumers, dtype=int)
    customers = inputs.customers[js]
    rows = class_of[js]
    if hours < inputs.momentary_h:
        np.add.at(table[:, 2], rows, customers)
    else:
        np.add.at(table[:, 0], rows, customers)
        np.add.at(table[:, 1], rows, customers * hours * 60.0)
    np.add.at(table[:, 3], rows, p_mw[js] * hours * 1000.0)


def indices(years: Sequence[dict], consumers: Sequence[Consumer]) -> dict:
    """SAIFI, SAIDI (min), CAIDI (min), ASAI (%), MAIFI, ENS (kWh/yr) per variant and class,
    each mean with a 95 % interval over the years (normal approximation), and the running means
    of SAIFI and SAIDI (the convergence)."""
    per_class: dict[str, int] = {}
    for c in consumers:
        per_class[c.customer_class] = per_class.get(c.customer_class, 0) + c.customers
    per_class["all"] = sum(c.customers for c in consumers)
    out: dict = {}
    for variant in years[0]:
        out[variant] = {}
        for cls, n_customers in per_class.items():
            values = np.array([y[variant][cls] for y in years])  # years x 4
            out[variant][cls] = _class_indices(values, n_customers)
        if "by_element_kind" in years[0][variant]:
            kinds = years[0][variant]["by_element_kind"]
            n_all = max(per_class["all"], 1)
            out[variant]["all"]["by_element_kind"] = {
                k: {"saifi_per_year": float(np.mean([y[variant]["by_element_kind"][k][0]
                                                     for y in years])) / n_all,
                    "saidi_min_per_year": float(np.mean([y[variant]["by_element_kind"][k][1]
                                                         for y in years])) / n_all}
                for k in kinds}
        all_rows = np.array([y[variant]["all"] for y in years])
        n = max(per_class["all"], 1)
        count = np.arange(1, len(years) + 1)
        out[variant]["all"]["convergence"] = {
            "saifi": (np.cumsum(all_rows[:, 0]) / n / count).tolist(),
            "saidi_min": (np.cumsum(all_rows[:, 1]) / n / count).tolist(),
        }
    return out


def _class_indices(values: np.ndarray, n_customers: int) -> dict:
    years = len(values)
    ens = _mean_interval(values[:, 3], years)
    if n_customers == 0:  # EV charging: energy only
        return {"customers": 0, "ens_kwh_per_year": ens}
    saifi = _mean_interval(values[:, 0] / n_customers, years)
    saidi = _mean_interval(values[:, 1] / n_customers, years)
    maifi = _mean_interval(values[:, 2] / n_customers, years)
    asai = [100.0 * (1.0 - v / MINUTES_PER_YEAR) for v in (saidi[0], saidi[2], saidi[1])]
    return {
        "customers": n_customers,
        "saifi_per_year": saifi,
        "saidi_min_per_year": saidi,
        "caidi_min": saidi[0] / saifi[0] if saifi[0] > 0 else None,
        "asai_pct": asai,
        "maifi_per_year": maifi,
        "ens_kwh_per_year": ens,
    }


def _mean_interval(sample: np.ndarray, years: int) -> list[float]:
    """[mean, low, high] of a yearly figure (95 %, normal approximation)."""
    mean = float(sample.mean())
    half = Z_95 * float(sample.std(ddof=1)) / np.sqrt(years) if years > 1 else float("inf")
    return [mean, float(mean - half), float(mean + half)]
