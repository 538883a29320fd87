"""The fast engine's SIMD lanes: the same bits as the scalar engine, patient by patient."""

from __future__ import annotations

import numba as nb
import numpy as np
import pandas as pd
import pytest

from ketadur.engine import fast, lanes
from ketadur.engine import population as engine
from ketadur.engine.fast import OUTPUT_NAMES
from ketadur.population.generate import generate_population
from ketadur.protocols.io import load_protocol


def _both_engines(monkeypatch, protocol, pop, days, arm=None, output_days=None):
    """Simulate ``pop`` with the lanes, running the scalar engine on the very same batches, and
    return both engines' (outputs, end states, steps) per batch."""
    seen = []

    def both(*args):
        out, y_end, steps = args[-3], args[-2], args[-1]
        scalar = [out.copy(), y_end.copy(), steps.copy()]
        fast.integrate_batch(*args[:-3], *scalar)
        lanes.integrate_batch(*args)
        seen.append((scalar, [out.copy(), y_end.copy(), steps.copy()]))

    monkeypatch.setattr(engine, "integrate_batch", both)
    outputs = tuple(OUTPUT_NAMES)
    kwargs = {"arm": arm, "days": days, "outputs": outputs, "output_days": output_days}
    pd.concat(engine.simulate_population(protocol, pop, chunk_size=len(pop), **kwargs))
    assert seen
    return seen


@pytest.mark.parametrize(
    ("name", "arm", "days"),
    [
        ("durability_comparison", "kap_cbt", 60.0),  # therapy sessions
        ("durability_comparison", "single_infusion_dusp6", 40.0),
        ("durability_comparison", "induction_lifestyle", 40.0),
        ("mindfulness_single_infusion", "ketamine_mindfulness", 30.0),
        ("aspire", "esketamine", 28.0),  # intranasal esketamine
        ("pk_routes", "oral_0p5mg_per_kg", 1.0),  # the oral depots
        ("placebo_controlled", "saline", 10.0),  # expectancy alone
    ],
)
def test_lanes_give_the_scalar_engines_bits(monkeypatch, name, arm, days):
    """Every output, end state and step count of every patient is identical bit for bit: 150
    patients (more than a lane group's lanes, so lanes take new patients, and shared by a group
    per thread) with their own life events, every output, at whole days and at times inside
    steps."""
    pop = generate_population("trd-adults", 150, seed=11)
    grid = np.concatenate([np.arange(0.0, days + 1e-9, 1.0), [0.37, 0.9 * days]])
    protocol = load_protocol(name)
    for scalar, vector in _both_engines(monkeypatch, protocol, pop, days, arm, np.sort(grid)):
        assert (scalar[2] > 0).all()
        for a, b in zip(scalar, vector, strict=True):
            assert np.array_equal(a, b, equal_nan=True)


def test_a_patients_bits_do_not_depend_on_the_patients_beside_it(monkeypatch):
    """The same patients in another order, or a few of them alone, share their lanes with other
    patients (or with idle lanes), and each patient's results stay the same bit for bit: the
    lanes are what makes a result independent of shards and chunks."""
    pop = generate_population("trd-adults", 150, seed=5)
    protocol = load_protocol("durability_comparison")
    batches = []
    monkeypatch.setattr(engine, "integrate_batch", lambda *args: batches.append(args))
    grid = np.array([0.0, 0.4, 1.0, 3.0, 7.5, 12.0, 20.0])
    outputs = tuple(OUTPUT_NAMES)
    kwargs = {"arm": "single_infusion_dusp6", "days": 20.0, "outputs": outputs}
    list(engine.simulate_population(protocol, pop, output_days=grid, **kwargs))
    (args,) = batches
    whole = lanes.patients_of(args, np.arange(150))
    lanes.integrate_batch(*whole)
    for index in (np.arange(150)[::-1], np.array([3, 77, 140]), np.arange(0, 150, 7)):
        part = lanes.patients_of(args, index)
        lanes.integrate_batch(*part)
        for a, b in zip(part[-3:], whole[-3:], strict=True):
            assert np.array_equal(a, b[index], equal_nan=True)
    assert (whole[-1] > 0).all()


def test_a_patient_whose_hill_coefficient_is_not_an_integer_runs_in_the_scalar_engine(
    monkeypatch,
):
    """The lanes need an integer mTORC1 Hill coefficient; other patients go to the scalar
    engine and their results are scattered back in place."""
    pop = generate_population("trd-adults", 40, seed=3)
    pop.loc[[1, 17, 30], "mtor_hill"] = [3.5, 2.25, 4.0]
    protocol = load_protocol("induction_twice_weekly")
    for scalar, vector in _both_engines(monkeypatch, protocol, pop, 20.0):
        for a, b in zip(scalar, vector, strict=True):
            assert np.array_equal(a, b, equal_nan=True)
    moved = generate_population("trd-adults", 40, seed=3)
    first = pd.concat(engine.simulate_population(protocol, pop, days=20.0))
    second = pd.concat(engine.simulate_population(protocol, moved, days=20.0))
    differs = first["madrs"].to_numpy() != second["madrs"].to_numpy()
    changed = set(first["subject_id"][differs])
    assert changed == set(pop["subject_id"].iloc[[1, 17]])


def test_pk_exp_is_within_two_units_in_the_last_place():
    """The PK's exponential (plain arithmetic, so that it vectorises) against NumPy's."""
    f = nb.njit(lambda x: fast.pk_exp(x))
    xs = -np.concatenate(
        [np.random.default_rng(0).random(20000) * 700.0, np.logspace(-12, 0.5, 2000)]
    )
    ours = np.array([f(x) for x in xs])
    ulp = np.abs(ours - np.exp(xs)) / np.spacing(np.exp(xs))
    assert ulp.max() <= 2.0
    assert f(0.0) == 1.0 and f(-746.0) == 0.0 and np.isnan(f(np.nan))
    # below the normal range (x < -708.4) too, where 2**k is a subnormal power from the table
    tiny = -np.random.default_rng(1).uniform(700.0, 745.0, 20000)
    ours = np.array([f(x) for x in tiny])
    assert (np.abs(ours - np.exp(tiny)) <= 2.0 * np.spacing(np.exp(tiny))).all()


def test_no_state_is_left_subnormal_once_the_drug_is_gone(monkeypatch):
    """Months after a single infusion the states that only decay (glutamate, the acute response)
    are zero, not subnormal numbers (on which every operation is slow), in both engines alike."""
    pop = generate_population("trd-adults", 40, seed=3)
    protocol = load_protocol("protocol1_single_infusion")
    smallest_normal = np.finfo(np.float64).tiny
    for scalar, vector in _both_engines(monkeypatch, protocol, pop, 120.0):
        for a, b in zip(scalar, vector, strict=True):
            assert np.array_equal(a, b, equal_nan=True)
        y_end = vector[1]
        assert not ((y_end != 0.0) & (np.abs(y_end) < smallest_normal)).any()
        assert (y_end[:, -len(fast.NONLINEAR_STATES) :] == 0.0).any()  # some state did decay
