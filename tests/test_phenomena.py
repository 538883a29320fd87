"""The qualitative phenomena the model must show for the typical patient (issue "Foundation").

Each compares simulated quantities; thresholds are stated next to each assertion. Every phenomenon
is checked twice: with the registry's uncalibrated values and with the shipped calibration's
typical values (issue "Evidence, calibration and validation": calibration must not break them).
"""

from __future__ import annotations

import numpy as np
import pytest

from ketadur import (
    AdjunctWindow,
    Dose,
    LifestyleChange,
    Patient,
    Regimen,
    TherapySession,
    iv_infusions,
    simulate,
    single_infusion,
    six_infusions,
)
from ketadur.model.parameters import ParameterSet
from ketadur.regimen import INDUCTION_DAYS_THRICE_WEEKLY
from ketadur.summaries import benefit_half_time, day_of_loss_of_response

BASELINE = Patient().baseline_madrs
LAST_INDUCTION_DAY = INDUCTION_DAYS_THRICE_WEEKLY[-1]


@pytest.fixture(scope="module", params=["registry", "calibrated"])
def params(request) -> ParameterSet:
    """The typical values the patient is built on."""
    return ParameterSet.registry() if request.param == "registry" else ParameterSet.typical()


@pytest.fixture(scope="module")
def single_result(params):
    return simulate(single_infusion(), Patient(params=params), t_end_days=90.0)


@pytest.fixture(scope="module")
def six_result(params):
    return simulate(six_infusions(), Patient(params=params), t_end_days=90.0)


def _improvement(result):
    return BASELINE - result.table["madrs"].to_numpy()


def test_single_infusion_time_course(params, single_result):
    t = single_result.table["t_days"].to_numpy()
    improvement = _improvement(single_result)
    # Falls within 4 h: at least a quarter of baseline gone by 4 h.
    assert single_result.at(4 / 24) < 0.75 * BASELINE
    # Deepest around day 1: the nadir lies between 4 h and 36 h, and at 24 h at least 85 % of the
    # deepest improvement is still there. (The acute response makes the first hours as deep as
    # day 1, as trials rated then found: MADRS -18.9 at 2 h, Murrough 2013; 11.5 of 40.4 at 4 h
    # after a bolus, PMID 21565879; so the nadir may fall before 12 h.)
    nadir_day = t[np.argmax(improvement)]
    assert 1 / 6 <= nadir_day <= 1.5
    assert BASELINE - single_result.at(1.0) >= 0.85 * improvement.max()
    # Most of the improvement is lost by day 14 (less than half of the peak remains).
    assert BASELINE - single_result.at(14.0) < 0.5 * improvement.max()


def test_six_infusions_deeper_and_longer_than_one(params, single_result, six_result):
    assert six_result.table["madrs"].min() < single_result.table["madrs"].min() - 1.0
    lost_single = day_of_loss_of_response(single_result, baseline_madrs=BASELINE)
    lost_six = day_of_loss_of_response(six_result, baseline_madrs=BASELINE, after_day=11.0)
    # Response lasts longer after the last of six infusions than after a single one.
    assert lost_six - LAST_INDUCTION_DAY > 1.5 * lost_single


def test_dusp6_inhibitor_window_extends_benefit_threefold(params, single_result):
    """Ma 2025: transient DUSP6 inhibition around one dose extends the effect to ~2 months."""
    with_dusp6 = simulate(
        single_infusion().with_adjunct(AdjunctWindow(start_day=0.0, end_day=14.0)),
        Patient(params=params),
        t_end_days=90.0,
    )
    lost_alone = day_of_loss_of_response(single_result, baseline_madrs=BASELINE)
    lost_dusp6 = day_of_loss_of_response(with_dusp6, baseline_madrs=BASELINE)
    assert lost_dusp6 >= 3.0 * lost_alone


def test_trkb_deletion_abolishes_effect_and_dusp6_extension(params):
    """Without TrkB, ketamine (with or without the DUSP6 inhibitor) does no more than an active
    placebo given the same way: only the expectancy response is left (in mice, none at all)."""
    deleted = Patient(params=params, trkb_deleted=True)
    alone = simulate(single_infusion(), deleted, t_end_days=30.0)
    dusp6 = simulate(
        single_infusion().with_adjunct(AdjunctWindow(start_day=0.0, end_day=14.0)),
        deleted,
        t_end_days=30.0,
    )
    active_placebo = Regimen(doses=(Dose(day=0.0, drug="midazolam", infusion_minutes=40.0),))
    placebo = simulate(active_placebo, Patient(params=params), t_end_days=30.0)
    assert _improvement(placebo).max() > 3.0  # there is an expectancy response to compare with
    for result in (alone, dusp6):
        assert np.abs(_improvement(result) - _improvement(placebo)).max() < 0.5


def test_cbt_inside_window_beats_same_sessions_outside(params):
    """Same six CBT sessions: the day after each infusion (inside 72 h) vs from day 16 on, at least
    4 days after the last infusion (outside)."""
    six = six_infusions()
    inside = six.with_sessions(TherapySession(day=d + 1.0) for d in INDUCTION_DAYS_THRICE_WEEKLY)
    outside = six.with_sessions(TherapySession(day=d) for d in (16.0, 19.0, 23.0, 26.0, 30.0, 33.0))
    r_in = simulate(inside, Patient(params=params), t_end_days=120.0)
    r_out = simulate(outside, Patient(params=params), t_end_days=120.0)
    lost_in = day_of_loss_of_response(r_in, baseline_madrs=BASELINE, after_day=11.0)
    lost_out = day_of_loss_of_response(r_out, baseline_madrs=BASELINE, after_day=11.0)
    assert lost_in > lost_out + 7.0
    assert r_in.at(60.0) < r_out.at(60.0) - 2.0


def test_cbt_and_ketamine_beats_ketamine_alone(params, six_result):
    with_cbt = simulate(
        six_infusions().with_sessions(TherapySession(day=1.0 + 7 * i) for i in range(12)),
        Patient(params=params),
        t_end_days=90.0,
    )
    assert day_of_loss_of_response(
        with_cbt, baseline_madrs=BASELINE, after_day=11.0
    ) > day_of_loss_of_response(six_result, baseline_madrs=BASELINE, after_day=11.0)


def _per_dose_mtorc1(result, dose_day: float) -> float:
    """Size of the mTORC1 (synaptic protein synthesis) burst: its integral over 12 h."""
    tb = result.table
    window = (tb["t_days"] >= dose_day) & (tb["t_days"] < dose_day + 0.5)
    return float(np.trapezoid(tb.loc[window, "mtorc1"], tb.loc[window, "t_days"]))


def test_tolerance_prone_patient_loses_per_dose_effect(params):
    days = [7.0 * w + o for w in range(8) for o in (0.0, 2.0, 4.0)]
    regimen = iv_infusions(days)
    typical = simulate(regimen, Patient(params=params), t_end_days=57.0)
    prone = simulate(regimen, Patient(params=params, tolerance_propensity=5.0), t_end_days=57.0)
    ratio_typical = _per_dose_mtorc1(typical, days[-1]) / _per_dose_mtorc1(typical, 0.0)
    ratio_prone = _per_dose_mtorc1(prone, days[-1]) / _per_dose_mtorc1(prone, 0.0)
    # The prone patient's 24th dose triggers at most 60 % of the first dose's mTORC1 burst;
    # the typical patient keeps at least 80 %.
    assert ratio_prone < 0.6
    assert ratio_typical > 0.8


def test_met_carriers_respond_less(params, single_result):
    best = {}
    for genotype in ("val/val", "val/met", "met/met"):
        res = simulate(
            single_infusion(), Patient(params=params, bdnf_genotype=genotype), t_end_days=14.0
        )
        best[genotype] = _improvement(res).max()
    # Strictly ordered, and Met/Met at least 3 % below Val/Val. (The gap was stated in MADRS
    # points before the expectancy response entered the relief signal; relief saturates, so the
    # same loss of BDNF release now shows as fewer points: 1.1 at the calibrated values.)
    assert best["met/met"] < best["val/met"] < best["val/val"]
    assert best["met/met"] < 0.97 * best["val/val"]


def test_higher_dose_stronger_but_shorter_lived(params):
    """Seed 003: higher doses produce stronger but potentially shorter-lived changes."""
    low = simulate(iv_infusions([0.0], dose_mg_per_kg=0.5), Patient(params=params), t_end_days=60.0)
    high = simulate(
        iv_infusions([0.0], dose_mg_per_kg=1.0), Patient(params=params), t_end_days=60.0
    )
    assert _improvement(high).max() > _improvement(low).max()
    assert benefit_half_time(high, baseline_madrs=BASELINE) < benefit_half_time(
        low, baseline_madrs=BASELINE
    )


def test_more_frequent_maintenance_keeps_more_benefit(params):
    """Seed 000 (maintenance schedules) and seed 003 ("maintenance infusions help sustain
    neuroplasticity"): after six infusions, weekly maintenance keeps the typical patient better
    than 2-weekly, which beats monthly, which beats none (mean MADRS over days
    18-182, the maintenance period of ``durability_comparison``)."""
    maintenance = {"weekly": range(18, 183, 7), "2-weekly": range(25, 183, 14),
                   "monthly": range(39, 183, 28), "none": ()}  # fmt: skip
    mean_madrs = {}
    for name, days in maintenance.items():
        regimen = iv_infusions([*INDUCTION_DAYS_THRICE_WEEKLY, *days])
        res = simulate(regimen, Patient(params=params), t_end_days=182.0)
        t = res.table["t_days"].to_numpy()
        mean_madrs[name] = res.table["madrs"].to_numpy()[t >= 18.0].mean()
    assert mean_madrs["weekly"] < mean_madrs["2-weekly"] < mean_madrs["monthly"]
    assert mean_madrs["monthly"] < mean_madrs["none"] - 1.0


def test_situational_depression_resolves_without_treatment(params):
    patient = Patient(
        params=params, baseline_madrs=36.0, situational_madrs=10.0, situational_half_life_days=20.0
    )
    res = simulate(Regimen(name="no treatment"), patient, t_end_days=120.0)
    assert res.at(120.0) < 36.0 - 9.0


def test_younger_age_and_healthier_lifestyle_prolong_benefit(params):
    """Seed 003: younger patients keep plasticity longer; exercise and sleep support it."""
    regimen = six_infusions()
    typical = simulate(regimen, Patient(params=params), t_end_days=90.0)
    younger = simulate(regimen, Patient(params=params, age_years=25.0), t_end_days=90.0)
    lifestyle = simulate(
        regimen.with_lifestyle(
            LifestyleChange(start_day=0.0, exercise_sessions_per_week=4, sleep_h_per_night=8)
        ),
        Patient(params=params, habitual_sleep_h_per_night=5.5),
        t_end_days=90.0,
    )
    poor_sleeper = simulate(
        regimen, Patient(params=params, habitual_sleep_h_per_night=5.5), t_end_days=90.0
    )

    def lost(r):
        return day_of_loss_of_response(r, baseline_madrs=BASELINE, after_day=LAST_INDUCTION_DAY)

    assert lost(younger) > lost(typical)
    assert lost(lifestyle) > lost(poor_sleeper)


def test_active_placebo_response_beats_inert_placebo_and_fades(params):
    """Expectancy: midazolam (which sedates, so the blind holds) improves MADRS at 24 h by more
    than saline; neither touches a rating taken just before it; both fade within weeks."""
    days = [0.0, 1.0, 28.0]

    def run(drug: str):
        regimen = Regimen(doses=(Dose(day=0.0, drug=drug, infusion_minutes=40.0),))
        return simulate(regimen, Patient(params=params), t_end_days=28.0, output_days=days)

    active, inert = _improvement(run("midazolam")), _improvement(run("placebo"))
    assert active[0] == 0.0 and inert[0] == 0.0
    assert active[1] > 3.0 and active[1] > inert[1] + 2.0 and inert[1] > 0.0
    # faded: less than a tenth of the day-1 response is left at day 28
    assert active[2] < 0.1 * active[1] and inert[2] < 0.1 * inert[1]
