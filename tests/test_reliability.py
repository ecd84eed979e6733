"""Monte Carlo reliability: against closed-form sums on a small feeder, deterministic for any
number of workers, resumable, plan cache equal to planning each failure.

Dask runs in this process (a LocalCluster of threads on 127.0.0.1). The assumption tables here
inflate failure rates so that a few hundred years give tight intervals; the shipped table is
only read for its shape.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import yaml
from reliability_feeder import CABLE_KM, CUSTOMERS, feeder_file

from gridctl.cli import main
from gridctl.studies.reliability import ReliabilitySettings, run_reliability
from gridctl.studies.reliability_assumptions import SHIPPED_ASSUMPTIONS, read_assumptions
from network_models import load_model
from network_models.errors import InputError

RATES = {"cable_per_km_year": 1.0, "cable_repair_h": 5.0, "joint_per_unit_year": 0.0,
         "rmu_per_unit_year": 0.2, "rmu_repair_h": 4.0,
         "distribution_transformer_per_unit_year": 0.3,
         "distribution_transformer_replacement_h": 10.0,
         "substation_transformer_per_unit_year": 0.0}
RMUS = list(CUSTOMERS)
N = sum(CUSTOMERS.values())


def table_file(folder: Path, **values: float) -> Path:
    data = yaml.safe_load(SHIPPED_ASSUMPTIONS.read_text(encoding="utf-8"))
    for group in ("failures", "switching", "loads"):
        for key, entry in data[group].items():
            if key in values:
                entry["value"] = values[key]
    path = folder / "rates.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def client():
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False, protocol="tcp",
                      host="127.0.0.1",
                      dashboard_address="127.0.0.1:0") as cluster, Client(cluster) as c:
        yield c


def study(model, table, client, **settings):
    kw = {"years": 300, "seed": 7, "load_levels": 1, "years_per_task": 20} | settings
    return run_reliability(model, table, ReliabilitySettings(**kw), client=client)


def inside(interval: list[float], value: float) -> bool:
    return interval[1] <= value <= interval[2]


def test_radial_feeder_without_alternative_supply_matches_the_sums_of_rates_and_durations(
        tmp_path, client):
    model = load_model(feeder_file(tmp_path, alternative=False))
    table = read_assumptions(table_file(tmp_path, **RATES, momentary_threshold_min=0))
    switch_h = table.manual_restoration_h
    saifi = saidi_h = 0.0
    # a fault on cable F_k (F_0 leaves the substation): the RMUs before it are fed again once
    # it is isolated (crews, 1 h), the rest wait for the repair; an RMU fault: likewise
    for k, km in enumerate(list(CABLE_KM.values())[:3]):
        lam, r = RATES["cable_per_km_year"] * km, RATES["cable_repair_h"]
        for j, rmu in enumerate(RMUS):
            saifi += lam * CUSTOMERS[rmu]
            back = r * (1 - math.exp(-switch_h / r))  # E[min(switching, repair)]
            saidi_h += lam * CUSTOMERS[rmu] * (back if j < k else r)
    for i, rmu in enumerate(RMUS):
        lam, r = RATES["rmu_per_unit_year"], RATES["rmu_repair_h"]
        for j, other in enumerate(RMUS):
            saifi += lam * CUSTOMERS[other]
            back = r * (1 - math.exp(-switch_h / r))
            saidi_h += lam * CUSTOMERS[other] * (back if j < i else r)
        lam, r = (RATES["distribution_transformer_per_unit_year"],
                  RATES["distribution_transformer_replacement_h"])
        saifi += lam * CUSTOMERS[rmu]
        saidi_h += lam * CUSTOMERS[rmu] * r
    result = study(model, table, client).figures["as_built/manual"]["all"]
    assert inside(result["saifi_per_year"], saifi / N)
    assert inside(result["saidi_min_per_year"], saidi_h * 60 / N)


def test_an_open_loop_with_flisr_leaves_only_the_failed_rmu_and_transformer_sustained(
        tmp_path, client):
    """With a normally-open point to the other section and FLISR (60 s), a cable fault is a
    momentary interruption for everyone: only an RMU's or a transformer's own customers wait for
    the repair (exponential: a repair under 3 min is momentary too)."""
    model = load_model(feeder_file(tmp_path, alternative=True))
    table = read_assumptions(table_file(tmp_path, **RATES))
    m_h = table.momentary_threshold_h
    saifi = saidi_h = maifi = 0.0
    cables_per_year = RATES["cable_per_km_year"] * sum(CABLE_KM[f"F_{k}"] for k in range(3))
    maifi += cables_per_year * N  # F_3 beyond the open point interrupts nobody
    for n in CUSTOMERS.values():
        for lam, r in ((RATES["rmu_per_unit_year"], RATES["rmu_repair_h"]),
                       (RATES["distribution_transformer_per_unit_year"],
                        RATES["distribution_transformer_replacement_h"])):
            sustained = math.exp(-m_h / r)
            saifi += lam * n * sustained
            saidi_h += lam * n * sustained * (m_h + r)  # E[X; X >= m] of an exponential
            maifi += lam * n * (1 - sustained)
        maifi += RATES["rmu_per_unit_year"] * (N - n)  # the others: back in 60 s
    result = study(model, table, client, years=400).figures
    flisr, manual = result["as_built/flisr"]["all"], result["as_built/manual"]["all"]
    assert inside(flisr["saifi_per_year"], saifi / N)
    assert inside(flisr["saidi_min_per_year"], saidi_h * 60 / N)
    assert inside(flisr["maifi_per_year"], maifi / N)
    # the same draws without automation: every cable fault is an hour off for all
    assert manual["saifi_per_year"][0] > flisr["saifi_per_year"][0] + cables_per_year * 0.9
    assert manual["saidi_min_per_year"][0] > flisr["saidi_min_per_year"][0]


def test_one_worker_and_two_workers_give_the_same_figures(tmp_path, client):
    from distributed import Client, LocalCluster

    model = load_model(feeder_file(tmp_path, alternative=True))
    table = read_assumptions(table_file(tmp_path, **RATES))
    two = study(model, table, client, years=60, years_per_task=7).figures
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, protocol="tcp",
                      host="127.0.0.1", dashboard_address="127.0.0.1:0") as cluster, \
            Client(cluster) as one_client:
        one = study(model, table, one_client, years=60, years_per_task=25).figures
    assert one == two


def test_a_study_stopped_half_way_resumes_to_the_figures_of_an_uninterrupted_one(
        tmp_path, client):
    model = load_model(feeder_file(tmp_path, alternative=True))
    table = read_assumptions(table_file(tmp_path, **RATES))
    store = tmp_path / "tasks.sqlite"
    settings = ReliabilitySettings(years=80, seed=3, load_levels=2, years_per_task=10)

    def stop_after_four(stage: str, done: int, total: int) -> None:
        if stage == "years" and done == 4:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_reliability(model, table, settings, client=client, store=store,
                        progress=stop_after_four)
    resumed = run_reliability(model, table, settings, client=client, store=store)
    whole = run_reliability(model, table, settings, client=client)
    assert resumed.plans_made == 0  # every plan was stored before the stop
    assert 40 <= resumed.years_resumed < 80
    assert resumed.figures == whole.figures
    # another seed draws other years from the same plans
    other = run_reliability(model, table, ReliabilitySettings(years=20, seed=4, load_levels=2),
                            client=client, store=store)
    assert other.plans_made == 0 and other.years_resumed == 0
    assert other.figures != whole.figures


def test_the_plan_cache_gives_the_figures_of_planning_every_failure(tmp_path, client):
    model = load_model(feeder_file(tmp_path, alternative=True))
    table = read_assumptions(table_file(tmp_path, **RATES))
    cached = study(model, table, client, years=40, load_levels=2)
    uncached = study(model, table, client, years=40, load_levels=2, plan_cache=False)
    assert cached.plans_made > 0 and uncached.plans_made == 0
    assert cached.figures == uncached.figures


def test_every_value_of_the_shipped_table_has_a_source():
    table = read_assumptions()
    assert set(table.values) == set(table.sources)
    assert all(len(s) > 10 for s in table.sources.values())


def test_a_table_without_a_rate_is_refused_naming_the_field(tmp_path):
    data = yaml.safe_load(SHIPPED_ASSUMPTIONS.read_text(encoding="utf-8"))
    del data["failures"]["rmu_per_unit_year"]
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    with pytest.raises(InputError) as err:
        read_assumptions(path)
    assert err.value.field == "failures.rmu_per_unit_year"


@pytest.mark.parametrize(("argv", "named"), [
    (["--years", "0"], "--years"),
    (["--workers", "0"], "--workers"),
    (["--automation", "remote"], "--automation"),
    (["--load-levels", "49"], "--load-levels"),
    (["--scheduler", "localhost:8786"], "--scheduler"),
    (["--store", "/nonexistent-folder/tasks.sqlite"], "--store"),
])
def test_a_bad_option_is_refused_in_one_line_naming_it(argv, named, capsys):
    assert main(["study", "reliability", *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and named in err and "Traceback" not in err


def test_a_bad_assumption_table_is_refused_in_one_line_naming_the_field(tmp_path, capsys):
    data = yaml.safe_load(SHIPPED_ASSUMPTIONS.read_text(encoding="utf-8"))
    data["switching"]["manual_travel_min"]["value"] = -5
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    assert main(["study", "reliability", "--assumptions", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "switching.manual_travel_min" in err


@pytest.mark.slow
def test_a_worker_lost_mid_study_costs_only_its_tasks(tmp_path, client):
    """Worker processes on 127.0.0.1; one is killed once two year tasks are in: the scheduler
    runs its tasks again elsewhere and the figures are those of a study without the loss."""
    import os
    import signal

    from distributed import Client, LocalCluster

    model = load_model(feeder_file(tmp_path, alternative=True))
    table = read_assumptions(table_file(tmp_path, **RATES))
    settings = ReliabilitySettings(years=60, seed=5, load_levels=1, years_per_task=2)
    killed: list[int] = []
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, protocol="tcp",
                      host="127.0.0.1", dashboard_address="127.0.0.1:0") as cluster, \
            Client(cluster) as c:
        pids = sorted(c.run(os.getpid).values())

        def kill_one(stage: str, done: int, total: int) -> None:
            if stage == "years" and done == 2 and not killed:
                os.kill(pids[0], signal.SIGKILL)
                killed.append(pids[0])

        lost = run_reliability(model, table, settings, client=c, progress=kill_one)
    whole = run_reliability(model, table, settings, client=client)
    assert killed
    assert lost.figures == whole.figures


@pytest.mark.slow
def test_on_jiuke_the_diamond_beats_its_single_ring_and_flisr_beats_manual_switching():
    """Jiuke Oasis, 200 years, one load level (minutes: every plan of both designs is made)."""
    from gridctl.studies.reliability_report import study_summary

    model = load_model("jiuke_oasis")
    table = read_assumptions()
    result = run_reliability(model, table, ReliabilitySettings(years=200, seed=11,
                                                               load_levels=1), workers=2)
    f = {v: x["all"] for v, x in result.figures.items()}

    def saidi(v: str) -> float:
        return f[v]["saidi_min_per_year"][0]

    def saifi(v: str) -> float:
        return f[v]["saifi_per_year"][0]

    assert saifi("as_built/flisr") <= saifi("as_built/manual")
    assert saidi("as_built/flisr") <= saidi("as_built/manual")
    # like for like, on the same draws: the closed-loop backbone rides through what
    # interrupts a single ring's station section
    assert saidi("as_built/flisr") < saidi("single_ring/flisr")
    assert saidi("as_built/manual") < saidi("single_ring/manual")
    assert saifi("as_built/manual") < saifi("single_ring/manual")
    assert f["single_ring/flisr"]["maifi_per_year"][0] > f["as_built/flisr"]["maifi_per_year"][0]
    summary = study_summary(result, table, model="jiuke_oasis", scenario=None,
                            automations=("flisr", "manual"))
    assert summary["overall"]["as_built/flisr"]["asai_pct_shanghai_core_2020"] == 99.9991
    assert len(summary["single_ring_opened"]) == 8


def test_the_command_writes_strict_json_and_the_convergence_plot(tmp_path, capsys):
    """The real command line, worker processes of a LocalCluster on 127.0.0.1."""
    import json

    grid = feeder_file(tmp_path, alternative=True)
    rates = table_file(tmp_path, **RATES)
    out = tmp_path / "out"
    argv = ["study", "reliability", "--model", str(grid), "--years", "20", "--workers", "1",
            "--assumptions", str(rates), "--load-levels", "1", "--json", "--out", str(out)]
    assert main(argv) == 0

    def refuse(constant: str):
        raise AssertionError(f"{constant} is not JSON")

    summary = json.loads(capsys.readouterr().out, parse_constant=refuse)
    flisr = summary["overall"]["as_built/flisr"]
    assert flisr["asai_pct_shanghai_core_2020"] == 99.9991
    assert flisr["asai_pct"][0] == pytest.approx(
        100 * (1 - flisr["saidi_min_per_year"][0] / 525_600))
    assert set(summary["by_class"]["as_built/flisr"]) == {"residential", "all"}
    assert (out / "reliability.json").is_file()
    assert (out / "reliability_convergence.png").read_bytes()[:4] == b"\x89PNG"


def test_a_study_on_an_existing_scheduler_gives_the_figures_of_a_local_one(tmp_path, client):
    model = load_model(feeder_file(tmp_path, alternative=True))
    table = read_assumptions(table_file(tmp_path, **RATES))
    settings = ReliabilitySettings(years=30, seed=2, load_levels=1)
    address = client.scheduler.address
    assert address.startswith("tcp://127.0.0.1:")
    remote = run_reliability(model, table, settings, scheduler=address)
    local = run_reliability(model, table, settings, client=client)
    assert remote.figures == local.figures
