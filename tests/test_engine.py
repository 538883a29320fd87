"""Reference engine: exact event handling, convergence, reproducibility, input validation."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from ketadur import (
    Dose,
    KetadurInputError,
    LifestyleChange,
    Patient,
    Regimen,
    SolverSettings,
    TherapySession,
    simulate,
    single_infusion,
    six_infusions,
)
from ketadur.engine.fast import FastSettings
from ketadur.engine.reference import integrate_span
from ketadur.model import pk
from ketadur.model.kernels import PYTHON_KERNELS
from ketadur.model.system import INPUT_NAMES, STATE_NAMES, compile_model, compile_schedule
from ketadur.regimen import MedicationWindow


def test_bolus_is_an_exact_jump_at_its_time():
    regimen = Regimen(doses=(Dose(day=1.0, dose_mg_per_kg=0.2),))
    res = simulate(regimen, t_end_days=1.1, output_days=[0.5, 0.999999, 1.0])
    central = res.states[["central_s", "central_r"]].sum(axis=1).to_numpy()
    assert central[0] == 0.0 and central[1] == 0.0
    assert central[2] == pytest.approx(0.2 * 70.0, rel=1e-12)


def test_results_are_bit_for_bit_reproducible():
    a = simulate(six_infusions(), t_end_days=30.0)
    b = simulate(six_infusions(), t_end_days=30.0)
    assert a.table.equals(b.table)
    assert a.provenance == b.provenance


@pytest.mark.parametrize(
    ("regimen", "t_end", "other"),
    [
        # convergence: the default tolerances against much tighter ones
        (six_infusions(), 56.0, SolverSettings(rtol=1e-10, atol=1e-12)),
        # cross-method: LSODA (default) against an implicit Runge-Kutta method
        (single_infusion(), 28.0, SolverSettings(method="Radau", rtol=1e-9, atol=1e-12)),
    ],
)
def test_madrs_agrees_with_tighter_or_other_solver(regimen, t_end, other):
    days = np.arange(0, t_end + 1, 1.0)
    default = simulate(regimen, t_end_days=t_end, output_days=days)
    reference = simulate(regimen, t_end_days=t_end, output_days=days, solver=other)
    assert np.abs(default.table["madrs"] - reference.table["madrs"]).max() < 1e-3


def test_tidy_table_has_units_and_all_outputs():
    res = simulate(single_infusion(), t_end_days=2.0, output_days=[0.0, 1.0, 2.0])
    tidy = res.tidy()
    assert set(tidy.columns) == {"t_days", "variable", "value", "unit"}
    assert tidy["unit"].notna().all()
    assert len(tidy) == 3 * (len(res.table.columns) - 1)


def test_therapy_session_and_lifestyle_change_are_applied():
    base = single_infusion()
    res = simulate(
        base.with_sessions([TherapySession(day=1.0)]).with_lifestyle(
            LifestyleChange(start_day=0.0, exercise_sessions_per_week=4, sleep_h_per_night=8)
        ),
        t_end_days=3.0,
        output_days=[0.99, 1.0],
    )
    assert res.table["consolidated"].iloc[0] == 0.0
    assert res.table["consolidated"].iloc[1] > 0.0


def test_later_lifestyle_change_replaces_earlier():
    regimen = (
        single_infusion()
        .with_lifestyle(
            LifestyleChange(start_day=0.0, exercise_sessions_per_week=4, sleep_h_per_night=8)
        )
        .with_lifestyle(
            LifestyleChange(start_day=5.0, exercise_sessions_per_week=1, sleep_h_per_night=5)
        )
    )

    model = compile_model(Patient())
    sched = compile_schedule(model, regimen)
    u_by_time = dict(zip(sched.breakpoints_h, sched.inputs, strict=True))
    assert u_by_time[0.0][3] == 4.0
    assert u_by_time[120.0][3] == 1.0 and u_by_time[120.0][4] == 2.0


def test_oral_antidepressant_window_equals_patient_on_one_throughout():
    """A medication window from day 0 without end is the same input as the patient covariate."""
    on_from_start = single_infusion().model_copy(update={"medications": (MedicationWindow(),)})
    a = simulate(on_from_start, t_end_days=10.0, output_days=[1.0, 7.0])
    b = simulate(
        single_infusion(),
        Patient(background_antidepressant=True),
        t_end_days=10.0,
        output_days=[1.0, 7.0],
    )
    none = simulate(single_infusion(), t_end_days=10.0, output_days=[1.0, 7.0])
    assert np.array_equal(a.table["madrs"], b.table["madrs"])
    assert (a.table["bdnf"] > none.table["bdnf"]).all()
    late = single_infusion().model_copy(
        update={"medications": (MedicationWindow(start_day=2.0, end_day=5.0),)}
    )
    sched = compile_schedule(compile_model(Patient()), late)
    u = dict(zip(sched.breakpoints_h, sched.inputs, strict=True))
    assert u[0.0][5] == 0.0 and u[48.0][5] == 1.0 and u[120.0][5] == 0.0


def test_integration_split_at_decision_points_matches_one_span():
    """The adaptive runner integrates between decision points; splitting must not change results."""
    model = compile_model(Patient())
    sched = compile_schedule(model, six_infusions())
    t_out = np.arange(0.0, 20.0 * 24.0 + 1e-9, 24.0)
    whole = integrate_span(model, sched, model.initial_state(), 0.0, 480.0, t_out, SolverSettings())
    y = model.initial_state()
    pieces = []
    cuts = [0.0, 50.0, 96.0, 170.5, 480.0]
    for t0, t1 in itertools.pairwise(cuts):
        last = t1 == cuts[-1]
        sel = t_out[(t_out >= t0) & ((t_out <= t1) if last else (t_out < t1))]
        span = integrate_span(model, sched, y, t0, t1, sel, SolverSettings())
        pieces.append(span.y_out)
        y = span.y_end
    split = np.concatenate(pieces, axis=1)
    madrs_whole = model.outputs(whole.y_out, whole.u_out)["madrs"]
    madrs_split = model.outputs(split, whole.u_out)["madrs"]
    assert np.abs(madrs_whole - madrs_split).max() < 1e-4


def test_invalid_inputs_name_the_field():
    with pytest.raises(KetadurInputError, match="t_end_days"):
        simulate(single_infusion(), t_end_days=-1.0)
    with pytest.raises(KetadurInputError, match="output_days"):
        simulate(single_infusion(), t_end_days=5.0, output_days=[10.0])
    with pytest.raises(KetadurInputError, match=r"solver\.rtol"):
        SolverSettings(rtol=2.0)
    with pytest.raises(KetadurInputError, match=r"fast\.uncontrolled.*'potentiation'"):
        FastSettings(uncontrolled=("potentiation",))
    with pytest.raises(KetadurInputError, match=r"fast\.atol_by_state\.acute"):
        FastSettings(atol_by_state=(("acute", 0.0),))
    with pytest.raises(ValidationError, match="exactly one of dose_mg_per_kg or dose_mg"):
        Dose(day=0.0)
    with pytest.raises(ValidationError, match="infusion_minutes applies to the iv route"):
        Dose(day=0.0, route="oral", dose_mg=50, infusion_minutes=10)
    with pytest.raises(ValidationError, match="at least 1 minute"):
        Dose(day=0.0, dose_mg=50, infusion_minutes=1e-300)
    with pytest.raises(ValidationError, match="overlap"):
        Regimen(
            doses=(
                Dose(day=0.0, dose_mg_per_kg=0.5, infusion_minutes=40),
                Dose(day=0.01, dose_mg_per_kg=0.5, infusion_minutes=40),
            )
        )


def test_pk_layout_is_consistent():
    assert len(set(pk.PK_STATES)) == pk.N_PK
    assert pk.pk_index("central", "r") == pk.PK_STATES.index("central_r")


def test_numba_cache_is_dropped_when_the_model_changes(tmp_path):
    """The fast engine's cached machine code inlines the model's equations: it must go when a
    model source changes, and stay while none does."""
    from ketadur.engine.numba_cache import drop_stale_cache

    source = tmp_path / "kernels.py"
    cache = tmp_path / "__pycache__"
    cache.mkdir()
    source.write_text("rate = 1.0\n")
    (cache / "fast.rhs-1.py311.nbi").write_text("old")
    assert drop_stale_cache([source], [cache])  # no fingerprint yet: dropped
    (cache / "fast.rhs-1.py311.nbc").write_text("compiled")
    assert not drop_stale_cache([source], [cache])
    assert (cache / "fast.rhs-1.py311.nbc").exists()
    source.write_text("rate = 2.0\n")
    assert drop_stale_cache([source], [cache])
    assert not list(cache.glob("*.nb?"))


@settings(max_examples=60, deadline=None)
@given(
    y=st.lists(st.floats(0.0, 3.0), min_size=13, max_size=13),
    conc=st.lists(st.floats(0.0, 20.0), min_size=4, max_size=4),
    cue=st.sampled_from([0.0, 0.4, 1.0]),
    inhibitor=st.sampled_from([0.0, 1.0]),
    lifestyle=st.lists(st.floats(-2.0, 3.0), min_size=2, max_size=2),
)
def test_loss_rates_make_each_derivative_affine_in_its_own_state(
    y, conc, cue, inhibitor, lifestyle
):
    """The fast engine solves each state's loss implicitly: f_k = p_k - d_k * y_k, where neither
    the production p_k nor the rate d_k depends on y_k. Moving y_k must move f_k by exactly
    -d_k times the change, and d_k must stay put."""
    kern = PYTHON_KERNELS
    model = compile_model(Patient())
    u = np.zeros(len(INPUT_NAMES))
    u[INPUT_NAMES.index("expectancy_cue")] = cue
    u[INPUT_NAMES.index("dusp6_inhibitor")] = inhibitor
    u[INPUT_NAMES.index("exercise_change")] = lifestyle[0]
    u[INPUT_NAMES.index("sleep_deficit_change")] = lifestyle[1]
    u[INPUT_NAMES.index("oral_antidepressant")] = 1.0
    y = np.asarray(y)
    f0, d0 = np.empty(13), np.empty(13)
    kern.rhs(y, np.asarray(conc), u, model.cc, model.sc, f0)
    kern.loss(y, np.asarray(conc), u, model.cc, model.sc, d0)
    assert np.all(d0 >= -1e-12)
    for k in range(13):
        moved = y.copy()
        moved[k] += 0.37
        f1, d1 = np.empty(13), np.empty(13)
        kern.rhs(moved, np.asarray(conc), u, model.cc, model.sc, f1)
        kern.loss(moved, np.asarray(conc), u, model.cc, model.sc, d1)
        assert d1[k] == pytest.approx(d0[k], rel=1e-12, abs=1e-15)
        assert f1[k] - f0[k] == pytest.approx(-d0[k] * 0.37, rel=1e-9, abs=1e-12)


def test_the_fast_engines_ark_tableau_has_its_published_orders():
    """ARK4(3)7L[2]SA1: both tableaus consistent with the nodes; the weights of order 4 and the
    embedded ones of order 3 on every coupled tree of the additive pair (a typo in one of its
    long rationals breaks one of these)."""
    from ketadur.engine import fast

    ae, ai, c = fast._ARK_AE, fast._ARK_AI, fast._ARK_C
    embedded = fast._ARK_B - fast._ARK_E
    assert np.allclose(ae.sum(axis=1), c, atol=1e-15)
    assert np.allclose(ai.sum(axis=1), c, atol=1e-15)
    assert np.all(np.diag(ai)[1:] == fast._ARK_GAMMA) and ai[0, 0] == 0.0

    def residuals(w, order):
        r = [w.sum() - 1, w @ c - 1 / 2]
        if order >= 3:
            r += [w @ c**2 - 1 / 3] + [w @ (a @ c) - 1 / 6 for a in (ae, ai)]
        if order >= 4:
            r.append(w @ c**3 - 1 / 4)
            for a in (ae, ai):
                r += [w @ (c * (a @ c)) - 1 / 8, w @ (a @ c**2) - 1 / 12]
                r += [w @ (a @ (b @ c)) - 1 / 24 for b in (ae, ai)]
        return np.abs(r)

    assert residuals(fast._ARK_B, 4).max() < 1e-14
    assert residuals(embedded, 3).max() < 1e-14
    assert residuals(embedded, 4).max() > 1e-4  # the embedded solution is only third order


def test_the_fast_engine_reports_a_patient_whose_states_turn_nan_as_failed():
    """A non-finite result must fail the step, never be accepted: with an mTORC1 half-activation
    of NaN the right-hand side is NaN once a dose drives mTORC1, and the span must come back as
    failed (its outputs are then discarded), not as a success carrying NaN states."""
    import dataclasses

    from ketadur.engine.fast import integrate_span_fast

    model = compile_model(Patient())
    broken = dataclasses.replace(model, cc=model.cc._replace(mtor_half=float("nan")))
    t_out = np.arange(0.0, 3.0 * 24.0 + 1e-9, 24.0)
    for m, status in ((model, "success"), (broken, "failed")):
        sched = compile_schedule(m, single_infusion())
        span = integrate_span_fast(m, sched, m.initial_state(), 0.0, 72.0, t_out)
        assert span.status == status


@settings(max_examples=15, deadline=None)
@given(st.lists(st.floats(0.0, 72.0), max_size=40))
def test_the_fast_engines_output_times_do_not_change_its_solution(t_out_h):
    """Outputs are interpolated within the steps, not stepped to: whatever the output grid, the
    fast engine takes the same steps, so its state at the end is the same bit for bit."""
    from ketadur.engine.fast import integrate_span_fast

    model = compile_model(Patient())
    sched = compile_schedule(model, six_infusions())
    y0 = model.initial_state()
    bare = integrate_span_fast(model, sched, y0, 0.0, 72.0, np.array([]))
    grid = np.unique(np.asarray(t_out_h, dtype=float))
    span = integrate_span_fast(model, sched, y0, 0.0, 72.0, grid)
    assert span.status == bare.status == "success"
    assert np.array_equal(span.y_end, bare.y_end)
    assert np.all(np.isfinite(span.y_out))


def test_the_fast_engines_interpolated_outputs_agree_with_the_reference_engine():
    """Outputs every 20 minutes over an infusion day and the day after, most inside a step: the
    synaptic states agree with the reference engine within the population engine's 1e-3, and
    the PK, advanced exactly to each output time, to 1e-6."""
    from ketadur.engine.fast import integrate_span_fast

    model = compile_model(Patient())
    sched = compile_schedule(model, single_infusion())
    y0 = model.initial_state()
    t_out = np.arange(0.0, 48.0, 1.0 / 3.0)  # every 20 min, so that most fall inside a step
    fast = integrate_span_fast(model, sched, y0, 0.0, 48.0, t_out)
    ref = integrate_span(model, sched, y0, 0.0, 48.0, t_out, SolverSettings(1e-10, 1e-13))
    names = list(STATE_NAMES)
    for name in ("potentiation", "structural", "stabilised", "bdnf", "acute"):
        i = names.index(name)
        a, b = fast.y_out[i], ref.y_out[i]
        assert np.all(np.abs(a - b) <= 1e-3 * np.abs(b) + 1e-6), name
    n_pk = 2 * len(pk.PK_LOCAL)
    peak = np.abs(ref.y_out[:n_pk]).max(axis=1, keepdims=True)
    assert np.all(np.abs(fast.y_out[:n_pk] - ref.y_out[:n_pk]) <= 1e-6 * peak + 1e-12)
