"""Shared fixtures: simulations of the typical patient reused across tests (computed once)."""

from __future__ import annotations

import pytest

from ketadur import TYPICAL_PATIENT, simulate, single_infusion, six_infusions

BASELINE = TYPICAL_PATIENT.baseline_madrs


@pytest.fixture(scope="session")
def single_result():
    return simulate(single_infusion(), t_end_days=90.0)


@pytest.fixture(scope="session")
def six_result():
    return simulate(six_infusions(), t_end_days=90.0)
