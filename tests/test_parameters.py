"""The parameter registry: complete metadata, validation, and docs that match the code."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ketadur import REGISTRY, KetadurInputError, ParameterSet, Patient
from ketadur.model.pk import PK_LOCAL, PK_STATES
from ketadur.model.system import OUTPUTS, STATE_NAMES

DOCS = Path(__file__).resolve().parents[1] / "docs" / "model.md"


def test_every_parameter_has_unit_range_status_and_source():
    for p in REGISTRY.values():
        assert p.unit, p.name
        assert p.lower <= p.default <= p.upper, p.name
        assert p.status in {"published", "calibrated", "assumed"}, p.name
        assert len(p.source) > 10, p.name
        assert p.description.endswith("."), p.name


def test_published_and_calibrated_parameters_cite_a_study():
    year = re.compile(r"(19|20)\d\d|PubChem")
    for p in REGISTRY.values():
        if p.status in {"published", "calibrated"}:
            assert year.search(p.source), p.name


def test_parameter_set_is_immutable_and_validated():
    ps = ParameterSet()
    changed = ps.replace(k10_per_min=0.012)
    assert ps["k10_per_min"] == REGISTRY["k10_per_min"].default
    assert changed["k10_per_min"] == 0.012
    with pytest.raises(KetadurInputError, match=r"params\.k10_per_min: must lie"):
        ps.replace(k10_per_min=5.0)
    with pytest.raises(KetadurInputError, match="unknown parameter"):
        ps.replace(not_a_parameter=1.0)
    with pytest.raises(KetadurInputError, match="must be a number"):
        ParameterSet({"k10_per_min": "fast"})


def test_patient_accepts_parameter_overrides_as_dict():
    patient = Patient(params={"k10_per_min": 0.012})
    assert patient.params["k10_per_min"] == 0.012


def test_docs_state_every_parameter_state_and_output():
    text = DOCS.read_text()
    # PK states are documented once per enantiomer chain (local name + suffix _s/_r).
    states = [n for n in STATE_NAMES if n not in PK_STATES]
    missing = [n for n in (*REGISTRY, *PK_LOCAL, *states, *OUTPUTS) if f"`{n}`" not in text]
    assert not missing, f"docs/model.md does not mention: {missing}"
