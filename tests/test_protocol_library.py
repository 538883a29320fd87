"""The seed protocol library: every protocol validates, compiles and runs, and its compiled events
match the published description (counts, spacing, doses in mg, session timing)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ketadur.model.patient import Patient
from ketadur.protocols.execute import run_protocol
from ketadur.protocols.io import library_names, load_protocol
from ketadur.protocols.schedule import compile_protocol

WEIGHT_KG = 80.0
PATIENT = Patient(weight_kg=WEIGHT_KG)
REQUIRED = {
    "protocol1_single_infusion",
    "induction_thrice_weekly",
    "induction_twice_weekly",
    "maintenance_frequency",
    "adaptive_maintenance",
    "booster_on_relapse",
    "protocol2_kap_cbt",
    "mindfulness_single_infusion",
    "protocol3_bdnf_sampling",
    "phillips2019",
    "sustain1",
    "wilkinson2017",
    "wilkinson2021",
    "lifestyle_augmentation",
    "dusp6_adjunct",
}


def _events(name: str, arm: str | None = None):
    return compile_protocol(load_protocol(name), PATIENT, arm).table()


def _dose_days(table) -> list[float]:
    return list(table.loc[table["kind"].isin(["infusion_start", "bolus"]), "t_days"])


def _sessions(table, kind: str) -> list[float]:
    return list(table.loc[(table["kind"] == "session") & (table["detail"] == kind), "t_days"])


def test_library_holds_every_seed_protocol():
    assert set(library_names()) >= REQUIRED


@pytest.mark.parametrize("name", sorted(REQUIRED))
def test_every_arm_validates_compiles_and_runs(name):
    protocol = load_protocol(name)
    assert protocol.citations and protocol.summary
    for arm in protocol.arms:
        table = compile_protocol(protocol, PATIENT, arm.name).table()
        assert table["t_days"].is_monotonic_increasing
        run = run_protocol(protocol, PATIENT, arm=arm.name, output_step_hours=24.0)
        assert run.result.status == "success", run.result.message
        assert run.result.table["t_days"].iloc[-1] == pytest.approx(protocol.duration_days)
        assert run.assessments["value"].notna().all()


def test_protocol1_single_infusion_dose_rate_and_visits():
    t = _events("protocol1_single_infusion")
    start = t[t["kind"] == "infusion_start"].iloc[0]
    stop = t[t["kind"] == "infusion_stop"].iloc[0]
    assert start["amount_mg"] == pytest.approx(0.5 * WEIGHT_KG)
    assert start["rate_mg_per_h"] == pytest.approx(0.5 * WEIGHT_KG / (40 / 60))
    assert (stop["t_days"] - start["t_days"]) * 1440 == pytest.approx(40.0)
    madrs_h = 24 * np.array(t.loc[t["detail"] == "madrs", "t_days"])
    assert list(madrs_h) == pytest.approx([0, 24, 72, 168])
    assert (t["detail"] == "vitals").sum() >= 6  # during and for 2 h after the infusion


@pytest.mark.parametrize(
    ("name", "days", "weekdays"),
    [
        ("induction_thrice_weekly", [0, 2, 4, 7, 9, 11], {0, 2, 4}),  # Mon, Wed, Fri x 2 weeks
        ("induction_twice_weekly", [0, 3, 7, 10, 14, 17], {0, 3}),  # Mon, Thu x 3 weeks
    ],
)
def test_induction_series(name, days, weekdays):
    got = _dose_days(_events(name))
    assert got == days
    assert {int(d) % 7 for d in got} == weekdays


@pytest.mark.parametrize(
    ("arm", "interval"),
    [("weekly", 7), ("every_2_weeks", 14), ("monthly", 28), ("every_4_to_8_weeks", 28)],
)
def test_maintenance_intervals(arm, interval):
    days = _dose_days(_events("maintenance_frequency", arm))
    assert days[:6] == [0, 2, 4, 7, 9, 11]
    maintenance = np.array(days[6:])
    assert maintenance[0] == 14
    assert set(np.diff(maintenance)) == {interval}
    assert maintenance[-1] < 14 + 168


def test_kap_cbt_session_timing_relative_to_infusions():
    t = _events("protocol2_kap_cbt")
    infusions = _dose_days(t)
    assert len(infusions) == 6 and set(np.diff(infusions)) <= {2, 3}
    first = infusions[0]
    assert all(d < first for d in _sessions(t, "preparation")) and _sessions(t, "preparation")
    cbt = _sessions(t, "cbt")
    assert 24 <= (cbt[0] - first) * 24 <= 48  # within 24-48 h of the first infusion
    infusion_days = {math.floor(d) for d in infusions}
    integration = _sessions(t, "integration")
    assert integration and not {math.floor(d) for d in integration} & infusion_days
    weekly = [d for d in cbt if d > infusions[-1]]
    assert len(weekly) == 12 and set(np.diff(weekly)) == {7}


def test_mindfulness_only_in_its_arm():
    with_m = _events("mindfulness_single_infusion", "ketamine_mindfulness")
    alone = _events("mindfulness_single_infusion", "ketamine_alone")
    assert len(_dose_days(with_m)) == len(_dose_days(alone)) == 1
    assert len(_sessions(with_m, "mindfulness")) == 8 and not _sessions(alone, "mindfulness")
    assert min(_sessions(with_m, "mindfulness")) > 0


def test_protocol3_bdnf_at_baseline_and_240_min():
    t = _events("protocol3_bdnf_sampling")
    bdnf_min = 1440 * np.array(t.loc[t["detail"] == "plasma_bdnf", "t_days"])
    assert list(bdnf_min) == pytest.approx([0, 240])


def test_phillips_six_then_four_weekly():
    days = _dose_days(_events("phillips2019"))
    assert days == [0, 2, 4, 7, 9, 11, 14, 21, 28, 35]


def test_sustain1_design():
    protocol = load_protocol("sustain1")
    t = _events("sustain1", "esketamine_stable_remitters")
    induction = t[(t["phase"] == "induction") & (t["kind"] == "bolus")]
    assert len(induction) == 8 and set(induction["amount_mg"]) == {84.0}
    assert set(induction["route"]) == {"intranasal"} and set(induction["drug"]) == {"esketamine"}
    assert set(np.diff(induction["t_days"])) == {3, 4}  # twice weekly
    start_ad = t[t["kind"] == "medication_start"]
    assert list(start_ad["t_days"]) == [0.0]
    pbo = _events("sustain1", "placebo_stable_remitters")
    assert set(pbo.loc[pbo["phase"] == "maintenance", "kind"]) >= {"placebo"}
    assert not (pbo.loc[pbo["phase"] == "maintenance", "kind"] == "bolus").any()
    arms = {a.name: a for a in protocol.arms}
    assert (
        arms["esketamine_stable_remitters"].phases[:3]
        == arms["placebo_stable_remitters"].phases[:3]
    )
    assert arms["esketamine_stable_remitters"].phases[3].entry.require == "stable_remission"
    relapse = protocol.endpoints["relapse"]
    assert relapse.madrs_at_least == 22 and relapse.at_least == relapse.of_last == 2


def test_wilkinson_designs():
    w17 = _events("wilkinson2017")
    infusions = _dose_days(w17)
    assert len(infusions) == 4 and infusions[-1] < 14
    cbt = _sessions(w17, "cbt")
    assert len(cbt) == 12 and cbt[-1] - infusions[0] <= 70  # 12 sessions within 10 weeks
    cbt_arm = _events("wilkinson2021", "cbt")
    tau = _events("wilkinson2021", "treatment_as_usual")
    assert len(_dose_days(cbt_arm)) == 6 and _dose_days(cbt_arm)[-1] < 21
    assert len(_sessions(cbt_arm, "cbt")) == 14 and not _sessions(tau, "cbt")


def test_lifestyle_and_dusp6_arms():
    life = _events("lifestyle_augmentation", "lifestyle")
    usual = _events("lifestyle_augmentation", "usual_habits")
    assert list(life.loc[life["kind"] == "lifestyle", "t_days"]) == [0.0]
    assert not (usual["kind"] == "lifestyle").any()
    protocol = load_protocol("dusp6_adjunct")
    assert protocol.evidence == "preclinical hypothesis"
    t = _events("dusp6_adjunct", "ketamine_dusp6_inhibitor")
    assert list(t.loc[t["kind"] == "adjunct_start", "t_days"]) == [0.0]
    assert list(t.loc[t["kind"] == "adjunct_stop", "t_days"]) == [14.0]
    regimen = compile_protocol(protocol, PATIENT).regimen()
    assert [(a.start_day, a.end_day) for a in regimen.adjuncts] == [(0.0, 14.0)]
