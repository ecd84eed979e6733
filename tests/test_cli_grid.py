"""The operator's command line: `gridctl grid check` and `gridctl grid plot`."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from gridctl.cli import main

REPO = Path(__file__).resolve().parents[1]


def test_grid_check_json_reports_a_healthy_jiuke_grid_with_n1_secure_backbone(capsys):
    assert main(["grid", "check", "--model", "jiuke_oasis", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    for key in (
        "model",
        "buses",
        "lines",
        "converged",
        "v_min_pu",
        "v_max_pu",
        "max_line_loading_pct",
        "max_trafo_loading_pct",
        "n1",
    ):
        assert key in data
    assert data["model"] == "jiuke_oasis" and data["converged"]
    assert 0.93 <= data["v_min_pu"] <= data["v_max_pu"] <= 1.07
    assert data["max_line_loading_pct"] <= 100 and data["max_trafo_loading_pct"] <= 100
    n1 = data["n1"]
    assert n1["outages"] == 16 + 4  # every backbone cable and substation transformer
    assert n1["customers_interrupted"] == 0 and n1["violations"] == []


def test_grid_check_without_json_prints_a_readable_table(capsys):
    assert main(["grid", "check", "--model", "jiuke_oasis", "--no-n1"]) == 0
    out = capsys.readouterr().out
    assert "peak" in out and "light" in out and "OK" in out


def test_unknown_model_exits_2_with_one_line_and_no_traceback(capsys):
    assert main(["grid", "check", "--model", "no_such_grid"]) == 2
    err = capsys.readouterr().err
    assert "no_such_grid" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_bad_model_file_exits_2_naming_file_element_and_field(tmp_path, capsys):
    text = (REPO / "network_models/data/jiuke_oasis.yaml").read_text(encoding="utf-8")
    text = text.replace(
        "{name: PV_L1_1, bus: LV_L1_1, p_mwp: 0.22,", "{name: PV_L1_1, bus: LV_L1_1, p_mwp: -0.22,"
    )
    bad = tmp_path / "grid.yaml"
    bad.write_text(text, encoding="utf-8")
    assert main(["grid", "check", "--model", str(bad)]) == 2
    err = capsys.readouterr().err
    assert str(bad) in err and "PV_L1_1" in err and "p_mwp" in err
    assert "Traceback" not in err


def test_grid_plot_writes_a_png(tmp_path, capsys):
    out = tmp_path / "one_line.png"
    assert main(["grid", "plot", "--model", "jiuke_oasis", "--out", str(out)]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert main(["grid", "plot", "--model", "jiuke_oasis", "--out", str(tmp_path / "x.txt")]) == 2


def test_readme_quick_start_has_two_commands_and_ci_runs_the_same_test_command():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    quick = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    commands = [ln for ln in re.findall(r"```bash\n(.*?)```", quick, re.S)]
    lines = [ln for block in commands for ln in block.splitlines() if ln and not ln.startswith("#")]
    assert len(lines) == 2
    assert "gridctl" in lines[0] and "jiuke_oasis" in lines[0]
    ci = (REPO / ".ci/run").read_text(encoding="utf-8")
    assert lines[1] in ci.splitlines()


def test_the_installed_command_flushes_its_output_and_exit_code_before_its_fast_exit():
    # the console entry ends the process without the interpreter's teardown: what was printed
    # and the exit code must still arrive whole
    run = subprocess.run([sys.executable, "-m", "gridctl.cli", "grid", "check", "--model",
                         "case33bw", "--json"], capture_output=True, text=True, timeout=300)
    report = json.loads(run.stdout)  # whole
    assert report["model"] == "case33bw"
    # the 33-bus feeder's far end sits below 0.93 pu at peak: the check says so with exit 1
    assert report["ok"] is False and run.returncode == 1, run.stderr
    bad = subprocess.run([sys.executable, "-m", "gridctl.cli", "grid", "check", "--model",
                          "no_such_grid"], capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2
    assert bad.stderr.startswith("gridctl: error: ") and "no_such_grid" in bad.stderr
