"""Pharmacokinetics: analytic solutions, mass balance, non-negativity and published values."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from scipy.linalg import expm

from ketadur import Dose, Patient, Regimen, SolverSettings, simulate, single_infusion
from ketadur.model import pk
from ketadur.model.parameters import ParameterSet
from ketadur.model.system import compile_model, compile_schedule

TIGHT = SolverSettings(rtol=1e-11, atol=1e-13)


def _pk_closed_form(patient: Patient, regimen: Regimen, t_h: np.ndarray) -> np.ndarray:
    """PK states by the matrix exponential of the same linear system, piecewise over the
    regimen's breakpoints: x(t) = e^{A dt} x0 + A^{-1}(e^{A dt} - I) B u."""
    model = compile_model(patient)
    sched = compile_schedule(model, regimen)
    a, b = model.a_pk, model.b_pk
    x = np.zeros(pk.N_PK)
    out = np.empty((pk.N_PK, t_h.size))
    bps = [*sched.breakpoints_h, np.inf]
    for i, t0 in enumerate(sched.breakpoints_h):
        for j in sched.jumps[i]:
            if j.kind == "dose":
                x = x + j.delta
        forcing = b @ sched.inputs[i][:2]
        # Augmented matrix exponential handles the constant input without inverting A.
        aug = np.zeros((pk.N_PK + 1, pk.N_PK + 1))
        aug[: pk.N_PK, : pk.N_PK] = a
        aug[: pk.N_PK, pk.N_PK] = forcing

        def advance(x0, dt, aug=aug):
            e = expm(aug * dt)
            return e[: pk.N_PK, : pk.N_PK] @ x0 + e[: pk.N_PK, pk.N_PK]

        sel = (t_h >= t0) & (t_h < bps[i + 1])
        for k in np.flatnonzero(sel):
            out[:, k] = advance(x, t_h[k] - t0)
        if np.isfinite(bps[i + 1]):
            x = advance(x, bps[i + 1] - t0)
    return out


MIXED = Regimen(
    doses=(
        Dose(day=0.0, dose_mg_per_kg=0.5, infusion_minutes=40),
        Dose(day=1.0, drug="esketamine", route="intranasal", dose_mg=56),
        Dose(day=2.0, route="oral", dose_mg_per_kg=0.5),
        Dose(day=3.0, route="im", dose_mg_per_kg=0.5),
        Dose(day=3.5, dose_mg_per_kg=0.2),
    )
)


def test_pk_matches_matrix_exponential_to_1e_6():
    t_days = np.array([0.01, 0.02, 1 / 36, 0.1, 0.5, 1.02, 1.3, 2.05, 2.7, 3.01, 3.3, 3.5, 3.6, 5])
    res = simulate(MIXED, t_end_days=5.0, output_days=t_days, solver=TIGHT)
    numeric = res.states[list(pk.PK_STATES)].to_numpy().T
    exact = _pk_closed_form(Patient(), MIXED, res.table["t_days"].to_numpy() * 24.0)
    big = np.abs(exact) > 1e-6 * np.abs(exact).max()
    rel = np.abs(numeric[big] - exact[big]) / np.abs(exact[big])
    assert rel.max() < 1e-6


def test_central_concentration_matches_textbook_biexponential():
    """Two-compartment infusion: C(t) = sum_i R/(V1 l_i) (k21 - l_i)/(l_j - l_i)... written via
    the classical A, B coefficients (Gibaldi & Perrier, Pharmacokinetics, 2nd ed., ch. 2)."""
    p = ParameterSet()
    wt, dose_mgkg, tinf_h = 80.0, 0.5, 40 / 60
    v1 = p["v1_l_per_kg"] * wt
    k10, k12, k21 = (p[n] * 60 for n in ("k10_per_min", "k12_per_min", "k21_per_min"))
    s = k10 + k12 + k21
    alpha = (s + math.sqrt(s * s - 4 * k10 * k21)) / 2
    beta = (s - math.sqrt(s * s - 4 * k10 * k21)) / 2
    rate = dose_mgkg * wt / tinf_h

    def c_inf(t):  # concentration for a constant infusion started at 0 (mg/L)
        return (rate / v1) * (
            (k21 - alpha) / (alpha * (beta - alpha)) * (1 - math.exp(-alpha * t))
            + (k21 - beta) / (beta * (alpha - beta)) * (1 - math.exp(-beta * t))
        )

    def c(t):  # superposition: infusion on, then an equal negative infusion at tinf
        return c_inf(t) - (c_inf(t - tinf_h) if t > tinf_h else 0.0)

    t_days = np.array([5, 20, 40, 41, 60, 120, 300, 600]) / 1440
    res = simulate(
        single_infusion(), Patient(weight_kg=wt), t_end_days=1.0, output_days=t_days, solver=TIGHT
    )
    model = res.table["plasma_ketamine_ng_per_ml"].to_numpy() / 1000.0
    exact = np.array([c(t * 24) for t in t_days])
    np.testing.assert_allclose(model, exact, rtol=1e-6)


dose_strategy = st.builds(
    lambda day, route, amount, minutes, eske: Dose(
        day=day,
        route=route,
        drug="esketamine" if eske else "racemic_ketamine",
        dose_mg_per_kg=amount,
        infusion_minutes=minutes if route == "iv" else 0.0,
    ),
    day=st.floats(0.0, 2.0),
    route=st.sampled_from(["iv", "intranasal", "oral", "im"]),
    amount=st.floats(0.05, 2.0),
    minutes=st.one_of(st.just(0.0), st.floats(1.0, 120.0)),
    eske=st.booleans(),
)


def _non_overlapping(doses: list[Dose]) -> list[Dose]:
    kept, busy_until = [], -1.0
    for d in sorted(doses, key=lambda d: d.day):
        if d.route == "iv" and d.day < busy_until:
            continue
        kept.append(d)
        if d.route == "iv":
            busy_until = d.day + d.infusion_minutes / 1440 + 1e-9
    return kept


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    weight=st.floats(40.0, 150.0),
    doses=st.lists(dose_strategy, min_size=1, max_size=4),
)
@example(
    weight=40.0,
    doses=[Dose(day=0.05000000000000001, route="iv", dose_mg_per_kg=1.0, infusion_minutes=0.0)],
)
def test_mass_balance_and_non_negativity(weight, doses):
    regimen = Regimen(doses=tuple(_non_overlapping(doses)))
    patient = Patient(weight_kg=weight)
    res = simulate(regimen, patient, t_end_days=3.0, output_days=np.linspace(0, 3, 61))
    assert res.status == "success"
    total_given = sum(d.amount_mg(weight) for d in regimen.doses if d.day <= 3.0)
    amounts = res.states[list(pk.AMOUNT_STATES)].sum(axis=1).to_numpy()
    # in hours, as the engine schedules doses: in days, a dose on day 0.05000000000000001 falls
    # after the output at 0.05, while both are 1.2000000000000002 h
    given_by_t = np.array(
        [
            sum(
                d.amount_mg(weight)
                * min(1.0, max(0.0, (t * 24.0 - d.day * 24.0) * 60.0 / d.infusion_minutes))
                if d.route == "iv" and d.infusion_minutes > 0
                else (d.amount_mg(weight) if t * 24.0 >= d.day * 24.0 else 0.0)
                for d in regimen.doses
            )
            for t in res.table["t_days"]
        ]
    )
    np.testing.assert_allclose(amounts, given_by_t, rtol=1e-6, atol=1e-8 * total_given)
    assert (res.states[list(pk.PK_STATES)].to_numpy() > -1e-9).all()
    for bounded in ("potentiation", "structural", "stabilised", "consolidated"):
        values = res.table[bounded].to_numpy()
        assert (values > -1e-9).all() and (values < 1 + 1e-9).all()
    assert res.table["madrs"].between(0, 60).all()


# ---------------------------------------------------------------- published values


def test_protocol1_ketamine_peak_in_published_range():
    """0.5 mg/kg over 40 min: Cmax 185 ng/mL at the end of the infusion (Zarate 2006, via Zanos
    2018 Pharmacol Rev Table 1); 100-250 ng/mL during such infusions (Krystal 1994, same table)."""
    for weight in (55.0, 70.0, 110.0):
        res = simulate(single_infusion(), Patient(weight_kg=weight), t_end_days=0.5)
        tb = res.table
        i = int(tb["plasma_ketamine_ng_per_ml"].idxmax())
        assert 100.0 <= tb["plasma_ketamine_ng_per_ml"][i] <= 250.0
        assert abs(tb["t_days"][i] * 1440 - 40.0) <= 2.0
    res = simulate(single_infusion(), t_end_days=0.5)
    assert abs(res.table["plasma_ketamine_ng_per_ml"].max() - 185.0) / 185.0 < 0.15


def test_protocol1_norketamine_peaks_after_and_below_ketamine():
    """Norketamine forms from ketamine: it peaks after the infusion ends and stays below the
    ketamine peak over the 230 min that Zarate 2012 (Biol Psychiatry 72:331) sampled."""
    res = simulate(single_infusion(), t_end_days=1.0)
    tb = res.table
    t_nk = tb["t_days"][tb["plasma_norketamine_ng_per_ml"].idxmax()] * 1440
    assert 60.0 < t_nk < 400.0
    assert tb["plasma_norketamine_ng_per_ml"].max() < tb["plasma_ketamine_ng_per_ml"].max()


def test_norketamine_peak_during_anaesthetic_infusion_within_idvall_1979():
    """Idvall 1979 (Br J Anaesth 51:1167): 2 mg/kg induction then 41 ug/kg/min; maximum norketamine
    4.7 +/- 2.4 umol/L. The abstract gives no duration: 90 min is assumed (typical surgery)."""
    regimen = Regimen(
        doses=(
            Dose(day=0.0, dose_mg_per_kg=2.0),
            Dose(day=1 / 1440, dose_mg_per_kg=0.041 * 90, infusion_minutes=90),
        )
    )
    res = simulate(regimen, t_end_days=0.5)
    nk_um = res.table["plasma_norketamine_ng_per_ml"].max() / 223.70
    assert 4.7 - 2.4 <= nk_um <= 4.7 + 2.4


def test_esketamine_intranasal_tmax_within_label():
    """Esketamine nasal spray label: Tmax 20-40 min after the last spray (secondary)."""
    res = simulate(
        Regimen(doses=(Dose(day=0, drug="esketamine", route="intranasal", dose_mg=56),)),
        t_end_days=0.5,
    )
    tb = res.table
    t_max = tb["t_days"][tb["plasma_ketamine_ng_per_ml"].idxmax()] * 1440
    assert 20.0 <= t_max <= 40.0


def test_sbp_rise_matches_calibration_target():
    """Calibrated target: +16.0 mmHg (SD 11.2) at 40 min (Yale 2024); tolerance 2 mmHg."""
    res = simulate(single_infusion(), t_end_days=0.2)
    assert abs(res.at(40 / 1440, "sbp_mmhg") - 125.0 - 16.0) < 2.0


@pytest.mark.xfail(
    reason="known gap: with the Clements central volume and F=0.20 the oral peak is ~17 ng/mL vs "
    "45 +/- 10 ng/mL (Grant 1981); oral absorption is to be calibrated",
    strict=True,
)
def test_oral_peak_matches_grant_1981():
    res = simulate(Regimen(doses=(Dose(day=0, route="oral", dose_mg_per_kg=0.5),)), t_end_days=0.5)
    assert 35.0 <= res.table["plasma_ketamine_ng_per_ml"].max() <= 55.0
