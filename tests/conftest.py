"""Shared fixtures: models are slow to build, so each is built once per test session."""

from __future__ import annotations

import pytest

from network_models import GridModel, load_model


@pytest.fixture(scope="session")
def jiuke() -> GridModel:
    return load_model("jiuke_oasis")
