"""A grid file with a mistake is refused, naming the file, the element and the field."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from network_models import ModelError, load_model
from network_models.builder import DATA_DIR

JIUKE = yaml.safe_load((DATA_DIR / "jiuke_oasis.yaml").read_text(encoding="utf-8"))


def _write(tmp_path: Path, data: dict) -> Path:
    path = tmp_path / "broken_grid.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def _refused(tmp_path: Path, data: dict) -> ModelError:
    path = _write(tmp_path, data)
    with pytest.raises(ModelError) as info:
        load_model(path)
    assert str(path) in str(info.value)
    return info.value


def test_missing_field_names_file_element_and_field(tmp_path):
    data = copy.deepcopy(JIUKE)
    del data["lines"][5]["length_km"]
    err = _refused(tmp_path, data)
    assert err.field == "length_km"
    assert data["lines"][5]["name"] in err.element
    assert "required" in str(err)


def test_unknown_bus_names_the_element_and_the_bus(tmp_path):
    data = copy.deepcopy(JIUKE)
    data["loads"][3]["bus"] = "NO_SUCH_BUS"
    err = _refused(tmp_path, data)
    assert err.field == "bus"
    assert data["loads"][3]["name"] in err.element
    assert "NO_SUCH_BUS" in str(err)


def test_negative_rating_is_refused(tmp_path):
    data = copy.deepcopy(JIUKE)
    data["bess"][0]["e_mwh"] = -4.0
    err = _refused(tmp_path, data)
    assert err.field == "e_mwh"
    assert data["bess"][0]["name"] in err.element
    assert "greater than 0" in str(err)


def test_switch_on_a_non_existent_element_is_refused(tmp_path):
    data = copy.deepcopy(JIUKE)
    data["switches"][10]["element"] = "FD_L9_9"
    err = _refused(tmp_path, data)
    assert err.field == "element"
    assert data["switches"][10]["name"] in err.element
    assert "FD_L9_9" in str(err)


def test_switch_on_a_line_it_does_not_touch_is_refused(tmp_path):
    data = copy.deepcopy(JIUKE)
    sw = next(s for s in data["switches"] if s["element_type"] == "line")
    sw["bus"] = "K4_II" if sw["bus"] != "K4_II" else "K1_I"
    err = _refused(tmp_path, data)
    assert err.field == "bus" and "not an end of line" in str(err)


def test_duplicate_name_is_refused(tmp_path):
    data = copy.deepcopy(JIUKE)
    data["buses"].append(dict(data["buses"][0]))
    err = _refused(tmp_path, data)
    assert err.field == "name" and data["buses"][0]["name"] in err.element


def test_unknown_field_is_refused_rather_than_ignored(tmp_path):
    data = copy.deepcopy(JIUKE)
    data["pv"][0]["p_mwp_typo"] = 1.0
    err = _refused(tmp_path, data)
    assert err.field == "p_mwp_typo"


def test_inconsistent_soc_bounds_are_refused(tmp_path):
    data = copy.deepcopy(JIUKE)
    data["bess"][1]["soc_init_frac"] = 0.99
    err = _refused(tmp_path, data)
    assert data["bess"][1]["name"] in err.element
    assert "soc_init_frac" in str(err)


def test_not_yaml_and_missing_file_are_refused(tmp_path):
    bad = tmp_path / "grid.yaml"
    bad.write_text("buses: [unclosed", encoding="utf-8")
    with pytest.raises(ModelError, match="not valid YAML"):
        load_model(bad)
    with pytest.raises(ModelError, match="no such model"):
        load_model(tmp_path / "absent.yaml")


def test_the_shipped_file_round_trips_through_a_copy(tmp_path):
    model = load_model(_write(tmp_path, copy.deepcopy(JIUKE)))
    assert model.name == "jiuke_oasis" and len(model.net.bus) == len(JIUKE["buses"])
