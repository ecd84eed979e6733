"""Models built from grid files are kept between runs: the same model as a fresh build, a new
build whenever the file changes, never a cached model for a file that does not validate."""

from __future__ import annotations

import pandas as pd
import pytest

from network_models import ModelError, load_model
from network_models.builder import DATA_DIR, load_grid_file

TABLES = ("bus", "line", "trafo", "switch", "load", "sgen", "storage", "ext_grid")


@pytest.fixture
def cache(tmp_path, monkeypatch):
    folder = tmp_path / "cache"
    monkeypatch.setenv("GRIDCTL_CACHE_DIR", str(folder))
    return folder


def _same(a, b) -> None:
    for table in TABLES:
        pd.testing.assert_frame_equal(a.net[table], b.net[table], check_like=True)
    assert list(a.registry) == list(b.registry)
    assert (a.name, a.source, a.substations, a.microgrids) == (
        b.name, b.source, b.substations, b.microgrids)


def test_a_cached_model_is_the_model_a_fresh_build_gives(cache, jiuke):
    first = load_model("jiuke_oasis")  # built and stored
    assert len(list(cache.glob("*.pickle"))) == 1
    again = load_model("jiuke_oasis")  # from the cache
    assert again is not first
    _same(again, load_grid_file(DATA_DIR / "jiuke_oasis.yaml"))
    _same(first, again)


def test_a_changed_file_is_built_again(cache, tmp_path):
    path = tmp_path / "grid.yaml"
    text = (DATA_DIR / "jiuke_oasis.yaml").read_text(encoding="utf-8")
    path.write_text(text, encoding="utf-8")
    before = load_model(path)
    path.write_text(text.replace("length_km: 1.31,", "length_km: 1.41,", 1), encoding="utf-8")
    after = load_model(path)
    assert len(list(cache.glob("*.pickle"))) == 2
    assert not before.net.line["length_km"].equals(after.net.line["length_km"])


def test_a_file_that_does_not_validate_is_refused_and_nothing_is_cached(cache, tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("name: broken\nbuses: 3\n", encoding="utf-8")
    with pytest.raises(ModelError):
        load_model(path)
    assert not cache.exists() or not list(cache.glob("*.pickle"))


def test_a_damaged_entry_costs_a_build_and_is_replaced(cache):
    load_model("jiuke_oasis")
    [entry] = cache.glob("*.pickle")
    entry.write_bytes(b"not a pickle")
    model = load_model("jiuke_oasis")
    assert len(model.net.bus) == 111
    assert entry.read_bytes()[:1] == b"\x80"  # a pickle again


def test_the_cache_can_be_turned_off(tmp_path, monkeypatch):
    monkeypatch.setenv("GRIDCTL_CACHE_DIR", "off")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    load_model("jiuke_oasis")
    assert not any(tmp_path.rglob("*.pickle"))


def test_a_year_of_profiles_is_mapped_from_the_cache_not_read_into_memory(cache, jiuke):
    """A grid's large arrays (SimBench's year of 15-min profiles: 3.2 GB for 10,000 buses) are
    kept beside the entry and mapped on load: the same values, read-only, paged in when read."""
    import dataclasses

    import numpy as np

    from network_models.model import GridProfiles
    from network_models.model_cache import OUT_OF_BAND_BYTES, cached_build

    steps = 35_136  # 2016 at 15 min
    ids = [d.id for d in jiuke.registry.loads]
    cols = OUT_OF_BAND_BYTES // (4 * steps) + 1  # one float32 block just over the threshold
    year = np.random.default_rng(7).random((steps, cols), dtype=np.float32)
    frame = pd.DataFrame(year, columns=[ids[i % len(ids)] + f"#{i}" for i in range(cols)])
    profiles = GridProfiles(source="test", year=2016, step_minutes=15, load_p_mw=frame,
                            load_q_mvar=frame.iloc[:, :0], pv_p_mw=frame.iloc[:, :0])
    model = dataclasses.replace(jiuke, profiles=profiles)
    cached_build("profiled", b"profiled", lambda: model)  # built and stored
    assert len(list(cache.glob("*.buffers"))) == 1
    again = cached_build("profiled", b"profiled", lambda: pytest.fail("built again"))
    loaded = again.profiles.load_p_mw
    np.testing.assert_array_equal(loaded.to_numpy(), year)
    assert not loaded.to_numpy().flags.writeable  # mapped from the file, read-only
    _same(again, jiuke)  # the net and registry as they were, in the pickle
    assert again.net.load.p_mw.to_numpy().flags.writeable
